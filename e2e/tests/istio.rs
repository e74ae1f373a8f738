//! Istio's own requests, on both of its paths to pki-issuer, with requests shaped exactly as
//! Istio makes them ([`crate::istio_shapes`]):
//! * istiod in RA mode (`EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API`, `K8S_SIGNER=<signer>`): as a
//!   ServiceAccount holding istiod's RBAC it creates a `certificates.k8s.io/v1` CSR
//!   (`generateName: csr-workload-`), approves it itself, lists and watches it (field selector
//!   on its name) for at most 60 s, verifies the chain to the root from
//!   `meshConfig.caCertificates`, and deletes it; its own serving certificate asks for 10 years
//!   and is clamped;
//! * istio-csr: a CertificateRequest in its own namespace, created as its own ServiceAccount,
//!   carrying the agent's CSR unchanged, usages `[client auth, server auth]`.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, Client};
use pki_issuer::api::cert_manager::{CertificateRequest, CertificateRequestSpec};
use serde_json::json;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::csr::{base64_encode, failed_message, install};
use crate::csr_access::{create_rbac, service_account_client};
use crate::harness::{issuer_ref, ready_message, Env};
use crate::istio_shapes::{istio_csr, openssl_req_text, IstioKey, ISTIO_SUBJECT_DER};

/// The usages istiod puts on workload CSRs (`k8s_ra.go`).
const RA_USAGES: &[&str] = &[
    "digital signature",
    "key encipherment",
    "server auth",
    "client auth",
];
/// istiod's own serving certificate (`PILOT_CERT_PROVIDER=k8s.io/<signer>`): 10 years.
const ISTIOD_EXPIRATION: i32 = 315_360_000;

/// The mesh issuer of these tests: what the README's Istio walkthrough configures. istiod
/// and istio-csr authenticate workloads themselves, so any `ns/*/sa/*` SPIFFE ID of the trust
/// domain; istiod's own DNS names from its own namespace.
fn mesh_spec() -> serde_json::Value {
    json!({
        "secret": {"name": "mesh-intermediate"},
        "trustAnchors": {"configMap": {"name": "corp-roots", "key": "roots.pem"}},
        "policy": {
            "maxDuration": "24h",
            "minDuration": "1h",
            "uris": ["spiffe://cluster.local/ns/*/sa/*"],
            "dnsNames": ["istiod.{namespace}.svc", "istiod.{namespace}.svc.cluster.local"],
            "keyAlgorithms": [{"algorithm": "ECDSA", "minSize": 256}, {"algorithm": "RSA", "minSize": 2048}],
        },
    })
}

/// A mesh cluster issuer (name `<ns>-mesh`) and its root PEM.
async fn mesh(env: &Env) -> (String, String) {
    let root = install(env, &env.cluster_ns).await;
    let name = format!("{}-mesh", env.ns);
    env.create_cluster_issuer(&name, mesh_spec()).await;
    env.wait_issuer_ready(&name, true, "True").await;
    (name, root.pem)
}

/// istiod's ServiceAccount in the test namespace (playing `istio-system`) with the RBAC
/// istiod's chart grants for RA mode: CSRs create/get/list/watch/delete, `approval` update,
/// and `approve` on exactly the configured signer.
async fn istiod_client(env: &Env, signer: &str) -> Client {
    let name = format!("{}-istiod", env.ns);
    create_rbac(
        env,
        "ClusterRole",
        None,
        json!({"metadata": {"name": name}, "rules": [
            {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"],
             "verbs": ["create", "get", "list", "watch", "delete"]},
            {"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval"],
             "verbs": ["update"]},
            {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"],
             "resourceNames": [signer], "verbs": ["approve"]},
        ]}),
    )
    .await;
    create_rbac(
        env,
        "ClusterRoleBinding",
        None,
        json!({"metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "istiod", "namespace": env.ns}]}),
    )
    .await;
    service_account_client(env, &env.ns, "istiod").await
}

/// What istiod's `SignCSRK8s` does: create, self-approve with its own reason and message,
/// read the certificate (list, then watch from that version, both by name) within 60 s,
/// delete. Returns the CSR's name, the chain, and how long the certificate took.
async fn istiod_sign(
    istiod: &Client,
    signer: &str,
    csr_pem: &str,
    usages: &[&str],
    expiration: i32,
    dns_name: &str,
) -> (String, Result<String, String>, Duration) {
    let api: Api<CertificateSigningRequest> = Api::all(istiod.clone());
    let obj = json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"generateName": "csr-workload-"},
        "spec": {
            "request": base64_encode(csr_pem.as_bytes()),
            "signerName": signer,
            "usages": usages,
            "expirationSeconds": expiration,
        }
    });
    let start = Instant::now();
    let mut csr = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(obj).unwrap(),
        )
        .await
        .expect("istiod creates its CSR");
    let name = csr.metadata.name.clone().expect("generated name");
    let message = format!("CSR ({name}) for the certificate ({dns_name}) is approved");
    csr.status.get_or_insert_with(Default::default).conditions =
        Some(vec![CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some(message.clone()),
            message: Some(message),
            ..Default::default()
        }]);
    api.replace_subresource("approval", &name, &PostParams::default(), &csr)
        .await
        .expect("istiod approves its own CSR (update approval)");
    let chain = read_signed(&api, &name).await;
    let took = start.elapsed();
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("istiod deletes its CSR");
    (name, chain, took)
}

/// istiod's `readSignedCsr`: list by name; if unsigned, watch by name from the list's version,
/// for at most 60 s (`certWatchTimeout`).
async fn read_signed(api: &Api<CertificateSigningRequest>, name: &str) -> Result<String, String> {
    let selector = format!("metadata.name={name}");
    let cert = |c: &CertificateSigningRequest| {
        c.status
            .as_ref()
            .and_then(|s| s.certificate.as_ref())
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
    };
    let list = api
        .list(&ListParams::default().fields(&selector))
        .await
        .map_err(|e| format!("list: {e}"))?;
    if let Some(pem) = list.items.first().and_then(cert) {
        return Ok(pem);
    }
    let version = list.metadata.resource_version.unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stream = api
        .watch(
            &WatchParams::default().fields(&selector).timeout(60),
            &version,
        )
        .await
        .map_err(|e| format!("watch: {e}"))?
        .boxed();
    while Instant::now() < deadline {
        let left = deadline - Instant::now();
        match tokio::time::timeout(left, stream.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(c) | WatchEvent::Modified(c)))) => {
                if let Some(pem) = cert(&c) {
                    return Ok(pem);
                }
                if let Some(msg) = failed_message(&c) {
                    return Err(format!("CSR {name} Failed: {msg}"));
                }
            }
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => return Err(format!("watch of {name} ended")),
            Ok(Err(e)) => return Err(format!("watch of {name}: {e}")),
            Err(_) => break,
        }
    }
    Err(format!(
        "timeout when watching CSR {name} (60 s, as istiod)"
    ))
}

/// What istiod (Go `x509.Verify` with the mesh roots) and the workloads' peers check: the chain
/// verifies to `root_pem` for both TLS purposes, with openssl and with rustls-webpki.
fn verify_as_istio(env: &Env, root_pem: &str, chain: &str) {
    for purpose in ["sslserver", "sslclient"] {
        let (ok, out) = env.openssl_verify(root_pem, chain, purpose);
        assert!(ok, "openssl verify -purpose {purpose}: {out}");
    }
    let blocks = pem::parse_many(chain).expect("chain PEM");
    let root = pem::parse(root_pem).expect("root PEM");
    let root_der = rustls_pki_types::CertificateDer::from(root.contents().to_vec());
    let anchors = [webpki::anchor_from_trusted_cert(&root_der)
        .expect("trust anchor")
        .to_owned()];
    let intermediates: Vec<_> = blocks[1..]
        .iter()
        .map(|b| rustls_pki_types::CertificateDer::from(b.contents().to_vec()))
        .collect();
    let leaf_der = rustls_pki_types::CertificateDer::from(blocks[0].contents().to_vec());
    let leaf = webpki::EndEntityCert::try_from(&leaf_der).expect("webpki parses the leaf");
    let now = rustls_pki_types::UnixTime::now();
    for usage in [
        webpki::KeyUsage::server_auth(),
        webpki::KeyUsage::client_auth(),
    ] {
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            now,
            usage,
            None,
            None,
        )
        .unwrap_or_else(|e| panic!("webpki: {e:?}"));
    }
}

/// The leaf's URI SANs, DNS SANs, (digitalSignature, keyEncipherment), (serverAuth, clientAuth),
/// lifetime in seconds, and the subject's DER.
struct Leaf {
    uris: Vec<String>,
    dns: Vec<String>,
    ku: (bool, bool),
    eku: (bool, bool),
    lifetime: i64,
    subject: Vec<u8>,
}

fn leaf_of(chain: &str) -> Leaf {
    let der = pem::parse_many(chain).expect("PEM")[0].contents().to_vec();
    let (_, cert) = X509Certificate::from_der(&der).expect("leaf");
    let mut uris = vec![];
    let mut dns = vec![];
    for n in &cert
        .subject_alternative_name()
        .unwrap()
        .expect("SAN")
        .value
        .general_names
    {
        match n {
            GeneralName::URI(u) => uris.push(u.to_string()),
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    let ku = cert.key_usage().unwrap().map(|k| k.value);
    let eku = cert.extended_key_usage().unwrap().expect("EKU").value;
    Leaf {
        uris,
        dns,
        ku: ku.map_or((false, false), |k| {
            (k.digital_signature(), k.key_encipherment())
        }),
        eku: (eku.server_auth, eku.client_auth),
        lifetime: cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp(),
        subject: cert.subject().as_raw().to_vec(),
    }
}

#[test]
fn istio_agent_csr_has_istios_shape() {
    let dir = tempfile::tempdir().unwrap();
    let id = "spiffe://cluster.local/ns/bookinfo/sa/reviews";
    for (kind, key_line, sig) in [
        (
            IstioKey::Rsa2048,
            "Public-Key: (2048 bit)",
            "sha256WithRSAEncryption",
        ),
        (IstioKey::P256, "ASN1 OID: prime256v1", "ecdsa-with-SHA256"),
    ] {
        let pem = istio_csr(kind, &kind.generate(), id);
        let (ok, text) = openssl_req_text(dir.path(), &pem);
        assert!(ok, "{kind:?}: openssl req -verify: {text}");
        for want in [
            "Subject: O = ",
            key_line,
            "X509v3 Subject Alternative Name: critical",
            &format!("URI:{id}"),
            sig,
        ] {
            assert!(text.contains(want), "{kind:?}: no {want:?} in\n{text}");
        }
        assert!(!text.contains("CN ="), "{kind:?}: no CN\n{text}");
        assert_eq!(
            text.matches("X509v3 ").count(),
            1,
            "{kind:?}: one extension\n{text}"
        );
        let der = pem::parse(&pem).unwrap().into_contents();
        let (_, csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&der).unwrap();
        assert_eq!(
            csr.certification_request_info.subject.as_raw(),
            ISTIO_SUBJECT_DER
        );
    }
}

#[tokio::test]
async fn istiod_ra_mode_issues_workload_certificates() {
    let env = Env::start("istiora").await;
    let (issuer, root) = mesh(&env).await;
    let signer = format!("pkiclusterissuers.pki-issuer.io/{issuer}");
    let istiod = istiod_client(&env, &signer).await;
    for (kind, workload) in [
        (IstioKey::Rsa2048, "bookinfo/sa/reviews"),
        (IstioKey::P256, "shop/sa/cart"),
    ] {
        let id = format!("spiffe://cluster.local/ns/{workload}");
        let csr = istio_csr(kind, &kind.generate(), &id);
        let (name, chain, took) = istiod_sign(&istiod, &signer, &csr, RA_USAGES, 86_400, "").await;
        let chain = chain.unwrap_or_else(|e| panic!("{kind:?}: {e}\n{}", env.logs()));
        assert!(name.starts_with("csr-workload-"), "{name}");
        assert!(took < Duration::from_secs(60), "{kind:?} took {took:?}");
        let leaf = leaf_of(&chain);
        assert_eq!(
            leaf.uris,
            vec![id.clone()],
            "{kind:?}: exactly the SPIFFE ID"
        );
        assert!(leaf.dns.is_empty(), "{kind:?}");
        assert_eq!(
            (leaf.ku, leaf.eku),
            ((true, true), (true, true)),
            "{kind:?}: usages"
        );
        assert_eq!(
            leaf.subject,
            [0x30, 0x00],
            "{kind:?}: O=\"\" is dropped, never issued"
        );
        assert!(
            (86_400..=86_460).contains(&leaf.lifetime),
            "{kind:?}: {}",
            leaf.lifetime
        );
        verify_as_istio(&env, &root, &chain);
        let gone = Api::<CertificateSigningRequest>::all(env.client.clone())
            .get_opt(&name)
            .await;
        assert!(gone.expect("get").is_none(), "istiod deleted {name}");
    }
    env.delete_cluster_issuer(&issuer).await;
}

#[tokio::test]
async fn istiod_own_ten_year_certificate_is_clamped_with_an_event() {
    let env = Env::start("istiodcert").await;
    let (issuer, root) = mesh(&env).await;
    let signer = format!("pkiclusterissuers.pki-issuer.io/{issuer}");
    let istiod = istiod_client(&env, &signer).await;
    let hosts = format!("istiod.{0}.svc,istiod.{0}.svc.cluster.local", env.ns);
    let kind = IstioKey::Rsa2048;
    let csr = istio_csr(kind, &kind.generate(), &hosts);
    let usages = ["digital signature", "key encipherment", "server auth"];
    let (name, chain, _) =
        istiod_sign(&istiod, &signer, &csr, &usages, ISTIOD_EXPIRATION, &hosts).await;
    let chain = chain.unwrap_or_else(|e| panic!("{e}\n{}", env.logs()));
    let leaf = leaf_of(&chain);
    assert_eq!(leaf.dns, hosts.split(',').collect::<Vec<_>>());
    assert_eq!(leaf.eku, (true, false), "server auth only");
    assert!(
        (86_400..=86_460).contains(&leaf.lifetime),
        "10 years clamped to maxDuration 24h: {}",
        leaf.lifetime
    );
    let (ok, out) = env.openssl_verify(&root, &chain, "sslserver");
    assert!(ok, "{out}");
    // Events about cluster-scoped objects (CSRs) live in `default`; the Event follows the write.
    let deadline = Instant::now() + Duration::from_secs(10);
    let note = loop {
        let events = Api::<Event>::namespaced(env.client.clone(), "default")
            .list(&ListParams::default())
            .await
            .expect("Events")
            .items;
        let note = events
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(&name))
            .filter_map(|e| e.note.clone())
            .find(|n| n.starts_with("Certificate issued"));
        match note {
            Some(n) => break n,
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            None => panic!("no Issued Event for {name}: {events:?}"),
        }
    };
    assert!(
        note.contains("clamped to the issuer's maxDuration"),
        "{note}"
    );
    env.delete_cluster_issuer(&issuer).await;
}

#[tokio::test]
async fn istio_csr_certificate_request_is_issued() {
    let env = Env::start("istiocsr").await;
    let (issuer, root) = mesh(&env).await;
    // istio-csr's ServiceAccount may create and read CertificateRequests in its namespace.
    let sa = "cert-manager-istio-csr";
    create_rbac(
        &env,
        "Role",
        Some(&env.ns),
        json!({"metadata": {"name": sa}, "rules": [
        {"apiGroups": ["cert-manager.io"], "resources": ["certificaterequests"],
         "verbs": ["create", "get", "list", "watch", "delete"]}]}),
    )
    .await;
    create_rbac(
        &env,
        "RoleBinding",
        Some(&env.ns),
        json!({"metadata": {"name": sa},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": env.ns}]}),
    )
    .await;
    let istio_csr_client = service_account_client(&env, &env.ns, sa).await;
    let requests: Api<CertificateRequest> = Api::namespaced(istio_csr_client, &env.ns);
    for (kind, workload) in [
        (IstioKey::Rsa2048, "bookinfo/sa/ratings"),
        (IstioKey::P256, "shop/sa/db"),
    ] {
        let id = format!("spiffe://cluster.local/ns/{workload}");
        let csr = istio_csr(kind, &kind.generate(), &id);
        let mut cr = CertificateRequest::new(
            "",
            CertificateRequestSpec {
                request: csr.into_bytes(),
                issuer_ref: issuer_ref(&issuer, "PKIClusterIssuer"),
                duration: Some("1h".into()),
                usages: Some(vec!["client auth".into(), "server auth".into()]),
                ..Default::default()
            },
        );
        cr.metadata.name = None;
        cr.metadata.generate_name = Some("istio-csr-".into());
        cr.metadata.annotations =
            Some([("istio.cert-manager.io/identities".to_string(), id.clone())].into());
        let created = requests
            .create(&PostParams::default(), &cr)
            .await
            .expect("istio-csr creates its CertificateRequest");
        let name = created.metadata.name.clone().expect("generated name");
        env.set_approval(&name, true).await;
        let done = env.wait_request_reason(&name, "Issued").await;
        let status = done.status.clone().unwrap_or_default();
        let chain = String::from_utf8(status.certificate.expect("certificate")).unwrap();
        let ca = String::from_utf8(status.ca.expect("ca")).unwrap();
        assert_eq!(
            pem::parse(&ca).unwrap(),
            pem::parse(&root).unwrap(),
            "status.ca is the root"
        );
        let leaf = leaf_of(&chain);
        assert_eq!(
            leaf.uris,
            vec![id.clone()],
            "{kind:?}: {}",
            ready_message(&done)
        );
        assert_eq!(leaf.eku, (true, true), "{kind:?}");
        assert!(
            (3_600..=3_660).contains(&leaf.lifetime),
            "{kind:?}: {}",
            leaf.lifetime
        );
        verify_as_istio(&env, &root, &chain);
        requests
            .delete(&name, &DeleteParams::default())
            .await
            .expect("istio-csr deletes it");
    }
    env.delete_cluster_issuer(&issuer).await;
}

/// A remote CA that copies the request's subject (CFSSL does, Go's `pkix.Name` round trip) puts
/// Istio's `O=""` into the certificate: accepted as exactly the request's own subject bytes.
#[tokio::test]
async fn istio_shaped_request_through_cfssl_may_echo_only_the_empty_o() {
    let mut env = Env::start_opts("istiocfssl", false).await;
    let ca = crate::cfssl::CfsslCa::start(&env).await;
    env.start_controller_allowing(&[&ca.url()]).await;
    crate::cfssl::cfssl_issuer(
        &env,
        "cfssl",
        json!({"url": ca.url(), "profile": "workload"}),
        &ca.root.pem,
    )
    .await;
    env.wait_issuer_ready("cfssl", false, "True").await;
    let kind = IstioKey::Rsa2048;
    let csr = istio_csr(kind, &kind.generate(), &format!("istiod.{}.svc", env.ns));
    env.create_request(
        "istiod",
        &csr,
        issuer_ref("cfssl", "PKIIssuer"),
        Some("1h"),
        &[],
    )
    .await;
    env.set_approval("istiod", true).await;
    let done = env.wait_request_reason("istiod", "Issued").await;
    let chain = String::from_utf8(done.status.unwrap().certificate.unwrap()).unwrap();
    assert_eq!(
        leaf_of(&chain).subject,
        ISTIO_SUBJECT_DER,
        "CFSSL copied O=\"\""
    );
    let (ok, out) = env.openssl_verify(&ca.root.pem, &chain, "sslserver");
    assert!(ok, "{out}");
}
