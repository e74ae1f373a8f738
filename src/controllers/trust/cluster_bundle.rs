//! The issuer's ClusterTrustBundle (`certificates.k8s.io/v1beta1`): applied, or deleted.

use k8s_openapi::api::certificates::v1beta1::ClusterTrustBundle;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client};
use serde_json::json;

use super::bundle::{ISSUER_ANNOTATION, MANAGED_LABEL};
use crate::api::FIELD_MANAGER;

/// The ClusterTrustBundle API as used here.
const API_VERSION: &str = "certificates.k8s.io/v1beta1";

/// What applying the bundle did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// The object now holds the bundle (`true` when this changed it).
    Current(bool),
    /// The API server does not serve ClusterTrustBundles.
    Unavailable,
}

/// Whether `e` says the resource itself is not served (not: the object is missing).
fn not_served(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Apply the bundle named `name` for `signer_name` (server-side apply, field manager
/// `pki-issuer`, owned by the issuer so the garbage collector removes it with the issuer).
pub async fn apply(
    client: &Client,
    name: &str,
    signer_name: &str,
    issuer: &str,
    owner: &OwnerReference,
    bundle: &str,
) -> Result<Applied, kube::Error> {
    let api: Api<ClusterTrustBundle> = Api::all(client.clone());
    let body = json!({
        "apiVersion": API_VERSION,
        "kind": "ClusterTrustBundle",
        "metadata": {
            "name": name,
            "labels": {MANAGED_LABEL: "true"},
            "annotations": {ISSUER_ANNOTATION: issuer},
            "ownerReferences": [owner],
        },
        "spec": {"signerName": signer_name, "trustBundle": bundle},
    });
    let before = match api.get_opt(name).await {
        Ok(o) => o,
        Err(e) if not_served(&e) => return Ok(Applied::Unavailable),
        Err(e) => return Err(e),
    };
    let current = before.as_ref().is_some_and(|b| {
        b.spec.trust_bundle == bundle
            && b.spec.signer_name.as_deref() == Some(signer_name)
            && b.metadata.owner_references.as_deref() == Some(std::slice::from_ref(owner))
            && b.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.get(MANAGED_LABEL).map(String::as_str) == Some("true"))
    });
    if current {
        return Ok(Applied::Current(false));
    }
    match api
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
    {
        Ok(_) => Ok(Applied::Current(true)),
        Err(e) if not_served(&e) => Ok(Applied::Unavailable),
        Err(e) => Err(e),
    }
}

/// Delete the bundle `name` if pki-issuer wrote it for the issuer `owner_uid`. `Ok(true)`
/// when something was deleted; a missing object or an unserved API is nothing to do.
pub async fn remove(client: &Client, name: &str, owner_uid: &str) -> Result<bool, kube::Error> {
    let api: Api<ClusterTrustBundle> = Api::all(client.clone());
    let existing = match api.get_opt(name).await {
        Ok(Some(o)) => o,
        Ok(None) => return Ok(false),
        Err(e) if not_served(&e) => return Ok(false),
        Err(e) => return Err(e),
    };
    if !super::bundle::owned_by(&existing.metadata, owner_uid) {
        return Ok(false);
    }
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: existing.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}
