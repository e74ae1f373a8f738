//! `metadata.managedFields`: FieldsV1 field sets, ownership tracking and server-side apply conflicts.

use serde_json::{json, Map, Value};

use crate::patch::Ctx;

/// One path element of a FieldsV1 set: `f:name`, `k:{"type":"Ready"}` or `v:"value"`.
pub type Path = Vec<String>;

const SYSTEM_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// Compute the FieldsV1 set describing every field present in `obj`.
pub fn fieldset(obj: &Value, ctx: Ctx) -> Value {
    let mut out = Map::new();
    if let Value::Object(m) = obj {
        for (k, v) in m {
            if ctx.is_root() && (k == "apiVersion" || k == "kind") {
                continue;
            }
            if ctx.is_root() && k == "metadata" {
                let mut meta = v.clone();
                if let Some(mm) = meta.as_object_mut() {
                    mm.retain(|k, _| !SYSTEM_META.contains(&k.as_str()));
                    if mm.is_empty() {
                        continue;
                    }
                }
                out.insert(
                    "f:metadata".into(),
                    fieldset_inner(&meta, ctx.child("metadata")),
                );
                continue;
            }
            out.insert(format!("f:{k}"), fieldset_inner(v, ctx.child(k)));
        }
    }
    Value::Object(out)
}

fn fieldset_inner(v: &Value, ctx: Ctx) -> Value {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let mut out = Map::new();
            for (k, c) in m {
                out.insert(format!("f:{k}"), fieldset_inner(c, ctx.child(k)));
            }
            Value::Object(out)
        }
        Value::Array(items) if !items.is_empty() => {
            if let Some(keys) = ctx.map_keys() {
                let mut out = Map::new();
                for it in items {
                    let Some(o) = it.as_object() else { continue };
                    let mut kv = Map::new();
                    for k in &keys {
                        if let Some(x) = o.get(k) {
                            kv.insert(k.clone(), x.clone());
                        }
                    }
                    let mut inner = fieldset_inner(it, ctx.item());
                    if let Value::Object(im) = &mut inner {
                        im.insert(".".into(), json!({}));
                    }
                    out.insert(format!("k:{}", Value::Object(kv)), inner);
                }
                Value::Object(out)
            } else if ctx.is_set() {
                Value::Object(
                    items
                        .iter()
                        .map(|x| (format!("v:{x}"), json!({})))
                        .collect(),
                )
            } else {
                json!({})
            }
        }
        _ => json!({}),
    }
}

/// All leaf paths of a field set (fields without children, and list items marked with `.`).
pub fn leaves(fs: &Value) -> Vec<Path> {
    let mut out = vec![];
    fn walk(fs: &Value, cur: &mut Path, out: &mut Vec<Path>) {
        let Some(m) = fs.as_object() else { return };
        if (m.is_empty() || m.contains_key(".")) && !cur.is_empty() {
            out.push(cur.clone());
        }
        for (k, v) in m {
            if k == "." {
                continue;
            }
            cur.push(k.clone());
            walk(v, cur, out);
            cur.pop();
        }
    }
    walk(fs, &mut vec![], &mut out);
    out
}

/// Does the set contain `path` as a leaf?
pub fn contains(fs: &Value, path: &Path) -> bool {
    let mut cur = fs;
    for p in path {
        match cur.get(p) {
            Some(n) => cur = n,
            None => return false,
        }
    }
    cur.as_object()
        .is_some_and(|m| m.is_empty() || m.contains_key("."))
}

/// Remove `path` from a field set, pruning empty parents.
pub fn remove(fs: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Some(m) = fs.as_object_mut() else { return };
    if rest.is_empty() {
        if let Some(n) = m.get_mut(first) {
            let has_children = n.as_object().is_some_and(|nm| nm.keys().any(|k| k != "."));
            if has_children {
                n.as_object_mut().expect("object").remove(".");
            } else {
                m.remove(first);
            }
        }
        return;
    }
    if let Some(child) = m.get_mut(first) {
        remove(child, rest);
        if child.as_object().is_some_and(Map::is_empty) {
            m.remove(first);
        }
    }
}

/// Add `path` as a leaf of a field set.
pub fn insert(fs: &mut Value, path: &[String], is_item: bool) {
    let mut cur = fs;
    for p in path {
        if !cur.is_object() {
            *cur = json!({});
        }
        cur = cur
            .as_object_mut()
            .expect("object")
            .entry(p.clone())
            .or_insert_with(|| json!({}));
    }
    if is_item {
        if let Some(m) = cur.as_object_mut() {
            m.insert(".".into(), json!({}));
        }
    }
}

/// The value at a field-set path in an object.
pub fn get<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for p in path {
        cur = step(cur, p)?;
    }
    Some(cur)
}

fn step<'a>(cur: &'a Value, p: &str) -> Option<&'a Value> {
    if let Some(f) = p.strip_prefix("f:") {
        cur.get(f)
    } else if let Some(k) = p.strip_prefix("k:") {
        let kv: Map<String, Value> = serde_json::from_str(k).ok()?;
        cur.as_array()?
            .iter()
            .find(|it| kv.iter().all(|(k, v)| it.get(k) == Some(v)))
    } else if let Some(v) = p.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        cur.as_array()?.iter().find(|it| **it == want)
    } else {
        None
    }
}

/// Delete the value at a field-set path from an object.
pub fn delete(obj: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for p in parent {
        let next = if let Some(f) = p.strip_prefix("f:") {
            cur.get_mut(f)
        } else if p.starts_with("k:") || p.starts_with("v:") {
            let idx = index_of(cur, p);
            match (idx, cur.as_array_mut()) {
                (Some(i), Some(a)) => a.get_mut(i),
                _ => None,
            }
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(i) = index_of(cur, last) {
        if let Some(a) = cur.as_array_mut() {
            a.remove(i);
        }
    }
}

fn index_of(list: &Value, p: &str) -> Option<usize> {
    let a = list.as_array()?;
    if let Some(k) = p.strip_prefix("k:") {
        let kv: Map<String, Value> = serde_json::from_str(k).ok()?;
        a.iter()
            .position(|it| kv.iter().all(|(k, v)| it.get(k) == Some(v)))
    } else {
        let want: Value = serde_json::from_str(p.strip_prefix("v:")?).ok()?;
        a.iter().position(|it| *it == want)
    }
}

/// A managedFields entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Field manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// API version the manager used.
    pub api_version: String,
    /// Timestamp.
    pub time: String,
    /// Subresource (`""` or `status`).
    pub subresource: String,
    /// FieldsV1 set.
    pub fields: Value,
}

/// Parse `metadata.managedFields`.
pub fn entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: e
                        .get("manager")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    operation: e
                        .get("operation")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    api_version: e
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    time: e
                        .get("time")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    fields: e.get("fieldsV1").cloned().unwrap_or_else(|| json!({})),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Serialize entries back into `metadata.managedFields` (dropping empty ones).
pub fn store(obj: &mut Value, entries: Vec<Entry>) {
    let arr: Vec<Value> = entries
        .into_iter()
        .filter(|e| e.fields.as_object().is_some_and(|m| !m.is_empty()))
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": e.fields,
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    let meta = crate::util::meta_mut(obj);
    if arr.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(arr));
    }
}

/// Who did what: identifies the entry a write is attributed to.
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    /// Field manager.
    pub manager: &'a str,
    /// API version used.
    pub api_version: &'a str,
    /// Subresource written.
    pub subresource: &'a str,
}

fn entry_mut<'e>(es: &'e mut Vec<Entry>, w: &Writer, op: &str) -> &'e mut Entry {
    if let Some(i) = es
        .iter()
        .position(|e| e.manager == w.manager && e.operation == op && e.subresource == w.subresource)
    {
        let e = &mut es[i];
        e.time = crate::util::now_rfc3339();
        e.api_version = w.api_version.into();
        return e;
    }
    es.push(Entry {
        manager: w.manager.into(),
        operation: op.into(),
        api_version: w.api_version.into(),
        time: crate::util::now_rfc3339(),
        subresource: w.subresource.into(),
        fields: json!({}),
    });
    es.last_mut().expect("just pushed")
}

/// Record an Update-style write (create, PUT, non-apply patch): changed fields move to the writer.
pub fn record_update(old: Option<&Value>, new: &mut Value, w: &Writer, ctx: Ctx) {
    let mut es = old.map(entries).unwrap_or_default();
    let new_fs = fieldset(new, ctx);
    let changed: Vec<Path> = leaves(&new_fs)
        .into_iter()
        .filter(|p| {
            let is_item = p.last().is_some_and(|l| !l.starts_with("f:"));
            let nv = get(new, p);
            let ov = old.and_then(|o| get(o, p));
            if is_item {
                ov.is_none()
            } else {
                nv != ov
            }
        })
        .collect();
    // Fields that disappeared lose their owners.
    for e in es.iter_mut() {
        for p in leaves(&e.fields) {
            if !contains(&new_fs, &p) {
                remove(&mut e.fields, &p);
            }
        }
    }
    if !changed.is_empty() {
        for e in es.iter_mut().filter(|e| {
            !(e.manager == w.manager && e.operation == "Update" && e.subresource == w.subresource)
        }) {
            for p in &changed {
                remove(&mut e.fields, p);
            }
        }
        let mine = entry_mut(&mut es, w, "Update");
        for p in &changed {
            let is_item = p.last().is_some_and(|l| !l.starts_with("f:"));
            insert(&mut mine.fields, p, is_item);
        }
    }
    store(new, es);
}

/// A server-side apply conflict: another manager owns a field with a different value.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// Field path in `.a.b` form.
    pub field: String,
}

/// Render a field-set path the way apply conflicts print it (`.spec.foo`, `.status.conditions[type="Ready"]`).
pub fn render_path(p: &Path) -> String {
    let mut s = String::new();
    for e in p {
        if let Some(f) = e.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = e.strip_prefix("k:") {
            let kv: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = e.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// Server-side apply: merge `config` into `live` with ownership tracking. Returns conflicts when not forced.
pub fn apply(
    live: &Value,
    config: &Value,
    w: &Writer,
    force: bool,
    ctx: Ctx,
) -> Result<Value, Vec<Conflict>> {
    let mut es = entries(live);
    let cfg_fs = fieldset(config, ctx);
    let cfg_leaves = leaves(&cfg_fs);
    let mut conflicts = vec![];
    for e in es.iter_mut() {
        if e.manager == w.manager && e.operation == "Apply" {
            continue;
        }
        for p in &cfg_leaves {
            let is_item = p.last().is_some_and(|l| !l.starts_with("f:"));
            if is_item || !contains(&e.fields, p) {
                continue;
            }
            if get(live, p) != get(config, p) {
                if force {
                    remove(&mut e.fields, p);
                } else {
                    conflicts.push(Conflict {
                        manager: e.manager.clone(),
                        field: render_path(p),
                    });
                }
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let mut merged = live.clone();
    // Fields this manager applied before but no longer applies are removed unless someone else owns them.
    if let Some(prev) = es.iter().find(|e| {
        e.manager == w.manager && e.operation == "Apply" && e.subresource == w.subresource
    }) {
        let mut gone: Vec<Path> = leaves(&prev.fields)
            .into_iter()
            .filter(|p| !contains(&cfg_fs, p) && !cfg_leaves.iter().any(|c| c.starts_with(p)))
            .filter(|p| {
                !es.iter().any(|o| {
                    !(o.manager == w.manager
                        && o.operation == "Apply"
                        && o.subresource == w.subresource)
                        && contains(&o.fields, p)
                })
            })
            .collect();
        let all = gone.clone();
        gone.retain(|p| !all.iter().any(|q| q.len() < p.len() && p.starts_with(q)));
        gone.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in gone {
            delete(&mut merged, &p);
            // A map left empty by the removal goes too, unless this apply sets it (as the
            // real server drops a struct whose fields all lost their owner).
            for k in (1..p.len()).rev() {
                let parent: Path = p[..k].to_vec();
                let empty =
                    get(&merged, &parent).is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
                if !empty || contains(&cfg_fs, &parent) {
                    break;
                }
                delete(&mut merged, &parent);
            }
        }
    }
    crate::patch::apply_merge(&mut merged, &strip_identity(config), ctx);
    let mine = entry_mut(&mut es, w, "Apply");
    mine.fields = cfg_fs;
    store(&mut merged, es);
    Ok(merged)
}

fn strip_identity(config: &Value) -> Value {
    let mut c = config.clone();
    if let Some(m) = c.get_mut("metadata").and_then(Value::as_object_mut) {
        m.retain(|k, _| !SYSTEM_META.contains(&k.as_str()) || k == "name" || k == "namespace");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn w<'a>(m: &'a str) -> Writer<'a> {
        Writer {
            manager: m,
            api_version: "v1",
            subresource: "",
        }
    }

    #[test]
    fn fieldset_shape() {
        let obj = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a", "labels": {"x": "1"}},
                         "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let fs = fieldset(&obj, Ctx::root(None));
        assert_eq!(
            fs,
            json!({"f:metadata": {"f:labels": {"f:x": {}}},
                   "f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:type": {}, "f:status": {}}}}})
        );
        let l = leaves(&fs);
        assert!(l.contains(&vec![
            "f:status".into(),
            "f:conditions".into(),
            "k:{\"type\":\"Ready\"}".into(),
            "f:status".into()
        ]));
        assert!(get(&obj, &l[0]).is_some());
    }

    #[test]
    fn apply_conflicts_and_force() {
        let base = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a"}});
        let a = apply(
            &base,
            &json!({"spec": {"holder": "a", "x": 1}}),
            &w("a"),
            false,
            Ctx::root(None),
        )
        .unwrap();
        // Same value: shared ownership, no conflict.
        let b = apply(
            &a,
            &json!({"spec": {"x": 1}}),
            &w("b"),
            false,
            Ctx::root(None),
        )
        .unwrap();
        // Different value: conflict unless forced.
        let err = apply(
            &b,
            &json!({"spec": {"holder": "b"}}),
            &w("b"),
            false,
            Ctx::root(None),
        )
        .unwrap_err();
        assert_eq!(
            err,
            vec![Conflict {
                manager: "a".into(),
                field: ".spec.holder".into()
            }]
        );
        let forced = apply(
            &b,
            &json!({"spec": {"holder": "b"}}),
            &w("b"),
            true,
            Ctx::root(None),
        )
        .unwrap();
        assert_eq!(forced["spec"]["holder"], "b");
        let es = entries(&forced);
        let a_entry = es.iter().find(|e| e.manager == "a").unwrap();
        assert!(!contains(
            &a_entry.fields,
            &vec!["f:spec".into(), "f:holder".into()]
        ));
    }

    #[test]
    fn apply_drops_a_struct_whose_fields_are_no_longer_applied() {
        let ctx = Ctx::root(None);
        let first = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "signer": {"subject": "CN=x", "notAfter": "t"}}});
        let live = apply(&json!({}), &first, &w("m"), true, ctx).unwrap();
        let second = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let live = apply(&live, &second, &w("m"), true, ctx).unwrap();
        assert!(live["status"].get("signer").is_none(), "{live}");
        assert_eq!(live["status"]["conditions"][0]["status"], "False");
    }

    #[test]
    fn apply_removes_fields_no_longer_applied() {
        let base = json!({"metadata": {"name": "a"}});
        let one = apply(&base, &json!({"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}]}}), &w("m"), false, Ctx::root(None)).unwrap();
        let two = apply(
            &one,
            &json!({"status": {"conditions": [{"type": "A", "status": "False"}]}}),
            &w("m"),
            false,
            Ctx::root(None),
        )
        .unwrap();
        assert_eq!(
            two["status"]["conditions"],
            json!([{"type": "A", "status": "False"}])
        );
    }

    #[test]
    fn update_steals_ownership() {
        let base = json!({"metadata": {"name": "a"}});
        let a = apply(
            &base,
            &json!({"spec": {"holder": "a"}}),
            &w("a"),
            false,
            Ctx::root(None),
        )
        .unwrap();
        let mut upd = a.clone();
        upd["spec"]["holder"] = json!("b");
        record_update(Some(&a), &mut upd, &w("b"), Ctx::root(None));
        // Now "b" owns the field, so "a" re-applying its old value conflicts.
        let err = apply(
            &upd,
            &json!({"spec": {"holder": "a"}}),
            &w("a"),
            false,
            Ctx::root(None),
        )
        .unwrap_err();
        assert_eq!(err[0].manager, "b");
        // A field set to null by an update is dropped from everyone's set.
        let mut cleared = upd.clone();
        cleared["spec"].as_object_mut().unwrap().remove("holder");
        record_update(Some(&upd), &mut cleared, &w("b"), Ctx::root(None));
        assert!(apply(
            &cleared,
            &json!({"spec": {"holder": "c"}}),
            &w("c"),
            false,
            Ctx::root(None)
        )
        .is_ok());
    }
}
