//! An in-memory Kubernetes API server for tests and demos.
//!
//! It speaks the Kubernetes REST protocol (discovery, CRUD, watch, patch including server-side apply,
//! Table output, RBAC) well enough for kube-rs controllers and `kubectl` to run against it unmodified.
//! See the crate README for what is supported and the known deviations from kube-apiserver.

pub mod auth;
pub mod builtins;
pub mod cel;
pub mod crd;
pub mod csr_rules;
pub mod discovery;
pub mod error;
pub mod faults;
pub mod managed;
pub mod ops;
pub mod patch;
pub mod protobuf;
pub mod rbac;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod store;
pub mod table;
pub mod tls;
pub mod util;
pub mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use error::{ApiError, Cause};
pub use faults::{peak_per_second, FaultInjector, FaultSpec, LoggedRequest, Matcher, RequestCount};

/// Startup errors.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Only loopback addresses may be used.
    #[error("refusing to listen on non-loopback address {0}")]
    NotLoopback(SocketAddr),
    /// Binding failed.
    #[error("binding {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// Reading a CRD directory failed.
    #[error("loading CRDs from {0}: {1}")]
    Crds(PathBuf, std::io::Error),
    /// TLS material could not be generated.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// A preloaded CRD was rejected.
    #[error("CRD {0} rejected: {1}")]
    BadCrd(String, ApiError),
}

/// Server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (must be loopback; port 0 picks a free port).
    pub listen: SocketAddr,
    /// Directories of CRD YAML files to preload.
    pub crd_dirs: Vec<PathBuf>,
    /// Enforce RBAC (admin / `system:masters` always bypasses).
    pub authorization: bool,
    /// Number of events kept for watch resumption; older resourceVersions get 410 Gone.
    pub history_window: usize,
    /// Interval of periodic BOOKMARK events on watches that asked for them.
    pub bookmark_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            crd_dirs: vec![],
            authorization: true,
            history_window: 10_000,
            bookmark_interval: Duration::from_secs(2),
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct TestApiServer {
    app: Arc<server::App>,
    tls: tls::TlsMaterial,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Serve `app` on `listener` until `rx` fires.
fn serve(
    app: Arc<server::App>,
    listener: tls::DualListener,
    rx: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    let router = server::router(app);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    })
}

impl TestApiServer {
    /// Start serving (returns once the listener is bound and CRDs are loaded).
    pub async fn start(cfg: Config) -> Result<TestApiServer, StartError> {
        if !cfg.listen.ip().is_loopback() {
            return Err(StartError::NotLoopback(cfg.listen));
        }
        let store = Arc::new(store::Store::new(
            builtins::registry(),
            cfg.history_window.max(1),
        ));
        let faults = FaultInjector::new(store.clone());
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| StartError::Bind(cfg.listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind(cfg.listen, e))?;
        let app = Arc::new(server::App {
            store: store.clone(),
            auth: auth::Authenticator::new(),
            faults,
            authorization: cfg.authorization,
            addr: addr.to_string(),
            bookmark_interval: cfg.bookmark_interval,
        });
        bootstrap(&app)?;
        for dir in &cfg.crd_dirs {
            let crds = crd::load_dir(dir).map_err(|e| StartError::Crds(dir.clone(), e))?;
            for c in crds {
                let name = util::meta_str(&c, "name").unwrap_or_default().to_string();
                admin_create(
                    &app,
                    "apiextensions.k8s.io",
                    "v1",
                    "customresourcedefinitions",
                    "",
                    c,
                )
                .map_err(|e| StartError::BadCrd(name, e))?;
            }
        }
        let tls = tls::TlsMaterial::generate()?;
        let listener =
            tls::DualListener::new(listener, &tls).map_err(|e| StartError::Bind(cfg.listen, e))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = serve(app.clone(), listener, rx);
        Ok(TestApiServer {
            app,
            tls,
            addr,
            shutdown: Some(tx),
            task,
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:34567`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every version of every object written so far that the store still holds (the watch history
    /// window, then the current objects), each with its resource name (`events`,
    /// `certificaterequests`, ...): for tests that audit everything a controller wrote.
    pub fn written_objects(&self) -> Vec<(String, Arc<serde_json::Value>)> {
        let inner = self.app.store.lock();
        let mut out: Vec<(String, Arc<serde_json::Value>)> = inner
            .history
            .iter()
            .map(|e| (e.key.1.clone(), e.object.clone()))
            .collect();
        for (key, objects) in &inner.objects {
            out.extend(objects.values().map(|o| (key.1.clone(), o.clone())));
        }
        out
    }

    /// Bearer token of the `admin` user (group `system:masters`).
    pub fn admin_token(&self) -> String {
        self.app.auth.admin_token().to_string()
    }

    /// HTTPS URL of the same port, e.g. `https://127.0.0.1:34567` (the kubeconfig uses this one).
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// PEM of the CA that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.tls.ca_pem
    }

    /// A kubeconfig for this server authenticating with `token`. It points at the HTTPS URL with the
    /// instance CA, because kubectl refuses to send tokens over plain HTTP.
    pub fn kubeconfig_yaml(&self, token: &str, namespace: Option<&str>) -> String {
        use base64::Engine;
        let ns = namespace
            .map(|n| format!("\n    namespace: {n}"))
            .unwrap_or_default();
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.tls.ca_pem);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test-apiserver\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\ncontexts:\n- name: test-apiserver\n  context:\n    cluster: test-apiserver\n    user: test-user{ns}\ncurrent-context: test-apiserver\nusers:\n- name: test-user\n  user:\n    token: {token}\npreferences: {{}}\n",
            self.https_url()
        )
    }

    /// Write an admin kubeconfig atomically (temp file + rename).
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        std::fs::write(&tmp, self.kubeconfig_yaml(&self.admin_token(), None))?;
        std::fs::rename(&tmp, path)
    }

    /// Fault injection handle.
    pub fn faults(&self) -> FaultInjector {
        self.app.faults.clone()
    }

    /// Mint a ServiceAccount token directly (the ServiceAccount must exist for it to authenticate).
    pub fn service_account_token(&self, namespace: &str, name: &str) -> Option<String> {
        let sa = self.app.store.lock().get(
            &(String::new(), "serviceaccounts".into()),
            namespace,
            name,
        )?;
        let uid = util::meta_str(&sa, "uid")?.to_string();
        Some(self.app.auth.mint(auth::SaToken {
            namespace: namespace.into(),
            name: name.into(),
            uid,
            expires: i64::MAX,
            audiences: vec![auth::DEFAULT_AUDIENCE.into()],
        }))
    }

    /// Mint a static bearer token for a user named `name` in `groups` (`system:authenticated`
    /// is added), e.g. one identity per controller replica so the request log tells them apart.
    pub fn user_token(&self, name: &str, groups: &[&str]) -> String {
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        groups.push("system:authenticated".into());
        self.app.auth.mint_user(auth::UserInfo {
            name: name.into(),
            groups,
            service_account: None,
        })
    }

    /// Store an object as is, skipping validation (see [`server::put_raw`]).
    pub fn put_raw(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: &str,
        obj: serde_json::Value,
    ) -> Result<serde_json::Value, ApiError> {
        server::put_raw(&self.app, group, version, plural, namespace, obj)
    }

    async fn stop_serving(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Watches started before the listener closed end here.
        self.app.faults.drop_watches();
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }

    /// Restart: stop serving (every watch and connection ends), stay down for `down`, then
    /// serve again on the same address with the same store, history, tokens and TLS identity,
    /// like a kube-apiserver restart in front of a kept etcd.
    pub async fn restart(&mut self, down: Duration) -> Result<(), StartError> {
        self.stop_serving().await;
        tokio::time::sleep(down).await;
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    tracing::debug!(error = %e, "rebinding after restart");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(StartError::Bind(self.addr, e)),
            }
        };
        let listener = tls::DualListener::new(listener, &self.tls)
            .map_err(|e| StartError::Bind(self.addr, e))?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.task = serve(self.app.clone(), listener, rx);
        self.shutdown = Some(tx);
        Ok(())
    }

    /// Stop serving: closes watches, then the listener.
    pub async fn shutdown(mut self) {
        self.stop_serving().await;
    }
}

fn admin_create(
    app: &server::App,
    group: &str,
    version: &str,
    plural: &str,
    ns: &str,
    obj: serde_json::Value,
) -> Result<(), ApiError> {
    let mut g = app.store.lock();
    let def = g
        .registry
        .lookup(group, version, plural)
        .ok_or_else(ApiError::no_route)?;
    let t = ops::Target {
        def,
        version: version.into(),
        namespace: ns.into(),
        name: String::new(),
        subresource: String::new(),
    };
    let opts = ops::WriteOpts {
        user: auth::UserInfo::admin(),
        field_manager: "test-apiserver".into(),
        dry_run: false,
        force: false,
        strict: false,
    };
    ops::create(&mut g, &t, obj, &opts).map(|_| ())
}

fn bootstrap(app: &server::App) -> Result<(), StartError> {
    let wrap = |e: ApiError| StartError::BadCrd("bootstrap".into(), e);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        admin_create(
            app,
            "",
            "v1",
            "namespaces",
            "",
            serde_json::json!({"metadata": {"name": ns}}),
        )
        .map_err(wrap)?;
        admin_create(
            app,
            "",
            "v1",
            "serviceaccounts",
            ns,
            serde_json::json!({"metadata": {"name": "default"}}),
        )
        .map_err(wrap)?;
    }
    admin_create(
        app,
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "",
        serde_json::json!({"metadata": {"name": "cluster-admin"}, "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]}),
    )
    .map_err(wrap)?;
    admin_create(
        app,
        "",
        "v1",
        "services",
        "default",
        serde_json::json!({"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}}),
    )
    .map_err(wrap)?;
    Ok(())
}
