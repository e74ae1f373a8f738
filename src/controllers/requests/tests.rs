//! The write path at the mocked-API level: a scripted API server behind kube's `Client`, the
//! real pipeline, a real Secret signer. Each case asserts the exact requests sent.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
};
use k8s_openapi::api::certificates::v1beta1::PodCertificateRequest;
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::Client;
use serde_json::{json, Value};

use super::memory::RequestMemory;
use super::pipeline::sign;
use super::RequestKind;
use crate::api::cert_manager::{CertificateRequest, CertificateRequestSpec, IssuerRef};
use crate::api::condition::Condition;
use crate::api::issuer::{IssuerKey, IssuerKind};
use crate::controllers::cache::{CachedIssuer, IssuerCache};
use crate::controllers::events::RequestEvents;
use crate::controllers::fence::Fence;
use crate::controllers::metrics::Metrics;
use crate::controllers::{Config, Context, Error};
use crate::issuance::remote_slots::RemoteSlots;
use crate::pki::testutil::{self, KeyKind};
use crate::signers::load::LoadedIssuer;
use crate::signers::secret::SecretSigner;
use crate::signers::Signer;

/// One request the mock received: method, path, JSON body.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    body: Value,
}

type Script = Arc<dyn Fn(&Seen, usize) -> (u16, Value) + Send + Sync>;

/// An API server that answers from `script(request, n)` (`n`: how many earlier requests had
/// the same method and path) and records every request.
fn mock(script: Script) -> (Client, Arc<Mutex<Vec<Seen>>>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let svc = tower::service_fn(move |req: Request<Body>| {
        let log = log.clone();
        let script = script.clone();
        async move {
            let method = req.method().clone();
            let path = req.uri().path().to_string();
            let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let seen = Seen { method, path, body };
            let n = {
                let mut l = log.lock().unwrap();
                let n = l
                    .iter()
                    .filter(|s| s.method == seen.method && s.path == seen.path)
                    .count();
                l.push(seen.clone());
                n
            };
            let (status, answer) = script(&seen, n);
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            )
        }
    });
    (Client::new(svc, "default"), seen)
}

fn status_error(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
           "reason": match code { 409 => "Conflict", 422 => "Invalid", _ => "InternalError" },
           "message": "scripted"})
}

fn context(client: Client, fence: Fence) -> Context {
    let reporter = Reporter {
        controller: "pki-issuer".into(),
        instance: None,
    };
    Context {
        client: client.clone(),
        recorder: kube::runtime::events::Recorder::new(client.clone(), reporter.clone()),
        request_events: RequestEvents::new(client, reporter),
        metrics: Arc::new(Metrics::new()),
        cache: Arc::new(IssuerCache::default()),
        remote_slots: RemoteSlots::new(crate::issuance::remote_slots::Limits {
            per_issuer: 4,
            per_endpoint: 4,
            total: 8,
        }),
        config: Config {
            cluster_resource_namespace: "pki".into(),
            max_retry_duration: std::time::Duration::from_secs(600),
            watch_namespaces: vec![],
            concurrency: 1,
            allowed_remote_ca_urls: Default::default(),
            pkcs11_modules: Default::default(),
        },
        fence,
        requests: RequestMemory::default(),
        invalid_reported: Default::default(),
    }
}

fn issuer() -> (IssuerKey, CachedIssuer) {
    let (root, int) = testutil::chain(KeyKind::P256);
    let secret = SecretSigner::from_pem(&int.pem, &int.key_pem).unwrap();
    let anchors = crate::pki::parse_pem_certs(&root.pem).unwrap();
    let chain = crate::pki::ValidatedChain::new(
        secret.chain().clone(),
        Some(secret.key()),
        anchors.clone(),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let loaded = LoadedIssuer {
        signer: Arc::new(secret),
        anchors_pem: crate::pki::certs_to_pem(&anchors),
        policy: crate::pki::Policy {
            dns_names: Some(vec!["*.apps.svc".into()]),
            ..Default::default()
        },
        extensions: Default::default(),
        signer_info: chain.info().clone(),
        chain: Arc::new(chain),
        anchor_infos: vec![],
        notes: vec![],
        pod_certificates: Some(crate::api::pod_certificates::PodCertificatesSpec {
            uri_template: None,
            dns_name_templates: vec!["{serviceAccount}.{namespace}.svc".into()],
        }),
    };
    let key = IssuerKey {
        kind: IssuerKind::Cluster,
        namespace: None,
        name: "mesh".into(),
    };
    let cached = CachedIssuer {
        uid: "issuer-uid".into(),
        generation: 1,
        loaded: Arc::new(loaded),
    };
    (key, cached)
}

fn csr_pem() -> String {
    let kp = testutil::key(KeyKind::P256);
    let mut p = rcgen::CertificateParams::new(vec!["web.apps.svc".to_string()]).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.serialize_request(&kp).unwrap().pem().unwrap()
}

const USAGES: [&str; 2] = ["server auth", "client auth"];

fn certificate_request(rv: &str) -> CertificateRequest {
    let mut cr = CertificateRequest::new(
        "req",
        CertificateRequestSpec {
            request: csr_pem().into_bytes(),
            issuer_ref: IssuerRef {
                name: "mesh".into(),
                kind: Some("PKIClusterIssuer".into()),
                group: Some("pki-issuer.io".into()),
            },
            usages: Some(USAGES.iter().map(|u| u.to_string()).collect()),
            ..Default::default()
        },
    );
    cr.metadata.namespace = Some("apps".into());
    cr.metadata.uid = Some("cr-uid".into());
    cr.metadata.resource_version = Some(rv.into());
    cr.status = Some(crate::api::cert_manager::CertificateRequestStatus {
        conditions: vec![Condition::new("Approved", true, "test", "approved")],
        ..Default::default()
    });
    cr
}

fn signing_request(rv: &str) -> CertificateSigningRequest {
    CertificateSigningRequest {
        metadata: kube::api::ObjectMeta {
            name: Some("csr".into()),
            uid: Some("csr-uid".into()),
            resource_version: Some(rv.into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: k8s_openapi::ByteString(csr_pem().into_bytes()),
            signer_name: "pkiclusterissuers.pki-issuer.io/mesh".into(),
            usages: Some(USAGES.iter().map(|u| u.to_string()).collect()),
            ..Default::default()
        },
        status: Some(CertificateSigningRequestStatus {
            conditions: Some(vec![CertificateSigningRequestCondition {
                type_: "Approved".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

/// An open PodCertificateRequest of the kubelet of `apps/web`, signed by a stub request.
fn pod_request(rv: &str) -> PodCertificateRequest {
    let key = testutil::key(KeyKind::P256);
    let mut pcr = super::pod_certificate_request::tests::pcr(
        "apps",
        "pkiclusterissuers.pki-issuer.io/mesh",
        &key,
    );
    pcr.metadata.uid = Some("pcr-uid".into());
    pcr.metadata.resource_version = Some(rv.into());
    pcr
}

/// The certificate a status patch carries (any kind).
fn written(s: &Seen) -> Option<String> {
    let st = &s.body["status"];
    st["certificate"]
        .as_str()
        .or(st["certificateChain"].as_str())
        .map(str::to_string)
}

fn status_patches(seen: &[Seen]) -> Vec<Seen> {
    seen.iter()
        .filter(|s| s.method == Method::PATCH && s.path.ends_with("/status"))
        .cloned()
        .collect()
}

/// Answers status patches with `patch(n)` (a 200 returns `template` with the patched
/// status), GETs of the object with `get`, Events with 201.
fn script<K: RequestKind>(template: &K, patch: fn(usize) -> u16, get: Option<K>) -> Script {
    let template = serde_json::to_value(template).unwrap();
    Arc::new(move |s: &Seen, n| {
        if s.path.ends_with("/status") && s.method == Method::PATCH {
            let code = patch(n);
            if code == 200 {
                let mut obj = template.clone();
                obj["status"] = s.body["status"].clone();
                return (200, obj);
            }
            return (code, status_error(code));
        }
        if s.method == Method::GET {
            return match &get {
                Some(obj) => (200, serde_json::to_value(obj).unwrap()),
                None => (404, status_error(404)),
            };
        }
        if s.path.ends_with("/events") {
            return (201, s.body.clone());
        }
        (404, status_error(404))
    })
}

/// A failed first write (500) is retried by the next reconcile with the certificate signed
/// the first time: signed exactly once, for every request kind.
async fn failed_write_is_not_signed_again<K: RequestKind>(req: K) {
    let (client, seen) = mock(script(&req, |n| if n == 0 { 500 } else { 200 }, None));
    let ctx = context(client, Fence::open());
    let (key, issuer) = issuer();
    let first = sign(&ctx, &req, &key, &issuer).await;
    assert!(matches!(first, Err(Error::Kube(_))), "{first:?}");
    sign(&ctx, &req, &key, &issuer)
        .await
        .expect("second reconcile writes");
    let patches = status_patches(&seen.lock().unwrap());
    assert_eq!(patches.len(), 2, "{patches:?}");
    let (a, b) = (written(&patches[0]), written(&patches[1]));
    assert!(a.is_some() && a == b, "the same certificate both times");
    assert!(ctx.requests.is_finished(&req.meta().uid.clone().unwrap()));
    // A third reconcile (a stale cached version) sends nothing.
    sign(&ctx, &req, &key, &issuer).await.unwrap();
    assert_eq!(status_patches(&seen.lock().unwrap()).len(), 2);
}

#[tokio::test]
async fn a_certificate_request_whose_write_fails_is_signed_once() {
    failed_write_is_not_signed_again(certificate_request("1")).await;
}

#[tokio::test]
async fn a_csr_whose_write_fails_is_signed_once() {
    failed_write_is_not_signed_again(signing_request("1")).await;
}

#[tokio::test]
async fn a_pod_certificate_request_whose_write_fails_is_signed_once() {
    failed_write_is_not_signed_again(pod_request("1")).await;
}

/// 422 on the certificate's write (the API server's validation refuses it for good, as a
/// PodCertificateRequest with a notBefore over 5 minutes old is): the request is failed with
/// the API server's reason at once, not retried forever, and no certificate is written.
async fn refused_certificate_fails_the_request<K: RequestKind>(req: K) {
    let (client, seen) = mock(script(&req, |n| if n == 0 { 422 } else { 200 }, None));
    let ctx = context(client, Fence::open());
    let (key, issuer) = issuer();
    sign(&ctx, &req, &key, &issuer)
        .await
        .expect("failed, not an error");
    let patches = status_patches(&seen.lock().unwrap());
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert!(written(&patches[0]).is_some(), "the certificate was tried");
    assert_eq!(written(&patches[1]), None, "then no certificate");
    let text = patches[1].body["status"].to_string();
    assert!(
        text.contains("VerificationFailed") || text.contains("\"Failed\""),
        "{text}"
    );
    assert!(
        text.contains("the API server refused the issued certificate") && text.contains("scripted"),
        "{text}"
    );
    assert!(ctx.requests.is_finished(&req.meta().uid.clone().unwrap()));
    sign(&ctx, &req, &key, &issuer).await.unwrap();
    assert_eq!(
        status_patches(&seen.lock().unwrap()).len(),
        2,
        "never again"
    );
}

#[tokio::test]
async fn a_certificate_the_api_server_refuses_fails_the_request_for_every_kind() {
    refused_certificate_fails_the_request(certificate_request("1")).await;
    refused_certificate_fails_the_request(signing_request("1")).await;
    refused_certificate_fails_the_request(pod_request("1")).await;
}

/// 409 on the first patch: read again, still open, patch again with the new version, one
/// signing.
async fn conflict_rereads_and_writes_again<K: RequestKind>(req: K, fresh: K) {
    let (client, seen) = mock(script(
        &req,
        |n| if n == 0 { 409 } else { 200 },
        Some(fresh),
    ));
    let ctx = context(client, Fence::open());
    let (key, issuer) = issuer();
    sign(&ctx, &req, &key, &issuer).await.expect("written");
    let seen = seen.lock().unwrap().clone();
    let patches = status_patches(&seen);
    assert_eq!(patches.len(), 2, "{seen:?}");
    assert_eq!(patches[0].body["metadata"]["resourceVersion"], "1");
    assert_eq!(patches[1].body["metadata"]["resourceVersion"], "2");
    assert_eq!(written(&patches[0]), written(&patches[1]));
    assert_eq!(seen.iter().filter(|s| s.method == Method::GET).count(), 1);
}

#[tokio::test]
async fn a_conflict_rereads_and_writes_again_for_every_kind() {
    conflict_rereads_and_writes_again(certificate_request("1"), certificate_request("2")).await;
    conflict_rereads_and_writes_again(signing_request("1"), signing_request("2")).await;
    conflict_rereads_and_writes_again(pod_request("1"), pod_request("2")).await;
}

/// 409, and the fresh version is already finished (another replica wrote it): nothing more
/// is written, and the request is remembered as finished.
#[tokio::test]
async fn a_superseded_write_is_dropped_for_every_kind() {
    let mut done_cr = certificate_request("2");
    done_cr
        .status
        .as_mut()
        .unwrap()
        .conditions
        .push(Condition::new("Ready", true, "Issued", "x"));
    let mut done_csr = signing_request("2");
    done_csr.status.as_mut().unwrap().certificate = Some(k8s_openapi::ByteString(b"C".to_vec()));
    async fn case<K: RequestKind>(req: K, done: K) {
        let (client, seen) = mock(script(&req, |_| 409, Some(done)));
        let ctx = context(client, Fence::open());
        let (key, issuer) = issuer();
        sign(&ctx, &req, &key, &issuer)
            .await
            .expect("superseded is not an error");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(status_patches(&seen).len(), 1, "{seen:?}");
        assert!(
            seen.iter().all(|s| !s.path.ends_with("/events")),
            "no Issued Event for a discarded certificate"
        );
        assert!(ctx.requests.is_finished(&req.meta().uid.clone().unwrap()));
    }
    case(certificate_request("1"), done_cr).await;
    case(signing_request("1"), done_csr).await;
    let mut done_pcr = pod_request("2");
    done_pcr.status = Some(
        serde_json::from_value(json!({"conditions": [{
        "type": "Issued", "status": "True", "reason": "Issued", "message": "x",
        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}))
        .unwrap(),
    );
    case(pod_request("1"), done_pcr).await;
}

/// A closed fence (this replica may have lost its lease): not a single request is sent.
#[tokio::test]
async fn a_closed_fence_sends_nothing() {
    let req = certificate_request("1");
    let (client, seen) = mock(script(&req, |_| 200, None));
    let fence = Fence::elected();
    fence.close();
    let ctx = context(client, fence);
    let (key, issuer) = issuer();
    let result = sign(&ctx, &req, &key, &issuer).await;
    assert!(matches!(result, Err(Error::NotLeader)), "{result:?}");
    assert!(seen.lock().unwrap().is_empty());
}

/// A PodCertificateRequest is issued with the names of its pod's ServiceAccount, the leaf's
/// times and a refresh point; an issuer without `podCertificates`, or whose policy does not
/// allow the names, denies it. One status write each, exactly one terminal condition.
#[tokio::test]
async fn a_pod_certificate_gets_its_service_accounts_names_or_a_denial() {
    let req = pod_request("1");
    let (client, seen) = mock(script(&req, |_| 200, None));
    let ctx = context(client, Fence::open());
    let (key, signer) = issuer();
    sign(&ctx, &req, &key, &signer).await.expect("written");
    let patches = status_patches(&seen.lock().unwrap());
    assert_eq!(patches.len(), 1);
    let status = &patches[0].body["status"];
    assert_eq!(status["conditions"].as_array().unwrap().len(), 1);
    assert_eq!(status["conditions"][0]["type"], "Issued");
    let chain = status["certificateChain"].as_str().unwrap();
    let leaf = pem::parse(chain).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.contents()).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        format!("{:?}", san.value.general_names),
        r#"[DNSName("web.apps.svc")]"#
    );
    for field in ["notBefore", "notAfter", "beginRefreshAt"] {
        assert!(status[field].is_string(), "{field}");
    }
    let certs = pem::parse_many(chain).unwrap();
    assert_eq!(certs.len(), 2, "the leaf, then the signing intermediate");
    let root = pem::parse(&signer.loaded.anchors_pem).unwrap();
    assert!(
        certs.iter().all(|c| c.contents() != root.contents()),
        "the root is not in the chain"
    );

    type Edit = fn(&mut LoadedIssuer);
    let cases: [(&str, Edit, &str, &str, &str); 5] = [
        (
            "a backend that takes names only from the CSR",
            |l| l.signer = Arc::new(CsrNamesOnly(l.signer.clone())),
            "Failed",
            "SigningFailed",
            "stub CSR carries none",
        ),
        (
            "no podCertificates",
            |l| l.pod_certificates = None,
            "Denied",
            "PolicyViolation",
            "no spec.podCertificates",
        ),
        (
            "names outside the policy",
            |l| {
                l.pod_certificates.as_mut().unwrap().dns_name_templates =
                    vec!["{serviceAccount}.{namespace}.cluster.example".into()]
            },
            "Denied",
            "PolicyViolation",
            "web.apps.cluster.example",
        ),
        (
            "a key type the policy refuses",
            |l| {
                l.policy.key_algorithms = vec![crate::pki::KeyRule {
                    algorithm: crate::pki::KeyAlgorithm::Ed25519,
                    min_size: None,
                }]
            },
            "Denied",
            "UnsupportedKeyType",
            "ECDSA",
        ),
        (
            "maxDuration under 1h",
            |l| l.policy.max_duration = std::time::Duration::from_secs(3000),
            "Failed",
            "SigningFailed",
            "at least 1h",
        ),
    ];
    for (case, edit, type_, reason, says) in cases {
        let (key, mut cached) = issuer();
        edit(Arc::get_mut(&mut cached.loaded).unwrap());
        let req = pod_request("1");
        let (client, seen) = mock(script(&req, |_| 200, None));
        let ctx = context(client, Fence::open());
        sign(&ctx, &req, &key, &cached).await.expect("written");
        let patches = status_patches(&seen.lock().unwrap());
        assert_eq!(patches.len(), 1, "{case}");
        let status = &patches[0].body["status"];
        assert_eq!(status["conditions"].as_array().unwrap().len(), 1, "{case}");
        let cond = &status["conditions"][0];
        assert_eq!(
            (cond["type"].as_str(), cond["reason"].as_str()),
            (Some(type_), Some(reason)),
            "{case}: {cond}"
        );
        assert!(
            cond["message"].as_str().unwrap().contains(says),
            "{case}: {cond}"
        );
        assert!(status.get("certificateChain").is_none(), "{case}");
    }
}

/// A backend like Vault with `use_csr_sans`: it would sign only the CSR's names.
struct CsrNamesOnly(Arc<dyn Signer>);

impl Signer for CsrNamesOnly {
    fn backend(&self) -> &'static str {
        "vault"
    }
    fn names_from_csr_only(&self) -> bool {
        true
    }
    fn chain(&self) -> &crate::pki::SignerChain {
        self.0.chain()
    }
    fn sign<'a>(
        &'a self,
        req: crate::signers::SignRequest<'a>,
    ) -> futures::future::BoxFuture<'a, Result<Vec<u8>, crate::signers::SignerError>> {
        self.0.sign(req)
    }
}
