//! The statuses facto emits to a PA (the seller's 212, [`super::cashed_run`]; the buyer's 204,
//! 205, 207 and 210, [`super::respond`]) go through the same exactly-once protocol as invoices
//! ([`crate::targets::Driven`]): one ledger record per status, claimed and flushed before its
//! CDAR flow is posted, searched by `trackingId` after a lost answer or a crash. This wrapper
//! is that protocol's side for any status: what differs (the checks and the message) is the
//! [`StatusKind`]'s; the sending, the lookup and the resend are the PA's ([`PaRun`]).

use std::future::Future;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{tracking_id, FlowSyntax, PaFlow, PaRun};
use crate::ledger::{Ledger, Record};
use crate::mapping::MappedDocument;
use crate::problem::Problem;
use crate::targets::driver::{Found, Lot, LotDoc, Outcome, Polled, Resent, Target};
use crate::targets::TargetError;

/// One status message, ready to post.
pub struct Message {
    /// The flow's file name (the PA shows it).
    pub file_name: String,
    /// The CDAR.
    pub file: Vec<u8>,
    /// What the ledger's history says was claimed.
    pub label: String,
}

/// What one kind of status adds to the protocol: its checks and its message.
pub trait StatusKind: Send + Sync {
    /// What its checks learned.
    type Ready: Send;
    /// The ledger target of its records (`<pa>#212`).
    fn target(&self) -> &str;
    /// The PA it goes through.
    fn pa(&self) -> &PaRun;
    /// The same, to call it.
    fn pa_mut(&mut self) -> &mut PaRun;
    /// Checks one record's status: ready, or held with its problems.
    fn check(
        &mut self,
        ledger: &dyn Ledger,
        md: &MappedDocument,
        rec: &Record,
    ) -> impl Future<Output = Result<Result<Self::Ready, Vec<Problem>>, TargetError>> + Send;
    /// Its message.
    fn message(&self, md: &MappedDocument, ready: &Self::Ready) -> Message;
}

/// A [`StatusKind`] driven as a target.
pub struct StatusRun<K>(pub K);

impl<K: StatusKind> Target for StatusRun<K> {
    type Ready = K::Ready;
    type Payload = PaFlow;

    fn name(&self) -> &str {
        self.0.target()
    }

    fn grace_minutes(&self) -> u64 {
        self.0.pa().cfg.lookup_grace_minutes
    }

    async fn check(
        &mut self,
        ledger: &dyn Ledger,
        md: &MappedDocument,
        rec: &Record,
    ) -> Result<Result<K::Ready, Vec<Problem>>, TargetError> {
        self.0.check(ledger, md, rec).await
    }

    /// One status per flow; its CDAR kept in the ledger until its answer (for a resend).
    async fn pack(
        &mut self,
        docs: Vec<(Arc<MappedDocument>, Record, K::Ready)>,
        _run_id: &str,
    ) -> Result<Lot<PaFlow>, TargetError> {
        let Some((md, rec, ready)) = docs.into_iter().next() else {
            return Err(TargetError::Config("an empty lot".into()));
        };
        let m = self.0.message(&md, &ready);
        let tracking = tracking_id(&rec.key);
        let flow = PaFlow {
            file_name: m.file_name,
            file: m.file,
            tracking_id: tracking.clone(),
            processing_rule: None,
            syntax: FlowSyntax::Cdar,
        };
        let values = vec![flow.kept()];
        Ok(Lot {
            docs: vec![LotDoc {
                payload_hash: hex::encode(Sha256::digest(&flow.file)),
                md,
                rec,
            }],
            label: format!("{}, trackingId {tracking}", m.label),
            key: Some(tracking),
            values,
            payload: flow,
        })
    }

    async fn send(
        &mut self,
        _ledger: &dyn Ledger,
        lot: &Lot<PaFlow>,
    ) -> Result<Outcome, TargetError> {
        self.0.pa_mut().deliver(&lot.payload).await
    }

    async fn settle(
        &mut self,
        ledger: &dyn Ledger,
        lot: &Lot<PaFlow>,
        recs: &mut [Record],
    ) -> Result<(), TargetError> {
        Target::settle(self.0.pa_mut(), ledger, lot, recs).await
    }

    async fn lookup(&mut self, r: &Record) -> Result<Option<Found>, TargetError> {
        Target::lookup(self.0.pa_mut(), r).await
    }

    async fn resend(
        &mut self,
        ledger: &dyn Ledger,
        claimed: &[Record],
    ) -> Result<Option<Resent>, TargetError> {
        Target::resend(self.0.pa_mut(), ledger, claimed).await
    }

    fn waiting_note(&self) -> String {
        self.0.pa().waiting_note()
    }

    fn released_note(&self) -> String {
        self.0.pa().released_note()
    }

    /// A status sent is not followed further (its acknowledgement is the PA's).
    async fn poll(
        &mut self,
        _ledger: &dyn Ledger,
        _live: Vec<Record>,
    ) -> Result<Polled, TargetError> {
        Ok(Polled::default())
    }
}
