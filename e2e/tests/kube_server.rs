//! Real Kubernetes control planes (etcd, kube-apiserver, kube-controller-manager; see
//! e2e/scripts/control-plane.sh) for the suite's `E2E_APISERVER=kube` mode. The pool starts
//! them `--bare`: without cert-manager, whose approver and webhook would act on the requests the
//! suite writes itself; the `cert_manager` tests start it on their lease.
//!
//! Every test runs one pki-issuer process of its own, and a pki-issuer watches requests and
//! cluster issuers in every namespace, as in a real cluster. Two tests on one server at the same
//! time would reconcile each other's objects, so a test holds a server exclusively for its whole
//! run: a small pool (one server per test thread, started on first use) is handed from test to
//! test, and each hand-over deletes what the previous test left that a controller would act on.
//! The start-up cost (a few seconds) is paid once per pool slot, not once per test.
//!
//! `E2E_KUBE_DIR=DIR[,DIR...]` gives the suite servers already started with
//! `e2e/scripts/control-plane.sh up DIR --bare` (the suite then never stops them). Otherwise the
//! suite starts servers under the temp dir, and a watchdog process stops each one (`down`)
//! when the test process exits.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use kube::api::{DeleteParams, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use kube::Api;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The helper script that builds, starts and stops real servers.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/scripts/control-plane.sh")
}

/// One real server: a state directory written by `control-plane.sh up`.
#[derive(Debug, Clone)]
pub struct Server {
    /// The state directory (pids, ports, logs, etcd data).
    pub dir: PathBuf,
}

impl Server {
    /// The admin kubeconfig written by `up`.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }
}

struct Pool {
    free: Mutex<Vec<Server>>,
    slots: Arc<Semaphore>,
    /// Servers given by `E2E_KUBE_DIR`; none are started then.
    given: bool,
    started: Mutex<usize>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let given: Vec<Server> = std::env::var("E2E_KUBE_DIR")
            .ok()
            .map(|dirs| {
                dirs.split(',')
                    .filter(|d| !d.is_empty())
                    .map(|d| Server { dir: d.into() })
                    .collect()
            })
            .unwrap_or_default();
        let size = if given.is_empty() {
            std::env::var("E2E_KUBE_SERVERS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(test_threads)
                .max(1)
        } else {
            given.len()
        };
        Pool {
            given: !given.is_empty(),
            free: Mutex::new(given),
            slots: Arc::new(Semaphore::new(size)),
            started: Mutex::new(0),
        }
    })
}

/// How many tests the harness runs at once (`--test-threads`/`RUST_TEST_THREADS`, else the
/// number of CPUs).
fn test_threads() -> usize {
    let mut args = std::env::args();
    while let Some(a) = args.next() {
        if let Some(n) = a.strip_prefix("--test-threads=") {
            return n.parse().unwrap_or(1);
        }
        if a == "--test-threads" {
            return args.next().and_then(|n| n.parse().ok()).unwrap_or(1);
        }
    }
    std::env::var("RUST_TEST_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A server held exclusively by one test; back to the pool on drop.
pub struct Lease {
    server: Option<Server>,
    _slot: OwnedSemaphorePermit,
}

impl Lease {
    /// The server.
    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("leased server")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            pool().free.lock().unwrap().push(s);
        }
    }
}

/// Take a server for one test: a free one from the pool (cleaned of the previous test's
/// objects) or a newly started one.
pub async fn acquire() -> Lease {
    let pool = pool();
    let slot = pool.slots.clone().acquire_owned().await.expect("pool");
    let free = pool.free.lock().unwrap().pop();
    let server = match free {
        Some(s) => s,
        None if pool.given => unreachable!("a slot per given server"),
        None => start().await,
    };
    let lease = Lease {
        server: Some(server),
        _slot: slot,
    };
    reset(lease.server()).await;
    lease
}

async fn start() -> Server {
    let n = {
        let mut started = pool().started.lock().unwrap();
        *started += 1;
        *started
    };
    let dir = std::env::temp_dir().join(format!("pki-issuer-e2e-kube-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The watchdog stops this server when the test process is gone, however it ends. It is
    // started in the background by a shell that exits at once (so nothing waits for it).
    let watchdog = r#"(while kill -0 "$1" 2>/dev/null; do sleep 0.5; done; bash "$2" down "$3"; rm -rf "$3") </dev/null >/dev/null 2>&1 &"#;
    let status = std::process::Command::new("bash")
        .args(["-c", watchdog, "watchdog"])
        .arg(std::process::id().to_string())
        .arg(script())
        .arg(&dir)
        .process_group(0)
        .status()
        .expect("watchdog");
    assert!(status.success(), "starting the watchdog");
    let started = std::time::Instant::now();
    let out = tokio::process::Command::new("bash")
        .arg(script())
        .arg("up")
        .arg(&dir)
        .arg("--bare")
        .output()
        .await
        .expect("bash");
    assert!(
        out.status.success(),
        "control-plane.sh up {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    crate::harness::visible(&format!(
        "e2e: real control plane #{n} ready in {:.1?} ({})",
        started.elapsed(),
        dir.display()
    ));
    Server { dir }
}

/// The kinds a pki-issuer process acts on: what a previous test left of them is deleted so
/// the next test's controller sees only its own objects.
const RESET: &[(&str, &str, &str, &str, bool)] = &[
    (
        "cert-manager.io",
        "v1",
        "CertificateRequest",
        "certificaterequests",
        true,
    ),
    ("cert-manager.io", "v1", "Certificate", "certificates", true),
    ("pki-issuer.io", "v1alpha1", "PKIIssuer", "pkiissuers", true),
    (
        "pki-issuer.io",
        "v1alpha1",
        "PKIClusterIssuer",
        "pkiclusterissuers",
        false,
    ),
    (
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        false,
    ),
    ("coordination.k8s.io", "v1", "Lease", "leases", true),
];

const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease", "default"];

async fn reset(server: &Server) {
    let client = crate::harness::client_for(&server.kubeconfig()).await;
    for (group, version, kind, plural, namespaced) in RESET {
        let ar = ApiResource {
            group: group.to_string(),
            version: version.to_string(),
            api_version: format!("{group}/{version}"),
            kind: kind.to_string(),
            plural: plural.to_string(),
        };
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        if !namespaced {
            all.delete_collection(&dp, &ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("resetting {plural}: {e}"));
            continue;
        }
        let list = all
            .list_metadata(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("listing {plural}: {e}"));
        let mut namespaces: Vec<String> = list
            .items
            .iter()
            .filter_map(|o| o.metadata.namespace.clone())
            .filter(|ns| !SYSTEM_NAMESPACES.contains(&ns.as_str()))
            .collect();
        namespaces.sort();
        namespaces.dedup();
        for ns in namespaces {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
            api.delete_collection(&dp, &ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("resetting {plural} in {ns}: {e}"));
        }
    }
}

/// The audit log of a real server: one JSON line per write request (see `control-plane.sh`).
pub struct AuditLog {
    path: PathBuf,
    offset: u64,
}

impl AuditLog {
    /// Count from the current end of the server's log.
    pub fn new(server: &Server) -> AuditLog {
        let mut log = AuditLog {
            path: server.dir.join("audit.log"),
            offset: 0,
        };
        log.reset();
        log
    }

    /// Count from now on.
    pub fn reset(&mut self) {
        self.offset = std::fs::metadata(&self.path).map_or(0, |m| m.len());
    }

    /// The completed requests since the reset.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read(&self.path).unwrap_or_default();
        let start = (self.offset as usize).min(text.len());
        String::from_utf8_lossy(&text[start..])
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["stage"] == "ResponseComplete")
            .collect()
    }

    /// Completed requests with this verb, resource and subresource (`""` for none) that also
    /// pass `filter`.
    pub fn count(
        &self,
        verb: &str,
        resource: &str,
        subresource: &str,
        filter: impl Fn(&serde_json::Value) -> bool,
    ) -> u64 {
        self.events()
            .iter()
            .filter(|e| {
                e["verb"] == verb
                    && e["objectRef"]["resource"] == resource
                    && e["objectRef"]["subresource"].as_str().unwrap_or("") == subresource
                    && filter(e)
            })
            .count() as u64
    }
}

/// Run `control-plane.sh CMD DIR` (for fault tests: `restart-apiserver`, `restart-etcd`).
pub async fn control(server: &Server, cmd: &str) {
    let out = tokio::process::Command::new("bash")
        .arg(script())
        .arg(cmd)
        .arg(&server.dir)
        .output()
        .await
        .expect("bash");
    assert!(
        out.status.success(),
        "control-plane.sh {cmd} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
