//! Issuer policy: which names, keys, usages and durations may be issued.
//!
//! # Patterns
//! * `{namespace}` and `{serviceAccount}` are replaced by the request's
//!   namespace / ServiceAccount. The values are validated first (namespace: a
//!   DNS label; ServiceAccount: a DNS subdomain) so they cannot inject `*` or
//!   `/`. A pattern whose placeholder has no value (or an invalid value)
//!   matches nothing.
//! * DNS: `*` as a whole label matches exactly one label (`*.foo.svc` allows
//!   `a.foo.svc`, not `a.b.foo.svc` nor `foo.svc`). Comparison is
//!   case-insensitive and ignores one trailing dot. A wildcard *request* such
//!   as `*.foo.svc` is refused unless the policy sets `allow_wildcard_names`;
//!   then it is allowed by a pattern that has a literal `*` in that position
//!   (a request label `*` matches only a pattern label `*`).
//! * URI: `*` as a whole path segment matches exactly one non-empty segment
//!   (no `/`, `?`, `#`, `%`, and not `.`/`..`). Other segments match exactly.
//! * Email: `local@domain`; a local part `*` matches any local part, the
//!   domain uses the DNS rules.
//!
//! # Keys
//! The algorithm must be listed with size >= `min_size`. Independently of the
//! policy, RSA must be 2048..=8192 bits and ECDSA must use P-256/P-384/P-521.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::csr::SubjectAltNames;
use super::error::PkiError;
use super::keys::{KeyAlgorithm, KeyInfo};
use super::names;
use super::template::issued_usages;
use super::usage::Usage;
use matching::{DnsPattern, EmailPattern, UriPattern};

mod matching;

/// A key algorithm allowed by the policy, with an optional minimum size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRule {
    /// Allowed algorithm.
    pub algorithm: KeyAlgorithm,
    /// Minimum size in bits (curve size for ECDSA).
    pub min_size: Option<u32>,
}

/// Issuer policy. For the SAN list fields (`dns_names`, `uris`, `ip_ranges`,
/// `email_addresses`) `None` and `Some(vec![])` both mean "nothing of this type allowed":
/// a type must be listed to be allowed. `usages: None` means the default usage list.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Longest certificate lifetime; longer requests are clamped, not refused.
    pub max_duration: Duration,
    /// Shortest lifetime that may be requested.
    pub min_duration: Option<Duration>,
    /// Allowed DNS SAN patterns.
    pub dns_names: Option<Vec<String>>,
    /// Allowed URI SAN patterns.
    pub uris: Option<Vec<String>>,
    /// Allowed IP SAN ranges.
    pub ip_ranges: Option<Vec<IpNet>>,
    /// Allowed email SAN patterns.
    pub email_addresses: Option<Vec<String>>,
    /// Allowed usages (aliases such as `signing`/`digital signature` are equivalent).
    pub usages: Option<Vec<Usage>>,
    /// Whether CA certificates may be issued.
    pub allow_ca: bool,
    /// Allowed key algorithms.
    pub key_algorithms: Vec<KeyRule>,
    /// Refuse requests without any SAN.
    pub require_subject_alt_name: bool,
    /// Allow wildcard DNS names (`*.example.com`) in requests. Off by default: a pattern's `*`
    /// then means "any one label", never "a wildcard certificate".
    pub allow_wildcard_names: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_duration: Duration::from_secs(90 * 24 * 3600),
            min_duration: None,
            dns_names: None,
            uris: None,
            ip_ranges: None,
            email_addresses: None,
            usages: None,
            allow_ca: false,
            allow_wildcard_names: false,
            key_algorithms: vec![
                KeyRule {
                    algorithm: KeyAlgorithm::Ecdsa,
                    min_size: Some(256),
                },
                KeyRule {
                    algorithm: KeyAlgorithm::Rsa,
                    min_size: Some(2048),
                },
                KeyRule {
                    algorithm: KeyAlgorithm::Ed25519,
                    min_size: None,
                },
            ],
            require_subject_alt_name: true,
        }
    }
}

/// Who is asking: used for placeholder substitution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// Namespace of the CertificateRequest.
    pub namespace: Option<String>,
    /// ServiceAccount of the requester, when known.
    pub service_account: Option<String>,
}

/// What is being requested, assembled from the CSR and the request spec.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestedCert {
    /// SANs (from the CSR).
    pub sans: SubjectAltNames,
    /// Subject common name (from the CSR).
    pub common_name: Option<String>,
    /// Whether a CA certificate is requested.
    pub is_ca: bool,
    /// Requested usages; empty means cert-manager's defaults.
    pub usages: Vec<Usage>,
    /// Requested lifetime, if any.
    pub duration: Option<Duration>,
    /// The requested public key.
    pub key: KeyInfo,
    /// Usages the CSR itself requests (keyUsage / extendedKeyUsage in its extensionRequest).
    pub csr_usages: Vec<Usage>,
    /// basicConstraints cA the CSR itself requests, if any.
    pub csr_is_ca: Option<bool>,
}

impl RequestedCert {
    /// Builds a request from a parsed CSR plus the spec fields.
    pub fn from_csr(
        csr: &super::csr::ParsedCsr,
        is_ca: bool,
        usages: Vec<Usage>,
        duration: Option<Duration>,
    ) -> RequestedCert {
        RequestedCert {
            sans: csr.sans.clone(),
            common_name: csr.common_name.clone(),
            is_ca,
            usages,
            duration,
            key: csr.key,
            csr_usages: csr.requested_usages.clone(),
            csr_is_ca: csr.requested_is_ca,
        }
    }
}

/// Usages allowed when the policy lists none: enough for mTLS, nothing that signs for others.
pub const DEFAULT_ALLOWED_USAGES: [Usage; 4] = [
    Usage::DigitalSignature,
    Usage::KeyEncipherment,
    Usage::ServerAuth,
    Usage::ClientAuth,
];

/// Checks `req` against `policy`; the first violation is returned.
pub fn check_policy(
    policy: &Policy,
    req: &RequestedCert,
    ctx: &RequestContext,
) -> Result<(), PkiError> {
    check_key(policy, &req.key)?;
    if req.is_ca && !policy.allow_ca {
        return Err(PkiError::CaNotAllowed);
    }
    if req.csr_is_ca == Some(true) && !req.is_ca {
        return Err(PkiError::ExtensionNotAllowed(
            "the CSR requests basicConstraints cA=true but the request is not for a CA (isCA is not set)".into(),
        ));
    }
    if let Some(min) = policy.min_duration {
        let requested = req.duration.unwrap_or(Duration::from_secs(90 * 24 * 3600));
        // Clamping to max_duration happens later; the effective lifetime is
        // the smaller of the two.
        let effective = requested.min(policy.max_duration);
        if effective < min {
            return Err(PkiError::DurationTooShort {
                requested_secs: effective.as_secs(),
                min_secs: min.as_secs(),
            });
        }
    }
    names::check_syntax(&req.sans)?;
    if let Some(cn) = &req.common_name {
        check_common_name(req, cn)?;
    }
    if policy.require_subject_alt_name && req.sans.is_empty() {
        return Err(PkiError::NoSubjectAltName);
    }
    let dns_patterns = matching::compile(&policy.dns_names, ctx, DnsPattern::new);
    for dns in &req.sans.dns {
        if !policy.allow_wildcard_names && dns.starts_with('*') {
            return Err(PkiError::WildcardNotAllowed(dns.clone()));
        }
        let name = matching::dns_labels(dns);
        if !allowed(&dns_patterns, |p| {
            name.as_ref().is_some_and(|n| p.matches(n))
        }) {
            return Err(PkiError::DnsNameNotAllowed(dns.clone()));
        }
    }
    let uri_patterns = matching::compile(&policy.uris, ctx, UriPattern::new);
    for uri in &req.sans.uris {
        let segments = matching::uri_segments(uri);
        if !allowed(&uri_patterns, |p| {
            segments.as_ref().is_some_and(|s| p.matches(s))
        }) {
            return Err(PkiError::UriNotAllowed(uri.clone()));
        }
    }
    for ip in &req.sans.ips {
        if !ip_allowed(&policy.ip_ranges, ip) {
            return Err(PkiError::IpNotAllowed(ip.to_string()));
        }
    }
    let email_patterns = matching::compile(&policy.email_addresses, ctx, EmailPattern::new);
    for email in &req.sans.emails {
        let parts = matching::email_parts(email);
        if !allowed(&email_patterns, |p| {
            parts.as_ref().is_some_and(|e| p.matches(e))
        }) {
            return Err(PkiError::EmailNotAllowed(email.clone()));
        }
    }
    check_usages(policy, req)
}

/// Whether `usage` may appear in a certificate issued under `policy` (`is_ca`: a CA is issued).
fn usage_allowed(policy: &Policy, usage: Usage, is_ca: bool) -> bool {
    let u = usage.canonical();
    if matches!(u, Usage::CertSign | Usage::CrlSign) {
        return is_ca;
    }
    let list = policy.usages.as_deref().unwrap_or(&DEFAULT_ALLOWED_USAGES);
    list.iter().any(|a| a.canonical() == u)
}

/// Requested usages (spec and CSR) must be allowed; a certificate without extended key
/// usage ("any purpose") only when the policy allows `any`.
fn check_usages(policy: &Policy, req: &RequestedCert) -> Result<(), PkiError> {
    let issued = issued_usages(&req.usages, req.is_ca);
    for u in issued.iter().chain(&req.csr_usages) {
        if !usage_allowed(policy, *u, req.is_ca) {
            let why = if matches!(u.canonical(), Usage::CertSign | Usage::CrlSign) {
                " (only CA certificates may carry it)"
            } else if policy.usages.is_none() {
                " (the issuer policy lists no usages, so only \"digital signature\", \"key encipherment\", \"server auth\" and \"client auth\" are allowed)"
            } else {
                ""
            };
            return Err(PkiError::UsageNotAllowed(u.as_str().to_string(), why));
        }
    }
    if !issued.iter().any(|u| u.eku_oid().is_some()) && !usage_allowed(policy, Usage::Any, false) {
        let names: Vec<&str> = issued.iter().map(Usage::as_str).collect();
        return Err(PkiError::NoExtendedKeyUsage(names.join(", ")));
    }
    Ok(())
}

/// The CN must be one of the requested SANs (and so obeys every SAN rule).
fn check_common_name(req: &RequestedCert, cn: &str) -> Result<(), PkiError> {
    let s = &req.sans;
    let in_sans = s.dns.iter().any(|d| d.eq_ignore_ascii_case(cn))
        || s.uris.iter().any(|u| u == cn)
        || s.emails.iter().any(|e| e == cn)
        || cn
            .parse::<IpAddr>()
            .is_ok_and(|ip| s.ips.contains(&ip) && ip.to_string() == cn);
    if in_sans {
        Ok(())
    } else {
        Err(PkiError::CommonNameNotAllowed(cn.to_string()))
    }
}

/// A pattern whose placeholder touches a character the substituted value may contain lets
/// two different (namespace, ServiceAccount) pairs produce the same name
/// (`{namespace}-{serviceAccount}`: `team`/`b-web` and `team-b`/`web`). Such patterns are
/// refused; `field` names the list for the message.
pub fn check_pattern(field: &str, pattern: &str) -> Result<(), PkiError> {
    const PLACEHOLDERS: [(&str, &str, &str); 2] = [
        ("{namespace}", "a namespace name", "-"),
        ("{serviceAccount}", "a ServiceAccount name", "-."),
    ];
    for (ph, who, extra) in PLACEHOLDERS {
        let may_contain = |c: char| c.is_ascii_alphanumeric() || extra.contains(c);
        let mut from = 0;
        while let Some(i) = pattern[from..].find(ph) {
            let start = from + i;
            let end = start + ph.len();
            let before = pattern[..start].chars().next_back();
            let after = pattern[end..].chars().next();
            for c in [before, after].into_iter().flatten() {
                if may_contain(c) || c == '}' || c == '{' {
                    return Err(PkiError::InvalidPolicy(format!(
                        "{field} pattern {pattern:?}: {ph} touches {c:?}, which {who} (or another placeholder) may contain, so different namespaces or ServiceAccounts could produce the same name; separate placeholders with a character their values cannot contain, such as '/' or '.' after {{namespace}}"
                    )));
                }
            }
            from = end;
        }
    }
    Ok(())
}

/// Checks every pattern of the policy with [`check_pattern`].
pub fn check_patterns(policy: &Policy) -> Result<(), PkiError> {
    for (field, list) in [
        ("dnsNames", &policy.dns_names),
        ("uris", &policy.uris),
        ("emailAddresses", &policy.email_addresses),
    ] {
        for p in list.iter().flatten() {
            check_pattern(field, p)?;
        }
    }
    Ok(())
}

fn check_key(policy: &Policy, key: &KeyInfo) -> Result<(), PkiError> {
    let hard_ok = match key.algorithm {
        KeyAlgorithm::Rsa => (2048..=8192).contains(&key.size_bits),
        KeyAlgorithm::Ecdsa => matches!(key.size_bits, 256 | 384 | 521),
        KeyAlgorithm::Ed25519 => key.size_bits == 256,
    };
    let listed = policy
        .key_algorithms
        .iter()
        .any(|r| r.algorithm == key.algorithm && r.min_size.is_none_or(|m| key.size_bits >= m));
    if hard_ok && listed {
        Ok(())
    } else {
        Err(PkiError::KeyAlgorithmNotAllowed {
            algorithm: key.algorithm.to_string(),
            size: key.size_bits,
        })
    }
}

/// A SAN type the policy omits allows nothing: an explicit list is needed to allow a type.
fn allowed<T>(list: &Option<Vec<T>>, f: impl Fn(&T) -> bool) -> bool {
    list.iter().flatten().any(f)
}

fn ip_allowed(ranges: &Option<Vec<IpNet>>, ip: &IpAddr) -> bool {
    ranges.iter().flatten().any(|n| n.contains(ip))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Substitutes placeholders; `None` if a needed value is missing/invalid.
pub(crate) fn substitute(pattern: &str, ctx: &RequestContext) -> Option<String> {
    let mut out = pattern.to_string();
    if out.contains("{namespace}") {
        let ns = ctx.namespace.as_deref().filter(|n| is_dns_label(n))?;
        out = out.replace("{namespace}", ns);
    }
    if out.contains("{serviceAccount}") {
        let sa = ctx
            .service_account
            .as_deref()
            .filter(|s| is_dns_subdomain(s))?;
        out = out.replace("{serviceAccount}", sa);
    }
    if out.contains('{') || out.contains('}') {
        return None; // unknown placeholder: matches nothing
    }
    Some(out)
}

#[cfg(test)]
mod tests;
