//! Event reasons and a helper that publishes without failing the reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::Resource;

use super::Context;

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
        "InvalidObject",
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
    let mut note = note;
    if note.len() > 1000 {
        let mut cut = 1000;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    let ev = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, reference).await {
        tracing::warn!(error = %e, reason, "could not publish Event");
    }
}
