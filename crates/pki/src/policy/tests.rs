use super::*;

fn ctx() -> RequestContext {
    RequestContext {
        namespace: Some("team-a".into()),
        service_account: Some("web".into()),
    }
}

fn ecdsa() -> KeyInfo {
    KeyInfo {
        algorithm: KeyAlgorithm::Ecdsa,
        size_bits: 256,
    }
}

fn req(sans: SubjectAltNames) -> RequestedCert {
    RequestedCert {
        sans,
        common_name: None,
        is_ca: false,
        usages: vec![Usage::DigitalSignature, Usage::ServerAuth],
        duration: None,
        key: ecdsa(),
        csr_usages: vec![],
        csr_is_ca: None,
    }
}

fn dns(names: &[&str]) -> RequestedCert {
    req(SubjectAltNames {
        dns: names.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
}

fn uri(u: &str) -> RequestedCert {
    req(SubjectAltNames {
        uris: vec![u.into()],
        ..Default::default()
    })
}

fn pol_dns(p: &[&str]) -> Policy {
    Policy {
        dns_names: Some(p.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

/// A policy that lists every SAN type broadly (the default lists none).
fn open() -> Policy {
    Policy {
        dns_names: Some(["*", "*.*", "*.*.*", "*.*.*.*"].map(String::from).to_vec()),
        uris: Some(vec!["spiffe://td/*".into()]),
        ip_ranges: Some(vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()]),
        email_addresses: Some(["*@*", "*@*.*", "*@*.*.*"].map(String::from).to_vec()),
        ..Policy::default()
    }
}

#[test]
fn default_policy_allows_no_names() {
    let p = Policy::default();
    assert_eq!(
        check_policy(&p, &dns(&["anything.example.com"]), &ctx()),
        Err(PkiError::DnsNameNotAllowed("anything.example.com".into()))
    );
    assert!(matches!(
        check_policy(&p, &uri("spiffe://td/ns/team-b/sa/x"), &ctx()),
        Err(PkiError::UriNotAllowed(_))
    ));
    let ip = req(SubjectAltNames {
        ips: vec!["10.96.0.1".parse().unwrap()],
        ..Default::default()
    });
    assert!(matches!(
        check_policy(&p, &ip, &ctx()),
        Err(PkiError::IpNotAllowed(_))
    ));
    let email = req(SubjectAltNames {
        emails: vec!["cluster-admin@example.com".into()],
        ..Default::default()
    });
    assert!(matches!(
        check_policy(&p, &email, &ctx()),
        Err(PkiError::EmailNotAllowed(_))
    ));
    assert_eq!(
        check_policy(&open(), &dns(&["anything.example.com"]), &ctx()),
        Ok(())
    );
}

#[test]
fn a_type_the_policy_omits_is_refused_even_beside_allowed_names() {
    // A DNS-only policy: another namespace's SPIFFE ID, an IP and an email are refused.
    let p = pol_dns(&["*.{namespace}.svc"]);
    let mut r = dns(&["web.team-a.svc"]);
    assert_eq!(check_policy(&p, &r, &ctx()), Ok(()));
    r.sans.uris = vec!["spiffe://cluster.local/ns/team-b/sa/admin".into()];
    assert!(matches!(
        check_policy(&p, &r, &ctx()),
        Err(PkiError::UriNotAllowed(_))
    ));
    r.sans.uris.clear();
    r.sans.ips = vec!["10.96.0.1".parse().unwrap()];
    assert!(matches!(
        check_policy(&p, &r, &ctx()),
        Err(PkiError::IpNotAllowed(_))
    ));
    r.sans.ips.clear();
    r.sans.emails = vec!["cluster-admin@example.com".into()];
    assert!(matches!(
        check_policy(&p, &r, &ctx()),
        Err(PkiError::EmailNotAllowed(_))
    ));
}

#[test]
fn dns_namespace_substitution() {
    let p = pol_dns(&[
        "*.{namespace}.svc.cluster.local",
        "{serviceAccount}.{namespace}.svc",
    ]);
    assert_eq!(
        check_policy(&p, &dns(&["api.team-a.svc.cluster.local"]), &ctx()),
        Ok(())
    );
    assert_eq!(check_policy(&p, &dns(&["web.team-a.svc"]), &ctx()), Ok(()));
    assert_eq!(
        check_policy(&p, &dns(&["api.team-b.svc.cluster.local"]), &ctx()),
        Err(PkiError::DnsNameNotAllowed(
            "api.team-b.svc.cluster.local".into()
        ))
    );
    assert_eq!(
        check_policy(&p, &dns(&["other.team-a.svc"]), &ctx()),
        Err(PkiError::DnsNameNotAllowed("other.team-a.svc".into()))
    );
    // Missing namespace: placeholder patterns match nothing.
    let no_ns = RequestContext::default();
    assert!(check_policy(&p, &dns(&["api.team-a.svc.cluster.local"]), &no_ns).is_err());
}

#[test]
fn dns_star_is_exactly_one_label() {
    let p = pol_dns(&["*.example.com"]);
    assert_eq!(check_policy(&p, &dns(&["a.example.com"]), &ctx()), Ok(()));
    assert_eq!(check_policy(&p, &dns(&["A.Example.COM"]), &ctx()), Ok(()));
    assert!(matches!(
        check_policy(&p, &dns(&["a.example.com."]), &ctx()),
        Err(PkiError::InvalidName(m)) if m.contains("trailing dot")
    ));
    assert!(check_policy(&p, &dns(&["a.b.example.com"]), &ctx()).is_err());
    assert!(check_policy(&p, &dns(&["example.com"]), &ctx()).is_err());
    // The first disallowed name is reported.
    assert_eq!(
        check_policy(&p, &dns(&["ok.example.com", "evil.example.org"]), &ctx()),
        Err(PkiError::DnsNameNotAllowed("evil.example.org".into()))
    );
    assert!(PkiError::DnsNameNotAllowed("evil.example.com".into())
        .to_string()
        .contains("DNS name \"evil.example.com\" is not allowed by the issuer policy"));
}

#[test]
fn wildcard_request_needs_allow_wildcard_names_and_literal_wildcard_pattern() {
    let p = pol_dns(&["*.foo.svc"]);
    assert_eq!(
        check_policy(&p, &dns(&["*.foo.svc"]), &ctx()),
        Err(PkiError::WildcardNotAllowed("*.foo.svc".into())),
        "a pattern's * is one label, not permission for wildcard certificates"
    );
    assert_eq!(check_policy(&p, &dns(&["a.foo.svc"]), &ctx()), Ok(()));
    let mut p = pol_dns(&["a.foo.svc", "{namespace}.foo.svc"]);
    p.allow_wildcard_names = true;
    assert_eq!(
        check_policy(&p, &dns(&["*.foo.svc"]), &ctx()),
        Err(PkiError::DnsNameNotAllowed("*.foo.svc".into()))
    );
    let mut p = pol_dns(&["*.foo.svc"]);
    p.allow_wildcard_names = true;
    assert_eq!(check_policy(&p, &dns(&["*.foo.svc"]), &ctx()), Ok(()));
    assert!(check_policy(&p, &dns(&["*.*.svc"]), &ctx()).is_err());
}

#[test]
fn placeholder_values_cannot_inject() {
    let p = pol_dns(&["{namespace}.svc"]);
    let evil = RequestContext {
        namespace: Some("*".into()),
        service_account: None,
    };
    assert!(check_policy(&p, &dns(&["x.svc"]), &evil).is_err());
    assert!(check_policy(&p, &dns(&["*.svc"]), &evil).is_err());
    let p = Policy {
        uris: Some(vec!["spiffe://td/ns/{namespace}/sa/{serviceAccount}".into()]),
        ..Default::default()
    };
    let evil = RequestContext {
        namespace: Some("a/b".into()),
        service_account: Some("c".into()),
    };
    assert!(check_policy(&p, &uri("spiffe://td/ns/a/b/sa/c"), &evil).is_err());
    // Unknown placeholders match nothing.
    let p = pol_dns(&["{cluster}.svc"]);
    assert!(check_policy(&p, &dns(&["{cluster}.svc"]), &ctx()).is_err());
}

#[test]
fn spiffe_uris() {
    let p = Policy {
        uris: Some(vec![
            "spiffe://cluster.local/ns/{namespace}/sa/{serviceAccount}".into(),
            "spiffe://cluster.local/ns/{namespace}/job/*".into(),
        ]),
        ..Default::default()
    };
    assert_eq!(
        check_policy(&p, &uri("spiffe://cluster.local/ns/team-a/sa/web"), &ctx()),
        Ok(())
    );
    assert_eq!(
        check_policy(&p, &uri("spiffe://cluster.local/ns/team-b/sa/web"), &ctx()),
        Err(PkiError::UriNotAllowed(
            "spiffe://cluster.local/ns/team-b/sa/web".into()
        ))
    );
    assert!(check_policy(
        &p,
        &uri("spiffe://cluster.local/ns/team-a/sa/other"),
        &ctx()
    )
    .is_err());
    assert_eq!(
        check_policy(&p, &uri("spiffe://cluster.local/ns/team-a/job/x1"), &ctx()),
        Ok(())
    );
    for bad in [
        "spiffe://cluster.local/ns/team-a/job/x/y",
        "spiffe://cluster.local/ns/team-a/job/",
        "spiffe://cluster.local/ns/team-a/job/..",
        "spiffe://cluster.local/ns/team-a/job/a%2Fb",
    ] {
        assert!(check_policy(&p, &uri(bad), &ctx()).is_err(), "{bad}");
    }
    // No SA known: SA patterns match nothing.
    let ns_only = RequestContext {
        namespace: Some("team-a".into()),
        service_account: None,
    };
    assert!(check_policy(
        &p,
        &uri("spiffe://cluster.local/ns/team-a/sa/web"),
        &ns_only
    )
    .is_err());
}

#[test]
fn empty_and_omitted_lists_both_allow_nothing() {
    let p = Policy {
        uris: Some(vec![]),
        ..pol_dns(&["a.b"])
    };
    assert!(check_policy(&p, &uri("spiffe://x/y"), &ctx()).is_err());
    assert_eq!(check_policy(&p, &dns(&["a.b"]), &ctx()), Ok(()));
    let p = pol_dns(&["a.b"]);
    assert!(check_policy(&p, &uri("spiffe://x/y"), &ctx()).is_err());
}

#[test]
fn ip_ranges() {
    let p = Policy {
        ip_ranges: Some(vec![
            "10.0.0.0/8".parse().unwrap(),
            "fd00::/8".parse().unwrap(),
        ]),
        ..Default::default()
    };
    let r = |ip: &str| {
        req(SubjectAltNames {
            ips: vec![ip.parse().unwrap()],
            ..Default::default()
        })
    };
    assert_eq!(check_policy(&p, &r("10.1.2.3"), &ctx()), Ok(()));
    assert_eq!(check_policy(&p, &r("fd12::1"), &ctx()), Ok(()));
    assert_eq!(
        check_policy(&p, &r("192.168.1.1"), &ctx()),
        Err(PkiError::IpNotAllowed("192.168.1.1".into()))
    );
    assert!(check_policy(&p, &r("::1"), &ctx()).is_err());
}

#[test]
fn emails() {
    let p = Policy {
        email_addresses: Some(vec![
            "*@{namespace}.example.com".into(),
            "admin@example.com".into(),
        ]),
        ..Default::default()
    };
    let r = |e: &str| {
        req(SubjectAltNames {
            emails: vec![e.into()],
            ..Default::default()
        })
    };
    assert_eq!(
        check_policy(&p, &r("bob@team-a.example.com"), &ctx()),
        Ok(())
    );
    assert_eq!(check_policy(&p, &r("admin@example.com"), &ctx()), Ok(()));
    assert_eq!(
        check_policy(&p, &r("bob@team-b.example.com"), &ctx()),
        Err(PkiError::EmailNotAllowed("bob@team-b.example.com".into()))
    );
    assert!(check_policy(&p, &r("root@example.com"), &ctx()).is_err());
}

#[test]
fn usages() {
    let p = Policy {
        usages: Some(vec![
            Usage::DigitalSignature,
            Usage::KeyEncipherment,
            Usage::ServerAuth,
        ]),
        ..open()
    };
    let mut r = dns(&["a.b"]);
    assert_eq!(check_policy(&p, &r, &ctx()), Ok(()), "defaults are allowed");
    r.usages = vec![Usage::Signing, Usage::ServerAuth];
    assert_eq!(
        check_policy(&p, &r, &ctx()),
        Ok(()),
        "alias of digital signature"
    );
    r.usages = vec![Usage::ServerAuth, Usage::ClientAuth];
    assert_eq!(
        check_policy(&p, &r, &ctx()),
        Err(PkiError::UsageNotAllowed("client auth".into(), ""))
    );
    let p = Policy {
        usages: Some(vec![Usage::ServerAuth]),
        ..open()
    };
    r.usages = vec![];
    assert_eq!(
        check_policy(&p, &r, &ctx()),
        Err(PkiError::UsageNotAllowed("digital signature".into(), ""))
    );
}

#[test]
fn is_ca() {
    let mut r = dns(&["a.b"]);
    r.is_ca = true;
    assert_eq!(
        check_policy(&open(), &r, &ctx()),
        Err(PkiError::CaNotAllowed)
    );
    let p = Policy {
        allow_ca: true,
        ..open()
    };
    assert_eq!(check_policy(&p, &r, &ctx()), Ok(()));
}

#[test]
fn durations() {
    let day = Duration::from_secs(86400);
    let p = Policy {
        min_duration: Some(day),
        ..open()
    };
    let mut r = dns(&["a.b"]);
    r.duration = Some(Duration::from_secs(100 * 365 * 86400));
    assert_eq!(
        check_policy(&p, &r, &ctx()),
        Ok(()),
        "long durations are clamped, not refused"
    );
    r.duration = Some(Duration::from_secs(3600));
    assert_eq!(
        check_policy(&p, &r, &ctx()),
        Err(PkiError::DurationTooShort {
            requested_secs: 3600,
            min_secs: 86400
        })
    );
    // max below min: the effective (clamped) duration is too short.
    let p = Policy {
        min_duration: Some(day * 10),
        max_duration: day,
        ..open()
    };
    r.duration = None;
    assert!(matches!(
        check_policy(&p, &r, &ctx()),
        Err(PkiError::DurationTooShort { .. })
    ));
}

#[test]
fn keys() {
    let mut r = dns(&["a.b"]);
    let check = |r: &RequestedCert, p: &Policy| check_policy(p, r, &ctx());
    r.key = KeyInfo {
        algorithm: KeyAlgorithm::Rsa,
        size_bits: 1024,
    };
    assert_eq!(
        check(&r, &open()),
        Err(PkiError::KeyAlgorithmNotAllowed {
            algorithm: "RSA".into(),
            size: 1024
        })
    );
    // Even a permissive policy cannot go below the absolute floor.
    let lax = Policy {
        key_algorithms: vec![KeyRule {
            algorithm: KeyAlgorithm::Rsa,
            min_size: Some(512),
        }],
        ..open()
    };
    assert!(check(&r, &lax).is_err());
    r.key.size_bits = 16384;
    assert!(check(&r, &lax).is_err(), "RSA capped at 8192");
    r.key.size_bits = 2048;
    assert_eq!(check(&r, &open()), Ok(()));
    let strict = Policy {
        key_algorithms: vec![
            KeyRule {
                algorithm: KeyAlgorithm::Rsa,
                min_size: Some(3072),
            },
            KeyRule {
                algorithm: KeyAlgorithm::Ecdsa,
                min_size: Some(384),
            },
        ],
        ..open()
    };
    assert!(check(&r, &strict).is_err());
    r.key = ecdsa();
    assert!(check(&r, &strict).is_err());
    r.key.size_bits = 384;
    assert_eq!(check(&r, &strict), Ok(()));
    r.key = KeyInfo {
        algorithm: KeyAlgorithm::Ed25519,
        size_bits: 256,
    };
    assert!(check(&r, &strict).is_err(), "Ed25519 not listed");
    assert_eq!(check(&r, &open()), Ok(()));
    r.key = KeyInfo {
        algorithm: KeyAlgorithm::Ecdsa,
        size_bits: 192,
    };
    assert!(check(&r, &open()).is_err());
}

#[test]
fn require_san_and_common_name() {
    let p = Policy {
        require_subject_alt_name: true,
        ..pol_dns(&["*.example.com"])
    };
    let mut r = req(SubjectAltNames::default());
    assert_eq!(
        check_policy(&p, &r, &ctx()),
        Err(PkiError::NoSubjectAltName)
    );
    r.common_name = Some("a.example.com".into());
    assert_eq!(
        check_policy(&p, &r, &ctx()),
        Err(PkiError::CommonNameNotAllowed("a.example.com".into())),
        "a CN-only request is refused naming the CN"
    );
    let p = Policy {
        require_subject_alt_name: false,
        ..pol_dns(&["*.example.com"])
    };
    assert_eq!(
        check_policy(&p, &r, &ctx()),
        Err(PkiError::CommonNameNotAllowed("a.example.com".into())),
        "a CN-only request is refused even without requireSubjectAltName"
    );
    let p = pol_dns(&["*.example.com"]);
    let mut r = dns(&["a.example.com"]);
    r.common_name = Some("evil.example.org".into());
    assert_eq!(
        check_policy(&p, &r, &ctx()),
        Err(PkiError::CommonNameNotAllowed("evil.example.org".into()))
    );
    r.common_name = Some("A.EXAMPLE.com".into());
    assert_eq!(
        check_policy(&p, &r, &ctx()),
        Ok(()),
        "CN equal to a DNS SAN"
    );
    assert!(Policy::default().require_subject_alt_name);
    let p = Policy {
        uris: Some(vec!["spiffe://td/*".into()]),
        ..p
    };
    let mut r = uri("spiffe://td/x");
    r.common_name = Some("spiffe://td/x".into());
    assert_eq!(check_policy(&p, &r, &ctx()), Ok(()), "CN equal to a SAN");
}

#[test]
fn default_usage_allowlist() {
    let p = open();
    let mut r = dns(&["a.b"]);
    r.usages = vec![
        Usage::Signing,
        Usage::KeyEncipherment,
        Usage::ServerAuth,
        Usage::ClientAuth,
    ];
    assert_eq!(check_policy(&p, &r, &ctx()), Ok(()));
    for bad in [
        Usage::OcspSigning,
        Usage::Any,
        Usage::CodeSigning,
        Usage::Timestamping,
        Usage::CertSign,
        Usage::CrlSign,
        Usage::EmailProtection,
    ] {
        r.usages = vec![Usage::DigitalSignature, Usage::ServerAuth, bad];
        let err = check_policy(&p, &r, &ctx()).unwrap_err();
        assert!(
            matches!(&err, PkiError::UsageNotAllowed(u, _) if u == bad.as_str()),
            "{bad}: {err}"
        );
        assert!(err.to_string().contains(bad.as_str()), "{err}");
    }
}

#[test]
fn listed_usages_and_ca_only_usages() {
    let p = Policy {
        usages: Some(vec![
            Usage::DigitalSignature,
            Usage::OcspSigning,
            Usage::CertSign,
            Usage::CrlSign,
        ]),
        allow_ca: true,
        ..open()
    };
    let mut r = dns(&["a.b"]);
    r.usages = vec![Usage::DigitalSignature, Usage::OcspSigning];
    assert_eq!(check_policy(&p, &r, &ctx()), Ok(()));
    r.usages = vec![Usage::DigitalSignature, Usage::OcspSigning, Usage::CertSign];
    let err = check_policy(&p, &r, &ctx()).unwrap_err().to_string();
    assert!(
        err.contains("cert sign") && err.contains("only CA"),
        "{err}"
    );
    r.is_ca = true;
    assert_eq!(check_policy(&p, &r, &ctx()), Ok(()));
}

#[test]
fn a_certificate_without_eku_needs_any() {
    let mut r = dns(&["a.b"]);
    r.usages = vec![]; // cert-manager's default: digital signature, key encipherment
    let err = check_policy(&open(), &r, &ctx()).unwrap_err();
    assert!(matches!(err, PkiError::NoExtendedKeyUsage(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("server auth") && msg.contains("digital signature"),
        "{msg}"
    );
    let only_server = Policy {
        usages: Some(vec![
            Usage::DigitalSignature,
            Usage::KeyEncipherment,
            Usage::ServerAuth,
        ]),
        ..open()
    };
    r.usages = vec![Usage::DigitalSignature, Usage::KeyEncipherment];
    assert!(matches!(
        check_policy(&only_server, &r, &ctx()),
        Err(PkiError::NoExtendedKeyUsage(_))
    ));
    let with_any = Policy {
        usages: Some(vec![
            Usage::DigitalSignature,
            Usage::KeyEncipherment,
            Usage::Any,
        ]),
        ..open()
    };
    assert_eq!(check_policy(&with_any, &r, &ctx()), Ok(()));
}

#[test]
fn usages_inside_the_csr_obey_the_policy() {
    let mut r = dns(&["a.b"]);
    r.csr_usages = vec![Usage::OcspSigning];
    assert!(matches!(
        check_policy(&open(), &r, &ctx()),
        Err(PkiError::UsageNotAllowed(u, _)) if u == "ocsp signing"
    ));
    r.csr_usages = vec![Usage::CertSign];
    assert!(check_policy(&open(), &r, &ctx()).is_err());
    r.csr_usages = vec![];
    r.csr_is_ca = Some(true);
    let err = check_policy(&open(), &r, &ctx()).unwrap_err().to_string();
    assert!(err.contains("cA=true"), "{err}");
}

#[test]
fn syntax_applies_without_dns_patterns() {
    for bad in [
        "secre*.corp.example",
        "a\0b.example",
        "a b.example",
        "x..example",
    ] {
        assert!(
            matches!(
                check_policy(&Policy::default(), &dns(&[bad]), &ctx()),
                Err(PkiError::InvalidName(m)) if m.contains(&format!("{bad:?}"))
            ),
            "{bad:?}"
        );
    }
    let mut r = req(SubjectAltNames {
        ips: vec!["::ffff:192.168.1.1".parse().unwrap()],
        ..Default::default()
    });
    let p = Policy {
        ip_ranges: Some(vec!["10.0.0.0/8".parse().unwrap(), "::/0".parse().unwrap()]),
        ..Default::default()
    };
    let err = check_policy(&p, &r, &ctx()).unwrap_err().to_string();
    assert!(err.contains("::ffff:192.168.1.1"), "{err}");
    r.sans.ips = vec!["::192.168.1.1".parse().unwrap()];
    assert!(check_policy(&p, &r, &ctx()).is_err());
}

#[test]
fn placeholders_may_not_touch_their_own_characters() {
    for bad in [
        "spiffe://td/{namespace}-{serviceAccount}",
        "spiffe://td/ns{namespace}",
        "{serviceAccount}.{namespace}.svc",
        "spiffe://td/{namespace}{serviceAccount}",
        "{namespace}x.example",
    ] {
        let err = check_pattern("uris", bad).unwrap_err().to_string();
        assert!(
            err.contains(bad) || err.contains(&format!("{bad:?}")),
            "{err}"
        );
    }
    for ok in [
        "spiffe://cluster.local/ns/{namespace}/sa/{serviceAccount}",
        "*.{namespace}.svc",
        "{namespace}.example.com",
        "*@{namespace}.example",
    ] {
        assert_eq!(check_pattern("uris", ok), Ok(()), "{ok}");
    }
    let p = pol_dns(&["{namespace}-{serviceAccount}.example"]);
    assert!(check_patterns(&p).is_err());
}
