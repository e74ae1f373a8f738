//! `make bench-e2e`: the real pki-issuer process (release build) against the test API server,
//! with a P-256 PKIClusterIssuer:
//! * a burst: N CertificateRequests (default 10,000) created and approved as fast as the load
//!   generator can (64 in flight), timed until every one is Ready;
//! * a steady run: requests created and approved at a fixed rate (default 100/s for 30 s).
//!
//! Reports issued/s in the burst; create→Ready p50/p95/p99/max of both runs; the API requests
//! pki-issuer made per issued certificate by verb (the test API server counts requests per
//! user; pki-issuer runs as its own ServiceAccount); pki-issuer's CPU seconds per 1000
//! issuances; its peak RSS during the burst, its RSS with the N finished requests cached and
//! its idle RSS; the time from process start to `/readyz`; and the CPU share of the test API
//! server (its own runtime threads in this process) and of the load generator.
//! The last line is machine-readable:
//! `e2e-bench: <issued/s> issued/s burst, p99 <ms> ms at 100/s, <MiB> MiB peak RSS`.
//!
//! `cargo bench --bench issuance` (BENCH_REQUESTS, BENCH_RATE, BENCH_STEADY_SECONDS). Run
//! without `--bench` (as `cargo test --all-targets` does) it is a smoke run with 20 requests
//! and one second of steady load.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{PostParams, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::WatchEvent;
use kube::{Api, Client};
use pki_issuer::api::cert_manager::{CertificateRequest, CertificateRequestSpec, IssuerRef};
use pki_issuer::api::{Condition, PKIClusterIssuer};
use pki_issuer::pki::testutil::{self, CaOpts, KeyKind};
use serde_json::json;
use test_apiserver::TestApiServer;

const NS: &str = "bench";
const PKI_NS: &str = "pki";
const SA: &str = "pki-issuer";
const USAGES: [&str; 4] = [
    "digital signature",
    "key encipherment",
    "server auth",
    "client auth",
];

struct Settings {
    requests: usize,
    rate: f64,
    steady_secs: f64,
}

fn settings() -> Settings {
    let full = std::env::args().any(|a| a == "--bench");
    let var = |name: &str, full_default: f64, smoke: f64| -> f64 {
        if !full {
            return smoke;
        }
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(full_default)
    };
    Settings {
        requests: var("BENCH_REQUESTS", 10_000.0, 20.0) as usize,
        rate: var("BENCH_RATE", 100.0, 20.0),
        steady_secs: var("BENCH_STEADY_SECONDS", 30.0, 1.0),
    }
}

/// CPU seconds (user + system) of process `pid`, all threads.
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command; USER_HZ is 100.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of this process's threads whose name starts with `prefix`.
fn threads_cpu(prefix: &str) -> f64 {
    let mut total = 0.0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let sched = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        let ns: f64 = sched
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        total += ns / 1e9;
    }
    total
}

/// A `/proc/<pid>/status` field in MiB (VmRSS, VmHWM).
fn mem_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn client_for(path: &Path) -> Client {
    let kc = Kubeconfig::read_from(path).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("client config");
    Client::try_from(cfg).expect("client")
}

async fn create<K>(api: &Api<K>, obj: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(obj).expect("object");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create");
}

fn percentiles(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p(0.5),
        p(0.95),
        p(0.99),
        p(1.0)
    )
}

fn p99_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v.get(((v.len() as f64 - 1.0) * 0.99).round() as usize)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// When each request (by name) became Ready, as seen by one watch of the namespace.
type ReadyTimes = Arc<Mutex<HashMap<String, Instant>>>;

fn watch_ready(api: Api<CertificateRequest>, ready: ReadyTimes) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut rv = "0".to_string();
        loop {
            let wp = WatchParams::default().timeout(290);
            let mut stream = api.watch(&wp, &rv).await.expect("watch").boxed();
            while let Some(ev) = stream.next().await {
                let cr = match ev {
                    Ok(WatchEvent::Added(cr) | WatchEvent::Modified(cr)) => cr,
                    Ok(WatchEvent::Bookmark(b)) => {
                        rv = b.metadata.resource_version;
                        continue;
                    }
                    Ok(_) => continue,
                    Err(e) => panic!("watch: {e}"),
                };
                if let Some(v) = cr.metadata.resource_version.clone() {
                    rv = v;
                }
                let is_ready = cr.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                });
                if is_ready {
                    let now = Instant::now();
                    ready
                        .lock()
                        .unwrap()
                        .entry(cr.metadata.name.clone().unwrap_or_default())
                        .or_insert(now);
                }
            }
        }
    })
}

/// Create and approve one request (two API calls, as cert-manager and its approver make).
async fn request(api: &Api<CertificateRequest>, name: &str, csr: &str) {
    let mut cr = CertificateRequest::new(
        name,
        CertificateRequestSpec {
            request: csr.as_bytes().to_vec(),
            issuer_ref: IssuerRef {
                name: "bench".into(),
                kind: Some("PKIClusterIssuer".into()),
                group: Some("pki-issuer.io".into()),
            },
            usages: Some(USAGES.iter().map(|u| u.to_string()).collect()),
            username: Some(format!("system:serviceaccount:{NS}:workload")),
            ..Default::default()
        },
    );
    cr.metadata.namespace = Some(NS.into());
    let mut created = api
        .create(&PostParams::default(), &cr)
        .await
        .expect("create CertificateRequest");
    created
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .push(Condition::new(
            "Approved",
            true,
            "bench-approver",
            "approved by the benchmark",
        ));
    api.replace_status(name, &PostParams::default(), &created)
        .await
        .expect("approve");
}

async fn wait_all(ready: &ReadyTimes, names: &[String], limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    loop {
        let done = {
            let r = ready.lock().unwrap();
            names.iter().filter(|n| r.contains_key(*n)).count()
        };
        if done == names.len() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {done}/{} requests Ready after {limit:?}",
            names.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// pki-issuer's API requests since the last counter reset, per issued certificate, by verb.
fn requests_per_issuance(server: &TestApiServer, user: &str, issued: usize) -> String {
    let mut by: Vec<String> = server
        .faults()
        .request_counts_for(user)
        .into_iter()
        .map(|c| {
            let what = if c.subresource.is_empty() {
                c.resource
            } else {
                format!("{}/{}", c.resource, c.subresource)
            };
            format!(
                "{} {what} {:.3}",
                c.verb,
                c.count as f64 / issued.max(1) as f64
            )
        })
        .collect();
    by.sort();
    by.join(", ")
}

fn main() {
    let s = settings();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("apiserver")
        .enable_all()
        .build()
        .unwrap();
    let crds = |d: &str| Path::new(env!("CARGO_MANIFEST_DIR")).join(d);
    let server = server_rt
        .block_on(TestApiServer::start(test_apiserver::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            crd_dirs: vec![
                crds("e2e/testdata/cert-manager"),
                crds("helm/pki-issuer/crds"),
            ],
            authorization: true,
            history_window: 200_000,
            ..Default::default()
        }))
        .expect("test API server");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("loadgen")
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&s, &server, dir.path()));
    server_rt.block_on(server.shutdown());
}

async fn run(s: &Settings, server: &TestApiServer, dir: &Path) {
    let admin_path = dir.join("admin.kubeconfig");
    server.write_kubeconfig(&admin_path).unwrap();
    let admin = client_for(&admin_path).await;
    for ns in [NS, PKI_NS] {
        create::<Namespace>(&Api::all(admin.clone()), json!({"metadata": {"name": ns}})).await;
    }
    create::<ServiceAccount>(
        &Api::namespaced(admin.clone(), PKI_NS),
        json!({"metadata": {"name": SA}}),
    )
    .await;
    create::<ClusterRoleBinding>(
        &Api::all(admin.clone()),
        json!({"metadata": {"name": "pki-issuer-bench"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": PKI_NS}]}),
    )
    .await;
    let token = server
        .service_account_token(PKI_NS, SA)
        .expect("ServiceAccount token");
    let sa_path = dir.join("pki-issuer.kubeconfig");
    std::fs::write(&sa_path, server.kubeconfig_yaml(&token, None)).unwrap();
    let sa_user = format!("system:serviceaccount:{PKI_NS}:{SA}");

    let root = testutil::root(KeyKind::P384, "Bench Root");
    let int = testutil::ca(
        KeyKind::P256,
        "Bench Intermediate",
        Some(&root),
        CaOpts {
            path_len: Some(0),
            ..CaOpts::default()
        },
    );
    use base64::Engine;
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    create::<Secret>(
        &Api::namespaced(admin.clone(), PKI_NS),
        json!({"metadata": {"name": "int"}, "type": "kubernetes.io/tls",
               "data": {"tls.crt": b64(&int.pem), "tls.key": b64(&int.key_pem)}}),
    )
    .await;
    create::<ConfigMap>(
        &Api::namespaced(admin.clone(), PKI_NS),
        json!({"metadata": {"name": "roots"}, "data": {"roots.pem": root.pem}}),
    )
    .await;

    // pki-issuer: start → /readyz.
    let log_path = dir.join("pki-issuer.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pki-issuer"))
        .arg("--kubeconfig")
        .arg(&sa_path)
        .args([
            &format!("--cluster-resource-namespace={PKI_NS}"),
            "--log-format=text",
            "--metrics-addr=127.0.0.1:0",
            "--probe-addr=127.0.0.1:0",
        ])
        .env(
            "RUST_LOG",
            std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .stdout(std::process::Stdio::from(log.try_clone().unwrap()))
        .stderr(std::process::Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("start pki-issuer");
    let pid = child.id().expect("pid");
    let probe = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("pki-issuer starting")) {
            let at = line.find("probe=").expect("probe address") + "probe=".len();
            break line[at..].split_whitespace().next().unwrap().to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no startup line:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let readyz = loop {
        if http_ok(&probe, "/readyz").await {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };

    create::<PKIClusterIssuer>(
        &Api::all(admin.clone()),
        json!({"apiVersion": "pki-issuer.io/v1alpha1", "kind": "PKIClusterIssuer", "metadata": {"name": "bench"},
               "spec": {"secret": {"name": "int"},
                        "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}},
                        "policy": {"dnsNames": ["*.{namespace}.svc"]}}}),
    )
    .await;
    let issuers: Api<PKIClusterIssuer> = Api::all(admin.clone());
    loop {
        let ready = issuers.get("bench").await.ok().is_some_and(|i| {
            i.status.is_some_and(|st| {
                st.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        });
        if ready {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "issuer never Ready:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = mem_mib(pid, "VmRSS:");

    let steady_n = (s.rate * s.steady_secs).round() as usize;
    println!(
        "e2e-bench: generating {} CSRs (P-256, one DNS SAN each)",
        s.requests + steady_n
    );
    let csrs: Vec<String> = (0..s.requests + steady_n)
        .map(|i| {
            testutil::csr(KeyKind::P256, None, &[&format!("w{i}.{NS}.svc")])
                .1
                .pem()
                .unwrap()
        })
        .collect();
    let api: Api<CertificateRequest> = Api::namespaced(admin.clone(), NS);
    let ready: ReadyTimes = Arc::default();
    let watch = watch_ready(api.clone(), ready.clone());

    // Burst.
    server.faults().reset_counters();
    let cpu0 = process_cpu(pid);
    let srv0 = threads_cpu("apiserver");
    let gen0 = threads_cpu("loadgen");
    let names: Vec<String> = (0..s.requests).map(|i| format!("b{i}")).collect();
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let t0 = Instant::now();
    futures::stream::iter(names.iter().zip(&csrs))
        .for_each_concurrent(64, |(name, csr)| {
            let api = api.clone();
            let created = created.clone();
            async move {
                created.lock().unwrap().insert(name.clone(), Instant::now());
                request(&api, name, csr).await;
            }
        })
        .await;
    let created_all = t0.elapsed();
    wait_all(&ready, &names, Duration::from_secs(600), "burst").await;
    let last = names
        .iter()
        .map(|n| ready.lock().unwrap()[n])
        .max()
        .unwrap();
    let burst_wall = last.duration_since(t0);
    let burst_rate = s.requests as f64 / burst_wall.as_secs_f64();
    let cpu_burst = process_cpu(pid) - cpu0;
    let srv_burst = threads_cpu("apiserver") - srv0;
    let gen_burst = threads_cpu("loadgen") - gen0;
    let burst_lat: Vec<Duration> = {
        let r = ready.lock().unwrap();
        let c = created.lock().unwrap();
        names.iter().map(|n| r[n].duration_since(c[n])).collect()
    };
    let burst_requests = requests_per_issuance(server, &sa_user, s.requests);
    let peak_rss = mem_mib(pid, "VmHWM:");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cached_rss = mem_mib(pid, "VmRSS:");

    // Steady rate.
    server.faults().reset_counters();
    let steady_names: Vec<String> = (0..steady_n).map(|i| format!("s{i}")).collect();
    let created_steady: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let cpu1 = process_cpu(pid);
    let t1 = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / s.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for (name, csr) in steady_names.iter().zip(&csrs[s.requests..]) {
        tick.tick().await;
        let api = api.clone();
        let created = created_steady.clone();
        let (name, csr) = (name.clone(), csr.clone());
        tasks.push(tokio::spawn(async move {
            created.lock().unwrap().insert(name.clone(), Instant::now());
            request(&api, &name, &csr).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    wait_all(&ready, &steady_names, Duration::from_secs(120), "steady").await;
    let steady_wall = t1.elapsed();
    let cpu_steady = process_cpu(pid) - cpu1;
    let steady_lat: Vec<Duration> = {
        let r = ready.lock().unwrap();
        let c = created_steady.lock().unwrap();
        steady_names
            .iter()
            .map(|n| r[n].duration_since(c[n]))
            .collect()
    };
    let steady_requests = requests_per_issuance(server, &sa_user, steady_n);
    watch.abort();
    let _ = child.start_kill();
    let _ = child.wait().await;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "e2e-bench: {cores} cores, load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "e2e-bench: start → /readyz {:.0} ms; idle RSS {idle_rss:.1} MiB",
        readyz.as_secs_f64() * 1e3
    );
    println!(
        "e2e-bench burst: {} requests created+approved in {:.2} s, all Ready in {:.2} s: {burst_rate:.0} issued/s",
        s.requests,
        created_all.as_secs_f64(),
        burst_wall.as_secs_f64()
    );
    println!(
        "e2e-bench burst: create→Ready {}",
        percentiles(burst_lat.clone())
    );
    println!("e2e-bench burst: pki-issuer API requests per issued certificate: {burst_requests}");
    println!(
        "e2e-bench burst: pki-issuer CPU {:.2} s per 1000 issuances ({:.2} cores); test API server {:.2} cores; load generator {:.2} cores (of {cores})",
        cpu_burst / s.requests as f64 * 1000.0,
        cpu_burst / burst_wall.as_secs_f64(),
        srv_burst / burst_wall.as_secs_f64(),
        gen_burst / burst_wall.as_secs_f64(),
    );
    println!(
        "e2e-bench burst: pki-issuer peak RSS {peak_rss:.1} MiB; RSS with {} finished requests cached {cached_rss:.1} MiB",
        s.requests
    );
    println!(
        "e2e-bench steady: {steady_n} requests at {:.0}/s over {:.1} s: create→Ready {}",
        s.rate,
        steady_wall.as_secs_f64(),
        percentiles(steady_lat.clone())
    );
    println!("e2e-bench steady: pki-issuer API requests per issued certificate: {steady_requests}");
    println!(
        "e2e-bench steady: pki-issuer CPU {:.2} s per 1000 issuances",
        cpu_steady / steady_n.max(1) as f64 * 1000.0
    );
    println!(
        "e2e-bench: {burst_rate:.0} issued/s burst, p99 {:.1} ms at {:.0}/s, {peak_rss:.1} MiB peak RSS",
        p99_ms(steady_lat),
        s.rate
    );
}

/// Whether `GET http://addr/path` answers 200.
async fn http_ok(addr: &str, path: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200")
}
