//! The one test-PKI kit of the project (feature `testutil`): keys of every supported type,
//! roots and intermediates ([`ca`]), workload CSRs (rcgen for ordinary ones, [`CsrBuilder`]
//! byte by byte for hostile ones), raw DER and GeneralName encoders ([`der`],
//! [`general_name`]), and deliberately wrong leaves (`leaf_params`, `raw_leaf`). The unit tests of `pki`, the
//! controller's tests, the e2e suite, the benchmarks and the fuzz seed generator all build their
//! PKI from here.

mod ca;
mod csr_builder;
pub mod der;
pub mod general_name;
mod leaf;
pub mod oids;

pub use ca::{
    ca, ca_for_public_key, chain, leaf_cert, name_constraints_ext, resign_with_pss, root, Ca,
    CaOpts,
};
pub use csr_builder::CsrBuilder;
pub use leaf::{expectations, good_params, leaf_params, raw_leaf};

use std::sync::OnceLock;

use rcgen::{
    CertificateParams, CertificateSigningRequest, DistinguishedName, DnType, KeyPair, SanType,
    SignatureAlgorithm,
};

use crate::keys::{KeyAlgorithm, KeyInfo};

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

    /// The rcgen signature algorithm of a key of this kind.
    pub fn alg(self) -> &'static SignatureAlgorithm {
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
            let (outer, _) = crate::der::read_tlv(&pkcs8).unwrap();
            let parts = crate::der::children(outer.content).unwrap();
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
