//! The PodCertificateRequest adapter: keys, denials, lifetimes and the status it writes.

use super::*;
use crate::controllers::requests::decide::{decide, Decision, IssuerState};
use k8s_openapi::api::certificates::v1beta1::{
    PodCertificateRequestSpec, PodCertificateRequestStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::ByteString;
use rcgen::{CertificateParams, KeyPair};

/// A kubelet-shaped PCR in `ns` for `signer` with a stub request of `key`.
pub(crate) fn pcr(ns: &str, signer: &str, key: &KeyPair) -> PodCertificateRequest {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let stub = params.serialize_request(key).unwrap().der().to_vec();
    PodCertificateRequest {
        metadata: kube::api::ObjectMeta {
            name: Some("req-1".into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        spec: PodCertificateRequestSpec {
            signer_name: signer.into(),
            pod_name: "web-0".into(),
            pod_uid: "0b6c7c7e-8a44-4d4e-9a43-1b2c3d4e5f60".into(),
            service_account_name: "web".into(),
            service_account_uid: "5d1e".into(),
            node_name: "node-a".into(),
            node_uid: "9f0a".into(),
            max_expiration_seconds: Some(86400),
            stub_pkc_s10_request: ByteString(stub),
            ..Default::default()
        },
        status: None,
    }
}

fn p256() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

fn ready(_: &IssuerKey) -> IssuerState {
    IssuerState::Ready
}

#[test]
fn open_requests_of_ours_are_signed_without_approval() {
    let r = pcr("apps", "pkiclusterissuers.pki-issuer.io/mesh", &p256());
    assert!(matches!(decide(&r, ready), Decision::Sign(_)));
    let mine = pcr("apps", "pkiissuers.pki-issuer.io/apps.ca", &p256());
    assert!(matches!(decide(&mine, ready), Decision::Sign(_)));
    let other = pcr("apps", "example.com/signer", &p256());
    assert_eq!(decide(&other, ready), Decision::Skip);
    let mut done = r.clone();
    done.status = Some(PodCertificateRequestStatus {
        conditions: Some(vec![Condition {
            type_: "Failed".into(),
            status: "True".into(),
            reason: "SigningFailed".into(),
            message: String::new(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                jiff::Timestamp::now(),
            ),
            observed_generation: None,
        }]),
        ..Default::default()
    });
    assert_eq!(decide(&done, ready), Decision::Skip);
}

#[test]
fn hostile_requests_are_denied_with_the_apis_reasons() {
    let foreign = pcr("tenant-b", "pkiissuers.pki-issuer.io/apps.ca", &p256());
    assert_eq!(denial(&foreign).unwrap().0, Reason::SignerNamespaceMismatch);
    assert!(matches!(
        decide(&foreign, ready),
        Decision::MarkDenied(Reason::SignerNamespaceMismatch, _)
    ));

    let mut annotated = pcr("apps", "pkiclusterissuers.pki-issuer.io/mesh", &p256());
    annotated.spec.unverified_user_annotations =
        Some([("example.com/role".to_string(), "admin".to_string())].into());
    assert_eq!(
        denial(&annotated).unwrap().0,
        Reason::InvalidUnverifiedUserAnnotations
    );

    let rsa2048 = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let weak = pcr("apps", "pkiclusterissuers.pki-issuer.io/mesh", &rsa2048);
    assert_eq!(denial(&weak).unwrap().0, Reason::UnsupportedKeyType);
    let patch = weak
        .status_patch(&Write::Denied {
            reason: Reason::UnsupportedKeyType,
            message: "m".into(),
        })
        .unwrap();
    assert_eq!(patch["status"]["conditions"][0]["type"], "Denied");
    assert_eq!(
        patch["status"]["conditions"][0]["reason"],
        "UnsupportedKeyType"
    );

    let mut both = pcr("apps", "pkiclusterissuers.pki-issuer.io/mesh", &p256());
    both.spec.pkix_public_key = Some(ByteString(vec![1]));
    assert_eq!(denial(&both).unwrap().0, Reason::InvalidPublicKey);
}

#[test]
fn refusals_are_denials_and_errors_failures() {
    let r = pcr("apps", "pkiclusterissuers.pki-issuer.io/mesh", &p256());
    let write = |reason| Write::Failed {
        reason,
        message: "no".into(),
    };
    for (reason, type_) in [
        (Reason::PolicyViolation, "Denied"),
        (Reason::UnsupportedKeyType, "Denied"),
        (Reason::SigningFailed, "Failed"),
        (Reason::RetriesExhausted, "Failed"),
    ] {
        let p = r.status_patch(&write(reason)).unwrap();
        let conds = p["status"]["conditions"].as_array().unwrap();
        assert_eq!(conds.len(), 1, "exactly one terminal condition");
        assert_eq!(conds[0]["type"], type_);
        assert_eq!(conds[0]["reason"], reason.as_str());
        assert!(p["status"].get("certificateChain").is_none());
    }
    assert!(r
        .status_patch(&Write::Pending {
            message: "m".into()
        })
        .is_none());
}

#[test]
fn the_input_carries_the_attested_identity() {
    let r = pcr("apps", "pkiclusterissuers.pki-issuer.io/mesh", &p256());
    let key = IssuerKey::from_signer_name(&r.spec.signer_name).unwrap();
    let input = r.input(&key).unwrap();
    let pod = input.pod.unwrap();
    assert_eq!(
        (pod.namespace.as_str(), pod.service_account.as_str()),
        ("apps", "web")
    );
    assert_eq!(pod.max_lifetime, Duration::from_secs(86400));
    assert_eq!(input.context.namespace.as_deref(), Some("apps"));
    let mut short = r.clone();
    short.spec.max_expiration_seconds = Some(60);
    assert!(short.input(&key).is_err());
}

#[test]
fn the_store_keeps_the_key_only_of_open_requests_of_ours() {
    let mut open = pcr("apps", "pkiclusterissuers.pki-issuer.io/mesh", &p256());
    open.metadata.managed_fields = Some(vec![Default::default()]);
    let before = open.phase();
    open.slim();
    assert!(open.metadata.managed_fields.is_none());
    assert!(!open.spec.stub_pkc_s10_request.0.is_empty());
    assert_eq!(open.phase(), before);
    let mut other = pcr("apps", "example.com/signer", &p256());
    other.slim();
    assert!(other.spec.stub_pkc_s10_request.0.is_empty());
    assert_eq!(decide(&other, ready), Decision::Skip);
}

#[test]
fn an_issued_status_carries_the_leafs_times_and_the_refresh_point() {
    let ca_key = p256();
    let mut ca = CertificateParams::new(vec![]).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let leaf_key = p256();
    let mut lp = CertificateParams::new(vec![]).unwrap();
    let nb = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    lp.not_before = nb;
    lp.not_after = nb + time::Duration::hours(1);
    let issuer = rcgen::Issuer::from_ca_cert_der(ca.der(), &ca_key).unwrap();
    let leaf = lp.signed_by(&leaf_key, &issuer).unwrap();
    let r = pcr("apps", "pkiclusterissuers.pki-issuer.io/mesh", &leaf_key);
    let p = r
        .status_patch(&Write::Issued {
            chain_pem: leaf.pem(),
            ca_pem: ca.pem(),
            message: "issued".into(),
        })
        .unwrap();
    let s = &p["status"];
    assert_eq!(s["conditions"][0]["type"], "Issued");
    assert_eq!(s["notBefore"], rfc3339(nb));
    assert_eq!(s["notAfter"], rfc3339(nb + time::Duration::hours(1)));
    assert_eq!(
        s["beginRefreshAt"],
        rfc3339(nb + time::Duration::minutes(40))
    );
    assert!(!s["certificateChain"].as_str().unwrap().contains(&ca.pem()));

    let mut tight = r.clone();
    tight.spec.max_expiration_seconds = Some(3600);
    let mut lp = CertificateParams::new(vec![]).unwrap();
    lp.not_before = nb;
    lp.not_after = nb + time::Duration::hours(2);
    let long = lp.signed_by(&leaf_key, &issuer).unwrap();
    let p = tight
        .status_patch(&Write::Issued {
            chain_pem: long.pem(),
            ca_pem: ca.pem(),
            message: "issued".into(),
        })
        .unwrap();
    assert_eq!(
        p["status"]["conditions"][0]["type"], "Failed",
        "never over maxExpirationSeconds"
    );
    assert!(p["status"].get("certificateChain").is_none());
}
