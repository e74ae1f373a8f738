#!/usr/bin/env python3
"""cert-manager's own chart, for the e2e control plane (e2e/scripts/control-plane.sh).

    cert_manager_chart.py render CHART_DIR OUTDIR
        Render the chart (release cert-manager, namespace cert-manager, default values) with
        Helm's engine (helm-python-sdk; needs the project's venv) and write
          OUTDIR/rbac.yaml      the controller's and webhook's ServiceAccounts and RBAC
          OUTDIR/webhooks.json  the Mutating/ValidatingWebhookConfigurations
    cert_manager_chart.py webhooks WEBHOOKS_JSON URL CA_FILE
        Print the webhook configurations with each clientConfig pointing at URL + its path
        (instead of the in-cluster Service) and caBundle set to CA_FILE (standard library only).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

RELEASE = "cert-manager"
NAMESPACE = "cert-manager"
# Templates whose objects the out-of-cluster control plane installs as they are.
RBAC_TEMPLATES = ("serviceaccount.yaml", "webhook-serviceaccount.yaml", "rbac.yaml", "webhook-rbac.yaml")
WEBHOOK_TEMPLATES = ("webhook-mutating-webhook.yaml", "webhook-validating-webhook.yaml")


def render(chart_dir: str, outdir: str) -> int:
    import helm_python as helm  # noqa: PLC0415 (only this subcommand needs the venv)
    import yaml  # noqa: PLC0415

    out = Path(outdir)
    with helm.Chart.load(chart_dir) as chart:
        manifests = chart.render({}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    by_name = {Path(path).name: body for path, body in manifests.items()}
    missing = [t for t in RBAC_TEMPLATES + WEBHOOK_TEMPLATES if t not in by_name]
    if missing:
        print(f"chart has no template {missing}", file=sys.stderr)
        return 1
    rbac = "".join(f"---\n# Source: {t}\n{by_name[t].strip()}\n" for t in RBAC_TEMPLATES)
    (out / "rbac.yaml").write_text(rbac)
    webhooks = []
    for t in WEBHOOK_TEMPLATES:
        webhooks += [d for d in yaml.safe_load_all(by_name[t]) if d]
    (out / "webhooks.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": webhooks}))
    print(f"rendered cert-manager chart: {len(webhooks)} webhook configurations, RBAC from {len(RBAC_TEMPLATES)} templates")
    return 0


def webhooks(path: str, url: str, ca_file: str) -> int:
    doc = json.loads(Path(path).read_text())
    ca = base64.b64encode(Path(ca_file).read_bytes()).decode()
    for item in doc["items"]:
        # The chart's CA injection annotation needs cainjector, which this control plane lacks.
        item["metadata"].get("annotations", {}).pop("cert-manager.io/inject-ca-from-secret", None)
        for hook in item["webhooks"]:
            service = hook["clientConfig"].get("service") or {}
            hook["clientConfig"] = {"url": url + service.get("path", "/"), "caBundle": ca}
    json.dump(doc, sys.stdout)
    return 0


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "render":
        return render(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 5 and sys.argv[1] == "webhooks":
        return webhooks(sys.argv[2], sys.argv[3], sys.argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
