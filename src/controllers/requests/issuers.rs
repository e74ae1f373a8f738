//! The issuers as the request pipeline sees them: "can this issuer sign, and with what".

use std::sync::Arc;

use kube::core::DeserializeGuard;
use kube::runtime::reflector::ObjectRef;
use kube::Resource;

use super::decide::{tenant_view, IssuerState};
use crate::api::condition;
use crate::api::issuer::{AnyIssuer, IssuerKey, IssuerKind, PKIClusterIssuer, PKIIssuer};
use crate::controllers::cache::CachedIssuer;
use crate::controllers::issuer::IssuerView;
use crate::controllers::Context;

/// Both issuer kinds' stores.
#[derive(Clone)]
pub struct IssuerIndex {
    /// `PKIIssuer`s.
    pub namespaced: IssuerView<PKIIssuer>,
    /// `PKIClusterIssuer`s.
    pub cluster: IssuerView<PKIClusterIssuer>,
}

impl IssuerIndex {
    /// What is known about `key`: its state and, when Ready, the checked signer.
    pub fn lookup(
        &self,
        ctx: &Context,
        key: &IssuerKey,
    ) -> (IssuerState, Option<Arc<CachedIssuer>>) {
        match key.kind {
            IssuerKind::Namespaced => {
                let r =
                    ObjectRef::new(&key.name).within(key.namespace.as_deref().unwrap_or_default());
                state_of(&self.namespaced, &r, ctx, key)
            }
            IssuerKind::Cluster => state_of(&self.cluster, &ObjectRef::new(&key.name), ctx, key),
        }
    }
}

fn state_of<K: AnyIssuer + Resource<DynamicType = ()>>(
    view: &IssuerView<K>,
    r: &ObjectRef<DeserializeGuard<K>>,
    ctx: &Context,
    key: &IssuerKey,
) -> (IssuerState, Option<Arc<CachedIssuer>>) {
    if !view.synced.load(std::sync::atomic::Ordering::SeqCst) {
        // The issuers are still being listed: "not found" would be a guess.
        return (IssuerState::Unchecked, None);
    }
    let Some(guard) = view.store.get(r) else {
        // A deleted issuer's checked signer (and its key) is dropped from memory too.
        ctx.cache.remove(key);
        return (IssuerState::Missing, None);
    };
    let issuer = match &guard.0 {
        Ok(i) => i,
        Err(e) => {
            let why = format!("the issuer object is invalid: {}", e.error);
            return (
                IssuerState::NotReady(tenant_view(K::KIND, Some("Failed"), Some(&why))),
                None,
            );
        }
    };
    // The cache is the source of truth: it holds an entry only for the exact object (UID) and
    // generation that passed the check, and it is updated before the status write is observed
    // through the watch.
    let uid = issuer.meta().uid.clone().unwrap_or_default();
    if let Some(cached) = ctx
        .cache
        .get(key, &uid, issuer.meta().generation.unwrap_or_default())
    {
        return (IssuerState::Ready, Some(cached));
    }
    if issuer.is_ready() && !ctx.cache.recheck_pending(key) {
        return (IssuerState::Unchecked, None);
    }
    let why = issuer
        .issuer_status()
        .and_then(|s| condition::find(&s.conditions, "Ready"))
        .filter(|c| !c.is_true() && c.observed_generation == issuer.meta().generation)
        .map(|c| tenant_view(K::KIND, c.reason.as_deref(), c.message.as_deref()))
        .or_else(|| ctx.cache.recheck_reason(key))
        .unwrap_or_else(|| "it has not been checked yet".into());
    (IssuerState::NotReady(why), None)
}
