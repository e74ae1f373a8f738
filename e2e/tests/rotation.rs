//! Root and intermediate rollover on the real control plane with real cert-manager issuing
//! real Certificates (docs/rotation.md is the runbook; each step there names its part here).
//! At every step two workloads, one holding an old-chain certificate and one a new-chain
//! certificate, complete a mutual-TLS handshake (rustls) both ways, each verifying the other
//! with the trust bundle it would hold at that moment: the one pki-issuer publishes (the
//! ConfigMap, checked equal to the ClusterTrustBundle). Timings of each step are printed.

mod mtls;

use std::time::{Duration, Instant};

use kube::api::PostParams;
use serde_json::json;

use crate::cert_manager::{
    certificates, create_certificate, grant_approver, is_ready, tls_secret, wait_certificate,
    CertManager,
};
use crate::fixtures::{self, Ca};
use crate::harness::{kube, skip, visible, Env};
use crate::trust::{bundle_set, config_map_set, ders, eventually};
use mtls::{both_ways, Workload};

const BUNDLE_CM: &str = "mesh-roots";

struct Rollover<'a> {
    env: &'a Env,
    cm: &'a CertManager,
    issuer: String,
    timings: Vec<(String, Duration)>,
}

impl Rollover<'_> {
    fn time(&mut self, step: &str, d: Duration) {
        visible(&format!("rotation timing: {step}: {} ms", d.as_millis()));
        self.timings.push((step.to_string(), d));
    }

    /// Set the issuer's trust anchors (the ConfigMap it reads) to `roots`.
    async fn set_anchors(&self, roots: &[&Ca]) {
        let text: String = roots.iter().map(|r| r.pem.as_str()).collect();
        self.env
            .put_config_map(&self.env.cluster_ns, "corp-roots", "roots.pem", &text)
            .await;
    }

    /// Switch the signer Secret to `int`, and wait until the issuer reports it.
    async fn set_signer(&mut self, step: &str, int: &Ca) {
        let t = Instant::now();
        self.env
            .put_tls_secret(&self.env.cluster_ns, "intermediate", &int.pem, &int.key_pem)
            .await;
        let fp = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &ders(&int.pem)[0],
        ));
        let api: kube::Api<pki_issuer::api::PKIClusterIssuer> =
            kube::Api::all(self.env.client.clone());
        eventually("issuer reports the new signer", 60, || async {
            let i = api.get(&self.issuer).await.ok()?;
            let s = i.status?.signer?;
            (s.sha256_fingerprint == fp).then_some(())
        })
        .await;
        self.time(step, t.elapsed());
    }

    /// Wait until the published ConfigMap and ClusterTrustBundle hold exactly `roots`; the
    /// bundle a workload reads now.
    async fn published(&mut self, step: &str, roots: &[&Ca]) -> String {
        let t = Instant::now();
        let mut want: Vec<Vec<u8>> = roots.iter().map(|r| ders(&r.pem).remove(0)).collect();
        want.sort();
        let (env, issuer) = (self.env, self.issuer.clone());
        eventually(&format!("{step}: published bundle"), 60, || async {
            let cm = config_map_set(env, &env.ns, BUNDLE_CM, "ca.crt").await?;
            let ctb = bundle_set(env, &issuer).await?;
            (cm == want && ctb == want).then_some(())
        })
        .await;
        self.time(step, t.elapsed());
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(env.client.clone(), &env.ns);
        api.get(BUNDLE_CM).await.unwrap().data.unwrap()["ca.crt"].clone()
    }

    /// Trigger re-issuance of Certificate `name` as `cmctl renew` does (the `Issuing`
    /// condition, reason `ManuallyTriggered`) and wait for a new leaf chaining to `int`.
    async fn renew(&mut self, name: &str, int: &Ca) {
        let t = Instant::now();
        let before = tls_secret(self.env, name).await.0;
        let api = certificates(self.env);
        loop {
            let mut cert = api.get(name).await.unwrap();
            let generation = cert.metadata.generation;
            let conds = cert.data["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut conds: Vec<_> = conds
                .into_iter()
                .filter(|c| c["type"] != "Issuing")
                .collect();
            conds.push(json!({
                "type": "Issuing", "status": "True", "reason": "ManuallyTriggered",
                "message": "Certificate re-issuance manually triggered",
                "lastTransitionTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "observedGeneration": generation,
            }));
            cert.data["status"]["conditions"] = json!(conds);
            match api
                .replace_status(name, &PostParams::default(), &cert)
                .await
            {
                Ok(_) => break,
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => panic!("trigger renewal of {name}: {e}"),
            }
        }
        let int_der = ders(&int.pem).remove(0);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let crt = tls_secret(self.env, name).await.0;
            let chain = ders(&crt);
            if crt != before && chain.get(1) == Some(&int_der) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} was not renewed under the new intermediate\n{}",
                self.cm.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        wait_certificate(self.env, self.cm, name, 60, "Ready", is_ready).await;
        self.time(&format!("renew {name}"), t.elapsed());
    }

    /// The workload holding Certificate `name`'s Secret now, with trust bundle `trust`.
    async fn workload(&self, name: &str, label: &str, trust: &str) -> Workload {
        let (chain, key, _) = tls_secret(self.env, name).await;
        Workload {
            name: format!("{label} ({name})"),
            chain,
            key,
            dns: format!("{name}.{}.svc", self.env.ns),
            trust: trust.to_string(),
        }
    }

    async fn handshake(&mut self, step: &str, a: &Workload, b: &Workload) {
        let t = Instant::now();
        if let Err(e) = both_ways(a, b).await {
            panic!("{step}: mTLS handshake failed: {e}");
        }
        self.time(&format!("{step}: handshake both ways"), t.elapsed());
    }
}

/// The whole rollover: root A → root B (overlap, switch, renew, retire A), then an
/// intermediate rollover under root B.
#[tokio::test]
async fn root_and_intermediate_rollover_never_breaks_a_handshake() {
    if !kube() {
        skip(
            "rotation::root_and_intermediate_rollover_never_breaks_a_handshake",
            "needs real cert-manager, which runs on the real control plane (E2E_APISERVER=kube)",
        );
        return;
    }
    let started = Instant::now();
    let env = Env::start("rotation").await;
    let cm = CertManager::start(&env).await;
    grant_approver(&env).await;
    let root_a = fixtures::root("Rollover Root A");
    let int_a = fixtures::intermediate(&root_a, "Rollover Intermediate A1");
    let root_b = fixtures::root("Rollover Root B");
    let int_b = fixtures::intermediate(&root_b, "Rollover Intermediate B1");
    let int_b2 = fixtures::intermediate(&root_b, "Rollover Intermediate B2");
    let issuer = format!("{}-mesh", env.ns);
    let mut r = Rollover {
        env: &env,
        cm: &cm,
        issuer: issuer.clone(),
        timings: Vec::new(),
    };
    env.put_tls_secret(&env.cluster_ns, "intermediate", &int_a.pem, &int_a.key_pem)
        .await;
    r.set_anchors(&[&root_a]).await;
    env.create_cluster_issuer(
        &issuer,
        json!({
            "secret": {"name": "intermediate"},
            "trustAnchors": {"configMap": {"name": "corp-roots", "key": "roots.pem"}},
            "policy": {"maxDuration": "24h", "dnsNames": ["*.{namespace}.svc"]},
            "trustDistribution": {
                "clusterTrustBundle": true,
                "configMap": {"name": BUNDLE_CM, "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": env.ns}}},
            },
        }),
    )
    .await;
    env.wait_issuer_ready(&issuer, true, "True").await;
    for name in ["old", "new"] {
        create_certificate(&env, name, "PKIClusterIssuer", &issuer, json!({})).await;
    }
    for name in ["old", "new"] {
        wait_certificate(&env, &cm, name, 60, "Ready", is_ready).await;
    }

    // Step 0: root A only, everything on intermediate A1.
    let bundle_a = r.published("0 initial bundle {A}", &[&root_a]).await;
    let old0 = r.workload("old", "A-chain", &bundle_a).await;
    let new0 = r.workload("new", "A-chain", &bundle_a).await;
    r.handshake("0 initial", &old0, &new0).await;

    // Step 1: add root B to trustAnchors; both roots published everywhere.
    r.set_anchors(&[&root_a, &root_b]).await;
    let bundle_ab = r
        .published("1 add root B: published {A,B}", &[&root_a, &root_b])
        .await;
    let old1 = r.workload("old", "A-chain", &bundle_ab).await;
    r.handshake(
        "1 add root B (A-chain with bundle {A,B} vs bundle {A})",
        &old1,
        &new0,
    )
    .await;

    // Step 2: the signer Secret now holds intermediate B1 under root B; one workload renews.
    r.set_signer("2 switch signer to B1: issuer checked", &int_b)
        .await;
    r.renew("new", &int_b).await;
    let old2 = r.workload("old", "A-chain", &bundle_ab).await;
    let new2 = r.workload("new", "B-chain", &bundle_ab).await;
    r.handshake("2 A-chain vs B-chain, bundle {A,B}", &old2, &new2)
        .await;

    // Step 3: every Certificate renews onto B1.
    r.renew("old", &int_b).await;
    let old3 = r.workload("old", "B-chain", &bundle_ab).await;
    r.handshake("3 all renewed, bundle {A,B}", &old3, &new2)
        .await;

    // Step 4: retire root A (the signer no longer chains to it).
    r.set_anchors(&[&root_b]).await;
    let bundle_b = r
        .published("4 remove root A: published {B}", &[&root_b])
        .await;
    let old4 = r.workload("old", "B-chain", &bundle_b).await;
    // A workload that has not reloaded the bundle yet still holds {A,B}: both must work.
    let new4 = r.workload("new", "B-chain", &bundle_ab).await;
    r.handshake("4 bundle {B} vs lagging bundle {A,B}", &old4, &new4)
        .await;
    let new4b = r.workload("new", "B-chain", &bundle_b).await;
    r.handshake("4 bundle {B} both", &old4, &new4b).await;
    // The retired root really is gone: an A-chain certificate is now refused.
    let stale = Workload {
        trust: bundle_b.clone(),
        ..r.workload("old", "x", &bundle_b).await
    };
    let a_chain = Workload {
        name: "A-chain leftover".into(),
        trust: bundle_a.clone(),
        ..old0
    };
    assert!(
        both_ways(&stale, &a_chain).await.is_err(),
        "an A-chain certificate must not verify once root A is retired"
    );

    // Intermediate rollover under root B: B1 → B2, bundle unchanged.
    r.set_signer("5 switch signer to B2 (same root): issuer checked", &int_b2)
        .await;
    r.renew("new", &int_b2).await;
    let new5 = r.workload("new", "B2-chain", &bundle_b).await;
    r.handshake("5 B1-chain vs B2-chain, bundle {B}", &old4, &new5)
        .await;
    r.renew("old", &int_b2).await;
    let old5 = r.workload("old", "B2-chain", &bundle_b).await;
    r.handshake("5 all on B2, bundle {B}", &old5, &new5).await;
    assert_eq!(
        config_map_set(&env, &env.ns, BUNDLE_CM, "ca.crt")
            .await
            .map(|s| s.len()),
        Some(1),
        "an intermediate rollover leaves the published bundle alone"
    );

    let total: Duration = started.elapsed();
    visible(&format!(
        "rotation timing: total {} ms over {} measured steps",
        total.as_millis(),
        r.timings.len()
    ));
    env.delete_cluster_issuer(&issuer).await;
}
