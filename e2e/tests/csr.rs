//! Scenarios of Kubernetes CertificateSigningRequests (certificates.k8s.io/v1).

use std::time::Duration;

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

use crate::fixtures;
use crate::harness::{written_by_pki_issuer, Env};

struct Csrs<'a> {
    env: &'a Env,
    api: Api<CertificateSigningRequest>,
    prefix: String,
}

impl<'a> Csrs<'a> {
    fn new(env: &'a Env) -> Self {
        Csrs {
            env,
            api: Api::all(env.client.clone()),
            prefix: env.ns.clone(),
        }
    }

    fn name(&self, n: &str) -> String {
        format!("{}-{n}", self.prefix)
    }

    async fn create(
        &self,
        n: &str,
        signer: &str,
        sans: &[&str],
        expiration: Option<i32>,
        annotations: serde_json::Value,
    ) {
        let (_, csr) = fixtures::csr(sans);
        let obj = json!({
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": self.name(n), "annotations": annotations},
            "spec": {
                "request": base64_encode(csr.as_bytes()),
                "signerName": signer,
                "expirationSeconds": expiration,
                "usages": ["digital signature", "key encipherment", "server auth", "client auth"],
            }
        });
        self.api
            .create(
                &PostParams::default(),
                &serde_json::from_value(obj).unwrap(),
            )
            .await
            .expect("create CSR");
    }

    async fn decide(&self, n: &str, approve: bool) {
        let type_ = if approve { "Approved" } else { "Denied" };
        let patch = json!({"status": {"conditions": [CertificateSigningRequestCondition {
            type_: type_.into(), status: "True".into(), reason: Some("E2E".into()),
            message: Some(format!("{type_} by the e2e suite")), ..Default::default()
        }]}});
        self.api
            .patch_approval(
                &self.name(n),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .expect("approval");
    }

    async fn get(&self, n: &str) -> CertificateSigningRequest {
        self.api.get(&self.name(n)).await.expect("get CSR")
    }

    async fn wait(
        &self,
        n: &str,
        done: impl Fn(&CertificateSigningRequest) -> bool,
    ) -> CertificateSigningRequest {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let csr = self.get(n).await;
            if done(&csr) {
                return csr;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "CSR {n} never finished: {:?}\n{}",
                csr.status,
                self.env.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_signed(&self, n: &str) -> String {
        let csr = self
            .wait(n, |c| {
                c.status
                    .as_ref()
                    .and_then(|s| s.certificate.as_ref())
                    .is_some()
            })
            .await;
        String::from_utf8(csr.status.unwrap().certificate.unwrap().0).unwrap()
    }

    async fn cleanup(&self, names: &[&str]) {
        for n in names {
            let _ = self
                .api
                .delete(&self.name(n), &DeleteParams::default())
                .await;
        }
    }
}

pub(crate) fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub(crate) fn failed_message(csr: &CertificateSigningRequest) -> Option<String> {
    csr.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")
        .map(|c| c.message.clone().unwrap_or_default())
}

fn lifetime(chain_pem: &str) -> i64 {
    let der = pem::parse_many(chain_pem).unwrap()[0].contents().to_vec();
    let info = pki_issuer::pki::cert_info(&der).unwrap();
    (info.not_after - info.not_before).whole_seconds()
}

pub(crate) async fn install(env: &Env, ns: &str) -> fixtures::Ca {
    let root = fixtures::root("Example Corp Root CA");
    let int = fixtures::intermediate(&root, "Example Corp CSR Intermediate");
    env.put_tls_secret(ns, "mesh-intermediate", &int.pem, &int.key_pem)
        .await;
    env.put_config_map(ns, "corp-roots", "roots.pem", &root.pem)
        .await;
    root
}

pub(crate) fn spec(dns: &[&str]) -> serde_json::Value {
    json!({
        "secret": {"name": "mesh-intermediate"},
        "trustAnchors": {"configMap": {"name": "corp-roots", "key": "roots.pem"}},
        "policy": {"maxDuration": "24h", "dnsNames": dns},
    })
}

#[tokio::test]
async fn csr_for_each_scope_gets_a_valid_chain_and_others_are_untouched() {
    let env = Env::start("csr").await;
    let root = install(&env, &env.ns).await;
    install(&env, &env.cluster_ns).await; // a different root for the cluster issuer
    env.create_issuer("apps", spec(&["*.{namespace}.svc"]))
        .await;
    let cluster = format!("{}-mesh", env.ns);
    env.create_cluster_issuer(&cluster, spec(&["*.example.com"]))
        .await;
    env.wait_issuer_ready("apps", false, "True").await;
    env.wait_issuer_ready(&cluster, true, "True").await;
    let csrs = Csrs::new(&env);
    let namespaced_signer = format!("pkiissuers.pki-issuer.io/{}.apps", env.ns);
    let cluster_signer = format!("pkiclusterissuers.pki-issuer.io/{cluster}");
    let san = format!("web.{}.svc", env.ns);

    csrs.create(
        "other-signer",
        "example.com/not-ours",
        &[&san],
        None,
        json!({}),
    )
    .await;
    csrs.decide("other-signer", true).await;
    csrs.create("unapproved", &namespaced_signer, &[&san], None, json!({}))
        .await;
    csrs.create("denied", &namespaced_signer, &[&san], None, json!({}))
        .await;
    csrs.decide("denied", false).await;

    csrs.create("ns", &namespaced_signer, &[&san], None, json!({}))
        .await;
    csrs.decide("ns", true).await;
    let chain = csrs.wait_signed("ns").await;
    let (ok, out) = env.openssl_verify(&root.pem, &chain, "sslserver");
    assert!(ok, "{out}");

    csrs.create(
        "cluster",
        &cluster_signer,
        &["api.example.com"],
        None,
        json!({"experimental.cert-manager.io/request-duration": "2400h"}),
    )
    .await;
    csrs.decide("cluster", true).await;
    let chain = csrs.wait_signed("cluster").await;
    assert!(
        (86400..=86460).contains(&lifetime(&chain)),
        "100 days clamped to maxDuration 24h: {}",
        lifetime(&chain)
    );

    csrs.create(
        "annotated",
        &namespaced_signer,
        &[&san],
        None,
        json!({"experimental.cert-manager.io/request-duration": "2h"}),
    )
    .await;
    csrs.decide("annotated", true).await;
    let chain = csrs.wait_signed("annotated").await;
    assert!(
        (7200..=7260).contains(&lifetime(&chain)),
        "the duration annotation is honoured: {}",
        lifetime(&chain)
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in ["other-signer", "unapproved", "denied"] {
        let csr = csrs.get(n).await;
        let st = csr.status.clone().unwrap_or_default();
        assert!(st.certificate.is_none(), "{n} must not be signed");
        assert!(
            failed_message(&csr).is_none(),
            "{n} must not be marked Failed"
        );
        assert!(
            !written_by_pki_issuer(&csr.metadata),
            "{n} written by pki-issuer"
        );
    }
    csrs.cleanup(&[
        "other-signer",
        "unapproved",
        "denied",
        "ns",
        "cluster",
        "annotated",
    ])
    .await;
    env.delete_cluster_issuer(&cluster).await;
}

#[tokio::test]
async fn csr_expiration_seconds_is_honoured_clamped_and_overridden_by_the_annotation() {
    let env = Env::start("csrexp").await;
    install(&env, &env.ns).await;
    env.create_issuer("apps", spec(&["*.{namespace}.svc"]))
        .await;
    env.wait_issuer_ready("apps", false, "True").await;
    let csrs = Csrs::new(&env);
    let signer = format!("pkiissuers.pki-issuer.io/{}.apps", env.ns);
    let san = format!("web.{}.svc", env.ns);
    let cases = [
        (
            "hour",
            Some(3600),
            json!({}),
            3600,
            "expirationSeconds honoured",
        ),
        (
            "long",
            Some(100 * 86400),
            json!({}),
            86400,
            "100 days clamped to maxDuration 24h",
        ),
        (
            "annotated",
            Some(3600),
            json!({"experimental.cert-manager.io/request-duration": "2h"}),
            7200,
            "the annotation wins over expirationSeconds",
        ),
    ];
    for (n, expiration, annotations, want, why) in cases {
        csrs.create(n, &signer, &[&san], expiration, annotations)
            .await;
        csrs.decide(n, true).await;
        let chain = csrs.wait_signed(n).await;
        assert!(
            (want..=want + 60).contains(&lifetime(&chain)),
            "{why}: {}",
            lifetime(&chain)
        );
    }
    csrs.cleanup(&["hour", "long", "annotated"]).await;
}

#[tokio::test]
async fn csr_policy_violation_is_failed() {
    let env = Env::start("csrpol").await;
    install(&env, &env.ns).await;
    env.create_issuer("apps", spec(&["*.{namespace}.svc"]))
        .await;
    env.wait_issuer_ready("apps", false, "True").await;
    let csrs = Csrs::new(&env);
    let signer = format!("pkiissuers.pki-issuer.io/{}.apps", env.ns);
    csrs.create(
        "evil",
        &signer,
        &["kubernetes.default.svc"],
        None,
        json!({}),
    )
    .await;
    csrs.decide("evil", true).await;
    let csr = csrs.wait("evil", |c| failed_message(c).is_some()).await;
    let msg = failed_message(&csr).unwrap();
    assert!(msg.contains("kubernetes.default.svc"), "{msg}");
    assert!(csr.status.unwrap().certificate.is_none());
    csrs.cleanup(&["evil"]).await;
}

/// The first status write of every CSR fails (500): the next attempt writes the certificate
/// signed the first time, so each CSR is signed exactly once (the request pipeline's memory is
/// shared by every request kind).
#[tokio::test]
async fn csr_whose_first_status_write_fails_is_signed_once() {
    if crate::harness::skip_on_kube(
        "csr_whose_first_status_write_fails_is_signed_once",
        "injects 500s into status writes, which only the test API server's FaultInjector can do",
    ) || crate::harness::external()
    {
        return;
    }
    let env = Env::start("csrwrite").await;
    let root = install(&env, &env.cluster_ns).await;
    let cluster = format!("{}-mesh", env.ns);
    env.create_cluster_issuer(&cluster, spec(&["*.example.com"]))
        .await;
    env.wait_issuer_ready(&cluster, true, "True").await;
    let faults = env.server.as_ref().unwrap().faults();
    faults.fail_with(
        test_apiserver::Matcher {
            verb: Some("patch".into()),
            resource: Some("certificatesigningrequests".into()),
            subresource: Some("status".into()),
            ..Default::default()
        },
        vec![500],
        true,
        None,
        None,
    );
    let csrs = Csrs::new(&env);
    let signer = format!("pkiclusterissuers.pki-issuer.io/{cluster}");
    let names: Vec<String> = (0..5).map(|i| format!("w{i}")).collect();
    for n in &names {
        csrs.create(n, &signer, &[&format!("{n}.example.com")], None, json!({}))
            .await;
        csrs.decide(n, true).await;
    }
    for n in &names {
        let chain = csrs.wait_signed(n).await;
        let (ok, out) = env.openssl_verify(&root.pem, &chain, "sslserver");
        assert!(ok, "{out}");
    }
    let patches = faults.request_count("patch", "certificatesigningrequests", "status");
    assert!(
        patches >= 10,
        "each CSR's first write failed and was retried: {patches}"
    );
    let logs = env.logs();
    for n in &names {
        let uid = csrs.get(n).await.metadata.uid.unwrap();
        let signed = logs
            .lines()
            .filter(|l| l.contains("certificate signed") && l.contains(&uid))
            .count();
        assert_eq!(signed, 1, "{n} signed {signed} times\n{logs}");
    }
    csrs.cleanup(&names.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    env.delete_cluster_issuer(&cluster).await;
}
