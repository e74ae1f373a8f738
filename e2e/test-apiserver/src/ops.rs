//! Object semantics for create/update/patch/delete/list: metadata, generation, concurrency, status
//! subresources, finalizers, garbage collection, namespaces and CRD registration.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::auth::UserInfo;
use crate::error::{ApiError, ApiResult, Cause};
use crate::managed::{self, Writer};
use crate::patch::{self, Ctx};
use crate::resources::ResourceDef;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::Inner;
use crate::util::{meta_mut, meta_str, new_uid, now_rfc3339, random_suffix};

/// What a request addresses.
#[derive(Debug, Clone)]
pub struct Target {
    /// Resource type.
    pub def: Arc<ResourceDef>,
    /// Requested version.
    pub version: String,
    /// Namespace (`""` when cluster-scoped or all namespaces).
    pub namespace: String,
    /// Object name (`""` for collections).
    pub name: String,
    /// Subresource (`""` for the main resource).
    pub subresource: String,
}

/// Options of a write request.
#[derive(Debug, Clone)]
pub struct WriteOpts {
    /// Requesting user.
    pub user: UserInfo,
    /// Field manager (explicit or derived from the User-Agent).
    pub field_manager: String,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `force=true` for apply.
    pub force: bool,
    /// `fieldValidation=Strict` (reject unknown fields of custom resources).
    pub strict: bool,
}

/// Patch content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml`
    Apply,
}

/// Options of a list request.
#[derive(Debug, Clone, Default)]
pub struct ListOpts {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// Page size.
    pub limit: Option<usize>,
    /// Continue token.
    pub continue_: Option<String>,
}

const EVENT_FIELD_MAP: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("reportingComponent", "reportingController"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename_fields(obj: &mut Value, to_new: bool) {
    let Some(m) = obj.as_object_mut() else { return };
    for (core, new) in EVENT_FIELD_MAP {
        let (from, to) = if to_new { (core, new) } else { (new, core) };
        if let Some(v) = m.remove(*from) {
            m.insert((*to).to_string(), v);
        }
    }
}

/// Convert a stored object to what a client of `version` sees.
pub fn present(def: &ResourceDef, version: &str, obj: &Value) -> Value {
    let mut o = obj.clone();
    if def.group == "events.k8s.io" {
        rename_fields(&mut o, true);
    }
    o["apiVersion"] = json!(def.api_version(version));
    o["kind"] = json!(def.kind);
    o
}

fn ingest(t: &Target, mut body: Value) -> ApiResult<Value> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    let def = &t.def;
    if let Some(k) = body.get("kind").and_then(Value::as_str) {
        if k != def.kind && !k.is_empty() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({})",
                body.get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                def.api_version(&t.version)
            )));
        }
    }
    if def.group == "events.k8s.io" {
        rename_fields(&mut body, false);
        body["apiVersion"] = json!("v1");
    } else {
        body["apiVersion"] = json!(def.api_version(&def.storage_version));
    }
    body["kind"] = json!(def.kind);
    Ok(body)
}

fn name_valid(def: &ResourceDef, name: &str) -> Option<String> {
    if name.len() > 253 {
        return Some("must be no more than 253 characters".into());
    }
    if name == "." || name == ".." || name.contains('/') || name.contains('%') {
        return Some(format!(
            "may not be '.' or '..' and may not contain '/' or '%': {name}"
        ));
    }
    let dns = def.custom
        || matches!(
            def.plural.as_str(),
            "namespaces" | "secrets" | "configmaps" | "serviceaccounts" | "leases" | "deployments"
        );
    if dns {
        let ok = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && name
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric());
        if !ok || (def.plural == "namespaces" && (name.contains('.') || name.len() > 63)) {
            return Some(if def.plural == "namespaces" {
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".into()
            } else {
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into()
            });
        }
    }
    None
}

fn ctx_for<'a>(t: &'a Target, schema: Option<&'a crate::schema::Schema>) -> Ctx<'a> {
    let _ = t;
    Ctx::root(schema)
}

/// Validate, prune and default a custom resource against its schema.
fn schema_check(t: &Target, obj: &mut Value, old: Option<&Value>, strict: bool) -> ApiResult<()> {
    let Some(schema) = t.def.schema(&t.version) else {
        return Ok(());
    };
    let before = strict.then(|| obj.clone());
    schema.prune(obj, true);
    if let Some(before) = before {
        let mut unknown = vec![];
        diff_pruned(&before, obj, "", &mut unknown);
        if !unknown.is_empty() {
            let list: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                t.def.kind,
                t.version,
                t.def.kind,
                list.join(", ")
            )));
        }
    }
    schema.apply_defaults(obj);
    let mut causes = vec![];
    let name = meta_str(obj, "name").unwrap_or_default().to_string();
    schema.validate(obj, old, "", &mut causes);
    if !causes.is_empty() {
        return Err(ApiError::invalid(&t.def.group, &t.def.kind, &name, causes));
    }
    Ok(())
}

fn diff_pruned(before: &Value, after: &Value, path: &str, out: &mut Vec<String>) {
    if let (Value::Object(b), Value::Object(a)) = (before, after) {
        for (k, bv) in b {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match a.get(k) {
                None => out.push(p),
                Some(av) => diff_pruned(bv, av, &p, out),
            }
        }
    } else if let (Value::Array(b), Value::Array(a)) = (before, after) {
        for (i, (bv, av)) in b.iter().zip(a).enumerate() {
            diff_pruned(bv, av, &format!("{path}[{i}]"), out);
        }
    }
}

fn spec_part(def: &ResourceDef, v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("metadata");
        if def.status_subresource {
            m.remove("status");
        }
    }
    c
}

fn normalized(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(m) = c.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        if let Some(Value::Array(mf)) = m.get_mut("managedFields") {
            for e in mf {
                if let Some(em) = e.as_object_mut() {
                    em.remove("time");
                }
            }
        }
    }
    c
}

fn writer<'a>(t: &'a Target, opts: &'a WriteOpts, api_version: &'a str) -> Writer<'a> {
    Writer {
        manager: &opts.field_manager,
        api_version,
        subresource: &t.subresource,
    }
}

/// Create an object.
pub fn create(g: &mut Inner, t: &Target, body: Value, opts: &WriteOpts) -> ApiResult<(u16, Value)> {
    let obj = ingest(t, body)?;
    create_ingested(g, t, obj, opts, None)
}

fn create_ingested(
    g: &mut Inner,
    t: &Target,
    mut obj: Value,
    opts: &WriteOpts,
    apply_cfg: Option<&Value>,
) -> ApiResult<(u16, Value)> {
    let def = t.def.clone();
    if meta_str(&obj, "resourceVersion").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let mut name = meta_str(&obj, "name").unwrap_or_default().to_string();
    if name.is_empty() {
        if let Some(gn) = meta_str(&obj, "generateName").filter(|s| !s.is_empty()) {
            name = format!("{gn}{}", random_suffix(5));
        } else {
            return Err(ApiError::invalid(
                &def.group,
                &def.kind,
                "",
                vec![Cause::required("metadata.name")],
            )
            .with_message_suffix("name or generateName is required"));
        }
    }
    if let Some(why) = name_valid(&def, &name) {
        return Err(ApiError::invalid(
            &def.group,
            &def.kind,
            &name,
            vec![Cause::invalid("metadata.name", &json!(name), &why)],
        ));
    }
    let ns = if def.namespaced {
        t.namespace.clone()
    } else {
        String::new()
    };
    if def.namespaced {
        if let Some(bns) = meta_str(&obj, "namespace").filter(|s| !s.is_empty()) {
            if bns != ns {
                return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
            }
        }
        match g.namespace_active(&ns) {
            None => return Err(ApiError::not_found("", "namespaces", &ns)),
            Some(false) => {
                return Err(ApiError::forbidden(
                    &def.group,
                    &def.plural,
                    &name,
                    &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
                ))
            }
            Some(true) => {}
        }
    }
    let now = now_rfc3339();
    {
        let m = meta_mut(&mut obj);
        m.insert("name".into(), json!(name));
        if def.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(new_uid()));
        m.insert("creationTimestamp".into(), json!(now));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("managedFields");
        m.remove("selfLink");
        if def.generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
    }
    if def.status_subresource && def.plural != "namespaces" {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    }
    crate::builtins::prepare(&def, &mut obj, None, "", &opts.user)?;
    schema_check(t, &mut obj, None, opts.strict)?;
    let crd_def =
        if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
            let d = crate::crd::to_def(&obj)?;
            if d.custom
                && g.registry
                    .by_group_resource(&d.group, &d.plural)
                    .is_some_and(|e| !e.custom)
            {
                return Err(ApiError::invalid(
                    &def.group,
                    &def.kind,
                    &name,
                    vec![Cause::invalid(
                        "spec.group",
                        &json!(d.group),
                        "conflicts with a built-in resource",
                    )],
                ));
            }
            crate::crd::set_status(&mut obj, &d);
            Some(d)
        } else {
            None
        };
    let key = def.storage_key();
    if g.get(&key, &ns, &name).is_some() {
        return Err(ApiError::already_exists(&def.group, &def.plural, &name));
    }
    let api_version = def.api_version(&t.version);
    let schema = def.schema(&t.version);
    let ctx = ctx_for(t, schema.as_deref());
    match apply_cfg {
        Some(cfg) => {
            let skeleton = json!({"metadata": {}});
            let applied = managed::apply(&skeleton, cfg, &writer(t, opts, &api_version), true, ctx)
                .map_err(|_| ApiError::internal("apply on create conflicted"))?;
            let mut entries = managed::entries(&applied);
            managed::store(&mut obj, std::mem::take(&mut entries));
        }
        None => managed::record_update(None, &mut obj, &writer(t, opts, &api_version), ctx),
    }
    if opts.dry_run {
        return Ok((201, present(&def, &t.version, &obj)));
    }
    let stored = g.put(&key, obj);
    if let Some(d) = crd_def {
        g.registry.insert(d);
    }
    Ok((201, present(&def, &t.version, &stored)))
}

impl ApiError {
    fn with_message_suffix(mut self, detail: &str) -> ApiError {
        self.message = self
            .message
            .replace("Required value", &format!("Required value: {detail}"));
        if let Some(c) = self
            .details
            .as_mut()
            .and_then(|d| d.get_mut("causes"))
            .and_then(|c| c.get_mut(0))
        {
            c["message"] = json!(format!("Required value: {detail}"));
        }
        self
    }
}

fn get_existing(g: &Inner, t: &Target) -> ApiResult<Arc<Value>> {
    let ns = if t.def.namespaced {
        t.namespace.as_str()
    } else {
        ""
    };
    g.get(&t.def.storage_key(), ns, &t.name)
        .ok_or_else(|| ApiError::not_found(&t.def.group, &t.def.plural, &t.name))
}

/// Get one object.
pub fn get(g: &Inner, t: &Target) -> ApiResult<Value> {
    let o = get_existing(g, t)?;
    Ok(present(&t.def, &t.version, &o))
}

/// Replace an object (PUT).
pub fn update(g: &mut Inner, t: &Target, body: Value, opts: &WriteOpts) -> ApiResult<(u16, Value)> {
    let new = ingest(t, body)?;
    if let Some(n) = meta_str(&new, "name") {
        if n != t.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({})",
                t.name
            )));
        }
    }
    let old = match get_existing(g, t) {
        Ok(o) => o,
        Err(e) if e.code == 404 && t.def.create_on_update && t.subresource.is_empty() => {
            return create_ingested(g, t, new, opts, None);
        }
        Err(e) => return Err(e),
    };
    if meta_str(&new, "resourceVersion").is_none_or(str::is_empty) && !t.def.unconditional_update {
        return Err(ApiError::invalid(
            &t.def.group,
            &t.def.kind,
            &t.name,
            vec![Cause::invalid(
                "metadata.resourceVersion",
                &json!("0x0"),
                "must be specified for an update",
            )
            .unquoted_value()],
        ));
    }
    commit_update(g, t, &old, new, opts, None)
}

impl Cause {
    fn unquoted_value(mut self) -> Cause {
        self.message = self.message.replace("\"0x0\"", "0x0");
        self
    }
}

/// Patch an object (all patch types, including server-side apply).
pub fn patch(
    g: &mut Inner,
    t: &Target,
    pt: PatchType,
    body: &[u8],
    opts: &WriteOpts,
) -> ApiResult<(u16, Value)> {
    let parse_json = || -> ApiResult<Value> {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
    };
    let existing = get_existing(g, t);
    if pt == PatchType::Apply {
        let cfg: Value = serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        if opts.field_manager.is_empty() {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                vec![Cause::required("fieldManager")],
            ));
        }
        if !cfg.is_object() {
            return Err(ApiError::bad_request("apply patch must be a JSON object"));
        }
        for (field, want) in [
            ("apiVersion", t.def.api_version(&t.version)),
            ("kind", t.def.kind.clone()),
        ] {
            match cfg.get(field).and_then(Value::as_str) {
                None | Some("") => {
                    return Err(ApiError::bad_request(format!(
                        "{field} must be set in apply configuration (expected {want:?})"
                    )));
                }
                Some(x)
                    if x != want
                        && !(field == "apiVersion"
                            && t.def.versions.keys().any(|v| t.def.api_version(v) == x)) =>
                {
                    return Err(ApiError::bad_request(format!(
                        "{field} {x:?} does not match the request ({want:?})"
                    )));
                }
                _ => {}
            }
        }
        if let Some(n) = meta_str(&cfg, "name") {
            if n != t.name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({})",
                    t.name
                )));
            }
        }
        let api_version = t.def.api_version(&t.version);
        let mut cfg_storage = cfg.clone();
        if t.def.group == "events.k8s.io" {
            rename_fields(&mut cfg_storage, false);
        }
        if let Some(m) = cfg_storage.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
        }
        let schema = t.def.schema(&t.version);
        let ctx = ctx_for(t, schema.as_deref());
        return match existing {
            Err(e) if e.code == 404 => {
                if !t.subresource.is_empty() {
                    return Err(e);
                }
                let mut obj = cfg_storage.clone();
                meta_mut(&mut obj).insert("name".into(), json!(t.name));
                let obj = ingest(t, obj)?;
                create_ingested(g, t, obj, opts, Some(&cfg_storage))
            }
            Err(e) => Err(e),
            Ok(old) => {
                if let Some(rv) = meta_str(&cfg, "resourceVersion").filter(|r| !r.is_empty()) {
                    if Some(rv) != meta_str(&old, "resourceVersion") {
                        return Err(ApiError::conflict(&t.def.group, &t.def.plural, &t.name));
                    }
                }
                let merged = managed::apply(
                    &old,
                    &cfg_storage,
                    &writer(t, opts, &api_version),
                    opts.force,
                    ctx,
                )
                .map_err(|cs| {
                    let causes: Vec<Cause> = cs
                        .iter()
                        .map(|c| Cause {
                            reason: "FieldManagerConflict".into(),
                            message: format!("conflict with {:?}", c.manager),
                            field: c.field.clone(),
                        })
                        .collect();
                    let conflicts: Vec<(&str, &str)> = cs
                        .iter()
                        .map(|c| (c.manager.as_str(), c.field.as_str()))
                        .collect();
                    ApiError::apply_conflict(&conflicts, &causes)
                })?;
                let mut merged = merged;
                merged["apiVersion"] = old["apiVersion"].clone();
                merged["kind"] = old["kind"].clone();
                commit_update(g, t, &old, merged, opts, Some(()))
            }
        };
    }
    let old = existing?;
    let mut cur = present(&t.def, &t.version, &old);
    match pt {
        PatchType::Merge => patch::merge_patch(&mut cur, &parse_json()?),
        PatchType::Json => patch::json_patch(&mut cur, &parse_json()?)?,
        PatchType::Strategic => {
            if t.def.custom {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                ));
            }
            patch::strategic_merge_patch(&mut cur, &parse_json()?, Ctx::root(None))
        }
        PatchType::Apply => unreachable!(),
    }
    let new = ingest(t, cur)?;
    commit_update(g, t, &old, new, opts, None)
}

/// Shared tail of update/patch/apply: subresource rules, immutables, concurrency, generation, GC of finalizers.
fn commit_update(
    g: &mut Inner,
    t: &Target,
    old: &Arc<Value>,
    mut new: Value,
    opts: &WriteOpts,
    applied: Option<()>,
) -> ApiResult<(u16, Value)> {
    let def = t.def.clone();
    // Optimistic concurrency.
    if let Some(rv) = meta_str(&new, "resourceVersion").filter(|r| !r.is_empty()) {
        if Some(rv) != meta_str(old, "resourceVersion") {
            return Err(ApiError::conflict(&def.group, &def.plural, &t.name));
        }
    }
    // Subresource separation.
    match t.subresource.as_str() {
        "status" => {
            let mut o = (**old).clone();
            match new.get("status") {
                Some(s) => o["status"] = s.clone(),
                None => {
                    if let Some(m) = o.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            if let Some(mf) = new.pointer("/metadata/managedFields") {
                meta_mut(&mut o).insert("managedFields".into(), mf.clone());
            }
            new = o;
        }
        "approval" => {
            let mut o = (**old).clone();
            o["status"]["conditions"] = new
                .pointer("/status/conditions")
                .cloned()
                .unwrap_or(json!([]));
            if let Some(mf) = new.pointer("/metadata/managedFields") {
                meta_mut(&mut o).insert("managedFields".into(), mf.clone());
            }
            new = o;
        }
        "" if def.status_subresource => match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        },
        _ => {}
    }
    // Immutable and server-owned metadata.
    {
        let om = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let m = meta_mut(&mut new);
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match om.get(k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.remove(k),
            };
        }
        if !def.namespaced {
            m.remove("namespace");
        }
    }
    if old.pointer("/metadata/deletionTimestamp").is_some() {
        let old_f: Vec<Value> = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let new_f: Vec<Value> = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if new_f.iter().any(|f| !old_f.contains(f)) {
            return Err(ApiError::invalid(
                &def.group,
                &def.kind,
                &t.name,
                vec![Cause::forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted",
                )],
            ));
        }
    }
    crate::builtins::prepare(&def, &mut new, Some(old), &t.subresource, &opts.user)?;
    schema_check(t, &mut new, Some(old), opts.strict)?;
    let crd_def =
        if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
            let d = crate::crd::to_def(&new)?;
            crate::crd::set_status(&mut new, &d);
            Some(d)
        } else {
            None
        };
    if def.generation && spec_part(&def, &new) != spec_part(&def, old) {
        let gen = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        meta_mut(&mut new).insert("generation".into(), json!(gen));
    }
    if applied.is_none() {
        let api_version = def.api_version(&t.version);
        let schema = def.schema(&t.version);
        managed::record_update(
            Some(old),
            &mut new,
            &writer(t, opts, &api_version),
            ctx_for(t, schema.as_deref()),
        );
    }
    // No-op writes do not bump the resourceVersion or notify watchers.
    if normalized(&new) == normalized(old) {
        return Ok((200, present(&def, &t.version, old)));
    }
    let finalizers_empty = new
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if opts.dry_run {
        return Ok((200, present(&def, &t.version, &new)));
    }
    if new.pointer("/metadata/deletionTimestamp").is_some() && finalizers_empty {
        let ns = meta_str(&new, "namespace").unwrap_or_default().to_string();
        let last = remove_now(g, &def, &ns, &t.name, new);
        return Ok((200, present(&def, &t.version, &last)));
    }
    let stored = g.put(&def.storage_key(), new);
    if let Some(d) = crd_def {
        g.registry.insert(d);
    }
    Ok((200, present(&def, &t.version, &stored)))
}

/// Delete options (query parameters and/or DeleteOptions body).
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    /// `Background` (default), `Foreground` or `Orphan`.
    pub propagation: String,
    /// Precondition on UID.
    pub uid: Option<String>,
    /// Precondition on resourceVersion.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// Delete one object. Returns HTTP code and body (object or Status).
pub fn delete(g: &mut Inner, t: &Target, opts: &DeleteOpts) -> ApiResult<(u16, Value)> {
    let old = get_existing(g, t)?;
    // kube-apiserver names a custom resource by its kind here (`CertificateRequest.cert-manager.io`).
    let resource = if t.def.custom {
        &t.def.kind
    } else {
        &t.def.plural
    };
    let conflict = |what: &str, want: &str, have: &str| {
        let why = if what == "UID" {
            "The object might have been deleted and then recreated"
        } else {
            "The object might have been modified"
        };
        ApiError::conflict_msg(
            &t.def.group,
            resource,
            &t.name,
            &format!("the {what} in the precondition ({want}) does not match the {what} in record ({have}). {why}"),
        )
    };
    if let Some(uid) = &opts.uid {
        let have = meta_str(&old, "uid").unwrap_or_default();
        if uid != have {
            return Err(conflict("UID", uid, have));
        }
    }
    if let Some(rv) = &opts.resource_version {
        let have = meta_str(&old, "resourceVersion").unwrap_or_default();
        if rv != have {
            return Err(conflict("ResourceVersion", rv, have));
        }
    }
    if opts.dry_run {
        return Ok((200, present(&t.def, &t.version, &old)));
    }
    let ns = meta_str(&old, "namespace").unwrap_or_default().to_string();
    let (removed, obj) = delete_obj(g, &t.def, &ns, &t.name, &opts.propagation);
    if removed && !t.def.return_deleted_object {
        let mut details = json!({"name": t.name, "kind": t.def.plural, "uid": meta_str(&obj, "uid").unwrap_or_default()});
        if !t.def.group.is_empty() {
            details["group"] = json!(t.def.group);
        }
        return Ok((
            200,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
        ));
    }
    Ok((200, present(&t.def, &t.version, &obj)))
}

/// Delete with finalizer handling; returns (removed now?, final or current object).
pub fn delete_obj(
    g: &mut Inner,
    def: &Arc<ResourceDef>,
    ns: &str,
    name: &str,
    propagation: &str,
) -> (bool, Arc<Value>) {
    let key = def.storage_key();
    let Some(obj) = g.get(&key, ns, name) else {
        return (false, Arc::new(json!({})));
    };
    let uid = meta_str(&obj, "uid").unwrap_or_default().to_string();
    match propagation {
        "Orphan" => orphan_dependents(g, &uid, def.namespaced.then_some(ns)),
        "Foreground" => {
            for (dkey, (dns, dname), _) in g.dependents(&uid, def.namespaced.then_some(ns)) {
                if let Some(ddef) = g.registry.by_group_resource(&dkey.0, &dkey.1) {
                    delete_obj(g, &ddef, &dns, &dname, "Foreground");
                }
            }
        }
        _ => {}
    }
    let has_finalizers = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    let is_ns = def.group.is_empty() && def.plural == "namespaces";
    if has_finalizers || is_ns {
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            return (false, obj);
        }
        let mut o = (*obj).clone();
        let m = meta_mut(&mut o);
        m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        if is_ns {
            o["status"] = json!({"phase": "Terminating"});
        }
        let stored = g.put(&key, o);
        if is_ns {
            delete_namespace_contents(g, name);
            return match g.get(&key, "", name) {
                Some(cur) => (false, cur),
                None => (true, stored),
            };
        }
        return (false, stored);
    }
    let last = remove_now(g, def, ns, name, (*obj).clone());
    (true, last)
}

fn orphan_dependents(g: &mut Inner, uid: &str, ns: Option<&str>) {
    for (dkey, _, dobj) in g.dependents(uid, ns) {
        let mut o = (*dobj).clone();
        if let Some(refs) = o
            .pointer_mut("/metadata/ownerReferences")
            .and_then(Value::as_array_mut)
        {
            refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
        }
        g.put(&dkey, o);
    }
}

/// Remove an object now, then run cascades: CRD instances, namespace contents, garbage collection.
fn remove_now(
    g: &mut Inner,
    def: &Arc<ResourceDef>,
    ns: &str,
    name: &str,
    last: Value,
) -> Arc<Value> {
    let key = def.storage_key();
    let uid = meta_str(&last, "uid").unwrap_or_default().to_string();
    let removed = g.remove(&key, ns, name, last);
    if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
        let group = removed
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let plural = removed
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(crd_def) = g.registry.by_group_resource(&group, &plural) {
            let ck = crd_def.storage_key();
            let all: Vec<(String, String)> = g.iter(&ck, None).map(|(k, _)| k.clone()).collect();
            for (cns, cname) in all {
                if let Some(o) = g.get(&ck, &cns, &cname) {
                    g.remove(&ck, &cns, &cname, (*o).clone());
                }
            }
            g.registry.remove(&group, &plural);
        }
    }
    // Garbage collection (background): dependents whose owners are all gone are deleted.
    let dependents = g.dependents(&uid, def.namespaced.then_some(ns));
    for (dkey, (dns, dname), dobj) in dependents {
        let refs: Vec<Value> = dobj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let others: Vec<Value> = refs
            .iter()
            .filter(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()))
            .filter(|r| g.uid_exists(r, &dns))
            .cloned()
            .collect();
        if !others.is_empty() {
            let mut o = (*dobj).clone();
            meta_mut(&mut o).insert("ownerReferences".into(), Value::Array(others));
            g.put(&dkey, o);
        } else if let Some(ddef) = g.registry.by_group_resource(&dkey.0, &dkey.1) {
            delete_obj(g, &ddef, &dns, &dname, "Background");
        }
    }
    if def.namespaced && !ns.is_empty() && g.namespace_active(ns) == Some(false) {
        finish_namespace_if_empty(g, ns);
    }
    removed
}

fn delete_namespace_contents(g: &mut Inner, ns: &str) {
    let defs: Vec<Arc<ResourceDef>> = g
        .registry
        .all()
        .filter(|d| d.namespaced && d.storage == (d.group.clone(), d.plural.clone()))
        .cloned()
        .collect();
    for def in defs {
        let names: Vec<String> = g
            .iter(&def.storage_key(), Some(ns))
            .map(|((_, n), _)| n.clone())
            .collect();
        for n in names {
            delete_obj(g, &def, ns, &n, "Background");
        }
    }
    finish_namespace_if_empty(g, ns);
}

fn finish_namespace_if_empty(g: &mut Inner, ns: &str) {
    let keys: Vec<_> = g.objects.keys().cloned().collect();
    let empty = keys
        .iter()
        .all(|k| k.1 == "namespaces" && k.0.is_empty() || g.iter(k, Some(ns)).next().is_none());
    let nskey = (String::new(), "namespaces".to_string());
    if empty {
        if let Some(o) = g.get(&nskey, "", ns) {
            let mut last = (*o).clone();
            last["spec"]["finalizers"] = json!([]);
            g.remove(&nskey, "", ns, last);
        }
    }
}

/// List objects.
pub fn list(g: &Inner, t: &Target, opts: &ListOpts) -> ApiResult<Value> {
    let def = &t.def;
    let key = def.storage_key();
    let ns = (def.namespaced && !t.namespace.is_empty()).then_some(t.namespace.as_str());
    let mut start: Option<(String, String)> = None;
    if let Some(c) = opts.continue_.as_deref().filter(|c| !c.is_empty()) {
        let (rv, after) = decode_continue(c)?;
        if rv < g.oldest_rv {
            return Err(ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
            ));
        }
        start = Some(after);
    }
    let limit = opts.limit.filter(|l| *l > 0);
    let mut items = vec![];
    let mut next = None;
    let mut remaining = 0usize;
    let iter = g
        .iter(&key, ns)
        .filter(|(k, _)| start.as_ref().is_none_or(|s| *k > s));
    for (k, o) in iter {
        if let Some(name) = opts.fields.exact_name() {
            if k.1 != name {
                continue;
            }
        }
        if !opts.labels.matches(o) || !opts.fields.matches(o) {
            continue;
        }
        if limit.is_some_and(|l| items.len() >= l) {
            if next.is_none() {
                next = Some(k.clone());
            }
            remaining += 1;
            continue;
        }
        items.push(present(def, &t.version, o));
    }
    let mut meta = json!({"resourceVersion": g.rv.to_string()});
    if next.is_some() {
        if let Some(Value::Object(last)) = items.last().and_then(|l| l.get("metadata")) {
            let last_key = (
                last.get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                last.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            );
            meta["continue"] = json!(encode_continue(g.rv, &last_key));
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    Ok(json!({
        "kind": format!("{}List", def.kind),
        "apiVersion": def.api_version(&t.version),
        "metadata": meta,
        "items": items,
    }))
}

fn encode_continue(rv: u64, key: &(String, String)) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"rv": rv, "ns": key.0, "name": key.1}).to_string())
}

fn decode_continue(c: &str) -> ApiResult<(u64, (String, String))> {
    use base64::Engine;
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((
        v.get("rv").and_then(Value::as_u64).ok_or_else(bad)?,
        (
            v.get("ns")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            v.get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
    ))
}

/// Delete every object matching the selectors; returns the list of deleted objects.
pub fn delete_collection(
    g: &mut Inner,
    t: &Target,
    lopts: &ListOpts,
    dopts: &DeleteOpts,
) -> ApiResult<Value> {
    let listed = list(
        g,
        t,
        &ListOpts {
            limit: None,
            continue_: None,
            ..lopts.clone()
        },
    )?;
    let mut out = vec![];
    for item in listed["items"].as_array().cloned().unwrap_or_default() {
        let ns = meta_str(&item, "namespace").unwrap_or_default().to_string();
        let name = meta_str(&item, "name").unwrap_or_default().to_string();
        let tt = Target {
            namespace: ns,
            name,
            ..t.clone()
        };
        if dopts.dry_run {
            out.push(item);
            continue;
        }
        let (_, obj) = delete_obj(g, &tt.def, &tt.namespace, &tt.name, &dopts.propagation);
        out.push(present(&t.def, &t.version, &obj));
    }
    Ok(json!({
        "kind": format!("{}List", t.def.kind),
        "apiVersion": t.def.api_version(&t.version),
        "metadata": {"resourceVersion": g.rv.to_string()},
        "items": out,
    }))
}
