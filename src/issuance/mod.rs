//! The issuance pipeline both request controllers share: check a request before signing
//! ([`prepare`]), sign with the issuer's backend (bounded per issuer for remote CAs,
//! [`remote_slots`]), check the result ([`check`]), reduced to one [`Outcome`]. Domain
//! logic: it knows the checked issuer ([`LoadedIssuer`]) but nothing of Kubernetes objects.

pub mod check;
pub mod prepare;
pub mod remote_slots;

pub use check::{describe_validity, policy_limit, verify_issued, Issued};
pub use prepare::{prepare, Prepared, RequestInput};

use self::remote_slots::RemoteSlots;
use crate::api::issuer::{IssuerKey, IssuerKind};
use crate::signers::load::LoadedIssuer;
use crate::signers::SignRequest;

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
        /// `PolicyViolation`, `SigningFailed` or `VerificationFailed`.
        reason: &'static str,
        /// Names the offending value.
        message: String,
    },
    /// Retryable failure (remote CA unavailable); the message says what failed.
    Retry(String),
    /// The issuer's remote CA calls are all in flight: try again shortly (no backoff).
    Busy(String),
}

/// Steps 6-8 of the request flow for any request kind. A remote backend's call needs one of
/// the issuer's `slots`.
pub async fn issue(
    input: &RequestInput<'_>,
    loaded: &LoadedIssuer,
    slots: &RemoteSlots,
    key: &IssuerKey,
) -> Outcome {
    let prepared = match prepare(input, loaded, time::OffsetDateTime::now_utc()) {
        Ok(p) => p,
        Err(e) => {
            return Outcome::Failed {
                reason: "PolicyViolation",
                message: format!("refused before signing: {e}"),
            }
        }
    };
    let backend = loaded.signer.backend();
    let _slot = if loaded.signer.is_remote() {
        match slots.try_acquire(key) {
            Some(slot) => Some(slot),
            None => {
                return Outcome::Busy(format!(
                    "waiting for the {backend} CA: {} calls of {key} are already in flight",
                    slots.per_issuer()
                ))
            }
        }
    } else {
        None
    };
    let request = SignRequest {
        csr: &prepared.csr,
        template: &prepared.template,
    };
    let leaf = match loaded.signer.sign(request).await {
        Ok(leaf) => leaf,
        Err(e) if e.is_retryable() => {
            let detail = format!("signing with the {backend} signer: {e}");
            return Outcome::Retry(tenant_detail(key, loaded, detail, "is unavailable"));
        }
        Err(e) => {
            let detail = format!("the {backend} signer failed: {e}");
            return Outcome::Failed {
                reason: "SigningFailed",
                message: tenant_detail(key, loaded, detail, "refused the request"),
            };
        }
    };
    match verify_issued(&leaf, &prepared, loaded, time::OffsetDateTime::now_utc()) {
        Ok(issued) => Outcome::Issued {
            validity: issued.describe(&prepared.template.validity, loaded.signer.exact_validity()),
            chain_pem: issued.chain_pem,
            ca_pem: issued.ca_pem,
        },
        Err(e) => Outcome::Failed {
            reason: "VerificationFailed",
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
    if key.kind != IssuerKind::Cluster || !loaded.signer.is_remote() {
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
