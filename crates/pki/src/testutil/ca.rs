//! Test CAs: roots, intermediates and plain leaves issued by them.

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::{der, key, KeyKind};

/// A test CA: its certificate and key (PEM), and what rcgen needs to sign with it.
pub struct Ca {
    /// The certificate as PEM.
    pub pem: String,
    /// The key as PKCS#8 PEM.
    pub key_pem: String,
    /// The parameters the certificate was made from.
    pub params: CertificateParams,
    /// The key.
    pub key: KeyPair,
    /// The certificate.
    pub cert: rcgen::Certificate,
}

impl Ca {
    /// The certificate as DER.
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }
    /// An issuer handle for signing children.
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
pub fn ca(kind: KeyKind, cn: &str, parent: Option<&Ca>, opts: CaOpts) -> Ca {
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
    Ca {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        params,
        key,
        cert,
    }
}

/// A self-signed root with default options.
pub fn root(kind: KeyKind, cn: &str) -> Ca {
    ca(kind, cn, None, CaOpts::default())
}

/// A standard chain: root (P-256) → intermediate signer of `kind`.
pub fn chain(kind: KeyKind) -> (Ca, Ca) {
    let root = root(KeyKind::P256, "Test Root");
    let int = ca(kind, "Test Issuing CA", Some(&root), CaOpts::default());
    (root, int)
}

/// A leaf (not a CA) for `dns` issued by `parent`, with a fresh P-256 key: (cert PEM, key PEM).
pub fn leaf_cert(parent: &Ca, dns: &str) -> (String, String) {
    let key = key(KeyKind::P256);
    let mut params = CertificateParams::new(vec![dns.to_string()]).expect("leaf params");
    params.is_ca = IsCa::ExplicitNoCa;
    let cert = params.signed_by(&key, &parent.issuer()).expect("leaf");
    (cert.pem(), key.serialize_pem())
}

/// A critical nameConstraints extension for a CA from raw permitted and excluded
/// GeneralNames (each wrapped in a GeneralSubtree), for constraints rcgen cannot express.
pub fn name_constraints_ext(permitted: &[Vec<u8>], excluded: &[Vec<u8>]) -> CustomExtension {
    let subtrees = |names: &[Vec<u8>]| {
        names
            .iter()
            .map(|n| der::seq(std::slice::from_ref(n)))
            .collect::<Vec<_>>()
    };
    let mut body = Vec::new();
    if !permitted.is_empty() {
        body.push(der::tlv(0xa0, &subtrees(permitted).concat()));
    }
    if !excluded.is_empty() {
        body.push(der::tlv(0xa1, &subtrees(excluded).concat()));
    }
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], der::seq(&body));
    ext.set_criticality(true);
    ext
}

/// A CA certificate (PEM, pathLen `path_len`) issued by `parent` for a public key held
/// elsewhere (an HSM token): only its SubjectPublicKeyInfo (DER) is known here.
pub fn ca_for_public_key(parent: &Ca, spki_der: &[u8], cn: &str, path_len: u8) -> String {
    let public = rcgen::SubjectPublicKeyInfo::from_der(spki_der).expect("public key");
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    params.signed_by(&public, &parent.issuer()).unwrap().pem()
}

/// RSASSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt) as an AlgorithmIdentifier.
const PSS_SHA256: &str = "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120";

/// `cert_pem`, signed again by the RSA `parent` with RSASSA-PSS instead of PKCS#1 v1.5 (rcgen
/// cannot sign with PSS): the TBS's signature algorithm and the outer one both say PSS.
pub fn resign_with_pss(cert_pem: &str, parent: &Ca) -> String {
    use aws_lc_rs::signature::{RsaKeyPair, RSA_PSS_SHA256};
    let cert_der = pem::parse(cert_pem).unwrap().into_contents();
    let (_, cert, _) = der::read(&cert_der).unwrap();
    let (_, tbs, _) = der::read(cert).unwrap();
    let alg = hex::decode(PSS_SHA256).unwrap();
    let mut body = Vec::new();
    let mut rest = tbs;
    for i in 0.. {
        if rest.is_empty() {
            break;
        }
        let (_, _, after) = der::read(rest).unwrap();
        // Field 2 of the TBSCertificate (after version and serial) is the signature algorithm.
        body.extend_from_slice(if i == 2 {
            &alg
        } else {
            &rest[..rest.len() - after.len()]
        });
        rest = after;
    }
    let tbs = der::tlv(0x30, &body);
    let key = RsaKeyPair::from_pkcs8(&parent.key.serialize_der()).unwrap();
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PSS_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        &tbs,
        &mut sig,
    )
    .unwrap();
    let mut bits = vec![0u8];
    bits.extend(sig);
    let outer = [tbs, alg, der::tlv(0x03, &bits)].concat();
    pem::encode(&pem::Pem::new("CERTIFICATE", der::tlv(0x30, &outer)))
}
