//! Shared state of the controllers.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::Recorder;
use kube::Client;

use super::backoff::Backoff;
use super::cache::IssuerCache;
use super::remote_slots::RemoteSlots;
use crate::runtime::metrics::Metrics;
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
    /// Remote CA calls in flight per issuer; further requests wait Pending.
    pub remote_calls_per_issuer: usize,
}

/// Everything a reconcile needs.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Publishes `events.k8s.io/v1` Events.
    pub recorder: Recorder,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
    /// Checked issuers.
    pub cache: Arc<IssuerCache>,
    /// Retry state of requests.
    pub backoff: Backoff,
    /// Per-issuer limits on remote CA calls in flight.
    pub remote_slots: RemoteSlots,
    /// Settings.
    pub config: Config,
}
