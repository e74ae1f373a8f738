//! `spec.trustDistribution`: where an issuer publishes its trust anchors for workloads.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The key a distributed ConfigMap holds the anchors under when `key` is omitted.
pub const DEFAULT_CONFIG_MAP_KEY: &str = "ca.crt";

/// Where the issuer's trust anchors are published. Only anchors of a passed issuer check are
/// published; while the check fails, what was published before stays.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustDistributionSpec {
    /// Publish the anchors as a `certificates.k8s.io` ClusterTrustBundle named
    /// `<signerName with / as :>:trust-anchors`, with `spec.signerName` the issuer's signer
    /// name. `PKIClusterIssuer` only (a `PKIIssuer` asking for it is reported, not published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_trust_bundle: Option<bool>,
    /// Publish the anchors as a ConfigMap in every selected namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<TrustConfigMapSpec>,
}

/// A ConfigMap with the anchors in each selected namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustConfigMapSpec {
    /// ConfigMap name. An existing ConfigMap of this name that pki-issuer did not write is
    /// never changed (the `TrustDistributed` condition names it).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key holding the PEM bundle (default `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: Option<String>,
    /// Namespaces that get the ConfigMap (`PKIClusterIssuer`; omitted: every namespace). A
    /// `PKIIssuer` writes only into its own namespace and must omit this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
}

impl TrustConfigMapSpec {
    /// The key, defaulted.
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or(DEFAULT_CONFIG_MAP_KEY)
    }
}

/// A label selector over Namespaces (`metav1.LabelSelector`; `{}` selects every namespace).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Labels a namespace must have, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Requirements a namespace's labels must meet, all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub match_expressions: Option<Vec<SelectorRequirement>>,
}

/// One requirement of a [`NamespaceSelector`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[schemars(regex(pattern = r"^(In|NotIn|Exists|DoesNotExist)$"))]
    pub operator: String,
    /// Values for `In` / `NotIn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub values: Option<Vec<String>>,
}

impl NamespaceSelector {
    /// As the Kubernetes type (for `kube::core::Selector`).
    pub fn to_label_selector(
        &self,
    ) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
        meta::LabelSelector {
            match_labels: self.match_labels.clone(),
            match_expressions: self.match_expressions.as_ref().map(|e| {
                e.iter()
                    .map(|r| meta::LabelSelectorRequirement {
                        key: r.key.clone(),
                        operator: r.operator.clone(),
                        values: r.values.clone(),
                    })
                    .collect()
            }),
        }
    }
}
