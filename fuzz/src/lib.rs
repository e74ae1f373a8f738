//! The bodies of pki-issuer's fuzz targets. Each `fuzz_targets/<name>.rs` calls one function
//! here; every function asserts invariants beyond "no panic" (see docs/fuzzing.md).

pub mod csr_policy;
pub mod name_constraints;
pub mod pem_bundle;
pub mod remote_ca;

/// DNS name normalised the way RFC 5280 comparisons treat it (lower case, one trailing dot off).
pub fn norm_dns(s: &str) -> String {
    s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase()
}

/// `name` equals `base` or is a subdomain of it (both normalised).
pub fn dns_in(name: &str, base: &str) -> bool {
    let (n, b) = (norm_dns(name), norm_dns(base));
    n == b || n.ends_with(&format!(".{b}"))
}
