//! Several workers sharing the ledger split a page's documents between them as they go. Each
//! worker reads the same page in the same order; before it checks a document it reserves it
//! (a lock of the document's name across the workers, [`Ledger::try_lock_name`]):
//!
//! - a document another worker has reserved is put off to the end of the page, so two workers
//!   walking the same page take turns instead of checking the same documents and losing the
//!   claim;
//! - a document another worker claimed or delivered meanwhile is left to it;
//! - at the end of the page, a put-off document is waited for (bounded), never while this
//!   worker holds a reservation of its own, so two workers never wait for each other. One
//!   still reserved after the wait is held with its copy for the next run.
//!
//! The claim ([`Ledger::put_claims`]) stays what guarantees one delivery: a reservation only
//! saves the work of a claim that would be refused. A ledger one process holds alone reserves
//! nothing and reads nothing here.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Doc;
use crate::ledger::{Ledger, RecordKey};
use crate::targets::TargetError;

/// The longest wait for a document another worker reserved (its lot's delivery).
const WAIT: Duration = if cfg!(test) {
    Duration::from_millis(300)
} else {
    Duration::from_secs(300)
};

/// What the page gives next.
pub(super) enum Next {
    /// A document reserved for this worker (boxed: a record is large).
    Doc(Box<Doc>),
    /// The next document is another worker's for now, and this worker holds an open lot:
    /// send it first (and let go of its reservations).
    SendFirst,
    /// Every document was taken.
    Done,
}

/// A page's documents in delivery order, with this worker's reservations.
pub(super) struct Turns<'a> {
    ledger: &'a dyn Ledger,
    shared: bool,
    now: VecDeque<Doc>,
    later: VecDeque<Doc>,
    reserved: Vec<String>,
    /// Put off, then still reserved by another worker after [`WAIT`].
    gave_up: Vec<Doc>,
}

/// The name of a document's reservation.
pub(super) fn name(key: &RecordKey) -> String {
    format!("doc\0{}\0{}\0{}", key.job, key.target, key.doc_id)
}

impl<'a> Turns<'a> {
    pub(super) fn new(ledger: &'a dyn Ledger, docs: Vec<Doc>) -> Self {
        Turns {
            ledger,
            shared: ledger.worker().is_some(),
            now: docs.into(),
            later: VecDeque::new(),
            reserved: Vec::new(),
            gave_up: Vec::new(),
        }
    }

    /// The next document, reserved for this worker (`lot_open`: this worker holds documents
    /// of a lot not sent yet).
    ///
    /// # Errors
    ///
    /// The ledger fails.
    pub(super) async fn next(&mut self, lot_open: bool) -> Result<Next, TargetError> {
        loop {
            let (d, name) = if let Some(d) = self.now.pop_front() {
                if !self.shared {
                    return Ok(Next::Doc(Box::new(d)));
                }
                let name = name(&d.1.key);
                if !self.ledger.try_lock_name(&name)? {
                    self.later.push_back(d);
                    continue;
                }
                (d, name)
            } else if let Some(d) = self.later.pop_front() {
                let name = name(&d.1.key);
                if !self.ledger.try_lock_name(&name)? {
                    if lot_open {
                        self.later.push_front(d);
                        return Ok(Next::SendFirst);
                    }
                    // Waits holding nothing: the worker it waits for never waits for this one.
                    self.release();
                    if !self.wait_for(&name).await? {
                        self.gave_up.push(d);
                        continue;
                    }
                }
                (d, name)
            } else {
                return Ok(Next::Done);
            };
            self.reserved.push(name);
            if !self.taken_elsewhere(&d)? {
                return Ok(Next::Doc(Box::new(d)));
            }
        }
    }

    /// Gives back the document [`Turns::next`] gave last (it does not join the open lot): it
    /// comes first again, after the lot is sent.
    pub(super) fn put_back(&mut self, d: Doc) {
        self.now.push_front(d);
    }

    /// Lets go of every reservation (after a lot is recorded).
    pub(super) fn release(&mut self) {
        for n in self.reserved.drain(..) {
            self.ledger.unlock_name(&n);
        }
    }

    /// The documents put off and still reserved by another worker after the wait.
    pub(super) fn gave_up(&mut self) -> Vec<Doc> {
        std::mem::take(&mut self.gave_up)
    }

    /// Whether another worker claimed or delivered the document meanwhile (as
    /// [`Ledger::put_claims`] would find it).
    fn taken_elsewhere(&self, d: &Doc) -> Result<bool, TargetError> {
        Ok(self
            .ledger
            .get(&d.1.key)?
            .is_some_and(|r| !r.state.is_eligible()))
    }

    /// Takes the reservation `name` as soon as its holder lets go of it, within [`WAIT`].
    async fn wait_for(&self, name: &str) -> Result<bool, TargetError> {
        let deadline = Instant::now() + WAIT;
        let mut pause = Duration::from_millis(5);
        while Instant::now() < deadline {
            tokio::time::sleep(pause).await;
            if self.ledger.try_lock_name(name)? {
                return Ok(true);
            }
            pause = (pause * 2).min(Duration::from_millis(500));
        }
        Ok(false)
    }
}

impl Drop for Turns<'_> {
    fn drop(&mut self) {
        self.release();
    }
}
