#!/usr/bin/env bash
# Checks the alert rules with Prometheus's own tool (Debian's prometheus package, installed by
# e2e/scripts/install-test-deps.sh): `promtool check rules`, the unit tests in alerts_test.yaml,
# and that every alert has a unit test and a runbook entry in docs/operating.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
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
