//! The embedded store: sled. One tree, so that every group of related writes is one atomic
//! `sled::Batch`; `flush` makes it durable before the caller goes on. The exact bytes of each
//! batch file are kept as `batches/<id>.bin` beside the tree. The keys and every rule over them
//! are the ledger's (`ledger::rules`); this module only stores.

use std::path::{Path, PathBuf};

use super::rules::StoreLedger;
use super::store::{Scan, Store, WriteBatch};
use super::{LedgerError, Result};

/// The sled-backed ledger. Holds sled's exclusive lock on its folder while open.
pub type SledLedger = StoreLedger<SledStore>;

/// A sled tree and the folder of kept batch files beside it.
pub struct SledStore {
    db: ::sled::Db,
    path: PathBuf,
}

/// Page cache of the tree. sled's default (1 GiB) would let the cache, and so the process, grow
/// with the ledger; the working set of a run is the records it touches.
const CACHE_BYTES: u64 = 32 << 20;

impl From<::sled::Error> for LedgerError {
    fn from(e: ::sled::Error) -> LedgerError {
        LedgerError::Store(Box::new(e))
    }
}

impl StoreLedger<SledStore> {
    /// Opens (or creates) the ledger in `path`.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Locked`] when another process has it open, [`LedgerError::Schema`] for a
    /// ledger of another version, storage errors otherwise.
    pub fn open(path: &Path) -> Result<SledLedger> {
        StoreLedger::on(SledStore::open(path)?)
    }

    /// Where the ledger lives.
    pub fn path(&self) -> &Path {
        &self.store().path
    }

    /// Size of the ledger on disk, in bytes.
    pub fn size_on_disk(&self) -> u64 {
        Store::size_on_disk(self.store()).unwrap_or(0)
    }
}

impl SledStore {
    /// Opens (or creates) the tree in `path`, private to its owner.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Locked`] when another process has it open, storage errors otherwise.
    pub fn open(path: &Path) -> Result<SledStore> {
        let io = |e| LedgerError::Io {
            path: path.to_owned(),
            source: e,
        };
        // The folder is private before sled writes in it; its files are tightened once, below.
        std::fs::create_dir_all(path).map_err(io)?;
        crate::fsutil::set_mode(path, 0o700).map_err(io)?;
        let db = reopen::open_with_wait(path, || {
            ::sled::Config::new()
                .path(path)
                .cache_capacity(CACHE_BYTES)
                .open()
        })
        .map_err(|e| match reopen::is_lock_error(&e) {
            true => LedgerError::Locked(path.to_owned()),
            false => LedgerError::from(e),
        })?;
        // Every file in it, sled's own included, 0600 (older versions left them readable).
        crate::fsutil::private_dir(path).map_err(io)?;
        Ok(SledStore {
            db,
            path: path.to_owned(),
        })
    }

    fn blob_path(&self, id: u64) -> PathBuf {
        self.path.join("batches").join(format!("{id:016}.bin"))
    }

    fn blob_tmp_path(&self, id: u64) -> PathBuf {
        self.path.join("batches").join(format!(".{id:016}.tmp"))
    }
}

impl Store for SledStore {
    fn location(&self) -> &Path {
        &self.path
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn scan(&self, prefix: &[u8]) -> Scan<'_> {
        Box::new(self.db.scan_prefix(prefix).map(|kv| {
            let (k, v) = kv?;
            Ok((k.to_vec(), v.to_vec()))
        }))
    }

    fn apply(&self, batch: WriteBatch) -> Result<()> {
        let mut b = ::sled::Batch::default();
        for (k, v) in batch.into_ops() {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.db.apply_batch(b)?;
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    fn increment(&self, key: &[u8]) -> Result<u64> {
        let next = self
            .db
            .update_and_fetch(key, |old| {
                let n = old
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some((n + 1).to_be_bytes().to_vec())
            })?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1);
        Ok(next)
    }

    /// Copies a batch's file into `batches/<id>.bin` under the ledger folder: temp file, fsync,
    /// rename, fsync of the folder.
    fn put_blob(&self, id: u64, file: &mut dyn std::io::Read) -> Result<()> {
        let path = self.blob_path(id);
        let io = |e: std::io::Error| LedgerError::Io {
            path: path.clone(),
            source: e,
        };
        let dir = self.path.join("batches");
        std::fs::create_dir_all(&dir).map_err(io)?;
        crate::fsutil::set_mode(&dir, 0o700).map_err(io)?;
        let tmp = self.blob_tmp_path(id);
        let mut out = crate::fsutil::create_with_mode(&tmp, 0o600).map_err(io)?;
        std::io::copy(file, &mut out).map_err(io)?;
        out.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        crate::fsutil::sync_dir(&dir).map_err(io)
    }

    fn blob(&self, id: u64) -> Result<Vec<u8>> {
        let path = self.blob_path(id);
        std::fs::read(&path).map_err(|e| LedgerError::Io { path, source: e })
    }

    fn remove_blob(&self, id: u64) {
        let _ = std::fs::remove_file(self.blob_path(id));
        let _ = std::fs::remove_file(self.blob_tmp_path(id));
    }

    fn size_on_disk(&self) -> Option<u64> {
        self.db.size_on_disk().ok()
    }
}

mod reopen;

#[cfg(test)]
mod tests;
