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
mod report;
pub mod watches;

use std::fmt::Debug;
use std::time::Duration;

use serde::de::DeserializeOwned;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::core::Selector;
use kube::{Resource, ResourceExt};

use self::bundle::{Outcome, CONDITION};
use self::cluster_bundle::Applied;
use self::report::{event, note_writes, report};
use super::{Context, Error};
use crate::api::condition;
use crate::api::issuer::{AnyIssuer, IssuerKind};
use crate::api::reason::Reason;
use crate::api::trust_distribution::{TrustConfigMapSpec, TrustDistributionSpec};
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

/// What a pass published, what it could not and why, and whether to come back soon.
#[derive(Default)]
struct Tally {
    done: Vec<String>,
    problems: Vec<(Reason, String)>,
    again: Option<Duration>,
}

impl Tally {
    fn problem(&mut self, reason: Reason, message: impl Into<String>) {
        self.problems.push((reason, message.into()));
    }

    fn outcome(self) -> (Outcome, Option<Duration>) {
        let published = if self.done.is_empty() {
            "nothing published".to_string()
        } else {
            format!("published {}", self.done.join(" and "))
        };
        let outcome = match self.problems.first() {
            None => Outcome::Published { what: published },
            Some((reason, _)) => {
                let problems: Vec<&str> = self.problems.iter().map(|p| p.1.as_str()).collect();
                Outcome::Incomplete {
                    reason: *reason,
                    message: format!("{}; {published}", problems.join("; ")),
                }
            }
        };
        (outcome, self.again)
    }
}

/// What one issuer publishes: its identity on the objects and the bundle text.
struct Publication<'a, K> {
    issuer: &'a K,
    owner: OwnerReference,
    issuer_id: String,
    text: String,
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
    let p = Publication {
        issuer,
        owner: owner(issuer).ok_or(Error::MissingMeta("name or uid"))?,
        issuer_id: issuer.key().to_string(),
        text: loaded
            .map(|l| bundle::bundle_pem(l.chain.anchors_der()))
            .unwrap_or_default(),
    };
    let mut tally = Tally::default();
    let want_ctb = spec.and_then(|s| s.cluster_trust_bundle).unwrap_or(false);
    cluster_trust_bundle(ctx, &p, want_ctb, &mut tally).await?;
    let cm_spec = spec.and_then(|s| s.config_map.as_ref());
    config_maps_step(ctx, &p, cm_spec, &mut tally).await?;
    Ok(tally.outcome())
}

/// The ClusterTrustBundle: applied when wanted (PKIClusterIssuers only), else removed.
async fn cluster_trust_bundle<K>(
    ctx: &Context,
    p: &Publication<'_, K>,
    wanted: bool,
    tally: &mut Tally,
) -> Result<(), Error>
where
    K: AnyIssuer + Resource<DynamicType = ()>,
{
    let signer = p.issuer.key().signer_name();
    let name = bundle::cluster_trust_bundle_name(&signer);
    if K::KIND == IssuerKind::Namespaced {
        if wanted {
            tally.problem(
                Reason::NotAllowed,
                "clusterTrustBundle is for PKIClusterIssuers only: a PKIIssuer's namespace must not publish cluster-wide trust",
            );
        }
        return Ok(());
    }
    ctx.check_fence()?;
    if !wanted {
        if cluster_bundle::remove(&ctx.client, &name, &p.owner.uid).await? {
            ctx.metrics.trust_written("ClusterTrustBundle", "delete", 1);
            event(ctx, p.issuer, format!("deleted ClusterTrustBundle {name}")).await;
        }
        return Ok(());
    }
    let applied =
        cluster_bundle::apply(&ctx.client, &name, &signer, &p.issuer_id, &p.owner, &p.text).await;
    match applied {
        Ok(Applied::Current(changed)) => {
            if changed {
                ctx.metrics.trust_written("ClusterTrustBundle", "apply", 1);
                event(ctx, p.issuer, format!("published ClusterTrustBundle {name}")).await;
            }
            tally.done.push(format!("ClusterTrustBundle {name}"));
        }
        Ok(Applied::Unavailable) => tally.problem(
            Reason::ApiUnavailable,
            "the API server does not serve ClusterTrustBundles (certificates.k8s.io/v1beta1; feature gate ClusterTrustBundle and its runtime config): none published",
        ),
        // The ConfigMaps are still published; a refusal (4xx, e.g. no `attest`) waits for
        // the next check, anything else is retried soon.
        Err(e) => {
            if !matches!(&e, kube::Error::Api(s) if (400..500).contains(&s.code)) {
                tally.again = Some(SOON);
            }
            tally.problem(
                Reason::PublishFailed,
                format!("ClusterTrustBundle {name} not published: {e}"),
            );
        }
    }
    Ok(())
}

/// The namespaces that should hold the ConfigMap, or `None` (with the problem noted) when the
/// spec cannot be honoured.
async fn wanted_namespaces<K: AnyIssuer>(
    ctx: &Context,
    issuer: &K,
    c: &TrustConfigMapSpec,
    tally: &mut Tally,
) -> Result<Option<Vec<String>>, Error> {
    if let Err(e) = crate::api::check_object_name("ConfigMap", &c.name) {
        tally.problem(Reason::NotAllowed, e);
        return Ok(None);
    }
    if K::KIND == IssuerKind::Namespaced {
        if c.namespace_selector.is_some() {
            tally.problem(
                Reason::NotAllowed,
                "configMap.namespaceSelector is for PKIClusterIssuers only: a PKIIssuer writes its ConfigMap into its own namespace; no ConfigMap published",
            );
            return Ok(None);
        }
        return Ok(Some(issuer.namespace().into_iter().collect()));
    }
    let sel = c.namespace_selector.clone().unwrap_or_default();
    if let Err(e) = sel.check() {
        tally.problem(Reason::NotAllowed, format!("configMap.{e}"));
        return Ok(None);
    }
    let selector = match Selector::try_from(sel.to_label_selector()) {
        Ok(selector) => selector,
        Err(e) => {
            tally.problem(
                Reason::NotAllowed,
                format!("configMap.namespaceSelector: {e}"),
            );
            return Ok(None);
        }
    };
    let allowed = &ctx.config.watch_namespaces;
    let (names, over) = config_maps::selected_namespaces(&ctx.client, &selector, allowed).await?;
    if over > 0 {
        tally.problem(
            Reason::NotAllowed,
            format!(
                "{over} selected namespaces beyond the limit of {} got no ConfigMap",
                config_maps::MAX_NAMESPACES
            ),
        );
    }
    Ok(Some(names))
}

/// The ConfigMaps: one current ConfigMap in each wanted namespace, every other one pki-issuer
/// wrote for this issuer deleted (all of them when `configMap` is off).
async fn config_maps_step<K>(
    ctx: &Context,
    p: &Publication<'_, K>,
    spec: Option<&TrustConfigMapSpec>,
    tally: &mut Tally,
) -> Result<(), Error>
where
    K: AnyIssuer + Resource<DynamicType = ()>,
{
    let own_ns: Vec<String> = p.issuer.namespace().into_iter().collect();
    let scope: &[String] = match K::KIND {
        IssuerKind::Namespaced => &own_ns,
        IssuerKind::Cluster => &ctx.config.watch_namespaces,
    };
    let Some(c) = spec else {
        ctx.check_fence()?;
        let published = config_maps::published(&ctx.client, &p.owner.uid, scope).await?;
        if !published.is_empty() {
            let n = config_maps::delete(&ctx.client, published).await?;
            note_writes(ctx, p.issuer, "(turned off)", 0, n).await;
        }
        return Ok(());
    };
    let Some(wanted) = wanted_namespaces(ctx, p.issuer, c, tally).await? else {
        return Ok(());
    };
    ctx.check_fence()?;
    let published = config_maps::published(&ctx.client, &p.owner.uid, scope).await?;
    let target = config_maps::Target {
        name: &c.name,
        key: c.key(),
        bundle: &p.text,
        owner: &p.owner,
        issuer: &p.issuer_id,
    };
    let r = config_maps::sync(&ctx.client, &wanted, published, &target).await?;
    note_writes(ctx, p.issuer, &c.name, r.written, r.deleted).await;
    tally.done.push(format!(
        "ConfigMap {} in {} namespace(s)",
        c.name, r.current
    ));
    if !r.foreign.is_empty() {
        tally.problem(
            Reason::ForeignObject,
            format!(
                "ConfigMap {} exists but was not written by pki-issuer, left unchanged in: {}",
                c.name,
                bundle::list_bounded(&r.foreign)
            ),
        );
    }
    if r.pending > 0 {
        tally.again = Some(SOON);
        tally.problem(
            Reason::PublishFailed,
            format!(
                "{} namespace(s) still to be written (at most {} writes per pass)",
                r.pending,
                config_maps::MAX_WRITES_PER_PASS
            ),
        );
    }
    Ok(())
}
