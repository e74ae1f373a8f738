//! What to write, which Event to publish and when to look again, for the outcome of one
//! attempt at a request. Pure: the table tests below are the pipeline's contract.

use std::time::Duration;

use kube::runtime::events::EventType;

use super::Write;
use crate::api::duration;
use crate::api::issuer::IssuerKey;
use crate::api::reason::Reason;
use crate::issuance::remote_slots::BUSY_REQUEUE;
use crate::issuance::Outcome;

/// How soon a request waiting for its issuer looks again without news from the issuer.
pub const PENDING_RECHECK: Duration = Duration::from_secs(300);
/// How soon a request whose issuer this replica has not checked yet looks again.
pub const ISSUER_CHECK_WAIT: Duration = Duration::from_secs(2);
/// The first retry delay; it doubles per failure up to [`RETRY_CAP`].
pub const RETRY_BASE: Duration = Duration::from_secs(1);
/// The longest retry delay.
pub const RETRY_CAP: Duration = Duration::from_secs(60);

/// Where a request's retry budget stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryState {
    /// Retryable failures so far, this one included.
    pub attempts: u32,
    /// Time since the request was created (`metadata.creationTimestamp`).
    pub age: Duration,
    /// The budget (`--max-retry-duration`), counted from creation.
    pub budget: Duration,
}

impl RetryState {
    fn spent(&self) -> bool {
        self.age >= self.budget
    }
}

/// The delay before retry number `attempts` (1, 2, 4 ... seconds, at most [`RETRY_CAP`]).
pub fn retry_delay(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(20);
    RETRY_BASE.saturating_mul(1u32 << exp).min(RETRY_CAP)
}

/// When to look at the request again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Only when it changes (or its issuer becomes ready).
    AwaitChange,
    /// After this delay.
    Requeue(Duration),
}

/// An Event about the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Normal or Warning.
    pub type_: EventType,
    /// The Event reason (and metric label of failures).
    pub reason: Reason,
    /// The Event note.
    pub message: String,
}

/// What to do after one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The status write, if any.
    pub write: Option<Write>,
    /// The Event, if any.
    pub event: Option<Note>,
    /// When to look again.
    pub next: Next,
    /// The issuer refused our credentials: drop its checked state and check it now.
    pub recheck_issuer: bool,
}

/// The plan for a request that failed for good.
pub fn failed(reason: Reason, message: String) -> Plan {
    Plan {
        write: Some(Write::Failed {
            reason,
            message: message.clone(),
        }),
        event: Some(Note {
            type_: EventType::Warning,
            reason,
            message,
        }),
        next: Next::AwaitChange,
        recheck_issuer: false,
    }
}

fn give_up(what: &str, retry: RetryState) -> Plan {
    let limit = duration::format(retry.budget);
    failed(
        Reason::RetriesExhausted,
        format!("{what}; gave up after retrying for {limit}"),
    )
}

/// The plan for `outcome` of a request of issuer `key`.
pub fn plan(outcome: Outcome, key: &IssuerKey, retry: RetryState) -> Plan {
    match outcome {
        Outcome::Issued {
            chain_pem,
            ca_pem,
            validity,
        } => {
            let message = format!("Certificate issued by {key}, {validity}");
            Plan {
                write: Some(Write::Issued {
                    chain_pem,
                    ca_pem,
                    message: message.clone(),
                }),
                event: Some(Note {
                    type_: EventType::Normal,
                    reason: Reason::Issued,
                    message,
                }),
                next: Next::AwaitChange,
                recheck_issuer: false,
            }
        }
        Outcome::Failed { reason, message } => failed(reason, message),
        Outcome::Retry(what) if retry.spent() => give_up(&what, retry),
        Outcome::Retry(what) => Plan {
            write: Some(Write::Pending {
                message: format!("{what}; will retry"),
            }),
            event: Some(Note {
                type_: EventType::Warning,
                reason: Reason::RetryableError,
                message: format!("{what} (attempt {}); will retry", retry.attempts),
            }),
            next: Next::Requeue(retry_delay(retry.attempts)),
            recheck_issuer: false,
        },
        Outcome::Busy(what) if retry.spent() => give_up(&what, retry),
        Outcome::Busy(what) => Plan {
            write: Some(Write::Pending {
                message: format!("{what}; will retry"),
            }),
            event: None,
            next: Next::Requeue(BUSY_REQUEUE),
            recheck_issuer: false,
        },
        Outcome::IssuerError(what) => {
            let message = format!("{key} is not ready: {what}");
            Plan {
                write: Some(Write::Pending {
                    message: message.clone(),
                }),
                event: Some(Note {
                    type_: EventType::Warning,
                    reason: Reason::IssuerNotReady,
                    message,
                }),
                next: Next::Requeue(PENDING_RECHECK),
                recheck_issuer: true,
            }
        }
    }
}

/// The plan for a denied request.
pub fn denied(reason: Reason, message: String) -> Plan {
    Plan {
        write: Some(Write::Denied {
            reason,
            message: message.clone(),
        }),
        event: Some(Note {
            type_: EventType::Warning,
            reason,
            message,
        }),
        next: Next::AwaitChange,
        recheck_issuer: false,
    }
}

/// The plan for a request whose issuer cannot sign yet.
pub fn waiting(message: String) -> Plan {
    Plan {
        write: Some(Write::Pending { message }),
        event: None,
        next: Next::Requeue(PENDING_RECHECK),
        recheck_issuer: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::issuer::IssuerKind;

    fn key() -> IssuerKey {
        IssuerKey {
            kind: IssuerKind::Cluster,
            namespace: None,
            name: "mesh".into(),
        }
    }

    const FRESH: RetryState = RetryState {
        attempts: 1,
        age: Duration::from_secs(10),
        budget: Duration::from_secs(600),
    };
    const OLD: RetryState = RetryState {
        attempts: 7,
        age: Duration::from_secs(600),
        budget: Duration::from_secs(600),
    };

    fn pending(message: &str) -> Option<Write> {
        Some(Write::Pending {
            message: message.into(),
        })
    }

    fn warning(reason: Reason, message: &str) -> Option<Note> {
        Some(Note {
            type_: EventType::Warning,
            reason,
            message: message.into(),
        })
    }

    #[test]
    fn the_plan_table() {
        let issued = Outcome::Issued {
            chain_pem: "C".into(),
            ca_pem: "A".into(),
            validity: "valid until X (as requested)".into(),
        };
        let msg = "Certificate issued by PKIClusterIssuer mesh, valid until X (as requested)";
        let refused = Outcome::Failed {
            reason: Reason::PolicyViolation,
            message: "refused before signing: x".into(),
        };
        let unavailable = Outcome::Retry("the CA is unavailable".into());
        let busy = Outcome::Busy("4 calls in flight".into());
        let creds = Outcome::IssuerError("the CA refused our credentials".into());
        let cases: Vec<(&str, Outcome, RetryState, Plan)> = vec![
            (
                "issued",
                issued,
                FRESH,
                Plan {
                    write: Some(Write::Issued {
                        chain_pem: "C".into(),
                        ca_pem: "A".into(),
                        message: msg.into(),
                    }),
                    event: Some(Note {
                        type_: EventType::Normal,
                        reason: Reason::Issued,
                        message: msg.into(),
                    }),
                    next: Next::AwaitChange,
                    recheck_issuer: false,
                },
            ),
            (
                "refused",
                refused,
                FRESH,
                Plan {
                    write: Some(Write::Failed {
                        reason: Reason::PolicyViolation,
                        message: "refused before signing: x".into(),
                    }),
                    event: warning(Reason::PolicyViolation, "refused before signing: x"),
                    next: Next::AwaitChange,
                    recheck_issuer: false,
                },
            ),
            (
                "retry",
                unavailable.clone(),
                RetryState {
                    attempts: 3,
                    ..FRESH
                },
                Plan {
                    write: pending("the CA is unavailable; will retry"),
                    event: warning(
                        Reason::RetryableError,
                        "the CA is unavailable (attempt 3); will retry",
                    ),
                    next: Next::Requeue(Duration::from_secs(4)),
                    recheck_issuer: false,
                },
            ),
            (
                "retry budget spent",
                unavailable,
                OLD,
                Plan {
                    write: Some(Write::Failed {
                        reason: Reason::RetriesExhausted,
                        message: "the CA is unavailable; gave up after retrying for 0h10m0s".into(),
                    }),
                    event: warning(
                        Reason::RetriesExhausted,
                        "the CA is unavailable; gave up after retrying for 0h10m0s",
                    ),
                    next: Next::AwaitChange,
                    recheck_issuer: false,
                },
            ),
            (
                "busy",
                busy.clone(),
                FRESH,
                Plan {
                    write: pending("4 calls in flight; will retry"),
                    event: None,
                    next: Next::Requeue(BUSY_REQUEUE),
                    recheck_issuer: false,
                },
            ),
            (
                "busy past the budget",
                busy,
                OLD,
                failed(
                    Reason::RetriesExhausted,
                    "4 calls in flight; gave up after retrying for 0h10m0s".into(),
                ),
            ),
            (
                "issuer error: the request waits, the issuer is checked",
                creds.clone(),
                OLD,
                Plan {
                    write: pending(
                        "PKIClusterIssuer mesh is not ready: the CA refused our credentials",
                    ),
                    event: warning(
                        Reason::IssuerNotReady,
                        "PKIClusterIssuer mesh is not ready: the CA refused our credentials",
                    ),
                    next: Next::Requeue(PENDING_RECHECK),
                    recheck_issuer: true,
                },
            ),
        ];
        for (name, outcome, retry, want) in cases {
            assert_eq!(plan(outcome, &key(), retry), want, "{name}");
        }
    }

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let got: Vec<u64> = (1..=8).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(retry_delay(u32::MAX), RETRY_CAP);
    }
}
