//! Scenarios of the CertificateRequest flow, each asserting exact conditions and reasons.

use std::time::Duration;

use kube::api::ListParams;
use kube::Api;
use pki_issuer::api::cert_manager::{CertificateRequest, IssuerRef};
use serde_json::json;

use crate::fixtures::{self, Ca};
use crate::harness::{external, issuer_ref, ready_of, written_by_pki_issuer, Env};

/// Root + intermediate, the intermediate's Secret and the root ConfigMap in `ns`.
async fn install_pki(env: &Env, ns: &str) -> (Ca, Ca) {
    let root = fixtures::root("Example Corp Root CA");
    let int = fixtures::intermediate(&root, "Example Corp Mesh Intermediate");
    env.put_tls_secret(ns, "mesh-intermediate", &int.pem, &int.key_pem)
        .await;
    env.put_config_map(ns, "corp-roots", "roots.pem", &root.pem)
        .await;
    (root, int)
}

fn spec(policy: serde_json::Value) -> serde_json::Value {
    json!({
        "secret": {"name": "mesh-intermediate"},
        "trustAnchors": {"configMap": {"name": "corp-roots", "key": "roots.pem"}},
        "policy": policy,
    })
}

fn mesh_policy() -> serde_json::Value {
    json!({
        "maxDuration": "24h",
        "dnsNames": ["*.{namespace}.svc", "*.{namespace}.svc.cluster.local"],
        "uris": ["spiffe://cluster.local/ns/{namespace}/sa/*"],
    })
}

fn pem_of(bytes: &Option<Vec<u8>>) -> String {
    String::from_utf8(bytes.clone().expect("field set")).expect("PEM text")
}

/// Issue one certificate for `sans` and return the request after it reached `Issued`.
async fn issue(env: &Env, name: &str, r: IssuerRef, sans: &[&str]) -> CertificateRequest {
    let (_key, csr) = fixtures::csr(sans);
    env.create_request(
        name,
        &csr,
        r,
        Some("1h"),
        &[
            "digital signature",
            "key encipherment",
            "server auth",
            "client auth",
        ],
    )
    .await;
    env.set_approval(name, true).await;
    env.wait_request_reason(name, "Issued").await
}

#[tokio::test]
async fn pkiissuer_happy_path_verifies_with_openssl() {
    let env = Env::start("happy").await;
    let (root, _int) = install_pki(&env, &env.ns).await;
    env.create_issuer("mesh", spec(mesh_policy())).await;
    let (reason, _) = env.wait_issuer_ready("mesh", false, "True").await;
    assert_eq!(reason, "Checked");

    let san = format!("web.{}.svc", env.ns);
    let spiffe = format!("spiffe://cluster.local/ns/{}/sa/web", env.ns);
    let cr = issue(
        &env,
        "web",
        issuer_ref("mesh", "PKIIssuer"),
        &[&san, &spiffe],
    )
    .await;
    let ready = ready_of(&cr);
    assert_eq!(ready.status, "True");
    assert!(
        ready
            .message
            .as_deref()
            .unwrap()
            .contains("Certificate issued by PKIIssuer"),
        "{ready:?}"
    );
    let status = cr.status.unwrap();
    assert_eq!(
        pem_of(&status.ca),
        root.pem,
        "status.ca is the trust anchor"
    );
    let chain = pem_of(&status.certificate);
    assert_eq!(
        pem::parse_many(&chain).unwrap().len(),
        2,
        "leaf + intermediate, no root"
    );
    for purpose in ["sslserver", "sslclient"] {
        let (ok, out) = env.openssl_verify(&root.pem, &chain, purpose);
        assert!(ok, "openssl verify -purpose {purpose}: {out}");
    }
    let other = fixtures::root("Some Other Root");
    let (ok, _) = env.openssl_verify(&other.pem, &chain, "sslserver");
    assert!(!ok, "the chain must not verify against another root");
}

#[tokio::test]
async fn pkiclusterissuer_happy_path() {
    let env = Env::start("cluster").await;
    let (root, _int) = install_pki(&env, &env.cluster_ns).await;
    let name = format!("{}-mesh", env.ns);
    env.create_cluster_issuer(&name, spec(mesh_policy())).await;
    env.wait_issuer_ready(&name, true, "True").await;
    let san = format!("api.{}.svc", env.ns);
    let cr = issue(&env, "api", issuer_ref(&name, "PKIClusterIssuer"), &[&san]).await;
    let chain = pem_of(&cr.status.unwrap().certificate);
    let (ok, out) = env.openssl_verify(&root.pem, &chain, "sslserver");
    assert!(ok, "{out}");
    env.delete_cluster_issuer(&name).await;
}

#[tokio::test]
async fn foreign_and_unapproved_requests_are_never_written() {
    let env = Env::start("foreign").await;
    install_pki(&env, &env.ns).await;
    env.create_issuer("mesh", spec(mesh_policy())).await;
    env.wait_issuer_ready("mesh", false, "True").await;
    let san = format!("a.{}.svc", env.ns);
    let (_, csr) = fixtures::csr(&[&san]);
    let foreign = IssuerRef {
        name: "mesh".into(),
        kind: Some("Issuer".into()),
        group: Some("cert-manager.io".into()),
    };
    env.create_request("foreign", &csr, foreign, None, &[])
        .await;
    env.set_approval("foreign", true).await;
    if !external() {
        env.create_request(
            "unapproved",
            &csr,
            issuer_ref("mesh", "PKIIssuer"),
            None,
            &[],
        )
        .await;
    }
    // A later request of ours being issued proves the controller has seen the earlier ones.
    issue(&env, "barrier", issuer_ref("mesh", "PKIIssuer"), &[&san]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut names = vec!["foreign"];
    if !external() {
        names.push("unapproved");
    }
    for name in names {
        let cr = env.request(name).await;
        assert!(
            !written_by_pki_issuer(&cr.metadata),
            "{name} was written by pki-issuer"
        );
        let st = cr.status.unwrap_or_default();
        if !external() {
            // In a real cluster cert-manager itself may set Ready on the foreign request.
            assert!(
                st.conditions.iter().all(|c| c.type_ != "Ready"),
                "{name} got a Ready condition"
            );
            assert!(st.certificate.is_none());
        }
    }
}

#[tokio::test]
async fn denied_request_becomes_denied_with_failure_time() {
    if external() {
        eprintln!("denied_request: cert-manager's approver owns approval in a real cluster; covered locally");
        return;
    }
    let env = Env::start("denied").await;
    install_pki(&env, &env.ns).await;
    env.create_issuer("mesh", spec(mesh_policy())).await;
    env.wait_issuer_ready("mesh", false, "True").await;
    let (_, csr) = fixtures::csr(&[&format!("a.{}.svc", env.ns)]);
    env.create_request("nope", &csr, issuer_ref("mesh", "PKIIssuer"), None, &[])
        .await;
    env.set_approval("nope", false).await;
    let cr = env.wait_request_reason("nope", "Denied").await;
    let ready = ready_of(&cr);
    assert_eq!(ready.status, "False");
    let st = cr.status.unwrap();
    assert!(st.failure_time.is_some(), "failureTime must be set");
    assert!(st.certificate.is_none());
}

#[tokio::test]
async fn issuer_created_after_request_goes_pending_then_issued() {
    let env = Env::start("late").await;
    install_pki(&env, &env.ns).await;
    let san = format!("late.{}.svc", env.ns);
    let (_, csr) = fixtures::csr(&[&san]);
    env.create_request("late", &csr, issuer_ref("mesh", "PKIIssuer"), None, &[])
        .await;
    env.set_approval("late", true).await;
    let cr = env.wait_request_reason("late", "Pending").await;
    let msg = ready_of(&cr).message.unwrap();
    assert!(msg.contains("not found"), "{msg}");
    env.create_issuer("mesh", spec(mesh_policy())).await;
    let cr = env.wait_request_reason("late", "Issued").await;
    assert!(cr.status.unwrap().certificate.is_some());
}

#[tokio::test]
async fn policy_violation_fails_naming_the_san() {
    let env = Env::start("policy").await;
    install_pki(&env, &env.ns).await;
    env.create_issuer("mesh", spec(mesh_policy())).await;
    env.wait_issuer_ready("mesh", false, "True").await;
    let bad = "spiffe://cluster.local/ns/kube-system/sa/admin";
    let (_, csr) = fixtures::csr(&[bad]);
    env.create_request("evil", &csr, issuer_ref("mesh", "PKIIssuer"), None, &[])
        .await;
    env.set_approval("evil", true).await;
    let cr = env.wait_request_reason("evil", "Failed").await;
    let ready = ready_of(&cr);
    assert_eq!(ready.status, "False");
    assert!(ready.message.as_deref().unwrap().contains(bad), "{ready:?}");
    let st = cr.status.unwrap();
    assert!(st.failure_time.is_some());
    assert!(
        st.certificate.is_none(),
        "nothing is written for a refused request"
    );
}

#[tokio::test]
async fn rotated_signer_secret_is_used_without_restart() {
    let env = Env::start("rotate").await;
    let (root, int1) = install_pki(&env, &env.ns).await;
    env.create_issuer("mesh", spec(mesh_policy())).await;
    env.wait_issuer_ready("mesh", false, "True").await;
    let san = format!("r.{}.svc", env.ns);
    let first = issue(&env, "before", issuer_ref("mesh", "PKIIssuer"), &[&san]).await;
    assert!(pem_of(&first.status.unwrap().certificate).contains(int1.pem.trim()));

    let int2 = fixtures::intermediate(&root, "Example Corp Mesh Intermediate 2");
    env.put_tls_secret(&env.ns, "mesh-intermediate", &int2.pem, &int2.key_pem)
        .await;
    let api: Api<pki_issuer::api::PKIIssuer> = Api::namespaced(env.client.clone(), &env.ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let want = pki_issuer::pki::cert_info(&pem::parse(&int2.pem).unwrap().into_contents())
        .unwrap()
        .sha256_fingerprint;
    loop {
        let st = api.get("mesh").await.unwrap().status.unwrap_or_default();
        if st.signer.as_ref().map(|s| s.sha256_fingerprint.as_str()) == Some(want.as_str()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "status.signer never showed the new intermediate\n{}",
            env.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = issue(&env, "after", issuer_ref("mesh", "PKIIssuer"), &[&san]).await;
    let chain = pem_of(&second.status.unwrap().certificate);
    assert!(
        chain.contains(int2.pem.trim()),
        "new requests get the new chain"
    );
    assert!(!chain.contains(int1.pem.trim()));
    let (ok, out) = env.openssl_verify(&root.pem, &chain, "sslserver");
    assert!(ok, "{out}");
}

#[tokio::test]
async fn expired_signer_keeps_requests_pending() {
    let env = Env::start("expired").await;
    let root = fixtures::root("Example Corp Root CA");
    let now = time::OffsetDateTime::now_utc();
    let old = fixtures::intermediate_between(
        &root,
        "Expired Intermediate",
        now - time::Duration::days(30),
        now - time::Duration::days(1),
    );
    env.put_tls_secret(&env.ns, "mesh-intermediate", &old.pem, &old.key_pem)
        .await;
    env.put_config_map(&env.ns, "corp-roots", "roots.pem", &root.pem)
        .await;
    env.create_issuer("mesh", spec(mesh_policy())).await;
    let (reason, message) = env.wait_issuer_ready("mesh", false, "False").await;
    assert_eq!(reason, "Failed");
    assert!(message.contains("expired"), "{message}");
    let (_, csr) = fixtures::csr(&[&format!("x.{}.svc", env.ns)]);
    env.create_request("waits", &csr, issuer_ref("mesh", "PKIIssuer"), None, &[])
        .await;
    env.set_approval("waits", true).await;
    let cr = env.wait_request_reason("waits", "Pending").await;
    assert!(ready_of(&cr).message.unwrap().contains("expired"));
    // Fixing the Secret lets the waiting request through.
    let fresh = fixtures::intermediate(&root, "Fresh Intermediate");
    env.put_tls_secret(&env.ns, "mesh-intermediate", &fresh.pem, &fresh.key_pem)
        .await;
    env.wait_request_reason("waits", "Issued").await;
}

#[tokio::test]
async fn many_concurrent_requests_are_issued_exactly_once() {
    const N: usize = 200;
    let env = Env::start("load").await;
    install_pki(&env, &env.ns).await;
    env.create_issuer("mesh", spec(mesh_policy())).await;
    env.wait_issuer_ready("mesh", false, "True").await;
    let san = format!("w.{}.svc", env.ns);
    let (_, csr) = fixtures::csr(&[&san]);
    let mut counter = (!external()).then(|| env.request_counter());
    if let Some(c) = &mut counter {
        c.reset();
    }
    let started = std::time::Instant::now();
    futures::future::join_all((0..N).map(|i| {
        let env = &env;
        let csr = &csr;
        async move {
            let name = format!("w{i}");
            env.create_request(&name, csr, issuer_ref("mesh", "PKIIssuer"), None, &[])
                .await;
            env.set_approval(&name, true).await;
        }
    }))
    .await;
    let api: Api<CertificateRequest> = Api::namespaced(env.client.clone(), &env.ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let list = api.list(&ListParams::default()).await.unwrap();
        let issued = list
            .items
            .iter()
            .filter(|cr| {
                cr.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            })
            .count();
        if issued == N {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {issued}/{N} issued\n{}",
            env.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("{N} requests issued in {:?}", started.elapsed());
    if let Some(counter) = &counter {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let writes = counter.count("patch", "certificaterequests", "status");
        assert_eq!(writes, N as u64, "exactly one status write per request");
    }
    // Nothing was re-issued: every certificate is unique and still the first one written.
    let list = api.list(&ListParams::default()).await.unwrap();
    let mut certs: Vec<_> = list
        .items
        .iter()
        .map(|cr| cr.status.as_ref().unwrap().certificate.clone().unwrap())
        .collect();
    certs.sort();
    certs.dedup();
    assert_eq!(certs.len(), N);
}

#[tokio::test]
async fn metrics_probes_and_graceful_shutdown() {
    if external() {
        eprintln!("metrics_probes_and_graceful_shutdown: needs a local pki-issuer process; covered locally");
        return;
    }
    let mut env = Env::start("ops").await;
    install_pki(&env, &env.ns).await;
    env.create_issuer("mesh", spec(mesh_policy())).await;
    env.wait_issuer_ready("mesh", false, "True").await;
    issue(
        &env,
        "one",
        issuer_ref("mesh", "PKIIssuer"),
        &[&format!("one.{}.svc", env.ns)],
    )
    .await;
    let probe = env.admin_addr(0, "probe").await;
    for path in ["/healthz", "/readyz"] {
        let (status, body) = crate::harness::http_get(&probe, path).await;
        assert!(
            status.contains("200") && body == "ok",
            "{path}: {status} {body}"
        );
    }
    let addr = env.admin_addr(0, "metrics").await;
    let (status, body) = crate::harness::http_get(&addr, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    let issued = format!(
        "pki_issuer_certificates_issued_total{{kind=\"CertificateRequest\",issuer=\"PKIIssuer {}/mesh\"}} 1",
        env.ns
    );
    assert!(body.contains(&issued), "missing {issued} in\n{body}");
    assert!(
        body.contains("pki_issuer_signer_expiry_timestamp_seconds{"),
        "{body}"
    );
    assert!(
        body.contains("pki_issuer_signing_duration_seconds_count 1"),
        "{body}"
    );
    let status = env.terminate_controller(0).await;
    assert!(
        status.success(),
        "SIGTERM drains and exits 0: {status:?}\n{}",
        env.logs()
    );
    assert!(env.logs().contains("stopped"), "{}", env.logs());
}

#[tokio::test]
async fn signer_close_to_expiry_is_ready_with_a_warning_event() {
    if external() {
        eprintln!(
            "signer_close_to_expiry: covered locally (Events are read from the test API server)"
        );
        return;
    }
    let env = Env::start("expiring").await;
    let root = fixtures::root("Example Corp Root CA");
    let now = time::OffsetDateTime::now_utc();
    let soon = fixtures::intermediate_between(
        &root,
        "Expiring Intermediate",
        now - time::Duration::days(300),
        now + time::Duration::days(10),
    );
    env.put_tls_secret(&env.ns, "mesh-intermediate", &soon.pem, &soon.key_pem)
        .await;
    env.put_config_map(&env.ns, "corp-roots", "roots.pem", &root.pem)
        .await;
    env.create_issuer("mesh", spec(mesh_policy())).await;
    env.wait_issuer_ready("mesh", false, "True").await;
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &env.ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = events.list(&ListParams::default()).await.unwrap();
        if let Some(e) = list
            .items
            .iter()
            .find(|e| e.reason.as_deref() == Some("SignerExpiringSoon"))
        {
            assert_eq!(e.type_.as_deref(), Some("Warning"));
            assert!(
                e.note.as_deref().unwrap_or_default().contains("days left"),
                "{e:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no SignerExpiringSoon Event\n{}",
            env.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Certificates are clamped to the signer's notAfter.
    let cr = issue(
        &env,
        "clamped",
        issuer_ref("mesh", "PKIIssuer"),
        &[&format!("c.{}.svc", env.ns)],
    )
    .await;
    assert!(ready_of(&cr).message.unwrap().contains("valid until"));
}
