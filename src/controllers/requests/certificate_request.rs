//! cert-manager CertificateRequests on the request pipeline.

use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::{Phase, RequestKind, Write};
use crate::api::cert_manager::CertificateRequest;
use crate::api::condition::{self, Condition};
use crate::api::duration;
use crate::api::issuer::{IssuerKey, IssuerKind};
use crate::api::reason::Reason;
use crate::api::GROUP;
use crate::issuance::RequestInput;
use crate::pki::RequestContext;

/// The namespace and name of a ServiceAccount username `system:serviceaccount:<ns>:<sa>`.
pub fn service_account(username: Option<&str>) -> Option<(&str, &str)> {
    let rest = username?.strip_prefix("system:serviceaccount:")?;
    let (ns, sa) = rest.split_once(':')?;
    (!ns.is_empty() && !sa.is_empty() && !sa.contains(':')).then_some((ns, sa))
}

/// Whether the request has reached a final state that we must not touch again.
pub fn is_finished(conditions: &[Condition]) -> bool {
    if condition::find(conditions, "InvalidRequest").is_some_and(Condition::is_true) {
        return true;
    }
    match condition::find(conditions, "Ready") {
        Some(c) if c.is_true() => true,
        Some(c) => matches!(c.reason.as_deref(), Some("Failed") | Some("Denied")),
        None => false,
    }
}

fn conditions(cr: &CertificateRequest) -> &[Condition] {
    cr.status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[])
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or(jiff::Timestamp::now())
        .to_string()
}

impl RequestKind for CertificateRequest {
    const KIND: &'static str = "CertificateRequest";

    fn api(client: Client, obj: &Self) -> Api<Self> {
        Api::namespaced(client, &obj.namespace().unwrap_or_default())
    }

    /// An empty kind means `PKIIssuer`; other groups are not ours.
    fn issuer_key(&self) -> Option<IssuerKey> {
        let r = &self.spec.issuer_ref;
        if r.group.as_deref() != Some(GROUP) {
            return None;
        }
        let kind = IssuerKind::from_ref_kind(r.kind.as_deref())?;
        Some(IssuerKey {
            kind,
            namespace: match kind {
                IssuerKind::Namespaced => Some(self.metadata.namespace.clone()?),
                IssuerKind::Cluster => None,
            },
            name: r.name.clone(),
        })
    }

    fn phase(&self) -> Phase {
        let conditions = conditions(self);
        if is_finished(conditions)
            || self
                .status
                .as_ref()
                .is_some_and(|s| s.certificate.is_some())
        {
            return Phase::Finished;
        }
        if let Some(denied) = condition::find(conditions, "Denied").filter(|c| c.is_true()) {
            let why = denied
                .message
                .clone()
                .or_else(|| denied.reason.clone())
                .unwrap_or_else(|| "no reason given".into());
            return Phase::Denied(
                Reason::Denied,
                format!("The CertificateRequest was denied by an approval controller: {why}"),
            );
        }
        if !condition::find(conditions, "Approved").is_some_and(Condition::is_true) {
            return Phase::Unapproved;
        }
        Phase::Open
    }

    fn input(&self, _key: &IssuerKey) -> Result<RequestInput, String> {
        let duration = self
            .spec
            .duration
            .as_deref()
            .map(duration::parse)
            .transpose()
            .map_err(|e| format!("spec.duration: {e}"))?;
        let namespace = self.namespace();
        let service_account = service_account(self.spec.username.as_deref())
            .filter(|(ns, _)| Some(*ns) == namespace.as_deref())
            .map(|(_, sa)| sa.to_string());
        Ok(RequestInput {
            csr: self.spec.request.clone(),
            duration,
            is_ca: self.spec.is_ca.unwrap_or(false),
            usages: self.spec.usages.clone().unwrap_or_default(),
            context: RequestContext {
                namespace,
                service_account,
            },
            pod: None,
        })
    }

    fn status_patch(&self, write: &Write) -> Option<serde_json::Value> {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        let (ready, failure_time) = match write {
            Write::Issued { message, .. } => (
                Condition::new("Ready", true, Reason::Issued.as_str(), message.clone()),
                false,
            ),
            Write::Failed { message, .. } => (
                Condition::new("Ready", false, Reason::Failed.as_str(), message.clone()),
                true,
            ),
            Write::Denied { reason, message } => (
                Condition::new("Ready", false, reason.as_str(), message.clone()),
                true,
            ),
            Write::Pending { message } => {
                let already = condition::find(conditions(self), "Ready").is_some_and(|c| {
                    !c.is_true()
                        && c.reason.as_deref() == Some(Reason::Pending.as_str())
                        && c.message.as_deref() == Some(message.as_str())
                });
                if already {
                    return None;
                }
                (
                    Condition::new("Ready", false, Reason::Pending.as_str(), message.clone()),
                    false,
                )
            }
        };
        let mut status = json!({ "conditions": [condition::merge(conditions(self), ready)] });
        if let Write::Issued {
            chain_pem, ca_pem, ..
        } = write
        {
            status["certificate"] = json!(b64(chain_pem));
            status["ca"] = json!(b64(ca_pem));
        }
        if failure_time {
            status["failureTime"] = json!(now_rfc3339());
        }
        Some(json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "CertificateRequest",
            "status": status,
        }))
    }

    fn slim(&mut self) {
        crate::controllers::slim::certificate_request(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::cert_manager::{CertificateRequestSpec, CertificateRequestStatus, IssuerRef};
    use crate::controllers::requests::decide::{decide, Decision, IssuerState};

    fn cr(
        group: Option<&str>,
        kind: Option<&str>,
        conds: &[(&str, bool, &str)],
    ) -> CertificateRequest {
        let mut cr = CertificateRequest::new(
            "req",
            CertificateRequestSpec {
                issuer_ref: IssuerRef {
                    name: "mesh".into(),
                    kind: kind.map(Into::into),
                    group: group.map(Into::into),
                },
                ..Default::default()
            },
        );
        cr.metadata.namespace = Some("apps".into());
        cr.status = Some(CertificateRequestStatus {
            conditions: conds
                .iter()
                .map(|(t, s, r)| Condition::new(t, *s, r, "m"))
                .collect(),
            ..Default::default()
        });
        cr
    }

    const OURS: Option<&str> = Some("pki-issuer.io");
    const APPROVED: &[(&str, bool, &str)] = &[("Approved", true, "ok")];
    fn ready(_: &IssuerKey) -> IssuerState {
        IssuerState::Ready
    }

    #[test]
    fn foreign_requests_are_skipped() {
        for (group, kind) in [
            (Some("cert-manager.io"), Some("Issuer")),
            (None, Some("PKIIssuer")),
            (OURS, Some("OtherKind")),
        ] {
            assert_eq!(decide(&cr(group, kind, APPROVED), ready), Decision::Skip);
        }
    }

    #[test]
    fn empty_kind_means_pkiissuer() {
        let key = cr(OURS, None, &[]).issuer_key().unwrap();
        assert_eq!(
            (key.kind, key.namespace.as_deref()),
            (IssuerKind::Namespaced, Some("apps"))
        );
        let key = cr(OURS, Some("PKIClusterIssuer"), &[])
            .issuer_key()
            .unwrap();
        assert_eq!((key.kind, key.namespace), (IssuerKind::Cluster, None));
    }

    #[test]
    fn phases() {
        for done in [
            [("Approved", true, "ok"), ("Ready", true, "Issued")],
            [("Approved", true, "ok"), ("Ready", false, "Failed")],
            [("Denied", true, "no"), ("Ready", false, "Denied")],
            [("Approved", true, "ok"), ("InvalidRequest", true, "bad")],
        ] {
            assert_eq!(cr(OURS, None, &done).phase(), Phase::Finished, "{done:?}");
        }
        let pending = [("Approved", true, "ok"), ("Ready", false, "Pending")];
        assert_eq!(cr(OURS, None, &pending).phase(), Phase::Open);
        assert!(
            matches!(cr(OURS, None, &[("Denied", true, "PolicyDenied")]).phase(), Phase::Denied(Reason::Denied, m) if m.contains("denied"))
        );
        assert_eq!(cr(OURS, None, &[]).phase(), Phase::Unapproved);
        assert_eq!(
            cr(OURS, None, &[("Approved", false, "x")]).phase(),
            Phase::Unapproved
        );
        let mut signed = cr(OURS, None, APPROVED);
        signed.status.as_mut().unwrap().certificate = Some(b"x".to_vec());
        assert_eq!(
            signed.phase(),
            Phase::Finished,
            "a written certificate finishes it"
        );
    }

    #[test]
    fn issuer_states() {
        let c = cr(OURS, None, APPROVED);
        assert_eq!(
            decide(&c, |_| IssuerState::Missing),
            Decision::Pending("PKIIssuer apps/mesh not found: waiting for it to be created".into())
        );
        assert!(
            matches!(decide(&c, |_| IssuerState::NotReady("signer expired".into())), Decision::Pending(m) if m.contains("signer expired"))
        );
        assert!(matches!(decide(&c, ready), Decision::Sign(_)));
        assert_eq!(
            decide(&c, |_| IssuerState::Unchecked),
            Decision::AwaitIssuerCheck
        );
    }

    #[test]
    fn status_patches() {
        let c = cr(
            OURS,
            None,
            &[("Approved", true, "ok"), ("Ready", false, "Pending")],
        );
        let issued = c
            .status_patch(&Write::Issued {
                chain_pem: "C".into(),
                ca_pem: "A".into(),
                message: "done".into(),
            })
            .unwrap();
        assert_eq!(issued["status"]["certificate"], "Qw==");
        assert_eq!(issued["status"]["ca"], "QQ==");
        assert!(issued["status"].get("failureTime").is_none());
        let failed = c
            .status_patch(&Write::Failed {
                reason: Reason::PolicyViolation,
                message: "no".into(),
            })
            .unwrap();
        let ready = failed["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()
            .clone();
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("Failed"))
        );
        assert!(failed["status"]["failureTime"].is_string());
        assert!(
            c.status_patch(&Write::Pending {
                message: "m".into()
            })
            .is_none(),
            "already says so"
        );
        assert!(c
            .status_patch(&Write::Pending {
                message: "other".into()
            })
            .is_some());
    }

    #[test]
    fn parses_service_account_usernames() {
        assert_eq!(
            service_account(Some("system:serviceaccount:apps:web")),
            Some(("apps", "web"))
        );
        assert_eq!(service_account(Some("system:serviceaccount:apps:")), None);
        assert_eq!(service_account(Some("alice")), None);
        assert_eq!(service_account(None), None);
    }
}
