//! Name constraints for CA certificates issued under a policy, so that a sub-CA can only
//! mint names the policy would have granted to the requester.
//!
//! Each restricted name type of the policy becomes permitted subtrees (RFC 5280
//! §4.2.1.10); unrestricted types stay unconstrained, as they are for the requester:
//! * `dnsNames`: a literal name, or one whose only `*` labels are leftmost, becomes the
//!   subtree of its literal part (`*.team-a.svc` → `team-a.svc`, which also permits deeper
//!   names below it). A `*` in any other position cannot be expressed.
//! * `ipRanges`: each range as an iPAddress subtree.
//! * `emailAddresses`: `*@domain` → `domain`, `local@domain` → that mailbox, `*@*.domain`
//!   → `.domain`.
//! * `uris`: URI constraints restrict only the host, while the policy restricts paths
//!   (SPIFFE IDs), so a policy with `uris` cannot be expressed.
//!
//! An empty list (nothing allowed) cannot be expressed as permitted subtrees either.

use super::error::PkiError;
use super::name_constraints::GeneralSubtrees;
use super::policy::{substitute, Policy, RequestContext};

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

fn patterns(
    field: &str,
    list: &Option<Vec<String>>,
    ctx: &RequestContext,
) -> Result<Option<Vec<String>>, PkiError> {
    let Some(list) = list else { return Ok(None) };
    let subst: Vec<String> = list.iter().filter_map(|p| substitute(p, ctx)).collect();
    if subst.is_empty() {
        return Err(refuse(format!(
            "the policy's {field} allows no name for this request, which name constraints cannot express"
        )));
    }
    Ok(Some(subst))
}

/// The permitted subtrees an issued CA must carry under `policy` for a request in `ctx`;
/// `None` when the policy restricts no name type.
pub fn derived_constraints(
    policy: &Policy,
    ctx: &RequestContext,
) -> Result<Option<GeneralSubtrees>, PkiError> {
    if policy.uris.is_some() {
        return Err(refuse(
            "the policy restricts URIs (uris), and URI name constraints can only restrict the host, not the path".into(),
        ));
    }
    let mut out = GeneralSubtrees::default();
    if let Some(list) = patterns("dnsNames", &policy.dns_names, ctx)? {
        for p in list {
            out.dns.push(dns_suffix("dnsNames", &p)?);
        }
    }
    if let Some(ranges) = &policy.ip_ranges {
        if ranges.is_empty() {
            return Err(refuse(
                "the policy's ipRanges is empty, which name constraints cannot express".into(),
            ));
        }
        out.ip = ranges.iter().map(|n| n.trunc()).collect();
    }
    if let Some(list) = patterns("emailAddresses", &policy.email_addresses, ctx)? {
        for p in list {
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
            out.email.push(match local {
                "*" => base,
                l if !base.starts_with('.') && !l.contains('*') => format!("{l}@{base}"),
                _ => {
                    return Err(refuse(format!(
                        "the policy's emailAddresses pattern {p:?} cannot be expressed as a name constraint"
                    )))
                }
            });
        }
    }
    for v in [&mut out.dns, &mut out.email] {
        v.sort();
        v.dedup();
    }
    out.ip.sort();
    out.ip.dedup();
    if out == GeneralSubtrees::default() {
        return Ok(None);
    }
    Ok(Some(out))
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
        let nc = derived_constraints(&policy, &ctx()).unwrap().unwrap();
        assert_eq!(nc.dns, vec!["api.example.com", "team-a.svc"]);
        assert_eq!(nc.ip, vec!["10.1.0.0/16".parse().unwrap()]);
        assert_eq!(nc.email, vec!["a@b.example", "team-a.example"]);
        assert_eq!(nc.uri, Vec::<String>::new());
    }

    #[test]
    fn unrestricted_policy_gives_no_constraints() {
        assert_eq!(derived_constraints(&Policy::default(), &ctx()), Ok(None));
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
                    dns_names: Some(vec![]),
                    ..Policy::default()
                },
                "dnsNames",
            ),
            (
                Policy {
                    ip_ranges: Some(vec![]),
                    ..Policy::default()
                },
                "ipRanges",
            ),
            (
                Policy {
                    dns_names: Some(vec!["{serviceAccount}.svc".into()]),
                    ..Policy::default()
                },
                "dnsNames",
            ),
        ] {
            let err = derived_constraints(&policy, &ctx())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
