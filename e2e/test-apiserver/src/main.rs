//! `test-apiserver`: run the in-memory Kubernetes API server as a process.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// In-memory Kubernetes API server for tests and demos.
#[derive(Debug, Parser)]
#[command(name = "test-apiserver")]
struct Args {
    /// Listen address (loopback only); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write the admin kubeconfig (written atomically once serving).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Directory of CRD YAML files to preload (repeatable).
    #[arg(long = "crds")]
    crds: Vec<PathBuf>,
    /// Disable RBAC authorization (every authenticated user may do anything).
    #[arg(long)]
    no_authz: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let cfg = test_apiserver::Config {
        listen: args.listen,
        crd_dirs: args.crds,
        authorization: !args.no_authz,
        ..Default::default()
    };
    let server = test_apiserver::TestApiServer::start(cfg)
        .await
        .context("starting server")?;
    server
        .write_kubeconfig(&args.kubeconfig)
        .with_context(|| format!("writing {}", args.kubeconfig.display()))?;
    println!("test-apiserver listening on {}", server.url());
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.shutdown().await;
    Ok(())
}
