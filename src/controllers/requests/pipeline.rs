//! The API layer of the request pipeline, generic over the request kind: reconcile (decide,
//! sign, plan, write), the controller, and the re-queue of waiting requests when their issuer
//! becomes ready.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{Future, StreamExt};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::decide::{decide, Decision};
use super::issuers::IssuerIndex;
use super::memory::SignedCert;
use super::plan::{self, plan, Next, Plan, RetryState, ISSUER_CHECK_WAIT};
use super::write::{write_status, Written};
use super::{Access, Phase, RequestKind, Write};
use crate::api::issuer::IssuerKey;
use crate::api::reason::Reason;
use crate::controllers::cache::CachedIssuer;
use crate::controllers::events::report_invalid;
use crate::controllers::metrics::IssuedLabels;
use crate::controllers::{named_ref, Context, Error};
use crate::issuance::{self, Outcome};

/// Most characters of the API server's refusal quoted in a request's status.
const MAX_REFUSAL_CHARS: usize = 1024;

/// What every request controller reads.
pub struct RequestData {
    /// Shared controller state.
    pub ctx: Arc<Context>,
    /// The issuers.
    pub issuers: IssuerIndex,
}

/// The serial number (hex) of the first certificate of a PEM chain, for logs.
pub fn leaf_serial(chain_pem: &str) -> String {
    pem::parse(chain_pem)
        .ok()
        .and_then(|p| crate::pki::cert_info(p.contents()).ok())
        .map(|i| i.serial_hex)
        .unwrap_or_else(|| "?".into())
}

fn age<K: RequestKind>(req: &K) -> Duration {
    req.meta()
        .creation_timestamp
        .as_ref()
        .and_then(|t| jiff::Timestamp::now().duration_since(t.0).try_into().ok())
        .unwrap_or(Duration::ZERO)
}

/// Access, input and issuance of one attempt, reduced to one [`Outcome`].
async fn attempt<K: RequestKind>(
    ctx: &Context,
    req: &K,
    key: &IssuerKey,
    issuer: &CachedIssuer,
) -> Outcome {
    match req.access(ctx, key).await {
        Access::Allowed => {}
        Access::Denied(message) => {
            return Outcome::Failed {
                reason: Reason::PolicyViolation,
                message,
            }
        }
        Access::Unknown(what) => return Outcome::Retry(what),
    }
    match req.input(key) {
        Ok(input) => issuance::issue(input, issuer.loaded.clone(), &ctx.remote_slots, key).await,
        Err(e) => Outcome::Failed {
            reason: Reason::PolicyViolation,
            message: format!("refused before signing: {e}"),
        },
    }
}

/// Sign a request the issuer index found ready, plan and write the result.
pub(crate) async fn sign<K: RequestKind>(
    ctx: &Context,
    req: &K,
    key: &IssuerKey,
    issuer: &CachedIssuer,
) -> Result<Action, Error> {
    let started = Instant::now();
    let uid = req.uid().unwrap_or_default();
    if ctx.requests.is_finished(&uid) {
        // Our own write finished it; the watch cache has not caught up yet.
        tracing::debug!(kind = K::KIND, name = %req.name_any(), "stale cached version of a finished request; waiting for the watch");
        return Ok(Action::await_change());
    }
    let signed_with = (
        issuer.uid.clone(),
        issuer.generation,
        issuer.loaded.signer_info.sha256_fingerprint.clone(),
    );
    let outcome = match ctx.requests.take(&uid, &signed_with) {
        Some(kept) => {
            tracing::info!(kind = K::KIND, name = %req.name_any(), "writing the certificate signed before the last failed write");
            Outcome::Issued {
                chain_pem: kept.chain_pem,
                ca_pem: kept.ca_pem,
                validity: kept.validity,
            }
        }
        None => {
            let outcome = attempt(ctx, req, key, issuer).await;
            if let Outcome::Issued { chain_pem, .. } = &outcome {
                tracing::info!(kind = K::KIND, name = %req.name_any(), uid = %uid, serial = %leaf_serial(chain_pem), "certificate signed");
            }
            outcome
        }
    };
    let kept = match &outcome {
        Outcome::Issued {
            chain_pem,
            ca_pem,
            validity,
        } => Some(SignedCert {
            signed_with,
            chain_pem: chain_pem.clone(),
            ca_pem: ca_pem.clone(),
            validity: validity.clone(),
        }),
        _ => None,
    };
    let attempts = match &outcome {
        Outcome::Retry(_) => ctx.requests.failed(&uid),
        _ => ctx.requests.attempts(&uid),
    };
    let retry = RetryState {
        attempts,
        age: age(req),
        budget: ctx.config.max_retry_duration,
    };
    execute(ctx, req, key, plan(outcome, key, retry), kept, started).await
}

/// Carry out `plan`: the status write (kept in memory when a signed certificate's write
/// fails), metrics, log, Event, and when to look again.
async fn execute<K: RequestKind>(
    ctx: &Context,
    req: &K,
    key: &IssuerKey,
    plan: Plan,
    kept: Option<SignedCert>,
    started: Instant,
) -> Result<Action, Error> {
    let uid = req.uid().unwrap_or_default();
    if plan.recheck_issuer {
        if let Some(Write::Pending { message }) = &plan.write {
            ctx.cache.recheck(key, message.clone());
        }
    }
    if let Some(write) = &plan.write {
        let still = |fresh: &K| match write {
            // Only while it still needs exactly this certificate: approved, unsigned.
            Write::Issued { .. } => fresh.phase() == Phase::Open,
            _ => fresh.phase() != Phase::Finished,
        };
        match write_status(ctx, req, write, still).await {
            Ok(Written::Done) if write.is_final() => ctx.requests.finish(&uid),
            Ok(Written::Done) => {}
            Ok(Written::Superseded) => {
                if write.is_final() {
                    ctx.requests.finish(&uid);
                }
                if let Write::Issued { chain_pem, .. } = write {
                    tracing::warn!(kind = K::KIND, name = %req.name_any(), serial = %leaf_serial(chain_pem), "discarded a signed certificate: the request was finished or changed meanwhile");
                }
                return Ok(Action::await_change());
            }
            // The API server's validation refuses this certificate (a PodCertificateRequest's
            // notBefore or lifetime rules): writing it again would be refused again, so the
            // request is failed with the API server's reason instead of retried forever.
            Err(Error::Kube(kube::Error::Api(s)))
                if s.code == 422 && matches!(write, Write::Issued { .. }) =>
            {
                let why: String = s.message.chars().take(MAX_REFUSAL_CHARS).collect();
                let refused = plan::failed(
                    Reason::VerificationFailed,
                    format!("the API server refused the issued certificate, which was not written: {why}"),
                );
                return Box::pin(execute(ctx, req, key, refused, None, started)).await;
            }
            Err(e) => {
                if let Some(cert) = kept {
                    ctx.requests.keep(&uid, cert);
                }
                return Err(e);
            }
        }
        match write {
            Write::Issued { chain_pem, .. } => {
                ctx.metrics
                    .signing_duration
                    .observe(started.elapsed().as_secs_f64());
                ctx.metrics
                    .issued
                    .get_or_create(&IssuedLabels {
                        kind: K::KIND.into(),
                        issuer: key.to_string(),
                    })
                    .inc();
                tracing::info!(kind = K::KIND, name = %req.name_any(), issuer = %key, uid = %uid, serial = %leaf_serial(chain_pem), "certificate issued");
            }
            Write::Failed { reason, message } => {
                ctx.metrics.fail(*reason);
                tracing::warn!(kind = K::KIND, name = %req.name_any(), %reason, %message, "request failed");
            }
            Write::Denied { .. } => ctx.metrics.fail(Reason::Denied),
            Write::Pending { .. } => {}
        }
    }
    if let Some(note) = plan.event {
        ctx.request_events
            .publish(
                &req.object_ref(&()),
                note.type_,
                note.reason.as_str(),
                "Sign",
                note.message,
            )
            .await;
    }
    Ok(match plan.next {
        Next::AwaitChange => Action::await_change(),
        Next::Requeue(d) => Action::requeue(d),
    })
}

#[tracing::instrument(skip_all, fields(kind = K::KIND, name = %guard.name_any()))]
async fn reconcile<K: RequestKind>(
    guard: Arc<DeserializeGuard<K>>,
    data: Arc<RequestData>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_request(&guard, &data).await;
    data.ctx
        .metrics
        .reconciled(K::KIND, started.elapsed(), result.as_ref().err());
    result
}

async fn reconcile_request<K: RequestKind>(
    guard: &DeserializeGuard<K>,
    data: &RequestData,
) -> Result<Action, Error> {
    let ctx = &data.ctx;
    ctx.check_fence()?;
    let req = match &guard.0 {
        Ok(req) => req,
        Err(invalid) => {
            report_invalid::<K>(ctx, invalid).await;
            return Ok(Action::await_change());
        }
    };
    let mut cached = None;
    let decision = decide(req, |key| {
        let (state, c) = data.issuers.lookup(ctx, key);
        cached = c;
        state
    });
    let started = Instant::now();
    match decision {
        Decision::Skip | Decision::AwaitApproval => Ok(Action::await_change()),
        // The check's cache update re-queues the request; the delay covers a still-syncing
        // issuer list.
        Decision::AwaitIssuerCheck => Ok(Action::requeue(ISSUER_CHECK_WAIT)),
        Decision::MarkDenied(reason, message) => {
            let key = req.issuer_key().expect("decided for one of ours");
            execute(ctx, req, &key, plan::denied(reason, message), None, started).await
        }
        Decision::Pending(message) => {
            let key = req.issuer_key().expect("decided for one of ours");
            execute(ctx, req, &key, plan::waiting(message), None, started).await
        }
        Decision::Sign(key) => {
            let issuer = cached.expect("Ready issuers come with their cache entry");
            sign(ctx, req, &key, &issuer).await
        }
    }
}

fn error_policy<K: RequestKind>(
    obj: Arc<DeserializeGuard<K>>,
    err: &Error,
    data: Arc<RequestData>,
) -> Action {
    let uid = obj.meta().uid.clone().unwrap_or_default();
    let delay = plan::retry_delay(data.ctx.requests.failed(&uid));
    tracing::warn!(kind = K::KIND, error = %err, ?delay, "request reconcile failed; retrying");
    Action::requeue(delay)
}

/// A request controller whose store holds slimmed objects (see [`RequestKind::slim`]): the
/// watch stream is mapped before the reflector, so full objects are never cached.
fn slim_controller<K: RequestKind>(
    api: Api<DeserializeGuard<K>>,
    concurrency: u16,
) -> Controller<DeserializeGuard<K>> {
    let (reader, writer) = kube::runtime::reflector::store();
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .modify(|guard: &mut DeserializeGuard<K>| {
            if let Ok(obj) = guard.0.as_mut() {
                obj.slim();
            }
        })
        .default_backoff();
    let objects = kube::runtime::reflector(writer, stream).applied_objects();
    Controller::for_stream(objects, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
}

/// Re-queue every stored request of ours that waits for an issuer announced on `ready`.
fn requeue_on_ready<K>(
    ctl: Controller<DeserializeGuard<K>>,
    ready: UnboundedReceiver<IssuerKey>,
) -> Controller<DeserializeGuard<K>>
where
    K: RequestKind + DeserializeOwned + Debug,
{
    let store = ctl.store();
    let requeue = ready.flat_map(move |key| {
        let refs: Vec<ObjectRef<DeserializeGuard<K>>> = store
            .state()
            .iter()
            .filter(|g| {
                g.0.as_ref().is_ok_and(|r| {
                    r.issuer_key().as_ref() == Some(&key) && r.phase() != Phase::Finished
                })
            })
            .filter_map(|g| named_ref(g.as_ref()))
            .collect();
        futures::stream::iter(refs)
    });
    ctl.reconcile_on(requeue)
}

/// Run the controller of request kind `K` until `shutdown` resolves.
pub async fn run<K: RequestKind>(
    data: Arc<RequestData>,
    ready_issuers: UnboundedReceiver<IssuerKey>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<DeserializeGuard<K>> = Api::all(data.ctx.client.clone());
    let ctl = slim_controller(api, data.ctx.config.concurrency);
    requeue_on_ready(ctl, ready_issuers)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy::<K>, data)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(kind = K::KIND, error = %e, "request controller event");
            }
        })
        .await;
}
