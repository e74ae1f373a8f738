//! Loading an issuer's signer, trust anchors and policy from its spec, and checking them
//! (docs/design.md, "The issuer"). Reading Secrets and ConfigMaps goes through [`ObjectSource`], so
//! this is testable without an API server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::cfssl::{CfsslClient, CfsslConfig, CfsslSigner, Info};
use super::remote::{self, AllowedUrls};
use super::secret::SecretSigner;
use super::vault::auth::ServiceAccountTokens;
use super::{Signer, SignerError};
use crate::api::issuer::{
    CfsslSignerSpec, ExtensionsSpec, IssuerSpec, KeyAlgorithmName, PemSource, PolicySpec,
};
use crate::api::{bounds, duration};
use crate::pki::{
    self, KeyAlgorithm, KeyRule, LeafExtensions, PkiError, Policy, SignerChain, SignerInfo, Usage,
    ValidatedChain,
};

/// The `data` of a Secret or ConfigMap.
pub type ObjectData = BTreeMap<String, Vec<u8>>;
/// What reading one object yields: its data, `None` when it does not exist.
pub type ReadResult<'a> = BoxFuture<'a, Result<Option<ObjectData>, LoadError>>;

/// Reads Secret and ConfigMap data from the issuer's resource namespace.
pub trait ObjectSource: Send + Sync {
    /// The namespace objects are read from (for messages).
    fn namespace(&self) -> &str;
    /// A Secret's `data`, or `Ok(None)` when it does not exist.
    fn secret(&self, name: &str) -> ReadResult<'_>;
    /// A ConfigMap's `data` and `binaryData`, or `Ok(None)` when it does not exist.
    fn config_map(&self, name: &str) -> ReadResult<'_>;
    /// Mints ServiceAccount tokens in the namespace (Vault Kubernetes auth), if supported.
    fn service_account_tokens(&self) -> Option<Arc<dyn ServiceAccountTokens>> {
        None
    }
}

/// How one issuer is loaded, besides its spec.
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// Receives each remote CA round trip's duration (metrics).
    pub observe: Option<Observer>,
    /// Remote CA URLs this issuer may use; `None` trusts every URL (PKIClusterIssuers).
    pub allowed_urls: Option<Arc<AllowedUrls>>,
    /// The issuer's own token audience for Vault Kubernetes auth (`vault://<ns>/<name>`).
    pub audience: String,
}

/// Why an issuer could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// A referenced object or key is missing: may appear later (retryable).
    #[error("{0}")]
    Missing(String),
    /// The API server or remote CA did not answer (retryable).
    #[error("{0}")]
    Unavailable(String),
    /// The spec or the referenced material is wrong (permanent until something changes).
    #[error("{0}")]
    Invalid(String),
    /// The certificates or key failed a check (permanent until something changes).
    #[error(transparent)]
    Pki(#[from] PkiError),
}

impl LoadError {
    /// Whether the condition reason is `Pending` (retryable) rather than `Failed`.
    pub fn is_retryable(&self) -> bool {
        matches!(self, LoadError::Missing(_) | LoadError::Unavailable(_))
    }
}

/// A checked issuer, ready to sign.
pub struct LoadedIssuer {
    /// The backend.
    pub signer: Arc<dyn Signer>,
    /// The signer chain as the issuer check validated it: every leaf is checked against it.
    pub chain: Arc<ValidatedChain>,
    /// Trust anchors as PEM (what `status.ca` gets).
    pub anchors_pem: String,
    /// The issuance policy.
    pub policy: Policy,
    /// Extensions copied into every leaf.
    pub extensions: LeafExtensions,
    /// The signer certificate.
    pub signer_info: SignerInfo,
    /// The trust anchors.
    pub anchor_infos: Vec<SignerInfo>,
    /// Remarks for the Ready message (e.g. a Vault role that refuses some key types).
    pub notes: Vec<String>,
}

/// The default health-check interval.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(300);

/// `spec.healthCheckInterval`, defaulted, never below [`remote::MIN_HEALTH_CHECK_INTERVAL`]
/// (a shorter one fails the check, see [`check_health_check_interval`]).
pub fn health_check_interval(spec: &IssuerSpec) -> Duration {
    spec.health_check_interval
        .as_deref()
        .and_then(|s| duration::parse(s).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_HEALTH_CHECK_INTERVAL)
        .max(remote::MIN_HEALTH_CHECK_INTERVAL)
}

/// `spec.healthCheckInterval` must parse and be at least 30s (the CRD's CEL rule says the
/// same, but API servers without CEL do not enforce it).
pub fn check_health_check_interval(spec: &IssuerSpec) -> Result<(), LoadError> {
    let Some(text) = spec.health_check_interval.as_deref() else {
        return Ok(());
    };
    let d = duration::parse(text)
        .map_err(|e| LoadError::Invalid(format!("healthCheckInterval: {e}")))?;
    if d < remote::MIN_HEALTH_CHECK_INTERVAL {
        return Err(LoadError::Invalid(format!(
            "healthCheckInterval {text:?} is shorter than the minimum {}",
            duration::format(remote::MIN_HEALTH_CHECK_INTERVAL)
        )));
    }
    Ok(())
}

/// A remote CA's per-request timeout: default 10s, at most 60s (enforced here as well as by
/// the CRD's CEL rule).
pub fn remote_timeout(field: &str, text: Option<&str>) -> Result<Duration, LoadError> {
    let Some(text) = text else {
        return Ok(DEFAULT_REMOTE_TIMEOUT);
    };
    let d = duration::parse(text).map_err(|e| LoadError::Invalid(format!("{field}: {e}")))?;
    if d.is_zero() || d > remote::MAX_TIMEOUT {
        return Err(LoadError::Invalid(format!(
            "{field} {text:?} must be more than 0s and at most {}",
            duration::format(remote::MAX_TIMEOUT)
        )));
    }
    Ok(d)
}

/// Load and check everything the issuer references (docs/design.md, "The issuer").
pub async fn load(
    spec: &IssuerSpec,
    src: &dyn ObjectSource,
    now: time::OffsetDateTime,
    opts: &LoadOptions,
) -> Result<LoadedIssuer, LoadError> {
    check_health_check_interval(spec)?;
    if let Some(e) = &spec.extensions {
        bounds::check_extensions(e).map_err(LoadError::Invalid)?;
    }
    let policy = policy_from_spec(spec.policy.as_ref())?;
    if let Some(c) = &spec.cfssl {
        remote::check_url("cfssl.url", &c.url).map_err(LoadError::Invalid)?;
    }
    if let Some(v) = &spec.vault {
        remote::check_url("vault.server", &v.server).map_err(LoadError::Invalid)?;
    }
    if let Some(allowed) = &opts.allowed_urls {
        if let Some(c) = &spec.cfssl {
            allowed
                .check("cfssl.url", &c.url)
                .map_err(LoadError::Invalid)?;
        }
        if let Some(v) = &spec.vault {
            allowed
                .check("vault.server", &v.server)
                .map_err(LoadError::Invalid)?;
        }
    }
    let anchors_pem = read_pem(src, &spec.trust_anchors, "trustAnchors").await?;
    let (anchors_der, anchor_infos) = off_workers(move || {
        let der = pki::parse_trust_anchors(&anchors_pem)
            .map_err(|e| LoadError::Invalid(format!("trustAnchors: {e}")))?;
        let infos = der
            .iter()
            .map(|d| pki::cert_info(d))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((der, infos))
    })
    .await?;
    let mut notes = Vec::new();
    let (signer, chain): (Arc<dyn Signer>, ValidatedChain) =
        match (&spec.secret, &spec.cfssl, &spec.vault) {
            (Some(secret), None, None) => {
                let data = src.secret(&secret.name).await?.ok_or_else(|| {
                    LoadError::Missing(format!(
                        "signer Secret {}/{} not found",
                        src.namespace(),
                        secret.name
                    ))
                })?;
                let crt = text_key(&data, "tls.crt", "Secret", src.namespace(), &secret.name)?;
                let key = text_key(&data, "tls.key", "Secret", src.namespace(), &secret.name)?;
                let which = format!("{}/{}", src.namespace(), secret.name);
                let (signer, chain) = off_workers(move || {
                    let signer = SecretSigner::from_pem(&crt, &key)
                        .map_err(|e| LoadError::Invalid(format!("signer Secret {which}: {e}")))?;
                    let chain = ValidatedChain::new(
                        signer.chain().clone(),
                        Some(signer.key()),
                        anchors_der,
                        now,
                    )?;
                    Ok((signer, chain))
                })
                .await?;
                (Arc::new(signer), chain)
            }
            (None, Some(cfssl), None) => {
                let signer = load_cfssl(cfssl, src, &policy, opts.observe.clone()).await?;
                let chain = validate_remote(signer.chain().clone(), anchors_der, now).await?;
                (Arc::new(signer), chain)
            }
            (None, None, Some(vault)) => {
                let (signer, role_notes) =
                    super::vault::load_vault(vault, src, &policy, opts).await?;
                let chain = validate_remote(signer.chain().clone(), anchors_der, now).await?;
                notes = role_notes;
                (Arc::new(signer), chain)
            }
            _ => {
                return Err(LoadError::Invalid(
                    "exactly one signer must be set: secret, cfssl or vault".into(),
                ))
            }
        };
    Ok(LoadedIssuer {
        signer,
        // Re-encoded from the parsed certificates: nothing else of the source text is copied.
        anchors_pem: pki::certs_to_pem(chain.anchors_der()),
        policy,
        extensions: extensions_from_spec(spec.extensions.as_ref()),
        signer_info: chain.info().clone(),
        chain: Arc::new(chain),
        anchor_infos,
        notes,
    })
}

/// Runs a check's CPU work on the bounded check threads ([`crate::cpu::check`]).
async fn off_workers<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LoadError> + Send + 'static,
) -> Result<T, LoadError> {
    crate::cpu::check(f)
        .await
        .map_err(|e| LoadError::Invalid(e.to_string()))?
}

/// Validates a remote CA's chain (no key to match) off the async workers.
async fn validate_remote(
    chain: SignerChain,
    anchors_der: Vec<Vec<u8>>,
    now: time::OffsetDateTime,
) -> Result<ValidatedChain, LoadError> {
    off_workers(move || Ok(ValidatedChain::new(chain, None, anchors_der, now)?)).await
}

/// Receives the duration of each remote CA round trip.
pub type Observer = remote::Observer;

/// The default per-request timeout of remote CAs.
pub const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(10);

async fn load_cfssl(
    spec: &CfsslSignerSpec,
    src: &dyn ObjectSource,
    policy: &Policy,
    observe: Option<Observer>,
) -> Result<CfsslSigner, LoadError> {
    let ns = src.namespace().to_string();
    let auth_key = match &spec.auth_key {
        Some(r) => {
            let data = src.secret(&r.name).await?.ok_or_else(|| {
                LoadError::Missing(format!("cfssl.authKey: Secret {ns}/{} not found", r.name))
            })?;
            let text = text_key(&data, &r.key, "Secret", &ns, &r.name)?;
            Some(hex::decode(text.trim()).map_err(|_| {
                LoadError::Invalid(format!(
                    "cfssl.authKey: Secret {ns}/{} key {:?} is not a hex key",
                    r.name, r.key
                ))
            })?)
        }
        None => None,
    };
    let timeout = remote_timeout("cfssl.timeout", spec.timeout.as_deref())?;
    let tls = if spec.url.starts_with("https://") {
        let Some(bundle) = &spec.ca_bundle else {
            return Err(LoadError::Invalid(
                "cfssl.caBundle is required for an https:// URL".into(),
            ));
        };
        let ca_pem = read_pem(src, bundle, "cfssl.caBundle").await?;
        let client = match &spec.client_cert_secret {
            Some(name) => {
                let data = src.secret(name).await?.ok_or_else(|| {
                    LoadError::Missing(format!(
                        "cfssl.clientCertSecret: Secret {ns}/{name} not found"
                    ))
                })?;
                Some((
                    text_key(&data, "tls.crt", "Secret", &ns, name)?,
                    text_key(&data, "tls.key", "Secret", &ns, name)?,
                ))
            }
            None => None,
        };
        Some(
            remote::tls::config(
                &ca_pem,
                client.as_ref().map(|(c, k)| remote::tls::ClientCert {
                    cert_pem: c,
                    key_pem: k,
                }),
            )
            .map_err(|e| LoadError::Invalid(format!("cfssl: {e}")))?,
        )
    } else {
        None
    };
    let client = CfsslClient::new(
        CfsslConfig {
            url: spec.url.clone(),
            profile: spec.profile.clone(),
            label: spec.label.clone(),
            auth_key: auth_key.map(crate::redacted::Redacted),
            timeout,
            tls,
        },
        observe,
    )
    .map_err(|e| LoadError::Invalid(format!("cfssl: {e}")))?;
    let info = client.info().await.map_err(|e| match e {
        SignerError::Unavailable(m) => LoadError::Unavailable(format!("CFSSL info: {m}")),
        other => LoadError::Invalid(format!(
            "CFSSL info for profile {:?}: {other}",
            spec.profile.clone().unwrap_or_default()
        )),
    })?;
    check_profile_expiry(
        &info,
        spec.profile.as_deref().unwrap_or_default(),
        policy.max_duration,
    )?;
    let mut chain_pem = info.certificate;
    if let Some(intermediates) = &spec.intermediates {
        chain_pem.push('\n');
        chain_pem.push_str(&read_pem(src, intermediates, "cfssl.intermediates").await?);
    }
    let chain = SignerChain::from_pem(&chain_pem)
        .map_err(|e| LoadError::Invalid(format!("CFSSL signer certificate: {e}")))?;
    Ok(CfsslSigner::new(client, chain))
}

/// CFSSL decides lifetimes by profile and silently falls back to its default profile for an
/// unknown name, so a profile that issues longer than `maxDuration` (a typo'd profile name,
/// typically) makes the issuer fail its check instead of every request failing later.
pub fn check_profile_expiry(info: &Info, profile: &str, max: Duration) -> Result<(), LoadError> {
    let Some(expiry) = info.expiry.as_deref().and_then(|e| duration::parse(e).ok()) else {
        return Ok(());
    };
    if expiry > max {
        return Err(LoadError::Invalid(format!(
            "CFSSL profile {profile:?} issues certificates valid for {}, longer than policy.maxDuration {}; \
             check the profile name (CFSSL uses its default profile for unknown names)",
            duration::format(expiry),
            duration::format(max)
        )));
    }
    Ok(())
}

/// Read PEM text from a ConfigMap or Secret key.
pub async fn read_pem(
    src: &dyn ObjectSource,
    source: &PemSource,
    field: &str,
) -> Result<String, LoadError> {
    let (kind, r, data) = match (&source.config_map, &source.secret) {
        (Some(r), None) => ("ConfigMap", r, src.config_map(&r.name).await?),
        (None, Some(r)) => ("Secret", r, src.secret(&r.name).await?),
        _ => {
            return Err(LoadError::Invalid(format!(
                "{field}: exactly one of configMap or secret must be set"
            )))
        }
    };
    let data = data.ok_or_else(|| {
        LoadError::Missing(format!(
            "{field}: {kind} {}/{} not found",
            src.namespace(),
            r.name
        ))
    })?;
    text_key(&data, &r.key, kind, src.namespace(), &r.name)
}

/// A key of a Secret's or ConfigMap's data as UTF-8 text.
pub(crate) fn text_key(
    data: &BTreeMap<String, Vec<u8>>,
    key: &str,
    kind: &str,
    ns: &str,
    name: &str,
) -> Result<String, LoadError> {
    let bytes = data
        .get(key)
        .ok_or_else(|| LoadError::Missing(format!("{kind} {ns}/{name} has no key {key:?}")))?;
    String::from_utf8(bytes.clone())
        .map_err(|_| LoadError::Invalid(format!("{kind} {ns}/{name} key {key:?} is not PEM text")))
}

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
    pki::policy::check_patterns(&policy).map_err(|e| LoadError::Invalid(e.to_string()))?;
    Ok(policy)
}

fn extensions_from_spec(spec: Option<&ExtensionsSpec>) -> LeafExtensions {
    let spec = spec.cloned().unwrap_or_default();
    LeafExtensions {
        crl_distribution_points: spec.crl_distribution_points,
        ocsp_servers: spec.ocsp_servers,
        issuing_certificate_urls: spec.issuing_certificate_urls,
    }
}
