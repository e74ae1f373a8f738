//! Target `name_constraints`: RFC 5280 name-constraint evaluation on structured input (CA
//! constraints and SANs built with `arbitrary` from a small vocabulary, so names and subtrees
//! collide often).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::{Arbitrary, Unstructured};
use ipnet::IpNet;
use pki_issuer::pki::GeneralSubtrees;
use pki_issuer::pki::{check_name_constraints, NameConstraints, SubjectAltNames};

use crate::norm_dns;

const LABELS: [&str; 12] = [
    "example",
    "com",
    "svc",
    "team-a",
    "kube-system",
    "a",
    "*",
    "",
    "EXAMPLE",
    "xn--bcher-kva",
    "local",
    "b",
];

#[derive(Arbitrary, Debug, Clone)]
enum Label {
    Known(u8),
    Free(String),
}

#[derive(Arbitrary, Debug, Clone)]
struct Dns {
    labels: Vec<Label>,
    leading_dot: bool,
    trailing_dot: bool,
}

impl Dns {
    fn render(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|l| match l {
                Label::Known(i) => LABELS[*i as usize % LABELS.len()].to_string(),
                Label::Free(s) => s.clone(),
            })
            .collect();
        let mut s = labels.join(".");
        if self.leading_dot {
            s.insert(0, '.');
        }
        if self.trailing_dot {
            s.push('.');
        }
        s
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Ip {
    V4([u8; 4]),
    V6([u16; 8]),
    /// `::ffff:a.b.c.d`
    Mapped([u8; 4]),
}

impl Ip {
    fn addr(&self) -> IpAddr {
        match self {
            Ip::V4(o) => IpAddr::V4(Ipv4Addr::from(*o)),
            Ip::V6(s) => IpAddr::V6(Ipv6Addr::from(*s)),
            Ip::Mapped(o) => IpAddr::V6(Ipv4Addr::from(*o).to_ipv6_mapped()),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum Subtree {
    Dns(Dns),
    UriHost(Dns),
    Ip(Ip, u8),
    Email(Option<String>, Dns),
}

#[derive(Arbitrary, Debug, Clone)]
enum Name {
    Dns(Dns),
    Uri(String, Dns, String),
    Ip(Ip),
    Email(String, Dns),
}

#[derive(Arbitrary, Debug, Clone)]
struct Ca {
    permitted: Vec<Subtree>,
    excluded: Vec<Subtree>,
}

#[derive(Arbitrary, Debug, Clone)]
struct Input {
    cas: Vec<Ca>,
    names: Vec<Name>,
}

fn subtrees(list: &[Subtree]) -> GeneralSubtrees {
    let mut out = GeneralSubtrees::default();
    for s in list {
        match s {
            Subtree::Dns(d) => out.dns.push(d.render().to_ascii_lowercase()),
            Subtree::UriHost(d) => out.uri.push(d.render().to_ascii_lowercase()),
            Subtree::Ip(ip, prefix) => {
                let addr = ip.addr();
                let max = if addr.is_ipv4() { 32 } else { 128 };
                out.ip
                    .push(IpNet::new(addr, prefix % (max + 1)).unwrap().trunc());
            }
            Subtree::Email(local, d) => out.email.push(match local {
                Some(l) => format!("{l}@{}", d.render()),
                None => d.render(),
            }),
        }
    }
    out
}

fn sans(names: &[Name]) -> SubjectAltNames {
    let mut s = SubjectAltNames::default();
    for n in names {
        match n {
            Name::Dns(d) => s.dns.push(d.render()),
            Name::Uri(scheme, host, path) => {
                s.uris
                    .push(format!("{}://{}/{path}", scheme_of(scheme), host.render()))
            }
            Name::Ip(ip) => s.ips.push(ip.addr()),
            Name::Email(local, d) => s.emails.push(format!("{local}@{}", d.render())),
        }
    }
    s
}

fn scheme_of(s: &str) -> &str {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphabetic()) {
        "spiffe"
    } else {
        s
    }
}

fn ok(cas: &[NameConstraints], s: &SubjectAltNames) -> bool {
    check_name_constraints(cas, s).is_ok()
}

fn single(s: &SubjectAltNames) -> Vec<SubjectAltNames> {
    let mut out = Vec::new();
    for d in &s.dns {
        out.push(SubjectAltNames {
            dns: vec![d.clone()],
            ..Default::default()
        });
    }
    for u in &s.uris {
        out.push(SubjectAltNames {
            uris: vec![u.clone()],
            ..Default::default()
        });
    }
    for i in &s.ips {
        out.push(SubjectAltNames {
            ips: vec![*i],
            ..Default::default()
        });
    }
    for e in &s.emails {
        out.push(SubjectAltNames {
            emails: vec![e.clone()],
            ..Default::default()
        });
    }
    out
}

/// The target.
pub fn run(data: &[u8]) {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    if input.cas.len() > 8 || input.names.len() > 16 {
        return;
    }
    let cas: Vec<NameConstraints> = input
        .cas
        .iter()
        .enumerate()
        .map(|(i, c)| NameConstraints {
            ca_subject: format!("CN=CA {i}"),
            permitted: subtrees(&c.permitted),
            excluded: subtrees(&c.excluded),
        })
        .collect();
    let names = sans(&input.names);
    let all_ok = ok(&cas, &names);

    // Names are checked independently: the set passes iff each name passes alone.
    let each = single(&names);
    assert_eq!(
        all_ok,
        each.iter().all(|n| ok(&cas, n)),
        "set verdict differs from the per-name verdicts"
    );
    // More CAs can only refuse more; their order does not matter.
    if all_ok {
        for k in 0..cas.len() {
            assert!(ok(&cas[..k], &names), "a prefix of the chain refuses");
        }
    }
    let mut rev = cas.clone();
    rev.reverse();
    assert_eq!(all_ok, ok(&rev, &names), "CA order changes the verdict");
    // DNS comparison ignores case.
    let upper = SubjectAltNames {
        dns: names.dns.iter().map(|d| d.to_ascii_uppercase()).collect(),
        ..names.clone()
    };
    assert_eq!(all_ok, ok(&cas, &upper), "DNS case changes the verdict");

    for nc in &cas {
        // Excluded wins: a name equal to an excluded subtree is refused whatever is permitted.
        for d in &names.dns {
            for b in &nc.excluded.dns {
                if !b.starts_with('.') && norm_dns(b) == norm_dns(d) {
                    assert!(!all_ok, "DNS {d:?} equal to excluded {b:?} accepted");
                }
            }
        }
        for ip in &names.ips {
            if nc.excluded.ip.iter().any(|n| n.contains(ip)) {
                assert!(!all_ok, "IP {ip} in an excluded subtree accepted");
            }
            if let IpAddr::V6(v6) = ip {
                if let Some(v4) = v6.to_ipv4_mapped() {
                    assert!(
                        !(all_ok && nc.excluded.ip.iter().any(|n| n.contains(&IpAddr::V4(v4)))),
                        "IPv4-mapped {ip} passes an excluded {v4} subtree (class 5)"
                    );
                }
            }
        }
        for e in &names.emails {
            if nc.excluded.email.iter().any(|b| b == e) {
                assert!(!all_ok, "excluded mailbox {e:?} accepted");
            }
        }
    }

    // A name equal to a permitted DNS subtree, alone under that one constraint, is permitted.
    for nc in &cas {
        for b in &nc.permitted.dns {
            if b.is_empty() || b.starts_with('.') {
                continue;
            }
            let one = NameConstraints {
                ca_subject: "CN=one".into(),
                permitted: GeneralSubtrees {
                    dns: vec![b.clone()],
                    ..Default::default()
                },
                excluded: GeneralSubtrees::default(),
            };
            let name = SubjectAltNames {
                dns: vec![b.clone()],
                ..Default::default()
            };
            assert!(
                ok(&[one], &name),
                "DNS {b:?} refused by its own permitted subtree"
            );
        }
        for net in &nc.permitted.ip {
            let one = NameConstraints {
                ca_subject: "CN=one".into(),
                permitted: GeneralSubtrees {
                    ip: vec![*net],
                    ..Default::default()
                },
                excluded: GeneralSubtrees::default(),
            };
            let name = SubjectAltNames {
                ips: vec![net.network()],
                ..Default::default()
            };
            assert!(
                ok(&[one], &name),
                "{} refused by its own subtree {net}",
                net.network()
            );
        }
    }
}
