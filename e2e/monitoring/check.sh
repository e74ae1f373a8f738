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
missing=0
while read -r name; do
  if ! grep -q "alertname: $name\$" "$tests"; then
    echo "alert $name has no promtool unit test in $tests" >&2
    missing=1
  fi
  if ! grep -q "^### $name\$" docs/operating.md; then
    echo "alert $name has no runbook entry (### $name) in docs/operating.md" >&2
    missing=1
  fi
done < <(sed -n 's/^ *- alert: //p' "$rules")
[ "$missing" -eq 0 ]
echo "alerts: $(grep -c -- '- alert:' "$rules") rules, each unit-tested and with a runbook entry"
