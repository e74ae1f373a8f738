//! Reliability under faults (issue 13): bursts of approved requests while the API server drops
//! watches, expires resourceVersions, fails or delays writes, restarts; while pki-issuer is
//! SIGKILLed, its signer rotated, its remote CA down, malformed objects sit in the watch stream,
//! or two replicas contend for the lease.
//!
//! Every scenario asserts: every request ends `Issued` exactly once (one certificate, never
//! replaced) with a chain that `openssl verify` accepts, none stuck, none `Failed` (except the
//! intended `RetriesExhausted` variant). It reports requests signed more than once, the peak API
//! requests/s of pki-issuer (from the test API server's request log) and the time to drain.
//!
//! Short variants run in `make test`; `make chaos` (`E2E_FAULTS_LONG=1`) runs the long ones
//! (500 requests each, the fault durations). `E2E_FAULTS_REPORT=FILE` appends one JSON
//! line per scenario (the source of docs/reliability.md).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::ListParams;
use kube::Api;
use pki_issuer::api::cert_manager::CertificateRequest;
use serde_json::json;
use test_apiserver::{FaultSpec, Matcher};

use crate::cfssl::CfsslCa;
use crate::fixtures::{self, Ca};
use crate::harness::{external, issuer_ref, Env};

/// Whether the long (`make chaos`) variants run.
fn long() -> bool {
    std::env::var("E2E_FAULTS_LONG").is_ok_and(|v| v == "1")
}

/// Requests per burst: 500 long, 24 short.
fn burst_size() -> usize {
    if long() {
        500
    } else {
        24
    }
}

/// A duration from the issue (long) or its short stand-in.
fn secs(long_secs: u64, short_secs: u64) -> Duration {
    Duration::from_secs(if long() { long_secs } else { short_secs })
}

/// The faults scenarios need the in-process test API server (its fault injection); the real
/// kube-apiserver's own restarts are proven by `kube_faults`.
fn unsupported(test: &str) -> bool {
    if external() || crate::harness::kube() {
        crate::harness::skip(
            test,
            "fault injection needs the in-process test API server (kube-apiserver restarts are in kube_faults)",
        );
        return true;
    }
    false
}

/// Prefix of the users pki-issuer replicas authenticate as.
const PKI_USER: &str = "pki-issuer-";

/// One scenario's environment: the test API server, a root, an issuer `mesh`.
struct Scenario {
    env: Env,
    name: &'static str,
    root: Ca,
    /// The root chains are verified against.
    root_pem: String,
    replicas: usize,
}

impl Scenario {
    /// A server, the PKI and a PKIIssuer `mesh` (no controller yet).
    async fn new(name: &'static str) -> Scenario {
        let env = Env::start_opts(name, false).await;
        let root = fixtures::root("Example Corp Root CA");
        let int = fixtures::intermediate(&root, "Example Corp Mesh Intermediate");
        env.put_tls_secret(&env.ns, "mesh-intermediate", &int.pem, &int.key_pem)
            .await;
        env.put_config_map(&env.ns, "corp-roots", "roots.pem", &root.pem)
            .await;
        Scenario {
            env,
            name,
            root_pem: root.pem.clone(),
            root,
            replicas: 0,
        }
    }

    async fn create_mesh_issuer(&self) {
        self.env
            .create_issuer(
                "mesh",
                json!({
                    "secret": {"name": "mesh-intermediate"},
                    "trustAnchors": {"configMap": {"name": "corp-roots", "key": "roots.pem"}},
                    "policy": {"maxDuration": "24h", "dnsNames": ["*.{namespace}.svc"]},
                }),
            )
            .await;
    }

    /// Start a pki-issuer replica authenticating as its own user `pki-issuer-<n>`; returns
    /// its index.
    async fn start_replica(&mut self, extra: &[&str]) -> usize {
        let user = format!("{PKI_USER}{}", self.replicas);
        self.replicas += 1;
        let server = self.env.server.as_ref().expect("test API server");
        let token = server.user_token(&user, &["system:masters"]);
        let path = self.env.dir.path().join(format!("{user}.kubeconfig"));
        std::fs::write(&path, server.kubeconfig_yaml(&token, None)).unwrap();
        let mut args = vec![
            format!("--cluster-resource-namespace={}", self.env.cluster_ns),
            "--log-format=text".to_string(),
        ];
        if !extra.iter().any(|a| a.starts_with("--max-retry-duration")) {
            args.push("--max-retry-duration=5m".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        self.env
            .spawn_controller(&path, &args, &[("POD_NAME", &user)])
            .await
    }

    /// Fault injection on the test API server.
    fn faults(&self) -> test_apiserver::FaultInjector {
        self.env.server.as_ref().expect("test API server").faults()
    }

    /// Create `n` requests `r0..` for the issuer and approve them (16 at a time).
    async fn burst(&self, n: usize) {
        create_approved(&self.env, 0..n).await;
    }

    /// List the requests that deserialize (retrying while the API server is away).
    async fn list(&self) -> Vec<CertificateRequest> {
        let api: Api<kube::core::DeserializeGuard<CertificateRequest>> =
            Api::namespaced(self.env.client.clone(), &self.env.ns);
        for _ in 0..100 {
            match api.list(&ListParams::default()).await {
                Ok(l) => return l.items.into_iter().filter_map(|g| g.0.ok()).collect(),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        panic!("cannot list requests\n{}", self.env.logs());
    }

    /// Wait until all `n` requests are final (Ready reason Issued/Failed/Denied) or `limit`
    /// passes; returns the requests.
    async fn drain(&self, n: usize, limit: Duration) -> Vec<CertificateRequest> {
        let deadline = Instant::now() + limit;
        loop {
            let items = self.list().await;
            let done = items.iter().filter(|cr| final_reason(cr).is_some()).count();
            if (done == n && items.len() == n) || Instant::now() > deadline {
                return items;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Create requests `r<i>` for `range` for the issuer `mesh` and approve them, 16 at a time.
async fn create_approved(env: &Env, range: std::ops::Range<usize>) {
    let san = format!("w.{}.svc", env.ns);
    let (_, csr) = fixtures::csr(&[&san]);
    futures::stream::iter(range)
        .map(|i| {
            let csr = &csr;
            async move {
                let name = format!("r{i}");
                env.create_request(&name, csr, issuer_ref("mesh", "PKIIssuer"), None, &[])
                    .await;
                env.set_approval(&name, true).await;
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

/// The `Ready` reason when it is final.
fn final_reason(cr: &CertificateRequest) -> Option<String> {
    let c = cr
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?;
    let r = c.reason.clone().unwrap_or_default();
    (c.status == "True" || r == "Failed" || r == "Denied").then_some(r)
}

fn ready_message(cr: &CertificateRequest) -> String {
    cr.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.message.clone())
        .unwrap_or_default()
}

/// `key=value` from a text log line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {key}="))? + key.len() + 2;
    line[start..].split_whitespace().next()
}

/// Per request UID: serials signed, and serials written (from every replica's log).
fn signing_log(logs: &str) -> (HashMap<String, Vec<String>>, HashMap<String, Vec<String>>) {
    let mut signed: HashMap<String, Vec<String>> = HashMap::new();
    let mut written: HashMap<String, Vec<String>> = HashMap::new();
    for line in logs.lines() {
        let into = if line.contains("certificate signed") {
            &mut signed
        } else if line.contains("certificate issued") {
            &mut written
        } else {
            continue;
        };
        if let (Some(uid), Some(serial)) = (field(line, "uid"), field(line, "serial")) {
            into.entry(uid.to_string())
                .or_default()
                .push(serial.to_string());
        }
    }
    (signed, written)
}

fn serial_of(chain_pem: &str) -> String {
    let leaf = pem::parse(chain_pem).expect("chain PEM");
    pki_issuer::pki::cert_info(leaf.contents())
        .expect("leaf parses")
        .serial_hex
}

/// What one scenario measured.
#[derive(Debug, serde::Serialize)]
struct Report {
    scenario: String,
    variant: &'static str,
    requests: usize,
    faults: String,
    issued: usize,
    lost: usize,
    stuck: usize,
    failed: usize,
    signed_twice: usize,
    discarded: usize,
    peak_api_rps: u64,
    api_requests: usize,
    drain_seconds: f64,
    load_average: String,
}

impl Report {
    fn emit(&self) {
        let line = serde_json::to_string(self).unwrap();
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "FAULTS {line}");
        if let Some(path) = std::env::var_os("E2E_FAULTS_REPORT") {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "{line}");
            }
        }
    }
}

/// `openssl verify` every chain against `root`, using only the chain's own intermediates
/// (so a leaf under one intermediate shipped with another fails). Returns the failures.
fn verify_chains(env: &Env, root_pem: &str, chains: &[(String, String)]) -> Vec<String> {
    let mut by_intermediates: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (name, chain) in chains {
        let blocks = pem::parse_many(chain).expect("chain PEM");
        assert!(blocks.len() >= 2, "{name}: leaf and intermediate expected");
        let rest: String = blocks[1..].iter().map(pem::encode).collect();
        by_intermediates
            .entry(rest)
            .or_default()
            .push((name.clone(), pem::encode(&blocks[0])));
    }
    let dir = env.dir.path().join("verify");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("root.pem"), root_pem).unwrap();
    let mut failures = vec![];
    for (g, (ints, leaves)) in by_intermediates.iter().enumerate() {
        std::fs::write(dir.join(format!("ints-{g}.pem")), ints).unwrap();
        for batch in leaves.chunks(100) {
            let mut cmd = std::process::Command::new("openssl");
            cmd.args(["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile"])
                .arg(dir.join("root.pem"))
                .arg("-untrusted")
                .arg(dir.join(format!("ints-{g}.pem")));
            for (name, leaf) in batch {
                let p = dir.join(format!("{name}.pem"));
                std::fs::write(&p, leaf).unwrap();
                cmd.arg(p);
            }
            let out = cmd.output().expect("openssl");
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            for (name, _) in batch {
                let ok = format!("{name}.pem: OK");
                if !text.lines().any(|l| l.ends_with(&ok)) {
                    failures.push(format!("{name}: {text}"));
                }
            }
        }
    }
    failures
}

/// What a scenario expects of every request.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// `Issued`, exactly once, verifying chain.
    Issued,
    /// `Failed` with `RetriesExhausted`, no certificate.
    RetriesExhausted,
}

/// Check every request, count re-signings from the logs and the peak API rate of pki-issuer
/// between `t0_ms` and now; panic on any violation, else print and return the report.
fn check(
    sc: &Scenario,
    items: &[CertificateRequest],
    n: usize,
    expect: Expect,
    faults: &str,
    t0: Instant,
    t0_ms: u64,
) -> Report {
    let env = &sc.env;
    let drain = t0.elapsed();
    let logs = env.logs();
    let (signed, written) = signing_log(&logs);
    let mut stuck = vec![];
    let mut failed = vec![];
    let mut issued = 0;
    let mut chains = vec![];
    let mut signed_twice = 0;
    let mut discarded = 0;
    for cr in items {
        let name = cr.metadata.name.clone().unwrap_or_default();
        let uid = cr.metadata.uid.clone().unwrap_or_default();
        let st = cr.status.clone().unwrap_or_default();
        match final_reason(cr).as_deref() {
            None => stuck.push(format!("{name}: {}", ready_message(cr))),
            Some("Issued") => {
                issued += 1;
                let chain =
                    String::from_utf8(st.certificate.clone().expect("certificate")).expect("PEM");
                let serial = serial_of(&chain);
                let s = signed.get(&uid).cloned().unwrap_or_default();
                assert!(
                    s.contains(&serial),
                    "{name}: the written certificate {serial} is not one pki-issuer logged as signed: {s:?}"
                );
                let w = written.get(&uid).cloned().unwrap_or_default();
                assert!(
                    w.len() <= 1 && w.iter().all(|x| x == &serial),
                    "{name}: certificate written more than once or replaced: final {serial}, writes {w:?}"
                );
                if s.len() > 1 {
                    signed_twice += 1;
                    discarded += s.len() - 1;
                }
                chains.push((name, chain));
            }
            Some(r) => {
                assert!(st.certificate.is_none(), "{name}: {r} with a certificate");
                failed.push(format!("{name}: {r}: {}", ready_message(cr)));
            }
        }
    }
    let lost = n.saturating_sub(items.len());
    let log = sc.faults().request_log();
    let ours: Vec<_> = log
        .into_iter()
        .filter(|r| r.user.starts_with(PKI_USER) && r.at_ms >= t0_ms)
        .collect();
    let report = Report {
        scenario: sc.name.to_string(),
        variant: if long() { "long" } else { "short" },
        requests: n,
        faults: faults.to_string(),
        issued,
        lost,
        stuck: stuck.len(),
        failed: failed.len(),
        signed_twice,
        discarded,
        peak_api_rps: test_apiserver::peak_per_second(&ours, |_| true),
        api_requests: ours.len(),
        drain_seconds: (drain.as_secs_f64() * 10.0).round() / 10.0,
        load_average: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    };
    report.emit();
    assert_eq!(lost, 0, "requests lost");
    assert!(stuck.is_empty(), "stuck: {stuck:#?}\n{logs}");
    match expect {
        Expect::Issued => {
            assert!(failed.is_empty(), "failed: {failed:#?}");
            assert_eq!(issued, n);
            let bad = verify_chains(env, &sc.root_pem, &chains);
            assert!(bad.is_empty(), "chains that do not verify: {bad:#?}");
        }
        Expect::RetriesExhausted => {
            assert_eq!(
                issued, 0,
                "issued during an outage longer than the retry budget"
            );
            assert!(
                failed
                    .iter()
                    .all(|f| f.contains("RetriesExhausted") || f.contains("gave up")),
                "{failed:#?}"
            );
        }
    }
    // No hot loop: a burst never needs more than a few calls per second per request.
    let bound = 40 + 4 * n as u64;
    assert!(
        report.peak_api_rps <= bound,
        "peak {} API requests/s > {bound}",
        report.peak_api_rps
    );
    report
}

/// The common shape: set up, start one replica, wait for the issuer, inject `fault`, burst,
/// drain, clear faults, check.
async fn run_burst(
    name: &'static str,
    faults: &str,
    inject: impl FnOnce(&test_apiserver::FaultInjector),
) -> Report {
    let mut sc = Scenario::new(name).await;
    sc.create_mesh_issuer().await;
    sc.start_replica(&[]).await;
    sc.env.wait_issuer_ready("mesh", false, "True").await;
    let n = burst_size();
    let (t0, t0_ms) = (Instant::now(), test_apiserver::faults::now_ms());
    inject(&sc.faults());
    sc.burst(n).await;
    let items = sc.drain(n, secs(300, 90)).await;
    sc.faults().clear();
    check(&sc, &items, n, Expect::Issued, faults, t0, t0_ms)
}

/// Status patches of CertificateRequests by the first replica.
fn status_patches() -> Matcher {
    Matcher {
        verb: Some("patch".into()),
        resource: Some("certificaterequests".into()),
        subresource: Some("status".into()),
        user: Some(format!("{PKI_USER}0")),
        ..Default::default()
    }
}

#[tokio::test]
async fn faults_01_watches_dropped_every_2s() {
    if unsupported("faults_01") {
        return;
    }
    run_burst("f01-watch-drops", "every watch dropped every 2 s", |f| {
        f.every(Duration::from_secs(2), None, FaultSpec::DropWatches)
    })
    .await;
}

#[tokio::test]
async fn faults_02_resource_versions_expired() {
    if unsupported("faults_02") {
        return;
    }
    run_burst(
        "f02-410-gone",
        "history compacted and watches dropped every 1.5 s (watches and list continuations from older resourceVersions get 410 Gone)",
        |f| {
            f.every(
                Duration::from_millis(1500),
                None,
                FaultSpec::ExpireResourceVersions,
            );
            f.every(Duration::from_millis(1500), None, FaultSpec::DropWatches);
        },
    )
    .await;
}

#[tokio::test]
async fn faults_03_status_patches_fail_500_and_429() {
    if unsupported("faults_03") {
        return;
    }
    let window = secs(10, 5);
    let r = run_burst(
        "f03-500-429",
        &format!(
            "every status patch fails 500/429 (Retry-After: 1) for {} s",
            window.as_secs()
        ),
        |f| f.fail_with(status_patches(), vec![500, 429], false, None, Some(window)),
    )
    .await;
    assert_eq!(
        r.signed_twice, 0,
        "a failed write reuses the certificate already signed"
    );
}

#[tokio::test]
async fn faults_04_first_status_write_conflicts() {
    if unsupported("faults_04") {
        return;
    }
    let r = run_burst(
        "f04-409-first-write",
        "409 Conflict on the first status write of every request",
        |f| f.fail_with(status_patches(), vec![409], true, None, None),
    )
    .await;
    assert_eq!(
        r.signed_twice, 0,
        "a conflict re-reads, it does not re-sign"
    );
}

#[tokio::test]
async fn faults_05_latency_on_every_call() {
    if unsupported("faults_05") {
        return;
    }
    run_burst("f05-latency", "200 ms latency on every API call", |f| {
        f.add_latency(Matcher::default(), Duration::from_millis(200), None, None)
    })
    .await;
}

#[tokio::test]
async fn faults_06_api_server_restarted_with_state_kept() {
    if unsupported("faults_06") {
        return;
    }
    let mut sc = Scenario::new("f06-restart").await;
    sc.create_mesh_issuer().await;
    sc.start_replica(&[]).await;
    sc.env.wait_issuer_ready("mesh", false, "True").await;
    let n = burst_size();
    let (t0, t0_ms) = (Instant::now(), test_apiserver::faults::now_ms());
    sc.burst(n).await;
    let restarts = if long() { 3 } else { 1 };
    for _ in 0..restarts {
        tokio::time::sleep(Duration::from_millis(300)).await;
        sc.env
            .server
            .as_mut()
            .unwrap()
            .restart(Duration::from_secs(2))
            .await
            .expect("restart");
    }
    let items = sc.drain(n, secs(300, 90)).await;
    check(
        &sc,
        &items,
        n,
        Expect::Issued,
        &format!("test API server restarted {restarts}x mid-burst (2 s down, store kept)"),
        t0,
        t0_ms,
    );
    assert!(
        sc.env.try_wait_controller(0).is_none(),
        "pki-issuer reconnects without a restart of its own"
    );
}

#[tokio::test]
async fn faults_07_sigkill_and_restart_5_times() {
    if unsupported("faults_07") {
        return;
    }
    let mut sc = Scenario::new("f07-sigkill").await;
    sc.create_mesh_issuer().await;
    let mut current = sc.start_replica(&[]).await;
    sc.env.wait_issuer_ready("mesh", false, "True").await;
    let n = burst_size();
    let (t0, t0_ms) = (Instant::now(), test_apiserver::faults::now_ms());
    let mut kills = vec![];
    let creator = {
        let env = Env::view(&sc.env, &sc.env.ns);
        tokio::spawn(async move { create_approved(&env, 0..n).await })
    };
    for k in 0..5 {
        use rand::Rng;
        let wait = rand::rng().random_range(300..if long() { 4000 } else { 1500 });
        tokio::time::sleep(Duration::from_millis(wait)).await;
        sc.env.kill_controller(current).await;
        let done = sc
            .list()
            .await
            .iter()
            .filter(|cr| final_reason(cr).is_some())
            .count();
        kills.push(format!("kill {} at {wait} ms ({done} done)", k + 1));
        current = sc.start_replica(&[]).await;
    }
    creator.await.expect("burst");
    let items = sc.drain(n, secs(300, 90)).await;
    let r = check(
        &sc,
        &items,
        n,
        Expect::Issued,
        "pki-issuer SIGKILLed at random points and restarted, 5 times",
        t0,
        t0_ms,
    );
    eprintln!("{}: {kills:?}; signed twice: {}", sc.name, r.signed_twice);
}

#[tokio::test]
async fn faults_08_signer_rotated_during_burst() {
    if unsupported("faults_08") {
        return;
    }
    let mut sc = Scenario::new("f08-rotation").await;
    sc.create_mesh_issuer().await;
    sc.start_replica(&[]).await;
    sc.env.wait_issuer_ready("mesh", false, "True").await;
    let n = burst_size();
    let (t0, t0_ms) = (Instant::now(), test_apiserver::faults::now_ms());
    let int2 = fixtures::intermediate(&sc.root, "Example Corp Mesh Intermediate 2");
    let rotate = async {
        tokio::time::sleep(Duration::from_millis(if long() { 2000 } else { 400 })).await;
        sc.env
            .put_tls_secret(&sc.env.ns, "mesh-intermediate", &int2.pem, &int2.key_pem)
            .await;
    };
    futures::join!(sc.burst(n), rotate);
    let items = sc.drain(n, secs(300, 90)).await;
    check(
        &sc,
        &items,
        n,
        Expect::Issued,
        "signer Secret replaced by a new intermediate of the same root mid-burst",
        t0,
        t0_ms,
    );
    let new = items
        .iter()
        .filter(|cr| {
            let chain = String::from_utf8(cr.status.clone().unwrap().certificate.unwrap()).unwrap();
            chain.contains(int2.pem.trim())
        })
        .count();
    eprintln!("{}: {new}/{n} under the new intermediate", sc.name);
}

async fn remote_ca_outage(name: &'static str, max_retry: Option<&str>) {
    let mut sc = Scenario::new(name).await;
    let mut ca = CfsslCa::start(&sc.env).await;
    // The CFSSL CA's own root anchors this scenario.
    let root_pem = ca.root.pem.clone();
    sc.root_pem = root_pem.clone();
    sc.env
        .put_config_map(&sc.env.ns, "cfssl-roots", "roots.pem", &root_pem)
        .await;
    sc.env
        .create_issuer(
            "mesh",
            json!({
                "cfssl": {"url": ca.url(), "profile": "workload", "timeout": "2s"},
                "trustAnchors": {"configMap": {"name": "cfssl-roots", "key": "roots.pem"}},
                "policy": {"maxDuration": "48h", "dnsNames": ["*.{namespace}.svc"]},
                // The outage is shorter than the health interval: requests meet it, not the check.
                "healthCheckInterval": "1h",
            }),
        )
        .await;
    let mut extra = vec![format!("--allowed-remote-ca-urls={}", ca.url())];
    extra.extend(max_retry.map(|m| format!("--max-retry-duration={m}")));
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    sc.start_replica(&extra).await;
    sc.env.wait_issuer_ready("mesh", false, "True").await;
    // The Ready write itself triggers one more check of the issuer (it calls CFSSL `info`);
    // let it finish first, or under load it meets the outage and the issuer goes Pending.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let n = burst_size();
    let outage = secs(30, 6);
    let (t0, t0_ms) = (Instant::now(), test_apiserver::faults::now_ms());
    ca.stop().await;
    sc.burst(n).await;
    // While the CA is down, requests say they will retry.
    let deadline = Instant::now() + Duration::from_secs(20);
    let pending = loop {
        let items = sc.list().await;
        let p = items
            .iter()
            .filter(|cr| ready_message(cr).contains("will retry"))
            .count();
        if p > 0 || Instant::now() > deadline {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        pending > 0,
        "no request said it will retry\n{}",
        sc.env.logs()
    );
    tokio::time::sleep(outage.saturating_sub(t0.elapsed())).await;
    ca.resume().await;
    let items = sc.drain(n, secs(300, 90)).await;
    let expect = if max_retry.is_some() {
        Expect::RetriesExhausted
    } else {
        Expect::Issued
    };
    check(
        &sc,
        &items,
        n,
        expect,
        &format!(
            "CFSSL down {} s mid-burst{}",
            outage.as_secs(),
            max_retry
                .map(|m| format!(", --max-retry-duration={m}"))
                .unwrap_or_default()
        ),
        t0,
        t0_ms,
    );
}

#[tokio::test]
async fn faults_09_remote_ca_down_then_back() {
    if unsupported("faults_09") {
        return;
    }
    remote_ca_outage("f09-cfssl-down", None).await;
}

#[tokio::test]
async fn faults_09b_remote_ca_down_longer_than_retry_budget() {
    if unsupported("faults_09b") {
        return;
    }
    remote_ca_outage(
        "f09b-cfssl-retries-exhausted",
        Some(if long() { "10s" } else { "2s" }),
    )
    .await;
}

#[tokio::test]
async fn faults_10_malformed_objects_in_the_watch_stream() {
    if unsupported("faults_10") {
        return;
    }
    let mut sc = Scenario::new("f10-malformed").await;
    sc.create_mesh_issuer().await;
    let server = sc.env.server.as_ref().unwrap();
    let ns = sc.env.ns.clone();
    // Wrong types inside fields, written past validation.
    server
        .put_raw(
            "pki-issuer.io",
            "v1alpha1",
            "pkiissuers",
            &ns,
            json!({"metadata": {"name": "broken"}, "spec": {"secret": {"name": 42}, "trustAnchors": "nope"}}),
        )
        .expect("raw PKIIssuer");
    server
        .put_raw(
            "cert-manager.io",
            "v1",
            "certificaterequests",
            &ns,
            json!({"metadata": {"name": "broken-request"}, "spec": {"request": 42, "issuerRef": {"name": ["mesh"], "group": "pki-issuer.io", "kind": "PKIIssuer"}}}),
        )
        .expect("raw CertificateRequest");
    sc.start_replica(&[]).await;
    sc.env.wait_issuer_ready("mesh", false, "True").await;
    let n = burst_size();
    let (t0, t0_ms) = (Instant::now(), test_apiserver::faults::now_ms());
    sc.burst(n).await;
    let items = sc.drain(n, secs(300, 90)).await;
    check(
        &sc,
        &items,
        n,
        Expect::Issued,
        "a PKIIssuer and a CertificateRequest with wrong field types in the stream",
        t0,
        t0_ms,
    );
    // Both bad objects are reported with an Event naming the problem.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(sc.env.client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = events.list(&ListParams::default()).await.unwrap();
        let reported: Vec<(String, String)> = list
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("InvalidObject"))
            .map(|e| {
                let r = e.regarding.clone().unwrap_or_default();
                (
                    format!(
                        "{}/{}",
                        r.kind.unwrap_or_default(),
                        r.name.unwrap_or_default()
                    ),
                    e.note.clone().unwrap_or_default(),
                )
            })
            .collect();
        let has = |k: &str| {
            reported
                .iter()
                .any(|(o, note)| o == k && note.to_lowercase().contains("invalid type"))
        };
        if has("PKIIssuer/broken") && has("CertificateRequest/broken-request") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "bad objects not reported: {reported:?}\n{}",
            sc.env.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        sc.env.try_wait_controller(0).is_none(),
        "pki-issuer kept running"
    );
}

#[tokio::test]
async fn faults_11_leader_election_under_drops_and_latency() {
    if unsupported("faults_11") {
        return;
    }
    let mut sc = Scenario::new("f11-leader").await;
    sc.create_mesh_issuer().await;
    let leader_args = ["--leader-elect", "--leader-election-namespace"];
    let lns = sc.env.cluster_ns.clone();
    let args = [leader_args[0], leader_args[1], lns.as_str()];
    sc.start_replica(&args).await;
    sc.env.wait_issuer_ready("mesh", false, "True").await;
    sc.start_replica(&args).await;
    let f = sc.faults();
    f.every(Duration::from_secs(2), None, FaultSpec::DropWatches);
    f.add_latency(Matcher::default(), Duration::from_millis(200), None, None);
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(sc.env.client.clone(), &lns);
    let holder = || async {
        leases
            .get("pki-issuer-leader")
            .await
            .ok()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .unwrap_or_default()
    };
    let first = holder().await;
    assert!(first.starts_with(PKI_USER), "leader: {first:?}");
    let n = burst_size();
    let (t0, t0_ms) = (Instant::now(), test_apiserver::faults::now_ms());
    let half = n / 2;
    sc.burst(half).await;
    // The leader loses its lease: every Lease call of its user fails from now on.
    let lost_at_ms = test_apiserver::faults::now_ms();
    f.fail(
        Matcher {
            resource: Some("leases".into()),
            user: Some(first.clone()),
            ..Default::default()
        },
        500,
        None,
        None,
    );
    // Requests keep arriving while the lease runs out, so both replicas have work when it
    // changes hands.
    let mut next = half;
    let deadline = Instant::now() + Duration::from_secs(60);
    while holder().await == first && next < n {
        assert!(
            Instant::now() < deadline,
            "the standby never took over\n{}",
            sc.env.logs()
        );
        create_approved(&sc.env, next..next + 1).await;
        next += 1;
        tokio::time::sleep(Duration::from_millis(if long() { 100 } else { 400 })).await;
    }
    create_approved(&sc.env, next..n).await;
    let items = sc.drain(n, secs(300, 120)).await;
    f.clear();
    let second = holder().await;
    let lease = leases.get("pki-issuer-leader").await.unwrap();
    let acquired_ms = lease
        .spec
        .as_ref()
        .and_then(|s| s.acquire_time.as_ref())
        .map(|t| t.0.as_millisecond() as u64)
        .unwrap_or_default();
    check(
        &sc,
        &items,
        n,
        Expect::Issued,
        "2 replicas, watches dropped every 2 s, 200 ms latency, the leader's Lease calls fail mid-burst",
        t0,
        t0_ms,
    );
    assert_ne!(second, first, "the standby took over");
    // Only the leader writes: the first leader's writes stop before the standby acquired,
    // the standby writes nothing before it acquired.
    let writes: Vec<_> = f
        .request_log()
        .into_iter()
        .filter(|r| {
            matches!(r.verb.as_str(), "create" | "update" | "patch" | "delete")
                && r.resource != "leases"
                && r.user.starts_with(PKI_USER)
        })
        .collect();
    let last_old = writes
        .iter()
        .filter(|r| r.user == first)
        .map(|r| r.at_ms)
        .max()
        .unwrap_or_default();
    let first_new = writes
        .iter()
        .filter(|r| r.user == second)
        .map(|r| r.at_ms)
        .min()
        .unwrap_or(u64::MAX);
    assert!(
        last_old < acquired_ms,
        "the old leader wrote at {last_old} after the standby acquired at {acquired_ms} (lease lost at {lost_at_ms})\n{}",
        sc.env.logs()
    );
    assert!(
        first_new >= acquired_ms,
        "the standby wrote at {first_new} before it acquired at {acquired_ms}"
    );
    let old = first.trim_start_matches(PKI_USER).parse::<usize>().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = sc.env.try_wait_controller(old) {
            break status;
        }
        assert!(Instant::now() < deadline, "the old leader kept running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!status.success(), "a lost lease exits non-zero: {status:?}");
    eprintln!(
        "{}: lease calls failed at +0 ms; old leader's last write at {:+} ms; standby acquired at {:+} ms",
        sc.name,
        last_old as i64 - lost_at_ms as i64,
        acquired_ms as i64 - lost_at_ms as i64
    );
}
