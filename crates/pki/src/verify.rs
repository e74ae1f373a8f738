//! After-signing checks on an issued certificate, and PEM output helpers.
//!
//! Whatever signed it (our key or a remote CA), an issued certificate is written only when
//! it is exactly what was validated: the CSR's key, exactly the requested SANs, exactly the
//! validated subject (empty or one CN), exactly the requested usages, isCA (pathLen 0 and
//! exactly the derived name constraints for CAs), only allowlisted extensions each at most
//! once, and a validity inside the allowed window. Two independent path checks follow:
//! * our own RFC 5280 walk to a trust anchor (signatures, validity, CA flags, pathLen
//!   counting an issued CA, DNS/URI/IP/email name constraints of every CA on the path);
//! * rustls-webpki for every requested TLS EKU, with the leaf's issuer as its anchor and,
//!   in turn, the DNS and IP name constraints of every CA on the path as the anchor's
//!   constraints (webpki fails closed on URI and email constraints, which only our walk
//!   enforces; it is never skipped because of them). webpki rejects CA certificates as end
//!   entities, so issued CAs are checked by our walk only.

use std::collections::BTreeSet;

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::ca_constraints::CaConstraints;
use super::csr::SubjectAltNames;
use super::error::PkiError;
use super::extensions::{check_allowed, check_leaf_urls, issued_allowed};
use super::name_constraints::{cert_constraints, check_name_constraints};
use super::signer_chain::parse_cert;
use super::subject::{validate_subject, EmptyValues};
use super::template::{issued_usages, LeafExtensions};
use super::usage::{eku_oids, key_usage_flags, usages_from_key_usage_flags, Usage};
#[cfg(test)]
use super::validated::dns_ip_constraints;
use super::validated::{cert_eku_oids, ValidatedChain};

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
    /// Earliest acceptable notBefore: a remote CA must not backdate beyond a small skew.
    pub not_before_min: Option<OffsetDateTime>,
    /// Longest acceptable notBefore-to-notAfter span.
    pub max_lifetime: Option<time::Duration>,
    /// The only CRL distribution point and AIA URLs the certificate may carry.
    pub urls: LeafExtensions,
    /// The validated subject CN: the subject must be exactly this CN, or empty when `None`.
    pub common_name: Option<String>,
    /// The request's own subject DER when it held dropped empty attributes (`O=""`): the
    /// issued subject may also be exactly these bytes (a remote CA that copies the request's
    /// subject, as CFSSL does), and nothing else beyond the validated CN.
    pub echoable_subject: Option<Vec<u8>>,
    /// Name constraints an issued CA must carry (exactly these, permitted and excluded).
    pub name_constraints: Option<CaConstraints>,
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

/// The leaf's SANs, which must be exactly `expected`.
fn check_sans(
    leaf: &X509Certificate<'_>,
    expected: &SubjectAltNames,
) -> Result<SubjectAltNames, PkiError> {
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
        Ok(actual)
    } else {
        Err(mismatch(problems.join("; ")))
    }
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
    let have_eku: BTreeSet<String> = cert_eku_oids(leaf)
        .map_err(|e| mismatch(e.to_string()))?
        .unwrap_or_default();
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

fn check_subject(leaf: &X509Certificate<'_>, expect: &Expectations) -> Result<(), PkiError> {
    let subject_der = super::subject::subject_tlv(leaf.tbs_certificate.as_ref(), true)?;
    if expect.echoable_subject.as_deref() == Some(subject_der.as_slice()) {
        return Ok(());
    }
    let cn = validate_subject(
        leaf.subject(),
        &subject_der,
        "the issued certificate",
        EmptyValues::Refuse,
    )
    .map_err(|e| mismatch(e.to_string()))?
    .common_name;
    if cn != expect.common_name {
        return Err(mismatch(format!(
            "the issued certificate's subject is {:?} but {} was validated",
            leaf.subject().to_string(),
            expect
                .common_name
                .as_ref()
                .map_or_else(|| "an empty subject".to_string(), |c| format!("CN={c:?}"))
        )));
    }
    Ok(())
}

fn check_ca_fields(leaf: &X509Certificate<'_>, expect: &Expectations) -> Result<(), PkiError> {
    let allowed = issued_allowed(expect.is_ca);
    check_allowed(leaf.extensions(), allowed, "the issued certificate has")
        .map_err(|e| mismatch(e.to_string()))?;
    check_leaf_urls(leaf.extensions(), &expect.urls).map_err(mismatch)?;
    let bc = leaf
        .basic_constraints()
        .map_err(|e| mismatch(format!("malformed basicConstraints: {e}")))?;
    let is_ca = bc.as_ref().is_some_and(|b| b.value.ca);
    if is_ca != expect.is_ca {
        return Err(mismatch(format!(
            "issued certificate has isCA={is_ca} but isCA={} was requested",
            expect.is_ca
        )));
    }
    if !expect.is_ca {
        return Ok(());
    }
    let path_len = bc.and_then(|b| b.value.path_len_constraint);
    if path_len != Some(0) {
        return Err(mismatch(format!(
            "issued CA certificate has pathLenConstraint {path_len:?}, expected 0"
        )));
    }
    let nc = cert_constraints(leaf).map_err(|e| mismatch(e.to_string()))?;
    let actual = nc.map(|n| {
        CaConstraints {
            permitted: n.permitted,
            excluded: n.excluded,
        }
        .sorted()
    });
    let ok = actual == expect.name_constraints.clone().map(CaConstraints::sorted);
    if !ok {
        return Err(mismatch(format!(
            "issued CA certificate does not carry exactly the name constraints derived from the policy ({:?})",
            expect.name_constraints
        )));
    }
    Ok(())
}

/// Checks an issued certificate against the request and validates its chain:
/// public key, exact SAN set, usages, isCA, current validity, `not_after_max`,
/// a path to one of `anchors_der` (own walker + webpki for the TLS EKUs) and the
/// name constraints along that path. Validates the chain above the leaf first; an issuer
/// checks it once and calls [`check_issued_with`] per leaf.
pub fn check_issued(
    leaf_der: &[u8],
    chain_der: &[Vec<u8>],
    anchors_der: &[Vec<u8>],
    expect: &Expectations,
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let chain = ValidatedChain::for_leaf(leaf_der, chain_der, anchors_der, now)?;
    check_issued_with(leaf_der, &chain, expect, now).map(|_| ())
}

/// The issued certificate's validity window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IssuedValidity {
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
}

/// Everything of the leaf itself that must be exactly what was validated; returns its
/// validity window and its SANs.
fn check_leaf_fields(
    leaf: &X509Certificate<'_>,
    expect: &Expectations,
    now: OffsetDateTime,
) -> Result<(IssuedValidity, SubjectAltNames), PkiError> {
    if !same_key(leaf.public_key().raw, &expect.spki_der) {
        return Err(mismatch(
            "issued certificate has a different public key than the CSR",
        ));
    }
    let sans = check_sans(leaf, &expect.sans)?;
    check_subject(leaf, expect)?;
    check_ca_fields(leaf, expect)?;
    check_usages(leaf, expect)?;
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
    if let Some(min) = expect.not_before_min {
        if nb < min {
            return Err(mismatch(format!(
                "issued certificate notBefore {nb} is earlier than the allowed {min} (backdated beyond the allowed skew before the request was signed)"
            )));
        }
    }
    if let Some(max) = expect.max_lifetime {
        if na - nb > max {
            return Err(mismatch(format!(
                "issued certificate lifetime from notBefore {nb} to notAfter {na} is longer than the allowed {max}"
            )));
        }
    }
    let validity = IssuedValidity {
        not_before: nb,
        not_after: na,
    };
    Ok((validity, sans))
}

/// [`check_issued`] against a chain validated once ([`ValidatedChain::new`]): the leaf's
/// own fields, our RFC 5280 walk for the leaf (one signature verification, the cached
/// chain facts, the name constraints of every CA on the path) and rustls-webpki (for
/// end-entity leaves) with the signer as its anchor and each CA's DNS/IP constraints.
/// Returns the leaf's validity window.
pub fn check_issued_with(
    leaf_der: &[u8],
    chain: &ValidatedChain,
    expect: &Expectations,
    now: OffsetDateTime,
) -> Result<IssuedValidity, PkiError> {
    let leaf = parse_cert(leaf_der)?;
    let (validity, sans) = check_leaf_fields(&leaf, expect, now)?;
    let leaf_ekus: Vec<String> = cert_eku_oids(&leaf)
        .map_err(|e| mismatch(e.to_string()))?
        .map(|s| s.into_iter().collect())
        .unwrap_or_default();
    let verified = chain.check_leaf(&leaf, leaf_der, &leaf_ekus, now)?;
    check_name_constraints(chain.name_constraints(), &sans)?;
    if !expect.is_ca {
        chain.webpki_check(
            leaf_der,
            &issued_usages(&expect.usages, false),
            now,
            Some(&verified),
        )?;
    }
    Ok(validity)
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
