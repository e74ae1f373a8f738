//! Real cert-manager (its controller and webhook at the pinned release, see
//! e2e/scripts/control-plane.sh) on the real control plane: here **only cert-manager creates
//! CertificateRequests**, from Certificates, and writes the Secrets. Proves the whole
//! Certificate → CertificateRequest → approval → pki-issuer → Secret loop, renewal, key
//! rotation, a refusal surfacing on the Certificate, the chart's approver ClusterRole, signer
//! rotation and a burst. Runs in the `E2E_APISERVER=kube` pass (skipped, counted, elsewhere).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::ApiResource;
use kube::Api;
use pki_issuer::api::cert_manager::CertificateRequest;
use serde_json::{json, Value};

use crate::fixtures::{self, Ca};
use crate::harness::{kube, skip, Env, MTLS_USAGES};

/// The identity cert-manager's controller runs as (client certificate, chart RBAC).
const CERT_MANAGER_USER: &str = "system:serviceaccount:cert-manager:cert-manager";
/// The identity the suite's pki-issuer processes run as (the admin kubeconfig).
const PKI_ISSUER_USER: &str = "admin";

/// cert-manager's controller and webhook on the leased control plane, stopped (and its webhook
/// configurations removed) on drop, before the lease goes back to the pool.
pub struct CertManager {
    dir: PathBuf,
}

impl CertManager {
    /// Start cert-manager on the control plane `env` holds.
    pub async fn start(env: &Env) -> CertManager {
        let server = env.kube.as_ref().expect("a leased control plane").server();
        crate::kube_server::control(server, "cert-manager-start").await;
        CertManager {
            dir: server.dir.clone(),
        }
    }

    /// cert-manager's controller log (shown when a test fails).
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("cm-controller.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for CertManager {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(crate::kube_server::script())
            .arg("cert-manager-stop")
            .arg(&self.dir)
            .status();
    }
}

/// True (after recording the skip) unless the suite runs on the real control plane.
fn skipped(test: &str) -> bool {
    if kube() {
        return false;
    }
    skip(
        test,
        "needs real cert-manager, which runs on the real control plane (E2E_APISERVER=kube)",
    );
    true
}

fn certificate_resource() -> ApiResource {
    ApiResource {
        group: "cert-manager.io".into(),
        version: "v1".into(),
        api_version: "cert-manager.io/v1".into(),
        kind: "Certificate".into(),
        plural: "certificates".into(),
    }
}

pub(crate) fn certificates(env: &Env) -> Api<DynamicObject> {
    Api::namespaced_with(env.client.clone(), &env.ns, &certificate_resource())
}

/// Root + intermediate; the intermediate's Secret and the root ConfigMap in `ns`.
async fn install_pki(env: &Env, ns: &str) -> (Ca, Ca) {
    let root = fixtures::root("Example Corp Root CA");
    let int = fixtures::intermediate(&root, "Example Corp Intermediate 1");
    env.put_tls_secret(ns, "intermediate", &int.pem, &int.key_pem)
        .await;
    env.put_config_map(ns, "corp-roots", "roots.pem", &root.pem)
        .await;
    (root, int)
}

fn issuer_spec() -> Value {
    json!({
        "secret": {"name": "intermediate"},
        "trustAnchors": {"configMap": {"name": "corp-roots", "key": "roots.pem"}},
        "policy": {"maxDuration": "24h", "dnsNames": ["*.{namespace}.svc"]},
    })
}

/// A namespaced PKIIssuer `mesh` in the test namespace, Ready.
async fn mesh_issuer(env: &Env) -> (Ca, Ca) {
    let pki = install_pki(env, &env.ns).await;
    env.create_issuer("mesh", issuer_spec()).await;
    env.wait_issuer_ready("mesh", false, "True").await;
    pki
}

/// The approver ClusterRole and binding from the rendered pki-issuer chart: cert-manager may
/// `approve` for pki-issuer's signers.
pub(crate) async fn grant_approver(env: &Env) {
    let manifests = crate::chart::docs(&crate::chart::render(env));
    let text: String = manifests
        .iter()
        .filter(|d| {
            (d["kind"] == "ClusterRole" || d["kind"] == "ClusterRoleBinding")
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("-approver"))
        })
        .map(|d| format!("---\n{}\n", serde_json::to_string(d).unwrap()))
        .collect();
    assert_eq!(text.matches("---").count(), 2, "the chart's approver RBAC");
    env.kubectl(&["apply", "-f", "-"], Some(&text))
        .await
        .expect("kubectl apply of the chart's approver RBAC");
}

/// Remove the approver binding a previous test on this control plane may have left.
pub(crate) async fn revoke_approver(env: &Env) {
    let _ = env
        .kubectl(
            &[
                "delete",
                "clusterrolebinding",
                "--ignore-not-found",
                "-l",
                "app.kubernetes.io/name=pki-issuer",
            ],
            None,
        )
        .await;
}

/// A Certificate `name` for `<name>.<ns>.svc` with the mTLS usages (the default policy refuses
/// leaves without an extended key usage), one hour, from the issuer `kind`/`issuer`; `extra` is
/// merged into the spec.
pub(crate) async fn create_certificate(
    env: &Env,
    name: &str,
    kind: &str,
    issuer: &str,
    extra: Value,
) {
    let mut spec = json!({
        "secretName": name,
        "dnsNames": [format!("{name}.{}.svc", env.ns)],
        "usages": MTLS_USAGES,
        "duration": "1h",
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Never"},
        "issuerRef": {"group": "pki-issuer.io", "kind": kind, "name": issuer},
    });
    merge(&mut spec, extra);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": name, "namespace": env.ns},
        "spec": spec,
    }))
    .unwrap();
    certificates(env)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create Certificate {name}: {e}"));
}

fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
}

pub(crate) fn condition(cert: &DynamicObject, type_: &str) -> Option<Value> {
    cert.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

/// Wait until `pred` holds for the Certificate; returns it.
pub(crate) async fn wait_certificate(
    env: &Env,
    cm: &CertManager,
    name: &str,
    secs: u64,
    what: &str,
    pred: impl Fn(&DynamicObject) -> bool,
) -> DynamicObject {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(cert) = certificates(env).get(name).await {
            if pred(&cert) {
                return cert;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "Certificate {name}: {what} not reached in {secs} s: {}\ncert-manager:\n{}\n{}",
                    cert.data["status"],
                    cm.log(),
                    env.logs()
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) fn is_ready(cert: &DynamicObject) -> bool {
    condition(cert, "Ready").is_some_and(|c| c["status"] == "True")
}

/// The Secret cert-manager wrote: (tls.crt, tls.key, ca.crt).
pub(crate) async fn tls_secret(env: &Env, name: &str) -> (String, String, String) {
    let secret = Api::<Secret>::namespaced(env.client.clone(), &env.ns)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("Secret {name}: {e}"));
    let data = secret.data.unwrap_or_default();
    let field = |k: &str| {
        String::from_utf8(
            data.get(k)
                .unwrap_or_else(|| panic!("{name} has {k}"))
                .0
                .clone(),
        )
        .unwrap()
    };
    (field("tls.crt"), field("tls.key"), field("ca.crt"))
}

/// (serial, SubjectPublicKeyInfo DER) of the first certificate of a PEM chain.
fn leaf_identity(chain: &str) -> (Vec<u8>, Vec<u8>) {
    let blocks = pem::parse_many(chain).expect("PEM chain");
    let (_, cert) = x509_parser::parse_x509_certificate(blocks[0].contents()).expect("leaf");
    (cert.raw_serial().to_vec(), cert.public_key().raw.to_vec())
}

/// `block` is the certificate `pem_text` holds.
fn same_cert(block: &pem::Pem, pem_text: &str) -> bool {
    pem::parse(pem_text).is_ok_and(|p| p.contents() == block.contents())
}

/// SubjectPublicKeyInfo DER of a PEM private key (via openssl).
fn key_spki(env: &Env, key_pem: &str) -> Vec<u8> {
    let path = env.dir.path().join("key.pem");
    std::fs::write(&path, key_pem).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&path)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl pkey");
    out.stdout
}

/// The Secret holds a chain from `int` that verifies against `root`, `ca.crt` is the root, and
/// `tls.key` is the leaf's key. Returns the leaf's (serial, SPKI).
async fn assert_secret_chains(env: &Env, name: &str, root: &Ca, int: &Ca) -> (Vec<u8>, Vec<u8>) {
    let (crt, key, ca) = tls_secret(env, name).await;
    assert_eq!(ca, root.pem, "ca.crt of {name} is the trust anchor");
    let blocks = pem::parse_many(&crt).unwrap();
    assert_eq!(blocks.len(), 2, "{name}: leaf + intermediate");
    assert!(
        same_cert(&blocks[1], &int.pem),
        "{name} chains to the expected intermediate"
    );
    for purpose in ["sslserver", "sslclient"] {
        let (ok, out) = env.openssl_verify(&root.pem, &crt, purpose);
        assert!(ok, "{name}: openssl verify -purpose {purpose}: {out}");
    }
    let id = leaf_identity(&crt);
    assert_eq!(
        key_spki(env, &key),
        id.1,
        "{name}: tls.key is the leaf's key"
    );
    id
}

fn requests(env: &Env) -> Api<CertificateRequest> {
    Api::namespaced(env.client.clone(), &env.ns)
}

#[tokio::test]
async fn certificates_for_a_pkiissuer_and_a_pkiclusterissuer_become_secrets() {
    if skipped("cert_manager_certificates_become_secrets") {
        return;
    }
    let env = Env::start("cmsecrets").await;
    let cm = CertManager::start(&env).await;
    grant_approver(&env).await;
    let (root, int) = mesh_issuer(&env).await;
    let (croot, cint) = install_pki(&env, &env.cluster_ns).await;
    let cluster = format!("{}-mesh", env.ns);
    env.create_cluster_issuer(&cluster, issuer_spec()).await;
    env.wait_issuer_ready(&cluster, true, "True").await;

    create_certificate(&env, "web", "PKIIssuer", "mesh", json!({})).await;
    create_certificate(&env, "api", "PKIClusterIssuer", &cluster, json!({})).await;
    for name in ["web", "api"] {
        wait_certificate(&env, &cm, name, 60, "Ready", is_ready).await;
    }
    assert_secret_chains(&env, "web", &root, &int).await;
    assert_secret_chains(&env, "api", &croot, &cint).await;

    // cert-manager created each request (the webhook set its identity), approved it, and
    // pki-issuer signed it.
    let list = requests(&env).list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 2, "one request per Certificate");
    for cr in &list.items {
        assert_eq!(cr.spec.username.as_deref(), Some(CERT_MANAGER_USER));
        let status = cr.status.as_ref().expect("status");
        let approved = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Approved")
            .expect("Approved condition");
        assert_eq!(approved.status, "True");
        assert_eq!(approved.reason.as_deref(), Some("cert-manager.io"));
        assert!(status.certificate.is_some());
    }
    env.delete_cluster_issuer(&cluster).await;
}

#[tokio::test]
async fn renewal_writes_a_new_certificate_into_the_same_secret_and_rotation_always_gives_a_new_key()
{
    if skipped("cert_manager_renewal_and_key_rotation") {
        return;
    }
    let env = Env::start("cmrenew").await;
    let cm = CertManager::start(&env).await;
    grant_approver(&env).await;
    let (root, int) = mesh_issuer(&env).await;
    // One hour with renewal 59m30s before expiry: cert-manager renews about 30 s after issuance
    // (pki-issuer sets notAfter = now + duration).
    let renew = json!({"renewBefore": "59m30s"});
    create_certificate(&env, "keep", "PKIIssuer", "mesh", renew.clone()).await;
    let mut always = renew.clone();
    merge(
        &mut always,
        json!({"privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}}),
    );
    create_certificate(&env, "rotate", "PKIIssuer", "mesh", always).await;
    let mut first = BTreeMap::new();
    for name in ["keep", "rotate"] {
        wait_certificate(&env, &cm, name, 60, "Ready", is_ready).await;
        first.insert(name, assert_secret_chains(&env, name, &root, &int).await);
    }
    for name in ["keep", "rotate"] {
        let (serial, spki) = first[name].clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let renewed = loop {
            let (crt, _, _) = tls_secret(&env, name).await;
            let id = leaf_identity(&crt);
            if id.0 != serial {
                break id;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} was not renewed\n{}",
                cm.log()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        // cert-manager writes the Secret first, then the Certificate's status.
        wait_certificate(&env, &cm, name, 60, "Ready at revision 2+", |c| {
            is_ready(c) && c.data["status"]["revision"].as_i64().unwrap_or(0) >= 2
        })
        .await;
        let id = assert_secret_chains(&env, name, &root, &int).await;
        assert_ne!(id.0, serial, "{name}: a new certificate");
        if name == "keep" {
            assert_eq!(renewed.1, spki, "rotationPolicy Never keeps the key");
        } else {
            assert_ne!(renewed.1, spki, "rotationPolicy Always gives a new key");
        }
    }
}

#[tokio::test]
async fn a_certificate_the_policy_refuses_is_not_ready_and_shows_our_message() {
    if skipped("cert_manager_policy_refusal") {
        return;
    }
    let env = Env::start("cmrefuse").await;
    let cm = CertManager::start(&env).await;
    grant_approver(&env).await;
    mesh_issuer(&env).await;
    // The policy allows only *.<namespace>.svc.
    create_certificate(
        &env,
        "evil",
        "PKIIssuer",
        "mesh",
        json!({"dnsNames": ["evil.kube-system.svc"]}),
    )
    .await;
    let cert = wait_certificate(&env, &cm, "evil", 60, "Issuing=False", |c| {
        condition(c, "Issuing").is_some_and(|i| i["status"] == "False")
    })
    .await;
    assert!(!is_ready(&cert), "refused Certificate is not Ready");
    let list = requests(&env).list(&ListParams::default()).await.unwrap();
    let cr = list.items.first().expect("cert-manager created a request");
    let ready = crate::harness::ready_of(cr);
    assert_eq!(ready.status, "False");
    let ours = ready.message.clone().unwrap_or_default();
    assert!(
        ours.contains("evil.kube-system.svc"),
        "pki-issuer names the refused name: {ours}"
    );
    let issuing = condition(&cert, "Issuing").unwrap();
    let shown = issuing["message"].as_str().unwrap_or_default();
    assert!(
        shown.contains(&ours),
        "the Certificate's Issuing condition carries pki-issuer's message:\n{shown}\nvs\n{ours}"
    );
    // And an Event on the Certificate says so.
    let events = Api::<Event>::namespaced(env.client.clone(), &env.ns)
        .list(
            &ListParams::default()
                .fields("involvedObject.name=evil,involvedObject.kind=Certificate"),
        )
        .await
        .unwrap();
    assert!(
        events
            .items
            .iter()
            .any(|e| e.message.as_deref().is_some_and(|m| m.contains(&ours))),
        "an Event on the Certificate with pki-issuer's message: {:?}",
        events.items.iter().map(|e| &e.message).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn without_the_charts_approver_role_requests_stay_unapproved() {
    if skipped("cert_manager_approver_role") {
        return;
    }
    let env = Env::start("cmapprove").await;
    revoke_approver(&env).await;
    let audit = crate::kube_server::AuditLog::new(env.kube.as_ref().unwrap().server());
    let cm = CertManager::start(&env).await;
    mesh_issuer(&env).await;
    create_certificate(&env, "web", "PKIIssuer", "mesh", json!({})).await;
    // cert-manager creates the request and its approver tries to approve it; the webhook refuses
    // (no `approve` on signers pkiissuers.pki-issuer.io/*), so nothing is signed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let cr = loop {
        let list = requests(&env).list(&ListParams::default()).await.unwrap();
        if let Some(cr) = list.items.into_iter().next() {
            break cr;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no request\n{}",
            cm.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let name = cr.metadata.name.clone().unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let cr = env.request(&name).await;
    let status = cr.status.clone().unwrap_or_default();
    assert!(
        !status
            .conditions
            .iter()
            .any(|c| c.type_ == "Approved" || c.type_ == "Denied"),
        "no approval without the role: {:?}",
        status.conditions
    );
    assert!(status.certificate.is_none(), "nothing signed");
    // It did try: the API server refused its status writes (the webhook's approval check).
    let refused = |e: &Value| {
        e["user"]["username"] == CERT_MANAGER_USER
            && e["responseStatus"]["code"].as_i64().unwrap_or(0) >= 400
    };
    let tries = audit.count("update", "certificaterequests", "status", refused)
        + audit.count("patch", "certificaterequests", "status", refused);
    assert!(
        tries >= 1,
        "cert-manager's approver tried and was refused\n{}",
        cm.log()
    );
    // The chart's role is what lets it approve.
    grant_approver(&env).await;
    wait_certificate(&env, &cm, "web", 120, "Ready", is_ready).await;
}

#[tokio::test]
async fn after_a_signer_rotation_renewed_secrets_chain_to_the_new_intermediate() {
    if skipped("cert_manager_signer_rotation") {
        return;
    }
    let env = Env::start("cmrotate").await;
    let cm = CertManager::start(&env).await;
    grant_approver(&env).await;
    let (root, int) = mesh_issuer(&env).await;
    let renew = json!({"renewBefore": "59m30s"});
    for name in ["a", "b"] {
        create_certificate(&env, name, "PKIIssuer", "mesh", renew.clone()).await;
    }
    for name in ["a", "b"] {
        wait_certificate(&env, &cm, name, 60, "Ready", is_ready).await;
        assert_secret_chains(&env, name, &root, &int).await;
    }
    let next = fixtures::intermediate(&root, "Example Corp Intermediate 2");
    env.put_tls_secret(&env.ns, "intermediate", &next.pem, &next.key_pem)
        .await;
    for name in ["a", "b"] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let (crt, _, _) = tls_secret(&env, name).await;
            let blocks = pem::parse_many(&crt).unwrap();
            if blocks.len() == 2 && same_cert(&blocks[1], &next.pem) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} never chained to the new intermediate\n{}",
                cm.log()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_secret_chains(&env, name, &root, &next).await;
    }
}

#[tokio::test]
async fn two_hundred_certificates_at_once_are_ready_and_each_request_written_once() {
    const N: usize = 200;
    if skipped("cert_manager_200_certificates") {
        return;
    }
    let env = Env::start("cmburst").await;
    let cm = CertManager::start(&env).await;
    grant_approver(&env).await;
    let (root, int) = mesh_issuer(&env).await;
    let log = crate::kube_server::AuditLog::new(env.kube.as_ref().unwrap().server());
    let started = std::time::Instant::now();
    futures::future::join_all((0..N).map(|i| {
        let env = &env;
        async move {
            create_certificate(env, &format!("w{i}"), "PKIIssuer", "mesh", json!({})).await;
        }
    }))
    .await;
    let api = certificates(&env);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let list = api.list(&ListParams::default()).await.unwrap();
        let ready = list.items.iter().filter(|c| is_ready(c)).count();
        if ready == N {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {ready}/{N} Certificates Ready\n{}",
            cm.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let took = started.elapsed();
    crate::harness::visible(&format!(
        "cert_manager: {N} Certificates Ready in {took:.1?} ({:.1}/s)",
        N as f64 / took.as_secs_f64()
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Replay the audit log in order: per request name, pki-issuer's status writes since
    // cert-manager last created a request of that name. Under a burst cert-manager sometimes
    // deletes a request and creates it again (or retries a create its cache has not seen yet:
    // 409); each request that exists must have been written exactly once.
    let mut since_create: BTreeMap<String, u32> = BTreeMap::new();
    let (mut created, mut conflicts, mut deleted, mut writes) = (0, 0, 0, 0);
    for e in log.events() {
        if e["objectRef"]["resource"] != "certificaterequests" {
            continue;
        }
        let name = e["objectRef"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let user = e["user"]["username"].as_str().unwrap_or_default();
        let ok = e["responseStatus"]["code"].as_i64().unwrap_or(0) < 300;
        match (
            user,
            e["verb"].as_str().unwrap_or_default(),
            e["objectRef"]["subresource"].as_str(),
        ) {
            (CERT_MANAGER_USER, "create", None) if ok => {
                created += 1;
                since_create.insert(name, 0);
            }
            (CERT_MANAGER_USER, "create", None) => conflicts += 1,
            (CERT_MANAGER_USER, "delete", None) => deleted += 1,
            (PKI_ISSUER_USER, "patch" | "update", Some("status")) => {
                writes += 1;
                *since_create.entry(name).or_default() += 1;
            }
            _ => {}
        }
    }
    crate::harness::visible(&format!(
        "cert_manager: cert-manager created {created} requests ({conflicts} creates refused, {deleted} deletes), pki-issuer wrote {writes} statuses"
    ));
    let list = requests(&env).list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), N, "one request per Certificate");
    for cr in &list.items {
        let name = cr.metadata.name.clone().unwrap();
        assert_eq!(
            since_create.get(&name).copied(),
            Some(1),
            "pki-issuer wrote request {name} exactly once"
        );
    }
    assert!(writes <= created, "no write without a request");
    let mut certs: Vec<_> = list
        .items
        .iter()
        .map(|cr| cr.status.as_ref().unwrap().certificate.clone().unwrap())
        .collect();
    certs.sort();
    certs.dedup();
    assert_eq!(certs.len(), N, "every certificate is distinct");
    for i in [0, N / 2, N - 1] {
        assert_secret_chains(&env, &format!("w{i}"), &root, &int).await;
    }
    let _ = api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
}
