//! Name patterns compiled once per request: placeholders substituted and split into labels or
//! segments once per pattern, and each requested name parsed and split once, so matching is
//! O(SANs × patterns) plain comparisons with no parsing or allocation per pair. The policy
//! lists and the SANs of a request are both bounded (see `api::issuer::MAX_POLICY_ENTRIES`
//! and [`crate::pki::names::MAX_SANS`]).

use super::{substitute, RequestContext};
use crate::pki::names;

/// A policy list compiled for one request: `None` when the policy does not restrict the type.
/// A pattern whose placeholder has no valid value matches nothing and is left out.
pub(super) fn compile<T>(
    list: &Option<Vec<String>>,
    ctx: &RequestContext,
    f: impl Fn(&str) -> Option<T>,
) -> Option<Vec<T>> {
    list.as_ref().map(|patterns| {
        patterns
            .iter()
            .filter_map(|p| f(&substitute(p, ctx)?))
            .collect()
    })
}

fn normalize_dns(s: &str) -> String {
    s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase()
}

/// A DNS pattern: lowercase labels, `*` is any one label.
pub(super) struct DnsPattern(Vec<String>);

impl DnsPattern {
    /// From a substituted pattern.
    pub(super) fn new(p: &str) -> Option<DnsPattern> {
        Some(DnsPattern(
            normalize_dns(p).split('.').map(str::to_string).collect(),
        ))
    }

    /// Whether the requested name (see [`dns_labels`]) matches.
    pub(super) fn matches(&self, name: &[String]) -> bool {
        self.0.len() == name.len()
            && self
                .0
                .iter()
                .zip(name)
                .all(|(p, n)| match (p.as_str(), n.as_str()) {
                    (p, "*") => p == "*",
                    ("*", _) => true,
                    (p, n) => p == n,
                })
    }
}

/// A requested DNS name as lowercase labels, or `None` when it is not a valid name (which
/// no pattern matches).
pub(super) fn dns_labels(name: &str) -> Option<Vec<String>> {
    if names::dns_problem(name).is_some() {
        return None;
    }
    Some(normalize_dns(name).split('.').map(str::to_string).collect())
}

/// A URI pattern: `/`-separated segments, `*` is any one non-empty plain segment.
pub(super) struct UriPattern(Vec<String>);

impl UriPattern {
    /// From a substituted pattern.
    pub(super) fn new(p: &str) -> Option<UriPattern> {
        Some(UriPattern(p.split('/').map(str::to_string).collect()))
    }

    /// Whether the requested URI (see [`uri_segments`]) matches.
    pub(super) fn matches(&self, uri: &[&str]) -> bool {
        self.0.len() == uri.len()
            && self.0.iter().zip(uri).all(
                |(p, u)| {
                    if p == "*" {
                        uri_segment_ok(u)
                    } else {
                        p == u
                    }
                },
            )
    }
}

fn uri_segment_ok(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '?', '#', '%'])
}

/// A requested URI's segments, or `None` when it is not a URL (which no pattern matches).
pub(super) fn uri_segments(uri: &str) -> Option<Vec<&str>> {
    url::Url::parse(uri).ok()?;
    Some(uri.split('/').collect())
}

/// An email pattern: a local part (`*` is any) and a DNS pattern for the domain.
pub(super) struct EmailPattern {
    local: String,
    domain: DnsPattern,
}

impl EmailPattern {
    /// From a substituted pattern; `None` without `@`.
    pub(super) fn new(p: &str) -> Option<EmailPattern> {
        let (local, domain) = p.rsplit_once('@')?;
        Some(EmailPattern {
            local: local.to_string(),
            domain: DnsPattern::new(domain)?,
        })
    }

    /// Whether the requested address (see [`email_parts`]) matches.
    pub(super) fn matches(&self, (local, domain): &(&str, Vec<String>)) -> bool {
        (self.local == "*" || self.local == *local) && self.domain.matches(domain)
    }
}

/// A requested address as (local part, domain labels), or `None` when no pattern can match it.
pub(super) fn email_parts(email: &str) -> Option<(&str, Vec<String>)> {
    let (local, domain) = email.rsplit_once('@')?;
    if local.is_empty() || local.contains('@') || domain.contains('*') {
        return None;
    }
    Some((local, dns_labels(domain)?))
}
