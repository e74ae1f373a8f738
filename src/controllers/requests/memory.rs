//! What this process remembers of each request, by UID: retry attempts, that it finished the
//! request (a stale watch-cache version saying otherwise is not signed again), and a certificate
//! signed but not yet written (a failed write is retried without signing again).
//!
//! One eviction rule: an entry is forgotten [`RequestMemory::TTL`] after it was last touched
//! (swept whenever the memory holds more than [`RequestMemory::SWEEP_ABOVE`] entries).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A certificate signed and verified for one request, kept until it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedCert {
    /// What it was signed with: issuer UID, generation and signer fingerprint.
    pub signed_with: (String, i64, String),
    /// Leaf then intermediates, PEM.
    pub chain_pem: String,
    /// Trust anchors, PEM.
    pub ca_pem: String,
    /// Lifetime description.
    pub validity: String,
}

#[derive(Debug)]
struct Entry {
    touched: Instant,
    attempts: u32,
    finished: bool,
    signed: Option<SignedCert>,
}

/// Per-request memory of this process.
#[derive(Debug, Default)]
pub struct RequestMemory {
    entries: Mutex<HashMap<String, Entry>>,
}

impl RequestMemory {
    /// How long an untouched entry is kept.
    pub const TTL: Duration = Duration::from_secs(600);
    /// Size above which expired entries are swept.
    pub const SWEEP_ABOVE: usize = 50_000;

    fn with<T>(&self, uid: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut m = self.entries.lock().expect("request memory lock");
        let now = Instant::now();
        if m.len() > Self::SWEEP_ABOVE {
            m.retain(|_, e| now.duration_since(e.touched) < Self::TTL);
        }
        let e = m.entry(uid.to_string()).or_insert(Entry {
            touched: now,
            attempts: 0,
            finished: false,
            signed: None,
        });
        if now.duration_since(e.touched) >= Self::TTL {
            *e = Entry {
                touched: now,
                attempts: 0,
                finished: false,
                signed: None,
            };
        }
        e.touched = now;
        f(e)
    }

    /// Count one more retryable failure of `uid`; returns the count.
    pub fn failed(&self, uid: &str) -> u32 {
        self.with(uid, |e| {
            e.attempts += 1;
            e.attempts
        })
    }

    /// Retryable failures of `uid` so far.
    pub fn attempts(&self, uid: &str) -> u32 {
        self.with(uid, |e| e.attempts)
    }

    /// `uid` is finished: forget its attempts and any kept certificate.
    pub fn finish(&self, uid: &str) {
        self.with(uid, |e| {
            e.finished = true;
            e.attempts = 0;
            e.signed = None;
        })
    }

    /// Whether this process finished `uid`.
    pub fn is_finished(&self, uid: &str) -> bool {
        self.with(uid, |e| e.finished)
    }

    /// Keep `cert`, signed for `uid` but not written.
    pub fn keep(&self, uid: &str, cert: SignedCert) {
        self.with(uid, |e| e.signed = Some(cert))
    }

    /// Take the certificate kept for `uid` if it was signed with `signed_with`.
    pub fn take(&self, uid: &str, signed_with: &(String, i64, String)) -> Option<SignedCert> {
        self.with(uid, |e| e.signed.take())
            .filter(|c| &c.signed_with == signed_with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(generation: i64) -> SignedCert {
        SignedCert {
            signed_with: ("u".into(), generation, "ab".into()),
            chain_pem: "c".into(),
            ca_pem: "a".into(),
            validity: "v".into(),
        }
    }

    #[test]
    fn a_kept_certificate_is_taken_once_and_only_for_the_same_signer() {
        let m = RequestMemory::default();
        m.keep("r", cert(1));
        assert_eq!(m.take("r", &cert(2).signed_with), None, "other generation");
        m.keep("r", cert(1));
        assert_eq!(m.take("r", &cert(1).signed_with), Some(cert(1)));
        assert_eq!(m.take("r", &cert(1).signed_with), None, "taken once");
        m.keep("r", cert(1));
        m.finish("r");
        assert_eq!(m.take("r", &cert(1).signed_with), None, "finished");
        assert!(m.is_finished("r"));
    }

    #[test]
    fn attempts_count_per_request_and_reset_on_finish() {
        let m = RequestMemory::default();
        assert_eq!((m.failed("a"), m.failed("a"), m.failed("b")), (1, 2, 1));
        m.finish("a");
        assert_eq!(m.attempts("a"), 0);
        assert!(!m.is_finished("b"));
    }
}
