//! Trust distribution (`spec.trustDistribution`, docs/design.md "Trust distribution"): after
//! each successful issuer check, the checked anchors are published as a ClusterTrustBundle and
//! as ConfigMaps in selected namespaces; the issuer's `TrustDistributed` condition says what is
//! published and what is not, and why.
//!
//! Only the anchors of a passed check are ever published: a `trustAnchors` change that drops
//! the root the signer chains to fails the check, so nothing is published and the previous
//! bundle stays ([`bundle::Outcome::Held`]).
//!
//! Cleanup: the published objects carry an owner reference to the issuer, so the garbage
//! collector (kube-controller-manager) deletes them with the issuer, with no finalizer that
//! would block the issuer's deletion while pki-issuer is down or uninstalled. Turning a part
//! off, or deselecting a namespace, is cleaned up here.

pub mod bundle;
pub mod cluster_bundle;
pub mod config_maps;
pub mod watches;

use std::fmt::Debug;
use std::time::Duration;

use serde::de::DeserializeOwned;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::core::Selector;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use self::bundle::{Outcome, CONDITION};
use self::cluster_bundle::Applied;
use super::events::publish;
use super::{Context, Error};
use crate::api::condition::{self, Condition};
use crate::api::issuer::{AnyIssuer, IssuerKind};
use crate::api::reason::Reason;
use crate::api::trust_distribution::TrustDistributionSpec;
use crate::signers::load::LoadedIssuer;

/// Field manager of the `TrustDistributed` condition (the `Ready` condition is applied by
/// `pki-issuer`; a separate manager keeps each apply from removing the other's condition).
pub const CONDITION_MANAGER: &str = "pki-issuer-trust";
/// How soon a pass that left work (write budget) or failed runs again.
pub const SOON: Duration = Duration::from_secs(5);

fn owner<K: AnyIssuer + Resource<DynamicType = ()>>(issuer: &K) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: issuer.meta().name.clone()?,
        uid: issuer.meta().uid.clone()?,
        controller: Some(true),
        block_owner_deletion: None,
    })
}

/// Publish the anchors of a passed check (`Ok`), or hold what is published when the check
/// failed (`Err` with why), and clean up what the spec no longer asks for. Returns when to
/// come back sooner than the health-check interval, if at all.
pub async fn distribute<K>(
    ctx: &Context,
    issuer: &K,
    checked: Result<&LoadedIssuer, String>,
) -> Result<Option<Duration>, Error>
where
    K: AnyIssuer + Resource<DynamicType = ()> + DeserializeOwned + Debug,
{
    let spec = issuer.issuer_spec().trust_distribution.clone();
    if spec.is_none() && !has_condition(issuer) {
        return Ok(None);
    }
    let (outcome, again) = match (&spec, checked) {
        // Turned off: clean up whatever the check says.
        (None, _) => match pass(ctx, issuer, None, None).await {
            Ok((_, again)) => (None, again),
            Err(e) => (Some(failed(&e)), Some(SOON)),
        },
        (Some(_), Err(why)) => (Some(Outcome::Held { why }), None),
        (Some(s), Ok(loaded)) => match pass(ctx, issuer, Some(s), Some(loaded)).await {
            Ok((o, again)) => (Some(o), again),
            Err(e) => (Some(failed(&e)), Some(SOON)),
        },
    };
    report(ctx, issuer, outcome).await?;
    Ok(again)
}

fn failed(e: &Error) -> Outcome {
    Outcome::Incomplete {
        reason: Reason::PublishFailed,
        message: format!("publishing the trust anchors failed: {e}; retrying"),
    }
}

fn has_condition<K: AnyIssuer>(issuer: &K) -> bool {
    issuer
        .issuer_status()
        .is_some_and(|s| condition::find(&s.conditions, CONDITION).is_some())
}

/// One pass: apply what is wanted, delete what is not. `loaded` is `None` only for cleanup.
async fn pass<K>(
    ctx: &Context,
    issuer: &K,
    spec: Option<&TrustDistributionSpec>,
    loaded: Option<&LoadedIssuer>,
) -> Result<(Outcome, Option<Duration>), Error>
where
    K: AnyIssuer + Resource<DynamicType = ()>,
{
    let key = issuer.key();
    let owner = owner(issuer).ok_or(Error::MissingMeta("name or uid"))?;
    let signer = key.signer_name();
    let ctb_name = bundle::cluster_trust_bundle_name(&signer);
    let text = loaded
        .map(|l| bundle::bundle_pem(l.chain.anchors_der()))
        .unwrap_or_default();
    let issuer_id = key.to_string();
    let mut done = Vec::new();
    let mut problems: Vec<(Reason, String)> = Vec::new();
    let mut again = None;
    let allowed = &ctx.config.watch_namespaces;

    // ClusterTrustBundle.
    let want_ctb = spec.and_then(|s| s.cluster_trust_bundle).unwrap_or(false);
    if want_ctb && K::KIND == IssuerKind::Namespaced {
        problems.push((
            Reason::NotAllowed,
            "clusterTrustBundle is for PKIClusterIssuers only: a PKIIssuer's namespace must not publish cluster-wide trust".into(),
        ));
    } else if want_ctb {
        ctx.check_fence()?;
        match cluster_bundle::apply(&ctx.client, &ctb_name, &signer, &issuer_id, &owner, &text).await {
            Ok(Applied::Current(changed)) => {
                if changed {
                    ctx.metrics.trust_written("ClusterTrustBundle", "apply");
                    event(ctx, issuer, format!("published ClusterTrustBundle {ctb_name}")).await;
                }
                done.push(format!("ClusterTrustBundle {ctb_name}"));
            }
            Ok(Applied::Unavailable) => problems.push((
                Reason::ApiUnavailable,
                "the API server does not serve ClusterTrustBundles (certificates.k8s.io/v1beta1; feature gate ClusterTrustBundle and its runtime config): none published".into(),
            )),
            // The ConfigMaps are still published; a refusal (4xx, e.g. no `attest`) waits for
            // the next check, anything else is retried soon.
            Err(e) => {
                if !matches!(&e, kube::Error::Api(s) if (400..500).contains(&s.code)) {
                    again = Some(SOON);
                }
                problems.push((
                    Reason::PublishFailed,
                    format!("ClusterTrustBundle {ctb_name} not published: {e}"),
                ));
            }
        }
    } else if K::KIND == IssuerKind::Cluster {
        ctx.check_fence()?;
        if cluster_bundle::remove(&ctx.client, &ctb_name, &owner.uid).await? {
            ctx.metrics.trust_written("ClusterTrustBundle", "delete");
            event(
                ctx,
                issuer,
                format!("deleted ClusterTrustBundle {ctb_name}"),
            )
            .await;
        }
    }

    // ConfigMaps.
    let cm_spec = spec.and_then(|s| s.config_map.as_ref());
    let own_ns: Vec<String> = issuer.namespace().into_iter().collect();
    let scope: &[String] = match K::KIND {
        IssuerKind::Namespaced => &own_ns,
        IssuerKind::Cluster => allowed,
    };
    let wanted: Option<Vec<String>> = match (cm_spec, K::KIND) {
        (None, _) => Some(Vec::new()),
        (Some(c), IssuerKind::Namespaced) if c.namespace_selector.is_some() => {
            problems.push((
                Reason::NotAllowed,
                "configMap.namespaceSelector is for PKIClusterIssuers only: a PKIIssuer writes its ConfigMap into its own namespace; no ConfigMap published".into(),
            ));
            None
        }
        (Some(c), _) if crate::api::check_object_name("ConfigMap", &c.name).is_err() => {
            problems.push((
                Reason::NotAllowed,
                crate::api::check_object_name("ConfigMap", &c.name).unwrap_err(),
            ));
            None
        }
        (Some(_), IssuerKind::Namespaced) => Some(own_ns.clone()),
        (Some(c), IssuerKind::Cluster) => {
            let sel = c.namespace_selector.clone().unwrap_or_default();
            match Selector::try_from(sel.to_label_selector()) {
                Ok(selector) => {
                    let (names, over) =
                        config_maps::selected_namespaces(&ctx.client, &selector, allowed).await?;
                    if over > 0 {
                        problems.push((
                            Reason::NotAllowed,
                            format!(
                                "{over} selected namespaces beyond the limit of {} got no ConfigMap",
                                config_maps::MAX_NAMESPACES
                            ),
                        ));
                    }
                    Some(names)
                }
                Err(e) => {
                    problems.push((
                        Reason::NotAllowed,
                        format!("configMap.namespaceSelector: {e}"),
                    ));
                    None
                }
            }
        }
    };
    if let Some(wanted) = wanted {
        ctx.check_fence()?;
        let published = config_maps::published(&ctx.client, &owner.uid, scope).await?;
        if let Some(c) = cm_spec {
            let target = config_maps::Target {
                name: &c.name,
                key: c.key(),
                bundle: &text,
                owner: &owner,
                issuer: &issuer_id,
            };
            let r = config_maps::sync(&ctx.client, &wanted, published, &target).await?;
            note_writes(ctx, issuer, &c.name, r.written, r.deleted).await;
            done.push(format!(
                "ConfigMap {} in {} namespace(s)",
                c.name, r.current
            ));
            if !r.foreign.is_empty() {
                problems.push((
                    Reason::ForeignObject,
                    format!(
                        "ConfigMap {} exists but was not written by pki-issuer, left unchanged in: {}",
                        c.name,
                        bundle::list_bounded(&r.foreign)
                    ),
                ));
            }
            if r.pending > 0 {
                again = Some(SOON);
                problems.push((
                    Reason::PublishFailed,
                    format!(
                        "{} namespace(s) still to be written (at most {} writes per pass)",
                        r.pending,
                        config_maps::MAX_WRITES_PER_PASS
                    ),
                ));
            }
        } else if !published.is_empty() {
            let n = config_maps::delete(&ctx.client, published).await?;
            note_writes(ctx, issuer, "(turned off)", 0, n).await;
        }
    }

    let published = if done.is_empty() {
        "nothing published".to_string()
    } else {
        format!("published {}", done.join(" and "))
    };
    let outcome = match problems.first() {
        None => Outcome::Published { what: published },
        Some((reason, _)) => Outcome::Incomplete {
            reason: *reason,
            message: format!(
                "{}; {published}",
                problems
                    .iter()
                    .map(|p| p.1.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        },
    };
    Ok((outcome, again))
}

async fn note_writes<K: AnyIssuer + Resource<DynamicType = ()>>(
    ctx: &Context,
    issuer: &K,
    name: &str,
    written: usize,
    deleted: usize,
) {
    for _ in 0..written {
        ctx.metrics.trust_written("ConfigMap", "apply");
    }
    for _ in 0..deleted {
        ctx.metrics.trust_written("ConfigMap", "delete");
    }
    if written + deleted > 0 {
        event(
            ctx,
            issuer,
            format!("ConfigMap {name}: {written} written, {deleted} deleted"),
        )
        .await;
    }
}

async fn event<K: AnyIssuer + Resource<DynamicType = ()>>(ctx: &Context, issuer: &K, note: String) {
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
async fn report<K>(ctx: &Context, issuer: &K, outcome: Option<Outcome>) -> Result<(), Error>
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
