//! The Helm chart, proven with RBAC on (on the test API server and on the real kube-apiserver):
//! its rendered manifests are applied with kubectl, pki-issuer runs with the chart's
//! ServiceAccount token (TokenRequest) and the Deployment's own arguments, two replicas elect a
//! leader, and removing one RBAC rule breaks issuance.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

use crate::fixtures;
use crate::harness::{issuer_ref, Env};

pub(crate) const RELEASE_NS: &str = "pki-issuer";
pub(crate) const TEAM_NS: &str = "team-a";

/// Render the chart with the real Helm engine (value set `e2e`) and return its manifests.
pub fn render(env: &Env) -> String {
    let out = env.dir.path().join("chart");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new("bash")
        .arg(root.join("e2e/scripts/render-chart.sh"))
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("bash");
    assert!(
        status.success(),
        "rendering the chart failed (see e2e/scripts/render-chart.sh)"
    );
    std::fs::read_to_string(out.join("e2e.yaml")).expect("rendered e2e.yaml")
}

pub fn docs(yaml: &str) -> Vec<serde_json::Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .filter(|v: &serde_json::Value| v.is_object())
        .collect()
}

/// The container arguments of the chart's Deployment.
fn deployment_args(manifests: &[serde_json::Value]) -> Vec<String> {
    let dep = manifests
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    assert_eq!(dep["spec"]["replicas"], 2, "two replicas by default");
    dep["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// Start the environment, apply the chart (optionally edited) and return a kubeconfig for
/// the chart's ServiceAccount plus the Deployment's arguments.
pub(crate) async fn install(
    test: &str,
    edit: impl FnOnce(&mut Vec<serde_json::Value>),
) -> (Env, std::path::PathBuf, Vec<String>) {
    let env = Env::start_opts(test, false).await;
    let mut manifests = docs(&render(&env));
    edit(&mut manifests);
    env.create_namespace(RELEASE_NS).await;
    env.create_namespace(TEAM_NS).await;
    let text: String = manifests
        .iter()
        .map(|d| format!("---\n{}\n", serde_json::to_string(d).unwrap()))
        .collect();
    env.kubectl(&["apply", "-f", "-"], Some(&text))
        .await
        .expect("kubectl apply of the rendered chart");
    let token = env
        .kubectl(&["create", "token", "pki-issuer", "-n", RELEASE_NS], None)
        .await
        .expect("kubectl create token");
    crate::leak_scan::register("pki-issuer ServiceAccount token", &token);
    let path = env.dir.path().join("sa.kubeconfig");
    std::fs::write(
        &path,
        env.kubeconfig_with_token(token.trim(), Some(RELEASE_NS)),
    )
    .unwrap();
    let args = deployment_args(&manifests);
    (env, path, args)
}

async fn install_pki(env: &Env) -> fixtures::Ca {
    let root = fixtures::root("Corp Root");
    for ns in [RELEASE_NS, TEAM_NS] {
        let int = fixtures::intermediate(&root, &format!("{ns} intermediate"));
        env.put_tls_secret(ns, "int", &int.pem, &int.key_pem).await;
        env.put_config_map(ns, "roots", "roots.pem", &root.pem)
            .await;
    }
    root
}

fn spec() -> serde_json::Value {
    json!({
        "secret": {"name": "int"},
        "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}},
        "policy": {"dnsNames": ["*.{namespace}.svc", "*.example.com"]},
    })
}

async fn team_request(env: &Env, name: &str, issuer: &str, kind: &str) {
    let (_, csr) = fixtures::csr(&[&format!("{name}.{TEAM_NS}.svc")]);
    let team = Env::view(env, TEAM_NS);
    team.create_request(name, &csr, issuer_ref(issuer, kind), None, &[])
        .await;
    team.set_approval(name, true).await;
}

async fn team_wait(env: &Env, name: &str, reason: &str) {
    let team = Env::view(env, TEAM_NS);
    team.wait_request_reason(name, reason).await;
}

#[tokio::test]
async fn chart_rbac_is_sufficient_and_leader_election_fails_over() {
    let (mut env, sa, args) = install("chart", |_| {}).await;
    assert!(args.iter().any(|a| a == "--leader-elect"));
    assert!(
        args.iter()
            .any(|a| a == &format!("--watch-namespaces={RELEASE_NS},{TEAM_NS}")),
        "{args:?}"
    );
    install_pki(&env).await;
    let pod = |n: &str| {
        [
            ("POD_NAME", n.to_string()),
            ("POD_NAMESPACE", RELEASE_NS.to_string()),
        ]
    };
    let p0 = pod("pki-issuer-0");
    let p1 = pod("pki-issuer-1");
    let a = env
        .spawn_controller(
            &sa,
            &args,
            &p0.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>(),
        )
        .await;
    let b = env
        .spawn_controller(
            &sa,
            &args,
            &p1.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>(),
        )
        .await;

    // Exactly one holds the lease.
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), RELEASE_NS);
    let leader = wait_for_holder(&env, &leases, None).await;
    assert!(
        leader == "pki-issuer-0" || leader == "pki-issuer-1",
        "{leader}"
    );

    env.create_cluster_issuer("chart-mesh", spec()).await;
    env.wait_issuer_ready("chart-mesh", true, "True").await;
    let team = Env::view(&env, TEAM_NS);
    team.create_issuer("team-ca", spec()).await;
    team.wait_issuer_ready("team-ca", false, "True").await;
    let mut counters = env.request_counter();
    counters.reset();
    team_request(&env, "via-cluster", "chart-mesh", "PKIClusterIssuer").await;
    team_request(&env, "via-team", "team-ca", "PKIIssuer").await;
    team_wait(&env, "via-cluster", "Issued").await;
    team_wait(&env, "via-team", "Issued").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        counters.count("patch", "certificaterequests", "status"),
        2,
        "only the leader writes: one status write per request with two replicas running"
    );

    // A Kubernetes CSR needs `sign` on the signer: the chart grants it.
    let (_, csr) = fixtures::csr(&["csr.example.com"]);
    let csr_name = format!("{}-csr", env.ns);
    env.kubectl(
        &["apply", "-f", "-"],
        Some(&json!({
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": csr_name},
            "spec": {"request": base64(csr.as_bytes()), "signerName": "pkiclusterissuers.pki-issuer.io/chart-mesh",
                     "usages": ["digital signature", "key encipherment", "client auth"]}
        }).to_string()),
    ).await
    .unwrap();
    env.kubectl(&["certificate", "approve", &csr_name], None)
        .await
        .expect("kubectl certificate approve");
    assert_eq!(
        csr_outcome(&env, &csr_name).await,
        "signed",
        "CSR not signed under the chart's RBAC\n{}",
        env.logs()
    );

    // A PodCertificateRequest: watched, and its status written (SSA patch of /status, which the
    // real API server allows only with `sign` on the signer name), under the chart's RBAC.
    crate::pod_cert::issued_under(&env, TEAM_NS, "chart-mesh").await;

    // A CSR naming team-a's PKIIssuer: the controller asks a SubjectAccessReview (the chart
    // grants `create`), and the chart's tenantSignerReference example lets team-a/csr-client, and
    // nobody else, reference team-ca.
    env.kubectl(
        &[
            "create",
            "clusterrole",
            "team-a-csr-create",
            "--verb=create,get",
            "--resource=certificatesigningrequests.certificates.k8s.io",
        ],
        None,
    )
    .await
    .unwrap();
    env.kubectl(
        &["apply", "-f", "-"],
        Some(&json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "team-a-csr-create"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "team-a-csr-create"},
            "subjects": [{"kind": "Group", "name": format!("system:serviceaccounts:{TEAM_NS}")}]}).to_string()),
    )
    .await
    .unwrap();
    for (sa, expected) in [("csr-client", "signed"), ("csr-stranger", "failed")] {
        env.kubectl(&["create", "serviceaccount", sa, "-n", TEAM_NS], None)
            .await
            .unwrap();
        let token = env
            .kubectl(&["create", "token", sa, "-n", TEAM_NS], None)
            .await
            .unwrap();
        let (_, csr) = fixtures::csr(&[&format!("{sa}.{TEAM_NS}.svc")]);
        let name = format!("{}-{sa}", env.ns);
        env.kubectl(
            &["apply", "-f", "-", &format!("--token={}", token.trim())],
            Some(
                &json!({
                    "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                    "metadata": {"name": name},
                    "spec": {"request": base64(csr.as_bytes()),
                             "signerName": format!("pkiissuers.pki-issuer.io/{TEAM_NS}.team-ca"),
                             "usages": ["digital signature", "key encipherment", "server auth"]}
                })
                .to_string(),
            ),
        )
        .await
        .unwrap();
        env.kubectl(&["certificate", "approve", &name], None)
            .await
            .expect("kubectl certificate approve");
        assert_eq!(
            csr_outcome(&env, &name).await,
            expected,
            "CSR of {TEAM_NS}/{sa} for PKIIssuer team-ca\n{}",
            env.logs()
        );
    }

    // kill -9 the leader: the other replica takes over within the lease duration.
    counters.reset();
    let killed = if leader == "pki-issuer-0" { a } else { b };
    env.kill_controller(killed).await;
    for i in 0..5 {
        team_request(
            &env,
            &format!("after-{i}"),
            "chart-mesh",
            "PKIClusterIssuer",
        )
        .await;
    }
    let started = std::time::Instant::now();
    let new_leader = wait_for_holder(&env, &leases, Some(&leader)).await;
    assert_ne!(new_leader, leader);
    for i in 0..5 {
        team_wait(&env, &format!("after-{i}"), "Issued").await;
    }
    eprintln!(
        "failover: {new_leader} took over and issued 5 requests {:?} after the leader was killed",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = counters.count("patch", "certificaterequests", "status");
    assert_eq!(
        writes, 5,
        "every request issued exactly once after the failover"
    );

    // SIGTERM: the new leader drains, releases the lease and exits 0.
    let survivor = if killed == a { b } else { a };
    let status = env.terminate_controller(survivor).await;
    assert!(status.success(), "{status:?}\n{}", env.logs());
    let lease = leases.get("pki-issuer-leader").await.unwrap();
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    assert!(
        holder.is_empty(),
        "the lease is released on SIGTERM, still held by {holder:?}"
    );
}

/// Poll a CSR with kubectl until it is signed or Failed: "signed", "failed" or "pending".
async fn csr_outcome(env: &Env, name: &str) -> &'static str {
    for _ in 0..200 {
        let out = env
            .kubectl(
                &[
                    "get",
                    "csr",
                    name,
                    "-o",
                    "jsonpath={.status.certificate}|{.status.conditions[?(@.type==\"Failed\")].status}",
                ],
                None,
            )
            .await
            .unwrap();
        let (cert, failed) = out.trim().split_once('|').unwrap_or_default();
        if !cert.is_empty() {
            return "signed";
        }
        if failed == "True" {
            return "failed";
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    "pending"
}

async fn wait_for_holder(env: &Env, leases: &Api<Lease>, not: Option<&str>) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        if let Ok(l) = leases.get("pki-issuer-leader").await {
            if let Some(h) = l.spec.and_then(|s| s.holder_identity) {
                if !h.is_empty() && Some(h.as_str()) != not {
                    return h;
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no (new) leader\n{}",
            env.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn base64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test]
async fn a_missing_rbac_rule_breaks_issuance() {
    // Remove the chart's permission to write CertificateRequest status.
    let (mut env, sa, args) = install("chart-norbac", |docs| {
        for d in docs.iter_mut().filter(|d| d["kind"] == "ClusterRole") {
            if let Some(rules) = d["rules"].as_array_mut() {
                rules.retain(|r| {
                    !r["resources"]
                        .as_array()
                        .is_some_and(|rs| rs.iter().any(|x| x == "certificaterequests/status"))
                });
            }
        }
    })
    .await;
    install_pki(&env).await;
    let args: Vec<String> = args.into_iter().filter(|a| a != "--leader-elect").collect();
    env.spawn_controller(&sa, &args, &[("POD_NAMESPACE", RELEASE_NS)])
        .await;
    env.create_cluster_issuer("chart-mesh-norbac", spec()).await;
    env.wait_issuer_ready("chart-mesh-norbac", true, "True")
        .await;
    team_request(&env, "blocked", "chart-mesh-norbac", "PKIClusterIssuer").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let team = Env::view(&env, TEAM_NS);
    let cr = team.request("blocked").await;
    let ready = cr
        .status
        .unwrap_or_default()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready");
    assert!(
        ready.is_none(),
        "without the status permission nothing can be written: {ready:?}"
    );
    let logs = env.logs();
    assert!(
        logs.contains("forbidden") && logs.contains("certificaterequests/status"),
        "the controller reports the 403:\n{logs}"
    );
}

#[tokio::test]
async fn a_leader_that_loses_its_lease_stops_at_once() {
    let (mut env, sa, args) = install("chart-steal", |_| {}).await;
    let n = env
        .spawn_controller(
            &sa,
            &args,
            &[("POD_NAME", "pki-issuer-0"), ("POD_NAMESPACE", RELEASE_NS)],
        )
        .await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), RELEASE_NS);
    assert_eq!(wait_for_holder(&env, &leases, None).await, "pki-issuer-0");
    // Another party takes the lease (as after a network partition that outlived it).
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let patch = json!({"spec": {"holderIdentity": "thief", "leaseDurationSeconds": 3600,
                                "acquireTime": now, "renewTime": now}});
    leases
        .patch(
            "pki-issuer-leader",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("steal the lease");
    let status = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            if let Some(status) = env.try_wait_controller(n) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the controller kept running without the lease\n{}",
            env.logs()
        )
    });
    assert!(
        !status.success(),
        "losing the lease is an error exit: {status:?}"
    );
    assert!(
        env.logs().contains("lost the leader lease"),
        "{}",
        env.logs()
    );
}
