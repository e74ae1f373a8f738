//! `make bench-sign`: the issuance path without Kubernetes, one thread, per signer key type
//! (P-256, P-384, Ed25519, RSA-2048) and leaf key type (P-256, RSA-2048).
//!
//! Per configuration, in the same run and alternating in short rounds so load changes hit
//! both alike:
//! * issuances/s of the production pipeline: CSR PEM parsed and its signature verified,
//!   policy, template, signing (`SecretSigner`), after-signing checks against the issuer's
//!   validated chain (our walk + rustls-webpki), PEM output (`pki_issuer::issuance`);
//! * the crypto floor with the same library (aws-lc-rs): one CSR signature verification,
//!   one signature, one verification of the leaf's signature;
//! * Go's issue path (benches/go/signbench.go: crypto/x509 parse CSR, CheckSignature,
//!   CreateCertificate, PEM) on the same keys and CSR, when `go` (or `$GO`) is installed.
//!
//! * the `pkcs11` row: the same pipeline with the P-256 signer key in a SoftHSM2 token
//!   (signing through `C_Sign` on a blocking thread, the key never in the process), beside the
//!   in-process P-256 signer.
//!
//! The last line is machine-readable:
//! `sign-bench p256: <issuances/s> issuances/s, <ratio> of crypto floor`.
//!
//! `cargo bench --bench signing` (BENCH_SECONDS per configuration, default 2). Run without
//! `--bench` (as `cargo test --all-targets` does) it is a smoke run of a few milliseconds per
//! configuration, without Go.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use pki_issuer::issuance::{self, RequestInput};
use pki_issuer::pki::testutil::{self, CaOpts, KeyKind};
use pki_issuer::pki::{self, LeafExtensions, Policy, RequestContext, ValidatedChain};
use pki_issuer::signers::load::LoadedIssuer;
use pki_issuer::signers::secret::SecretSigner;
use pki_issuer::signers::{SignRequest, Signer};
use rcgen::{KeyPair, KeyUsagePurpose, SigningKey};
use x509_parser::prelude::{FromDer, X509Certificate};

#[path = "../e2e/tests/softhsm.rs"]
mod softhsm;

#[derive(Clone, Copy)]
struct Kind {
    name: &'static str,
    key: KeyKind,
    verify: &'static dyn VerificationAlgorithm,
}

const P256: Kind = Kind {
    name: "p256",
    key: KeyKind::P256,
    verify: &sig::ECDSA_P256_SHA256_ASN1,
};
const P384: Kind = Kind {
    name: "p384",
    key: KeyKind::P384,
    verify: &sig::ECDSA_P384_SHA384_ASN1,
};
const ED25519: Kind = Kind {
    name: "ed25519",
    key: KeyKind::Ed25519,
    verify: &sig::ED25519,
};
const RSA2048: Kind = Kind {
    name: "rsa2048",
    key: KeyKind::Rsa2048,
    verify: &sig::RSA_PKCS1_2048_8192_SHA256,
};

const USAGES: [&str; 4] = [
    "digital signature",
    "key encipherment",
    "server auth",
    "client auth",
];

/// A P-384 root and a signing intermediate of `kind` (pathLen 0), as an issuer loads them.
fn pki_for(kind: Kind) -> (String, String, String) {
    let root = testutil::root(KeyKind::P384, "Bench Root");
    let int = testutil::ca(
        kind.key,
        "Bench Intermediate",
        Some(&root),
        CaOpts {
            path_len: Some(0),
            key_usages: vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign],
            ..CaOpts::default()
        },
    );
    (root.pem, int.pem, int.key_pem)
}

/// One signer/leaf configuration, set up like a Ready issuer.
struct Setup {
    loaded: LoadedIssuer,
    signer_key: KeyPair,
    csr_pem: String,
    usages: Vec<String>,
    ctx: RequestContext,
    floor: Floor,
}

/// The three operations of the crypto floor, on real inputs of this configuration.
struct Floor {
    csr_alg: &'static dyn VerificationAlgorithm,
    csr_key: Vec<u8>,
    csr_tbs: Vec<u8>,
    csr_sig: Vec<u8>,
    leaf_alg: &'static dyn VerificationAlgorithm,
    signer_pub: Vec<u8>,
    leaf_tbs: Vec<u8>,
}

fn setup(signer: Kind, leaf: Kind, dir: &Path) -> Setup {
    let (root_pem, int_pem, int_key_pem) = pki_for(signer);
    let anchors = pki::parse_pem_certs(&root_pem).unwrap();
    let secret = SecretSigner::from_pem(&int_pem, &int_key_pem).unwrap();
    let chain = ValidatedChain::new(
        secret.chain().clone(),
        Some(secret.key()),
        anchors.clone(),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let policy = Policy {
        dns_names: Some(vec!["*.{namespace}.svc".into()]),
        ..Default::default()
    };
    let loaded = LoadedIssuer {
        signer: Arc::new(secret),
        anchors_pem: pki::certs_to_pem(&anchors),
        policy,
        extensions: LeafExtensions::default(),
        signer_info: chain.info().clone(),
        chain: Arc::new(chain),
        anchor_infos: vec![],
        notes: vec![],
        pod_certificates: None,
    };
    let (_, csr) = testutil::csr(leaf.key, None, &["web.apps.svc"]);
    let csr_pem = csr.pem().unwrap();
    let (_, parsed) =
        x509_parser::certification_request::X509CertificationRequest::from_der(csr.der()).unwrap();
    let signer_key = KeyPair::from_pem(&int_key_pem).unwrap();
    let ctx = RequestContext {
        namespace: Some("apps".into()),
        service_account: None,
    };
    let usages: Vec<String> = USAGES.iter().map(|s| s.to_string()).collect();
    // A real leaf of this configuration, for the floor's sign and verify inputs.
    let leaf_der = issue_once(&loaded, &csr_pem, &usages, &ctx, true);
    let (_, leaf_cert) = X509Certificate::from_der(&leaf_der).unwrap();
    let floor = Floor {
        csr_alg: leaf.verify,
        csr_key: parsed
            .certification_request_info
            .subject_pki
            .subject_public_key
            .data
            .to_vec(),
        csr_tbs: parsed.certification_request_info.raw.to_vec(),
        csr_sig: parsed.signature_value.data.to_vec(),
        leaf_alg: signer.verify,
        signer_pub: signer_key.public_key_raw().to_vec(),
        leaf_tbs: leaf_cert.tbs_certificate.as_ref().to_vec(),
    };
    // Files for the Go program: the signer certificate and key, and the CSR.
    let sub = dir.join(format!("{}-{}", signer.name, leaf.name));
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("signer.pem"), &int_pem).unwrap();
    std::fs::write(sub.join("signer.key"), &int_key_pem).unwrap();
    std::fs::write(sub.join("csr.pem"), &csr_pem).unwrap();
    Setup {
        loaded,
        signer_key,
        csr_pem,
        usages,
        ctx,
        floor,
    }
}

/// One issuance through the production pipeline; returns the leaf DER when `want_leaf`.
fn issue_once(
    loaded: &LoadedIssuer,
    csr_pem: &str,
    usages: &[String],
    ctx: &RequestContext,
    want_leaf: bool,
) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc();
    let input = RequestInput {
        csr: csr_pem.as_bytes().to_vec(),
        duration: Some(Duration::from_secs(86400)),
        is_ca: false,
        usages: usages.to_vec(),
        context: ctx.clone(),
        pod: None,
    };
    let prepared = issuance::prepare(&input, loaded, now).expect("prepare");
    let leaf = futures::executor::block_on(loaded.signer.sign(SignRequest {
        csr: &prepared.csr,
        template: &prepared.template,
    }))
    .expect("sign");
    let issued = issuance::verify_issued(&leaf, &prepared, loaded, now).expect("verify");
    assert!(issued.chain_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    if want_leaf {
        leaf
    } else {
        Vec::new()
    }
}

fn floor_once(f: &Floor, key: &KeyPair) {
    UnparsedPublicKey::new(f.csr_alg, &f.csr_key)
        .verify(&f.csr_tbs, &f.csr_sig)
        .expect("CSR signature");
    let signature = key.sign(&f.leaf_tbs).expect("sign");
    UnparsedPublicKey::new(f.leaf_alg, &f.signer_pub)
        .verify(&f.leaf_tbs, &signature)
        .expect("leaf signature");
}

/// Runs `op` repeatedly for `budget`; returns (operations, elapsed).
fn timed(budget: Duration, mut op: impl FnMut()) -> (u64, Duration) {
    let started = Instant::now();
    let mut n = 0;
    loop {
        op();
        n += 1;
        let el = started.elapsed();
        if el >= budget {
            return (n, el);
        }
    }
}

/// Go's rate for this configuration, when Go is available.
fn go_rate(go_bin: Option<&Path>, dir: &Path, name: &str, seconds: f64) -> Option<f64> {
    let bin = go_bin?;
    let out = std::process::Command::new(bin)
        .arg(dir.join(name))
        .arg(format!("{seconds}"))
        .env("GOMAXPROCS", "1")
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "sign-bench: Go program failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Builds benches/go/signbench.go with `$GO` or `go` from PATH; `None` (with the reason
/// printed) when there is no Go.
fn build_go(dir: &Path) -> Option<PathBuf> {
    let go = std::env::var("GO").unwrap_or_else(|_| "go".into());
    let version = std::process::Command::new(&go).arg("version").output();
    let Some(version) = version.ok().filter(|o| o.status.success()) else {
        println!("sign-bench: skipped the Go comparison: no `go` on PATH and GO is not set (Debian: apt-get install golang-go)");
        return None;
    };
    let bin = dir.join("signbench");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/go/signbench.go");
    let st = std::process::Command::new(&go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(&src)
        .env("GO111MODULE", "off")
        .status()
        .ok()?;
    if !st.success() {
        println!("sign-bench: skipped the Go comparison: building {src:?} failed");
        return None;
    }
    print!(
        "sign-bench: Go comparison with {}",
        String::from_utf8_lossy(&version.stdout)
    );
    Some(bin)
}

/// Reads the bench's Secrets and ConfigMaps from memory.
struct Objects(std::collections::BTreeMap<String, pki_issuer::signers::load::ObjectData>);

impl pki_issuer::signers::load::ObjectSource for Objects {
    fn namespace(&self) -> &str {
        "bench"
    }
    fn secret(&self, name: &str) -> pki_issuer::signers::load::ReadResult<'_> {
        let v = self.0.get(name).cloned();
        Box::pin(async move { Ok(v) })
    }
    fn config_map(&self, name: &str) -> pki_issuer::signers::load::ReadResult<'_> {
        self.secret(name)
    }
}

/// A P-256 signer whose key is in a SoftHSM2 token under `dir`, loaded by the issuer check,
/// and the runtime whose blocking threads it signs on.
fn pkcs11_issuer(dir: &Path) -> (LoadedIssuer, tokio::runtime::Runtime) {
    use pki_issuer::api::issuer::{IssuerSpec, KeyRef, PemSource, PolicySpec};
    use pki_issuer::api::pkcs11::Pkcs11SignerSpec;
    use pki_issuer::signers::load::{self, LoadOptions};
    use pki_issuer::signers::pkcs11::{Pkcs11Access, Pkcs11Modules};
    const PIN: &str = "bench-pin-1";
    let hsm = softhsm::SoftHsm::new(dir);
    hsm.init_token("bench", PIN);
    let spki = hsm.keygen("bench", PIN, "EC:prime256v1", "bench-ca", "01");
    // Read by the module at C_Initialize (the first load below).
    std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
    let root = testutil::root(KeyKind::P384, "Bench Root");
    let int = testutil::ca_for_public_key(&root, &spki, "Bench HSM Intermediate", 0);
    let data = |k: &str, v: &str| [(k.to_string(), v.as_bytes().to_vec())].into();
    let objects = Objects(
        [
            ("roots".to_string(), data("ca.crt", &root.pem)),
            ("int".to_string(), data("tls.crt", &int)),
            ("pin".to_string(), data("pin", PIN)),
        ]
        .into(),
    );
    let key_ref = |name: &str, key: &str| KeyRef {
        name: name.into(),
        key: key.into(),
    };
    let spec = IssuerSpec {
        pkcs11: Some(Pkcs11SignerSpec {
            module: softhsm::MODULE.into(),
            token_label: "bench".into(),
            key_label: Some("bench-ca".into()),
            key_id: None,
            pin_secret_ref: key_ref("pin", "pin"),
            certificate_secret_ref: key_ref("int", "tls.crt"),
        }),
        trust_anchors: PemSource {
            config_map: Some(key_ref("roots", "ca.crt")),
            secret: None,
        },
        policy: Some(PolicySpec {
            dns_names: Some(vec!["*.{namespace}.svc".into()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = LoadOptions {
        pkcs11: Pkcs11Access {
            modules: Arc::new(Pkcs11Modules::parse(&[softhsm::MODULE.into()], false).unwrap()),
            namespaced: false,
        },
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let loaded = rt
        .block_on(load::load(
            &spec,
            &objects,
            time::OffsetDateTime::now_utc(),
            &opts,
        ))
        .expect("the pkcs11 issuer check");
    (loaded, rt)
}

/// The pkcs11 row: issuances/s with the key in SoftHSM2 and with the same kind of key in
/// process, alternating rounds.
fn pkcs11_row(seconds: f64, dir: &Path) {
    let (token_issuer, rt) = pkcs11_issuer(&dir.join("softhsm"));
    // The token signs on the runtime's blocking threads, as in the controller.
    let _runtime = rt.enter();
    let s = setup(P256, P256, dir);
    let round = Duration::from_secs_f64((seconds / 4.0).max(0.005));
    let (mut tn, mut tt, mut mn, mut mt) = (0u64, Duration::ZERO, 0u64, Duration::ZERO);
    issue_once(&token_issuer, &s.csr_pem, &s.usages, &s.ctx, false);
    for _ in 0..4 {
        let (n, t) = timed(round, || {
            issue_once(&token_issuer, &s.csr_pem, &s.usages, &s.ctx, false);
        });
        tn += n;
        tt += t;
        let (n, t) = timed(round, || {
            issue_once(&s.loaded, &s.csr_pem, &s.usages, &s.ctx, false);
        });
        mn += n;
        mt += t;
    }
    let token = tn as f64 / tt.as_secs_f64();
    let memory = mn as f64 / mt.as_secs_f64();
    println!(
        "sign-bench signer=pkcs11  leaf=p256   : {token:>7.0} issuances/s ({:>6.1} µs), key in SoftHSM2 2.6 (CKM_ECDSA P-256); in-process p256 signer {memory:>7.0}/s ({:>6.1} µs), {:.2} of it",
        1e6 / token,
        1e6 / memory,
        token / memory
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let seconds: f64 = if full {
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2.0)
    } else {
        0.02
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let go_bin = if full {
        build_go(dir.path())
    } else {
        println!("sign-bench: smoke run (no --bench): Go comparison skipped");
        None
    };
    println!(
        "sign-bench: one thread, {seconds}s per configuration; root P-384, signer pathLen 0; CSR with one DNS SAN, usages {USAGES:?}"
    );
    // BENCH_ONLY=p256-p256 runs one configuration (for profiling).
    let only = std::env::var("BENCH_ONLY").ok();
    let mut last = None;
    for signer in [P256, P384, ED25519, RSA2048] {
        for leaf in [P256, RSA2048] {
            let name = format!("{}-{}", signer.name, leaf.name);
            if only.as_ref().is_some_and(|o| *o != name) {
                continue;
            }
            let s = setup(signer, leaf, dir.path());
            let round = Duration::from_secs_f64((seconds / 4.0).max(0.005));
            let (mut pn, mut pt, mut fn_, mut ft) = (0u64, Duration::ZERO, 0u64, Duration::ZERO);
            // Warm up, then alternate so both see the same machine.
            issue_once(&s.loaded, &s.csr_pem, &s.usages, &s.ctx, false);
            floor_once(&s.floor, &s.signer_key);
            for _ in 0..4 {
                let (n, t) = timed(round, || {
                    issue_once(&s.loaded, &s.csr_pem, &s.usages, &s.ctx, false);
                });
                pn += n;
                pt += t;
                let (n, t) = timed(round, || floor_once(&s.floor, &s.signer_key));
                fn_ += n;
                ft += t;
            }
            let rate = pn as f64 / pt.as_secs_f64();
            let floor = fn_ as f64 / ft.as_secs_f64();
            let ratio = rate / floor;
            let go = go_rate(go_bin.as_deref(), dir.path(), &name, seconds);
            let go_text = match go {
                Some(g) => format!("; Go path {g:.0}/s (pki-issuer {:.2}x Go)", rate / g),
                None => String::new(),
            };
            println!(
                "sign-bench signer={:<7} leaf={:<7}: {rate:>7.0} issuances/s ({:>6.1} µs), crypto floor {floor:>7.0}/s ({:>6.1} µs), {ratio:.2} of floor{go_text}",
                signer.name,
                leaf.name,
                1e6 / rate,
                1e6 / floor,
            );
            if signer.name == "p256" && leaf.name == "p256" {
                last = Some((rate, ratio));
            }
        }
    }
    if only.as_ref().is_none_or(|o| o == "pkcs11") {
        pkcs11_row(seconds, dir.path());
    }
    match last {
        Some((rate, ratio)) => {
            println!("sign-bench p256: {rate:.0} issuances/s, {ratio:.2} of crypto floor")
        }
        None => println!("sign-bench: BENCH_ONLY={only:?} skipped the p256-p256 configuration"),
    }
}
