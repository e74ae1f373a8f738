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
use kube::Resource;
use serde::de::DeserializeOwned;

use super::named_ref;
use crate::api::issuer::IssuerKey;

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
