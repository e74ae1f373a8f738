//! Size bounds of the issuer spec's lists. The CRD carries them (`maxItems`, `maxLength`) and
//! the issuer check enforces them again, for API servers that do not validate the schema.
//! With at most [`crate::pki::MAX_SANS`] names per request, matching a request against
//! a policy stays a few thousand plain comparisons.

use super::issuer::{ExtensionsSpec, PolicySpec};

/// Entries of each policy name list (`dnsNames`, `uris`, `emailAddresses`, `ipRanges`).
pub const MAX_POLICY_ENTRIES: usize = 256;
/// Entries of `policy.usages`.
pub const MAX_POLICY_USAGES: usize = 32;
/// Entries of `policy.keyAlgorithms`.
pub const MAX_KEY_ALGORITHMS: usize = 8;
/// URLs of each `extensions` list.
pub const MAX_EXTENSION_URLS: usize = 16;

/// One list's bound: its field name, entries, most entries, longest entry.
type Bound<'a> = (&'a str, Option<&'a [String]>, usize, usize);

fn check(bounds: &[Bound<'_>]) -> Result<(), String> {
    for (field, list, max_items, max_len) in bounds {
        let Some(list) = list else { continue };
        if list.len() > *max_items {
            return Err(format!(
                "{field} has {} entries; at most {max_items} are allowed",
                list.len()
            ));
        }
        if let Some((i, long)) = list.iter().enumerate().find(|(_, e)| e.len() > *max_len) {
            return Err(format!(
                "{field}[{i}] is {} characters long; at most {max_len} are allowed",
                long.len()
            ));
        }
    }
    Ok(())
}

/// The policy's lists are within their bounds (the same as the CRD's).
pub fn check_policy(p: &PolicySpec) -> Result<(), String> {
    if let Some(k) = &p.key_algorithms {
        if k.len() > MAX_KEY_ALGORITHMS {
            return Err(format!(
                "policy.keyAlgorithms has {} entries; at most {MAX_KEY_ALGORITHMS} are allowed",
                k.len()
            ));
        }
    }
    check(&[
        (
            "policy.dnsNames",
            p.dns_names.as_deref(),
            MAX_POLICY_ENTRIES,
            253,
        ),
        ("policy.uris", p.uris.as_deref(), MAX_POLICY_ENTRIES, 1024),
        (
            "policy.ipRanges",
            p.ip_ranges.as_deref(),
            MAX_POLICY_ENTRIES,
            43,
        ),
        (
            "policy.emailAddresses",
            p.email_addresses.as_deref(),
            MAX_POLICY_ENTRIES,
            320,
        ),
        ("policy.usages", p.usages.as_deref(), MAX_POLICY_USAGES, 64),
    ])
}

/// The extensions' URL lists are within their bounds (the same as the CRD's).
pub fn check_extensions(e: &ExtensionsSpec) -> Result<(), String> {
    check(&[
        (
            "extensions.crlDistributionPoints",
            Some(&e.crl_distribution_points),
            MAX_EXTENSION_URLS,
            2048,
        ),
        (
            "extensions.ocspServers",
            Some(&e.ocsp_servers),
            MAX_EXTENSION_URLS,
            2048,
        ),
        (
            "extensions.issuingCertificateURLs",
            Some(&e.issuing_certificate_urls),
            MAX_EXTENSION_URLS,
            2048,
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize, len: usize) -> Option<Vec<String>> {
        Some((0..n).map(|i| format!("{i:0>len$}")).collect())
    }

    #[test]
    fn lists_over_their_bounds_are_refused() {
        let ok = PolicySpec {
            dns_names: names(MAX_POLICY_ENTRIES, 253),
            uris: names(MAX_POLICY_ENTRIES, 1024),
            usages: names(MAX_POLICY_USAGES, 64),
            ..Default::default()
        };
        check_policy(&ok).unwrap();
        let cases = [
            (
                PolicySpec {
                    dns_names: names(MAX_POLICY_ENTRIES + 1, 5),
                    ..Default::default()
                },
                "policy.dnsNames has 257 entries",
            ),
            (
                PolicySpec {
                    uris: names(1, 1025),
                    ..Default::default()
                },
                "policy.uris[0] is 1025 characters",
            ),
            (
                PolicySpec {
                    ip_ranges: names(MAX_POLICY_ENTRIES + 1, 5),
                    ..Default::default()
                },
                "policy.ipRanges has 257",
            ),
            (
                PolicySpec {
                    email_addresses: names(2, 321),
                    ..Default::default()
                },
                "policy.emailAddresses[0]",
            ),
            (
                PolicySpec {
                    usages: names(MAX_POLICY_USAGES + 1, 3),
                    ..Default::default()
                },
                "policy.usages has 33",
            ),
        ];
        for (spec, want) in cases {
            let e = check_policy(&spec).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        let many_keys = PolicySpec {
            key_algorithms: Some(vec![
                crate::api::issuer::KeyAlgorithmRule {
                    algorithm: crate::api::issuer::KeyAlgorithmName::Rsa,
                    min_size: None,
                };
                MAX_KEY_ALGORITHMS + 1
            ]),
            ..Default::default()
        };
        assert!(check_policy(&many_keys)
            .unwrap_err()
            .contains("keyAlgorithms has 9"));
        let ext = ExtensionsSpec {
            ocsp_servers: names(MAX_EXTENSION_URLS + 1, 3).unwrap(),
            ..Default::default()
        };
        assert!(check_extensions(&ext)
            .unwrap_err()
            .contains("ocspServers has 17"));
        check_extensions(&ExtensionsSpec::default()).unwrap();
    }
}
