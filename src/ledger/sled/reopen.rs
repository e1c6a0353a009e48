//! Opening sled's folder when this same process closed it a moment ago. sled releases its
//! exclusive file lock only when its last background thread lets go of the database, shortly
//! after the last handle is dropped; a reopen in between would read as "in use by another
//! process". So a folder this process has opened before is retried for a bounded time, while a
//! folder that another process holds is reported at once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a reopen waits for this process's own previous handle to let go.
const RELEASE_WAIT: Duration = Duration::from_secs(5);
const STEP: Duration = Duration::from_millis(10);

/// Ledger folders this process has opened (canonical paths).
fn opened() -> &'static Mutex<HashSet<PathBuf>> {
    static OPENED: std::sync::OnceLock<Mutex<HashSet<PathBuf>>> = std::sync::OnceLock::new();
    OPENED.get_or_init(|| Mutex::new(HashSet::new()))
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// True when sled failed because another handle holds the folder's lock.
pub(super) fn is_lock_error(e: &::sled::Error) -> bool {
    matches!(e, ::sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock"))
}

/// Runs `open` until it succeeds, fails for another reason than the lock, or — for a folder
/// this process opened before — the bounded wait runs out; a folder never opened here is tried
/// once.
pub(super) fn open_with_wait<T>(
    path: &Path,
    mut open: impl FnMut() -> Result<T, ::sled::Error>,
) -> Result<T, ::sled::Error> {
    let key = canonical(path);
    let ours = opened().lock().map(|s| s.contains(&key)).unwrap_or(false);
    let deadline = Instant::now() + RELEASE_WAIT;
    loop {
        match open() {
            Ok(db) => {
                if let Ok(mut s) = opened().lock() {
                    s.insert(key);
                }
                return Ok(db);
            }
            Err(e) if ours && is_lock_error(&e) && Instant::now() < deadline => {
                std::thread::sleep(STEP)
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::sled::SledLedger;
    use crate::ledger::{Ledger, Record, RecordKey};

    #[test]
    fn a_ledger_closed_by_this_process_opens_again_at_once() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..30 {
            let l = SledLedger::open(dir.path()).unwrap();
            let key = RecordKey {
                job: "j".into(),
                target: "t".into(),
                doc_id: format!("d{i}"),
            };
            l.put_records(&[Record::new(key, chrono::Utc::now())])
                .unwrap();
        }
    }
}
