//! Fault injection (failures, latency, dropped watches, expired resourceVersions, periodic
//! faults, first-write conflicts) and request counters plus a timestamped request log.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// Authenticated user name (e.g. one controller replica of several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Matcher {
    fn matches(&self, r: &RequestInfo) -> bool {
        let m = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        m(&self.verb, &r.verb)
            && m(&self.resource, &r.resource)
            && m(&self.subresource, &r.subresource)
            && m(&self.namespace, &r.namespace)
            && m(&self.name, &r.name)
            && m(&self.user, &r.user)
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
        /// More codes: matching requests cycle through `code`, then these.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        also: Vec<u16>,
        /// Fail only the first matching request of each object (namespace/name).
        #[serde(default)]
        first_per_object: bool,
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
    /// Apply `fault` every `seconds` (first time after `seconds`) for `durationSeconds`
    /// (unbounded if absent); `Clear` stops it.
    #[serde(rename_all = "camelCase")]
    Every {
        /// Period.
        seconds: f64,
        /// How long to keep repeating.
        #[serde(default)]
        duration_seconds: Option<f64>,
        /// The fault to repeat (usually `dropWatches` or `expireResourceVersions`).
        fault: Box<FaultSpec>,
    },
    /// Remove all failure and latency rules and stop periodic faults.
    Clear,
    /// Reset the request counters.
    ResetCounters,
}

#[derive(Debug, Clone)]
struct Rule {
    matcher: Matcher,
    codes: Vec<u16>,
    next_code: usize,
    first_per_object: Option<HashSet<(String, String)>>,
    latency: Duration,
    remaining: Option<u64>,
    until: Option<Instant>,
}

impl Rule {
    fn failing(matcher: Matcher, codes: Vec<u16>, first_per_object: bool) -> Rule {
        Rule {
            matcher,
            codes,
            next_code: 0,
            first_per_object: first_per_object.then(HashSet::new),
            latency: Duration::ZERO,
            remaining: None,
            until: None,
        }
    }
}

/// One entry of the request log (`GET /testing/requests/log`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    /// Arrival time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Authenticated user.
    pub user: String,
    /// Verb.
    pub verb: String,
    /// Resource.
    pub resource: String,
    /// Subresource (`""` for the main resource).
    pub subresource: String,
    /// Namespace.
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// The injected failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected: Option<u16>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// The most requests in any one-second window (sliding, millisecond resolution) among `log`
/// entries that `keep` selects.
pub fn peak_per_second(log: &[LoggedRequest], keep: impl Fn(&LoggedRequest) -> bool) -> u64 {
    let mut times: Vec<u64> = log.iter().filter(|r| keep(r)).map(|r| r.at_ms).collect();
    times.sort_unstable();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= 1000 {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best as u64
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
    log: Mutex<Vec<LoggedRequest>>,
    periodic: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    drop_tx: tokio::sync::watch::Sender<u64>,
    store: Arc<Store>,
}

/// Entries kept in the request log; older ones are dropped.
const LOG_CAP: usize = 2_000_000;

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
                log: Mutex::new(Vec::new()),
                periodic: Mutex::new(Vec::new()),
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
        self.fail_with(matcher, vec![code], false, count, duration);
    }
    /// Fail matching requests cycling through `codes`; with `first_per_object` only the first
    /// matching request of each object fails.
    pub fn fail_with(
        &self,
        matcher: Matcher,
        codes: Vec<u16>,
        first_per_object: bool,
        count: Option<u64>,
        duration: Option<Duration>,
    ) {
        let mut rule = Rule::failing(matcher, codes, first_per_object);
        rule.remaining = count;
        rule.until = duration.map(|d| Instant::now() + d);
        self.st.rules.lock().push(rule);
    }
    /// Delay matching requests by `latency` for `count` requests and/or `duration`.
    pub fn add_latency(
        &self,
        matcher: Matcher,
        latency: Duration,
        count: Option<u64>,
        duration: Option<Duration>,
    ) {
        let mut rule = Rule::failing(matcher, vec![], false);
        rule.latency = latency;
        rule.remaining = count;
        rule.until = duration.map(|d| Instant::now() + d);
        self.st.rules.lock().push(rule);
    }
    /// Remove all failure/latency rules and stop periodic faults.
    pub fn clear(&self) {
        self.st.rules.lock().clear();
        for t in self.st.periodic.lock().drain(..) {
            t.abort();
        }
    }
    /// Apply `fault` every `period` for `duration` (unbounded if `None`) from a background task
    /// (needs a Tokio runtime); [`FaultInjector::clear`] stops it.
    pub fn every(&self, period: Duration, duration: Option<Duration>, fault: FaultSpec) {
        let me = self.clone();
        let end = duration.map(|d| tokio::time::Instant::now() + d);
        let period = period.max(Duration::from_millis(10));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                let at = tick.tick().await;
                if end.is_some_and(|e| at > e) {
                    return;
                }
                me.apply(fault.clone());
            }
        });
        let mut periodic = self.st.periodic.lock();
        periodic.retain(|t| !t.is_finished());
        periodic.push(task);
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
                also,
                first_per_object,
                count,
                duration_seconds,
            } => {
                let codes = std::iter::once(code).chain(also).collect();
                self.fail_with(
                    matcher,
                    codes,
                    first_per_object,
                    count,
                    dur(duration_seconds),
                )
            }
            FaultSpec::Every {
                seconds,
                duration_seconds,
                fault,
            } => self.every(
                Duration::from_secs_f64(seconds.max(0.01)),
                dur(duration_seconds),
                *fault,
            ),
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
            let fails = !rule.codes.is_empty();
            if fails && d.fail.is_some() {
                continue;
            }
            if let Some(seen) = rule.first_per_object.as_mut() {
                if !seen.insert((r.namespace.clone(), r.name.clone())) {
                    continue;
                }
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            if fails {
                d.fail = Some(rule.codes[rule.next_code % rule.codes.len()]);
                rule.next_code += 1;
            } else {
                d.delay += rule.latency;
            }
        }
        drop(rules);
        let mut log = self.st.log.lock();
        if log.len() >= LOG_CAP {
            log.drain(..LOG_CAP / 2);
        }
        log.push(LoggedRequest {
            at_ms: now_ms(),
            user: r.user.clone(),
            verb: r.verb.clone(),
            resource: r.resource.clone(),
            subresource: r.subresource.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            injected: d.fail,
        });
        d
    }
    /// The request log (every request that reached fault injection, oldest first).
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.st.log.lock().clone()
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
    /// Reset the request counters and the request log.
    pub fn reset_counters(&self) {
        self.st.counts.lock().clear();
        self.st.user_counts.lock().clear();
        self.st.log.lock().clear();
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
        assert!(f.request_log().is_empty());
    }

    #[test]
    fn first_write_per_object_cycled_codes_and_users() {
        let f = FaultInjector::new(Arc::new(Store::new(Default::default(), 10)));
        let spec: FaultSpec = serde_json::from_str(
            r#"{"action":"fail","subresource":"status","code":409,"firstPerObject":true}"#,
        )
        .unwrap();
        f.apply(spec);
        let named = |name: &str| RequestInfo {
            name: name.into(),
            ..req("patch", "status")
        };
        assert_eq!(f.on_request(&named("a")).fail, Some(409));
        assert_eq!(f.on_request(&named("a")).fail, None, "only the first write");
        assert_eq!(f.on_request(&named("b")).fail, Some(409));
        f.clear();
        f.apply(
            serde_json::from_str(r#"{"action":"fail","code":500,"also":[429],"user":"x"}"#)
                .unwrap(),
        );
        let by = |user: &str| RequestInfo {
            user: user.into(),
            ..req("get", "")
        };
        assert_eq!(f.on_request(&by("x")).fail, Some(500));
        assert_eq!(f.on_request(&by("x")).fail, Some(429));
        assert_eq!(f.on_request(&by("x")).fail, Some(500));
        assert_eq!(f.on_request(&by("y")).fail, None, "other users pass");
        let log = f.request_log();
        assert_eq!(log.len(), 7);
        assert_eq!(log[3].injected, Some(500));
        assert_eq!(peak_per_second(&log, |r| r.user == "x"), 3);
    }

    #[test]
    fn peak_is_a_sliding_one_second_window() {
        let at = |ms: u64| LoggedRequest {
            at_ms: ms,
            user: String::new(),
            verb: String::new(),
            resource: String::new(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
            injected: None,
        };
        let log: Vec<_> = [0, 100, 900, 1000, 1050, 1899, 3000].map(at).into();
        assert_eq!(peak_per_second(&log, |_| true), 4);
        assert_eq!(peak_per_second(&[], |_| true), 0);
    }

    #[tokio::test]
    async fn periodic_fault_repeats_until_cleared() {
        let f = FaultInjector::new(Arc::new(Store::new(Default::default(), 10)));
        let mut rx = f.drop_receiver();
        f.apply(
            serde_json::from_str(
                r#"{"action":"every","seconds":0.02,"fault":{"action":"dropWatches"}}"#,
            )
            .unwrap(),
        );
        for _ in 0..3 {
            tokio::time::timeout(Duration::from_secs(5), rx.changed())
                .await
                .expect("a drop within 5 s")
                .unwrap();
        }
        f.clear();
        tokio::time::sleep(Duration::from_millis(50)).await;
        rx.borrow_and_update();
        assert!(
            tokio::time::timeout(Duration::from_millis(200), rx.changed())
                .await
                .is_err(),
            "no drops after clear"
        );
    }
}
