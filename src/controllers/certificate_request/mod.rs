//! The CertificateRequest controller: the thin API layer around [`decide`] and
//! [`crate::issuance`].

pub mod decide;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{Future, StreamExt};
use kube::api::{Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use self::decide::{decide, reason, Decision, IssuerState};
use super::backoff::Retry;
use super::cache::CachedIssuer;
use super::context::IssuedCert;
use super::events::report_invalid;
use super::issuer::IssuerView;
use super::metrics::IssuedLabels;
use super::requests;
use super::{Context, Error};
use crate::api::cert_manager::CertificateRequest;
use crate::api::condition::{self, Condition};
use crate::api::duration;
use crate::api::issuer::{AnyIssuer, IssuerKey, IssuerKind, PKIClusterIssuer, PKIIssuer};
use crate::api::FIELD_MANAGER;
use crate::issuance::{self, Outcome, RequestInput};
use crate::pki::RequestContext;

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
            let why = format!("the issuer object is invalid: {}", e.error);
            return (
                IssuerState::NotReady(decide::tenant_view(K::KIND, Some("Failed"), Some(&why))),
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
    if issuer.is_ready() {
        return (IssuerState::Unchecked, None);
    }
    let why = issuer
        .issuer_status()
        .and_then(|s| condition::find(&s.conditions, "Ready"))
        .filter(|c| !c.is_true() && c.observed_generation == issuer.meta().generation)
        .map(|c| decide::tenant_view(K::KIND, c.reason.as_deref(), c.message.as_deref()))
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

/// How a status write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// The status now says what we wrote.
    Done,
    /// The request changed in a way that makes the write wrong (e.g. it was issued by another
    /// replica or an earlier run); nothing was written.
    Superseded,
}

/// Attempts of a status write that meets newer versions of the request.
const WRITE_ATTEMPTS: usize = 3;

/// Whether the request is still open: not finished and no certificate written.
fn open(cr: &CertificateRequest) -> bool {
    let st = cr.status.as_ref();
    !decide::is_finished(st.map(|s| s.conditions.as_slice()).unwrap_or(&[]))
        && st.and_then(|s| s.certificate.as_ref()).is_none()
}

fn status_patch(cr: &CertificateRequest, w: &StatusWrite) -> serde_json::Value {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let existing = cr
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    let ready = condition::merge(existing, w.ready.clone());
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
    let mut patch = json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "CertificateRequest",
        "status": status,
    });
    if let Some(rv) = &cr.metadata.resource_version {
        patch["metadata"] = json!({ "resourceVersion": rv });
    }
    patch
}

/// Apply `w` to the status of the request as it was decided on (`cr`), with its
/// resourceVersion as a precondition: the write never lands on a version this replica has not
/// seen (a certificate another replica or an earlier run wrote, a denial). On a conflict the
/// request is read again and written again while `still(fresh)` holds, at most
/// [`WRITE_ATTEMPTS`] times; otherwise the write is [`Written::Superseded`].
async fn write_status(
    ctx: &Context,
    cr: &CertificateRequest,
    w: &StatusWrite,
    still: impl Fn(&CertificateRequest) -> bool,
) -> Result<Written, Error> {
    let ns = cr.namespace().ok_or(Error::MissingMeta("namespace"))?;
    let name = cr.name_any();
    let api: Api<CertificateRequest> = Api::namespaced(ctx.client.clone(), &ns);
    let mut fresh: Option<CertificateRequest> = None;
    for attempt in 1..=WRITE_ATTEMPTS {
        ctx.check_fence()?;
        let current = fresh.as_ref().unwrap_or(cr);
        let result = api
            .patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&status_patch(current, w)),
            )
            .await;
        match result {
            Ok(_) => return Ok(Written::Done),
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < WRITE_ATTEMPTS => {
                let now = api.get(&name).await?;
                if now.metadata.uid != cr.metadata.uid || !still(&now) {
                    return Ok(Written::Superseded);
                }
                fresh = Some(now);
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the last attempt returns")
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
    let w = StatusWrite {
        ready: Condition::new("Ready", false, reason::FAILED, message.clone()),
        certificate: None,
        ca: None,
        failure_time: true,
    };
    let written = write_status(ctx, cr, &w, open).await?;
    ctx.mark_finished(&cr.uid().unwrap_or_default());
    if written == Written::Superseded {
        return Ok(Action::await_change());
    }
    ctx.backoff.reset(&cr.uid().unwrap_or_default());
    ctx.metrics.fail(metric);
    tracing::warn!(request = %ObjectRef::from_obj(cr), reason = metric, %message, "request failed");
    ctx.request_events
        .publish(
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
    let w = StatusWrite {
        ready: Condition::new("Ready", false, reason::PENDING, message),
        certificate: None,
        ca: None,
        failure_time: false,
    };
    write_status(ctx, cr, &w, open).await.map(|_| ())
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
            ctx.request_events
                .publish(
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
    let uid = cr.uid().unwrap_or_default();
    if ctx.is_finished(&uid) {
        // Our own write finished it; the watch cache has not caught up yet.
        tracing::debug!(request = %ObjectRef::from_obj(cr), "stale cached version of a finished request; waiting for the watch");
        return Ok(Action::await_change());
    }
    let signed_with = (
        issuer.uid.clone(),
        issuer.generation,
        loaded.signer_info.sha256_fingerprint.clone(),
    );
    let issued = match ctx.issued.take(&uid, &signed_with) {
        Some(kept) => {
            tracing::info!(request = %ObjectRef::from_obj(cr), "writing the certificate signed before the last failed write");
            kept
        }
        None => match issuance::issue(&input, loaded, &ctx.remote_slots, key).await {
            Outcome::Issued {
                chain_pem,
                ca_pem,
                validity,
            } => {
                tracing::info!(request = %ObjectRef::from_obj(cr), uid = %uid, serial = %requests::leaf_serial(&chain_pem), "certificate signed");
                IssuedCert {
                    signed_with,
                    chain_pem,
                    ca_pem,
                    validity,
                }
            }
            Outcome::Failed { reason, message } => return fail(ctx, cr, reason, message).await,
            Outcome::Retry(what) => return retry(ctx, cr, what).await,
            Outcome::Busy(what) => {
                if ctx.backoff.waited(&uid, Instant::now()) == Retry::GiveUp {
                    let limit = duration::format(ctx.config.max_retry_duration);
                    let message = format!("{what}; gave up after retrying for {limit}");
                    return fail(ctx, cr, "RetriesExhausted", message).await;
                }
                pending(ctx, cr, format!("{what}; will retry")).await?;
                return Ok(Action::requeue(super::remote_slots::BUSY_REQUEUE));
            }
        },
    };
    let message = format!("Certificate issued by {key}, {}", issued.validity);
    let w = StatusWrite {
        ready: Condition::new("Ready", true, reason::ISSUED, message.clone()),
        certificate: Some(issued.chain_pem.clone()),
        ca: Some(issued.ca_pem.clone()),
        failure_time: false,
    };
    // Written only while the request still needs exactly this: approved, not denied, not
    // finished, no certificate. A newer version with a certificate keeps its certificate.
    let still_unsigned = |fresh: &CertificateRequest| {
        open(fresh) && decide(fresh, |_| IssuerState::Ready) == Decision::Sign
    };
    match write_status(ctx, cr, &w, still_unsigned).await {
        Ok(Written::Done) => ctx.mark_finished(&uid),
        Ok(Written::Superseded) => {
            ctx.mark_finished(&uid);
            tracing::warn!(request = %ObjectRef::from_obj(cr), serial = %requests::leaf_serial(&issued.chain_pem), "discarded a signed certificate: the request was finished or changed meanwhile");
            return Ok(Action::await_change());
        }
        Err(e) => {
            ctx.issued.put(&uid, issued);
            return Err(e);
        }
    }
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
    tracing::info!(request = %ObjectRef::from_obj(cr), issuer = %key, uid = %uid, serial = %requests::leaf_serial(&issued.chain_pem), "certificate issued");
    ctx.request_events
        .publish(
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
    ctx.check_fence()?;
    let cr = match &guard.0 {
        Ok(cr) => cr,
        Err(invalid) => {
            report_invalid::<CertificateRequest>(ctx, invalid).await;
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
            let w = StatusWrite {
                ready: Condition::new("Ready", false, reason::DENIED, message.clone()),
                certificate: None,
                ca: None,
                failure_time: true,
            };
            if write_status(ctx, cr, &w, open).await? == Written::Superseded {
                return Ok(Action::await_change());
            }
            ctx.metrics.fail("Denied");
            ctx.request_events
                .publish(
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
    let ctl = requests::slim_controller(
        api,
        data.ctx.config.concurrency,
        super::slim::certificate_request,
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
