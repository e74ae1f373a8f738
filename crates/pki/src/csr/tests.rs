use super::*;
use crate::testutil::{self, KeyKind};

fn fixture(name: &str) -> &'static [u8] {
    match name {
        "rsa1024.csr" => include_bytes!("../testdata/rsa1024.csr"),
        "p192.csr" => include_bytes!("../testdata/p192.csr"),
        "secp256k1.csr" => include_bytes!("../testdata/secp256k1.csr"),
        "dsa.csr" => include_bytes!("../testdata/dsa.csr"),
        _ => unreachable!(),
    }
}

#[test]
fn parses_pem_and_der_for_every_key_kind() {
    for kind in KeyKind::ALL {
        let (kp, csr) = testutil::csr(
            kind,
            Some("app"),
            &[
                "app.ns.svc",
                "spiffe://td/ns/ns/sa/app",
                "10.0.0.1",
                "a@example.com",
            ],
        );
        let pem = csr.pem().unwrap();
        let a = parse_csr(pem.as_bytes()).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let b = parse_csr(csr.der()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.key, kind.info());
        assert_eq!(
            a.spki_der,
            rcgen::PublicKeyData::subject_public_key_info(&kp)
        );
        assert_eq!(a.common_name.as_deref(), Some("app"));
        assert_eq!(a.sans.dns, vec!["app.ns.svc"]);
        assert_eq!(a.sans.uris, vec!["spiffe://td/ns/ns/sa/app"]);
        assert_eq!(a.sans.ips, vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(a.sans.emails, vec!["a@example.com"]);
    }
}

#[test]
fn new_certificate_request_label_and_requested_extensions() {
    let kp = testutil::key(KeyKind::P256);
    let mut params = rcgen::CertificateParams::new(vec!["x.example".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 5]),
    ];
    let csr = params.serialize_request(&kp).unwrap();
    let pem = pem::encode(&pem::Pem::new(
        "NEW CERTIFICATE REQUEST",
        csr.der().to_vec(),
    ));
    let parsed = parse_csr(pem.as_bytes()).unwrap();
    assert_eq!(parsed.requested_is_ca, Some(false));
    assert_eq!(
        parsed.requested_usages,
        vec![
            Usage::DigitalSignature,
            Usage::ServerAuth,
            Usage::IpsecEndSystem
        ]
    );
}

#[test]
fn broken_signature_is_rejected() {
    for kind in [KeyKind::P256, KeyKind::Rsa2048, KeyKind::Ed25519] {
        let (_, csr) = testutil::csr(kind, None, &["a.example.com"]);
        let mut der = csr.der().to_vec();
        let n = der.len();
        der[n - 5] ^= 0x01; // inside the signature BIT STRING
        assert_eq!(
            parse_csr(&der),
            Err(PkiError::CsrSignatureInvalid),
            "{kind:?}"
        );
    }
}

#[test]
fn garbage_and_oversize() {
    assert!(matches!(
        parse_csr(b"not a csr"),
        Err(PkiError::InvalidCsr(_))
    ));
    let bad_pem = b"-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n";
    assert!(matches!(parse_csr(bad_pem), Err(PkiError::InvalidCsr(_))));
    let cert = testutil::root(KeyKind::P256, "Root").pem;
    let err = parse_csr(cert.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("no CERTIFICATE REQUEST"), "{err}");
    let big = vec![b'A'; MAX_CSR_BYTES + 1];
    assert_eq!(
        parse_csr(&big),
        Err(PkiError::CsrTooLarge(MAX_CSR_BYTES + 1))
    );
}

#[test]
fn weak_and_unsupported_keys_rejected() {
    assert_eq!(
        parse_csr(fixture("rsa1024.csr")),
        Err(PkiError::KeyAlgorithmNotAllowed {
            algorithm: "RSA".into(),
            size: 1024
        })
    );
    for (f, needle) in [
        ("p192.csr", "P-192"),
        ("secp256k1.csr", "secp256k1"),
        ("dsa.csr", "DSA"),
    ] {
        match parse_csr(fixture(f)) {
            Err(PkiError::UnsupportedKeyAlgorithm(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("{f}: {other:?}"),
        }
    }
}

fn csr_with(params: rcgen::CertificateParams) -> Vec<u8> {
    let kp = testutil::key(KeyKind::P256);
    params.serialize_request(&kp).unwrap().der().to_vec()
}

#[test]
fn subject_must_be_empty_or_one_cn() {
    let mut p = rcgen::CertificateParams::new(vec!["a.ns.svc".to_string()]).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    assert_eq!(parse_csr(&csr_with(p.clone())).unwrap().common_name, None);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "a.ns.svc");
    assert_eq!(
        parse_csr(&csr_with(p.clone()))
            .unwrap()
            .common_name
            .as_deref(),
        Some("a.ns.svc")
    );
    let mut masters = p.clone();
    masters
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    let err = parse_csr(&csr_with(masters)).unwrap_err();
    assert!(matches!(err, PkiError::SubjectNotAllowed(_)), "{err}");
    assert!(err.to_string().contains("O=\"system:masters\""), "{err}");
    let mut ou = rcgen::CertificateParams::new(vec!["a.ns.svc".to_string()]).unwrap();
    ou.distinguished_name = rcgen::DistinguishedName::new();
    ou.distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, "x");
    let err = parse_csr(&csr_with(ou)).unwrap_err().to_string();
    assert!(err.contains("OU=\"x\""), "{err}");
}

#[test]
fn requested_extensions_are_allowlisted() {
    let base = || rcgen::CertificateParams::new(vec!["a.ns.svc".to_string()]).unwrap();
    let mut nc = base();
    nc.custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            &[2, 5, 29, 30],
            vec![0x30, 0x00],
        ));
    let err = parse_csr(&csr_with(nc)).unwrap_err().to_string();
    assert!(err.contains("nameConstraints (2.5.29.30)"), "{err}");
    let mut unknown = base();
    let mut ext =
        rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![0x05, 0x00]);
    ext.set_criticality(true);
    unknown.custom_extensions.push(ext);
    let err = parse_csr(&csr_with(unknown)).unwrap_err().to_string();
    assert!(
        err.contains("critical") && err.contains("1.3.6.1.4.1.99999.1"),
        "{err}"
    );
    let mut ca = base();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    assert_eq!(
        parse_csr(&csr_with(ca)).unwrap().requested_is_ca,
        Some(true)
    );
}
