//! The issuer's policy and leaf extensions, translated from the spec (with defaults and the
//! spec's size bounds checked).

use std::time::Duration;

use crate::api::issuer::{ExtensionsSpec, KeyAlgorithmName, PolicySpec};
use crate::api::{bounds, duration};
use crate::pki::{self, KeyAlgorithm, KeyRule, LeafExtensions, Policy, Usage};

use super::LoadError;

/// Translate the API policy into the pure policy, with defaults.
pub fn policy_from_spec(spec: Option<&PolicySpec>) -> Result<Policy, LoadError> {
    let mut policy = Policy::default();
    let Some(spec) = spec else {
        return Ok(policy);
    };
    bounds::check_policy(spec).map_err(LoadError::Invalid)?;
    let dur = |field: &str, v: &Option<String>| -> Result<Option<Duration>, LoadError> {
        v.as_deref()
            .map(|s| {
                duration::parse(s).map_err(|e| LoadError::Invalid(format!("policy.{field}: {e}")))
            })
            .transpose()
    };
    if let Some(max) = dur("maxDuration", &spec.max_duration)? {
        policy.max_duration = max;
    }
    policy.min_duration = dur("minDuration", &spec.min_duration)?;
    policy.dns_names = spec.dns_names.clone();
    policy.uris = spec.uris.clone();
    policy.email_addresses = spec.email_addresses.clone();
    policy.ip_ranges = spec
        .ip_ranges
        .as_ref()
        .map(|ranges| {
            ranges
                .iter()
                .map(|r| {
                    r.parse::<ipnet::IpNet>().map_err(|_| {
                        LoadError::Invalid(format!("policy.ipRanges: {r:?} is not a CIDR"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    policy.usages = spec
        .usages
        .as_ref()
        .map(|u| {
            u.iter()
                .map(|s| {
                    Usage::parse(s).map_err(|e| LoadError::Invalid(format!("policy.usages: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    if let Some(allow) = spec.allow_ca {
        policy.allow_ca = allow;
    }
    if let Some(allow) = spec.allow_wildcard_names {
        policy.allow_wildcard_names = allow;
    }
    if let Some(rules) = &spec.key_algorithms {
        policy.key_algorithms = rules
            .iter()
            .map(|r| KeyRule {
                algorithm: match r.algorithm {
                    KeyAlgorithmName::Rsa => KeyAlgorithm::Rsa,
                    KeyAlgorithmName::Ecdsa => KeyAlgorithm::Ecdsa,
                    KeyAlgorithmName::Ed25519 => KeyAlgorithm::Ed25519,
                },
                min_size: r.min_size,
            })
            .collect();
    }
    if let Some(require) = spec.require_subject_alt_name {
        policy.require_subject_alt_name = require;
    }
    pki::check_patterns(&policy).map_err(|e| LoadError::Invalid(e.to_string()))?;
    Ok(policy)
}

pub(super) fn extensions_from_spec(spec: Option<&ExtensionsSpec>) -> LeafExtensions {
    let spec = spec.cloned().unwrap_or_default();
    LeafExtensions {
        crl_distribution_points: spec.crl_distribution_points,
        ocsp_servers: spec.ocsp_servers,
        issuing_certificate_urls: spec.issuing_certificate_urls,
    }
}
