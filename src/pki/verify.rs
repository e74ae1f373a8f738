//! After-signing checks on an issued certificate, and PEM output helpers.
//!
//! Path validation uses our own walker (signatures, validity, CA flags,
//! pathLen, name constraints for DNS/URI/IP/email) and additionally
//! rustls-webpki for every requested TLS EKU (server auth / client auth).
//! webpki caveats and how they are handled:
//! * webpki never checks names in `verify_for_usage`, so URI-only (SPIFFE)
//!   and DNS-less leaves are fine there.
//! * webpki rejects CA certificates as end entities: for `is_ca` leaves only
//!   our own walker is used.
//! * webpki fails closed on URI and email name constraints. When the chain
//!   carries such constraints and the leaf has names of that type, webpki is
//!   skipped and our own RFC 5280 check is authoritative.
//! * Anchors are passed as `TrustAnchor`s and removed from the intermediates.

use std::collections::BTreeSet;

use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::csr::SubjectAltNames;
use super::error::PkiError;
use super::name_constraints::{chain_constraints, check_name_constraints, NameConstraints};
use super::signer_chain::{build_path, parse_cert};
use super::template::issued_usages;
use super::usage::{eku_oids, key_usage_flags, usages_from_key_usage_flags, Usage};

/// What an issued certificate must look like.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectations {
    /// The CSR's SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// Exactly these SANs.
    pub sans: SubjectAltNames,
    /// Requested usages (empty = cert-manager defaults; `cert sign` implied for CAs).
    pub usages: Vec<Usage>,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// Latest acceptable notAfter.
    pub not_after_max: Option<OffsetDateTime>,
}

fn mismatch(msg: impl Into<String>) -> PkiError {
    PkiError::IssuedCertMismatch(msg.into())
}

fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    match (
        SubjectPublicKeyInfo::from_der(a),
        SubjectPublicKeyInfo::from_der(b),
    ) {
        (Ok((_, a)), Ok((_, b))) => {
            a.algorithm.algorithm == b.algorithm.algorithm
                && a.subject_public_key.data == b.subject_public_key.data
        }
        _ => false,
    }
}

fn compare_names(
    kind: &str,
    expected: Vec<String>,
    actual: Vec<String>,
    problems: &mut Vec<String>,
) {
    let e: BTreeSet<String> = expected.into_iter().collect();
    let a: BTreeSet<String> = actual.into_iter().collect();
    for m in e.difference(&a) {
        problems.push(format!("issued certificate is missing {kind} SAN {m:?}"));
    }
    for u in a.difference(&e) {
        problems.push(format!(
            "issued certificate has unexpected {kind} SAN {u:?}"
        ));
    }
}

fn dns_norm(v: &[String]) -> Vec<String> {
    v.iter()
        .map(|d| d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase())
        .collect()
}

fn check_sans(leaf: &X509Certificate<'_>, expected: &SubjectAltNames) -> Result<(), PkiError> {
    let ext = leaf.subject_alternative_name().map_err(|e| {
        mismatch(format!(
            "issued certificate has a malformed SAN extension: {e}"
        ))
    })?;
    let actual = match ext {
        Some(ext) => SubjectAltNames::from_general_names(&ext.value.general_names)
            .map_err(|e| mismatch(format!("issued certificate has an {e}")))?,
        None => SubjectAltNames::default(),
    };
    let mut problems = Vec::new();
    compare_names(
        "DNS",
        dns_norm(&expected.dns),
        dns_norm(&actual.dns),
        &mut problems,
    );
    compare_names(
        "URI",
        expected.uris.clone(),
        actual.uris.clone(),
        &mut problems,
    );
    let ips = |v: &[std::net::IpAddr]| v.iter().map(|i| i.to_string()).collect();
    compare_names("IP", ips(&expected.ips), ips(&actual.ips), &mut problems);
    compare_names(
        "email",
        expected.emails.clone(),
        actual.emails.clone(),
        &mut problems,
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(mismatch(problems.join("; ")))
    }
}

fn leaf_eku_oids(leaf: &X509Certificate<'_>) -> Result<Vec<String>, PkiError> {
    let eku = leaf
        .extended_key_usage()
        .map_err(|e| mismatch(format!("malformed EKU: {e}")))?;
    let Some(eku) = eku else { return Ok(vec![]) };
    let e = eku.value;
    let mut usages = Vec::new();
    for (on, u) in [
        (e.any, Usage::Any),
        (e.server_auth, Usage::ServerAuth),
        (e.client_auth, Usage::ClientAuth),
        (e.code_signing, Usage::CodeSigning),
        (e.email_protection, Usage::EmailProtection),
        (e.time_stamping, Usage::Timestamping),
        (e.ocsp_signing, Usage::OcspSigning),
    ] {
        if on {
            usages.push(u);
        }
    }
    let mut oids = eku_oids(&usages);
    oids.extend(e.other.iter().map(|o| o.to_id_string()));
    oids.sort();
    oids.dedup();
    Ok(oids)
}

fn eku_name(oid: &str) -> String {
    Usage::from_eku_oid(oid).map_or_else(|| oid.to_string(), |u| u.as_str().to_string())
}

fn check_usages(leaf: &X509Certificate<'_>, expect: &Expectations) -> Result<(), PkiError> {
    let wanted = issued_usages(&expect.usages, expect.is_ca);
    let mut problems = Vec::new();
    let want_ku = key_usage_flags(&wanted);
    let ku = leaf
        .key_usage()
        .map_err(|e| mismatch(format!("malformed keyUsage: {e}")))?;
    let have_ku = ku.map_or(0, |k| k.value.flags);
    for u in usages_from_key_usage_flags(want_ku & !have_ku) {
        problems.push(format!(
            "issued certificate is missing key usage {:?}",
            u.as_str()
        ));
    }
    for u in usages_from_key_usage_flags(have_ku & !want_ku) {
        problems.push(format!(
            "issued certificate has unexpected key usage {:?}",
            u.as_str()
        ));
    }
    let want_eku: BTreeSet<String> = eku_oids(&wanted).into_iter().collect();
    let have_eku: BTreeSet<String> = leaf_eku_oids(leaf)?.into_iter().collect();
    for o in want_eku.difference(&have_eku) {
        problems.push(format!(
            "issued certificate is missing extended key usage {:?}",
            eku_name(o)
        ));
    }
    for o in have_eku.difference(&want_eku) {
        problems.push(format!(
            "issued certificate has unexpected extended key usage {:?}",
            eku_name(o)
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(mismatch(problems.join("; ")))
    }
}

fn has_type(ncs: &[NameConstraints], uri: bool) -> bool {
    ncs.iter().any(|n| {
        let (p, x) = (&n.permitted, &n.excluded);
        if uri {
            !p.uri.is_empty() || !x.uri.is_empty()
        } else {
            !p.email.is_empty() || !x.email.is_empty()
        }
    })
}

/// Accepts any EKU: used when no TLS EKU was requested (path checks only).
struct AnyEku;

impl webpki::ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, _: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

fn webpki_check(
    leaf_der: &[u8],
    chain_der: &[Vec<u8>],
    anchors_der: &[Vec<u8>],
    usages: &[Usage],
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let leaf = CertificateDer::from(leaf_der);
    let ee = EndEntityCert::try_from(&leaf)
        .map_err(|e| PkiError::ChainInvalid(format!("webpki cannot parse the leaf: {e}")))?;
    let anchor_ders: Vec<CertificateDer<'_>> = anchors_der
        .iter()
        .map(|a| CertificateDer::from(a.as_slice()))
        .collect();
    let anchors = anchor_ders
        .iter()
        .map(|a| webpki::anchor_from_trusted_cert(a).map(|t| t.to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::ChainInvalid(format!("unusable trust anchor: {e}")))?;
    let intermediates: Vec<CertificateDer<'_>> = chain_der
        .iter()
        .filter(|c| !anchors_der.contains(c))
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
    let algs = webpki::ALL_VERIFICATION_ALGS;
    let run = |usage: &dyn Fn() -> Result<(), webpki::Error>, what: &str| {
        usage()
            .map_err(|e| PkiError::ChainInvalid(format!("path validation for {what} failed: {e}")))
    };
    let canon: Vec<Usage> = usages.iter().map(|u| u.canonical()).collect();
    let mut checked = false;
    for (u, ku, name) in [
        (Usage::ServerAuth, KeyUsage::server_auth(), "server auth"),
        (Usage::ClientAuth, KeyUsage::client_auth(), "client auth"),
    ] {
        if canon.contains(&u) {
            checked = true;
            run(
                &|| {
                    ee.verify_for_usage(algs, &anchors, &intermediates, time, ku, None, None)
                        .map(|_| ())
                },
                name,
            )?;
        }
    }
    if !checked {
        run(
            &|| {
                ee.verify_for_usage(algs, &anchors, &intermediates, time, AnyEku, None, None)
                    .map(|_| ())
            },
            "the chain",
        )?;
    }
    Ok(())
}

/// Checks an issued certificate against the request and validates its chain:
/// public key, exact SAN set, usages, isCA, current validity, `not_after_max`,
/// a path to one of `anchors_der` (own walker + webpki per TLS EKU) and the
/// name constraints along that path.
pub fn check_issued(
    leaf_der: &[u8],
    chain_der: &[Vec<u8>],
    anchors_der: &[Vec<u8>],
    expect: &Expectations,
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let leaf = parse_cert(leaf_der)?;
    if !same_key(leaf.public_key().raw, &expect.spki_der) {
        return Err(mismatch(
            "issued certificate has a different public key than the CSR",
        ));
    }
    check_sans(&leaf, &expect.sans)?;
    check_usages(&leaf, expect)?;
    let is_ca = leaf
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|b| b.value.ca);
    if is_ca != expect.is_ca {
        return Err(mismatch(format!(
            "issued certificate has isCA={is_ca} but isCA={} was requested",
            expect.is_ca
        )));
    }
    let nb = leaf.validity().not_before.to_datetime();
    let na = leaf.validity().not_after.to_datetime();
    if now < nb {
        return Err(mismatch(format!(
            "issued certificate is not valid before {nb}"
        )));
    }
    if now > na {
        return Err(mismatch(format!("issued certificate expired at {na}")));
    }
    if let Some(max) = expect.not_after_max {
        if na > max {
            return Err(mismatch(format!(
                "issued certificate notAfter {na} is later than the allowed {max}"
            )));
        }
    }
    let path = build_path(leaf_der, chain_der, anchors_der, now, false)?;
    let constraints = chain_constraints(&path.issuers)?;
    let sans = SubjectAltNames::from_general_names(
        &leaf
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|e| e.value.general_names.clone())
            .unwrap_or_default(),
    )
    .map_err(mismatch)?;
    check_name_constraints(&constraints, &sans)?;
    let webpki_blind = (has_type(&constraints, true) && !sans.uris.is_empty())
        || (has_type(&constraints, false) && !sans.emails.is_empty());
    if !expect.is_ca && !webpki_blind {
        webpki_check(
            leaf_der,
            chain_der,
            anchors_der,
            &issued_usages(&expect.usages, false),
            now,
        )?;
    }
    Ok(())
}

/// PEM for a list of DER certificates, in order.
pub fn certs_to_pem(certs: &[Vec<u8>]) -> String {
    certs
        .iter()
        .map(|c| {
            pem::encode_config(
                &pem::Pem::new("CERTIFICATE", c.clone()),
                pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
            )
        })
        .collect()
}

/// Leaf followed by intermediates, PEM (`status.certificate`).
pub fn chain_pem(leaf_der: &[u8], intermediates: &[Vec<u8>]) -> String {
    let mut all = vec![leaf_der.to_vec()];
    all.extend(intermediates.iter().cloned());
    certs_to_pem(&all)
}

#[cfg(test)]
mod tests;
