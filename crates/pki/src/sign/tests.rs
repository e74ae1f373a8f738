use super::*;
use crate::csr::parse_csr;
use crate::duration::clamp_validity;
use crate::keys::SignerKey;
use crate::policy::RequestedCert;
use crate::template::LeafExtensions;
use crate::testutil::{self, Ca, KeyKind};
use crate::usage::Usage;
use crate::verify::{check_issued, Expectations};
use std::time::Duration;
use time::OffsetDateTime;
use x509_parser::prelude::X509Certificate;

pub(crate) struct Issued {
    pub leaf: Vec<u8>,
    pub expect: Expectations,
}

/// Full pipeline: CSR → template → sign_leaf.
#[allow(clippy::too_many_arguments)]
pub(crate) fn issue(
    chain: &SignerChain,
    key: &SignerKey,
    leaf_kind: KeyKind,
    cn: Option<&str>,
    sans: &[&str],
    usages: Vec<Usage>,
    is_ca: bool,
    extensions: LeafExtensions,
) -> Issued {
    let (_, csr) = testutil::csr(leaf_kind, cn, sans);
    let parsed = parse_csr(csr.der()).unwrap();
    let now = OffsetDateTime::now_utc();
    let req = RequestedCert::from_csr(
        &parsed,
        is_ca,
        usages.clone(),
        Some(Duration::from_secs(3600)),
    );
    let validity = clamp_validity(
        now,
        req.duration,
        Duration::from_secs(90 * 86400),
        chain.earliest_not_after(),
    )
    .unwrap();
    let template = LeafTemplate::new(&parsed, &req, validity, extensions.clone()).unwrap();
    let leaf = sign_leaf(&template, &parsed, chain, key).unwrap();
    Issued {
        leaf,
        expect: Expectations {
            spki_der: parsed.spki_der.clone(),
            sans: parsed.sans.clone(),
            usages,
            is_ca,
            not_after_max: Some(validity.not_after),
            not_before_min: None,
            max_lifetime: None,
            urls: extensions,
            common_name: parsed.common_name.clone(),
            echoable_subject: parsed.echoable_subject.clone(),
            name_constraints: None,
        },
    }
}

fn chain_for(int: &Ca) -> SignerChain {
    SignerChain::from_pem(&int.pem).unwrap()
}

#[test]
fn every_signer_key_type_and_format() {
    let now = OffsetDateTime::now_utc();
    for kind in KeyKind::ALL {
        let (root, int) = testutil::chain(kind);
        let chain = chain_for(&int);
        for (fmt, pem) in testutil::key_pems(kind, &int.key) {
            let key = SignerKey::from_pem(&pem).unwrap();
            for leaf_kind in [KeyKind::P256, KeyKind::Ed25519, KeyKind::Rsa2048] {
                let i = issue(
                    &chain,
                    &key,
                    leaf_kind,
                    None,
                    &["svc.ns.svc", "spiffe://td/ns/ns/sa/app"],
                    vec![
                        Usage::ServerAuth,
                        Usage::ClientAuth,
                        Usage::DigitalSignature,
                    ],
                    false,
                    LeafExtensions::default(),
                );
                check_issued(&i.leaf, &chain.all_der(), &[root.der()], &i.expect, now)
                    .unwrap_or_else(|e| panic!("{kind:?}/{fmt}/{leaf_kind:?}: {e}"));
            }
        }
    }
}

#[test]
fn leaf_contents() {
    let (root, int) = testutil::chain(KeyKind::P384);
    let chain = chain_for(&int);
    let key = SignerKey::from_pem(&int.key_pem).unwrap();
    let ext = LeafExtensions {
        crl_distribution_points: vec!["http://crl.example.com/ca.crl".into()],
        ocsp_servers: vec!["http://ocsp.example.com".into()],
        issuing_certificate_urls: vec!["http://pki.example.com/ca.crt".into()],
    };
    let i = issue(
        &chain,
        &key,
        KeyKind::P256,
        None,
        &["a.example.com"],
        vec![],
        false,
        ext,
    );
    let leaf = parse_cert(&i.leaf).unwrap();
    let int_der = int.der();
    let signer = parse_cert(&int_der).unwrap();
    assert_eq!(leaf.issuer().as_raw(), signer.subject().as_raw());
    assert!(leaf.subject().as_raw().len() <= 2, "empty subject");
    assert_eq!(leaf.raw_serial().len(), 16);
    assert!(leaf.raw_serial()[0] & 0x80 == 0);
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert!(san.critical, "SAN critical with empty subject");
    let bc = leaf
        .basic_constraints()
        .unwrap()
        .expect("explicit basicConstraints");
    assert!(!bc.value.ca && bc.critical);
    let ku = leaf.key_usage().unwrap().unwrap();
    assert!(
        ku.value.digital_signature() && ku.value.key_encipherment() && !ku.value.key_cert_sign()
    );
    assert!(
        leaf.extended_key_usage().unwrap().is_none(),
        "defaults have no EKU"
    );
    let ski_of = |c: &X509Certificate<'_>| {
        c.iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
    };
    let aki = leaf
        .iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        });
    assert_eq!(aki, ski_of(&signer));
    assert!(ski_of(&leaf).is_some());
    let mut saw = (false, false);
    for e in leaf.iter_extensions() {
        match e.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(d) => {
                saw.0 = true;
                assert!(format!("{d:?}").contains("crl.example.com"));
            }
            ParsedExtension::AuthorityInfoAccess(a) => {
                saw.1 = true;
                let s: Vec<String> = a
                    .accessdescs
                    .iter()
                    .map(|d| format!("{} {:?}", d.access_method.to_id_string(), d.access_location))
                    .collect();
                assert_eq!(s.len(), 2, "{s:?}");
                assert!(
                    s[0].starts_with("1.3.6.1.5.5.7.48.1 ") && s[0].contains("ocsp.example.com"),
                    "{s:?}"
                );
                assert!(
                    s[1].starts_with("1.3.6.1.5.5.7.48.2 ") && s[1].contains("pki.example.com"),
                    "{s:?}"
                );
            }
            _ => {}
        }
    }
    assert_eq!(saw, (true, true));
    assert!(check_issued(
        &i.leaf,
        &chain.all_der(),
        &[root.der()],
        &i.expect,
        OffsetDateTime::now_utc()
    )
    .is_ok());
    // A URL the issuer's spec.extensions does not list is refused, whichever kind it is.
    let configured = i.expect.urls.clone();
    for (name, mut narrowed) in [
        ("CRL distribution point", configured.clone()),
        ("OCSP", configured.clone()),
        ("CA issuers", configured.clone()),
    ] {
        match name {
            "CRL distribution point" => narrowed.crl_distribution_points.clear(),
            "OCSP" => narrowed.ocsp_servers = vec!["http://ocsp.other.example".into()],
            _ => narrowed.issuing_certificate_urls.clear(),
        }
        let mut e = i.expect.clone();
        e.urls = narrowed;
        let err = check_issued(
            &i.leaf,
            &chain.all_der(),
            &[root.der()],
            &e,
            OffsetDateTime::now_utc(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(name) && err.contains("does not list"),
            "{name}: {err}"
        );
    }
}

#[test]
fn common_name_and_ca_leaf() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let chain = chain_for(&int);
    let key = SignerKey::from_pem(&int.key_pem).unwrap();
    let i = issue(
        &chain,
        &key,
        KeyKind::P256,
        Some("app.example.com"),
        &["app.example.com"],
        vec![],
        true,
        LeafExtensions::default(),
    );
    let leaf = parse_cert(&i.leaf).unwrap();
    assert_eq!(
        leaf.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "app.example.com"
    );
    assert!(!leaf.subject_alternative_name().unwrap().unwrap().critical);
    let bc = leaf.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    assert!(leaf.key_usage().unwrap().unwrap().value.key_cert_sign());
    check_issued(
        &i.leaf,
        &chain.all_der(),
        &[root.der()],
        &i.expect,
        OffsetDateTime::now_utc(),
    )
    .unwrap();
}

#[test]
fn mismatched_key_is_refused() {
    let (_, int) = testutil::chain(KeyKind::P256);
    let chain = chain_for(&int);
    let other = SignerKey::from_pem(&testutil::key(KeyKind::P256).serialize_pem()).unwrap();
    let (_, csr) = testutil::csr(KeyKind::P256, None, &["a.b"]);
    let parsed = parse_csr(csr.der()).unwrap();
    let req = RequestedCert::from_csr(&parsed, false, vec![], None);
    let v = clamp_validity(
        OffsetDateTime::now_utc(),
        None,
        Duration::from_secs(86400),
        chain.earliest_not_after(),
    )
    .unwrap();
    let t = LeafTemplate::new(&parsed, &req, v, LeafExtensions::default()).unwrap();
    assert_eq!(
        sign_leaf(&t, &parsed, &chain, &other),
        Err(PkiError::SignerKeyMismatch)
    );
}

/// A signer from an "enterprise" PKI whose DN repeats attribute types
/// (DC=com, DC=example) — rcgen alone cannot reproduce that issuer name.
#[test]
fn signer_with_repeated_dn_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
        ])
        .args([
            "-subj",
            "/DC=com/DC=example/OU=PKI/OU=Issuing/CN=Enterprise CA",
        ])
        .args([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])
        .arg("-keyout")
        .arg(d.join("ca.key"))
        .arg("-out")
        .arg(d.join("ca.pem"))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let ca_pem = std::fs::read_to_string(d.join("ca.pem")).unwrap();
    let key = SignerKey::from_pem(&std::fs::read_to_string(d.join("ca.key")).unwrap()).unwrap();
    let chain = SignerChain::from_pem(&ca_pem).unwrap();
    let (_, csr) = testutil::csr(KeyKind::P256, None, &["a.example.com"]);
    let parsed = parse_csr(csr.der()).unwrap();
    let req = RequestedCert::from_csr(&parsed, false, vec![Usage::ServerAuth], None);
    let v = clamp_validity(
        OffsetDateTime::now_utc(),
        None,
        Duration::from_secs(86400),
        chain.earliest_not_after(),
    )
    .unwrap();
    let t = LeafTemplate::new(&parsed, &req, v, LeafExtensions::default()).unwrap();
    let leaf = sign_leaf(&t, &parsed, &chain, &key).unwrap();
    let expect = Expectations {
        spki_der: parsed.spki_der.clone(),
        sans: parsed.sans.clone(),
        usages: vec![Usage::ServerAuth],
        is_ca: false,
        not_after_max: None,
        not_before_min: None,
        max_lifetime: None,
        urls: Default::default(),
        echoable_subject: None,
        common_name: None,
        name_constraints: None,
    };
    check_issued(
        &leaf,
        &[],
        std::slice::from_ref(&chain.signer_der),
        &expect,
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    assert_eq!(
        parse_cert(&leaf).unwrap().issuer().as_raw(),
        parse_cert(&chain.signer_der).unwrap().subject().as_raw()
    );
}
