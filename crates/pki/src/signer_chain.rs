//! The issuer's signing certificate chain and its health check.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::error::PkiError;
use super::keys::SignerKey;
use super::path::{self, build_path, check_count, check_pem_size, Path};

pub(crate) use super::path::issued_by;

/// Facts about a certificate, for status reporting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerInfo {
    /// Subject DN (RFC 4514-ish string).
    pub subject: String,
    /// Serial number, lowercase hex.
    pub serial_hex: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// SHA-256 over the DER, lowercase hex without colons.
    pub sha256_fingerprint: String,
}

/// The signer certificate followed by the intermediates above it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerChain {
    /// The signing CA certificate (first block of `tls.crt`).
    pub signer_der: Vec<u8>,
    /// Further certificates from `tls.crt`, nearest to the signer first.
    pub intermediates_der: Vec<Vec<u8>>,
}

pub(crate) fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    let (rest, cert) = X509Certificate::from_der(der)
        .map_err(|e| PkiError::InvalidCertificate(format!("cannot parse certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(PkiError::InvalidCertificate(
            "trailing data after certificate".into(),
        ));
    }
    Ok(cert)
}

/// Parses every `CERTIFICATE` block of a PEM bundle to DER. Garbage, other
/// block types and an empty bundle are errors.
pub fn parse_pem_certs(pem_str: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    let blocks = pem::parse_many(pem_str)
        .map_err(|e| PkiError::InvalidCertificate(format!("malformed PEM: {e}")))?;
    let mut out = Vec::new();
    for b in blocks {
        if b.tag() != "CERTIFICATE" {
            return Err(PkiError::InvalidCertificate(format!(
                "unexpected PEM block {:?} (expected CERTIFICATE)",
                b.tag()
            )));
        }
        parse_cert(b.contents())?;
        out.push(b.into_contents());
    }
    if out.is_empty() {
        return Err(PkiError::InvalidCertificate(
            "no CERTIFICATE PEM block found".into(),
        ));
    }
    Ok(out)
}

/// Parses a trust-anchor bundle: at most [`path::MAX_ANCHORS`] certificates in
/// [`path::MAX_ANCHORS_PEM_BYTES`].
pub fn parse_trust_anchors(pem_str: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    check_pem_size(
        "the trust-anchor bundle",
        pem_str,
        path::MAX_ANCHORS_PEM_BYTES,
    )?;
    let certs = parse_pem_certs(pem_str)?;
    check_count("the trust-anchor bundle", certs.len(), path::MAX_ANCHORS)?;
    Ok(certs)
}

/// Status facts for one certificate (signer or trust anchor).
pub fn cert_info(der: &[u8]) -> Result<SignerInfo, PkiError> {
    let cert = parse_cert(der)?;
    Ok(SignerInfo {
        subject: cert.subject().to_string(),
        serial_hex: hex::encode(cert.raw_serial()),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        sha256_fingerprint: hex::encode(Sha256::digest(der)),
    })
}

impl SignerChain {
    /// Parses `tls.crt`: signer first, then intermediates; at most
    /// [`path::MAX_CHAIN_CERTS`] certificates in [`path::MAX_CHAIN_PEM_BYTES`].
    pub fn from_pem(tls_crt_pem: &str) -> Result<SignerChain, PkiError> {
        check_pem_size(
            "the certificate chain",
            tls_crt_pem,
            path::MAX_CHAIN_PEM_BYTES,
        )?;
        let mut certs = parse_pem_certs(tls_crt_pem)?;
        check_count("the certificate chain", certs.len(), path::MAX_CHAIN_CERTS)?;
        let signer_der = certs.remove(0);
        Ok(SignerChain {
            signer_der,
            intermediates_der: certs,
        })
    }

    /// Signer followed by intermediates.
    pub fn all_der(&self) -> Vec<Vec<u8>> {
        std::iter::once(self.signer_der.clone())
            .chain(self.intermediates_der.iter().cloned())
            .collect()
    }

    /// The earliest notAfter of the signer and its intermediates. An
    /// unparseable certificate counts as expired (Unix epoch), so issuance
    /// fails safe.
    pub fn earliest_not_after(&self) -> OffsetDateTime {
        self.all_der()
            .iter()
            .map(|der| {
                parse_cert(der).map_or(OffsetDateTime::UNIX_EPOCH, |c| {
                    c.validity().not_after.to_datetime()
                })
            })
            .min()
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

fn subject(cert: &X509Certificate<'_>) -> String {
    cert.subject().to_string()
}

/// Checks the certificate is within its validity period.
pub(crate) fn check_time(
    cert: &X509Certificate<'_>,
    what: &str,
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let nb = cert.validity().not_before.to_datetime();
    let na = cert.validity().not_after.to_datetime();
    if now < nb {
        return Err(PkiError::SignerNotValid(format!(
            "{what} \"{}\" is not valid before {nb}",
            subject(cert)
        )));
    }
    if now > na {
        return Err(PkiError::SignerNotValid(format!(
            "{what} \"{}\" expired at {na}",
            subject(cert)
        )));
    }
    Ok(())
}

/// Checks basicConstraints cA=true and (if keyUsage is present) keyCertSign.
pub(crate) fn check_is_ca(cert: &X509Certificate<'_>, what: &str) -> Result<(), PkiError> {
    let bc = cert
        .basic_constraints()
        .map_err(|e| PkiError::InvalidCertificate(e.to_string()))?;
    if !bc.is_some_and(|b| b.value.ca) {
        return Err(PkiError::SignerNotCa(format!(
            "{what} \"{}\" is not a CA (basicConstraints cA is not true)",
            subject(cert)
        )));
    }
    let ku = cert
        .key_usage()
        .map_err(|e| PkiError::InvalidCertificate(e.to_string()))?;
    if ku.is_some_and(|k| !k.value.key_cert_sign()) {
        return Err(PkiError::SignerNotCa(format!(
            "{what} \"{}\" has a keyUsage without keyCertSign",
            subject(cert)
        )));
    }
    Ok(())
}

/// Issuer health check: the key (if given) matches the signer, the signer is
/// a currently valid CA with keyCertSign, every intermediate is valid and its
/// pathLen allows issuing leaves, and the chain verifies to one of `anchors`.
pub fn check_signer(
    chain: &SignerChain,
    key: Option<&SignerKey>,
    anchors: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<SignerInfo, PkiError> {
    signer_path(chain, key, anchors, now).map(|(info, _)| info)
}

/// [`check_signer`], also returning the validated path from the signer to its anchor.
pub(crate) fn signer_path(
    chain: &SignerChain,
    key: Option<&SignerKey>,
    anchors: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<(SignerInfo, Path), PkiError> {
    check_count(
        "the certificate chain",
        chain.intermediates_der.len() + 1,
        path::MAX_CHAIN_CERTS,
    )?;
    let signer = parse_cert(&chain.signer_der)?;
    if let Some(key) = key {
        let key_spki = key.public_key_der();
        let (_, ks) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&key_spki)
            .map_err(|_| PkiError::SignerKeyMismatch)?;
        let cs = signer.public_key();
        if ks.algorithm.algorithm != cs.algorithm.algorithm
            || ks.subject_public_key.data != cs.subject_public_key.data
        {
            return Err(PkiError::SignerKeyMismatch);
        }
    }
    check_is_ca(&signer, "signer certificate")?;
    check_time(&signer, "signer certificate", now)?;
    for der in &chain.intermediates_der {
        let c = parse_cert(der)?;
        check_time(&c, "intermediate CA", now)?;
    }
    let path = build_path(&chain.signer_der, &chain.intermediates_der, anchors, now, 1)?;
    Ok((cert_info(&chain.signer_der)?, path))
}

#[cfg(test)]
mod tests;
