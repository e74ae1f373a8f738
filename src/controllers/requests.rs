//! What the CertificateRequest and CertificateSigningRequest controllers share besides the
//! issuance pipeline ([`crate::issuance`]): the re-queue of waiting requests when their issuer
//! becomes ready.

use std::fmt::Debug;
use std::sync::Arc;

use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use super::named_ref;
use crate::api::issuer::IssuerKey;

/// A request controller whose store holds objects slimmed by `slim` (see [`super::slim`]):
/// the watch stream is mapped before the reflector, so full objects are never cached.
pub fn slim_controller<K>(
    api: Api<DeserializeGuard<K>>,
    concurrency: u16,
    slim: fn(&mut K),
) -> Controller<DeserializeGuard<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = kube::runtime::reflector::store();
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .modify(move |guard: &mut DeserializeGuard<K>| {
            if let Ok(obj) = guard.0.as_mut() {
                slim(obj);
            }
        })
        .default_backoff();
    let objects = kube::runtime::reflector(writer, stream).applied_objects();
    Controller::for_stream(objects, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
}

/// The serial number (hex) of the first certificate of a PEM chain, for logs; `?` when it
/// does not parse.
pub fn leaf_serial(chain_pem: &str) -> String {
    pem::parse(chain_pem)
        .ok()
        .and_then(|p| crate::pki::cert_info(p.contents()).ok())
        .map(|i| i.serial_hex)
        .unwrap_or_else(|| "?".into())
}

/// Re-queue every stored request that `waits_for` an issuer announced on `ready_issuers`.
pub fn requeue_on_ready<K>(
    ctl: Controller<DeserializeGuard<K>>,
    ready_issuers: UnboundedReceiver<IssuerKey>,
    waits_for: impl Fn(&K, &IssuerKey) -> bool + Send + Sync + 'static,
) -> Controller<DeserializeGuard<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let store = ctl.store();
    let waits_for = Arc::new(waits_for);
    let requeue = ready_issuers.flat_map(move |key| {
        let refs: Vec<ObjectRef<DeserializeGuard<K>>> = store
            .state()
            .iter()
            .filter(|g| g.0.as_ref().is_ok_and(|obj| waits_for(obj, &key)))
            .filter_map(|g| named_ref(g.as_ref()))
            .collect();
        futures::stream::iter(refs)
    });
    ctl.reconcile_on(requeue)
}
