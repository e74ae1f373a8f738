//! What the CertificateRequest and CertificateSigningRequest controllers share: the signing
//! pipeline (check, sign, verify) reduced to one outcome, and the re-queue of waiting
//! requests when their issuer becomes ready.

use std::fmt::Debug;
use std::sync::Arc;

use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::Resource;
use serde::de::DeserializeOwned;

use super::certificate_request::issue::{prepare, verify_issued, RequestInput};
use super::named_ref;
use super::remote_slots::RemoteSlots;
use crate::api::issuer::IssuerKey;
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
            return Outcome::Retry(format!("signing with the {backend} signer: {e}"))
        }
        Err(e) => {
            return Outcome::Failed {
                reason: "SigningFailed",
                message: format!("the {backend} signer failed: {e}"),
            }
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
            message: format!(
                "the certificate from the {backend} signer failed verification and was not written: {e}"
            ),
        },
    }
}

/// The serial number (hex) of the first certificate of a PEM chain, for logs; `?` when it
/// does not parse.
pub fn leaf_serial(chain_pem: &str) -> String {
    pem::parse(chain_pem)
        .ok()
        .and_then(|p| crate::pki::cert_info(p.contents()).ok())
        .map(|i| i.serial_hex)
        .unwrap_or_else(|| "?".into())
}

/// Re-queue every stored request that `waits_for` an issuer announced on `ready_issuers`.
pub fn requeue_on_ready<K>(
    ctl: Controller<DeserializeGuard<K>>,
    ready_issuers: UnboundedReceiver<IssuerKey>,
    waits_for: impl Fn(&K, &IssuerKey) -> bool + Send + Sync + 'static,
) -> Controller<DeserializeGuard<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let store = ctl.store();
    let waits_for = Arc::new(waits_for);
    let requeue = ready_issuers.flat_map(move |key| {
        let refs: Vec<ObjectRef<DeserializeGuard<K>>> = store
            .state()
            .iter()
            .filter(|g| g.0.as_ref().is_ok_and(|obj| waits_for(obj, &key)))
            .filter_map(|g| named_ref(g.as_ref()))
            .collect();
        futures::stream::iter(refs)
    });
    ctl.reconcile_on(requeue)
}
