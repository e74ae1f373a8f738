//! What re-runs an issuer's distribution besides the issuer itself: Namespaces (a new or
//! relabelled namespace may now be selected) and the ConfigMaps pki-issuer wrote (one deleted
//! or edited by hand is restored).

use std::fmt::Debug;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use super::bundle::MANAGED_LABEL;
use crate::api::issuer::{AnyIssuer, IssuerKind};
use crate::controllers::issuers_where;

/// Metadata-only watch of every Namespace, for the cluster issuers' controller (a `PKIIssuer`
/// distributes only into its own namespace: no watch).
pub fn namespaces<K: AnyIssuer>(
    client: &kube::Client,
) -> futures::stream::BoxStream<'static, Result<PartialObjectMeta<Namespace>, watcher::Error>> {
    if K::KIND != IssuerKind::Cluster {
        return futures::stream::empty().boxed();
    }
    let api: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
    watcher(api, watcher::Config::default())
        .touched_objects()
        .boxed()
}

/// The cluster issuers that distribute ConfigMaps by namespace selector (any namespace
/// change may change what they select).
pub fn selecting<K>(store: &Store<DeserializeGuard<K>>) -> Vec<ObjectRef<DeserializeGuard<K>>>
where
    K: AnyIssuer + Resource<DynamicType = ()> + DeserializeOwned + Debug,
{
    if K::KIND != IssuerKind::Cluster {
        return Vec::new();
    }
    issuers_where(store, |issuer| {
        issuer
            .issuer_spec()
            .trust_distribution
            .as_ref()
            .is_some_and(|t| t.config_map.is_some())
    })
}

/// The issuer a ConfigMap pki-issuer published belongs to (by its owner reference).
pub fn owner_of<K, O>(
    store: &Store<DeserializeGuard<K>>,
    meta: &PartialObjectMeta<O>,
) -> Vec<ObjectRef<DeserializeGuard<K>>>
where
    K: AnyIssuer + Resource<DynamicType = ()> + DeserializeOwned + Debug,
{
    let ours = meta
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(MANAGED_LABEL));
    let Some(owners) = meta.metadata.owner_references.as_ref().filter(|_| ours) else {
        return Vec::new();
    };
    issuers_where(store, |issuer| {
        issuer.meta().uid.as_deref().is_some_and(|uid| {
            owners
                .iter()
                .any(|o| o.uid == uid && o.kind == K::kind(&()))
        })
    })
}
