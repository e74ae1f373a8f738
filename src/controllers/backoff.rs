//! Per-object exponential backoff for retryable errors, bounded by `--max-retry-duration`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What to do after a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again after this delay.
    After(Duration),
    /// The retry budget is spent: fail permanently.
    GiveUp,
}

/// Tracks consecutive retryable failures per object UID.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    max_total: Duration,
    state: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Backoff {
    /// Delays start at `base`, double per failure up to `cap`; give up after `max_total`.
    pub fn new(base: Duration, cap: Duration, max_total: Duration) -> Self {
        Backoff {
            base,
            cap,
            max_total,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Record a failure of `uid` at `now` and say what to do.
    pub fn failed(&self, uid: &str, now: Instant) -> Retry {
        let mut state = self.state.lock().expect("backoff lock");
        let entry = state.entry(uid.to_string()).or_insert((now, 0));
        entry.1 += 1;
        if now.duration_since(entry.0) >= self.max_total {
            state.remove(uid);
            return Retry::GiveUp;
        }
        let exp = entry.1.saturating_sub(1).min(20);
        let delay = self.base.saturating_mul(1u32 << exp).min(self.cap);
        Retry::After(delay)
    }

    /// Record that `uid` waited without an attempt (its remote CA's call slots were all in
    /// flight) at `now`: starts its retry clock if none runs, so waiting behind a down CA
    /// spends the same budget as failing against it. `GiveUp` once the budget is spent.
    pub fn waited(&self, uid: &str, now: Instant) -> Retry {
        let mut state = self.state.lock().expect("backoff lock");
        let entry = state.entry(uid.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.max_total {
            state.remove(uid);
            return Retry::GiveUp;
        }
        Retry::After(Duration::ZERO)
    }

    /// Forget `uid` (it succeeded, failed permanently or was deleted).
    pub fn reset(&self, uid: &str) {
        self.state.lock().expect("backoff lock").remove(uid);
    }

    /// How many consecutive failures `uid` has had.
    pub fn attempts(&self, uid: &str) -> u32 {
        self.state
            .lock()
            .expect("backoff lock")
            .get(uid)
            .map_or(0, |e| e.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_gives_up() {
        let b = Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(5),
            Duration::from_secs(60),
        );
        let t0 = Instant::now();
        assert_eq!(b.failed("a", t0), Retry::After(Duration::from_secs(1)));
        assert_eq!(b.failed("a", t0), Retry::After(Duration::from_secs(2)));
        assert_eq!(b.failed("a", t0), Retry::After(Duration::from_secs(4)));
        assert_eq!(b.failed("a", t0), Retry::After(Duration::from_secs(5)));
        assert_eq!(
            b.failed("b", t0),
            Retry::After(Duration::from_secs(1)),
            "per object"
        );
        assert_eq!(b.failed("a", t0 + Duration::from_secs(61)), Retry::GiveUp);
        assert_eq!(b.attempts("a"), 0, "giving up forgets the object");
        b.reset("b");
        assert_eq!(b.attempts("b"), 0);
    }

    #[test]
    fn waiting_spends_the_budget_too() {
        let b = Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(5),
            Duration::from_secs(10),
        );
        let t0 = Instant::now();
        assert_eq!(b.waited("a", t0), Retry::After(Duration::ZERO));
        assert_eq!(b.attempts("a"), 0, "waiting is not an attempt");
        assert_eq!(
            b.failed("a", t0 + Duration::from_secs(3)),
            Retry::After(Duration::from_secs(1)),
            "the first failure after waiting backs off from the start"
        );
        assert_eq!(b.waited("a", t0 + Duration::from_secs(10)), Retry::GiveUp);
    }
}
