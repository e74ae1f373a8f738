//! Kubernetes API types: our CRDs and the cert-manager types we read and write.

pub mod bounds;
pub mod cert_manager;
pub mod condition;
pub mod duration;
pub mod issuer;
pub mod pkcs11;
pub mod pod_certificates;
pub mod reason;
pub mod references;
pub mod signer_name;
pub mod trust_distribution;
pub mod vault;

pub use condition::Condition;
pub use issuer::{
    IssuerKind, IssuerSpec, IssuerStatus, PKIClusterIssuer, PKIClusterIssuerSpec, PKIIssuer,
    PKIIssuerSpec,
};

/// The API group of our CRDs.
pub const GROUP: &str = "pki-issuer.io";
/// The field manager used for every write.
pub const FIELD_MANAGER: &str = "pki-issuer";

/// `Ok` when `name` is a valid name for a Secret, ConfigMap or ServiceAccount (a DNS-1123
/// subdomain: lowercase letters, digits, `-` and `.`, alphanumeric at both ends of each
/// label, at most 253 characters). Checked before a name goes into an API request path, so
/// `../`, `%2f` or `?` can never reach a proxy that normalises paths.
pub fn check_object_name(kind: &str, name: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok) {
        return Ok(());
    }
    let shown: String = name.chars().take(80).collect();
    Err(format!(
        "{kind} name {shown:?} is not a valid Kubernetes object name (lowercase letters, digits, '-' and '.', at most 253 characters)"
    ))
}

#[cfg(test)]
mod tests {
    use super::check_object_name;

    #[test]
    fn object_names_are_dns_subdomains() {
        for ok in ["vault-token", "roots.v2", "a", "int-ca-2026"] {
            assert!(check_object_name("Secret", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../kube-system/secrets/x",
            "a/b",
            "a%2fb",
            "a%2Fb",
            "x?watch=1",
            "UPPER",
            "-a",
            "a..b",
            ".",
            "a\\b",
            "a b",
            &"a".repeat(254),
        ] {
            let e = check_object_name("Secret", bad).unwrap_err();
            assert!(e.contains("not a valid Kubernetes object name"), "{e}");
        }
    }
}
