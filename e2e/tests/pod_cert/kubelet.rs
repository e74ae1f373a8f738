//! The kubelet's own PodCertificate and ClusterTrustBundle managers (the Go harness
//! `e2e/podcert`, run as `system:node:pki-e2e-node`) against pki-issuer on the real control
//! plane: the control plane's kubelet (1.36, `stubPKCS10Request`) and an older one (1.35,
//! `pkixPublicKey` + `proofOfPossession`, which a kubelet up to three minors older still sends).

use k8s_openapi::api::certificates::v1beta1::PodCertificateRequest;
use kube::Api;
use serde_json::{json, Value};

use super::{issuer_spec, leaf_facts, node_kubeconfig, setup_pod, NODE};
use crate::harness::{self, Env};

/// What the kubelet's managers gave for one pod: the first bundle and the refreshed one (the
/// harness's JSON lines), and the namespace's PodCertificateRequests.
struct KubeletRun {
    issued: Value,
    refreshed: Value,
    pcrs: Vec<PodCertificateRequest>,
}

/// A PKIClusterIssuer with pod certificates and a ClusterTrustBundle, a pod with a `key_type`
/// key projecting both, and the harness of `kubelet` (None: the control plane's version)
/// getting a certificate, checking nothing is refreshed early, then refreshing it. Every
/// bundle is checked: the kubelet's key, the pod's SPIFFE ID, a chain that verifies against
/// the trust anchors the kubelet's ClusterTrustBundle manager reads for the signer name (which
/// are exactly the issuer's roots); a new certificate for a new key, only after beginRefreshAt.
async fn kubelet_run(env: &Env, kubelet: Option<&str>, key_type: &str) -> KubeletRun {
    let root = crate::csr::install(env, &env.cluster_ns).await;
    let issuer = format!("{}-pods", env.ns);
    let mut spec = issuer_spec(true);
    spec["trustDistribution"] = json!({"clusterTrustBundle": true});
    env.create_cluster_issuer(&issuer, spec).await;
    env.wait_issuer_ready(&issuer, true, "True").await;
    let signer = format!("pkiclusterissuers.pki-issuer.io/{issuer}");
    let pod = setup_pod(env, &signer, key_type).await;

    let harness_bin = build_harness(kubelet);
    let out = tokio::process::Command::new(&harness_bin)
        .arg("-kubeconfig")
        .arg(node_kubeconfig(env))
        .args(["-node", NODE, "-namespace", &env.ns, "-pod", &pod])
        .args(["-volume", "pod-cert", "-timeout", "60s"])
        .output()
        .await
        .expect("run the harness");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "harness failed: {stderr}\n{}",
        env.logs()
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("harness JSON"))
        .collect();
    let [issued, refreshed] = <[Value; 2]>::try_from(lines)
        .unwrap_or_else(|l| panic!("issued, then refreshed: {l:?}\n{stderr}"));
    assert_eq!(
        (issued["phase"].as_str(), refreshed["phase"].as_str()),
        (Some("issued"), Some("refreshed"))
    );

    let anchors = issued["trustAnchors"].as_str().expect("trustAnchors");
    assert_eq!(
        crate::trust::ders(anchors),
        crate::trust::ders(&root.pem),
        "the projected trust anchors are the issuer's roots"
    );
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let mut chains = vec![];
    for b in [&issued, &refreshed] {
        let chain = b["chain"].as_str().unwrap().to_string();
        let (spki, uris, _) = leaf_facts(&chain);
        assert_eq!(
            spki,
            b64(&b["publicKey"]),
            "the certificate is for the kubelet's key"
        );
        assert_eq!(
            uris,
            vec![format!("spiffe://cluster.local/ns/{}/sa/web", env.ns)]
        );
        let (ok, out) = env.openssl_verify(anchors, &chain, "sslclient");
        assert!(ok, "{out}");
        chains.push(chain);
    }
    assert_ne!(chains[0], chains[1], "a new certificate");
    assert_ne!(issued["publicKey"], refreshed["publicKey"], "for a new key");
    assert_eq!(
        refreshed["pcrs"], 2,
        "one new PodCertificateRequest for the refresh"
    );
    let t = |v: &Value| -> jiff::Timestamp { v.as_str().unwrap().parse().expect("RFC 3339") };
    assert!(
        t(&refreshed["managerNow"]) >= t(&issued["beginRefreshAt"]),
        "refreshed only after beginRefreshAt: {issued} {refreshed}"
    );
    let api: Api<PodCertificateRequest> = Api::namespaced(env.client.clone(), &env.ns);
    let pcrs = api
        .list(&Default::default())
        .await
        .expect("list PCRs")
        .items;
    assert_eq!(pcrs.len(), 2);
    harness::visible(&format!(
        "pod_cert: the {} kubelet's manager got {} and, after beginRefreshAt {}, {}",
        kubelet.unwrap_or("control plane's"),
        issued["pcr"],
        issued["beginRefreshAt"],
        refreshed["pcr"]
    ));
    KubeletRun {
        issued,
        refreshed,
        pcrs,
    }
}

/// The kubelet of the control plane's version (k8s.io/kubernetes v1.36.3) obtains a
/// certificate for a pod bound to its node with a `stubPKCS10Request`, refreshes it after
/// beginRefreshAt, and projects the issuer's roots.
#[tokio::test]
async fn the_kubelets_manager_gets_and_refreshes_a_pod_certificate() {
    let test = "pod_cert::kubelet::the_kubelets_manager_gets_and_refreshes_a_pod_certificate";
    let Some(env) = start(test, "podcert-kubelet").await else {
        return;
    };
    let run = kubelet_run(&env, None, "ECDSAP256").await;
    for p in &run.pcrs {
        assert!(
            !p.spec.stub_pkc_s10_request.0.is_empty(),
            "1.36 sends a stub CSR"
        );
        assert!(p.spec.pkix_public_key.is_none());
    }
}

/// A Kubernetes 1.35 kubelet (k8s.io/kubernetes v1.35.4) against the 1.36 control plane: its
/// requests carry `pkixPublicKey` and a `proofOfPossession` over the pod UID, here for an
/// RSA-3072 key, which Go's `rsa.SignPSS` with nil options signs with the largest salt.
#[tokio::test]
async fn a_1_35_kubelet_gets_certificates_for_pkix_keys_with_proof_of_possession() {
    let test = "pod_cert::kubelet::a_1_35_kubelet_gets_certificates_for_pkix_keys_with_proof_of_possession";
    let Some(env) = start(test, "podcert-kubelet135").await else {
        return;
    };
    let skew = skew_version();
    let run = kubelet_run(&env, Some(&skew), "RSA3072").await;
    for p in &run.pcrs {
        assert!(
            p.spec.stub_pkc_s10_request.0.is_empty(),
            "1.35 sends no stub CSR"
        );
        let spki = &p.spec.pkix_public_key.as_ref().expect("pkixPublicKey").0;
        let info = pki_issuer::pki::key_info_from_spki(spki).unwrap();
        assert_eq!(
            (info.algorithm, info.size_bits),
            (pki_issuer::pki::KeyAlgorithm::Rsa, 3072)
        );
        assert!(p.spec.proof_of_possession.is_some());
    }
    assert_ne!(run.issued["pcr"], run.refreshed["pcr"]);
}

/// The test's environment on the real control plane; elsewhere a counted skip.
async fn start(test: &str, name: &str) -> Option<Env> {
    if !harness::kube() {
        harness::skip(
            test,
            "needs the real control plane (Node authorizer, NodeRestriction, a node token)",
        );
        return None;
    }
    Some(Env::start(name).await)
}

/// `KUBELET_SKEW_VERSION` of e2e/controlplane/versions.env.
fn skew_version() -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/controlplane/versions.env");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("KUBELET_SKEW_VERSION="))
        .expect("KUBELET_SKEW_VERSION in versions.env")
        .trim()
        .to_string()
}

/// The harness binary for `kubelet` (None: the control plane's version), built once and
/// cached outside the repository.
fn build_harness(kubelet: Option<&str>) -> std::path::PathBuf {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/scripts/podcert-harness.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args(kubelet)
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "building the harness: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().into()
}
