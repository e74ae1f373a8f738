//! One request pipeline for every request kind (see `docs/design.md`, "Request flow").
//!
//! A request kind is a thin adapter ([`RequestKind`]): which issuer it names, where it is in
//! its life ([`Phase`]), its signing input, how its status records an outcome, and who must be
//! allowed to use the issuer. Everything else is shared: the pure [`decide::decide`] (what the
//! request needs), the issuance ([`crate::issuance`]), the pure [`plan::plan`] (what to write,
//! which Event, when to look again), one [`memory::RequestMemory`] per request UID, and one
//! API layer ([`pipeline`]).

pub mod certificate_request;
pub mod certificate_signing_request;
pub mod decide;
pub mod issuers;
pub mod memory;
pub mod pipeline;
pub mod plan;
pub mod pod_certificate_request;
mod write;

#[cfg(test)]
mod tests;

use std::fmt::Debug;

use futures::future::BoxFuture;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::Context;
use crate::api::issuer::IssuerKey;
use crate::api::reason::Reason;
use crate::issuance::RequestInput;

/// Where a request is in its life, from its own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Finished (issued, failed, denied and recorded): never touched again.
    Finished,
    /// Denied (by an approver, or for what the request's own fields show), not yet recorded by
    /// us: this reason and message are recorded.
    Denied(Reason, String),
    /// Waiting for an approver.
    Unapproved,
    /// Approved and unsigned.
    Open,
}

/// What a status write records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// The certificate and the trust anchors.
    Issued {
        /// Leaf then intermediates, PEM.
        chain_pem: String,
        /// Trust anchors, PEM.
        ca_pem: String,
        /// Says who issued it and its lifetime.
        message: String,
    },
    /// A permanent failure; `reason` is the Event reason and metric label.
    Failed {
        /// `PolicyViolation`, `SigningFailed`, `VerificationFailed`, `RetriesExhausted`.
        reason: Reason,
        /// Names the offending value.
        message: String,
    },
    /// A denial (an approver's, or of the request's own fields).
    Denied {
        /// `Denied` for an approver's; the request kind's own reason otherwise.
        reason: Reason,
        /// Why.
        message: String,
    },
    /// Waiting (issuer not ready, retryable error).
    Pending {
        /// Why.
        message: String,
    },
}

impl Write {
    /// Whether the write ends the request.
    pub fn is_final(&self) -> bool {
        !matches!(self, Write::Pending { .. })
    }
}

/// Whether the requester may use the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Yes (or nothing to check).
    Allowed,
    /// No: a permanent refusal naming the missing permission.
    Denied(String),
    /// The check itself failed: retried.
    Unknown(String),
}

/// One request kind on the pipeline.
pub trait RequestKind:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static
{
    /// The kind, for metrics, Events and logs.
    const KIND: &'static str;
    /// The API that reads and writes this object.
    fn api(client: Client, obj: &Self) -> Api<Self>;
    /// The issuer it names, when it is one of ours.
    fn issuer_key(&self) -> Option<IssuerKey>;
    /// Where it is in its life.
    fn phase(&self) -> Phase;
    /// The signing input; `Err` is a permanent refusal naming what is wrong.
    fn input(&self, key: &IssuerKey) -> Result<RequestInput, String>;
    /// The status patch that records `write`, or `None` when this kind records nothing for
    /// it (a CSR has no Pending condition) or the status already says it.
    fn status_patch(&self, write: &Write) -> Option<serde_json::Value>;
    /// Whether the requester may use the issuer `key` (default: nothing to check).
    fn access<'a>(&'a self, _ctx: &'a Context, _key: &'a IssuerKey) -> BoxFuture<'a, Access> {
        Box::pin(async { Access::Allowed })
    }
    /// Drops what the pipeline never reads, before the object is cached.
    fn slim(&mut self);
}
