//! The one delivery driver of the API targets. It owns the exactly-once protocol, so that a
//! target implements only what is its own ([`Target`]):
//!
//! 1. each document is checked by the target (held with its problems, or ready);
//! 2. ready documents are packed into lots (the target says how many and which go together);
//! 3. a lot's records are claimed and flushed (with what the target must store first), then
//!    the lot is sent, the answer classified ([`Outcome`]) and recorded at once;
//! 4. at the next run, a record still claimed (a crash, a lost answer) is looked up at the
//!    target before anything is sent again: found → recorded; absent within the lookup grace →
//!    left claimed (a late answer may still land); absent after it → sent again as the same lot
//!    where the target can do that idempotently, else released for a new delivery.
//!
//! Retries and pacing of each call live in `retry.rs`, under each target's API client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::TargetError;
use crate::fault;
use crate::ledger::{Ledger, LedgerError, Record, RecordFilter, State};
use crate::mapping::MappedDocument;
use crate::problem::Problem;

/// A boxed future that can move between threads (the daemon runs passes on its runtime).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A mapped document with its record, as a page hands it to a target.
pub type Doc = (Arc<MappedDocument>, Record);

/// What a target answered for a document it took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// The target's id of the document, when it gives one.
    pub remote_id: Option<String>,
    /// The target's status of the document.
    pub status: Option<String>,
    /// Replaces the record's idempotency key (Chorus Pro's flow number).
    pub key: Option<String>,
    /// What the record's history says.
    pub note: String,
}

/// How a sent lot ended, as the target classifies its answer.
#[derive(Debug)]
pub enum Outcome {
    /// Every document of the lot was taken.
    Delivered(Receipt),
    /// The target refused the lot for good: its documents fail until a user acts.
    Refused {
        /// The record's `last_error`.
        error: String,
        /// What the record's history says.
        note: String,
    },
    /// Certainly not taken (no connection, credentials refused): released, and the target
    /// stops for this run.
    NotSent {
        /// The record's `last_error`.
        error: String,
        /// What the record's history says.
        note: String,
        /// Why the target stops.
        stop: TargetError,
    },
    /// Maybe taken (a timeout, a lost answer): left claimed, looked up before anything is sent
    /// again; the target stops for this run.
    Uncertain {
        /// The record's `last_error`.
        error: String,
        /// Why the target stops.
        stop: TargetError,
    },
    /// One answer per document, in the lot's order; a document without an answer stays claimed.
    Partial(Vec<Option<Item>>),
}

impl Outcome {
    /// Refused for good: `error` is the target's answer, `note` the history's words.
    pub fn refused(error: String, note: &str) -> Outcome {
        Outcome::Refused {
            error,
            note: note.to_owned(),
        }
    }

    /// A failed call that the target did not refuse for good: maybe taken
    /// ([`super::http::ApiError::Unknown`]) → left claimed, with `lookup` saying how it is found
    /// again; anything else certainly did not reach it → released, the history saying
    /// `not_sent: <error>`. Either way the target stops for this run.
    pub fn failed<E: super::http::CallError>(
        target: &str,
        e: &E,
        lookup: &str,
        not_sent: &str,
    ) -> Outcome {
        if matches!(e.api(), Some(super::http::ApiError::Unknown(_))) {
            Outcome::Uncertain {
                error: format!("{e}; {lookup}"),
                stop: super::remote(target, e),
            }
        } else {
            Outcome::NotSent {
                error: e.to_string(),
                note: format!("{not_sent}: {e}"),
                stop: super::remote(target, e),
            }
        }
    }
}

/// The answer for one document of a lot.
#[derive(Debug)]
pub enum Item {
    /// Taken.
    Delivered(Receipt),
    /// Refused for good.
    Refused {
        /// The record's `last_error`.
        error: String,
        /// What the record's history says.
        note: String,
    },
}

/// A claimed record the target knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The state its status means.
    pub state: State,
    /// Its id, status and the note for the history and the report.
    pub receipt: Receipt,
}

/// A document packed in a lot.
pub struct LotDoc {
    /// The document.
    pub md: Arc<MappedDocument>,
    /// Its record (claimed by the driver before the lot is sent).
    pub rec: Record,
    /// SHA-256 of what is sent for it.
    pub payload_hash: String,
}

/// What is sent in one call: its documents, the target's payload, and what the ledger keeps.
pub struct Lot<P> {
    /// The documents, in the order the target sends them.
    pub docs: Vec<LotDoc>,
    /// What the target sends.
    pub payload: P,
    /// The idempotency key recorded on each record at the claim.
    pub key: Option<String>,
    /// Names the lot in the claim note (`claimed for <label>`).
    pub label: String,
    /// Values stored before the claim (what a lookup or a resend needs).
    pub values: Vec<(String, serde_json::Value)>,
}

/// A lot sent again, identical, at reconciliation.
pub struct Resent {
    /// How it ended.
    pub outcome: Outcome,
    /// What the report says of it.
    pub notes: Vec<String>,
}

/// What a poll changed.
#[derive(Default)]
pub struct Polled {
    /// Records to store.
    pub changed: Vec<Record>,
    /// What the report says.
    pub changes: Vec<String>,
}

impl Polled {
    /// Records a new remote status of `r` (paid, with `paid` as the history note, when the
    /// target says so); the report says `number (target): old → new`.
    pub fn status(
        &mut self,
        target: &str,
        mut r: Record,
        status: &str,
        paid: Option<&str>,
        now: DateTime<Utc>,
    ) {
        self.changes.push(format!(
            "{} ({target}): {} → {status}",
            r.number,
            r.remote_status.as_deref().unwrap_or("?")
        ));
        r.remote_status = Some(status.to_owned());
        match paid {
            Some(note) => r.transition(State::Paid, note, now),
            None => r.updated_at = now,
        }
        self.changed.push(r);
    }
}

/// What an API target implements: only what is its own. [`Driven`] runs the rest.
pub trait Target: Send + Sync {
    /// What checking a document learned that packing needs (a customer id, a PDF).
    type Ready: Send;
    /// What one call sends.
    type Payload: Send + Sync;
    /// The fault point right after a successful call (tests crash there).
    const SENT_POINT: &'static str = "after-send";
    /// The states `poll` follows.
    const POLLED: &'static [State] = &[State::Delivered];

    /// The connector's name.
    fn name(&self) -> &str;
    /// Minutes after a claim during which an unknown outcome may still land.
    fn grace_minutes(&self) -> u64;
    /// The most documents in one lot.
    fn lot_size(&self) -> usize {
        1
    }
    /// Puts a page's documents in delivery order.
    fn order(&self, _docs: &mut [Doc]) {}
    /// The layout of the e-invoices it sends, whose route says which documents it takes
    /// (`None`: every document, in no file layout).
    fn layout(&self) -> Option<crate::format::Layout> {
        None
    }
    /// Whether `next` may go in the lot that `first` opened.
    fn joins(&self, _first: &MappedDocument, _next: &MappedDocument) -> bool {
        true
    }
    /// What keeps a document from the target that is known without calling it (`preview`):
    /// nothing, unless the target says.
    ///
    /// # Errors
    ///
    /// Ledger failure.
    fn offline_problems(
        &self,
        _ledger: &dyn Ledger,
        _origin: &str,
        _md: &MappedDocument,
    ) -> Result<Vec<Problem>, TargetError> {
        Ok(Vec::new())
    }
    /// A document's route and address as known without calling the target (`preview`): none,
    /// unless the target routes documents.
    fn offline_route(
        &self,
        _ledger: &dyn Ledger,
        _doc: &crate::model::Document,
    ) -> Option<crate::route::Shown> {
        None
    }
    /// Reads what the checks need from the target, once per run.
    fn preflight(
        &mut self,
        _ledger: &dyn Ledger,
    ) -> impl Future<Output = Result<(), TargetError>> + Send {
        async { Ok(()) }
    }
    /// Reads at once what checking a page's documents needs from the target (Xero looks
    /// their contacts up in one call), after [`Target::preflight`].
    fn prepare(
        &mut self,
        _ledger: &dyn Ledger,
        _docs: &[Doc],
    ) -> impl Future<Output = Result<(), TargetError>> + Send {
        async { Ok(()) }
    }
    /// Checks a document against the target: ready, or held with its problems.
    fn check(
        &mut self,
        ledger: &dyn Ledger,
        md: &MappedDocument,
        rec: &Record,
    ) -> impl Future<Output = Result<Result<Self::Ready, Vec<Problem>>, TargetError>> + Send;
    /// Packs ready documents into one lot.
    fn pack(
        &mut self,
        docs: Vec<(Arc<MappedDocument>, Record, Self::Ready)>,
        run_id: &str,
    ) -> impl Future<Output = Result<Lot<Self::Payload>, TargetError>> + Send;
    /// Sends a claimed lot and classifies the answer. An error is the ledger's only.
    fn send(
        &mut self,
        ledger: &dyn Ledger,
        lot: &Lot<Self::Payload>,
    ) -> impl Future<Output = Result<Outcome, TargetError>> + Send;
    /// Work after a lot's answer is recorded, whose result is recorded again (Xero allocates
    /// credit notes and notes it in their remote status).
    fn settle(
        &mut self,
        _ledger: &dyn Ledger,
        _lot: &Lot<Self::Payload>,
        _recs: &mut [Record],
    ) -> impl Future<Output = Result<(), TargetError>> + Send {
        async { Ok(()) }
    }
    /// Groups records left claimed into the lots they were sent in (one each by default).
    fn claimed_lots(&self, claimed: Vec<Record>) -> Vec<Vec<Record>> {
        claimed.into_iter().map(|r| vec![r]).collect()
    }
    /// Looks a claimed record up at the target: found, or absent.
    fn lookup(
        &mut self,
        rec: &Record,
    ) -> impl Future<Output = Result<Option<Found>, TargetError>> + Send;
    /// Looks the records of one claimed lot up: one answer per record (one [`Target::lookup`]
    /// each, unless the target asks for a lot in one call).
    fn lookup_lot(
        &mut self,
        claimed: &[Record],
    ) -> impl Future<Output = Result<Vec<Option<Found>>, TargetError>> + Send {
        async move {
            let mut out = Vec::with_capacity(claimed.len());
            for r in claimed {
                out.push(self.lookup(r).await?);
            }
            Ok(out)
        }
    }
    /// Sends a lot again, identical, when the target makes that safe (an idempotency key it
    /// keeps); `None` releases what it does not know for a new delivery.
    fn resend(
        &mut self,
        _ledger: &dyn Ledger,
        _claimed: &[Record],
    ) -> impl Future<Output = Result<Option<Resent>, TargetError>> + Send {
        async { Ok(None) }
    }
    /// What the report says of a claimed record the target does not list yet (after
    /// [`super::WAITING`]).
    fn waiting_note(&self) -> String;
    /// The history note of a claimed record released after the grace period.
    fn released_note(&self) -> String;
    /// Follows delivered documents (statuses, payments).
    fn poll(
        &mut self,
        ledger: &dyn Ledger,
        live: Vec<Record>,
    ) -> impl Future<Output = Result<Polled, TargetError>> + Send;
}

/// What a sync drives: every target, API or journal files, behind one object.
pub trait TargetRun: Send {
    /// Target connector name.
    fn name(&self) -> &str;
    /// Documents delivered in this run.
    fn delivered(&self) -> u64;
    /// Settles what an interrupted run left claimed, before anything is sent again.
    fn reconcile<'a>(
        &'a mut self,
        ledger: &'a dyn Ledger,
    ) -> BoxFuture<'a, Result<Vec<String>, TargetError>>;
    /// Follows what the target received (statuses, payments).
    fn poll<'a>(
        &'a mut self,
        ledger: &'a dyn Ledger,
    ) -> BoxFuture<'a, Result<Vec<String>, TargetError>>;
    /// Delivers one page; `others` are records to store with it (held, skipped).
    fn deliver_page<'a>(
        &'a mut self,
        ledger: &'a dyn Ledger,
        docs: Vec<Doc>,
        others: Vec<Record>,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<(), TargetError>>;
    /// What keeps a document from the target, known without calling it (`preview`).
    ///
    /// # Errors
    ///
    /// Ledger failure.
    fn offline_problems(
        &self,
        ledger: &dyn Ledger,
        origin: &str,
        md: &MappedDocument,
    ) -> Result<Vec<Problem>, TargetError>;
    /// A document's route and address as known without calling the target (`preview`); none
    /// for a target that does not route documents.
    fn offline_route(
        &self,
        _ledger: &dyn Ledger,
        _doc: &crate::model::Document,
    ) -> Option<crate::route::Shown> {
        None
    }
    /// The file or e-invoice layout of what it delivers: its route says which documents it
    /// takes (`format::in_scope`); `None` takes every document.
    fn layout(&self) -> Option<crate::format::Layout>;
    /// The journal-file run behind this target, for its end-of-run batch steps.
    fn journal(&mut self) -> Option<&mut super::journal_file::JournalRun> {
        None
    }
    /// The journal-file run behind this target, for the steps that end its batch.
    fn into_journal(self: Box<Self>) -> Option<Box<super::journal_file::JournalRun>> {
        None
    }
}

/// An API target driven through the exactly-once protocol.
pub struct Driven<T> {
    target: T,
    job: String,
    dry_run: bool,
    delivered: u64,
}

impl<T: Target> Driven<T> {
    /// Drives `target` for `job`; a dry run calls nothing.
    pub fn new(target: T, job: &str, dry_run: bool) -> Self {
        Driven {
            target,
            job: job.to_owned(),
            dry_run,
            delivered: 0,
        }
    }

    fn filter(&self, state: State) -> RecordFilter {
        RecordFilter {
            job: Some(self.job.clone()),
            target: Some(self.target.name().to_owned()),
            state: Some(state),
        }
    }

    async fn deliver(
        &mut self,
        ledger: &dyn Ledger,
        mut docs: Vec<Doc>,
        mut others: Vec<Record>,
        run_id: &str,
    ) -> Result<(), TargetError> {
        if self.dry_run {
            self.delivered += docs.len() as u64;
            return Ok(());
        }
        self.target.preflight(ledger).await?;
        self.target.order(&mut docs);
        self.target.prepare(ledger, &docs).await?;
        let now = Utc::now();
        let size = self.target.lot_size().max(1);
        let mut turns = turns::Turns::new(ledger, docs);
        loop {
            let mut ready: Vec<(Arc<MappedDocument>, Record, T::Ready)> = Vec::new();
            while ready.len() < size {
                let (md, mut rec) = match turns.next(!ready.is_empty()).await? {
                    turns::Next::Doc(d) => *d,
                    turns::Next::SendFirst | turns::Next::Done => break,
                };
                if ready
                    .first()
                    .is_some_and(|(first, _, _)| !self.target.joins(first, &md))
                {
                    turns.put_back((md, rec));
                    break;
                }
                match self.target.check(ledger, &md, &rec).await? {
                    Ok(r) => ready.push((md, rec, r)),
                    Err(problems) => {
                        rec.hold(problems, serde_json::to_value(&md.doc).ok(), run_id, now);
                        others.push(rec);
                    }
                }
            }
            if ready.is_empty() {
                break;
            }
            let lot = self.target.pack(ready, run_id).await?;
            self.send_lot(ledger, lot, &mut others, run_id).await?;
            turns.release();
        }
        // Put off for another worker that still holds them after the wait: held with their
        // copy for the next run, none lost behind the cursor.
        let gave_up = turns.gave_up();
        contended::hold_for_next_run(
            ledger,
            gave_up.iter().map(|(md, rec)| (md.as_ref(), rec)),
            &[],
            "another worker sharing the ledger was still sending this document",
            run_id,
            now,
            &mut others,
        )?;
        ledger.put_claims(&[], &others)?;
        Ok(())
    }

    /// Claim and flush → send → classify → record.
    async fn send_lot(
        &mut self,
        ledger: &dyn Ledger,
        mut lot: Lot<T::Payload>,
        others: &mut Vec<Record>,
        run_id: &str,
    ) -> Result<(), TargetError> {
        let now = Utc::now();
        // A page holds only eligible records (held or released): a claim refused here means a
        // caller broke that rule, and the run stops rather than send anything twice.
        let note = format!("run {run_id}: claimed for {}", lot.label);
        let worker = ledger.worker();
        for d in &mut lot.docs {
            d.rec.claim(note.as_str(), now).map_err(LedgerError::from)?;
            d.rec.payload_hash = Some(d.payload_hash.clone());
            d.rec.idempotency_key.clone_from(&lot.key);
            d.rec.claimed_by.clone_from(&worker);
        }
        if !lot.values.is_empty() {
            ledger.put_values(&lot.values)?;
        }
        let claims: Vec<Record> = lot.docs.iter().map(|d| d.rec.clone()).collect();
        let refused = ledger.put_claims(&claims, others)?;
        others.clear();
        if !refused.is_empty() {
            // Another worker sharing the ledger claimed or delivered one of them meanwhile:
            // nothing of this lot is sent. The lot's other documents wait, held with their
            // copy, for the next run (which reads held copies again), so that none is lost
            // behind a cursor that moved on.
            tracing::info!(target = %self.target.name(), lot = %lot.label, "claimed by another worker meanwhile; not sent");
            contended::wait_for_next_run(ledger, lot.docs, &refused, run_id, now)?;
            return Ok(());
        }
        fault::point("after-claim", self.target.name());
        let outcome = self.target.send(ledger, &lot).await?;
        if matches!(outcome, Outcome::Delivered(_) | Outcome::Partial(_)) {
            fault::point(T::SENT_POINT, self.target.name());
        }
        let mut recs: Vec<Record> = lot.docs.iter().map(|d| d.rec.clone()).collect();
        let (n, stop) = apply(outcome, &mut recs, Utc::now()).map_err(LedgerError::from)?;
        self.delivered += n;
        // The answer is recorded at once: a failure or a crash in the work after it (Xero's
        // allocations) must not leave delivered documents claimed.
        ledger.put_records(&recs)?;
        if let Some(e) = stop {
            return Err(e);
        }
        self.target.settle(ledger, &lot, &mut recs).await?;
        ledger.put_records(&recs)?;
        Ok(())
    }

    async fn settle_claimed(&mut self, ledger: &dyn Ledger) -> Result<Vec<String>, TargetError> {
        if self.dry_run {
            return Ok(Vec::new());
        }
        let mut claimed = ledger.list(&self.filter(State::Claimed))?;
        // A claim of a worker still running (several share the ledger) is its delivery in
        // progress: only a gone worker's claims are settled here.
        let mut alive = std::collections::BTreeMap::new();
        let mut kept = Vec::with_capacity(claimed.len());
        for r in claimed {
            let live = match &r.claimed_by {
                Some(w) => match alive.get(w) {
                    Some(a) => *a,
                    None => {
                        let a = ledger.worker_alive(w)?;
                        alive.insert(w.clone(), a);
                        a
                    }
                },
                None => false,
            };
            if !live {
                kept.push(r);
            }
        }
        claimed = kept;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let name = self.target.name().to_owned();
        let grace = self.target.grace_minutes();
        let mut notes = Vec::new();
        let mut released = false;
        for mut lot in self.target.claimed_lots(claimed) {
            let found = self.target.lookup_lot(&lot).await?;
            let now = Utc::now();
            let all_found = found.iter().all(Option::is_some);
            if !all_found && lot.iter().any(|r| super::in_lookup_grace(r, grace, now)) {
                // A late answer may still land: sending again now could deliver it twice.
                for (r, _) in lot.iter().zip(&found).filter(|(_, f)| f.is_none()) {
                    notes.push(format!(
                        "{} ({name}): {}: {}",
                        r.number,
                        super::WAITING,
                        self.target.waiting_note()
                    ));
                }
                continue;
            }
            // Taken over, at the ledger, before anything is sent or recorded: of several
            // workers settling the same claim, one goes on.
            let read: Vec<_> = lot.iter().map(|r| Some(r.updated_at)).collect();
            for r in &mut lot {
                r.updated_at = now;
                r.claimed_by = ledger.worker();
            }
            if !ledger.put_records_unchanged(&lot, &read)? {
                continue;
            }
            if !all_found {
                if let Some(resent) = self.target.resend(ledger, &lot).await? {
                    let (_, stop) =
                        apply(resent.outcome, &mut lot, now).map_err(LedgerError::from)?;
                    notes.extend(resent.notes);
                    ledger.put_records(&lot)?;
                    if let Some(e) = stop {
                        return Err(e);
                    }
                    continue;
                }
            }
            for (r, f) in lot.iter_mut().zip(found) {
                let note = match f {
                    Some(f) => {
                        r.remote_id = f.receipt.remote_id;
                        r.remote_status = f.receipt.status;
                        if f.receipt.key.is_some() {
                            r.idempotency_key = f.receipt.key;
                        }
                        r.last_error = None;
                        if f.state == State::Delivered {
                            r.delivered(f.receipt.note.clone(), now)
                                .map_err(LedgerError::from)?;
                        } else {
                            // Found further along (accepted, paid, rejected): a follow-up.
                            r.transition(f.state, f.receipt.note.clone(), now);
                        }
                        f.receipt.note
                    }
                    None => {
                        let note = self.target.released_note();
                        r.release(note.clone(), now).map_err(LedgerError::from)?;
                        released = true;
                        note
                    }
                };
                notes.push(format!("{} ({name}): {note}", r.number));
            }
            ledger.put_records(&lot)?;
        }
        if released {
            // The source may not change again: its next read starts over, so that a released
            // document is delivered (this run reads the source after reconciling).
            ledger.request_rescan(&self.job)?;
        }
        Ok(notes)
    }

    async fn follow(&mut self, ledger: &dyn Ledger) -> Result<Vec<String>, TargetError> {
        if self.dry_run {
            return Ok(Vec::new());
        }
        // One worker at a time follows a target: two would read the same statuses (and a PA's
        // acknowledgement feed) and write the same records from two reads. Left to the other.
        let name = format!("poll/{}/{}", self.job, self.target.name());
        let followed = super::named_lock::if_free(ledger, &name, async {
            let mut live = Vec::new();
            for state in T::POLLED {
                live.extend(ledger.list(&self.filter(*state))?);
            }
            let polled = self.target.poll(ledger, live).await?;
            ledger.put_records(&polled.changed)?;
            Ok(polled.changes)
        })
        .await?;
        followed.unwrap_or_else(|| {
            tracing::info!(target = %self.target.name(), "Another worker is following this target's statuses; left to it.");
            Ok(Vec::new())
        })
    }
}

impl<T: Target + 'static> TargetRun for Driven<T> {
    fn name(&self) -> &str {
        self.target.name()
    }

    fn delivered(&self) -> u64 {
        self.delivered
    }

    fn layout(&self) -> Option<crate::format::Layout> {
        self.target.layout()
    }

    fn reconcile<'a>(
        &'a mut self,
        ledger: &'a dyn Ledger,
    ) -> BoxFuture<'a, Result<Vec<String>, TargetError>> {
        Box::pin(self.settle_claimed(ledger))
    }

    fn poll<'a>(
        &'a mut self,
        ledger: &'a dyn Ledger,
    ) -> BoxFuture<'a, Result<Vec<String>, TargetError>> {
        Box::pin(self.follow(ledger))
    }

    fn deliver_page<'a>(
        &'a mut self,
        ledger: &'a dyn Ledger,
        docs: Vec<Doc>,
        others: Vec<Record>,
        run_id: &'a str,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(self.deliver(ledger, docs, others, run_id))
    }

    fn offline_problems(
        &self,
        ledger: &dyn Ledger,
        origin: &str,
        md: &MappedDocument,
    ) -> Result<Vec<Problem>, TargetError> {
        self.target.offline_problems(ledger, origin, md)
    }

    fn offline_route(
        &self,
        ledger: &dyn Ledger,
        doc: &crate::model::Document,
    ) -> Option<crate::route::Shown> {
        self.target.offline_route(ledger, doc)
    }
}

mod contended;
mod outcome;
use outcome::apply;
#[cfg(test)]
mod tests;
mod turns;
