//! Hostile input (issue 10): one table of requests an attacker with create rights on
//! CertificateRequests (and on issuers) in one namespace would try, each with its exact
//! expected `Ready` reason and a message that names the offending value, run concurrently
//! against one real pki-issuer process. Refused requests must carry no certificate, a message
//! starting "refused before signing: " and a `PolicyViolation` Event; issued ones are parsed
//! and must hold exactly the validated subject, SANs, key and an allowlisted set of
//! extensions.
//!
//! Expected outcomes follow the lead's issue-10 decisions (notes/SECURITY-DECISIONS.md).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::Api;
use pki_issuer::api::cert_manager::{CertificateRequest, CertificateRequestSpec, IssuerRef};
use serde_json::json;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::fixtures::{self, der, general_name as gn, ku, oids, CsrBuilder};
use crate::harness::{external, issuer_ref, Env};
use rcgen::KeyPair;

/// What the request's `Ready` condition must end with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Issued,
    Failed,
    Pending,
    Denied,
}

impl Expect {
    fn reason(self) -> &'static str {
        match self {
            Expect::Issued => "Issued",
            Expect::Failed => "Failed",
            Expect::Pending => "Pending",
            Expect::Denied => "Denied",
        }
    }
}

/// How a case is driven besides create + approve.
#[derive(Clone, Debug)]
enum Flow {
    /// Create, approve.
    Normal,
    /// Create; one status update sets both Approved=True and Denied=True.
    ApprovedAndDenied,
    /// Create unapproved, replace spec.request with this CSR, then approve.
    SwapBeforeApproval(String),
    /// Create, approve, wait for the final state, then replace spec.request (and set isCA):
    /// the request must not be signed (or written) again.
    SwapAfterFinal(String),
}

type LeafCheck = Box<dyn Fn(&X509Certificate<'_>) -> Result<(), String> + Send + Sync>;

struct Case {
    class: &'static str,
    name: String,
    issuer: IssuerRef,
    csr: String,
    is_ca: bool,
    usages: Vec<String>,
    username: Option<String>,
    duration: Option<String>,
    flow: Flow,
    expect: Expect,
    needle: String,
    check: Option<LeafCheck>,
}

const DEFAULT_USAGES: &[&str] = &[
    "digital signature",
    "key encipherment",
    "server auth",
    "client auth",
];
const CA_USAGES: &[&str] = &[
    "digital signature",
    "cert sign",
    "crl sign",
    "server auth",
    "client auth",
];
const REFUSED_PREFIX: &str = "refused before signing: ";
const SUB_CA_CASE: &str = "ca-issued-with-name-constraints";

impl Case {
    fn fails(&mut self, needle: impl Into<String>) -> &mut Self {
        self.expect = Expect::Failed;
        self.needle = needle.into();
        self
    }
    fn issued(&mut self, needle: impl Into<String>) -> &mut Self {
        self.expect = Expect::Issued;
        self.needle = needle.into();
        self
    }
    fn pending(&mut self, needle: impl Into<String>) -> &mut Self {
        self.expect = Expect::Pending;
        self.needle = needle.into();
        self
    }
    fn denied(&mut self, needle: impl Into<String>) -> &mut Self {
        self.expect = Expect::Denied;
        self.needle = needle.into();
        self
    }
    fn usages(&mut self, u: &[&str]) -> &mut Self {
        self.usages = u.iter().map(|s| s.to_string()).collect();
        self
    }
    fn ca(&mut self) -> &mut Self {
        self.is_ca = true;
        self.usages(CA_USAGES)
    }
    fn user(&mut self, u: &str) -> &mut Self {
        self.username = Some(u.into());
        self
    }
    fn duration(&mut self, d: &str) -> &mut Self {
        self.duration = Some(d.into());
        self
    }
    fn flow(&mut self, f: Flow) -> &mut Self {
        self.flow = f;
        self
    }
    fn cluster(&mut self) -> &mut Self {
        self.issuer.kind = Some("PKIClusterIssuer".into());
        self
    }
    fn check(
        &mut self,
        f: impl Fn(&X509Certificate<'_>) -> Result<(), String> + Send + Sync + 'static,
    ) -> &mut Self {
        self.check = Some(Box::new(f));
        self
    }
}

/// The table under construction.
struct Table {
    ns: String,
    class: &'static str,
    cases: Vec<Case>,
    /// The key of the sub-CA request, to prove its name constraints by signing with it.
    sub_ca_key: KeyPair,
}

impl Table {
    fn class(&mut self, class: &'static str) {
        self.class = class;
    }

    fn add(&mut self, name: &str, issuer: &str, csr: String) -> &mut Case {
        assert!(
            self.cases.iter().all(|c| c.name != name),
            "duplicate case {name}"
        );
        self.cases.push(Case {
            class: self.class,
            name: name.into(),
            issuer: issuer_ref(issuer, "PKIIssuer"),
            csr,
            is_ca: false,
            usages: DEFAULT_USAGES.iter().map(|s| s.to_string()).collect(),
            username: Some(format!("system:serviceaccount:{}:workload", self.ns)),
            duration: None,
            flow: Flow::Normal,
            expect: Expect::Failed,
            needle: String::new(),
            check: None,
        });
        self.cases.last_mut().unwrap()
    }
}

/// An issuer-level case: the issuer's own `Ready` condition.
struct IssuerCase {
    class: &'static str,
    name: String,
    cluster: bool,
    spec: serde_json::Value,
    /// Ready status and the accepted reasons.
    status: &'static str,
    reasons: &'static [&'static str],
    needle: String,
}

fn testdata(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/pki/src/testdata")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn spec(secret: &str, policy: serde_json::Value) -> serde_json::Value {
    json!({
        "secret": {"name": secret},
        "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}},
        "policy": policy,
    })
}

/// `policy` with every SAN type listed broadly: an omitted type allows nothing, so the
/// issuers that test syntax, usages and the chain's constraints list names explicitly.
fn any_names(mut policy: serde_json::Value) -> serde_json::Value {
    policy["dnsNames"] = json!(["*", "*.*", "*.*.*", "*.*.*.*", "*.*.*.*.*", "*.*.*.*.*.*"]);
    policy["uris"] = json!(["spiffe://*/ns/*/sa/*", "spiffe://*/*", "https://*/*"]);
    policy["ipRanges"] = json!(["0.0.0.0/0", "::/0"]);
    policy["emailAddresses"] = json!(["*@*.*", "*@*.*.*", "*@*.*.*.*"]);
    policy
}

fn csr(sans: &[&str]) -> String {
    CsrBuilder::sans(sans).build()
}

/// The canonical text of an IP literal (what a message naming it prints).
fn ip_text(s: &str) -> String {
    s.parse::<IpAddr>().unwrap().to_string()
}

fn eku_set(leaf: &X509Certificate<'_>) -> Result<Vec<&'static str>, String> {
    let eku = leaf
        .extended_key_usage()
        .map_err(|e| e.to_string())?
        .ok_or("no extendedKeyUsage")?
        .value;
    let mut out = Vec::new();
    for (on, name) in [
        (eku.any, "any"),
        (eku.server_auth, "server auth"),
        (eku.client_auth, "client auth"),
        (eku.code_signing, "code signing"),
        (eku.email_protection, "email protection"),
        (eku.time_stamping, "timestamping"),
        (eku.ocsp_signing, "ocsp signing"),
    ] {
        if on {
            out.push(name);
        }
    }
    if !eku.other.is_empty() {
        return Err(format!("unknown EKU OIDs {:?}", eku.other));
    }
    Ok(out)
}

/// Build the whole table. `cluster_*` are the PKIClusterIssuer names.
fn table(ns: &str) -> Table {
    let ClusterNames {
        ok: cluster_ok,
        outside: cluster_outside,
        slash: cluster_slash,
        roots_outside,
    } = ClusterNames::of(ns);
    let mut t = Table {
        ns: ns.into(),
        class: "",
        cases: Vec::new(),
        sub_ca_key: KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("sub-CA key"),
    };
    let web = format!("web.{ns}.svc");
    let own_sa = format!("system:serviceaccount:{ns}:web");
    let spiffe_web = format!("spiffe://cluster.local/ns/{ns}/sa/web");

    // ---- 1. Subject DN -------------------------------------------------------------------
    t.class("subject");
    t.add(
        "subj-o-masters",
        "mesh",
        CsrBuilder::sans(&[&web])
            .attr(oids::O, "system:masters")
            .cn(&web)
            .build(),
    )
    .fails("system:masters");
    t.add(
        "subj-o-after-cn",
        "mesh",
        CsrBuilder::sans(&[&web])
            .cn(&web)
            .attr(oids::O, "system:masters")
            .build(),
    )
    .fails("system:masters");
    t.add(
        "subj-second-cn",
        "mesh",
        CsrBuilder::sans(&[&web])
            .cn(&web)
            .cn("db.kube-system.svc")
            .build(),
    )
    .fails("db.kube-system.svc");
    t.add(
        "subj-ou",
        "mesh",
        CsrBuilder::sans(&[&web])
            .cn(&web)
            .attr(oids::OU, "tenant-admins")
            .build(),
    )
    .fails("tenant-admins");
    t.add(
        "subj-cn-other-ns",
        "mesh",
        CsrBuilder::sans(&[&web]).cn("web.kube-system.svc").build(),
    )
    .fails("web.kube-system.svc");
    t.add(
        "subj-cn-namespace-name",
        "mesh",
        CsrBuilder::sans(&[&web]).cn("kube-system").build(),
    )
    .fails("kube-system");
    t.add(
        "subj-multi-valued-rdn",
        "mesh",
        CsrBuilder::sans(&[&web])
            .multi_rdn(&[(oids::CN, &web), (oids::O, "multi-valued-org")])
            .build(),
    )
    .fails("multi-valued-org");
    t.add(
        "subj-serial-number",
        "mesh",
        CsrBuilder::sans(&[&web])
            .cn(&web)
            .attr(oids::SERIAL_NUMBER, "serial-4711")
            .build(),
    )
    .fails("serial-4711");
    t.add(
        "subj-uid",
        "mesh",
        CsrBuilder::sans(&[&web])
            .attr(oids::UID, "uid-root")
            .cn(&web)
            .build(),
    )
    .fails("uid-root");
    t.add(
        "subj-email-address",
        "mesh",
        CsrBuilder::sans(&[&web])
            .cn(&web)
            .attr(oids::EMAIL_ADDRESS, "root@evil.example")
            .build(),
    )
    .fails("root@evil.example");
    t.add(
        "subj-cn-not-a-san",
        "mesh",
        CsrBuilder::sans(&[&web])
            .cn(&format!("other.{ns}.svc"))
            .build(),
    )
    .fails(format!("other.{ns}.svc"));
    t.add(
        "subj-cn-only-wildcard",
        "mesh",
        CsrBuilder::new().cn(&format!("*.{ns}.svc")).build(),
    )
    .fails(format!("*.{ns}.svc"));
    t.add(
        "subj-cn-equals-san",
        "mesh",
        CsrBuilder::sans(&[&web]).cn(&web).build(),
    )
    .issued("Certificate issued");
    t.add(
        "subj-cn-upper-case-of-san",
        "mesh",
        CsrBuilder::sans(&[&web])
            .cn(&web.to_ascii_uppercase())
            .build(),
    )
    .issued("Certificate issued");
    t.add(
        "subj-cn-ip-san",
        "mesh",
        CsrBuilder::sans(&["10.1.2.3"]).cn("10.1.2.3").build(),
    )
    .issued("Certificate issued");
    t.add(
        "subj-cn-uri-san",
        "mesh",
        CsrBuilder::sans(&[&format!("spiffe://cluster.local/ns/{ns}/sa/api")])
            .cn(&format!("spiffe://cluster.local/ns/{ns}/sa/api"))
            .build(),
    )
    .issued("Certificate issued");
    t.add(
        "subj-cn-ip-non-canonical",
        "mesh",
        CsrBuilder::sans(&["10.1.2.3"]).cn("10.01.2.3").build(),
    )
    .fails("10.01.2.3");
    t.add(
        "subj-cn-ipv6-non-canonical",
        "mesh",
        CsrBuilder::sans(&["2001:db8::1"])
            .cn("2001:DB8:0::1")
            .build(),
    )
    .fails("2001:DB8:0::1");
    t.add(
        "subj-cn-trailing-dot",
        "mesh",
        CsrBuilder::sans(&[&web]).cn(&format!("{web}.")).build(),
    )
    .fails(format!("{web}."));
    t.add(
        "subj-empty-rdn",
        "mesh",
        CsrBuilder::sans(&[&web]).multi_rdn(&[]).build(),
    )
    .fails("empty");
    // x509-parser stops reading a Name at an empty RDN; Go (CFSSL) reads on and would copy
    // O=system:masters into the leaf.
    t.add(
        "subj-empty-rdn-hides-o",
        "mesh",
        CsrBuilder::sans(&[&web])
            .multi_rdn(&[])
            .attr(oids::O, "system:masters")
            .build(),
    )
    .fails("system:masters");
    t.add("subj-empty", "mesh", csr(&[&web]))
        .issued("Certificate issued");
    // Empty naming attributes are dropped (istio-agent's CSR subject is exactly O=""):
    // in every string type, beside a CN; never other types, non-strings, or beside a value.
    let spiffe_api = format!("spiffe://cluster.local/ns/{ns}/sa/api");
    for (name, tag) in [
        ("utf8", 0x0c),
        ("numeric", 0x12),
        ("printable", 0x13),
        ("teletex", 0x14),
        ("ia5", 0x16),
        ("visible", 0x1a),
        ("universal", 0x1c),
        ("bmp", 0x1e),
    ] {
        t.add(
            &format!("subj-empty-o-{name}"),
            "mesh",
            CsrBuilder::sans(&[&spiffe_api])
                .attr_raw(oids::O, der::tlv(tag, &[]))
                .build(),
        )
        .issued("Certificate issued");
    }
    t.add(
        "subj-empty-c-ou-serial-beside-cn",
        "mesh",
        CsrBuilder::sans(&[&web])
            .attr_raw(oids::C, der::tlv(0x13, &[]))
            .attr(oids::OU, "")
            .cn(&web)
            .attr_raw(oids::SERIAL_NUMBER, der::tlv(0x13, &[]))
            .build(),
    )
    .issued("Certificate issued");
    for (name, oid) in [
        ("subj-empty-dc", oids::DC),
        ("subj-empty-uid", oids::UID),
        ("subj-empty-email-address", oids::EMAIL_ADDRESS),
        ("subj-empty-unknown-oid", "1.3.6.1.4.1.99999.7"),
    ] {
        t.add(
            name,
            "mesh",
            CsrBuilder::sans(&[&web]).attr(oid, "").build(),
        )
        .fails("may not be empty");
    }
    for (name, value) in [
        ("subj-empty-o-octet-string", der::tlv(0x04, &[])),
        ("subj-empty-o-null", der::tlv(0x05, &[])),
        ("subj-empty-o-sequence", der::seq(&[])),
    ] {
        t.add(
            name,
            "mesh",
            CsrBuilder::sans(&[&web]).attr_raw(oids::O, value).build(),
        )
        .fails("has subject attribute O=");
    }
    t.add(
        "subj-empty-o-beside-masters",
        "mesh",
        CsrBuilder::sans(&[&spiffe_api])
            .attr_raw(oids::O, der::tlv(0x13, &[]))
            .attr(oids::O, "system:masters")
            .build(),
    )
    .fails("system:masters");
    t.add(
        "subj-empty-o-multi-rdn-masters",
        "mesh",
        CsrBuilder::sans(&[&spiffe_api])
            .multi_rdn(&[(oids::O, ""), (oids::O, "system:masters")])
            .build(),
    )
    .fails("system:masters");
    t.add(
        "subj-empty-o-cn-other-ns",
        "mesh",
        CsrBuilder::sans(&[&web])
            .attr(oids::O, "")
            .cn("web.kube-system.svc")
            .build(),
    )
    .fails("web.kube-system.svc");
    t.add(
        "subj-empty-cn-beside-second-cn",
        "mesh",
        CsrBuilder::sans(&[&web])
            .cn("")
            .cn(&web)
            .cn("db.kube-system.svc")
            .build(),
    )
    .fails("db.kube-system.svc");

    // ---- 2. Usages -----------------------------------------------------------------------
    t.class("usages");
    let open_name = "u.example.net";
    for (name, usage) in [
        ("use-ocsp-signing", "ocsp signing"),
        ("use-any", "any"),
        ("use-code-signing", "code signing"),
        ("use-timestamping", "timestamping"),
        ("use-email-protection", "email protection"),
        ("use-cert-sign", "cert sign"),
        ("use-crl-sign", "crl sign"),
    ] {
        t.add(name, "open", csr(&[open_name]))
            .usages(&["digital signature", "server auth", usage])
            .fails(usage);
    }
    t.add("use-cert-sign-listed-non-ca", "certsign", csr(&[open_name]))
        .usages(&["digital signature", "cert sign", "server auth"])
        .fails("cert sign");
    t.add(
        "use-no-eku-serverauth-policy",
        "serverauth",
        csr(&[open_name]),
    )
    .usages(&["digital signature", "key encipherment"])
    .fails("extended key usage");
    t.add("use-no-eku-default-policy", "open", csr(&[open_name]))
        .usages(&["digital signature", "key encipherment"])
        .fails("extended key usage");
    t.add(
        "use-client-auth-not-listed",
        "serverauth",
        csr(&[open_name]),
    )
    .usages(&["digital signature", "key encipherment", "client auth"])
    .fails("client auth");
    t.add("use-explicit-server-auth", "serverauth", csr(&[open_name]))
        .usages(&["digital signature", "key encipherment", "server auth"])
        .issued("Certificate issued")
        .check(|leaf| {
            let ekus = eku_set(leaf)?;
            (ekus == ["server auth"])
                .then_some(())
                .ok_or(format!("EKU {ekus:?}, want exactly server auth"))
        });
    t.add("use-signing-alias", "serverauth", csr(&[open_name]))
        .usages(&["signing", "key encipherment", "server auth"])
        .issued("Certificate issued");
    for (name, usage) in [
        ("use-ipsec-user", "ipsec user"),
        ("use-netscape-sgc", "netscape sgc"),
        ("use-key-agreement", "key agreement"),
    ] {
        t.add(name, "open", csr(&[open_name]))
            .usages(&["digital signature", "server auth", usage])
            .fails(usage);
    }
    t.add(
        "use-csr-ku-cert-sign",
        "open",
        CsrBuilder::sans(&[open_name])
            .key_usage(ku::DIGITAL_SIGNATURE | ku::KEY_CERT_SIGN)
            .eku(&[oids::SERVER_AUTH])
            .build(),
    )
    .fails("cert sign");
    t.add(
        "use-csr-ku-crl-sign",
        "open",
        CsrBuilder::sans(&[open_name])
            .key_usage(ku::DIGITAL_SIGNATURE | ku::CRL_SIGN)
            .eku(&[oids::SERVER_AUTH])
            .build(),
    )
    .fails("crl sign");
    t.add(
        "use-csr-eku-ocsp",
        "open",
        CsrBuilder::sans(&[open_name])
            .eku(&[oids::SERVER_AUTH, oids::OCSP_SIGNING])
            .build(),
    )
    .fails("ocsp signing");
    t.add(
        "use-csr-eku-code-signing",
        "open",
        CsrBuilder::sans(&[open_name])
            .eku(&[oids::CODE_SIGNING])
            .build(),
    )
    .fails("code signing");
    t.add(
        "use-csr-eku-any",
        "open",
        CsrBuilder::sans(&[open_name]).eku(&[oids::ANY_EKU]).build(),
    )
    .fails("any");
    t.add(
        "use-csr-eku-timestamping",
        "open",
        CsrBuilder::sans(&[open_name])
            .eku(&[oids::TIME_STAMPING])
            .build(),
    )
    .fails("timestamping");
    t.add(
        "use-csr-client-auth-serverauth-policy",
        "serverauth",
        CsrBuilder::sans(&[open_name])
            .eku(&[oids::CLIENT_AUTH])
            .build(),
    )
    .usages(&["digital signature", "key encipherment", "server auth"])
    .fails("client auth");
    t.add(
        "use-csr-ku-eku-matching",
        "serverauth",
        CsrBuilder::sans(&[open_name])
            .key_usage(ku::DIGITAL_SIGNATURE | ku::KEY_ENCIPHERMENT)
            .eku(&[oids::SERVER_AUTH])
            .build(),
    )
    .usages(&["digital signature", "key encipherment", "server auth"])
    .issued("Certificate issued");

    // ---- 3. Common name rules / requireSubjectAltName default -----------------------------
    t.class("cn-and-san-required");
    t.add(
        "cn-only-plain",
        "mesh",
        CsrBuilder::new().cn(&format!("api.{ns}.svc")).build(),
    )
    .fails(format!("api.{ns}.svc"));
    t.add(
        "cn-only-open-issuer",
        "open",
        CsrBuilder::new().cn("cn-only.example.net").build(),
    )
    .fails("cn-only.example.net");
    t.add("cn-no-subject-no-san", "open", CsrBuilder::new().build())
        .fails("subject alternative name");
    t.add(
        "cn-bad-dns-syntax",
        "open",
        CsrBuilder::sans(&["good.example.net"])
            .cn("bad_name.example.net")
            .build(),
    )
    .fails("bad_name.example.net");
    t.add(
        "cn-outside-name-constraint",
        "constrained",
        CsrBuilder::sans(&["ok.example.net"])
            .cn("x.secret.corp.example")
            .build(),
    )
    .fails("x.secret.corp.example");

    // ---- 4. Sub-CAs ---------------------------------------------------------------------
    t.class("sub-ca");
    let ca_san = format!("ca.{ns}.svc");
    t.add(
        "ca-without-allow-ca",
        "mesh",
        CsrBuilder::sans(&[&ca_san]).cn(&ca_san).build(),
    )
    .ca()
    .fails("CA certificates");
    t.add(
        "ca-path-len-zero-signer",
        "ca-pl0",
        CsrBuilder::sans(&[&ca_san]).cn(&ca_san).build(),
    )
    .ca()
    .fails("pathLen");
    t.add(
        "ca-policy-with-uris",
        "ca-uris",
        CsrBuilder::sans(&[&ca_san]).cn(&ca_san).build(),
    )
    .ca()
    .fails("uris");
    t.add(
        "ca-policy-inner-wildcard",
        "ca-midstar",
        CsrBuilder::sans(&[&format!("api.x.{ns}.svc")])
            .cn(&format!("api.x.{ns}.svc"))
            .build(),
    )
    .ca()
    .fails(format!("api.*.{ns}.svc"));
    // `dnsNames: []` (like an omitted list) allows no DNS name: the sub-CA excludes them all.
    t.add(
        "ca-policy-empty-dns-list",
        "ca-empty",
        CsrBuilder::sans(&["10.0.0.1"]).cn("10.0.0.1").build(),
    )
    .ca()
    .issued("Certificate issued")
    .check(|leaf| {
        let nc = leaf
            .name_constraints()
            .map_err(|e| e.to_string())?
            .ok_or("no nameConstraints")?;
        let excluded = nc.value.excluded_subtrees.clone().unwrap_or_default();
        let all_dns = excluded
            .iter()
            .any(|st| matches!(st.base, GeneralName::DNSName("")));
        if all_dns {
            Ok(())
        } else {
            Err(format!("no zero-length excluded dNSName: {excluded:?}"))
        }
    });
    t.add(
        "ca-csr-requests-name-constraints",
        "ca",
        CsrBuilder::sans(&[&ca_san])
            .cn(&ca_san)
            .ext(
                oids::NAME_CONSTRAINTS,
                true,
                fixtures::der::seq(&[fixtures::der::tlv(
                    0xa0,
                    &fixtures::der::seq(&[gn::dns(b"svc")]),
                )]),
            )
            .build(),
    )
    .ca()
    .fails("2.5.29.30");
    t.add(
        "ca-cert-sign-without-is-ca",
        "ca",
        CsrBuilder::sans(&[&ca_san]).cn(&ca_san).build(),
    )
    .usages(CA_USAGES)
    .fails("cert sign");
    let nc_ns = ns.to_string();
    let sub_ca_csr = CsrBuilder::sans(&[&ca_san])
        .cn(&ca_san)
        .build_with(&t.sub_ca_key);
    t.add(SUB_CA_CASE, "ca", sub_ca_csr)
        .ca()
        .issued("Certificate issued")
        .check(move |leaf| check_sub_ca_constraints(leaf, &nc_ns));

    // ---- 5. IP SANs ---------------------------------------------------------------------
    t.class("ip");
    for (name, issuer, ip, ok) in [
        ("ip-v4-mapped", "mesh", "::ffff:192.168.1.1", false),
        (
            "ip-v4-mapped-inside-range",
            "mesh",
            "::ffff:10.1.1.1",
            false,
        ),
        ("ip-v4-compatible", "mesh", "::192.168.1.1", false),
        ("ip-outside-range", "mesh", "192.168.1.1", false),
        ("ip-inside-range", "mesh", "10.1.2.3", true),
        ("ip-v6-inside", "mesh", "2001:db8::1", true),
        ("ip-v6-loopback", "mesh", "::1", true),
        ("ip-v6-unspecified", "mesh", "::", false),
        ("ip-nc-excluded-v4", "constrained", "192.168.1.1", false),
        (
            "ip-nc-excluded-v4-mapped",
            "constrained",
            "::ffff:192.168.1.1",
            false,
        ),
        (
            "ip-nc-excluded-v4-compatible",
            "constrained",
            "::192.168.1.1",
            false,
        ),
        ("ip-nc-allowed", "constrained", "10.9.9.9", true),
    ] {
        let c = t.add(name, issuer, csr(&[ip]));
        if ok {
            c.issued("Certificate issued");
        } else {
            c.fails(ip_text(ip));
        }
    }

    // ---- 6. DNS syntax (the "open" issuer lists every name) ----------------------------------------
    t.class("dns");
    let long_label = format!("{}.example.net", "a".repeat(64));
    let long_name = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(62)
    );
    assert_eq!(long_name.len(), 254);
    let dns_bad: Vec<(&str, &str, Vec<u8>, String)> = vec![
        (
            "dns-partial-wildcard",
            "wild",
            b"secre*.corp.example".to_vec(),
            "secre*.corp.example".into(),
        ),
        (
            "dns-partial-wildcard-no-allow",
            "open",
            b"secre*.corp.example".to_vec(),
            "secre*.corp.example".into(),
        ),
        (
            "dns-nul",
            "open",
            b"evil-nul\0.example.net".to_vec(),
            "evil-nul".into(),
        ),
        (
            "dns-space",
            "open",
            b"evil space.example.net".to_vec(),
            "evil space.example.net".into(),
        ),
        (
            "dns-empty-label",
            "open",
            b"a..example.net".to_vec(),
            "a..example.net".into(),
        ),
        (
            "dns-64-byte-label",
            "open",
            long_label.as_bytes().to_vec(),
            long_label.clone(),
        ),
        (
            "dns-254-bytes",
            "open",
            long_name.as_bytes().to_vec(),
            long_name.clone(),
        ),
        (
            "dns-u-label",
            "open",
            "bücher.example.net".as_bytes().to_vec(),
            "bücher".into(),
        ),
        (
            "dns-double-wildcard",
            "wild",
            b"*.*.example.net".to_vec(),
            "*.*.example.net".into(),
        ),
        (
            "dns-inner-wildcard",
            "wild",
            b"a.*.example.net".to_vec(),
            "a.*.example.net".into(),
        ),
        ("dns-bare-wildcard", "wild", b"*".to_vec(), "\"*".into()),
        (
            "dns-trailing-dot",
            "open",
            b"web.example.net.".to_vec(),
            "web.example.net.".into(),
        ),
        (
            "dns-underscore",
            "open",
            b"_sip._tcp.example.net".to_vec(),
            "_sip._tcp.example.net".into(),
        ),
        (
            "dns-suffix-attack",
            "mesh",
            format!("web.{ns}.svc.evil.example").into_bytes(),
            format!("web.{ns}.svc.evil.example"),
        ),
        (
            "dns-star-matches-two-labels",
            "mesh",
            format!("a.b.{ns}.svc").into_bytes(),
            format!("a.b.{ns}.svc"),
        ),
        (
            "dns-upper-other-namespace",
            "mesh",
            b"WEB.KUBE-SYSTEM.SVC".to_vec(),
            "WEB.KUBE-SYSTEM.SVC".into(),
        ),
        (
            "dns-wildcard-not-allowed",
            "open",
            b"*.example.net".to_vec(),
            "*.example.net".into(),
        ),
        (
            "dns-nc-excluded-with-uri-constraint",
            "constrained",
            b"x.secret.corp.example".to_vec(),
            "x.secret.corp.example".into(),
        ),
        (
            "dns-nc-excluded-wildcard",
            "constrained",
            b"*.secret.corp.example".to_vec(),
            "*.secret.corp.example".into(),
        ),
        (
            "dns-nc-excluded-upper-case",
            "constrained",
            b"X.SECRET.CORP.EXAMPLE".to_vec(),
            "X.SECRET.CORP.EXAMPLE".into(),
        ),
        (
            // Matches secret.corp.example, which the chain excludes; Go's suffix test would
            // accept the wildcard itself.
            "dns-nc-wildcard-covers-excluded",
            "constrained",
            b"*.corp.example".to_vec(),
            "*.corp.example".into(),
        ),
        (
            "dns-nc-partial-wildcard",
            "constrained",
            b"secre*.corp.example".to_vec(),
            "secre*.corp.example".into(),
        ),
    ];
    for (name, issuer, raw, needle) in dns_bad {
        t.add(name, issuer, CsrBuilder::new().san(gn::dns(&raw)).build())
            .fails(needle);
    }
    let thousand: Vec<String> = (0..1000).map(|i| format!("n{i}.example.net")).collect();
    let thousand: Vec<&str> = thousand.iter().map(String::as_str).collect();
    t.add("dns-1000-sans", "open", csr(&thousand)).fails("1000");
    t.add(
        "dns-upper-own-namespace",
        "mesh",
        csr(&[&web.to_ascii_uppercase()]),
    )
    .issued("Certificate issued");
    t.add(
        "dns-punycode-a-label",
        "open",
        csr(&["xn--bcher-kva.example.net"]),
    )
    .issued("Certificate issued");
    t.add("dns-wildcard-allowed", "wild", csr(&["*.example.net"]))
        .issued("Certificate issued");
    t.add(
        "dns-nc-not-excluded",
        "constrained",
        csr(&["ok.corp.example"]),
    )
    .issued("Certificate issued");
    t.add("dns-plain", "open", csr(&["plain.example.net"]))
        .issued("Certificate issued");

    // ---- 7. SPIFFE / URI ------------------------------------------------------------------
    t.class("uri");
    let sp = |rest: &str| format!("spiffe://cluster.local/ns/{ns}/sa/{rest}");
    let uri_bad: Vec<(&str, &str, String)> = vec![
        ("uri-dot-dot", "mesh", sp("..")),
        (
            "uri-dot-dot-escape",
            "mesh",
            format!("spiffe://cluster.local/ns/{ns}/sa/../../kube-system/sa/admin"),
        ),
        ("uri-pct-2e", "mesh", sp("%2e%2e")),
        ("uri-pct-encoded-char", "mesh", sp("w%65b")),
        ("uri-query", "mesh", sp("web?admin=true")),
        ("uri-fragment", "mesh", sp("web#admin")),
        (
            "uri-userinfo",
            "mesh",
            format!("spiffe://admin@cluster.local/ns/{ns}/sa/web"),
        ),
        (
            "uri-port",
            "mesh",
            format!("spiffe://cluster.local:8443/ns/{ns}/sa/web"),
        ),
        (
            "uri-other-trust-domain",
            "mesh",
            format!("spiffe://evil.example/ns/{ns}/sa/web"),
        ),
        (
            "uri-upper-trust-domain",
            "mesh",
            format!("spiffe://CLUSTER.LOCAL/ns/{ns}/sa/web"),
        ),
        ("uri-empty-segment", "mesh", sp("")),
        (
            "uri-double-slash",
            "mesh",
            format!("spiffe://cluster.local/ns/{ns}//sa/web"),
        ),
        ("uri-dot-segment", "mesh", sp(".")),
        ("uri-trailing-slash", "mesh", sp("web/")),
        (
            "uri-upper-scheme",
            "mesh",
            format!("SPIFFE://cluster.local/ns/{ns}/sa/web"),
        ),
        ("uri-non-ascii", "mesh", sp("w\u{e9}b")),
        (
            "uri-open-dot-dot",
            "open",
            "spiffe://cluster.local/ns/a/../b".into(),
        ),
        (
            "uri-open-https-userinfo",
            "open",
            "https://user:pw@api.example.net/".into(),
        ),
        (
            "uri-open-not-normalised",
            "open",
            "HTTPS://API.example.net/".into(),
        ),
        (
            "uri-open-whitespace",
            "open",
            "https://api.example.net/a b".into(),
        ),
        (
            "uri-nc-outside-permitted",
            "constrained",
            "spiffe://evil.local/ns/a/sa/b".into(),
        ),
    ];
    for (name, issuer, uri) in uri_bad {
        t.add(name, issuer, CsrBuilder::new().san(gn::uri(&uri)).build())
            .fails(uri);
    }
    t.add("uri-spiffe-ok", "mesh", csr(&[&sp("web")]))
        .issued("Certificate issued");
    t.add(
        "uri-nc-permitted",
        "constrained",
        csr(&["spiffe://cluster.local/ns/a/sa/b"]),
    )
    .issued("Certificate issued");

    // ---- email SANs and malformed SAN encodings -------------------------------------------
    t.class("email-and-encoding");
    t.add(
        "email-space",
        "open",
        CsrBuilder::new()
            .san(gn::email("evil space@example.net"))
            .build(),
    )
    .fails("evil space@example.net");
    t.add(
        "email-wildcard-domain",
        "open",
        CsrBuilder::new().san(gn::email("x@*.example.net")).build(),
    )
    .fails("x@*.example.net");
    t.add(
        "email-protection-not-listed",
        "open",
        csr(&["ok@example.net"]),
    )
    .usages(&["digital signature", "email protection"])
    .fails("email protection");
    t.add("email-ok-client-auth", "open", csr(&["ok@example.net"]))
        .usages(&["digital signature", "client auth"])
        .issued("Certificate issued");
    t.add(
        "enc-ip-five-bytes",
        "open",
        CsrBuilder::sans(&["u.example.net"])
            .san(fixtures::der::tlv(0x87, &[10, 0, 0, 1, 0]))
            .build(),
    )
    .fails("length 5");
    t.add(
        "enc-empty-dns",
        "open",
        CsrBuilder::new().san(gn::dns(b"")).build(),
    )
    .fails("empty");
    t.add(
        "enc-two-extension-requests",
        "mesh",
        CsrBuilder::sans(&[&web])
            .second_extension_request(&[gn::dns(b"web.kube-system.svc")])
            .build(),
    )
    .fails("extensionRequest");
    t.add(
        "enc-ext-request-two-values",
        "mesh",
        CsrBuilder::sans(&[&web])
            .second_extension_set(&[gn::dns(b"web.kube-system.svc")])
            .build(),
    )
    .fails("extensionRequest");

    // ---- SAN types ----------------------------------------------------------------------
    t.class("san-types");
    t.add(
        "san-other-name-upn",
        "open",
        CsrBuilder::sans(&["u.example.net"])
            .san(gn::other_name(
                "1.3.6.1.4.1.311.20.2.3",
                "administrator@corp",
            ))
            .build(),
    )
    .fails("otherName");
    t.add(
        "san-directory-name",
        "open",
        CsrBuilder::sans(&["u.example.net"])
            .san(gn::directory_name(&[
                (oids::O, "system:masters"),
                (oids::CN, "admin"),
            ]))
            .build(),
    )
    .fails("directoryName");
    t.add(
        "san-registered-id",
        "open",
        CsrBuilder::sans(&["u.example.net"])
            .san(gn::registered_id("1.3.6.1.4.1.55555.7"))
            .build(),
    )
    .fails("registeredID");

    // ---- CSR extension requests ---------------------------------------------------------
    t.class("csr-extensions");
    t.add(
        "ext-basic-constraints-ca",
        "mesh",
        CsrBuilder::sans(&[&web]).basic_constraints(true).build(),
    )
    .fails("basicConstraints");
    t.add(
        "ext-name-constraints",
        "mesh",
        CsrBuilder::sans(&[&web])
            .ext(
                oids::NAME_CONSTRAINTS,
                true,
                fixtures::der::seq(&[fixtures::der::tlv(
                    0xa0,
                    &fixtures::der::seq(&[gn::dns(b"kube-system.svc")]),
                )]),
            )
            .build(),
    )
    .fails("2.5.29.30");
    t.add(
        "ext-unknown-critical",
        "mesh",
        CsrBuilder::sans(&[&web])
            .ext("1.3.6.1.4.1.55555.1", true, fixtures::der::utf8("x"))
            .build(),
    )
    .fails("1.3.6.1.4.1.55555.1");
    t.add(
        "ext-unknown-non-critical",
        "mesh",
        CsrBuilder::sans(&[&web])
            .ext("1.3.6.1.4.1.55555.2", false, fixtures::der::utf8("x"))
            .build(),
    )
    .fails("1.3.6.1.4.1.55555.2");
    t.add(
        "ext-authority-info-access",
        "mesh",
        CsrBuilder::sans(&[&web])
            .ext(oids::AIA, false, fixtures::der::seq(&[]))
            .build(),
    )
    .fails(oids::AIA);
    t.add(
        "ext-duplicate-san",
        "mesh",
        CsrBuilder::sans(&[&web])
            .ext(
                oids::SAN,
                false,
                fixtures::der::seq(&[gn::dns(b"web.kube-system.svc")]),
            )
            .build(),
    )
    .fails("2.5.29.17");
    t.add(
        "ext-basic-constraints-not-ca",
        "mesh",
        CsrBuilder::sans(&[&web]).basic_constraints(false).build(),
    )
    .issued("Certificate issued");
    t.add(
        "ext-subject-key-id",
        "mesh",
        CsrBuilder::sans(&[&web])
            .ext(oids::SKI, false, fixtures::der::octets(&[7; 20]))
            .build(),
    )
    .issued("Certificate issued");

    // ---- Placeholders (requests against an issuer refused for its pattern) ----------------
    t.class("placeholders");
    t.add(
        "ph-request-collision",
        "ph-dash",
        csr(&["spiffe://td/team-b-web"]),
    )
    .pending("{namespace}-{serviceAccount}");

    // ---- PKIClusterIssuer Secrets come only from the cluster resource namespace ---------
    t.class("secret-scope");
    t.add("cl-secret-outside", &cluster_outside, csr(&[&web]))
        .cluster()
        .pending(format!(
            "{cluster_outside} is not ready: its Ready condition is False"
        ));
    t.add("cl-secret-slash", &cluster_slash, csr(&[&web]))
        .cluster()
        .pending(format!(
            "{cluster_slash} is not ready: its Ready condition is False"
        ));
    t.add("cl-secret-inside", &cluster_ok, csr(&[&web]))
        .cluster()
        .issued("Certificate issued");
    t.add(
        "cl-other-namespace-name",
        &cluster_ok,
        csr(&["web.kube-system.svc"]),
    )
    .cluster()
    .fails("web.kube-system.svc");
    t.add("cl-roots-outside", &roots_outside, csr(&[&web]))
        .cluster()
        .pending(format!(
            "{roots_outside} is not ready: its Ready condition is False"
        ));
    t.add("ns-secret-slash", "ns-secret-slash", csr(&[&web]))
        .pending(format!("{ns}-pki/int0"));

    // ---- A SAN type the policy omits allows nothing ------------------------------------------
    t.class("omitted-san-types");
    let admin_spiffe = "spiffe://cluster.local/ns/kube-system/sa/admin";
    t.add(
        "omit-spiffe-on-dns-only",
        "dnsonly",
        csr(&[&web, admin_spiffe]),
    )
    .fails(admin_spiffe);
    t.add("omit-ip-on-dns-only", "dnsonly", csr(&[&web, "10.96.0.1"]))
        .fails("10.96.0.1");
    t.add(
        "omit-email-on-dns-only",
        "dnsonly",
        csr(&[&web, "cluster-admin@example.com"]),
    )
    .fails("cluster-admin@example.com");
    t.add(
        "omit-email-on-mesh",
        "mesh",
        csr(&[&web, "cluster-admin@example.com"]),
    )
    .fails("cluster-admin@example.com");
    t.add("omit-dns-on-uri-only", "sa", csr(&[&web]))
        .fails(web.clone());
    t.add("omit-everything-default-policy", "nopolicy", csr(&[&web]))
        .fails(web.clone());
    t.add("dns-only-own-name", "dnsonly", csr(&[&web]))
        .issued("Certificate issued");

    // ---- Approval and spec changes -------------------------------------------------------
    t.class("approval-and-spec");
    t.add("appr-approved-and-denied", "mesh", csr(&[&web]))
        .flow(Flow::ApprovedAndDenied)
        .denied("denied");
    t.add("spec-swap-before-approval", "mesh", csr(&[&web]))
        .flow(Flow::SwapBeforeApproval(csr(&["web.kube-system.svc"])))
        .fails("web.kube-system.svc");
    t.add("spec-swap-after-issued", "mesh", csr(&[&web]))
        .flow(Flow::SwapAfterFinal(csr(&["web.kube-system.svc"])))
        .issued("Certificate issued");
    t.add(
        "spec-swap-after-failed",
        "mesh",
        csr(&["web.kube-system.svc"]),
    )
    .flow(Flow::SwapAfterFinal(csr(&[&web])))
    .fails("web.kube-system.svc");

    // ---- spec.username and {serviceAccount} ----------------------------------------------
    t.class("username");
    t.add("user-own-sa", "sa", csr(&[&spiffe_web]))
        .user(&own_sa)
        .issued("Certificate issued");
    t.add(
        "user-other-ns-sa-other-id",
        "sa",
        csr(&["spiffe://cluster.local/ns/kube-system/sa/web"]),
    )
    .user("system:serviceaccount:kube-system:web")
    .fails("spiffe://cluster.local/ns/kube-system/sa/web");
    t.add("user-other-ns-sa-own-id", "sa", csr(&[&spiffe_web]))
        .user("system:serviceaccount:kube-system:web")
        .fails(spiffe_web.clone());
    t.add("user-not-a-sa", "sa", csr(&[&sp("alice")]))
        .user("alice")
        .fails(sp("alice"));
    t.add("user-extra-colon", "sa", csr(&[&spiffe_web]))
        .user(&format!("{own_sa}:admin"))
        .fails(spiffe_web.clone());
    let no_user = t.add("user-absent", "sa", csr(&[&spiffe_web]));
    no_user.username = None;
    no_user.fails(spiffe_web.clone());
    t.add("user-other-sa-same-ns", "sa", csr(&[&sp("db")]))
        .user(&own_sa)
        .fails(sp("db"));

    // ---- Bad input of the controller-core issue (bad_input.rs) ---------------------------
    t.class("bad-input");
    // The last DER byte is inside the signature's s value: still parseable, wrong signature.
    let mut broken = pem::parse(csr(&[&web])).unwrap().into_contents();
    *broken.last_mut().unwrap() ^= 0x01;
    let broken = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", broken));
    let big = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        "A".repeat(70 * 1024)
    );
    t.add("bad-garbage", "mesh", "this is not PEM".into())
        .fails("certificate signing request");
    t.add("bad-broken-signature", "mesh", broken)
        .fails("signature");
    t.add("bad-rsa1024", "mesh", testdata("rsa1024.csr"))
        .fails("1024");
    t.add("bad-p192", "mesh", testdata("p192.csr")).fails("key");
    t.add("bad-dsa", "mesh", testdata("dsa.csr")).fails("DSA");
    t.add("bad-outside", "mesh", csr(&["evil.example.com"]))
        .fails("evil.example.com");
    t.add(
        "bad-other-ns-spiffe",
        "mesh",
        csr(&["spiffe://cluster.local/ns/kube-system/sa/x"]),
    )
    .fails("spiffe://cluster.local/ns/kube-system/sa/x");
    t.add("bad-wildcard", "mesh", csr(&[&format!("*.{ns}.svc")]))
        .fails(format!("*.{ns}.svc"));
    t.add("bad-is-ca", "mesh", csr(&[&web])).ca().fails("CA");
    t.add("bad-too-big", "mesh", big).fails("too large");
    t.add(
        "bad-two-pem-blocks",
        "mesh",
        format!("{}{}", csr(&[&web]), csr(&["web.kube-system.svc"])),
    )
    .fails("more than one");
    t.add("bad-duration", "mesh", csr(&[&web]))
        .duration("a century")
        .fails("duration");
    t.add("bad-century-clamped", "mesh", csr(&[&web]))
        .duration("876000h")
        .issued("maxDuration");
    t
}

/// The issued sub-CA carries permitted subtrees derived from the `ca` issuer's policy
/// (dnsNames `*.{ns}.svc`, ipRanges `10.0.0.0/8`) and nothing broader.
fn check_sub_ca_constraints(leaf: &X509Certificate<'_>, ns: &str) -> Result<(), String> {
    let bc = leaf
        .basic_constraints()
        .map_err(|e| e.to_string())?
        .ok_or("no basicConstraints")?;
    if !bc.value.ca {
        return Err("issued CA has cA=false".into());
    }
    let nc = leaf
        .name_constraints()
        .map_err(|e| e.to_string())?
        .ok_or("issued CA has no nameConstraints")?;
    if !nc.critical {
        return Err("nameConstraints must be critical".into());
    }
    let permitted = nc
        .value
        .permitted_subtrees
        .as_ref()
        .ok_or("no permitted subtrees")?;
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for st in permitted {
        match &st.base {
            GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
            GeneralName::IPAddress(b) => ips.push(b.to_vec()),
            _ => {}
        }
    }
    let suffix = format!("{ns}.svc");
    if dns.is_empty() || !dns.iter().all(|d| d.trim_start_matches('.') == suffix) {
        return Err(format!(
            "permitted DNS subtrees {dns:?}, want only {suffix:?} (or .{suffix})"
        ));
    }
    if ips != vec![vec![10, 0, 0, 0, 255, 0, 0, 0]] {
        return Err(format!(
            "permitted IP subtrees {ips:?}, want only 10.0.0.0/8"
        ));
    }
    // The policy lists no URIs and no emails: the sub-CA may issue none of them.
    let mut excluded: Vec<String> = nc
        .value
        .excluded_subtrees
        .iter()
        .flatten()
        .map(|st| format!("{:?}", st.base))
        .collect();
    excluded.sort();
    if excluded != vec!["RFC822Name(\"\")".to_string(), "URI(\"\")".to_string()] {
        return Err(format!(
            "excluded subtrees {excluded:?}, want every URI and every email"
        ));
    }
    Ok(())
}

/// Issuer-level cases: placeholder patterns and PKIClusterIssuer Secrets.
/// The PKIClusterIssuers of the table (cluster-scoped, so prefixed with the namespace).
struct ClusterNames {
    ok: String,
    outside: String,
    slash: String,
    roots_outside: String,
}

impl ClusterNames {
    fn of(ns: &str) -> Self {
        ClusterNames {
            ok: format!("{ns}-ok"),
            outside: format!("{ns}-outside"),
            slash: format!("{ns}-slash"),
            roots_outside: format!("{ns}-roots-outside"),
        }
    }

    fn all(&self) -> [&String; 4] {
        [&self.ok, &self.outside, &self.slash, &self.roots_outside]
    }
}

fn issuer_cases(ns: &str) -> Vec<IssuerCase> {
    let ClusterNames {
        ok: cluster_ok,
        outside,
        slash,
        roots_outside,
    } = ClusterNames::of(ns);
    let ph = |name: &str, field: &str, pattern: &str| IssuerCase {
        class: "placeholders",
        name: name.into(),
        cluster: false,
        spec: spec("int0", json!({ field: [pattern] })),
        status: "False",
        reasons: &["Failed"],
        needle: pattern.into(),
    };
    vec![
        ph(
            "ph-dash",
            "uris",
            "spiffe://td/{namespace}-{serviceAccount}",
        ),
        ph(
            "ph-touching",
            "uris",
            "spiffe://td/{namespace}{serviceAccount}",
        ),
        ph("ph-ns-letter", "dnsNames", "*.{namespace}x.example.net"),
        ph(
            "ph-ns-dash-dns",
            "dnsNames",
            "*.web-{namespace}.example.net",
        ),
        ph(
            "ph-sa-dot",
            "uris",
            "spiffe://td/ns/{namespace}/sa/{serviceAccount}.v1",
        ),
        ph("ph-sa-dns", "dnsNames", "{serviceAccount}.{namespace}.svc"),
        IssuerCase {
            class: "placeholders",
            name: "ph-separated".into(),
            cluster: false,
            spec: spec(
                "int0",
                json!({"uris": ["spiffe://td/ns/{namespace}/sa/{serviceAccount}"]}),
            ),
            status: "True",
            reasons: &["Checked"],
            needle: String::new(),
        },
        IssuerCase {
            class: "secret-scope",
            name: outside,
            cluster: true,
            spec: spec("hostile-outside", json!({})),
            status: "False",
            reasons: &["Pending"],
            needle: "hostile-outside".into(),
        },
        IssuerCase {
            class: "secret-scope",
            name: slash,
            cluster: true,
            spec: spec(&format!("{ns}/int0"), json!({})),
            status: "False",
            // A name that can never be a Secret may be Failed; a missing one is Pending.
            reasons: &["Pending", "Failed"],
            needle: format!("{ns}/int0"),
        },
        IssuerCase {
            class: "secret-scope",
            name: roots_outside,
            cluster: true,
            spec: json!({
                "secret": {"name": "int0"},
                "trustAnchors": {"configMap": {"name": "hostile-roots-outside", "key": "roots.pem"}},
            }),
            status: "False",
            reasons: &["Pending"],
            needle: "hostile-roots-outside".into(),
        },
        IssuerCase {
            class: "secret-scope",
            name: "ns-secret-slash".into(),
            cluster: false,
            spec: spec(&format!("{ns}-pki/int0"), json!({})),
            status: "False",
            reasons: &["Pending", "Failed"],
            needle: format!("{ns}-pki/int0"),
        },
        IssuerCase {
            class: "secret-scope",
            name: cluster_ok,
            cluster: true,
            spec: spec("int0", json!({"dnsNames": ["*.{namespace}.svc"]})),
            status: "True",
            reasons: &["Checked"],
            needle: String::new(),
        },
    ]
}

/// The request's Ready condition as (reason, message), if any.
fn ready(cr: &CertificateRequest) -> Option<(String, String)> {
    cr.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

async fn create(env: &Env, c: &Case) {
    let api: Api<CertificateRequest> = Api::namespaced(env.client.clone(), &env.ns);
    let mut cr = CertificateRequest::new(
        &c.name,
        CertificateRequestSpec {
            request: c.csr.clone().into_bytes(),
            issuer_ref: c.issuer.clone(),
            duration: c.duration.clone(),
            is_ca: Some(c.is_ca),
            usages: Some(c.usages.clone()),
            username: c.username.clone(),
            ..Default::default()
        },
    );
    cr.metadata.namespace = Some(env.ns.clone());
    api.create(&PostParams::default(), &cr)
        .await
        .unwrap_or_else(|e| panic!("create {}: {e}", c.name));
}

/// Replace spec.request (and optionally set spec.isCA) as a tenant with update rights would.
async fn swap_spec(env: &Env, name: &str, csr: &str, is_ca: bool) {
    let api: Api<CertificateRequest> = Api::namespaced(env.client.clone(), &env.ns);
    let mut patch = json!({"spec": {
        "request": base64::engine::general_purpose::STANDARD.encode(csr),
    }});
    if is_ca {
        patch["spec"]["isCA"] = json!(true);
    }
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("swap spec of {name}: {e}"));
}

/// Approved=True and Denied=True in one status update.
async fn approve_and_deny(env: &Env, name: &str) {
    let api: Api<CertificateRequest> = Api::namespaced(env.client.clone(), &env.ns);
    let mut cr = api.get(name).await.expect("get");
    let st = cr.status.get_or_insert_with(Default::default);
    st.conditions.push(pki_issuer::api::Condition::new(
        "Approved",
        true,
        "e2e-approver",
        "approved by the e2e suite",
    ));
    st.conditions.push(pki_issuer::api::Condition::new(
        "Denied",
        true,
        "e2e-denier",
        "denied by the e2e suite",
    ));
    api.replace_status(name, &PostParams::default(), &cr)
        .await
        .expect("approve and deny");
}

async fn start(env: &Env, c: &Case) {
    create(env, c).await;
    match &c.flow {
        Flow::Normal | Flow::SwapAfterFinal(_) => env.set_approval(&c.name, true).await,
        Flow::ApprovedAndDenied => approve_and_deny(env, &c.name).await,
        Flow::SwapBeforeApproval(new) => {
            swap_spec(env, &c.name, new, false).await;
            env.set_approval(&c.name, true).await;
        }
    }
}

/// Checks every issued certificate must pass, whatever the case.
fn leaf_checks(c: &Case, cr: &CertificateRequest) -> Result<(), String> {
    let chain = cr
        .status
        .as_ref()
        .and_then(|s| s.certificate.clone())
        .ok_or("Issued without status.certificate")?;
    let blocks = pem::parse_many(&chain).map_err(|e| format!("certificate PEM: {e}"))?;
    let leaf_der = blocks.first().ok_or("empty chain")?.contents().to_vec();
    let (_, leaf) = X509Certificate::from_der(&leaf_der).map_err(|e| format!("leaf: {e}"))?;
    let csr_der = pem::parse(&c.csr)
        .map_err(|e| e.to_string())?
        .into_contents();
    let (_, csr) = X509CertificationRequest::from_der(&csr_der).map_err(|e| e.to_string())?;
    let info = &csr.certification_request_info;

    // Subject: exactly the validated one (empty, or the single CN).
    // Empty-valued attributes (O="") are dropped, never issued.
    let want: Vec<Vec<(String, String)>> = info
        .subject
        .iter_rdn()
        .map(|r| {
            r.iter()
                .filter(|a| !a.as_slice().is_empty())
                .map(|a| {
                    (
                        a.attr_type().to_id_string(),
                        a.as_str().unwrap_or("?").to_string(),
                    )
                })
                .collect()
        })
        .filter(|rdn: &Vec<(String, String)>| !rdn.is_empty())
        .collect();
    let got: Vec<Vec<(String, String)>> = leaf
        .subject()
        .iter_rdn()
        .map(|r| {
            r.iter()
                .map(|a| {
                    (
                        a.attr_type().to_id_string(),
                        a.as_str().unwrap_or("?").to_string(),
                    )
                })
                .collect()
        })
        .collect();
    if got != want {
        return Err(format!("leaf subject {got:?}, CSR subject {want:?}"));
    }
    // Count the leaf's RDNs from the raw DER too: x509-parser stops at an empty RDN.
    let raw_rdns = raw_rdn_count(leaf.subject().as_raw())?;
    if raw_rdns != got.len() {
        return Err(format!(
            "leaf subject holds {raw_rdns} RDNs in DER but x509-parser reads {got:?}"
        ));
    }
    if leaf.public_key().raw != info.subject_pki.raw {
        return Err("leaf key differs from the CSR's".into());
    }
    // SANs: exactly the requested ones.
    let csr_sans: Vec<String> = csr
        .requested_extensions()
        .into_iter()
        .flatten()
        .filter_map(|e| match e {
            ParsedExtension::SubjectAlternativeName(s) => Some(
                s.general_names
                    .iter()
                    .map(|g| format!("{g:?}"))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    let leaf_sans: Vec<String> = leaf
        .subject_alternative_name()
        .map_err(|e| e.to_string())?
        .map(|s| {
            s.value
                .general_names
                .iter()
                .map(|g| format!("{g:?}"))
                .collect()
        })
        .unwrap_or_default();
    let (mut a, mut b) = (csr_sans.clone(), leaf_sans.clone());
    a.sort();
    b.sort();
    if a != b {
        return Err(format!("leaf SANs {leaf_sans:?}, requested {csr_sans:?}"));
    }
    // Extensions: allowlist, each at most once.
    let mut allowed = vec![
        "2.5.29.17",
        "2.5.29.15",
        "2.5.29.37",
        "2.5.29.19",
        "2.5.29.14",
        "2.5.29.35",
        "2.5.29.31",
        "1.3.6.1.5.5.7.1.1",
        "1.3.6.1.4.1.11129.2.4.2",
    ];
    if c.is_ca {
        allowed.push("2.5.29.30");
    }
    let mut seen = Vec::new();
    for ext in leaf.extensions() {
        let oid = ext.oid.to_id_string();
        if !allowed.contains(&oid.as_str()) {
            return Err(format!("leaf carries extension {oid}"));
        }
        if seen.contains(&oid) {
            return Err(format!("leaf carries extension {oid} twice"));
        }
        seen.push(oid);
    }
    let bc_ca = leaf
        .basic_constraints()
        .map_err(|e| e.to_string())?
        .is_some_and(|b| b.value.ca);
    if bc_ca != c.is_ca {
        return Err(format!("leaf cA={bc_ca}, requested isCA={}", c.is_ca));
    }
    if !c.is_ca {
        // No leaf without EKU ("any purpose"): no issuer of this suite lists `any`.
        let ekus = eku_set(&leaf)?;
        if ekus.iter().any(|u| {
            [
                "any",
                "ocsp signing",
                "code signing",
                "timestamping",
                "email protection",
            ]
            .contains(u)
        }) {
            return Err(format!("leaf EKU {ekus:?}"));
        }
        if let Some(k) = leaf.key_usage().map_err(|e| e.to_string())? {
            if k.value.key_cert_sign() || k.value.crl_sign() {
                return Err("non-CA leaf with keyCertSign/cRLSign".into());
            }
        }
    }
    if let Some(check) = &c.check {
        check(&leaf)?;
    }
    Ok(())
}

/// Subject (as DER hex) and SANs of the issued leaf, for failure messages.
fn describe_leaf(cr: &CertificateRequest) -> String {
    let Some(chain) = cr.status.as_ref().and_then(|s| s.certificate.clone()) else {
        return "none".into();
    };
    let Some(block) = pem::parse_many(&chain)
        .ok()
        .and_then(|b| b.into_iter().next())
    else {
        return "unparseable".into();
    };
    match X509Certificate::from_der(block.contents()) {
        Ok((_, leaf)) => format!(
            "subject {:?} (DER {}), SANs {:?}",
            leaf.subject().to_string(),
            hex::encode(leaf.subject().as_raw()),
            leaf.subject_alternative_name().ok().flatten().map(|s| s
                .value
                .general_names
                .iter()
                .map(|g| g.to_string())
                .collect::<Vec<_>>())
        ),
        Err(e) => format!("unparseable: {e}"),
    }
}

/// The number of RDN SETs in a DER Name, every one of them required to be non-empty.
fn raw_rdn_count(name: &[u8]) -> Result<usize, String> {
    let (tag, mut content, rest) = fixtures::der::read(name)?;
    if tag != 0x30 || !rest.is_empty() {
        return Err(format!("leaf subject is not one SEQUENCE (tag {tag:#x})"));
    }
    let mut n = 0;
    while !content.is_empty() {
        let (tag, set, rest) = fixtures::der::read(content)?;
        if tag != 0x31 || set.is_empty() {
            return Err(format!("leaf subject RDN {n} is not a non-empty SET"));
        }
        n += 1;
        content = rest;
    }
    Ok(n)
}

/// Judge one request against its case; `Ok(None)` means "not there yet".
fn judge(c: &Case, cr: &CertificateRequest, final_pass: bool) -> Result<Option<()>, String> {
    let Some((reason, message)) = ready(cr) else {
        return if final_pass {
            Err("no Ready condition".into())
        } else {
            Ok(None)
        };
    };
    let want = c.expect.reason();
    if reason != want {
        let terminal = matches!(reason.as_str(), "Issued" | "Failed" | "Denied");
        if terminal || final_pass {
            let leaf = if reason == "Issued" {
                format!("; issued leaf: {}", describe_leaf(cr))
            } else {
                String::new()
            };
            return Err(format!(
                "Ready reason {reason}, want {want}: {message}{leaf}"
            ));
        }
        return Ok(None);
    }
    if !message.contains(&c.needle) {
        return Err(format!(
            "{reason} message {message:?} does not name {:?}",
            c.needle
        ));
    }
    let st = cr.status.clone().unwrap_or_default();
    match c.expect {
        Expect::Issued => leaf_checks(c, cr)?,
        Expect::Failed | Expect::Denied | Expect::Pending => {
            if st.certificate.is_some() || st.ca.is_some() {
                return Err(format!("{reason} but a certificate was written"));
            }
            if c.expect != Expect::Pending && st.failure_time.is_none() {
                return Err(format!("{reason} without failureTime"));
            }
            if c.expect == Expect::Failed && !message.starts_with(REFUSED_PREFIX) {
                return Err(format!(
                    "Failed message does not start with {REFUSED_PREFIX:?}: {message:?}"
                ));
            }
        }
    }
    Ok(Some(()))
}

async fn list_requests(env: &Env) -> BTreeMap<String, CertificateRequest> {
    let api: Api<CertificateRequest> = Api::namespaced(env.client.clone(), &env.ns);
    api.list(&ListParams::default())
        .await
        .expect("list CertificateRequests")
        .items
        .into_iter()
        .map(|cr| (cr.metadata.name.clone().unwrap_or_default(), cr))
        .collect()
}

/// Wait until every case reached its expected state (or failed); returns case → error.
async fn wait_all(env: &Env, cases: &[Case]) -> BTreeMap<String, Result<(), String>> {
    let mut outcome: BTreeMap<String, Result<(), String>> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let final_pass = tokio::time::Instant::now() > deadline;
        let all = list_requests(env).await;
        for c in cases {
            if outcome.contains_key(&c.name) {
                continue;
            }
            let Some(cr) = all.get(&c.name) else {
                outcome.insert(c.name.clone(), Err("request vanished".into()));
                continue;
            };
            match judge(c, cr, final_pass) {
                Ok(Some(())) => {
                    outcome.insert(c.name.clone(), Ok(()));
                }
                Ok(None) => {}
                Err(e) => {
                    outcome.insert(c.name.clone(), Err(e));
                }
            }
        }
        if outcome.len() == cases.len() || final_pass {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_issuer(env: &Env, ic: &IssuerCase) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let st = if ic.cluster {
            Api::<pki_issuer::api::PKIClusterIssuer>::all(env.client.clone())
                .get(&ic.name)
                .await
                .ok()
                .and_then(|i| i.status)
        } else {
            Api::<pki_issuer::api::PKIIssuer>::namespaced(env.client.clone(), &env.ns)
                .get(&ic.name)
                .await
                .ok()
                .and_then(|i| i.status)
        };
        let cond = st.and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"));
        if let Some(c) = &cond {
            let reason = c.reason.clone().unwrap_or_default();
            let message = c.message.clone().unwrap_or_default();
            if c.status == ic.status && ic.reasons.contains(&reason.as_str()) {
                return if message.contains(&ic.needle) {
                    Ok(())
                } else {
                    Err(format!(
                        "Ready={} {reason}: {message:?} does not name {:?}",
                        c.status, ic.needle
                    ))
                };
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "never Ready={} with reason in {:?}; last {cond:?}",
                ic.status, ic.reasons
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn install(env: &Env) -> String {
    let root = fixtures::root("Hostile Suite Root");
    let int0 = fixtures::intermediate(&root, "Hostile PathLen0 Intermediate");
    let int1 = fixtures::intermediate_with(&root, "Hostile PathLen1 Intermediate", Some(1), vec![]);
    // Permitted URI host cluster.local; excluded DNS secret.corp.example and 192.168.0.0/16.
    let int_nc = fixtures::intermediate_with(
        &root,
        "Hostile Constrained Intermediate",
        Some(0),
        vec![fixtures::name_constraints_ext(
            &[gn::uri("cluster.local")],
            &[
                gn::dns(b"secret.corp.example"),
                gn::ip_subnet(&[192, 168, 0, 0], &[255, 255, 0, 0]),
            ],
        )],
    );
    for (name, ca) in [("int0", &int0), ("int1", &int1), ("int-nc", &int_nc)] {
        env.put_tls_secret(&env.ns, name, &ca.pem, &ca.key_pem)
            .await;
    }
    env.put_config_map(&env.ns, "roots", "roots.pem", &root.pem)
        .await;
    // The cluster issuers' namespace holds int0 only; "hostile-outside" exists only in the
    // test namespace, where a PKIClusterIssuer must never look.
    env.put_tls_secret(&env.cluster_ns, "int0", &int0.pem, &int0.key_pem)
        .await;
    env.put_tls_secret(&env.ns, "hostile-outside", &int0.pem, &int0.key_pem)
        .await;
    env.put_config_map(&env.cluster_ns, "roots", "roots.pem", &root.pem)
        .await;
    env.put_config_map(&env.ns, "hostile-roots-outside", "roots.pem", &root.pem)
        .await;

    let mesh = json!({
        "maxDuration": "24h",
        "dnsNames": ["*.{namespace}.svc", "*.{namespace}.svc.cluster.local"],
        "uris": ["spiffe://cluster.local/ns/{namespace}/sa/*"],
        "ipRanges": ["10.0.0.0/8", "::/0"],
    });
    let ca_usages = json!([
        "digital signature",
        "key encipherment",
        "cert sign",
        "crl sign",
        "server auth",
        "client auth"
    ]);
    let issuers = [
        ("mesh", spec("int0", mesh)),
        (
            "sa",
            spec(
                "int0",
                json!({"uris": ["spiffe://cluster.local/ns/{namespace}/sa/{serviceAccount}"]}),
            ),
        ),
        (
            "open",
            spec("int0", any_names(json!({"maxDuration": "24h"}))),
        ),
        (
            "dnsonly",
            spec("int0", json!({"dnsNames": ["*.{namespace}.svc"]})),
        ),
        ("nopolicy", spec("int0", json!({}))),
        (
            "wild",
            spec("int0", any_names(json!({"allowWildcardNames": true}))),
        ),
        (
            "serverauth",
            spec(
                "int0",
                any_names(
                    json!({"usages": ["digital signature", "key encipherment", "server auth"]}),
                ),
            ),
        ),
        (
            "certsign",
            spec(
                "int0",
                any_names(
                    json!({"usages": ["digital signature", "cert sign", "crl sign", "server auth"]}),
                ),
            ),
        ),
        (
            "ca-pl0",
            spec(
                "int0",
                json!({"allowCA": true, "dnsNames": ["*.{namespace}.svc"], "usages": ca_usages}),
            ),
        ),
        (
            "ca",
            spec(
                "int1",
                json!({"allowCA": true, "dnsNames": ["*.{namespace}.svc"],
                       "ipRanges": ["10.0.0.0/8"], "usages": ca_usages}),
            ),
        ),
        (
            "ca-uris",
            spec(
                "int1",
                json!({"allowCA": true, "dnsNames": ["*.{namespace}.svc"],
                       "uris": ["spiffe://cluster.local/ns/{namespace}/sa/*"], "usages": ca_usages}),
            ),
        ),
        (
            "ca-midstar",
            spec(
                "int1",
                json!({"allowCA": true, "dnsNames": ["api.*.{namespace}.svc"], "usages": ca_usages}),
            ),
        ),
        (
            "ca-empty",
            spec(
                "int1",
                json!({"allowCA": true, "dnsNames": [], "ipRanges": ["10.0.0.0/8"],
                       "usages": ca_usages}),
            ),
        ),
        (
            "constrained",
            spec("int-nc", any_names(json!({"allowWildcardNames": true}))),
        ),
    ];
    futures::future::join_all(
        issuers
            .iter()
            .map(|(name, spec)| env.create_issuer(name, spec.clone())),
    )
    .await;
    for (name, _) in &issuers {
        env.wait_issuer_ready(name, false, "True").await;
    }
    root.pem
}

/// Sign leaves with the issued sub-CA and let `openssl verify -x509_strict` judge them
/// against the root: its name constraints must admit only the policy's names.
fn prove_sub_ca_constraints(
    env: &Env,
    root_pem: &str,
    cr: &CertificateRequest,
    key: &KeyPair,
    ns: &str,
) -> Result<(), String> {
    let chain = cr
        .status
        .as_ref()
        .and_then(|s| s.certificate.clone())
        .ok_or("no certificate")?;
    let chain = String::from_utf8(chain).map_err(|e| e.to_string())?;
    let blocks = pem::parse_many(&chain).map_err(|e| e.to_string())?;
    let sub_ca = pem::encode(&blocks[0]);
    let issuer = rcgen::Issuer::from_ca_cert_pem(&sub_ca, key).map_err(|e| e.to_string())?;
    let own = format!("x.{ns}.svc");
    for (sans, admitted) in [
        (vec![own.as_str()], true),
        (vec![own.as_str(), "10.1.1.1"], true),
        (vec!["web.kube-system.svc"], false),
        (vec!["x.example.com"], false),
        (vec![own.as_str(), "192.168.1.1"], false),
    ] {
        let leaf_key =
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map_err(|e| e.to_string())?;
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let leaf = params
            .signed_by(&leaf_key, &issuer)
            .map_err(|e| e.to_string())?;
        let (ok, out) =
            env.openssl_verify(root_pem, &format!("{}{chain}", leaf.pem()), "sslserver");
        if !ok && !out.contains("subtree violation") {
            return Err(format!(
                "a leaf for {sans:?} signed by the issued sub-CA fails openssl verify for another reason than its name constraints: {out}"
            ));
        }
        if ok != admitted {
            return Err(format!(
                "a leaf for {sans:?} signed by the issued sub-CA {} openssl verify: {out}",
                if ok { "passes" } else { "fails" }
            ));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_table() {
    if external() {
        crate::harness::skip(
            "hostile_input_table",
            "needs a local pki-issuer and API server (spec swaps, Approved+Denied, Events)",
        );
        return;
    }
    let started = std::time::Instant::now();
    let env = Env::start("hostile").await;
    let ns = env.ns.clone();
    let root_pem = install(&env).await;

    let issuer_table = issuer_cases(&ns);
    for ic in &issuer_table {
        if ic.cluster {
            env.create_cluster_issuer(&ic.name, ic.spec.clone()).await;
        } else {
            env.create_issuer(&ic.name, ic.spec.clone()).await;
        }
    }
    let table = table(&ns);
    assert!(table.cases.len() >= 60, "{} cases", table.cases.len());
    let (issuer_results, mut outcome) = tokio::join!(
        futures::future::join_all(issuer_table.iter().map(|ic| wait_issuer(&env, ic))),
        async {
            futures::future::join_all(table.cases.iter().map(|c| start(&env, c))).await;
            wait_all(&env, &table.cases).await
        }
    );

    // Requests swapped after reaching their final state: swap, then prove with a later
    // request of the same issuer that the controller has seen the change, and that nothing
    // was signed or written again.
    let swapped: Vec<&Case> = table
        .cases
        .iter()
        .filter(|c| matches!(c.flow, Flow::SwapAfterFinal(_)))
        .collect();
    let before = list_requests(&env).await;
    let mut versions = BTreeMap::new();
    for c in &swapped {
        let Flow::SwapAfterFinal(new) = &c.flow else {
            unreachable!()
        };
        swap_spec(&env, &c.name, new, true).await;
        let rv = env.request(&c.name).await.metadata.resource_version;
        versions.insert(c.name.clone(), rv);
    }
    let (_, barrier_csr) = fixtures::csr(&[&format!("barrier.{ns}.svc")]);
    env.create_request(
        "barrier",
        &barrier_csr,
        issuer_ref("mesh", "PKIIssuer"),
        None,
        DEFAULT_USAGES,
    )
    .await;
    env.set_approval("barrier", true).await;
    env.wait_request_reason("barrier", "Issued").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in &swapped {
        let now = env.request(&c.name).await;
        let was = &before[&c.name];
        let same_cert = now.status.as_ref().and_then(|s| s.certificate.clone())
            == was.status.as_ref().and_then(|s| s.certificate.clone());
        let untouched = now.metadata.resource_version == versions[&c.name];
        if !(same_cert && untouched && ready(&now) == ready(was)) {
            outcome.insert(
                c.name.clone(),
                Err(format!(
                    "written again after its spec changed: Ready {:?} -> {:?}, same certificate {same_cert}, untouched {untouched}",
                    ready(was),
                    ready(&now)
                )),
            );
        }
    }

    if outcome.get(SUB_CA_CASE).is_some_and(|r| r.is_ok()) {
        let cr = env.request(SUB_CA_CASE).await;
        if let Err(e) = prove_sub_ca_constraints(&env, &root_pem, &cr, &table.sub_ca_key, &ns) {
            outcome.insert(SUB_CA_CASE.into(), Err(e));
        }
    }

    // Every Failed case has a PolicyViolation Warning Event naming it.
    let events: Api<Event> = Api::namespaced(env.client.clone(), &ns);
    let events = events.list(&ListParams::default()).await.expect("events");
    for c in table.cases.iter().filter(|c| c.expect == Expect::Failed) {
        if outcome.get(&c.name).is_some_and(|r| r.is_err()) {
            continue;
        }
        let found = events.items.iter().any(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(c.name.as_str())
                && e.reason.as_deref() == Some("PolicyViolation")
                && e.type_.as_deref() == Some("Warning")
        });
        if !found {
            let reasons: Vec<_> = events
                .items
                .iter()
                .filter(|e| {
                    e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(c.name.as_str())
                })
                .map(|e| e.reason.clone().unwrap_or_default())
                .collect();
            outcome.insert(
                c.name.clone(),
                Err(format!(
                    "no Warning Event with reason PolicyViolation (Events: {reasons:?})"
                )),
            );
        }
    }

    // Summary per class.
    let mut per_class: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for c in &table.cases {
        let e = per_class.entry(c.class).or_default();
        e.0 += 1;
        match outcome.get(&c.name) {
            Some(Ok(())) => e.1 += 1,
            Some(Err(why)) => failures.push(format!("{} [{}]: {why}", c.name, c.class)),
            None => failures.push(format!("{} [{}]: no outcome", c.name, c.class)),
        }
    }
    for (ic, result) in issuer_table.iter().zip(&issuer_results) {
        let e = per_class.entry(ic.class).or_default();
        e.0 += 1;
        match result {
            Ok(()) => e.1 += 1,
            Err(why) => failures.push(format!("issuer {} [{}]: {why}", ic.name, ic.class)),
        }
    }
    for name in ClusterNames::of(&ns).all() {
        env.delete_cluster_issuer(name).await;
    }
    let total: usize = per_class.values().map(|v| v.0).sum();
    let passed: usize = per_class.values().map(|v| v.1).sum();
    let classes: Vec<String> = per_class
        .iter()
        .map(|(k, (n, p))| format!("{k} {p}/{n}"))
        .collect();
    let mut names: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for c in &table.cases {
        names.entry(c.class).or_default().push(c.name.clone());
    }
    for ic in &issuer_table {
        names
            .entry(ic.class)
            .or_default()
            .push(format!("issuer:{}", ic.name.replace(&ns, "<ns>")));
    }
    for (class, list) in &names {
        eprintln!(
            "hostile class {class} ({}): {}",
            list.len(),
            list.join(", ")
        );
    }
    for f in &failures {
        eprintln!("hostile FAIL {f}");
    }
    eprintln!(
        "hostile summary: {passed}/{total} cases passed in {:.1}s; per class: {}",
        started.elapsed().as_secs_f64(),
        classes.join(", ")
    );
    assert!(
        failures.is_empty(),
        "{} hostile case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
