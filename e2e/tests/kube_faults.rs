//! Real faults on the real server: kube-apiserver restarted (etcd state kept) and etcd
//! restarted while a burst of requests is being created. The same pki-issuer process
//! reconnects on its own and every request ends Issued, its certificate written exactly once
//! (counted in the server's audit log, which survives the restarts).

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{ListParams, PostParams};
use kube::Api;
use pki_issuer::api::cert_manager::{CertificateRequest, CertificateRequestSpec};
use serde_json::json;

use crate::fixtures;
use crate::harness::{issuer_ref, kube, skip, Env, MTLS_USAGES};
use crate::kube_server::{self, AuditLog};

const N: usize = 60;

/// Retry `op` until it succeeds, for up to 90 s (the server may be down meanwhile).
async fn retry<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        match op().await {
            Ok(v) => return v,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "{what}: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn create_and_approve(api: &Api<CertificateRequest>, ns: &str, name: &str, csr: &str) {
    let mut cr = CertificateRequest::new(
        name,
        CertificateRequestSpec {
            request: csr.as_bytes().to_vec(),
            issuer_ref: issuer_ref("mesh", "PKIIssuer"),
            username: Some(format!("system:serviceaccount:{ns}:workload")),
            usages: Some(MTLS_USAGES.iter().map(|u| u.to_string()).collect()),
            ..Default::default()
        },
    );
    cr.metadata.namespace = Some(ns.to_string());
    retry(&format!("create {name}"), || async {
        match api.create(&PostParams::default(), &cr).await {
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()), // created before a lost response
            other => other.map(|_| ()),
        }
    })
    .await;
    retry(&format!("approve {name}"), || async {
        let mut cr = api.get(name).await?;
        let status = cr.status.get_or_insert_with(Default::default);
        if status.conditions.iter().any(|c| c.type_ == "Approved") {
            return Ok(());
        }
        status.conditions.push(pki_issuer::api::Condition::new(
            "Approved",
            true,
            "e2e-approver",
            "Approved by the e2e suite",
        ));
        api.replace_status(name, &PostParams::default(), &cr)
            .await
            .map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn kube_apiserver_and_etcd_restarts_during_a_burst() {
    if !kube() {
        skip(
            "real_faults",
            "restarts a real kube-apiserver and etcd; runs in the E2E_APISERVER=kube pass",
        );
        return;
    }
    let mut env = Env::start("faults").await;
    let root = fixtures::root("Example Corp Root CA");
    let int = fixtures::intermediate(&root, "Example Corp Mesh Intermediate");
    env.put_tls_secret(&env.ns, "int", &int.pem, &int.key_pem)
        .await;
    env.put_config_map(&env.ns, "roots", "roots.pem", &root.pem)
        .await;
    env.create_issuer(
        "mesh",
        json!({"secret": {"name": "int"}, "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}},
               "policy": {"dnsNames": ["*.{namespace}.svc"]}}),
    )
    .await;
    env.wait_issuer_ready("mesh", false, "True").await;
    let server = env.kube.as_ref().unwrap().server().clone();
    let audit = AuditLog::new(&server);
    let (_, csr) = fixtures::csr(&[&format!("w.{}.svc", env.ns)]);
    let api: Api<CertificateRequest> = Api::namespaced(env.client.clone(), &env.ns);

    // The burst: one request every 100 ms, while the server restarts twice.
    let started = std::time::Instant::now();
    let burst = async {
        futures::future::join_all((0..N).map(|i| {
            let (api, ns, csr) = (&api, &env.ns, &csr);
            async move {
                tokio::time::sleep(Duration::from_millis(100 * i as u64)).await;
                create_and_approve(api, ns, &format!("r{i}"), csr).await;
            }
        }))
        .await
    };
    let faults = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let t = std::time::Instant::now();
        kube_server::control(&server, "restart-apiserver").await;
        eprintln!("kube-apiserver restarted in {:?}", t.elapsed());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let t = std::time::Instant::now();
        kube_server::control(&server, "restart-etcd").await;
        eprintln!("etcd restarted in {:?}", t.elapsed());
    };
    tokio::join!(burst, faults);

    // Every request ends Issued.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let all = ListParams::default();
    loop {
        let list = retry("list", || api.list(&all)).await;
        let issued = list
            .items
            .iter()
            .filter(|cr| {
                cr.status.as_ref().is_some_and(|s| {
                    s.certificate.is_some()
                        && s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.reason.as_deref() == Some("Issued"))
                })
            })
            .count();
        if issued == N {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {issued}/{N} issued after the restarts\n{}",
            env.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!(
        "{N} requests issued {:?} after the burst started, across a kube-apiserver and an etcd restart",
        started.elapsed()
    );
    assert!(
        env.try_wait_controller(0).is_none(),
        "the same pki-issuer process reconnected on its own\n{}",
        env.logs()
    );

    // Exactly one successful status write per request, and nothing re-issued.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut writes: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for e in audit.events() {
        if e["verb"] == "patch"
            && e["objectRef"]["resource"] == "certificaterequests"
            && e["objectRef"]["subresource"] == "status"
            && e["objectRef"]["namespace"] == env.ns.as_str()
        {
            let name = e["objectRef"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let ok = e["responseStatus"]["code"]
                .as_u64()
                .is_some_and(|c| c < 300);
            let w = writes.entry(name).or_default();
            if ok {
                w.0 += 1;
            } else {
                w.1 += 1;
            }
        }
    }
    let failed: u32 = writes.values().map(|w| w.1).sum();
    eprintln!("status writes that failed during the faults (and were retried): {failed}");
    for i in 0..N {
        let name = format!("r{i}");
        assert_eq!(
            writes.get(&name).map(|w| w.0),
            Some(1),
            "{name}: exactly one successful status write ({writes:?})"
        );
    }
    let list = api.list(&ListParams::default()).await.unwrap();
    let mut certs: Vec<_> = list
        .items
        .iter()
        .map(|cr| cr.status.as_ref().unwrap().certificate.clone().unwrap())
        .collect();
    certs.sort();
    certs.dedup();
    assert_eq!(certs.len(), N, "every certificate unique");
}
