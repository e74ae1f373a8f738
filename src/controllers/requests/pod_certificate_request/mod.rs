//! Kubernetes PodCertificateRequests (`certificates.k8s.io/v1beta1`, Kubernetes 1.35+) on the
//! request pipeline: requests whose signerName names one of our issuers, in the same two forms
//! as CSRs (`pkiclusterissuers.pki-issuer.io/<name>`, `pkiissuers.pki-issuer.io/<ns>.<name>`
//! for pods of namespace `<ns>` only). The kubelet creates them; NodeRestriction has checked
//! the pod, ServiceAccount and node they name, so there is no approval step. The names come
//! from the issuer's `spec.podCertificates` ([`crate::issuance::pod`]).

use std::time::Duration;

use k8s_openapi::api::certificates::v1beta1::PodCertificateRequest;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::{Phase, RequestKind, Write};
use crate::api::issuer::{IssuerKey, IssuerKind};
use crate::api::reason::Reason;
use crate::issuance::pod::{self, PodKey, PodRequest, MIN_LIFETIME};
use crate::issuance::{rfc3339, RequestInput};
use crate::pki::RequestContext;

/// The API server's default `spec.maxExpirationSeconds`.
pub const DEFAULT_MAX_EXPIRATION_SECONDS: i32 = 86400;
/// The usages of every pod certificate (mutual TLS).
pub const POD_USAGES: [&str; 3] = ["digital signature", "server auth", "client auth"];

fn has_terminal_condition(pcr: &PodCertificateRequest) -> bool {
    pcr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| matches!(c.type_.as_str(), "Issued" | "Denied" | "Failed"))
        })
}

/// The pod's key in whichever form the request carries.
pub fn pod_key(pcr: &PodCertificateRequest) -> Result<PodKey, String> {
    let s = &pcr.spec;
    let stub = &s.stub_pkc_s10_request.0;
    let pkix = s
        .pkix_public_key
        .as_ref()
        .map(|b| &b.0)
        .filter(|b| !b.is_empty());
    let proof = s
        .proof_of_possession
        .as_ref()
        .map(|b| &b.0)
        .filter(|b| !b.is_empty());
    match (stub.is_empty(), pkix, proof) {
        (false, None, None) => Ok(PodKey::StubCsr(stub.clone())),
        (true, Some(spki), Some(proof)) => Ok(PodKey::Pkix {
            spki: spki.clone(),
            proof: proof.clone(),
        }),
        _ => Err(
            "exactly one of stubPKCS10Request or (pkixPublicKey and proofOfPossession) must be set"
                .into(),
        ),
    }
}

/// Why the request is denied from its own fields, before any issuer is consulted: the
/// condition reason and message.
pub fn denial(pcr: &PodCertificateRequest) -> Option<(Reason, String)> {
    let ns = pcr.namespace().unwrap_or_default();
    if let Some(key) = IssuerKey::from_signer_name(&pcr.spec.signer_name) {
        if key.kind == IssuerKind::Namespaced && key.namespace.as_deref() != Some(ns.as_str()) {
            return Some((
                Reason::SignerNamespaceMismatch,
                format!(
                    "signer {} is the PKIIssuer {key}, which signs only for pods in namespace {}; this pod is in namespace {ns}",
                    pcr.spec.signer_name,
                    key.namespace.as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    if let Some(a) = pcr
        .spec
        .unverified_user_annotations
        .as_ref()
        .filter(|a| !a.is_empty())
    {
        let keys: Vec<&str> = a.keys().take(5).map(String::as_str).collect();
        return Some((
            Reason::InvalidUnverifiedUserAnnotations,
            format!(
                "pki-issuer recognises no unverifiedUserAnnotations; this request has {}",
                keys.join(", ")
            ),
        ));
    }
    match pod_key(pcr) {
        Err(e) => Some((Reason::InvalidPublicKey, e)),
        Ok(key) => pod::supported_key(&key)
            .err()
            .map(|e| (Reason::UnsupportedKeyType, e)),
    }
}

/// The request's `maxExpirationSeconds` (the API server's default when unset).
pub fn max_lifetime(pcr: &PodCertificateRequest) -> Result<Duration, String> {
    let s = pcr
        .spec
        .max_expiration_seconds
        .unwrap_or(DEFAULT_MAX_EXPIRATION_SECONDS);
    u64::try_from(s)
        .ok()
        .map(Duration::from_secs)
        .filter(|d| *d >= MIN_LIFETIME)
        .ok_or_else(|| format!("spec.maxExpirationSeconds must be at least 3600, got {s}"))
}

fn condition(type_: &str, reason: &str, message: &str) -> serde_json::Value {
    let now = rfc3339(time::OffsetDateTime::now_utc());
    // The API's limit on a condition message.
    let message: String = message.chars().take(4096).collect();
    json!({"type": type_, "status": "True", "reason": reason, "message": message,
           "lastTransitionTime": now})
}

/// The status of an issued certificate: the chain, the leaf's own notBefore and notAfter and
/// the refresh point; a leaf the API server would refuse (lifetime under 1 h or over
/// `maxExpirationSeconds`) is recorded as Failed instead.
fn issued_status(
    pcr: &PodCertificateRequest,
    chain_pem: &str,
    message: &str,
) -> Result<serde_json::Value, String> {
    let leaf = pem::parse(chain_pem).map_err(|e| format!("the issued chain: {e}"))?;
    let info = crate::pki::cert_info(leaf.contents()).map_err(|e| e.to_string())?;
    let lifetime = info.not_after - info.not_before;
    let max = max_lifetime(pcr)?;
    let (min, max) = (
        time::Duration::try_from(MIN_LIFETIME).unwrap_or_default(),
        time::Duration::try_from(max).unwrap_or(time::Duration::MAX),
    );
    if lifetime < min || lifetime > max {
        return Err(format!(
            "the issued certificate is valid for {}s, outside [3600, maxExpirationSeconds {}]; it was not written",
            lifetime.whole_seconds(),
            max.whole_seconds()
        ));
    }
    Ok(json!({
        "conditions": [condition("Issued", Reason::Issued.as_str(), message)],
        "certificateChain": chain_pem,
        "notBefore": rfc3339(info.not_before),
        "notAfter": rfc3339(info.not_after),
        "beginRefreshAt": rfc3339(pod::begin_refresh_at(info.not_before, info.not_after)),
    }))
}

/// Whether the API server serves PodCertificateRequests (Kubernetes 1.35+ with
/// `certificates.k8s.io/v1beta1` and the PodCertificateRequest feature on). Asked once at start.
pub async fn served(client: &Client) -> bool {
    match client
        .list_api_group_resources("certificates.k8s.io/v1beta1")
        .await
    {
        Ok(list) => list
            .resources
            .iter()
            .any(|r| r.name == "podcertificaterequests"),
        Err(e) => {
            tracing::info!(error = %e, "certificates.k8s.io/v1beta1 is not served: PodCertificateRequests are not signed");
            false
        }
    }
}

impl RequestKind for PodCertificateRequest {
    const KIND: &'static str = "PodCertificateRequest";

    fn api(client: Client, obj: &Self) -> Api<Self> {
        Api::namespaced(client, &obj.namespace().unwrap_or_default())
    }

    fn issuer_key(&self) -> Option<IssuerKey> {
        IssuerKey::from_signer_name(&self.spec.signer_name)
    }

    /// A PCR needs no approval; it is finished once it has one of the three terminal
    /// conditions, and denied at once for what its own fields show.
    fn phase(&self) -> Phase {
        if has_terminal_condition(self) {
            Phase::Finished
        } else if let Some((reason, message)) = denial(self) {
            Phase::Denied(reason, message)
        } else {
            Phase::Open
        }
    }

    fn input(&self, _key: &IssuerKey) -> Result<RequestInput, String> {
        let max = max_lifetime(self)?;
        let key = pod_key(self)?;
        let namespace = self.namespace().unwrap_or_default();
        let service_account = self.spec.service_account_name.clone();
        Ok(RequestInput {
            csr: match &key {
                PodKey::StubCsr(der) => der.clone(),
                PodKey::Pkix { .. } => Vec::new(),
            },
            duration: Some(max),
            is_ca: false,
            usages: POD_USAGES.iter().map(|u| u.to_string()).collect(),
            context: RequestContext {
                namespace: Some(namespace.clone()),
                service_account: Some(service_account.clone()),
            },
            pod: Some(PodRequest {
                namespace,
                service_account,
                pod_uid: self.spec.pod_uid.clone(),
                key,
                max_lifetime: max,
            }),
        })
    }

    fn status_patch(&self, write: &Write) -> Option<serde_json::Value> {
        let status = match write {
            Write::Issued {
                chain_pem, message, ..
            } => issued_status(self, chain_pem, message).unwrap_or_else(|e| {
                json!({"conditions": [condition("Failed", Reason::VerificationFailed.as_str(), &e)]})
            }),
            // Refusals of the policy or of the key are the signer's denial; the rest failures.
            Write::Failed { reason, message } => {
                let type_ = match reason {
                    Reason::PolicyViolation | Reason::UnsupportedKeyType => "Denied",
                    _ => "Failed",
                };
                json!({"conditions": [condition(type_, reason.as_str(), message)]})
            }
            Write::Denied { reason, message } => {
                json!({"conditions": [condition("Denied", reason.as_str(), message)]})
            }
            // A PCR has no waiting condition: its status changes only to a terminal one.
            Write::Pending { .. } => return None,
        };
        Some(json!({
            "apiVersion": "certificates.k8s.io/v1beta1",
            "kind": "PodCertificateRequest",
            "status": status,
        }))
    }

    fn slim(&mut self) {
        let meta = &mut self.metadata;
        meta.managed_fields = None;
        meta.labels = None;
        meta.owner_references = None;
        meta.annotations = None;
        if self.issuer_key().is_none() || has_terminal_condition(self) {
            let s = &mut self.spec;
            s.stub_pkc_s10_request.0.clear();
            s.pkix_public_key = None;
            s.proof_of_possession = None;
            s.unverified_user_annotations = None;
            if let Some(st) = self.status.as_mut() {
                st.certificate_chain = None;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
