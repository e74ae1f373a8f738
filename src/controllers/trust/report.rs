//! What trust distribution tells about itself: the `TrustDistributed` condition (its own
//! field manager), Events for what it wrote, and the write counter.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::bundle::{Outcome, CONDITION};
use super::CONDITION_MANAGER;
use crate::api::condition::{self, Condition};
use crate::api::issuer::AnyIssuer;
use crate::api::reason::Reason;
use crate::controllers::events::publish;
use crate::controllers::{Context, Error};

/// Count and announce the ConfigMaps written and deleted.
pub(super) async fn note_writes<K: AnyIssuer + Resource<DynamicType = ()>>(
    ctx: &Context,
    issuer: &K,
    name: &str,
    written: usize,
    deleted: usize,
) {
    ctx.metrics.trust_written("ConfigMap", "apply", written);
    ctx.metrics.trust_written("ConfigMap", "delete", deleted);
    if written + deleted > 0 {
        event(
            ctx,
            issuer,
            format!("ConfigMap {name}: {written} written, {deleted} deleted"),
        )
        .await;
    }
}

/// A Normal Event on the issuer about what was published.
pub(super) async fn event<K: AnyIssuer + Resource<DynamicType = ()>>(
    ctx: &Context,
    issuer: &K,
    note: String,
) {
    publish(
        &ctx.recorder,
        &issuer.object_ref(&()),
        EventType::Normal,
        Reason::Published.as_str(),
        "Distribute",
        note,
    )
    .await;
}

/// Write the `TrustDistributed` condition when it changed; `None` removes it.
pub(super) async fn report<K>(
    ctx: &Context,
    issuer: &K,
    outcome: Option<Outcome>,
) -> Result<(), Error>
where
    K: AnyIssuer + Resource<DynamicType = ()> + DeserializeOwned + Debug,
{
    let existing = issuer
        .issuer_status()
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    let old = condition::find(existing, CONDITION);
    let new: Option<Condition> = outcome.map(|o| {
        condition::merge(
            existing,
            o.condition().with_generation(issuer.meta().generation),
        )
    });
    let unchanged = match (old, &new) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_state(b),
        _ => false,
    };
    if unchanged {
        return Ok(());
    }
    ctx.check_fence()?;
    let key = issuer.key();
    let api = K::api(ctx.client.clone(), key.namespace.as_deref());
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": {"conditions": new.iter().collect::<Vec<_>>()},
    });
    api.patch_status(
        &issuer.name_any(),
        &PatchParams::apply(CONDITION_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    if let Some(c) = new.as_ref().filter(|c| !c.is_true()) {
        publish(
            &ctx.recorder,
            &issuer.object_ref(&()),
            EventType::Warning,
            c.reason
                .as_deref()
                .unwrap_or(Reason::PublishFailed.as_str()),
            "Distribute",
            c.message.clone().unwrap_or_default(),
        )
        .await;
    }
    Ok(())
}
