#!/usr/bin/env bash
# Regenerates config/rbac/rbac.yaml from the Helm chart (the one source of the RBAC): renders
# the chart with its default values and keeps the RBAC objects (hack/gen-config-rbac.py).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$root/e2e/scripts/render-chart.sh" "$out" >/dev/null
# shellcheck source=e2e/scripts/venv.sh
. "$root/e2e/scripts/venv.sh"
"$PKI_VENV/bin/python" "$root/hack/gen-config-rbac.py" "$out/default.yaml"
