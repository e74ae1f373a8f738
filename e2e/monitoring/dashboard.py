#!/usr/bin/env python3
"""Generate the pki-issuer Grafana dashboard as code (PyPI grafana-foundation-sdk).

    dashboard.py OUT.json           write it
    dashboard.py OUT.json --check   fail when OUT.json differs from what this script generates

The chart ships OUT (helm/pki-issuer/dashboards/pki-issuer.json) as a ConfigMap for Grafana's
sidecar. Every query is run against a real Prometheus scraping pki-issuer by the e2e test
prometheus::alerts_fire_against_a_real_prometheus, which also checks that it names only
metrics pki-issuer exports.
"""

from __future__ import annotations

import json
import sys

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
JOB = 'job=~"$job"'


def query(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    return q.legend_format(legend) if legend else q


def series(title: str, unit: str, *queries: prometheus.Dataquery, desc: str = "") -> timeseries.Panel:
    p = timeseries.Panel().title(title).unit(unit).datasource(DS).height(8).span(12)
    p = p.description(desc) if desc else p
    for q in queries:
        p = p.with_target(q)
    return p


def single(title: str, unit: str, expr: str, desc: str) -> stat.Panel:
    return stat.Panel().title(title).unit(unit).datasource(DS).height(4).span(6).description(desc).with_target(query(expr))


def build() -> dict:
    d = (
        dashboard.Dashboard("pki-issuer")
        .uid("pki-issuer")
        .tags(["pki-issuer", "cert-manager"])
        .description("Issuance, failures, signer and trust anchor expiry, remote CA latency, reconciles and leadership of pki-issuer.")
        .time("now-6h", "now")
        .refresh("1m")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            dashboard.QueryVariable("job")
            .label("Job")
            .datasource(DS)
            .query('label_values(pki_issuer_build_info, job)')
            .include_all(True)
            .all_value(".*")
        )
        .with_row(dashboard.Row("Overview"))
        .with_panel(single("Leaders", "none", f"sum(pki_issuer_leader{{{JOB}}})", "Replicas running the controllers: 1 is healthy."))
        .with_panel(single("Issuers not Ready", "none", f"count(pki_issuer_issuer_ready{{{JOB}}} == 0) or vector(0)", "Issuers whose last check failed."))
        .with_panel(single("Earliest signer expiry", "s", f"min(pki_issuer_signer_expiry_timestamp_seconds{{{JOB}}}) - time()", "Time left until the first signer (intermediate) expires."))
        .with_panel(single("Earliest trust anchor expiry", "s", f"min(pki_issuer_trust_anchor_expiry_timestamp_seconds{{{JOB}}}) - time()", "Time left until the first trust anchor expires."))
        .with_row(dashboard.Row("Issuance"))
        .with_panel(series("Certificates issued", "reqps", query(f"sum by (kind, issuer) (rate(pki_issuer_certificates_issued_total{{{JOB}}}[$__rate_interval]))", "{{kind}} {{issuer}}")))
        .with_panel(series("Requests failed by reason", "reqps", query(f"sum by (reason) (rate(pki_issuer_requests_failed_total{{{JOB}}}[$__rate_interval]))", "{{reason}}")))
        .with_panel(
            series(
                "Signing latency",
                "s",
                query(f"histogram_quantile(0.5, sum by (le) (rate(pki_issuer_signing_duration_seconds_bucket{{{JOB}}}[$__rate_interval])))", "p50"),
                query(f"histogram_quantile(0.99, sum by (le) (rate(pki_issuer_signing_duration_seconds_bucket{{{JOB}}}[$__rate_interval])))", "p99", "B"),
                desc="From approved request to checked certificate.",
            )
        )
        .with_panel(
            series(
                "Remote CA latency",
                "s",
                query(f"histogram_quantile(0.5, sum by (le) (rate(pki_issuer_remote_ca_request_duration_seconds_bucket{{{JOB}}}[$__rate_interval])))", "p50"),
                query(f"histogram_quantile(0.99, sum by (le) (rate(pki_issuer_remote_ca_request_duration_seconds_bucket{{{JOB}}}[$__rate_interval])))", "p99", "B"),
                desc="CFSSL and Vault/OpenBao round trips; timeouts count at their full duration.",
            )
        )
        .with_row(dashboard.Row("Issuers"))
        .with_panel(
            table.Panel()
            .title("Issuers")
            .datasource(DS)
            .height(8)
            .span(24)
            .with_target(query(f"pki_issuer_issuer_ready{{{JOB}}}", "", "A").instant().format(PromQueryFormat.TABLE))
            .with_target(query(f"pki_issuer_signer_expiry_timestamp_seconds{{{JOB}}} - time()", "", "B").instant().format(PromQueryFormat.TABLE))
            .with_target(query(f"pki_issuer_trust_anchor_expiry_timestamp_seconds{{{JOB}}} - time()", "", "C").instant().format(PromQueryFormat.TABLE))
        )
        .with_row(dashboard.Row("Controllers"))
        .with_panel(series("Reconciles", "ops", query(f"sum by (controller) (rate(pki_issuer_reconciles_total{{{JOB}}}[$__rate_interval]))", "{{controller}}")))
        .with_panel(series("Reconcile errors", "ops", query(f"sum by (controller, error) (rate(pki_issuer_reconcile_errors_total{{{JOB}}}[$__rate_interval]))", "{{controller}} {{error}}")))
        .with_panel(series("Reconcile p99", "s", query(f"histogram_quantile(0.99, sum by (controller, le) (rate(pki_issuer_reconcile_duration_seconds_bucket{{{JOB}}}[$__rate_interval])))", "{{controller}}")))
        .with_panel(series("Versions and targets up", "none", query(f"count by (version) (pki_issuer_build_info{{{JOB}}})", "{{version}}"), query(f"sum(up{{{JOB}}})", "up", "B")))
    )
    return json.loads(json.dumps(d.build(), cls=JSONEncoder))


def main() -> int:
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] != "--check"):
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    text = json.dumps(build(), indent=2, sort_keys=True) + "\n"
    if len(sys.argv) == 3:
        try:
            current = open(out, encoding="utf-8").read()
        except FileNotFoundError:
            current = ""
        if current != text:
            print(f"{out} is stale: run make generate (e2e/monitoring/dashboard.py {out})", file=sys.stderr)
            return 1
        print(f"{out} is up to date")
        return 0
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
