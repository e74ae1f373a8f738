//! The `cfssl` signer against real `cfssl serve` processes (Debian's golang-cfssl).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::fixtures::{self, Ca};
use crate::harness::{ready_message, Env};

const AUTH_KEY_HEX: &str = "0123456789abcdef0123456789abcdef";
const WRONG_AUTH_KEY_HEX: &str = "ffffffffffffffffffffffffffffffff";
use crate::harness::MTLS_USAGES as USAGES;

/// A running `cfssl serve` with an intermediate issued by `root`.
pub(crate) struct CfsslCa {
    dir: PathBuf,
    port: u16,
    child: Option<tokio::process::Child>,
    pub(crate) root: Ca,
    pub(crate) int: Ca,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl CfsslCa {
    pub(crate) async fn start(env: &Env) -> CfsslCa {
        crate::leak_scan::register("CFSSL auth key", AUTH_KEY_HEX);
        crate::leak_scan::register("CFSSL wrong auth key", WRONG_AUTH_KEY_HEX);
        let root = fixtures::root("Corp Root CA");
        let int = fixtures::intermediate(&root, "Corp CFSSL Intermediate");
        let dir = env.dir.path().join(format!("cfssl-{}", free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), &int.pem).unwrap();
        std::fs::write(dir.join("ca-key.pem"), &int.key_pem).unwrap();
        let profile = json!({"expiry": "24h", "usages": USAGES});
        // Exactly the usages of a pod certificate (PodCertificateRequests ask for no others),
        // backdated 1m: CFSSL's default (5m before the rounded minute) can put notBefore more
        // than the 5 minutes in the past the API server allows a PodCertificateRequest.
        let pods = json!({"expiry": "24h", "backdate": "1m",
                          "usages": ["digital signature", "server auth", "client auth"]});
        let mut authed = profile.clone();
        authed["auth_key"] = json!("primary");
        let config = json!({
            "signing": {
                "default": {"expiry": "8760h", "usages": USAGES},
                "profiles": {"workload": profile, "authed": authed, "pods": pods},
            },
            "auth_keys": {"primary": {"type": "standard", "key": AUTH_KEY_HEX}},
        });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let mut ca = CfsslCa {
            dir,
            port: free_port(),
            child: None,
            root,
            int,
        };
        ca.resume().await;
        ca
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)start the process on the same port and wait until it answers.
    pub(crate) async fn resume(&mut self) {
        let log = std::fs::File::create(self.dir.join("serve.log")).unwrap();
        let child = tokio::process::Command::new("cfssl")
            .args([
                "serve",
                "-address",
                "127.0.0.1",
                "-port",
                &self.port.to_string(),
            ])
            .arg("-ca")
            .arg(self.dir.join("ca.pem"))
            .arg("-ca-key")
            .arg(self.dir.join("ca-key.pem"))
            .arg("-config")
            .arg(self.dir.join("config.json"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("cfssl not found: install the Debian package golang-cfssl (make test-deps)");
        self.child = Some(child);
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "cfssl serve did not start: {}",
            std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
        );
    }

    pub(crate) async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}

/// Install the CA material and a cfssl-backed PKIIssuer named `name`.
pub(crate) async fn cfssl_issuer(
    env: &Env,
    name: &str,
    cfssl: serde_json::Value,
    anchors_pem: &str,
) {
    env.put_config_map(&env.ns, &format!("{name}-roots"), "roots.pem", anchors_pem)
        .await;
    env.put_secret(&env.ns, "cfssl-auth", &[("key", AUTH_KEY_HEX)])
        .await;
    env.create_issuer(
        name,
        json!({
            "cfssl": cfssl,
            "trustAnchors": {"configMap": {"name": format!("{name}-roots"), "key": "roots.pem"}},
            "policy": {
                "maxDuration": "48h",
                "dnsNames": ["*.{namespace}.svc"],
                "ipRanges": ["127.0.0.0/8"],
                "uris": ["spiffe://cluster.local/ns/{namespace}/sa/*"],
            },
            "healthCheckInterval": "30s",
        }),
    )
    .await;
}

async fn request(env: &Env, name: &str, issuer: &str, sans: &[&str]) {
    env.request_approved(name, issuer, sans, "1h").await;
}

#[tokio::test]
async fn cfssl_sign_and_authsign_issue_verifiable_chains() {
    let mut env = Env::start_opts("cfssl-ok", false).await;
    let ca = CfsslCa::start(&env).await;
    env.start_controller_allowing(&[&ca.url()]).await;
    cfssl_issuer(
        &env,
        "open",
        json!({"url": ca.url(), "profile": "workload", "timeout": "5s"}),
        &ca.root.pem,
    )
    .await;
    cfssl_issuer(&env,
        "authed",
        json!({"url": ca.url(), "profile": "authed", "authKey": {"name": "cfssl-auth", "key": "key"}, "timeout": "5s"}),
        &ca.root.pem,
    )
    .await;
    let (reason, msg) = env.wait_issuer_ready("open", false, "True").await;
    assert_eq!(reason, "Checked", "{msg}");
    env.wait_issuer_ready("authed", false, "True").await;
    let dns = format!("api.{}.svc", env.ns);
    for issuer in ["open", "authed"] {
        let name = format!("via-{issuer}");
        request(&env, &name, issuer, &[&dns, "127.0.0.1"]).await;
        let cr = env.wait_request_reason(&name, "Issued").await;
        assert!(
            ready_message(&cr).contains("as the CA's profile decided"),
            "{}",
            ready_message(&cr)
        );
        let st = cr.status.unwrap();
        let chain = String::from_utf8(st.certificate.unwrap()).unwrap();
        assert!(
            chain.contains(ca.int.pem.trim()),
            "the chain carries the CFSSL signer"
        );
        assert_eq!(String::from_utf8(st.ca.unwrap()).unwrap(), ca.root.pem);
        for purpose in ["sslserver", "sslclient"] {
            let (ok, out) = env.openssl_verify(&ca.root.pem, &chain, purpose);
            assert!(ok, "{issuer} {purpose}: {out}");
        }
    }
}

#[tokio::test]
async fn cfssl_wrong_auth_key_fails_with_the_cas_message() {
    let mut env = Env::start_opts("cfssl-auth", false).await;
    let ca = CfsslCa::start(&env).await;
    env.start_controller_allowing(&[&ca.url()]).await;
    cfssl_issuer(&env,
        "authed",
        json!({"url": ca.url(), "profile": "authed", "authKey": {"name": "cfssl-wrong", "key": "key"}}),
        &ca.root.pem,
    )
    .await;
    env.put_secret(&env.ns, "cfssl-wrong", &[("key", WRONG_AUTH_KEY_HEX)])
        .await;
    env.wait_issuer_ready("authed", false, "True").await;
    request(
        &env,
        "denied-by-ca",
        "authed",
        &[&format!("a.{}.svc", env.ns)],
    )
    .await;
    let cr = env.wait_request_reason("denied-by-ca", "Failed").await;
    let msg = ready_message(&cr);
    assert!(
        msg.contains("the CA refused the request") && msg.contains("HTTP 400"),
        "{msg}"
    );
    assert!(
        !msg.contains("ffffffff"),
        "the auth key must never appear in a status: {msg}"
    );
    assert!(cr.status.unwrap().certificate.is_none());
}

#[tokio::test]
async fn cfssl_down_then_back_is_pending_then_issued() {
    let mut env = Env::start_opts("cfssl-down", false).await;
    let mut ca = CfsslCa::start(&env).await;
    env.start_controller_allowing(&[&ca.url()]).await;
    cfssl_issuer(
        &env,
        "open",
        json!({"url": ca.url(), "profile": "workload", "timeout": "2s"}),
        &ca.root.pem,
    )
    .await;
    env.wait_issuer_ready("open", false, "True").await;
    ca.stop().await;
    request(&env, "waits", "open", &[&format!("w.{}.svc", env.ns)]).await;
    let cr = env.wait_request_reason("waits", "Pending").await;
    let msg = ready_message(&cr);
    assert!(
        msg.contains("will retry") || msg.contains("not ready"),
        "{msg}"
    );
    ca.resume().await;
    let cr = env.wait_request_reason("waits", "Issued").await;
    assert!(cr.status.unwrap().certificate.is_some());
}

/// A TCP proxy that holds back the next `delay_next` client writes by `delay`.
async fn slow_proxy(target: u16, delay: Duration, delay_next: Arc<AtomicU32>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let delay_next = delay_next.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                    return;
                };
                let (mut ri, mut wi) = inbound.split();
                let (mut ro, mut wo) = outbound.split();
                let up = async {
                    let mut buf = vec![0u8; 16384];
                    loop {
                        let n = match ri.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if delay_next
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| d.checked_sub(1))
                            .is_ok()
                        {
                            tokio::time::sleep(delay).await;
                        }
                        if wo.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = wo.shutdown().await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut ro, &mut wi).await;
                    let _ = wi.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    addr
}

#[tokio::test]
async fn cfssl_slow_ca_is_retried_without_duplicate_writes() {
    let mut env = Env::start_opts("cfssl-slow", false).await;
    let ca = CfsslCa::start(&env).await;
    let delay_next = Arc::new(AtomicU32::new(0));
    let proxy = slow_proxy(ca.port, Duration::from_secs(3), delay_next.clone()).await;
    env.start_controller_allowing(&[&format!("http://{proxy}")])
        .await;
    cfssl_issuer(
        &env,
        "slow",
        json!({"url": format!("http://{proxy}"), "profile": "workload", "timeout": "1s"}),
        &ca.root.pem,
    )
    .await;
    env.wait_issuer_ready("slow", false, "True").await;
    let mut counters = env.request_counter();
    counters.reset();
    delay_next.store(1, Ordering::SeqCst);
    request(&env, "slow", "slow", &[&format!("s.{}.svc", env.ns)]).await;
    env.wait_request_reason("slow", "Issued").await;
    assert_eq!(
        delay_next.load(Ordering::SeqCst),
        0,
        "the first attempt was held back"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let writes = counters.count("patch", "certificaterequests", "status");
    assert_eq!(writes, 1, "one status write despite the timed-out attempt");
}

#[tokio::test]
async fn cfssl_dropping_the_spiffe_uri_fails_the_request() {
    let mut env = Env::start_opts("cfssl-uri", false).await;
    let ca = CfsslCa::start(&env).await;
    env.start_controller_allowing(&[&ca.url()]).await;
    cfssl_issuer(
        &env,
        "open",
        json!({"url": ca.url(), "profile": "workload"}),
        &ca.root.pem,
    )
    .await;
    env.wait_issuer_ready("open", false, "True").await;
    let spiffe = format!("spiffe://cluster.local/ns/{}/sa/web", env.ns);
    request(
        &env,
        "spiffe",
        "open",
        &[&format!("web.{}.svc", env.ns), &spiffe],
    )
    .await;
    let cr = env.wait_request_reason("spiffe", "Failed").await;
    let msg = ready_message(&cr);
    assert!(
        msg.contains(&format!("missing URI SAN \"{spiffe}\"")),
        "{msg}"
    );
    assert!(
        cr.status.unwrap().certificate.is_none(),
        "a wrong certificate is never written"
    );
}

#[tokio::test]
async fn cfssl_issuer_health_reports_clear_reasons() {
    let mut env = Env::start_opts("cfssl-health", false).await;
    let ca = CfsslCa::start(&env).await;
    let down = format!("http://127.0.0.1:{}", free_port());
    env.start_controller_allowing(&[&ca.url(), &down]).await;
    cfssl_issuer(
        &env,
        "typo",
        json!({"url": ca.url(), "profile": "wrokload"}),
        &ca.root.pem,
    )
    .await;
    cfssl_issuer(
        &env,
        "down",
        json!({"url": down, "profile": "workload", "timeout": "1s"}),
        &ca.root.pem,
    )
    .await;
    let other = fixtures::root("Unrelated Root");
    cfssl_issuer(
        &env,
        "foreign",
        json!({"url": ca.url(), "profile": "workload"}),
        &other.pem,
    )
    .await;

    let (reason, msg) = env.wait_issuer_ready("typo", false, "False").await;
    assert_eq!(reason, "Failed");
    assert!(
        msg.contains("\"wrokload\"") && msg.contains("8760h"),
        "{msg}"
    );
    let (reason, msg) = env.wait_issuer_ready("down", false, "False").await;
    assert_eq!(reason, "Pending", "an unreachable CA is retried: {msg}");
    assert!(msg.contains("CFSSL info"), "{msg}");
    let (reason, msg) = env.wait_issuer_ready("foreign", false, "False").await;
    assert_eq!(reason, "Failed");
    assert!(msg.to_lowercase().contains("trust anchor"), "{msg}");
}
