//! The issuance pipeline both request controllers share: check a request before signing
//! ([`prepare`]), sign with the issuer's backend (remote CAs bounded per issuer, per endpoint
//! and in total, [`remote_slots`]), check the result ([`check`]), reduced to one [`Outcome`]. Domain
//! logic: it knows the checked issuer ([`LoadedIssuer`]) but nothing of Kubernetes objects.

pub mod check;
pub mod pod;
pub mod prepare;
pub mod remote_slots;

pub use check::{describe_validity, policy_limit, verify_issued, Issued};
pub use prepare::{prepare, Prepared, RequestInput};

use std::sync::Arc;

use self::remote_slots::RemoteSlots;
use crate::api::issuer::{IssuerKey, IssuerKind};
use crate::api::reason::Reason;
use crate::signers::load::LoadedIssuer;
use crate::signers::{SignRequest, SignerError};

/// The result of trying to issue one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Checked and ready to write.
    Issued {
        /// Leaf then intermediates, PEM.
        chain_pem: String,
        /// Trust anchors, PEM.
        ca_pem: String,
        /// Human description of the lifetime, for messages and Events.
        validity: String,
    },
    /// Permanent failure: `reason` (a metric label and Event reason) and a message.
    Failed {
        /// [`Reason::PolicyViolation`], [`Reason::SigningFailed`] or [`Reason::VerificationFailed`].
        reason: Reason,
        /// Names the offending value.
        message: String,
    },
    /// Retryable failure (remote CA unavailable); the message says what failed.
    Retry(String),
    /// The issuer's remote CA calls are all in flight: try again shortly (no backoff).
    Busy(String),
    /// The issuer is broken (its CA refused our credentials): the request waits while the
    /// issuer is checked again.
    IssuerError(String),
}

/// Steps 6-8 of the request flow for any request kind. The checks and local signing run off
/// the async workers ([`crate::cpu::request`]); a request of a remote backend first needs its
/// slots ([`remote_slots`]) and holds a worker only while it has them.
pub async fn issue(
    input: RequestInput,
    loaded: Arc<LoadedIssuer>,
    slots: &RemoteSlots,
    key: &IssuerKey,
) -> Outcome {
    let key = key.clone();
    let Some(url) = loaded.signer.remote_url().map(str::to_string) else {
        // A local signer's future is ready at once: the whole issuance is one blocking job.
        return either(
            off_workers(move || {
                let prepared = checked_before_signing(&input, &loaded)?;
                let leaf = futures::executor::block_on(loaded.signer.sign(SignRequest {
                    csr: &prepared.csr,
                    template: &prepared.template,
                }));
                Ok(checked_after_signing(leaf, &prepared, &loaded, &key))
            })
            .await,
        );
    };
    // The slot first: a request that waits for one costs nothing but this check (thousands of
    // waiting requests re-queued every few seconds must not each re-verify their CSR).
    let slot = match slots.try_acquire(&key, &url) {
        Ok(slot) => slot,
        Err(busy) => {
            let backend = loaded.signer.backend();
            return Outcome::Busy(format!("waiting for the {backend} CA: {busy}"));
        }
    };
    let issuer = loaded.clone();
    let prepared = match off_workers(move || checked_before_signing(&input, &issuer)).await {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    let leaf = loaded
        .signer
        .sign(SignRequest {
            csr: &prepared.csr,
            template: &prepared.template,
        })
        .await;
    drop(slot);
    either(off_workers(move || Ok(checked_after_signing(leaf, &prepared, &loaded, &key))).await)
}

/// Runs request work on a blocking thread; a panic there fails the request.
async fn off_workers<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Outcome> + Send + 'static,
) -> Result<T, Outcome> {
    crate::cpu::request(f).await.unwrap_or_else(|e| {
        Err(Outcome::Failed {
            reason: Reason::SigningFailed,
            message: e.to_string(),
        })
    })
}

/// Both arms of a result that is an [`Outcome`] either way.
fn either(r: Result<Outcome, Outcome>) -> Outcome {
    match r {
        Ok(o) | Err(o) => o,
    }
}

fn checked_before_signing(
    input: &RequestInput,
    loaded: &LoadedIssuer,
) -> Result<Prepared, Outcome> {
    prepare(input, loaded, time::OffsetDateTime::now_utc()).map_err(|e| Outcome::Failed {
        reason: refusal_reason(input, &e),
        message: format!("refused before signing: {e}"),
    })
}

/// Why a request was refused before signing. A pod certificate says more: a key type the
/// issuer does not sign is `UnsupportedKeyType`, and a lifetime the issuer cannot give it
/// (under 1 h) is a signing failure, not the request's fault.
fn refusal_reason(input: &RequestInput, e: &crate::pki::PkiError) -> Reason {
    use crate::pki::PkiError;
    match (input.pod.is_some(), e) {
        (true, PkiError::UnsupportedKeyAlgorithm(_) | PkiError::KeyAlgorithmNotAllowed { .. }) => {
            Reason::UnsupportedKeyType
        }
        (true, PkiError::SigningFailed(_) | PkiError::SignerNotValid(_)) => Reason::SigningFailed,
        _ => Reason::PolicyViolation,
    }
}

fn checked_after_signing(
    leaf: Result<Vec<u8>, SignerError>,
    prepared: &Prepared,
    loaded: &LoadedIssuer,
    key: &IssuerKey,
) -> Outcome {
    let backend = loaded.signer.backend();
    let leaf = match leaf {
        Ok(leaf) => leaf,
        Err(e) if e.is_retryable() => {
            let detail = format!("signing with the {backend} signer: {e}");
            return Outcome::Retry(tenant_detail(key, loaded, detail, "is unavailable"));
        }
        Err(SignerError::Credentials(m)) => {
            let detail = format!("the {backend} CA refused our credentials: {m}");
            return Outcome::IssuerError(tenant_detail(
                key,
                loaded,
                detail,
                "refused our credentials",
            ));
        }
        Err(SignerError::SignerDown(m)) => {
            let detail = format!("the {backend} signer is not available: {m}");
            return Outcome::IssuerError(tenant_detail(key, loaded, detail, "is not available"));
        }
        Err(e) => {
            let detail = format!("the {backend} signer failed: {e}");
            return Outcome::Failed {
                reason: Reason::SigningFailed,
                message: tenant_detail(key, loaded, detail, "refused the request"),
            };
        }
    };
    match verify_issued(&leaf, prepared, loaded, time::OffsetDateTime::now_utc()) {
        Ok(issued) => Outcome::Issued {
            validity: issued.describe(&prepared.template.validity, loaded.signer.exact_validity()),
            chain_pem: issued.chain_pem,
            ca_pem: issued.ca_pem,
        },
        Err(e) => Outcome::Failed {
            reason: Reason::VerificationFailed,
            message: tenant_detail(
                key,
                loaded,
                format!(
                    "the certificate from the {backend} signer failed verification and was not written: {e}"
                ),
                "returned a certificate that failed verification and was not written",
            ),
        },
    }
}

/// What a request is told about a signing failure. A `PKIClusterIssuer`'s remote CA is
/// the platform's: its URL and answers (which may name internal hosts, or quote the CA's
/// configuration) stay in the controller's log, and every tenant's request names only the
/// issuer and what happened. A `PKIIssuer` is the requester's own: the detail is shown.
pub fn tenant_detail(key: &IssuerKey, loaded: &LoadedIssuer, detail: String, what: &str) -> String {
    if key.kind != IssuerKind::Cluster || loaded.signer.remote_url().is_none() {
        return detail;
    }
    tracing::warn!(issuer = %key, %detail, "remote CA call failed");
    format!(
        "the {} CA of {key} {what}; the controller's log has the details, for the cluster's administrators",
        loaded.signer.backend()
    )
}

/// RFC 3339 in UTC, second precision.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
