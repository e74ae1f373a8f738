//! Fault injection (failures, latency, dropped watches, expired resourceVersions) and request counters.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::store::Store;

/// Which requests a fault applies to; `None` fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    /// Verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// Resource plural, e.g. `certificaterequests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Subresource, e.g. `status`; `""` matches only the main resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Matcher {
    fn matches(&self, r: &RequestInfo) -> bool {
        let m = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        m(&self.verb, &r.verb)
            && m(&self.resource, &r.resource)
            && m(&self.subresource, &r.subresource)
            && m(&self.namespace, &r.namespace)
            && m(&self.name, &r.name)
    }
}

/// The request a fault decision is made for.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// Verb.
    pub verb: String,
    /// Resource.
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The authenticated user's name.
    pub user: String,
}

/// A fault request as accepted by `POST /testing/faults` (JSON, tagged by `action`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum FaultSpec {
    /// Close every open watch now.
    DropWatches,
    /// Compact history: every resourceVersion older than the current one gets 410 Gone.
    ExpireResourceVersions,
    /// Fail matching requests with `code` for `count` requests and/or `durationSeconds`.
    #[serde(rename_all = "camelCase")]
    Fail {
        /// Which requests.
        #[serde(flatten)]
        matcher: Matcher,
        /// HTTP status (e.g. 500, 429, 409, 503).
        code: u16,
        /// Number of requests to fail (unbounded if absent).
        #[serde(default)]
        count: Option<u64>,
        /// How long the fault lasts (unbounded if absent).
        #[serde(default)]
        duration_seconds: Option<f64>,
    },
    /// Delay matching requests by `millis`.
    #[serde(rename_all = "camelCase")]
    Latency {
        /// Which requests.
        #[serde(flatten)]
        matcher: Matcher,
        /// Added latency in milliseconds.
        millis: u64,
        /// Number of requests to delay (unbounded if absent).
        #[serde(default)]
        count: Option<u64>,
        /// How long the fault lasts (unbounded if absent).
        #[serde(default)]
        duration_seconds: Option<f64>,
    },
    /// Remove all failure and latency rules.
    Clear,
    /// Reset the request counters.
    ResetCounters,
}

#[derive(Debug, Clone)]
struct Rule {
    matcher: Matcher,
    code: Option<u16>,
    latency: Duration,
    remaining: Option<u64>,
    until: Option<Instant>,
}

/// A counter row of `GET /testing/requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCount {
    /// Verb.
    pub verb: String,
    /// Resource.
    pub resource: String,
    /// Subresource (`""` for the main resource).
    pub subresource: String,
    /// Number of requests seen.
    pub count: u64,
}

#[derive(Debug)]
struct State {
    rules: Mutex<Vec<Rule>>,
    counts: Mutex<BTreeMap<(String, String, String), u64>>,
    user_counts: Mutex<BTreeMap<(String, String, String, String), u64>>,
    drop_tx: tokio::sync::watch::Sender<u64>,
    store: Arc<Store>,
}

/// Handle for injecting faults into a running server (cheap to clone).
#[derive(Debug, Clone)]
pub struct FaultInjector {
    st: Arc<State>,
}

/// What the server should do with a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Delay before handling.
    pub delay: Duration,
    /// Injected failure status code, if any.
    pub fail: Option<u16>,
}

impl FaultInjector {
    pub(crate) fn new(store: Arc<Store>) -> FaultInjector {
        let (drop_tx, _) = tokio::sync::watch::channel(0);
        FaultInjector {
            st: Arc::new(State {
                rules: Mutex::new(vec![]),
                counts: Mutex::new(BTreeMap::new()),
                user_counts: Mutex::new(BTreeMap::new()),
                drop_tx,
                store,
            }),
        }
    }
    pub(crate) fn drop_receiver(&self) -> tokio::sync::watch::Receiver<u64> {
        self.st.drop_tx.subscribe()
    }
    /// Close every open watch stream now (clients see the stream end and re-watch).
    pub fn drop_watches(&self) {
        self.st.drop_tx.send_modify(|g| *g += 1);
    }
    /// Forget event history: watches and list continues from any earlier resourceVersion get 410 Gone.
    pub fn expire_resource_versions(&self) {
        self.st.store.lock().compact();
    }
    /// Fail matching requests with `code` for `count` requests and/or `duration`.
    pub fn fail(
        &self,
        matcher: Matcher,
        code: u16,
        count: Option<u64>,
        duration: Option<Duration>,
    ) {
        self.st.rules.lock().push(Rule {
            matcher,
            code: Some(code),
            latency: Duration::ZERO,
            remaining: count,
            until: duration.map(|d| Instant::now() + d),
        });
    }
    /// Delay matching requests by `latency` for `count` requests and/or `duration`.
    pub fn add_latency(
        &self,
        matcher: Matcher,
        latency: Duration,
        count: Option<u64>,
        duration: Option<Duration>,
    ) {
        self.st.rules.lock().push(Rule {
            matcher,
            code: None,
            latency,
            remaining: count,
            until: duration.map(|d| Instant::now() + d),
        });
    }
    /// Remove all failure/latency rules.
    pub fn clear(&self) {
        self.st.rules.lock().clear();
    }
    /// Apply a [`FaultSpec`].
    pub fn apply(&self, spec: FaultSpec) {
        let dur = |s: Option<f64>| s.map(Duration::from_secs_f64);
        match spec {
            FaultSpec::DropWatches => self.drop_watches(),
            FaultSpec::ExpireResourceVersions => self.expire_resource_versions(),
            FaultSpec::Fail {
                matcher,
                code,
                count,
                duration_seconds,
            } => self.fail(matcher, code, count, dur(duration_seconds)),
            FaultSpec::Latency {
                matcher,
                millis,
                count,
                duration_seconds,
            } => self.add_latency(
                matcher,
                Duration::from_millis(millis),
                count,
                dur(duration_seconds),
            ),
            FaultSpec::Clear => self.clear(),
            FaultSpec::ResetCounters => self.reset_counters(),
        }
    }
    /// Count a request and decide its faults.
    pub(crate) fn on_request(&self, r: &RequestInfo) -> Decision {
        *self
            .st
            .counts
            .lock()
            .entry((r.verb.clone(), r.resource.clone(), r.subresource.clone()))
            .or_default() += 1;
        *self
            .st
            .user_counts
            .lock()
            .entry((
                r.user.clone(),
                r.verb.clone(),
                r.resource.clone(),
                r.subresource.clone(),
            ))
            .or_default() += 1;
        let mut rules = self.st.rules.lock();
        let now = Instant::now();
        rules.retain(|x| x.remaining != Some(0) && x.until.is_none_or(|u| u > now));
        let mut d = Decision {
            delay: Duration::ZERO,
            fail: None,
        };
        for rule in rules.iter_mut().filter(|x| x.matcher.matches(r)) {
            if rule.code.is_some() && d.fail.is_some() {
                continue;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            match rule.code {
                Some(c) => d.fail = Some(c),
                None => d.delay += rule.latency,
            }
        }
        d
    }
    /// Number of requests seen for (verb, resource, subresource).
    pub fn request_count(&self, verb: &str, resource: &str, subresource: &str) -> u64 {
        self.st
            .counts
            .lock()
            .get(&(verb.into(), resource.into(), subresource.into()))
            .copied()
            .unwrap_or(0)
    }
    /// All request counters.
    pub fn request_counts(&self) -> Vec<RequestCount> {
        self.st
            .counts
            .lock()
            .iter()
            .map(|((v, r, s), c)| RequestCount {
                verb: v.clone(),
                resource: r.clone(),
                subresource: s.clone(),
                count: *c,
            })
            .collect()
    }
    /// The request counters of one user (e.g. `system:serviceaccount:ns:name`).
    pub fn request_counts_for(&self, user: &str) -> Vec<RequestCount> {
        self.st
            .user_counts
            .lock()
            .iter()
            .filter(|((u, ..), _)| u == user)
            .map(|((_, v, r, s), c)| RequestCount {
                verb: v.clone(),
                resource: r.clone(),
                subresource: s.clone(),
                count: *c,
            })
            .collect()
    }
    /// Reset the request counters.
    pub fn reset_counters(&self) {
        self.st.counts.lock().clear();
        self.st.user_counts.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(verb: &str, sub: &str) -> RequestInfo {
        RequestInfo {
            verb: verb.into(),
            resource: "certificaterequests".into(),
            subresource: sub.into(),
            ..Default::default()
        }
    }

    #[test]
    fn fail_count_and_matching() {
        let f = FaultInjector::new(Arc::new(Store::new(Default::default(), 10)));
        let spec: FaultSpec = serde_json::from_str(
            r#"{"action":"fail","verb":"patch","resource":"certificaterequests","subresource":"status","code":500,"count":2}"#,
        )
        .unwrap();
        f.apply(spec);
        assert_eq!(f.on_request(&req("patch", "")).fail, None);
        assert_eq!(f.on_request(&req("patch", "status")).fail, Some(500));
        assert_eq!(f.on_request(&req("patch", "status")).fail, Some(500));
        assert_eq!(f.on_request(&req("patch", "status")).fail, None);
        assert_eq!(f.request_count("patch", "certificaterequests", "status"), 3);
        f.apply(serde_json::from_str(r#"{"action":"latency","millis":5}"#).unwrap());
        assert_eq!(
            f.on_request(&req("get", "")).delay,
            Duration::from_millis(5)
        );
        f.apply(FaultSpec::Clear);
        assert_eq!(f.on_request(&req("get", "")).delay, Duration::ZERO);
        let mut by_alice = req("patch", "status");
        by_alice.user = "alice".into();
        f.on_request(&by_alice);
        assert_eq!(f.request_counts_for("alice").len(), 1);
        assert_eq!(f.request_counts_for("alice")[0].count, 1);
        assert!(f.request_counts_for("bob").is_empty());
        f.apply(FaultSpec::ResetCounters);
        assert!(f.request_counts().is_empty());
        assert!(f.request_counts_for("alice").is_empty());
    }
}
