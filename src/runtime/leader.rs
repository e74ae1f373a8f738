//! Leader election through a `coordination.k8s.io/v1` Lease (kube-lease-manager).
//!
//! Only the leader reconciles. A replica that loses the lease stops at once (the process
//! exits so a fresh start re-syncs); on SIGTERM the leader releases the lease so a standby
//! takes over without waiting for it to expire.

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::RuntimeError;

/// The Lease name.
pub const LEASE_NAME: &str = "pki-issuer-leader";
/// Seconds a lease stays valid after its last renewal.
pub const LEASE_DURATION_SECS: u64 = 15;
/// Seconds before expiry at which the holder renews.
pub const LEASE_GRACE_SECS: u64 = 5;

/// A running election.
pub struct Election {
    rx: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

impl Election {
    /// Join the election for `namespace` as `identity`.
    pub async fn start(
        client: Client,
        namespace: &str,
        identity: &str,
    ) -> Result<Election, RuntimeError> {
        let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(LEASE_DURATION_SECS)
            .with_grace(LEASE_GRACE_SECS)
            .with_field_manager(format!("pki-issuer-{identity}"))
            .build()
            .await
            .map_err(|e| RuntimeError::Client(format!("leader election: {e}")))?;
        let (rx, task) = manager.watch().await;
        Ok(Election { rx, task })
    }

    /// Wait until this replica leads.
    pub async fn acquired(&mut self) {
        while !*self.rx.borrow_and_update() {
            if self.rx.changed().await.is_err() {
                // The election task ended; waiting forever is the safe answer.
                futures::future::pending::<()>().await;
            }
        }
    }

    /// Resolves when this replica stops leading.
    pub async fn lost(&mut self) {
        loop {
            if !*self.rx.borrow_and_update() {
                return;
            }
            if self.rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Step down: close the channel so the task releases the lease, and wait for it.
    pub async fn release(self) {
        drop(self.rx);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("leader lease released"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the leader lease failed"),
            Err(e) => tracing::warn!(error = %e, "leader election task failed"),
        }
    }
}
