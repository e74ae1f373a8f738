//! Nothing secret in any output: every private key and auth secret the suite creates is
//! registered here; when an [`Env`](crate::harness::Env) that ran controllers is dropped, its
//! pki-issuer logs, every Event and every status written (all versions the test API server still
//! holds) and the registry are dumped into the run directory; `make test` then runs
//! [`scan_e2e_output`], which fails listing file and line of any private-key PEM header or
//! registered secret (never the secret itself).
//!
//! Run directory: `$E2E_OUTPUT_DIR`, else `<target>/tmp/e2e-output/run-<time>-<pid>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use base64::Engine;
use serde_json::{json, Value};

/// Secrets shorter than this are not registered (too likely to match by chance).
const MIN_SECRET_LEN: usize = 16;

/// What always counts as a leak, whatever the registry says.
const KEY_HEADER: &str = "PRIVATE KEY-----";

fn registry() -> &'static Mutex<BTreeMap<String, String>> {
    static R: OnceLock<Mutex<BTreeMap<String, String>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Register one secret value (label → value; the label is what a finding prints).
pub fn register(label: &str, value: &str) {
    let value = value.trim();
    if value.len() >= MIN_SECRET_LEN {
        registry()
            .lock()
            .unwrap()
            .insert(value.to_string(), label.to_string());
    }
}

/// Register a private key in every form it could leak in: each PEM body line, the DER as one
/// base64 string, and the PEM as a Secret stores it (base64 of the text).
pub fn register_private_key(label: &str, key_pem: &str) {
    let b64 = base64::engine::general_purpose::STANDARD;
    for block in pem::parse_many(key_pem).expect("key PEM") {
        register(
            &format!("{label} (DER base64)"),
            &b64.encode(block.contents()),
        );
    }
    for (i, line) in key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .enumerate()
    {
        register(&format!("{label} (PEM line {})", i + 1), line);
    }
    register(&format!("{label} (Secret data)"), &b64.encode(key_pem));
}

/// This test process's run directory (created on first use).
pub fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = match std::env::var_os("E2E_OUTPUT_DIR") {
            Some(d) => PathBuf::from(d),
            None => {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                output_root().join(format!("run-{secs}-{}", std::process::id()))
            }
        };
        std::fs::create_dir_all(&dir).expect("e2e output directory");
        dir
    })
}

fn output_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-output")
}

/// Resources whose Events and status the scan covers.
const AUDITED: [&str; 5] = [
    "events",
    "certificaterequests",
    "certificatesigningrequests",
    "pkiissuers",
    "pkiclusterissuers",
];

/// One audited object version as a line: Events whole, the rest as kind/name/status.
fn audit_line(resource: &str, obj: &Value) -> Option<String> {
    if !AUDITED.contains(&resource) {
        return None;
    }
    let meta = &obj["metadata"];
    let line = if resource == "events" {
        obj.clone()
    } else {
        json!({
            "resource": resource,
            "namespace": meta["namespace"],
            "name": meta["name"],
            "resourceVersion": meta["resourceVersion"],
            "status": obj["status"],
        })
    };
    Some(line.to_string())
}

/// `Env::drop`'s hook: dump what this environment's controllers wrote (an environment without
/// controllers, such as a view, wrote nothing of its own).
pub fn on_env_drop(
    ns: &str,
    controllers: usize,
    logs: impl FnOnce() -> String,
    server: Option<&test_apiserver::TestApiServer>,
) {
    if controllers == 0 {
        return;
    }
    let Some(server) = server else {
        eprintln!(
            "leak scan: {ns}: no in-process API server to read Events and status from; not dumped"
        );
        return;
    };
    register("test API server admin token", &server.admin_token());
    if let Err(e) = dump(ns, &logs(), &server.written_objects()) {
        eprintln!("leak scan: {ns}: dumping the output failed: {e}");
    }
}

/// Dump what one environment's controllers wrote into `run_dir()/<ns>/`: called from
/// `Env::drop` while the test API server still runs.
pub fn dump(
    ns: &str,
    logs: &str,
    written: &[(String, std::sync::Arc<Value>)],
) -> std::io::Result<PathBuf> {
    let dir = run_dir().join(ns);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("pki-issuer.log"), logs)?;
    let objects: String = written
        .iter()
        .filter_map(|(r, o)| audit_line(r, o))
        .map(|l| l + "\n")
        .collect();
    std::fs::write(dir.join("objects.jsonl"), objects)?;
    let secrets: BTreeMap<String, String> = registry().lock().unwrap().clone();
    std::fs::write(
        dir.join("secrets.json"),
        serde_json::to_string(&secrets).unwrap(),
    )?;
    Ok(dir)
}

/// A leak: where, and which secret (by label).
#[derive(Debug, PartialEq)]
pub struct Finding {
    /// File, relative to the run directory.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The secret's label, or the key header.
    pub what: String,
}

/// What a scan saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Environments (directories with `secrets.json`).
    pub envs: usize,
    /// Files and lines scanned.
    pub files: usize,
    /// Lines scanned.
    pub lines: usize,
    /// Distinct secrets searched for.
    pub secrets: usize,
    /// Leaks.
    pub findings: Vec<Finding>,
}

/// Scan every file under `run` for the union of its registries and for private-key headers.
pub fn scan(run: &Path) -> Report {
    let mut env_dirs = Vec::new();
    let mut secrets: BTreeMap<String, String> = BTreeMap::new();
    for entry in std::fs::read_dir(run).expect("run directory").flatten() {
        let reg = entry.path().join("secrets.json");
        if let Ok(text) = std::fs::read_to_string(&reg) {
            let map: BTreeMap<String, String> = serde_json::from_str(&text).expect("secrets.json");
            secrets.extend(map);
            env_dirs.push(entry.path());
        }
    }
    let mut patterns: Vec<&str> = secrets.keys().map(String::as_str).collect();
    let mut labels: Vec<&str> = secrets.values().map(String::as_str).collect();
    patterns.push(KEY_HEADER);
    labels.push("a private-key PEM header");
    let ac = aho_corasick::AhoCorasick::new(&patterns).expect("patterns");
    let mut report = Report {
        envs: env_dirs.len(),
        secrets: secrets.len(),
        ..Default::default()
    };
    env_dirs.sort();
    for dir in env_dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n != "secrets.json"))
            .collect();
        files.sort();
        for file in files {
            let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
            let rel = file.strip_prefix(run).unwrap().display().to_string();
            report.files += 1;
            for (i, line) in text.lines().enumerate() {
                report.lines += 1;
                let mut seen = std::collections::BTreeSet::new();
                for m in ac.find_overlapping_iter(line) {
                    if seen.insert(m.pattern().as_usize()) {
                        report.findings.push(Finding {
                            file: rel.clone(),
                            line: i + 1,
                            what: labels[m.pattern().as_usize()].to_string(),
                        });
                    }
                }
            }
        }
    }
    report
}

/// The run to scan: `$E2E_OUTPUT_DIR`, else the newest run under the default root.
fn run_to_scan() -> PathBuf {
    if let Some(d) = std::env::var_os("E2E_OUTPUT_DIR") {
        return PathBuf::from(d);
    }
    std::fs::read_dir(output_root())
        .expect("no e2e output: run the e2e suite first")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .expect("no e2e run directory")
}

/// The final check `make test` runs after the e2e suite.
#[test]
#[ignore = "run by `make test` after the e2e suite: scans that run's output (E2E_OUTPUT_DIR)"]
fn scan_e2e_output() {
    let run = run_to_scan();
    let report = scan(&run);
    println!(
        "leak scan of {}: {} environments, {} files, {} lines, {} secrets, {} findings",
        run.display(),
        report.envs,
        report.files,
        report.lines,
        report.secrets,
        report.findings.len()
    );
    assert!(
        report.envs > 0 && report.secrets > 0 && report.lines > 0,
        "nothing to scan in {}: did the e2e suite run with this E2E_OUTPUT_DIR?",
        run.display()
    );
    for f in &report.findings {
        eprintln!("LEAK {}:{}: {}", f.file, f.line, f.what);
    }
    assert!(
        report.findings.is_empty(),
        "{} secret(s) found in pki-issuer output (files and lines above)",
        report.findings.len()
    );
}

#[cfg(test)]
mod tests {
    /// Positive control: a seeded leak in a log line, an Event and a status is caught, with
    /// file and line, and the report never contains the secret.
    #[test]
    fn scanner_catches_a_seeded_leak() {
        let key = rcgen::KeyPair::generate().unwrap();
        let key_pem = key.serialize_pem();
        super::register_private_key("control key", &key_pem);
        super::register("control auth key", "0f1e2d3c4b5a69788796a5b4c3d2e1f0");
        let der_b64 = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            key.serialize_der(),
        );
        let body_line = key_pem.lines().nth(1).unwrap().to_string();

        let run = tempfile::tempdir().unwrap();
        let env = run.path().join("e2e-control");
        std::fs::create_dir_all(&env).unwrap();
        let secrets = super::registry().lock().unwrap().clone();
        std::fs::write(
            env.join("secrets.json"),
            serde_json::to_string(&secrets).unwrap(),
        )
        .unwrap();
        std::fs::write(
            env.join("pki-issuer.log"),
            format!("INFO starting\nWARN loaded key line {body_line} oops\nINFO done\n"),
        )
        .unwrap();
        let event = serde_json::json!({"note": format!("signer {der_b64}"), "reason": "Issued"});
        let status = serde_json::json!({"status": {"conditions": [{"message": "auth 0f1e2d3c4b5a69788796a5b4c3d2e1f0 refused"}]}});
        let header = serde_json::json!({"status": {"ca": "-----BEGIN EC PRIVATE KEY-----"}});
        std::fs::write(
            env.join("objects.jsonl"),
            format!("{event}\n{{\"clean\":true}}\n{status}\n{header}\n"),
        )
        .unwrap();

        let report = super::scan(run.path());
        let got: Vec<(String, usize)> = report
            .findings
            .iter()
            .map(|f| (f.file.clone(), f.line))
            .collect();
        for want in [
            ("e2e-control/pki-issuer.log".to_string(), 2),
            ("e2e-control/objects.jsonl".to_string(), 1),
            ("e2e-control/objects.jsonl".to_string(), 3),
            ("e2e-control/objects.jsonl".to_string(), 4),
        ] {
            assert!(got.contains(&want), "{want:?} not reported: {got:?}");
        }
        assert!(!got
            .iter()
            .any(|(f, l)| f.ends_with("objects.jsonl") && *l == 2));
        assert!(!got
            .iter()
            .any(|(f, l)| f.ends_with(".log") && (*l == 1 || *l == 3)));
        let printed = format!("{:?}", report.findings);
        assert!(!printed.contains(&body_line) && !printed.contains(&der_b64));
        assert!(!printed.contains("0f1e2d3c4b5a69788796a5b4c3d2e1f0"));
        assert!(printed.contains("control key (PEM line 1)"), "{printed}");
        assert!(printed.contains("control auth key"), "{printed}");
    }

    #[test]
    fn short_values_are_not_registered() {
        super::register("too short", "abc");
        assert!(!super::registry().lock().unwrap().contains_key("abc"));
    }
}
