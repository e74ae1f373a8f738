//! Bounds on the shared workers that remote CA calls hold. A call needs three slots at once:
//! one of its issuer's (`--remote-calls-per-issuer`), one of its CA endpoint's (scheme, host
//! and port, whichever issuers point there: `--remote-calls-per-endpoint`) and one of the
//! process's (`--remote-calls-total`, below `--concurrency`). A request that finds any of them
//! taken is re-queued (Pending) and never parked on a worker. So a hanging CA holds at most
//! `per-endpoint` workers however many issuers use it, all hanging CAs together at most
//! `total`, and `concurrency - total` workers of each request controller are always left for
//! everything else (Secret-backed issuers, other CAs' first calls).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::issuer::IssuerKey;

/// How long a request without a slot waits before it is tried again.
pub const BUSY_REQUEUE: std::time::Duration = std::time::Duration::from_secs(3);

/// The three limits (each at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Calls of one issuer in flight.
    pub per_issuer: usize,
    /// Calls to one endpoint (scheme, host, port) in flight, from any issuer.
    pub per_endpoint: usize,
    /// Remote calls in flight in the process.
    pub total: usize,
}

/// Which limit a call found reached (the message of a waiting request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    /// The issuer's own calls.
    #[error("{0} calls of this issuer are already in flight")]
    Issuer(usize),
    /// The endpoint's calls, from any issuer.
    #[error("{0} calls to its CA endpoint (from any issuer) are already in flight")]
    Endpoint(usize),
    /// Every remote call of the process.
    #[error("{0} remote CA calls (of all issuers) are already in flight")]
    Total(usize),
}

/// Holds the three slots of one call; they are released when it is dropped.
pub struct Slot {
    _permits: [OwnedSemaphorePermit; 3],
}

/// Slots per issuer, per endpoint and in total.
pub struct RemoteSlots {
    limits: Limits,
    total: Arc<Semaphore>,
    issuers: Keyed<IssuerKey>,
    endpoints: Keyed<String>,
}

impl RemoteSlots {
    /// Slots with `limits` (each raised to at least 1).
    pub fn new(limits: Limits) -> RemoteSlots {
        let limits = Limits {
            per_issuer: limits.per_issuer.max(1),
            per_endpoint: limits.per_endpoint.max(1),
            total: limits.total.max(1),
        };
        RemoteSlots {
            limits,
            total: Arc::new(Semaphore::new(limits.total)),
            issuers: Keyed::new(limits.per_issuer),
            endpoints: Keyed::new(limits.per_endpoint),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The slots for a call of issuer `key` to the CA at `url`, or which limit is reached.
    pub fn try_acquire(&self, key: &IssuerKey, url: &str) -> Result<Slot, Busy> {
        let issuer = self
            .issuers
            .try_acquire(key)
            .ok_or(Busy::Issuer(self.limits.per_issuer))?;
        let endpoint = self
            .endpoints
            .try_acquire(&endpoint(url))
            .ok_or(Busy::Endpoint(self.limits.per_endpoint))?;
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Busy::Total(self.limits.total))?;
        Ok(Slot {
            _permits: [issuer, endpoint, total],
        })
    }
}

/// `scheme://host:port` of a URL (the port defaulted by scheme), lowercase: the unit a hanging
/// CA is counted by. A URL that does not parse counts as itself.
pub fn endpoint(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or_default().to_ascii_lowercase(),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => url.to_string(),
    }
}

/// One semaphore per key, created on first use.
struct Keyed<K> {
    per_key: usize,
    map: Mutex<HashMap<K, Arc<Semaphore>>>,
}

impl<K: Eq + Hash + Clone> Keyed<K> {
    fn new(per_key: usize) -> Keyed<K> {
        Keyed {
            per_key,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn try_acquire(&self, key: &K) -> Option<OwnedSemaphorePermit> {
        let sem = {
            let mut map = self.map.lock().expect("slots lock");
            // Forget idle keys so deleted issuers and old URLs do not accumulate.
            if map.len() > 1024 {
                let n = self.per_key;
                map.retain(|_, s| s.available_permits() < n);
            }
            map.entry(key.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_key)))
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

    fn slots(per_issuer: usize, per_endpoint: usize, total: usize) -> RemoteSlots {
        RemoteSlots::new(Limits {
            per_issuer,
            per_endpoint,
            total,
        })
    }

    const CA: &str = "http://ca.example:8888";

    #[test]
    fn bounds_each_issuer_separately() {
        let slots = slots(2, 10, 10);
        let a1 = slots.try_acquire(&key("a"), CA).unwrap();
        let _a2 = slots.try_acquire(&key("a"), CA).unwrap();
        assert_eq!(
            slots.try_acquire(&key("a"), CA).err(),
            Some(Busy::Issuer(2)),
            "a third call of a waits"
        );
        assert!(
            slots.try_acquire(&key("b"), CA).is_ok(),
            "b is not affected"
        );
        drop(a1);
        assert!(
            slots.try_acquire(&key("a"), CA).is_ok(),
            "a freed slot is reusable"
        );
        assert_eq!(
            super::tests::slots(0, 0, 0).limits(),
            super::tests::slots(1, 1, 1).limits()
        );
    }

    #[test]
    fn many_issuers_on_one_endpoint_share_its_slots() {
        let slots = slots(4, 3, 10);
        // Spellings of one endpoint: default port, host case, path.
        let urls = [
            "http://CA.example:8888/a",
            "http://ca.example:8888",
            "http://ca.example:8888/b/c",
        ];
        let held: Vec<Slot> = urls
            .iter()
            .enumerate()
            .map(|(i, u)| slots.try_acquire(&key(&format!("i{i}")), u).unwrap())
            .collect();
        for (i, u) in urls.iter().enumerate() {
            assert_eq!(
                slots.try_acquire(&key(&format!("other{i}")), u).err(),
                Some(Busy::Endpoint(3)),
                "{u}"
            );
        }
        assert_eq!(
            endpoint("https://vault.example/"),
            "https://vault.example:443"
        );
        assert!(slots
            .try_acquire(&key("x"), "http://other.example:8888")
            .is_ok());
        assert!(
            slots
                .try_acquire(&key("y"), "http://ca.example:8889")
                .is_ok(),
            "another port is another endpoint"
        );
        drop(held);
        assert!(slots.try_acquire(&key("z"), CA).is_ok());
    }

    #[test]
    fn all_endpoints_together_stay_under_the_total() {
        let slots = slots(4, 4, 5);
        let held: Vec<Slot> = (0..5)
            .map(|i| {
                slots
                    .try_acquire(&key(&format!("i{i}")), &format!("http://ca{i}.example"))
                    .unwrap()
            })
            .collect();
        assert_eq!(
            slots.try_acquire(&key("new"), "http://new.example").err(),
            Some(Busy::Total(5))
        );
        // A refused call holds nothing: its issuer and endpoint slots were given back.
        drop(held);
        let again: Vec<Slot> = (0..4)
            .map(|_| {
                slots
                    .try_acquire(&key("new"), "http://new.example")
                    .unwrap()
            })
            .collect();
        assert_eq!(again.len(), 4);
    }
}
