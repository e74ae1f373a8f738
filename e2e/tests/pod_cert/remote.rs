//! Pod certificates from a remote CA: CFSSL signs the kubelet's stub request with the names
//! pki-issuer derived from the pod (its `hosts`); what it cannot sign is refused, never issued
//! wrong. Both servers.

use k8s_openapi::api::certificates::v1beta1::PodCertificateRequest;
use kube::api::PostParams;
use kube::Api;
use rcgen::{KeyPair, PublicKeyData, SigningKey};
use serde_json::json;

use super::{check_issued, pcr, stub_fields, terminal, Want, POD_UID};
use crate::cfssl::CfsslCa;
use crate::csr::base64_encode;
use crate::harness::Env;

#[tokio::test]
async fn a_cfssl_issuer_signs_pod_certificates_within_their_lifetime() {
    let mut env = Env::start_opts("podcert-cfssl", false).await;
    let ca = CfsslCa::start(&env).await;
    env.start_controller_allowing(&[&ca.url()]).await;
    env.put_config_map(&env.ns, "cfssl-roots", "roots.pem", &ca.root.pem)
        .await;
    // Profile "pods" signs for 24h with exactly a pod certificate's usages; "workload" adds
    // key encipherment.
    for (name, profile) in [("cfssl-pods", "pods"), ("cfssl-mtls", "workload")] {
        env.create_issuer(
            name,
            json!({
                "cfssl": {"url": ca.url(), "profile": profile},
                "trustAnchors": {"configMap": {"name": "cfssl-roots", "key": "roots.pem"}},
                "policy": {"maxDuration": "48h", "dnsNames": ["*.{namespace}.svc"]},
                "podCertificates": {"dnsNameTemplates": ["{serviceAccount}.{namespace}.svc"]},
            }),
        )
        .await;
        env.wait_issuer_ready(name, false, "True").await;
    }
    let signer = format!("pkiissuers.pki-issuer.io/{}.cfssl-pods", env.ns);
    let api: Api<PodCertificateRequest> = Api::namespaced(env.client.clone(), &env.ns);
    let create = |p: PodCertificateRequest| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &p)
                .await
                .expect("create")
        }
    };

    // The 1.36 form, allowed two days: CFSSL's 24h certificate for exactly the pod's name.
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    create(pcr(
        "two-days",
        &signer,
        stub_fields(&key),
        json!({"maxExpirationSeconds": 172800}),
    ))
    .await;
    let (p, type_, _, message) = terminal(&env, &api, "two-days").await;
    assert_eq!(type_, "Issued", "{message}");
    // No SPIFFE ID: CFSSL drops URI SANs (cfssl::cfssl_dropping_the_spiffe_uri_fails_the_request).
    let want = Want {
        spiffe: false,
        lifetime_secs: 24 * 3600,
    };
    check_issued(&env, &ca.root.pem, &p, &key.subject_public_key_info(), want);

    // Refused, each with its message, and nothing written: allowed one hour (CFSSL would sign
    // for 24h); a profile that adds a usage the pod did not ask for; the 1.35 form, which
    // carries no CSR for CFSSL to sign.
    let mtls = format!("pkiissuers.pki-issuer.io/{}.cfssl-mtls", env.ns);
    let two_days = json!({"maxExpirationSeconds": 172800});
    let pop = json!({
        "pkixPublicKey": base64_encode(&key.subject_public_key_info()),
        "proofOfPossession": base64_encode(&key.sign(POD_UID.as_bytes()).unwrap()),
    });
    let refused = [
        (
            pcr(
                "one-hour",
                &signer,
                stub_fields(&key),
                json!({"maxExpirationSeconds": 3600}),
            ),
            "Failed",
            "longer than the allowed 1h",
        ),
        (
            pcr("mtls", &mtls, stub_fields(&key), two_days),
            "Failed",
            "key encipherment",
        ),
        (
            pcr("pkix", &signer, pop, json!({})),
            "Denied",
            "no CSR for a remote CA",
        ),
    ];
    for (request, want_type, want_message) in refused {
        let name = request.metadata.name.clone().unwrap();
        create(request).await;
        let (p, type_, reason, message) = terminal(&env, &api, &name).await;
        assert_eq!(type_, want_type, "{name}: {reason}: {message}");
        assert!(message.contains(want_message), "{name}: {message}");
        assert!(p.status.unwrap().certificate_chain.is_none(), "{name}");
    }
}
