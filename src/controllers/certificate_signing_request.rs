//! The Kubernetes CertificateSigningRequest controller (DESIGN.md section 4): signs
//! `certificates.k8s.io/v1` requests whose signerName names one of our issuers. A request
//! naming a namespaced issuer is signed only if its requester may reference that issuer
//! (see [`super::signer_access`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{Future, StreamExt};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::backoff::Retry;
use super::certificate_request::decide::IssuerState;
use super::certificate_request::{service_account, IssuerStores};
use super::events::report_invalid;
use super::metrics::IssuedLabels;
use super::requests;
use super::signer_access::{self, Access, Needed};
use super::{Context, Error};
use crate::api::duration;
use crate::api::issuer::{IssuerKey, IssuerKind};
use crate::api::FIELD_MANAGER;
use crate::issuance::{self, Outcome, RequestInput};
use crate::pki::RequestContext;

type Guarded = DeserializeGuard<CertificateSigningRequest>;

/// Annotation cert-manager uses to carry a requested duration on a CSR.
pub const DURATION_ANNOTATION: &str = "experimental.cert-manager.io/request-duration";
/// Annotation cert-manager uses to request a CA certificate on a CSR.
pub const IS_CA_ANNOTATION: &str = "experimental.cert-manager.io/request-is-ca";

/// The issuer a signerName refers to, when it is one of ours.
pub fn issuer_key(signer_name: &str) -> Option<IssuerKey> {
    let (domain, rest) = signer_name.split_once('/')?;
    match domain {
        "pkiclusterissuers.pki-issuer.io" if !rest.is_empty() && !rest.contains('/') => {
            Some(IssuerKey {
                kind: IssuerKind::Cluster,
                namespace: None,
                name: rest.to_string(),
            })
        }
        "pkiissuers.pki-issuer.io" => {
            let (ns, name) = rest.split_once('.')?;
            (!ns.is_empty() && !name.is_empty() && !name.contains('/')).then(|| IssuerKey {
                kind: IssuerKind::Namespaced,
                namespace: Some(ns.to_string()),
                name: name.to_string(),
            })
        }
        _ => None,
    }
}

/// The action a CSR needs.
#[derive(Debug, Clone, PartialEq)]
pub enum CsrDecision {
    /// Not ours, not approved, denied, failed or already signed: never write.
    Skip,
    /// The issuer cannot sign yet (an Event says why; retried).
    Pending(String),
    /// Check, sign, verify, write.
    Sign(IssuerKey),
}

fn has_condition(csr: &CertificateSigningRequest, type_: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// Decide what to do with a CSR. Pure.
pub fn decide(
    csr: &CertificateSigningRequest,
    issuer: impl FnOnce(&IssuerKey) -> IssuerState,
) -> CsrDecision {
    let Some(key) = issuer_key(&csr.spec.signer_name) else {
        return CsrDecision::Skip;
    };
    let signed = csr
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty());
    if signed
        || has_condition(csr, "Denied")
        || has_condition(csr, "Failed")
        || !has_condition(csr, "Approved")
    {
        return CsrDecision::Skip;
    }
    match issuer(&key) {
        IssuerState::Missing => CsrDecision::Pending(format!("{key} not found")),
        IssuerState::NotReady(why) => CsrDecision::Pending(format!("{key} is not ready: {why}")),
        IssuerState::Unchecked => {
            CsrDecision::Pending(format!("{key} has not been checked by this replica yet"))
        }
        IssuerState::Ready => CsrDecision::Sign(key),
    }
}

/// The requested lifetime: the cert-manager annotation, else `spec.expirationSeconds`.
pub fn requested_duration(csr: &CertificateSigningRequest) -> Result<Option<Duration>, String> {
    if let Some(d) = csr.annotations().get(DURATION_ANNOTATION) {
        return duration::parse(d)
            .map(Some)
            .map_err(|e| format!("annotation {DURATION_ANNOTATION}: {e}"));
    }
    match csr.spec.expiration_seconds {
        Some(s) if s > 0 => Ok(Some(Duration::from_secs(s as u64))),
        Some(s) => Err(format!("spec.expirationSeconds must be positive, got {s}")),
        None => Ok(None),
    }
}

/// `{namespace}` and `{serviceAccount}` for a CSR: the namespaced issuer's namespace, or
/// for cluster issuers the requesting ServiceAccount's namespace.
pub fn policy_context(csr: &CertificateSigningRequest, key: &IssuerKey) -> RequestContext {
    let sa = service_account(csr.spec.username.as_deref());
    match key.kind {
        IssuerKind::Namespaced => RequestContext {
            namespace: key.namespace.clone(),
            service_account: sa
                .filter(|(ns, _)| Some(*ns) == key.namespace.as_deref())
                .map(|(_, n)| n.to_string()),
        },
        IssuerKind::Cluster => RequestContext {
            namespace: sa.map(|(ns, _)| ns.to_string()),
            service_account: sa.map(|(_, n)| n.to_string()),
        },
    }
}

/// Apply `status` to the CSR as decided on (`csr`), with its resourceVersion as a precondition;
/// on a conflict, read it again and write again only while it is still approved and unsigned
/// (at most 3 attempts). Returns whether the write happened.
async fn apply_status(
    ctx: &Context,
    csr: &CertificateSigningRequest,
    status: serde_json::Value,
) -> Result<bool, Error> {
    let api: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
    let name = csr.name_any();
    let mut rv = csr.metadata.resource_version.clone();
    for attempt in 1..=3 {
        ctx.check_fence()?;
        let mut patch = json!({
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "status": status,
        });
        if let Some(rv) = &rv {
            patch["metadata"] = json!({ "resourceVersion": rv });
        }
        match api
            .patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
        {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 && attempt < 3 => {
                let fresh = api.get(&name).await?;
                let ready = |_: &IssuerKey| IssuerState::Ready;
                if fresh.metadata.uid != csr.metadata.uid
                    || !matches!(decide(&fresh, ready), CsrDecision::Sign(_))
                {
                    return Ok(false);
                }
                rv = fresh.metadata.resource_version;
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the last attempt returns")
}

async fn fail(
    ctx: &Context,
    csr: &CertificateSigningRequest,
    reason: &str,
    message: String,
) -> Result<Action, Error> {
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or(jiff::Timestamp::now())
        .to_string();
    let written = apply_status(
        ctx,
        csr,
        json!({"conditions": [{
            "type": "Failed", "status": "True", "reason": reason, "message": message,
            "lastUpdateTime": now, "lastTransitionTime": now,
        }]}),
    )
    .await?;
    if !written {
        return Ok(Action::await_change());
    }
    ctx.backoff.reset(&csr.uid().unwrap_or_default());
    ctx.metrics.fail(reason);
    tracing::warn!(csr = %csr.name_any(), reason, %message, "CertificateSigningRequest failed");
    ctx.request_events
        .publish(
            &csr.object_ref(&()),
            EventType::Warning,
            reason,
            "Sign",
            message,
        )
        .await;
    Ok(Action::await_change())
}

/// A retryable failure: back off (Warning Event), or fail once the retry budget is spent.
async fn retry(
    ctx: &Context,
    csr: &CertificateSigningRequest,
    what: String,
) -> Result<Action, Error> {
    let uid = csr.uid().unwrap_or_default();
    match ctx.backoff.failed(&uid, Instant::now()) {
        Retry::GiveUp => fail(ctx, csr, "RetriesExhausted", what).await,
        Retry::After(d) => {
            tracing::warn!(csr = %csr.name_any(), %what, retry_in = ?d, "retryable error");
            ctx.request_events
                .publish(
                    &csr.object_ref(&()),
                    EventType::Warning,
                    "RetryableError",
                    "Sign",
                    format!("{what}; will retry"),
                )
                .await;
            Ok(Action::requeue(d))
        }
    }
}

/// An API error for a message: HTTP status, reason and the API server's message.
fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("HTTP {} {}: {}", s.code, s.reason, s.message),
        other => other.to_string(),
    }
}

async fn sign(
    ctx: &Context,
    csr: &CertificateSigningRequest,
    key: IssuerKey,
    stores: &IssuerStores,
) -> Result<Action, Error> {
    let started = Instant::now();
    let (_, Some(cached)) = stores.lookup(ctx, &key) else {
        return Ok(Action::requeue(Duration::from_secs(5)));
    };
    let loaded = cached.loaded.clone();
    match signer_access::reviews(csr, &key) {
        Needed::Nothing => {}
        Needed::Refuse(message) => return fail(ctx, csr, "PolicyViolation", message).await,
        Needed::Review(reviews) => match signer_access::check(&ctx.client, &reviews).await {
            Ok(Access::Allowed) => {}
            Ok(Access::Denied(message)) => return fail(ctx, csr, "PolicyViolation", message).await,
            Err(e) => {
                let what = format!(
                    "checking that {} may reference {key}: SubjectAccessReview failed: {}",
                    reviews.requester,
                    api_error(&e)
                );
                return retry(ctx, csr, what).await;
            }
        },
    }
    let duration = match requested_duration(csr) {
        Ok(d) => d,
        Err(e) => {
            let msg = format!("refused before signing: {e}");
            return fail(ctx, csr, "PolicyViolation", msg).await;
        }
    };
    let input = RequestInput {
        csr: csr.spec.request.0.clone(),
        duration,
        is_ca: csr.annotations().get(IS_CA_ANNOTATION).map(String::as_str) == Some("true"),
        usages: csr.spec.usages.clone().unwrap_or_default(),
        context: policy_context(csr, &key),
    };
    let (chain_pem, validity) = match issuance::issue(input, loaded, &ctx.remote_slots, &key).await
    {
        Outcome::Issued {
            chain_pem,
            validity,
            ..
        } => (chain_pem, validity),
        Outcome::Failed { reason, message } => return fail(ctx, csr, reason, message).await,
        Outcome::Busy(what) => {
            let uid = csr.uid().unwrap_or_default();
            if ctx.backoff.waited(&uid, Instant::now()) == Retry::GiveUp {
                return fail(ctx, csr, "RetriesExhausted", what).await;
            }
            tracing::debug!(csr = %csr.name_any(), %what, "no remote CA slot; re-queued");
            return Ok(Action::requeue(super::remote_slots::BUSY_REQUEUE));
        }
        Outcome::Retry(what) => return retry(ctx, csr, what).await,
    };
    use base64::Engine;
    tracing::info!(csr = %csr.name_any(), uid = %csr.uid().unwrap_or_default(), serial = %requests::leaf_serial(&chain_pem), "certificate signed");
    let written = apply_status(
        ctx,
        csr,
        json!({"certificate": base64::engine::general_purpose::STANDARD.encode(chain_pem.as_bytes())}),
    )
    .await?;
    if !written {
        tracing::warn!(csr = %csr.name_any(), "discarded a signed certificate: the CSR was signed, denied or failed meanwhile");
        return Ok(Action::await_change());
    }
    ctx.backoff.reset(&csr.uid().unwrap_or_default());
    ctx.metrics
        .signing_duration
        .observe(started.elapsed().as_secs_f64());
    tracing::info!(csr = %csr.name_any(), issuer = %key, "certificate issued");
    ctx.metrics
        .issued
        .get_or_create(&IssuedLabels {
            kind: "CertificateSigningRequest".into(),
            issuer: key.to_string(),
        })
        .inc();
    ctx.request_events
        .publish(
            &csr.object_ref(&()),
            EventType::Normal,
            "Issued",
            "Sign",
            format!("Certificate issued by {key}, {validity}"),
        )
        .await;
    Ok(Action::await_change())
}

/// Context of the CSR controller.
pub struct CsrContext {
    /// Shared controller state.
    pub ctx: Arc<Context>,
    /// Issuer stores.
    pub stores: IssuerStores,
}

async fn reconcile(guard: Arc<Guarded>, data: Arc<CsrContext>) -> Result<Action, Error> {
    data.ctx.check_fence()?;
    let csr = match &guard.0 {
        Ok(c) => c,
        Err(invalid) => {
            report_invalid::<CertificateSigningRequest>(&data.ctx, invalid).await;
            return Ok(Action::await_change());
        }
    };
    match decide(csr, |key| data.stores.lookup(&data.ctx, key).0) {
        CsrDecision::Skip => Ok(Action::await_change()),
        CsrDecision::Pending(why) => {
            tracing::info!(csr = %csr.name_any(), %why, "CSR waiting for its issuer");
            Ok(Action::requeue(Duration::from_secs(300)))
        }
        CsrDecision::Sign(key) => sign(&data.ctx, csr, key, &data.stores).await,
    }
}

fn error_policy(_obj: Arc<Guarded>, err: &Error, _data: Arc<CsrContext>) -> Action {
    tracing::warn!(error = %err, "CSR reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

/// Run the CSR controller until `shutdown` resolves.
pub async fn run(
    data: Arc<CsrContext>,
    ready_issuers: UnboundedReceiver<IssuerKey>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<Guarded> = Api::all(data.ctx.client.clone());
    let ctl = requests::slim_controller(
        api,
        data.ctx.config.concurrency,
        super::slim::certificate_signing_request,
    );
    let ctl =
        requests::requeue_on_ready(ctl, ready_issuers, |c: &CertificateSigningRequest, key| {
            issuer_key(&c.spec.signer_name).as_ref() == Some(key)
        });
    ctl.graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, data)
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestCondition, CertificateSigningRequestSpec,
        CertificateSigningRequestStatus,
    };

    fn csr(signer: &str, conds: &[&str]) -> CertificateSigningRequest {
        CertificateSigningRequest {
            spec: CertificateSigningRequestSpec {
                signer_name: signer.into(),
                ..Default::default()
            },
            status: Some(CertificateSigningRequestStatus {
                conditions: Some(
                    conds
                        .iter()
                        .map(|t| CertificateSigningRequestCondition {
                            type_: t.to_string(),
                            status: "True".into(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ready(_: &IssuerKey) -> IssuerState {
        IssuerState::Ready
    }

    #[test]
    fn parses_both_signer_name_forms() {
        let k = issuer_key("pkiclusterissuers.pki-issuer.io/mesh").unwrap();
        assert_eq!(
            (k.kind, k.namespace, k.name.as_str()),
            (IssuerKind::Cluster, None, "mesh")
        );
        let k = issuer_key("pkiissuers.pki-issuer.io/apps.web-ca").unwrap();
        assert_eq!(
            (k.kind, k.namespace.as_deref(), k.name.as_str()),
            (IssuerKind::Namespaced, Some("apps"), "web-ca")
        );
        for other in [
            "kubernetes.io/kube-apiserver-client",
            "pkiissuers.pki-issuer.io/noname",
            "issuers.cert-manager.io/a.b",
            "pkiclusterissuers.pki-issuer.io/",
        ] {
            assert!(issuer_key(other).is_none(), "{other}");
        }
    }

    #[test]
    fn only_approved_unsigned_requests_of_ours_are_signed() {
        let ours = "pkiclusterissuers.pki-issuer.io/mesh";
        assert!(matches!(
            decide(&csr(ours, &["Approved"]), ready),
            CsrDecision::Sign(_)
        ));
        assert_eq!(decide(&csr(ours, &[]), ready), CsrDecision::Skip);
        assert_eq!(decide(&csr(ours, &["Denied"]), ready), CsrDecision::Skip);
        assert_eq!(
            decide(&csr(ours, &["Approved", "Failed"]), ready),
            CsrDecision::Skip
        );
        assert_eq!(
            decide(&csr("example.com/x", &["Approved"]), ready),
            CsrDecision::Skip
        );
        let mut signed = csr(ours, &["Approved"]);
        signed.status.as_mut().unwrap().certificate = Some(k8s_openapi::ByteString(b"x".to_vec()));
        assert_eq!(decide(&signed, ready), CsrDecision::Skip);
        assert!(matches!(
            decide(&csr(ours, &["Approved"]), |_| IssuerState::Missing),
            CsrDecision::Pending(_)
        ));
    }

    #[test]
    fn duration_comes_from_annotation_then_expiration_seconds() {
        let mut c = csr("x/y", &[]);
        assert_eq!(requested_duration(&c), Ok(None));
        c.spec.expiration_seconds = Some(3600);
        assert_eq!(requested_duration(&c), Ok(Some(Duration::from_secs(3600))));
        c.annotations_mut()
            .insert(DURATION_ANNOTATION.into(), "2h".into());
        assert_eq!(requested_duration(&c), Ok(Some(Duration::from_secs(7200))));
        c.annotations_mut()
            .insert(DURATION_ANNOTATION.into(), "two hours".into());
        assert!(requested_duration(&c).is_err());
    }

    #[test]
    fn policy_namespace_follows_the_issuer_scope() {
        let mut c = csr("x/y", &[]);
        c.spec.username = Some("system:serviceaccount:istio-system:istiod".into());
        let cluster = issuer_key("pkiclusterissuers.pki-issuer.io/mesh").unwrap();
        let ctx = policy_context(&c, &cluster);
        assert_eq!(ctx.namespace.as_deref(), Some("istio-system"));
        assert_eq!(ctx.service_account.as_deref(), Some("istiod"));
        let namespaced = issuer_key("pkiissuers.pki-issuer.io/apps.ca").unwrap();
        let ctx = policy_context(&c, &namespaced);
        assert_eq!(ctx.namespace.as_deref(), Some("apps"));
        assert_eq!(
            ctx.service_account, None,
            "an SA of another namespace is not this namespace's"
        );
        c.spec.username = Some("alice".into());
        assert_eq!(policy_context(&c, &cluster).namespace, None);
    }
}
