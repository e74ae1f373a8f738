#!/usr/bin/env python3
"""Lint and render helm/pki-issuer with Helm's own engine (helm-python-sdk, Helm v4 SDK).

    render_chart.py CHART_DIR OUTDIR

Runs the equivalent of `helm lint --strict` for each value set, checks values.schema.json
accepts them (and rejects an unknown key), renders the templates like
`helm template pki-issuer CHART -n pki-issuer`, and writes one multi-document YAML file per
value set into OUTDIR:

    default.yaml              the chart's defaults
    all.yaml                  every optional feature on
    secrets-cluster-wide.yaml rbac.secretsClusterWide=true (what the kind e2e run installs)
    e2e.yaml                  what the e2e suite applies to the test API server with RBAC on
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import helm_python as helm

RELEASE = "pki-issuer"
NAMESPACE = "pki-issuer"
# The chart's lowest supported Kubernetes version (Chart.yaml kubeVersion).
KUBE_VERSION = "v1.27.0"

VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "all": {
        "metrics": {"serviceMonitor": {"enabled": True}},
        "monitoring": {"enabled": True, "prometheusRule": {"labels": {"release": "prom"}}},
        "podDisruptionBudget": {"enabled": True},
        "networkPolicy": {"enabled": True},
        "rbac": {"issuerNamespaces": ["team-a"]},
        "approver": {"enabled": True},
        "tenantSignerReference": {
            "enabled": True,
            "namespaces": {
                "team-a": {
                    "issuers": ["team-ca"],
                    "subjects": [
                        {"kind": "ServiceAccount", "name": "web", "namespace": "team-a"},
                        {"kind": "Group", "name": "team-a-developers"},
                    ],
                },
                "team-b": {"subjects": [{"kind": "User", "name": "alice"}]},
            },
        },
    },
    "secrets-cluster-wide": {"rbac": {"secretsClusterWide": True}},
    # A PKCS#11 module from the node (README "Key in an HSM: PKCS#11"): SoftHSM2 and its token
    # directory mounted from the host, the module allowlisted.
    "pkcs11": {
        "pkcs11": {
            "allowedModules": ["/opt/softhsm/lib/libsofthsm2.so"],
            "volumes": [
                {"name": "softhsm", "hostPath": {"path": "/opt/softhsm", "type": "Directory"}},
                {"name": "tokens", "hostPath": {"path": "/var/lib/softhsm/tokens", "type": "Directory"}},
            ],
            "volumeMounts": [
                {"name": "softhsm", "mountPath": "/opt/softhsm", "readOnly": True},
                {"name": "tokens", "mountPath": "/var/lib/softhsm/tokens"},
            ],
            "env": [
                {"name": "SOFTHSM2_CONF", "value": "/opt/softhsm/softhsm2.conf"},
                {"name": "LD_LIBRARY_PATH", "value": "/opt/softhsm/lib"},
            ],
        }
    },
    # What the e2e suite installs into the test API server: everything a plain cluster
    # serves (no ServiceMonitor: the Prometheus operator's CRD is not installed there).
    "e2e": {
        "podDisruptionBudget": {"enabled": True},
        "networkPolicy": {"enabled": True},
        "rbac": {"issuerNamespaces": ["team-a"]},
        "approver": {"enabled": True},
        # chart.rs creates a CSR for team-a's PKIIssuer team-ca as this ServiceAccount.
        "tenantSignerReference": {
            "enabled": True,
            "namespaces": {
                "team-a": {
                    "issuers": ["team-ca"],
                    "subjects": [{"kind": "ServiceAccount", "name": "csr-client", "namespace": "team-a"}],
                }
            },
        },
    },
}

# What a value set must render (the values reach the Deployment).
EXPECT: dict[str, list[str]] = {
    "pkcs11": [
        "--allowed-pkcs11-modules=/opt/softhsm/lib/libsofthsm2.so",
        "mountPath: /opt/softhsm",
        "path: /var/lib/softhsm/tokens",
        "name: SOFTHSM2_CONF",
    ],
}
SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def lint(chart_dir: Path, name: str, values: dict[str, Any]) -> bool:
    report = helm.lint(
        str(chart_dir), values, strict=True, namespace=NAMESPACE, kube_version=KUBE_VERSION
    )
    ok = not report.get("errors")
    for msg in report.get("messages") or []:
        severity = SEVERITY.get(msg.get("severity", 0), "UNKNOWN")
        print(f"  lint[{name}] {severity} {msg.get('path', '')}: {msg.get('error', '')}")
        # --strict: warnings fail as errors do.
        if msg.get("severity", 0) >= 2:
            ok = False
    for err in report.get("errors") or []:
        print(f"  lint[{name}] ERROR {err}")
    return ok


def render(chart: helm.Chart, values: dict[str, Any]) -> str:
    chart.validate_schema(values)
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs = []
    for path in sorted(manifests):
        body = manifests[path].strip()
        if path.endswith("NOTES.txt") or not body:
            continue
        docs.append(f"---\n# Source: {path}\n{body}\n")
    return "".join(docs)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    chart_dir, outdir = Path(sys.argv[1]), Path(sys.argv[2])
    outdir.mkdir(parents=True, exist_ok=True)
    print(f"helm-python-sdk: helm-c {helm.helm_c_version()}, Helm SDK {helm.helm_sdk_version()}")

    failed = False
    with helm.Chart.load(str(chart_dir)) as chart:
        # The schema is strict: an unknown key must be refused.
        try:
            chart.validate_schema({"rbac": {"secretClusterWide": True}})
        except helm.HelmError:
            pass
        else:
            print("values.schema.json accepted an unknown key (rbac.secretClusterWide)")
            failed = True

        for name, values in VALUE_SETS.items():
            if not lint(chart_dir, name, values):
                print(f"helm lint failed for value set {name!r}")
                failed = True
                continue
            try:
                text = render(chart, values)
            except helm.HelmError as exc:
                print(f"rendering value set {name!r} failed: {exc}")
                failed = True
                continue
            missing = [want for want in EXPECT.get(name, []) if want not in text]
            if missing:
                print(f"value set {name!r} rendered without {missing}")
                failed = True
            out = outdir / f"{name}.yaml"
            out.write_text(text)
            print(f"rendered {name!r} -> {out} ({text.count('# Source: ')} templates)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
