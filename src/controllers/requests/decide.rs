//! What a request needs, from the request and what is known about its issuer. Pure.

use super::{Phase, RequestKind};
use crate::api::issuer::IssuerKey;

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

/// The action a request needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Not ours, or already finished: never write.
    Skip,
    /// Denied by an approver: record the denial.
    MarkDenied(String),
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
        Phase::Denied(why) => Decision::MarkDenied(why),
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
