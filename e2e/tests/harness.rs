//! The end-to-end environment: an API server, the real `pki-issuer` process, and helpers that
//! play cert-manager's part.
//!
//! Three modes (see [`mode`]):
//! * default: the project's test API server, in process, one per test;
//! * `E2E_APISERVER=kube`: a real control plane (kube-apiserver, etcd, kube-controller-manager;
//!   see `kube_server`), the same local pki-issuer processes; a test that needs what a real
//!   server lacks (fault injection) calls [`skip_on_kube`], which prints one visible line and
//!   counts the skip;
//! * `E2E_KUBECONFIG=PATH`: an external cluster (kind) with its own pki-issuer and cert-manager.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use pki_issuer::api::cert_manager::{CertificateRequest, CertificateRequestSpec, IssuerRef};
use pki_issuer::api::{PKIClusterIssuer, PKIIssuer};
use serde_json::json;
use test_apiserver::TestApiServer;

/// The end-to-end environment of one test.
pub struct Env {
    /// Admin client.
    pub client: Client,
    /// Admin kubeconfig path.
    pub kubeconfig: PathBuf,
    /// This test's namespace.
    pub ns: String,
    /// Where cluster issuers read Secrets.
    pub cluster_ns: String,
    /// The in-process test API server (absent with a real server or `E2E_KUBECONFIG`).
    pub server: Option<TestApiServer>,
    /// The real server this test holds (`E2E_APISERVER=kube`).
    pub kube: Option<crate::kube_server::Lease>,
    controllers: Vec<tokio::process::Child>,
    /// Scratch directory (logs, PEM files for openssl).
    pub dir: tempfile::TempDir,
}

/// The usages requests get when a test names none: what an mTLS workload Certificate lists.
pub const MTLS_USAGES: &[&str] = &[
    "digital signature",
    "key encipherment",
    "server auth",
    "client auth",
];

/// The API server the suite runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The project's test API server, in process (default).
    TestApiServer,
    /// A real kube-apiserver + etcd on loopback (`E2E_APISERVER=kube`).
    Kube,
    /// An external cluster with its own pki-issuer (`E2E_KUBECONFIG`).
    External,
}

/// The mode of this run.
pub fn mode() -> Mode {
    if std::env::var_os("E2E_KUBECONFIG").is_some() {
        Mode::External
    } else if std::env::var("E2E_APISERVER").as_deref() == Ok("kube") {
        Mode::Kube
    } else {
        Mode::TestApiServer
    }
}

/// Whether the suite runs against an external cluster (kind) instead of a local server.
pub fn external() -> bool {
    mode() == Mode::External
}

/// Whether the suite runs against the real kube-apiserver.
pub fn kube() -> bool {
    mode() == Mode::Kube
}

/// Print one line to the real stderr, past the test harness's output capture.
pub fn visible(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Record that `test` did not run here and why: one visible line, and a line in the file named
/// by `E2E_SKIP_LOG` (the run's summary counts them).
pub fn skip(test: &str, why: &str) {
    let mode = match mode() {
        Mode::TestApiServer => "test-apiserver",
        Mode::Kube => "kube-apiserver",
        Mode::External => "external cluster",
    };
    let line = format!("SKIPPED on {mode}: {test}: {why}");
    visible(&line);
    if let Some(path) = std::env::var_os("E2E_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// In the real-server mode, record the skip of `test` (it needs `why`) and return true; the
/// test then returns. Elsewhere false.
pub fn skip_on_kube(test: &str, why: &str) -> bool {
    if kube() {
        skip(test, why);
    }
    kube()
}

fn cert_manager_crds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/testdata/cert-manager")
}

/// Our generated CRDs.
pub fn our_crds() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/pki-issuer/crds")
}

/// An admin client from a kubeconfig file.
pub async fn client_for(path: &Path) -> Client {
    let kc = Kubeconfig::read_from(path).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("client config");
    Client::try_from(cfg).expect("client")
}

impl Env {
    /// Start a server with cert-manager's and our CRDs, a namespace for the test, and (locally)
    /// one pki-issuer process.
    pub async fn start(test: &str) -> Env {
        Env::start_opts(test, true).await
    }

    /// Like [`Env::start`], optionally without starting a controller.
    pub async fn start_opts(test: &str, controller: bool) -> Env {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut kube = None;
        let (server, kubeconfig) = if let Some(path) = std::env::var_os("E2E_KUBECONFIG") {
            (None, PathBuf::from(path))
        } else if self::kube() {
            let lease = crate::kube_server::acquire().await;
            let path = lease.server().kubeconfig();
            kube = Some(lease);
            (None, path)
        } else {
            let server = TestApiServer::start(test_apiserver::Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                crd_dirs: vec![cert_manager_crds(), our_crds()],
                authorization: true,
                ..Default::default()
            })
            .await
            .expect("test API server");
            let path = dir.path().join("admin.kubeconfig");
            server.write_kubeconfig(&path).expect("write kubeconfig");
            (Some(server), path)
        };
        let client = client_for(&kubeconfig).await;
        let ns = format!("e2e-{test}-{}", &uuid_suffix());
        let cluster_ns =
            std::env::var("E2E_CLUSTER_RESOURCE_NAMESPACE").unwrap_or_else(|_| format!("{ns}-pki"));
        let mut env = Env {
            client,
            kubeconfig,
            ns,
            cluster_ns,
            server,
            kube,
            controllers: Vec::new(),
            dir,
        };
        env.create_namespace(&env.ns.clone()).await;
        if !external() {
            env.create_namespace(&env.cluster_ns.clone()).await;
            if controller {
                env.start_controller(&[]).await;
            }
        }
        env
    }

    /// The same cluster and client, acting in namespace `ns` (owns no processes).
    pub fn view(env: &Env, ns: &str) -> Env {
        Env {
            client: env.client.clone(),
            kubeconfig: env.kubeconfig.clone(),
            ns: ns.to_string(),
            cluster_ns: env.cluster_ns.clone(),
            server: None,
            kube: None,
            controllers: Vec::new(),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A kubeconfig (YAML) for the same server that authenticates with `token` and defaults to
    /// namespace `ns`.
    pub fn kubeconfig_with_token(&self, token: &str, ns: Option<&str>) -> String {
        let text = std::fs::read_to_string(&self.kubeconfig).expect("read kubeconfig");
        let mut kc: serde_yaml::Value = serde_yaml::from_str(&text).expect("kubeconfig YAML");
        for user in kc["users"].as_sequence_mut().expect("users") {
            user["user"] = serde_yaml::to_value(json!({ "token": token })).unwrap();
        }
        if let Some(ns) = ns {
            for ctx in kc["contexts"].as_sequence_mut().expect("contexts") {
                ctx["context"]["namespace"] = ns.into();
            }
        }
        serde_yaml::to_string(&kc).unwrap()
    }

    /// The API server's HTTPS URL, CA certificate (PEM) and admin token, read from the admin
    /// kubeconfig (the same for the test API server and the real one).
    pub fn api_endpoint(&self) -> (String, String, String) {
        let text = std::fs::read_to_string(&self.kubeconfig).expect("read kubeconfig");
        let kc: serde_yaml::Value = serde_yaml::from_str(&text).expect("kubeconfig YAML");
        let cluster = &kc["clusters"][0]["cluster"];
        let ca = cluster["certificate-authority-data"]
            .as_str()
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .expect("certificate-authority-data");
        (
            cluster["server"].as_str().expect("server").to_string(),
            String::from_utf8(ca).expect("CA PEM"),
            kc["users"][0]["user"]["token"]
                .as_str()
                .expect("token")
                .to_string(),
        )
    }

    /// Counts of requests the server received, for "exactly one write" claims.
    pub fn request_counter(&self) -> RequestCounter {
        if let Some(server) = &self.server {
            RequestCounter::TestApiServer(server.faults())
        } else if let Some(lease) = &self.kube {
            RequestCounter::Kube(crate::kube_server::AuditLog::new(lease.server()))
        } else {
            panic!("request counts need a local server (not E2E_KUBECONFIG)")
        }
    }

    /// Create a namespace (an existing one is fine).
    pub async fn create_namespace(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("creating namespace {name}: {e}"),
        }
    }

    /// Start one more pki-issuer process with the admin kubeconfig (or `kubeconfig`).
    pub async fn start_controller(&mut self, extra: &[&str]) {
        let kubeconfig = self.kubeconfig.clone();
        self.start_controller_with(&kubeconfig, extra).await;
    }

    /// Start the local pki-issuer process allowing namespaced PKIIssuers to use the remote CA
    /// URLs `urls` (`--allowed-remote-ca-urls`); nothing with `E2E_KUBECONFIG`, where the
    /// cluster's controller runs.
    pub async fn start_controller_allowing(&mut self, urls: &[&str]) {
        if external() {
            return;
        }
        let flag = format!("--allowed-remote-ca-urls={}", urls.join(","));
        self.start_controller(&[&flag]).await;
    }

    /// Start a pki-issuer process with a given kubeconfig.
    pub async fn start_controller_with(&mut self, kubeconfig: &Path, extra: &[&str]) {
        let mut args: Vec<String> = vec![
            format!("--cluster-resource-namespace={}", self.cluster_ns),
            "--log-format=text".into(),
            "--max-retry-duration=30s".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        self.spawn_controller(kubeconfig, &args, &[]).await;
    }

    /// Start a pki-issuer process with exactly `args` (plus `--kubeconfig` and loopback admin
    /// ports) and extra environment; returns its index for [`Env::kill_controller`].
    pub async fn spawn_controller(
        &mut self,
        kubeconfig: &Path,
        args: &[String],
        envs: &[(&str, &str)],
    ) -> usize {
        let n = self.controllers.len();
        let log =
            std::fs::File::create(self.dir.path().join(format!("pki-issuer-{n}.log"))).unwrap();
        let args = args
            .iter()
            .filter(|a| !a.starts_with("--metrics-addr") && !a.starts_with("--probe-addr"));
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pki-issuer"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .args(["--metrics-addr=127.0.0.1:0", "--probe-addr=127.0.0.1:0"])
            .env(
                "RUST_LOG",
                std::env::var("E2E_RUST_LOG").unwrap_or_else(|_| "info,kube=warn".into()),
            )
            .envs(envs.iter().copied())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("start pki-issuer");
        self.controllers.push(child);
        n
    }

    /// The process id of controller `n` while it runs.
    pub fn controller_pid(&self, n: usize) -> Option<u32> {
        self.controllers.get(n).and_then(|c| c.id())
    }

    /// The exit status of controller `n` if it has exited.
    pub fn try_wait_controller(&mut self, n: usize) -> Option<std::process::ExitStatus> {
        self.controllers[n].try_wait().ok().flatten()
    }

    /// SIGKILL controller `n` (no chance to release its lease).
    pub async fn kill_controller(&mut self, n: usize) {
        let _ = self.controllers[n].kill().await;
    }

    /// Run kubectl against this environment with the admin kubeconfig; returns stdout.
    /// (Async: the in-process API server shares this runtime.)
    pub async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut child = tokio::process::Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl (install the Debian package kubernetes-client)");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            tokio::io::AsyncWriteExt::write_all(&mut input, text.as_bytes())
                .await
                .unwrap();
        }
        drop(input);
        let out = child.wait_with_output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "kubectl {args:?}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// The controller logs so far (for failure messages).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in 0..self.controllers.len() {
            let path = self.dir.path().join(format!("pki-issuer-{n}.log"));
            let text = std::fs::read_to_string(path).unwrap_or_default();
            out.push_str(&format!("--- pki-issuer-{n} ---\n{text}\n"));
        }
        out
    }

    /// Create a `kubernetes.io/tls` Secret in `ns`.
    pub async fn put_tls_secret(&self, ns: &str, name: &str, crt: &str, key: &str) {
        self.put_secret(ns, name, &[("tls.crt", crt), ("tls.key", key)])
            .await;
    }

    /// Create or replace a Secret.
    pub async fn put_secret(&self, ns: &str, name: &str, data: &[(&str, &str)]) {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let data: serde_json::Map<String, serde_json::Value> = data
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect();
        let secret =
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data});
        api.patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("apply Secret");
    }

    /// Create or replace a ConfigMap.
    pub async fn put_config_map(&self, ns: &str, name: &str, key: &str, value: &str) {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {key: value}});
        api.patch(name, &PatchParams::apply("e2e").force(), &Patch::Apply(&cm))
            .await
            .expect("apply ConfigMap");
    }

    /// Create a PKIIssuer in the test namespace from a spec.
    pub async fn create_issuer(&self, name: &str, spec: serde_json::Value) {
        let api: Api<PKIIssuer> = Api::namespaced(self.client.clone(), &self.ns);
        let obj = json!({"apiVersion": "pki-issuer.io/v1alpha1", "kind": "PKIIssuer", "metadata": {"name": name}, "spec": spec});
        api.create(
            &PostParams::default(),
            &serde_json::from_value(obj).expect("PKIIssuer"),
        )
        .await
        .expect("create PKIIssuer");
    }

    /// Create a PKIClusterIssuer from a spec.
    pub async fn create_cluster_issuer(&self, name: &str, spec: serde_json::Value) {
        let api: Api<PKIClusterIssuer> = Api::all(self.client.clone());
        let obj = json!({"apiVersion": "pki-issuer.io/v1alpha1", "kind": "PKIClusterIssuer", "metadata": {"name": name}, "spec": spec});
        api.create(
            &PostParams::default(),
            &serde_json::from_value(obj).expect("PKIClusterIssuer"),
        )
        .await
        .expect("create PKIClusterIssuer");
    }

    /// Delete a PKIClusterIssuer (cluster issuers outlive the test namespace).
    pub async fn delete_cluster_issuer(&self, name: &str) {
        let api: Api<PKIClusterIssuer> = Api::all(self.client.clone());
        let _ = api.delete(name, &DeleteParams::default()).await;
    }

    /// Wait until the issuer's Ready condition has `status` and return its reason.
    pub async fn wait_issuer_ready(
        &self,
        name: &str,
        cluster: bool,
        status: &str,
    ) -> (String, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let st = if cluster {
                Api::<PKIClusterIssuer>::all(self.client.clone())
                    .get(name)
                    .await
                    .ok()
                    .and_then(|i| i.status)
            } else {
                Api::<PKIIssuer>::namespaced(self.client.clone(), &self.ns)
                    .get(name)
                    .await
                    .ok()
                    .and_then(|i| i.status)
            };
            if let Some(c) = st
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            {
                if c.status == status {
                    return (
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default(),
                    );
                }
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "issuer {name} never became Ready={status}: {st:?}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Create a CertificateRequest the way cert-manager does. No `usages` means the usages of a
    /// typical mesh Certificate, [`MTLS_USAGES`] (pki-issuer refuses a request without any
    /// extended usage by default).
    pub async fn create_request(
        &self,
        name: &str,
        csr_pem: &str,
        issuer: IssuerRef,
        duration: Option<&str>,
        usages: &[&str],
    ) {
        let api: Api<CertificateRequest> = Api::namespaced(self.client.clone(), &self.ns);
        let mut cr = CertificateRequest::new(
            name,
            CertificateRequestSpec {
                request: csr_pem.as_bytes().to_vec(),
                issuer_ref: issuer,
                duration: duration.map(Into::into),
                usages: Some(
                    if usages.is_empty() {
                        MTLS_USAGES
                    } else {
                        usages
                    }
                    .iter()
                    .map(|u| u.to_string())
                    .collect(),
                ),
                username: Some(format!("system:serviceaccount:{}:workload", self.ns)),
                ..Default::default()
            },
        );
        cr.metadata.namespace = Some(self.ns.clone());
        api.create(&PostParams::default(), &cr)
            .await
            .expect("create CertificateRequest");
    }

    /// Create a request for a fresh key with `sans` and the mTLS usages against the PKIIssuer
    /// `issuer`, asking for `duration`, and approve it.
    pub async fn request_approved(&self, name: &str, issuer: &str, sans: &[&str], duration: &str) {
        self.approved(name, issuer_ref(issuer, "PKIIssuer"), sans, duration)
            .await;
    }

    /// [`Env::request_approved`] against the PKIClusterIssuer `issuer`.
    pub async fn cluster_request_approved(
        &self,
        name: &str,
        issuer: &str,
        sans: &[&str],
        duration: &str,
    ) {
        self.approved(name, issuer_ref(issuer, "PKIClusterIssuer"), sans, duration)
            .await;
    }

    async fn approved(&self, name: &str, issuer: IssuerRef, sans: &[&str], duration: &str) {
        let (_, csr) = crate::fixtures::csr(sans);
        self.create_request(name, &csr, issuer, Some(duration), MTLS_USAGES)
            .await;
        self.set_approval(name, true).await;
    }

    /// Approve (or deny) a request with an update of /status, as cert-manager's approver does.
    pub async fn set_approval(&self, name: &str, approved: bool) {
        if external() && approved {
            return; // cert-manager's own approver approves requests in a real cluster.
        }
        let api: Api<CertificateRequest> = Api::namespaced(self.client.clone(), &self.ns);
        let (type_, reason) = if approved {
            ("Approved", "e2e-approver")
        } else {
            ("Denied", "e2e-denier")
        };
        for _ in 0..20 {
            let mut cr = api.get(name).await.expect("get CertificateRequest");
            let status = cr.status.get_or_insert_with(Default::default);
            status.conditions.retain(|c| c.type_ != type_);
            status.conditions.push(pki_issuer::api::Condition::new(
                type_,
                true,
                reason,
                format!("{type_} by the e2e suite"),
            ));
            match api.replace_status(name, &PostParams::default(), &cr).await {
                Ok(_) => return,
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => panic!("approving {name}: {e}"),
            }
        }
        panic!("approving {name}: too many conflicts");
    }

    /// Get a request.
    pub async fn request(&self, name: &str) -> CertificateRequest {
        Api::<CertificateRequest>::namespaced(self.client.clone(), &self.ns)
            .get(name)
            .await
            .expect("get CertificateRequest")
    }

    /// Wait until the request's Ready condition has `reason`; returns the request.
    pub async fn wait_request_reason(&self, name: &str, reason: &str) -> CertificateRequest {
        self.wait_request_reason_in(name, &[reason]).await
    }

    /// Wait until the request's `Ready` reason is one of `reasons` (30 s; no condition yet is
    /// waited out like any other reason).
    pub async fn wait_request_reason_in(&self, name: &str, reasons: &[&str]) -> CertificateRequest {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let cr = self.request(name).await;
            let ready = cr
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
                .cloned();
            if ready
                .as_ref()
                .and_then(|c| c.reason.as_deref())
                .is_some_and(|r| reasons.contains(&r))
            {
                return cr;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "request {name} never reached a reason of {reasons:?}: {ready:?}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Write PEM files and run `openssl verify -x509_strict -purpose <purpose>`; returns (success, output).
    pub fn openssl_verify(
        &self,
        anchors_pem: &str,
        chain_pem: &str,
        purpose: &str,
    ) -> (bool, String) {
        let blocks = pem::parse_many(chain_pem).expect("chain PEM");
        let leaf = pem::encode(&blocks[0]);
        let rest: String = blocks[1..].iter().map(pem::encode).collect();
        let d = self.dir.path();
        std::fs::write(d.join("anchors.pem"), anchors_pem).unwrap();
        std::fs::write(
            d.join("untrusted.pem"),
            if rest.is_empty() {
                anchors_pem.to_string()
            } else {
                rest
            },
        )
        .unwrap();
        std::fs::write(d.join("leaf.pem"), leaf).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["verify", "-x509_strict", "-purpose", purpose, "-CAfile"])
            .arg(d.join("anchors.pem"))
            .arg("-untrusted")
            .arg(d.join("untrusted.pem"))
            .arg(d.join("leaf.pem"))
            .output()
            .expect("openssl (install the Debian package openssl)");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for c in &mut self.controllers {
            let _ = c.start_kill();
        }
        let n = self.controllers.len();
        crate::leak_scan::on_env_drop(&self.ns, n, || self.logs(), self.server.as_ref());
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// Request counters of the test API server, or the audit log of the real server (which this
/// test holds alone, so the counts are the test's own; the log survives server restarts).
pub enum RequestCounter {
    /// The test API server's counters.
    TestApiServer(test_apiserver::FaultInjector),
    /// The real server's audit log, from an offset.
    Kube(crate::kube_server::AuditLog),
}

impl RequestCounter {
    /// Start counting from zero.
    pub fn reset(&mut self) {
        match self {
            RequestCounter::TestApiServer(f) => f.reset_counters(),
            RequestCounter::Kube(log) => log.reset(),
        }
    }

    /// Write requests (create, update, patch, delete) with this lower-case Kubernetes verb,
    /// resource and subresource (`""` for none) since the reset, whatever their outcome.
    pub fn count(&self, verb: &str, resource: &str, subresource: &str) -> u64 {
        match self {
            RequestCounter::TestApiServer(f) => f.request_count(verb, resource, subresource),
            RequestCounter::Kube(log) => log.count(verb, resource, subresource, |_| true),
        }
    }
}

fn uuid_suffix() -> String {
    use rand::Rng;
    let n: u32 = rand::rng().random();
    format!("{n:08x}")
}

/// An issuerRef to one of our issuers.
pub fn issuer_ref(name: &str, kind: &str) -> IssuerRef {
    IssuerRef {
        name: name.into(),
        kind: Some(kind.into()),
        group: Some("pki-issuer.io".into()),
    }
}

/// The request's `Ready` condition (panics when there is none).
pub fn ready_of(cr: &CertificateRequest) -> pki_issuer::api::Condition {
    cr.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .cloned()
        .expect("Ready condition")
}

/// The message of the request's `Ready` condition.
pub fn ready_message(cr: &CertificateRequest) -> String {
    ready_of(cr).message.unwrap_or_default()
}

/// Whether the field manager `pki-issuer` ever wrote to this object.
pub fn written_by_pki_issuer(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> bool {
    meta.managed_fields
        .iter()
        .flatten()
        .any(|m| m.manager.as_deref() == Some("pki-issuer"))
}

impl Env {
    /// Send SIGTERM to controller `n` and wait for it to exit; returns its exit status.
    pub async fn terminate_controller(&mut self, n: usize) -> std::process::ExitStatus {
        let pid = self.controllers[n].id().expect("running controller");
        let sent = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .expect("kill");
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(20), self.controllers[n].wait())
            .await
            .expect("pki-issuer did not exit within 20s of SIGTERM")
            .expect("wait")
    }

    /// The address controller `n` serves `field` (`metrics` or `probe`) on, from its startup
    /// log line.
    pub async fn admin_addr(&self, n: usize, field: &str) -> String {
        let key = format!("{field}=");
        for _ in 0..100 {
            let path = self.dir.path().join(format!("pki-issuer-{n}.log"));
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("pki-issuer starting")) {
                let start = line.find(&key).expect("address in the startup line") + key.len();
                return line[start..].split_whitespace().next().unwrap().to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no startup line\n{}", self.logs());
    }
}

/// GET `http://addr/path` over plain HTTP/1.0; returns (status line, body).
pub async fn http_get(addr: &str, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}
