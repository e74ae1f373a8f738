//! Loading an issuer's signer, trust anchors and policy from its spec, and checking them
//! (docs/design.md, "The issuer"). Reading Secrets and ConfigMaps goes through [`ObjectSource`], so
//! this is testable without an API server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::remote::{self, AllowedUrls};
use super::secret::SecretSigner;
use super::vault::auth::ServiceAccountTokens;
use super::Signer;
use crate::api::issuer::{IssuerSpec, PemSource};
use crate::api::{bounds, duration};
use crate::pki::{self, LeafExtensions, PkiError, Policy, SignerChain, SignerInfo, ValidatedChain};

mod cfssl;
mod policy;

pub use self::cfssl::check_profile_expiry;
use self::cfssl::load_cfssl;
use self::policy::extensions_from_spec;
pub use self::policy::policy_from_spec;

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
    /// The operator's PKCS#11 module allowlist and this issuer's kind (default: none allowed).
    pub pkcs11: super::pkcs11::Pkcs11Access,
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
    /// `spec.podCertificates` (checked): how a pod's identity becomes names.
    pub pod_certificates: Option<crate::api::pod_certificates::PodCertificatesSpec>,
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
    if let Some(p) = &spec.pod_certificates {
        p.check().map_err(LoadError::Invalid)?;
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
        match (&spec.secret, &spec.cfssl, &spec.vault, &spec.pkcs11) {
            (Some(secret), None, None, None) => {
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
            (None, Some(cfssl), None, None) => {
                let signer = load_cfssl(cfssl, src, &policy, opts.observe.clone()).await?;
                let chain = validate_remote(signer.chain().clone(), anchors_der, now).await?;
                (Arc::new(signer), chain)
            }
            (None, None, Some(vault), None) => {
                let (signer, role_notes) =
                    super::vault::load_vault(vault, src, &policy, opts).await?;
                let chain = validate_remote(signer.chain().clone(), anchors_der, now).await?;
                notes = role_notes;
                (Arc::new(signer), chain)
            }
            (None, None, None, Some(p11)) => {
                let (signer, chain, p11_notes) =
                    super::pkcs11::load_pkcs11(p11, src, opts, anchors_der, now).await?;
                notes = p11_notes;
                (Arc::new(signer), chain)
            }
            _ => {
                return Err(LoadError::Invalid(
                    "exactly one signer must be set: secret, cfssl, vault or pkcs11".into(),
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
        pod_certificates: spec.pod_certificates.clone(),
    })
}

/// Runs a check's CPU work on the bounded check threads ([`crate::cpu::check`]).
pub(crate) async fn off_workers<T: Send + 'static>(
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
