//! The issuer's signing certificate chain and its health check.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::error::PkiError;
use super::keys::{verify_signature, SignerKey};

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
    /// Parses `tls.crt`: signer first, then intermediates.
    pub fn from_pem(tls_crt_pem: &str) -> Result<SignerChain, PkiError> {
        let mut certs = parse_pem_certs(tls_crt_pem)?;
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

/// `child` is signed by `issuer` (name match and signature).
pub(crate) fn issued_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    child.issuer().as_raw() == issuer.subject().as_raw()
        && verify_signature(
            issuer.public_key(),
            &child.signature_algorithm,
            &child.signature_value.data,
            child.tbs_certificate.as_ref(),
        )
}

/// A path from a start certificate up to a trust anchor.
pub(crate) struct Path {
    /// Issuers of the start certificate, nearest first, ending with the anchor.
    pub issuers: Vec<Vec<u8>>,
}

/// Builds a path from `start` (leaf or signer) through `pool` to one of
/// `anchors`, verifying signatures, validity, CA-ness and pathLen of every
/// issuer. `cas_below_start` is how many non-self-issued CA certificates count as below
/// the first issuer: 0 for a leaf, 1 for a CA `start`, 2 to ask whether a CA `start` may
/// still sign a sub-CA.
pub(crate) fn build_path(
    start: &[u8],
    pool: &[Vec<u8>],
    anchors: &[Vec<u8>],
    now: OffsetDateTime,
    cas_below_start: u32,
) -> Result<Path, PkiError> {
    if anchors.is_empty() {
        return Err(PkiError::ChainInvalid("no trust anchors configured".into()));
    }
    let start_cert = parse_cert(start)?;
    if anchors.iter().any(|a| a.as_slice() == start) {
        return Ok(Path { issuers: vec![] });
    }
    let mut issuers: Vec<Vec<u8>> = Vec::new();
    let mut current = start.to_vec();
    // Non-self-issued CA certificates below the current issuer.
    let mut cas_below: u32 = cas_below_start;
    for _ in 0..=pool.len() {
        let cur = parse_cert(&current)?;
        // Anchors first: a chain that includes the root still ends at the anchor.
        let anchor = anchors
            .iter()
            .find(|a| parse_cert(a).is_ok_and(|a| issued_by(&cur, &a)));
        let (next, is_anchor) = match anchor {
            Some(a) => (a.clone(), true),
            None => match pool
                .iter()
                .find(|c| !issuers.contains(c) && c.as_slice() != current && parse_cert(c).is_ok_and(|c| issued_by(&cur, &c)))
            {
                Some(c) => (c.clone(), false),
                None => {
                    return Err(PkiError::ChainInvalid(format!(
                        "no issuer found for \"{}\" (issuer \"{}\") among the chain and trust anchors; the chain does not lead to a trusted root",
                        cur.subject(),
                        cur.issuer()
                    )))
                }
            },
        };
        let issuer = parse_cert(&next)?;
        let what = if is_anchor {
            "trust anchor"
        } else {
            "intermediate CA"
        };
        check_is_ca(&issuer, what)?;
        check_time(&issuer, what, now).map_err(|e| match e {
            PkiError::SignerNotValid(m) => PkiError::ChainInvalid(m),
            e => e,
        })?;
        if let Some(bc) = issuer.basic_constraints().ok().flatten() {
            if let Some(max) = bc.value.path_len_constraint {
                if cas_below > max {
                    return Err(PkiError::ChainInvalid(format!(
                        "{what} \"{}\" has pathLenConstraint {max} but {cas_below} CA certificate(s) below it (\"{}\")",
                        issuer.subject(),
                        start_cert.subject()
                    )));
                }
            }
        }
        if issuer.subject().as_raw() != issuer.issuer().as_raw() {
            cas_below += 1;
        }
        issuers.push(next.clone());
        if is_anchor {
            return Ok(Path { issuers });
        }
        current = next;
    }
    Err(PkiError::ChainInvalid(
        "certificate chain is too long or loops".into(),
    ))
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
    build_path(&chain.signer_der, &chain.intermediates_der, anchors, now, 1)?;
    cert_info(&chain.signer_der)
}

#[cfg(test)]
mod tests;

/// Whether the signer may issue a CA certificate: its own pathLenConstraint and those of
/// every CA above it must leave room for one more CA below the signer.
pub fn check_room_for_sub_ca(
    chain: &SignerChain,
    anchors: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let signer = parse_cert(&chain.signer_der)?;
    if let Some(bc) = signer.basic_constraints().ok().flatten() {
        if bc.value.path_len_constraint == Some(0) {
            return Err(PkiError::CaNotPossible(format!(
                "the signer \"{}\" has pathLenConstraint 0, so it may not sign CA certificates",
                signer.subject()
            )));
        }
    }
    build_path(&chain.signer_der, &chain.intermediates_der, anchors, now, 2)
        .map(|_| ())
        .map_err(|e| match e {
            PkiError::ChainInvalid(m) => PkiError::CaNotPossible(m),
            e => e,
        })
}
