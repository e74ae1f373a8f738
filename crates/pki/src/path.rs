//! Building a certification path from a certificate up to a trust anchor, with bounded work.
//!
//! The signer chain and the trust anchors come from the tenant who owns the issuer, so every
//! input and every loop is bounded: at most [`MAX_CHAIN_CERTS`] certificates in a signer chain
//! ([`MAX_CHAIN_PEM_BYTES`] of PEM), at most [`MAX_ANCHORS`] trust anchors
//! ([`MAX_ANCHORS_PEM_BYTES`]), at most [`MAX_CANDIDATES`] certificates named like the issuer
//! of one step, and at most [`MAX_SIGNATURE_CHECKS`] signature verifications per path. A
//! chain beyond a bound is refused with [`PkiError::ChainLimit`], before any signature is
//! checked where the bound is about size.

use time::OffsetDateTime;
use x509_parser::prelude::X509Certificate;

use super::error::PkiError;
use super::keys::verify_signature;
use super::signer_chain::{check_is_ca, check_time, parse_cert};

/// Certificates in a signer chain (`tls.crt`, a CFSSL or Vault chain): the signer and its
/// intermediates.
pub const MAX_CHAIN_CERTS: usize = 10;
/// PEM bytes of a signer chain.
pub const MAX_CHAIN_PEM_BYTES: usize = 64 * 1024;
/// Certificates in a trust-anchor bundle.
pub const MAX_ANCHORS: usize = 256;
/// PEM bytes of a trust-anchor bundle (a Secret or ConfigMap holds at most 1 MiB anyway).
pub const MAX_ANCHORS_PEM_BYTES: usize = 1024 * 1024;
/// Certificates whose subject is the issuer name of one step; more is refused, not tried.
pub const MAX_CANDIDATES: usize = 8;
/// Signature verifications while building one path.
pub const MAX_SIGNATURE_CHECKS: usize = 32;

/// A path from a start certificate up to a trust anchor.
pub(crate) struct Path {
    /// Issuers of the start certificate, nearest first, ending with the anchor.
    pub issuers: Vec<Vec<u8>>,
}

/// Refuses a PEM text of `what` longer than `max` bytes, before it is parsed.
pub(crate) fn check_pem_size(what: &str, pem: &str, max: usize) -> Result<(), PkiError> {
    if pem.len() > max {
        return Err(PkiError::ChainLimit(format!(
            "{what} is {} bytes; at most {max} bytes are accepted",
            pem.len()
        )));
    }
    Ok(())
}

/// Refuses more than `max` certificates of `what`.
pub(crate) fn check_count(what: &str, n: usize, max: usize) -> Result<(), PkiError> {
    if n > max {
        return Err(PkiError::ChainLimit(format!(
            "{what} holds {n} certificates; at most {max} are accepted"
        )));
    }
    Ok(())
}

/// `child` is signed by `issuer` (name match and signature).
pub(crate) fn issued_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    child.issuer().as_raw() == issuer.subject().as_raw() && signed_by(child, issuer)
}

fn signed_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    verify_signature(
        issuer.public_key(),
        &child.signature_algorithm,
        &child.signature_value.data,
        child.tbs_certificate.as_ref(),
    )
}

/// One possible issuer: its DER, parsed form, and whether it is a trust anchor.
struct Candidate<'a> {
    der: &'a [u8],
    cert: X509Certificate<'a>,
    anchor: bool,
}

fn candidates(ders: &[Vec<u8>], anchor: bool) -> impl Iterator<Item = Candidate<'_>> {
    ders.iter().filter_map(move |d| {
        parse_cert(d).ok().map(|cert| Candidate {
            der: d,
            cert,
            anchor,
        })
    })
}

/// Builds a path from `start` (leaf or signer) through `pool` to one of `anchors`, verifying
/// signatures, validity, CA-ness and pathLen of every issuer, within the limits above.
/// `cas_below_start` is how many non-self-issued CA certificates count as below the first
/// issuer: 0 for a leaf, 1 for a CA `start`.
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
    check_count("the trust-anchor bundle", anchors.len(), MAX_ANCHORS)?;
    check_count("the certificate chain", pool.len() + 1, MAX_CHAIN_CERTS)?;
    let start_cert = parse_cert(start)?;
    if anchors.iter().any(|a| a.as_slice() == start) {
        return Ok(Path { issuers: vec![] });
    }
    // Anchors first: a chain that includes the root still ends at the anchor.
    let all: Vec<Candidate<'_>> = candidates(anchors, true)
        .chain(candidates(pool, false))
        .collect();
    let mut issuers: Vec<Vec<u8>> = Vec::new();
    let mut current: (&[u8], &X509Certificate<'_>) = (start, &start_cert);
    let mut checks = 0;
    // Non-self-issued CA certificates below the current issuer.
    let mut cas_below: u32 = cas_below_start;
    for _ in 0..=pool.len() {
        let (cur_der, cur) = current;
        let named: Vec<&Candidate<'_>> = all
            .iter()
            .filter(|c| c.cert.subject().as_raw() == cur.issuer().as_raw())
            .filter(|c| c.anchor || (c.der != cur_der && !issuers.iter().any(|i| i == c.der)))
            .collect();
        if named.len() > MAX_CANDIDATES {
            return Err(PkiError::ChainLimit(format!(
                "{} certificates are named \"{}\", the issuer of \"{}\"; at most {MAX_CANDIDATES} are tried",
                named.len(),
                cur.issuer(),
                cur.subject()
            )));
        }
        let mut next = None;
        for c in named {
            if checks == MAX_SIGNATURE_CHECKS {
                return Err(PkiError::ChainLimit(format!(
                    "no path to a trust anchor within {MAX_SIGNATURE_CHECKS} signature checks"
                )));
            }
            checks += 1;
            if signed_by(cur, &c.cert) {
                next = Some(c);
                break;
            }
        }
        let Some(next) = next else {
            return Err(PkiError::ChainInvalid(format!(
                "no issuer found for \"{}\" (issuer \"{}\") among the chain and trust anchors; the chain does not lead to a trusted root",
                cur.subject(),
                cur.issuer()
            )));
        };
        let issuer = &next.cert;
        let what = if next.anchor {
            "trust anchor"
        } else {
            "intermediate CA"
        };
        check_is_ca(issuer, what)?;
        check_time(issuer, what, now).map_err(|e| match e {
            PkiError::SignerNotValid(m) => PkiError::ChainInvalid(m),
            e => e,
        })?;
        check_path_len(issuer, what, cas_below, &start_cert).map_err(PkiError::ChainInvalid)?;
        if issuer.subject().as_raw() != issuer.issuer().as_raw() {
            cas_below += 1;
        }
        issuers.push(next.der.to_vec());
        if next.anchor {
            return Ok(Path { issuers });
        }
        current = (next.der, issuer);
    }
    Err(PkiError::ChainInvalid(
        "certificate chain is too long or loops".into(),
    ))
}

/// `issuer`'s pathLenConstraint allows `cas_below` CA certificates below it.
fn check_path_len(
    issuer: &X509Certificate<'_>,
    what: &str,
    cas_below: u32,
    start: &X509Certificate<'_>,
) -> Result<(), String> {
    let max = issuer
        .basic_constraints()
        .ok()
        .flatten()
        .and_then(|bc| bc.value.path_len_constraint);
    match max {
        Some(max) if cas_below > max => Err(format!(
            "{what} \"{}\" has pathLenConstraint {max} but {cas_below} CA certificate(s) below it (\"{}\")",
            issuer.subject(),
            start.subject()
        )),
        _ => Ok(()),
    }
}

/// Whether the CA `signer`, with the validated `path` above it, may sign a CA certificate:
/// its own pathLenConstraint and those of every CA above it leave room for one more CA.
pub(crate) fn room_for_sub_ca(signer_der: &[u8], path: &Path) -> Result<(), PkiError> {
    let signer = parse_cert(signer_der)?;
    if let Some(bc) = signer.basic_constraints().ok().flatten() {
        if bc.value.path_len_constraint == Some(0) {
            return Err(PkiError::CaNotPossible(format!(
                "the signer \"{}\" has pathLenConstraint 0, so it may not sign CA certificates",
                signer.subject()
            )));
        }
    }
    let mut cas_below = 2;
    for (i, der) in path.issuers.iter().enumerate() {
        let issuer = parse_cert(der)?;
        let what = if i + 1 == path.issuers.len() {
            "trust anchor"
        } else {
            "intermediate CA"
        };
        check_path_len(&issuer, what, cas_below, &signer).map_err(PkiError::CaNotPossible)?;
        if issuer.subject().as_raw() != issuer.issuer().as_raw() {
            cas_below += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
