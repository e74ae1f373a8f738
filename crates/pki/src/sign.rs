//! Signing a leaf certificate with the issuer's CA key (rcgen).
//!
//! rcgen re-encodes the issuer name from parsed attributes, which loses
//! multi-valued RDNs and repeated attribute types (e.g. `DC=corp,DC=example`)
//! found in existing enterprise PKIs. To keep chains verifiable rcgen only encodes
//! the TBSCertificate (with a stand-in signer that produces no signature), the signer's
//! subject bytes go in verbatim as the issuer Name, and the key signs once.

use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName,
    DnType, IsCa, Issuer, KeyIdMethod, PublicKeyData, SanType, SerialNumber, SigningKey,
};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use super::ca_constraints::CaConstraints;
use super::csr::{ParsedCsr, SubjectAltNames};
use super::der;
use super::error::PkiError;
use super::name_constraints::GeneralSubtrees;
use super::signer_chain::{parse_cert, SignerChain};
use super::template::LeafTemplate;

const OID_AIA: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
const OID_OCSP: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];
const OID_CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];

fn fail(e: impl std::fmt::Display) -> PkiError {
    PkiError::SigningFailed(e.to_string())
}

fn ia5(s: &str) -> Result<rcgen::string::Ia5String, PkiError> {
    rcgen::string::Ia5String::try_from(s).map_err(|_| PkiError::InvalidName(s.to_string()))
}

fn san_types(sans: &SubjectAltNames) -> Result<Vec<SanType>, PkiError> {
    let mut out = Vec::new();
    for d in &sans.dns {
        out.push(SanType::DnsName(ia5(d)?));
    }
    for u in &sans.uris {
        out.push(SanType::URI(ia5(u)?));
    }
    for ip in &sans.ips {
        out.push(SanType::IpAddress(*ip));
    }
    for e in &sans.emails {
        out.push(SanType::Rfc822Name(ia5(e)?));
    }
    Ok(out)
}

/// authorityInfoAccess extension value (SEQUENCE OF AccessDescription).
fn aia_extension(
    ocsp: &[String],
    ca_issuers: &[String],
) -> Result<Option<CustomExtension>, PkiError> {
    let mut descriptions = Vec::new();
    for (method, urls) in [(OID_OCSP, ocsp), (OID_CA_ISSUERS, ca_issuers)] {
        for url in urls {
            if !url.is_ascii() {
                return Err(PkiError::InvalidName(url.clone()));
            }
            // accessLocation: GeneralName uniformResourceIdentifier [6] IA5String
            descriptions.push(der::seq(&[
                der::oid(method),
                der::tlv(0x86, url.as_bytes()),
            ]));
        }
    }
    if descriptions.is_empty() {
        return Ok(None);
    }
    Ok(Some(CustomExtension::from_oid_content(
        OID_AIA,
        der::seq(&descriptions),
    )))
}

const OID_NAME_CONSTRAINTS: &[u64] = &[2, 5, 29, 30];

fn subtrees(g: &GeneralSubtrees) -> Vec<u8> {
    // GeneralSubtree ::= SEQUENCE { base GeneralName } (minimum 0, no maximum).
    let mut out = Vec::new();
    for d in &g.dns {
        out.extend(der::seq(&[der::tlv(0x82, d.as_bytes())]));
    }
    for e in &g.email {
        out.extend(der::seq(&[der::tlv(0x81, e.as_bytes())]));
    }
    for u in &g.uri {
        out.extend(der::seq(&[der::tlv(0x86, u.as_bytes())]));
    }
    for n in &g.ip {
        let mut bytes = match n.addr() {
            std::net::IpAddr::V4(a) => a.octets().to_vec(),
            std::net::IpAddr::V6(a) => a.octets().to_vec(),
        };
        bytes.extend(match n.netmask() {
            std::net::IpAddr::V4(m) => m.octets().to_vec(),
            std::net::IpAddr::V6(m) => m.octets().to_vec(),
        });
        out.extend(der::seq(&[der::tlv(0x87, &bytes)]));
    }
    out
}

/// The critical nameConstraints extension of an issued CA (rcgen cannot write URI subtrees).
fn name_constraints_ext(c: &CaConstraints) -> CustomExtension {
    let mut parts = Vec::new();
    let permitted = subtrees(&c.permitted);
    if !permitted.is_empty() {
        parts.push(der::tlv(0xa0, &permitted));
    }
    let excluded = subtrees(&c.excluded);
    if !excluded.is_empty() {
        parts.push(der::tlv(0xa1, &excluded));
    }
    let mut ext = CustomExtension::from_oid_content(OID_NAME_CONSTRAINTS, der::seq(&parts));
    ext.set_criticality(true);
    ext
}

fn random_serial() -> SerialNumber {
    let mut b: [u8; 16] = rand::random();
    b[0] = (b[0] & 0x7f) | 0x40; // positive, full 128-bit length
    SerialNumber::from_slice(&b)
}

/// What signing needs of the signer certificate, computed once per signer instead of per leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerName {
    /// The signer's subject Name, DER, byte for byte (the leaves' issuer Name).
    name_der: Vec<u8>,
    /// The signer's subjectKeyIdentifier (the leaves' authorityKeyIdentifier).
    ski: Option<Vec<u8>>,
    /// Whether the key belongs to the signer certificate.
    key_matches: bool,
}

impl IssuerName {
    /// Reads the signer certificate's subject, SKI and whether `key` is its key (any key
    /// rcgen can sign with: a [`crate::SignerKey`] in memory, or a backend's own, e.g. in a
    /// token).
    pub fn new<K: PublicKeyData + ?Sized>(
        chain: &SignerChain,
        key: &K,
    ) -> Result<IssuerName, PkiError> {
        let signer = parse_cert(&chain.signer_der)?;
        let key_spki = key.subject_public_key_info();
        let (_, ks) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&key_spki).map_err(fail)?;
        let ski = signer
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            });
        Ok(IssuerName {
            name_der: signer.subject().as_raw().to_vec(),
            ski,
            key_matches: ks.subject_public_key.data == signer.public_key().subject_public_key.data,
        })
    }
}

/// rcgen's signer for encoding only: the public half of the real key, and no signature.
/// rcgen writes the TBSCertificate (extensions included) with it; the real key then signs
/// the final TBSCertificate exactly once.
struct EncodeOnly<'a, K: ?Sized>(&'a K);

impl<K: PublicKeyData + ?Sized> PublicKeyData for EncodeOnly<'_, K> {
    fn der_bytes(&self) -> &[u8] {
        self.0.der_bytes()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.0.algorithm()
    }
}

impl<K: PublicKeyData + ?Sized> SigningKey for EncodeOnly<'_, K> {
    fn sign(&self, _msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(Vec::new())
    }
}

/// A CA key: rcgen's [`SigningKey`], and the signature AlgorithmIdentifier when rcgen has no
/// name for it.
pub trait CaKey: SigningKey {
    /// The signature AlgorithmIdentifier (DER) the key signs with, when it is not the one of
    /// [`PublicKeyData::algorithm`] (RSASSA-PSS, which rcgen cannot name). `None`: rcgen's.
    fn algorithm_identifier(&self) -> Option<Vec<u8>> {
        None
    }
}

impl CaKey for crate::keys::SignerKey {}

/// Takes rcgen's unsigned certificate, puts `issuer_name` in as the issuer Name verbatim (and
/// the key's own AlgorithmIdentifier, if it has one), and signs the resulting TBSCertificate
/// once with `key`.
fn sign_with_issuer_name<K: CaKey + ?Sized>(
    unsigned: &[u8],
    issuer_name: &[u8],
    key: &K,
) -> Result<Vec<u8>, PkiError> {
    let (outer, _) = der::read_tlv(unsigned)?;
    let parts = der::children(outer.content)?;
    if parts.len() != 3 {
        return Err(fail("unexpected certificate structure"));
    }
    let tbs_fields = der::children(parts[0].content)?;
    // [0] version, serialNumber, signature, issuer, ...
    if tbs_fields.len() < 7 || tbs_fields[0].tag != 0xa0 || tbs_fields[3].tag != 0x30 {
        return Err(fail("unexpected TBSCertificate structure"));
    }
    let algorithm = key.algorithm_identifier();
    let algorithm = algorithm.as_deref().unwrap_or(parts[1].full);
    let mut content = Vec::with_capacity(parts[0].content.len() + issuer_name.len());
    for (i, f) in tbs_fields.iter().enumerate() {
        content.extend_from_slice(match i {
            2 => algorithm,
            3 => issuer_name,
            _ => f.full,
        });
    }
    let tbs = der::tlv(0x30, &content);
    let signature = key.sign(&tbs).map_err(fail)?;
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0u8);
    bits.extend_from_slice(&signature);
    Ok(der::seq(&[tbs, algorithm.to_vec(), der::tlv(0x03, &bits)]))
}

/// Signs a leaf for the CSR's public key with the signer's key. The subject
/// is the CSR's CN only (empty otherwise, SAN then critical); AKI from the
/// signer's SKI; SKI; KeyUsage; EKU; basicConstraints (cA=false, or cA=true
/// pathLen 0 and the derived name constraints when `is_ca`); CRL DP and AIA when configured.
pub fn sign_leaf<K: CaKey + ?Sized>(
    template: &LeafTemplate,
    csr: &ParsedCsr,
    chain: &SignerChain,
    key: &K,
) -> Result<Vec<u8>, PkiError> {
    sign_leaf_as(template, csr, &IssuerName::new(chain, key)?, key)
}

/// [`sign_leaf`] with the signer facts read once ([`IssuerName::new`]). The issuer Name is
/// the signer's subject byte for byte (multi-valued RDNs and repeated attribute types such
/// as `DC=corp,DC=example` survive), and the leaf is signed exactly once, by `key`: the
/// signature algorithm is the key's ([`CaKey::algorithm_identifier`], else
/// [`PublicKeyData::algorithm`]), the signature whatever its [`SigningKey::sign`] returns (the
/// after-signing checks verify it).
pub fn sign_leaf_as<K: CaKey + ?Sized>(
    template: &LeafTemplate,
    csr: &ParsedCsr,
    issuer: &IssuerName,
    key: &K,
) -> Result<Vec<u8>, PkiError> {
    if !issuer.key_matches {
        return Err(PkiError::SignerKeyMismatch);
    }
    let mut issuer_params = CertificateParams::default();
    issuer_params.distinguished_name = DistinguishedName::new(); // replaced verbatim below
    if let Some(ski) = &issuer.ski {
        issuer_params.key_identifier_method = KeyIdMethod::PreSpecified(ski.clone());
    }
    let rcgen_issuer = Issuer::new(issuer_params, EncodeOnly(key));

    let mut params = CertificateParams::default();
    params.serial_number = Some(random_serial());
    params.not_before = template.validity.not_before;
    params.not_after = template.validity.not_after;
    params.distinguished_name = DistinguishedName::new();
    if let Some(cn) = &template.common_name {
        params
            .distinguished_name
            .push(DnType::CommonName, cn.as_str());
    }
    params.subject_alt_names = san_types(&template.sans)?;
    params.is_ca = if template.is_ca {
        IsCa::Ca(BasicConstraints::Constrained(0))
    } else {
        IsCa::ExplicitNoCa
    };
    if template.is_ca {
        if let Some(c) = &template.name_constraints {
            params.custom_extensions.push(name_constraints_ext(c));
        }
    }
    let usages = template.effective_usages();
    params.key_usages = usages
        .iter()
        .filter_map(|u| u.to_rcgen_key_usage())
        .collect();
    params.key_usages.dedup();
    for eku in usages.iter().filter_map(|u| u.to_rcgen_eku()) {
        params.insert_extended_key_usage(eku);
    }
    params.use_authority_key_identifier_extension = issuer.ski.is_some();
    let ext = &template.extensions;
    if !ext.crl_distribution_points.is_empty() {
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: ext.crl_distribution_points.clone(),
        }];
    }
    params.custom_extensions.extend(aia_extension(
        &ext.ocsp_servers,
        &ext.issuing_certificate_urls,
    )?);

    let public_key = rcgen::SubjectPublicKeyInfo::from_der(&csr.spki_der).map_err(fail)?;
    let unsigned = params.signed_by(&public_key, &rcgen_issuer).map_err(fail)?;
    // The caller checks the result (parsing included) before anything is written.
    sign_with_issuer_name(unsigned.der(), &issuer.name_der, key)
}

#[cfg(test)]
pub(crate) mod tests;
