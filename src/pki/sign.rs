//! Signing a leaf certificate with the issuer's CA key (rcgen).
//!
//! rcgen re-encodes the issuer name from parsed attributes, which loses
//! multi-valued RDNs and repeated attribute types (e.g. `DC=corp,DC=example`)
//! found in existing enterprise PKIs. To keep chains verifiable we let rcgen
//! build the TBSCertificate, splice in the signer's subject bytes verbatim as
//! the issuer name, and sign the result ourselves with the same key.

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, CrlDistributionPoint, CustomExtension,
    DistinguishedName, DnType, GeneralSubtree, IsCa, Issuer, KeyIdMethod, SanType, SerialNumber,
    SigningKey,
};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use super::csr::{ParsedCsr, SubjectAltNames};
use super::der;
use super::error::PkiError;
use super::keys::SignerKey;
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

fn rcgen_constraints(p: &GeneralSubtrees) -> rcgen::NameConstraints {
    let mut permitted: Vec<GeneralSubtree> =
        p.dns.iter().cloned().map(GeneralSubtree::DnsName).collect();
    permitted.extend(p.ip.iter().map(|n| {
        GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(n.addr(), n.prefix_len()))
    }));
    permitted.extend(p.email.iter().cloned().map(GeneralSubtree::Rfc822Name));
    rcgen::NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: vec![],
    }
}

fn random_serial() -> SerialNumber {
    let mut b: [u8; 16] = rand::random();
    b[0] = (b[0] & 0x7f) | 0x40; // positive, full 128-bit length
    SerialNumber::from_slice(&b)
}

/// Replaces the issuer Name of a DER certificate with `issuer_name` and
/// re-signs the TBSCertificate with `key`.
fn splice_issuer_and_sign(
    cert: &[u8],
    issuer_name: &[u8],
    key: &SignerKey,
) -> Result<Vec<u8>, PkiError> {
    let (outer, _) = der::read_tlv(cert)?;
    let parts = der::children(outer.content)?;
    if parts.len() != 3 {
        return Err(fail("unexpected certificate structure"));
    }
    let tbs_fields = der::children(parts[0].content)?;
    // [0] version, serialNumber, signature, issuer, ...
    if tbs_fields.len() < 7 || tbs_fields[0].tag != 0xa0 {
        return Err(fail("unexpected TBSCertificate structure"));
    }
    let fields: Vec<Vec<u8>> = tbs_fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if i == 3 {
                issuer_name.to_vec()
            } else {
                f.full.to_vec()
            }
        })
        .collect();
    let tbs = der::seq(&fields);
    let signature = key.key.sign(&tbs).map_err(fail)?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    Ok(der::seq(&[
        tbs,
        parts[1].full.to_vec(),
        der::tlv(0x03, &bits),
    ]))
}

/// Signs a leaf for the CSR's public key with the signer's key. The subject
/// is the CSR's CN only (empty otherwise, SAN then critical); AKI from the
/// signer's SKI; SKI; KeyUsage; EKU; basicConstraints (cA=false, or cA=true
/// pathLen 0 when `is_ca`); CRL DP and AIA when configured.
pub fn sign_leaf(
    template: &LeafTemplate,
    csr: &ParsedCsr,
    chain: &SignerChain,
    key: &SignerKey,
) -> Result<Vec<u8>, PkiError> {
    let signer = parse_cert(&chain.signer_der)?;
    let key_spki = key.public_key_der();
    let (_, ks) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&key_spki).map_err(fail)?;
    if ks.subject_public_key.data != signer.public_key().subject_public_key.data {
        return Err(PkiError::SignerKeyMismatch);
    }
    let signer_ski = signer
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        });

    let mut issuer_params = CertificateParams::default();
    issuer_params.distinguished_name = DistinguishedName::new(); // replaced by splicing
    if let Some(ski) = &signer_ski {
        issuer_params.key_identifier_method = KeyIdMethod::PreSpecified(ski.clone());
    }
    let issuer = Issuer::new(issuer_params, &key.key);

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
        params.name_constraints = template.name_constraints.as_ref().map(rcgen_constraints);
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
    params.use_authority_key_identifier_extension = signer_ski.is_some();
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
    let cert = params.signed_by(&public_key, &issuer).map_err(fail)?;
    let leaf = splice_issuer_and_sign(cert.der(), signer.subject().as_raw(), key)?;
    parse_cert(&leaf)?;
    Ok(leaf)
}

#[cfg(test)]
pub(crate) mod tests;
