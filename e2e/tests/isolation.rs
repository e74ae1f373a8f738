//! One tenant cannot stall another (security classes "signer-chain work" and "hanging remote
//! CA"): while hostile issuers run, another tenant's Secret-backed requests are each issued
//! within [`BOUND`] of their approval.
//!
//! * Chain attacks, each in a hostile tenant's own namespace and PKIIssuer: a `tls.crt` with a
//!   signer under a chain of 300 CA certificates sharing one subject, listed farthest first (a
//!   few hundred KiB: n² signature checks for a greedy path search), the same with 9 (within
//!   the size limits), a trust-anchor bundle of 250 certificates named like the signer's
//!   issuer, a deep chain with decoy anchors at every step, and Secret churn that re-triggers
//!   the checks all the time.
//! * Hanging CAs: several issuers (spelling the URL differently) on one fake CFSSL that never
//!   answers `sign`, plus two more hanging CAs, each with many approved requests; the CAs see
//!   at most `--remote-calls-per-endpoint` calls each and `--remote-calls-total` together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::fake_ca::{FakeCa, Mode};
use crate::fixtures::{self, Ca};
use crate::harness::{external, skip, visible, Env};

/// The latest a victim's request may be issued after its approval while the attacks run.
const BOUND: Duration = Duration::from_secs(2);
/// Victim requests measured per phase.
const SAMPLES: usize = 8;

/// A Secret-backed PKIIssuer `victim` in the test namespace; returns its root.
async fn victim(env: &Env) -> Ca {
    let root = fixtures::root("Victim Root CA");
    let int = fixtures::intermediate(&root, "Victim Intermediate");
    env.put_tls_secret(&env.ns, "victim-int", &int.pem, &int.key_pem)
        .await;
    env.put_config_map(&env.ns, "victim-roots", "roots.pem", &root.pem)
        .await;
    env.create_issuer(
        "victim",
        json!({
            "secret": {"name": "victim-int"},
            "trustAnchors": {"configMap": {"name": "victim-roots", "key": "roots.pem"}},
            "policy": {"maxDuration": "24h", "dnsNames": ["*.{namespace}.svc"]},
        }),
    )
    .await;
    env.wait_issuer_ready("victim", false, "True").await;
    root
}

/// Rotate the victim's signer three times; each time, how long until its issuer reports the
/// new signer (its check shares the issuer controller with the hostile tenant's checks).
async fn rotation_latencies(env: &Env, root: &Ca, phase: &str) -> Vec<Duration> {
    let api: kube::Api<pki_issuer::api::PKIIssuer> =
        kube::Api::namespaced(env.client.clone(), &env.ns);
    let mut out = Vec::new();
    for i in 0..3 {
        let cn = format!("Victim Intermediate {phase} {i}");
        let int = fixtures::intermediate(root, &cn);
        let started = Instant::now();
        env.put_tls_secret(&env.ns, "victim-int", &int.pem, &int.key_pem)
            .await;
        loop {
            let status = api.get("victim").await.expect("get victim").status;
            if status
                .and_then(|s| s.signer)
                .is_some_and(|s| s.subject.contains(&cn))
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the victim's issuer never picked up its new signer\n{}",
                env.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        out.push(started.elapsed());
    }
    out
}

/// Issue `SAMPLES` victim requests one after the other; each one's approval-to-Issued time.
async fn victim_latencies(env: &Env, phase: &str) -> Vec<Duration> {
    let mut out = Vec::new();
    for i in 0..SAMPLES {
        let name = format!("{phase}-{i}");
        let san = format!("{name}.{}.svc", env.ns);
        let (_, csr) = fixtures::csr(&[&san]);
        env.create_request(
            &name,
            &csr,
            crate::harness::issuer_ref("victim", "PKIIssuer"),
            Some("1h"),
            &[],
        )
        .await;
        let started = Instant::now();
        env.set_approval(&name, true).await;
        env.wait_request_reason(&name, "Issued").await;
        out.push(started.elapsed());
    }
    out
}

fn report(phase: &str, latencies: &[Duration]) -> Duration {
    let max = latencies.iter().max().copied().unwrap_or_default();
    let mean = latencies.iter().sum::<Duration>() / latencies.len().max(1) as u32;
    visible(&format!(
        "isolation: {phase}: mean {mean:?}, max {max:?} over {} samples (bound {BOUND:?})",
        latencies.len()
    ));
    max
}

/// A CA named `cn` under `parent` (pathLen unconstrained), with a fresh key.
fn ca_under(parent: &Ca, cn: &str) -> Ca {
    fixtures::intermediate_with(parent, cn, None, vec![])
}

/// A signer under `n` chained CA certificates all named "Tenant CA" (the last one under
/// `root`), as `tls.crt` listing them farthest first, and the signer's key.
fn same_name_chain(root: &Ca, n: usize) -> (String, String) {
    let mut cas = vec![ca_under(root, "Tenant CA")];
    for _ in 1..n {
        let next = ca_under(cas.last().unwrap(), "Tenant CA");
        cas.push(next);
    }
    let signer = fixtures::intermediate(cas.last().unwrap(), "Tenant Signer");
    let crt = std::iter::once(signer.pem.clone())
        .chain(cas.iter().map(|c| c.pem.clone()))
        .collect();
    (crt, signer.key_pem)
}

/// Create the chain-attack issuers in `ns`; returns the Secrets to churn.
async fn chain_attacks(env: &Env, ns: &str) -> Vec<(String, String, String)> {
    let tenant = Env::view(env, ns);
    let root = fixtures::root("Tenant Root");
    let signer = fixtures::intermediate(&root, "Tenant Signer");
    let mut secrets = Vec::new();
    env.put_config_map(ns, "roots", "roots.pem", &root.pem)
        .await;
    // 1. tls.crt: a signer under a chain of 300 CA certificates that all share one subject,
    // listed farthest first, so a greedy path search tries every one at every step (n²).
    let (long, long_key) = same_name_chain(&root, 300);
    assert!(long.len() > 150 * 1024, "a few hundred KiB: {}", long.len());
    // 1b. The same shape with 9 certificates: within the size limits, over the candidates.
    let (named, named_key) = same_name_chain(&root, 9);
    // 2. Trust anchors: 250 CA certificates with the signer's issuer name and other keys, none
    // the real root.
    let other = fixtures::root("Other Root");
    let anchors: String = (0..250)
        .map(|_| ca_under(&other, "Tenant Root").pem)
        .collect();
    env.put_config_map(ns, "many-roots", "roots.pem", &anchors)
        .await;
    // 3. A deep chain with 7 decoy anchors named like every issuer on it.
    let mut chain = vec![ca_under(&root, "Level 1")];
    for l in 2..=5 {
        let next = ca_under(chain.last().unwrap(), &format!("Level {l}"));
        chain.push(next);
    }
    let deep_signer = fixtures::intermediate(chain.last().unwrap(), "Deep Signer");
    let mut decoys = String::new();
    for l in 1..=5 {
        for _ in 0..7 {
            decoys.push_str(&ca_under(&other, &format!("Level {l}")).pem);
        }
    }
    decoys.push_str(&root.pem);
    env.put_config_map(ns, "decoy-roots", "roots.pem", &decoys)
        .await;
    let deep: String = std::iter::once(deep_signer.pem.clone())
        .chain(chain.iter().rev().map(|c| c.pem.clone()))
        .collect();
    let cases = [
        ("long", long, long_key, "roots", "at most 65536 bytes"),
        ("named", named, named_key, "roots", "at most 8 are tried"),
        (
            "anchors",
            signer.pem.clone(),
            signer.key_pem.clone(),
            "many-roots",
            "at most 8 are tried",
        ),
        (
            "deep",
            deep,
            deep_signer.key_pem.clone(),
            "decoy-roots",
            "within 32 signature checks",
        ),
    ];
    for (name, crt, key, roots, _) in &cases {
        env.put_tls_secret(ns, name, crt, key).await;
        tenant
            .create_issuer(
                name,
                json!({
                    "secret": {"name": name},
                    "trustAnchors": {"configMap": {"name": roots, "key": "roots.pem"}},
                }),
            )
            .await;
        secrets.push((name.to_string(), crt.clone(), key.clone()));
    }
    for (name, _, _, _, want) in &cases {
        let (reason, message) = tenant.wait_issuer_ready(name, false, "False").await;
        assert_eq!(reason, "Failed", "{name}: {message}");
        assert!(
            message.contains("certificate chain refused") && message.contains(want),
            "{name}: the issuer names the limit: {message}"
        );
    }
    secrets
}

/// Rewrite the hostile Secrets (a new `nonce` key each time) so their issuers are checked
/// again and again, until the returned handle is aborted.
fn churn(
    env: &Env,
    ns: &str,
    secrets: Vec<(String, String, String)>,
) -> tokio::task::JoinHandle<()> {
    let tenant = Env::view(env, ns);
    tokio::spawn(async move {
        for n in 0.. {
            for (name, crt, key) in &secrets {
                let nonce = n.to_string();
                tenant
                    .put_secret(
                        &tenant.ns,
                        name,
                        &[("tls.crt", crt), ("tls.key", key), ("nonce", &nonce)],
                    )
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// Hanging CAs: one shared by four issuers (different spellings of its URL), two more with two
/// issuers each; six approved requests per issuer.
async fn hanging_issuers(env: &Env, ns: &str, cas: &[FakeCa], root: &Ca) {
    let tenant = Env::view(env, ns);
    tenant
        .put_config_map(ns, "ca-roots", "roots.pem", &root.pem)
        .await;
    let mut issuers = Vec::new();
    let first = cas[0].url();
    for (i, url) in [
        first.clone(),
        format!("{first}/"),
        format!("{first}/team-a"),
        format!("{first}/team-b"),
    ]
    .iter()
    .enumerate()
    {
        issuers.push((format!("hang-a{i}"), url.clone()));
    }
    for (c, ca) in cas.iter().enumerate().skip(1) {
        for i in 0..2 {
            issuers.push((format!("hang-{c}-{i}"), ca.url()));
        }
    }
    for (name, url) in &issuers {
        tenant
            .create_issuer(
                name,
                json!({
                    "cfssl": {"url": url, "profile": "workload", "timeout": "60s"},
                    "trustAnchors": {"configMap": {"name": "ca-roots", "key": "roots.pem"}},
                    "policy": {"maxDuration": "48h", "dnsNames": ["*.{namespace}.svc"]},
                }),
            )
            .await;
    }
    for (name, _) in &issuers {
        tenant.wait_issuer_ready(name, false, "True").await;
        for r in 0..6 {
            let req = format!("{name}-r{r}");
            let san = format!("{req}.{ns}.svc");
            tenant.request_approved(&req, name, &[&san], "1h").await;
        }
    }
}

/// The hanging-CA scenarios' setup: the attacker's namespace, 3 hanging fake CAs, a
/// controller allowed to use them, and the victim's issuer.
async fn with_hanging_cas(env: &mut Env) -> (String, Ca, Vec<FakeCa>) {
    let evil = format!("{}-evil", env.ns);
    env.create_namespace(&evil).await;
    let (root, cas) = start_hanging_cas(3).await;
    let urls: Vec<String> = cas.iter().map(FakeCa::url).collect();
    let url_refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    env.start_controller_allowing(&url_refs).await;
    victim(env).await;
    (evil, root, cas)
}

async fn start_hanging_cas(n: usize) -> (Ca, Vec<FakeCa>) {
    let root = fixtures::root("Remote Root CA");
    let int = Arc::new(fixtures::intermediate(&root, "Remote CFSSL Intermediate"));
    let mut cas = Vec::new();
    for _ in 0..n {
        cas.push(FakeCa::start(int.clone(), Mode::Hang).await);
    }
    (root, cas)
}

/// The default limits: 16 workers, 4 calls per endpoint, 8 in total.
fn check_in_flight(cas: &[FakeCa]) {
    let each: Vec<usize> = cas.iter().map(|c| c.calls.max()).collect();
    visible(&format!(
        "isolation: most sign calls in flight per hanging CA: {each:?}"
    ));
    assert!(
        each.iter().all(|n| *n <= 4),
        "at most 4 per endpoint: {each:?}"
    );
    assert!(each[0] >= 1, "the shared hanging CA was called: {each:?}");
    assert!(
        each.iter().sum::<usize>() <= 8,
        "at most 8 in total: {each:?}"
    );
}

async fn waiting_messages(env: &Env, ns: &str) -> usize {
    let tenant = Env::view(env, ns);
    let mut waiting = 0;
    for i in 0..4 {
        for r in 0..6 {
            let cr = tenant.request(&format!("hang-a{i}-r{r}")).await;
            let ready = cr
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
            let msg = ready.and_then(|c| c.message.as_deref()).unwrap_or_default();
            if msg.contains("already in flight") {
                waiting += 1;
            }
        }
    }
    waiting
}

fn needs_local_flags(test: &str) -> bool {
    if external() {
        skip(
            test,
            "needs the local controller's --allowed-remote-ca-urls and limits",
        );
    }
    external()
}

#[tokio::test]
async fn a_tenants_hostile_signer_chains_do_not_delay_another_tenants_issuance() {
    let env = Env::start("iso-chain").await;
    let evil = format!("{}-evil", env.ns);
    env.create_namespace(&evil).await;
    let root = victim(&env).await;
    let baseline = victim_latencies(&env, "base").await;
    report("baseline victim issuance", &baseline);
    report(
        "baseline signer rotation",
        &rotation_latencies(&env, &root, "base").await,
    );
    let secrets = chain_attacks(&env, &evil).await;
    let churning = churn(&env, &evil, secrets);
    let attacked = victim_latencies(&env, "chain").await;
    let rotated = rotation_latencies(&env, &root, "chain").await;
    churning.abort();
    let max = report(
        "victim issuance under chain attacks + Secret churn",
        &attacked,
    );
    let max_rotation = report(
        "victim signer rotation under chain attacks + churn",
        &rotated,
    );
    assert!(
        max_rotation < BOUND,
        "the victim's issuer check took {max_rotation:?} under the chain attacks\n{}",
        env.logs()
    );
    assert!(
        max < BOUND,
        "victim issuance took {max:?} under the chain attacks\n{}",
        env.logs()
    );
}

#[tokio::test]
async fn issuers_on_hanging_cas_hold_bounded_workers_and_secret_issuers_keep_issuing() {
    let test = "issuers_on_hanging_cas_hold_bounded_workers_and_secret_issuers_keep_issuing";
    let mut env = Env::start_opts("iso-hang", false).await;
    if needs_local_flags(test) {
        return;
    }
    let (evil, root, cas) = with_hanging_cas(&mut env).await;
    hanging_issuers(&env, &evil, &cas, &root).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attacked = victim_latencies(&env, "hang").await;
    let max = report(
        "victim issuance with 48 requests of 8 issuers on 3 hanging CAs",
        &attacked,
    );
    check_in_flight(&cas);
    assert!(
        waiting_messages(&env, &evil).await >= 1,
        "requests beyond the slots wait Pending, naming the limit\n{}",
        env.logs()
    );
    assert!(
        max < BOUND,
        "victim issuance took {max:?} with hanging CAs\n{}",
        env.logs()
    );
}

#[tokio::test]
async fn both_attacks_at_once_still_leave_another_tenants_issuance_within_the_bound() {
    let test = "both_attacks_at_once_still_leave_another_tenants_issuance_within_the_bound";
    let mut env = Env::start_opts("iso-both", false).await;
    if needs_local_flags(test) {
        return;
    }
    let (evil, root, cas) = with_hanging_cas(&mut env).await;
    let secrets = chain_attacks(&env, &evil).await;
    let churning = churn(&env, &evil, secrets);
    hanging_issuers(&env, &evil, &cas, &root).await;
    let attacked = victim_latencies(&env, "both").await;
    churning.abort();
    let max = report(
        "victim issuance under chain attacks + churn + hanging CAs",
        &attacked,
    );
    check_in_flight(&cas);
    assert!(
        max < BOUND,
        "victim issuance took {max:?} under both attacks\n{}",
        env.logs()
    );
}

#[tokio::test]
async fn oversized_policy_lists_are_refused_by_the_api_server() {
    let env = Env::start_opts("iso-lists", false).await;
    let many = |n: usize| -> Vec<String> { (0..n).map(|i| format!("n{i}.example.com")).collect() };
    let long = format!("spiffe://cluster.local/{}", "a".repeat(1100));
    let cases = [
        ("dns", json!({"dnsNames": many(257)}), "at most 256 items"),
        ("uris", json!({"uris": [long]}), "1024"),
        (
            "ips",
            json!({"ipRanges": vec!["10.0.0.0/8"; 257]}),
            "at most 256 items",
        ),
        (
            "usages",
            json!({"usages": vec!["server auth"; 33]}),
            "at most 32 items",
        ),
    ];
    for (name, policy, want) in cases {
        let api: kube::Api<pki_issuer::api::PKIIssuer> =
            kube::Api::namespaced(env.client.clone(), &env.ns);
        let obj = json!({"apiVersion": "pki-issuer.io/v1alpha1", "kind": "PKIIssuer",
            "metadata": {"name": name},
            "spec": {"secret": {"name": "s"},
                     "trustAnchors": {"configMap": {"name": "r", "key": "roots.pem"}},
                     "policy": policy}});
        let obj: pki_issuer::api::PKIIssuer = serde_json::from_value(obj).unwrap();
        match api.create(&Default::default(), &obj).await {
            Err(kube::Error::Api(e)) => {
                assert_eq!(e.code, 422, "{name}: {e:?}");
                assert!(e.message.contains(want), "{name}: {}", e.message);
            }
            other => panic!("{name}: an oversized list was accepted: {other:?}"),
        }
    }
}
