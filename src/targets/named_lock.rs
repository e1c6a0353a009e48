//! One at a time across every worker sharing the ledger, and every task of this process: a
//! customer or contact looked up, then created, is created once however many workers meet it
//! together ([`one_at_a_time`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use crate::ledger::Ledger;
use crate::targets::TargetError;

/// Locks of this process by name, each shared by whoever asks for that name.
pub(crate) type Locks =
    std::sync::OnceLock<std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// The lock of `name` in `locks` (made on first use). Names no one holds or waits for any more
/// are dropped, so the map keeps only those in use.
pub(crate) fn keyed(locks: &'static Locks, name: &str) -> Arc<tokio::sync::Mutex<()>> {
    let map = locks.get_or_init(Default::default);
    let mut m = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    m.retain(|_, l| Arc::strong_count(l) > 1);
    Arc::clone(m.entry(name.to_owned()).or_default())
}

/// This process's lock of `name` (a task waits for another of this process; the ledger's lock
/// is one per session, so it does not tell two tasks of one process apart).
fn local(name: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: Locks = std::sync::OnceLock::new();
    keyed(&LOCKS, name)
}

/// Lets go of the ledger's lock when dropped (a cancelled task included).
struct Held<'a> {
    ledger: &'a dyn Ledger,
    name: &'a str,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.ledger.unlock_name(self.name);
    }
}

/// Runs `work` holding the lock `name`: this process's, then the ledger's across the workers
/// sharing it ([`Ledger::lock_name`]).
///
/// # Errors
///
/// The ledger's lock cannot be taken.
pub async fn one_at_a_time<T>(
    ledger: &dyn Ledger,
    name: &str,
    work: impl Future<Output = T>,
) -> Result<T, TargetError> {
    let local = local(name);
    let _mine = local.lock().await;
    ledger.lock_name(name)?;
    let _held = Held { ledger, name };
    Ok(work.await)
}

/// Runs `work` holding the lock `name` if no one holds it (another task of this process or
/// another worker): `None`, and nothing run, when someone does.
///
/// # Errors
///
/// The ledger's lock cannot be asked for.
pub(crate) async fn if_free<T>(
    ledger: &dyn Ledger,
    name: &str,
    work: impl Future<Output = T>,
) -> Result<Option<T>, TargetError> {
    let local = local(name);
    let Ok(_mine) = local.try_lock() else {
        return Ok(None);
    };
    if !ledger.try_lock_name(name)? {
        return Ok(None);
    }
    let _held = Held { ledger, name };
    Ok(Some(work.await))
}
