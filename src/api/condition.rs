//! A status condition shaped like `metav1.Condition` and cert-manager's conditions.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One status condition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason in CamelCase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub last_transition_time: Option<Time>,
    /// The `metadata.generation` this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// Build a condition stamped `now`.
    pub fn new(type_: &str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        Condition {
            type_: type_.to_string(),
            status: if status { "True" } else { "False" }.to_string(),
            reason: Some(reason.to_string()),
            message: Some(message.into()),
            last_transition_time: Some(Time(Timestamp::now())),
            observed_generation: None,
        }
    }

    /// Set `observedGeneration`.
    pub fn with_generation(mut self, generation: Option<i64>) -> Self {
        self.observed_generation = generation;
        self
    }

    /// True when `status` is `True`.
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }

    /// Whether this and `other` say the same thing (ignoring the transition time).
    pub fn same_state(&self, other: &Condition) -> bool {
        self.type_ == other.type_
            && self.status == other.status
            && self.reason == other.reason
            && self.message == other.message
            && self.observed_generation == other.observed_generation
    }
}

/// Find a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Merge `new` into `existing`: keeps `lastTransitionTime` when the status did not change.
pub fn merge(existing: &[Condition], mut new: Condition) -> Condition {
    if let Some(old) = find(existing, &new.type_) {
        if old.status == new.status && old.last_transition_time.is_some() {
            new.last_transition_time = old.last_transition_time.clone();
        }
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_transition_time_when_status_unchanged() {
        let mut old = Condition::new("Ready", false, "Pending", "waiting");
        old.last_transition_time = Some(Time("2020-01-01T00:00:00Z".parse().unwrap()));
        let same = merge(
            &[old.clone()],
            Condition::new("Ready", false, "Failed", "x"),
        );
        assert_eq!(same.last_transition_time, old.last_transition_time);
        let flipped = merge(
            &[old.clone()],
            Condition::new("Ready", true, "Issued", "ok"),
        );
        assert_ne!(flipped.last_transition_time, old.last_transition_time);
    }
}
