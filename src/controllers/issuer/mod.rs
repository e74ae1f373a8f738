//! The issuer controller (docs/design.md, "The issuer"): checks each `PKIIssuer` / `PKIClusterIssuer`,
//! reports `Ready` and the signer, and keeps the shared cache of checked issuers.

pub mod status;
pub mod watches;

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{Future, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams};
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use self::status::{add_notes, decide_status, rfc3339, status_changed};
pub use self::watches::resource_namespace;
use self::watches::{metadata_watches, referencing};
use super::cache::CachedIssuer;
use super::events::{publish, report_invalid};
use super::metrics::SignerLabels;
use super::sources::KubeSource;
use super::trust;
use super::{Context, Error};
use crate::api::issuer::{AnyIssuer, IssuerKind};
use crate::api::reason::Reason;
use crate::api::FIELD_MANAGER;
use crate::signers::load::{self, LoadedIssuer};

/// A signer closer to expiry than this gets a Warning Event.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);
/// How soon a retryable check failure is retried.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);
/// How soon a reconcile that failed on the API (or the write fence) runs again.
pub const ERROR_REQUEUE: Duration = Duration::from_secs(5);

#[tracing::instrument(skip_all, fields(kind = K::KIND.as_str(), name = %guard.name_any()))]
async fn reconcile<K>(guard: Arc<DeserializeGuard<K>>, ctx: Arc<Context>) -> Result<Action, Error>
where
    K: AnyIssuer + Resource<DynamicType = ()> + DeserializeOwned + Serialize + Debug,
{
    let started = std::time::Instant::now();
    let result = check_issuer(&guard, &ctx).await;
    ctx.metrics
        .reconciled(K::KIND.as_str(), started.elapsed(), result.as_ref().err());
    result
}

async fn check_issuer<K>(guard: &DeserializeGuard<K>, ctx: &Arc<Context>) -> Result<Action, Error>
where
    K: AnyIssuer + Resource<DynamicType = ()> + DeserializeOwned + Serialize + Debug,
{
    ctx.check_fence()?;
    let issuer = match &guard.0 {
        Ok(issuer) => issuer,
        Err(invalid) => {
            report_invalid::<K>(ctx, invalid).await;
            return Ok(Action::await_change());
        }
    };
    let key = issuer.key();
    let name = issuer.name_any();
    let generation = issuer.meta().generation;
    let ns = resource_namespace(issuer, &ctx.config.cluster_resource_namespace);
    let src = KubeSource::new(ctx.client.clone(), &ns);
    let now = time::OffsetDateTime::now_utc();
    let metrics = ctx.metrics.clone();
    let observe: load::Observer =
        Arc::new(move |d| metrics.remote_ca_duration.observe(d.as_secs_f64()));
    let opts = load::LoadOptions {
        observe: Some(observe),
        allowed_urls: (K::KIND == IssuerKind::Namespaced)
            .then(|| ctx.config.allowed_remote_ca_urls.clone()),
        audience: crate::signers::vault::default_audience(key.namespace.as_deref(), &name),
        pkcs11: crate::signers::pkcs11::Pkcs11Access {
            modules: ctx.config.pkcs11_modules.clone(),
            namespaced: K::KIND == IssuerKind::Namespaced,
        },
    };
    let result = load::load(issuer.issuer_spec(), &src, now, &opts).await;

    let mut status = decide_status(
        issuer.issuer_status(),
        generation,
        result
            .as_ref()
            .map(|l| (&l.signer_info, l.anchor_infos.as_slice())),
    );
    if let Ok(loaded) = &result {
        add_notes(&mut status, &loaded.notes);
    }
    if status_changed(issuer.issuer_status(), &status) {
        ctx.check_fence()?;
        let api = K::api(ctx.client.clone(), key.namespace.as_deref());
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        let ready = &status.conditions[0];
        tracing::info!(issuer = %key, ready = %ready.status, reason = ?ready.reason, message = ?ready.message, "issuer checked");
        if !ready.is_true() {
            publish(
                &ctx.recorder,
                &issuer.object_ref(&()),
                EventType::Warning,
                ready.reason.as_deref().unwrap_or(Reason::Failed.as_str()),
                "Check",
                ready.message.clone().unwrap_or_default(),
            )
            .await;
        }
    }

    let interval = load::health_check_interval(issuer.issuer_spec());
    let labels = SignerLabels {
        kind: K::KIND.as_str().to_string(),
        namespace: key.namespace.clone().unwrap_or_default(),
        issuer: name.clone(),
    };
    match result {
        Ok(loaded) => {
            let not_after = loaded.signer_info.not_after;
            ctx.metrics
                .signer_expiry
                .get_or_create(&labels)
                .set(not_after.unix_timestamp() as f64);
            if let Some(t) = loaded.anchor_infos.iter().map(|a| a.not_after).min() {
                ctx.metrics
                    .trust_anchor_expiry
                    .get_or_create(&labels)
                    .set(t.unix_timestamp() as f64);
            }
            ctx.metrics.issuer_ready.get_or_create(&labels).set(1);
            warn_if_expiring(ctx, issuer, &loaded, now).await;
            let loaded = Arc::new(loaded);
            ctx.cache.put(
                key,
                CachedIssuer {
                    uid: issuer.uid().unwrap_or_default(),
                    generation: generation.unwrap_or_default(),
                    loaded: loaded.clone(),
                },
            );
            let again = trust::distribute(ctx, issuer, Ok(&loaded)).await?;
            Ok(Action::requeue(again.map_or(interval, |a| a.min(interval))))
        }
        Err(e) => {
            ctx.metrics.signer_expiry.remove(&labels);
            ctx.metrics.trust_anchor_expiry.remove(&labels);
            ctx.metrics.issuer_ready.get_or_create(&labels).set(0);
            ctx.cache.remove(&key);
            trust::distribute(ctx, issuer, Err(e.to_string())).await?;
            Ok(Action::requeue(if e.is_retryable() {
                RETRY_AFTER.min(interval)
            } else {
                interval
            }))
        }
    }
}

async fn warn_if_expiring<K: AnyIssuer + Resource<DynamicType = ()>>(
    ctx: &Context,
    issuer: &K,
    loaded: &LoadedIssuer,
    now: time::OffsetDateTime,
) {
    let left = loaded.signer_info.not_after - now;
    if left < time::Duration::try_from(EXPIRY_WARNING).unwrap_or(time::Duration::ZERO) {
        publish(
            &ctx.recorder,
            &issuer.object_ref(&()),
            EventType::Warning,
            Reason::SignerExpiringSoon.as_str(),
            "Check",
            format!(
                "signer {} expires at {} ({} days left): rotate the intermediate",
                loaded.signer_info.subject,
                rfc3339(loaded.signer_info.not_after),
                left.whole_days()
            ),
        )
        .await;
    }
}

fn error_policy<K>(_obj: Arc<DeserializeGuard<K>>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %err, "issuer reconcile failed; retrying");
    Action::requeue(ERROR_REQUEUE)
}

/// The issuers of one kind as the request controllers see them: the reflector store and
/// whether its initial list has completed.
pub struct IssuerView<K: Resource<DynamicType = ()> + 'static> {
    /// All issuers of the kind.
    pub store: Store<DeserializeGuard<K>>,
    /// Set once the initial list is in `store`, so a lookup miss really means "missing".
    /// (An own flag: waiting on the store's readiness from other tasks would steal the
    /// controller's single wake-up.)
    pub synced: Arc<AtomicBool>,
}

impl<K: Resource<DynamicType = ()> + 'static> Clone for IssuerView<K> {
    fn clone(&self) -> Self {
        IssuerView {
            store: self.store.clone(),
            synced: self.synced.clone(),
        }
    }
}

/// Build the controller for one issuer kind, and the view the request controllers read.
pub fn controller<K>(ctx: &Context) -> (Controller<DeserializeGuard<K>>, IssuerView<K>)
where
    K: AnyIssuer + Resource<DynamicType = ()> + DeserializeOwned + Serialize + Debug,
{
    let client = ctx.client.clone();
    let api: Api<DeserializeGuard<K>> = Api::all(client.clone());
    let (reader, writer) = kube::runtime::reflector::store();
    let synced = Arc::new(AtomicBool::new(false));
    let flag = synced.clone();
    let metrics = ctx.metrics.clone();
    let issuers = kube::runtime::reflector(
        writer,
        watcher(api, watcher::Config::default().any_semantic()),
    )
    .inspect(move |event| match event {
        Ok(watcher::Event::InitDone) => flag.store(true, Ordering::SeqCst),
        // A deleted issuer's series would otherwise stay (and keep its alerts firing).
        Ok(watcher::Event::Delete(gone)) => metrics.forget_issuer(&SignerLabels {
            kind: K::KIND.as_str().to_string(),
            namespace: gone.namespace().unwrap_or_default(),
            issuer: gone.name_any(),
        }),
        _ => {}
    })
    .touched_objects();
    let view = IssuerView {
        store: reader.clone(),
        synced,
    };
    let ctl = Controller::for_stream(issuers, reader);
    let cluster_ns = ctx.config.cluster_resource_namespace.clone();
    let secret_store = ctl.store();
    let config_map_store = ctl.store();
    let namespace_store = ctl.store();
    let secret_ns = cluster_ns.clone();
    let secrets = metadata_watches::<Secret>(&client, &ctx.config.watch_namespaces);
    let config_maps = metadata_watches::<ConfigMap>(&client, &ctx.config.watch_namespaces);
    let rechecks = ctx.cache.subscribe_rechecks().filter_map(|key| async move {
        (key.kind == K::KIND).then(|| {
            let r = ObjectRef::new(&key.name);
            match key.namespace {
                Some(ns) => r.within(&ns),
                None => r,
            }
        })
    });
    let ctl = ctl
        .watches_stream(secrets, move |meta: PartialObjectMeta<Secret>| {
            referencing(&secret_store, &secret_ns, true, &meta)
        })
        .watches_stream(config_maps, move |meta: PartialObjectMeta<ConfigMap>| {
            let mut refs = referencing(&config_map_store, &cluster_ns, false, &meta);
            refs.extend(trust::watches::owner_of(&config_map_store, &meta));
            refs
        })
        .watches_stream(
            trust::watches::namespaces::<K>(&client),
            move |_: PartialObjectMeta<k8s_openapi::api::core::v1::Namespace>| {
                trust::watches::selecting(&namespace_store)
            },
        )
        .reconcile_on(rechecks);
    (ctl, view)
}

/// Run a built controller until `shutdown` resolves.
pub async fn run<K>(
    ctl: Controller<DeserializeGuard<K>>,
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) where
    K: AnyIssuer + Resource<DynamicType = ()> + DeserializeOwned + Serialize + Debug,
{
    ctl.graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "issuer controller event");
            }
        })
        .await;
}
