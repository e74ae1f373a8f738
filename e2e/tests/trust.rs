//! Trust distribution (`spec.trustDistribution`): the issuer's checked anchors published as a
//! ClusterTrustBundle and as ConfigMaps in selected namespaces, following the issuer through
//! create, anchor changes, namespace (de)selection, a refused anchor change, turning off and
//! deletion. Runs on the test API server and on the real control plane (where the garbage
//! collector removes what a deleted issuer published).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::certificates::v1beta1::ClusterTrustBundle;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Patch, PatchParams};
use kube::Api;
use pki_issuer::api::{PKIClusterIssuer, PKIIssuer};
use serde_json::json;

use crate::fixtures::{self, Ca};
use crate::harness::{kube, skip, Env};

mod interop;

/// The bundle name pki-issuer publishes for a cluster issuer.
pub fn bundle_name(issuer: &str) -> String {
    format!("pkiclusterissuers.pki-issuer.io:{issuer}:trust-anchors")
}

/// Poll `f` every 100 ms until it returns `Some`, for at most `secs`.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The certificates (DER) of a PEM bundle.
pub fn ders(pem_text: &str) -> Vec<Vec<u8>> {
    pem::parse_many(pem_text)
        .expect("PEM")
        .into_iter()
        .map(|p| {
            assert_eq!(p.tag(), "CERTIFICATE");
            p.into_contents()
        })
        .collect()
}

fn der_of(ca: &Ca) -> Vec<u8> {
    ders(&ca.pem).remove(0)
}

/// The set of certificates a bundle holds, sorted.
fn set(pem_text: &str) -> Vec<Vec<u8>> {
    let mut v = ders(pem_text);
    v.sort();
    v
}

pub(crate) fn expect_set(cas: &[&Ca]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = cas.iter().map(|c| der_of(c)).collect();
    v.sort();
    v
}

/// The published ClusterTrustBundle's certificate set, if it exists.
pub async fn bundle_set(env: &Env, issuer: &str) -> Option<Vec<Vec<u8>>> {
    let api: Api<ClusterTrustBundle> = Api::all(env.client.clone());
    let b = api.get_opt(&bundle_name(issuer)).await.ok()??;
    Some(set(&b.spec.trust_bundle))
}

/// The distributed ConfigMap's certificate set in `ns`, if it exists.
pub async fn config_map_set(env: &Env, ns: &str, name: &str, key: &str) -> Option<Vec<Vec<u8>>> {
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), ns);
    let cm = api.get_opt(name).await.ok()??;
    Some(set(cm.data?.get(key)?))
}

pub(crate) async fn label_namespace(env: &Env, ns: &str, key: &str, value: Option<&str>) {
    let api: Api<Namespace> = Api::all(env.client.clone());
    api.patch(
        ns,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {key: value}}})),
    )
    .await
    .expect("label namespace");
}

/// The issuer's `TrustDistributed` condition (status, reason, message).
pub async fn trust_condition(
    env: &Env,
    name: &str,
    cluster: bool,
) -> Option<(String, String, String)> {
    let status = if cluster {
        Api::<PKIClusterIssuer>::all(env.client.clone())
            .get(name)
            .await
            .ok()?
            .status?
    } else {
        Api::<PKIIssuer>::namespaced(env.client.clone(), &env.ns)
            .get(name)
            .await
            .ok()?
            .status?
    };
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == "TrustDistributed")?;
    Some((
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

/// Wait for `TrustDistributed` with `reason` and a message containing `text`; the message.
pub async fn wait_condition(
    env: &Env,
    name: &str,
    cluster: bool,
    reason: &str,
    text: &str,
) -> String {
    eventually(
        &format!("TrustDistributed {reason} ({text}) on {name}"),
        30,
        || async {
            trust_condition(env, name, cluster)
                .await
                .filter(|c| c.1 == reason && c.2.contains(text))
                .map(|c| c.2)
        },
    )
    .await
}

pub(crate) fn spec(anchors_cm: &str, distribution: serde_json::Value) -> serde_json::Value {
    json!({
        "secret": {"name": "signer"},
        "trustAnchors": {"configMap": {"name": anchors_cm, "key": "roots.pem"}},
        "policy": {"dnsNames": ["*.svc"]},
        "trustDistribution": distribution,
    })
}

/// A root named `Trust Root {tag}` and an intermediate under it: the intermediate in Secret
/// `signer`, the root in ConfigMap `roots` (`roots.pem`), both in `ns`. Returns the root.
pub(crate) async fn put_signer(env: &Env, ns: &str, tag: &str) -> Ca {
    let root = fixtures::root(&format!("Trust Root {tag}"));
    let int = fixtures::intermediate(&root, &format!("Trust Int {tag}"));
    env.put_tls_secret(ns, "signer", &int.pem, &int.key_pem)
        .await;
    env.put_config_map(ns, "roots", "roots.pem", &root.pem)
        .await;
    root
}

/// Create, change anchors, select and deselect namespaces, a foreign ConfigMap, the refused
/// anchor change, turning off: the ClusterTrustBundle and the ConfigMaps follow at each step.
#[tokio::test]
async fn cluster_issuer_distribution_follows_the_issuer() {
    let env = Env::start("trust-follow").await;
    let root = put_signer(&env, &env.cluster_ns, "A").await;
    let root_b = fixtures::root("Trust Root B");
    let label = format!("trust.e2e/{}", env.ns);
    let label = &label[..label.len().min(63)];
    let (a, b, c, foreign) = (
        format!("{}-a", env.ns),
        format!("{}-b", env.ns),
        format!("{}-c", env.ns),
        format!("{}-f", env.ns),
    );
    for ns in [&a, &b, &c, &foreign] {
        env.create_namespace(ns).await;
    }
    for ns in [&a, &b, &foreign] {
        label_namespace(&env, ns, label, Some("yes")).await;
    }
    // Someone else's ConfigMap of the same name: never overwritten.
    env.put_config_map(&foreign, "corp-roots", "ca.crt", "theirs")
        .await;
    let issuer = format!("{}-mesh", env.ns);
    env.create_cluster_issuer(
        &issuer,
        spec(
            "roots",
            json!({"clusterTrustBundle": true,
                   "configMap": {"name": "corp-roots", "namespaceSelector": {"matchLabels": {label: "yes"}}}}),
        ),
    )
    .await;
    env.wait_issuer_ready(&issuer, true, "True").await;

    // Created: the bundle and the selected namespaces' ConfigMaps hold root A.
    let want_a = expect_set(&[&root]);
    let got = eventually("ClusterTrustBundle with root A", 30, || async {
        bundle_set(&env, &issuer).await.filter(|s| *s == want_a)
    })
    .await;
    assert_eq!(got, want_a);
    let ctb = Api::<ClusterTrustBundle>::all(env.client.clone())
        .get(&bundle_name(&issuer))
        .await
        .unwrap();
    assert_eq!(
        ctb.spec.signer_name.as_deref(),
        Some(format!("pkiclusterissuers.pki-issuer.io/{issuer}").as_str())
    );
    let owner = &ctb.metadata.owner_references.as_ref().unwrap()[0];
    let issuer_obj = Api::<PKIClusterIssuer>::all(env.client.clone())
        .get(&issuer)
        .await
        .unwrap();
    assert_eq!(Some(&owner.uid), issuer_obj.metadata.uid.as_ref());
    assert_eq!(owner.kind, "PKIClusterIssuer");
    let managers: Vec<String> = ctb
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"pki-issuer".to_string()), "{managers:?}");
    for ns in [&a, &b] {
        eventually(&format!("ConfigMap in {ns}"), 30, || async {
            config_map_set(&env, ns, "corp-roots", "ca.crt")
                .await
                .filter(|s| *s == want_a)
        })
        .await;
    }
    assert_eq!(config_map_set(&env, &c, "corp-roots", "ca.crt").await, None);
    let msg = wait_condition(&env, &issuer, true, "ForeignObject", &foreign).await;
    assert!(
        msg.contains(&foreign) && msg.contains("not written by pki-issuer"),
        "{msg}"
    );
    let theirs = Api::<ConfigMap>::namespaced(env.client.clone(), &foreign)
        .get("corp-roots")
        .await
        .unwrap();
    assert_eq!(theirs.data.unwrap()["ca.crt"], "theirs");

    // The foreign ConfigMap goes away: pki-issuer publishes there too and reports Published.
    Api::<ConfigMap>::namespaced(env.client.clone(), &foreign)
        .delete("corp-roots", &Default::default())
        .await
        .unwrap();
    // (The deletion is no event pki-issuer watches: a namespace change re-runs the issuer.)
    label_namespace(&env, &foreign, "touched", Some("1")).await;
    let msg = wait_condition(&env, &issuer, true, "Published", "3 namespace").await;
    assert!(
        msg.contains("ClusterTrustBundle") && msg.contains("3 namespace"),
        "{msg}"
    );

    // Anchors change: root B added; both roots published everywhere.
    let both = format!("{}{}", root.pem, root_b.pem);
    env.put_config_map(&env.cluster_ns, "roots", "roots.pem", &both)
        .await;
    let want_ab = expect_set(&[&root, &root_b]);
    eventually("ClusterTrustBundle with both roots", 30, || async {
        bundle_set(&env, &issuer).await.filter(|s| *s == want_ab)
    })
    .await;
    for ns in [&a, &b, &foreign] {
        eventually(&format!("both roots in {ns}"), 30, || async {
            config_map_set(&env, ns, "corp-roots", "ca.crt")
                .await
                .filter(|s| *s == want_ab)
        })
        .await;
    }

    // Namespace c selected, b deselected.
    label_namespace(&env, &c, label, Some("yes")).await;
    label_namespace(&env, &b, label, None).await;
    eventually("ConfigMap in newly selected c", 30, || async {
        config_map_set(&env, &c, "corp-roots", "ca.crt")
            .await
            .filter(|s| *s == want_ab)
    })
    .await;
    eventually("ConfigMap gone from deselected b", 30, || async {
        config_map_set(&env, &b, "corp-roots", "ca.crt")
            .await
            .is_none()
            .then_some(())
    })
    .await;

    // A hand-deleted ConfigMap is restored.
    Api::<ConfigMap>::namespaced(env.client.clone(), &a)
        .delete("corp-roots", &Default::default())
        .await
        .unwrap();
    eventually("ConfigMap restored in a", 30, || async {
        config_map_set(&env, &a, "corp-roots", "ca.crt")
            .await
            .filter(|s| *s == want_ab)
    })
    .await;

    // Refused: anchors that drop root A, which the signer chains to. Nothing is published,
    // the previous bundle stays, the conditions say why.
    env.put_config_map(&env.cluster_ns, "roots", "roots.pem", &root_b.pem)
        .await;
    env.wait_issuer_ready(&issuer, true, "False").await;
    let msg = wait_condition(&env, &issuer, true, "NotPublished", "").await;
    assert!(msg.contains("previously published bundle is kept"), "{msg}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(bundle_set(&env, &issuer).await, Some(want_ab.clone()));
    for ns in [&a, &c, &foreign] {
        assert_eq!(
            config_map_set(&env, ns, "corp-roots", "ca.crt").await,
            Some(want_ab.clone()),
            "{ns} keeps the previous bundle"
        );
    }
    // Fixed: back to both roots, Published again.
    env.put_config_map(&env.cluster_ns, "roots", "roots.pem", &both)
        .await;
    env.wait_issuer_ready(&issuer, true, "True").await;
    wait_condition(&env, &issuer, true, "Published", "").await;

    // Turned off: the bundle and every ConfigMap go, and so does the condition.
    let api: Api<PKIClusterIssuer> = Api::all(env.client.clone());
    api.patch(
        &issuer,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"trustDistribution": null}})),
    )
    .await
    .unwrap();
    eventually("everything removed after turning off", 30, || async {
        let mut gone = bundle_set(&env, &issuer).await.is_none();
        for ns in [&a, &c, &foreign] {
            gone &= config_map_set(&env, ns, "corp-roots", "ca.crt")
                .await
                .is_none();
        }
        gone.then_some(())
    })
    .await;
    eventually("condition removed", 30, || async {
        trust_condition(&env, &issuer, true)
            .await
            .is_none()
            .then_some(())
    })
    .await;
    env.delete_cluster_issuer(&issuer).await;
}

/// Deleting the issuer removes what it published: the objects carry an owner reference to it
/// and kube-controller-manager's garbage collector deletes them (real control plane).
#[tokio::test]
async fn deleting_the_issuer_removes_what_it_published() {
    let env = Env::start("trust-delete").await;
    let root = put_signer(&env, &env.cluster_ns, "D").await;
    let label = format!("trust.e2e/{}", env.ns);
    let label = &label[..label.len().min(63)];
    label_namespace(&env, &env.ns, label, Some("yes")).await;
    let issuer = format!("{}-del", env.ns);
    env.create_cluster_issuer(
        &issuer,
        spec(
            "roots",
            json!({"clusterTrustBundle": true,
                   "configMap": {"name": "roots-bundle", "key": "roots.pem",
                                 "namespaceSelector": {"matchExpressions": [{"key": label, "operator": "Exists"}]}}}),
        ),
    )
    .await;
    let want = expect_set(&[&root]);
    eventually("published", 30, || async {
        let ok = bundle_set(&env, &issuer).await.as_ref() == Some(&want)
            && config_map_set(&env, &env.ns, "roots-bundle", "roots.pem")
                .await
                .as_ref()
                == Some(&want);
        ok.then_some(())
    })
    .await;
    let uid = Api::<PKIClusterIssuer>::all(env.client.clone())
        .get(&issuer)
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let cm = Api::<ConfigMap>::namespaced(env.client.clone(), &env.ns)
        .get("roots-bundle")
        .await
        .unwrap();
    let owners = cm.metadata.owner_references.unwrap();
    assert_eq!((owners.len(), owners[0].uid.as_str()), (1, uid.as_str()));
    assert_eq!(
        cm.metadata
            .labels
            .unwrap()
            .get("pki-issuer.io/trust-distribution"),
        Some(&"true".to_string())
    );
    env.delete_cluster_issuer(&issuer).await;
    if !kube() {
        skip(
            "trust::deleting_the_issuer_removes_what_it_published (garbage collection)",
            "the test API server has no garbage collector; owner references checked above",
        );
        return;
    }
    eventually(
        "garbage collector removed the bundle and ConfigMap",
        60,
        || async {
            let gone = bundle_set(&env, &issuer).await.is_none()
                && config_map_set(&env, &env.ns, "roots-bundle", "roots.pem")
                    .await
                    .is_none();
            gone.then_some(())
        },
    )
    .await;
}

/// A PKIIssuer writes its ConfigMap into its own namespace only, and may not publish a
/// ClusterTrustBundle (cluster-wide trust from one namespace's admin): refused and reported.
#[tokio::test]
async fn namespaced_issuer_distributes_only_to_its_namespace() {
    let env = Env::start("trust-ns").await;
    let root = put_signer(&env, &env.ns, "N").await;
    env.create_issuer(
        "team",
        spec("roots", json!({"configMap": {"name": "team-roots"}})),
    )
    .await;
    let want = expect_set(&[&root]);
    eventually("ConfigMap in the issuer's namespace", 30, || async {
        config_map_set(&env, &env.ns, "team-roots", "ca.crt")
            .await
            .filter(|s| *s == want)
    })
    .await;
    let msg = wait_condition(&env, "team", false, "Published", "").await;
    assert!(msg.contains("1 namespace"), "{msg}");

    // Asking for a ClusterTrustBundle or a selector: refused, nothing cluster-wide written.
    let api: Api<PKIIssuer> = Api::namespaced(env.client.clone(), &env.ns);
    api.patch(
        "team",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"trustDistribution": {"clusterTrustBundle": true}}})),
    )
    .await
    .unwrap();
    let msg = wait_condition(&env, "team", false, "NotAllowed", "clusterTrustBundle").await;
    assert!(msg.contains("PKIClusterIssuers only"), "{msg}");
    let name = format!("pkiissuers.pki-issuer.io:{}.team:trust-anchors", env.ns);
    let ctb = Api::<ClusterTrustBundle>::all(env.client.clone())
        .get_opt(&name)
        .await
        .unwrap();
    assert!(ctb.is_none());
    api.patch(
        "team",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"trustDistribution": {"clusterTrustBundle": null,
            "configMap": {"namespaceSelector": {"matchLabels": {"a": "b"}}}}}}),
        ),
    )
    .await
    .unwrap();
    let msg = wait_condition(&env, "team", false, "NotAllowed", "namespaceSelector").await;
    assert!(msg.contains("PKIClusterIssuers only"), "{msg}");
    // The ConfigMap it published before stays (nothing half-done).
    assert_eq!(
        config_map_set(&env, &env.ns, "team-roots", "ca.crt").await,
        Some(want)
    );
}

/// The distributed objects carry only bare CERTIFICATE blocks, each anchor once, even when the
/// anchors source repeats a root and carries text around it.
#[tokio::test]
async fn bundle_is_deduplicated_bare_certificates() {
    let env = Env::start("trust-dedup").await;
    let root = put_signer(&env, &env.cluster_ns, "X").await;
    let messy = format!(
        "# corp roots\n{}\nsubject=Trust Root X\n{}",
        root.pem, root.pem
    );
    env.put_config_map(&env.cluster_ns, "roots", "roots.pem", &messy)
        .await;
    let issuer = format!("{}-dedup", env.ns);
    env.create_cluster_issuer(&issuer, spec("roots", json!({"clusterTrustBundle": true})))
        .await;
    let text = eventually("ClusterTrustBundle", 30, || async {
        Api::<ClusterTrustBundle>::all(env.client.clone())
            .get_opt(&bundle_name(&issuer))
            .await
            .ok()?
            .map(|b| b.spec.trust_bundle)
    })
    .await;
    assert_eq!(ders(&text), vec![der_of(&root)]);
    assert!(!text.contains('#') && !text.contains("subject="), "{text}");
    let labels: BTreeMap<String, String> = Api::<ClusterTrustBundle>::all(env.client.clone())
        .get(&bundle_name(&issuer))
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap();
    assert_eq!(
        labels
            .get("pki-issuer.io/trust-distribution")
            .map(String::as_str),
        Some("true")
    );
    env.delete_cluster_issuer(&issuer).await;
}

/// An API server that does not serve ClusterTrustBundles (kube-apiserver answers 404 for an
/// unserved resource; injected here): the condition says so, the ConfigMaps are still
/// published, and the issuer is not retried in a loop.
#[tokio::test]
async fn a_server_without_cluster_trust_bundles_is_reported() {
    if crate::harness::skip_on_kube(
        "trust::a_server_without_cluster_trust_bundles_is_reported",
        "the real control plane serves ClusterTrustBundles (the unserved API is injected on the test API server)",
    ) {
        return;
    }
    let env = Env::start("trust-noctb").await;
    let faults = env.server.as_ref().expect("test API server").faults();
    faults.fail(
        test_apiserver::Matcher {
            resource: Some("clustertrustbundles".into()),
            ..Default::default()
        },
        404,
        None,
        None,
    );
    let root = put_signer(&env, &env.cluster_ns, "U").await;
    let issuer = format!("{}-noctb", env.ns);
    env.create_cluster_issuer(
        &issuer,
        spec(
            "roots",
            json!({"clusterTrustBundle": true,
                   "configMap": {"name": "corp-roots", "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": env.ns}}}}),
        ),
    )
    .await;
    env.wait_issuer_ready(&issuer, true, "True").await;
    let msg = wait_condition(
        &env,
        &issuer,
        true,
        "ApiUnavailable",
        "does not serve ClusterTrustBundles",
    )
    .await;
    assert!(msg.contains("ConfigMap corp-roots in 1 namespace"), "{msg}");
    assert_eq!(
        config_map_set(&env, &env.ns, "corp-roots", "ca.crt").await,
        Some(expect_set(&[&root]))
    );
    // No hot loop: the issuer is re-checked on its interval, not on the failure.
    let mut counter = env.request_counter();
    counter.reset();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let calls = counter.count("get", "clustertrustbundles", "")
        + counter.count("patch", "clustertrustbundles", "");
    assert!(calls <= 2, "{calls} ClusterTrustBundle calls in 3 s");
    env.delete_cluster_issuer(&issuer).await;
}
