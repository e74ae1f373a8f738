//! CustomResourceDefinition handling: validation, status, and turning a CRD into a [`ResourceDef`].

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::{sort_versions, PrinterColumn, ResourceDef, VersionInfo};
use crate::schema::Schema;

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// Validate a CRD object and build the resource definition it describes.
pub fn to_def(crd: &Value) -> ApiResult<ResourceDef> {
    let name = s(crd, "/metadata/name");
    let group = s(crd, "/spec/group");
    let plural = s(crd, "/spec/names/plural");
    let kind = s(crd, "/spec/names/kind");
    let mut causes = vec![];
    if group.is_empty() {
        causes.push(Cause::required("spec.group"));
    }
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural"));
    }
    if kind.is_empty() {
        causes.push(Cause::required("spec.names.kind"));
    }
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let scope = s(crd, "/spec/scope");
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(Cause::not_supported(
            "spec.scope",
            &json!(scope),
            &[json!("Cluster"), json!("Namespaced")],
        ));
    }
    let mut versions = BTreeMap::new();
    let mut storage = None;
    let vlist = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if vlist.is_empty() {
        causes.push(Cause::required("spec.versions"));
    }
    let mut served_names = vec![];
    for (i, v) in vlist.iter().enumerate() {
        let vname = s(v, "/name").to_string();
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            if storage.is_some() {
                causes.push(Cause::invalid(
                    "spec.versions",
                    &json!("array"),
                    "must have exactly one version marked as storage version",
                ));
            }
            storage = Some(vname.clone());
        }
        let schema = match v.pointer("/schema/openAPIV3Schema") {
            Some(sv) => match Schema::parse(sv) {
                Ok(sc) => Some(Arc::new(sc)),
                Err(e) => {
                    causes.push(Cause::invalid(
                        &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                        &json!("object"),
                        &e,
                    ));
                    None
                }
            },
            None => {
                causes.push(Cause::required(&format!(
                    "spec.versions[{i}].schema.openAPIV3Schema"
                )));
                None
            }
        };
        let mut columns: Vec<PrinterColumn> = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: s(c, "/name").into(),
                        type_: s(c, "/type").into(),
                        format: s(c, "/format").into(),
                        description: s(c, "/description").into(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                        json_path: s(c, "/jsonPath").into(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if v.get("additionalPrinterColumns").is_none() {
            columns.push(PrinterColumn {
                name: "Age".into(),
                type_: "date".into(),
                format: String::new(),
                description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
                priority: 0,
                json_path: ".metadata.creationTimestamp".into(),
            });
        }
        if v.get("served").and_then(Value::as_bool).unwrap_or(false) {
            served_names.push(vname.clone());
            versions.insert(vname, VersionInfo { schema, columns });
        }
    }
    if storage.is_none() && !vlist.is_empty() {
        causes.push(Cause::invalid(
            "spec.versions",
            &json!("array"),
            "must have exactly one version marked as storage version",
        ));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            name,
            causes,
        ));
    }
    sort_versions(&mut served_names);
    let status_sub = vlist
        .iter()
        .any(|v| v.pointer("/subresources/status").is_some());
    let mut subresources = vec![];
    if status_sub {
        subresources.push("status".to_string());
    }
    if vlist
        .iter()
        .any(|v| v.pointer("/subresources/scale").is_some())
    {
        subresources.push("scale".to_string());
    }
    let strs = |ptr: &str| -> Vec<String> { crate::util::str_array(crd.pointer(ptr)) };
    let singular = match s(crd, "/spec/names/singular") {
        "" => kind.to_lowercase(),
        x => x.to_string(),
    };
    Ok(ResourceDef {
        group: group.into(),
        versions,
        preferred_version: served_names.first().cloned().unwrap_or_default(),
        storage_version: storage.unwrap_or_default(),
        plural: plural.into(),
        singular,
        kind: kind.into(),
        namespaced: scope == "Namespaced",
        short_names: strs("/spec/names/shortNames"),
        categories: strs("/spec/names/categories"),
        subresources,
        status_subresource: status_sub,
        custom: true,
        generation: true,
        create_on_update: false,
        unconditional_update: false,
        storage: (group.into(), plural.into()),
        return_deleted_object: true,
    })
}

/// Fill in the server-maintained status of a CRD (accepted names, Established/NamesAccepted conditions).
pub fn set_status(crd: &mut Value, def: &ResourceDef) {
    let now = crate::util::now_rfc3339();
    let mut names = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    names["singular"] = json!(def.singular);
    if names.get("listKind").is_none() {
        names["listKind"] = json!(format!("{}List", def.kind));
    }
    let cond = |t: &str, reason: &str, msg: &str| json!({"type": t, "status": "True", "lastTransitionTime": now, "reason": reason, "message": msg});
    crd["spec"]["names"] = names.clone();
    crd["status"] = json!({
        "acceptedNames": names,
        "conditions": [
            cond("NamesAccepted", "NoConflicts", "no conflicts found"),
            cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": [def.storage_version],
    });
}

/// Parse every CRD document in `*.yaml`/`*.yml` files of a directory.
pub fn load_dir(dir: &std::path::Path) -> std::io::Result<Vec<Value>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut out = vec![];
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            use serde::Deserialize;
            let v = Value::deserialize(doc)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", f.display())))?;
            if v.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
                out.push(v);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_to_def_and_errors() {
        let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                          "schema": {"openAPIV3Schema": {"type": "object"}}},
                         {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
        let d = to_def(&crd).unwrap();
        assert_eq!(
            (
                d.kind.as_str(),
                d.singular.as_str(),
                d.preferred_version.as_str()
            ),
            ("Widget", "widget", "v1")
        );
        assert!(d.status_subresource && d.namespaced);
        assert_eq!(d.versions["v1"].columns[0].name, "Age");
        let mut bad = crd.clone();
        bad["metadata"]["name"] = json!("wrong");
        let e = to_def(&bad).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(e.message.contains("metadata.name"), "{}", e.message);
    }
}
