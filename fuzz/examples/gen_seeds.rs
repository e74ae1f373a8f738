//! Writes the seed corpus under `fuzz/corpus/<target>/seed-*` (re-run after changing an input
//! format; keys are fresh each run, so the files change while their meaning does not).
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --no-default-features --example gen_seeds`

use std::path::{Path, PathBuf};

use pki::testutil::{self, Ca, CaOpts, KeyKind};
use pki_issuer_fuzz::csr_policy::{fuzz_key, info_of};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use time::{Date, Month, OffsetDateTime, Time};

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            std::fs::remove_file(p).unwrap();
        }
    }
    dir
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

fn date(y: i32) -> OffsetDateTime {
    OffsetDateTime::new_utc(
        Date::from_calendar_date(y, Month::January, 1).unwrap(),
        Time::MIDNIGHT,
    )
}

fn csr_params(cn: Option<&str>, sans: &[&str]) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        p.distinguished_name.push(DnType::CommonName, cn);
    }
    p.subject_alt_names = sans.iter().map(|s| testutil::san(s)).collect();
    p
}

fn with_mode(mode: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![mode];
    v.extend_from_slice(data);
    v
}

fn csr_seeds() {
    let dir = corpus("csr_policy");
    let workload = [
        "app.team-a.svc",
        "spiffe://cluster.local/ns/team-a/sa/web",
        "10.1.2.3",
        "web@team-a.example.com",
    ];
    // Tenant-submitted CSRs (mode 0): PEM and DER, several key types.
    let p256 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = csr_params(Some("app.team-a.svc"), &workload)
        .serialize_request(&p256)
        .unwrap();
    write(
        &dir,
        "p256-pem",
        &with_mode(0, csr.pem().unwrap().as_bytes()),
    );
    write(&dir, "p256-der", &with_mode(0, csr.der()));
    let new_label = pem::encode(&pem::Pem::new(
        "NEW CERTIFICATE REQUEST",
        csr.der().to_vec(),
    ));
    write(&dir, "new-label-pem", &with_mode(0, new_label.as_bytes()));
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let csr = csr_params(None, &["db.team-a.svc", "*.team-a.example.com"])
        .serialize_request(&p384)
        .unwrap();
    write(
        &dir,
        "p384-wildcard-pem",
        &with_mode(0, csr.pem().unwrap().as_bytes()),
    );
    let rsa = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    let csr = csr_params(None, &["rsa.team-a.svc"])
        .serialize_request(&rsa)
        .unwrap();
    write(&dir, "rsa2048-der", &with_mode(0, csr.der()));
    for f in ["rsa1024", "p192", "secp256k1", "dsa"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../crates/pki/src/testdata/{f}.csr"));
        write(
            &dir,
            &format!("{f}-pem"),
            &with_mode(0, &std::fs::read(path).unwrap()),
        );
    }

    // Request infos signed by the fuzz key (mode 1): the policy-relevant shapes.
    let key = fuzz_key();
    let add = |name: &str, p: CertificateParams| {
        let csr = p.serialize_request(key).unwrap();
        let info = info_of(csr.der());
        // Mode 1: spec.usages are the CSR's own; mode 5: spec.usages are the mTLS set.
        write(&dir, name, &with_mode(1, &info));
        write(&dir, &format!("{name}-mtls-usages"), &with_mode(5, &info));
    };
    let mut full = csr_params(Some("app.team-a.svc"), &workload);
    full.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    full.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    add("info-workload", full);
    add(
        "info-cn-only-wildcard",
        csr_params(Some("*.team-a.svc"), &[]),
    );
    add(
        "info-wildcard-cn",
        csr_params(Some("*.team-a.svc"), &["a.team-a.svc"]),
    );
    add(
        "info-ipv4-mapped",
        csr_params(None, &["::ffff:192.168.1.1", "::ffff:10.96.0.1"]),
    );
    add(
        "info-kube-system",
        csr_params(None, &["api.kube-system.svc", "*.kube-system.svc"]),
    );
    add(
        "info-other-namespace",
        csr_params(
            Some("db.team-b.svc"),
            &["spiffe://cluster.local/ns/team-b/sa/web"],
        ),
    );
    add(
        "info-trailing-dot-upper",
        csr_params(None, &["APP.team-a.svc."]),
    );
    let mut ca = csr_params(Some("sub-ca"), &["ca.team-a.svc"]);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::OcspSigning,
        ExtendedKeyUsagePurpose::CodeSigning,
    ];
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    add("info-ca-ocsp", ca);
    let mut subject = csr_params(Some("a.team-a.svc"), &["a.team-a.svc"]);
    subject
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    subject.distinguished_name.push(DnType::CommonName, "admin");
    add("info-extra-subject", subject);
}

/// A P-256 CA of the fuzz PKI valid from 1 January `nb` to 1 January `na` (pathLen 0 under a
/// parent), with optional name constraints.
fn ca(cn: &str, parent: Option<&Ca>, nb: i32, na: i32, nc: Option<NameConstraints>) -> Ca {
    let opts = CaOpts {
        path_len: parent.map(|_| 0),
        key_usages: vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign],
        name_constraints: nc,
        not_before: date(nb),
        not_after: date(na),
        ..CaOpts::default()
    };
    testutil::ca(KeyKind::P256, cn, parent, opts)
}

fn bundle(crt: &str, key: &str, anchors: &str) -> Vec<u8> {
    [crt.as_bytes(), key.as_bytes(), anchors.as_bytes()].join(&0u8)
}

fn pem_seeds() -> (Ca, String) {
    let dir = corpus("pem_bundle");
    let root = ca("Fuzz Root", None, 2025, 2045, None);
    let int = ca("Fuzz Intermediate", Some(&root), 2025, 2044, None);
    let key = int.key.serialize_pem();
    write(&dir, "healthy", &bundle(&int.pem, &key, &root.pem));
    write(
        &dir,
        "chain-with-root",
        &bundle(&format!("{}{}", int.pem, root.pem), &key, &root.pem),
    );
    let crlf = format!("# signer\r\n{}", int.pem.replace('\n', "\r\n"));
    write(
        &dir,
        "crlf-comment",
        &bundle(&crlf, &key, &format!("Fuzz Root\n{}", root.pem)),
    );
    let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    write(
        &dir,
        "key-mismatch",
        &bundle(&int.pem, &other.serialize_pem(), &root.pem),
    );
    let expired = ca("Fuzz Expired", Some(&root), 2025, 2026, None);
    write(
        &dir,
        "expired",
        &bundle(&expired.pem, &expired.key.serialize_pem(), &root.pem),
    );
    let nc = NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("svc".into()),
            GeneralSubtree::IpAddress(rcgen::CidrSubnet::V4([10, 0, 0, 0], [255, 0, 0, 0])),
        ],
        excluded_subtrees: vec![GeneralSubtree::DnsName("kube-system.svc".into())],
    };
    let constrained = ca("Fuzz Constrained", Some(&root), 2025, 2044, Some(nc));
    write(
        &dir,
        "name-constraints",
        &bundle(
            &constrained.pem,
            &constrained.key.serialize_pem(),
            &root.pem,
        ),
    );
    let mut leaf = CertificateParams::new(vec!["leaf.team-a.svc".to_string()]).unwrap();
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.not_before = date(2025);
    leaf.not_after = date(2040);
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf_cert = leaf
        .signed_by(&leaf_key, &Issuer::from_params(&int.params, &int.key))
        .unwrap();
    write(
        &dir,
        "leaf-as-signer",
        &bundle(&leaf_cert.pem(), &leaf_key.serialize_pem(), &root.pem),
    );
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    write(
        &dir,
        "ed25519-key-only",
        &bundle("", &ed.serialize_pem(), ""),
    );
    write(
        &dir,
        "wrong-blocks",
        &bundle(
            "-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        ),
    );
    (int, leaf_cert.pem())
}

fn remote_seeds(int: &Ca, leaf_pem: &str) {
    let dir = corpus("remote_ca_response");
    let answer = |status: u16, body: &str| {
        let mut v = status.wrapping_sub(100).to_be_bytes().to_vec();
        v.extend_from_slice(body.as_bytes());
        v
    };
    let sign = serde_json::json!({"success": true, "result": {"certificate": leaf_pem}, "errors": [], "messages": []});
    write(&dir, "sign-ok", &answer(200, &sign.to_string()));
    let info = serde_json::json!({"success": true, "result": {"certificate": int.pem, "usages": ["signing", "key encipherment", "server auth"], "expiry": "8760h0m0s"}, "errors": [], "messages": []});
    write(
        &dir,
        "info-ok-long-profile",
        &answer(200, &info.to_string()),
    );
    let info = serde_json::json!({"success": true, "result": {"certificate": int.pem, "usages": [], "expiry": "24h"}, "errors": [], "messages": []});
    write(&dir, "info-ok-24h", &answer(200, &info.to_string()));
    let info = serde_json::json!({"success": true, "result": {"certificate": int.pem, "expiry": "1.5h30m0.25s"}});
    write(&dir, "info-fraction", &answer(200, &info.to_string()));
    let refused = r#"{"success":false,"result":null,"errors":[{"code":2400,"message":"invalid token"}],"messages":[]}"#;
    write(&dir, "authsign-bad-token-400", &answer(400, refused));
    let failed = r#"{"success":false,"result":null,"errors":[{"code":5000,"message":"failed to sign"}],"messages":[]}"#;
    write(&dir, "server-error-500", &answer(500, failed));
    let page = "<html><head><title>Internal dashboard</title></head><body>internal-page-canary-7f3a db password: hunter2</body></html>";
    write(&dir, "html-page-200", &answer(200, page));
    write(&dir, "html-page-404", &answer(404, page));
    write(
        &dir,
        "gateway-502",
        &answer(
            502,
            "upstream connect error internal-page-canary-7f3a reset before headers",
        ),
    );
    write(
        &dir,
        "success-false-200",
        &answer(
            200,
            r#"{"success":false,"result":{"certificate":"x"},"errors":[]}"#,
        ),
    );
    write(
        &dir,
        "not-pem-200",
        &answer(
            200,
            r#"{"success":true,"result":{"certificate":"not a certificate"}}"#,
        ),
    );
    // Vault / OpenBao answers.
    let vsign = serde_json::json!({"request_id": "1", "lease_id": "", "renewable": false, "lease_duration": 0,
        "data": {"certificate": leaf_pem, "issuing_ca": int.pem, "ca_chain": [int.pem], "serial_number": "01:02", "expiration": 1893456000},
        "wrap_info": null, "warnings": null, "auth": null});
    write(&dir, "vault-sign-ok", &answer(200, &vsign.to_string()));
    let vchain = serde_json::json!({"data": {"ca_chain": format!("{}{}", int.pem, int.pem), "certificate": int.pem}});
    write(&dir, "vault-ca-chain-ok", &answer(200, &vchain.to_string()));
    let login = serde_json::json!({"auth": {"client_token": "s.fuzztoken0123456789abcdef", "accessor": "a", "policies": ["pki"], "lease_duration": 2764800, "renewable": true}});
    write(&dir, "vault-login-ok", &answer(200, &login.to_string()));
    let role = serde_json::json!({"data": {"key_type": "ec", "allowed_uri_sans": ["spiffe://cluster.local/*"], "max_ttl": 86400, "use_csr_sans": true}});
    write(&dir, "vault-role-ok", &answer(200, &role.to_string()));
    write(
        &dir,
        "vault-role-ttl-string",
        &answer(200, r#"{"data":{"key_type":"any","max_ttl":"72h"}}"#),
    );
    write(
        &dir,
        "vault-health-sealed-503",
        &answer(503, r#"{"initialized":true,"sealed":true,"standby":false}"#),
    );
    write(
        &dir,
        "vault-denied-403",
        &answer(403, r#"{"errors":["permission denied"]}"#),
    );
    write(
        &dir,
        "vault-errors-400",
        &answer(
            400,
            r#"{"errors":["common name a.b not allowed by this role","1 error occurred:\n\t* invalid request\n\n"]}"#,
        ),
    );
    write(
        &dir,
        "vault-rate-limited-429",
        &answer(
            429,
            r#"{"errors":["request path \"pki/sign/workload\": rate limit quota exceeded"]}"#,
        ),
    );
}

fn nc_seeds() {
    let dir = corpus("name_constraints");
    // Structured input: any bytes decode; these give a spread of shapes to start from.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for (i, len) in [16usize, 32, 48, 64, 96, 128, 192, 256]
        .into_iter()
        .enumerate()
    {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        write(&dir, &format!("shape-{i}"), &bytes);
    }
}

fn main() {
    csr_seeds();
    let (int, leaf) = pem_seeds();
    remote_seeds(&int, &leaf);
    nc_seeds();
}
