//! The anchors as a ConfigMap in each selected namespace: created, kept current, deleted when
//! no longer wanted; a ConfigMap of that name that pki-issuer did not write is never touched.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::{Selector, SelectorExt};
use kube::{Api, Client};
use serde_json::json;

use super::bundle::{owned_by, ISSUER_ANNOTATION, MANAGED_LABEL};
use crate::api::FIELD_MANAGER;

/// At most this many namespaces are considered (more are reported, not written).
pub const MAX_NAMESPACES: usize = 10_000;
/// At most this many writes per pass; the rest follow on the next pass, soon after.
pub const MAX_WRITES_PER_PASS: usize = 200;
/// Writes in flight at once.
const PARALLEL_WRITES: usize = 4;
/// Page size of lists.
const PAGE: u32 = 500;

/// What to distribute and where.
pub struct Target<'a> {
    /// ConfigMap name.
    pub name: &'a str,
    /// Data key.
    pub key: &'a str,
    /// The PEM bundle.
    pub bundle: &'a str,
    /// The issuer, as an owner reference (its UID marks the ConfigMaps as this issuer's).
    pub owner: &'a OwnerReference,
    /// The issuer's display name, for the annotation.
    pub issuer: &'a str,
}

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Namespaces holding a current ConfigMap.
    pub current: usize,
    /// Namespaces written this pass.
    pub written: usize,
    /// Stale ConfigMaps deleted this pass.
    pub deleted: usize,
    /// Namespaces where a ConfigMap of the name exists that pki-issuer did not write.
    pub foreign: Vec<String>,
    /// Namespaces left for the next pass (write budget spent).
    pub pending: usize,
    /// Namespaces beyond [`MAX_NAMESPACES`], not considered.
    pub over_limit: usize,
}

/// The namespaces a selector picks: every live namespace it matches, limited to `allowed`
/// when that is not empty (the controller's `--watch-namespaces`). Sorted, bounded.
pub async fn selected_namespaces(
    client: &Client,
    selector: &Selector,
    allowed: &[String],
) -> Result<(Vec<String>, usize), kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut out = Vec::new();
    let mut over = 0;
    let mut lp = ListParams::default().limit(PAGE);
    loop {
        let page = api.list_metadata(&lp).await?;
        for ns in page.items {
            let meta = ns.metadata;
            let Some(name) = meta.name else { continue };
            if meta.deletion_timestamp.is_some()
                || (!allowed.is_empty() && !allowed.contains(&name))
                || !selector.matches(&meta.labels.unwrap_or_default())
            {
                continue;
            }
            if out.len() < MAX_NAMESPACES {
                out.push(name);
            } else {
                over += 1;
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    out.sort();
    Ok((out, over))
}

/// Every ConfigMap pki-issuer wrote for the issuer `uid` (in `allowed` namespaces, or all).
pub async fn published(
    client: &Client,
    uid: &str,
    allowed: &[String],
) -> Result<Vec<ConfigMap>, kube::Error> {
    let apis: Vec<Api<ConfigMap>> = if allowed.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        allowed
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    let mut out = Vec::new();
    for api in apis {
        let mut lp = ListParams::default()
            .labels(&format!("{MANAGED_LABEL}=true"))
            .limit(PAGE);
        loop {
            let page = api.list(&lp).await?;
            out.extend(
                page.items
                    .into_iter()
                    .filter(|c| owned_by(&c.metadata, uid)),
            );
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(c) => lp = lp.continue_token(&c),
                None => break,
            }
        }
    }
    Ok(out)
}

fn is_current(cm: &ConfigMap, t: &Target<'_>) -> bool {
    cm.data
        .as_ref()
        .is_some_and(|d| d.len() == 1 && d.get(t.key).map(String::as_str) == Some(t.bundle))
        && cm.binary_data.as_ref().is_none_or(BTreeMap::is_empty)
}

fn body(ns: &str, t: &Target<'_>) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": t.name,
            "namespace": ns,
            "labels": {MANAGED_LABEL: "true"},
            "annotations": {ISSUER_ANNOTATION: t.issuer},
            "ownerReferences": [t.owner],
        },
        "data": {t.key: t.bundle},
    })
}

enum Wrote {
    Written,
    Foreign(String),
}

/// Write one namespace's ConfigMap: create it when absent, apply when it is ours.
async fn write_one(
    client: &Client,
    ns: &str,
    ours: bool,
    t: &Target<'_>,
) -> Result<Wrote, kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let body = body(ns, t);
    if !ours {
        // Create, never overwrite: an existing object of this name is someone else's.
        let cm: ConfigMap =
            serde_json::from_value(body.clone()).map_err(kube::Error::SerdeError)?;
        match api
            .create(
                &PostParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                },
                &cm,
            )
            .await
        {
            Ok(_) => return Ok(Wrote::Written),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // It appeared between the list and now: ours only if it carries our marks.
                match api.get_opt(t.name).await? {
                    Some(c) if owned_by(&c.metadata, &t.owner.uid) => {}
                    Some(_) => return Ok(Wrote::Foreign(ns.to_string())),
                    None => return Ok(Wrote::Written),
                }
            }
            Err(e) => return Err(e),
        }
    }
    api.patch(
        t.name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(Wrote::Written)
}

/// Bring the ConfigMaps in line: `wanted` namespaces get a current one, every other ConfigMap
/// pki-issuer wrote for this issuer (`published`) is deleted.
pub async fn sync(
    client: &Client,
    wanted: &[String],
    published: Vec<ConfigMap>,
    t: &Target<'_>,
) -> Result<Report, kube::Error> {
    let mut report = Report::default();
    let mut ours: BTreeMap<String, ConfigMap> = BTreeMap::new();
    let mut stale = Vec::new();
    for cm in published {
        let ns = cm.metadata.namespace.clone().unwrap_or_default();
        if cm.metadata.name.as_deref() == Some(t.name) && wanted.binary_search(&ns).is_ok() {
            ours.insert(ns, cm);
        } else {
            stale.push(cm);
        }
    }
    let mut to_write = Vec::new();
    for ns in wanted {
        match ours.get(ns) {
            Some(cm) if is_current(cm, t) => report.current += 1,
            Some(_) => to_write.push((ns.clone(), true)),
            None => to_write.push((ns.clone(), false)),
        }
    }
    report.pending = to_write.len().saturating_sub(MAX_WRITES_PER_PASS);
    to_write.truncate(MAX_WRITES_PER_PASS);
    let results: Vec<Wrote> = futures::stream::iter(to_write)
        .map(|(ns, ours)| async move { write_one(client, &ns, ours, t).await })
        .buffer_unordered(PARALLEL_WRITES)
        .try_collect()
        .await?;
    for r in results {
        match r {
            Wrote::Written => {
                report.written += 1;
                report.current += 1;
            }
            Wrote::Foreign(ns) => report.foreign.push(ns),
        }
    }
    let budget = MAX_WRITES_PER_PASS.saturating_sub(report.written);
    report.pending += stale.len().saturating_sub(budget);
    stale.truncate(budget);
    report.deleted = delete(client, stale).await?;
    report.foreign.sort();
    Ok(report)
}

/// Delete these ConfigMaps (each only if it is still the same object). Returns how many.
pub async fn delete(client: &Client, cms: Vec<ConfigMap>) -> Result<usize, kube::Error> {
    let deleted: Vec<bool> = futures::stream::iter(cms)
        .map(|cm| async move {
            let (Some(ns), Some(name)) = (cm.metadata.namespace, cm.metadata.name) else {
                return Ok(false);
            };
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: cm.metadata.uid,
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&name, &dp).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(PARALLEL_WRITES)
        .try_collect()
        .await?;
    Ok(deleted.into_iter().filter(|d| *d).count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn meta(label: Option<&str>, owner_uid: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            labels: label.map(|v| [(MANAGED_LABEL.to_string(), v.to_string())].into()),
            owner_references: owner_uid.map(|u| {
                vec![OwnerReference {
                    uid: u.into(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_our_label_and_this_issuers_uid_make_a_config_map_ours() {
        assert!(owned_by(&meta(Some("true"), Some("u1")), "u1"));
        // Someone else's ConfigMap, or another issuer's: never ours to change or delete.
        assert!(!owned_by(&meta(None, None), "u1"));
        assert!(
            !owned_by(&meta(None, Some("u1")), "u1"),
            "owner reference alone"
        );
        assert!(!owned_by(&meta(Some("true"), None), "u1"), "label alone");
        assert!(
            !owned_by(&meta(Some("true"), Some("u2")), "u1"),
            "another issuer's"
        );
        assert!(!owned_by(&meta(Some("yes"), Some("u1")), "u1"));
    }

    #[test]
    fn current_means_exactly_the_bundle_under_the_key() {
        let owner = OwnerReference::default();
        let t = Target {
            name: "roots",
            key: "ca.crt",
            bundle: "PEM",
            owner: &owner,
            issuer: "PKIClusterIssuer mesh",
        };
        let cm = |data: &[(&str, &str)]| ConfigMap {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        assert!(is_current(&cm(&[("ca.crt", "PEM")]), &t));
        assert!(!is_current(&cm(&[("ca.crt", "OLD")]), &t));
        assert!(!is_current(&cm(&[("roots.pem", "PEM")]), &t), "key changed");
        assert!(
            !is_current(&cm(&[("ca.crt", "PEM"), ("x", "y")]), &t),
            "extra key"
        );
    }
}
