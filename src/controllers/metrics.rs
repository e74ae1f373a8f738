//! Prometheus metrics the controllers record (prometheus-client); the runtime serves them on
//! `--metrics-addr` at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of issued certificates.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuedLabels {
    /// `CertificateRequest` or `CertificateSigningRequest`.
    pub kind: String,
    /// `PKIIssuer ns/name` or `PKIClusterIssuer name`.
    pub issuer: String,
}

/// Labels of failed requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailedLabels {
    /// `Denied`, `PolicyViolation`, `InvalidRequest`, `SigningFailed`, `VerificationFailed`, `RetriesExhausted`.
    pub reason: String,
}

/// Labels of the signer expiry gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignerLabels {
    /// `PKIIssuer` or `PKIClusterIssuer`.
    pub kind: String,
    /// The issuer's namespace (empty for cluster issuers).
    pub namespace: String,
    /// The issuer's name.
    pub issuer: String,
}

/// Labels of reconcile metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `CertificateRequest`, `CertificateSigningRequest`, `PKIIssuer` or `PKIClusterIssuer`.
    pub controller: String,
}

/// Labels of failed reconciles.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileErrorLabels {
    /// As in [`ControllerLabels`].
    pub controller: String,
    /// `kube`, `json`, `missing_meta` or `not_leader` (see `controllers::Error::label`).
    pub error: String,
}

/// The version label of the build-info gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: String,
}

/// Labels of `pki_issuer_trust_objects_written_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrustWriteLabels {
    /// `ClusterTrustBundle` or `ConfigMap`.
    pub kind: String,
    /// `apply` or `delete`.
    pub op: String,
}

/// All metrics of the process.
pub struct Metrics {
    registry: Registry,
    /// `pki_issuer_certificates_issued_total{kind,issuer}`.
    pub issued: Family<IssuedLabels, Counter>,
    /// `pki_issuer_requests_failed_total{reason}`.
    pub failed: Family<FailedLabels, Counter>,
    /// `pki_issuer_signing_duration_seconds`.
    pub signing_duration: Histogram,
    /// `pki_issuer_signer_expiry_timestamp_seconds{kind,namespace,issuer}`.
    pub signer_expiry: Family<SignerLabels, Gauge<f64, AtomicU64>>,
    /// `pki_issuer_remote_ca_request_duration_seconds`.
    pub remote_ca_duration: Histogram,
    /// `pki_issuer_reconciles_total{controller}`.
    pub reconciles: Family<ControllerLabels, Counter>,
    /// `pki_issuer_reconcile_errors_total{controller,error}`.
    pub reconcile_errors: Family<ReconcileErrorLabels, Counter>,
    /// `pki_issuer_reconcile_duration_seconds{controller}`.
    pub reconcile_duration: Family<ControllerLabels, Histogram>,
    /// `pki_issuer_issuer_ready{kind,namespace,issuer}`: 1 when the last check passed, else 0.
    pub issuer_ready: Family<SignerLabels, Gauge>,
    /// `pki_issuer_trust_anchor_expiry_timestamp_seconds{kind,namespace,issuer}`: the earliest
    /// notAfter among each issuer's trust anchors.
    pub trust_anchor_expiry: Family<SignerLabels, Gauge<f64, AtomicU64>>,
    /// `pki_issuer_trust_objects_written_total{kind,op}`: trust distribution writes.
    pub trust_written: Family<TrustWriteLabels, Counter>,
    /// `pki_issuer_leader`: 1 while this replica leads (runs the controllers), else 0.
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pki_issuer");
        let issued = Family::<IssuedLabels, Counter>::default();
        registry.register("certificates_issued", "Certificates issued", issued.clone());
        let failed = Family::<FailedLabels, Counter>::default();
        registry.register(
            "requests_failed",
            "Requests that ended Failed or Denied",
            failed.clone(),
        );
        let signing_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "signing_duration_seconds",
            "Time from approved request to checked certificate",
            signing_duration.clone(),
        );
        let signer_expiry = Family::<SignerLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "signer_expiry_timestamp_seconds",
            "notAfter of each issuer's signer certificate (Unix seconds)",
            signer_expiry.clone(),
        );
        let remote_ca_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "remote_ca_request_duration_seconds",
            "Duration of requests to a remote CA",
            remote_ca_duration.clone(),
        );
        let reconciles = Family::<ControllerLabels, Counter>::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        let reconcile_errors = Family::<ReconcileErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error (retried)",
            reconcile_errors.clone(),
        );
        let reconcile_duration =
            Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 16))
            });
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile",
            reconcile_duration.clone(),
        );
        let issuer_ready = Family::<SignerLabels, Gauge>::default();
        registry.register(
            "issuer_ready",
            "1 when the issuer's last check passed (Ready), 0 when it did not",
            issuer_ready.clone(),
        );
        let trust_anchor_expiry = Family::<SignerLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "trust_anchor_expiry_timestamp_seconds",
            "Earliest notAfter among each issuer's trust anchors (Unix seconds)",
            trust_anchor_expiry.clone(),
        );
        let trust_written = Family::<TrustWriteLabels, Counter>::default();
        registry.register(
            "trust_objects_written",
            "ClusterTrustBundles and ConfigMaps trust distribution applied or deleted",
            trust_written.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica leads and runs the controllers, 0 on a standby",
            leader.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register("build_info", "The running version (always 1)", build_info);
        Metrics {
            registry,
            issued,
            failed,
            signing_duration,
            signer_expiry,
            remote_ca_duration,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            issuer_ready,
            trust_anchor_expiry,
            trust_written,
            leader,
        }
    }

    /// Drop every series of a deleted issuer.
    pub fn forget_issuer(&self, labels: &SignerLabels) {
        self.signer_expiry.remove(labels);
        self.trust_anchor_expiry.remove(labels);
        self.issuer_ready.remove(labels);
    }

    /// Record one reconcile of `controller` that took `elapsed` and ended with `error`, if any.
    pub fn reconciled(
        &self,
        controller: &str,
        elapsed: std::time::Duration,
        error: Option<&super::Error>,
    ) {
        let labels = ControllerLabels {
            controller: controller.to_string(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if let Some(e) = error {
            self.reconcile_errors
                .get_or_create(&ReconcileErrorLabels {
                    controller: controller.to_string(),
                    error: e.label().to_string(),
                })
                .inc();
        }
    }

    /// Count one trust distribution write.
    pub fn trust_written(&self, kind: &str, op: &str, n: usize) {
        self.trust_written
            .get_or_create(&TrustWriteLabels {
                kind: kind.to_string(),
                op: op.to_string(),
            })
            .inc_by(n as u64);
    }

    /// Count a failed request.
    pub fn fail(&self, reason: crate::api::reason::Reason) {
        self.failed
            .get_or_create(&FailedLabels {
                reason: reason.as_str().to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_documented_names() {
        let m = Metrics::new();
        m.issued
            .get_or_create(&IssuedLabels {
                kind: "CertificateRequest".into(),
                issuer: "PKIIssuer a/b".into(),
            })
            .inc();
        m.fail(crate::api::reason::Reason::Denied);
        m.signing_duration.observe(0.01);
        m.signer_expiry
            .get_or_create(&SignerLabels {
                kind: "PKIIssuer".into(),
                namespace: "a".into(),
                issuer: "b".into(),
            })
            .set(2e9);
        m.reconciled(
            "PKIIssuer",
            std::time::Duration::from_millis(3),
            Some(&crate::controllers::Error::NotLeader),
        );
        let labels = SignerLabels {
            kind: "PKIClusterIssuer".into(),
            namespace: String::new(),
            issuer: "c".into(),
        };
        m.issuer_ready.get_or_create(&labels).set(0);
        m.trust_anchor_expiry.get_or_create(&labels).set(3e9);
        m.leader.set(1);
        let text = m.encode();
        for name in [
            "pki_issuer_certificates_issued_total{kind=\"CertificateRequest\",issuer=\"PKIIssuer a/b\"} 1",
            "pki_issuer_requests_failed_total{reason=\"Denied\"} 1",
            "pki_issuer_signing_duration_seconds_count 1",
            "pki_issuer_signer_expiry_timestamp_seconds{kind=\"PKIIssuer\",namespace=\"a\",issuer=\"b\"} 2000000000",
            "pki_issuer_remote_ca_request_duration_seconds",
            "pki_issuer_reconciles_total{controller=\"PKIIssuer\"} 1",
            "pki_issuer_reconcile_errors_total{controller=\"PKIIssuer\",error=\"not_leader\"} 1",
            "pki_issuer_reconcile_duration_seconds_count{controller=\"PKIIssuer\"} 1",
            "pki_issuer_build_info{version=\"",
            "pki_issuer_issuer_ready{kind=\"PKIClusterIssuer\",namespace=\"\",issuer=\"c\"} 0",
            "pki_issuer_trust_anchor_expiry_timestamp_seconds{kind=\"PKIClusterIssuer\",namespace=\"\",issuer=\"c\"} 3000000000",
            "pki_issuer_leader 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
        m.forget_issuer(&labels);
        let text = m.encode();
        assert!(!text.contains("issuer=\"c\""), "{text}");
    }
}
