//! Name constraints for CA certificates issued under a policy, so that a sub-CA can only
//! mint names the policy would have granted to the requester.
//!
//! Each name type the policy lists becomes permitted subtrees (RFC 5280 §4.2.1.10); each
//! type it omits or lists as `[]` (nothing allowed, as for the requester) becomes excluded
//! subtrees covering the whole type: a zero-length dNSName, rfc822Name and URI, and
//! `0.0.0.0/0` plus `::/0` (the CA/Browser Forum's form for "no names of this type").
//! * `dnsNames`: a literal name, or one whose only `*` labels are leftmost, becomes the
//!   subtree of its literal part (`*.team-a.svc` → `team-a.svc`, which also permits deeper
//!   names below it). A `*` in any other position cannot be expressed.
//! * `ipRanges`: each range as an iPAddress subtree.
//! * `emailAddresses`: `*@domain` → `domain`, `local@domain` → that mailbox, `*@*.domain`
//!   → `.domain`.
//! * `uris`: URI constraints restrict only the host, while the policy restricts paths
//!   (SPIFFE IDs), so a policy that allows URIs cannot be expressed.

use super::error::PkiError;
use super::name_constraints::GeneralSubtrees;
use super::policy::{substitute, Policy, RequestContext};

/// The name constraints an issued CA must carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaConstraints {
    /// Subtrees of the name types the policy lists.
    pub permitted: GeneralSubtrees,
    /// Whole name types the policy does not allow.
    pub excluded: GeneralSubtrees,
}

impl CaConstraints {
    /// Both lists sorted, for comparison.
    pub fn sorted(mut self) -> CaConstraints {
        for g in [&mut self.permitted, &mut self.excluded] {
            g.dns.sort();
            g.dns.dedup();
            g.uri.sort();
            g.uri.dedup();
            g.email.sort();
            g.email.dedup();
            g.ip.sort();
            g.ip.dedup();
        }
        self
    }
}

fn refuse(msg: String) -> PkiError {
    PkiError::CaNotPossible(msg)
}

/// The literal suffix of a DNS pattern whose `*` labels are all leftmost.
fn dns_suffix(field: &str, pattern: &str) -> Result<String, PkiError> {
    let labels: Vec<&str> = pattern.split('.').collect();
    let wild = labels.iter().take_while(|l| **l == "*").count();
    let rest = &labels[wild..];
    if rest.is_empty() || rest.iter().any(|l| l.contains('*')) {
        return Err(refuse(format!(
            "the policy's {field} pattern {pattern:?} has a '*' that name constraints cannot express"
        )));
    }
    Ok(rest.join(".").to_ascii_lowercase())
}

/// The substituted patterns of a list; empty when the type is not allowed for this request.
fn patterns(list: &Option<Vec<String>>, ctx: &RequestContext) -> Vec<String> {
    list.iter()
        .flatten()
        .filter_map(|p| substitute(p, ctx))
        .collect()
}

fn email_subtree(p: &str) -> Result<String, PkiError> {
    let (local, domain) = p.rsplit_once('@').ok_or_else(|| {
        refuse(format!(
            "the policy's emailAddresses pattern {p:?} has no '@'"
        ))
    })?;
    let base = if domain.starts_with('*') {
        format!(".{}", dns_suffix("emailAddresses", domain)?)
    } else {
        dns_suffix("emailAddresses", domain)?
    };
    match local {
        "*" => Ok(base),
        l if !base.starts_with('.') && !l.contains('*') => Ok(format!("{l}@{base}")),
        _ => Err(refuse(format!(
            "the policy's emailAddresses pattern {p:?} cannot be expressed as a name constraint"
        ))),
    }
}

/// The name constraints an issued CA must carry under `policy` for a request in `ctx`.
pub fn derived_constraints(
    policy: &Policy,
    ctx: &RequestContext,
) -> Result<CaConstraints, PkiError> {
    if policy.uris.as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(refuse(
            "the policy allows URIs (uris), and URI name constraints can only restrict the host, not the path".into(),
        ));
    }
    let mut c = CaConstraints::default();
    c.excluded.uri.push(String::new());
    let dns = patterns(&policy.dns_names, ctx);
    if dns.is_empty() {
        c.excluded.dns.push(String::new());
    }
    for p in dns {
        c.permitted.dns.push(dns_suffix("dnsNames", &p)?);
    }
    match policy.ip_ranges.as_deref() {
        Some(ranges) if !ranges.is_empty() => {
            c.permitted.ip = ranges.iter().map(|n| n.trunc()).collect();
        }
        _ => {
            c.excluded.ip = vec![
                "0.0.0.0/0".parse().expect("CIDR"),
                "::/0".parse().expect("CIDR"),
            ];
        }
    }
    let emails = patterns(&policy.email_addresses, ctx);
    if emails.is_empty() {
        c.excluded.email.push(String::new());
    }
    for p in emails {
        c.permitted.email.push(email_subtree(&p)?);
    }
    Ok(c.sorted())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext {
            namespace: Some("team-a".into()),
            service_account: None,
        }
    }

    #[test]
    fn derives_subtrees_from_patterns() {
        let policy = Policy {
            dns_names: Some(vec!["*.{namespace}.svc".into(), "api.example.com".into()]),
            ip_ranges: Some(vec!["10.1.0.0/16".parse().unwrap()]),
            email_addresses: Some(vec!["*@{namespace}.example".into(), "a@b.example".into()]),
            ..Policy::default()
        };
        let nc = derived_constraints(&policy, &ctx()).unwrap();
        assert_eq!(nc.permitted.dns, vec!["api.example.com", "team-a.svc"]);
        assert_eq!(nc.permitted.ip, vec!["10.1.0.0/16".parse().unwrap()]);
        assert_eq!(nc.permitted.email, vec!["a@b.example", "team-a.example"]);
        assert_eq!(nc.permitted.uri, Vec::<String>::new());
        assert_eq!(nc.excluded.uri, vec![String::new()], "no URIs");
        assert!(
            nc.excluded.dns.is_empty() && nc.excluded.ip.is_empty() && nc.excluded.email.is_empty()
        );
    }

    #[test]
    fn omitted_or_empty_types_are_excluded_entirely() {
        let all_excluded = GeneralSubtrees {
            dns: vec![String::new()],
            uri: vec![String::new()],
            ip: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
            email: vec![String::new()],
        };
        for policy in [
            Policy::default(),
            Policy {
                dns_names: Some(vec![]),
                uris: Some(vec![]),
                ip_ranges: Some(vec![]),
                email_addresses: Some(vec![]),
                ..Policy::default()
            },
            Policy {
                dns_names: Some(vec!["{serviceAccount}.svc".into()]),
                ..Policy::default()
            },
        ] {
            let nc = derived_constraints(&policy, &ctx()).unwrap();
            assert_eq!(nc.permitted, GeneralSubtrees::default(), "{policy:?}");
            assert_eq!(
                nc.excluded,
                all_excluded.clone().into_sorted(),
                "{policy:?}"
            );
        }
    }

    #[test]
    fn inexpressible_policies_are_refused() {
        for (policy, needle) in [
            (
                Policy {
                    uris: Some(vec!["spiffe://td/ns/{namespace}/sa/*".into()]),
                    ..Policy::default()
                },
                "URI",
            ),
            (
                Policy {
                    dns_names: Some(vec!["a.*.svc".into()]),
                    ..Policy::default()
                },
                "a.*.svc",
            ),
            (
                Policy {
                    email_addresses: Some(vec!["a*@x.example".into()]),
                    ..Policy::default()
                },
                "emailAddresses",
            ),
        ] {
            let err = derived_constraints(&policy, &ctx())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    trait IntoSorted {
        fn into_sorted(self) -> Self;
    }

    impl IntoSorted for GeneralSubtrees {
        fn into_sorted(self) -> GeneralSubtrees {
            CaConstraints {
                permitted: GeneralSubtrees::default(),
                excluded: self,
            }
            .sorted()
            .excluded
        }
    }
}
