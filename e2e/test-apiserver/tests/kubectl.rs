//! Conformance with the real `kubectl` (Debian package `kubernetes-client`): apply with validation,
//! get with printer columns, -o yaml, describe, wait, patch, delete, create token, auth can-i.

use std::path::{Path, PathBuf};
use std::time::Duration;

use test_apiserver::{Config, TestApiServer};

const KUBECTL: &str = "/usr/bin/kubectl";

struct Kubectl {
    home: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::process::Command::new(KUBECTL)
            .args(args)
            .env("HOME", &self.home)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .await
            .expect("run kubectl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed:\nstdout: {out}\nstderr: {err}");
        out
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_conformance() {
    assert!(
        Path::new(KUBECTL).exists(),
        "{KUBECTL} is missing: install the Debian package `kubernetes-client` (apt-get install kubernetes-client)"
    );
    let server = TestApiServer::start(Config::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let k = Kubectl {
        home: dir.path().to_path_buf(),
        kubeconfig,
    };
    let crd = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/widgets.yaml");

    // apply (client-side validation on) of a CRD, then of an object of it.
    let out = k.ok(&["apply", "-f", crd.to_str().unwrap()]).await;
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"),
        "{out}"
    );
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=10s",
    ])
    .await;
    let w = write(dir.path(), "w.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: default\nspec:\n  size: 3\n  a: hello\n");
    assert!(k
        .ok(&["apply", "-f", &w])
        .await
        .contains("widget.example.com/w1 created"));
    assert!(k
        .ok(&["apply", "-f", &w])
        .await
        .contains("widget.example.com/w1 unchanged"));
    // Invalid objects are rejected with the server's validation message.
    let bad = write(dir.path(), "bad.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: bad\n  namespace: default\nspec:\n  size: 30\n  a: x\n");
    let (ok, _, err) = k.run(&["apply", "-f", &bad]).await;
    assert!(!ok && err.contains("spec.size: Invalid value: 30"), "{err}");

    // get with printer columns.
    let out = k.ok(&["get", "widgets"]).await;
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, vec!["NAME", "READY", "SIZE", "AGE"], "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("w1"), "{out}");
    let yaml = k.ok(&["get", "wd", "w1", "-o", "yaml"]).await;
    assert!(
        yaml.contains("mode: Fast") && yaml.contains("uid:") && yaml.contains("generation: 1"),
        "{yaml}"
    );
    let desc = k.ok(&["describe", "widget", "w1"]).await;
    assert!(
        desc.contains("Name:         w1") && desc.contains("Size:  3"),
        "{desc}"
    );

    // wait --for=condition=Ready while the condition is set through the status subresource.
    let waiter = {
        let home = k.home.clone();
        let kc = k.kubeconfig.clone();
        tokio::spawn(async move {
            Kubectl {
                home,
                kubeconfig: kc,
            }
            .run(&[
                "wait",
                "--for=condition=Ready",
                "widget/w1",
                "--timeout=20s",
            ])
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Test"}]}}"#,
    ])
    .await;
    let (ok, out, err) = waiter.await.unwrap();
    assert!(ok && out.contains("condition met"), "{out}{err}");
    let out = k.ok(&["get", "widgets", "--no-headers"]).await;
    assert!(out.split_whitespace().nth(1) == Some("True"), "{out}");

    // patch (spec) bumps generation.
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":5}}"#,
    ])
    .await;
    assert_eq!(
        k.ok(&[
            "get",
            "widget",
            "w1",
            "-o",
            "jsonpath={.metadata.generation}"
        ])
        .await,
        "2"
    );

    // ServiceAccount tokens and authorization.
    k.ok(&["create", "serviceaccount", "bot"]).await;
    let token = k.ok(&["create", "token", "bot"]).await.trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
    assert_eq!(
        k.ok(&["auth", "can-i", "list", "secrets"]).await.trim(),
        "yes"
    );
    let tok_arg = format!("--token={token}");
    let (ok, out, _) = k.run(&[&tok_arg, "auth", "can-i", "list", "secrets"]).await;
    assert!(!ok && out.trim() == "no", "{out}");
    let (ok, _, err) = k.run(&[&tok_arg, "get", "secrets"]).await;
    assert!(!ok && err.contains("secrets is forbidden: User \"system:serviceaccount:default:bot\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""), "{err}");
    k.ok(&[
        "create",
        "rolebinding",
        "bot-view",
        "--clusterrole=cluster-admin",
        "--serviceaccount=default:bot",
    ])
    .await;
    let (ok, out, _) = k.run(&[&tok_arg, "auth", "can-i", "list", "secrets"]).await;
    assert!(ok && out.trim() == "yes", "{out}");

    // delete.
    assert!(k
        .ok(&["delete", "widget", "w1"])
        .await
        .contains("widget.example.com \"w1\" deleted"));
    let (ok, _, err) = k.run(&["get", "widget", "w1"]).await;
    assert!(
        !ok && err.contains("widgets.example.com \"w1\" not found"),
        "{err}"
    );
    server.shutdown().await;
}
