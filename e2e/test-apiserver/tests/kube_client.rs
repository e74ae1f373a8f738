//! Integration tests driving the server with kube-rs: CRUD, watchers, server-side apply, CRDs,
//! finalizers, garbage collection, RBAC and fault injection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde_json::{json, Value};
use test_apiserver::{Config, Matcher, TestApiServer};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

async fn start() -> TestApiServer {
    TestApiServer::start(Config {
        crd_dirs: vec![data_dir()],
        bookmark_interval: Duration::from_millis(200),
        ..Default::default()
    })
    .await
    .expect("server starts")
}

async fn client_with(server: &TestApiServer, token: &str) -> Client {
    let kc = Kubeconfig::from_yaml(&server.kubeconfig_yaml(token, None)).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

async fn admin(server: &TestApiServer) -> Client {
    client_with(server, &server.admin_token()).await
}

fn widget_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn widget(name: &str, size: i64) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size, "a": "x"}
    }))
    .unwrap()
}

fn api_err(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected API error, got {other:?}"),
    }
}

#[tokio::test]
async fn configmap_crud_selectors_and_conflicts() {
    let server = start().await;
    let client = admin(&server).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("one".into());
    cm.metadata.labels = Some(BTreeMap::from([("app".to_string(), "web".to_string())]));
    cm.data = Some(BTreeMap::from([("k".to_string(), "v".to_string())]));
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let rv1 = created.metadata.resource_version.clone().unwrap();

    let mut gen = ConfigMap::default();
    gen.metadata.generate_name = Some("gen-".into());
    let g = cms.create(&PostParams::default(), &gen).await.unwrap();
    assert!(g.metadata.name.unwrap().starts_with("gen-"));

    let dup = api_err(cms.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));

    let web = cms
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(web.items.len(), 1);
    let not_web = cms
        .list(&ListParams::default().labels("app!=web"))
        .await
        .unwrap();
    assert_eq!(not_web.items.len(), 1);
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=one"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let page = cms.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let cont = page.metadata.continue_.clone().expect("continue token");
    let page2 = cms
        .list(&ListParams::default().limit(1).continue_token(&cont))
        .await
        .unwrap();
    assert_eq!(page2.items.len(), 1);
    assert_ne!(page.items[0].metadata.name, page2.items[0].metadata.name);

    // Update with the current resourceVersion succeeds; the stale one conflicts.
    let mut upd = created.clone();
    upd.data = Some(BTreeMap::from([("k".to_string(), "v2".to_string())]));
    let updated = cms
        .replace("one", &PostParams::default(), &upd)
        .await
        .unwrap();
    assert_ne!(updated.metadata.resource_version.unwrap(), rv1);
    let stale = api_err(
        cms.replace("one", &PostParams::default(), &upd)
            .await
            .unwrap_err(),
    );
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert!(
        stale.message.contains("the object has been modified"),
        "{}",
        stale.message
    );

    // Merge and JSON patches.
    let p = cms
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"x": "y"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.data.unwrap().get("x").unwrap(), "y");
    let jp: json_patch_shim::Ops =
        serde_json::from_value(json!([{"op": "remove", "path": "/data/x"}])).unwrap();
    let p = cms
        .patch("one", &PatchParams::default(), &Patch::<()>::Json(jp.0))
        .await
        .unwrap();
    assert!(!p.data.unwrap().contains_key("x"));

    let missing = api_err(cms.get("nope").await.unwrap_err());
    assert_eq!(missing.code, 404);
    assert_eq!(missing.message, "configmaps \"nope\" not found");

    // Objects in a namespace that does not exist are rejected like kube-apiserver does.
    let ghost: Api<ConfigMap> = Api::namespaced(client.clone(), "ghost");
    let e = api_err(ghost.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"ghost\" not found")
    );

    cms.delete("one", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_err(cms.get("one").await.unwrap_err()).code, 404);
    server.shutdown().await;
}

/// kube's JSON patch type lives in the `json_patch` crate re-exported by kube-core.
mod json_patch_shim {
    #[derive(serde::Deserialize)]
    #[serde(transparent)]
    pub struct Ops(pub json_patch::Patch);
}

async fn next_event<S, E>(s: &mut S) -> String
where
    S: futures::Stream<Item = Result<String, E>> + Unpin,
    E: std::fmt::Debug,
{
    loop {
        // The watcher reports errors (e.g. 410 Gone after compaction) and then recovers by itself.
        if let Ok(name) = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .expect("event in time")
            .expect("stream open")
        {
            return name;
        }
    }
}

#[tokio::test]
async fn watcher_sees_changes_and_recovers_from_faults() {
    let server = start().await;
    let client = admin(&server).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut pre = ConfigMap::default();
    pre.metadata.name = Some("pre".into());
    cms.create(&PostParams::default(), &pre).await.unwrap();

    for streaming in [false, true] {
        let cfg = if streaming {
            watcher::Config::default().streaming_lists()
        } else {
            watcher::Config::default()
        };
        let mut names = Box::pin(watcher(cms.clone(), cfg).default_backoff().try_filter_map(
            |e| async move {
                Ok(match e {
                    watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                        Some(format!("apply:{}", o.metadata.name.unwrap()))
                    }
                    watcher::Event::Delete(o) => {
                        Some(format!("delete:{}", o.metadata.name.unwrap()))
                    }
                    _ => None,
                })
            },
        ));
        // Initial state (objects sorted by name; "al" exists in the second round).
        while next_event(&mut names).await != "apply:pre" {}
        let suffix = if streaming { "s" } else { "l" };
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(format!("a{suffix}"));
        cms.create(&PostParams::default(), &cm).await.unwrap();
        assert_eq!(next_event(&mut names).await, format!("apply:a{suffix}"));

        // Drop every watch and expire history: the watcher must relist and keep going.
        server.faults().expire_resource_versions();
        server.faults().drop_watches();
        cm.metadata.name = Some(format!("b{suffix}"));
        cms.create(&PostParams::default(), &cm).await.unwrap();
        let mut seen = vec![];
        while !seen.contains(&format!("apply:b{suffix}")) {
            seen.push(next_event(&mut names).await);
        }
        cms.delete(&format!("b{suffix}"), &DeleteParams::default())
            .await
            .unwrap();
        // The relist may replay other objects first; the deletion must arrive eventually.
        while next_event(&mut names).await != format!("delete:b{suffix}") {}
    }
    server.shutdown().await;
}

#[tokio::test]
async fn raw_watch_semantics_bookmarks_and_gone() {
    let server = start().await;
    let client = admin(&server).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("w".into());
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let rv = created.metadata.resource_version.unwrap();

    // From a resourceVersion: only later events, plus bookmarks.
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "b"}})),
    )
    .await
    .unwrap();
    let mut got_modified = false;
    let mut got_bookmark = false;
    while !(got_modified && got_bookmark) {
        match tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Modified(o) => {
                assert_eq!(o.data.unwrap()["a"], "b");
                got_modified = true;
            }
            WatchEvent::Bookmark(_) => got_bookmark = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    drop(stream);

    // After compaction the old resourceVersion is gone: ERROR 410 Expired.
    server.faults().expire_resource_versions();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    match stream.next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
    // A list continue token from before compaction is 410 as well.
    cms.create(
        &PostParams::default(),
        &ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some("w2".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let page = cms.list(&ListParams::default().limit(1)).await.unwrap();
    server.faults().expire_resource_versions();
    let e = api_err(
        cms.list(
            &ListParams::default()
                .limit(1)
                .continue_token(page.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 410);
    server.shutdown().await;
}

#[tokio::test]
async fn custom_resources_validation_status_and_ssa() {
    let server = start().await;
    let client = admin(&server).await;
    let widgets = widget_api(&client, "default");

    // Schema validation: 422 with causes.
    let mut bad = widget("bad", 99);
    bad.data["spec"]["b"] = json!("also");
    bad.data["spec"]["mode"] = json!("Medium");
    let e = api_err(
        widgets
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message
            .starts_with("Widget.example.com \"bad\" is invalid: ["),
        "{}",
        e.message
    );
    assert!(
        e.message.contains(
            "spec.size: Invalid value: 99: spec.size in body should be less than or equal to 10"
        ),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains("spec.mode: Unsupported value: \"Medium\""),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("exactly one of a or b must be set"),
        "{}",
        e.message
    );

    // Defaults and pruning.
    let mut w = widget("w1", 3);
    w.data["spec"]["unknown"] = json!(1);
    w.data["spec"]["extra"] = json!({"kept": true});
    w.data["status"] = json!({"message": "ignored on create"});
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.data["spec"]["mode"], "Fast");
    assert!(created.data["spec"].get("unknown").is_none());
    assert_eq!(created.data["spec"]["extra"]["kept"], true);
    assert!(created.data.get("status").is_none());
    assert_eq!(created.metadata.generation, Some(1));

    // Server-side apply to /status by a controller; generation does not move.
    let ssa = PatchParams::apply("widget-controller").force();
    let status = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "False", "reason": "Pending"}]}});
    let s = widgets
        .patch_status("w1", &ssa, &Patch::Apply(&status))
        .await
        .unwrap();
    assert_eq!(s.data["status"]["conditions"][0]["status"], "False");
    assert_eq!(s.metadata.generation, Some(1));
    let mf = s.metadata.managed_fields.clone().unwrap();
    assert!(mf
        .iter()
        .any(|m| m.manager.as_deref() == Some("widget-controller")
            && m.subresource.as_deref() == Some("status")
            && m.operation.as_deref() == Some("Apply")));

    // A second manager adds its own condition: list-map merge by `type` keeps both.
    let other = json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"conditions": [{"type": "Other", "status": "True"}]}});
    let s = widgets
        .patch_status(
            "w1",
            &PatchParams::apply("other").force(),
            &Patch::Apply(&other),
        )
        .await
        .unwrap();
    assert_eq!(s.data["status"]["conditions"].as_array().unwrap().len(), 2);

    // The first manager changing its condition only touches its own.
    let ready = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True", "reason": "Done"}]}});
    let s = widgets
        .patch_status("w1", &ssa, &Patch::Apply(&ready))
        .await
        .unwrap();
    let conds = s.data["status"]["conditions"].as_array().unwrap().clone();
    assert_eq!(conds.len(), 2);
    assert!(conds
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True"));

    // Status changes through the main endpoint are ignored; spec changes bump generation.
    let p = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}, "status": {"message": "nope"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(2));
    assert!(p.data["status"].get("message").is_none());
    // Metadata-only changes do not bump generation; no-op patches do not bump resourceVersion.
    let p2 = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"l": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p2.metadata.generation, Some(2));
    let p3 = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"l": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p2.metadata.resource_version, p3.metadata.resource_version);

    // SSA conflicts between managers without force.
    let spec_a = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {"size": 2, "a": "x"}});
    widgets
        .patch("w2", &PatchParams::apply("alice"), &Patch::Apply(&spec_a))
        .await
        .unwrap();
    let spec_b = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {"size": 5, "a": "x"}});
    let e = api_err(
        widgets
            .patch("w2", &PatchParams::apply("bob"), &Patch::Apply(&spec_b))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 409);
    assert!(
        e.message.contains("conflict with \"alice\""),
        "{}",
        e.message
    );
    let forced = widgets
        .patch(
            "w2",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(&spec_b),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["spec"]["size"], 5);
    // Apply without fieldManager is rejected.
    let e = api_err(
        widgets
            .patch("w2", &PatchParams::default(), &Patch::Apply(&spec_b))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    server.shutdown().await;
}

#[tokio::test]
async fn finalizers_owner_gc_and_namespace_deletion() {
    let server = start().await;
    let client = admin(&server).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "scratch"}})).unwrap(),
    )
    .await
    .unwrap();
    let widgets = widget_api(&client, "scratch");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "scratch");

    let mut w = widget("owner", 1);
    w.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    let owner = widgets.create(&PostParams::default(), &w).await.unwrap();
    let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dep", "ownerReferences": [{
        "apiVersion": "example.com/v1", "kind": "Widget", "name": "owner", "uid": owner.metadata.uid.clone().unwrap()}]}}))
    .unwrap();
    cms.create(&PostParams::default(), &dep).await.unwrap();

    // Delete with a finalizer: object stays with deletionTimestamp.
    widgets
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    let pending = widgets.get("owner").await.unwrap();
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(cms.get("dep").await.is_ok());
    // Adding a finalizer while deleting is forbidden.
    let e = api_err(
        widgets
            .patch(
                "owner",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/cleanup", "new"]}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
    // Removing the last finalizer deletes it, and the dependent is garbage-collected.
    widgets
        .patch(
            "owner",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert_eq!(api_err(widgets.get("owner").await.unwrap_err()).code, 404);
    assert_eq!(api_err(cms.get("dep").await.unwrap_err()).code, 404);

    // Namespace deletion removes its contents and then the namespace.
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
    )
    .await
    .unwrap();
    nss.delete("scratch", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_err(nss.get("scratch").await.unwrap_err()).code, 404);
    let all_cms: Api<ConfigMap> = Api::all(client.clone());
    assert!(all_cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .all(|c| c.metadata.namespace.as_deref() != Some("scratch")));
    server.shutdown().await;
}

#[tokio::test]
async fn authentication_rbac_and_tokens() {
    let server = start().await;
    let client = admin(&server).await;

    // Unauthenticated: 401 Status.
    let anon = client_with(&server, "bogus").await;
    let e = api_err(
        Api::<ConfigMap>::namespaced(anon, "default")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (401, "Unauthorized"));

    // Mint a ServiceAccount token through the TokenRequest API.
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "ctrl"}})).unwrap(),
    )
    .await
    .unwrap();
    let tr: k8s_openapi::api::authentication::v1::TokenRequest = sas
        .create_token_request(
            "ctrl",
            &PostParams::default(),
            &serde_json::from_value(json!({"spec": {"audiences": []}})).unwrap(),
        )
        .await
        .unwrap();
    let token = tr.status.unwrap().token.expect("token");
    let sa_client = client_with(&server, &token).await;
    let sa_secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(sa_client.clone(), "default");
    let e = api_err(sa_secrets.get("x").await.unwrap_err());
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "secrets \"x\" is forbidden: User \"system:serviceaccount:default:ctrl\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\""
    );

    // Grant via Role + RoleBinding (subject kind ServiceAccount).
    let roles: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "Role"),
            "roles",
        ),
    );
    roles.create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "create"]}]})).unwrap()).await.unwrap();
    let rbs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "RoleBinding"),
            "rolebindings",
        ),
    );
    rbs.create(&PostParams::default(), &serde_json::from_value(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "ctrl", "namespace": "default"}]})).unwrap()).await.unwrap();
    let secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}))
            .unwrap();
    let s = sa_secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    assert_eq!(s.data.unwrap()["k"].0, b"v");
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    let e = api_err(
        sa_secrets
            .delete("s", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 403);
    // Other namespaces stay forbidden.
    let e = api_err(
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(sa_client.clone(), "kube-system")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert!(
        e.message.ends_with(
            "cannot list resource \"secrets\" in API group \"\" in the namespace \"kube-system\""
        ),
        "{}",
        e.message
    );

    // Deleting the ServiceAccount invalidates its token.
    sas.delete("ctrl", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_err(sa_secrets.get("s").await.unwrap_err()).code, 401);
    server.shutdown().await;
}

#[tokio::test]
async fn csr_approval_requires_approve_on_signer() {
    let server = start().await;
    let client = admin(&server).await;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest as Csr;
    let csrs: Api<Csr> = Api::all(client.clone());
    let csr: Csr = serde_json::from_value(json!({"metadata": {"name": "c"}, "spec": {"request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KQUE9PQotLS0tLUVORCBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K", "signerName": "pkiissuers.pki-issuer.io/ns.issuer", "usages": ["digital signature"]}})).unwrap();
    let created = csrs.create(&PostParams::default(), &csr).await.unwrap();
    assert_eq!(created.spec.username.as_deref(), Some("admin"));

    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "approver"}})).unwrap(),
    )
    .await
    .unwrap();
    let token = server.service_account_token("default", "approver").unwrap();
    let sa: Api<Csr> = Api::all(client_with(&server, &token).await);
    let cr = |name: &str, rules: Value| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})).unwrap()
    };
    let crs: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "ClusterRole"),
            "clusterroles",
        ),
    );
    let crbs: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
            "clusterrolebindings",
        ),
    );
    crs.create(&PostParams::default(), &cr("csr-approval", json!([{"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests", "certificatesigningrequests/approval"], "verbs": ["get", "list", "update", "patch"]}]))).await.unwrap();
    let bind = |name: &str, role: &str| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "Group", "name": "system:serviceaccounts:default"}]})).unwrap()
    };
    crbs.create(&PostParams::default(), &bind("b1", "csr-approval"))
        .await
        .unwrap();
    let approve = json!({"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "Test", "message": "ok"}]}});
    let e = api_err(
        sa.patch_approval("c", &PatchParams::default(), &Patch::Merge(&approve))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 403);
    assert_eq!(e.message, "certificatesigningrequests.certificates.k8s.io \"c\" is forbidden: user not permitted to approve requests with signerName \"pkiissuers.pki-issuer.io/ns.issuer\"");
    crs.create(&PostParams::default(), &cr("signer", json!([{"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"], "resourceNames": ["pkiissuers.pki-issuer.io/*"]}]))).await.unwrap();
    crbs.create(&PostParams::default(), &bind("b2", "signer"))
        .await
        .unwrap();
    let ok = sa
        .patch_approval("c", &PatchParams::default(), &Patch::Merge(&approve))
        .await
        .unwrap();
    assert_eq!(ok.status.unwrap().conditions.unwrap()[0].type_, "Approved");
    // CSRs filtered by signerName field selector.
    assert_eq!(
        csrs.list(
            &ListParams::default().fields("spec.signerName=pkiissuers.pki-issuer.io/ns.issuer")
        )
        .await
        .unwrap()
        .items
        .len(),
        1
    );
    assert_eq!(
        csrs.list(&ListParams::default().fields("spec.signerName=other/x"))
            .await
            .unwrap()
            .items
            .len(),
        0
    );
    server.shutdown().await;
}

#[tokio::test]
async fn fault_injection_and_counters() {
    let server = start().await;
    let client = admin(&server).await;
    let widgets = widget_api(&client, "default");
    widgets
        .create(&PostParams::default(), &widget("f", 1))
        .await
        .unwrap();
    let f = server.faults();
    f.fail(
        Matcher {
            verb: Some("patch".into()),
            resource: Some("widgets".into()),
            subresource: Some("status".into()),
            ..Default::default()
        },
        500,
        Some(1),
        None,
    );
    let st = json!({"status": {"message": "hi"}});
    let e = api_err(
        widgets
            .patch_status("f", &PatchParams::default(), &Patch::Merge(&st))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 500);
    // Main resource patches are unaffected, and the fault is used up after one request.
    widgets
        .patch(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    let ok = widgets
        .patch_status("f", &PatchParams::default(), &Patch::Merge(&st))
        .await
        .unwrap();
    assert_eq!(ok.data["status"]["message"], "hi");
    assert_eq!(f.request_count("patch", "widgets", "status"), 2);
    assert_eq!(f.request_count("patch", "widgets", ""), 1);

    // Over HTTP, as out-of-process tests use it.
    let req = http::Request::post("/testing/faults")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&json!({"action": "fail", "verb": "get", "resource": "widgets", "code": 500, "count": 1})).unwrap())
        .unwrap();
    let _: Value = client.request(req).await.unwrap();
    let e = api_err(widgets.get("f").await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    assert!(widgets.get("f").await.is_ok());
    let counts: Value = client
        .request(
            http::Request::get("/testing/requests")
                .body(vec![])
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        counts["counts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["verb"] == "get" && c["resource"] == "widgets" && c["count"] == 2),
        "{counts}"
    );

    // Latency.
    f.add_latency(
        Matcher {
            verb: Some("get".into()),
            ..Default::default()
        },
        Duration::from_millis(300),
        Some(1),
        None,
    );
    let t0 = std::time::Instant::now();
    widgets.get("f").await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(300));
    server.shutdown().await;
}

#[tokio::test]
async fn controller_reconciles_custom_resource() {
    use kube::runtime::controller::{Action, Controller};
    use std::sync::Arc;
    let server = start().await;
    let client = admin(&server).await;
    let widgets = widget_api(&client, "default");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let ctx = Arc::new(client.clone());
    let ar2 = ar.clone();
    let ctrl = Controller::new_with(all, watcher::Config::default(), ar.clone())
        .run(
            move |obj: Arc<DynamicObject>, c: Arc<Client>| {
                let ar = ar2.clone();
                async move {
                    let api: Api<DynamicObject> = Api::namespaced_with((*c).clone(), obj.metadata.namespace.as_deref().unwrap(), &ar);
                    let st = json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {
                        "observedGeneration": obj.metadata.generation, "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled"}]}});
                    api.patch_status(obj.metadata.name.as_deref().unwrap(), &PatchParams::apply("ctrl").force(), &Patch::Apply(&st)).await?;
                    Ok::<_, kube::Error>(Action::await_change())
                }
            },
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            ctx,
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(ctrl);
    widgets
        .create(&PostParams::default(), &widget("c1", 2))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let w = widgets.get("c1").await.unwrap();
        if w.data.pointer("/status/conditions/0/status") == Some(&json!("True")) {
            assert_eq!(w.data["status"]["observedGeneration"], 1);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "controller did not reconcile"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn cert_manager_crds_load_and_validate() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/cert-manager");
    let server = TestApiServer::start(Config {
        crd_dirs: vec![dir],
        ..Default::default()
    })
    .await
    .unwrap();
    let client = admin(&server).await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("cert-manager.io", "v1", "CertificateRequest"),
        "certificaterequests",
    );
    let crs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let good: DynamicObject = serde_json::from_value(json!({"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest", "metadata": {"name": "cr"},
        "spec": {"request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0=", "issuerRef": {"name": "i", "kind": "PKIIssuer", "group": "pki-issuer.io"}}})).unwrap();
    crs.create(&PostParams::default(), &good).await.unwrap();
    let mut bad = good.clone();
    bad.metadata.name = Some("bad".into());
    bad.data["spec"].as_object_mut().unwrap().remove("request");
    let e = api_err(crs.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("spec.request: Required value"),
        "{}",
        e.message
    );
    // Status with conditions via SSA, as an external issuer does.
    let st = json!({"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest", "status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "Issued", "message": "ok", "lastTransitionTime": "2024-01-01T00:00:00Z"}],
        "certificate": "LS0tLS1CRUdJTg=="}});
    let s = crs
        .patch_status(
            "cr",
            &PatchParams::apply("pki-issuer").force(),
            &Patch::Apply(&st),
        )
        .await
        .unwrap();
    assert_eq!(s.data["status"]["conditions"][0]["reason"], "Issued");
    // The Issuer CEL rule (exactly one of tpp/cloud/ngts for venafi) is enforced.
    let issuers: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("cert-manager.io", "v1", "Issuer"),
            "issuers",
        ),
    );
    let venafi: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer", "metadata": {"name": "v"},
        "spec": {"venafi": {"zone": "z"}}}),
    )
    .unwrap();
    let e = api_err(
        issuers
            .create(&PostParams::default(), &venafi)
            .await
            .unwrap_err(),
    );
    assert!(
        e.message
            .contains("exactly one of tpp, cloud, or ngts must be configured"),
        "{}",
        e.message
    );
    server.shutdown().await;
}

/// Create a Role/ClusterRole/RoleBinding/ClusterRoleBinding (as `Api<DynamicObject>`).
async fn rbac_object(client: &Client, kind: &str, ns: Option<&str>, obj: Value) {
    let plural = format!("{}s", kind.to_lowercase());
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", kind),
        &plural,
    );
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let mut obj = obj;
    obj["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
    obj["kind"] = json!(kind);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(obj).unwrap(),
    )
    .await
    .unwrap_or_else(|e| panic!("create {kind}: {e}"));
}

async fn create_namespace(client: &Client, name: &str) {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn subject_access_reviews_evaluate_rbac_for_the_given_user() {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    let server = start().await;
    let client = admin(&server).await;
    create_namespace(&client, "team-b").await;
    let sars: Api<SubjectAccessReview> = Api::all(client.clone());
    let review = |user: Option<&str>,
                  groups: &[&str],
                  ns: &str,
                  name: &str|
     -> SubjectAccessReview {
        serde_json::from_value(json!({"spec": {
            "user": user, "groups": groups, "uid": "u-1", "extra": {"k": ["v"]},
            "resourceAttributes": {"group": "pki-issuer.io", "resource": "signers", "verb": "reference",
                                   "namespace": ns, "name": name, "version": "*"}}}))
        .unwrap()
    };
    let allowed = |sar: SubjectAccessReview| {
        let sars = sars.clone();
        async move {
            let out = sars.create(&PostParams::default(), &sar).await.unwrap();
            assert_eq!(out.spec, sar.spec, "the spec is echoed");
            out.status.expect("status").allowed
        }
    };
    let web = "system:serviceaccount:team-a:web";
    assert!(
        !allowed(review(Some(web), &[], "team-b", "apps")).await,
        "no binding yet"
    );

    // resourceNames [apps] in team-b for the ServiceAccount team-a/web.
    rbac_object(&client, "Role", Some("team-b"), json!({"metadata": {"name": "ref-apps"},
        "rules": [{"apiGroups": ["pki-issuer.io"], "resources": ["signers"], "verbs": ["reference"], "resourceNames": ["apps"]}]})).await;
    rbac_object(
        &client,
        "RoleBinding",
        Some("team-b"),
        json!({"metadata": {"name": "ref-apps"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ref-apps"},
        "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": "team-a"}]}),
    )
    .await;
    assert!(allowed(review(Some(web), &[], "team-b", "apps")).await);
    assert!(
        !allowed(review(Some(web), &[], "team-b", "other")).await,
        "another name"
    );
    assert!(
        !allowed(review(Some(web), &[], "team-b", "*")).await,
        "`*` is a literal name"
    );
    assert!(
        !allowed(review(Some(web), &[], "team-a", "apps")).await,
        "another namespace"
    );
    assert!(
        !allowed(review(
            Some("system:serviceaccount:team-a:db"),
            &[],
            "team-b",
            "apps"
        ))
        .await,
        "another ServiceAccount"
    );

    // resourceNames ["*"] for a group: matches only the literal name "*".
    rbac_object(&client, "Role", Some("team-b"), json!({"metadata": {"name": "ref-star"},
        "rules": [{"apiGroups": ["pki-issuer.io"], "resources": ["signers"], "verbs": ["reference"], "resourceNames": ["*"]}]})).await;
    rbac_object(
        &client,
        "RoleBinding",
        Some("team-b"),
        json!({"metadata": {"name": "ref-star"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ref-star"},
        "subjects": [{"kind": "Group", "name": "ops"}]}),
    )
    .await;
    assert!(allowed(review(None, &["ops"], "team-b", "*")).await);
    assert!(!allowed(review(None, &["ops"], "team-b", "apps")).await);
    assert!(
        !allowed(review(Some("bob"), &[], "team-b", "*")).await,
        "groups as given only"
    );

    // No resourceNames: every name, through a ClusterRole bound by a RoleBinding.
    rbac_object(&client, "ClusterRole", None, json!({"metadata": {"name": "ref-all"},
        "rules": [{"apiGroups": ["pki-issuer.io"], "resources": ["signers"], "verbs": ["reference"]}]})).await;
    rbac_object(&client, "RoleBinding", Some("team-b"), json!({"metadata": {"name": "ref-all"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ref-all"},
        "subjects": [{"kind": "User", "name": "alice"}]})).await;
    for name in ["apps", "other", "*"] {
        assert!(
            allowed(review(Some("alice"), &[], "team-b", name)).await,
            "{name}"
        );
    }
    assert!(!allowed(review(Some("alice"), &[], "default", "apps")).await);
    assert!(allowed(review(Some("root"), &["system:masters"], "x", "y")).await);
    // A binding whose role is missing: denied, the reason names the role.
    rbac_object(
        &client,
        "RoleBinding",
        Some("team-b"),
        json!({"metadata": {"name": "dangling"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gone"},
        "subjects": [{"kind": "User", "name": "carol"}]}),
    )
    .await;
    let out = sars
        .create(
            &PostParams::default(),
            &review(Some("carol"), &[], "team-b", "apps"),
        )
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(!out.allowed);
    assert_eq!(
        out.reason.as_deref(),
        Some("RBAC: [role.rbac.authorization.k8s.io \"gone\" not found]")
    );

    // Non-resource attributes.
    let nr = |user: &str| -> SubjectAccessReview {
        serde_json::from_value(json!({"spec": {"user": user, "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}})).unwrap()
    };
    assert!(!allowed(nr("alice")).await);
    rbac_object(
        &client,
        "ClusterRole",
        None,
        json!({"metadata": {"name": "metrics"},
        "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]}),
    )
    .await;
    rbac_object(&client, "ClusterRoleBinding", None, json!({"metadata": {"name": "metrics"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "metrics"},
        "subjects": [{"kind": "User", "name": "alice"}]})).await;
    assert!(allowed(nr("alice")).await);

    // kube-apiserver's validation.
    let invalid = |body: Value| {
        let sars = sars.clone();
        async move {
            api_err(
                sars.create(
                    &PostParams::default(),
                    &serde_json::from_value(body).unwrap(),
                )
                .await
                .unwrap_err(),
            )
        }
    };
    let e =
        invalid(json!({"spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}})).await;
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        "SubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.user: Invalid value: \"\": at least one of user or group must be specified"
    );
    let e = invalid(json!({"spec": {"user": "a"}})).await;
    assert!(
        e.message.contains(
            "exactly one of nonResourceAttributes or resourceAttributes must be specified"
        ),
        "{}",
        e.message
    );
    let e = invalid(json!({"spec": {"user": "a", "resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/x", "verb": "get"}}})).await;
    assert!(
        e.message
            .contains("cannot be specified in combination with resourceAttributes"),
        "{}",
        e.message
    );

    // Creating a SubjectAccessReview needs `create` on subjectaccessreviews.
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "ctrl"}})).unwrap(),
    )
    .await
    .unwrap();
    let token = server.service_account_token("default", "ctrl").unwrap();
    let ctrl: Api<SubjectAccessReview> = Api::all(client_with(&server, &token).await);
    let e = api_err(
        ctrl.create(
            &PostParams::default(),
            &review(Some(web), &[], "team-b", "apps"),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(e.code, 403);
    assert!(
        e.message.ends_with("User \"system:serviceaccount:default:ctrl\" cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope"),
        "{}",
        e.message
    );
    rbac_object(&client, "ClusterRole", None, json!({"metadata": {"name": "sar"},
        "rules": [{"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}]})).await;
    rbac_object(
        &client,
        "ClusterRoleBinding",
        None,
        json!({"metadata": {"name": "sar"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "sar"},
        "subjects": [{"kind": "ServiceAccount", "name": "ctrl", "namespace": "default"}]}),
    )
    .await;
    let out = ctrl
        .create(
            &PostParams::default(),
            &review(Some(web), &[], "team-b", "apps"),
        )
        .await
        .unwrap();
    assert!(
        out.status.unwrap().allowed,
        "evaluated for spec.user, not the caller"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn csr_requester_info_comes_from_the_authenticated_user() {
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest as Csr;
    let server = start().await;
    let client = admin(&server).await;
    create_namespace(&client, "team-a").await;
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team-a");
    let sa = sas
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "web"}})).unwrap(),
        )
        .await
        .unwrap();
    rbac_object(&client, "ClusterRole", None, json!({"metadata": {"name": "csr-create"},
        "rules": [{"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["create", "get"]}]})).await;
    rbac_object(&client, "ClusterRoleBinding", None, json!({"metadata": {"name": "csr-create"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "csr-create"},
        "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": "team-a"}]})).await;
    let token = server.service_account_token("team-a", "web").unwrap();
    let csrs: Api<Csr> = Api::all(client_with(&server, &token).await);
    // Every requester field forged: another namespace's ServiceAccount, system:masters, a uid and extra.
    let forged: Csr = serde_json::from_value(json!({"metadata": {"name": "forged"}, "spec": {
        "request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KQUE9PQotLS0tLUVORCBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K", "signerName": "pkiissuers.pki-issuer.io/team-b.apps",
        "username": "system:serviceaccount:team-b:apps", "groups": ["system:masters"],
        "uid": "forged-uid", "extra": {"scopes": ["admin"]}}}))
    .unwrap();
    let created = csrs.create(&PostParams::default(), &forged).await.unwrap();
    let spec = created.spec;
    assert_eq!(
        spec.username.as_deref(),
        Some("system:serviceaccount:team-a:web")
    );
    assert_eq!(
        spec.groups.unwrap(),
        [
            "system:serviceaccounts",
            "system:serviceaccounts:team-a",
            "system:authenticated"
        ]
    );
    assert_eq!(spec.uid, sa.metadata.uid, "the ServiceAccount's uid");
    assert_eq!(spec.extra, None, "forged extra dropped");
    // The admin (a static token) has no uid.
    let mut by_admin = forged.clone();
    by_admin.metadata.name = Some("by-admin".into());
    let created = Api::<Csr>::all(client.clone())
        .create(&PostParams::default(), &by_admin)
        .await
        .unwrap();
    assert_eq!(created.spec.username.as_deref(), Some("admin"));
    assert_eq!((created.spec.uid, created.spec.extra), (None, None));
    server.shutdown().await;
}
