//! Leader election through a `coordination.k8s.io/v1` Lease (kube-lease-manager).
//!
//! Only the leader reconciles. A replica that loses the lease stops at once (the process
//! exits so a fresh start re-syncs); on SIGTERM the leader releases the lease so a standby
//! takes over without waiting for it to expire.
//!
//! The lease manager only notices a lost lease when one of its API calls succeeds again, so a
//! leader that cannot reach the API server would keep believing it leads after its lease
//! expired and a standby took over. A [`Fence`] closes that gap: it only opens writes until
//! `renewTime + leaseDuration - FENCE_MARGIN` of the last renewal this replica has seen in the
//! Lease, and every write checks it first.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::RuntimeError;
pub use crate::controllers::fence::Fence;

/// How often the leader re-reads its Lease to extend its fence.
pub const FENCE_POLL: Duration = Duration::from_secs(1);

/// The Lease name.
pub const LEASE_NAME: &str = "pki-issuer-leader";
/// Seconds a lease stays valid after its last renewal.
pub const LEASE_DURATION_SECS: u64 = 15;
/// Seconds before expiry at which the holder renews.
pub const LEASE_GRACE_SECS: u64 = 7;

/// A running election.
pub struct Election {
    rx: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    leases: Api<Lease>,
    identity: String,
    fence: Fence,
    poll: Option<JoinHandle<()>>,
}

impl Election {
    /// Join the election for `namespace` as `identity`.
    pub async fn start(
        client: Client,
        namespace: &str,
        identity: &str,
    ) -> Result<Election, RuntimeError> {
        let manager = LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
            .with_namespace(namespace)
            .with_identity(identity)
            .with_duration(LEASE_DURATION_SECS)
            .with_grace(LEASE_GRACE_SECS)
            .with_field_manager(format!("pki-issuer-{identity}"))
            .build()
            .await
            .map_err(|e| RuntimeError::Client(format!("leader election: {e}")))?;
        let (rx, task) = manager.watch().await;
        Ok(Election {
            rx,
            task,
            leases: Api::namespaced(client, namespace),
            identity: identity.to_string(),
            fence: Fence::elected(),
            poll: None,
        })
    }

    /// The fence every write of this replica checks.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// Wait until this replica leads and has read its own renewal (so the fence is open),
    /// then keep extending the fence from the Lease.
    pub async fn acquired(&mut self) {
        loop {
            while !*self.rx.borrow_and_update() {
                if self.rx.changed().await.is_err() {
                    // The election task ended; waiting forever is the safe answer.
                    futures::future::pending::<()>().await;
                }
            }
            if let Ok(lease) = self.leases.get(LEASE_NAME).await {
                self.fence.observe(&lease, &self.identity);
            }
            if self.fence.allows_write() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (leases, identity, fence) = (
            self.leases.clone(),
            self.identity.clone(),
            self.fence.clone(),
        );
        self.poll = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(FENCE_POLL).await;
                match leases.get(LEASE_NAME).await {
                    Ok(lease) => fence.observe(&lease, &identity),
                    Err(e) => tracing::debug!(error = %e, "reading the leader Lease"),
                }
            }
        }));
    }

    /// Resolves when this replica stops leading: the lease manager says so, or the fence
    /// closed (no renewal seen in time). Closes the fence first.
    pub async fn lost(&mut self) {
        loop {
            if !*self.rx.borrow_and_update() || !self.fence.allows_write() {
                self.fence.close();
                return;
            }
            let wait = self
                .fence
                .remaining()
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_millis(500))
                .max(Duration::from_millis(10));
            tokio::select! {
                changed = self.rx.changed() => if changed.is_err() {
                    self.fence.close();
                    return;
                },
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Step down: close the channel so the task releases the lease, and wait for it.
    pub async fn release(self) {
        self.fence.close();
        if let Some(p) = &self.poll {
            p.abort();
        }
        drop(self.rx);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("leader lease released"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the leader lease failed"),
            Err(e) => tracing::warn!(error = %e, "leader election task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: &str, renewed_ago: Duration) -> Lease {
        let t = jiff::Timestamp::now() - jiff::SignedDuration::try_from(renewed_ago).unwrap();
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(t)),
                lease_duration_seconds: Some(15),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn fence_opens_on_own_fresh_renewal_and_closes_otherwise() {
        assert!(Fence::open().allows_write(), "no election: always open");
        let f = Fence::elected();
        assert!(!f.allows_write(), "closed until a renewal is seen");
        f.observe(&lease("me", Duration::from_secs(1)), "me");
        assert!(f.allows_write());
        let left = f.remaining().unwrap();
        assert!(
            left > Duration::from_secs(10) && left <= Duration::from_secs(12),
            "{left:?}"
        );
        f.observe(&lease("other", Duration::ZERO), "me");
        assert!(!f.allows_write(), "another holder closes it");
        let g = Fence::elected();
        g.observe(&lease("me", Duration::from_secs(14)), "me");
        assert!(
            !g.allows_write(),
            "a renewal older than duration - margin is expired"
        );
        g.observe(&lease("me", Duration::ZERO), "me");
        assert!(g.allows_write());
        g.close();
        assert!(!g.allows_write(), "closed for good");
        g.observe(&lease("me", Duration::ZERO), "me");
        assert!(!g.allows_write());
    }
}
