//! The issuer controller (docs/design.md, "The issuer"): checks each `PKIIssuer` / `PKIClusterIssuer`,
//! reports `Ready` and the signer, and keeps the shared cache of checked issuers.

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

use super::cache::CachedIssuer;
use super::events::{publish, report_invalid};
use super::metrics::SignerLabels;
use super::named_ref;
use super::sources::KubeSource;
use super::{Context, Error};
use crate::api::condition::{self, Condition};
use crate::api::issuer::{AnyIssuer, CertSummary, IssuerKind, IssuerSpec, IssuerStatus};
use crate::api::FIELD_MANAGER;
use crate::pki::SignerInfo;
use crate::signers::load::{self, LoadError, LoadedIssuer};

/// A signer closer to expiry than this gets a Warning Event.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);
/// How soon a retryable check failure is retried.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Condition reasons of an issuer's `Ready` condition.
pub mod reason {
    /// The signer and trust anchors passed every check.
    pub const CHECKED: &str = "Checked";
    /// Something is missing or unreachable; retried.
    pub const PENDING: &str = "Pending";
    /// The configuration or material is wrong; fixed by changing it.
    pub const FAILED: &str = "Failed";
}

/// The pure decision: the status an issuer should have after a check.
pub fn decide_status(
    existing: Option<&IssuerStatus>,
    generation: Option<i64>,
    result: Result<(&SignerInfo, &[SignerInfo]), &LoadError>,
) -> IssuerStatus {
    let existing_conditions = existing.map(|s| s.conditions.as_slice()).unwrap_or(&[]);
    let (ready, signer, anchors) = match result {
        Ok((signer, anchors)) => (
            Condition::new(
                "Ready",
                true,
                reason::CHECKED,
                format!(
                    "signer {} is valid until {} and chains to the trust anchors",
                    signer.subject,
                    rfc3339(signer.not_after)
                ),
            ),
            Some(summary(signer)),
            anchors.iter().map(summary).collect(),
        ),
        Err(e) => {
            let reason = if e.is_retryable() {
                reason::PENDING
            } else {
                reason::FAILED
            };
            (
                Condition::new("Ready", false, reason, e.to_string()),
                None,
                Vec::new(),
            )
        }
    };
    IssuerStatus {
        conditions: vec![condition::merge(
            existing_conditions,
            ready.with_generation(generation),
        )],
        signer,
        trust_anchors: anchors,
    }
}

/// Append remarks of the check (e.g. a Vault role's limits) to a Ready message.
pub fn add_notes(status: &mut IssuerStatus, notes: &[String]) {
    if notes.is_empty() {
        return;
    }
    if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == "Ready") {
        let mut m = c.message.clone().unwrap_or_default();
        for n in notes {
            m.push_str("; note: ");
            m.push_str(n);
        }
        c.message = Some(m);
    }
}

/// Whether two statuses differ in anything but transition times.
pub fn status_changed(old: Option<&IssuerStatus>, new: &IssuerStatus) -> bool {
    let Some(old) = old else { return true };
    let old_ready = condition::find(&old.conditions, "Ready");
    let new_ready = condition::find(&new.conditions, "Ready");
    let same_ready = match (old_ready, new_ready) {
        (Some(a), Some(b)) => a.same_state(b),
        (None, None) => true,
        _ => false,
    };
    !same_ready || old.signer != new.signer || old.trust_anchors != new.trust_anchors
}

pub use crate::issuance::rfc3339;

fn summary(info: &SignerInfo) -> CertSummary {
    CertSummary {
        subject: info.subject.clone(),
        serial_number: info.serial_hex.clone(),
        not_before: rfc3339(info.not_before),
        not_after: rfc3339(info.not_after),
        sha256_fingerprint: info.sha256_fingerprint.clone(),
    }
}

/// The namespace an issuer reads its Secrets and ConfigMaps from.
pub fn resource_namespace<K: AnyIssuer>(issuer: &K, cluster_ns: &str) -> String {
    match K::KIND {
        IssuerKind::Namespaced => issuer.namespace().unwrap_or_default(),
        IssuerKind::Cluster => cluster_ns.to_string(),
    }
}

/// Whether `spec` refers to a Secret (`is_secret`) or ConfigMap named `name`.
pub fn references(spec: &IssuerSpec, is_secret: bool, name: &str) -> bool {
    let pem_ref = |p: &crate::api::issuer::PemSource| {
        if is_secret {
            p.secret.as_ref().is_some_and(|r| r.name == name)
        } else {
            p.config_map.as_ref().is_some_and(|r| r.name == name)
        }
    };
    if pem_ref(&spec.trust_anchors) {
        return true;
    }
    if is_secret && spec.secret.as_ref().is_some_and(|s| s.name == name) {
        return true;
    }
    let vault_secret = |v: &crate::api::vault::VaultSignerSpec| {
        let a = &v.auth;
        [
            a.token_secret_ref.as_ref(),
            a.app_role.as_ref().map(|r| &r.secret_ref),
            v.ca_bundle_secret_ref.as_ref(),
            v.client_cert_secret_ref.as_ref(),
            v.client_key_secret_ref.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|k| k.name == name)
    };
    spec.cfssl.as_ref().is_some_and(|c| {
        c.ca_bundle.as_ref().is_some_and(pem_ref)
            || c.intermediates.as_ref().is_some_and(pem_ref)
            || (is_secret
                && (c.auth_key.as_ref().is_some_and(|k| k.name == name)
                    || c.client_cert_secret.as_deref() == Some(name)))
    }) || (is_secret && spec.vault.as_ref().is_some_and(vault_secret))
}

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
                ready.reason.as_deref().unwrap_or(reason::FAILED),
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
            ctx.cache.put(
                key,
                CachedIssuer {
                    uid: issuer.uid().unwrap_or_default(),
                    generation: generation.unwrap_or_default(),
                    loaded,
                },
            );
            Ok(Action::requeue(interval))
        }
        Err(e) => {
            ctx.metrics.signer_expiry.remove(&labels);
            ctx.metrics.trust_anchor_expiry.remove(&labels);
            ctx.metrics.issuer_ready.get_or_create(&labels).set(0);
            ctx.cache.remove(&key);
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
            "SignerExpiringSoon",
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
    Action::requeue(Duration::from_secs(5))
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
            referencing(&config_map_store, &cluster_ns, false, &meta)
        })
        .reconcile_on(rechecks);
    (ctl, view)
}

/// Metadata-only watches of `O` in `namespaces` (all namespaces when empty), merged.
fn metadata_watches<O>(
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

fn referencing<K, O>(
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
    store
        .state()
        .iter()
        .filter_map(|g| {
            let issuer = g.0.as_ref().ok()?;
            (resource_namespace(issuer, cluster_ns) == ns
                && references(issuer.issuer_spec(), is_secret, name))
            .then(|| named_ref(g.as_ref()))
            .flatten()
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::issuer::{KeyRef, PemSource, SecretSignerSpec};

    fn info(subject: &str) -> SignerInfo {
        let t = time::OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap();
        SignerInfo {
            subject: subject.into(),
            serial_hex: "01".into(),
            not_before: t - time::Duration::days(1),
            not_after: t,
            sha256_fingerprint: "ab".into(),
        }
    }

    #[test]
    fn ready_when_checked_with_generation() {
        let s = info("CN=int");
        let st = decide_status(None, Some(3), Ok((&s, &[info("CN=root")])));
        let c = &st.conditions[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("True", Some("Checked"))
        );
        assert_eq!(c.observed_generation, Some(3));
        assert_eq!(
            st.signer.as_ref().unwrap().not_after,
            "2033-05-18T03:33:20Z"
        );
        assert_eq!(st.trust_anchors[0].subject, "CN=root");
    }

    #[test]
    fn missing_is_pending_and_bad_material_is_failed() {
        let missing = LoadError::Missing("signer Secret ns/x not found".into());
        let st = decide_status(None, Some(1), Err(&missing));
        assert_eq!(st.conditions[0].reason.as_deref(), Some("Pending"));
        assert_eq!(
            st.conditions[0].message.as_deref(),
            Some("signer Secret ns/x not found")
        );
        let bad = LoadError::Invalid("not a CA".into());
        let st = decide_status(None, Some(1), Err(&bad));
        assert_eq!(st.conditions[0].reason.as_deref(), Some("Failed"));
        assert!(st.signer.is_none());
    }

    #[test]
    fn unchanged_status_is_not_rewritten() {
        let s = info("CN=int");
        let a = decide_status(None, Some(1), Ok((&s, &[])));
        let b = decide_status(Some(&a), Some(1), Ok((&s, &[])));
        assert!(!status_changed(Some(&a), &b));
        let c = decide_status(Some(&a), Some(2), Ok((&s, &[])));
        assert!(
            status_changed(Some(&a), &c),
            "a new generation must be reported"
        );
    }

    #[test]
    fn finds_references() {
        let spec = IssuerSpec {
            secret: Some(SecretSignerSpec { name: "int".into() }),
            trust_anchors: PemSource {
                config_map: Some(KeyRef {
                    name: "roots".into(),
                    key: "ca.crt".into(),
                }),
                secret: None,
            },
            ..Default::default()
        };
        assert!(references(&spec, true, "int"));
        assert!(!references(&spec, false, "int"));
        assert!(references(&spec, false, "roots"));
        assert!(!references(&spec, true, "roots"));
    }
}
