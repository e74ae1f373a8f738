//! Kubernetes CertificateSigningRequests (`certificates.k8s.io/v1`) on the request pipeline:
//! requests whose signerName names one of our issuers. A request naming a namespaced issuer is
//! signed only if its requester may reference that issuer (see
//! [`crate::controllers::signer_access`]).

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::certificate_request::service_account;
use super::{Access, Phase, RequestKind, Write};
use crate::api::duration;
use crate::api::issuer::{IssuerKey, IssuerKind};
use crate::controllers::signer_access::{self, Needed};
use crate::controllers::Context;
use crate::issuance::RequestInput;
use crate::pki::RequestContext;

/// Annotation cert-manager uses to carry a requested duration on a CSR.
pub const DURATION_ANNOTATION: &str = "experimental.cert-manager.io/request-duration";
/// Annotation cert-manager uses to request a CA certificate on a CSR.
pub const IS_CA_ANNOTATION: &str = "experimental.cert-manager.io/request-is-ca";

/// Whether the CSR has condition `type_` set to True.
pub fn has_condition(csr: &CertificateSigningRequest, type_: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// The requested lifetime: the cert-manager annotation, else `spec.expirationSeconds`.
pub fn requested_duration(csr: &CertificateSigningRequest) -> Result<Option<Duration>, String> {
    if let Some(d) = csr.annotations().get(DURATION_ANNOTATION) {
        return duration::parse(d)
            .map(Some)
            .map_err(|e| format!("annotation {DURATION_ANNOTATION}: {e}"));
    }
    match csr.spec.expiration_seconds {
        Some(s) if s > 0 => Ok(Some(Duration::from_secs(s as u64))),
        Some(s) => Err(format!("spec.expirationSeconds must be positive, got {s}")),
        None => Ok(None),
    }
}

/// `{namespace}` and `{serviceAccount}` for a CSR: the namespaced issuer's namespace, or
/// for cluster issuers the requesting ServiceAccount's namespace.
pub fn policy_context(csr: &CertificateSigningRequest, key: &IssuerKey) -> RequestContext {
    let sa = service_account(csr.spec.username.as_deref());
    match key.kind {
        IssuerKind::Namespaced => RequestContext {
            namespace: key.namespace.clone(),
            service_account: sa
                .filter(|(ns, _)| Some(*ns) == key.namespace.as_deref())
                .map(|(_, n)| n.to_string()),
        },
        IssuerKind::Cluster => RequestContext {
            namespace: sa.map(|(ns, _)| ns.to_string()),
            service_account: sa.map(|(_, n)| n.to_string()),
        },
    }
}

fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("HTTP {} {}: {}", s.code, s.reason, s.message),
        other => other.to_string(),
    }
}

impl RequestKind for CertificateSigningRequest {
    const KIND: &'static str = "CertificateSigningRequest";

    fn api(client: Client, _obj: &Self) -> Api<Self> {
        Api::all(client)
    }

    fn issuer_key(&self) -> Option<IssuerKey> {
        IssuerKey::from_signer_name(&self.spec.signer_name)
    }

    /// Signed, denied or failed CSRs are finished (an approver's denial is its own record).
    fn phase(&self) -> Phase {
        let signed = self
            .status
            .as_ref()
            .and_then(|s| s.certificate.as_ref())
            .is_some_and(|c| !c.0.is_empty());
        if signed || has_condition(self, "Denied") || has_condition(self, "Failed") {
            Phase::Finished
        } else if has_condition(self, "Approved") {
            Phase::Open
        } else {
            Phase::Unapproved
        }
    }

    fn input(&self, key: &IssuerKey) -> Result<RequestInput, String> {
        Ok(RequestInput {
            csr: self.spec.request.0.clone(),
            duration: requested_duration(self)?,
            is_ca: self.annotations().get(IS_CA_ANNOTATION).map(String::as_str) == Some("true"),
            usages: self.spec.usages.clone().unwrap_or_default(),
            context: policy_context(self, key),
            pod: None,
        })
    }

    fn status_patch(&self, write: &Write) -> Option<serde_json::Value> {
        use base64::Engine;
        let status = match write {
            Write::Issued { chain_pem, .. } => json!({
                "certificate": base64::engine::general_purpose::STANDARD.encode(chain_pem.as_bytes()),
            }),
            Write::Failed { reason, message } => {
                let now = jiff::Timestamp::now()
                    .round(jiff::Unit::Second)
                    .unwrap_or(jiff::Timestamp::now())
                    .to_string();
                json!({"conditions": [{
                    "type": "Failed", "status": "True", "reason": reason.as_str(), "message": message,
                    "lastUpdateTime": now, "lastTransitionTime": now,
                }]})
            }
            Write::Denied { .. } | Write::Pending { .. } => return None,
        };
        Some(json!({
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "status": status,
        }))
    }

    fn access<'a>(&'a self, ctx: &'a Context, key: &'a IssuerKey) -> BoxFuture<'a, Access> {
        Box::pin(async move {
            match signer_access::reviews(self, key) {
                Needed::Nothing => Access::Allowed,
                Needed::Refuse(message) => Access::Denied(message),
                Needed::Review(reviews) => {
                    match signer_access::check(&ctx.client, &reviews).await {
                        Ok(signer_access::Access::Allowed) => Access::Allowed,
                        Ok(signer_access::Access::Denied(message)) => Access::Denied(message),
                        Err(e) => Access::Unknown(format!(
                            "checking that {} may reference {key}: SubjectAccessReview failed: {}",
                            reviews.requester,
                            api_error(&e)
                        )),
                    }
                }
            }
        })
    }

    fn slim(&mut self) {
        crate::controllers::slim::certificate_signing_request(self);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::reason::Reason;
    use crate::controllers::requests::decide::{decide, Decision, IssuerState};
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestCondition, CertificateSigningRequestSpec,
        CertificateSigningRequestStatus,
    };

    /// A CSR for `signer` with the conditions `conds` set True (shared with the slim tests).
    pub(crate) fn csr(signer: &str, conds: &[&str]) -> CertificateSigningRequest {
        CertificateSigningRequest {
            spec: CertificateSigningRequestSpec {
                signer_name: signer.into(),
                ..Default::default()
            },
            status: Some(CertificateSigningRequestStatus {
                conditions: Some(
                    conds
                        .iter()
                        .map(|t| CertificateSigningRequestCondition {
                            type_: t.to_string(),
                            status: "True".into(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ready(_: &IssuerKey) -> IssuerState {
        IssuerState::Ready
    }

    #[test]
    fn only_approved_unsigned_requests_of_ours_are_signed() {
        let ours = "pkiclusterissuers.pki-issuer.io/mesh";
        assert!(matches!(
            decide(&csr(ours, &["Approved"]), ready),
            Decision::Sign(_)
        ));
        assert_eq!(decide(&csr(ours, &[]), ready), Decision::AwaitApproval);
        assert_eq!(decide(&csr(ours, &["Denied"]), ready), Decision::Skip);
        assert_eq!(
            decide(&csr(ours, &["Approved", "Failed"]), ready),
            Decision::Skip
        );
        assert_eq!(
            decide(&csr("example.com/x", &["Approved"]), ready),
            Decision::Skip
        );
        let mut signed = csr(ours, &["Approved"]);
        signed.status.as_mut().unwrap().certificate = Some(k8s_openapi::ByteString(b"x".to_vec()));
        assert_eq!(decide(&signed, ready), Decision::Skip);
        assert!(matches!(
            decide(&csr(ours, &["Approved"]), |_| IssuerState::Missing),
            Decision::Pending(_)
        ));
    }

    #[test]
    fn a_csr_records_only_certificates_and_failures() {
        let c = csr("pkiclusterissuers.pki-issuer.io/mesh", &["Approved"]);
        let issued = c
            .status_patch(&Write::Issued {
                chain_pem: "C".into(),
                ca_pem: "A".into(),
                message: "m".into(),
            })
            .unwrap();
        assert_eq!(issued["status"], json!({"certificate": "Qw=="}));
        let failed = c
            .status_patch(&Write::Failed {
                reason: Reason::PolicyViolation,
                message: "no".into(),
            })
            .unwrap();
        assert_eq!(
            failed["status"]["conditions"][0]["reason"],
            "PolicyViolation"
        );
        assert!(c
            .status_patch(&Write::Pending {
                message: "m".into()
            })
            .is_none());
        assert!(c
            .status_patch(&Write::Denied {
                reason: Reason::Denied,
                message: "m".into()
            })
            .is_none());
    }

    #[test]
    fn duration_comes_from_annotation_then_expiration_seconds() {
        let mut c = csr("x/y", &[]);
        assert_eq!(requested_duration(&c), Ok(None));
        c.spec.expiration_seconds = Some(3600);
        assert_eq!(requested_duration(&c), Ok(Some(Duration::from_secs(3600))));
        c.annotations_mut()
            .insert(DURATION_ANNOTATION.into(), "2h".into());
        assert_eq!(requested_duration(&c), Ok(Some(Duration::from_secs(7200))));
        c.annotations_mut()
            .insert(DURATION_ANNOTATION.into(), "two hours".into());
        assert!(requested_duration(&c).is_err());
    }

    #[test]
    fn policy_namespace_follows_the_issuer_scope() {
        let mut c = csr("x/y", &[]);
        c.spec.username = Some("system:serviceaccount:istio-system:istiod".into());
        let cluster = IssuerKey::from_signer_name("pkiclusterissuers.pki-issuer.io/mesh").unwrap();
        let ctx = policy_context(&c, &cluster);
        assert_eq!(ctx.namespace.as_deref(), Some("istio-system"));
        assert_eq!(ctx.service_account.as_deref(), Some("istiod"));
        let namespaced = IssuerKey::from_signer_name("pkiissuers.pki-issuer.io/apps.ca").unwrap();
        let ctx = policy_context(&c, &namespaced);
        assert_eq!(ctx.namespace.as_deref(), Some("apps"));
        assert_eq!(
            ctx.service_account, None,
            "an SA of another namespace is not this namespace's"
        );
        c.spec.username = Some("alice".into());
        assert_eq!(policy_context(&c, &cluster).namespace, None);
    }
}
