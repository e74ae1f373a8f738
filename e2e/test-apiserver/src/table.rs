//! `meta.k8s.io/v1` Table output (for `kubectl get`) with a JSONPath subset for printer columns.

use serde_json::{json, Value};

use crate::resources::{PrinterColumn, ResourceDef};
use crate::util::human_age;

/// Evaluate a printer-column JSONPath subset: `.a.b`, `.a[0]`, `.a[*].b`, `.a[?(@.type=="Ready")].status`.
pub fn jsonpath(obj: &Value, path: &str) -> Vec<Value> {
    let path = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    let mut cur = vec![obj.clone()];
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let field = &r[..end];
            rest = &r[end..];
            if field.is_empty() {
                continue;
            }
            cur = cur.iter().filter_map(|v| v.get(field).cloned()).collect();
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = find_close(r) else {
                return vec![];
            };
            let inner = &r[..end];
            rest = &r[end + 1..];
            cur = cur
                .iter()
                .flat_map(|v| -> Vec<Value> {
                    let arr = v.as_array().cloned().unwrap_or_default();
                    if inner == "*" {
                        arr
                    } else if let Ok(i) = inner.parse::<usize>() {
                        arr.get(i).cloned().into_iter().collect()
                    } else if let Some(filter) =
                        inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')'))
                    {
                        arr.into_iter()
                            .filter(|x| filter_matches(x, filter))
                            .collect()
                    } else if let Some(key) =
                        inner.strip_prefix('\'').and_then(|k| k.strip_suffix('\''))
                    {
                        v.get(key).cloned().into_iter().collect()
                    } else {
                        vec![]
                    }
                })
                .collect();
        } else {
            return vec![];
        }
    }
    cur
}

fn find_close(s: &str) -> Option<usize> {
    let mut depth = 0;
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            ('[', None) => depth += 1,
            (']', None) if depth == 0 => return Some(i),
            (']', None) => depth -= 1,
            _ => {}
        }
    }
    None
}

fn filter_matches(item: &Value, filter: &str) -> bool {
    let (lhs, rhs, eq) = if let Some((l, r)) = filter.split_once("==") {
        (l, r, true)
    } else if let Some((l, r)) = filter.split_once("!=") {
        (l, r, false)
    } else {
        let p = filter.trim().trim_start_matches('@');
        return !jsonpath(item, p).is_empty();
    };
    let lv = jsonpath(item, lhs.trim().trim_start_matches('@'));
    let r = rhs.trim().trim_matches('"').trim_matches('\'');
    let hit = lv.iter().any(|v| crate::util::scalar_string(v) == r);
    hit == eq
}

fn cell(col: &PrinterColumn, obj: &Value) -> Value {
    let vals = jsonpath(obj, &col.json_path);
    let Some(first) = vals.first() else {
        return Value::Null;
    };
    match col.type_.as_str() {
        "date" => first
            .as_str()
            .map(|s| json!(human_age(s)))
            .unwrap_or(Value::Null),
        "integer" | "number" | "boolean" if vals.len() == 1 => first.clone(),
        _ => {
            if vals.len() == 1 {
                match first {
                    Value::String(_) | Value::Number(_) | Value::Bool(_) => first.clone(),
                    other => json!(other.to_string()),
                }
            } else {
                json!(vals
                    .iter()
                    .map(crate::util::scalar_string)
                    .collect::<Vec<_>>()
                    .join(","))
            }
        }
    }
}

/// Build a Table from presented objects.
pub fn table(
    def: &ResourceDef,
    version: &str,
    items: &[Value],
    resource_version: &str,
    continue_: Option<&str>,
    include_object: &str,
) -> Value {
    let mut cols: Vec<PrinterColumn> = def
        .versions
        .get(version)
        .map(|v| v.columns.clone())
        .unwrap_or_default();
    if !def.custom {
        cols.push(PrinterColumn {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description: "CreationTimestamp is a timestamp representing the server time when this object was created.".into(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".into(),
        });
    }
    let mut defs = vec![json!({
        "name": "Name", "type": "string", "format": "name",
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        "priority": 0
    })];
    for c in &cols {
        defs.push(json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority}));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)];
            cells.extend(cols.iter().map(|c| cell(c, o)));
            let object = match include_object {
                "None" => Value::Null,
                "Object" => o.clone(),
                _ => crate::server::partial_metadata(o),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    let mut meta = json!({"resourceVersion": resource_version});
    if let Some(c) = continue_ {
        meta["continue"] = json!(c);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_subset() {
        let o = json!({"spec": {"a": {"b": 3}}, "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}]}});
        assert_eq!(jsonpath(&o, ".spec.a.b"), vec![json!(3)]);
        assert_eq!(
            jsonpath(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![json!("True")]
        );
        assert_eq!(jsonpath(&o, ".status.conditions[1].type"), vec![json!("X")]);
        assert_eq!(
            jsonpath(&o, ".status.conditions[*].type"),
            vec![json!("Ready"), json!("X")]
        );
        assert!(jsonpath(&o, ".missing.x").is_empty());
    }

    #[test]
    fn table_has_name_columns_and_age() {
        let mut def = crate::builtins::registry()
            .by_group_resource("", "secrets")
            .unwrap()
            .as_ref()
            .clone();
        def.custom = false;
        let o = json!({"metadata": {"name": "s", "creationTimestamp": crate::util::now_rfc3339()}, "type": "Opaque"});
        let t = table(&def, "v1", &[o], "5", None, "Metadata");
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["Name", "Type", "Age"]);
        assert_eq!(t["rows"][0]["cells"][0], "s");
        assert_eq!(t["rows"][0]["cells"][1], "Opaque");
        assert!(t["rows"][0]["cells"][2].as_str().unwrap().ends_with('s'));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }
}
