//! The bodies of pki-issuer's fuzz targets. Each `fuzz_targets/<name>.rs` calls one function
//! here; every function asserts invariants beyond "no panic" (see docs/fuzzing.md).
//!
//! Invariants that encode requirements of issue 10 not yet implemented on `main` are
//! *pending*: checked only when `PKI_FUZZ_PENDING=1` is set (see [`pending`]).

pub mod csr_policy;
pub mod name_constraints;
pub mod pem_bundle;
pub mod remote_ca;

use std::sync::OnceLock;

/// Asserts `cond` when `PKI_FUZZ_PENDING=1`: for invariants of fixes still in progress.
pub fn pending(cond: bool, what: impl FnOnce() -> String) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var("PKI_FUZZ_PENDING").is_ok_and(|v| v == "1")) {
        assert!(cond, "pending invariant violated: {}", what());
    }
}

/// DNS name normalised the way RFC 5280 comparisons treat it (lower case, one trailing dot off).
pub fn norm_dns(s: &str) -> String {
    s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase()
}

/// `name` equals `base` or is a subdomain of it (both normalised).
pub fn dns_in(name: &str, base: &str) -> bool {
    let (n, b) = (norm_dns(name), norm_dns(base));
    n == b || n.ends_with(&format!(".{b}"))
}
