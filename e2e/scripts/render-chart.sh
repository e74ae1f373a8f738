#!/usr/bin/env bash
# Lints and renders helm/pki-issuer with Helm's own engine (the Helm v4 SDK, bound as the
# Python library helm-python-sdk: no helm binary needed), then runs yamllint on the output.
#
#   e2e/scripts/render-chart.sh OUTDIR
#
# Writes OUTDIR/default.yaml (default values), OUTDIR/all.yaml (every optional feature on) and
# OUTDIR/secrets-cluster-wide.yaml, all for release `pki-issuer` in namespace `pki-issuer`.
# Tools live in a virtualenv at ${PKI_VENV:-$HOME/.cache/pki-issuer-venv}, created and filled
# on first use.
set -euo pipefail

if [ "$#" -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
outdir=$1
root="$(cd "$(dirname "$0")/../.." && pwd)"

# shellcheck source=e2e/scripts/venv.sh
. "$root/e2e/scripts/venv.sh"
ensure_venv

mkdir -p "$outdir"
"$PKI_VENV/bin/python" "$root/e2e/scripts/render_chart.py" "$root/helm/pki-issuer" "$outdir"
"$PKI_VENV/bin/yamllint" --strict -c "$root/.yamllint.yaml" "$outdir"
echo "rendered chart passes yamllint: $outdir"
