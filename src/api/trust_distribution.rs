//! `spec.trustDistribution`: where an issuer publishes its trust anchors for workloads.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The key a distributed ConfigMap holds the anchors under when `key` is omitted.
pub const DEFAULT_CONFIG_MAP_KEY: &str = "ca.crt";
/// Entries of `namespaceSelector.matchLabels`, and of `matchExpressions`.
pub const MAX_SELECTOR_TERMS: usize = 32;
/// Values of one `matchExpressions` entry.
pub const MAX_SELECTOR_VALUES: usize = 64;
/// Longest label key (a 253-character prefix, `/`, a 63-character name).
pub const MAX_LABEL_KEY_LEN: usize = 317;
/// Longest label value.
pub const MAX_LABEL_VALUE_LEN: usize = 63;

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
    #[schemars(extend("maxProperties" = 32))]
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
    #[schemars(length(min = 1, max = 317))]
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[schemars(regex(pattern = r"^(In|NotIn|Exists|DoesNotExist)$"))]
    pub operator: String,
    /// Values for `In` / `NotIn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(length(max = 63)))]
    pub values: Option<Vec<String>>,
}

impl NamespaceSelector {
    /// The selector's sizes are within the CRD's bounds (checked again for API servers that
    /// do not validate the schema): matching it against every namespace stays cheap.
    pub fn check(&self) -> Result<(), String> {
        let labels = self.match_labels.as_ref();
        let exprs = self.match_expressions.as_deref().unwrap_or_default();
        if labels.map_or(0, BTreeMap::len) > MAX_SELECTOR_TERMS || exprs.len() > MAX_SELECTOR_TERMS
        {
            return Err(format!(
                "namespaceSelector has more than {MAX_SELECTOR_TERMS} matchLabels or matchExpressions"
            ));
        }
        let keys = labels
            .into_iter()
            .flat_map(|l| l.keys())
            .chain(exprs.iter().map(|e| &e.key));
        let values = labels
            .into_iter()
            .flat_map(|l| l.values())
            .chain(exprs.iter().flat_map(|e| e.values.iter().flatten()));
        if keys.into_iter().any(|k| k.len() > MAX_LABEL_KEY_LEN)
            || values.into_iter().any(|v| v.len() > MAX_LABEL_VALUE_LEN)
        {
            return Err(format!(
                "namespaceSelector has a label key over {MAX_LABEL_KEY_LEN} or a value over {MAX_LABEL_VALUE_LEN} characters"
            ));
        }
        if exprs.iter().any(|e| {
            e.values
                .as_ref()
                .is_some_and(|v| v.len() > MAX_SELECTOR_VALUES)
        }) {
            return Err(format!(
                "a namespaceSelector.matchExpressions entry has more than {MAX_SELECTOR_VALUES} values"
            ));
        }
        Ok(())
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(key: &str, values: usize) -> SelectorRequirement {
        SelectorRequirement {
            key: key.into(),
            operator: "In".into(),
            values: Some(vec!["v".into(); values]),
        }
    }

    #[test]
    fn selector_sizes_are_bounded() {
        let ok = NamespaceSelector {
            match_labels: Some([("team".to_string(), "a".to_string())].into()),
            match_expressions: Some(vec![expr("env", MAX_SELECTOR_VALUES)]),
        };
        assert!(ok.check().is_ok());
        let too_many_labels = NamespaceSelector {
            match_labels: Some(
                (0..=MAX_SELECTOR_TERMS)
                    .map(|i| (format!("k{i}"), "v".to_string()))
                    .collect(),
            ),
            match_expressions: None,
        };
        assert!(too_many_labels.check().unwrap_err().contains("matchLabels"));
        let too_many_values = NamespaceSelector {
            match_labels: None,
            match_expressions: Some(vec![expr("env", MAX_SELECTOR_VALUES + 1)]),
        };
        assert!(too_many_values.check().unwrap_err().contains("values"));
        let long_key = NamespaceSelector {
            match_labels: None,
            match_expressions: Some(vec![expr(&"k".repeat(MAX_LABEL_KEY_LEN + 1), 1)]),
        };
        assert!(long_key.check().unwrap_err().contains("label key"));
        let long_value = NamespaceSelector {
            match_labels: Some([("k".to_string(), "v".repeat(64))].into()),
            match_expressions: None,
        };
        assert!(long_value.check().is_err());
    }
}
