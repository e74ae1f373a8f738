//! Syntax rules every requested name obeys, whatever the policy says.
//!
//! * DNS: ASCII letters, digits and `-` in labels of 1..=63 bytes, at most 253 bytes, no
//!   trailing dot, a `*` only as the whole leftmost label. Upper case is allowed (names are
//!   compared case-insensitively); U-labels must be sent as their `xn--` A-label.
//! * URI: ASCII without whitespace or control characters, no userinfo, and exactly its own
//!   parsed serialisation. `spiffe://` IDs follow the SPIFFE ID specification.
//! * IP: IPv4-mapped (`::ffff:0:0/96`) and IPv4-compatible (`::/96`, except `::1`) IPv6
//!   addresses are refused: clients treat them as the embedded IPv4 address, which would
//!   slip past IPv4 ranges and name constraints.
//! * email: `local@domain`, an ASCII local part without whitespace, `@` or control
//!   characters, and a DNS domain without wildcard.

use std::net::IpAddr;

use super::csr::SubjectAltNames;
use super::error::PkiError;

/// Most SANs accepted in one request.
pub const MAX_SANS: usize = 100;

fn invalid(kind: &str, value: &str, why: &str) -> PkiError {
    PkiError::InvalidName(format!("{kind} {value:?}: {why}"))
}

/// Why `name` is not an acceptable DNS SAN, if it is not.
pub fn dns_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty name");
    }
    if !name.is_ascii() {
        return Some("non-ASCII characters (send internationalised names as xn-- A-labels)");
    }
    if name.len() > 253 {
        return Some("longer than 253 bytes");
    }
    if name.ends_with('.') {
        return Some("trailing dot");
    }
    for (i, label) in name.split('.').enumerate() {
        if label == "*" {
            if i == 0 {
                continue;
            }
            return Some("a wildcard is only allowed as the whole leftmost label");
        }
        if label.contains('*') {
            return Some("a wildcard is only allowed as the whole leftmost label");
        }
        if label.is_empty() {
            return Some("empty label");
        }
        if label.len() > 63 {
            return Some("label longer than 63 bytes");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Some("labels may only hold letters, digits and '-'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("a label may not start or end with '-'");
        }
    }
    if name == "*" {
        return Some("a wildcard needs a parent domain");
    }
    None
}

/// Whether `ip` embeds an IPv4 address in IPv6 form (mapped or compatible).
pub fn embeds_ipv4(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => false,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let mapped = s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff;
            let compatible = s[..6] == [0; 6] && !v6.is_loopback();
            mapped || compatible
        }
    }
}

fn spiffe_problem(u: &url::Url) -> Option<&'static str> {
    let Some(td) = u.host_str() else {
        return Some("a SPIFFE ID needs a trust domain");
    };
    if td.is_empty()
        || !td
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
    {
        return Some(
            "a SPIFFE trust domain may only hold lower-case letters, digits, '-', '.' and '_'",
        );
    }
    if u.port().is_some() {
        return Some("a SPIFFE ID may not have a port");
    }
    let path = u.path();
    if path.is_empty() || path == "/" {
        return Some("a SPIFFE ID needs a path");
    }
    for seg in path[1..].split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Some("a SPIFFE ID path may not have empty, '.' or '..' segments");
        }
        if !seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Some(
                "a SPIFFE ID path segment may only hold letters, digits, '-', '.' and '_'",
            );
        }
    }
    None
}

/// Why `uri` is not an acceptable URI SAN, if it is not.
pub fn uri_problem(uri: &str) -> Option<&'static str> {
    if !uri.is_ascii() || uri.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Some("non-ASCII, whitespace or control characters");
    }
    let Ok(u) = url::Url::parse(uri) else {
        return Some("not an absolute URI");
    };
    if u.as_str() != uri {
        return Some("not in normalised form");
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Some("userinfo is not allowed");
    }
    if u.scheme() == "spiffe" {
        if u.query().is_some() || u.fragment().is_some() {
            return Some("a SPIFFE ID may not have a query or fragment");
        }
        if uri.contains('%') {
            return Some("a SPIFFE ID may not be percent-encoded");
        }
        return spiffe_problem(&u);
    }
    None
}

/// Why `email` is not an acceptable email SAN, if it is not.
pub fn email_problem(email: &str) -> Option<&'static str> {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Some("no '@'");
    };
    if local.is_empty()
        || !local.is_ascii()
        || local
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'@')
    {
        return Some("invalid local part");
    }
    if domain.contains('*') {
        return Some("wildcard domain");
    }
    dns_problem(domain)
}

/// Checks every SAN's syntax and the SAN count; the error names the first bad value.
pub fn check_syntax(sans: &SubjectAltNames) -> Result<(), PkiError> {
    let total = sans.dns.len() + sans.uris.len() + sans.ips.len() + sans.emails.len();
    if total > MAX_SANS {
        return Err(PkiError::InvalidName(format!(
            "{total} subject alternative names requested; at most {MAX_SANS} are allowed"
        )));
    }
    for d in &sans.dns {
        if let Some(why) = dns_problem(d) {
            return Err(invalid("DNS name", d, why));
        }
    }
    for u in &sans.uris {
        if let Some(why) = uri_problem(u) {
            return Err(invalid("URI", u, why));
        }
    }
    for ip in &sans.ips {
        if embeds_ipv4(ip) {
            return Err(invalid(
                "IP address",
                &ip.to_string(),
                "IPv4-mapped and IPv4-compatible IPv6 addresses are refused; request the IPv4 address itself",
            ));
        }
    }
    for e in &sans.emails {
        if let Some(why) = email_problem(e) {
            return Err(invalid("email address", e, why));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_rules() {
        for ok in [
            "a.b",
            "*.ns.svc",
            "APP.ns.svc",
            "xn--bcher-kva.example",
            "a-b.c",
            "x",
        ] {
            assert_eq!(dns_problem(ok), None, "{ok}");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        let long_name = format!("{}.x", vec!["a".repeat(60); 5].join("."));
        for bad in [
            "",
            "secre*.corp.example",
            "*.*.example",
            "a.*.example",
            "a.b.",
            "a..b",
            "a b.example",
            "a\0.example",
            "bücher.example",
            "a_b.example",
            "-a.example",
            "a-.example",
            "*",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(dns_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn ip_embedding() {
        for bad in ["::ffff:192.168.1.1", "::192.168.1.1", "::"] {
            assert!(embeds_ipv4(&bad.parse().unwrap()), "{bad}");
        }
        for ok in ["::1", "10.0.0.1", "fd00::1", "64:ff9b::1"] {
            assert!(!embeds_ipv4(&ok.parse().unwrap()), "{ok}");
        }
    }

    #[test]
    fn uri_rules() {
        for ok in [
            "spiffe://cluster.local/ns/a/sa/b",
            "https://example.com/x?y=1#z",
            "urn:example:a",
        ] {
            assert_eq!(uri_problem(ok), None, "{ok}");
        }
        for bad in [
            "spiffe://td/ns/a/../b",
            "spiffe://td/ns/%2e%2e/b",
            "spiffe://td/ns/a?x",
            "spiffe://td/ns/a#x",
            "spiffe://u@td/ns/a",
            "spiffe://td:8080/ns/a",
            "spiffe://TD/ns/a",
            "spiffe://td/ns//a",
            "spiffe://td/",
            "spiffe://td/ns/a/",
            "https://user:pw@example.com/",
            "https://EXAMPLE.com/",
            "not a uri",
            "spiffe://td/ns/\u{e9}",
        ] {
            assert!(uri_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn emails_and_count() {
        assert_eq!(email_problem("a@b.example"), None);
        for bad in [
            "ab.example",
            "@b.example",
            "a b@c.example",
            "a@*.example",
            "a@b.",
        ] {
            assert!(email_problem(bad).is_some(), "{bad}");
        }
        let sans = SubjectAltNames {
            dns: (0..=MAX_SANS).map(|i| format!("a{i}.example")).collect(),
            ..Default::default()
        };
        let err = check_syntax(&sans).unwrap_err().to_string();
        assert!(err.contains("101 subject alternative names"), "{err}");
    }
}
