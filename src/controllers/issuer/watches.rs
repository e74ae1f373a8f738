//! What re-checks an issuer besides its own changes: the Secrets and ConfigMaps its spec
//! declares (`IssuerSpec::references`), through metadata-only watches.

use std::fmt::Debug;

use futures::StreamExt;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::api::issuer::{AnyIssuer, IssuerKind};
use crate::api::references::Referenced;
use crate::controllers::issuers_where;

/// The namespace an issuer reads its Secrets and ConfigMaps from.
pub fn resource_namespace<K: AnyIssuer>(issuer: &K, cluster_ns: &str) -> String {
    match K::KIND {
        IssuerKind::Namespaced => issuer.namespace().unwrap_or_default(),
        IssuerKind::Cluster => cluster_ns.to_string(),
    }
}

/// Whether an issuer's spec reads the Secret (`is_secret`) or ConfigMap `name`.
fn reads(referenced: &[Referenced], is_secret: bool, name: &str) -> bool {
    referenced.iter().any(|r| match r {
        Referenced::Secret(n) => is_secret && n == name,
        Referenced::ConfigMap(n) => !is_secret && n == name,
    })
}

/// Metadata-only watches of `O` in `namespaces` (all namespaces when empty), merged.
pub fn metadata_watches<O>(
    client: &kube::Client,
    namespaces: &[String],
) -> futures::stream::BoxStream<'static, Result<PartialObjectMeta<O>, watcher::Error>>
where
    O: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    let apis: Vec<Api<PartialObjectMeta<O>>> = if namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    futures::stream::select_all(apis.into_iter().map(|api| {
        watcher(api, watcher::Config::default())
            .touched_objects()
            .boxed()
    }))
    .boxed()
}

pub fn referencing<K, O>(
    store: &Store<DeserializeGuard<K>>,
    cluster_ns: &str,
    is_secret: bool,
    meta: &PartialObjectMeta<O>,
) -> Vec<ObjectRef<DeserializeGuard<K>>>
where
    K: AnyIssuer + Resource<DynamicType = ()> + DeserializeOwned + Debug,
{
    let (Some(ns), Some(name)) = (
        meta.metadata.namespace.as_deref(),
        meta.metadata.name.as_deref(),
    ) else {
        return Vec::new();
    };
    issuers_where(store, |issuer| {
        resource_namespace(issuer, cluster_ns) == ns
            && reads(&issuer.issuer_spec().references(), is_secret, name)
    })
}
