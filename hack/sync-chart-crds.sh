#!/usr/bin/env bash
# Copies the generated CRDs (crds/*.yaml, from `make generate`) into the Helm chart
# (helm/pki-issuer/crds/) and the kustomize base (config/crd/bases/), byte for byte.
#
#   hack/sync-chart-crds.sh           copy
#   hack/sync-chart-crds.sh --check   fail (exit 1) when a copy differs or is missing or extra
set -euo pipefail
cd "$(dirname "$0")/.."

destinations=(helm/pki-issuer/crds config/crd/bases)
mode=copy
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

shopt -s nullglob
sources=(crds/*.yaml)
if [ "${#sources[@]}" -eq 0 ]; then
  echo "no CRDs in crds/; run 'make generate'" >&2
  exit 1
fi

status=0
for dest in "${destinations[@]}"; do
  if [ "$mode" = copy ]; then
    mkdir -p "$dest"
    # Remove copies of CRDs that no longer exist.
    for f in "$dest"/*.yaml; do
      [ -e "crds/$(basename "$f")" ] || rm -f -- "$f"
    done
    cp -- "${sources[@]}" "$dest/"
    echo "synced ${#sources[@]} CRDs into $dest/"
    continue
  fi
  for f in "${sources[@]}"; do
    if ! cmp -s "$f" "$dest/$(basename "$f")"; then
      echo "$dest/$(basename "$f") differs from $f (or is missing)" >&2
      status=1
    fi
  done
  for f in "$dest"/*.yaml; do
    if [ ! -e "crds/$(basename "$f")" ]; then
      echo "$f has no source in crds/" >&2
      status=1
    fi
  done
done
if [ "$status" -ne 0 ]; then
  echo "CRD copies are stale: run hack/sync-chart-crds.sh" >&2
fi
exit "$status"
