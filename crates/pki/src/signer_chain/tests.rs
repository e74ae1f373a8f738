use super::*;
use crate::testutil::{self, Ca, CaOpts, KeyKind};
use rcgen::KeyUsagePurpose;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn chain_of(signer: &Ca, above: &[&Ca]) -> SignerChain {
    let pem: String = std::iter::once(signer.pem.clone())
        .chain(above.iter().map(|c| c.pem.clone()))
        .collect();
    SignerChain::from_pem(&pem).unwrap()
}

fn key_of(ca: &Ca) -> SignerKey {
    SignerKey::from_pem(&ca.key_pem).unwrap()
}

#[test]
fn healthy_signer_for_every_key_type() {
    for kind in KeyKind::ALL {
        let (root, int) = testutil::chain(kind);
        let info = check_signer(
            &chain_of(&int, &[]),
            Some(&key_of(&int)),
            &[root.der()],
            now(),
        )
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(info.subject.contains("Test Issuing CA"));
        assert_eq!(info.sha256_fingerprint.len(), 64);
        assert!(info
            .sha256_fingerprint
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}

#[test]
fn two_level_chain_and_root_included() {
    let root = testutil::root(KeyKind::P384, "Root");
    let mid = testutil::ca(
        KeyKind::P256,
        "Mid",
        Some(&root),
        CaOpts {
            path_len: Some(1),
            ..Default::default()
        },
    );
    let signer = testutil::ca(KeyKind::Ed25519, "Signer", Some(&mid), CaOpts::default());
    assert!(check_signer(
        &chain_of(&signer, &[&mid]),
        Some(&key_of(&signer)),
        &[root.der()],
        now()
    )
    .is_ok());
    assert!(check_signer(
        &chain_of(&signer, &[&mid, &root]),
        None,
        &[root.der()],
        now()
    )
    .is_ok());
    // Missing middle certificate: no path.
    assert!(matches!(
        check_signer(&chain_of(&signer, &[]), None, &[root.der()], now()),
        Err(PkiError::ChainInvalid(_))
    ));
}

#[test]
fn key_mismatch() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let other = SignerKey::from_pem(&testutil::key(KeyKind::P256).serialize_pem()).unwrap();
    assert_eq!(
        check_signer(&chain_of(&int, &[]), Some(&other), &[root.der()], now()),
        Err(PkiError::SignerKeyMismatch)
    );
}

#[test]
fn not_a_ca_and_no_key_cert_sign() {
    let root = testutil::root(KeyKind::P256, "Root");
    let leafish = testutil::ca(
        KeyKind::P256,
        "Not CA",
        Some(&root),
        CaOpts {
            is_ca: false,
            ..Default::default()
        },
    );
    match check_signer(
        &chain_of(&leafish, &[]),
        Some(&key_of(&leafish)),
        &[root.der()],
        now(),
    ) {
        Err(PkiError::SignerNotCa(m)) => assert!(m.contains("basicConstraints"), "{m}"),
        other => panic!("{other:?}"),
    }
    let no_sign = testutil::ca(
        KeyKind::P256,
        "No keyCertSign",
        Some(&root),
        CaOpts {
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
            ..Default::default()
        },
    );
    match check_signer(&chain_of(&no_sign, &[]), None, &[root.der()], now()) {
        Err(PkiError::SignerNotCa(m)) => assert!(m.contains("keyCertSign"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn expired_and_not_yet_valid() {
    let root = testutil::root(KeyKind::P256, "Root");
    let expired = testutil::ca(
        KeyKind::P256,
        "Expired",
        Some(&root),
        CaOpts {
            not_before: now() - time::Duration::days(30),
            not_after: now() - time::Duration::days(1),
            ..Default::default()
        },
    );
    match check_signer(&chain_of(&expired, &[]), None, &[root.der()], now()) {
        Err(PkiError::SignerNotValid(m)) => assert!(m.contains("expired at"), "{m}"),
        other => panic!("{other:?}"),
    }
    let future = testutil::ca(
        KeyKind::P256,
        "Future",
        Some(&root),
        CaOpts {
            not_before: now() + time::Duration::days(1),
            not_after: now() + time::Duration::days(30),
            ..Default::default()
        },
    );
    match check_signer(&chain_of(&future, &[]), None, &[root.der()], now()) {
        Err(PkiError::SignerNotValid(m)) => assert!(m.contains("not valid before"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn path_len_zero_intermediate_above_signer() {
    let root = testutil::root(KeyKind::P256, "Root");
    let mid = testutil::ca(
        KeyKind::P256,
        "Mid pathLen 0",
        Some(&root),
        CaOpts {
            path_len: Some(0),
            ..Default::default()
        },
    );
    let signer = testutil::ca(KeyKind::P256, "Signer", Some(&mid), CaOpts::default());
    match check_signer(&chain_of(&signer, &[&mid]), None, &[root.der()], now()) {
        Err(PkiError::ChainInvalid(m)) => assert!(
            m.contains("pathLenConstraint 0") && m.contains("Mid pathLen 0"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    // A pathLen 0 signer itself is fine: only leaves follow it.
    let signer0 = testutil::ca(
        KeyKind::P256,
        "Signer0",
        Some(&root),
        CaOpts {
            path_len: Some(0),
            ..Default::default()
        },
    );
    assert!(check_signer(&chain_of(&signer0, &[]), None, &[root.der()], now()).is_ok());
}

#[test]
fn chain_not_reaching_anchors_and_rollover() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let other_root = testutil::root(KeyKind::P256, "Test Root"); // same name, other key
    match check_signer(&chain_of(&int, &[]), None, &[other_root.der()], now()) {
        Err(PkiError::ChainInvalid(m)) => {
            assert!(m.contains("does not lead to a trusted root"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(check_signer(&chain_of(&int, &[]), None, &[], now()).is_err());
    // Root rollover: old and new roots both configured.
    assert!(check_signer(
        &chain_of(&int, &[]),
        None,
        &[other_root.der(), root.der()],
        now()
    )
    .is_ok());
}

#[test]
fn pem_parsing() {
    assert!(matches!(
        parse_pem_certs("garbage"),
        Err(PkiError::InvalidCertificate(_))
    ));
    assert!(parse_pem_certs("").is_err());
    let key = testutil::key(KeyKind::P256).serialize_pem();
    assert!(parse_pem_certs(&key)
        .unwrap_err()
        .to_string()
        .contains("PRIVATE KEY"));
    let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(parse_pem_certs(bad).is_err());
    let (root, int) = testutil::chain(KeyKind::P256);
    let both = parse_pem_certs(&format!("{}{}", int.pem, root.pem)).unwrap();
    assert_eq!(both, vec![int.der(), root.der()]);
    let chain = chain_of(&int, &[&root]);
    assert_eq!(
        chain.earliest_not_after(),
        cert_info(&int.der())
            .unwrap()
            .not_after
            .min(cert_info(&root.der()).unwrap().not_after)
    );
}
