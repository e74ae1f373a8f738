//! Watch streams: initial state or history replay, live events, bookmarks, timeouts and 410 Gone.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use crate::error::{ApiError, ApiResult};
use crate::ops::present;
use crate::resources::ResourceDef;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{EventType, Store, WatchEvent};

/// Parameters of a watch request.
#[derive(Debug, Clone)]
pub struct WatchParams {
    /// Namespace filter (`None` = all).
    pub namespace: Option<String>,
    /// `resourceVersion` (`None` or 0 = start with the current state).
    pub resource_version: Option<u64>,
    /// `sendInitialEvents=true`.
    pub send_initial_events: bool,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout: Duration,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// Interval between periodic bookmarks.
    pub bookmark_interval: Duration,
    /// Strip objects to PartialObjectMetadata.
    pub metadata_only: bool,
}

struct Filter {
    def: Arc<ResourceDef>,
    version: String,
    p: WatchParams,
}

impl Filter {
    fn matches(&self, o: &Value) -> bool {
        self.p.labels.matches(o) && self.p.fields.matches(o)
    }
    fn line(&self, type_: &str, o: &Value) -> Bytes {
        let mut obj = present(&self.def, &self.version, o);
        if self.p.metadata_only {
            obj = crate::server::partial_metadata(&obj);
        }
        let mut s = serde_json::to_vec(&json!({"type": type_, "object": obj})).unwrap_or_default();
        s.push(b'\n');
        Bytes::from(s)
    }
    /// Translate a store event into what this watcher sees (selector transitions become ADDED/DELETED).
    fn translate(&self, ev: &WatchEvent) -> Option<Bytes> {
        if ev.key != self.def.storage_key() {
            return None;
        }
        if let Some(ns) = &self.p.namespace {
            if &ev.namespace != ns {
                return None;
            }
        }
        let now = self.matches(&ev.object);
        let t = match ev.type_ {
            EventType::Added | EventType::Deleted => now.then_some(ev.type_.as_str())?,
            EventType::Modified => {
                let before = ev.old.as_deref().is_some_and(|o| self.matches(o));
                match (before, now) {
                    (true, true) => "MODIFIED",
                    (false, true) => "ADDED",
                    (true, false) => "DELETED",
                    (false, false) => return None,
                }
            }
        };
        Some(self.line(t, &ev.object))
    }
    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.def.kind, "apiVersion": self.def.api_version(&self.version), "metadata": meta});
        let mut s =
            serde_json::to_vec(&json!({"type": "BOOKMARK", "object": obj})).unwrap_or_default();
        s.push(b'\n');
        Bytes::from(s)
    }
}

fn error_line(e: &ApiError) -> Bytes {
    let mut s =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.status()})).unwrap_or_default();
    s.push(b'\n');
    Bytes::from(s)
}

/// Start a watch; returns a receiver of newline-delimited JSON chunks.
pub fn start(
    store: &Arc<Store>,
    def: Arc<ResourceDef>,
    version: String,
    p: WatchParams,
    drop_signal: tokio::sync::watch::Receiver<u64>,
) -> ApiResult<mpsc::Receiver<Bytes>> {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let f = Filter { def, version, p };
    let mut initial: Vec<Bytes> = vec![];
    let (mut live, mut last_rv) = {
        let g = store.lock();
        let rv = f.p.resource_version.filter(|r| *r > 0);
        if let (Some(rv), false) = (rv, f.p.send_initial_events) {
            if rv < g.oldest_rv {
                let e =
                    ApiError::expired(format!("too old resource version: {rv} ({})", g.oldest_rv));
                initial.push(error_line(&e));
                drop(g);
                tokio::spawn(async move {
                    for b in initial {
                        let _ = tx.send(b).await;
                    }
                });
                return Ok(rx);
            }
            for ev in g.events_since(&f.def.storage_key(), rv) {
                if let Some(b) = f.translate(&ev) {
                    initial.push(b);
                }
            }
        } else {
            for (_, o) in g.iter(&f.def.storage_key(), f.p.namespace.as_deref()) {
                if f.matches(o) {
                    initial.push(f.line("ADDED", o));
                }
            }
            if f.p.send_initial_events {
                initial.push(f.bookmark(g.rv, true));
            }
        }
        (store.subscribe(), g.rv)
    };
    let mut drop_signal = drop_signal;
    drop_signal.borrow_and_update();
    tokio::spawn(async move {
        for b in initial {
            if tx.send(b).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(f.p.timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(f.p.bookmark_interval);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => {
                    if f.p.bookmarks {
                        let _ = tx.send(f.bookmark(last_rv, false)).await;
                    }
                    return;
                }
                _ = drop_signal.changed() => return,
                _ = tx.closed() => return,
                _ = tick.tick() => {
                    if f.p.bookmarks && tx.send(f.bookmark(last_rv, false)).await.is_err() {
                        return;
                    }
                }
                ev = live.recv() => match ev {
                    Ok(ev) => {
                        last_rv = last_rv.max(ev.rv);
                        if let Some(b) = f.translate(&ev) {
                            if tx.send(b).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let e = ApiError::expired(format!("too old resource version: {last_rv}"));
                        let _ = tx.send(error_line(&e)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    Ok(rx)
}
