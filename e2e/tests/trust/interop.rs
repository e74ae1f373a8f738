//! Trust distribution with its neighbours on the real control plane: real trust-manager sourcing
//! pki-issuer's ConfigMap, and the chart's RBAC (the ClusterTrustBundle `attest` admission).

use std::time::Duration;

use kube::Api;
use serde_json::json;

use super::{
    bundle_set, config_map_set, eventually, expect_set, label_namespace, spec, wait_condition,
};
use crate::fixtures;
use crate::harness::{kube, skip, Env};

/// Real trust-manager (its Bundle controller at the pinned release, e2e/controlplane/trustmanager)
/// on the leased control plane, reading sources from `trust_ns`; stopped on drop.
struct TrustManager {
    dir: std::path::PathBuf,
}

impl TrustManager {
    async fn start(env: &Env, trust_ns: &str) -> TrustManager {
        let dir = env
            .kube
            .as_ref()
            .expect("a leased control plane")
            .server()
            .dir
            .clone();
        let out = tokio::process::Command::new("bash")
            .arg(crate::kube_server::script())
            .args(["trust-manager-start"])
            .arg(&dir)
            .arg(trust_ns)
            .output()
            .await
            .expect("control-plane.sh");
        assert!(
            out.status.success(),
            "trust-manager-start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TrustManager { dir }
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("trust-manager.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for TrustManager {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(crate::kube_server::script())
            .arg("trust-manager-stop")
            .arg(&self.dir)
            .status();
    }
}

/// The documented trust-manager `Bundle` (docs/rotation.md "trust-manager") sourcing the
/// ConfigMap pki-issuer writes into trust-manager's trust namespace: real trust-manager copies
/// the published roots into the selected namespaces and follows an anchor change.
#[tokio::test]
async fn trust_manager_bundle_follows_the_published_roots() {
    if !kube() {
        skip(
            "trust::interop::trust_manager_bundle_follows_the_published_roots",
            "real trust-manager runs on the real control plane (E2E_APISERVER=kube)",
        );
        return;
    }
    let env = Env::start("trust-tm").await;
    let trust_ns = format!("{}-trust", env.ns);
    env.create_namespace(&trust_ns).await;
    let tm = TrustManager::start(&env, &trust_ns).await;
    let root = super::put_signer(&env, &env.cluster_ns, "TM A").await;
    let root_b = fixtures::root("Trust Root TM B");
    let issuer = format!("{}-tm", env.ns);
    env.create_cluster_issuer(
        &issuer,
        spec(
            "roots",
            json!({"configMap": {"name": "corp-roots", "namespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [trust_ns]}]}}}),
        ),
    )
    .await;
    let label = format!("trust.e2e/{}", env.ns);
    let label = &label[..label.len().min(63)];
    label_namespace(&env, &env.ns, label, Some("yes")).await;
    let bundle_name = format!("{}-roots", env.ns);
    let bundle = kube::api::ApiResource {
        group: "trust.cert-manager.io".into(),
        version: "v1alpha1".into(),
        api_version: "trust.cert-manager.io/v1alpha1".into(),
        kind: "Bundle".into(),
        plural: "bundles".into(),
    };
    let bundles: Api<kube::api::DynamicObject> = Api::all_with(env.client.clone(), &bundle);
    let obj: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "trust.cert-manager.io/v1alpha1",
        "kind": "Bundle",
        "metadata": {"name": bundle_name},
        "spec": {
            "sources": [{"configMap": {"name": "corp-roots", "key": "ca.crt"}}],
            "target": {"configMap": {"key": "roots.pem"},
                       "namespaceSelector": {"matchLabels": {label: "yes"}}},
        },
    }))
    .unwrap();
    bundles
        .create(&Default::default(), &obj)
        .await
        .expect("create Bundle");
    let want_a = expect_set(&[&root]);
    let wait_target = |want: Vec<Vec<u8>>, what: &'static str| {
        let env = &env;
        let bundle_name = bundle_name.clone();
        let tm = &tm;
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                if config_map_set(env, &env.ns, &bundle_name, "roots.pem").await
                    == Some(want.clone())
                {
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "trust-manager target never held {what}\n{}",
                    tm.log()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_target(want_a, "root A").await;
    // An anchor change flows pki-issuer → its ConfigMap → trust-manager → the target.
    env.put_config_map(
        &env.cluster_ns,
        "roots",
        "roots.pem",
        &format!("{}{}", root.pem, root_b.pem),
    )
    .await;
    wait_target(expect_set(&[&root, &root_b]), "roots A and B").await;
    let synced = bundles.get(&bundle_name).await.unwrap();
    let ready = synced.data["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Synced").cloned())
        .expect("Synced condition");
    assert_eq!(ready["status"], "True", "{ready}");
    bundles.delete(&bundle_name, &Default::default()).await.ok();
    env.delete_cluster_issuer(&issuer).await;
}

/// The chart's RBAC (rendered with the real Helm engine, applied with kubectl, pki-issuer
/// running as its ServiceAccount) is enough to publish both kinds; on the real API server this
/// includes the `attest` permission the ClusterTrustBundle admission plugin demands for a
/// bundle with a signer name. Without that one rule, the bundle is refused and the condition
/// says so, while the ConfigMaps are still published.
#[tokio::test]
async fn chart_rbac_publishes_and_attest_is_required() {
    use crate::chart::{install, RELEASE_NS, TEAM_NS};
    for without_attest in [false, true] {
        if without_attest && !kube() {
            skip(
                "trust::interop::chart_rbac_publishes_and_attest_is_required (without attest)",
                "the test API server has no ClusterTrustBundle attest admission plugin",
            );
            continue;
        }
        let test = if without_attest {
            "trust-chart-noattest"
        } else {
            "trust-chart"
        };
        let (mut env, sa, args) = install(test, |docs| {
            if !without_attest {
                return;
            }
            for d in docs.iter_mut().filter(|d| d["kind"] == "ClusterRole") {
                if let Some(rules) = d["rules"].as_array_mut() {
                    rules.retain(|r| {
                        !r["verbs"]
                            .as_array()
                            .is_some_and(|v| v.iter().any(|x| x == "attest"))
                    });
                }
            }
        })
        .await;
        let root = fixtures::root("Trust Chart Root");
        let int = fixtures::intermediate(&root, "Trust Chart Int");
        env.put_tls_secret(RELEASE_NS, "int", &int.pem, &int.key_pem)
            .await;
        env.put_config_map(RELEASE_NS, "roots", "roots.pem", &root.pem)
            .await;
        let args: Vec<String> = args.into_iter().filter(|a| a != "--leader-elect").collect();
        env.spawn_controller(&sa, &args, &[("POD_NAMESPACE", RELEASE_NS)])
            .await;
        let issuer = format!("{test}-mesh");
        // Fixed namespaces outlive a test on the real server: a name of this test's own.
        let cm_name = format!("{test}-roots");
        env.create_cluster_issuer(
            &issuer,
            json!({
                "secret": {"name": "int"},
                "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}},
                "policy": {"dnsNames": ["*.svc"]},
                "trustDistribution": {"clusterTrustBundle": true, "configMap": {"name": cm_name,
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": TEAM_NS}}}},
            }),
        )
        .await;
        env.wait_issuer_ready(&issuer, true, "True").await;
        let want = expect_set(&[&root]);
        eventually("ConfigMap in team-a under the chart's RBAC", 30, || async {
            config_map_set(&env, TEAM_NS, &cm_name, "ca.crt")
                .await
                .filter(|s| *s == want)
        })
        .await;
        if without_attest {
            let msg = wait_condition(&env, &issuer, true, "PublishFailed", "attest").await;
            assert!(
                msg.contains("forbidden") || msg.contains("Forbidden"),
                "{msg}"
            );
            assert_eq!(bundle_set(&env, &issuer).await, None);
        } else {
            wait_condition(&env, &issuer, true, "Published", "ClusterTrustBundle").await;
            assert_eq!(bundle_set(&env, &issuer).await, Some(want));
        }
        env.delete_cluster_issuer(&issuer).await;
        drop(env);
    }
}
