//! Name patterns compiled once per request: placeholders substituted and split into labels or
//! segments once per pattern, and each requested name parsed and split once, so matching is
//! O(SANs × patterns) plain comparisons with no parsing or allocation per pair. The policy
//! lists and the SANs of a request are both bounded (see `api::issuer::MAX_POLICY_ENTRIES`
//! and [`crate::names::MAX_SANS`]).

use super::{substitute, RequestContext};
use crate::names;

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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn the_largest_lists_match_the_most_sans_quickly() {
        let ctx = RequestContext {
            namespace: Some("team-a".into()),
            service_account: Some("web".into()),
        };
        // The CRD's bounds: 256 patterns per type, 100 SANs per request.
        let uris: Option<Vec<String>> = Some(
            (0..256)
                .map(|i| format!("spiffe://cluster.local/ns/{{namespace}}/sa/p{i}/*"))
                .collect(),
        );
        let dns: Option<Vec<String>> = Some(
            (0..256)
                .map(|i| format!("*.p{i}.{{namespace}}.svc"))
                .collect(),
        );
        let sans: Vec<String> = (0..100)
            .map(|i| format!("spiffe://cluster.local/ns/team-a/sa/x{i}/w"))
            .collect();
        let names: Vec<String> = (0..100).map(|i| format!("a.q{i}.team-a.svc")).collect();
        let started = Instant::now();
        let up = compile(&uris, &ctx, UriPattern::new).unwrap();
        let dp = compile(&dns, &ctx, DnsPattern::new).unwrap();
        let mut matched = 0;
        for (uri, name) in sans.iter().zip(&names) {
            let s = uri_segments(uri).unwrap();
            let n = dns_labels(name).unwrap();
            matched += up.iter().filter(|p| p.matches(&s)).count();
            matched += dp.iter().filter(|p| p.matches(&n)).count();
        }
        let took = started.elapsed();
        assert_eq!(matched, 0, "none of these names is allowed");
        assert!(took.as_millis() < 200, "51,200 comparisons took {took:?}");
        // The same patterns do match their own names.
        let s = uri_segments("spiffe://cluster.local/ns/team-a/sa/p7/x").unwrap();
        assert!(up.iter().any(|p| p.matches(&s)));
        let n = dns_labels("web.p9.team-a.svc").unwrap();
        assert!(dp.iter().any(|p| p.matches(&n)));
    }
}
