//! Signing-path throughput without Kubernetes: CSR parsing and policy, signing, and the
//! after-signing checks, per signer key type. Prints operations per second.
//!
//! `cargo bench --bench signing`

use std::time::{Duration, Instant};

use pki_issuer::pki::{
    self, Expectations, LeafExtensions, LeafTemplate, Policy, RequestContext, RequestedCert,
    SignerChain, SignerKey,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SignatureAlgorithm,
};

fn ca(alg: &'static SignatureAlgorithm) -> (String, String, String) {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut rp = CertificateParams::default();
    rp.distinguished_name.push(DnType::CommonName, "Bench Root");
    rp.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    rp.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let root = rp.self_signed(&root_key).unwrap();
    let int_key = KeyPair::generate_for(alg).unwrap();
    let mut ip = CertificateParams::default();
    ip.distinguished_name
        .push(DnType::CommonName, "Bench Intermediate");
    ip.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ip.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let int = ip
        .signed_by(&int_key, &Issuer::from_params(&rp, &root_key))
        .unwrap();
    (root.pem(), int.pem(), int_key.serialize_pem())
}

fn run(name: &str, alg: &'static SignatureAlgorithm) {
    let (root_pem, int_pem, int_key) = ca(alg);
    let anchors = pki::parse_pem_certs(&root_pem).unwrap();
    let chain = SignerChain::from_pem(&int_pem).unwrap();
    let key = SignerKey::from_pem(&int_key).unwrap();
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut lp = CertificateParams::new(vec!["web.apps.svc".to_string()]).unwrap();
    lp.distinguished_name = rcgen::DistinguishedName::new();
    let csr_pem = lp.serialize_request(&leaf_key).unwrap().pem().unwrap();
    let policy = Policy {
        dns_names: Some(vec!["*.{namespace}.svc".into()]),
        ..Default::default()
    };
    let ctx = RequestContext {
        namespace: Some("apps".into()),
        service_account: None,
    };
    let intermediates = vec![chain.signer_der.clone()];
    let once = || {
        let now = time::OffsetDateTime::now_utc();
        let csr = pki::parse_csr(csr_pem.as_bytes()).unwrap();
        // An mTLS workload's usages (a request without an extended usage is refused).
        let mut usages = pki::usage::default_usages();
        usages.extend([pki::usage::Usage::ServerAuth, pki::usage::Usage::ClientAuth]);
        let req = RequestedCert::from_csr(
            &csr,
            false,
            usages.clone(),
            Some(Duration::from_secs(86400)),
        );
        pki::check_policy(&policy, &req, &ctx).unwrap();
        let validity = pki::clamp_validity(
            now,
            req.duration,
            policy.max_duration,
            chain.earliest_not_after(),
        )
        .unwrap();
        let template = LeafTemplate::new(&csr, &req, validity, LeafExtensions::default()).unwrap();
        let leaf = pki::sign_leaf(&template, &csr, &chain, &key).unwrap();
        let expect = Expectations {
            spki_der: csr.spki_der.clone(),
            sans: csr.sans.clone(),
            usages,
            is_ca: false,
            not_after_max: Some(validity.not_after),
            common_name: None,
            name_constraints: None,
        };
        pki::check_issued(&leaf, &intermediates, &anchors, &expect, now).unwrap();
    };
    once();
    let n = 300;
    let started = Instant::now();
    for _ in 0..n {
        once();
    }
    let per = started.elapsed() / n;
    println!(
        "signing/{name:<8} parse+policy+sign+verify: {:>8.1} certs/s ({:?} per certificate, 1 core)",
        1.0 / per.as_secs_f64(),
        per
    );
}

fn main() {
    run("p256", &rcgen::PKCS_ECDSA_P256_SHA256);
    run("p384", &rcgen::PKCS_ECDSA_P384_SHA384);
    run("ed25519", &rcgen::PKCS_ED25519);
    run("rsa2048", &rcgen::PKCS_RSA_SHA256);
}
