//! Checked issuers, shared between the issuer controller (writer) and the request
//! controllers (readers), so requests never re-read Secrets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use futures::channel::mpsc;

use crate::api::issuer::IssuerKey;
use crate::signers::load::LoadedIssuer;

/// One checked issuer, valid for one generation of one object.
pub struct CachedIssuer {
    /// The issuer object's UID.
    pub uid: String,
    /// The generation that was checked.
    pub generation: i64,
    /// What the check loaded (shared with the blocking threads that issue with it).
    pub loaded: Arc<LoadedIssuer>,
}

/// The cache plus channels that announce issuers that became ready or changed signer.
#[derive(Default)]
pub struct IssuerCache {
    entries: RwLock<HashMap<IssuerKey, Arc<CachedIssuer>>>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<IssuerKey>>>,
    /// Issuers a request found broken (their CA refused our credentials), with why, until
    /// their next successful check.
    rechecks: Mutex<HashMap<IssuerKey, String>>,
    recheck_subscribers: Mutex<Vec<mpsc::UnboundedSender<IssuerKey>>>,
}

impl IssuerCache {
    /// Receive the key of every issuer that becomes ready or changes signer from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<IssuerKey> {
        let (tx, rx) = mpsc::unbounded();
        self.subscribers.lock().expect("cache lock").push(tx);
        rx
    }

    /// Receive the key of every issuer a request found broken (see [`IssuerCache::recheck`]).
    pub fn subscribe_rechecks(&self) -> mpsc::UnboundedReceiver<IssuerKey> {
        let (tx, rx) = mpsc::unbounded();
        self.recheck_subscribers
            .lock()
            .expect("cache lock")
            .push(tx);
        rx
    }

    /// A request found `key` broken: drop its checked state (no request signs with it until
    /// it passes a check again) and ask the issuer controller to check it now.
    pub fn recheck(&self, key: &IssuerKey, why: String) {
        self.entries.write().expect("cache lock").remove(key);
        self.rechecks
            .lock()
            .expect("cache lock")
            .insert(key.clone(), why);
        self.recheck_subscribers
            .lock()
            .expect("cache lock")
            .retain(|tx| tx.unbounded_send(key.clone()).is_ok());
    }

    /// Why `key` waits for a re-check a request asked for, if it does.
    pub fn recheck_reason(&self, key: &IssuerKey) -> Option<String> {
        self.rechecks.lock().expect("cache lock").get(key).cloned()
    }

    /// Whether `key` waits for a re-check a request asked for.
    pub fn recheck_pending(&self, key: &IssuerKey) -> bool {
        self.rechecks.lock().expect("cache lock").contains_key(key)
    }

    /// The entry for `key`, if its UID and generation match.
    pub fn get(&self, key: &IssuerKey, uid: &str, generation: i64) -> Option<Arc<CachedIssuer>> {
        self.entries
            .read()
            .expect("cache lock")
            .get(key)
            .filter(|e| e.uid == uid && e.generation == generation)
            .cloned()
    }

    /// Store a freshly checked issuer and announce it when it is new or its signer changed.
    pub fn put(&self, key: IssuerKey, entry: CachedIssuer) {
        let mut entries = self.entries.write().expect("cache lock");
        let changed = entries.get(&key).is_none_or(|old| {
            old.uid != entry.uid
                || old.generation != entry.generation
                || old.loaded.signer_info != entry.loaded.signer_info
                || old.loaded.anchors_pem != entry.loaded.anchors_pem
        });
        entries.insert(key.clone(), Arc::new(entry));
        drop(entries);
        self.rechecks.lock().expect("cache lock").remove(&key);
        if changed {
            self.subscribers
                .lock()
                .expect("cache lock")
                .retain(|tx| tx.unbounded_send(key.clone()).is_ok());
        }
    }

    /// Drop the entry (the issuer failed its check or was deleted).
    pub fn remove(&self, key: &IssuerKey) {
        self.entries.write().expect("cache lock").remove(key);
    }
}
