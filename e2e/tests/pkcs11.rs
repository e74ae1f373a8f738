//! The pkcs11 backend end to end: the real pki-issuer process signs with keys that live only in
//! a real SoftHSM2 token (its own token directory and `SOFTHSM2_CONF` per test), requests play
//! cert-manager's part, and openssl verifies every chain.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::Api;
use pki_issuer::api::cert_manager::CertificateRequest;
use pki_issuer::api::PKIClusterIssuer;
use serde_json::json;

use crate::harness::{external, ready_message, skip, Env};
use crate::softhsm::{SoftHsm, MODULE};
use pki::testutil::{self, Ca, KeyKind};

const PIN: &str = "hsm-user-pin-7";

struct Hsm {
    env: Env,
    hsm: SoftHsm,
    root: Ca,
}

/// A test environment with a SoftHSM2 token `mesh` holding `keys` (pkcs11-tool key type,
/// label, id), an intermediate per key in a Secret named after the key, the PIN Secret and
/// the root ConfigMap in the cluster resource namespace, and one controller allowed to load
/// SoftHSM2 (plus `extra` flags). `None` (skip recorded) against an external cluster.
async fn setup(test: &str, keys: &[(&str, &str, &str)], extra: &[&str]) -> Option<Hsm> {
    if external() {
        skip(
            &format!("pkcs11::{test}"),
            "the external cluster's pki-issuer has no SoftHSM2 token of this test",
        );
        return None;
    }
    let mut env = Env::start_opts(test, false).await;
    let hsm = SoftHsm::new(&env.dir.path().join("hsm"));
    hsm.init_token("mesh", PIN);
    let root = testutil::root(KeyKind::P384, "HSM E2E Root");
    let ns = env.cluster_ns.clone();
    for (key_type, label, id) in keys {
        let spki = hsm.keygen("mesh", PIN, key_type, label, id);
        let int = testutil::ca_for_public_key(&root, &spki, &format!("Mesh {label}"), 0);
        env.put_secret(&ns, label, &[("tls.crt", &int)]).await;
    }
    env.put_secret(&ns, "hsm-pin", &[("pin", PIN)]).await;
    env.put_config_map(&ns, "roots", "ca.crt", &root.pem).await;
    // Also for namespaced issuers of the refusal test.
    env.put_config_map(&env.ns.clone(), "roots", "ca.crt", &root.pem)
        .await;
    let mut args = vec![
        format!("--cluster-resource-namespace={ns}"),
        "--log-format=text".into(),
        "--max-retry-duration=5m".into(),
        format!("--allowed-pkcs11-modules={MODULE}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let kubeconfig = env.kubeconfig.clone();
    let conf = hsm.conf.to_str().unwrap().to_string();
    env.spawn_controller(&kubeconfig, &args, &[("SOFTHSM2_CONF", &conf)])
        .await;
    Some(Hsm { env, hsm, root })
}

fn spec(key_label: &str, cert_secret: &str) -> serde_json::Value {
    json!({
        "pkcs11": {
            "module": MODULE,
            "tokenLabel": "mesh",
            "keyLabel": key_label,
            "pinSecretRef": {"name": "hsm-pin", "key": "pin"},
            "certificateSecretRef": {"name": cert_secret, "key": "tls.crt"},
        },
        "trustAnchors": {"configMap": {"name": "roots", "key": "ca.crt"}},
        "policy": {"dnsNames": ["*.{namespace}.svc"], "maxDuration": "24h"},
        "healthCheckInterval": "30s",
    })
}

/// Request a certificate for `web.<ns>.svc` from cluster issuer `issuer` (approved).
async fn request(env: &Env, name: &str, issuer: &str) {
    env.cluster_request_approved(name, issuer, &[&format!("web.{}.svc", env.ns)], "1h")
        .await;
}

/// Wait up to `secs` for the request's Ready reason.
async fn wait_reason(env: &Env, name: &str, reason: &str, secs: u64) -> CertificateRequest {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let cr = env.request(name).await;
        let now = cr
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.reason.clone());
        if now.as_deref() == Some(reason) {
            return cr;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never reached {reason}: {now:?}\n{}",
            env.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Wait up to `secs` for the cluster issuer's Ready status; returns (reason, message).
async fn wait_issuer(env: &Env, name: &str, status: &str, secs: u64) -> (String, String) {
    let api: Api<PKIClusterIssuer> = Api::all(env.client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let ready = api.get(name).await.ok().and_then(|i| {
            i.status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready")
        });
        if let Some(c) = ready.as_ref().filter(|c| c.status == status) {
            return (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "issuer {name} never Ready={status}: {ready:?}\n{}",
            env.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The issued chain, verified by openssl against the root for both TLS purposes.
fn verified_chain(env: &Env, root: &Ca, cr: &CertificateRequest) -> String {
    let chain = String::from_utf8(cr.status.clone().unwrap().certificate.unwrap()).unwrap();
    for purpose in ["sslserver", "sslclient"] {
        let (ok, out) = env.openssl_verify(&root.pem, &chain, purpose);
        assert!(ok, "openssl verify -purpose {purpose}: {out}");
    }
    chain
}

fn leaf_issuer(chain: &str) -> String {
    let der = pem::parse_many(chain).unwrap()[0].contents().to_vec();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    cert.issuer().to_string()
}

async fn patch_issuer(env: &Env, name: &str, spec: serde_json::Value) {
    let api: Api<PKIClusterIssuer> = Api::all(env.client.clone());
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": spec })),
    )
    .await
    .expect("patch issuer");
}

#[tokio::test]
async fn pkcs11_p256_and_rsa_keys_in_softhsm_issue_verified_certificates_and_rotate() {
    // The next key for the rotation below is provisioned ahead, as HSM administrators do.
    let keys = [
        ("EC:prime256v1", "ec-ca", "01"),
        ("rsa:2048", "rsa-ca", "02"),
        ("EC:prime256v1", "ec-ca-2", "03"),
    ];
    let Some(h) = setup("p11-issue", &keys, &[]).await else {
        return;
    };
    let env = &h.env;
    let ec = format!("{}-ec", env.ns);
    let rsa = format!("{}-rsa", env.ns);
    env.create_cluster_issuer(&ec, spec("ec-ca", "ec-ca")).await;
    env.create_cluster_issuer(&rsa, spec("rsa-ca", "rsa-ca"))
        .await;
    let (_, m) = wait_issuer(env, &ec, "True", 30).await;
    assert!(
        m.contains("CKM_ECDSA over SHA-256") && m.contains("challenge"),
        "{m}"
    );
    let (_, m) = wait_issuer(env, &rsa, "True", 30).await;
    assert!(m.contains("CKM_SHA256_RSA_PKCS"), "{m}");

    for (issuer, cn, sig) in [
        (&ec, "Mesh ec-ca", "ecdsa-with-SHA256"),
        (&rsa, "Mesh rsa-ca", "sha256WithRSAEncryption"),
    ] {
        let name = format!(
            "web-{}",
            &issuer[issuer.len() - 3..].trim_start_matches('-')
        );
        request(env, &name, issuer).await;
        let cr = wait_reason(env, &name, "Issued", 30).await;
        let chain = verified_chain(env, &h.root, &cr);
        assert!(leaf_issuer(&chain).contains(cn), "{}", leaf_issuer(&chain));
        let dir = env.dir.path().join(format!("{name}.pem"));
        std::fs::write(&dir, &chain).unwrap();
        let text = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains(&format!("Signature Algorithm: {sig}")),
            "{text}"
        );
    }
    // The keys never left the token: sensitive, never extractable, as the token reports them.
    let listing = h.hsm.list_objects("mesh", PIN);
    for private in listing.split("Private Key Object").skip(1) {
        let access = private
            .lines()
            .find(|l| l.trim_start().starts_with("Access:"))
            .unwrap();
        assert!(
            access.contains("sensitive") && access.contains("never extractable"),
            "{access}"
        );
        assert!(
            !access
                .replace("never extractable", "")
                .contains("extractable"),
            "{access}"
        );
    }

    // Rotation to the next key in the token. Its label alone (the old certificate) is refused:
    // the token's key does not match the signer certificate.
    patch_issuer(env, &ec, spec("ec-ca-2", "ec-ca")).await;
    let (_, m) = wait_issuer(env, &ec, "False", 30).await;
    assert!(m.contains("does not match the signer certificate"), "{m}");
    patch_issuer(env, &ec, spec("ec-ca-2", "ec-ca-2")).await;
    wait_issuer(env, &ec, "True", 30).await;
    request(env, "web-rotated", &ec).await;
    let cr = wait_reason(env, "web-rotated", "Issued", 30).await;
    let chain = verified_chain(env, &h.root, &cr);
    assert!(
        leaf_issuer(&chain).contains("Mesh ec-ca-2"),
        "{}",
        leaf_issuer(&chain)
    );
    env.delete_cluster_issuer(&ec).await;
    env.delete_cluster_issuer(&rsa).await;
}

#[tokio::test]
async fn pkcs11_wrong_pin_and_modules_outside_the_allowlist_are_refused() {
    let Some(h) = setup("p11-refuse", &[("EC:prime256v1", "ec-ca", "01")], &[]).await else {
        return;
    };
    let env = &h.env;
    let name = format!("{}-pin", env.ns);
    env.put_secret(&env.cluster_ns, "hsm-pin", &[("pin", "not-the-pin-931")])
        .await;
    env.create_cluster_issuer(&name, spec("ec-ca", "ec-ca"))
        .await;
    let (reason, m) = wait_issuer(env, &name, "False", 30).await;
    assert_eq!(reason, "Failed", "{m}");
    assert!(m.contains("refused the PIN"), "{m}");
    assert!(!m.contains("not-the-pin-931"), "{m}");
    // The right PIN in the Secret: re-checked at once (the Secret is a reference).
    env.put_secret(&env.cluster_ns, "hsm-pin", &[("pin", PIN)])
        .await;
    wait_issuer(env, &name, "True", 30).await;
    request(env, "after-pin", &name).await;
    verified_chain(
        env,
        &h.root,
        &wait_reason(env, "after-pin", "Issued", 30).await,
    );

    // A module outside the allowlist: refused, never loaded.
    let evil_dir = env.dir.path().join("modules");
    std::fs::create_dir_all(&evil_dir).unwrap();
    let evil = evil_dir.join("libevil.so");
    std::fs::copy(MODULE, &evil).unwrap();
    let mut s = spec("ec-ca", "ec-ca");
    s["pkcs11"]["module"] = json!(evil.to_str().unwrap());
    let other = format!("{}-evil", env.ns);
    env.create_cluster_issuer(&other, s).await;
    let (_, m) = wait_issuer(env, &other, "False", 30).await;
    assert!(m.contains("is not in --allowed-pkcs11-modules"), "{m}");
    // A namespaced PKIIssuer without the operator's opt-in.
    env.put_secret(&env.ns.clone(), "hsm-pin", &[("pin", PIN)])
        .await;
    env.put_secret(&env.ns.clone(), "ec-ca", &[("tls.crt", "x")])
        .await;
    env.create_issuer("tenant", spec("ec-ca", "ec-ca")).await;
    let (_, m) = env.wait_issuer_ready("tenant", false, "False").await;
    assert!(m.contains("--allow-namespaced-pkcs11"), "{m}");
    let logs = env.logs();
    for secret in ["not-the-pin-931", PIN] {
        assert!(!logs.contains(secret), "the PIN is in the log");
    }
    // The controller never mapped the refused library.
    let pid = env.controller_pid(0).expect("the controller runs");
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(
        !maps.contains("libevil.so"),
        "the refused module was loaded"
    );
    assert!(maps.contains("libsofthsm2.so"));
    env.delete_cluster_issuer(&name).await;
    env.delete_cluster_issuer(&other).await;
}

#[tokio::test]
async fn pkcs11_token_removed_mid_run_requests_wait_pending_then_issue() {
    let Some(h) = setup("p11-removed", &[("EC:prime256v1", "ec-ca", "01")], &[]).await else {
        return;
    };
    let env = &h.env;
    let name = format!("{}-ec", env.ns);
    env.create_cluster_issuer(&name, spec("ec-ca", "ec-ca"))
        .await;
    wait_issuer(env, &name, "True", 30).await;
    request(env, "before", &name).await;
    verified_chain(
        env,
        &h.root,
        &wait_reason(env, "before", "Issued", 30).await,
    );

    // The token goes away (a pulled HSM, a lost partition): out of the token directory.
    let tokens = h.hsm.dir.join("tokens");
    let token_dir = std::fs::read_dir(&tokens)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let away = h.hsm.dir.join("token-away");
    std::fs::rename(&token_dir, &away).unwrap();
    request(env, "during", &name).await;
    let cr = wait_reason(env, "during", "Pending", 30).await;
    let m = ready_message(&cr);
    assert!(m.contains("is not ready"), "{m}");
    let (reason, m) = wait_issuer(env, &name, "False", 40).await;
    assert_eq!(reason, "Pending", "{m}");
    assert!(m.contains("no PKCS#11 token labelled \"mesh\""), "{m}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        wait_reason(env, "during", "Pending", 1)
            .await
            .status
            .unwrap()
            .certificate,
        None
    );

    // It comes back: the issuer is Ready again and the waiting request is issued.
    std::fs::rename(&away, &token_dir).unwrap();
    wait_issuer(env, &name, "True", 60).await;
    let cr = wait_reason(env, "during", "Issued", 60).await;
    verified_chain(env, &h.root, &cr);
    env.delete_cluster_issuer(&name).await;
}
