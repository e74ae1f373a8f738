//! CPU-heavy work runs off the async workers. Every reconcile of one controller is polled by
//! one task, so work done inline in a reconcile stalls every other reconcile of that controller;
//! here it runs on blocking threads while the controller keeps polling the others.
//!
//! * Issuer checks (trust-anchor parsing, signer-chain validation) run on at most
//!   [`check_threads`] threads at once: however many tenants' checks are due, at least half of
//!   the cores stay free for issuance. Each check is bounded itself (see [`crate::pki::path`]).
//! * Request work (CSR parsing and signature, policy, signing, the after-signing checks) runs
//!   on blocking threads too; it is bounded per request (CSR size, SAN count, policy list
//!   sizes) and in parallel by the request workers (`--concurrency`).

use std::sync::{Arc, LazyLock};

use tokio::sync::Semaphore;

/// Why CPU work returned no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CpuError {
    /// The work panicked (a bug; the reconcile reports it instead of crashing the process).
    #[error("internal error: the {0} stopped unexpectedly")]
    Panicked(&'static str),
}

/// A bounded set of blocking threads.
pub struct Pool {
    permits: Arc<Semaphore>,
    what: &'static str,
}

impl Pool {
    /// At most `threads` jobs at once (at least one); `what` names a job in errors.
    pub fn new(threads: usize, what: &'static str) -> Pool {
        Pool {
            permits: Arc::new(Semaphore::new(threads.max(1))),
            what,
        }
    }

    /// Run `f` on a blocking thread once one of the pool's slots is free.
    pub async fn run<T, F>(&self, f: F) -> Result<T, CpuError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|_| CpuError::Panicked(self.what))
    }
}

static CHECKS: LazyLock<Pool> = LazyLock::new(|| Pool::new(check_threads(), "issuer check"));

/// How many issuer checks run at once: half the cores, at least one.
pub fn check_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Run one issuer check's CPU work on the bounded check threads.
pub async fn check<T, F>(f: F) -> Result<T, CpuError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    CHECKS.run(f).await
}

/// Run one request's CPU work on a blocking thread.
pub async fn request<T, F>(f: F) -> Result<T, CpuError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| CpuError::Panicked("request check"))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pool_jobs_are_bounded_and_never_block_the_async_workers() {
        let pool = Arc::new(Pool::new(2, "test job"));
        let started = Instant::now();
        // More slow jobs than threads, all at once.
        let slow: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    pool.run(|| std::thread::sleep(Duration::from_millis(300)))
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(pool.permits.available_permits(), 0, "both threads are busy");
        // The async workers are free: a timer and a request job finish at once.
        let quick = Instant::now();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(request(|| 1 + 1).await, Ok(2));
        assert!(
            quick.elapsed() < Duration::from_millis(200),
            "{:?}",
            quick.elapsed()
        );
        for s in slow {
            s.await.unwrap().unwrap();
        }
        // Two at a time: the four jobs took two rounds.
        assert!(started.elapsed() >= Duration::from_millis(600));
        assert_eq!(pool.permits.available_permits(), 2);
        let panicked = pool.run(|| -> u8 { panic!("boom") }).await;
        assert_eq!(panicked, Err(CpuError::Panicked("test job")));
        assert_eq!(
            pool.permits.available_permits(),
            2,
            "a panic frees its slot"
        );
        assert!(check_threads() >= 1);
        assert_eq!(check(|| 3).await, Ok(3));
    }
}
