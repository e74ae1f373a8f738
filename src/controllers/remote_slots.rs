//! A bound on one issuer's share of the shared workers: at most N remote CA calls of one
//! issuer are in flight; a request that finds no free slot is re-queued (Pending), never
//! parked on a worker. So a hanging CA holds at most N workers and every other issuer keeps
//! issuing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::issuer::IssuerKey;

/// How long a request without a slot waits before it is tried again.
pub const BUSY_REQUEUE: std::time::Duration = std::time::Duration::from_secs(3);

/// Slots per issuer.
pub struct RemoteSlots {
    per_issuer: usize,
    issuers: Mutex<HashMap<IssuerKey, Arc<Semaphore>>>,
}

impl RemoteSlots {
    /// `per_issuer` calls of one issuer in flight at most (at least 1).
    pub fn new(per_issuer: usize) -> RemoteSlots {
        RemoteSlots {
            per_issuer: per_issuer.max(1),
            issuers: Mutex::new(HashMap::new()),
        }
    }

    /// The limit per issuer.
    pub fn per_issuer(&self) -> usize {
        self.per_issuer
    }

    /// A slot for `key`, or `None` when all of its slots are taken. The slot is released
    /// when the permit is dropped.
    pub fn try_acquire(&self, key: &IssuerKey) -> Option<OwnedSemaphorePermit> {
        let sem = {
            let mut map = self.issuers.lock().expect("slots lock");
            // Forget idle issuers so deleted ones do not accumulate.
            if map.len() > 1024 {
                let n = self.per_issuer;
                map.retain(|_, s| s.available_permits() < n);
            }
            map.entry(key.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_issuer)))
                .clone()
        };
        sem.try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::issuer::IssuerKind;

    fn key(name: &str) -> IssuerKey {
        IssuerKey {
            kind: IssuerKind::Namespaced,
            namespace: Some("ns".into()),
            name: name.into(),
        }
    }

    #[test]
    fn bounds_each_issuer_separately() {
        let slots = RemoteSlots::new(2);
        let a1 = slots.try_acquire(&key("a")).unwrap();
        let _a2 = slots.try_acquire(&key("a")).unwrap();
        assert!(
            slots.try_acquire(&key("a")).is_none(),
            "a third call of a waits"
        );
        assert!(slots.try_acquire(&key("b")).is_some(), "b is not affected");
        drop(a1);
        assert!(
            slots.try_acquire(&key("a")).is_some(),
            "a freed slot is reusable"
        );
        assert_eq!(RemoteSlots::new(0).per_issuer(), 1);
    }
}
