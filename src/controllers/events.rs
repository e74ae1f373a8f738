//! Publishing Events without failing the reconcile: issuers through kube's [`Recorder`]
//! (which folds repeats into a series, caching every Event for six minutes), requests through
//! [`RequestEvents`] (each request reaches an outcome once: one create, nothing cached, so a
//! burst of requests does not grow the process by one cached Event per request).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource};

use super::Context;

const MAX_NOTE: usize = 1000;

fn truncate(mut note: String) -> String {
    if note.len() > MAX_NOTE {
        let mut cut = MAX_NOTE;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    note
}

/// Report an object that does not deserialize (wrong types in its fields, written past
/// validation): a log line and a Warning Event `InvalidObject` on it naming the error, once
/// per resourceVersion. The controller keeps serving every other object.
pub async fn report_invalid<K: Resource<DynamicType = ()>>(ctx: &Context, invalid: &InvalidObject) {
    let meta = &invalid.metadata;
    let kind = K::kind(&());
    let key = format!(
        "{kind}/{}/{}",
        meta.uid.as_deref().unwrap_or_default(),
        meta.resource_version.as_deref().unwrap_or_default()
    );
    tracing::warn!(%kind, namespace = ?meta.namespace, name = ?meta.name, error = %invalid.error, "object does not deserialize; reported and skipped");
    if !ctx.first_report(key) || meta.name.is_none() || !ctx.fence.allows_write() {
        return;
    }
    let reference = ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(kind.to_string()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..Default::default()
    };
    publish(
        &ctx.recorder,
        &reference,
        EventType::Warning,
        crate::api::reason::Reason::InvalidObject.as_str(),
        "Decode",
        format!(
            "pki-issuer cannot read this {kind}: {}; fix the object",
            invalid.error
        ),
    )
    .await;
}

/// Publish an Event; a failure is logged, never propagated (Events are best effort).
pub async fn publish(
    recorder: &Recorder,
    reference: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let ev = Event {
        type_,
        reason: reason.to_string(),
        note: Some(truncate(note)),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, reference).await {
        tracing::warn!(error = %e, reason, "could not publish Event");
    }
}

/// Publishes the Events of CertificateRequests and CertificateSigningRequests: each is
/// created as is (the same fields kube's [`Recorder`] writes), without a cache.
#[derive(Clone)]
pub struct RequestEvents {
    client: Client,
    reporter: Reporter,
}

impl RequestEvents {
    /// Events reported as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> RequestEvents {
        RequestEvents { client, reporter }
    }

    /// Publish an Event about `reference`; a failure is logged, never propagated.
    pub async fn publish(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = self.event(reference, type_, reason, action, note);
        let ns = reference.namespace.as_deref().unwrap_or("default");
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), ns);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(error = %e, reason, "could not publish Event");
        }
    }

    fn event(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) -> K8sEvent {
        let now = jiff::Timestamp::now();
        let controller = &self.reporter.controller;
        K8sEvent {
            action: Some(action.to_string()),
            reason: Some(reason.to_string()),
            event_time: Some(MicroTime(now)),
            regarding: Some(reference.clone()),
            note: Some(truncate(note)),
            metadata: ObjectMeta {
                namespace: reference.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    reference.name.as_ref().unwrap_or(controller),
                    now.as_nanosecond()
                )),
                ..Default::default()
            },
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| controller.clone()),
            ),
            type_: Some(
                match type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn request_events_carry_what_the_recorder_writes() {
        let client = Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
            .expect("client");
        let events = RequestEvents::new(
            client,
            Reporter {
                controller: "pki-issuer".into(),
                instance: Some("pod-1".into()),
            },
        );
        let reference = ObjectReference {
            kind: Some("CertificateRequest".into()),
            namespace: Some("apps".into()),
            name: Some("web-1".into()),
            ..Default::default()
        };
        let e = events.event(
            &reference,
            EventType::Warning,
            "PolicyViolation",
            "Sign",
            "é".repeat(600),
        );
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reason.as_deref(), Some("PolicyViolation"));
        assert_eq!(e.reporting_instance.as_deref(), Some("pod-1"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("apps"));
        assert!(e.metadata.name.as_deref().unwrap().starts_with("web-1."));
        assert_eq!(e.regarding.as_ref(), Some(&reference));
        let note = e.note.unwrap();
        assert!(note.len() <= MAX_NOTE && note.chars().all(|c| c == 'é'));
    }
}
