//! Shared state of the controllers.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::events::Recorder;
use kube::Client;

use super::backoff::Backoff;
use super::cache::IssuerCache;
use super::events::RequestEvents;
use super::fence::Fence;
use super::metrics::Metrics;
use super::remote_slots::RemoteSlots;
use crate::signers::remote::AllowedUrls;

/// Settings from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where `PKIClusterIssuer`s read their Secrets and ConfigMaps.
    pub cluster_resource_namespace: String,
    /// How long retryable errors are retried before a request fails.
    pub max_retry_duration: Duration,
    /// Namespaces whose Secrets/ConfigMaps are watched; empty means all.
    pub watch_namespaces: Vec<String>,
    /// Requests reconciled in parallel.
    pub concurrency: u16,
    /// Remote CA URLs that namespaced PKIIssuers may use.
    pub allowed_remote_ca_urls: Arc<AllowedUrls>,
}

/// Everything a reconcile needs.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Publishes `events.k8s.io/v1` Events of issuers.
    pub recorder: Recorder,
    /// Publishes `events.k8s.io/v1` Events of requests (uncached).
    pub request_events: RequestEvents,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
    /// Checked issuers.
    pub cache: Arc<IssuerCache>,
    /// Retry state of requests.
    pub backoff: Backoff,
    /// Limits on remote CA calls in flight (per issuer, per endpoint, in total).
    pub remote_slots: RemoteSlots,
    /// Settings.
    pub config: Config,
    /// Open while this replica may write (always without leader election).
    pub fence: Fence,
    /// Certificates signed but not yet written (the write failed), by request UID.
    pub issued: IssuedMemo,
    /// `uid/resourceVersion` of invalid objects already reported.
    pub invalid_reported: Mutex<HashSet<String>>,
    /// UIDs of requests this process finished (wrote Issued/Failed/Denied or found finished).
    pub finished: Mutex<HashSet<String>>,
}

impl Context {
    /// Fail unless this replica may write now (see [`Fence`]).
    pub fn check_fence(&self) -> Result<(), super::Error> {
        if self.fence.allows_write() {
            Ok(())
        } else {
            Err(super::Error::NotLeader)
        }
    }

    /// Remember that request `uid` is finished: a version of it in the watch cache that says
    /// otherwise is stale (a dropped watch or a relist has not caught up with our write yet).
    pub fn mark_finished(&self, uid: &str) {
        let mut f = self.finished.lock().expect("finished lock");
        if f.len() > 200_000 {
            f.clear();
        }
        f.insert(uid.to_string());
    }

    /// Whether this process finished request `uid` (see [`Context::mark_finished`]).
    pub fn is_finished(&self, uid: &str) -> bool {
        self.finished.lock().expect("finished lock").contains(uid)
    }

    /// Whether `key` (an invalid object's `uid/resourceVersion`) is new; remembers it.
    pub fn first_report(&self, key: String) -> bool {
        let mut seen = self.invalid_reported.lock().expect("report lock");
        if seen.len() > 10_000 {
            seen.clear();
        }
        seen.insert(key)
    }
}

/// A certificate that was signed and verified for one request, kept until it is written so a
/// failed status write does not cause a second signing.
#[derive(Clone, Debug, PartialEq)]
pub struct IssuedCert {
    /// What it was signed with: issuer UID, generation and signer fingerprint.
    pub signed_with: (String, i64, String),
    /// Leaf then intermediates, PEM.
    pub chain_pem: String,
    /// Trust anchors, PEM.
    pub ca_pem: String,
    /// Lifetime description.
    pub validity: String,
}

/// Signed-but-unwritten certificates by request UID, each kept at most [`IssuedMemo::TTL`].
#[derive(Debug, Default)]
pub struct IssuedMemo {
    entries: Mutex<HashMap<String, (Instant, IssuedCert)>>,
}

impl IssuedMemo {
    /// How long an unwritten certificate may be reused.
    pub const TTL: Duration = Duration::from_secs(600);

    /// Keep `cert` for request `uid`.
    pub fn put(&self, uid: &str, cert: IssuedCert) {
        let mut m = self.entries.lock().expect("memo lock");
        let now = Instant::now();
        m.retain(|_, (at, _)| now.duration_since(*at) < Self::TTL);
        m.insert(uid.to_string(), (now, cert));
    }

    /// Take the certificate kept for `uid` if it was signed with `signed_with`.
    pub fn take(&self, uid: &str, signed_with: &(String, i64, String)) -> Option<IssuedCert> {
        let mut m = self.entries.lock().expect("memo lock");
        let (at, cert) = m.remove(uid)?;
        (at.elapsed() < Self::TTL && &cert.signed_with == signed_with).then_some(cert)
    }

    /// Forget `uid`.
    pub fn forget(&self, uid: &str) {
        self.entries.lock().expect("memo lock").remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memo_returns_only_a_certificate_signed_with_the_same_signer() {
        let memo = IssuedMemo::default();
        let with = ("u".to_string(), 1, "ab".to_string());
        let cert = IssuedCert {
            signed_with: with.clone(),
            chain_pem: "c".into(),
            ca_pem: "a".into(),
            validity: "v".into(),
        };
        memo.put("r", cert.clone());
        assert_eq!(
            memo.take("r", &("u".into(), 2, "ab".into())),
            None,
            "other generation"
        );
        memo.put("r", cert.clone());
        assert_eq!(memo.take("r", &with), Some(cert.clone()));
        assert_eq!(memo.take("r", &with), None, "taken once");
        memo.put("r", cert);
        memo.forget("r");
        assert_eq!(memo.take("r", &with), None);
    }
}
