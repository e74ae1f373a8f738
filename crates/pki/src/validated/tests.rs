use super::*;
use crate::testutil::{self, good_params, raw_leaf, Ca, CaOpts, KeyKind};
use crate::verify::{check_issued_with, Expectations};
use rcgen::{ExtendedKeyUsagePurpose, KeyPair};
use time::Duration;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn validated(signer: &Ca, above: &[&Ca], root: &Ca) -> ValidatedChain {
    let chain = SignerChain {
        signer_der: signer.der(),
        intermediates_der: above.iter().map(|c| c.der()).collect(),
    };
    let key = SignerKey::from_pem(&signer.key_pem).unwrap();
    ValidatedChain::new(chain, Some(&key), vec![root.der()], now()).unwrap()
}

fn expect_for(kp: &KeyPair, sans: &[&str], usages: Vec<Usage>) -> Expectations {
    testutil::expectations(kp, sans, usages)
}

const MTLS: [Usage; 4] = [
    Usage::DigitalSignature,
    Usage::KeyEncipherment,
    Usage::ServerAuth,
    Usage::ClientAuth,
];

#[test]
fn each_leaf_is_checked_against_the_cached_chain() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let v = validated(&int, &[], &root);
    let kp = testutil::key(KeyKind::P256);
    let expect = expect_for(&kp, &["a.b"], MTLS.to_vec());
    let good = raw_leaf(&int, &kp, good_params(&["a.b"]));
    let validity = check_issued_with(&good, &v, &expect, now()).unwrap();
    assert!(validity.not_after > now());

    // Same issuer Name, another key: the leaf's own signature is still verified per leaf.
    let impostor = testutil::ca(
        KeyKind::P256,
        "Test Issuing CA",
        Some(&root),
        CaOpts::default(),
    );
    let forged = raw_leaf(&impostor, &kp, good_params(&["a.b"]));
    let err = check_issued_with(&forged, &v, &expect, now()).unwrap_err();
    assert!(
        matches!(&err, PkiError::ChainInvalid(m) if m.contains("no issuer found")),
        "{err:?}"
    );

    // A flipped signature bit is refused by the walk (and would be by webpki).
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(check_issued_with(&bad, &v, &expect, now()).is_err());
}

#[test]
fn the_chain_validity_is_checked_at_each_leafs_time() {
    let root = testutil::root(KeyKind::P256, "Root");
    let int = testutil::ca(
        KeyKind::P256,
        "Short-lived",
        Some(&root),
        CaOpts {
            not_after: now() + Duration::hours(2),
            ..CaOpts::default()
        },
    );
    let v = validated(&int, &[], &root);
    let kp = testutil::key(KeyKind::P256);
    let expect = expect_for(&kp, &["a.b"], MTLS.to_vec());
    let l = raw_leaf(
        &int,
        &kp,
        testutil::leaf_params(&["a.b"], now(), now() + Duration::days(1)),
    );
    let later = now() + Duration::hours(3);
    let err = check_issued_with(&l, &v, &expect, later).unwrap_err();
    assert!(
        matches!(&err, PkiError::ChainInvalid(m) if m.contains("Short-lived") && m.contains("expired at")),
        "{err:?}"
    );
}

#[test]
fn eku_restrictions_of_every_ca_chain_down() {
    let root = testutil::root(KeyKind::P256, "Root");
    let mid = testutil::ca(
        KeyKind::P256,
        "Servers only",
        Some(&root),
        CaOpts {
            ext_key_usages: vec![ExtendedKeyUsagePurpose::ServerAuth],
            ..CaOpts::default()
        },
    );
    let int = testutil::ca(KeyKind::P256, "Signer", Some(&mid), CaOpts::default());
    let v = validated(&int, &[&mid], &root);
    v.check_usages(&[Usage::DigitalSignature, Usage::ServerAuth])
        .unwrap();
    let err = v
        .check_usages(&[Usage::ServerAuth, Usage::ClientAuth])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"client auth\"") && err.contains("Servers only"),
        "{err}"
    );
    let err = v
        .check_usages(&[Usage::DigitalSignature])
        .unwrap_err()
        .to_string();
    assert!(err.contains("without extended key usage"), "{err}");

    // After signing too: a leaf with client auth under that chain is refused.
    let kp = testutil::key(KeyKind::P256);
    let expect = expect_for(&kp, &["a.b"], MTLS.to_vec());
    let l = raw_leaf(&int, &kp, good_params(&["a.b"]));
    let err = check_issued_with(&l, &v, &expect, now()).unwrap_err();
    assert!(
        matches!(&err, PkiError::ChainInvalid(m) if m.contains("client auth")),
        "{err:?}"
    );

    // anyExtendedKeyUsage on a CA restricts nothing.
    let any = testutil::ca(
        KeyKind::P256,
        "Any",
        Some(&root),
        CaOpts {
            ext_key_usages: vec![ExtendedKeyUsagePurpose::Any],
            ..CaOpts::default()
        },
    );
    validated(&any, &[], &root)
        .check_usages(&[Usage::DigitalSignature])
        .unwrap();
}

#[test]
fn sub_ca_room_is_cached_with_the_chain() {
    let root = testutil::root(KeyKind::P256, "Root");
    let no_room = testutil::ca(
        KeyKind::P256,
        "Int pathlen 0",
        Some(&root),
        CaOpts {
            path_len: Some(0),
            ..CaOpts::default()
        },
    );
    let err = validated(&no_room, &[], &root)
        .check_room_for_sub_ca()
        .unwrap_err();
    assert!(matches!(err, PkiError::CaNotPossible(_)), "{err:?}");
    let (root, int) = testutil::chain(KeyKind::P256);
    validated(&int, &[], &root).check_room_for_sub_ca().unwrap();
}

#[test]
fn webpki_reuses_only_the_exact_signature_the_walk_verified() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let v = validated(&int, &[], &root);
    let kp = testutil::key(KeyKind::P256);
    let good = raw_leaf(&int, &kp, good_params(&["a.b"]));
    let parsed = parse_cert(&good).unwrap();
    let verified = v.check_leaf(&parsed, &good, &[], now()).unwrap();
    v.webpki_check(&good, &[Usage::ServerAuth], now(), Some(&verified))
        .unwrap();
    // Another leaf whose signature is broken: the known signature of the good leaf does not
    // vouch for it, so webpki verifies it itself and refuses it.
    let mut bad = raw_leaf(&int, &kp, good_params(&["a.b"]));
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let err = v
        .webpki_check(&bad, &[Usage::ServerAuth], now(), Some(&verified))
        .unwrap_err()
        .to_string();
    assert!(err.contains("server auth"), "{err}");
    // A forged "verified" record for the bad leaf under another algorithm id is not used.
    let bad_parsed = parse_cert(&bad).unwrap();
    let forged = VerifiedSignature {
        key: verified.key.clone(),
        alg_id: &[0x06, 0x03, 0x2b, 0x65, 0x70], // Ed25519
        message: bad_parsed.tbs_certificate.as_ref(),
        signature: bad_parsed.signature_value.data.as_ref(),
    };
    assert!(v
        .webpki_check(&bad, &[Usage::ServerAuth], now(), Some(&forged))
        .is_err());
}

#[test]
fn webpki_requires_every_requested_tls_eku() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let v = validated(&int, &[], &root);
    let kp = testutil::key(KeyKind::P256);
    let mut p = good_params(&["a.b"]);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_only = raw_leaf(&int, &kp, p);
    v.webpki_check(&server_only, &[Usage::ServerAuth], now(), None)
        .unwrap();
    let err = v
        .webpki_check(
            &server_only,
            &[Usage::ServerAuth, Usage::ClientAuth],
            now(),
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("server auth and client auth"), "{err}");
}
