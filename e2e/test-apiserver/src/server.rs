//! HTTP layer: routing of Kubernetes REST paths, authentication, authorization, content negotiation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::auth::{bearer, Authenticator, SaToken, UserInfo};
use crate::error::{ApiError, ApiResult, Cause};
use crate::faults::{FaultInjector, FaultSpec, RequestInfo};
use crate::ops::{self, DeleteOpts, ListOpts, PatchType, Target, WriteOpts};
use crate::rbac::{self, Attributes};
use crate::resources::ResourceDef;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::Store;
use crate::watch::{self, WatchParams};

/// Shared server state.
#[derive(Debug)]
pub struct App {
    /// Object store.
    pub store: Arc<Store>,
    /// Token database.
    pub auth: Authenticator,
    /// Fault injection.
    pub faults: FaultInjector,
    /// RBAC enforcement on/off.
    pub authorization: bool,
    /// `host:port` the server listens on.
    pub addr: String,
    /// Interval of periodic watch bookmarks.
    pub bookmark_interval: Duration,
}

/// Build the axum router.
pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(app)
}

fn json_response(code: u16, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("valid response")
}

fn error_response(e: &ApiError) -> Response {
    let mut r = json_response(e.code, &e.status());
    if e.code == 429 {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    r
}

/// `PartialObjectMetadata` view of an object.
pub fn partial_metadata(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))})
}

/// A parsed resource path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourcePath {
    /// API group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Resource plural (empty for discovery of the group-version).
    pub resource: String,
    /// Name.
    pub name: String,
    /// Subresource.
    pub subresource: String,
    /// Legacy `/watch/` prefix.
    pub watch: bool,
}

/// Parse `/api/v1/...` or `/apis/G/V/...`. Returns `None` for other paths.
pub fn parse_path(path: &str) -> Option<ResourcePath> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, mut rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest.to_vec()),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest.to_vec()),
        _ => return None,
    };
    let mut p = ResourcePath {
        group,
        version,
        ..Default::default()
    };
    if rest.first() == Some(&"watch") {
        p.watch = true;
        rest.remove(0);
    }
    let s = |i: usize, r: &[&str]| r.get(i).map(|x| x.to_string()).unwrap_or_default();
    match rest.as_slice() {
        [] => {}
        ["namespaces", ns, sub]
            if p.group.is_empty() && (*sub == "status" || *sub == "finalize") =>
        {
            p.resource = "namespaces".into();
            p.name = ns.to_string();
            p.subresource = sub.to_string();
        }
        ["namespaces", ns, r @ ..] if !r.is_empty() => {
            if r.len() > 3 {
                return None;
            }
            p.namespace = Some(ns.to_string());
            p.resource = s(0, r);
            p.name = s(1, r);
            p.subresource = s(2, r);
        }
        r => {
            if r.len() > 3 {
                return None;
            }
            p.resource = s(0, r);
            p.name = s(1, r);
            p.subresource = s(2, r);
        }
    }
    Some(p)
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn authenticate(app: &App, headers: &HeaderMap) -> Option<UserInfo> {
    let tok = bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok()),
    )?;
    match app.auth.lookup(tok)? {
        Ok(u) => Some(u),
        Err(SaToken {
            namespace,
            name,
            uid,
            ..
        }) => {
            let g = app.store.lock();
            let sa = g.get(
                &(String::new(), "serviceaccounts".into()),
                &namespace,
                &name,
            )?;
            (crate::util::meta_str(&sa, "uid") == Some(uid.as_str()))
                .then(|| UserInfo::service_account(&namespace, &name, &uid))
        }
    }
}

/// Apply `Impersonate-User` / `Impersonate-Group` headers (requires `impersonate` on `users`).
fn impersonate(app: &App, user: UserInfo, headers: &HeaderMap) -> ApiResult<UserInfo> {
    let Some(target) = headers
        .get("impersonate-user")
        .and_then(|h| h.to_str().ok())
    else {
        return Ok(user);
    };
    let attrs = Attributes {
        verb: "impersonate".into(),
        resource_request: true,
        resource: "users".into(),
        name: target.into(),
        ..Default::default()
    };
    if !user.is_master() && rbac::authorize(&app.store.lock(), &user, &attrs).is_err() {
        return Err(ApiError::forbidden(
            "",
            "users",
            target,
            &attrs.forbidden_message(&user.name),
        ));
    }
    let mut groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|h| h.to_str().ok().map(str::to_string))
        .collect();
    let mut service_account = None;
    if let Some(rest) = target.strip_prefix("system:serviceaccount:") {
        if let Some((ns, name)) = rest.split_once(':') {
            let sa = UserInfo::service_account(ns, name, "");
            groups.extend(
                sa.groups
                    .iter()
                    .filter(|g| g.as_str() != "system:authenticated")
                    .cloned(),
            );
            service_account = sa.service_account;
        }
    }
    groups.push("system:authenticated".into());
    Ok(UserInfo {
        name: target.into(),
        groups,
        service_account,
    })
}

async fn handle(State(app): State<Arc<App>>, req: Request<Body>) -> Response {
    match handle_inner(&app, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn read_body(body: Body) -> ApiResult<bytes::Bytes> {
    axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading body: {e}")))
}

fn parse_json_body(b: &[u8]) -> ApiResult<Value> {
    if b.is_empty() {
        return Ok(json!({}));
    }
    if b.starts_with(b"k8s\0") {
        return crate::protobuf::decode(b);
    }
    serde_json::from_slice(b)
        .or_else(|_| serde_yaml::from_slice(b))
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
}

fn accept_has(headers: &HeaderMap, needle: &str) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|a| a.contains(needle))
}

async fn handle_inner(app: &Arc<App>, req: Request<Body>) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let q = parse_query(parts.uri.query());
    let public = matches!(
        path.as_str(),
        "/healthz" | "/livez" | "/readyz" | "/version"
    );
    let user = match authenticate(app, &parts.headers) {
        Some(u) => u,
        None if public => UserInfo {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            service_account: None,
        },
        None => return Err(ApiError::unauthorized()),
    };
    let user = impersonate(app, user, &parts.headers)?;
    if let Some(rest) = path.strip_prefix("/testing/") {
        if !user.is_master() {
            return Err(ApiError::forbidden(
                "",
                "",
                "",
                &format!("User {:?} cannot use the testing API", user.name),
            ));
        }
        return testing(app, rest, &parts.method, body).await;
    }
    let Some(rp) = parse_path(&path) else {
        return non_resource(app, &user, &path, &parts.method, &parts.headers);
    };
    if rp.resource.is_empty() {
        return non_resource(app, &user, &path, &parts.method, &parts.headers);
    }
    let def = app
        .store
        .lock()
        .registry
        .lookup(&rp.group, &rp.version, &rp.resource)
        .ok_or_else(ApiError::no_route)?;
    if !rp.subresource.is_empty() && !def.subresources.contains(&rp.subresource) {
        return Err(ApiError::no_route());
    }
    if rp.namespace.is_some() && !def.namespaced {
        return Err(ApiError::no_route());
    }
    let is_watch = rp.watch || q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let has_name = !rp.name.is_empty();
    let verb = match (parts.method.clone(), has_name) {
        (Method::GET, _) if is_watch => "watch",
        (Method::GET, true) => "get",
        (Method::GET, false) => "list",
        (Method::POST, _) => "create",
        (Method::PUT, true) => "update",
        (Method::PATCH, true) => "patch",
        (Method::DELETE, true) => "delete",
        (Method::DELETE, false) => "deletecollection",
        _ => return Err(ApiError::method_not_allowed()),
    };
    if def.namespaced && rp.namespace.is_none() && !matches!(verb, "list" | "watch") {
        return Err(ApiError::no_route());
    }
    let attrs = Attributes {
        verb: verb.into(),
        resource_request: true,
        group: def.group.clone(),
        resource: def.plural.clone(),
        subresource: rp.subresource.clone(),
        name: rp.name.clone(),
        namespace: rp.namespace.clone().unwrap_or_default(),
        path: path.clone(),
    };
    if app.authorization {
        let g = app.store.lock();
        if let Err(reason) = rbac::authorize(&g, &user, &attrs) {
            let mut why = attrs.forbidden_message(&user.name);
            if !reason.is_empty() {
                why = format!("{why}: {reason}");
            }
            return Err(ApiError::forbidden(&def.group, &def.plural, &rp.name, &why));
        }
    }
    let decision = app.faults.on_request(&RequestInfo {
        verb: verb.into(),
        resource: def.plural.clone(),
        subresource: rp.subresource.clone(),
        namespace: attrs.namespace.clone(),
        name: rp.name.clone(),
        user: user.name.clone(),
    });
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    if let Some(code) = decision.fail {
        return Err(injected(code, &def, &rp.name));
    }
    let target = Target {
        def: def.clone(),
        version: rp.version.clone(),
        namespace: rp.namespace.clone().unwrap_or_default(),
        name: rp.name.clone(),
        subresource: rp.subresource.clone(),
    };
    let headers = &parts.headers;
    let table = accept_has(headers, "as=Table");
    let partial = accept_has(headers, "as=PartialObjectMetadata");
    let dry_run = q.get("dryRun").is_some_and(|d| d == "All");
    let wopts = || WriteOpts {
        user: user.clone(),
        field_manager: q.get("fieldManager").cloned().unwrap_or_else(|| {
            if parts.method == Method::PATCH
                && content_type(headers).starts_with("application/apply-patch")
            {
                String::new()
            } else {
                headers
                    .get(header::USER_AGENT)
                    .and_then(|h| h.to_str().ok())
                    .map(|ua| ua.split('/').next().unwrap_or("unknown").to_string())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "unknown".into())
            }
        }),
        dry_run,
        force: q.get("force").is_some_and(|f| f == "true"),
        strict: q.get("fieldValidation").is_some_and(|f| f == "Strict"),
    };
    match verb {
        "get" => {
            let obj = ops::get(&app.store.lock(), &target)?;
            Ok(render_one(&def, &target.version, obj, table, partial, &q))
        }
        "list" => {
            let lopts = list_opts(&q)?;
            let list = ops::list(&app.store.lock(), &target, &lopts)?;
            Ok(render_list(&def, &target.version, list, table, partial, &q))
        }
        "watch" => {
            let p = WatchParams {
                namespace: rp.namespace.clone(),
                resource_version: q
                    .get("resourceVersion")
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<u64>())
                    .transpose()
                    .map_err(|_| {
                        ApiError::bad_request(format!(
                            "invalid resource version: {}",
                            q.get("resourceVersion").cloned().unwrap_or_default()
                        ))
                    })?,
                send_initial_events: q.get("sendInitialEvents").is_some_and(|s| s == "true"),
                bookmarks: q.get("allowWatchBookmarks").is_some_and(|s| s == "true"),
                timeout: q
                    .get("timeoutSeconds")
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_secs(1800)),
                labels: LabelSelector::parse(
                    q.get("labelSelector").map(String::as_str).unwrap_or(""),
                )?,
                fields: FieldSelector::parse(
                    q.get("fieldSelector").map(String::as_str).unwrap_or(""),
                )?,
                bookmark_interval: app.bookmark_interval,
                metadata_only: partial,
            };
            let mut p = p;
            if !rp.name.is_empty() {
                p.fields
                    .0
                    .push(("metadata.name".into(), true, rp.name.clone()));
            }
            if p.send_initial_events
                && q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan")
            {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "ListOptions",
                    "",
                    vec![Cause::forbidden(
                        "resourceVersionMatch",
                        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    )],
                ));
            }
            let rx = watch::start(
                &app.store,
                def.clone(),
                target.version.clone(),
                p,
                app.faults.drop_receiver(),
            )?;
            let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
            let stream = futures::StreamExt::map(stream, Ok::<_, std::convert::Infallible>);
            Ok(Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stream))
                .expect("valid response"))
        }
        "create" => {
            let b = read_body(body).await?;
            let v = parse_json_body(&b)?;
            special_create(app, &user, &target, v, wopts())
        }
        "update" => {
            let b = read_body(body).await?;
            let v = parse_json_body(&b)?;
            let opts = wopts();
            let (code, obj) = guarded_write(
                app,
                &user,
                &target,
                |g, t, o| ops::update(g, t, v.clone(), o),
                &opts,
            )?;
            Ok(render_one(&def, &target.version, obj, false, false, &q).with_status(code))
        }
        "patch" => {
            let ct = content_type(headers);
            let pt = match ct.as_str() {
                "application/merge-patch+json" => PatchType::Merge,
                "application/json-patch+json" => PatchType::Json,
                "application/strategic-merge-patch+json" => PatchType::Strategic,
                "application/apply-patch+yaml"
                | "application/apply-patch+json"
                | "application/apply-patch+cbor" => PatchType::Apply,
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            let b = read_body(body).await?;
            let opts = wopts();
            let (code, obj) = guarded_write(
                app,
                &user,
                &target,
                |g, t, o| ops::patch(g, t, pt, &b, o),
                &opts,
            )?;
            Ok(render_one(&def, &target.version, obj, false, false, &q).with_status(code))
        }
        "delete" => {
            let b = read_body(body).await?;
            let dopts = delete_opts(&q, &b)?;
            let (code, obj) = ops::delete(&mut app.store.lock(), &target, &dopts)?;
            Ok(json_response(code, &obj))
        }
        "deletecollection" => {
            let b = read_body(body).await?;
            let dopts = delete_opts(&q, &b)?;
            let lopts = list_opts(&q)?;
            let list = ops::delete_collection(&mut app.store.lock(), &target, &lopts, &dopts)?;
            Ok(json_response(200, &list))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

trait WithStatus {
    fn with_status(self, code: u16) -> Response;
}
impl WithStatus for Response {
    fn with_status(mut self, code: u16) -> Response {
        *self.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
        self
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default()
}

fn injected(code: u16, def: &ResourceDef, name: &str) -> ApiError {
    match code {
        409 => ApiError::conflict(&def.group, &def.plural, name),
        429 => ApiError::new(
            429,
            "TooManyRequests",
            "injected fault: too many requests, please try again later",
        ),
        503 => ApiError::new(
            503,
            "ServiceUnavailable",
            "injected fault: service unavailable",
        ),
        404 => ApiError::not_found(&def.group, &def.plural, name),
        500 => ApiError::internal("injected fault: internal error"),
        c => ApiError::new(c, "InternalError", format!("injected fault ({c})")),
    }
}

fn list_opts(q: &HashMap<String, String>) -> ApiResult<ListOpts> {
    Ok(ListOpts {
        labels: LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))?,
        fields: FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))?,
        limit: q.get("limit").and_then(|l| l.parse().ok()),
        continue_: q.get("continue").cloned(),
    })
}

fn delete_opts(q: &HashMap<String, String>, body: &[u8]) -> ApiResult<DeleteOpts> {
    let b = parse_json_body(body)?;
    let dry = b
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|x| x == "All"))
        || q.get("dryRun").is_some_and(|d| d == "All");
    let mut propagation = b
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| q.get("propagationPolicy").cloned())
        .unwrap_or_default();
    if propagation.is_empty() && b.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
        propagation = "Orphan".into();
    }
    Ok(DeleteOpts {
        propagation,
        uid: b
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        resource_version: b
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
        dry_run: dry,
    })
}

fn render_one(
    def: &ResourceDef,
    version: &str,
    obj: Value,
    table: bool,
    partial: bool,
    q: &HashMap<String, String>,
) -> Response {
    if obj.get("kind").and_then(Value::as_str) == Some("Status") {
        return json_response(200, &obj);
    }
    if table {
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let inc = q
            .get("includeObject")
            .map(String::as_str)
            .unwrap_or("Metadata");
        return json_response(
            200,
            &crate::table::table(def, version, &[obj], &rv, None, inc),
        );
    }
    if partial {
        return json_response(200, &partial_metadata(&obj));
    }
    json_response(200, &obj)
}

fn render_list(
    def: &ResourceDef,
    version: &str,
    list: Value,
    table: bool,
    partial: bool,
    q: &HashMap<String, String>,
) -> Response {
    let items = list["items"].as_array().cloned().unwrap_or_default();
    if table {
        let rv = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let cont = list.pointer("/metadata/continue").and_then(Value::as_str);
        let inc = q
            .get("includeObject")
            .map(String::as_str)
            .unwrap_or("Metadata");
        return json_response(
            200,
            &crate::table::table(def, version, &items, rv, cont, inc),
        );
    }
    if partial {
        let mut l = list.clone();
        l["kind"] = json!("PartialObjectMetadataList");
        l["apiVersion"] = json!("meta.k8s.io/v1");
        l["items"] = Value::Array(items.iter().map(partial_metadata).collect());
        return json_response(200, &l);
    }
    json_response(200, &list)
}

/// Runs a write; for CSR approval/status writes by non-admins also enforces the `approve`/`sign`
/// permission on `certificates.k8s.io/signers` like kube-apiserver's CertificateApproval/Signing admission.
fn guarded_write<F>(
    app: &App,
    user: &UserInfo,
    t: &Target,
    f: F,
    opts: &WriteOpts,
) -> ApiResult<(u16, Value)>
where
    F: Fn(&mut crate::store::Inner, &Target, &WriteOpts) -> ApiResult<(u16, Value)>,
{
    let mut g = app.store.lock();
    let csr = t.def.group == "certificates.k8s.io" && t.def.plural == "certificatesigningrequests";
    if csr
        && app.authorization
        && !user.is_master()
        && (t.subresource == "approval" || t.subresource == "status")
    {
        let old = ops::get(&g, t)?;
        let dry = WriteOpts {
            dry_run: true,
            ..opts.clone()
        };
        let (_, new) = f(&mut g, t, &dry)?;
        let signer = old
            .pointer("/spec/signerName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (verb, changed) = if t.subresource == "approval" {
            let conds = |o: &Value| {
                o.pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| {
                                c.get("type").and_then(Value::as_str).map(str::to_string)
                            })
                            .filter(|t| t == "Approved" || t == "Denied")
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            };
            ("approve", conds(&old) != conds(&new))
        } else {
            (
                "sign",
                old.pointer("/status/certificate") != new.pointer("/status/certificate"),
            )
        };
        if changed {
            let domain = signer
                .split_once('/')
                .map(|(d, _)| format!("{d}/*"))
                .unwrap_or_default();
            let allowed = [signer.clone(), domain].iter().any(|name| {
                let a = Attributes {
                    verb: verb.into(),
                    resource_request: true,
                    group: "certificates.k8s.io".into(),
                    resource: "signers".into(),
                    name: name.clone(),
                    ..Default::default()
                };
                rbac::authorize(&g, user, &a).is_ok()
            });
            if !allowed {
                let what = if verb == "approve" { "approve" } else { "sign" };
                return Err(ApiError::forbidden(
                    &t.def.group,
                    &t.def.plural,
                    &t.name,
                    &format!("user not permitted to {what} requests with signerName {signer:?}"),
                ));
            }
        }
    }
    f(&mut g, t, opts)
}

/// kube-apiserver's validation of (Self)SubjectAccessReview specs: exactly one of
/// resourceAttributes / nonResourceAttributes; for SubjectAccessReview a user or a group.
fn validate_access_review(def: &ResourceDef, body: &Value) -> ApiResult<()> {
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    let has = |k: &str| spec.get(k).is_some_and(|v| !v.is_null());
    let mut causes = vec![];
    match (has("resourceAttributes"), has("nonResourceAttributes")) {
        (true, true) => causes.push(Cause::invalid(
            "spec.nonResourceAttributes",
            &spec["nonResourceAttributes"],
            "cannot be specified in combination with resourceAttributes",
        )),
        (false, false) => causes.push(Cause::invalid(
            "spec.resourceAttributes",
            &Value::Null,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
        _ => {}
    }
    if def.plural == "subjectaccessreviews"
        && crate::util::str_field(&spec, "user").is_empty()
        && crate::util::str_array(spec.get("groups")).is_empty()
    {
        causes.push(Cause::invalid(
            "spec.user",
            &json!(""),
            "at least one of user or group must be specified",
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&def.group, &def.kind, "", causes))
    }
}

fn special_create(
    app: &App,
    user: &UserInfo,
    t: &Target,
    body: Value,
    opts: WriteOpts,
) -> ApiResult<Response> {
    let def = &t.def;
    let now_plus = |secs: i64| {
        jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + secs)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    match (
        def.group.as_str(),
        def.plural.as_str(),
        t.subresource.as_str(),
    ) {
        ("", "serviceaccounts", "token") => {
            let sa = ops::get(
                &app.store.lock(),
                &Target {
                    subresource: String::new(),
                    ..t.clone()
                },
            )?;
            let secs = body
                .pointer("/spec/expirationSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(3600)
                .max(600);
            let uid = crate::util::meta_str(&sa, "uid")
                .unwrap_or_default()
                .to_string();
            let exp = jiff::Timestamp::now().as_second() + secs;
            let mut audiences = crate::util::str_array(body.pointer("/spec/audiences"));
            if audiences.is_empty() {
                audiences.push(crate::auth::DEFAULT_AUDIENCE.into());
            }
            let token = app.auth.mint(SaToken {
                namespace: t.namespace.clone(),
                name: t.name.clone(),
                uid,
                expires: exp,
                audiences: audiences.clone(),
            });
            Ok(json_response(
                201,
                &json!({
                    "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                    "metadata": {"name": t.name, "namespace": t.namespace, "creationTimestamp": null},
                    "spec": {"audiences": audiences, "expirationSeconds": secs, "boundObjectRef": body.pointer("/spec/boundObjectRef").cloned()},
                    "status": {"token": token, "expirationTimestamp": now_plus(secs)},
                }),
            ))
        }
        ("authorization.k8s.io", "selfsubjectaccessreviews" | "subjectaccessreviews", _) => {
            validate_access_review(def, &body)?;
            let subject = if def.plural == "subjectaccessreviews" {
                // The user and groups exactly as given (no implicit system:authenticated),
                // evaluated against the RBAC store like kube-apiserver's RBAC authorizer.
                let groups = crate::util::str_array(body.pointer("/spec/groups"));
                UserInfo {
                    name: body
                        .pointer("/spec/user")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                    groups,
                    service_account: None,
                }
            } else {
                user.clone()
            };
            let attrs = if let Some(ra) = body.pointer("/spec/resourceAttributes") {
                let s = |k: &str| crate::util::str_field(ra, k);
                // kubectl sends the plural resource; map short names and kinds like the RESTMapper would not be needed.
                Attributes {
                    verb: s("verb"),
                    resource_request: true,
                    group: s("group"),
                    resource: s("resource"),
                    subresource: s("subresource"),
                    name: s("name"),
                    namespace: s("namespace"),
                    path: String::new(),
                }
            } else {
                let nr = body
                    .pointer("/spec/nonResourceAttributes")
                    .cloned()
                    .unwrap_or(json!({}));
                let s = |k: &str| crate::util::str_field(&nr, k);
                Attributes {
                    verb: s("verb"),
                    resource_request: false,
                    path: s("path"),
                    ..Default::default()
                }
            };
            let decision = if app.authorization {
                rbac::authorize(&app.store.lock(), &subject, &attrs)
            } else {
                Ok(())
            };
            let mut out = body.clone();
            out["apiVersion"] = json!("authorization.k8s.io/v1");
            out["kind"] = json!(def.kind);
            out["metadata"] = json!({"creationTimestamp": null});
            out["status"] = json!({"allowed": decision.is_ok()});
            if let Err(reason) = decision {
                // RBAC's NoOpinion reason: empty, or the bindings whose roles are missing.
                out["status"]["reason"] = json!(reason);
            }
            Ok(json_response(201, &out))
        }
        ("authentication.k8s.io", "tokenreviews", _) => {
            let tok = body
                .pointer("/spec/token")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut h = HeaderMap::new();
            if let Ok(v) = format!("Bearer {tok}").parse() {
                h.insert(header::AUTHORIZATION, v);
            }
            // Like kube-apiserver: the token's audiences must meet the requested ones (none
            // requested: the API server's own), and the answer names the user's UID and the
            // audiences that matched, which Vault/OpenBao's Kubernetes auth compares.
            let token_audiences = match app.auth.lookup(tok) {
                Some(Err(sa)) => sa.audiences,
                _ => vec![crate::auth::DEFAULT_AUDIENCE.into()],
            };
            let mut wanted = crate::util::str_array(body.pointer("/spec/audiences"));
            if wanted.is_empty() {
                wanted.push(crate::auth::DEFAULT_AUDIENCE.into());
            }
            let matched: Vec<String> = wanted
                .into_iter()
                .filter(|a| token_audiences.contains(a))
                .collect();
            let status = match authenticate(app, &h) {
                Some(_) if matched.is_empty() => {
                    json!({"authenticated": false, "error": "token audiences do not match"})
                }
                Some(u) => {
                    let uid = u
                        .service_account
                        .as_ref()
                        .map(|(_, _, uid)| uid.clone())
                        .unwrap_or_default();
                    json!({"authenticated": true, "audiences": matched,
                           "user": {"username": u.name, "uid": uid, "groups": u.groups}})
                }
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            };
            Ok(json_response(
                201,
                &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "metadata": {"creationTimestamp": null}, "spec": body.get("spec"), "status": status}),
            ))
        }
        ("authentication.k8s.io", "selfsubjectreviews", _) => Ok(json_response(
            201,
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {"creationTimestamp": null},
                    "status": {"userInfo": {"username": user.name, "groups": user.groups}}}),
        )),
        (_, _, "") => {
            let (code, obj) = ops::create(&mut app.store.lock(), t, body, &opts)?;
            Ok(json_response(code, &obj))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn non_resource(
    app: &App,
    user: &UserInfo,
    path: &str,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    if method != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    if app.authorization {
        let a = Attributes {
            verb: "get".into(),
            resource_request: false,
            path: path.into(),
            ..Default::default()
        };
        if rbac::authorize(&app.store.lock(), user, &a).is_err() {
            return Err(
                ApiError::forbidden("", "", "", &a.forbidden_message(&user.name))
                    .with_plain_forbidden(&a.forbidden_message(&user.name)),
            );
        }
    }
    let p = path.trim_end_matches('/');
    let agg = accept_has(headers, "as=APIGroupDiscoveryList");
    let agg_version = if accept_has(headers, "g=apidiscovery.k8s.io;v=v2;")
        || accept_has(headers, "v=v2;as=APIGroupDiscoveryList")
    {
        Some("v2")
    } else if accept_has(headers, "v=v2beta1") {
        Some("v2beta1")
    } else {
        None
    };
    let reg = app.store.lock().registry.clone();
    let v = match p {
        "/healthz" | "/livez" | "/readyz" => {
            return Ok(Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("ok"))
                .expect("valid"));
        }
        "/version" => crate::discovery::version(),
        "/api" | "/apis" if agg && agg_version.is_some() => {
            let v = agg_version.unwrap_or("v2");
            let doc = crate::discovery::aggregated(
                &reg,
                p == "/api",
                &format!("apidiscovery.k8s.io/{v}"),
            );
            let mut r = json_response(200, &doc);
            let ct =
                format!("application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList");
            r.headers_mut()
                .insert(header::CONTENT_TYPE, ct.parse().expect("valid header"));
            return Ok(r);
        }
        "/api" => crate::discovery::api_versions(&app.addr),
        "/apis" => crate::discovery::group_list(&reg),
        "/openapi/v2" => {
            if accept_has(headers, "protobuf") {
                // An empty protobuf message is a valid, empty openapi_v2.Document.
                return Ok(Response::builder()
                    .status(200)
                    .header(
                        header::CONTENT_TYPE,
                        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                    )
                    .body(Body::empty())
                    .expect("valid"));
            }
            crate::discovery::openapi_v2()
        }
        _ => {
            let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
            match segs.as_slice() {
                ["api", v] => {
                    crate::discovery::resource_list(&reg, "", v).ok_or_else(ApiError::no_route)?
                }
                ["apis", g] => crate::discovery::group(&reg, g).ok_or_else(ApiError::no_route)?,
                ["apis", g, v] => {
                    crate::discovery::resource_list(&reg, g, v).ok_or_else(ApiError::no_route)?
                }
                _ => return Err(ApiError::no_route()),
            }
        }
    };
    Ok(json_response(200, &v))
}

impl ApiError {
    fn with_plain_forbidden(mut self, msg: &str) -> ApiError {
        self.message = format!("forbidden: {msg}");
        self.details = None;
        self
    }
}

async fn testing(app: &App, rest: &str, method: &Method, body: Body) -> ApiResult<Response> {
    match (method.as_str(), rest.trim_end_matches('/')) {
        ("POST", "faults") => {
            let b = read_body(body).await?;
            let spec: FaultSpec = serde_json::from_slice(&b)
                .map_err(|e| ApiError::bad_request(format!("invalid fault spec: {e}")))?;
            app.faults.apply(spec);
            Ok(json_response(200, &json!({"status": "ok"})))
        }
        ("GET", "requests") => Ok(json_response(
            200,
            &json!({"counts": app.faults.request_counts()}),
        )),
        ("GET", "requests/log") => Ok(json_response(
            200,
            &json!({"requests": app.faults.request_log()}),
        )),
        ("DELETE", "requests") => {
            app.faults.reset_counters();
            Ok(json_response(200, &json!({"status": "ok"})))
        }
        ("PUT", raw) if raw.starts_with("raw/") => {
            let rp = parse_path(&raw["raw".len()..])
                .filter(|p| !p.resource.is_empty() && p.subresource.is_empty())
                .ok_or_else(ApiError::no_route)?;
            let b = read_body(body).await?;
            let obj = parse_json_body(&b)?;
            let stored = put_raw(
                app,
                &rp.group,
                &rp.version,
                &rp.resource,
                rp.namespace.as_deref().unwrap_or_default(),
                obj,
            )?;
            Ok(json_response(200, &stored))
        }
        _ => Err(ApiError::no_route()),
    }
}

/// Store `obj` as is, skipping defaulting, schema and every other validation (for tests of
/// malformed objects in the watch stream); identity metadata is filled in. Returns the stored
/// object.
pub fn put_raw(
    app: &App,
    group: &str,
    version: &str,
    plural: &str,
    namespace: &str,
    mut obj: Value,
) -> ApiResult<Value> {
    let mut g = app.store.lock();
    let def = g
        .registry
        .lookup(group, version, plural)
        .ok_or_else(ApiError::no_route)?;
    let name = crate::util::meta_str(&obj, "name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("metadata.name is required"))?
        .to_string();
    let ns = if def.namespaced { namespace } else { "" };
    let old = g.get(&def.storage_key(), ns, &name);
    let m = crate::util::meta_mut(&mut obj);
    if def.namespaced {
        m.insert("namespace".into(), json!(ns));
    }
    let keep = |k: &str| {
        old.as_ref()
            .and_then(|o| o.pointer(&format!("/metadata/{k}")).cloned())
    };
    m.insert(
        "uid".into(),
        keep("uid").unwrap_or_else(|| json!(crate::util::new_uid())),
    );
    m.insert(
        "creationTimestamp".into(),
        keep("creationTimestamp").unwrap_or_else(|| json!(crate::util::now_rfc3339())),
    );
    if def.generation {
        m.insert("generation".into(), json!(1));
    }
    obj["apiVersion"] = json!(def.api_version(version));
    obj["kind"] = json!(def.kind);
    let stored = g.put(&def.storage_key(), obj);
    Ok((*stored).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parsing() {
        let p = parse_path("/api/v1/namespaces/ns/secrets/x").unwrap();
        assert_eq!(
            (
                p.group.as_str(),
                p.namespace.as_deref(),
                p.resource.as_str(),
                p.name.as_str()
            ),
            ("", Some("ns"), "secrets", "x")
        );
        let p = parse_path("/apis/cert-manager.io/v1/namespaces/ns/certificaterequests/a/status")
            .unwrap();
        assert_eq!(
            (p.group.as_str(), p.subresource.as_str()),
            ("cert-manager.io", "status")
        );
        let p = parse_path("/api/v1/namespaces/foo").unwrap();
        assert_eq!(
            (p.resource.as_str(), p.name.as_str(), p.namespace),
            ("namespaces", "foo", None)
        );
        let p = parse_path("/api/v1/namespaces/foo/finalize").unwrap();
        assert_eq!(
            (p.resource.as_str(), p.name.as_str(), p.subresource.as_str()),
            ("namespaces", "foo", "finalize")
        );
        let p = parse_path("/api/v1/watch/namespaces/ns/configmaps").unwrap();
        assert!(p.watch);
        assert_eq!(p.resource, "configmaps");
        let p = parse_path("/apis/certificates.k8s.io/v1/certificatesigningrequests/c/approval")
            .unwrap();
        assert_eq!(
            (p.namespace, p.name.as_str(), p.subresource.as_str()),
            (None, "c", "approval")
        );
        assert!(parse_path("/apis/x").is_none());
        assert_eq!(parse_path("/apis/x/v1").unwrap().resource, "");
    }
}
