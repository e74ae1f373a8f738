#!/usr/bin/env bash
# Checks the alert rules with Prometheus's own tool (Debian's prometheus package, installed by
# e2e/scripts/install-test-deps.sh): `promtool check rules`, the unit tests in alerts_test.yaml,
# that every alert has a unit test and a runbook entry in docs/operating.md, and that the Grafana
# dashboard is what e2e/monitoring/dashboard.py generates.
#   check.sh              check
#   check.sh --generate   regenerate the dashboard
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
# shellcheck source=e2e/scripts/venv.sh
. "$root/e2e/scripts/venv.sh"
ensure_venv
dashboard=helm/pki-issuer/dashboards/pki-issuer.json
if [ "${1:-}" = "--generate" ]; then
  "$PKI_VENV/bin/python" e2e/monitoring/dashboard.py "$dashboard"
  exit 0
fi
"$PKI_VENV/bin/python" e2e/monitoring/dashboard.py "$dashboard" --check
rules=helm/pki-issuer/monitoring/alerts.yaml
tests=e2e/monitoring/alerts_test.yaml

promtool check rules "$rules"
promtool test rules "$tests"
uncovered=0
while read -r name; do
  if ! grep -q "alertname: $name\$" "$tests"; then
    echo "alert $name has no promtool unit test in $tests" >&2
    uncovered=1
  fi
  if ! grep -q "^### $name\$" docs/operating.md; then
    echo "alert $name has no runbook entry (### $name) in docs/operating.md" >&2
    uncovered=1
  fi
done < <(sed -n 's/^ *- alert: //p' "$rules")
[ "$uncovered" -eq 0 ]

# The chart (monitoring.enabled, render_chart.py's "all" values) ships exactly these rules and
# this dashboard, and the rendered rules pass promtool too.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
e2e/scripts/render-chart.sh "$tmp" >/dev/null
"$PKI_VENV/bin/python" - "$tmp/all.yaml" "$rules" "$dashboard" "$tmp/rendered-rules.yaml" <<'PY'
import json, sys, yaml
rendered, rules, dashboard, out = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
prom = [d for d in docs if d["kind"] == "PrometheusRule"]
cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")]
assert len(prom) == 1 and len(cms) == 1, "one PrometheusRule and one dashboard ConfigMap"
assert prom[0]["spec"] == yaml.safe_load(open(rules)), "the PrometheusRule differs from " + rules
assert cms[0]["metadata"]["labels"].get("grafana_dashboard") == "1", "sidecar label"
data = cms[0]["data"]["pki-issuer.json"]
assert json.loads(data) == json.load(open(dashboard)), "the dashboard ConfigMap differs from " + dashboard
yaml.safe_dump(prom[0]["spec"], open(out, "w"))
print("chart: the PrometheusRule and the dashboard ConfigMap match their sources")
PY
promtool check rules "$tmp/rendered-rules.yaml"
echo "alerts: $(grep -c -- '- alert:' "$rules") rules, each unit-tested and with a runbook entry"
