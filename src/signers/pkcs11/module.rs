//! One initialised context per PKCS#11 module path, process-wide, and finding a token's slot
//! (re-initialising the module when a token came back).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::Slot;

use super::token::any_logged_in;
use super::Pkcs11Error;

/// A module is re-initialised (to find a token that came back) at most this often.
const REINIT_EVERY: Duration = Duration::from_secs(5);

static MODULES: LazyLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = LazyLock::new(Default::default);

/// One loaded, initialised PKCS#11 module. Every call holds `ctx` for reading; re-initialising
/// (C_Finalize + C_Initialize, to find a token that was removed and came back) holds it for
/// writing, so no call ever runs on a handle of a finished context.
pub struct Module {
    pub(super) path: PathBuf,
    ctx: RwLock<Ctx>,
    /// Labels of tokens found in this module so far.
    found: Mutex<std::collections::HashSet<String>>,
}

pub(super) struct Ctx {
    pub(super) pkcs11: Pkcs11,
    /// Bumped by every re-initialisation: sessions, logins and object handles of an older
    /// epoch are gone.
    pub(super) epoch: u64,
    last_init: Instant,
}

fn init_args() -> CInitializeArgs {
    CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)
}

/// The module at `path`, loaded and initialised once per process. The caller has checked the
/// path against the operator's allowlist.
pub fn module(path: &Path) -> Result<Arc<Module>, Pkcs11Error> {
    let mut modules = MODULES.lock().expect("modules lock");
    if let Some(m) = modules.get(path) {
        return Ok(m.clone());
    }
    let pkcs11 = Pkcs11::new(path).map_err(|e| Pkcs11Error::Module(e.to_string()))?;
    match pkcs11.initialize(init_args()) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(Pkcs11Error::Module(e.to_string())),
    }
    let m = Arc::new(Module {
        path: path.to_path_buf(),
        ctx: RwLock::new(Ctx {
            pkcs11,
            epoch: 0,
            last_init: Instant::now(),
        }),
        found: Mutex::default(),
    });
    modules.insert(path.to_path_buf(), m.clone());
    Ok(m)
}

impl Module {
    pub(super) fn read(&self) -> RwLockReadGuard<'_, Ctx> {
        self.ctx.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot holding the token labelled `label`. When no slot has it, the module is
    /// re-initialised (at most every few seconds; many modules see a token that was removed
    /// and came back, or one made after C_Initialize, only then), but only if that disturbs
    /// nobody: the token was found before (it went away: its issuers are broken anyway), or no
    /// token of the module is logged in. A mistyped label never logs other issuers out.
    pub(super) fn find_slot(&self, label: &str) -> Result<(Slot, u64), Pkcs11Error> {
        {
            let ctx = self.read();
            if let Some(slot) = slot_with_label(&ctx.pkcs11, label)? {
                self.found_label(label);
                return Ok((slot, ctx.epoch));
            }
        }
        let known = self.found.lock().expect("found lock").contains(label);
        let may_reinit = known || !any_logged_in(&self.path);
        let mut ctx = self.ctx.write().unwrap_or_else(|e| e.into_inner());
        if may_reinit && ctx.last_init.elapsed() >= REINIT_EVERY {
            tracing::info!(module = %self.path.display(), token = label, "token not found; re-initialising the PKCS#11 module");
            let _ = ctx.pkcs11.clone().finalize();
            ctx.pkcs11
                .initialize(init_args())
                .map_err(|e| Pkcs11Error::Module(e.to_string()))?;
            ctx.epoch += 1;
            ctx.last_init = Instant::now();
        }
        match slot_with_label(&ctx.pkcs11, label)? {
            Some(slot) => {
                self.found_label(label);
                Ok((slot, ctx.epoch))
            }
            None => Err(Pkcs11Error::TokenNotFound(label.to_string())),
        }
    }

    fn found_label(&self, label: &str) {
        let mut found = self.found.lock().expect("found lock");
        if !found.contains(label) && found.len() < 1024 {
            found.insert(label.to_string());
        }
    }
}

fn slot_with_label(pkcs11: &Pkcs11, label: &str) -> Result<Option<Slot>, Pkcs11Error> {
    let slots = pkcs11.get_slots_with_token().map_err(Pkcs11Error::token)?;
    for slot in slots.into_iter().take(1024) {
        match pkcs11.get_token_info(slot) {
            Ok(info) if info.label().trim_end() == label => return Ok(Some(slot)),
            Ok(_) => {}
            // A slot whose token just went away.
            Err(_) => {}
        }
    }
    Ok(None)
}

/// Whether the module at `path` was ever loaded by this process.
pub fn is_loaded(path: &Path) -> bool {
    MODULES.lock().expect("modules lock").contains_key(path)
}
