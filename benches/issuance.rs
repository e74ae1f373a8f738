//! End-to-end issuance throughput: the real pki-issuer process against the in-process test
//! API server, N CertificateRequests created and approved at once, timed until all are Issued.
//! Prints certificates per second and latency percentiles.
//!
//! `cargo bench --bench issuance` (N defaults to 500; set BENCH_REQUESTS to change it)

#[path = "../e2e/tests/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
#[path = "../e2e/tests/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../e2e/tests/leak_scan.rs"]
#[allow(dead_code)]
mod leak_scan;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::watcher;
use kube::Api;
use pki_issuer::api::cert_manager::CertificateRequest;
use serde_json::json;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let env = harness::Env::start("bench").await;
    let root = fixtures::root("Bench Root");
    let int = fixtures::intermediate(&root, "Bench Intermediate");
    env.put_tls_secret(&env.ns, "int", &int.pem, &int.key_pem)
        .await;
    env.put_config_map(&env.ns, "roots", "roots.pem", &root.pem)
        .await;
    env.create_issuer(
        "bench",
        json!({"secret": {"name": "int"}, "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}},
               "policy": {"dnsNames": ["*.{namespace}.svc"]}}),
    )
    .await;
    env.wait_issuer_ready("bench", false, "True").await;
    let csrs: Vec<String> = (0..n)
        .map(|i| fixtures::csr(&[&format!("w{i}.{}.svc", env.ns)]).1)
        .collect();

    let api: Api<CertificateRequest> = Api::namespaced(env.client.clone(), &env.ns);
    let mut issued_at: HashMap<String, Instant> = HashMap::new();
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
    let started = Instant::now();
    let creator = async {
        futures::stream::iter(csrs.iter().enumerate())
            .for_each_concurrent(16, |(i, csr)| {
                let env = &env;
                async move {
                    let name = format!("r{i}");
                    env.create_request(
                        &name,
                        csr,
                        harness::issuer_ref("bench", "PKIIssuer"),
                        None,
                        &[],
                    )
                    .await;
                    env.set_approval(&name, true).await;
                }
            })
            .await;
    };
    let watch = async {
        while issued_at.len() < n {
            match tokio::time::timeout(Duration::from_secs(120), events.next()).await {
                Ok(Some(Ok(watcher::Event::Apply(cr) | watcher::Event::InitApply(cr)))) => {
                    let ready = cr.status.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                    });
                    if ready {
                        issued_at
                            .entry(cr.metadata.name.clone().unwrap())
                            .or_insert_with(Instant::now);
                    }
                }
                Ok(Some(_)) => {}
                _ => panic!(
                    "timed out with {}/{n} issued\n{}",
                    issued_at.len(),
                    env.logs()
                ),
            }
        }
    };
    tokio::join!(creator, watch);
    let total = started.elapsed();
    let mut latencies: Vec<Duration> = issued_at
        .values()
        .map(|t| t.duration_since(started))
        .collect();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "issuance/e2e {n} requests (create+approve+sign+verify+status write): {:.1} certs/s, all issued in {:.2?}; \
         time-to-issued from start p50 {:.2?} p99 {:.2?}",
        n as f64 / total.as_secs_f64(),
        total,
        pct(0.5),
        pct(0.99)
    );
}
