//! What a request needs, from the request and what is known about its issuer. Pure.

use super::{Phase, RequestKind};
use crate::api::issuer::{IssuerKey, IssuerKind};
use crate::api::reason::Reason;

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
    /// Denied by an approver: record the denial.
    MarkDenied(Reason, String),
    /// Not approved yet: wait for the watch.
    AwaitApproval,
    /// The issuer cannot sign yet: record `Pending` with this message.
    Pending(String),
    /// Our own check of a Ready issuer is still running: wait without writing.
    AwaitIssuerCheck,
    /// Check, sign, verify, write.
    Sign(IssuerKey),
}

/// Decide for any request kind. `issuer` is consulted only for approved requests of ours.
pub fn decide<K: RequestKind>(req: &K, issuer: impl FnOnce(&IssuerKey) -> IssuerState) -> Decision {
    let Some(key) = req.issuer_key() else {
        return Decision::Skip;
    };
    match req.phase() {
        Phase::Finished => Decision::Skip,
        Phase::Denied(reason, why) => Decision::MarkDenied(reason, why),
        Phase::Unapproved => Decision::AwaitApproval,
        Phase::Open => match issuer(&key) {
            IssuerState::Missing => {
                Decision::Pending(format!("{key} not found: waiting for it to be created"))
            }
            IssuerState::NotReady(why) => Decision::Pending(format!("{key} is not ready: {why}")),
            IssuerState::Unchecked => Decision::AwaitIssuerCheck,
            IssuerState::Ready => Decision::Sign(key),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
