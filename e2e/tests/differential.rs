//! Differential test: the same sequence of requests to the project's test API server and to a
//! real kube-apiserver (1.36, e2e/controlplane/versions.env), comparing status codes, `Status`
//! reasons and the fields pki-issuer reads. Every difference must be one of [`KNOWN`] (each listed with its reason in
//! e2e/test-apiserver/README.md), and every entry of [`KNOWN`] must still be seen, so the list
//! stays exact. Runs in the real-server pass (`E2E_APISERVER=kube`).

use std::collections::BTreeMap;
use std::path::Path;

use axum::http::{Method, Request}; // the `http` crate kube uses
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};
use test_apiserver::TestApiServer;

use crate::fixtures;
use crate::harness::{client_for, kube, skip, Env};

/// Differences the test API server keeps on purpose: (step, aspect, why). Each is listed in
/// e2e/test-apiserver/README.md.
const KNOWN: &[(&str, &str, &str)] = &[
    ("cr.watch-expired-events", "fields", "the test API server replays its whole history window to a watch from an old resourceVersion; kube-apiserver's watch cache starts at its own start-up and answers 410 Expired; 410 is injected with FaultInjector in the test API server's tests"),
    ("cr.delete", "fields", "kube-apiserver answers the immediate deletion of a custom resource with a Status (kind Status, no metadata.name); the test API server returns the deleted object, as kube-apiserver does for built-in kinds (kube-rs accepts both)"),
    ("issuer.create-missing-required", "error", "with a required field missing kube-apiserver skips the CRD's CEL rules and adds a cause without a field (\"some validation rules were not checked\"); the test API server evaluates the rules anyway and reports the one that fails at spec"),
    ("unknown.resource", "error", "kube-apiserver's HTTP mux answers an unknown path with a plain-text 404; the test API server sends a NotFound Status (clients read only the code)"),
    ("unknown.group", "error", "as unknown.resource"),
];

/// What one request returned, reduced to what is compared.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    code: u16,
    /// `Status.reason` of an error, `Status.details.{group,kind,name}` and the sorted
    /// `details.causes[].field` of a 422.
    error: Value,
    /// The selected fields of a successful response.
    fields: Value,
    /// The message, shown when outcomes differ (never compared).
    message: String,
}

/// One server under test, with its own memory of values from earlier responses.
struct Target {
    name: &'static str,
    admin: Client,
    /// Client of the ServiceAccount `differ` (set once it exists).
    sa: Option<Client>,
    kubeconfig: std::path::PathBuf,
    ns: String,
    mem: BTreeMap<String, Value>,
    out: Vec<(String, Outcome)>,
}

#[derive(Clone, Copy)]
enum As {
    Admin,
    Sa,
}

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";
const JSONPATCH: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

impl Target {
    /// Send one request; record its outcome under `step` with the fields at `keep` (JSON pointers
    /// into the response; the ns name is replaced by `NS`). Returns the response body.
    #[allow(clippy::too_many_arguments)] // one request, spelled out like the wire sees it
    async fn go(
        &mut self,
        step: &str,
        who: As,
        method: Method,
        path: &str,
        ctype: &str,
        body: Option<Value>,
        keep: &[&str],
    ) -> Value {
        let path = path.replace("{ns}", &self.ns);
        let client = match who {
            As::Admin => &self.admin,
            As::Sa => self.sa.as_ref().expect("ServiceAccount client"),
        };
        let mut req = Request::builder().method(method).uri(&path);
        if body.is_some() {
            req = req.header("Content-Type", ctype);
        }
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        let resp = client
            .send(req.body(Body::from(bytes)).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{}: {step}: {e}", self.name));
        let code = resp.status().as_u16();
        let raw = resp.into_body().collect_bytes().await.unwrap_or_default();
        let raw_text = String::from_utf8_lossy(&raw).to_string();
        let v: Value = serde_json::from_str(&raw_text).unwrap_or(Value::String(raw_text.clone()));
        // Compared with the namespace name replaced (it differs per run).
        let text = raw_text.replace(&self.ns, "NS");
        let mut n: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        mask_times(&mut n);
        let (error, fields, message) = if code >= 400 {
            let mut causes: Vec<String> = n["details"]["causes"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .map(|c| c["field"].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default();
            causes.sort();
            causes.dedup();
            (
                json!({
                    "reason": n["reason"],
                    "group": n["details"]["group"],
                    "kind": n["details"]["kind"],
                    "name": n["details"]["name"],
                    "causes": causes,
                }),
                Value::Null,
                n["message"].as_str().unwrap_or(&text).to_string(),
            )
        } else {
            let mut fields = serde_json::Map::new();
            for k in keep {
                fields.insert(k.to_string(), n.pointer(k).cloned().unwrap_or(Value::Null));
            }
            (Value::Null, Value::Object(fields), String::new())
        };
        self.out.push((
            step.to_string(),
            Outcome {
                code,
                error,
                fields,
                message,
            },
        ));
        v
    }

    fn remember(&mut self, key: &str, v: Value) {
        self.mem.insert(key.to_string(), v);
    }

    fn recall(&self, key: &str) -> Value {
        self.mem.get(key).cloned().unwrap_or(Value::Null)
    }
}

/// Replace timestamps (they differ between runs) by `<time>`, keeping whether they are set.
fn mask_times(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if (k.ends_with("Time") || k.ends_with("Timestamp") || k == "time") && x.is_string()
                {
                    *x = json!("<time>");
                } else {
                    mask_times(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_times),
        _ => {}
    }
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn cr(name: &str, csr: &str) -> Value {
    json!({
        "apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
        "metadata": {"name": name},
        "spec": {
            "request": b64(csr),
            "issuerRef": {"group": "pki-issuer.io", "kind": "PKIIssuer", "name": "mesh"},
            "usages": ["digital signature", "server auth"],
            "username": "system:serviceaccount:x:workload",
        }
    })
}

fn condition(type_: &str, status: &str, reason: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": format!("{type_} by the differential test"),
           "lastTransitionTime": "2024-01-01T00:00:00Z"})
}

/// The request sequence. Run once per target; each response that later steps need is
/// remembered per target.
async fn sequence(t: &mut Target, csr: &str, cert_pem: &str) {
    use As::*;
    let crs = "/apis/cert-manager.io/v1/namespaces/{ns}/certificaterequests";
    let meta = &[
        "/metadata/name",
        "/metadata/namespace",
        "/metadata/generation",
    ];

    // Namespaces and a namespaced object in a namespace that does not exist.
    t.go(
        "ns.create",
        Admin,
        Method::POST,
        "/api/v1/namespaces",
        JSON,
        Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": t.ns}})),
        &["/metadata/name", "/status/phase"],
    )
    .await;
    t.go(
        "ns.create-again",
        Admin,
        Method::POST,
        "/api/v1/namespaces",
        JSON,
        Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": t.ns}})),
        &[],
    )
    .await;
    t.go(
        "cm.in-missing-ns",
        Admin,
        Method::POST,
        "/api/v1/namespaces/does-not-exist-0/configmaps",
        JSON,
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})),
        &[],
    )
    .await;

    // Secrets: type validation, immutability of type, decoding.
    let secrets = "/api/v1/namespaces/{ns}/secrets";
    t.go("secret.tls-without-crt", Admin, Method::POST, secrets, JSON, Some(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls-bad"}, "type": "kubernetes.io/tls",
        "data": {"tls.key": b64("k")}})), &[]).await;
    t.go("secret.tls-without-key", Admin, Method::POST, secrets, JSON, Some(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls-bad2"}, "type": "kubernetes.io/tls",
        "data": {"tls.crt": b64("c")}})), &[]).await;
    t.go("secret.tls", Admin, Method::POST, secrets, JSON, Some(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"}, "type": "kubernetes.io/tls",
        "data": {"tls.crt": b64("c"), "tls.key": b64("k")}})), &["/type", "/data"]).await;
    t.go(
        "secret.type-change",
        Admin,
        Method::PATCH,
        &format!("{secrets}/tls"),
        MERGE,
        Some(json!({"type": "Opaque"})),
        &[],
    )
    .await;
    t.go(
        "secret.not-base64",
        Admin,
        Method::POST,
        secrets,
        JSON,
        Some(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}, "data": {"k": "***"}})),
        &[],
    )
    .await;
    t.go(
        "secret.string-data",
        Admin,
        Method::POST,
        secrets,
        JSON,
        Some(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sd"}, "data": {"a": b64("1")},
        "stringData": {"b": "2"}})),
        &["/type", "/data", "/stringData"],
    )
    .await;
    t.go("secret.bad-key", Admin, Method::POST, secrets, JSON, Some(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bk"}, "data": {"a b": b64("1")}})), &[]).await;
    t.go(
        "secret.get-missing",
        Admin,
        Method::GET,
        &format!("{secrets}/nope"),
        JSON,
        None,
        &[],
    )
    .await;

    // ConfigMaps: optimistic concurrency on update.
    let cms = "/api/v1/namespaces/{ns}/configmaps";
    let v = t.go("cm.create", Admin, Method::POST, cms, JSON, Some(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "roots"}, "data": {"roots.pem": "x"}})), &["/data"]).await;
    t.remember("cm.rv", v["metadata"]["resourceVersion"].clone());
    let rv = t.recall("cm.rv");
    t.go("cm.update", Admin, Method::PUT, &format!("{cms}/roots"), JSON, Some(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "roots", "resourceVersion": rv},
        "data": {"roots.pem": "y"}})), &["/data"]).await;
    t.go("cm.update-stale", Admin, Method::PUT, &format!("{cms}/roots"), JSON, Some(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "roots", "resourceVersion": rv},
        "data": {"roots.pem": "z"}})), &[]).await;
    t.go(
        "cm.update-unconditional",
        Admin,
        Method::PUT,
        &format!("{cms}/roots"),
        JSON,
        Some(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "roots"},
        "data": {"roots.pem": "w"}})),
        &["/data"],
    )
    .await;
    t.go(
        "cm.update-missing",
        Admin,
        Method::PUT,
        &format!("{cms}/absent"),
        JSON,
        Some(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "absent"}, "data": {}})),
        &["/metadata/name"],
    )
    .await;
    t.go(
        "cm.name-mismatch",
        Admin,
        Method::PUT,
        &format!("{cms}/roots"),
        JSON,
        Some(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}, "data": {}})),
        &[],
    )
    .await;
    t.go(
        "cm.strategic",
        Admin,
        Method::PATCH,
        &format!("{cms}/roots"),
        STRATEGIC,
        Some(json!({"data": {"extra": "1"}})),
        &["/data"],
    )
    .await;

    // CertificateRequests (a CRD with a status subresource).
    t.go(
        "cr.create",
        Admin,
        Method::POST,
        crs,
        JSON,
        Some(cr("a", csr)),
        &[
            "/metadata/name",
            "/metadata/generation",
            "/status",
            "/spec/usages",
        ],
    )
    .await;
    let mut with_status = cr("b", csr);
    with_status["status"] = json!({"conditions": [condition("Ready", "True", "Issued")]});
    with_status["spec"]["bogus"] = json!(1);
    t.go(
        "cr.create-with-status-and-unknown-field",
        Admin,
        Method::POST,
        crs,
        JSON,
        Some(with_status),
        &["/status", "/spec/bogus"],
    )
    .await;
    let mut no_request = cr("c", csr);
    no_request["spec"]
        .as_object_mut()
        .unwrap()
        .remove("request");
    t.go(
        "cr.create-missing-required",
        Admin,
        Method::POST,
        crs,
        JSON,
        Some(no_request),
        &[],
    )
    .await;
    let mut wrong_type = cr("d", csr);
    wrong_type["spec"]["usages"] = json!("server auth");
    t.go(
        "cr.create-wrong-type",
        Admin,
        Method::POST,
        crs,
        JSON,
        Some(wrong_type),
        &[],
    )
    .await;
    let mut bad_enum = cr("e", csr);
    bad_enum["spec"]["usages"] = json!(["no such usage"]);
    t.go(
        "cr.create-bad-enum",
        Admin,
        Method::POST,
        crs,
        JSON,
        Some(bad_enum),
        &[],
    )
    .await;
    t.go(
        "cr.create-exists",
        Admin,
        Method::POST,
        crs,
        JSON,
        Some(cr("a", csr)),
        &[],
    )
    .await;
    t.go(
        "cr.create-bad-name",
        Admin,
        Method::POST,
        crs,
        JSON,
        Some(cr("Bad_Name", csr)),
        &[],
    )
    .await;
    let v = t
        .go(
            "cr.get",
            Admin,
            Method::GET,
            &format!("{crs}/a"),
            JSON,
            None,
            meta,
        )
        .await;
    t.remember("cr.rv", v["metadata"]["resourceVersion"].clone());
    t.remember("cr.uid", v["metadata"]["uid"].clone());

    // Update of the main resource: status is ignored, spec bumps generation.
    let mut upd = v.clone();
    upd["spec"]["duration"] = json!("2h0m0s");
    upd["status"] = json!({"conditions": [condition("Ready", "True", "Issued")]});
    t.go(
        "cr.update-main-ignores-status",
        Admin,
        Method::PUT,
        &format!("{crs}/a"),
        JSON,
        Some(upd.clone()),
        &["/metadata/generation", "/status", "/spec/duration"],
    )
    .await;
    t.go(
        "cr.update-stale",
        Admin,
        Method::PUT,
        &format!("{crs}/a"),
        JSON,
        Some(upd),
        &[],
    )
    .await;

    // Patch types on a custom resource.
    t.go(
        "cr.merge-patch",
        Admin,
        Method::PATCH,
        &format!("{crs}/a"),
        MERGE,
        Some(json!({"metadata": {"labels": {"x": "1"}}})),
        &["/metadata/labels", "/metadata/generation"],
    )
    .await;
    t.go(
        "cr.json-patch",
        Admin,
        Method::PATCH,
        &format!("{crs}/a"),
        JSONPATCH,
        Some(json!([{"op": "add", "path": "/metadata/labels/y", "value": "2"}])),
        &["/metadata/labels"],
    )
    .await;
    t.go(
        "cr.json-patch-test-fails",
        Admin,
        Method::PATCH,
        &format!("{crs}/a"),
        JSONPATCH,
        Some(json!([{"op": "test", "path": "/metadata/labels/y", "value": "3"}])),
        &[],
    )
    .await;
    t.go(
        "cr.json-patch-bad-path",
        Admin,
        Method::PATCH,
        &format!("{crs}/a"),
        JSONPATCH,
        Some(json!([{"op": "replace", "path": "/spec/nope/deeper", "value": "3"}])),
        &[],
    )
    .await;
    t.go(
        "cr.strategic-patch-unsupported",
        Admin,
        Method::PATCH,
        &format!("{crs}/a"),
        STRATEGIC,
        Some(json!({"metadata": {"labels": {"z": "1"}}})),
        &[],
    )
    .await;
    t.go(
        "cr.patch-missing",
        Admin,
        Method::PATCH,
        &format!("{crs}/nope"),
        MERGE,
        Some(json!({"metadata": {"labels": {"x": "1"}}})),
        &[],
    )
    .await;
    t.go(
        "cr.merge-patch-invalid",
        Admin,
        Method::PATCH,
        &format!("{crs}/a"),
        MERGE,
        Some(json!({"spec": {"usages": "server auth"}})),
        &[],
    )
    .await;

    // Status subresource: patch and update change only status; generation stays.
    t.go("cr.status-merge", Admin, Method::PATCH, &format!("{crs}/a/status"), MERGE,
        Some(json!({"status": {"conditions": [condition("Approved", "True", "e2e")]}, "spec": {"duration": "3h0m0s"}})),
        &["/metadata/generation", "/status/conditions/0/type", "/spec/duration"]).await;
    let v = t
        .go(
            "cr.get-2",
            Admin,
            Method::GET,
            &format!("{crs}/a"),
            JSON,
            None,
            &[],
        )
        .await;
    let mut upd = v.clone();
    upd["status"]["failureTime"] = json!("2024-01-01T00:00:00Z");
    upd["spec"]["duration"] = json!("4h0m0s");
    t.go(
        "cr.status-update",
        Admin,
        Method::PUT,
        &format!("{crs}/a/status"),
        JSON,
        Some(upd),
        &[
            "/metadata/generation",
            "/status/failureTime",
            "/spec/duration",
        ],
    )
    .await;

    // Server-side apply to /status, as pki-issuer writes it; conflicts between managers.
    let apply = |reason: &str| {
        json!({"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest", "metadata": {"name": "a"},
        "status": {"conditions": [condition("Ready", "False", reason)]}})
    };
    t.go(
        "cr.apply-status",
        Admin,
        Method::PATCH,
        &format!("{crs}/a/status?fieldManager=pki-issuer&force=true"),
        APPLY,
        Some(apply("Pending")),
        &["/status/conditions", "/metadata/generation"],
    )
    .await;
    t.go(
        "cr.apply-status-same",
        Admin,
        Method::PATCH,
        &format!("{crs}/a/status?fieldManager=pki-issuer"),
        APPLY,
        Some(apply("Pending")),
        &["/status/conditions"],
    )
    .await;
    t.go(
        "cr.apply-status-conflict",
        Admin,
        Method::PATCH,
        &format!("{crs}/a/status?fieldManager=other"),
        APPLY,
        Some(apply("Issued")),
        &[],
    )
    .await;
    let v = t
        .go(
            "cr.apply-status-force",
            Admin,
            Method::PATCH,
            &format!("{crs}/a/status?fieldManager=other&force=true"),
            APPLY,
            Some(apply("Issued")),
            &["/status/conditions"],
        )
        .await;
    let mut managers: Vec<String> = v["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["manager"].as_str().map(String::from))
        .collect();
    managers.sort();
    t.out.push((
        "cr.managers-after-force".into(),
        Outcome {
            code: 200,
            error: Value::Null,
            fields: json!(managers),
            message: String::new(),
        },
    ));
    t.go(
        "cr.apply-no-manager",
        Admin,
        Method::PATCH,
        &format!("{crs}/a/status"),
        APPLY,
        Some(apply("Issued")),
        &[],
    )
    .await;
    t.go(
        "cr.apply-main-create",
        Admin,
        Method::PATCH,
        &format!("{crs}/applied?fieldManager=e2e"),
        APPLY,
        Some(cr("applied", csr)),
        &["/metadata/name", "/metadata/generation"],
    )
    .await;
    t.go(
        "cr.apply-wrong-name",
        Admin,
        Method::PATCH,
        &format!("{crs}/applied?fieldManager=e2e"),
        APPLY,
        Some(cr("other", csr)),
        &[],
    )
    .await;
    t.go("cr.apply-status-missing-object", Admin, Method::PATCH, &format!("{crs}/absent/status?fieldManager=pki-issuer&force=true"), APPLY,
        Some(json!({"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest", "metadata": {"name": "absent"},
        "status": {"conditions": [condition("Ready", "False", "Pending")]}})), &[]).await;

    // Watch: an expired resourceVersion ends in a 410 ERROR event; a fresh one resumes.
    let v = t
        .go("cr.list", Admin, Method::GET, crs, JSON, None, &["/kind"])
        .await;
    t.remember("list.rv", v["metadata"]["resourceVersion"].clone());
    let watch = t
        .go(
            "cr.watch-expired",
            Admin,
            Method::GET,
            &format!("{crs}?watch=1&resourceVersion=1&timeoutSeconds=1"),
            JSON,
            None,
            &[],
        )
        .await;
    let first = watch_events(&watch);
    t.out.push((
        "cr.watch-expired-events".into(),
        Outcome {
            code: 200,
            error: Value::Null,
            fields: json!(first
                .iter()
                .take(1)
                .map(|e| json!({
        "type": e["type"], "code": e["object"]["code"], "reason": e["object"]["reason"]}))
                .collect::<Vec<_>>()),
            message: String::new(),
        },
    ));
    t.go(
        "cr.touch",
        Admin,
        Method::PATCH,
        &format!("{crs}/a"),
        MERGE,
        Some(json!({"metadata": {"labels": {"t": "1"}}})),
        &[],
    )
    .await;
    let rv = t.recall("list.rv").as_str().unwrap_or_default().to_string();
    let watch = t
        .go(
            "cr.watch-resume",
            Admin,
            Method::GET,
            &format!("{crs}?watch=1&resourceVersion={rv}&timeoutSeconds=1"),
            JSON,
            None,
            &[],
        )
        .await;
    let events = watch_events(&watch);
    t.out.push(("cr.watch-resume-events".into(), Outcome { code: 200, error: Value::Null, fields: json!(events.iter().map(|e| json!({
        "type": e["type"], "name": e["object"]["metadata"]["name"], "labels": e["object"]["metadata"]["labels"]})).collect::<Vec<_>>()), message: String::new() }));
    t.go(
        "cr.list-expired-continue",
        Admin,
        Method::GET,
        &format!("{crs}?limit=1&continue=bogus"),
        JSON,
        None,
        &[],
    )
    .await;

    // Deletion with preconditions.
    t.go("cr.delete-wrong-uid", Admin, Method::DELETE, &format!("{crs}/a"), JSON,
        Some(json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}})), &[]).await;
    t.go(
        "cr.delete",
        Admin,
        Method::DELETE,
        &format!("{crs}/a"),
        JSON,
        None,
        &["/kind", "/metadata/name"],
    )
    .await;
    t.go(
        "cr.get-deleted",
        Admin,
        Method::GET,
        &format!("{crs}/a"),
        JSON,
        None,
        &[],
    )
    .await;

    // PKIIssuer schema (our CRD).
    let issuers = "/apis/pki-issuer.io/v1alpha1/namespaces/{ns}/pkiissuers";
    t.go("issuer.create", Admin, Method::POST, issuers, JSON, Some(json!({
        "apiVersion": "pki-issuer.io/v1alpha1", "kind": "PKIIssuer", "metadata": {"name": "mesh"},
        "spec": {"secret": {"name": "int"}, "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}}}})),
        &["/metadata/generation", "/spec"]).await;
    t.go("issuer.create-missing-required", Admin, Method::POST, issuers, JSON, Some(json!({
        "apiVersion": "pki-issuer.io/v1alpha1", "kind": "PKIIssuer", "metadata": {"name": "bad"}, "spec": {}})), &[]).await;
    // A CEL rule of our CRD alone (the schema is satisfied): both servers evaluate it.
    t.go("issuer.create-cel-no-signer", Admin, Method::POST, issuers, JSON, Some(json!({
        "apiVersion": "pki-issuer.io/v1alpha1", "kind": "PKIIssuer", "metadata": {"name": "nosigner"},
        "spec": {"trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}}}})), &[]).await;
    // Strict field validation refuses an unknown field.
    t.go("issuer.create-strict-unknown", Admin, Method::POST, &format!("{issuers}?fieldValidation=Strict"), JSON, Some(json!({
        "apiVersion": "pki-issuer.io/v1alpha1", "kind": "PKIIssuer", "metadata": {"name": "strict"},
        "spec": {"secret": {"name": "int"}, "bogus": true, "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}}}})), &[]).await;
    t.go("issuer.status-apply", Admin, Method::PATCH, &format!("{issuers}/mesh/status?fieldManager=pki-issuer&force=true"), APPLY,
        Some(json!({"apiVersion": "pki-issuer.io/v1alpha1", "kind": "PKIIssuer", "metadata": {"name": "mesh"},
        "status": {"conditions": [condition("Ready", "True", "Checked")]}})), &["/status/conditions/0/reason", "/metadata/generation"]).await;

    // Leases (leader election): create, conflicting update.
    let leases = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases";
    let v = t
        .go(
            "lease.create",
            Admin,
            Method::POST,
            leases,
            JSON,
            Some(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "leader"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}})),
            &["/spec/holderIdentity"],
        )
        .await;
    let mut l = v.clone();
    l["spec"]["holderIdentity"] = json!("b");
    t.go(
        "lease.update",
        Admin,
        Method::PUT,
        &format!("{leases}/leader"),
        JSON,
        Some(l.clone()),
        &["/spec/holderIdentity"],
    )
    .await;
    l["spec"]["holderIdentity"] = json!("c");
    t.go(
        "lease.update-stale",
        Admin,
        Method::PUT,
        &format!("{leases}/leader"),
        JSON,
        Some(l),
        &[],
    )
    .await;

    // Events (events.k8s.io/v1) as pki-issuer writes them.
    let events = "/apis/events.k8s.io/v1/namespaces/{ns}/events";
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
        "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "pki-issuer.io/controller",
        "reportingInstance": "pki-issuer-0", "action": "Sign", "reason": "Issued", "type": "Normal", "note": "n",
        "regarding": {"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest", "name": "a", "namespace": t.ns}});
    t.go(
        "event.create",
        Admin,
        Method::POST,
        events,
        JSON,
        Some(ev.clone()),
        &["/reason", "/type", "/note"],
    )
    .await;
    let mut no_time = ev.clone();
    no_time["metadata"]["name"] = json!("e2");
    no_time.as_object_mut().unwrap().remove("eventTime");
    t.go(
        "event.create-no-eventTime",
        Admin,
        Method::POST,
        events,
        JSON,
        Some(no_time),
        &[],
    )
    .await;
    let mut bad_type = ev.clone();
    bad_type["metadata"]["name"] = json!("e3");
    bad_type["type"] = json!("Bad");
    t.go(
        "event.create-bad-type",
        Admin,
        Method::POST,
        events,
        JSON,
        Some(bad_type),
        &[],
    )
    .await;
    // An Event about a cluster-scoped object (a CSR), in `default` as kube-rs writes it.
    let mut cluster_ev = ev.clone();
    cluster_ev["metadata"]["name"] = json!("c1");
    cluster_ev["regarding"] = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "name": "x"});
    t.go(
        "event.cluster-scoped-in-default",
        Admin,
        Method::POST,
        "/apis/events.k8s.io/v1/namespaces/default/events",
        JSON,
        Some(cluster_ev),
        &["/reason"],
    )
    .await;
    for (i, field) in [
        "action",
        "reason",
        "reportingController",
        "reportingInstance",
    ]
    .iter()
    .enumerate()
    {
        let mut e = ev.clone();
        e["metadata"]["name"] = json!(format!("m{i}"));
        e.as_object_mut().unwrap().remove(*field);
        t.go(
            &format!("event.create-no-{field}"),
            Admin,
            Method::POST,
            events,
            JSON,
            Some(e),
            &[],
        )
        .await;
    }

    // RBAC: a ServiceAccount that may only get CertificateRequests and update their status.
    t.go(
        "sa.create",
        Admin,
        Method::POST,
        "/api/v1/namespaces/{ns}/serviceaccounts",
        JSON,
        Some(json!({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "differ"}})),
        &["/metadata/name"],
    )
    .await;
    t.go("role.create", Admin, Method::POST, "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", JSON, Some(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "differ"},
        "rules": [{"apiGroups": ["cert-manager.io"], "resources": ["certificaterequests"], "verbs": ["get"]},
                  {"apiGroups": ["cert-manager.io"], "resources": ["certificaterequests/status"], "verbs": ["patch"]}]})), &["/rules"]).await;
    t.go("rolebinding.create", Admin, Method::POST, "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", JSON, Some(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "differ"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "differ"},
        "subjects": [{"kind": "ServiceAccount", "name": "differ", "namespace": t.ns}]})), &[]).await;
    rbac_settle().await;
    t.go(
        "role.escalation",
        Admin,
        Method::POST,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
        JSON,
        Some(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "bad"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"]}]})),
        &[],
    )
    .await;
    let tok = t.go("token.create", Admin, Method::POST, "/api/v1/namespaces/{ns}/serviceaccounts/differ/token", JSON, Some(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}})), &["/kind"]).await;
    t.go(
        "token.create-missing-sa",
        Admin,
        Method::POST,
        "/api/v1/namespaces/{ns}/serviceaccounts/nobody/token",
        JSON,
        Some(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})),
        &[],
    )
    .await;
    let token = tok["status"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    t.sa = Some(sa_client(&t.kubeconfig, &token).await);
    t.go(
        "cr.create-again",
        Admin,
        Method::POST,
        crs,
        JSON,
        Some(cr("s", csr)),
        &[],
    )
    .await;
    t.go(
        "rbac.get-allowed",
        Sa,
        Method::GET,
        &format!("{crs}/s"),
        JSON,
        None,
        &["/metadata/name"],
    )
    .await;
    t.go("rbac.list-denied", Sa, Method::GET, crs, JSON, None, &[])
        .await;
    t.go(
        "rbac.get-missing-allowed",
        Sa,
        Method::GET,
        &format!("{crs}/nope"),
        JSON,
        None,
        &[],
    )
    .await;
    t.go(
        "rbac.patch-main-denied",
        Sa,
        Method::PATCH,
        &format!("{crs}/s"),
        MERGE,
        Some(json!({"metadata": {"labels": {"a": "b"}}})),
        &[],
    )
    .await;
    t.go("rbac.apply-status-allowed", Sa, Method::PATCH, &format!("{crs}/s/status?fieldManager=pki-issuer&force=true"), APPLY,
        Some(json!({"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest", "metadata": {"name": "s"},
        "status": {"conditions": [condition("Ready", "False", "Pending")]}})), &["/status/conditions/0/reason"]).await;
    t.go(
        "rbac.secret-denied",
        Sa,
        Method::GET,
        "/api/v1/namespaces/{ns}/secrets/tls",
        JSON,
        None,
        &[],
    )
    .await;
    t.go(
        "rbac.cluster-scope-denied",
        Sa,
        Method::GET,
        "/apis/pki-issuer.io/v1alpha1/pkiclusterissuers",
        JSON,
        None,
        &[],
    )
    .await;
    t.go("rbac.ssar", Sa, Method::POST, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", JSON, Some(json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": t.ns, "verb": "list", "group": "cert-manager.io", "resource": "certificaterequests"}}})),
        &["/status/allowed"]).await;

    // Kubernetes CSRs: approval and signing rules.
    let csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    let name = format!("{}-csr", t.ns);
    let k8s_csr = |n: &str, signer: &str, usages: Value| {
        json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": n}, "spec": {"request": b64(csr), "signerName": signer, "usages": usages}})
    };
    t.go(
        "csr.create",
        Admin,
        Method::POST,
        csrs,
        JSON,
        Some(k8s_csr(
            &name,
            "pkiissuers.pki-issuer.io/ns.mesh",
            json!(["digital signature", "server auth"]),
        )),
        &[
            "/spec/signerName",
            "/spec/usages",
            "/spec/username",
            "/status",
        ],
    )
    .await;
    t.go("csr.create-no-signer", Admin, Method::POST, csrs, JSON, Some(json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": format!("{name}-nosigner")}, "spec": {"request": b64(csr), "usages": ["server auth"]}})), &[]).await;
    t.go("csr.create-bad-request", Admin, Method::POST, csrs, JSON, Some(json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": format!("{name}-bad")}, "spec": {"request": b64("not a csr"), "signerName": "example.com/x", "usages": ["server auth"]}})), &[]).await;
    t.go(
        "csr.create-bad-usage",
        Admin,
        Method::POST,
        csrs,
        JSON,
        Some(k8s_csr(
            &format!("{name}-usage"),
            "example.com/x",
            json!(["not a usage"]),
        )),
        &[],
    )
    .await;
    t.go(
        "csr.create-client-signer-server-usage",
        Admin,
        Method::POST,
        csrs,
        JSON,
        Some(k8s_csr(
            &format!("{name}-client"),
            "kubernetes.io/kube-apiserver-client",
            json!(["server auth"]),
        )),
        &[],
    )
    .await;
    t.go(
        "csr.sign-unapproved",
        Admin,
        Method::PUT,
        &format!("{csrs}/{name}/status"),
        JSON,
        Some(csr_status(t, &name, cert_pem, None).await),
        &[],
    )
    .await;
    t.go("csr.approve", Admin, Method::PATCH, &format!("{csrs}/{name}/approval"), MERGE,
        Some(json!({"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "E2E", "message": "m"}]}})),
        &["/status/conditions/0/type", "/status/conditions/0/status"]).await;
    t.go("csr.approve-via-status-ignored", Admin, Method::PATCH, &format!("{csrs}/{name}/status"), MERGE,
        Some(json!({"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "E2E", "message": "m"}, {"type": "Denied", "status": "True", "reason": "E2E", "message": "m"}]}})),
        &[]).await;
    t.go("csr.deny-too", Admin, Method::PATCH, &format!("{csrs}/{name}/approval"), JSONPATCH,
        Some(json!([{"op": "add", "path": "/status/conditions/-", "value": {"type": "Denied", "status": "True", "reason": "E2E", "message": "m"}}])), &[]).await;
    t.go(
        "csr.sign-garbage",
        Admin,
        Method::PUT,
        &format!("{csrs}/{name}/status"),
        JSON,
        Some(csr_status(t, &name, "garbage", None).await),
        &[],
    )
    .await;
    t.go(
        "csr.sign",
        Admin,
        Method::PUT,
        &format!("{csrs}/{name}/status"),
        JSON,
        Some(csr_status(t, &name, cert_pem, None).await),
        &["/status/certificate", "/status/conditions/0/type"],
    )
    .await;
    t.go(
        "csr.sign-again-different",
        Admin,
        Method::PUT,
        &format!("{csrs}/{name}/status"),
        JSON,
        Some(csr_status(t, &name, &format!("{cert_pem}{cert_pem}"), None).await),
        &[],
    )
    .await;
    t.go(
        "csr.failed-condition",
        Admin,
        Method::PUT,
        &format!("{csrs}/{name}/status"),
        JSON,
        Some(
            csr_status(
                t,
                &name,
                cert_pem,
                Some(json!({"type": "Failed", "status": "True", "reason": "E2E", "message": "m"})),
            )
            .await,
        ),
        &["/status/conditions"],
    )
    .await;
    t.go(
        "csr.remove-approval",
        Admin,
        Method::PUT,
        &format!("{csrs}/{name}/approval"),
        JSON,
        Some({
            let mut v = csr_status(t, &name, cert_pem, None).await;
            v["status"]["conditions"] = json!([]);
            v
        }),
        &[],
    )
    .await;
    // A ServiceAccount without `approve`/`sign` on the signer.
    t.go(
        "csr.sa-create-denied",
        Sa,
        Method::POST,
        csrs,
        JSON,
        Some(k8s_csr(
            &format!("{name}-sa"),
            "example.com/x",
            json!(["server auth"]),
        )),
        &[],
    )
    .await;
    // The same ServiceAccount may write /approval and /status, but approving and signing also
    // need `approve`/`sign` on the signer (CertificateApproval/CertificateSigning admission).
    let signer = "example.com/diff";
    let crole = format!("{}-csr", t.ns);
    let crole_api = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
    let rules = |extra: Value| {
        let mut r = vec![
            json!({"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["get"]}),
            json!({"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests/approval", "certificatesigningrequests/status"], "verbs": ["update", "patch"]}),
        ];
        if !extra.is_null() {
            r.push(extra);
        }
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": crole}, "rules": r})
    };
    t.go(
        "csr.sa-role",
        Admin,
        Method::POST,
        crole_api,
        JSON,
        Some(rules(Value::Null)),
        &[],
    )
    .await;
    let ns = t.ns.clone();
    t.go("csr.sa-binding", Admin, Method::POST, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", JSON, Some(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": crole},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": crole},
        "subjects": [{"kind": "ServiceAccount", "name": "differ", "namespace": ns}]})), &[]).await;
    rbac_settle().await;
    let sa_csr = format!("{name}-by-sa");
    t.go(
        "csr.sa-target",
        Admin,
        Method::POST,
        csrs,
        JSON,
        Some(k8s_csr(&sa_csr, signer, json!(["server auth"]))),
        &[],
    )
    .await;
    let approve = json!({"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "E2E", "message": "m"}]}});
    t.go(
        "csr.sa-approve-without-approve-verb",
        Sa,
        Method::PATCH,
        &format!("{csrs}/{sa_csr}/approval"),
        MERGE,
        Some(approve.clone()),
        &[],
    )
    .await;
    t.go("csr.sa-role-approve", Admin, Method::PUT, &format!("{crole_api}/{crole}"), JSON, Some(rules(json!(
        {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "resourceNames": ["example.com/*"], "verbs": ["approve"]}))), &[]).await;
    rbac_settle().await;
    t.go(
        "csr.sa-approve-with-approve-verb",
        Sa,
        Method::PATCH,
        &format!("{csrs}/{sa_csr}/approval"),
        MERGE,
        Some(approve),
        &["/status/conditions/0/type"],
    )
    .await;
    let signed = csr_status(t, &sa_csr, cert_pem, None).await;
    t.go(
        "csr.sa-sign-without-sign-verb",
        Sa,
        Method::PUT,
        &format!("{csrs}/{sa_csr}/status"),
        JSON,
        Some(signed.clone()),
        &[],
    )
    .await;
    t.go("csr.sa-role-sign", Admin, Method::PUT, &format!("{crole_api}/{crole}"), JSON, Some(rules(json!(
        {"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "resourceNames": [signer], "verbs": ["sign"]}))), &[]).await;
    rbac_settle().await;
    t.go(
        "csr.sa-sign-with-sign-verb",
        Sa,
        Method::PUT,
        &format!("{csrs}/{sa_csr}/status"),
        JSON,
        Some(signed),
        &["/status/certificate"],
    )
    .await;
    t.go(
        "csr.sa-cleanup",
        Admin,
        Method::DELETE,
        &format!("{csrs}/{sa_csr}"),
        JSON,
        None,
        &[],
    )
    .await;
    t.go(
        "csr.cleanup",
        Admin,
        Method::DELETE,
        &format!("{csrs}/{name}"),
        JSON,
        None,
        &[],
    )
    .await;

    // Unauthenticated and unknown resources.
    t.go(
        "unknown.resource",
        Admin,
        Method::GET,
        "/apis/cert-manager.io/v1/namespaces/{ns}/widgets",
        JSON,
        None,
        &[],
    )
    .await;
    t.go(
        "unknown.group",
        Admin,
        Method::GET,
        "/apis/nope.example.com/v1/things",
        JSON,
        None,
        &[],
    )
    .await;
}

/// Give kube-apiserver's RBAC authorizer (an informer cache) time to see a Role/Binding change.
async fn rbac_settle() {
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
}

/// The CSR with `status.certificate` set (and an extra condition), from the server's current copy.
async fn csr_status(t: &Target, name: &str, cert: &str, extra: Option<Value>) -> Value {
    let req = Request::get(format!(
        "/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}"
    ))
    .body(Vec::new())
    .unwrap();
    let mut v: Value = t.admin.request(req).await.unwrap_or(Value::Null);
    v["status"]["certificate"] = json!(b64(cert));
    if let Some(c) = extra {
        let mut conds = v["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conds.push(c);
        v["status"]["conditions"] = json!(conds);
    }
    v
}

fn watch_events(body: &Value) -> Vec<Value> {
    // A watch body is newline-delimited JSON; `go` stored it as a string when it did not parse.
    match body {
        Value::String(s) => s
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        v @ Value::Object(_) => vec![v.clone()],
        _ => vec![],
    }
}

async fn sa_client(kubeconfig: &Path, token: &str) -> Client {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let mut kc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    for user in kc["users"].as_sequence_mut().unwrap() {
        user["user"] = serde_yaml::to_value(json!({ "token": token })).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sa.kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&kc).unwrap()).unwrap();
    client_for(&path).await
}

#[tokio::test]
async fn test_apiserver_answers_like_kube_apiserver() {
    if !kube() {
        skip(
            "differential",
            "compares with the real kube-apiserver; runs in the E2E_APISERVER=kube pass",
        );
        return;
    }
    let env = Env::start_opts("diff", false).await;
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let server = TestApiServer::start(test_apiserver::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        crd_dirs: vec![
            root.join("e2e/testdata/cert-manager"),
            crate::harness::our_crds(),
        ],
        authorization: true,
        ..Default::default()
    })
    .await
    .expect("test API server");
    let test_kc = dir.path().join("admin.kubeconfig");
    server.write_kubeconfig(&test_kc).unwrap();

    let (_, csr) = fixtures::csr(&["diff.example.com"]);
    let ca = fixtures::root("Diff Root");
    let (cert, _) = fixtures::leaf_cert(&ca, "diff.example.com");
    let ns = format!("{}-x", env.ns);
    let mut targets = Vec::new();
    for (name, kubeconfig) in [
        ("test-apiserver", test_kc.clone()),
        ("kube-apiserver", env.kubeconfig.clone()),
    ] {
        let mut t = Target {
            name,
            admin: client_for(&kubeconfig).await,
            sa: None,
            kubeconfig,
            ns: ns.clone(),
            mem: BTreeMap::new(),
            out: Vec::new(),
        };
        sequence(&mut t, &csr, &cert).await;
        targets.push(t);
    }
    let (ours, real) = (&targets[0].out, &targets[1].out);
    assert_eq!(ours.len(), real.len());
    if std::env::var_os("E2E_DIFF_VERBOSE").is_some() {
        for ((step, a), (_, b)) in ours.iter().zip(real) {
            eprintln!(
                "{step}: {} {} | {} {}",
                a.code, a.error["reason"], b.code, b.error["reason"]
            );
        }
    }
    let mut found = Vec::new();
    for ((step, a), (_, b)) in ours.iter().zip(real) {
        for (aspect, x, y) in [
            ("code", json!(a.code), json!(b.code)),
            ("error", a.error.clone(), b.error.clone()),
            ("fields", a.fields.clone(), b.fields.clone()),
        ] {
            if x != y {
                found.push((
                    step.clone(),
                    aspect,
                    format!(
                        "test-apiserver {x} ({}) vs kube-apiserver {y} ({})",
                        a.message, b.message
                    ),
                ));
            }
        }
    }
    let mut report = String::new();
    for (step, aspect, detail) in &found {
        let known = KNOWN.iter().any(|(s, a, _)| s == step && a == aspect);
        report.push_str(&format!(
            "{} {step} [{aspect}]: {detail}\n",
            if known { "known" } else { "NEW  " }
        ));
    }
    eprintln!(
        "differential: {} steps compared, {} differences\n{report}",
        ours.len(),
        found.len()
    );
    let new: Vec<_> = found
        .iter()
        .filter(|(s, a, _)| !KNOWN.iter().any(|(ks, ka, _)| ks == s && ka == a))
        .collect();
    let stale: Vec<_> = KNOWN
        .iter()
        .filter(|(ks, ka, _)| !found.iter().any(|(s, a, _)| s == ks && a == ka))
        .collect();
    assert!(
        new.is_empty() && stale.is_empty(),
        "new deviations (fix e2e/test-apiserver, or list them in KNOWN and its README): {new:?}\nknown but no longer seen: {stale:?}"
    );
}
