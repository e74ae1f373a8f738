//! Bad input: each gets a clear, specific status message, nothing is written, and the
//! controller keeps serving good requests afterwards.

use serde_json::json;

use crate::fixtures;
use crate::harness::{issuer_ref, ready_message, Env};

fn testdata(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/pki/src/testdata")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[tokio::test]
async fn bad_requests_fail_with_specific_messages() {
    let env = Env::start("badreq").await;
    let root = fixtures::root("Root");
    let int = fixtures::intermediate(&root, "Int");
    env.put_tls_secret(&env.ns, "int", &int.pem, &int.key_pem)
        .await;
    env.put_config_map(&env.ns, "roots", "roots.pem", &root.pem)
        .await;
    env.create_issuer(
        "strict",
        json!({
            "secret": {"name": "int"},
            "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}},
            "policy": {
                "maxDuration": "24h",
                "dnsNames": ["*.{namespace}.svc"],
                "uris": ["spiffe://cluster.local/ns/{namespace}/sa/*"],
            },
        }),
    )
    .await;
    env.wait_issuer_ready("strict", false, "True").await;
    let ns = env.ns.clone();
    let good_dns = format!("ok.{ns}.svc");
    let big = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        "A".repeat(70 * 1024)
    );
    let mut broken = fixtures::csr(&[&good_dns]).1.into_bytes();
    // Flip a character of the base64 body near the end (inside the signature).
    let idx = broken.len() - 40;
    broken[idx] = if broken[idx] == b'A' { b'B' } else { b'A' };
    let cases: Vec<(&str, String, Option<&str>, bool, &str)> = vec![
        (
            "garbage",
            "this is not PEM".into(),
            None,
            false,
            "certificate signing request",
        ),
        (
            "broken-sig",
            String::from_utf8(broken).unwrap(),
            None,
            false,
            "signature",
        ),
        ("rsa1024", testdata("rsa1024.csr"), None, false, "1024"),
        ("p192", testdata("p192.csr"), None, false, "key"),
        ("dsa", testdata("dsa.csr"), None, false, "DSA"),
        (
            "outside",
            fixtures::csr(&["evil.example.com"]).1,
            None,
            false,
            "evil.example.com",
        ),
        (
            "other-ns-spiffe",
            fixtures::csr(&["spiffe://cluster.local/ns/kube-system/sa/x"]).1,
            None,
            false,
            "spiffe://cluster.local/ns/kube-system/sa/x",
        ),
        (
            "wildcard",
            fixtures::csr(&[&format!("*.{ns}.svc")]).1,
            None,
            false,
            "*.",
        ),
        ("is-ca", fixtures::csr(&[&good_dns]).1, None, true, "CA"),
        ("too-big", big, None, false, "too large"),
        (
            "bad-duration",
            fixtures::csr(&[&good_dns]).1,
            Some("a century"),
            false,
            "duration",
        ),
    ];
    for (name, csr, duration, is_ca, _) in &cases {
        let api: kube::Api<pki_issuer::api::cert_manager::CertificateRequest> =
            kube::Api::namespaced(env.client.clone(), &env.ns);
        let mut cr = pki_issuer::api::cert_manager::CertificateRequest::new(
            name,
            pki_issuer::api::cert_manager::CertificateRequestSpec {
                request: csr.clone().into_bytes(),
                issuer_ref: issuer_ref("strict", "PKIIssuer"),
                duration: duration.map(Into::into),
                is_ca: Some(*is_ca),
                ..Default::default()
            },
        );
        cr.metadata.namespace = Some(env.ns.clone());
        api.create(&Default::default(), &cr).await.expect("create");
        env.set_approval(name, true).await;
    }
    for (name, _, _, _, needle) in &cases {
        let cr = env.wait_request_reason(name, "Failed").await;
        let msg = ready_message(&cr);
        assert!(
            msg.contains(needle),
            "{name}: message {msg:?} should mention {needle:?}"
        );
        let st = cr.status.unwrap();
        assert!(
            st.certificate.is_none() && st.failure_time.is_some(),
            "{name}"
        );
    }
    // A 100-year request is clamped, not refused; and the controller is still serving.
    let (_, csr) = fixtures::csr(&[&good_dns]);
    env.create_request(
        "century",
        &csr,
        issuer_ref("strict", "PKIIssuer"),
        Some("876000h"),
        &[],
    )
    .await;
    env.set_approval("century", true).await;
    let cr = env.wait_request_reason("century", "Issued").await;
    assert!(
        ready_message(&cr).contains("maxDuration"),
        "{}",
        ready_message(&cr)
    );
}

#[tokio::test]
async fn bad_issuers_report_specific_reasons() {
    let env = Env::start("badiss").await;
    let root = fixtures::root("Root");
    let int = fixtures::intermediate(&root, "Int");
    let other = fixtures::intermediate(&root, "Other");
    let now = time::OffsetDateTime::now_utc();
    let expired = fixtures::intermediate_between(
        &root,
        "Old",
        now - time::Duration::days(10),
        now - time::Duration::days(1),
    );
    let (leaf_key, _) = fixtures::csr(&["x"]);
    env.put_config_map(&env.ns, "roots", "roots.pem", &root.pem)
        .await;
    env.put_config_map(&env.ns, "garbage-roots", "roots.pem", "not a certificate")
        .await;
    env.put_tls_secret(&env.ns, "good", &int.pem, &int.key_pem)
        .await;
    env.put_tls_secret(&env.ns, "mismatch", &int.pem, &other.key_pem)
        .await;
    env.put_tls_secret(&env.ns, "expired", &expired.pem, &expired.key_pem)
        .await;
    env.put_tls_secret(
        &env.ns,
        "garbage",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        &leaf_key,
    )
    .await;
    let unrelated = fixtures::root("Unrelated Root");
    env.put_config_map(&env.ns, "unrelated", "roots.pem", &unrelated.pem)
        .await;
    let cases = [
        ("mismatch", "mismatch", "roots", "Failed", "key"),
        ("expired", "expired", "roots", "Failed", "expired"),
        ("garbage", "garbage", "roots", "Failed", "garbage"),
        ("no-secret", "missing", "roots", "Pending", "not found"),
        ("no-roots", "good", "absent", "Pending", "not found"),
        (
            "bad-roots",
            "good",
            "garbage-roots",
            "Failed",
            "trustAnchors",
        ),
        ("unrelated", "good", "unrelated", "Failed", "trust anchor"),
    ];
    for (name, secret, roots, _, _) in cases {
        env.create_issuer(
            name,
            json!({"secret": {"name": secret}, "trustAnchors": {"configMap": {"name": roots, "key": "roots.pem"}}}),
        )
        .await;
    }
    for (name, _, _, reason, needle) in cases {
        let (got, msg) = env.wait_issuer_ready(name, false, "False").await;
        assert_eq!(got, reason, "{name}: {msg}");
        assert!(
            msg.to_lowercase().contains(&needle.to_lowercase()),
            "{name}: {msg:?} should mention {needle:?}"
        );
        assert!(
            !msg.contains("PRIVATE KEY"),
            "{name}: no key material in status"
        );
    }
    // A certificate that is not a CA cannot sign.
    let (_leaf_key, _) = fixtures::csr(&["y"]);
    let non_ca = fixtures::leaf_cert(&int, "not-a-ca.example.com");
    env.put_tls_secret(&env.ns, "non-ca", &non_ca.0, &non_ca.1)
        .await;
    env.create_issuer("non-ca", json!({"secret": {"name": "non-ca"}, "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}}})).await;
    let (got, msg) = env.wait_issuer_ready("non-ca", false, "False").await;
    assert_eq!(got, "Failed");
    assert!(msg.contains("CA"), "{msg}");
}
