//! Wiring: client, context, controllers, admin servers and graceful shutdown.

use std::sync::Arc;

use futures::channel::oneshot;
use futures::future::{FutureExt, Shared};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::events::{Recorder, Reporter};
use kube::Client;

use super::admin::{self, Health};
use super::args::{bind_addr, pod_namespace, Args};
use super::leader::{Election, Fence};
use super::RuntimeError;
use crate::api::cert_manager::CertificateRequest;
use crate::api::duration;
use crate::api::issuer::{PKIClusterIssuer, PKIIssuer};
use crate::controllers::cache::IssuerCache;
use crate::controllers::events::RequestEvents;
use crate::controllers::metrics::Metrics;
use crate::controllers::remote_slots::RemoteSlots;
use crate::controllers::requests::issuers::IssuerIndex;
use crate::controllers::requests::pipeline::{self, RequestData};
use crate::controllers::requests::pod_certificate_request;
use crate::controllers::{issuer, Config, Context};
use crate::signers::remote::AllowedUrls;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::certificates::v1beta1::PodCertificateRequest;

/// A future that resolves once shutdown starts; cheap to clone.
pub type ShutdownSignal =
    Shared<futures::future::Map<oneshot::Receiver<()>, fn(Result<(), oneshot::Canceled>)>>;

/// A shutdown trigger and the signal its clones wait on.
pub fn shutdown_pair() -> (oneshot::Sender<()>, ShutdownSignal) {
    let (tx, rx) = oneshot::channel();
    let ignore: fn(Result<(), oneshot::Canceled>) = |_| ();
    (tx, rx.map(ignore).shared())
}

/// Build a client from `--kubeconfig`, or from the in-cluster environment.
pub async fn client(args: &Args) -> Result<Client, RuntimeError> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kc =
                Kubeconfig::read_from(path).map_err(|e| RuntimeError::Client(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| RuntimeError::Client(e.to_string()))?
        }
        None => kube::Config::incluster().map_err(|e| RuntimeError::Client(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| RuntimeError::Client(e.to_string()))
}

/// Run until SIGTERM/SIGINT (or `stop` resolves), then drain and exit.
pub async fn run(
    args: Args,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RuntimeError> {
    let allowed_remote_ca_urls = AllowedUrls::parse(&args.allowed_remote_ca_urls)
        .map_err(|e| RuntimeError::Flag(format!("--allowed-remote-ca-urls: {e}")))?;
    let remote_limits = args.remote_limits()?;
    let pkcs11_modules = crate::signers::pkcs11::Pkcs11Modules::parse(
        &args.allowed_pkcs11_modules,
        args.allow_namespaced_pkcs11,
    )
    .map_err(|e| RuntimeError::Flag(format!("--allowed-pkcs11-modules: {e}")))?;
    let max_retry_duration = duration::parse(&args.max_retry_duration)
        .map_err(|e| RuntimeError::Flag(format!("--max-retry-duration: {e}")))?;
    let cluster_resource_namespace = args
        .cluster_resource_namespace
        .clone()
        .or_else(pod_namespace)
        .ok_or_else(|| {
            RuntimeError::Flag("--cluster-resource-namespace is required outside a cluster".into())
        })?;
    let client = client(&args).await?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let (stop_tx, shutdown) = shutdown_pair();

    let probe = admin::serve(
        bind_addr(&args.probe_addr)?,
        admin::probe_router(health.clone()),
        shutdown.clone(),
    )
    .await?;
    let metrics_bound = admin::serve(
        bind_addr(&args.metrics_addr)?,
        admin::metrics_router(metrics.clone()),
        shutdown.clone(),
    )
    .await?;
    tracing::info!(probe = %probe, metrics = %metrics_bound, cluster_resource_namespace = %cluster_resource_namespace, "pki-issuer starting");

    health.set_ready(true);
    let mut election = match args.leader_elect {
        true => {
            let ns = args
                .leader_election_namespace
                .clone()
                .unwrap_or_else(|| cluster_resource_namespace.clone());
            let identity = std::env::var("POD_NAME").unwrap_or_else(|_| random_identity());
            let mut election = Election::start(client.clone(), &ns, &identity).await?;
            tracing::info!(%identity, namespace = %ns, "waiting to become leader");
            let stop_waiting = termination();
            tokio::select! {
                _ = election.acquired() => tracing::info!(%identity, "became leader"),
                _ = stop_waiting => {
                    election.release().await;
                    return Ok(());
                }
            }
            Some(election)
        }
        false => None,
    };
    // From here on this replica runs the controllers (alone, when elected).
    metrics.leader.set(1);

    let cache = Arc::new(IssuerCache::default());
    let reporter = Reporter {
        controller: "pki-issuer".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter.clone()),
        request_events: RequestEvents::new(client.clone(), reporter),
        metrics,
        cache,
        config: Config {
            cluster_resource_namespace: cluster_resource_namespace.clone(),
            max_retry_duration,
            watch_namespaces: args
                .watch_namespaces
                .iter()
                .filter(|n| !n.is_empty())
                .cloned()
                .collect(),
            concurrency: args.concurrency,
            allowed_remote_ca_urls: Arc::new(allowed_remote_ca_urls),
            pkcs11_modules: Arc::new(pkcs11_modules),
        },
        fence: election
            .as_ref()
            .map(Election::fence)
            .unwrap_or_else(Fence::open),
        requests: Default::default(),
        invalid_reported: Default::default(),
        remote_slots: RemoteSlots::new(remote_limits),
    });

    let pod_certificates = pod_certificate_request::served(&client).await;
    let tasks = spawn_controllers(&ctx, shutdown.clone(), pod_certificates);
    let lost = async {
        match election.as_mut() {
            Some(e) => e.lost().await,
            None => futures::future::pending().await,
        }
    };
    tokio::select! {
        _ = stop => {},
        _ = termination() => {},
        _ = lost => {
            ctx.metrics.leader.set(0);
            tracing::error!("lost the leader lease: stopping at once");
            for t in &tasks {
                t.abort();
            }
            return Err(RuntimeError::LostLease);
        }
    }
    tracing::info!("shutting down: draining reconciles");
    ctx.metrics.leader.set(0);
    health.set_ready(false);
    let _ = stop_tx.send(());
    for t in tasks {
        let _ = t.await;
    }
    if let Some(e) = election {
        e.release().await;
    }
    tracing::info!("stopped");
    Ok(())
}

fn spawn_controllers(
    ctx: &Arc<Context>,
    shutdown: ShutdownSignal,
    pod_certificates: bool,
) -> Vec<tokio::task::JoinHandle<()>> {
    let cache = &ctx.cache;
    let ready_for_pcrs = pod_certificates.then(|| cache.subscribe());
    let ready_for_requests = cache.subscribe();
    let ready_for_csrs = cache.subscribe();
    let (namespaced, namespaced_view) = issuer::controller::<PKIIssuer>(ctx);
    let (cluster, cluster_view) = issuer::controller::<PKIClusterIssuer>(ctx);
    let data = Arc::new(RequestData {
        ctx: ctx.clone(),
        issuers: IssuerIndex {
            namespaced: namespaced_view,
            cluster: cluster_view,
        },
    });
    let mut tasks = Vec::new();
    if let Some(ready) = ready_for_pcrs {
        tracing::info!("signing PodCertificateRequests (certificates.k8s.io/v1beta1)");
        tasks.push(tokio::spawn(pipeline::run::<PodCertificateRequest>(
            data.clone(),
            ready,
            shutdown.clone(),
        )));
    }
    tasks.extend([
        tokio::spawn(issuer::run(namespaced, ctx.clone(), shutdown.clone())),
        tokio::spawn(issuer::run(cluster, ctx.clone(), shutdown.clone())),
        tokio::spawn(pipeline::run::<CertificateRequest>(
            data.clone(),
            ready_for_requests,
            shutdown.clone(),
        )),
        tokio::spawn(pipeline::run::<CertificateSigningRequest>(
            data,
            ready_for_csrs,
            shutdown,
        )),
    ]);
    tasks
}

fn random_identity() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("pki-issuer-{n:016x}")
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
