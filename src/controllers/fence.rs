//! The write fence of a leader: a leader cut off from the API server may not know its lease
//! expired, so writes are allowed only until `renewTime + leaseDuration - FENCE_MARGIN` of the
//! last renewal of its own lease it has read (`runtime::leader` keeps it up to date). Every
//! status write and Event of the controllers checks it first.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::Lease;

/// How long before the lease's expiry a leader stops writing (covers a write in flight and
/// scheduling delays).
pub const FENCE_MARGIN: Duration = Duration::from_secs(2);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Whether this replica may write: always without leader election; with it, only until the
/// last renewal of its lease this replica has seen expires (minus [`FENCE_MARGIN`]).
#[derive(Clone, Debug, Default)]
pub struct Fence {
    inner: Option<Arc<FenceState>>,
}

#[derive(Debug, Default)]
struct FenceState {
    /// Writes allowed before this time (Unix ms); 0 = closed.
    open_until_ms: AtomicU64,
    /// Closed for good (lease lost or released).
    closed: AtomicBool,
}

impl Fence {
    /// A fence that never closes (no leader election).
    pub fn open() -> Fence {
        Fence { inner: None }
    }

    /// A fence for a replica under leader election: closed until a lease read opens it.
    pub(crate) fn elected() -> Fence {
        Fence {
            inner: Some(Arc::new(FenceState::default())),
        }
    }

    /// Whether a write may start now.
    pub fn allows_write(&self) -> bool {
        match &self.inner {
            None => true,
            Some(st) => {
                !st.closed.load(Ordering::SeqCst)
                    && now_ms() < st.open_until_ms.load(Ordering::SeqCst)
            }
        }
    }

    /// How long writes stay allowed (zero when closed; `None` without leader election).
    pub fn remaining(&self) -> Option<Duration> {
        let st = self.inner.as_ref()?;
        if st.closed.load(Ordering::SeqCst) {
            return Some(Duration::ZERO);
        }
        let until = st.open_until_ms.load(Ordering::SeqCst);
        Some(Duration::from_millis(until.saturating_sub(now_ms())))
    }

    /// Close for good.
    pub fn close(&self) {
        if let Some(st) = &self.inner {
            st.closed.store(true, Ordering::SeqCst);
        }
    }

    /// Extend the fence from a Lease read: open until its renewal expires, if `identity`
    /// holds it; a Lease held by another identity closes the fence.
    pub(crate) fn observe(&self, lease: &Lease, identity: &str) {
        let Some(st) = &self.inner else { return };
        let Some(spec) = lease.spec.as_ref() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(identity) {
            st.open_until_ms.store(0, Ordering::SeqCst);
            return;
        }
        let (Some(renew), Some(secs)) = (spec.renew_time.as_ref(), spec.lease_duration_seconds)
        else {
            return;
        };
        let renewed_ms = renew.0.as_millisecond().max(0) as u64;
        let until = (renewed_ms + (secs.max(0) as u64) * 1000)
            .saturating_sub(FENCE_MARGIN.as_millis() as u64);
        st.open_until_ms.fetch_max(until, Ordering::SeqCst);
    }
}
