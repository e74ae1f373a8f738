//! Patch formats: JSON merge patch, JSON patch, strategic merge patch, and the merge step of server-side apply.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::schema::Schema;

/// How list-map keys are found at a location: from a CRD schema or from built-in knowledge.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    schema: Option<&'a Schema>,
    builtin: bool,
    field: &'a str,
    parent: &'a str,
}

impl<'a> Ctx<'a> {
    /// Context at the root of an object. With a schema, keys come from it; otherwise built-in knowledge is used.
    pub fn root(schema: Option<&'a Schema>) -> Ctx<'a> {
        Ctx {
            schema,
            builtin: schema.is_none(),
            field: "",
            parent: "",
        }
    }
    /// Whether this is the context of an object's root.
    pub fn is_root(&self) -> bool {
        self.field.is_empty() && self.parent.is_empty()
    }
    /// Context of a child field.
    pub fn child(&self, field: &'a str) -> Ctx<'a> {
        if self.is_root() && field == "metadata" {
            return Ctx {
                schema: None,
                builtin: true,
                field,
                parent: "",
            };
        }
        Ctx {
            schema: self.schema.and_then(|s| s.child(field)),
            builtin: self.builtin,
            field,
            parent: self.field,
        }
    }
    /// Context of list items.
    pub fn item(&self) -> Ctx<'a> {
        Ctx {
            schema: self.schema.and_then(Schema::item),
            builtin: self.builtin,
            field: "",
            parent: self.field,
        }
    }
    /// List-map keys for the list at this location.
    pub fn map_keys(&self) -> Option<Vec<String>> {
        if let Some(k) = self.schema.and_then(Schema::map_keys) {
            return Some(k);
        }
        if self.builtin {
            return crate::builtins::builtin_list_keys(self.field, self.parent);
        }
        None
    }
    /// Whether the list at this location is a set of scalars.
    pub fn is_set(&self) -> bool {
        if let Some(s) = self.schema {
            return s.list_type.as_deref() == Some("set");
        }
        self.builtin && self.field == "finalizers"
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, patch: &Value) -> ApiResult<()> {
    let p: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "the server rejected our request due to an error in our request: {e}"
        ))
    })?;
    json_patch::patch(target, &p).map_err(|e| {
        ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        )
    })
}

fn key_of(item: &Value, keys: &[String]) -> Option<Vec<Value>> {
    let o = item.as_object()?;
    Some(
        keys.iter()
            .map(|k| o.get(k).cloned().unwrap_or(Value::Null))
            .collect(),
    )
}

/// Strategic merge patch: merge patch plus keyed merging of known list types and `$patch` directives.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value, ctx: Ctx) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut clean = patch.clone();
        strip_directives(&mut clean);
        *target = clean;
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(cur)), Value::Array(del)) = (t.get_mut(field), v) {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        let cctx = ctx.child(k);
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Array(items) => {
                if let (Some(keys), Some(Value::Array(cur))) = (cctx.map_keys(), t.get_mut(k)) {
                    merge_keyed_list(cur, items, &keys, cctx.item(), true);
                } else if let (true, Some(Value::Array(cur))) = (cctx.is_set(), t.get_mut(k)) {
                    for x in items {
                        if !cur.contains(x) {
                            cur.push(x.clone());
                        }
                    }
                } else {
                    let mut clean = v.clone();
                    strip_directives(&mut clean);
                    t.insert(k.clone(), clean);
                }
            }
            Value::Object(_) => {
                if v.get("$patch").and_then(Value::as_str) == Some("delete") {
                    t.remove(k);
                } else {
                    strategic_merge_patch(t.entry(k.clone()).or_insert(Value::Null), v, cctx);
                }
            }
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
}

fn merge_keyed_list(
    cur: &mut Vec<Value>,
    items: &[Value],
    keys: &[String],
    ictx: Ctx,
    strategic: bool,
) {
    for it in items {
        let Some(kv) = key_of(it, keys) else { continue };
        let pos = cur
            .iter()
            .position(|c| key_of(c, keys).as_ref() == Some(&kv));
        if strategic && it.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = pos {
                cur.remove(i);
            }
            continue;
        }
        match pos {
            Some(i) if strategic => strategic_merge_patch(&mut cur[i], it, ictx),
            Some(i) => apply_merge(&mut cur[i], it, ictx),
            None => {
                let mut clean = it.clone();
                strip_directives(&mut clean);
                cur.push(clean);
            }
        }
    }
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// Merge an applied configuration into the live object (server-side apply's merge step).
pub fn apply_merge(live: &mut Value, config: &Value, ctx: Ctx) {
    let Value::Object(c) = config else {
        *live = config.clone();
        return;
    };
    if !live.is_object() {
        *live = Value::Object(Map::new());
    }
    let t = live.as_object_mut().expect("object");
    for (k, v) in c {
        let cctx = ctx.child(k);
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(_) => apply_merge(t.entry(k.clone()).or_insert(Value::Null), v, cctx),
            Value::Array(items) => {
                if let (Some(keys), Some(Value::Array(cur))) = (cctx.map_keys(), t.get_mut(k)) {
                    merge_keyed_list(cur, items, &keys, cctx.item(), false);
                } else if let (true, Some(Value::Array(cur))) = (cctx.is_set(), t.get_mut(k)) {
                    for x in items {
                        if !cur.contains(x) {
                            cur.push(x.clone());
                        }
                    }
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        merge_patch(
            &mut t,
            &json!({"a": null, "b": {"c": 5}, "l": [3], "n": "x"}),
        );
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}, "l": [3], "n": "x"}));
    }

    #[test]
    fn json_patch_ops() {
        let mut t = json!({"metadata": {"labels": {"a": "1"}}, "l": [1]});
        json_patch(&mut t, &json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"}, {"op": "remove", "path": "/l/0"}])).unwrap();
        assert_eq!(
            t,
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "l": []})
        );
        let err =
            json_patch(&mut t, &json!([{"op": "test", "path": "/l", "value": [9]}])).unwrap_err();
        assert_eq!(err.code, 422);
    }

    #[test]
    fn strategic_merges_conditions_by_type() {
        let mut t = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Other", "status": "True"}]}});
        strategic_merge_patch(
            &mut t,
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "New", "status": "True"}, {"type": "Other", "$patch": "delete"}]}}),
            Ctx::root(None),
        );
        assert_eq!(
            t["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "New", "status": "True"}])
        );
        let mut t = json!({"spec": {"holderIdentity": "a", "renewTime": "x"}});
        strategic_merge_patch(
            &mut t,
            &json!({"spec": {"holderIdentity": null}}),
            Ctx::root(None),
        );
        assert_eq!(t, json!({"spec": {"renewTime": "x"}}));
    }

    #[test]
    fn apply_merge_uses_schema_keys() {
        let schema = Schema::parse(&json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"], "items": {"type": "object"}},
            "args": {"type": "array", "items": {"type": "string"}}}}}}))
        .unwrap();
        let mut live = json!({"spec": {"ports": [{"name": "a", "port": 1}], "args": ["x"]}});
        apply_merge(
            &mut live,
            &json!({"spec": {"ports": [{"name": "b", "port": 2}], "args": ["y"]}}),
            Ctx::root(Some(&schema)),
        );
        assert_eq!(
            live,
            json!({"spec": {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}], "args": ["y"]}})
        );
    }
}
