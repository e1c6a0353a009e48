//! The batch's writer thread: it owns the open temp file and, page after page in the order
//! given, records the page's claims in the ledger (flushed) and only then appends the page's
//! bytes. The run's own thread meanwhile reads, maps, checks and renders the next page; it
//! waits only when a page is still queued (one page of look-ahead), and at the batch's close,
//! which takes the file back once every queued page is written.
//!
//! An error stops the thread: the next hand-over or the close returns it, and the batch is
//! rolled back as before (nothing after the failed page was claimed or written).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use super::io_err;
use crate::fault;
use crate::ledger::{Ledger, OpenBatch, Record};
use crate::targets::TargetError;

/// The batch's temp file, with the hash and size of what it holds.
pub(super) struct Open {
    pub(super) batch: OpenBatch,
    pub(super) file: BufWriter<File>,
    pub(super) hasher: Sha256,
    pub(super) size: u64,
}

/// Appends `bytes` to the file, its hash and its size.
pub(super) fn write_counted(open: &mut Open, bytes: &[u8]) -> std::io::Result<()> {
    open.file.write_all(bytes)?;
    open.hasher.update(bytes);
    open.size += bytes.len() as u64;
    Ok(())
}

/// One page for the writer: its claimed records, the held ones recorded in the same group
/// commit, and the bytes the claims guard.
pub(super) struct PageWrite {
    /// Number registrations, recorded (flushed) before the claims.
    pub(super) numbers: Vec<(String, serde_json::Value)>,
    pub(super) claimed: Vec<Record>,
    pub(super) others: Vec<Record>,
    pub(super) bytes: Vec<u8>,
}

/// Claims then writes one page: the claims are durable before a byte of the page is written.
fn write_page(
    ledger: &dyn Ledger,
    open: &mut Open,
    page: &PageWrite,
    target: &str,
) -> Result<(), TargetError> {
    fault::slow_writer();
    ledger.claim_with_values(&open.batch, &page.claimed, &page.others, &page.numbers)?;
    fault::point("after-claim", target);
    let tmp = open.batch.tmp_path.clone();
    let half = page.bytes.len() / 2;
    write_counted(open, &page.bytes[..half]).map_err(io_err(&tmp))?;
    open.file.flush().map_err(io_err(&tmp))?;
    fault::point("mid-write", target);
    fault::fail("mid-write", target).map_err(io_err(&tmp))?;
    write_counted(open, &page.bytes[half..]).map_err(io_err(&tmp))?;
    Ok(())
}

/// The thread writing one batch.
pub(super) struct Writer {
    tx: Option<SyncSender<PageWrite>>,
    thread: Option<JoinHandle<Result<Open, TargetError>>>,
    ledger: Arc<dyn Ledger>,
    target: String,
}

impl Writer {
    /// Starts the thread on `open`, whose header is already written.
    ///
    /// # Errors
    ///
    /// The thread could not be started.
    pub(super) fn start(
        ledger: Arc<dyn Ledger>,
        open: Open,
        target: &str,
    ) -> Result<Writer, TargetError> {
        let mut w = Writer {
            tx: None,
            thread: None,
            ledger,
            target: target.to_owned(),
        };
        w.spawn(open)?;
        Ok(w)
    }

    fn spawn(&mut self, mut open: Open) -> Result<(), TargetError> {
        // One page queued while one is written: the run is at most two pages ahead of the file.
        let (tx, rx) = sync_channel::<PageWrite>(1);
        let target = self.target.clone();
        let ledger = Arc::clone(&self.ledger);
        let tmp = open.batch.tmp_path.clone();
        let thread = std::thread::Builder::new()
            .name("facto-writer".into())
            .spawn(move || {
                for page in rx {
                    write_page(ledger.as_ref(), &mut open, &page, &target)?;
                }
                Ok(open)
            })
            .map_err(io_err(&tmp))?;
        self.tx = Some(tx);
        self.thread = Some(thread);
        Ok(())
    }

    /// Waits until every queued page is written, and goes on with the same file: the ledger
    /// then reads as if the run had written every page itself.
    ///
    /// # Errors
    ///
    /// The error that stopped the writer.
    pub(super) fn settle(&mut self) -> Result<(), TargetError> {
        let open = self.join()?;
        self.spawn(open)
    }

    /// Queues a page; waits while the previous one is still queued.
    ///
    /// # Errors
    ///
    /// The writer stopped on an earlier page: that page's error.
    pub(super) fn send(&mut self, page: PageWrite) -> Result<(), TargetError> {
        let sent = self.tx.as_ref().map(|tx| tx.send(page).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The thread ended: only an error ends it before the close.
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(stopped()),
        }
    }

    /// Waits until every queued page is written and takes the file back.
    ///
    /// # Errors
    ///
    /// The error that stopped the writer.
    pub(super) fn finish(mut self) -> Result<Open, TargetError> {
        self.join()
    }

    fn join(&mut self) -> Result<Open, TargetError> {
        self.tx = None;
        let Some(thread) = self.thread.take() else {
            return Err(stopped());
        };
        thread.join().unwrap_or_else(|_| Err(stopped()))
    }
}

/// Never leaves a writer running behind a run that ended early: its queued page is written
/// (or fails) before the run's caller goes on, as if the run had written it itself.
impl Drop for Writer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
}

fn stopped() -> TargetError {
    TargetError::Io {
        path: "(export batch)".into(),
        source: std::io::Error::other("the batch's writer stopped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MemLedger;

    fn page(bytes: usize) -> PageWrite {
        PageWrite {
            numbers: Vec::new(),
            claimed: Vec::new(),
            others: Vec::new(),
            bytes: vec![b'x'; bytes],
        }
    }

    /// A page the writer cannot write (a full disk) stops it; the run learns it at its next
    /// hand-over or at the close, never later, and nothing after that page is written.
    #[test]
    fn a_write_that_fails_on_the_writer_thread_is_the_runs_error() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = MemLedger::in_memory().unwrap();
        let batch = ledger.begin_batch("j", "t", dir.path()).unwrap();
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let open = Open {
            batch,
            file: BufWriter::new(full),
            hasher: Sha256::new(),
            size: 0,
        };
        let mut w = Writer::start(ledger.shared(), open, "t").unwrap();
        // Larger than the buffer: the first page fails on the thread.
        let mut results = vec![w.send(page(1 << 20))];
        for _ in 0..3 {
            results.push(w.send(page(10)));
        }
        results.push(w.finish().map(|_| ()));
        let first = results
            .into_iter()
            .find_map(Result::err)
            .expect("the failure reached the run");
        assert!(first.to_string().contains("No space left"), "{first}");
    }

    /// The writer hands the file back with everything queued written, in order.
    #[test]
    fn pages_are_written_in_the_order_given_and_settle_keeps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = MemLedger::in_memory().unwrap();
        let batch = ledger.begin_batch("j", "t", dir.path()).unwrap();
        let path = dir.path().join("out.txt");
        let open = Open {
            batch,
            file: BufWriter::new(File::create(&path).unwrap()),
            hasher: Sha256::new(),
            size: 0,
        };
        let mut w = Writer::start(ledger.shared(), open, "t").unwrap();
        for i in 0..20u8 {
            let mut p = page(0);
            p.bytes = vec![b'a' + i; 3];
            w.send(p).unwrap();
            if i == 10 {
                w.settle().unwrap();
            }
        }
        let mut open = w.finish().unwrap();
        open.file.flush().unwrap();
        let want: Vec<u8> = (0..20u8).flat_map(|i| [b'a' + i; 3]).collect();
        assert_eq!(std::fs::read(&path).unwrap(), want);
        assert_eq!(open.size, 60);
        assert_eq!(
            open.hasher.finalize().as_slice(),
            Sha256::digest(&want).as_slice()
        );
    }
}
