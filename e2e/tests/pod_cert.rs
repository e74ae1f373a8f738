//! Pod certificates: Kubernetes PodCertificateRequests (certificates.k8s.io/v1beta1) signed by
//! issuers with `spec.podCertificates`. The first test runs on both servers (on the real one the
//! API server's own validation refuses some hostile requests first: asserted); the kubelet test
//! runs the kubelet's own PodCertificate manager (e2e/podcert) as system:node:pki-e2e-node on
//! the real control plane, with the Node authorizer and NodeRestriction on.

use std::time::Duration;

use k8s_openapi::api::certificates::v1beta1::PodCertificateRequest;
use kube::api::PostParams;
use kube::Api;
use rcgen::{CertificateParams, KeyPair, PublicKeyData, SigningKey};
use serde_json::{json, Value};

use crate::csr::base64_encode;
use crate::harness::{self, Env};

mod kubelet;
mod remote;

/// The node whose kubelet token the control plane has (e2e/scripts/control-plane.sh).
pub(crate) const NODE: &str = "pki-e2e-node";
const SPIFFE: &str = "spiffe://cluster.local/ns/{namespace}/sa/{serviceAccount}";

pub(crate) fn issuer_spec(pod_certificates: bool) -> Value {
    let mut spec = json!({
        "secret": {"name": "mesh-intermediate"},
        "trustAnchors": {"configMap": {"name": "corp-roots", "key": "roots.pem"}},
        "policy": {"maxDuration": "1h", "uris": [SPIFFE], "dnsNames": ["*.{namespace}.svc"],
                   "usages": ["digital signature", "server auth", "client auth"]},
    });
    if pod_certificates {
        spec["podCertificates"] = json!({
            "uriTemplate": SPIFFE,
            "dnsNameTemplates": ["{serviceAccount}.{namespace}.svc"],
        });
    }
    spec
}

/// An empty PKCS#10 request signed by `key`, as the 1.36 kubelet makes it.
fn stub(key: &KeyPair) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(key).unwrap().der().to_vec()
}

pub(crate) const POD_UID: &str = "7b0f6d2e-1c4a-4e57-9d2b-2f1e3c4d5a6b";

/// A PodCertificateRequest with the given key fields (what a kubelet would send for pod web-0
/// of ServiceAccount web).
pub(crate) fn pcr(
    name: &str,
    signer: &str,
    key_fields: Value,
    extra: Value,
) -> PodCertificateRequest {
    let mut spec = json!({
        "signerName": signer, "podName": "web-0", "podUID": POD_UID,
        "serviceAccountName": "web", "serviceAccountUID": "3c9e1f0a-5b7d-4a2c-8e6f-1a2b3c4d5e6f",
        "nodeName": NODE, "nodeUID": "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b",
        "maxExpirationSeconds": 86400,
    });
    for (k, v) in key_fields
        .as_object()
        .unwrap()
        .iter()
        .chain(extra.as_object().unwrap())
    {
        spec[k] = v.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "certificates.k8s.io/v1beta1", "kind": "PodCertificateRequest",
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap()
}

pub(crate) fn stub_fields(key: &KeyPair) -> Value {
    json!({"stubPKCS10Request": base64_encode(&stub(key))})
}

/// The one terminal condition (type, reason, message), waiting for it.
pub(crate) async fn terminal(
    env: &Env,
    api: &Api<PodCertificateRequest>,
    name: &str,
) -> (PodCertificateRequest, String, String, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let p = api.get(name).await.expect("get PCR");
        let conds = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        if !conds.is_empty() {
            assert_eq!(conds.len(), 1, "exactly one condition: {conds:?}");
            let c = &conds[0];
            assert_eq!(c.status, "True");
            return (
                p.clone(),
                c.type_.clone(),
                c.reason.clone(),
                c.message.clone(),
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "PCR {name} never finished\n{}",
            env.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a Warning Event regarding PodCertificateRequest `name` exists in `ns`.
async fn warning_event(env: &Env, ns: &str, name: &str) -> bool {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(env.client.clone(), ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let list = events.list(&Default::default()).await.unwrap();
        if list.items.iter().any(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.regarding.as_ref().is_some_and(|r| {
                    r.name.as_deref() == Some(name)
                        && r.kind.as_deref() == Some("PodCertificateRequest")
                })
        }) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

pub(crate) fn leaf_der(chain: &str) -> Vec<u8> {
    pem::parse_many(chain).unwrap()[0].contents().to_vec()
}

/// The leaf's SPKI, URI SANs and DNS SANs.
pub(crate) fn leaf_facts(chain: &str) -> (Vec<u8>, Vec<String>, Vec<String>) {
    let der = leaf_der(chain);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let (mut uris, mut dns) = (vec![], vec![]);
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::URI(u) => uris.push(u.to_string()),
                x509_parser::extensions::GeneralName::DNSName(d) => dns.push(d.to_string()),
                _ => {}
            }
        }
    }
    (cert.public_key().raw.to_vec(), uris, dns)
}

/// Checks every field of an issued status against the leaf and the API server's rules.
/// What an issued pod certificate must carry besides the pod's key and DNS name.
pub(crate) struct Want {
    /// The SPIFFE ID of the pod's ServiceAccount.
    pub spiffe: bool,
    /// Its lifetime in seconds.
    pub lifetime_secs: i64,
}

/// maxExpirationSeconds 86400 clamped to the policy's 1h, with the SPIFFE ID.
const ONE_HOUR_SPIFFE: Want = Want {
    spiffe: true,
    lifetime_secs: 3600,
};

pub(crate) fn check_issued(
    env: &Env,
    root_pem: &str,
    p: &PodCertificateRequest,
    want_key: &[u8],
    want: Want,
) -> String {
    let st = p.status.as_ref().unwrap();
    let chain = st.certificate_chain.clone().expect("certificateChain");
    let (spki, uris, dns) = leaf_facts(&chain);
    assert_eq!(spki, want_key, "issued to the pod's key");
    let ns = p.metadata.namespace.clone().unwrap();
    let spiffe = vec![format!("spiffe://cluster.local/ns/{ns}/sa/web")];
    assert_eq!(uris, if want.spiffe { spiffe } else { vec![] });
    assert_eq!(dns, vec![format!("web.{ns}.svc")]);
    let info = pki_issuer::pki::cert_info(&leaf_der(&chain)).unwrap();
    let ts = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time| t.0.as_second();
    assert_eq!(
        ts(st.not_before.as_ref().unwrap()),
        info.not_before.unix_timestamp()
    );
    assert_eq!(
        ts(st.not_after.as_ref().unwrap()),
        info.not_after.unix_timestamp()
    );
    let lifetime = (info.not_after - info.not_before).whole_seconds();
    assert_eq!(lifetime, want.lifetime_secs, "the lifetime from notBefore");
    let refresh = ts(st.begin_refresh_at.as_ref().unwrap());
    assert_eq!(
        refresh - info.not_before.unix_timestamp(),
        want.lifetime_secs * 2 / 3,
        "2/3 of the lifetime"
    );
    assert!(
        !pem::parse_many(&chain)
            .unwrap()
            .iter()
            .any(|c| pem::encode(c).trim() == root_pem.trim()),
        "the root is not in the chain"
    );
    let (ok, out) = env.openssl_verify(root_pem, &chain, "sslclient");
    assert!(ok, "the chain verifies to the trust anchor: {out}");
    chain
}

#[tokio::test]
async fn pod_certificate_requests_get_the_pods_identity_and_hostile_ones_are_denied() {
    let env = Env::start("podcert").await;
    let root = crate::csr::install(&env, &env.ns).await;
    crate::csr::install(&env, &env.cluster_ns).await;
    let other_ns = format!("{}-other", env.ns);
    env.create_namespace(&other_ns).await;
    env.create_issuer("apps", issuer_spec(true)).await;
    env.create_issuer("plain", issuer_spec(false)).await;
    env.wait_issuer_ready("apps", false, "True").await;
    env.wait_issuer_ready("plain", false, "True").await;
    // A template with a placeholder of its own: the issuer fails its check, naming it.
    let mut bad = issuer_spec(true);
    bad["podCertificates"]["uriTemplate"] = json!("spiffe://cluster.local/pod/{podName}");
    env.create_issuer("bad-template", bad).await;
    let (reason, message) = env.wait_issuer_ready("bad-template", false, "False").await;
    assert!(
        message.contains("placeholder other than"),
        "{reason}: {message}"
    );
    let signer = format!("pkiissuers.pki-issuer.io/{}.apps", env.ns);
    let plain = format!("pkiissuers.pki-issuer.io/{}.plain", env.ns);
    let api: Api<PodCertificateRequest> = Api::namespaced(env.client.clone(), &env.ns);
    let other: Api<PodCertificateRequest> = Api::namespaced(env.client.clone(), &other_ns);
    let create = |api: &Api<PodCertificateRequest>, p: PodCertificateRequest| {
        let api = api.clone();
        async move { api.create(&PostParams::default(), &p).await }
    };

    // 1.36 form (stubPKCS10Request), maxExpirationSeconds over the policy: clamped to 1h.
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    create(&api, pcr("stub", &signer, stub_fields(&key), json!({})))
        .await
        .expect("create");
    let (p, type_, _, message) = terminal(&env, &api, "stub").await;
    assert_eq!(type_, "Issued", "{message}");
    check_issued(
        &env,
        &root.pem,
        &p,
        &key.subject_public_key_info(),
        ONE_HOUR_SPIFFE,
    );

    // 1.35 form (pkixPublicKey + proofOfPossession over the pod UID), Ed25519.
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let pop = json!({
        "pkixPublicKey": base64_encode(&ed.subject_public_key_info()),
        "proofOfPossession": base64_encode(&ed.sign(POD_UID.as_bytes()).unwrap()),
    });
    create(&api, pcr("pkix", &signer, pop, json!({})))
        .await
        .expect("create");
    let (p, type_, _, message) = terminal(&env, &api, "pkix").await;
    assert_eq!(type_, "Issued", "{message}");
    check_issued(
        &env,
        &root.pem,
        &p,
        &ed.subject_public_key_info(),
        ONE_HOUR_SPIFFE,
    );

    // Hostile and unsupported requests: each denied with its reason, never issued.
    let annotated = pcr(
        "annotated",
        &signer,
        stub_fields(&key),
        json!({"unverifiedUserAnnotations": {"example.com/role": "cluster-admin"}}),
    );
    let no_template = pcr("plain", &plain, stub_fields(&key), json!({}));
    let foreign = pcr("foreign", &signer, stub_fields(&key), json!({}));
    let cases = [
        (
            &api,
            annotated,
            "InvalidUnverifiedUserAnnotations",
            "unverifiedUserAnnotations",
        ),
        (
            &api,
            no_template,
            "PolicyViolation",
            "no spec.podCertificates",
        ),
        (
            &other,
            foreign,
            "SignerNamespaceMismatch",
            "signs only for pods in namespace",
        ),
    ];
    for (api, p, reason, says) in cases {
        let name = p.metadata.name.clone().unwrap();
        create(api, p).await.expect("create");
        let (p, type_, got, message) = terminal(&env, api, &name).await;
        assert_eq!(
            (type_.as_str(), got.as_str()),
            ("Denied", reason),
            "{name}: {message}"
        );
        assert!(message.contains(says), "{name}: {message}");
        assert!(p.status.unwrap().certificate_chain.is_none(), "{name}");
        let ns = api.namespace().unwrap().to_string();
        assert!(
            warning_event(&env, &ns, &name).await,
            "{name}: a Warning Event"
        );
    }

    // An RSA 2048 key and a proof of possession over another pod's UID: the real API server
    // refuses both at creation; the test API server does not validate them, and pki-issuer
    // denies them itself.
    let rsa = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let forged = json!({
        "pkixPublicKey": base64_encode(&ed.subject_public_key_info()),
        "proofOfPossession": base64_encode(&ed.sign(b"another-pod-uid").unwrap()),
    });
    for (name, fields, reason) in [
        ("rsa2048", stub_fields(&rsa), "UnsupportedKeyType"),
        ("forged-pop", forged, "PolicyViolation"),
    ] {
        let created = create(&api, pcr(name, &signer, fields, json!({}))).await;
        if harness::kube() {
            let e = created.expect_err("the API server validates the key");
            assert!(
                matches!(&e, kube::Error::Api(s) if s.code == 422),
                "{name}: {e}"
            );
            continue;
        }
        created.expect("create");
        let (_, type_, got, message) = terminal(&env, &api, name).await;
        assert_eq!(
            (type_.as_str(), got.as_str()),
            ("Denied", reason),
            "{name}: {message}"
        );
    }
}

/// The Node, the ServiceAccount `web` and Pod `web-0` bound to the node with a podCertificate
/// projected volume for `signer` and a `key_type` key, and the signer's ClusterTrustBundle
/// (Pending: no kubelet runs it). Returns the pod's name.
pub(crate) async fn setup_pod(env: &Env, signer: &str, key_type: &str) -> String {
    use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
    let nodes: Api<Node> = Api::all(env.client.clone());
    let node = serde_json::from_value(json!({"metadata": {"name": NODE}})).unwrap();
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create node: {e}"),
    }
    let sas: Api<ServiceAccount> = Api::namespaced(env.client.clone(), &env.ns);
    let sa = serde_json::from_value(json!({"metadata": {"name": "web"}})).unwrap();
    sas.create(&PostParams::default(), &sa)
        .await
        .expect("create SA");
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.ns);
    let pod = serde_json::from_value(json!({
        "metadata": {"name": "web-0"},
        "spec": {
            "nodeName": NODE, "serviceAccountName": "web", "automountServiceAccountToken": false,
            "containers": [{"name": "app", "image": "registry.invalid/app:1",
                            "volumeMounts": [{"name": "pod-cert", "mountPath": "/var/run/pod-cert"}]}],
            "volumes": [{"name": "pod-cert", "projected": {"sources": [
                {"podCertificate": {
                    "signerName": signer, "keyType": key_type, "maxExpirationSeconds": 3600,
                    "credentialBundlePath": "credentialbundle.pem"}},
                {"clusterTrustBundle": {"signerName": signer, "labelSelector": {}, "path": "ca.crt"}},
            ]}}],
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    "web-0".into()
}

/// A kubeconfig for the node's kubelet token (the control plane's DIR/pki/node.token).
pub(crate) fn node_kubeconfig(env: &Env) -> std::path::PathBuf {
    let dir = env.kubeconfig.parent().expect("control plane dir");
    let token = std::fs::read_to_string(dir.join("pki/node.token")).expect("node token");
    let path = env.dir.path().join("node.kubeconfig");
    std::fs::write(&path, env.kubeconfig_with_token(token.trim(), None)).unwrap();
    path
}

/// A PodCertificateRequest in `ns` for PKIClusterIssuer `issuer` (whose spec the caller made;
/// it gets `podCertificates` here) is Issued: the chart test's proof that its RBAC suffices.
pub(crate) async fn issued_under(env: &Env, ns: &str, issuer: &str) {
    let issuers: Api<pki_issuer::api::PKIClusterIssuer> = Api::all(env.client.clone());
    let patch = json!({"spec": {"podCertificates": {"uriTemplate": SPIFFE},
        "policy": {"uris": [SPIFFE], "dnsNames": ["*.{namespace}.svc", "*.example.com"]}}});
    issuers
        .patch(
            issuer,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("patch the issuer");
    let api: Api<PodCertificateRequest> = Api::namespaced(env.client.clone(), ns);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let signer = format!("pkiclusterissuers.pki-issuer.io/{issuer}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // The issuer is checked again for its new generation: until then the request waits.
    api.create(
        &PostParams::default(),
        &pcr("chart-pcr", &signer, stub_fields(&key), json!({})),
    )
    .await
    .expect("create PCR");
    let (p, type_, reason, message) = terminal(env, &api, "chart-pcr").await;
    assert!(tokio::time::Instant::now() < deadline);
    assert_eq!(
        (type_.as_str(), reason.as_str()),
        ("Issued", "Issued"),
        "{message}\n{}",
        env.logs()
    );
    let (spki, uris, _) = leaf_facts(&p.status.unwrap().certificate_chain.unwrap());
    assert_eq!(spki, key.subject_public_key_info());
    assert_eq!(uris, vec![format!("spiffe://cluster.local/ns/{ns}/sa/web")]);
}

/// Who may create a PodCertificateRequest, on the real API server: the Node authorizer and
/// NodeRestriction let a node's kubelet ask only for pods bound to it, with their own
/// ServiceAccount; a user without RBAC `create` is refused; a user WITH it is not checked by
/// the API server at all (NodeRestriction only looks at nodes), so pki-issuer signs what it
/// writes: `create` on podcertificaterequests grants every pod identity of the namespace.
#[tokio::test]
async fn only_a_pods_own_node_asks_for_its_certificate() {
    if !harness::kube() {
        harness::skip(
            "pod_cert::only_a_pods_own_node_asks_for_its_certificate",
            "needs the real control plane (Node authorizer, NodeRestriction, node and user tokens)",
        );
        return;
    }
    use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
    let env = Env::start("podcert-node").await;
    crate::csr::install(&env, &env.cluster_ns).await;
    let issuer = format!("{}-pods", env.ns);
    env.create_cluster_issuer(&issuer, issuer_spec(true)).await;
    env.wait_issuer_ready(&issuer, true, "True").await;
    let signer = format!("pkiclusterissuers.pki-issuer.io/{issuer}");
    setup_pod(&env, &signer, "ECDSAP256").await;
    let other_ns = format!("{}-other", env.ns);
    env.create_namespace(&other_ns).await;
    let admin_sa: Api<ServiceAccount> = Api::namespaced(env.client.clone(), &other_ns);
    let sa = serde_json::from_value(json!({"metadata": {"name": "admin"}})).unwrap();
    let admin_sa = admin_sa
        .create(&PostParams::default(), &sa)
        .await
        .expect("SA");

    let pod = Api::<Pod>::namespaced(env.client.clone(), &env.ns)
        .get("web-0")
        .await
        .unwrap();
    let web = Api::<ServiceAccount>::namespaced(env.client.clone(), &env.ns)
        .get("web")
        .await
        .unwrap();
    let node = Api::<Node>::all(env.client.clone())
        .get(NODE)
        .await
        .unwrap();
    let live = json!({
        "podUID": pod.metadata.uid, "serviceAccountUID": web.metadata.uid,
        "nodeUID": node.metadata.uid,
    });
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let dir = env.kubeconfig.parent().unwrap().join("pki");
    let as_token = |file: &str| {
        let token = std::fs::read_to_string(dir.join(file)).expect("token");
        let path = env.dir.path().join(format!("{file}.kubeconfig"));
        std::fs::write(&path, env.kubeconfig_with_token(token.trim(), None)).unwrap();
        path
    };
    let node_client = harness::client_for(&as_token("node.token")).await;
    let user_client = harness::client_for(&as_token("user.token")).await;
    let as_node: Api<PodCertificateRequest> = Api::namespaced(node_client.clone(), &env.ns);

    // The pod's own node, with the live pod's fields: signed for the pod's ServiceAccount.
    as_node
        .create(
            &PostParams::default(),
            &pcr("by-node", &signer, stub_fields(&key), live.clone()),
        )
        .await
        .expect("the pod's node may ask");
    let api: Api<PodCertificateRequest> = Api::namespaced(env.client.clone(), &env.ns);
    let (p, type_, _, message) = terminal(&env, &api, "by-node").await;
    assert_eq!(type_, "Issued", "{message}");
    let (_, uris, _) = leaf_facts(&p.status.unwrap().certificate_chain.unwrap());
    assert_eq!(
        uris,
        vec![format!("spiffe://cluster.local/ns/{}/sa/web", env.ns)]
    );

    // The node lying: another namespace's ServiceAccount, a pod of another namespace, another
    // node's name. NodeRestriction refuses each: 403, except a pod it cannot find, which it
    // reports as an error (500, "not found") — refused either way.
    let mut lies = vec![];
    let mut other_sa = live.clone();
    other_sa["serviceAccountName"] = json!("admin");
    other_sa["serviceAccountUID"] = json!(admin_sa.metadata.uid);
    lies.push(("other-sa", env.ns.clone(), other_sa));
    lies.push(("other-ns-pod", other_ns.clone(), live.clone()));
    let mut other_node = live.clone();
    other_node["nodeName"] = json!("another-node");
    lies.push(("other-node", env.ns.clone(), other_node));
    for (name, ns, fields) in lies {
        let api: Api<PodCertificateRequest> = Api::namespaced(node_client.clone(), &ns);
        let e = api
            .create(
                &PostParams::default(),
                &pcr(name, &signer, stub_fields(&key), fields),
            )
            .await
            .expect_err(name);
        let refused = match &e {
            kube::Error::Api(s) if name == "other-ns-pod" => {
                s.code == 403 || (s.code == 500 && s.message.contains("not found"))
            }
            kube::Error::Api(s) => s.code == 403,
            _ => false,
        };
        assert!(refused, "{name}: {e}");
    }

    // A user without RBAC: refused by the authorizer.
    let as_user: Api<PodCertificateRequest> = Api::namespaced(user_client, &env.ns);
    let e = as_user
        .create(
            &PostParams::default(),
            &pcr("by-user", &signer, stub_fields(&key), live.clone()),
        )
        .await
        .expect_err("no RBAC");
    assert!(matches!(&e, kube::Error::Api(s) if s.code == 403), "{e}");
    // With RBAC `create`, the API server accepts the user's request (NodeRestriction does not
    // look at users), and it is indistinguishable from the kubelet's: signed.
    env.kubectl(
        &[
            "create",
            "role",
            "pcr-create",
            "-n",
            &env.ns,
            "--verb=create",
            "--resource=podcertificaterequests.certificates.k8s.io",
        ],
        None,
    )
    .await
    .unwrap();
    env.kubectl(
        &[
            "create",
            "rolebinding",
            "pcr-create",
            "-n",
            &env.ns,
            "--role=pcr-create",
            "--user=pki-e2e-user",
        ],
        None,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    as_user
        .create(
            &PostParams::default(),
            &pcr("by-user", &signer, stub_fields(&key), live),
        )
        .await
        .expect("a user with RBAC create is not checked by NodeRestriction");
    let (_, type_, _, _) = terminal(&env, &api, "by-user").await;
    assert_eq!(
        type_, "Issued",
        "no field of the request tells who created it"
    );
    harness::visible("pod_cert: a user with RBAC create on podcertificaterequests gets any pod identity of the namespace (the API server does not check users)");
}
