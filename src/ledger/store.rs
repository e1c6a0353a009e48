//! The thin store under the ledger: bytes by key, prefix scans, atomic write batches, a flush,
//! counters and the kept batch files. It knows nothing of records or states (the ledger's rules,
//! in `rules`, do); sled is the embedded store, [`MemStore`] the one for tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{LedgerError, Result};

/// Key-value pairs of a prefix scan, in key order.
pub type Scan<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a>;

/// Writes applied together, all or none; a later write of a key wins over an earlier one.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), Some(value.into())));
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), None));
    }

    /// The writes, in the order they were made (`None`: a removal).
    pub fn into_ops(self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.ops
    }
}

/// What a ledger backend provides. Every write is visible to the next read at once; it is
/// durable once [`Store::flush`] returns.
pub trait Store: Send + Sync + 'static {
    /// Where the store lives, for messages.
    fn location(&self) -> &Path;

    /// The value of `key`.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The values of several keys, in their order: one call where the store can (a database),
    /// else one [`Store::get`] each.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    /// Every key starting with `prefix`, with its value, in key order.
    fn scan(&self, prefix: &[u8]) -> Scan<'_>;

    /// Applies the batch atomically: after a crash, all of it or none of it is there.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn apply(&self, batch: WriteBatch) -> Result<()>;

    /// Makes every write so far durable.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn flush(&self) -> Result<()>;

    /// Atomically adds one to the counter at `key` (a big-endian `u64`, 0 when absent) and
    /// returns the new value. Durable with the next flush.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn increment(&self, key: &[u8]) -> Result<u64>;

    /// Keeps the exact bytes of batch `id`'s file, durable before it returns.
    ///
    /// # Errors
    ///
    /// The copy failed.
    fn put_blob(&self, id: u64, file: &mut dyn std::io::Read) -> Result<()>;

    /// The bytes kept for batch `id`.
    ///
    /// # Errors
    ///
    /// None kept, or the read failed.
    fn blob(&self, id: u64) -> Result<Vec<u8>>;

    /// Drops what is kept for batch `id`, a copy interrupted half-way included; best effort.
    fn remove_blob(&self, id: u64);

    /// Its size on disk, when it has one of its own (a database server's is the operator's).
    fn size_on_disk(&self) -> Option<u64> {
        None
    }

    /// Makes this process the ledger's only writer, across processes, until
    /// [`Store::unlock_writes`]: the ledger's rules read, then write, the records and their
    /// indexes under it. A store several processes share (a database) takes its lock; one a
    /// process holds alone (sled's folder, memory) has nothing to do.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn lock_writes(&self) -> Result<()> {
        Ok(())
    }

    /// Ends what [`Store::lock_writes`] began; best effort (a lost connection ended it already).
    fn unlock_writes(&self) {}

    /// Takes the lock `name` across the processes sharing the store, waiting for it (a
    /// customer created once however many workers meet it); nothing to do for a store one
    /// process holds alone.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn lock_name(&self, _name: &str) -> Result<()> {
        Ok(())
    }

    /// Lets go of what [`Store::lock_name`] took; best effort.
    fn unlock_name(&self, _name: &str) {}

    /// [`Store::lock_name`] if no other process holds it, without waiting.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn try_lock_name(&self, _name: &str) -> Result<bool> {
        Ok(true)
    }

    /// This process's worker id in a store several processes share.
    fn worker(&self) -> Option<String> {
        None
    }

    /// Whether the worker `id` still holds the store ([`Store::worker`]).
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn worker_alive(&self, _id: &str) -> Result<bool> {
        Ok(false)
    }

    /// The ids of the live workers sharing the store, this one among them, in order; empty for
    /// a store one process holds alone.
    ///
    /// # Errors
    ///
    /// Storage failure.
    fn workers(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// A [`Store`] in memory (a `BTreeMap` behind a mutex), for tests: clones share the data, so a
/// ledger opened again on a clone sees what the last one left, as after a restart.
/// [`MemStore::as_worker`] makes a clone one of several workers sharing it: they then take
/// turns on named locks ([`Store::try_lock_name`]), as on PostgreSQL.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    inner: Arc<Mutex<MemInner>>,
    worker: Option<String>,
}

#[derive(Debug, Default)]
struct MemInner {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    blobs: BTreeMap<u64, Vec<u8>>,
    /// Named locks held by workers: the holder and how many times it took the lock.
    names: BTreeMap<String, (String, usize)>,
    /// The workers made by [`MemStore::as_worker`] and not gone ([`MemStore::leave`]).
    workers: std::collections::BTreeSet<String>,
}

impl super::StoreLedger<MemStore> {
    /// A fresh, empty ledger in memory (for tests of what drives the ledger).
    ///
    /// # Errors
    ///
    /// None in practice: the in-memory store does not fail.
    pub fn in_memory() -> Result<super::MemLedger> {
        super::StoreLedger::on(MemStore::default())
    }
}

impl MemStore {
    fn lock(&self) -> MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Worker `id` stops: it is no longer among [`Store::workers`].
    pub fn leave(&self, id: &str) {
        self.lock().workers.remove(id);
    }

    /// A clone of this store (the same data) for worker `id` among several sharing it.
    #[must_use]
    pub fn as_worker(&self, id: &str) -> MemStore {
        self.lock().workers.insert(id.to_owned());
        MemStore {
            inner: Arc::clone(&self.inner),
            worker: Some(id.to_owned()),
        }
    }
}

impl Store for MemStore {
    fn location(&self) -> &Path {
        Path::new("(memory)")
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().map.get(key).cloned())
    }

    fn scan(&self, prefix: &[u8]) -> Scan<'_> {
        let found: Vec<_> = self
            .lock()
            .map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect();
        Box::new(found.into_iter())
    }

    fn apply(&self, batch: WriteBatch) -> Result<()> {
        let mut inner = self.lock();
        for (k, v) in batch.ops {
            match v {
                Some(v) => inner.map.insert(k, v),
                None => inner.map.remove(&k),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn increment(&self, key: &[u8]) -> Result<u64> {
        let mut inner = self.lock();
        let n = inner
            .map
            .get(key)
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0)
            + 1;
        inner.map.insert(key.to_vec(), n.to_be_bytes().to_vec());
        Ok(n)
    }

    fn put_blob(&self, id: u64, file: &mut dyn std::io::Read) -> Result<()> {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| LedgerError::Io {
            path: PathBuf::from(format!("(memory)/batches/{id}")),
            source: e,
        })?;
        self.lock().blobs.insert(id, bytes);
        Ok(())
    }

    fn blob(&self, id: u64) -> Result<Vec<u8>> {
        self.lock()
            .blobs
            .get(&id)
            .cloned()
            .ok_or_else(|| LedgerError::Io {
                path: PathBuf::from(format!("(memory)/batches/{id}")),
                source: std::io::ErrorKind::NotFound.into(),
            })
    }

    fn remove_blob(&self, id: u64) {
        self.lock().blobs.remove(&id);
    }

    fn worker(&self) -> Option<String> {
        self.worker.clone()
    }

    fn workers(&self) -> Result<Vec<String>> {
        if self.worker.is_none() {
            return Ok(Vec::new());
        }
        Ok(self.lock().workers.iter().cloned().collect())
    }

    /// Taken again by its holder as PostgreSQL's session locks are (one unlock per take).
    fn try_lock_name(&self, name: &str) -> Result<bool> {
        let Some(me) = &self.worker else {
            return Ok(true);
        };
        let mut inner = self.lock();
        let held = inner
            .names
            .entry(name.to_owned())
            .or_insert_with(|| (me.clone(), 0));
        if held.0 != *me {
            return Ok(false);
        }
        held.1 += 1;
        Ok(true)
    }

    /// Waits (at most a minute: a test that forgets an unlock fails) for the holder.
    fn lock_name(&self, name: &str) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !self.try_lock_name(name)? {
            if std::time::Instant::now() >= deadline {
                return Err(LedgerError::Unreachable(format!(
                    "the lock {name} was never let go"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(())
    }

    fn unlock_name(&self, name: &str) {
        let Some(me) = &self.worker else {
            return;
        };
        let mut inner = self.lock();
        if let Some(held) = inner.names.get_mut(name).filter(|h| h.0 == *me) {
            held.1 = held.1.saturating_sub(1);
            if held.1 == 0 {
                inner.names.remove(name);
            }
        }
    }
}

#[cfg(test)]
impl MemStore {
    /// The named locks held now, and by whom.
    pub(crate) fn names_held(&self) -> Vec<(String, String)> {
        self.lock()
            .names
            .iter()
            .map(|(n, (w, _))| (n.clone(), w.clone()))
            .collect()
    }
}
