//! The alerts and the dashboard against a real Prometheus (Debian's `prometheus`): it scrapes two
//! real pki-issuer replicas with leader election on 127.0.0.1 and evaluates the chart's rule file
//! (helm/pki-issuer/monitoring/alerts.yaml) with every `for:` shortened; the suite makes signers
//! and a trust anchor expire soon, an issuer fail and requests violate policy, then asserts
//! through Prometheus's HTTP API which alerts fire and which stay silent.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use time::{Duration as Days, OffsetDateTime};

use crate::fixtures;
use crate::harness::{external, Env};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rule file with every `for:` set to `for_`.
fn rules_with_for(for_: &str) -> String {
    let text = std::fs::read_to_string(repo().join("helm/pki-issuer/monitoring/alerts.yaml"))
        .expect("alerts.yaml");
    text.lines()
        .map(|l| match l.trim_start().strip_prefix("for: ") {
            Some(_) => format!("{}for: {for_}", &l[..l.len() - l.trim_start().len()]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

struct Prometheus {
    _child: tokio::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Prometheus {
    /// Start Prometheus on a free loopback port scraping `targets` as job `pki-issuer`.
    async fn start(dir: &Path, targets: &[String], rules: &str) -> Prometheus {
        let bin = which("prometheus").expect(
            "prometheus is not installed: make test-deps (Debian package prometheus) installs it",
        );
        std::fs::write(dir.join("rules.yaml"), rules).unwrap();
        let config = json!({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
            "rule_files": [dir.join("rules.yaml")],
            "scrape_configs": [{"job_name": "pki-issuer", "static_configs": [{"targets": targets}]}],
        });
        // JSON is YAML.
        std::fs::write(dir.join("prometheus.yml"), config.to_string()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = tokio::process::Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            _child: child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        for _ in 0..100 {
            if let Ok(r) = p.http.get(format!("{}/-/ready", p.base)).send().await {
                if r.status().is_success() {
                    return p;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "prometheus not ready:\n{}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), query)
            .expect("prometheus URL");
        self.http
            .get(url)
            .send()
            .await
            .expect("prometheus API")
            .json()
            .await
            .expect("prometheus JSON")
    }

    /// Run an instant query; panics unless Prometheus parses and runs it.
    async fn query(&self, q: &str) -> Vec<Value> {
        let v = self.get("/api/v1/query", &[("query", q)]).await;
        assert_eq!(v["status"], "success", "query {q}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    async fn alerts(&self) -> Vec<Value> {
        let v = self.get("/api/v1/alerts", &[]).await;
        v["data"]["alerts"].as_array().cloned().unwrap_or_default()
    }

    /// Wait until `alert` fires with `labels` (a subset of its labels).
    async fn wait_firing(&self, alert: &str, labels: &[(&str, &str)]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let alerts = self.alerts().await;
            if alerts
                .iter()
                .any(|a| matches(a, alert, labels) && a["state"] == "firing")
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{alert} {labels:?} did not fire within 90s; alerts: {alerts:#?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Wait until no `alert` with `labels` is pending or firing.
    async fn wait_silent(&self, alert: &str, labels: &[(&str, &str)]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let alerts = self.alerts().await;
            if !alerts.iter().any(|a| matches(a, alert, labels)) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{alert} {labels:?} still active after 60s: {alerts:#?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Assert `alert` with `labels` is neither pending nor firing.
    async fn assert_silent(&self, alert: &str, labels: &[(&str, &str)]) {
        let alerts = self.alerts().await;
        assert!(
            !alerts.iter().any(|a| matches(a, alert, labels)),
            "{alert} {labels:?} should be silent: {alerts:#?}"
        );
    }
}

fn matches(a: &Value, alert: &str, labels: &[(&str, &str)]) -> bool {
    a["labels"]["alertname"] == alert && labels.iter().all(|(k, v)| a["labels"][*k] == *v)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The series names pki-issuer's exposition declares (from `# TYPE` lines, so families that
/// have no sample yet count too), plus `up`.
fn exported_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::from(["up".to_string()]);
    for line in exposition.lines() {
        let mut it = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (it.next(), it.next(), it.next(), it.next())
        {
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for s in ["_bucket", "_count", "_sum"] {
                        names.insert(format!("{name}{s}"));
                    }
                }
                _ => {
                    names.insert(name.to_string());
                }
            }
        }
    }
    names
}

/// The exposition of a fresh registry with one sample in every family (a family without
/// samples has no `# TYPE` line), so names the live processes have not used yet count too.
fn every_family() -> String {
    use pki_issuer::controllers::metrics::{IssuedLabels, Metrics, SignerLabels};
    let m = Metrics::new();
    let issuer = SignerLabels {
        kind: "PKIIssuer".into(),
        namespace: "ns".into(),
        issuer: "i".into(),
    };
    m.issued
        .get_or_create(&IssuedLabels {
            kind: "CertificateRequest".into(),
            issuer: "PKIIssuer ns/i".into(),
        })
        .inc();
    m.fail(pki_issuer::api::reason::Reason::PolicyViolation);
    m.signer_expiry.get_or_create(&issuer).set(1.0);
    m.trust_anchor_expiry.get_or_create(&issuer).set(1.0);
    m.issuer_ready.get_or_create(&issuer).set(1);
    m.reconciled(
        "PKIIssuer",
        Duration::from_millis(1),
        Some(&pki_issuer::controllers::Error::NotLeader),
    );
    m.encode()
}

/// The metric names a PromQL expression uses: identifiers followed by `{`, or the known prefix.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphabetic() || bytes[i] == '_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '_') {
                i += 1;
            }
            let word: String = bytes[start..i].iter().collect();
            let quoted = start > 0 && bytes[start - 1] == '"';
            if !quoted
                && (word.starts_with("pki_issuer_") || (word == "up" && bytes.get(i) == Some(&'{')))
            {
                out.insert(word);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Every `expr` in the dashboard JSON.
fn dashboard_queries() -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(e)) = m.get("expr") {
                    out.push(e.clone());
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(repo().join("helm/pki-issuer/dashboards/pki-issuer.json"))
        .expect("dashboard JSON");
    let mut out = Vec::new();
    walk(
        &serde_json::from_str(&text).expect("dashboard is JSON"),
        &mut out,
    );
    out
}

async fn install_issuer(env: &Env, name: &str, root: &fixtures::Ca, int: &fixtures::Ca) {
    env.put_tls_secret(&env.ns, &format!("{name}-int"), &int.pem, &int.key_pem)
        .await;
    env.put_config_map(&env.ns, &format!("{name}-roots"), "roots.pem", &root.pem)
        .await;
    env.create_issuer(name, issuer_spec(name)).await;
}

fn issuer_spec(name: &str) -> Value {
    json!({
        "secret": {"name": format!("{name}-int")},
        "trustAnchors": {"configMap": {"name": format!("{name}-roots"), "key": "roots.pem"}},
        "policy": {"maxDuration": "24h", "dnsNames": ["*.{namespace}.svc"]},
    })
}

#[tokio::test]
async fn alerts_fire_against_a_real_prometheus() {
    if external() {
        crate::harness::skip(
            "prometheus::alerts_fire_against_a_real_prometheus",
            "needs local pki-issuer processes for Prometheus to scrape",
        );
        return;
    }
    let mut env = Env::start_opts("prom", false).await;
    let lns = env.cluster_ns.clone();
    for _ in 0..2 {
        env.start_controller(&["--leader-elect", "--leader-election-namespace", &lns])
            .await;
    }
    let targets = vec![
        env.admin_addr(0, "metrics").await,
        env.admin_addr(1, "metrics").await,
    ];
    let now = OffsetDateTime::now_utc();
    // "short": a signer valid 3 more days (both signer alerts), under a 10-year root.
    let root = fixtures::root("Long Root");
    let short =
        fixtures::intermediate_between(&root, "Short", now - Days::days(1), now + Days::days(3));
    install_issuer(&env, "short", &root, &short).await;
    // "anchor": a root valid 20 more days (30-day anchor alert only), signer 15 days.
    let young = fixtures::root_between("Young Root", now - Days::days(1), now + Days::days(20));
    let mid =
        fixtures::intermediate_between(&young, "Mid", now - Days::hours(1), now + Days::days(15));
    install_issuer(&env, "anchor", &young, &mid).await;
    // "broken": its Secret does not exist, so it is never Ready.
    env.create_issuer("broken", issuer_spec("broken")).await;
    env.wait_issuer_ready("short", false, "True").await;
    env.wait_issuer_ready("anchor", false, "True").await;
    env.wait_issuer_ready("broken", false, "False").await;
    // One certificate issued; then requests outside the policy fail with PolicyViolation.
    env.request_approved("ok", "short", &[&format!("ok.{}.svc", env.ns)], "1h")
        .await;
    env.wait_request_reason("ok", "Issued").await;
    env.request_approved("bad-0", "short", &["evil.example.com"], "1h")
        .await;
    env.wait_request_reason("bad-0", "Failed").await;

    let prom = Prometheus::start(env.dir.path(), &targets, &rules_with_for("2s")).await;
    // The first failure creates the series; the rate counts failures after Prometheus saw it.
    let up = prom.query("sum(up{job=\"pki-issuer\"})").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while prom
        .query("pki_issuer_requests_failed_total{reason=\"PolicyViolation\"}")
        .await
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failure series scraped; up: {up:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for i in 1..=12 {
        let name = format!("bad-{i}");
        env.request_approved(&name, "short", &["evil.example.com"], "1h")
            .await;
    }
    for i in 1..=12 {
        env.wait_request_reason(&format!("bad-{i}"), "Failed").await;
    }

    let ns = env.ns.clone();
    let issuer = |name: &'static str| [("namespace", ns.clone()), ("issuer", name.to_string())];
    for (alert, name) in [
        ("PKIIssuerSignerExpiringSoon", "short"),
        ("PKIIssuerSignerExpiryCritical", "short"),
        ("PKIIssuerSignerExpiringSoon", "anchor"),
        ("PKIIssuerTrustAnchorExpiringSoon", "anchor"),
        ("PKIIssuerNotReady", "broken"),
    ] {
        let l = issuer(name);
        let labels: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        prom.wait_firing(alert, &labels).await;
    }
    prom.wait_firing("PKIIssuerRequestsFailing", &[("reason", "PolicyViolation")])
        .await;
    // Give the silent ones several evaluations past their (shortened) `for`.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for (alert, labels) in [
        ("PKIIssuerSignerExpiryCritical", vec![("issuer", "anchor")]),
        ("PKIIssuerTrustAnchorExpiryCritical", vec![]),
        (
            "PKIIssuerTrustAnchorExpiringSoon",
            vec![("issuer", "short")],
        ),
        ("PKIIssuerNotReady", vec![("issuer", "short")]),
        ("PKIIssuerNotReady", vec![("issuer", "anchor")]),
        ("PKIIssuerVerificationFailed", vec![]),
        ("PKIIssuerSigningLatencyHigh", vec![]),
        ("PKIIssuerNoLeader", vec![]),
        ("PKIIssuerMultipleLeaders", vec![]),
        ("PKIIssuerDown", vec![]),
        ("PKIIssuerAbsent", vec![]),
    ] {
        prom.assert_silent(alert, &labels).await;
    }
    let leaders = prom.query("sum(pki_issuer_leader)").await;
    assert_eq!(
        leaders[0]["value"][1], "1",
        "one leader of two replicas: {leaders:?}"
    );
    assert_eq!(
        prom.query("pki_issuer_leader").await.len(),
        2,
        "both replicas scraped"
    );

    // Every dashboard query and every rule parses and runs in Prometheus and names only
    // metrics pki-issuer exports.
    let mut exported = exported_names(&every_family());
    for t in &targets {
        let (_, exposition) = crate::harness::http_get(t, "/metrics").await;
        exported.extend(exported_names(&exposition));
    }
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "dashboard queries: {queries:?}");
    let rules: Value = serde_yaml::from_str(&rules_with_for("2s")).unwrap();
    let rule_exprs: Vec<String> = rules["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect();
    for q in queries.iter().chain(&rule_exprs) {
        let names = metric_names(q);
        assert!(!names.is_empty(), "no metric in {q}");
        let unknown: Vec<_> = names.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{q} names {unknown:?}, not exported: {exported:?}"
        );
    }
    let mut with_data = 0;
    for q in &queries {
        let q = q.replace("$__rate_interval", "1m").replace("$job", ".*");
        with_data += usize::from(!prom.query(&q).await.is_empty());
    }
    assert!(
        with_data * 2 >= queries.len(),
        "most dashboard queries have data: {with_data}/{}",
        queries.len()
    );

    // A deleted issuer's series go, and with them its alert.
    kube::Api::<pki_issuer::api::PKIIssuer>::namespaced(env.client.clone(), &env.ns)
        .delete("broken", &Default::default())
        .await
        .expect("delete issuer broken");
    prom.wait_silent("PKIIssuerNotReady", &[("issuer", "broken")])
        .await;
    assert!(
        prom.query("pki_issuer_issuer_ready{issuer=\"broken\"}")
            .await
            .is_empty(),
        "the deleted issuer's series is gone"
    );

    // Both replicas stop: the target-down alert fires.
    env.terminate_controller(0).await;
    env.terminate_controller(1).await;
    prom.wait_firing("PKIIssuerDown", &[("job", "pki-issuer")])
        .await;
}
