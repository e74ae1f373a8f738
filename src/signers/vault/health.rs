//! The issuer check of a Vault backend: `sys/health` (sealed, uninitialized or unreachable is
//! Pending), login and role read (wrong auth or role is Failed), the role's settings against
//! the policy, and the mount's CA chain.

use super::client::VaultClient;
use super::response::{Health, Role, VaultError};
use crate::api::duration;
use crate::pki::DEFAULT_ALLOWED_USAGES;
use crate::pki::{KeyAlgorithm, Policy, Usage};
use crate::signers::load::LoadError;

/// Problems of a role against a policy: `blocking` ones make every request of some kind
/// fail (the issuer is Failed); `notes` are reported in the Ready message.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoleReport {
    /// Issues that fail the check.
    pub blocking: Vec<String>,
    /// Issues worth reporting while the issuer is Ready.
    pub notes: Vec<String>,
}

fn algorithm_name(a: KeyAlgorithm) -> &'static str {
    match a {
        KeyAlgorithm::Rsa => "RSA",
        KeyAlgorithm::Ecdsa => "ECDSA",
        KeyAlgorithm::Ed25519 => "Ed25519",
    }
}

fn role_accepts(key_type: &str, a: KeyAlgorithm) -> bool {
    match key_type {
        "any" | "" => true,
        "rsa" => a == KeyAlgorithm::Rsa,
        "ec" => a == KeyAlgorithm::Ecdsa,
        "ed25519" => a == KeyAlgorithm::Ed25519,
        _ => false,
    }
}

/// Vault's glob: `*` matches any run of characters.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !value.starts_with(first) || value.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &value[first.len()..value.len() - last.len()];
    if !value.ends_with(last) {
        return false;
    }
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// A sample value of a policy URI pattern: placeholders and `*` filled with a plain segment.
fn sample_uri(pattern: &str) -> String {
    pattern
        .replace("{namespace}", "ns")
        .replace("{serviceAccount}", "sa")
        .replace('*', "x")
}

/// A Vault role usage name (`key_usage`, `ext_key_usage`, or a dotted EKU OID) as ours.
fn vault_usage(name: &str) -> Option<Usage> {
    let u = match name.to_ascii_lowercase().as_str() {
        "digitalsignature" => Usage::DigitalSignature,
        "contentcommitment" => Usage::ContentCommitment,
        "keyencipherment" => Usage::KeyEncipherment,
        "dataencipherment" => Usage::DataEncipherment,
        "keyagreement" => Usage::KeyAgreement,
        "certsign" => Usage::CertSign,
        "crlsign" => Usage::CrlSign,
        "encipheronly" => Usage::EncipherOnly,
        "decipheronly" => Usage::DecipherOnly,
        "any" => Usage::Any,
        "serverauth" => Usage::ServerAuth,
        "clientauth" => Usage::ClientAuth,
        "codesigning" => Usage::CodeSigning,
        "emailprotection" => Usage::EmailProtection,
        "ipsecendsystem" => Usage::IpsecEndSystem,
        "ipsectunnel" => Usage::IpsecTunnel,
        "ipsecuser" => Usage::IpsecUser,
        "timestamping" => Usage::Timestamping,
        "ocspsigning" => Usage::OcspSigning,
        "microsoftservergatedcrypto" => Usage::MicrosoftSgc,
        "netscapeservergatedcrypto" => Usage::NetscapeSgc,
        dotted => return Usage::from_eku_oid(dotted),
    };
    Some(u)
}

/// Whether a leaf (not a CA) issued under `policy` may carry `u`.
fn leaf_usage_allowed(policy: &Policy, u: Usage) -> bool {
    let u = u.canonical();
    if matches!(u, Usage::CertSign | Usage::CrlSign) {
        return false;
    }
    let list = policy.usages.as_deref().unwrap_or(&DEFAULT_ALLOWED_USAGES);
    list.iter().any(|a| a.canonical() == u)
}

/// Vault puts the role's `key_usage` and `ext_key_usage` (and flags) into every certificate,
/// whatever the request asks: a usage the policy refuses would fail every request after
/// signing while the issuer says Ready, so it fails the issuer check instead.
fn check_role_usages(role_name: &str, role: &Role, policy: &Policy, r: &mut RoleReport) {
    for (field, names) in [
        ("key_usage", &role.key_usage),
        ("ext_key_usage (with server_flag, client_flag, code_signing_flag, email_protection_flag, ext_key_usage_oids)", &role.ext_key_usage),
    ] {
        let refused: Vec<&str> = names
            .iter()
            .filter(|n| vault_usage(n).is_none_or(|u| !leaf_usage_allowed(policy, u)))
            .map(String::as_str)
            .collect();
        if refused.is_empty() {
            continue;
        }
        let keep: Vec<&str> = names
            .iter()
            .filter(|n| !refused.contains(&n.as_str()))
            .map(String::as_str)
            .collect();
        r.blocking.push(format!(
            "Vault role {role_name:?} {field} includes {} which the issuer's policy.usages does not allow: every certificate would fail the after-signing check; set the role's {} to [{}] (e.g. bao write <mount>/roles/{role_name} key_usage={}), or allow the usage in policy.usages",
            refused.join(", "),
            field.split(' ').next().unwrap_or(field),
            keep.join(", "),
            if field == "key_usage" { keep.join(",") } else { role.key_usage.join(",") },
        ));
    }
}

/// Compare a role with the policy (pure).
pub fn check_role(role_name: &str, role: &Role, policy: &Policy) -> RoleReport {
    let mut r = RoleReport::default();
    if !role.use_csr_sans {
        r.blocking.push(format!(
            "Vault role {role_name:?} has use_csr_sans=false: Vault would take the names from request fields, but pki-issuer sends only the CSR (whose names it checked); set use_csr_sans=true on the role"
        ));
    }
    check_role_usages(role_name, role, policy, &mut r);
    let algs: Vec<KeyAlgorithm> = policy.key_algorithms.iter().map(|k| k.algorithm).collect();
    let refused: Vec<&str> = algs
        .iter()
        .filter(|a| !role_accepts(&role.key_type, **a))
        .map(|a| algorithm_name(*a))
        .collect();
    if !algs.is_empty() && refused.len() == algs.len() {
        r.blocking.push(format!(
            "Vault role {role_name:?} accepts only key_type {:?} but policy.keyAlgorithms allows only {}: every request would be refused; set the role's key_type or the policy's keyAlgorithms",
            role.key_type,
            refused.join(", ")
        ));
    } else if !refused.is_empty() {
        r.notes.push(format!(
            "Vault role {role_name:?} accepts only key_type {:?}: {} keys allowed by policy.keyAlgorithms will be refused by Vault",
            role.key_type,
            refused.join(", ")
        ));
    }
    for pattern in policy.uris.iter().flatten() {
        let sample = sample_uri(pattern);
        if !role.allowed_uri_sans.iter().any(|g| glob_match(g, &sample)) {
            r.blocking.push(format!(
                "Vault role {role_name:?} does not allow URI SANs such as {sample:?} (policy.uris {pattern:?}); Vault would drop them: add a matching allowed_uri_sans to the role"
            ));
        }
    }
    if let (Some(max), Some(min)) = (role.max_ttl, policy.min_duration) {
        if max < min {
            r.blocking.push(format!(
                "Vault role {role_name:?} has max_ttl {} below policy.minDuration {}: every certificate would be too short",
                duration::format(max),
                duration::format(min)
            ));
        }
    }
    if let Some(max) = role.max_ttl {
        if max < policy.max_duration {
            r.notes.push(format!(
                "Vault role {role_name:?} caps lifetimes at max_ttl {}",
                duration::format(max)
            ));
        }
    }
    r
}

fn at(client: &VaultClient) -> String {
    format!("Vault at {}", client.config().server)
}

/// `sys/health`: `Ok` when the server can sign (active or a forwarding standby).
pub async fn check_health(client: &VaultClient) -> Result<Health, LoadError> {
    let where_ = at(client);
    match client.health().await {
        Ok(h @ (Health::Active | Health::Standby)) => Ok(h),
        Ok(Health::Sealed) => Err(LoadError::Unavailable(format!(
            "{where_} is sealed; will retry until it is unsealed"
        ))),
        Ok(Health::Uninitialized) => Err(LoadError::Unavailable(format!(
            "{where_} is not initialized; will retry"
        ))),
        Ok(Health::Unknown(s)) if s >= 500 => Err(LoadError::Unavailable(format!(
            "{where_}: sys/health answered {}; will retry",
            crate::signers::remote::status_text(s)
        ))),
        Ok(Health::Unknown(s)) => Err(LoadError::Invalid(format!(
            "{where_} does not answer sys/health like Vault or OpenBao ({})",
            crate::signers::remote::status_text(s)
        ))),
        Err(e) => Err(LoadError::Unavailable(format!(
            "{where_} is unreachable: {e}; will retry"
        ))),
    }
}

/// Map a Vault error of the check step `what` to Pending (retryable) or Failed.
pub fn load_error(what: &str, e: VaultError) -> LoadError {
    match e {
        VaultError::Unavailable(m) => LoadError::Unavailable(format!("{what}: {m}; will retry")),
        VaultError::Denied(m) | VaultError::Refused(m) => {
            LoadError::Invalid(format!("{what}: {m}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pki::KeyRule;

    fn role(key_type: &str, uris: &[&str], max_ttl: Option<u64>) -> Role {
        Role {
            key_type: key_type.into(),
            allowed_uri_sans: uris.iter().map(|s| s.to_string()).collect(),
            max_ttl: max_ttl.map(Duration::from_secs),
            use_csr_sans: true,
            key_usage: vec!["DigitalSignature".into(), "KeyEncipherment".into()],
            ext_key_usage: vec!["ServerAuth".into(), "ClientAuth".into()],
        }
    }

    #[test]
    fn role_usages_the_policy_refuses_fail_the_check() {
        let p = Policy::default();
        assert!(check_role("web", &role("any", &[], None), &p)
            .blocking
            .is_empty());
        // OpenBao's default key_usage adds KeyAgreement.
        let mut r = role("any", &[], None);
        r.key_usage.push("KeyAgreement".into());
        let rep = check_role("web", &r, &p);
        assert_eq!(rep.blocking.len(), 1, "{rep:?}");
        let m = &rep.blocking[0];
        assert!(
            m.contains("key_usage includes KeyAgreement")
                && m.contains("key_usage=DigitalSignature,KeyEncipherment"),
            "{m}"
        );
        for eku in [
            "CodeSigning",
            "OCSPSigning",
            "TimeStamping",
            "Any",
            "1.2.3.4",
            "1.3.6.1.5.5.7.3.9",
        ] {
            let mut r = role("any", &[], None);
            r.ext_key_usage.push(eku.into());
            let rep = check_role("web", &r, &p);
            assert!(
                rep.blocking.len() == 1 && rep.blocking[0].contains(eku),
                "{eku}: {rep:?}"
            );
        }
        let mut r = role("any", &[], None);
        r.key_usage.push("CertSign".into());
        assert_eq!(check_role("web", &r, &p).blocking.len(), 1);
        // Listed in the policy: allowed.
        let listed = Policy {
            usages: Some(vec![
                Usage::DigitalSignature,
                Usage::KeyAgreement,
                Usage::KeyEncipherment,
                Usage::ServerAuth,
                Usage::ClientAuth,
                Usage::CodeSigning,
            ]),
            ..Policy::default()
        };
        let mut r = role("any", &[], None);
        r.key_usage.push("KeyAgreement".into());
        r.ext_key_usage.push("CodeSigning".into());
        assert!(check_role("web", &r, &listed).blocking.is_empty());
    }

    #[test]
    fn a_role_that_ignores_the_csr_names_fails_the_check() {
        let mut r = role("any", &[], None);
        r.use_csr_sans = false;
        let rep = check_role("web", &r, &Policy::default());
        assert!(
            rep.blocking.len() == 1 && rep.blocking[0].contains("use_csr_sans=true"),
            "{rep:?}"
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "spiffe://cluster.local/*",
            "spiffe://cluster.local/ns/a/sa/b"
        ));
        assert!(glob_match("spiffe://*/ns/*/sa/*", "spiffe://td/ns/a/sa/b"));
        assert!(!glob_match("spiffe://td/*", "spiffe://other/ns"));
        assert!(glob_match("exact", "exact") && !glob_match("exact", "exact2"));
        assert!(!glob_match("a*a", "a"));
    }

    #[test]
    fn key_type_mismatch_is_blocking_only_without_overlap() {
        let mut p = Policy {
            key_algorithms: vec![KeyRule {
                algorithm: KeyAlgorithm::Ecdsa,
                min_size: Some(256),
            }],
            ..Policy::default()
        };
        let r = check_role("web", &role("rsa", &[], None), &p);
        assert_eq!(r.blocking.len(), 1, "{r:?}");
        assert!(r.blocking[0].contains("\"rsa\"") && r.blocking[0].contains("ECDSA"));
        assert!(check_role("web", &role("ec", &[], None), &p)
            .blocking
            .is_empty());
        assert!(check_role("web", &role("any", &[], None), &p)
            .blocking
            .is_empty());
        p = Policy::default();
        let r = check_role("web", &role("rsa", &[], None), &p);
        assert!(r.blocking.is_empty());
        assert!(r.notes[0].contains("ECDSA, Ed25519"), "{r:?}");
    }

    #[test]
    fn uri_and_ttl_checks() {
        let p = Policy {
            uris: Some(vec!["spiffe://cluster.local/ns/{namespace}/sa/*".into()]),
            min_duration: Some(Duration::from_secs(7200)),
            ..Policy::default()
        };
        let r = check_role("web", &role("any", &[], Some(3600)), &p);
        assert_eq!(r.blocking.len(), 2, "{r:?}");
        assert!(r.blocking[0].contains("spiffe://cluster.local/ns/ns/sa/x"));
        assert!(r.blocking[1].contains("max_ttl 1h0m0s"));
        let r = check_role(
            "web",
            &role("any", &["spiffe://cluster.local/*"], Some(86400)),
            &p,
        );
        assert!(r.blocking.is_empty(), "{r:?}");
        assert!(r.notes[0].contains("max_ttl 24h0m0s"));
    }
}
