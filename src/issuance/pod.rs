//! Pod certificates (Kubernetes PodCertificateRequests) before signing, pure: the pod's key
//! (the 1.36 stub PKCS#10 request, or the 1.35 `pkixPublicKey` with its proof of possession),
//! its names from the issuer's `podCertificates` templates, and its lifetime. The request
//! then goes through every check of [`super::prepare`] like any other.

use std::time::Duration;

use aws_lc_rs::signature::{self, RsaParameters, RsaPssSaltLength, UnparsedPublicKey};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::api::pod_certificates::PodCertificatesSpec;
use crate::pki::{self, KeyAlgorithm, KeyInfo, ParsedCsr, PkiError, SubjectAltNames, Validity};

/// The shortest lifetime the API server accepts for a pod certificate.
pub const MIN_LIFETIME: Duration = Duration::from_secs(3600);
/// `beginRefreshAt` lies at least this far from both ends of the lifetime (API server rule).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(600);
/// Largest `pkixPublicKey` / `proofOfPossession` read (the API server's bounds are smaller).
const MAX_KEY_BYTES: usize = 10 * 1024;

/// The pod's public key as the PodCertificateRequest carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodKey {
    /// `stubPKCS10Request` (Kubernetes 1.36+): an empty PKCS#10 request signed by the key.
    StubCsr(Vec<u8>),
    /// `pkixPublicKey` + `proofOfPossession` (1.35): a signature over the pod UID's bytes.
    Pkix {
        /// SubjectPublicKeyInfo DER.
        spki: Vec<u8>,
        /// The signature.
        proof: Vec<u8>,
    },
}

/// What a PodCertificateRequest asks for; every field is attested by the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRequest {
    /// The pod's namespace.
    pub namespace: String,
    /// `spec.serviceAccountName`.
    pub service_account: String,
    /// `spec.podUID` (what the proof of possession signs).
    pub pod_uid: String,
    /// The key.
    pub key: PodKey,
    /// `spec.maxExpirationSeconds`: the certificate never lives longer.
    pub max_lifetime: Duration,
}

/// The SubjectPublicKeyInfo of the pod's key, without checking any signature.
pub fn key_spki(key: &PodKey) -> Result<Vec<u8>, String> {
    match key {
        PodKey::StubCsr(der) => {
            let (_, csr) = X509CertificationRequest::from_der(der)
                .map_err(|e| format!("stubPKCS10Request is not a PKCS#10 request: {e}"))?;
            Ok(csr.certification_request_info.subject_pki.raw.to_vec())
        }
        PodKey::Pkix { spki, .. } => Ok(spki.clone()),
    }
}

/// The key types a pod certificate may have: RSA 3072 or 4096, ECDSA P-256, P-384 or P-521,
/// Ed25519 (what the kubelet generates and the API server accepts).
pub fn supported_key(key: &PodKey) -> Result<KeyInfo, String> {
    let info = pki::key_info_from_spki(&key_spki(key)?).map_err(|e| e.to_string())?;
    check_supported(&info)?;
    Ok(info)
}

fn check_supported(info: &KeyInfo) -> Result<(), String> {
    let ok = match info.algorithm {
        KeyAlgorithm::Rsa => matches!(info.size_bits, 3072 | 4096),
        KeyAlgorithm::Ecdsa => matches!(info.size_bits, 256 | 384 | 521),
        KeyAlgorithm::Ed25519 => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} {}-bit keys are not supported; use RSA 3072 or 4096, ECDSA P-256, P-384 or P-521, or Ed25519",
            info.algorithm, info.size_bits
        ))
    }
}

/// The request as a checked CSR carrying the names the issuer grants this pod: the stub
/// request's signature is verified (it must ask for nothing), or the proof of possession.
pub fn pod_csr(
    pod: &PodRequest,
    spec: Option<&PodCertificatesSpec>,
) -> Result<ParsedCsr, PkiError> {
    let spec = spec.ok_or_else(|| {
        PkiError::InvalidPolicy(
            "the issuer has no spec.podCertificates, so it signs no PodCertificateRequest".into(),
        )
    })?;
    let names = spec
        .render(&pod.namespace, &pod.service_account)
        .map_err(PkiError::InvalidName)?;
    let sans = SubjectAltNames {
        dns: names.dns,
        uris: names.uri.into_iter().collect(),
        ..Default::default()
    };
    let mut csr = match &pod.key {
        PodKey::StubCsr(der) => stub_csr(der)?,
        PodKey::Pkix { spki, proof } => {
            if spki.len() > MAX_KEY_BYTES || proof.len() > MAX_KEY_BYTES {
                return Err(PkiError::InvalidCsr(
                    "pkixPublicKey or proofOfPossession is too large".into(),
                ));
            }
            verify_proof(spki, pod.pod_uid.as_bytes(), proof)?;
            ParsedCsr {
                der: Vec::new(),
                spki_der: spki.clone(),
                key: pki::key_info_from_spki(spki)?,
                common_name: None,
                echoable_subject: None,
                sans: SubjectAltNames::default(),
                requested_is_ca: None,
                requested_usages: Vec::new(),
            }
        }
    };
    check_supported(&csr.key).map_err(PkiError::UnsupportedKeyAlgorithm)?;
    csr.sans = sans;
    Ok(csr)
}

/// A verified stub request that asks for nothing: no subject, no attributes.
fn stub_csr(der: &[u8]) -> Result<ParsedCsr, PkiError> {
    let csr = pki::parse_csr(der)?;
    let (_, raw) = X509CertificationRequest::from_der(der)
        .map_err(|e| PkiError::InvalidCsr(format!("stubPKCS10Request: {e}")))?;
    let info = &raw.certification_request_info;
    if info.subject.iter().next().is_some() || info.iter_attributes().next().is_some() {
        return Err(PkiError::InvalidCsr(
            "stubPKCS10Request must be empty (no subject, no attributes): a pod's names come from the issuer's podCertificates".into(),
        ));
    }
    Ok(csr)
}

static RSA_PSS_MAX_SALT: RsaParameters =
    signature::RSA_PSS_2048_8192_SHA256.with_pss_salt_length(RsaPssSaltLength::Max);

/// The proof of possession: the key's signature over `message` (the pod UID's bytes):
/// Ed25519; ECDSA (ASN.1) over SHA-256 on every curve; RSA-PSS with SHA-256 (Go's
/// `rsa.SignPSS` with nil options uses the largest salt; a digest-length salt is accepted too).
pub fn verify_proof(spki_der: &[u8], message: &[u8], proof: &[u8]) -> Result<(), PkiError> {
    let info = pki::key_info_from_spki(spki_der)?;
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| PkiError::UnsupportedKeyAlgorithm(format!("unparseable public key: {e}")))?;
    let key = &spki.subject_public_key.data;
    let ok = |alg: &'static dyn signature::VerificationAlgorithm| {
        UnparsedPublicKey::new(alg, key)
            .verify(message, proof)
            .is_ok()
    };
    let valid = match (info.algorithm, info.size_bits) {
        (KeyAlgorithm::Ed25519, _) => ok(&signature::ED25519),
        (KeyAlgorithm::Ecdsa, 256) => ok(&signature::ECDSA_P256_SHA256_ASN1),
        (KeyAlgorithm::Ecdsa, 384) => ok(&signature::ECDSA_P384_SHA256_ASN1),
        (KeyAlgorithm::Ecdsa, 521) => ok(&signature::ECDSA_P521_SHA256_ASN1),
        (KeyAlgorithm::Rsa, _) => ok(&RSA_PSS_MAX_SALT) || ok(&signature::RSA_PSS_2048_8192_SHA256),
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(PkiError::CsrSignatureInvalid)
    }
}

/// The pod certificate's lifetime: the issuer's (signer chain) cut to `max_lifetime`
/// (`maxExpirationSeconds` or the policy's `maxDuration`, the smaller) counted from notBefore,
/// never over; shorter than [`MIN_LIFETIME`] is an error.
pub fn pod_validity(mut v: Validity, max_lifetime: Duration) -> Result<Validity, PkiError> {
    let max = time::Duration::try_from(max_lifetime).unwrap_or(time::Duration::MAX);
    let cap = v.not_before.saturating_add(max);
    if cap < v.not_after {
        v.not_after = cap;
        v.clamped_by = pki::ClampReason::Requested;
    }
    let lifetime = v.not_after - v.not_before;
    if lifetime < time::Duration::try_from(MIN_LIFETIME).unwrap_or_default() {
        return Err(PkiError::SigningFailed(format!(
            "a pod certificate must be valid for at least 1h, but this issuer can sign one valid for only {}s (its policy maxDuration or its signer chain's expiry)",
            lifetime.whole_seconds()
        )));
    }
    Ok(v)
}

/// When the kubelet should start refreshing: notBefore + 2/3 of the lifetime, inside
/// [notBefore + 10 min, notAfter − 10 min].
pub fn begin_refresh_at(
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> time::OffsetDateTime {
    let margin = time::Duration::try_from(REFRESH_MARGIN).unwrap_or_default();
    let lifetime: time::Duration = not_after - not_before;
    let at: time::OffsetDateTime = not_before + lifetime * 2 / 3;
    at.min(not_after - margin).max(not_before + margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, PublicKeyData, SigningKey};

    fn spiffe() -> PodCertificatesSpec {
        PodCertificatesSpec {
            uri_template: Some("spiffe://cluster.local/ns/{namespace}/sa/{serviceAccount}".into()),
            dns_name_templates: vec![],
        }
    }

    fn stub(key: &KeyPair) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.serialize_request(key).unwrap().der().to_vec()
    }

    fn pod(key: PodKey) -> PodRequest {
        PodRequest {
            namespace: "apps".into(),
            service_account: "web".into(),
            pod_uid: "0b6c7c7e-8a44-4d4e-9a43-1b2c3d4e5f60".into(),
            key,
            max_lifetime: Duration::from_secs(86400),
        }
    }

    #[test]
    fn a_stub_request_gets_the_templated_names() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let csr = pod_csr(&pod(PodKey::StubCsr(stub(&key))), Some(&spiffe())).unwrap();
        assert_eq!(csr.sans.uris, vec!["spiffe://cluster.local/ns/apps/sa/web"]);
        assert_eq!(csr.spki_der, key.subject_public_key_info());
        let no_spec = pod_csr(&pod(PodKey::StubCsr(stub(&key))), None).unwrap_err();
        assert!(
            no_spec.to_string().contains("no spec.podCertificates"),
            "{no_spec}"
        );
    }

    #[test]
    fn a_stub_request_that_asks_for_names_or_is_forged_is_refused() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let named = CertificateParams::new(vec!["admin.kube-system.svc".into()])
            .unwrap()
            .serialize_request(&key)
            .unwrap()
            .der()
            .to_vec();
        let e = pod_csr(&pod(PodKey::StubCsr(named)), Some(&spiffe())).unwrap_err();
        assert!(e.to_string().contains("must be empty"), "{e}");
        let mut forged = stub(&key);
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(pod_csr(&pod(PodKey::StubCsr(forged)), Some(&spiffe())).is_err());
    }

    #[test]
    fn proof_of_possession_signs_the_pod_uid() {
        let p = pod(PodKey::StubCsr(vec![]));
        for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ED25519] {
            let key = KeyPair::generate_for(alg).unwrap();
            let proof = key.sign(p.pod_uid.as_bytes()).unwrap();
            let spki = key.subject_public_key_info();
            let ok = pod(PodKey::Pkix {
                spki: spki.clone(),
                proof: proof.clone(),
            });
            let csr = pod_csr(&ok, Some(&spiffe())).unwrap();
            assert_eq!(csr.spki_der, spki);
            let other_pod = key.sign(b"another-pod-uid").unwrap();
            let bad = pod(PodKey::Pkix {
                spki,
                proof: other_pod,
            });
            assert!(matches!(
                pod_csr(&bad, Some(&spiffe())),
                Err(PkiError::CsrSignatureInvalid)
            ));
        }
    }

    #[test]
    fn rsa_proof_is_pss_sha256() {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::RsaKeyPair;
        let key = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa3072).unwrap();
        let pkcs8 = key.as_der().unwrap();
        let spki = KeyPair::try_from(pkcs8.as_ref())
            .unwrap()
            .subject_public_key_info();
        let uid = b"0b6c7c7e-8a44-4d4e-9a43-1b2c3d4e5f60";
        let mut sig = vec![0; key.public_modulus_len()];
        key.sign(
            &signature::RSA_PSS_SHA256,
            &SystemRandom::new(),
            uid,
            &mut sig,
        )
        .unwrap();
        assert!(verify_proof(&spki, uid, &sig).is_ok());
        assert!(verify_proof(&spki, b"another-pod-uid", &sig).is_err());
    }

    #[test]
    fn only_the_kubelets_key_types_are_supported() {
        let p256 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        assert!(supported_key(&PodKey::StubCsr(stub(&p256))).is_ok());
        let rsa2048 = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let e = supported_key(&PodKey::StubCsr(stub(&rsa2048))).unwrap_err();
        assert!(e.contains("RSA 2048-bit keys are not supported"), "{e}");
    }

    fn validity(hours: i64) -> Validity {
        let nb = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        Validity {
            not_before: nb,
            not_after: nb + time::Duration::hours(hours),
            clamped_by: pki::ClampReason::MaxDuration,
        }
    }

    #[test]
    fn lifetime_is_cut_to_max_expiration_and_at_least_an_hour() {
        let v = pod_validity(validity(24), Duration::from_secs(3 * 3600)).unwrap();
        assert_eq!(v.not_after - v.not_before, time::Duration::hours(3));
        let v = pod_validity(validity(2), Duration::from_secs(86400)).unwrap();
        assert_eq!(
            v.not_after - v.not_before,
            time::Duration::hours(2),
            "never over the issuer's"
        );
        let short = Validity {
            not_after: validity(0).not_before + time::Duration::minutes(59),
            ..validity(0)
        };
        let e = pod_validity(short, Duration::from_secs(86400)).unwrap_err();
        assert!(e.to_string().contains("at least 1h"), "{e}");
    }

    #[test]
    fn refresh_starts_at_two_thirds_inside_the_margins() {
        let v = validity(1);
        let at = begin_refresh_at(v.not_before, v.not_after);
        assert_eq!(at - v.not_before, time::Duration::minutes(40));
        let v = validity(24);
        assert_eq!(
            begin_refresh_at(v.not_before, v.not_after) - v.not_before,
            time::Duration::hours(16)
        );
        let tiny = v.not_before + time::Duration::minutes(15);
        assert_eq!(
            begin_refresh_at(v.not_before, tiny),
            v.not_before + time::Duration::minutes(10),
            "never before notBefore + 10 min"
        );
    }
}
