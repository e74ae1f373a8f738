//! Resource type definitions (built-in and CRD-backed) and the registry that resolves request paths to them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::schema::Schema;

/// Storage identity of a resource: `(group, plural)`.
pub type StorageKey = (String, String);

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    /// Column name.
    pub name: String,
    /// Column type (`string`, `integer`, `date`, ...).
    pub type_: String,
    /// Column format.
    pub format: String,
    /// Column description.
    pub description: String,
    /// Priority (0 = shown by default).
    pub priority: i64,
    /// JSONPath (subset) into the object.
    pub json_path: String,
}

/// Version-specific data of a resource.
#[derive(Debug, Clone, Default)]
pub struct VersionInfo {
    /// Structural schema (CRDs only).
    pub schema: Option<Arc<Schema>>,
    /// Printer columns for Table output.
    pub columns: Vec<PrinterColumn>,
}

/// Everything the server knows about one resource type.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// API group (`""` for core).
    pub group: String,
    /// Served versions with their schemas/columns, keyed by version name.
    pub versions: BTreeMap<String, VersionInfo>,
    /// Preferred (first listed) version.
    pub preferred_version: String,
    /// Storage version.
    pub storage_version: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names.
    pub short_names: Vec<String>,
    /// Categories (e.g. `all`).
    pub categories: Vec<String>,
    /// Subresources (`status`, `approval`, `token`).
    pub subresources: Vec<String>,
    /// Whether `status` is a separate subresource (main endpoint ignores status).
    pub status_subresource: bool,
    /// CRD-backed.
    pub custom: bool,
    /// Maintain `metadata.generation`.
    pub generation: bool,
    /// PUT may create a missing object.
    pub create_on_update: bool,
    /// PUT without resourceVersion allowed.
    pub unconditional_update: bool,
    /// Storage shared with another resource (events.k8s.io events live with core events).
    pub storage: StorageKey,
    /// Delete returns the deleted object instead of a Status.
    pub return_deleted_object: bool,
}

impl ResourceDef {
    /// Storage key of this resource.
    pub fn storage_key(&self) -> StorageKey {
        self.storage.clone()
    }
    /// `group/version` string for a version.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }
    /// Schema for a version, if any.
    pub fn schema(&self, version: &str) -> Option<Arc<Schema>> {
        self.versions.get(version).and_then(|v| v.schema.clone())
    }
    /// The verbs advertised in discovery.
    pub fn verbs(&self) -> Vec<&'static str> {
        if self.plural == "tokenreviews"
            || self.plural.ends_with("accessreviews")
            || self.plural == "selfsubjectreviews"
        {
            return vec!["create"];
        }
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

/// All resource types, indexed for path resolution.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    by_gvr: HashMap<(String, String, String), Arc<ResourceDef>>,
    defs: BTreeMap<StorageKey, Arc<ResourceDef>>,
}

impl Registry {
    /// Add or replace a resource definition.
    pub fn insert(&mut self, def: ResourceDef) {
        self.remove(&def.group.clone(), &def.plural.clone());
        let def = Arc::new(def);
        for v in def.versions.keys() {
            self.by_gvr.insert(
                (def.group.clone(), v.clone(), def.plural.clone()),
                def.clone(),
            );
        }
        self.defs
            .insert((def.group.clone(), def.plural.clone()), def);
    }
    /// Remove a resource definition.
    pub fn remove(&mut self, group: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        let old = self.defs.remove(&(group.to_string(), plural.to_string()))?;
        self.by_gvr
            .retain(|_, d| !(d.group == group && d.plural == plural));
        Some(old)
    }
    /// Resolve group/version/plural.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.by_gvr
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }
    /// Definition by group and plural.
    pub fn by_group_resource(&self, group: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .get(&(group.to_string(), plural.to_string()))
            .cloned()
    }
    /// Find a definition by group and kind.
    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .values()
            .find(|d| d.group == group && d.kind == kind)
            .cloned()
    }
    /// All definitions.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceDef>> {
        self.defs.values()
    }
    /// Sorted list of groups (excluding core) with their versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for d in self.defs.values().filter(|d| !d.group.is_empty()) {
            let e = out.entry(d.group.clone()).or_default();
            if !e.contains(&d.preferred_version) {
                e.insert(0, d.preferred_version.clone());
            }
            for v in d.versions.keys() {
                if !e.contains(v) {
                    e.push(v.clone());
                }
            }
        }
        // kube-apiserver lists groups in a fixed priority order; built-ins first, then CRD groups alphabetically.
        let builtin_order = crate::builtins::GROUP_ORDER;
        let mut groups: Vec<(String, Vec<String>)> = out.into_iter().collect();
        groups.sort_by_key(|(g, _)| {
            (
                builtin_order
                    .iter()
                    .position(|b| b == g)
                    .unwrap_or(usize::MAX),
                g.clone(),
            )
        });
        for (_, vs) in groups.iter_mut() {
            sort_versions(vs);
        }
        groups
    }
    /// Resources served under group/version.
    pub fn resources_in(&self, group: &str, version: &str) -> Vec<Arc<ResourceDef>> {
        self.defs
            .values()
            .filter(|d| d.group == group && d.versions.contains_key(version))
            .cloned()
            .collect()
    }
}

/// Sort versions by Kubernetes version priority (GA > beta > alpha, higher numbers first).
pub fn sort_versions(vs: &mut [String]) {
    fn key(v: &str) -> (u8, i64, i64, String) {
        let re = v.strip_prefix('v').unwrap_or("");
        let (major, rest) = re.split_at(re.find(|c: char| !c.is_ascii_digit()).unwrap_or(re.len()));
        let major: i64 = match major.parse() {
            Ok(m) => m,
            Err(_) => return (3, 0, 0, v.to_string()),
        };
        if rest.is_empty() {
            return (0, -major, 0, String::new());
        }
        for (rank, pfx) in [(1u8, "beta"), (2u8, "alpha")] {
            if let Some(n) = rest.strip_prefix(pfx) {
                if let Ok(n) = n.parse::<i64>() {
                    return (rank, -major, -n, String::new());
                }
            }
        }
        (3, 0, 0, v.to_string())
    }
    vs.sort_by_key(|v| key(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_priority() {
        let mut v: Vec<String> = ["v1alpha1", "v1", "v2beta1", "v1beta2", "foo", "v2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        sort_versions(&mut v);
        assert_eq!(v, vec!["v2", "v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]);
    }
}
