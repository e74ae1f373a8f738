//! Test support: builds roots, intermediates, CSRs and leaves with rcgen.

use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequest, DistinguishedName, DnType,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SignatureAlgorithm,
};
use time::{Duration, OffsetDateTime};

use super::der;
use super::keys::{KeyAlgorithm, KeyInfo};

/// Key types used in tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    P256,
    P384,
    Rsa2048,
    Rsa4096,
    Ed25519,
}

impl KeyKind {
    pub const ALL: [KeyKind; 5] = [
        KeyKind::P256,
        KeyKind::P384,
        KeyKind::Rsa2048,
        KeyKind::Rsa4096,
        KeyKind::Ed25519,
    ];

    pub fn info(self) -> KeyInfo {
        let (algorithm, size_bits) = match self {
            KeyKind::P256 => (KeyAlgorithm::Ecdsa, 256),
            KeyKind::P384 => (KeyAlgorithm::Ecdsa, 384),
            KeyKind::Rsa2048 => (KeyAlgorithm::Rsa, 2048),
            KeyKind::Rsa4096 => (KeyAlgorithm::Rsa, 4096),
            KeyKind::Ed25519 => (KeyAlgorithm::Ed25519, 256),
        };
        KeyInfo {
            algorithm,
            size_bits,
        }
    }

    fn alg(self) -> &'static SignatureAlgorithm {
        match self {
            KeyKind::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyKind::Rsa2048 | KeyKind::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
            KeyKind::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

/// A fresh key (RSA keys are generated once per process and reused: slow).
pub fn key(kind: KeyKind) -> KeyPair {
    static RSA2048: OnceLock<String> = OnceLock::new();
    static RSA4096: OnceLock<String> = OnceLock::new();
    let rsa = |cell: &OnceLock<String>, size| {
        let pem = cell.get_or_init(|| {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size)
                .unwrap()
                .serialize_pem()
        });
        KeyPair::from_pem(pem).unwrap()
    };
    match kind {
        KeyKind::Rsa2048 => rsa(&RSA2048, rcgen::RsaKeySize::_2048),
        KeyKind::Rsa4096 => rsa(&RSA4096, rcgen::RsaKeySize::_4096),
        k => KeyPair::generate_for(k.alg()).unwrap(),
    }
}

/// A second, distinct RSA-2048 key (for "other key" tests).
pub fn other_rsa_key() -> KeyPair {
    static K: OnceLock<String> = OnceLock::new();
    let pem = K.get_or_init(|| {
        KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .unwrap()
            .serialize_pem()
    });
    KeyPair::from_pem(pem).unwrap()
}

/// The key as PEM in every format applicable to its type: PKCS#8 always,
/// plus PKCS#1 for RSA and SEC1 for ECDSA.
pub fn key_pems(kind: KeyKind, kp: &KeyPair) -> Vec<(&'static str, String)> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature as sig;
    let pkcs8 = kp.serialize_der();
    let mut out = vec![("pkcs8", kp.serialize_pem())];
    let traditional = match kind {
        KeyKind::Rsa2048 | KeyKind::Rsa4096 => {
            // PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING }
            let (outer, _) = der::read_tlv(&pkcs8).unwrap();
            let parts = der::children(outer.content).unwrap();
            Some(("pkcs1", "RSA PRIVATE KEY", parts[2].content.to_vec()))
        }
        KeyKind::P256 | KeyKind::P384 => {
            let alg = if kind == KeyKind::P256 {
                &sig::ECDSA_P256_SHA256_ASN1_SIGNING
            } else {
                &sig::ECDSA_P384_SHA384_ASN1_SIGNING
            };
            let ec = sig::EcdsaKeyPair::from_pkcs8(alg, &pkcs8).unwrap();
            let sec1 = ec.private_key().as_der().unwrap();
            Some(("sec1", "EC PRIVATE KEY", sec1.as_ref().to_vec()))
        }
        KeyKind::Ed25519 => None,
    };
    if let Some((name, tag, der)) = traditional {
        out.push((name, pem::encode(&pem::Pem::new(tag, der))));
    }
    out
}

/// A test CA: its params (for signing with rcgen), key and certificate.
pub struct TestCa {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub cert: rcgen::Certificate,
}

impl TestCa {
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }
    pub fn pem(&self) -> String {
        self.cert.pem()
    }
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

/// Options for a test CA certificate.
pub struct CaOpts {
    pub is_ca: bool,
    pub path_len: Option<u8>,
    pub key_usages: Vec<KeyUsagePurpose>,
    pub name_constraints: Option<rcgen::NameConstraints>,
    pub ext_key_usages: Vec<rcgen::ExtendedKeyUsagePurpose>,
    pub extra_extensions: Vec<rcgen::CustomExtension>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Default for CaOpts {
    fn default() -> Self {
        let now = OffsetDateTime::now_utc();
        CaOpts {
            is_ca: true,
            path_len: None,
            key_usages: vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ],
            name_constraints: None,
            ext_key_usages: vec![],
            extra_extensions: vec![],
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(365),
        }
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "pki-issuer tests");
    dn.push(DnType::CommonName, cn);
    dn
}

/// Builds a CA certificate signed by `parent` (self-signed when `None`).
pub fn ca(kind: KeyKind, cn: &str, parent: Option<&TestCa>, opts: CaOpts) -> TestCa {
    let key = key(kind);
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.is_ca = if opts.is_ca {
        IsCa::Ca(match opts.path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        })
    } else {
        IsCa::ExplicitNoCa
    };
    params.key_usages = opts.key_usages;
    params.name_constraints = opts.name_constraints;
    params.extended_key_usages = opts.ext_key_usages;
    params.custom_extensions = opts.extra_extensions;
    params.not_before = opts.not_before;
    params.not_after = opts.not_after;
    params.use_authority_key_identifier_extension = parent.is_some();
    let cert = match parent {
        Some(p) => params.signed_by(&key, &p.issuer()).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    TestCa { params, key, cert }
}

/// A self-signed root with default options.
pub fn root(kind: KeyKind, cn: &str) -> TestCa {
    ca(kind, cn, None, CaOpts::default())
}

/// A standard chain: root (P-256) → intermediate signer of `kind`.
pub fn chain(kind: KeyKind) -> (TestCa, TestCa) {
    let root = root(KeyKind::P256, "Test Root");
    let int = ca(kind, "Test Issuing CA", Some(&root), CaOpts::default());
    (root, int)
}

/// Classifies a SAN string: URI if it has `://`, email if it has `@`, IP if
/// it parses, DNS otherwise.
pub fn san(s: &str) -> SanType {
    if s.contains("://") {
        SanType::URI(s.try_into().unwrap())
    } else if s.contains('@') {
        SanType::Rfc822Name(s.try_into().unwrap())
    } else if let Ok(ip) = s.parse() {
        SanType::IpAddress(ip)
    } else {
        SanType::DnsName(s.try_into().unwrap())
    }
}

/// A CSR for a fresh key of `kind` with the given CN and SANs.
pub fn csr(kind: KeyKind, cn: Option<&str>, sans: &[&str]) -> (KeyPair, CertificateSigningRequest) {
    let kp = key(kind);
    let csr = csr_for(&kp, cn, sans);
    (kp, csr)
}

/// A CSR for an existing key.
pub fn csr_for(kp: &KeyPair, cn: Option<&str>, sans: &[&str]) -> CertificateSigningRequest {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params.subject_alt_names = sans.iter().map(|s| san(s)).collect();
    params.serialize_request(kp).unwrap()
}

/// Leaf parameters with the given SANs, usages and validity, for building
/// deliberately wrong certificates directly with rcgen.
pub fn leaf_params(sans: &[&str], nb: OffsetDateTime, na: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = sans.iter().map(|s| san(s)).collect();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = nb;
    params.not_after = na;
    params.use_authority_key_identifier_extension = true;
    params
}

/// What a leaf for `kp` with `sans` and `usages` must look like (no CN, not a CA).
pub fn expectations(
    kp: &KeyPair,
    sans: &[&str],
    usages: Vec<super::usage::Usage>,
) -> super::verify::Expectations {
    let parsed = super::csr::parse_csr(csr_for(kp, None, sans).der()).unwrap();
    super::verify::Expectations {
        spki_der: parsed.spki_der,
        sans: parsed.sans,
        usages,
        is_ca: false,
        not_after_max: None,
        not_before_min: None,
        max_lifetime: None,
        urls: Default::default(),
        common_name: None,
        echoable_subject: None,
        name_constraints: None,
    }
}

/// Signs `params` for `kp` with `ca` directly (bypassing sign_leaf), to produce
/// deliberately wrong certificates.
pub fn raw_leaf(ca: &TestCa, kp: &KeyPair, params: CertificateParams) -> Vec<u8> {
    params.signed_by(kp, &ca.issuer()).unwrap().der().to_vec()
}

/// [`leaf_params`] valid from a minute ago for a day.
pub fn good_params(sans: &[&str]) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    leaf_params(sans, now - Duration::minutes(1), now + Duration::days(1))
}
