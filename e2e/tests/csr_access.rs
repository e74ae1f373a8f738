//! Kubernetes CSRs naming a namespaced PKIIssuer, under the API server's RBAC: the requester
//! the API server recorded must be allowed to `reference` `signers` in API group
//! `pki-issuer.io` in the issuer's namespace (for the issuer's name or `*`), as cert-manager
//! requires for its namespaced Issuers. PKIClusterIssuers need no such permission.

use std::time::Duration;

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Client};
use serde_json::{json, Value};
use test_apiserver::Matcher;

use crate::csr::{base64_encode, failed_message, install, spec};
use crate::fixtures;
use crate::harness::{external, skip_on_kube, Env};

/// A client authenticated as ServiceAccount `ns/name` (created if missing), through the
/// TokenRequest API, against the same server as the admin kubeconfig.
pub(crate) async fn service_account_client(env: &Env, ns: &str, name: &str) -> Client {
    let sas: Api<ServiceAccount> = Api::namespaced(env.client.clone(), ns);
    let sa = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match sas.create(&PostParams::default(), &sa).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create ServiceAccount {ns}/{name}: {e}"),
    }
    let request = serde_json::from_value(json!({"spec": {"audiences": []}})).unwrap();
    let token = sas
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("TokenRequest")
        .status
        .expect("status")
        .token
        .expect("token");
    let kc = Kubeconfig::read_from(&env.kubeconfig).expect("kubeconfig");
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("client config");
    cfg.auth_info = serde_json::from_value::<AuthInfo>(json!({"token": token})).unwrap();
    Client::try_from(cfg).expect("client")
}

fn sa_user(ns: &str, name: &str) -> String {
    format!("system:serviceaccount:{ns}:{name}")
}

fn rbac_api(client: &Client, kind: &str, ns: Option<&str>) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", kind),
        &format!("{}s", kind.to_lowercase()),
    );
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

pub(crate) async fn create_rbac(env: &Env, kind: &str, ns: Option<&str>, mut obj: Value) {
    obj["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
    obj["kind"] = json!(kind);
    rbac_api(&env.client, kind, ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(obj).unwrap(),
        )
        .await
        .unwrap_or_else(|e| panic!("create {kind}: {e}"));
}

/// The opt-in RBAC the README documents: a Role in the issuer's namespace granting
/// `reference` on `signers.pki-issuer.io` (for `names`, or every issuer when `None`), bound to
/// ServiceAccount `sa_ns/sa`.
async fn grant_reference(
    env: &Env,
    issuer_ns: &str,
    role: &str,
    names: Option<&[&str]>,
    sa_ns: &str,
    sa: &str,
) {
    let mut rule =
        json!({"apiGroups": ["pki-issuer.io"], "resources": ["signers"], "verbs": ["reference"]});
    if let Some(names) = names {
        rule["resourceNames"] = json!(names);
    }
    create_rbac(
        env,
        "Role",
        Some(issuer_ns),
        json!({"metadata": {"name": role}, "rules": [rule]}),
    )
    .await;
    create_rbac(
        env,
        "RoleBinding",
        Some(issuer_ns),
        json!({"metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": sa_ns}]}),
    )
    .await;
}

/// Let every ServiceAccount of `namespaces` create and read CSRs (cluster-wide, as CSRs are).
async fn allow_csr_create(env: &Env, name: &str, namespaces: &[&str]) {
    create_rbac(env, "ClusterRole", None, json!({"metadata": {"name": name},
        "rules": [{"apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"], "verbs": ["create", "get"]}]}))
    .await;
    let subjects: Vec<Value> = namespaces
        .iter()
        .map(|ns| json!({"kind": "Group", "name": format!("system:serviceaccounts:{ns}")}))
        .collect();
    create_rbac(
        env,
        "ClusterRoleBinding",
        None,
        json!({"metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": subjects}),
    )
    .await;
}

/// The CSRs of one test: created by a tenant's client, approved and read by the admin.
struct Csrs<'a> {
    env: &'a Env,
    admin: Api<CertificateSigningRequest>,
    prefix: String,
}

impl<'a> Csrs<'a> {
    fn new(env: &'a Env) -> Self {
        Csrs {
            env,
            admin: Api::all(env.client.clone()),
            prefix: env.ns.clone(),
        }
    }

    fn name(&self, n: &str) -> String {
        format!("{}-{n}", self.prefix)
    }

    /// Create (as `client`, with extra `spec` fields such as a forged username) and approve.
    async fn submit(
        &self,
        client: &Client,
        n: &str,
        signer: &str,
        san: &str,
        extra_spec: Value,
    ) -> CertificateSigningRequest {
        let (_, csr) = fixtures::csr(&[san]);
        let mut obj = json!({
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": self.name(n)},
            "spec": {
                "request": base64_encode(csr.as_bytes()),
                "signerName": signer,
                "usages": ["digital signature", "key encipherment", "server auth"],
            }
        });
        if let Value::Object(fields) = extra_spec {
            for (k, v) in fields {
                obj["spec"][k] = v;
            }
        }
        let created = Api::<CertificateSigningRequest>::all(client.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(obj).unwrap(),
            )
            .await
            .unwrap_or_else(|e| panic!("create CSR {n}: {e}"));
        let patch = json!({"status": {"conditions": [CertificateSigningRequestCondition {
            type_: "Approved".into(), status: "True".into(), reason: Some("E2E".into()),
            message: Some("approved by the e2e suite".into()), ..Default::default()
        }]}});
        self.admin
            .patch_approval(
                &self.name(n),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .expect("approve");
        created
    }

    async fn get(&self, n: &str) -> CertificateSigningRequest {
        self.admin.get(&self.name(n)).await.expect("get CSR")
    }

    /// Wait until the CSR is signed or Failed.
    async fn finished(&self, n: &str) -> CertificateSigningRequest {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let csr = self.get(n).await;
            if signed(&csr) || failed_message(&csr).is_some() {
                return csr;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "CSR {n} never finished: {:?}\n{}",
                csr.status,
                self.env.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn issued(&self, n: &str) {
        let csr = self.finished(n).await;
        assert!(
            signed(&csr),
            "{n} must be issued, got {:?}\n{}",
            failed_message(&csr),
            self.env.logs()
        );
    }

    /// The CSR ended Failed (reason PolicyViolation) without a certificate; returns the message.
    async fn refused(&self, n: &str) -> String {
        let csr = self.finished(n).await;
        assert!(!signed(&csr), "{n} must not be signed");
        let cond = csr
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Failed"))
            .cloned()
            .expect("Failed condition");
        assert_eq!(cond.reason.as_deref(), Some("PolicyViolation"), "{cond:?}");
        cond.message.unwrap_or_default()
    }

    /// Events about CSR `n` (cluster-scoped objects' Events live in `default`).
    async fn events(&self, n: &str) -> Vec<Event> {
        let name = self.name(n);
        Api::<Event>::namespaced(self.env.client.clone(), "default")
            .list(&ListParams::default())
            .await
            .expect("list Events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(&name))
            .collect()
    }

    async fn cleanup(&self, names: &[&str]) {
        for n in names {
            let _ = self
                .admin
                .delete(&self.name(n), &DeleteParams::default())
                .await;
        }
    }
}

fn signed(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
}

/// The exact message of a refused reference.
fn missing_permission(user: &str, issuer_ns: &str, issuer: &str) -> String {
    format!(
        "refused before signing: requester user \"{user}\" may not reference PKIIssuer \
         {issuer_ns}/{issuer}: it needs verb \"reference\" on resource \"signers\" in API group \
         \"pki-issuer.io\" in namespace \"{issuer_ns}\" for resource name \"{issuer}\" (or \"*\"), \
         granted by a Role and RoleBinding in \"{issuer_ns}\""
    )
}

/// Team A's ServiceAccounts ask for certificates of team B's PKIIssuer `apps`.
struct Teams {
    a: String,
    b: String,
    signer: String,
    san: String,
}

async fn teams(env: &Env) -> Teams {
    let a = env.ns.clone();
    let b = format!("{}-b", env.ns);
    env.create_namespace(&b).await;
    install(env, &b).await;
    let team_b = Env::view(env, &b);
    team_b
        .create_issuer("apps", spec(&["*.{namespace}.svc"]))
        .await;
    team_b.wait_issuer_ready("apps", false, "True").await;
    allow_csr_create(env, &format!("{a}-csr-create"), &[&a, &b]).await;
    Teams {
        signer: format!("pkiissuers.pki-issuer.io/{b}.apps"),
        san: format!("db.{b}.svc"),
        a,
        b,
    }
}

#[tokio::test]
async fn csr_for_a_namespaced_issuer_needs_reference_on_signers() {
    let env = Env::start("csracc").await;
    let t = teams(&env).await;
    let csrs = Csrs::new(&env);
    let (a, b) = (t.a.as_str(), t.b.as_str());

    // Team B's own ServiceAccount may reference `apps` and gets db.<b>.svc.
    grant_reference(&env, b, "ref-apps-owner", Some(&["apps"]), b, "owner").await;
    let owner = service_account_client(&env, b, "owner").await;
    csrs.submit(&owner, "owner", &t.signer, &t.san, json!({}))
        .await;
    csrs.issued("owner").await;

    // A ServiceAccount of team A without the permission: Failed, naming the permission, with
    // a Warning Event saying the same, and nothing signed.
    let web = service_account_client(&env, a, "web").await;
    csrs.submit(&web, "no-permission", &t.signer, &t.san, json!({}))
        .await;
    let msg = csrs.refused("no-permission").await;
    assert_eq!(msg, missing_permission(&sa_user(a, "web"), b, "apps"));
    let events = csrs.events("no-permission").await;
    assert!(
        events.iter().any(|e| e.type_.as_deref() == Some("Warning")
            && e.reason.as_deref() == Some("PolicyViolation")
            && e.note.as_deref() == Some(msg.as_str())),
        "Warning Event with the message: {events:?}"
    );

    // Forging spec.username (and groups, uid, extra) to be team B's owner does not help: the
    // API server records the authenticated creator, and that is who is checked.
    let forged = csrs
        .submit(
            &web,
            "forged",
            &t.signer,
            &t.san,
            json!({"username": sa_user(b, "owner"), "groups": ["system:masters"],
                   "uid": "forged", "extra": {"scopes": ["admin"]}}),
        )
        .await;
    assert_eq!(
        forged.spec.username.as_deref(),
        Some(sa_user(a, "web").as_str()),
        "the API server overwrote the forged username"
    );
    assert!(!forged
        .spec
        .groups
        .unwrap_or_default()
        .contains(&"system:masters".to_string()));
    assert_eq!(
        csrs.refused("forged").await,
        missing_permission(&sa_user(a, "web"), b, "apps")
    );

    // A RoleBinding in team B for another issuer name does not grant `apps`.
    grant_reference(&env, b, "ref-other", Some(&["other"]), a, "other-name").await;
    let other_name = service_account_client(&env, a, "other-name").await;
    csrs.submit(&other_name, "other-name", &t.signer, &t.san, json!({}))
        .await;
    assert_eq!(
        csrs.refused("other-name").await,
        missing_permission(&sa_user(a, "other-name"), b, "apps")
    );

    // A RoleBinding in team A (the requester's own namespace) does not either.
    grant_reference(&env, a, "ref-apps-wrong-ns", Some(&["apps"]), a, "wrong-ns").await;
    let wrong_ns = service_account_client(&env, a, "wrong-ns").await;
    csrs.submit(&wrong_ns, "wrong-ns", &t.signer, &t.san, json!({}))
        .await;
    assert_eq!(
        csrs.refused("wrong-ns").await,
        missing_permission(&sa_user(a, "wrong-ns"), b, "apps")
    );

    // Granted in team B: by name, by the name `*`, and by a rule without resourceNames.
    let mut granted = vec![];
    for (sa, names) in [
        ("named", Some(&["apps"][..])),
        ("star", Some(&["*"][..])),
        ("all", None),
    ] {
        grant_reference(&env, b, &format!("ref-{sa}"), names, a, sa).await;
        let client = service_account_client(&env, a, sa).await;
        csrs.submit(&client, sa, &t.signer, &t.san, json!({})).await;
        granted.push(sa);
    }
    for sa in &granted {
        csrs.issued(sa).await;
    }

    // Exactly cert-manager's pair of reviews: the issuer's name, then `*` (counted on a local
    // server: the test API server's counters or the real server's audit log).
    if !external() {
        let mut counters = env.request_counter();
        for (sa, reviews) in [("star", 2), ("named", 1), ("all", 1)] {
            counters.reset();
            let client = service_account_client(&env, a, sa).await;
            let n = format!("{sa}-again");
            csrs.submit(&client, &n, &t.signer, &t.san, json!({})).await;
            csrs.issued(&n).await;
            let sar_count = counters.count("create", "subjectaccessreviews", "");
            assert_eq!(sar_count, reviews, "{sa}: SubjectAccessReviews");
        }
    } else {
        eprintln!("csr_access: SubjectAccessReview counts are checked on the test API server only");
    }

    csrs.cleanup(&[
        "owner",
        "no-permission",
        "forged",
        "other-name",
        "wrong-ns",
        "named",
        "star",
        "all",
        "star-again",
        "named-again",
        "all-again",
    ])
    .await;
    for kind in ["ClusterRoleBinding", "ClusterRole"] {
        let _ = rbac_api(&env.client, kind, None)
            .delete(&format!("{a}-csr-create"), &DeleteParams::default())
            .await;
    }
}

#[tokio::test]
async fn csr_for_a_cluster_issuer_needs_no_reference() {
    let env = Env::start("csrclu").await;
    install(&env, &env.cluster_ns).await;
    let cluster = format!("{}-mesh", env.ns);
    env.create_cluster_issuer(&cluster, spec(&["*.{namespace}.svc"]))
        .await;
    env.wait_issuer_ready(&cluster, true, "True").await;
    let a = env.ns.clone();
    allow_csr_create(&env, &format!("{a}-csr-create"), &[&a]).await;
    let web = service_account_client(&env, &a, "web").await;
    let csrs = Csrs::new(&env);
    let mut counters = (!external()).then(|| env.request_counter());
    if let Some(c) = &mut counters {
        c.reset();
    }
    // {namespace} is the requesting ServiceAccount's namespace for cluster issuers.
    csrs.submit(
        &web,
        "cluster",
        &format!("pkiclusterissuers.pki-issuer.io/{cluster}"),
        &format!("web.{a}.svc"),
        json!({}),
    )
    .await;
    csrs.issued("cluster").await;
    if let Some(c) = &counters {
        assert_eq!(
            c.count("create", "subjectaccessreviews", ""),
            0,
            "no SubjectAccessReview for a PKIClusterIssuer"
        );
    } else {
        eprintln!(
            "csr_access: the SubjectAccessReview count is checked on the test API server only"
        );
    }
    csrs.cleanup(&["cluster"]).await;
    env.delete_cluster_issuer(&cluster).await;
    for kind in ["ClusterRoleBinding", "ClusterRole"] {
        let _ = rbac_api(&env.client, kind, None)
            .delete(&format!("{a}-csr-create"), &DeleteParams::default())
            .await;
    }
}

#[tokio::test]
async fn subject_access_review_errors_are_retried_never_allowed() {
    if external() {
        eprintln!(
            "subject_access_review_errors: covered locally (faults are injected into the test API server)"
        );
        return;
    }
    if skip_on_kube(
        "subject_access_review_errors",
        "injects 500s into SubjectAccessReviews, which only the test API server's FaultInjector can do",
    ) {
        return;
    }
    let env = Env::start("csrsarerr").await;
    let t = teams(&env).await;
    let csrs = Csrs::new(&env);
    let (a, b) = (t.a.as_str(), t.b.as_str());
    grant_reference(&env, b, "ref-apps", Some(&["apps"]), a, "named").await;
    let named = service_account_client(&env, a, "named").await;
    let web = service_account_client(&env, a, "web").await;
    let faults = env.server.as_ref().unwrap().faults();
    faults.reset_counters();
    let sar = Matcher {
        verb: Some("create".into()),
        resource: Some("subjectaccessreviews".into()),
        ..Default::default()
    };
    faults.fail(sar, 500, None, None);

    csrs.submit(&named, "allowed", &t.signer, &t.san, json!({}))
        .await;
    csrs.submit(&web, "denied", &t.signer, &t.san, json!({}))
        .await;
    // While every review fails: retried with backoff, neither signed nor Failed, a Warning Event.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = csrs.events("denied").await;
        if let Some(e) = events
            .iter()
            .find(|e| e.reason.as_deref() == Some("RetryableError"))
        {
            let note = e.note.as_deref().unwrap_or_default();
            assert!(
                note.contains("SubjectAccessReview failed: HTTP 500")
                    && note.contains(&sa_user(a, "web"))
                    && note.ends_with("; will retry"),
                "{note}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no RetryableError Event: {events:?}\n{}",
            env.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tries = faults.request_count("create", "subjectaccessreviews", "");
    assert!(tries >= 4, "both CSRs retried: {tries} reviews");
    for n in ["allowed", "denied"] {
        let csr = csrs.get(n).await;
        assert!(!signed(&csr), "{n} signed while reviews fail");
        assert!(
            failed_message(&csr).is_none(),
            "{n} failed on a retryable error"
        );
    }

    // The API server recovers: each CSR gets its real answer.
    faults.clear();
    csrs.issued("allowed").await;
    assert_eq!(
        csrs.refused("denied").await,
        missing_permission(&sa_user(a, "web"), b, "apps")
    );
}
