//! The French approved platform (PA) target, `kind = "afnor-pa"` (SPEC §9, first step): each
//! EN 16931 e-invoice (CII, UBL or Factur-X) is sent as one flow through the AFNOR XP Z12-013 Flow API,
//! with `trackingId` derived from its ledger key ([`tracking_id`]). The API has no idempotency
//! key, so a flow whose outcome is unknown (a timeout, a 5xx, a crash after the send) stays
//! claimed and is searched by `trackingId` before anything is sent again; an
//! `AlreadyExistingFlow` answer is settled the same way. The acknowledgement is then followed
//! through searches of the flows changed since the last read ([`acks`]):
//! `Ok` keeps the record delivered (accepted by the PA), `Error` rejects it with the PA's reasons.
//!
//! Routes (`crate::route`): a B2B document (and a public buyer's with `public_buyers = "pa"`)
//! is sent to the address the PA's directory gives its buyer's SIREN ([`directory`], cached per
//! SIREN), written as BT-49 with the BAR note of its route; B2C, international and out-of-scope
//! sales are held for e-reporting (issue 15), never sent as B2B. The file is the French core CII
//! or UBL, or a Factur-X (PDF/A-3) carrying the CII. The lifecycle statuses (CDAR) are read at
//! each poll ([`lifecycle`], [`cdar`]).

pub mod acks;
pub mod api;
pub mod cashed;
pub mod cashed_run;
pub mod cdar;
pub mod cdar_write;
pub mod config;
pub mod directory;
mod facturx;
pub mod feed;
pub mod inbox;
pub mod lifecycle;
pub mod respond;
mod routing;
pub mod status_run;
pub mod webhook;

pub use routing::PaReady;

use std::sync::Arc;

use base64::Engine as _;
use chrono::Datelike;
use serde_json::json;
use sha2::{Digest, Sha256};

use self::api::{Flow, PaApi, PaError};
use self::config::{PaConfig, PaSyntax};
use super::driver::{Found, Lot, LotDoc, Outcome, Polled, Receipt, Resent, Target};
use super::{remote, TargetError};
use crate::einvoice::Syntax;
use crate::format::Layout;
use crate::ledger::{Ledger, Record, RecordKey, State};
use crate::mapping::MappedDocument;
use crate::problem::Problem;
use crate::route::{self, PublicBuyers, Route};

/// The `trackingId` of a record: `facto-` and 40 hex digits of the SHA-256 of its ledger key
/// (job, target, document id). Hashed because document ids are free text of any length, and
/// the API takes at most 64 characters; stable because the key never changes, so a resend
/// after a lost answer carries the same id, and a search finds the first flow.
pub fn tracking_id(key: &RecordKey) -> String {
    let mut h = Sha256::new();
    for part in [&key.job, &key.target, &key.doc_id] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("facto-{}", &hex::encode(h.finalize())[..40])
}

/// How the remote status of a record reads an acknowledgement status.
fn ack(status: &str) -> String {
    format!("ack {status}")
}

/// The ledger value holding a flow's file between its claim and its answer, so that a flow
/// still unknown after the lookup grace is sent again identical, with the same `trackingId`.
fn stored_key(tracking_id: &str) -> String {
    format!("pa-flow\0{tracking_id}")
}

/// How a flow whose outcome is unknown is found again.
const LOOKED_UP: &str = "the PA is searched by trackingId before anything is sent again";

/// One run's delivery to a PA.
pub struct PaRun {
    name: String,
    cfg: PaConfig,
    api: Option<PaApi>,
    /// Where the documents' invoice PDFs are read from (Factur-X).
    attachments: crate::source::attachments::AttachmentRoots,
    /// The directory lines looked up in this run, per SIREN: one search per SIREN and run.
    looked_up: std::collections::BTreeMap<String, Vec<directory::Line>>,
    /// The company's wording of the PMT, PMD and AAB notes (`[company.invoice_notes]`).
    notes: crate::company::InvoiceNotes,
}

/// What a flow carries: an invoice in the connector's syntax, or a lifecycle status (CDAR)
/// facto emits ([`cashed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSyntax {
    /// An e-invoice (CII, UBL or Factur-X).
    Invoice(PaSyntax),
    /// A lifecycle status (`flowSyntax = CDAR`).
    Cdar,
}

impl FlowSyntax {
    /// The `flowSyntax` value of the Flow API.
    fn flow_syntax(self) -> &'static str {
        match self {
            FlowSyntax::Invoice(s) => s.flow_syntax(),
            FlowSyntax::Cdar => "CDAR",
        }
    }

    /// The MIME type of the file sent.
    fn mime(self) -> &'static str {
        match self {
            FlowSyntax::Invoice(s) => s.mime(),
            FlowSyntax::Cdar => "application/xml",
        }
    }

    /// As the ledger keeps it beside a flow's file: the connector's word, or `cdar`.
    fn stored(self) -> serde_json::Value {
        match self {
            FlowSyntax::Invoice(s) => json!(s),
            FlowSyntax::Cdar => json!("cdar"),
        }
    }

    /// Read back from [`FlowSyntax::stored`]; `default` for a file kept before it was.
    fn from_stored(v: &serde_json::Value, default: PaSyntax) -> FlowSyntax {
        match v.as_str() {
            Some("cdar") => FlowSyntax::Cdar,
            _ => FlowSyntax::Invoice(serde_json::from_value(v.clone()).unwrap_or(default)),
        }
    }
}

/// One flow: the file, its name, its `trackingId` and its `processingRule`.
pub struct PaFlow {
    file: Vec<u8>,
    file_name: String,
    tracking_id: String,
    processing_rule: Option<String>,
    /// Its syntax, as it was packed: a resend keeps it even if the connector changed since.
    syntax: FlowSyntax,
}

impl PaFlow {
    /// The ledger value that keeps the flow from its claim to its answer (for a resend).
    fn kept(&self) -> (String, serde_json::Value) {
        (
            stored_key(&self.tracking_id),
            json!({
                "name": self.file_name,
                "file": base64::engine::general_purpose::STANDARD.encode(&self.file),
                "processingRule": self.processing_rule,
                "syntax": self.syntax.stored(),
            }),
        )
    }
}

impl PaRun {
    /// Prepares a run; the secrets are read now (not in a dry run, which calls nothing).
    ///
    /// # Errors
    ///
    /// A secret is missing from the environment.
    pub fn new(name: &str, cfg: &PaConfig, dry_run: bool) -> Result<Self, TargetError> {
        Ok(PaRun {
            api: super::client(name, dry_run, || PaApi::new(cfg))?,
            name: name.to_owned(),
            cfg: cfg.clone(),
            attachments: Default::default(),
            looked_up: std::collections::BTreeMap::new(),
            notes: Default::default(),
        })
    }

    /// The document layout of a connector: the French core invoice (the reform's "socle", checked
    /// against facto's BR-FR rules before anything is sent), for the PA's route: every document
    /// but public buyers' when a Chorus Pro target of the job takes those (`pa-b2b`), else every
    /// document (`pa-b2g`: sent with `public_buyers = "pa"`, held without a Chorus Pro target).
    pub fn layout(cfg: &PaConfig) -> Layout {
        Layout {
            route: Some(match (cfg.public_buyers, cfg.chorus_in_job) {
                (PublicBuyers::Chorus, true) => Route::PaB2b,
                _ => Route::PaB2g,
            }),
            ..Layout::french_core(match cfg.syntax {
                PaSyntax::Cii | PaSyntax::Facturx => Syntax::Cii,
                PaSyntax::Ubl => Syntax::Ubl,
            })
        }
    }

    fn api(&self) -> Result<&PaApi, TargetError> {
        self.api
            .as_ref()
            .ok_or_else(|| TargetError::Config("the PA is not called in a dry run".into()))
    }

    /// The flow that stands for a document among those of its `trackingId`: accepted first,
    /// then pending, then refused (a duplicate last).
    fn best(flows: Vec<Flow>) -> Option<Flow> {
        flows.into_iter().min_by_key(|f| match f.ack_status() {
            "Ok" => 0,
            "Pending" => 1,
            _ if f
                .acknowledgement
                .as_ref()
                .is_some_and(api::Ack::only_duplicate) =>
            {
                3
            }
            _ => 2,
        })
    }

    /// A flow found at the PA, as the record takes it (its acknowledgement is polled).
    fn found(flow: &Flow, why: &str) -> Found {
        Found {
            state: State::Delivered,
            receipt: Receipt {
                remote_id: Some(flow.flow_id.clone()),
                status: Some(ack(flow.ack_status())),
                key: None,
                note: format!("{why} (flow {}): not sent again", flow.flow_id),
            },
        }
    }

    /// Sends one flow and classifies the answer.
    async fn deliver(&self, f: &PaFlow) -> Result<Outcome, TargetError> {
        let api = self.api()?;
        let result = api
            .create_flow(
                &f.file,
                &f.file_name,
                f.syntax.flow_syntax(),
                f.syntax.mime(),
                &f.tracking_id,
                f.processing_rule.as_deref(),
            )
            .await;
        Ok(match result {
            Ok(created) => Outcome::Delivered(Receipt {
                remote_id: Some(created.flow_id.clone()),
                status: Some(ack("Pending")),
                key: None,
                note: format!(
                    "sent to the PA, flow {} (trackingId {})",
                    created.flow_id, f.tracking_id
                ),
            }),
            // The PA already holds a flow of it: ours when its trackingId is.
            Err(PaError::AlreadyExisting(why)) => match api.search(&f.tracking_id).await {
                Ok(flows) => match Self::best(flows) {
                    Some(flow) => {
                        let found = Self::found(&flow, "the PA already held it");
                        Outcome::Delivered(found.receipt)
                    }
                    None => Outcome::refused(
                        format!(
                            "the PA answered AlreadyExistingFlow ({why}) but lists no flow of trackingId {}: the invoice was sent another way, or the PA does not list facto's earlier flow yet; check at the PA before `facto ledger retry`",
                            f.tracking_id
                        ),
                        "refused by the PA as a duplicate",
                    ),
                },
                Err(e) => Outcome::Uncertain {
                    error: format!("the PA answered AlreadyExistingFlow, and its search failed: {e}; {LOOKED_UP}"),
                    stop: remote(&self.name, &e),
                },
            },
            Err(e @ PaError::Refused { .. }) => Outcome::refused(e.to_string(), "refused by the PA"),
            Err(e) => Outcome::failed(&self.name, &e, LOOKED_UP, "not sent"),
        })
    }

    /// The file name of a document's flow (the PA shows it).
    fn file_name(&self, number: &str) -> String {
        // `name` holds at most 255 characters; the trackingId, not the name, identifies it.
        let safe: String = crate::fsutil::safe_name(number).chars().take(200).collect();
        match self.cfg.syntax {
            PaSyntax::Facturx => format!("{safe}.pdf"),
            s => format!("{}_{safe}.xml", s.flow_syntax()),
        }
    }
}

impl Target for PaRun {
    type Ready = PaReady;
    type Payload = PaFlow;

    fn name(&self) -> &str {
        &self.name
    }

    fn grace_minutes(&self) -> u64 {
        self.cfg.lookup_grace_minutes
    }

    /// One invoice per flow (the Flow API's rule).
    fn lot_size(&self) -> usize {
        1
    }

    fn layout(&self) -> Option<Layout> {
        Some(Self::layout(&self.cfg))
    }

    /// What facto's directory cache already says holds a B2B document (no directory
    /// configured, a SIREN with no usable line); nothing is called.
    fn offline_problems(
        &self,
        ledger: &dyn Ledger,
        _origin: &str,
        md: &MappedDocument,
    ) -> Result<Vec<Problem>, TargetError> {
        self.cached_problems(ledger, md)
    }

    /// The route, and the address from facto's directory cache only (`preview` calls nothing:
    /// the directory is looked up at send time).
    fn offline_route(
        &self,
        ledger: &dyn Ledger,
        doc: &crate::model::Document,
    ) -> Option<route::Shown> {
        self.shown_route(ledger, doc)
    }

    /// Its route, and for a document sent: the directory's address for its buyer (looked up
    /// again when the cached answer has expired).
    async fn check(
        &mut self,
        ledger: &dyn Ledger,
        md: &MappedDocument,
        rec: &Record,
    ) -> Result<Result<PaReady, Vec<Problem>>, TargetError> {
        let ready = match self.route(ledger, md).await? {
            Ok(ready) => ready,
            Err(problems) => return Ok(Err(problems)),
        };
        // A Factur-X that cannot be made holds the document (a source PDF that is not one).
        if self.cfg.syntax == PaSyntax::Facturx {
            if let Err(p) = self.flow_file(&ready.md, rec) {
                return Ok(Err(vec![p]));
            }
        }
        Ok(Ok(ready))
    }

    /// The document as the e-invoice writer makes it (with the directory's BT-49 and its BAR
    /// note), with its `trackingId` and the `processingRule` of its route.
    async fn pack(
        &mut self,
        docs: Vec<(Arc<MappedDocument>, Record, PaReady)>,
        _run_id: &str,
    ) -> Result<Lot<PaFlow>, TargetError> {
        let mut lot_docs = Vec::with_capacity(1);
        let mut flow = None;
        let mut values = Vec::new();
        let mut routed = String::new();
        for (_, rec, ready) in docs {
            let md = ready.md;
            let file = self
                .flow_file(&md, &rec)
                .map_err(|p| TargetError::Config(format!("{}: {p}", md.doc.number)))?;
            let tracking = tracking_id(&rec.key);
            // How its lifecycle statuses find it: (BT-1, seller SIREN, BT-2 year).
            if let Some(siren) = crate::einvoice::siren(&md.doc.seller) {
                values.push((
                    lifecycle::index_key(
                        &self.name,
                        siren,
                        md.doc.issue_date.year(),
                        &md.doc.number,
                    ),
                    lifecycle::index_value(&rec.key),
                ));
            }
            lot_docs.push(LotDoc {
                payload_hash: hex::encode(Sha256::digest(&file)),
                md: Arc::clone(&md),
                rec,
            });
            if flow.is_none() {
                routed = format!(
                    "route {} to {} ({})",
                    ready.route.as_str(),
                    ready.address,
                    ready.why
                );
            }
            flow.get_or_insert(PaFlow {
                file_name: self.file_name(&md.doc.number),
                file,
                tracking_id: tracking,
                processing_rule: Some(ready.route.processing_rule().to_owned()),
                syntax: FlowSyntax::Invoice(self.cfg.syntax),
            });
        }
        let flow = flow.ok_or_else(|| TargetError::Config("an empty lot".into()))?;
        values.push(flow.kept());
        Ok(Lot {
            docs: lot_docs,
            label: format!(
                "PA flow {} (trackingId {}), {routed}",
                flow.file_name, flow.tracking_id
            ),
            key: Some(flow.tracking_id.clone()),
            values,
            payload: flow,
        })
    }

    async fn send(
        &mut self,
        _ledger: &dyn Ledger,
        lot: &Lot<PaFlow>,
    ) -> Result<Outcome, TargetError> {
        self.deliver(&lot.payload).await
    }

    /// The file is no longer needed once the answer is recorded.
    async fn settle(
        &mut self,
        ledger: &dyn Ledger,
        lot: &Lot<PaFlow>,
        _recs: &mut [Record],
    ) -> Result<(), TargetError> {
        ledger.put_value(
            &stored_key(&lot.payload.tracking_id),
            &serde_json::Value::Null,
        )?;
        Ok(())
    }

    /// The flow, identical and with the same `trackingId`, when the PA still does not list it
    /// after the lookup grace (the Flow API's own rule: search, then send again).
    async fn resend(
        &mut self,
        ledger: &dyn Ledger,
        claimed: &[Record],
    ) -> Result<Option<Resent>, TargetError> {
        let Some(r) = claimed.first() else {
            return Ok(None);
        };
        let tracking = tracking_id(&r.key);
        let stored = ledger.value(&stored_key(&tracking))?.unwrap_or_default();
        let file = stored["file"]
            .as_str()
            .and_then(|f| base64::engine::general_purpose::STANDARD.decode(f).ok());
        let (Some(file), Some(name)) = (file, stored["name"].as_str()) else {
            return Ok(None);
        };
        let flow = PaFlow {
            file,
            file_name: name.to_owned(),
            tracking_id: tracking.clone(),
            processing_rule: stored["processingRule"].as_str().map(str::to_owned),
            // Stored before this was kept: the connector's syntax, as then.
            syntax: FlowSyntax::from_stored(&stored["syntax"], self.cfg.syntax),
        };
        let outcome = self.deliver(&flow).await?;
        // Kept while the outcome is unknown again: the next lookup may need to send it again.
        if !matches!(outcome, Outcome::Uncertain { .. }) {
            ledger.put_value(&stored_key(&tracking), &serde_json::Value::Null)?;
        }
        Ok(Some(Resent {
            outcome,
            notes: vec![format!(
                "{} ({}): not at the PA {} minutes after an interrupted send: sent again with the same trackingId {tracking}",
                r.number, self.name, self.cfg.lookup_grace_minutes
            )],
        }))
    }

    /// By `trackingId` (`POST /v1/flows/search`).
    async fn lookup(&mut self, r: &Record) -> Result<Option<Found>, TargetError> {
        let flows = self
            .api()?
            .search(&tracking_id(&r.key))
            .await
            .map_err(|e| remote(&self.name, &e))?;
        let flows = flows
            .into_iter()
            .filter(|f| !rejected_before(r, &f.flow_id))
            .collect();
        Ok(Self::best(flows).map(|f| Self::found(&f, "found at the PA after an interrupted send")))
    }

    fn waiting_note(&self) -> String {
        "send interrupted; the PA does not list its trackingId yet, searched again at the next run"
            .into()
    }

    fn released_note(&self) -> String {
        format!(
            "not at the PA {} minutes after an interrupted send: released to be sent again (same trackingId)",
            self.cfg.lookup_grace_minutes
        )
    }

    /// Acknowledgements of the flows not yet acknowledged `Ok`, searched ([`acks`]), then the
    /// lifecycle statuses ([`lifecycle`]).
    async fn poll(
        &mut self,
        ledger: &dyn Ledger,
        live: Vec<Record>,
    ) -> Result<Polled, TargetError> {
        let mut polled = self.poll_acks(ledger, live).await?;
        lifecycle::follow(self.api()?, &self.name, ledger, &mut polled).await?;
        Ok(polled)
    }
}

impl PaRun {
    /// The acknowledgements of the flows waiting for one: a search of facto's flows changed
    /// since the last run, then at most `poll_max_flows` flows read one by one ([`acks`]).
    async fn poll_acks(
        &mut self,
        ledger: &dyn Ledger,
        live: Vec<Record>,
    ) -> Result<Polled, TargetError> {
        acks::poll(
            self.api()?,
            &self.name,
            self.cfg.poll_max_flows,
            ledger,
            live,
        )
        .await
    }
}

/// Whether `flow_id` is a flow of this record that the PA acknowledged `Error` before (the
/// record was then retried): never the answer to a later send of the same `trackingId`.
fn rejected_before(r: &Record, flow_id: &str) -> bool {
    let mark = format!("flow {flow_id}: acknowledgement Error");
    r.history.iter().any(|e| e.note.starts_with(&mark))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flow_rejected_before_a_retry_is_not_taken_for_the_new_send() {
        let key = RecordKey {
            job: "sales".into(),
            target: "pa".into(),
            doc_id: "F1".into(),
        };
        let now = chrono::Utc::now();
        let mut r = Record::new(key, now);
        assert!(!rejected_before(&r, "flow-0001"));
        r.transition(
            State::Rejected,
            "flow flow-0001: acknowledgement Error: InvalidSchema: BT-49 missing",
            now,
        );
        r.transition(State::Released, "retry asked from the command line", now);
        assert!(rejected_before(&r, "flow-0001"));
        assert!(!rejected_before(&r, "flow-0002"));
        assert!(!rejected_before(&r, "flow-000"));
    }

    #[test]
    fn tracking_ids_are_stable_short_and_per_record() {
        let key = |doc: &str| RecordKey {
            job: "sales".into(),
            target: "pa".into(),
            doc_id: doc.into(),
        };
        let a = tracking_id(&key("F2026-0001"));
        assert_eq!(a, tracking_id(&key("F2026-0001")));
        assert_eq!(a.len(), 46);
        assert!(a.starts_with("facto-") && a[6..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, tracking_id(&key("F2026-0002")));
        assert_eq!(tracking_id(&key(&"x".repeat(5000))).len(), 46);
    }
}
