//! PKCS#11 tokens, process-wide: one bounded pool of logged-in read-only sessions per token
//! (of a [`Module`]). Every call here blocks: callers run
//! on blocking threads (the issuer check's [`crate::cpu::check`], a request's job).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, LazyLock, Mutex, RwLockReadGuard};
use std::time::{Duration, Instant};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::module::Ctx;
pub use super::module::{is_loaded, module, Module};
use super::Pkcs11Error;
use crate::pki::redacted::Redacted;

/// Sessions one token may have open; more signers wait for one (bounded, see [`SESSION_WAIT`]).
pub const MAX_SESSIONS_PER_TOKEN: usize = 8;
/// How long a signer waits for a free session before the request is retried.
pub const SESSION_WAIT: Duration = Duration::from_secs(10);
/// Tokens by module path and label.
type Tokens = HashMap<(PathBuf, String), Arc<Token>>;
static TOKENS: LazyLock<Mutex<Tokens>> = LazyLock::new(Default::default);
/// Keys the PIN fingerprints: a PIN is compared, never kept.
static PIN_MAC_KEY: LazyLock<[u8; 32]> = LazyLock::new(rand::random);

/// Whether any token of the module at `path` is logged in (its issuers are working).
pub(super) fn any_logged_in(path: &Path) -> bool {
    let tokens: Vec<Arc<Token>> = TOKENS
        .lock()
        .expect("tokens lock")
        .iter()
        .filter(|((p, _), _)| p == path)
        .map(|(_, t)| t.clone())
        .collect();
    tokens.iter().any(|t| t.lock().logged_in.is_some())
}

/// One token of one module: a bounded pool of logged-in read-only sessions.
pub struct Token {
    /// The module.
    pub module: Arc<Module>,
    /// The token label.
    pub label: String,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Default)]
struct State {
    /// The slot and the module epoch it was found in; `None` until found or after a failure.
    slot: Option<(Slot, u64)>,
    idle: Vec<Session>,
    open: usize,
    /// The fingerprint of the PIN the token is logged in with.
    logged_in: Option<[u8; 32]>,
    /// The fingerprint of a PIN the token refused and why: not tried again (tokens lock a PIN
    /// after a few failures) until the PIN Secret changes.
    refused: Option<([u8; 32], String)>,
}

/// A fingerprint of a PIN (HMAC with a key of this process), to compare PINs without keeping one.
pub fn pin_mac(pin: &Redacted<String>) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(&*PIN_MAC_KEY).expect("any key length");
    mac.update(pin.expose().as_bytes());
    mac.finalize().into_bytes().into()
}

/// The token labelled `label` in `module` (one per process).
pub fn token(module: Arc<Module>, label: &str) -> Arc<Token> {
    let mut tokens = TOKENS.lock().expect("tokens lock");
    tokens
        .entry((module.path.clone(), label.to_string()))
        .or_insert_with(|| {
            Arc::new(Token {
                module,
                label: label.to_string(),
                state: Mutex::new(State::default()),
                freed: Condvar::new(),
            })
        })
        .clone()
}

/// A session lent from a token's pool; given back when dropped (or discarded after a failure).
pub struct Lease<'a> {
    token: &'a Token,
    session: Option<Session>,
    /// The module's context, held for reading while the session is in use.
    ctx: RwLockReadGuard<'a, Ctx>,
    epoch: u64,
}

impl Lease<'_> {
    /// The session.
    pub fn session(&self) -> &Session {
        self.session.as_ref().expect("present until dropped")
    }

    /// The module epoch the session belongs to (object handles are valid within it).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Close the session instead of pooling it, and forget the token's slot and login: the
    /// next issuer check finds the token again.
    pub fn discard(mut self) {
        if let Some(s) = self.session.take() {
            drop(s);
        }
        let mut st = self.token.lock();
        st.open = st.open.saturating_sub(1);
        st.slot = None;
        st.logged_in = None;
        close_sessions(&mut st);
        self.token.freed.notify_all();
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let mut st = self.token.lock();
            if st.slot.is_some_and(|(_, e)| e == self.epoch) && st.logged_in.is_some() {
                st.idle.push(s);
            } else {
                st.open = st.open.saturating_sub(1);
                drop(s);
            }
            self.token.freed.notify_one();
        }
        let _ = &self.ctx;
    }
}

impl Token {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Find the token and log in with `pin` unless it is logged in with that PIN already (the
    /// issuer check). A PIN the token refused is not tried again.
    pub fn login(&self, pin: &Redacted<String>) -> Result<(), Pkcs11Error> {
        let mac = pin_mac(pin);
        {
            let st = self.lock();
            if let Some((_, why)) = st.refused.as_ref().filter(|(m, _)| *m == mac) {
                return Err(Pkcs11Error::PinRefused(format!(
                    "{why}; this PIN is not tried again until the PIN Secret changes"
                )));
            }
        }
        let current_epoch = self.module.read().epoch;
        let found = self.lock().slot.filter(|(_, e)| *e == current_epoch);
        let (slot, epoch) = match found {
            Some(s) => s,
            None => self.module.find_slot(&self.label)?,
        };
        let ctx = self.module.read();
        if ctx.epoch != epoch {
            return Err(Pkcs11Error::Token(
                "the module was re-initialised; try again".into(),
            ));
        }
        let mut st = self.lock();
        if st.slot != Some((slot, epoch)) {
            // A new slot or epoch: sessions of the old one are gone.
            forget_sessions(&mut st);
            st.logged_in = None;
        }
        st.slot = Some((slot, epoch));
        if st.logged_in == Some(mac) {
            // Still logged in? A cheap call on an idle session says.
            if let Some(s) = st.idle.last() {
                match s.get_session_info().map(|i| i.session_state()) {
                    Ok(SessionState::RoUser | SessionState::RwUser) => return Ok(()),
                    _ => {
                        forget_sessions(&mut st);
                        st.logged_in = None;
                    }
                }
            } else if st.open > 0 {
                return Ok(());
            }
        }
        if st.logged_in.is_some() {
            // Another PIN (rotated): log the application out of the token (every session).
            if let Some(s) = st.idle.last() {
                let _ = s.logout();
            }
            close_sessions(&mut st);
            st.logged_in = None;
        }
        let session = ctx
            .pkcs11
            .open_ro_session(slot)
            .map_err(Pkcs11Error::token)?;
        let pin_value = AuthPin::new(pin.expose().clone().into());
        // Already logged in (by a login this pool forgot): log out and in again, so this PIN
        // is really checked.
        let login = match session.login(UserType::User, Some(&pin_value)) {
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                let _ = session.logout();
                session.login(UserType::User, Some(&pin_value))
            }
            other => other,
        };
        match login {
            Ok(()) => {}
            Err(CkError::Pkcs11(rv @ (RvError::PinIncorrect | RvError::PinLenRange), _)) => {
                let why = format!("the token refused the PIN ({rv:?})");
                st.refused = Some((mac, why.clone()));
                return Err(Pkcs11Error::PinRefused(why));
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                return Err(Pkcs11Error::PinRefused(
                    "the token's user PIN is locked (CKR_PIN_LOCKED)".into(),
                ));
            }
            Err(e) => return Err(Pkcs11Error::token(e)),
        }
        st.refused = None;
        st.logged_in = Some(mac);
        st.open += 1;
        st.idle.push(session);
        self.freed.notify_all();
        Ok(())
    }

    /// Whether the token is logged in with the PIN of fingerprint `mac`.
    pub fn logged_in_with(&self, mac: &[u8; 32]) -> bool {
        self.lock().logged_in.as_ref() == Some(mac)
    }

    /// Borrow a logged-in session, waiting at most [`SESSION_WAIT`] for one.
    pub fn lease(&self) -> Result<Lease<'_>, Pkcs11Error> {
        let deadline = Instant::now() + SESSION_WAIT;
        let ctx = self.module.read();
        let mut st = self.lock();
        loop {
            let Some((slot, epoch)) = st.slot.filter(|(_, e)| *e == ctx.epoch) else {
                return Err(Pkcs11Error::Token(format!(
                    "token {:?} is not available (not found or reset since the issuer check)",
                    self.label
                )));
            };
            if st.logged_in.is_none() {
                return Err(Pkcs11Error::Token(format!(
                    "token {:?} is not logged in",
                    self.label
                )));
            }
            let session = match st.idle.pop() {
                Some(session) => Some(session),
                // Sessions of a logged-in application are logged in too.
                None if st.open < MAX_SESSIONS_PER_TOKEN => {
                    let session = ctx
                        .pkcs11
                        .open_ro_session(slot)
                        .map_err(Pkcs11Error::token)?;
                    st.open += 1;
                    Some(session)
                }
                None => None,
            };
            if session.is_some() {
                drop(st);
                return Ok(Lease {
                    token: self,
                    session,
                    ctx,
                    epoch,
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Pkcs11Error::Busy(format!(
                    "all {MAX_SESSIONS_PER_TOKEN} sessions of token {:?} stayed busy for {}s",
                    self.label,
                    SESSION_WAIT.as_secs()
                )));
            }
            st = self
                .freed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Sessions open now (for tests and the bound).
    pub fn open_sessions(&self) -> usize {
        self.lock().open
    }
}

/// Close the pooled sessions (same context epoch: their handles are still this process's).
fn close_sessions(st: &mut State) {
    let n = st.idle.len();
    st.idle.clear();
    st.open = st.open.saturating_sub(n);
}

/// Drop the pooled sessions without closing them one by one (their slot or context is gone,
/// or `C_CloseAllSessions` closed them; a stale handle must never close a newer session).
fn forget_sessions(st: &mut State) {
    for s in st.idle.drain(..) {
        std::mem::forget(s);
    }
    st.open = 0;
    st.logged_in = None;
}
