//! An "existing PKI" for tests: a root, intermediates issued by it, and workload CSRs.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// A CA certificate and its key.
pub struct Ca {
    /// The certificate as PEM.
    pub pem: String,
    /// The key as PKCS#8 PEM.
    pub key_pem: String,
    params: CertificateParams,
    key: KeyPair,
}

impl Ca {
    /// An issuer handle for signing children.
    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

fn ca_params(
    cn: &str,
    path_len: Option<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::OrganizationName, "Example Corp");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = not_before;
    p.not_after = not_after;
    p.use_authority_key_identifier_extension = true;
    p
}

/// A self-signed root valid for ten years.
pub fn root(cn: &str) -> Ca {
    let now = OffsetDateTime::now_utc();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("root key");
    let params = ca_params(
        cn,
        None,
        now - Duration::days(1),
        now + Duration::days(3650),
    );
    let cert = params.self_signed(&key).expect("self-signed root");
    crate::leak_scan::register_private_key(&format!("key of root {cn:?}"), &key.serialize_pem());
    Ca {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        params,
        key,
    }
}

/// An intermediate issued by `parent`, valid from `not_before` to `not_after`.
pub fn intermediate_between(
    parent: &Ca,
    cn: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("intermediate key");
    let params = ca_params(cn, Some(0), not_before, not_after);
    let cert = params
        .signed_by(&key, &parent.issuer())
        .expect("intermediate");
    crate::leak_scan::register_private_key(
        &format!("key of intermediate {cn:?}"),
        &key.serialize_pem(),
    );
    Ca {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        params,
        key,
    }
}

/// An intermediate valid for a year.
pub fn intermediate(parent: &Ca, cn: &str) -> Ca {
    let now = OffsetDateTime::now_utc();
    intermediate_between(
        parent,
        cn,
        now - Duration::hours(1),
        now + Duration::days(365),
    )
}

/// A fresh workload key and a CSR for `sans` (`spiffe://` and `https://` become URI SANs,
/// IP literals IP SANs, the rest DNS names). Returns (key PEM, CSR PEM).
pub fn csr(sans: &[&str]) -> (String, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("workload key");
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = sans
        .iter()
        .map(|s| {
            if s.contains("://") {
                SanType::URI(s.to_string().try_into().expect("uri"))
            } else if let Ok(ip) = s.parse() {
                SanType::IpAddress(ip)
            } else {
                SanType::DnsName(s.to_string().try_into().expect("dns"))
            }
        })
        .collect();
    let csr = params.serialize_request(&key).expect("csr");
    crate::leak_scan::register_private_key(
        &format!("workload key for {sans:?}"),
        &key.serialize_pem(),
    );
    (key.serialize_pem(), csr.pem().expect("csr pem"))
}

/// A leaf (not a CA) certificate issued by `parent`, with its key: (cert PEM, key PEM).
pub fn leaf_cert(parent: &Ca, dns: &str) -> (String, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("leaf key");
    let mut params = CertificateParams::new(vec![dns.to_string()]).expect("params");
    params.is_ca = IsCa::ExplicitNoCa;
    let cert = params.signed_by(&key, &parent.issuer()).expect("leaf");
    crate::leak_scan::register_private_key(&format!("key of leaf {dns:?}"), &key.serialize_pem());
    (cert.pem(), key.serialize_pem())
}
