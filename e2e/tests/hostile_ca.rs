//! A remote CA is never trusted: hostile certificates from a fake CFSSL CA (signed by the
//! real intermediate) end `Failed` with a `VerificationFailed` Event and nothing written, and
//! a hanging CA holds at most its issuer's slots while other issuers keep issuing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::ListParams;
use kube::Api;
use serde_json::json;

use crate::fake_ca::{FakeCa, Mode};
use crate::fixtures;
use crate::harness::{ready_message, Env};

async fn fake_issuer(env: &Env, name: &str, ca: &FakeCa, root_pem: &str, timeout: &str) {
    env.put_config_map(&env.ns, "roots", "roots.pem", root_pem)
        .await;
    env.create_issuer(
        name,
        json!({
            "cfssl": {"url": ca.url(), "profile": "workload", "timeout": timeout},
            "trustAnchors": {"configMap": {"name": "roots", "key": "roots.pem"}},
            "policy": {"maxDuration": "48h", "dnsNames": ["*.{namespace}.svc"]},
        }),
    )
    .await;
}

async fn request(env: &Env, name: &str, issuer: &str) {
    let san = format!("{name}.{}.svc", env.ns);
    env.request_approved(name, issuer, &[&san], "1h").await;
}

async fn has_event(env: &Env, object: &str, reason: &str) -> bool {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &env.ns);
    let list = events.list(&ListParams::default()).await.unwrap();
    list.items.iter().any(|e| {
        e.reason.as_deref() == Some(reason)
            && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(object)
    })
}

#[tokio::test]
async fn hostile_ca_certificates_fail_verification_and_are_never_written() {
    let mut env = Env::start_opts("hostile-ca", false).await;
    let root = fixtures::root("Corp Root CA");
    let int = Arc::new(fixtures::intermediate(&root, "Corp CFSSL Intermediate"));
    let cases = [
        (Mode::ExtraSubjectAttribute, "subject"),
        (Mode::OtherCommonName, "subject"),
        (Mode::UnknownCriticalExtension, "extension"),
        (Mode::DuplicateBasicConstraints, "basicConstraints"),
        (Mode::OtherKey, "public key"),
        (Mode::LongerLifetime, "notAfter"),
        (Mode::ExtraSan, "db.kube-system.svc"),
        (Mode::UnrequestedEku, "usage"),
    ];
    let honest = FakeCa::start(int.clone(), Mode::Honest).await;
    let mut cas = Vec::new();
    for (mode, _) in &cases {
        cas.push(FakeCa::start(int.clone(), *mode).await);
    }
    let mut urls: Vec<String> = cas.iter().map(FakeCa::url).collect();
    urls.push(honest.url());
    let url_refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    env.start_controller_allowing(&url_refs).await;

    fake_issuer(&env, "honest", &honest, &root.pem, "5s").await;
    for (i, ca) in cas.iter().enumerate() {
        fake_issuer(&env, &format!("hostile-{i}"), ca, &root.pem, "5s").await;
    }
    env.wait_issuer_ready("honest", false, "True").await;
    request(&env, "honest", "honest").await;
    for i in 0..cases.len() {
        env.wait_issuer_ready(&format!("hostile-{i}"), false, "True")
            .await;
        request(&env, &format!("req-{i}"), &format!("hostile-{i}")).await;
    }
    let cr = env.wait_request_reason("honest", "Issued").await;
    assert!(
        cr.status.unwrap().certificate.is_some(),
        "the fake CA issues correct certificates when honest"
    );
    let mut failures = Vec::new();
    for (i, (mode, word)) in cases.iter().enumerate() {
        let name = format!("req-{i}");
        let cr = env.wait_request_reason(&name, "Failed").await;
        let msg = ready_message(&cr);
        if !msg.contains("failed verification and was not written")
            || !msg.to_lowercase().contains(&word.to_lowercase())
        {
            failures.push(format!("{mode:?}: {msg}"));
        }
        assert!(
            cr.status.as_ref().unwrap().certificate.is_none(),
            "{mode:?}: a hostile certificate was written"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !has_event(&env, &name, "VerificationFailed").await {
            assert!(
                Instant::now() < deadline,
                "{mode:?}: no VerificationFailed Event"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert!(
        failures.is_empty(),
        "messages that do not name the problem:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_hanging_ca_holds_at_most_its_slots_while_other_issuers_keep_issuing() {
    let mut env = Env::start_opts("hanging-ca", false).await;
    let root = fixtures::root("Corp Root CA");
    let int = Arc::new(fixtures::intermediate(&root, "Corp CFSSL Intermediate"));
    if crate::harness::external() {
        crate::harness::skip(
            "a_hanging_ca_holds_at_most_its_slots_while_other_issuers_keep_issuing",
            "needs the local controller's flags",
        );
        return;
    }
    let hang = FakeCa::start(int.clone(), Mode::Hang).await;
    let fast = FakeCa::start(int.clone(), Mode::Honest).await;
    let allow = format!("--allowed-remote-ca-urls={},{}", hang.url(), fast.url());
    // Four workers (two of them for remote calls), one slot per issuer: without the slot
    // limit the hanging CA's requests would take every worker for a minute.
    env.start_controller(&[&allow, "--concurrency=4", "--remote-calls-per-issuer=1"])
        .await;
    fake_issuer(&env, "hang", &hang, &root.pem, "60s").await;
    fake_issuer(&env, "fast", &fast, &root.pem, "5s").await;
    env.wait_issuer_ready("hang", false, "True").await;
    env.wait_issuer_ready("fast", false, "True").await;
    for i in 0..4 {
        request(&env, &format!("stuck-{i}"), "hang").await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    for i in 0..3 {
        request(&env, &format!("other-{i}"), "fast").await;
    }
    for i in 0..3 {
        env.wait_request_reason(&format!("other-{i}"), "Issued")
            .await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "other issuers must keep issuing while one CA hangs (took {:?})",
        started.elapsed()
    );
    let mut waiting = 0;
    for i in 0..4 {
        let cr = env.request(&format!("stuck-{i}")).await;
        let ready = cr
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
        assert!(
            ready.is_none_or(|c| c.reason.as_deref() != Some("Issued")),
            "a hanging CA issued nothing"
        );
        if ready.is_some_and(|c| {
            c.reason.as_deref() == Some("Pending")
                && c.message
                    .as_deref()
                    .unwrap_or_default()
                    .contains("already in flight")
        }) {
            waiting += 1;
        }
    }
    assert!(
        waiting >= 2,
        "requests beyond the slot wait Pending instead of holding workers ({waiting} waiting)\n{}",
        env.logs()
    );
}
