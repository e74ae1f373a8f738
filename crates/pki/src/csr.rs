//! PKCS#10 certificate signing request parsing and validation.

use std::net::IpAddr;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{ExtendedKeyUsage, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::error::PkiError;
use super::extensions::{self, CSR_EXTENSIONS};
use super::keys::{spki_key_info, verify_signature, KeyAlgorithm, KeyInfo};
use super::subject::EmptyValues;
use super::usage::{usages_from_key_usage_flags, Usage};

/// Largest CSR (PEM or DER) accepted.
pub const MAX_CSR_BYTES: usize = 64 * 1024;

/// Subject alternative names, grouped by type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectAltNames {
    /// dNSName entries.
    pub dns: Vec<String>,
    /// uniformResourceIdentifier entries.
    pub uris: Vec<String>,
    /// iPAddress entries.
    pub ips: Vec<IpAddr>,
    /// rfc822Name entries.
    pub emails: Vec<String>,
}

impl SubjectAltNames {
    /// True when there are no names at all.
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.uris.is_empty() && self.ips.is_empty() && self.emails.is_empty()
    }

    /// Every name rendered with a type prefix (`DNS:`, `URI:`, `IP:`, `email:`).
    pub fn describe(&self) -> Vec<String> {
        let mut v: Vec<String> = self.dns.iter().map(|d| format!("DNS:{d}")).collect();
        v.extend(self.uris.iter().map(|u| format!("URI:{u}")));
        v.extend(self.ips.iter().map(|i| format!("IP:{i}")));
        v.extend(self.emails.iter().map(|e| format!("email:{e}")));
        v
    }

    /// Collects SANs from x509-parser general names; other name types are an error.
    pub(crate) fn from_general_names(names: &[GeneralName<'_>]) -> Result<Self, String> {
        let mut sans = SubjectAltNames::default();
        for name in names {
            match name {
                GeneralName::DNSName(d) => sans.dns.push(d.to_string()),
                GeneralName::URI(u) => sans.uris.push(u.to_string()),
                GeneralName::RFC822Name(e) => sans.emails.push(e.to_string()),
                GeneralName::IPAddress(b) => sans.ips.push(ip_from_bytes(b)?),
                other => {
                    return Err(format!(
                        "unsupported subject alternative name type {}",
                        san_type(other)
                    ))
                }
            }
        }
        Ok(sans)
    }
}

fn san_type(name: &GeneralName<'_>) -> &'static str {
    match name {
        GeneralName::OtherName(..) => "otherName",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::X400Address(_) => "x400Address",
        GeneralName::EDIPartyName(_) => "ediPartyName",
        GeneralName::RegisteredID(_) => "registeredID",
        _ => "unknown",
    }
}

fn ip_from_bytes(b: &[u8]) -> Result<IpAddr, String> {
    match b.len() {
        4 => Ok(IpAddr::from(<[u8; 4]>::try_from(b).unwrap())),
        16 => Ok(IpAddr::from(<[u8; 16]>::try_from(b).unwrap())),
        n => Err(format!("IP address SAN with invalid length {n}")),
    }
}

/// The usages of the purposes x509-parser decodes itself (`any`, TLS, code signing, ...).
pub(crate) fn known_eku_usages(eku: &ExtendedKeyUsage<'_>) -> Vec<Usage> {
    let flags = [
        (eku.any, Usage::Any),
        (eku.server_auth, Usage::ServerAuth),
        (eku.client_auth, Usage::ClientAuth),
        (eku.code_signing, Usage::CodeSigning),
        (eku.email_protection, Usage::EmailProtection),
        (eku.time_stamping, Usage::Timestamping),
        (eku.ocsp_signing, Usage::OcspSigning),
    ];
    flags.iter().filter(|f| f.0).map(|f| f.1).collect()
}

/// The usages an extendedKeyUsage extension names; an OID cert-manager has no name for is
/// an error naming it.
pub(crate) fn usages_from_eku(eku: &ExtendedKeyUsage<'_>) -> Result<Vec<Usage>, String> {
    let mut usages = known_eku_usages(eku);
    for oid in &eku.other {
        let usage = Usage::from_eku_oid(&oid.to_id_string())
            .ok_or_else(|| format!("unknown extended key usage {oid}"))?;
        usages.push(usage);
    }
    Ok(usages)
}

/// A parsed, signature-verified CSR.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedCsr {
    /// The CSR in DER.
    pub der: Vec<u8>,
    /// The requested public key (SubjectPublicKeyInfo DER).
    pub spki_der: Vec<u8>,
    /// Algorithm and size of the requested key.
    pub key: KeyInfo,
    /// Subject common name, if any.
    pub common_name: Option<String>,
    /// The subject's DER when it held empty attributes that were dropped (`O=""`): a remote
    /// CA that copies exactly this subject into the certificate adds nothing.
    pub echoable_subject: Option<Vec<u8>>,
    /// SANs from the extensionRequest attribute.
    pub sans: SubjectAltNames,
    /// basicConstraints cA from the extensionRequest, if present.
    pub requested_is_ca: Option<bool>,
    /// KeyUsage + EKU requested in the CSR (canonical spellings).
    pub requested_usages: Vec<Usage>,
}

/// Decodes PEM (`CERTIFICATE REQUEST` / `NEW CERTIFICATE REQUEST`) or DER to DER.
fn csr_der(input: &[u8]) -> Result<Vec<u8>, PkiError> {
    let trimmed = input.trim_ascii_start();
    if !trimmed.starts_with(b"-----BEGIN") {
        return Ok(input.to_vec());
    }
    let blocks = pem::parse_many(trimmed)
        .map_err(|e| PkiError::InvalidCsr(format!("malformed PEM: {e}")))?;
    let mut csrs = blocks
        .into_iter()
        .filter(|b| matches!(b.tag(), "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST"));
    match (csrs.next(), csrs.next()) {
        (Some(b), None) => Ok(b.into_contents()),
        (None, _) => Err(PkiError::InvalidCsr(
            "no CERTIFICATE REQUEST PEM block found".into(),
        )),
        (Some(_), Some(_)) => Err(PkiError::InvalidCsr(
            "more than one CERTIFICATE REQUEST PEM block".into(),
        )),
    }
}

/// Parses a CSR (PEM or DER), enforcing [`MAX_CSR_BYTES`], verifying its
/// self-signature and extracting key, CN, SANs, isCA and usages.
///
/// Unsupported keys (DSA, P-192, secp256k1, ...) fail with
/// [`PkiError::UnsupportedKeyAlgorithm`]; RSA keys below the absolute floor of
/// 2048 bits fail with [`PkiError::KeyAlgorithmNotAllowed`] before the
/// signature is checked (aws-lc-rs cannot verify them anyway).
pub fn parse_csr(pem_or_der: &[u8]) -> Result<ParsedCsr, PkiError> {
    if pem_or_der.len() > MAX_CSR_BYTES {
        return Err(PkiError::CsrTooLarge(pem_or_der.len()));
    }
    let der = csr_der(pem_or_der)?;
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| PkiError::InvalidCsr(format!("not a PKCS#10 request: {e}")))?;
    if !rest.is_empty() {
        return Err(PkiError::InvalidCsr(
            "trailing data after the request".into(),
        ));
    }
    let info = &csr.certification_request_info;
    let key = spki_key_info(&info.subject_pki)?;
    if key.algorithm == KeyAlgorithm::Rsa && key.size_bits < 2048 {
        return Err(PkiError::KeyAlgorithmNotAllowed {
            algorithm: key.algorithm.to_string(),
            size: key.size_bits,
        });
    }
    if !verify_signature(
        &info.subject_pki,
        &csr.signature_algorithm,
        &csr.signature_value.data,
        info.raw,
    ) {
        return Err(PkiError::CsrSignatureInvalid);
    }

    let subject_der = super::subject::subject_tlv(info.raw, false)
        .map_err(|_| PkiError::InvalidCsr("cannot locate the subject".into()))?;
    let subject = super::subject::validate_subject(
        &info.subject,
        &subject_der,
        "the CSR",
        EmptyValues::Drop,
    )?;
    let common_name = subject.common_name;
    let echoable_subject = (!subject.dropped.is_empty()).then_some(subject_der);

    let mut ext_requests = info
        .iter_attributes()
        .filter_map(|a| match a.parsed_attribute() {
            ParsedCriAttribute::ExtensionRequest(r) => Some((r, a.value)),
            _ => None,
        });
    let ext_request = ext_requests.next();
    if ext_requests.next().is_some() {
        return Err(PkiError::InvalidCsr(
            "more than one extensionRequest attribute".into(),
        ));
    }
    let ext_request = match ext_request {
        Some((r, set)) => {
            // The attribute's SET must hold exactly one Extensions value: a parser reading
            // only the first would miss what a CA reading another one signs.
            let values = super::der::read_tlv(set)
                .and_then(|(t, _)| super::der::children(t.content))
                .map(|v| v.len())
                .unwrap_or(0);
            if values != 1 {
                return Err(PkiError::InvalidCsr(format!(
                    "the extensionRequest attribute holds {values} values instead of one"
                )));
            }
            Some(r)
        }
        None => None,
    };
    let requested = ext_request.map_or(&[][..], |r| r.extensions.as_slice());
    let allowed = |oid: &str| CSR_EXTENSIONS.contains(&oid);
    extensions::check_allowed(requested, allowed, "the CSR requests")?;

    let mut sans = SubjectAltNames::default();
    let mut requested_is_ca = None;
    let mut requested_usages = Vec::new();
    for ext in requested.iter().map(|e| e.parsed_extension()) {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                sans = SubjectAltNames::from_general_names(&san.general_names)
                    .map_err(PkiError::InvalidCsr)?;
            }
            ParsedExtension::BasicConstraints(bc) => requested_is_ca = Some(bc.ca),
            ParsedExtension::KeyUsage(k) => {
                requested_usages.extend(usages_from_key_usage_flags(k.flags))
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                requested_usages.extend(usages_from_eku(eku).map_err(PkiError::InvalidCsr)?);
            }
            ParsedExtension::ParseError { error } => {
                return Err(PkiError::InvalidCsr(format!(
                    "malformed requested extension: {error}"
                )))
            }
            _ => {}
        }
    }

    Ok(ParsedCsr {
        spki_der: info.subject_pki.raw.to_vec(),
        der: der.clone(),
        key,
        common_name,
        echoable_subject,
        sans,
        requested_is_ca,
        requested_usages,
    })
}

#[cfg(test)]
mod tests;
