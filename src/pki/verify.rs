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

use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::csr::SubjectAltNames;
use super::der;
use super::error::PkiError;
use super::extensions::{check_allowed, issued_allowed};
use super::name_constraints::{
    cert_constraints, chain_constraints, check_name_constraints, GeneralSubtrees,
};
use super::signer_chain::{build_path, parse_cert};
use super::subject::single_common_name;
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
    /// The validated subject CN: the subject must be exactly this CN, or empty when `None`.
    pub common_name: Option<String>,
    /// Permitted subtrees an issued CA must carry (exactly these, nothing excluded).
    pub name_constraints: Option<GeneralSubtrees>,
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
    let usages = super::csr::known_eku_usages(e);
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

/// Accepts any EKU: used when no TLS EKU was requested (path checks only).
struct AnyEku;

impl webpki::ExtendedKeyUsageValidator for AnyEku {
    fn validate(&self, _: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

/// The DNS and iPAddress subtrees of a CA's nameConstraints, re-encoded as the contents of
/// a NameConstraints SEQUENCE (what a webpki trust anchor carries); `None` when the CA has
/// none of those.
fn dns_ip_constraints(ca_der: &[u8]) -> Result<Option<Vec<u8>>, PkiError> {
    let ca = parse_cert(ca_der)?;
    let Some(ext) = ca
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == super::extensions::NAME_CONSTRAINTS)
    else {
        return Ok(None);
    };
    let (outer, _) = der::read_tlv(ext.value)?;
    let mut out = Vec::new();
    for list in der::children(outer.content)? {
        let kept: Vec<u8> = der::children(list.content)?
            .into_iter()
            .filter(|subtree| {
                der::children(subtree.content)
                    .ok()
                    .and_then(|c| c.first().map(|b| b.tag))
                    .is_some_and(|tag| tag == 0x82 || tag == 0x87)
            })
            .flat_map(|subtree| subtree.full.to_vec())
            .collect();
        if !kept.is_empty() {
            out.extend(der::tlv(list.tag, &kept));
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

fn webpki_check(
    leaf_der: &[u8],
    path_issuers: &[Vec<u8>],
    usages: &[Usage],
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let leaf = CertificateDer::from(leaf_der);
    let ee = EndEntityCert::try_from(&leaf)
        .map_err(|e| PkiError::ChainInvalid(format!("webpki cannot parse the leaf: {e}")))?;
    let Some(issuer_der) = path_issuers.first() else {
        return Err(PkiError::ChainInvalid(
            "the issued certificate is itself a trust anchor".into(),
        ));
    };
    let issuer = CertificateDer::from(issuer_der.as_slice());
    let anchor = webpki::anchor_from_trusted_cert(&issuer)
        .map_err(|e| PkiError::ChainInvalid(format!("webpki cannot parse the signer: {e}")))?;
    let mut constraint_sets: Vec<Option<Vec<u8>>> = Vec::new();
    for ca in path_issuers {
        if let Some(nc) = dns_ip_constraints(ca)? {
            constraint_sets.push(Some(nc));
        }
    }
    if constraint_sets.is_empty() {
        constraint_sets.push(None);
    }
    let secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
    let algs = webpki::ALL_VERIFICATION_ALGS;
    let canon: Vec<Usage> = usages.iter().map(|u| u.canonical()).collect();
    for nc in &constraint_sets {
        let mut a = anchor.clone();
        a.name_constraints = nc.as_deref().map(|n| n.to_vec().into());
        let anchors = [a];
        let run = |result: Result<(), webpki::Error>, what: &str| {
            result.map_err(|e| {
                PkiError::ChainInvalid(format!("path validation for {what} failed: {e}"))
            })
        };
        let mut checked = false;
        for (u, ku, name) in [
            (Usage::ServerAuth, KeyUsage::server_auth(), "server auth"),
            (Usage::ClientAuth, KeyUsage::client_auth(), "client auth"),
        ] {
            if canon.contains(&u) {
                checked = true;
                let r = ee
                    .verify_for_usage(algs, &anchors, &[], time, ku, None, None)
                    .map(|_| ());
                run(r, name)?;
            }
        }
        if !checked {
            let r = ee
                .verify_for_usage(algs, &anchors, &[], time, AnyEku, None, None)
                .map(|_| ());
            run(r, "the chain")?;
        }
    }
    Ok(())
}

/// Every CA on the path that carries an extendedKeyUsage must allow each of the leaf's
/// extended usages (`any` allows all), as Go and rustls-webpki require of intermediates.
fn check_eku_chaining(
    leaf: &X509Certificate<'_>,
    path_issuers: &[Vec<u8>],
) -> Result<(), PkiError> {
    const ANY: &str = "2.5.29.37.0";
    let wanted = leaf_eku_oids(leaf)?;
    for ca_der in path_issuers {
        let ca = parse_cert(ca_der)?;
        let allowed = leaf_eku_oids(&ca)?;
        if allowed.is_empty() || allowed.iter().any(|o| o == ANY) {
            continue;
        }
        if let Some(missing) = wanted.iter().find(|o| !allowed.contains(o)) {
            return Err(PkiError::ChainInvalid(format!(
                "CA \"{}\" restricts extended key usage to [{}], which does not include {:?}",
                ca.subject(),
                allowed
                    .iter()
                    .map(|o| eku_name(o))
                    .collect::<Vec<_>>()
                    .join(", "),
                eku_name(missing)
            )));
        }
        if wanted.is_empty() {
            return Err(PkiError::ChainInvalid(format!(
                "CA \"{}\" restricts extended key usage, so a certificate without one cannot chain to it",
                ca.subject()
            )));
        }
    }
    Ok(())
}

fn check_subject(leaf: &X509Certificate<'_>, expect: &Expectations) -> Result<(), PkiError> {
    let subject_der = super::subject::subject_tlv(leaf.tbs_certificate.as_ref(), true)?;
    let cn = single_common_name(leaf.subject(), &subject_der, "the issued certificate")
        .map_err(|e| mismatch(e.to_string()))?;
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
    let actual = nc.map(|n| (n.permitted, n.excluded));
    let sorted = |mut g: GeneralSubtrees| {
        g.dns.sort();
        g.uri.sort();
        g.ip.sort();
        g.email.sort();
        g
    };
    let ok = match (&expect.name_constraints, actual) {
        (None, None) => true,
        (Some(want), Some((permitted, excluded))) => {
            sorted(permitted) == sorted(want.clone()) && excluded == GeneralSubtrees::default()
        }
        _ => false,
    };
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
    check_subject(&leaf, expect)?;
    check_ca_fields(&leaf, expect)?;
    check_usages(&leaf, expect)?;
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
    let path = build_path(
        leaf_der,
        chain_der,
        anchors_der,
        now,
        u32::from(expect.is_ca),
    )?;
    check_eku_chaining(&leaf, &path.issuers)?;
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
    if !expect.is_ca {
        webpki_check(
            leaf_der,
            &path.issuers,
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
