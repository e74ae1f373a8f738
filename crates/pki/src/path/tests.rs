use std::time::Instant;

use super::*;
use crate::signer_chain::{parse_trust_anchors, signer_path, SignerChain};
use crate::testutil::{self, Ca, CaOpts, KeyKind};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn limit_message(r: Result<impl Sized, PkiError>) -> String {
    match r {
        Err(PkiError::ChainLimit(m)) => m,
        Err(e) => panic!("expected a ChainLimit error, got {e:?}"),
        Ok(_) => panic!("expected a ChainLimit error, got success"),
    }
}

/// A CA named `cn` under `parent` with a fresh key: same subject as every other CA named `cn`.
fn named(cn: &str, parent: Option<&Ca>) -> Ca {
    testutil::ca(KeyKind::P256, cn, parent, CaOpts::default())
}

#[test]
fn hundreds_of_same_subject_certificates_are_refused_before_any_signature_check() {
    let root = named("Tenant Root", None);
    let int = named("Same", Some(&root));
    let decoy = named("Same", Some(&root));
    let pem: String = std::iter::once(int.pem.clone())
        .chain(std::iter::repeat_n(decoy.pem.clone(), 300))
        .collect();
    assert!(pem.len() > MAX_CHAIN_PEM_BYTES, "a few hundred KiB");
    let started = Instant::now();
    let m = limit_message(SignerChain::from_pem(&pem));
    assert!(m.contains("at most 65536 bytes"), "{m}");
    // Under the byte limit but over the count limit.
    let pem: String = std::iter::once(int.pem.clone())
        .chain(std::iter::repeat_n(decoy.pem.clone(), MAX_CHAIN_CERTS))
        .collect();
    let m = limit_message(SignerChain::from_pem(&pem));
    assert!(m.contains("11 certificates; at most 10"), "{m}");
    // A chain built without the parser is held to the same count.
    let chain = SignerChain {
        signer_der: int.der(),
        intermediates_der: vec![decoy.der(); 300],
    };
    limit_message(signer_path(&chain, None, &[root.der()], now()));
    assert!(
        started.elapsed().as_millis() < 2000,
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn trust_anchor_bundles_are_bounded() {
    let root = named("Root", None);
    let many: String = std::iter::repeat_n(root.pem.clone(), MAX_ANCHORS + 1).collect();
    let m = limit_message(parse_trust_anchors(&many));
    assert!(m.contains("257 certificates; at most 256"), "{m}");
    let huge = "x".repeat(MAX_ANCHORS_PEM_BYTES + 1);
    limit_message(parse_trust_anchors(&huge));
    assert_eq!(
        parse_trust_anchors(&root.pem).unwrap(),
        vec![root.der()],
        "a normal bundle parses"
    );
}

#[test]
fn candidates_named_like_the_issuer_are_bounded_per_step() {
    let root = named("Root", None);
    let int = named("Int", Some(&root));
    // Decoy anchors with the root's subject and other keys, tried before the real root.
    let decoys: Vec<Vec<u8>> = (0..MAX_CANDIDATES)
        .map(|_| named("Root", None).der())
        .collect();
    let mut anchors = decoys.clone();
    anchors.push(root.der());
    let m = limit_message(build_path(&int.der(), &[], &anchors, now(), 1));
    assert!(m.contains("9 certificates are named"), "{m}");
    assert!(m.contains("at most 8 are tried"), "{m}");
    // One fewer decoy: the real root is the eighth candidate and is found.
    anchors.remove(0);
    let path = build_path(&int.der(), &[], &anchors, now(), 1).unwrap();
    assert_eq!(path.issuers, vec![root.der()]);
}

#[test]
fn signature_checks_per_path_are_bounded() {
    // signer <- I1 <- ... <- I5 <- root, with 7 decoy anchors named like each issuer: every
    // step tries 7 decoys before the real issuer, 40 checks in all.
    let root = named("Root", None);
    let mut cas = vec![root];
    for i in (1..=5).rev() {
        let parent = cas.last().unwrap();
        let ca = named(&format!("I{i}"), Some(parent));
        cas.push(ca);
    }
    let signer = named("Signer", cas.last());
    let intermediates: Vec<Vec<u8>> = cas[1..].iter().rev().map(Ca::der).collect();
    let mut anchors: Vec<Vec<u8>> = Vec::new();
    for i in 1..=5 {
        for _ in 0..MAX_CANDIDATES - 1 {
            anchors.push(named(&format!("I{i}"), None).der());
        }
    }
    anchors.push(cas[0].der());
    let m = limit_message(build_path(
        &signer.der(),
        &intermediates,
        &anchors,
        now(),
        1,
    ));
    assert!(m.contains("within 32 signature checks"), "{m}");
    // Without the decoys the same chain is fine.
    let path = build_path(&signer.der(), &intermediates, &[cas[0].der()], now(), 1).unwrap();
    assert_eq!(path.issuers.len(), 6);
}

#[test]
fn the_worst_chain_within_the_bounds_is_checked_quickly() {
    // The most work the limits allow in one step shape: 7 decoys before the real root, 256
    // anchors, 10 certificates.
    let root = named("Root", None);
    let mut chain = vec![named("Signer", Some(&root))];
    let decoy = named("Pool", Some(&root));
    let mut anchors: Vec<Vec<u8>> = (0..MAX_CANDIDATES - 1)
        .map(|_| named("Root", None).der())
        .collect();
    anchors.push(root.der());
    let other = named("Other", None).der();
    anchors.resize(MAX_ANCHORS, other);
    chain.extend((1..MAX_CHAIN_CERTS).map(|_| named("Pool", Some(&decoy))));
    let sc = SignerChain {
        signer_der: chain[0].der(),
        intermediates_der: chain[1..].iter().map(Ca::der).collect(),
    };
    let started = Instant::now();
    for _ in 0..10 {
        signer_path(&sc, None, &anchors, now()).unwrap();
    }
    let each = started.elapsed() / 10;
    assert!(each.as_millis() < 250, "one check took {each:?}");
}

#[test]
fn sub_ca_room_follows_the_validated_path() {
    let root = testutil::root(KeyKind::P256, "Root");
    let one = testutil::ca(
        KeyKind::P256,
        "Mid pathlen 1",
        Some(&root),
        CaOpts {
            path_len: Some(1),
            ..CaOpts::default()
        },
    );
    let signer = named("Signer", Some(&one));
    let path = build_path(&signer.der(), &[one.der()], &[root.der()], now(), 1).unwrap();
    let err = room_for_sub_ca(&signer.der(), &path).unwrap_err();
    assert!(
        matches!(&err, PkiError::CaNotPossible(m) if m.contains("pathLenConstraint 1")),
        "{err:?}"
    );
    let path = build_path(&one.der(), &[], &[root.der()], now(), 1).unwrap();
    room_for_sub_ca(&one.der(), &path).unwrap();
}
