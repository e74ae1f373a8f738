use super::*;
use crate::keys::SignerKey;
use crate::sign::tests::issue;
use crate::signer_chain::SignerChain;
use crate::template::LeafExtensions;
use crate::testutil::{self, good_params, raw_leaf, Ca, CaOpts, KeyKind};
use rcgen::KeyPair;
use time::Duration;

mod tls;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

const SPIFFE: &str = "spiffe://cluster.local/ns/team-a/sa/web";

fn expect_for(kp: &KeyPair, sans: &[&str]) -> Expectations {
    let usages = vec![
        Usage::DigitalSignature,
        Usage::KeyEncipherment,
        Usage::ServerAuth,
        Usage::ClientAuth,
    ];
    testutil::expectations(kp, sans, usages)
}

fn mismatch_msg(r: Result<(), PkiError>) -> String {
    match r {
        Err(PkiError::IssuedCertMismatch(m)) => m,
        other => panic!("expected IssuedCertMismatch, got {other:?}"),
    }
}

/// Check `leaf` issued by `int` under `root`, now.
fn check_with(leaf: &[u8], int: &Ca, root: &Ca, expect: &Expectations) -> Result<(), PkiError> {
    check_issued(leaf, &[int.der()], &[root.der()], expect, now())
}

/// The mismatch message of checking `leaf` issued by `int` under `root`.
fn mismatch_for(
    leaf: &[u8],
    int: &testutil::Ca,
    root: &testutil::Ca,
    expect: &Expectations,
) -> String {
    mismatch_msg(check_issued(
        leaf,
        &[int.der()],
        &[root.der()],
        expect,
        now(),
    ))
}

#[test]
fn baseline_raw_leaf_passes() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let kp = testutil::key(KeyKind::P256);
    let sans = ["web.team-a.svc", SPIFFE];
    let leaf = raw_leaf(&int, &kp, good_params(&sans));
    check_with(&leaf, &int, &root, &expect_for(&kp, &sans)).unwrap();
}

#[test]
fn other_key_rejected() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let kp = testutil::key(KeyKind::P256);
    let other = testutil::other_rsa_key();
    let leaf = raw_leaf(&int, &other, good_params(&["a.b"]));
    let m = mismatch_for(&leaf, &int, &root, &expect_for(&kp, &["a.b"]));
    assert!(m.contains("different public key"), "{m}");
}

#[test]
fn dropped_uri_san_is_named() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let kp = testutil::key(KeyKind::P256);
    let leaf = raw_leaf(&int, &kp, good_params(&["web.team-a.svc"]));
    let m = mismatch_for(
        &leaf,
        &int,
        &root,
        &expect_for(&kp, &["web.team-a.svc", SPIFFE]),
    );
    assert_eq!(
        m,
        format!("issued certificate is missing URI SAN \"{SPIFFE}\"")
    );
}

#[test]
fn extra_san_is_named() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let kp = testutil::key(KeyKind::P256);
    let leaf = raw_leaf(
        &int,
        &kp,
        good_params(&["a.example.com", "extra.example.com", "10.0.0.9"]),
    );
    let m = mismatch_for(&leaf, &int, &root, &expect_for(&kp, &["a.example.com"]));
    assert!(
        m.contains("has unexpected DNS SAN \"extra.example.com\""),
        "{m}"
    );
    assert!(m.contains("has unexpected IP SAN \"10.0.0.9\""), "{m}");
}

#[test]
fn wrong_usage_rejected() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let kp = testutil::key(KeyKind::P256);
    let mut p = good_params(&["a.b"]);
    p.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::CodeSigning,
    ];
    p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let leaf = raw_leaf(&int, &kp, p);
    let m = mismatch_for(&leaf, &int, &root, &expect_for(&kp, &["a.b"]));
    assert!(m.contains("missing key usage \"key encipherment\""), "{m}");
    assert!(
        m.contains("missing extended key usage \"client auth\""),
        "{m}"
    );
    assert!(
        m.contains("unexpected extended key usage \"code signing\""),
        "{m}"
    );
}

#[test]
fn is_ca_rejected() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let kp = testutil::key(KeyKind::P256);
    let mut p = good_params(&["a.b"]);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    let leaf = raw_leaf(&int, &kp, p);
    let m = mismatch_for(&leaf, &int, &root, &expect_for(&kp, &["a.b"]));
    assert!(m.contains("isCA=true"), "{m}");
}

#[test]
fn expired_and_too_long_rejected() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let kp = testutil::key(KeyKind::P256);
    let leaf = raw_leaf(
        &int,
        &kp,
        testutil::leaf_params(
            &["a.b"],
            now() - Duration::days(2),
            now() - Duration::days(1),
        ),
    );
    let m = mismatch_for(&leaf, &int, &root, &expect_for(&kp, &["a.b"]));
    assert!(m.contains("expired at"), "{m}");
    let leaf = raw_leaf(&int, &kp, good_params(&["a.b"]));
    let mut e = expect_for(&kp, &["a.b"]);
    e.not_after_max = Some(now() + Duration::hours(1));
    let m = mismatch_msg(check_with(&leaf, &int, &root, &e));
    assert!(m.contains("later than the allowed"), "{m}");
}

#[test]
fn backdated_not_before_and_long_lifetimes_are_refused() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let kp = testutil::key(KeyKind::P256);
    let mut e = expect_for(&kp, &["a.b"]);
    e.not_before_min = Some(now() - Duration::minutes(10));
    e.max_lifetime = Some(Duration::hours(48) + Duration::minutes(10));
    // (notBefore, notAfter) relative to now, and the words of the refusal.
    for (nb, na, word) in [
        (Duration::days(-3650), Duration::hours(24), "notBefore"),
        (Duration::hours(-2), Duration::hours(1), "notBefore"),
        (Duration::minutes(-11), Duration::hours(1), "notBefore"),
        (Duration::hours(-47), Duration::minutes(59), "notBefore"),
    ] {
        let leaf = raw_leaf(
            &int,
            &kp,
            testutil::leaf_params(&["a.b"], now() + nb, now() + na),
        );
        let m = mismatch_msg(check_with(&leaf, &int, &root, &e));
        assert!(
            m.contains(word) && m.contains("earlier than the allowed"),
            "{nb}: {m}"
        );
    }
    let mut lifetime_only = e.clone();
    lifetime_only.not_before_min = None;
    let leaf = raw_leaf(
        &int,
        &kp,
        testutil::leaf_params(
            &["a.b"],
            now() - Duration::hours(1),
            now() + Duration::hours(48),
        ),
    );
    let m = mismatch_msg(check_with(&leaf, &int, &root, &lifetime_only));
    assert!(
        m.contains("lifetime") && m.contains("longer than the allowed"),
        "{m}"
    );
    for (nb, na) in [
        (Duration::minutes(-1), Duration::hours(48)),
        (Duration::minutes(-5), Duration::hours(48)),
        (Duration::minutes(-9), Duration::hours(1)),
    ] {
        let leaf = raw_leaf(
            &int,
            &kp,
            testutil::leaf_params(&["a.b"], now() + nb, now() + na),
        );
        check_with(&leaf, &int, &root, &e).unwrap_or_else(|err| panic!("{nb}: {err}"));
    }
}

#[test]
fn wrong_chain_rejected() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let (_other_root, other_int) = testutil::chain(KeyKind::P256);
    let kp = testutil::key(KeyKind::P256);
    let leaf = raw_leaf(&other_int, &kp, good_params(&["a.b"]));
    let e = expect_for(&kp, &["a.b"]);
    assert!(matches!(
        check_with(&leaf, &int, &root, &e),
        Err(PkiError::ChainInvalid(_))
    ));
    assert!(matches!(
        check_issued(&leaf, &[other_int.der()], &[root.der()], &e, now()),
        Err(PkiError::ChainInvalid(_))
    ));
    // Rollover: the right root among several anchors is found.
    let leaf = raw_leaf(&int, &kp, good_params(&["a.b"]));
    check_issued(
        &leaf,
        &[int.der()],
        &[_other_root.der(), root.der()],
        &e,
        now(),
    )
    .unwrap();
}

#[test]
fn path_len_zero_above_signer_rejected() {
    let root = testutil::root(KeyKind::P256, "Root");
    let mid = testutil::ca(
        KeyKind::P256,
        "Mid",
        Some(&root),
        CaOpts {
            path_len: Some(0),
            ..Default::default()
        },
    );
    let signer = testutil::ca(KeyKind::P256, "Signer", Some(&mid), CaOpts::default());
    let kp = testutil::key(KeyKind::P256);
    let leaf = raw_leaf(&signer, &kp, good_params(&["a.b"]));
    match check_issued(
        &leaf,
        &[signer.der(), mid.der()],
        &[root.der()],
        &expect_for(&kp, &["a.b"]),
        now(),
    ) {
        Err(PkiError::ChainInvalid(m)) => assert!(m.contains("pathLenConstraint"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn name_constraints_enforced_and_email_workaround() {
    use rcgen::GeneralSubtree;
    let root = testutil::root(KeyKind::P256, "Root");
    let nc = rcgen::NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("example.com".into()),
            GeneralSubtree::Rfc822Name("example.com".into()),
        ],
        excluded_subtrees: vec![],
    };
    let int = testutil::ca(
        KeyKind::P256,
        "Constrained",
        Some(&root),
        CaOpts {
            name_constraints: Some(nc),
            ..Default::default()
        },
    );
    let kp = testutil::key(KeyKind::P256);
    let leaf = raw_leaf(&int, &kp, good_params(&["evil.org"]));
    assert!(matches!(
        check_with(&leaf, &int, &root, &expect_for(&kp, &["evil.org"])),
        Err(PkiError::NameConstraintViolation { .. })
    ));
    // webpki fails closed on email constraints; our own check allows a permitted address.
    let sans = ["a.example.com", "ops@example.com"];
    let leaf = raw_leaf(&int, &kp, good_params(&sans));
    check_with(&leaf, &int, &root, &expect_for(&kp, &sans)).unwrap();
    let sans = ["a.example.com", "ops@evil.org"];
    let leaf = raw_leaf(&int, &kp, good_params(&sans));
    assert!(check_with(&leaf, &int, &root, &expect_for(&kp, &sans)).is_err());
}

#[test]
fn pem_helpers() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let pem = chain_pem(&int.der(), &[root.der()]);
    assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 2);
    assert_eq!(
        crate::parse_pem_certs(&pem).unwrap(),
        vec![int.der(), root.der()]
    );
    assert_eq!(certs_to_pem(&[]), "");
}

fn openssl_verify(dir: &std::path::Path, purpose: &str, leaf: &str) -> std::process::Output {
    std::process::Command::new("openssl")
        .args(["verify", "-x509_strict", "-purpose", purpose, "-CAfile"])
        .arg(dir.join("root.pem"))
        .arg("-untrusted")
        .arg(dir.join("chain.pem"))
        .arg(dir.join(leaf))
        .output()
        .expect("openssl is installed")
}

#[test]
fn openssl_verifies_issued_leaves() {
    for kind in [KeyKind::P256, KeyKind::Rsa2048, KeyKind::Ed25519] {
        let root = testutil::root(KeyKind::P384, "OpenSSL Root");
        let mid = testutil::ca(
            KeyKind::P256,
            "OpenSSL Mid",
            Some(&root),
            CaOpts {
                path_len: Some(1),
                ..Default::default()
            },
        );
        let signer = testutil::ca(
            kind,
            "OpenSSL Signer",
            Some(&mid),
            CaOpts {
                path_len: Some(0),
                ..Default::default()
            },
        );
        let chain = SignerChain::from_pem(&format!("{}{}", signer.pem, mid.pem)).unwrap();
        let key = SignerKey::from_pem(&signer.key_pem).unwrap();
        let i = issue(
            &chain,
            &key,
            KeyKind::P256,
            None,
            &["svc.example.com", SPIFFE],
            vec![
                Usage::ServerAuth,
                Usage::ClientAuth,
                Usage::DigitalSignature,
                Usage::KeyEncipherment,
            ],
            false,
            LeafExtensions::default(),
        );
        check_issued(&i.leaf, &chain.all_der(), &[root.der()], &i.expect, now()).unwrap();
        let (_, other_int) = testutil::chain(KeyKind::P256);
        let kp = testutil::key(KeyKind::P256);
        let foreign = raw_leaf(&other_int, &kp, good_params(&["svc.example.com"]));

        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("root.pem"), root.pem).unwrap();
        std::fs::write(d.join("chain.pem"), certs_to_pem(&chain.all_der())).unwrap();
        std::fs::write(
            d.join("leaf.pem"),
            certs_to_pem(std::slice::from_ref(&i.leaf)),
        )
        .unwrap();
        std::fs::write(d.join("foreign.pem"), certs_to_pem(&[foreign])).unwrap();
        for purpose in ["sslserver", "sslclient"] {
            let out = openssl_verify(d, purpose, "leaf.pem");
            assert!(
                out.status.success(),
                "{kind:?} {purpose}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let out = openssl_verify(d, purpose, "foreign.pem");
            assert!(!out.status.success(), "foreign leaf must not verify");
        }
    }
}

#[test]
fn subject_must_be_exactly_the_validated_one() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let kp = testutil::key(KeyKind::P256);
    let sans = ["web.team-a.svc"];
    let mut expect = expect_for(&kp, &sans);
    expect.common_name = Some("web.team-a.svc".into());
    let mut p = good_params(&sans);
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "web.team-a.svc");
    check_with(&raw_leaf(&int, &kp, p.clone()), &int, &root, &expect).unwrap();

    let mut masters = p.clone();
    masters
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    let m = mismatch_for(&raw_leaf(&int, &kp, masters), &int, &root, &expect);
    assert!(m.contains("system:masters"), "{m}");

    let mut other_cn = p.clone();
    other_cn.distinguished_name = rcgen::DistinguishedName::new();
    other_cn
        .distinguished_name
        .push(rcgen::DnType::CommonName, "db.team-b.svc");
    let m = mismatch_for(&raw_leaf(&int, &kp, other_cn), &int, &root, &expect);
    assert!(m.contains("db.team-b.svc"), "{m}");

    expect.common_name = None;
    let m = mismatch_for(&raw_leaf(&int, &kp, p), &int, &root, &expect);
    assert!(m.contains("empty subject"), "{m}");
}

#[test]
fn an_empty_attribute_is_accepted_only_as_the_requests_own_subject() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let kp = testutil::key(KeyKind::P256);
    let sans = ["spiffe://cluster.local/ns/team-a/sa/web"];
    let mut expect = expect_for(&kp, &sans);
    let mut p = good_params(&sans);
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::OrganizationName, "");
    let leaf = raw_leaf(&int, &kp, p.clone());
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let echoed = parsed.subject().as_raw().to_vec();
    // Not requested: an issued O="" is refused.
    let m = mismatch_for(&leaf, &int, &root, &expect);
    assert!(
        m.contains("O=\"\"") && m.contains("may not be empty"),
        "{m}"
    );
    // The request's own subject, copied by the CA byte for byte: accepted.
    expect.echoable_subject = Some(echoed.clone());
    check_with(&leaf, &int, &root, &expect).unwrap();
    // Anything beyond those bytes is not.
    let mut more = p.clone();
    more.distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, "");
    let more = raw_leaf(&int, &kp, more);
    let (_, more_parsed) = x509_parser::parse_x509_certificate(&more).unwrap();
    assert_ne!(more_parsed.subject().as_raw(), echoed.as_slice());
    let m = mismatch_for(&more, &int, &root, &expect);
    assert!(m.contains("may not be empty"), "{m}");
    let mut masters = p;
    masters.distinguished_name = rcgen::DistinguishedName::new();
    masters
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    let m = mismatch_for(&raw_leaf(&int, &kp, masters), &int, &root, &expect);
    assert!(m.contains("system:masters"), "{m}");
}

#[test]
fn only_allowlisted_extensions_each_once() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let kp = testutil::key(KeyKind::P256);
    let sans = ["web.team-a.svc"];
    let expect = expect_for(&kp, &sans);
    let mut unknown = good_params(&sans);
    let mut ext = rcgen::CustomExtension::from_oid_content(&[1, 2, 3, 4, 5], vec![0x05, 0x00]);
    ext.set_criticality(true);
    unknown.custom_extensions.push(ext);
    let m = mismatch_for(&raw_leaf(&int, &kp, unknown), &int, &root, &expect);
    assert!(m.contains("1.2.3.4.5") && m.contains("critical"), "{m}");

    let mut twice = good_params(&sans);
    // A second basicConstraints (cA=true) after rcgen's own (cA=false).
    twice
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            &[2, 5, 29, 19],
            vec![0x30, 0x03, 0x01, 0x01, 0xff],
        ));
    let m = mismatch_for(&raw_leaf(&int, &kp, twice), &int, &root, &expect);
    assert!(
        m.contains("basicConstraints") && m.contains("more than once"),
        "{m}"
    );

    let mut policies = good_params(&sans);
    policies
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            &[2, 5, 29, 32],
            vec![0x30, 0x06, 0x30, 0x04, 0x06, 0x02, 0x2a, 0x03],
        ));
    let m = mismatch_for(&raw_leaf(&int, &kp, policies), &int, &root, &expect);
    assert!(m.contains("certificatePolicies"), "{m}");
}

#[test]
fn an_issued_ca_counts_against_path_len_and_carries_its_constraints() {
    let root = testutil::root(KeyKind::P256, "Root");
    let int = testutil::ca(
        KeyKind::P256,
        "Int pathlen 0",
        Some(&root),
        CaOpts {
            path_len: Some(0),
            ..CaOpts::default()
        },
    );
    let kp = testutil::key(KeyKind::P256);
    let sans = ["ca.team-a.svc"];
    let mut expect = expect_for(&kp, &sans);
    expect.is_ca = true;
    expect.usages = vec![Usage::CertSign, Usage::DigitalSignature, Usage::ServerAuth];
    let mut p = good_params(&sans);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = raw_leaf(&int, &kp, p.clone());
    let err = check_with(&leaf, &int, &root, &expect)
        .unwrap_err()
        .to_string();
    assert!(err.contains("pathLenConstraint 0"), "{err}");

    // Under a signer with room, the CA must carry exactly the derived constraints.
    let (root, int) = testutil::chain(KeyKind::P256);
    let leaf = raw_leaf(&int, &kp, p.clone());
    let derived = crate::ca_constraints::CaConstraints {
        permitted: crate::name_constraints::GeneralSubtrees {
            dns: vec!["team-a.svc".into()],
            ..Default::default()
        },
        excluded: crate::name_constraints::GeneralSubtrees {
            ip: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
            ..Default::default()
        },
    };
    expect.name_constraints = Some(derived);
    let m = mismatch_for(&leaf, &int, &root, &expect);
    assert!(m.contains("name constraints"), "{m}");
    let ip = |a: std::net::IpAddr, prefix: u8| {
        rcgen::GeneralSubtree::IpAddress(rcgen::CidrSubnet::from_addr_prefix(a, prefix))
    };
    // Permitted alone (the excluded IP ranges missing) is not enough.
    p.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("team-a.svc".into())],
        excluded_subtrees: vec![],
    });
    let m = mismatch_for(&raw_leaf(&int, &kp, p.clone()), &int, &root, &expect);
    assert!(m.contains("name constraints"), "{m}");
    p.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("team-a.svc".into())],
        excluded_subtrees: vec![
            ip("0.0.0.0".parse().unwrap(), 0),
            ip("::".parse().unwrap(), 0),
        ],
    });
    check_with(&raw_leaf(&int, &kp, p), &int, &root, &expect).unwrap();
}

#[test]
fn webpki_still_checks_dns_when_the_chain_has_uri_constraints() {
    use crate::der;
    // The intermediate permits the SPIFFE trust domain's host (a URI constraint, which webpki
    // refuses to evaluate) and excludes a DNS subtree: the excluded DNS name must be refused
    // by both verifiers, webpki included, even though the leaf carries a URI SAN.
    let root = testutil::root(KeyKind::P256, "Root");
    let permitted = der::seq(&[der::tlv(0x86, b"cluster.local")]);
    let excluded = der::seq(&[der::tlv(0x82, b"secret.corp.example")]);
    let value = der::seq(&[der::tlv(0xa0, &permitted), der::tlv(0xa1, &excluded)]);
    let mut ext = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 30], value);
    ext.set_criticality(true);
    let int = testutil::ca(
        KeyKind::P256,
        "Int",
        Some(&root),
        CaOpts {
            extra_extensions: vec![ext],
            ..CaOpts::default()
        },
    );
    let kp = testutil::key(KeyKind::P256);
    let bad = ["db.secret.corp.example", SPIFFE];
    let leaf = raw_leaf(&int, &kp, good_params(&bad));
    let err = check_with(&leaf, &int, &root, &expect_for(&kp, &bad))
        .unwrap_err()
        .to_string();
    assert!(err.contains("db.secret.corp.example"), "{err}");

    // What webpki gets keeps the excluded DNS subtree and drops the URI one.
    let only_dns = dns_ip_constraints(&int.der()).unwrap().unwrap();
    assert_eq!(only_dns[0], 0xa1, "only the excluded list remains");
    assert!(!only_dns.windows(13).any(|w| w == b"cluster.local"));

    // webpki alone refuses the excluded name although the leaf has a URI SAN...
    let chain = SignerChain {
        signer_der: int.der(),
        intermediates_der: vec![],
    };
    let validated = ValidatedChain::new(chain, None, vec![root.der()], now()).unwrap();
    let err = validated
        .webpki_check(&leaf, &[Usage::ServerAuth], now(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("server auth"), "{err}");
    // ...and accepts a permitted one with the same URI SAN (it does not fail closed).
    let good = ["db.corp.example", SPIFFE];
    let ok = raw_leaf(&int, &kp, good_params(&good));
    validated
        .webpki_check(&ok, &[Usage::ServerAuth], now(), None)
        .unwrap();
    check_with(&ok, &int, &root, &expect_for(&kp, &good)).unwrap();
}

#[test]
fn a_ca_with_an_eku_restricts_its_leaves() {
    let root = testutil::root(KeyKind::P256, "Root");
    let int = testutil::ca(
        KeyKind::P256,
        "Server-only Int",
        Some(&root),
        CaOpts {
            ext_key_usages: vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
            ..CaOpts::default()
        },
    );
    let kp = testutil::key(KeyKind::P256);
    let sans = ["web.team-a.svc"];
    let leaf = raw_leaf(&int, &kp, good_params(&sans));
    let err = check_with(&leaf, &int, &root, &expect_for(&kp, &sans))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("client auth") && err.contains("Server-only Int"),
        "{err}"
    );
}
