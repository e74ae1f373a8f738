//! The CertificateRequest state machine (DESIGN.md section 3, steps 1-5): which action a
//! request needs, from the request and what is known about its issuer. Pure.

use crate::api::cert_manager::CertificateRequest;
use crate::api::condition::{self, Condition};
use crate::api::issuer::{IssuerKey, IssuerKind};
use crate::api::GROUP;

/// Condition reasons cert-manager defines for `Ready`.
pub mod reason {
    /// Issued.
    pub const ISSUED: &str = "Issued";
    /// Waiting (issuer not ready, retryable error).
    pub const PENDING: &str = "Pending";
    /// Failed permanently.
    pub const FAILED: &str = "Failed";
    /// Denied by an approver.
    pub const DENIED: &str = "Denied";
}

/// What is known about the issuer a request names.
#[derive(Debug, Clone, PartialEq)]
pub enum IssuerState {
    /// No such issuer.
    Missing,
    /// The issuer exists but cannot sign; the message says why.
    NotReady(String),
    /// The issuer reports Ready for its generation, but this process has not checked it yet
    /// (it just started or just became leader): wait for the check, write nothing.
    Unchecked,
    /// Checked and ready.
    Ready,
}

/// What a request is told about its issuer's failed check. A `PKIIssuer` lives in the
/// requester's namespace, so its message is shown; a `PKIClusterIssuer`'s message may name
/// internal URLs and a remote CA's answers, so requests (of every tenant) see only its reason.
pub fn tenant_view(kind: IssuerKind, reason: Option<&str>, message: Option<&str>) -> String {
    match kind {
        IssuerKind::Namespaced => message.unwrap_or("no message").to_string(),
        IssuerKind::Cluster => format!(
            "its Ready condition is False with reason {}; the details are in the \
             PKIClusterIssuer's status, for the cluster's administrators",
            reason.unwrap_or("Unknown")
        ),
    }
}

/// The action a request needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Not ours, or already finished: never write.
    Skip,
    /// `Denied=True`: mark `Ready=False/Denied` with failureTime.
    MarkDenied(String),
    /// Not approved yet: wait for the watch.
    AwaitApproval,
    /// The issuer cannot sign yet: `Ready=False/Pending` with this message.
    Pending(String),
    /// Our own check of a Ready issuer is still running: wait without writing.
    AwaitIssuerCheck,
    /// Check, sign, verify, write.
    Sign,
}

/// The issuer a request refers to, when it refers to one of ours.
pub fn issuer_key(cr: &CertificateRequest) -> Option<IssuerKey> {
    let r = &cr.spec.issuer_ref;
    if r.group.as_deref() != Some(GROUP) {
        return None;
    }
    let kind = IssuerKind::from_ref_kind(r.kind.as_deref())?;
    Some(IssuerKey {
        kind,
        namespace: match kind {
            IssuerKind::Namespaced => Some(cr.metadata.namespace.clone()?),
            IssuerKind::Cluster => None,
        },
        name: r.name.clone(),
    })
}

/// Whether the request has reached a final state that we must not touch again.
pub fn is_finished(conditions: &[Condition]) -> bool {
    if condition::find(conditions, "InvalidRequest").is_some_and(Condition::is_true) {
        return true;
    }
    match condition::find(conditions, "Ready") {
        Some(c) if c.is_true() => true,
        Some(c) => matches!(
            c.reason.as_deref(),
            Some(reason::FAILED) | Some(reason::DENIED)
        ),
        None => false,
    }
}

/// Decide (steps 1-5). `issuer` is only consulted for approved requests of ours.
pub fn decide(cr: &CertificateRequest, issuer: impl FnOnce(&IssuerKey) -> IssuerState) -> Decision {
    let Some(key) = issuer_key(cr) else {
        return Decision::Skip;
    };
    let conditions = cr
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    if is_finished(conditions) {
        return Decision::Skip;
    }
    if let Some(denied) = condition::find(conditions, "Denied").filter(|c| c.is_true()) {
        let why = denied
            .message
            .clone()
            .or_else(|| denied.reason.clone())
            .unwrap_or_else(|| "no reason given".into());
        return Decision::MarkDenied(format!(
            "The CertificateRequest was denied by an approval controller: {why}"
        ));
    }
    if !condition::find(conditions, "Approved").is_some_and(Condition::is_true) {
        return Decision::AwaitApproval;
    }
    match issuer(&key) {
        IssuerState::Missing => {
            Decision::Pending(format!("{key} not found: waiting for it to be created"))
        }
        IssuerState::NotReady(why) => Decision::Pending(format!("{key} is not ready: {why}")),
        IssuerState::Unchecked => Decision::AwaitIssuerCheck,
        IssuerState::Ready => Decision::Sign,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::cert_manager::{CertificateRequestSpec, CertificateRequestStatus, IssuerRef};

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
    fn ready(_: &IssuerKey) -> IssuerState {
        IssuerState::Ready
    }

    #[test]
    fn foreign_requests_are_skipped() {
        let approved = [("Approved", true, "ok")];
        assert_eq!(
            decide(
                &cr(Some("cert-manager.io"), Some("Issuer"), &approved),
                ready
            ),
            Decision::Skip
        );
        assert_eq!(
            decide(&cr(None, Some("PKIIssuer"), &approved), ready),
            Decision::Skip
        );
        assert_eq!(
            decide(&cr(OURS, Some("OtherKind"), &approved), ready),
            Decision::Skip
        );
    }

    #[test]
    fn empty_kind_means_pkiissuer() {
        let key = issuer_key(&cr(OURS, None, &[])).unwrap();
        assert_eq!(key.kind, IssuerKind::Namespaced);
        assert_eq!(key.namespace.as_deref(), Some("apps"));
        let key = issuer_key(&cr(OURS, Some("PKIClusterIssuer"), &[])).unwrap();
        assert_eq!((key.kind, key.namespace), (IssuerKind::Cluster, None));
    }

    #[test]
    fn finished_requests_are_skipped() {
        for done in [
            [("Approved", true, "ok"), ("Ready", true, "Issued")],
            [("Approved", true, "ok"), ("Ready", false, "Failed")],
            [("Denied", true, "no"), ("Ready", false, "Denied")],
            [("Approved", true, "ok"), ("InvalidRequest", true, "bad")],
        ] {
            assert_eq!(
                decide(&cr(OURS, None, &done), ready),
                Decision::Skip,
                "{done:?}"
            );
        }
    }

    #[test]
    fn pending_requests_are_not_finished() {
        let c = cr(
            OURS,
            None,
            &[("Approved", true, "ok"), ("Ready", false, "Pending")],
        );
        assert_eq!(decide(&c, ready), Decision::Sign);
    }

    #[test]
    fn denied_without_approved_is_marked_denied() {
        let d = decide(&cr(OURS, None, &[("Denied", true, "PolicyDenied")]), ready);
        assert!(matches!(d, Decision::MarkDenied(m) if m.contains("denied")));
    }

    #[test]
    fn unapproved_waits() {
        assert_eq!(decide(&cr(OURS, None, &[]), ready), Decision::AwaitApproval);
        assert_eq!(
            decide(&cr(OURS, None, &[("Approved", false, "x")]), ready),
            Decision::AwaitApproval
        );
    }

    #[test]
    fn tenants_see_a_cluster_issuers_reason_never_its_message() {
        let secret = "cfssl at http://10.0.0.9:8888/internal: HTTP 500: db password wrong";
        let t = tenant_view(IssuerKind::Cluster, Some("Pending"), Some(secret));
        assert!(
            t.contains("reason Pending") && !t.contains("10.0.0.9") && !t.contains("password"),
            "{t}"
        );
        assert_eq!(
            tenant_view(IssuerKind::Namespaced, Some("Failed"), Some(secret)),
            secret
        );
    }

    #[test]
    fn issuer_missing_or_not_ready_is_pending() {
        let c = cr(OURS, None, &[("Approved", true, "ok")]);
        let d = decide(&c, |_| IssuerState::Missing);
        assert_eq!(
            d,
            Decision::Pending("PKIIssuer apps/mesh not found: waiting for it to be created".into())
        );
        let d = decide(&c, |_| IssuerState::NotReady("signer expired".into()));
        assert!(matches!(d, Decision::Pending(m) if m.contains("signer expired")));
        assert_eq!(decide(&c, ready), Decision::Sign);
        assert_eq!(
            decide(&c, |_| IssuerState::Unchecked),
            Decision::AwaitIssuerCheck
        );
    }
}
