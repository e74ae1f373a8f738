//! The CertificateRequest controller: the thin API layer around [`decide`] and [`issue`].

pub mod decide;
pub mod issue;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{Future, StreamExt};
use kube::api::{Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use self::decide::{decide, reason, Decision, IssuerState};
use self::issue::RequestInput;
use super::backoff::Retry;
use super::cache::CachedIssuer;
use super::events::publish;
use super::issuer::IssuerView;
use super::requests::{self, Outcome};
use super::{Context, Error};
use crate::api::cert_manager::CertificateRequest;
use crate::api::condition::{self, Condition};
use crate::api::duration;
use crate::api::issuer::{AnyIssuer, IssuerKey, IssuerKind, PKIClusterIssuer, PKIIssuer};
use crate::api::FIELD_MANAGER;
use crate::pki::RequestContext;
use crate::runtime::metrics::IssuedLabels;

type Guarded = DeserializeGuard<CertificateRequest>;

/// The issuer stores the request controller reads.
#[derive(Clone)]
pub struct IssuerStores {
    /// `PKIIssuer`s.
    pub namespaced: IssuerView<PKIIssuer>,
    /// `PKIClusterIssuer`s.
    pub cluster: IssuerView<PKIClusterIssuer>,
}

impl IssuerStores {
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
            return (
                IssuerState::NotReady(format!("the issuer object is invalid: {}", e.error)),
                None,
            )
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
    if issuer.is_ready() {
        return (IssuerState::Unchecked, None);
    }
    let why = issuer
        .issuer_status()
        .and_then(|s| condition::find(&s.conditions, "Ready"))
        .filter(|c| !c.is_true() && c.observed_generation == issuer.meta().generation)
        .and_then(|c| c.message.clone())
        .unwrap_or_else(|| "it has not been checked yet".into());
    (IssuerState::NotReady(why), None)
}

/// The request controller's context.
pub struct RequestContextData {
    /// Shared controller state.
    pub ctx: Arc<Context>,
    /// Issuer stores.
    pub stores: IssuerStores,
}

/// The namespace and name of a ServiceAccount username `system:serviceaccount:<ns>:<sa>`.
pub fn service_account(username: Option<&str>) -> Option<(&str, &str)> {
    let rest = username?.strip_prefix("system:serviceaccount:")?;
    let (ns, sa) = rest.split_once(':')?;
    (!ns.is_empty() && !sa.is_empty() && !sa.contains(':')).then_some((ns, sa))
}

/// The `Ready` condition plus the fields written with it.
struct StatusWrite {
    ready: Condition,
    certificate: Option<String>,
    ca: Option<String>,
    failure_time: bool,
}

async fn write_status(ctx: &Context, cr: &CertificateRequest, w: StatusWrite) -> Result<(), Error> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let existing = cr
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    let ready = condition::merge(existing, w.ready);
    let mut status = json!({ "conditions": [ready] });
    if let Some(cert) = &w.certificate {
        status["certificate"] = json!(b64(cert));
    }
    if let Some(ca) = &w.ca {
        status["ca"] = json!(b64(ca));
    }
    if w.failure_time {
        status["failureTime"] = json!(jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or(jiff::Timestamp::now())
            .to_string());
    }
    let patch = json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "CertificateRequest",
        "status": status,
    });
    let ns = cr.namespace().ok_or(Error::MissingMeta("namespace"))?;
    let api: Api<CertificateRequest> = Api::namespaced(ctx.client.clone(), &ns);
    api.patch_status(
        &cr.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Whether the request's `Ready` condition already says this.
fn already(cr: &CertificateRequest, status: bool, reason: &str, message: &str) -> bool {
    cr.status
        .as_ref()
        .and_then(|s| condition::find(&s.conditions, "Ready"))
        .is_some_and(|c| {
            c.is_true() == status
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message)
        })
}

async fn fail(
    ctx: &Context,
    cr: &CertificateRequest,
    metric: &str,
    message: String,
) -> Result<Action, Error> {
    ctx.backoff.reset(&cr.uid().unwrap_or_default());
    write_status(
        ctx,
        cr,
        StatusWrite {
            ready: Condition::new("Ready", false, reason::FAILED, message.clone()),
            certificate: None,
            ca: None,
            failure_time: true,
        },
    )
    .await?;
    ctx.metrics.fail(metric);
    tracing::warn!(request = %ObjectRef::from_obj(cr), reason = metric, %message, "request failed");
    publish(
        &ctx.recorder,
        &cr.object_ref(&()),
        EventType::Warning,
        metric,
        "Sign",
        message,
    )
    .await;
    Ok(Action::await_change())
}

async fn pending(ctx: &Context, cr: &CertificateRequest, message: String) -> Result<(), Error> {
    if already(cr, false, reason::PENDING, &message) {
        return Ok(());
    }
    write_status(
        ctx,
        cr,
        StatusWrite {
            ready: Condition::new("Ready", false, reason::PENDING, message),
            certificate: None,
            ca: None,
            failure_time: false,
        },
    )
    .await
}

async fn retry(ctx: &Context, cr: &CertificateRequest, what: String) -> Result<Action, Error> {
    let uid = cr.uid().unwrap_or_default();
    match ctx.backoff.failed(&uid, Instant::now()) {
        Retry::GiveUp => {
            let limit = duration::format(ctx.config.max_retry_duration);
            fail(
                ctx,
                cr,
                "RetriesExhausted",
                format!("{what}; gave up after retrying for {limit}"),
            )
            .await
        }
        Retry::After(delay) => {
            let attempt = ctx.backoff.attempts(&uid);
            publish(
                &ctx.recorder,
                &cr.object_ref(&()),
                EventType::Warning,
                "RetryableError",
                "Sign",
                format!("{what}; will retry (attempt {attempt})"),
            )
            .await;
            pending(ctx, cr, format!("{what}; will retry")).await?;
            Ok(Action::requeue(delay))
        }
    }
}

/// Parse the request's spec into the shared input; errors are permanent.
fn input(cr: &CertificateRequest) -> Result<RequestInput<'_>, String> {
    let duration = cr
        .spec
        .duration
        .as_deref()
        .map(duration::parse)
        .transpose()
        .map_err(|e| format!("spec.duration: {e}"))?;
    let namespace = cr.namespace();
    let service_account = service_account(cr.spec.username.as_deref())
        .filter(|(ns, _)| Some(*ns) == namespace.as_deref())
        .map(|(_, sa)| sa.to_string());
    Ok(RequestInput {
        csr: &cr.spec.request,
        duration,
        is_ca: cr.spec.is_ca.unwrap_or(false),
        usages: cr.spec.usages.as_deref().unwrap_or(&[]),
        context: RequestContext {
            namespace,
            service_account,
        },
    })
}

async fn sign(
    ctx: &Context,
    cr: &CertificateRequest,
    issuer: &CachedIssuer,
    key: &IssuerKey,
) -> Result<Action, Error> {
    let started = Instant::now();
    let loaded = &issuer.loaded;
    let input = match input(cr) {
        Ok(i) => i,
        Err(msg) => {
            let msg = format!("refused before signing: {msg}");
            return fail(ctx, cr, "PolicyViolation", msg).await;
        }
    };
    let (chain_pem, ca_pem, validity) =
        match requests::issue(&input, loaded, &ctx.remote_slots, key).await {
            Outcome::Issued {
                chain_pem,
                ca_pem,
                validity,
            } => (chain_pem, ca_pem, validity),
            Outcome::Failed { reason, message } => return fail(ctx, cr, reason, message).await,
            Outcome::Retry(what) => return retry(ctx, cr, what).await,
            Outcome::Busy(what) => {
                pending(ctx, cr, format!("{what}; will retry")).await?;
                return Ok(Action::requeue(super::remote_slots::BUSY_REQUEUE));
            }
        };
    let message = format!("Certificate issued by {key}, {validity}");
    write_status(
        ctx,
        cr,
        StatusWrite {
            ready: Condition::new("Ready", true, reason::ISSUED, message.clone()),
            certificate: Some(chain_pem),
            ca: Some(ca_pem),
            failure_time: false,
        },
    )
    .await?;
    ctx.backoff.reset(&cr.uid().unwrap_or_default());
    ctx.metrics
        .signing_duration
        .observe(started.elapsed().as_secs_f64());
    ctx.metrics
        .issued
        .get_or_create(&IssuedLabels {
            kind: "CertificateRequest".into(),
            issuer: key.to_string(),
        })
        .inc();
    tracing::info!(request = %ObjectRef::from_obj(cr), issuer = %key, "certificate issued");
    publish(
        &ctx.recorder,
        &cr.object_ref(&()),
        EventType::Normal,
        "Issued",
        "Sign",
        message,
    )
    .await;
    Ok(Action::await_change())
}

async fn reconcile(guard: Arc<Guarded>, data: Arc<RequestContextData>) -> Result<Action, Error> {
    let ctx = &data.ctx;
    let cr = match &guard.0 {
        Ok(cr) => cr,
        Err(invalid) => {
            tracing::warn!(error = %invalid.error, "ignoring a CertificateRequest that does not deserialize");
            return Ok(Action::await_change());
        }
    };
    let mut cached = None;
    let decision = decide(cr, |key| {
        let (state, c) = data.stores.lookup(ctx, key);
        cached = c.map(|c| (key.clone(), c));
        state
    });
    match decision {
        Decision::Skip | Decision::AwaitApproval => Ok(Action::await_change()),
        // The check's cache update re-queues the request; the delay covers a still-syncing
        // issuer list.
        Decision::AwaitIssuerCheck => Ok(Action::requeue(Duration::from_secs(2))),
        Decision::MarkDenied(message) => {
            write_status(
                ctx,
                cr,
                StatusWrite {
                    ready: Condition::new("Ready", false, reason::DENIED, message.clone()),
                    certificate: None,
                    ca: None,
                    failure_time: true,
                },
            )
            .await?;
            ctx.metrics.fail("Denied");
            publish(
                &ctx.recorder,
                &cr.object_ref(&()),
                EventType::Warning,
                "Denied",
                "Sign",
                message,
            )
            .await;
            Ok(Action::await_change())
        }
        Decision::Pending(message) => {
            pending(ctx, cr, message).await?;
            Ok(Action::requeue(Duration::from_secs(300)))
        }
        Decision::Sign => {
            let (key, issuer) = cached.expect("Ready issuers come with their cache entry");
            sign(ctx, cr, &issuer, &key).await
        }
    }
}

fn error_policy(obj: Arc<Guarded>, err: &Error, data: Arc<RequestContextData>) -> Action {
    let uid = obj.meta().uid.clone().unwrap_or_default();
    let delay = match data.ctx.backoff.failed(&uid, Instant::now()) {
        Retry::After(d) => d,
        Retry::GiveUp => Duration::from_secs(60),
    };
    tracing::warn!(error = %err, ?delay, "request reconcile failed; retrying");
    Action::requeue(delay)
}

/// Run the request controller until `shutdown` resolves.
pub async fn run(
    data: Arc<RequestContextData>,
    ready_issuers: UnboundedReceiver<IssuerKey>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<Guarded> = Api::all(data.ctx.client.clone());
    let ctl = Controller::new(api, watcher::Config::default().any_semantic()).with_config(
        kube::runtime::controller::Config::default().concurrency(data.ctx.config.concurrency),
    );
    let ctl = requests::requeue_on_ready(ctl, ready_issuers, |cr: &CertificateRequest, key| {
        decide::issuer_key(cr).as_ref() == Some(key)
            && !decide::is_finished(
                cr.status
                    .as_ref()
                    .map(|s| s.conditions.as_slice())
                    .unwrap_or(&[]),
            )
    });
    ctl.graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, data)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "request controller event");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_account_usernames() {
        assert_eq!(
            service_account(Some("system:serviceaccount:apps:web")),
            Some(("apps", "web"))
        );
        assert_eq!(service_account(Some("system:serviceaccount:apps:")), None);
        assert_eq!(service_account(Some("alice")), None);
        assert_eq!(service_account(None), None);
    }
}
