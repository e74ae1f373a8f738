//! RFC 5280 §4.2.1.10 name constraints of the CA certificates in a chain.
//!
//! Semantics implemented:
//! * DNS: `example.com` permits `example.com` and every subdomain;
//!   `.example.com` permits subdomains only. An empty base (of any type) matches all.
//! * URI: applied to the host part. `host` matches that host exactly,
//!   `.example.com` any subdomain. URIs without a host violate any URI
//!   constraint.
//! * IP: address inside network/mask.
//! * Email: `user@host` exact mailbox, `host` any mailbox at host,
//!   `.host` any mailbox at a subdomain of host.
//!
//! Name forms we never put in leaves (directoryName, otherName, ...) are
//! ignored; the subject DN is not checked (leaves carry at most a CN).

use std::net::IpAddr;

use ipnet::IpNet;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::csr::SubjectAltNames;
use super::error::PkiError;

/// One subtree list (permitted or excluded), by name type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeneralSubtrees {
    /// dNSName bases.
    pub dns: Vec<String>,
    /// URI host bases.
    pub uri: Vec<String>,
    /// iPAddress networks.
    pub ip: Vec<IpNet>,
    /// rfc822Name bases.
    pub email: Vec<String>,
}

/// The name constraints of one CA certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameConstraints {
    /// Subject of the constraining CA (for messages).
    pub ca_subject: String,
    /// Permitted subtrees.
    pub permitted: GeneralSubtrees,
    /// Excluded subtrees.
    pub excluded: GeneralSubtrees,
}

fn ip_subtree(b: &[u8]) -> Result<IpNet, String> {
    let (addr, mask): (IpAddr, &[u8]) = match b.len() {
        8 => (IpAddr::from(<[u8; 4]>::try_from(&b[..4]).unwrap()), &b[4..]),
        32 => (
            IpAddr::from(<[u8; 16]>::try_from(&b[..16]).unwrap()),
            &b[16..],
        ),
        n => return Err(format!("IP name constraint with invalid length {n}")),
    };
    let ones: u32 = mask.iter().map(|m| m.count_ones()).sum();
    let contiguous = mask
        .iter()
        .flat_map(|m| (0..8).rev().map(move |i| (m >> i) & 1))
        .skip(ones as usize)
        .all(|bit| bit == 0);
    if !contiguous {
        return Err("IP name constraint with a non-contiguous mask".into());
    }
    IpNet::new(addr, ones as u8)
        .map(|n| n.trunc())
        .map_err(|e| e.to_string())
}

fn collect(
    subtrees: &[x509_parser::extensions::GeneralSubtree<'_>],
) -> Result<GeneralSubtrees, String> {
    let mut out = GeneralSubtrees::default();
    for st in subtrees {
        match &st.base {
            GeneralName::DNSName(d) => out.dns.push(d.to_ascii_lowercase()),
            GeneralName::URI(u) => out.uri.push(u.to_ascii_lowercase()),
            GeneralName::RFC822Name(e) => out.email.push(e.to_string()),
            GeneralName::IPAddress(b) => out.ip.push(ip_subtree(b)?),
            _ => {}
        }
    }
    Ok(out)
}

/// Name constraints of one certificate, if it has the extension.
pub fn cert_constraints(cert: &X509Certificate<'_>) -> Result<Option<NameConstraints>, PkiError> {
    let nc = cert
        .name_constraints()
        .map_err(|e| PkiError::InvalidCertificate(format!("bad nameConstraints: {e}")))?;
    let Some(nc) = nc else { return Ok(None) };
    let err = |e: String| PkiError::InvalidCertificate(e);
    Ok(Some(NameConstraints {
        ca_subject: cert.subject().to_string(),
        permitted: collect(nc.value.permitted_subtrees.as_deref().unwrap_or(&[])).map_err(err)?,
        excluded: collect(nc.value.excluded_subtrees.as_deref().unwrap_or(&[])).map_err(err)?,
    }))
}

/// Parses the name constraints of every certificate in `chain_der` (those
/// without the extension are skipped).
pub fn chain_constraints(chain_der: &[Vec<u8>]) -> Result<Vec<NameConstraints>, PkiError> {
    let mut out = Vec::new();
    for der in chain_der {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| PkiError::InvalidCertificate(e.to_string()))?;
        out.extend(cert_constraints(&cert)?);
    }
    Ok(out)
}

fn norm(s: &str) -> String {
    s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase()
}

/// DNS `name` is within `base` (RFC 5280; `.base` = strict subdomains).
fn dns_within(name: &str, base: &str) -> bool {
    let name = norm(name);
    let base = norm(base);
    if base.is_empty() {
        return true;
    }
    if let Some(b) = base.strip_prefix('.') {
        return name.ends_with(&format!(".{b}"));
    }
    name == base || name.ends_with(&format!(".{base}"))
}

/// A wildcard `*.rest` could stand for a name inside an excluded `base`.
fn wildcard_overlaps(name: &str, base: &str) -> bool {
    let name = norm(name);
    let Some(rest) = name.strip_prefix("*.") else {
        return false;
    };
    let base = norm(base);
    let base = base.strip_prefix('.').unwrap_or(&base);
    base.split_once('.')
        .is_some_and(|(_, parent)| parent == rest)
}

fn host_within(host: &str, base: &str) -> bool {
    if base.is_empty() {
        return true; // a zero-length base matches every host
    }
    let host = norm(host);
    match base.strip_prefix('.') {
        Some(b) => host.ends_with(&format!(".{}", norm(b))),
        None => host == norm(base),
    }
}

fn email_within(email: &str, base: &str) -> bool {
    if base.is_empty() {
        return true; // a zero-length base matches every mailbox
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    match base.rsplit_once('@') {
        Some((bl, bd)) => bl == local && norm(bd) == norm(domain),
        None if base.starts_with('.') => host_within(domain, base),
        None => norm(domain) == norm(base),
    }
}

fn uri_host(uri: &str) -> Option<String> {
    url::Url::parse(uri)
        .ok()?
        .host_str()
        .map(|h| h.trim_matches(['[', ']']).to_string())
}

fn violation(name: String, nc: &NameConstraints, what: &str, list: &[String]) -> PkiError {
    PkiError::NameConstraintViolation {
        name,
        constraint: format!("{what} [{}] of CA \"{}\"", list.join(", "), nc.ca_subject),
    }
}

fn check_one(nc: &NameConstraints, sans: &SubjectAltNames) -> Result<(), PkiError> {
    let (p, x) = (&nc.permitted, &nc.excluded);
    for d in &sans.dns {
        if !p.dns.is_empty() && !p.dns.iter().any(|b| dns_within(d, b)) {
            return Err(violation(
                format!("DNS:{d}"),
                nc,
                "permitted DNS subtrees",
                &p.dns,
            ));
        }
        if x.dns
            .iter()
            .any(|b| dns_within(d, b) || wildcard_overlaps(d, b))
        {
            return Err(violation(
                format!("DNS:{d}"),
                nc,
                "excluded DNS subtrees",
                &x.dns,
            ));
        }
    }
    for u in &sans.uris {
        let host = uri_host(u);
        let within = |b: &String| host.as_deref().is_some_and(|h| host_within(h, b));
        if !p.uri.is_empty() && !p.uri.iter().any(within) {
            return Err(violation(
                format!("URI:{u}"),
                nc,
                "permitted URI subtrees",
                &p.uri,
            ));
        }
        if x.uri.iter().any(within) || (!x.uri.is_empty() && host.is_none()) {
            return Err(violation(
                format!("URI:{u}"),
                nc,
                "excluded URI subtrees",
                &x.uri,
            ));
        }
    }
    let ips = |l: &[IpNet]| l.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    for ip in &sans.ips {
        // An IPv4-mapped IPv6 address is the IPv4 address to clients: check that.
        let canonical = ip.to_canonical();
        let v4_or_v6 = |n: &IpNet| n.contains(ip) || n.contains(&canonical);
        if !p.ip.is_empty() && !p.ip.iter().any(v4_or_v6) {
            return Err(violation(
                format!("IP:{ip}"),
                nc,
                "permitted IP subtrees",
                &ips(&p.ip),
            ));
        }
        if x.ip.iter().any(v4_or_v6) {
            return Err(violation(
                format!("IP:{ip}"),
                nc,
                "excluded IP subtrees",
                &ips(&x.ip),
            ));
        }
    }
    for e in &sans.emails {
        if !p.email.is_empty() && !p.email.iter().any(|b| email_within(e, b)) {
            return Err(violation(
                format!("email:{e}"),
                nc,
                "permitted email subtrees",
                &p.email,
            ));
        }
        if x.email.iter().any(|b| email_within(e, b)) {
            return Err(violation(
                format!("email:{e}"),
                nc,
                "excluded email subtrees",
                &x.email,
            ));
        }
    }
    Ok(())
}

/// Enforces every certificate's constraints on `sans`: where a certificate
/// has permitted subtrees of a name's type, the name must match one; it must
/// match none of the excluded subtrees.
pub fn check_name_constraints(
    constraints: &[NameConstraints],
    sans: &SubjectAltNames,
) -> Result<(), PkiError> {
    constraints.iter().try_for_each(|nc| check_one(nc, sans))
}

#[cfg(test)]
mod tests;
