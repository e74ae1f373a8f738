//! The pkcs11 backend against real SoftHSM2 tokens. One token directory per test process (a
//! PKCS#11 module reads its configuration once, at C_Initialize); each test its own token.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use super::*;
use crate::api::issuer::{IssuerKey, IssuerKind, IssuerSpec, KeyRef, PemSource, PolicySpec};
use crate::issuance::remote_slots::{Limits, RemoteSlots};
use crate::issuance::{issue, Outcome, RequestInput};
use crate::pki::testutil::{self, KeyKind};
use crate::pki::RequestContext;
use crate::signers::load::{self, LoadedIssuer, ObjectData, ReadResult};

#[path = "../../../e2e/tests/softhsm.rs"]
mod softhsm;
use softhsm::{SoftHsm, MODULE};

/// Every test's token, made before the module is first loaded (SoftHSM2 finds tokens at
/// C_Initialize).
const TOKENS: [&str; 10] = [
    "rsa-pss",
    "every-p256",
    "every-p384",
    "every-rsa2048",
    "every-ed25519",
    "attrs",
    "pin",
    "removable",
    "pool",
    "pod",
];

/// The pkcs11 tests run one at a time: the removal test re-initialises the module.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

static HSM: LazyLock<(tempfile::TempDir, SoftHsm)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new(dir.path());
    for t in TOKENS {
        hsm.init_token(t, PIN);
    }
    // Read by the module at C_Initialize, in this process: before any test loads it.
    std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
    (dir, hsm)
});

fn hsm() -> &'static SoftHsm {
    &HSM.1
}

struct Objects(BTreeMap<String, ObjectData>);

impl ObjectSource for Objects {
    fn namespace(&self) -> &str {
        "pki"
    }
    fn secret(&self, name: &str) -> ReadResult<'_> {
        let v = self.0.get(name).cloned();
        Box::pin(async move { Ok(v) })
    }
    fn config_map(&self, name: &str) -> ReadResult<'_> {
        self.secret(name)
    }
}

/// A token `label` with one key of `key_type`, its intermediate and the objects an issuer reads.
struct Fixture {
    token: String,
    objects: Objects,
    root: testutil::Ca,
}

const PIN: &str = "user-pin-1";

fn fixture(token: &str, key_type: &str) -> Fixture {
    let hsm = hsm();
    assert!(TOKENS.contains(&token), "add {token} to TOKENS");
    let spki = hsm.keygen(token, PIN, key_type, "ca-key", "01");
    let root = testutil::root(KeyKind::P384, "HSM Test Root");
    let int = testutil::ca_for_public_key(&root, &spki, &format!("{token} intermediate"), 0);
    let mut objects = BTreeMap::new();
    objects.insert("roots".to_string(), data(&[("ca.crt", &root.pem)]));
    objects.insert("int-ca".to_string(), data(&[("tls.crt", &int)]));
    objects.insert("hsm-pin".to_string(), data(&[("pin", &format!("{PIN}\n"))]));
    Fixture {
        token: token.to_string(),
        objects: Objects(objects),
        root,
    }
}

fn data(kv: &[(&str, &str)]) -> ObjectData {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn p11(token: &str, key_label: &str) -> Pkcs11SignerSpec {
    Pkcs11SignerSpec {
        module: MODULE.into(),
        token_label: token.into(),
        key_label: Some(key_label.into()),
        key_id: None,
        pin_secret_ref: KeyRef {
            name: "hsm-pin".into(),
            key: "pin".into(),
        },
        certificate_secret_ref: KeyRef {
            name: "int-ca".into(),
            key: "tls.crt".into(),
        },
    }
}

fn spec(p: Pkcs11SignerSpec) -> IssuerSpec {
    IssuerSpec {
        pkcs11: Some(p),
        trust_anchors: PemSource {
            config_map: Some(KeyRef {
                name: "roots".into(),
                key: "ca.crt".into(),
            }),
            secret: None,
        },
        policy: Some(PolicySpec {
            dns_names: Some(vec!["*.apps.svc".into()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn opts(allowed: &[&str], namespaced: bool, allow_namespaced: bool) -> LoadOptions {
    let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
    LoadOptions {
        pkcs11: Pkcs11Access {
            modules: Arc::new(Pkcs11Modules::parse(&allowed, allow_namespaced).unwrap()),
            namespaced,
        },
        ..Default::default()
    }
}

async fn load_with(
    spec: &IssuerSpec,
    f: &Fixture,
    o: &LoadOptions,
) -> Result<LoadedIssuer, LoadError> {
    load::load(spec, &f.objects, time::OffsetDateTime::now_utc(), o).await
}

async fn issue_one(loaded: &Arc<LoadedIssuer>) -> Outcome {
    let (_, csr) = testutil::csr(KeyKind::P256, None, &["web.apps.svc"]);
    let input = RequestInput {
        csr: csr.pem().unwrap().into_bytes(),
        duration: Some(std::time::Duration::from_secs(3600)),
        is_ca: false,
        usages: [
            "digital signature",
            "key encipherment",
            "server auth",
            "client auth",
        ]
        .map(String::from)
        .to_vec(),
        context: RequestContext {
            namespace: Some("apps".into()),
            service_account: None,
        },
        pod: None,
    };
    issue_input(loaded, input).await
}

/// One request through the production pipeline, for cluster issuer `hsm`.
async fn issue_input(loaded: &Arc<LoadedIssuer>, input: RequestInput) -> Outcome {
    let slots = RemoteSlots::new(Limits {
        per_issuer: 1,
        per_endpoint: 1,
        total: 1,
    });
    let key = IssuerKey {
        kind: IssuerKind::Cluster,
        namespace: None,
        name: "hsm".into(),
    };
    issue(input, loaded.clone(), &slots, &key).await
}

fn issued_leaf(outcome: &Outcome) -> Vec<u8> {
    match outcome {
        Outcome::Issued { chain_pem, .. } => {
            pem::parse_many(chain_pem).unwrap()[0].contents().to_vec()
        }
        other => panic!("not issued: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_keys_of_every_type_sign_certificates_that_pass_every_check() {
    let _serial = SERIAL.lock().await;
    for (token, key_type, mechanism, sig_oid) in [
        (
            "p256",
            "EC:prime256v1",
            "CKM_ECDSA over SHA-256",
            "1.2.840.10045.4.3.2",
        ),
        (
            "p384",
            "EC:secp384r1",
            "CKM_ECDSA over SHA-384",
            "1.2.840.10045.4.3.3",
        ),
        (
            "rsa2048",
            "rsa:2048",
            "CKM_SHA256_RSA_PKCS",
            "1.2.840.113549.1.1.11",
        ),
        ("ed25519", "EC:edwards25519", "CKM_EDDSA", "1.3.101.112"),
    ] {
        let f = fixture(&format!("every-{token}"), key_type);
        let loaded = load_with(
            &spec(p11(&f.token, "ca-key")),
            &f,
            &opts(&[MODULE], false, false),
        )
        .await
        .unwrap_or_else(|e| panic!("{token}: {e}"));
        assert_eq!(loaded.signer.backend(), "pkcs11");
        assert!(
            loaded.notes.iter().any(|n| n.contains(mechanism)),
            "{token}: {:?}",
            loaded.notes
        );
        let leaf = issued_leaf(&issue_one(&Arc::new(loaded)).await);
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        assert_eq!(
            cert.signature_algorithm.algorithm.to_id_string(),
            sig_oid,
            "{token}"
        );
        assert_eq!(
            cert.issuer().to_string(),
            format!("O=pki-issuer tests, CN={} intermediate", f.token),
            "{token}"
        );
        // The key never left the token: sensitive and not extractable, as the token says.
        let objects = hsm().list_objects(&f.token, PIN);
        let private = objects
            .split("Private Key Object")
            .nth(1)
            .expect("a private key object");
        let access = private
            .lines()
            .find(|l| l.trim_start().starts_with("Access:"))
            .unwrap();
        assert!(access.contains("sensitive"), "{token}: {access}");
        assert!(access.contains("never extractable"), "{token}: {access}");
        assert!(
            !access
                .replace("never extractable", "")
                .contains("extractable"),
            "{token}: {access}"
        );
        let _ = &f.root;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_certified_with_rsassa_pss_signs_leaves_with_pss() {
    let _serial = SERIAL.lock().await;
    let mut f = fixture("rsa-pss", "rsa:2048");
    let spki = hsm().keygen(&f.token, PIN, "rsa:2048", "pss-key", "02");
    let root = testutil::root(KeyKind::Rsa2048, "PSS Root");
    let int = testutil::resign_with_pss(
        &testutil::ca_for_public_key(&root, &spki, "PSS intermediate", 0),
        &root,
    );
    f.objects
        .0
        .insert("roots".into(), data(&[("ca.crt", &root.pem)]));
    f.objects
        .0
        .insert("int-ca".into(), data(&[("tls.crt", &int)]));
    let o = opts(&[MODULE], false, false);
    let loaded = load_with(&spec(p11(&f.token, "pss-key")), &f, &o)
        .await
        .unwrap();
    assert!(
        loaded
            .notes
            .iter()
            .any(|n| n.contains("CKM_SHA256_RSA_PKCS_PSS")),
        "{:?}",
        loaded.notes
    );
    let outcome = issue_one(&Arc::new(loaded)).await;
    let leaf = issued_leaf(&outcome);
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.113549.1.1.10"
    );
    // openssl agrees (the PSS parameters as RFC 4055 encodes them).
    let dir = tempfile::tempdir().unwrap();
    let Outcome::Issued { chain_pem, .. } = &outcome else {
        unreachable!()
    };
    let blocks = pem::parse_many(chain_pem).unwrap();
    std::fs::write(dir.path().join("root.pem"), &root.pem).unwrap();
    std::fs::write(dir.path().join("int.pem"), pem::encode(&blocks[1])).unwrap();
    std::fs::write(dir.path().join("leaf.pem"), pem::encode(&blocks[0])).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-CAfile",
            "root.pem",
        ])
        .args(["-untrusted", "int.pem", "leaf.pem"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The TBSCertificate names the same algorithm as the outer one.
    assert_eq!(
        cert.tbs_certificate.signature.algorithm,
        cert.signature_algorithm.algorithm
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_reads_the_key_attributes_and_refuses_an_extractable_key() {
    let _serial = SERIAL.lock().await;
    let f = fixture("attrs", "EC:prime256v1");
    let o = opts(&[MODULE], false, false);
    load_with(&spec(p11(&f.token, "ca-key")), &f, &o)
        .await
        .unwrap();
    // The attributes as the backend reads them (CKA_EXTRACTABLE, CKA_SENSITIVE).
    let token = token::token(token::module(Path::new(MODULE)).unwrap(), &f.token);
    let spki = hsm().keygen(&f.token, PIN, "EC:prime256v1", "second", "02");
    let (_, facts) = TokenKey::find(
        token.clone(),
        &KeySelector::Label("second".into()),
        Scheme::EcdsaP256,
        spki[spki.len() - 65..].to_vec(),
    )
    .map_err(|e| e.to_string())
    .unwrap();
    assert_eq!(
        facts,
        key::KeyFacts {
            extractable: false,
            sensitive: true
        }
    );
    // Another key of the same type than the certificate's: the challenge does not verify.
    let err = load_with(&spec(p11(&f.token, "second")), &f, &o)
        .await
        .err()
        .expect("a key that is not the certificate's");
    assert_eq!(err, LoadError::Pki(PkiError::SignerKeyMismatch), "{err}");
    // With its own certificate (a rotation): Ready.
    let int2 = testutil::ca_for_public_key(&f.root, &spki, "attrs second", 0);
    let mut f = f;
    f.objects
        .0
        .insert("int-2".into(), data(&[("tls.crt", &int2)]));
    let mut rotated = p11(&f.token, "second");
    rotated.certificate_secret_ref.name = "int-2".into();
    let loaded = load_with(&spec(rotated), &f, &o).await.unwrap();
    issued_leaf(&issue_one(&Arc::new(loaded)).await);
    // A key pkcs11-tool made extractable: refused, with the attributes named.
    let args = [
        "--module",
        MODULE,
        "--token-label",
        "attrs",
        "--login",
        "--pin",
        PIN,
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--label",
        "leaky",
        "--id",
        "03",
        "--extractable",
    ];
    let st = std::process::Command::new("pkcs11-tool")
        .args(args)
        .env("SOFTHSM2_CONF", &hsm().conf)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let err = load_with(&spec(p11(&f.token, "leaky")), &f, &o)
        .await
        .err()
        .expect("refused");
    let m = err.to_string();
    assert!(
        m.contains("can leave the token") && m.contains("CKA_EXTRACTABLE=true"),
        "{m}"
    );
    assert!(!err.is_retryable());
    // By CKA_ID instead of the label.
    let mut by_id = p11(&f.token, "unused");
    by_id.key_label = None;
    by_id.key_id = Some("01".into());
    load_with(&spec(by_id), &f, &o).await.unwrap();
    // A label no key has: retryable (a rotation may create it next).
    let err = load_with(&spec(p11(&f.token, "not-yet")), &f, &o)
        .await
        .err()
        .unwrap();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .contains("no private key with label \"not-yet\""),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_is_refused_never_shown_and_not_tried_again() {
    let _serial = SERIAL.lock().await;
    let mut f = fixture("pin", "EC:prime256v1");
    let o = opts(&[MODULE], false, false);
    f.objects
        .0
        .insert("hsm-pin".into(), data(&[("pin", "wrong-pin-42")]));
    for attempt in 0..2 {
        let err = load_with(&spec(p11(&f.token, "ca-key")), &f, &o)
            .await
            .err()
            .expect("refused");
        let m = err.to_string();
        assert!(!m.contains("wrong-pin-42"), "{m}");
        assert!(!err.is_retryable(), "{m}");
        if attempt == 0 {
            assert!(m.contains("refused the PIN (PinIncorrect)"), "{m}");
        } else {
            assert!(
                m.contains("not tried again until the PIN Secret changes"),
                "{m}"
            );
        }
    }
    f.objects.0.insert("hsm-pin".into(), data(&[("pin", PIN)]));
    let loaded = load_with(&spec(p11(&f.token, "ca-key")), &f, &o)
        .await
        .unwrap();
    issued_leaf(&issue_one(&Arc::new(loaded)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_outside_the_allowlist_are_refused_and_never_loaded() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join("evil.so");
    std::fs::write(&evil, b"not a library").unwrap();
    let evil = evil.to_str().unwrap().to_string();
    let root = testutil::root(KeyKind::P384, "unused");
    let roots = data(&[("ca.crt", &root.pem)]);
    let f = Fixture {
        token: "none".into(),
        objects: Objects(BTreeMap::from([("roots".to_string(), roots)])),
        root,
    };
    let mut p = p11("none", "k");
    for (module, o, want) in [
        (
            evil.as_str(),
            opts(&[], false, false),
            "no PKCS#11 module is allowed",
        ),
        (
            evil.as_str(),
            opts(&[MODULE], false, false),
            "is not in --allowed-pkcs11-modules",
        ),
        (
            "relative/lib.so",
            opts(&[MODULE], false, false),
            "not an absolute path",
        ),
        (
            "/usr/lib/softhsm/../softhsm/libsofthsm2.so",
            opts(&[MODULE], false, false),
            "not an absolute path",
        ),
        (
            MODULE,
            opts(&[MODULE], true, false),
            "namespaced PKIIssuers may not use PKCS#11",
        ),
    ] {
        p.module = module.into();
        let err = load_with(&spec(p.clone()), &f, &o)
            .await
            .err()
            .expect(module);
        assert!(matches!(err, LoadError::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains(want), "{module}: {err}");
    }
    assert!(!token::is_loaded(Path::new(&evil)));
    assert!(Pkcs11Modules::parse(&["lib.so".into()], false).is_err());
    assert!(Pkcs11Modules::parse(&["/a/./b.so".into()], false).is_err());
    // With the opt-in, a namespaced issuer gets past the allowlist (to the missing Secret).
    p.module = MODULE.into();
    let err = load_with(&spec(p), &f, &opts(&[MODULE], true, true))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_token_stops_issuance_with_a_clear_reason_until_it_returns() {
    let _serial = SERIAL.lock().await;
    let f = fixture("removable", "EC:prime256v1");
    let dir = std::fs::read_dir(hsm().dir.join("tokens"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read(p.join("token.object"))
                .map(|b| b.windows(9).any(|w| w == b"removable"))
                .unwrap_or(false)
        })
        .expect("the token's directory");
    let o = opts(&[MODULE], false, false);
    let s = spec(p11(&f.token, "ca-key"));
    let loaded = Arc::new(load_with(&s, &f, &o).await.unwrap());
    issued_leaf(&issue_one(&loaded).await);
    // Out of the token directory: the module no longer sees it (a pulled HSM, a lost partition).
    let away = hsm().dir.join("removable-token-away");
    std::fs::rename(&dir, &away).unwrap();
    match issue_one(&loaded).await {
        Outcome::IssuerError(m) => {
            eprintln!("after removal: {m}");
            assert!(m.contains("not available"), "{m}")
        }
        other => panic!("signing with a removed token: {other:?}"),
    }
    // The issuer check: not Ready, retryable, the token named.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let err = load_with(&s, &f, &o).await.err().expect("token gone");
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("\"removable\""), "{err}");
    std::fs::rename(&away, &dir).unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let loaded = Arc::new(load_with(&s, &f, &o).await.unwrap());
    issued_leaf(&issue_one(&loaded).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_issuance_shares_a_bounded_pool_of_sessions() {
    let _serial = SERIAL.lock().await;
    let f = fixture("pool", "EC:prime256v1");
    let o = opts(&[MODULE], false, false);
    let loaded = Arc::new(
        load_with(&spec(p11(&f.token, "ca-key")), &f, &o)
            .await
            .unwrap(),
    );
    let jobs: Vec<_> = (0..40)
        .map(|_| {
            let loaded = loaded.clone();
            tokio::spawn(async move { issue_one(&loaded).await })
        })
        .collect();
    for j in jobs {
        issued_leaf(&j.await.unwrap());
    }
    // A token is a remote-call endpoint of its own: its signatures take the remote slots.
    let url = loaded.signer.remote_url().expect("slots").to_string();
    assert_eq!(url, endpoint(MODULE, "pool"));
    assert_ne!(url, endpoint(MODULE, "other"));
    assert_ne!(url, endpoint("/opt/other.so", "pool"));
    assert_eq!(
        crate::issuance::remote_slots::endpoint(&url),
        format!("{url}:0"),
        "one slot key per token"
    );
    let token = token::token(token::module(Path::new(MODULE)).unwrap(), "pool");
    let open = token.open_sessions();
    assert!(
        (1..=token::MAX_SESSIONS_PER_TOKEN).contains(&open),
        "{open} sessions open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_certificates_in_both_key_forms_are_signed_by_the_token_key() {
    use crate::issuance::pod::{PodKey, PodRequest};
    use rcgen::{PublicKeyData, SigningKey};
    let _serial = SERIAL.lock().await;
    let f = fixture("pod", "EC:prime256v1");
    let mut s = spec(p11(&f.token, "ca-key"));
    s.pod_certificates = Some(crate::api::pod_certificates::PodCertificatesSpec {
        uri_template: None,
        dns_name_templates: vec!["{serviceAccount}.{namespace}.svc".into()],
    });
    let loaded = Arc::new(
        load_with(&s, &f, &opts(&[MODULE], false, false))
            .await
            .unwrap(),
    );
    let pod_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let uid = "7d1c0c51-3f0e-4c55-9a52-0f6b2a1e9e11";
    let mut stub = rcgen::CertificateParams::default();
    stub.distinguished_name = rcgen::DistinguishedName::new();
    let stub = stub.serialize_request(&pod_key).unwrap().der().to_vec();
    let pkix = PodKey::Pkix {
        spki: pod_key.subject_public_key_info(),
        proof: pod_key.sign(uid.as_bytes()).unwrap(),
    };
    for key in [PodKey::StubCsr(stub), pkix] {
        let input = RequestInput {
            csr: Vec::new(),
            duration: Some(std::time::Duration::from_secs(86400)),
            is_ca: false,
            usages: ["digital signature", "server auth", "client auth"]
                .map(String::from)
                .to_vec(),
            context: RequestContext {
                namespace: Some("apps".into()),
                service_account: Some("web".into()),
            },
            pod: Some(PodRequest {
                namespace: "apps".into(),
                service_account: "web".into(),
                pod_uid: uid.into(),
                key: key.clone(),
                max_lifetime: std::time::Duration::from_secs(86400),
            }),
        };
        let leaf = issued_leaf(&issue_input(&loaded, input).await);
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        assert_eq!(
            cert.public_key().raw,
            pod_key.subject_public_key_info().as_slice(),
            "{key:?}"
        );
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            format!("{:?}", san.value.general_names),
            r#"[DNSName("web.apps.svc")]"#
        );
        assert_eq!(
            cert.issuer().to_string(),
            "O=pki-issuer tests, CN=pod intermediate"
        );
    }
}
