#!/usr/bin/env bash
# Build the pod-certificate harness (e2e/podcert: the kubelet's own PodCertificate manager from
# k8s.io/kubernetes at the control plane's version) once, cached outside the repository by the
# hash of its sources, and print the binary's path.
#
# Usage: podcert-harness.sh [KUBELET_VERSION]. Without an argument the kubelet is the control
# plane's (KUBERNETES_VERSION, e2e/podcert/go.mod); with $KUBELET_SKEW_VERSION (versions.env) it
# is that older kubelet (e2e/podcert/go.kubelet-<minor>.mod, built with -modfile).
#
# Needs: go (1.26+); the Go modules come from the module proxy (pinned in e2e/podcert/go.mod and
# go.sum, the same versions as e2e/controlplane/kube).
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "$0")/../.." && pwd)
SRC="$ROOT_DIR/e2e/podcert"
# shellcheck source=e2e/controlplane/versions.env
. "$ROOT_DIR/e2e/controlplane/versions.env"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/pki-issuer/control-plane"

die() {
  echo "podcert-harness.sh: $*" >&2
  exit 1
}

version=${1:-$KUBERNETES_VERSION}
case "$version" in
  "$KUBERNETES_VERSION") modfile=go.mod ;;
  "$KUBELET_SKEW_VERSION") modfile="go.kubelet-$(cut -d. -f1,2 <<<"${version#v}").mod" ;;
  *) die "no harness module for kubelet $version (versions.env: $KUBERNETES_VERSION, $KUBELET_SKEW_VERSION)" ;;
esac
grep -qE "^[[:space:]]*k8s.io/kubernetes $version( // indirect)?$" "$SRC/$modfile" ||
  die "$SRC/$modfile does not require k8s.io/kubernetes $version (versions.env)"
sum=$(cd "$SRC" && find . -type f \( -name '*.go' -o -name '*.mod' -o -name '*.sum' \) -print0 |
  sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)
out="$CACHE_DIR/podcert-$version-$sum"
if [ ! -x "$out/podcert" ]; then
  command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
  command -v go >/dev/null 2>&1 || die "go not found (Go 1.26+ builds the harness)"
  export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"
  mkdir -p "$CACHE_DIR"
  tmp=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
  echo "podcert-harness.sh: building the kubelet's PodCertificate manager harness ($version)" >&2
  (cd "$SRC" && go build -modfile="$modfile" -trimpath -ldflags "-s -w" -o "$tmp/podcert" .) || {
    rm -rf "$tmp"
    die "building the harness failed"
  }
  rm -rf "$out"
  mv "$tmp" "$out"
fi
echo "$out/podcert"
