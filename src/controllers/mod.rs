//! The controllers: issuers (check and report), and every request kind on one pipeline
//! ([`requests`]: decide, sign, plan, write).
//!
//! Each controller is a pure decision (inputs -> actions) plus a thin layer that talks to the API.

pub mod cache;
pub mod context;
pub mod events;
pub mod fence;
pub mod issuer;
pub mod metrics;
pub mod requests;
pub mod signer_access;
pub mod slim;
pub mod sources;
pub mod trust;

pub use crate::issuance::remote_slots;
pub use context::{Config, Context};

/// Errors of the API layer of a reconcile (the decision itself never fails).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Serialising a patch failed.
    #[error("serialising a patch: {0}")]
    Json(#[from] serde_json::Error),
    /// The object lacks a name or namespace it must have.
    #[error("object is missing {0}")]
    MissingMeta(&'static str),
    /// This replica's leader lease may have expired: it must not write.
    #[error("not writing: this replica no longer holds the leader lease")]
    NotLeader,
}

impl Error {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Json(_) => "json",
            Error::MissingMeta(_) => "missing_meta",
            Error::NotLeader => "not_leader",
        }
    }
}

/// A reference to `obj`, or `None` for an object without a name (which a faulty API server
/// could send; `ObjectRef::from_obj` would panic on it).
pub fn named_ref<K>(obj: &K) -> Option<kube::runtime::reflector::ObjectRef<K>>
where
    K: kube::Resource,
    K::DynamicType: Default,
{
    obj.meta().name.as_ref()?;
    Some(kube::runtime::reflector::ObjectRef::from_obj(obj))
}

/// The issuers in `store` (those that deserialized) that `keep` selects, as references to
/// reconcile: how a watched object maps to the issuers it concerns.
pub fn issuers_where<K>(
    store: &kube::runtime::reflector::Store<kube::core::DeserializeGuard<K>>,
    keep: impl Fn(&K) -> bool,
) -> Vec<kube::runtime::reflector::ObjectRef<kube::core::DeserializeGuard<K>>>
where
    K: kube::Resource<DynamicType = ()> + serde::de::DeserializeOwned + Clone,
{
    store
        .state()
        .iter()
        .filter(|g| g.0.as_ref().is_ok_and(&keep))
        .filter_map(|g| named_ref(g.as_ref()))
        .collect()
}
