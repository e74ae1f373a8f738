//! Shared state of the controllers.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::events::Recorder;
use kube::Client;

use super::cache::IssuerCache;
use super::events::RequestEvents;
use super::fence::Fence;
use super::metrics::Metrics;
use super::remote_slots::RemoteSlots;
use super::requests::memory::RequestMemory;
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
    /// PKCS#11 modules issuers may load, and whether PKIIssuers may.
    pub pkcs11_modules: Arc<crate::signers::pkcs11::Pkcs11Modules>,
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
    /// Limits on remote CA calls in flight (per issuer, per endpoint, in total).
    pub remote_slots: RemoteSlots,
    /// Settings.
    pub config: Config,
    /// Open while this replica may write (always without leader election).
    pub fence: Fence,
    /// What this process remembers of each request (attempts, finished, kept certificate).
    pub requests: RequestMemory,
    /// `uid/resourceVersion` of invalid objects already reported.
    pub invalid_reported: Mutex<HashSet<String>>,
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

    /// Whether `key` (an invalid object's `uid/resourceVersion`) is new; remembers it.
    pub fn first_report(&self, key: String) -> bool {
        let mut seen = self.invalid_reported.lock().expect("report lock");
        if seen.len() > 10_000 {
            seen.clear();
        }
        seen.insert(key)
    }
}
