//! The in-memory object store: one lock, one global resourceVersion counter, a bounded event history
//! and a broadcast channel feeding watches.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::resources::{Registry, StorageKey};
use crate::util::meta_mut;

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A change to one object, as recorded in history and sent to watchers.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// resourceVersion of this change.
    pub rv: u64,
    /// Storage key of the resource type.
    pub key: StorageKey,
    /// Namespace of the object (`""` for cluster-scoped).
    pub namespace: String,
    /// Event type.
    pub type_: EventType,
    /// The object after the change (for DELETED: its final state).
    pub object: Arc<Value>,
    /// The object before the change (MODIFIED only), used for selector transitions.
    pub old: Option<Arc<Value>>,
}

/// `(namespace, name)`.
pub type ObjKey = (String, String);

/// Mutable state behind the store lock.
#[derive(Debug)]
pub struct Inner {
    /// Last issued resourceVersion.
    pub rv: u64,
    /// Objects by resource type, ordered by (namespace, name).
    pub objects: HashMap<StorageKey, BTreeMap<ObjKey, Arc<Value>>>,
    /// Recent events, oldest first.
    pub history: VecDeque<Arc<WatchEvent>>,
    /// Watches/continues from a resourceVersion below this get 410 Gone.
    pub oldest_rv: u64,
    /// Resource types.
    pub registry: Registry,
    history_cap: usize,
    tx: broadcast::Sender<Arc<WatchEvent>>,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<WatchEvent>>,
}

impl Store {
    /// New store with the given registry and event-history window.
    pub fn new(registry: Registry, history_cap: usize) -> Store {
        let (tx, _) = broadcast::channel(16384);
        Store {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: HashMap::new(),
                history: VecDeque::new(),
                oldest_rv: 1,
                registry,
                history_cap,
                tx: tx.clone(),
            }),
            tx,
        }
    }
    /// Lock the store.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock()
    }
    /// Subscribe to live events (call while holding the lock to avoid gaps).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.tx.subscribe()
    }
}

impl Inner {
    /// Get an object.
    pub fn get(&self, key: &StorageKey, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(key)?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }
    /// Iterate objects of a type, optionally within one namespace, starting after `after`.
    pub fn iter<'a>(
        &'a self,
        key: &StorageKey,
        ns: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = (&'a ObjKey, &'a Arc<Value>)> + 'a> {
        let Some(m) = self.objects.get(key) else {
            return Box::new(std::iter::empty());
        };
        match ns {
            Some(ns) => Box::new(
                m.range((ns.to_string(), String::new())..)
                    .take_while(move |((n, _), _)| n == ns),
            ),
            None => Box::new(m.iter()),
        }
    }
    /// Store an object (create or update), bumping the resourceVersion and emitting an event.
    pub fn put(&mut self, key: &StorageKey, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        let ns = crate::util::meta_str(&obj, "namespace")
            .unwrap_or_default()
            .to_string();
        let name = crate::util::meta_str(&obj, "name")
            .unwrap_or_default()
            .to_string();
        let obj = Arc::new(obj);
        let old = self
            .objects
            .entry(key.clone())
            .or_default()
            .insert((ns.clone(), name), obj.clone());
        let type_ = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(WatchEvent {
            rv,
            key: key.clone(),
            namespace: ns,
            type_,
            object: obj.clone(),
            old,
        });
        obj
    }
    /// Remove an object, emitting DELETED with `last` (its final state) at a new resourceVersion.
    pub fn remove(
        &mut self,
        key: &StorageKey,
        ns: &str,
        name: &str,
        mut last: Value,
    ) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        meta_mut(&mut last).insert("resourceVersion".into(), json!(rv.to_string()));
        if let Some(m) = self.objects.get_mut(key) {
            m.remove(&(ns.to_string(), name.to_string()));
        }
        let obj = Arc::new(last);
        self.emit(WatchEvent {
            rv,
            key: key.clone(),
            namespace: ns.into(),
            type_: EventType::Deleted,
            object: obj.clone(),
            old: None,
        });
        obj
    }
    fn emit(&mut self, ev: WatchEvent) {
        let ev = Arc::new(ev);
        self.history.push_back(ev.clone());
        while self.history.len() > self.history_cap {
            if let Some(e) = self.history.pop_front() {
                self.oldest_rv = e.rv;
            }
        }
        let _ = self.tx.send(ev);
    }
    /// Forget all history: any resourceVersion older than the current one becomes "too old".
    pub fn compact(&mut self) {
        self.history.clear();
        self.rv += 1;
        self.oldest_rv = self.rv;
    }
    /// Events after `rv` for a type (caller checked `rv >= oldest_rv`).
    pub fn events_since(&self, key: &StorageKey, rv: u64) -> Vec<Arc<WatchEvent>> {
        let start = self.history.partition_point(|e| e.rv <= rv);
        self.history
            .range(start..)
            .filter(|e| &e.key == key)
            .cloned()
            .collect()
    }
    /// Does a namespace exist (and is it not terminating)? `None` = missing, `Some(false)` = terminating.
    pub fn namespace_active(&self, ns: &str) -> Option<bool> {
        let o = self.get(&(String::new(), "namespaces".into()), "", ns)?;
        Some(o.pointer("/metadata/deletionTimestamp").is_none())
    }
    /// All objects (across types) whose ownerReferences include `uid`, restricted to `ns` if set.
    pub fn dependents(&self, uid: &str, ns: Option<&str>) -> Vec<(StorageKey, ObjKey, Arc<Value>)> {
        let mut out = vec![];
        for (key, m) in &self.objects {
            for (ok, o) in m {
                if ns.is_some_and(|n| n != ok.0) {
                    continue;
                }
                let owned = o
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                    });
                if owned {
                    out.push((key.clone(), ok.clone(), o.clone()));
                }
            }
        }
        out
    }
    /// Is there a live object with this uid (used by the garbage collector for other owners)?
    pub fn uid_exists(&self, owner: &Value, ns: &str) -> bool {
        let uid = owner.get("uid").and_then(Value::as_str).unwrap_or_default();
        let kind = owner
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = owner
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let group = owner
            .get("apiVersion")
            .and_then(Value::as_str)
            .and_then(|a| a.rsplit_once('/'))
            .map(|(g, _)| g)
            .unwrap_or("");
        let Some(def) = self.registry.by_kind(group, kind) else {
            return false;
        };
        let ons = if def.namespaced { ns } else { "" };
        self.get(&def.storage_key(), ons, name)
            .is_some_and(|o| crate::util::meta_str(&o, "uid") == Some(uid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StorageKey {
        (String::new(), "configmaps".into())
    }

    #[test]
    fn put_remove_history_and_compaction() {
        let store = Store::new(Registry::default(), 3);
        let mut rx = store.subscribe();
        let mut g = store.lock();
        let a = g.put(
            &key(),
            json!({"metadata": {"name": "a", "namespace": "ns"}}),
        );
        assert_eq!(a["metadata"]["resourceVersion"], "2");
        g.put(
            &key(),
            json!({"metadata": {"name": "b", "namespace": "ns"}}),
        );
        g.put(
            &key(),
            json!({"metadata": {"name": "a", "namespace": "ns"}, "x": 1}),
        );
        g.remove(
            &key(),
            "ns",
            "b",
            json!({"metadata": {"name": "b", "namespace": "ns"}}),
        );
        assert_eq!(g.rv, 5);
        // History window of 3: the first event fell out.
        assert_eq!(g.oldest_rv, 2);
        let since: Vec<_> = g
            .events_since(&key(), 3)
            .iter()
            .map(|e| (e.rv, e.type_))
            .collect();
        assert_eq!(
            since,
            vec![(4, EventType::Modified), (5, EventType::Deleted)]
        );
        assert_eq!(g.iter(&key(), Some("ns")).count(), 1);
        assert_eq!(g.iter(&key(), Some("other")).count(), 0);
        g.compact();
        assert_eq!(g.oldest_rv, 6);
        assert_eq!(g.rv, 6);
        drop(g);
        assert_eq!(rx.try_recv().unwrap().type_, EventType::Added);
    }
}
