//! Target `csr_policy`: `parse_csr`, then `check_policy` under fixed policies with placeholders
//! and `check_name_constraints` under fixed constraints.
//!
//! Input: one mode byte, then the data. Bit 0 clear: the data is a CSR (PEM or DER) as a tenant
//! would submit it. Bit 0 set: the data is a `CertificationRequestInfo` that the target signs
//! with the fixed Ed25519 key [`FUZZ_KEY_SEED`] — mutations of a signed CSR otherwise break its
//! signature, and the policy code behind the signature check would never run. Bits 1-2 pick
//! the request's `spec.usages` (see [`spec_usages`]).

use std::net::IpAddr;
use std::sync::OnceLock;

use ipnet::IpNet;
use pki::testutil::der::tlv;
use pki_issuer::pki::GeneralSubtrees;
use pki_issuer::pki::CSR_EXTENSIONS;
use pki_issuer::pki::{
    check_name_constraints, check_policy, key_info_from_spki, parse_csr, KeyAlgorithm, KeyRule,
    NameConstraints, ParsedCsr, Policy, RequestContext, RequestedCert, Usage,
};
use rcgen::{KeyPair, SigningKey};

use crate::{dns_in, norm_dns};

/// Seed of the Ed25519 key that signs odd-mode inputs. Public test material, not a secret.
pub const FUZZ_KEY_SEED: [u8; 32] = [0x42; 32];

/// PKCS#8 v1 of the Ed25519 key with [`FUZZ_KEY_SEED`].
pub fn fuzz_key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut pkcs8 = hex_bytes("302e020100300506032b657004220420");
        pkcs8.extend_from_slice(&FUZZ_KEY_SEED);
        KeyPair::try_from(pkcs8.as_slice()).expect("fuzz key")
    })
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A CSR: `info` signed by the fuzz key (Ed25519).
pub fn sign_info(info: &[u8]) -> Vec<u8> {
    let sig = fuzz_key().sign(info).expect("ed25519 sign");
    let alg = tlv(0x30, &tlv(0x06, &[0x2b, 0x65, 0x70]));
    let mut bits = vec![0u8];
    bits.extend(sig);
    let mut body = info.to_vec();
    body.extend(alg);
    body.extend(tlv(0x03, &bits));
    tlv(0x30, &body)
}

/// The `CertificationRequestInfo` of a DER CSR (its first element), for seeds.
pub fn info_of(csr_der: &[u8]) -> Vec<u8> {
    use x509_parser::prelude::FromDer;
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(csr_der)
        .expect("csr");
    csr.certification_request_info.raw.to_vec()
}

/// The target.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        check_csr(&sign_info(rest), mode >> 1);
    } else {
        check_csr(rest, mode >> 1);
    }
}

/// `spec.usages` of the request: the CSR's own, none (cert-manager's default), mTLS, or risky.
fn spec_usages(csr: &ParsedCsr, choice: u8) -> Vec<Usage> {
    match choice & 3 {
        0 => csr.requested_usages.clone(),
        1 => vec![],
        2 => DEFAULT_ALLOWED.to_vec(),
        _ => vec![
            Usage::DigitalSignature,
            Usage::ServerAuth,
            Usage::OcspSigning,
        ],
    }
}

fn check_csr(input: &[u8], usage_choice: u8) {
    let csr = match parse_csr(input) {
        Ok(csr) => csr,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    // Round trips: the DER we kept, and the same DER as PEM, parse to the same request.
    assert_eq!(
        parse_csr(&csr.der).as_ref(),
        Ok(&csr),
        "DER re-parse differs"
    );
    let pem = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", csr.der.clone()));
    assert_eq!(
        parse_csr(pem.as_bytes()).as_ref(),
        Ok(&csr),
        "PEM re-parse differs"
    );
    assert_eq!(key_info_from_spki(&csr.spki_der), Ok(csr.key));
    check_csr_shape(&csr);

    let usages = spec_usages(&csr, usage_choice);
    for (policy, ctx) in policies() {
        check_against(policy, ctx, &csr, &usages);
    }
    check_constraints(&csr);
}

/// An accepted CSR's subject is empty or one CN, and it requests only allowed extensions (read
/// with x509-parser directly).
fn check_csr_shape(csr: &ParsedCsr) {
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::cri_attributes::ParsedCriAttribute;
    use x509_parser::prelude::FromDer;
    let (_, req) = X509CertificationRequest::from_der(&csr.der).expect("accepted CSR parses");
    let info = &req.certification_request_info;
    let attrs: Vec<_> = info.subject.iter_attributes().collect();
    assert!(
        attrs.len() <= 1,
        "subject with {} attributes accepted",
        attrs.len()
    );
    match attrs.first() {
        Some(a) => {
            assert_eq!(
                a.attr_type(),
                &x509_parser::oid_registry::OID_X509_COMMON_NAME,
                "subject attribute other than CN accepted"
            );
            assert_eq!(a.as_str().ok(), csr.common_name.as_deref());
        }
        None => assert_eq!(csr.common_name, None),
    }
    for attr in info.iter_attributes() {
        if let ParsedCriAttribute::ExtensionRequest(er) = attr.parsed_attribute() {
            for ext in &er.extensions {
                let oid = ext.oid.to_id_string();
                assert!(
                    CSR_EXTENSIONS.contains(&oid.as_str()),
                    "CSR extension {oid} accepted"
                );
            }
        }
    }
}

const NS: &str = "team-a";
const SA: &str = "web";

fn ctx() -> RequestContext {
    RequestContext {
        namespace: Some(NS.into()),
        service_account: Some(SA.into()),
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// (policy, context) pairs: a strict namespaced policy, a wildcard-allowing one, the default
/// policy, the default with the issue's `ipRanges` example, and a placeholder without a value.
fn policies() -> &'static [(Policy, RequestContext)] {
    static P: OnceLock<Vec<(Policy, RequestContext)>> = OnceLock::new();
    P.get_or_init(|| {
        let strict = Policy {
            dns_names: Some(vec![
                "{namespace}.svc".into(),
                "*.{namespace}.svc".into(),
                "*.{namespace}.svc.cluster.local".into(),
            ]),
            uris: Some(vec![
                "spiffe://cluster.local/ns/{namespace}/sa/{serviceAccount}".into(),
            ]),
            ip_ranges: Some(vec![net("10.0.0.0/8"), net("fd00::/8")]),
            email_addresses: Some(vec!["*@{namespace}.example.com".into()]),
            usages: Some(vec![
                Usage::DigitalSignature,
                Usage::KeyEncipherment,
                Usage::ServerAuth,
                Usage::ClientAuth,
            ]),
            require_subject_alt_name: true,
            key_algorithms: vec![
                KeyRule {
                    algorithm: KeyAlgorithm::Ecdsa,
                    min_size: Some(256),
                },
                KeyRule {
                    algorithm: KeyAlgorithm::Ed25519,
                    min_size: None,
                },
            ],
            ..Policy::default()
        };
        let wildcard = Policy {
            dns_names: Some(vec!["*.{namespace}.example.com".into()]),
            allow_wildcard_names: true,
            ..Policy::default()
        };
        let mapped = Policy {
            ip_ranges: Some(vec![net("10.0.0.0/8"), net("::/0")]),
            ..Policy::default()
        };
        vec![
            (strict.clone(), ctx()),
            (strict, RequestContext::default()),
            (wildcard, ctx()),
            (Policy::default(), ctx()),
            (mapped, ctx()),
        ]
    })
}

fn label_ok(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// DNS SAN syntax every request obeys whatever the policy (ASCII labels, a wildcard only as
/// the whole leftmost label), written independently of `pki::names`.
fn dns_syntax_ok(name: &str) -> bool {
    name.is_ascii()
        && name.len() <= 253
        && name != "*"
        && name
            .split('.')
            .enumerate()
            .all(|(i, l)| (i == 0 && l == "*") || label_ok(l))
}

/// What the strict policy's DNS patterns allow, written independently of the policy code.
fn strict_dns_ok(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let labels: Vec<&str> = n.split('.').collect();
    n == format!("{NS}.svc")
        || (labels.len() == 3 && labels[1..] == [NS, "svc"] && label_ok(labels[0]))
        || (labels.len() == 5
            && labels[1..] == [NS, "svc", "cluster", "local"]
            && label_ok(labels[0]))
}

const DEFAULT_ALLOWED: [Usage; 4] = [
    Usage::DigitalSignature,
    Usage::KeyEncipherment,
    Usage::ServerAuth,
    Usage::ClientAuth,
];

fn v4_mapped(ip: &IpAddr) -> Option<std::net::Ipv4Addr> {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let compat =
                s[..6].iter().all(|x| *x == 0) && !v6.is_loopback() && !v6.is_unspecified();
            let mapped = s[..5].iter().all(|x| *x == 0) && s[5] == 0xffff;
            (mapped || compat).then(|| {
                let o = v6.octets();
                std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15])
            })
        }
        IpAddr::V4(_) => None,
    }
}

fn check_against(policy: &Policy, ctx: &RequestContext, csr: &ParsedCsr, usages: &[Usage]) {
    let is_ca = csr.requested_is_ca.unwrap_or(false);
    let req = RequestedCert::from_csr(csr, is_ca, usages.to_vec(), None);
    let Ok(()) = check_policy(policy, &req, ctx) else {
        return;
    };
    // Allowed ⇒ every rule of the policy holds, checked without the policy code.
    assert!(!is_ca || policy.allow_ca, "CA allowed without allowCA");
    assert!(
        policy
            .key_algorithms
            .iter()
            .any(|r| r.algorithm == csr.key.algorithm),
        "key {:?} allowed but not listed",
        csr.key
    );
    if policy.require_subject_alt_name {
        assert!(
            !csr.sans.is_empty(),
            "no SAN allowed under requireSubjectAltName"
        );
    }
    // Names obey the syntax rules whatever the policy says.
    for d in &csr.sans.dns {
        assert!(
            dns_syntax_ok(d),
            "DNS SAN {d:?} with invalid syntax allowed"
        );
        assert!(
            policy.allow_wildcard_names || !d.contains('*'),
            "wildcard DNS SAN {d:?} allowed"
        );
    }
    for ip in &csr.sans.ips {
        assert!(v4_mapped(ip).is_none(), "IPv4-embedding {ip} allowed");
        if let Some(ranges) = &policy.ip_ranges {
            assert!(ranges.iter().any(|r| r.contains(ip)), "IP {ip} allowed");
        }
    }
    // The CN is one of the SANs (so it obeys every SAN rule).
    if let Some(cn) = &csr.common_name {
        let s = &csr.sans;
        let is_san = s.dns.iter().any(|d| d.eq_ignore_ascii_case(cn))
            || s.uris.iter().any(|u| u == cn)
            || s.emails.iter().any(|e| e == cn)
            || s.ips.iter().any(|i| i.to_string() == *cn);
        assert!(is_san, "CN {cn:?} that is not a SAN allowed");
    }
    // Usages: listed (or the safe default list), cert/CRL sign only on CAs, and a leaf without
    // an EKU extension ("any purpose") only when `any` is allowed.
    let allowed: &[Usage] = policy.usages.as_deref().unwrap_or(&DEFAULT_ALLOWED);
    let listed = |u: Usage| allowed.iter().any(|a| a.canonical() == u.canonical());
    for u in req.usages.iter().chain(&csr.requested_usages) {
        if matches!(u.canonical(), Usage::CertSign | Usage::CrlSign) {
            assert!(is_ca, "usage {u:?} allowed on a leaf");
        } else {
            assert!(listed(*u), "usage {u:?} allowed but not listed");
        }
    }
    assert!(
        req.usages.iter().any(|u| u.eku_oid().is_some()) || listed(Usage::Any),
        "a leaf without extended key usage allowed ({:?})",
        req.usages
    );

    let strict = policy.dns_names.as_ref().is_some_and(|d| d.len() == 3);
    if strict {
        // A placeholder without a value matches nothing.
        assert!(
            ctx.namespace.is_some()
                || (csr.sans.dns.is_empty()
                    && csr.sans.uris.is_empty()
                    && csr.sans.emails.is_empty()),
            "placeholder pattern matched without a namespace: {:?}",
            csr.sans
        );
        for d in &csr.sans.dns {
            assert!(strict_dns_ok(d), "DNS {d:?} allowed by the strict policy");
        }
        let spiffe = format!("spiffe://cluster.local/ns/{NS}/sa/{SA}");
        for u in &csr.sans.uris {
            assert_eq!(u, &spiffe, "URI allowed by the strict policy");
        }
        for e in &csr.sans.emails {
            let (local, domain) = e.rsplit_once('@').expect("email with @");
            assert!(
                !local.is_empty() && norm_dns(domain) == format!("{NS}.example.com"),
                "email {e:?} allowed by the strict policy"
            );
        }
    }
    if policy.dns_names.as_ref().is_some_and(|d| d.len() == 1) {
        for d in &csr.sans.dns {
            let n = d.to_ascii_lowercase();
            let labels: Vec<&str> = n.split('.').collect();
            assert!(
                labels.len() == 4 && labels[1..] == [NS, "example", "com"],
                "DNS {d:?} allowed by the wildcard policy"
            );
        }
    }
}

fn constraints() -> &'static [NameConstraints] {
    static NC: OnceLock<Vec<NameConstraints>> = OnceLock::new();
    NC.get_or_init(|| {
        vec![NameConstraints {
            ca_subject: "CN=Fuzz Intermediate".into(),
            permitted: GeneralSubtrees {
                dns: vec!["svc".into(), "example.com".into()],
                uri: vec![],
                ip: vec![net("10.0.0.0/8"), net("::/0")],
                email: vec![],
            },
            excluded: GeneralSubtrees {
                dns: vec!["kube-system.svc".into()],
                uri: vec![".evil.example".into()],
                ip: vec![net("10.96.0.0/12")],
                email: vec!["admin@example.com".into()],
            },
        }]
    })
}

fn check_constraints(csr: &ParsedCsr) {
    let Ok(()) = check_name_constraints(constraints(), &csr.sans) else {
        return;
    };
    let s = &csr.sans;
    for d in &s.dns {
        assert!(
            dns_in(d, "svc") || dns_in(d, "example.com"),
            "DNS {d:?} outside the permitted subtrees accepted"
        );
        assert!(
            !dns_in(d, "kube-system.svc"),
            "DNS {d:?} in the excluded subtree accepted"
        );
    }
    let excluded = net("10.96.0.0/12");
    for ip in &s.ips {
        assert!(!excluded.contains(ip), "excluded IP {ip} accepted");
        if let Some(v4) = v4_mapped(ip) {
            assert!(
                !excluded.contains(&IpAddr::V4(v4)),
                "IPv4-mapped {ip} passes the excluded {excluded} (class 5)"
            );
        }
    }
    for e in &s.emails {
        assert_ne!(e, "admin@example.com", "excluded mailbox accepted");
    }
}
