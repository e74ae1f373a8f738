//! Security round 3, remote CAs: encoded paths cannot escape the URL allowlist (class 3);
//! URL credentials and a cluster issuer's remote details never reach tenants (class 6);
//! backdated lifetimes (class 5), unconfigured CRL/AIA URLs, SCT lists and extra chain
//! certificates from a CA are never written (hardening); names and Vault paths that could
//! climb in a request path fail the issuer check (hardening).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{ListParams, PostParams};
use kube::Api;
use pki_issuer::api::{PKIClusterIssuer, PKIIssuer};
use serde_json::json;

use crate::fake_ca::{FakeCa, Mode, INTERNAL_DETAIL};
use crate::fixtures;
use crate::harness::{ready_message, Env};

fn cfssl_spec(url: &str) -> serde_json::Value {
    json!({
        "cfssl": {"url": url, "profile": "workload", "timeout": "5s"},
        "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}},
        "policy": {"maxDuration": "48h", "dnsNames": ["*.{namespace}.svc"]},
    })
}

/// The Ready condition of a PKIIssuer (or PKIClusterIssuer) once it has `status`, with the
/// reason in `reasons`: (reason, message).
async fn wait_issuer(env: &Env, name: &str, cluster: bool, reasons: &[&str]) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (reason, msg) = env.wait_issuer_ready(name, cluster, "False").await;
        if reasons.contains(&reason.as_str()) {
            return (reason, msg);
        }
        assert!(
            Instant::now() < deadline,
            "{name}: reason {reason} ({msg}), wanted {reasons:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Poll request `name` until its Ready message satisfies `ok`; returns the message.
async fn wait_message(env: &Env, name: &str, ok: impl Fn(&str, &str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let cr = env.request(name).await;
        let ready = cr
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
        if let Some(c) = ready {
            let (reason, msg) = (c.reason.clone().unwrap_or_default(), ready_message(&cr));
            if ok(&reason, &msg) {
                return msg;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {reason}: {msg}\n{}",
                env.logs()
            );
        }
        assert!(Instant::now() < deadline, "{name}: no Ready condition");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every Event message about `object` in the test namespace.
async fn event_messages(env: &Env, object: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &env.ns);
    let list = events.list(&ListParams::default()).await.unwrap();
    list.items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(object))
        .map(|e| e.note.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn encoded_slashes_backslashes_and_dots_never_escape_an_allowed_path() {
    let mut env = Env::start_opts("allow-escape", false).await;
    let root = fixtures::root("Corp Root CA");
    let int = Arc::new(fixtures::intermediate(&root, "Corp CFSSL Intermediate"));
    let ca = FakeCa::start(int, Mode::Honest).await;
    let base = ca.url();
    env.start_controller_allowing(&[&format!("{base}/team-a")])
        .await;
    env.put_config_map(&env.ns, "roots", "roots.pem", &root.pem)
        .await;
    env.create_issuer("team-a", cfssl_spec(&format!("{base}/team-a")))
        .await;
    let escapes = [
        "..%2fteam-b",
        "..%2Fteam-b",
        "%2e%2e/team-b",
        "%2E%2E%2Fteam-b",
        ".%2e/team-b",
        "..%5cteam-b",
        "..%252fteam-b",
        "%252e%252e/team-b",
        "..;/team-b",
    ];
    for (i, tail) in escapes.iter().enumerate() {
        env.create_issuer(
            &format!("escape-{i}"),
            cfssl_spec(&format!("{base}/team-a/{tail}")),
        )
        .await;
    }
    let (reason, msg) = env.wait_issuer_ready("team-a", false, "True").await;
    assert_eq!(reason, "Checked", "the allowed prefix itself works: {msg}");
    for (i, tail) in escapes.iter().enumerate() {
        let (_, msg) = wait_issuer(&env, &format!("escape-{i}"), false, &["Failed"]).await;
        assert!(
            msg.contains("refused") && msg.contains("not allowed"),
            "{tail}: {msg}"
        );
    }
}

#[tokio::test]
async fn url_credentials_and_cluster_issuer_details_never_reach_tenants() {
    let mut env = Env::start_opts("remote-detail", false).await;
    let root = fixtures::root("Corp Root CA");
    let int = Arc::new(fixtures::intermediate(&root, "Corp CFSSL Intermediate"));
    let erring = FakeCa::start(int.clone(), Mode::ErrorText).await;
    let decorating = FakeCa::start(int, Mode::ExtraAia).await;
    env.start_controller(&[]).await;
    env.put_config_map(&env.cluster_ns, "roots", "roots.pem", &root.pem)
        .await;
    env.put_config_map(&env.ns, "roots", "roots.pem", &root.pem)
        .await;
    let password = format!("pw-{}-s3cr3t", env.ns);
    crate::leak_scan::register("password in a remote CA URL", &password);

    // 1. User information in a URL: refused at admission (CRD pattern) or by the issuer
    // check, never repeated.
    let port = erring.addr.port();
    for (i, url) in [
        format!("http://admin:{password}@127.0.0.1:{port}"),
        format!("http://{password}@127.0.0.1:{port}/cfssl"),
        format!("http://:{password}@127.0.0.1:{port}"),
    ]
    .iter()
    .enumerate()
    {
        let cluster = format!("{}-cred-{i}", env.ns);
        let obj = json!({"apiVersion": "pki-issuer.io/v1alpha1", "kind": "PKIClusterIssuer",
                         "metadata": {"name": cluster}, "spec": cfssl_spec(url)});
        let api: Api<PKIClusterIssuer> = Api::all(env.client.clone());
        let created = api
            .create(
                &PostParams::default(),
                &serde_json::from_value(obj).unwrap(),
            )
            .await;
        if let Err(e) = created {
            assert!(
                e.to_string().contains("url"),
                "refused at admission, naming the field: {e}"
            );
            crate::harness::visible(&format!(
                "credentials case {i}: refused at admission by the CRD pattern"
            ));
            continue;
        }
        let (_, msg) = wait_issuer(&env, &cluster, true, &["Failed"]).await;
        assert!(
            msg.contains("user information") && !msg.contains(&password),
            "{msg}"
        );
        env.delete_cluster_issuer(&cluster).await;
    }
    let ns_obj = json!({"apiVersion": "pki-issuer.io/v1alpha1", "kind": "PKIIssuer",
        "metadata": {"name": "cred"},
        "spec": cfssl_spec(&format!("http://admin:{password}@127.0.0.1:{port}"))});
    let ns_api: Api<PKIIssuer> = Api::namespaced(env.client.clone(), &env.ns);
    if ns_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(ns_obj).unwrap(),
        )
        .await
        .is_ok()
    {
        let (_, msg) = wait_issuer(&env, "cred", false, &["Failed"]).await;
        assert!(!msg.contains(&password), "{msg}");
    }

    // 2. A cluster issuer whose CA is unreachable at an internal URL, one whose CA answers
    // with internal details, and one whose CA adds an OCSP URL: tenants see the issuer and
    // what happened only.
    let down = format!("{}-down", env.ns);
    let erring_name = format!("{}-erring", env.ns);
    let decorating_name = format!("{}-decorating", env.ns);
    env.create_cluster_issuer(&decorating_name, cfssl_spec(&decorating.url()))
        .await;
    env.create_cluster_issuer(&down, cfssl_spec("http://127.0.0.1:1/internal-admin"))
        .await;
    env.create_cluster_issuer(&erring_name, cfssl_spec(&erring.url()))
        .await;
    let (_, admin_view) = wait_issuer(&env, &down, true, &["Pending"]).await;
    assert!(
        admin_view.contains("internal-admin"),
        "the issuer's own status keeps the detail for administrators: {admin_view}"
    );
    env.wait_issuer_ready(&erring_name, true, "True").await;
    env.wait_issuer_ready(&decorating_name, true, "True").await;
    let requests = [
        ("to-down", &down, "Pending"),
        ("to-erring", &erring_name, "Failed"),
        ("to-decorating", &decorating_name, "Failed"),
    ];
    for (name, issuer, _) in &requests {
        env.cluster_request_approved(name, issuer, &[&format!("{name}.{}.svc", env.ns)], "1h")
            .await;
    }
    for (name, issuer, reason) in requests {
        let msg = wait_message(&env, name, |r, m| {
            r == reason && (reason != "Pending" || m.contains("reason Pending"))
        })
        .await;
        assert!(msg.contains(issuer.as_str()), "names the issuer: {msg}");
        for secret in [
            "127.0.0.1",
            "internal-admin",
            INTERNAL_DETAIL,
            "password=",
            "attacker.example",
        ] {
            assert!(
                !msg.contains(secret),
                "{name}: {secret:?} reached the tenant: {msg}"
            );
            for note in event_messages(&env, name).await {
                assert!(!note.contains(secret), "{name}: Event {note:?}");
            }
        }
    }
    env.delete_cluster_issuer(&down).await;
    env.delete_cluster_issuer(&erring_name).await;
    env.delete_cluster_issuer(&decorating_name).await;
}

#[tokio::test]
async fn backdated_and_decorated_remote_certificates_are_never_written() {
    let mut env = Env::start_opts("remote-validity", false).await;
    let root = fixtures::root("Corp Root CA");
    let int = Arc::new(fixtures::intermediate(&root, "Corp CFSSL Intermediate"));
    let cases = [
        (Mode::Backdated, "notbefore"),
        (Mode::EarlyNotBefore, "notbefore"),
        (Mode::LongPast, "notbefore"),
        (Mode::ExtraAia, "ocsp url"),
        (Mode::ExtraCrlDp, "crl distribution point url"),
        (Mode::Sct, "signedcertificatetimestamplist"),
    ];
    let extra = FakeCa::start(int.clone(), Mode::InfoExtraCerts).await;
    let mut cas = Vec::new();
    for (mode, _) in &cases {
        cas.push(FakeCa::start(int.clone(), *mode).await);
    }
    let mut urls: Vec<String> = cas.iter().map(FakeCa::url).collect();
    urls.push(extra.url());
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    env.start_controller_allowing(&refs).await;
    env.put_config_map(&env.ns, "roots", "roots.pem", &root.pem)
        .await;
    env.create_issuer("extra-chain", cfssl_spec(&extra.url()))
        .await;
    for (i, ca) in cas.iter().enumerate() {
        env.create_issuer(&format!("bad-{i}"), cfssl_spec(&ca.url()))
            .await;
    }
    env.wait_issuer_ready("extra-chain", false, "True").await;
    env.request_approved(
        "extra-chain",
        "extra-chain",
        &[&format!("x.{}.svc", env.ns)],
        "1h",
    )
    .await;
    for i in 0..cases.len() {
        env.wait_issuer_ready(&format!("bad-{i}"), false, "True")
            .await;
        env.request_approved(
            &format!("req-{i}"),
            &format!("bad-{i}"),
            &[&format!("r{i}.{}.svc", env.ns)],
            "1h",
        )
        .await;
    }
    let cr = env.wait_request_reason("extra-chain", "Issued").await;
    let chain = String::from_utf8(cr.status.unwrap().certificate.unwrap()).unwrap();
    let blocks = pem::parse_many(&chain).unwrap();
    assert_eq!(
        blocks.len(),
        2,
        "leaf + the validated intermediate only, not the extra CA from info"
    );
    let mut failures = Vec::new();
    for (i, (mode, word)) in cases.iter().enumerate() {
        let cr = env.wait_request_reason(&format!("req-{i}"), "Failed").await;
        let msg = ready_message(&cr);
        if !msg.contains("failed verification and was not written")
            || !msg.to_lowercase().contains(word)
        {
            failures.push(format!("{mode:?}: {msg}"));
        }
        assert!(
            cr.status.as_ref().unwrap().certificate.is_none(),
            "{mode:?}: written"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn names_and_vault_paths_that_could_climb_fail_the_issuer_check() {
    let mut env = Env::start_opts("climbing-names", false).await;
    let root = fixtures::root("Corp Root CA");
    let int = fixtures::intermediate(&root, "Corp Intermediate");
    env.start_controller_allowing(&["http://127.0.0.1:1"]).await;
    env.put_config_map(&env.ns, "roots", "roots.pem", &root.pem)
        .await;
    env.put_tls_secret(&env.ns, "int", &int.pem, &int.key_pem)
        .await;
    let secret_names = [
        "../kube-system/secrets/x",
        "int/../int",
        "int%2f..%2fx",
        "int?watch=true",
        "INT",
    ];
    for (i, name) in secret_names.iter().enumerate() {
        env.create_issuer(
            &format!("secret-{i}"),
            json!({"secret": {"name": name},
                   "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}}}),
        )
        .await;
    }
    env.create_issuer(
        "anchors",
        json!({"secret": {"name": "int"},
               "trustAnchors": {"configMap": {"name": "../roots", "key": "roots.pem"}}}),
    )
    .await;
    let vault = |auth: serde_json::Value| {
        json!({"vault": {"server": "http://127.0.0.1:1", "path": "pki/sign/web", "auth": auth},
               "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}}})
    };
    let secret_ref = json!({"name": "approle", "key": "id"});
    let vault_cases = [
        (
            "approle-up",
            vault(
                json!({"appRole": {"path": "../../sys/raw", "roleId": "r", "secretRef": secret_ref}}),
            ),
            "appRole.path",
        ),
        (
            "approle-mid",
            vault(
                json!({"appRole": {"path": "approle/../../sys/mounts", "roleId": "r", "secretRef": secret_ref}}),
            ),
            "appRole.path",
        ),
        (
            "mount-up",
            vault(
                json!({"kubernetes": {"mountPath": "/v1/auth/../../sys/raw", "role": "r",
                                        "serviceAccountRef": {"name": "vault"}}}),
            ),
            "mountPath",
        ),
        (
            "mount-dot",
            vault(
                json!({"kubernetes": {"mountPath": "/v1/auth/./kubernetes", "role": "r",
                                        "serviceAccountRef": {"name": "vault"}}}),
            ),
            "mountPath",
        ),
        (
            "sa-name",
            vault(json!({"kubernetes": {"role": "r",
                                        "serviceAccountRef": {"name": "../../secrets/x"}}})),
            "ServiceAccount",
        ),
    ];
    for (name, spec, _) in &vault_cases {
        env.create_issuer(name, spec.clone()).await;
    }
    for (i, name) in secret_names.iter().enumerate() {
        let (_, msg) = wait_issuer(&env, &format!("secret-{i}"), false, &["Failed"]).await;
        assert!(
            msg.contains("not a valid Kubernetes object name"),
            "{name}: {msg}"
        );
    }
    let (_, msg) = wait_issuer(&env, "anchors", false, &["Failed"]).await;
    assert!(msg.contains("not a valid Kubernetes object name"), "{msg}");
    for (name, _, field) in &vault_cases {
        let (_, msg) = wait_issuer(&env, name, false, &["Failed"]).await;
        assert!(msg.contains(field), "{name}: {msg}");
    }
}
