//! The process around the controllers: flags, logging, admin HTTP, metrics, shutdown.

pub mod admin;
pub mod args;
pub mod leader;
pub mod run;
pub mod telemetry;

pub use args::Args;
pub use run::run;

/// Errors that stop the process.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Building the Kubernetes client failed.
    #[error("Kubernetes client: {0}")]
    Client(String),
    /// Binding or serving an admin port failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Another replica took the leader lease.
    #[error("lost the leader lease")]
    LostLease,
    /// A flag has a bad value.
    #[error("invalid flag: {0}")]
    Flag(String),
}
