//! The Xero target: sales invoices (`PUT /Invoices`) and credit notes (`PUT /CreditNotes`, then
//! allocated to their invoices, a batch's in one call) in batches of up to 50, each batch
//! under an `Idempotency-Key` derived from its content. The ledger stores the batch (its exact
//! JSON and documents) and claims its records before the call; after a crash or a lost answer
//! the documents are looked up by number, and what is still unknown is sent again as the same
//! batch with the same key, which Xero answers without creating anything twice. A preflight
//! (`GET /Accounts`, `GET /TaxRates`) holds back a document whose account code or tax type Xero
//! does not have; the contacts of a page's customers are found or created in bulk before its
//! documents are checked. Calls per document on a first sync: about 0.05 (see `tests/xero_calls.rs`).

mod allocations;
pub mod api;
pub mod config;
mod contacts;
mod document;
mod reconcile;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use reqwest::Method;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use self::api::{XeroApi, XeroError};
use self::config::XeroConfig;
use self::document::XDoc;
use super::driver::{Doc, Found, Item, Lot, LotDoc, Outcome, Polled, Receipt, Resent, Target};
use super::{remote, TargetError};
use crate::ledger::{Ledger, Record, State};
use crate::mapping::{MappedDocument, Side};
use crate::model::DocKind;
use crate::problem::Problem;
use crate::targets::http::ApiError;

/// Where a connector's tokens live.
pub fn token_path(cfg: &XeroConfig, data_dir: &Path, name: &str) -> PathBuf {
    cfg.token_file
        .clone()
        .unwrap_or_else(|| data_dir.join(format!("xero-{name}.json")))
}

/// One run's delivery to a Xero organisation.
pub struct XeroRun {
    name: String,
    job: String,
    cfg: XeroConfig,
    api: Option<XeroApi>,
    accounts: Option<HashSet<String>>,
    tax_types: Option<HashSet<String>>,
    /// Contact ids by contact number (the customer id), as found or created in this run.
    contacts: HashMap<String, String>,
    /// Why Xero did not create a customer's contact in this run: its documents are held.
    contact_errors: HashMap<String, String>,
    /// Invoices delivered in this run: their status is the one Xero just answered, so the
    /// poll at the end of the run does not ask for it again.
    sent: HashSet<String>,
    /// Sales (invoices to customers) or purchases (bills from suppliers).
    side: Side,
}

fn messages(item: &Value) -> String {
    let mut m: Vec<String> = item
        .get("ValidationErrors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get("Message").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if m.is_empty() {
        m.push("refused without a message".into());
    }
    m.join("; ")
}

impl XeroRun {
    /// Prepares a run; secrets and tokens are read now (not in a dry run).
    ///
    /// # Errors
    ///
    /// A secret is missing or the organisation is not connected.
    pub fn new(
        name: &str,
        job: &str,
        cfg: &XeroConfig,
        data_dir: &Path,
        dry_run: bool,
    ) -> Result<Self, TargetError> {
        Ok(XeroRun {
            api: super::client(name, dry_run, || {
                XeroApi::new(cfg, name, token_path(cfg, data_dir, name))
            })?,
            name: name.to_owned(),
            job: job.to_owned(),
            cfg: cfg.clone(),
            accounts: None,
            tax_types: None,
            contacts: HashMap::new(),
            contact_errors: HashMap::new(),
            sent: HashSet::new(),
            side: Side::Sales,
        })
    }

    /// Delivers the documents of a mapping of this side: a purchases job's supplier invoices
    /// become bills (`ACCPAY`, `ACCPAYCREDIT`) of contacts numbered by the supplier's id.
    #[must_use]
    pub fn for_side(mut self, side: Side) -> Self {
        self.side = side;
        self
    }

    /// Xero's `Type` of a document of this run's side.
    fn doc_type(&self, credit: bool) -> &'static str {
        match (self.side, credit) {
            (Side::Sales, false) => "ACCREC",
            (Side::Sales, true) => "ACCRECCREDIT",
            (Side::Purchases, false) => "ACCPAY",
            (Side::Purchases, true) => "ACCPAYCREDIT",
        }
    }

    /// The contact number and party of a document's counterparty: the customer of a sale, the
    /// supplier of a purchase (by its SIREN, else VAT id, as the purchase mapping files it).
    fn counterparty<'a>(
        &self,
        doc: &'a crate::model::Document,
    ) -> (&'a str, &'a crate::model::Party) {
        match self.side {
            Side::Sales => (doc.customer_id(), &doc.buyer),
            Side::Purchases => (
                crate::mapping::counterparty(doc, Side::Purchases)
                    .0
                    .unwrap_or_default(),
                &doc.seller,
            ),
        }
    }

    fn api(&self) -> Result<&XeroApi, TargetError> {
        self.api
            .as_ref()
            .ok_or_else(|| TargetError::Config("Xero is not called in a dry run".into()))
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, TargetError> {
        self.api()?
            .call(Method::GET, path, query, None, None)
            .await
            .map_err(|e| remote(&self.name, &e))
    }

    async fn read_preflight(&mut self) -> Result<(), TargetError> {
        if self.accounts.is_some() {
            return Ok(());
        }
        let active = |v: &Value, list: &str, field: &str| -> HashSet<String> {
            v.get(list)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter(|x| {
                            x.get("Status")
                                .and_then(Value::as_str)
                                .is_none_or(|s| s == "ACTIVE")
                        })
                        .filter_map(|x| x.get(field).and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let a = self.get("/Accounts", &[]).await?;
        let t = self.get("/TaxRates", &[]).await?;
        self.accounts = Some(active(&a, "Accounts", "Code"));
        self.tax_types = Some(active(&t, "TaxRates", "TaxType"));
        Ok(())
    }

    /// Keeps what the preflight found, so that the mapping editor checks codes against it.
    fn remember_preflight(&self, ledger: &dyn Ledger) -> Result<(), TargetError> {
        let (Some(a), Some(t)) = (&self.accounts, &self.tax_types) else {
            return Ok(());
        };
        ledger.put_value(
            &format!("xero-preflight\0{}", self.name),
            &json!({"read_at": Utc::now(), "accounts": a, "tax_types": t}),
        )?;
        Ok(())
    }

    /// What keeps a document from Xero that is known without calling it (for `preview`): a tax
    /// code without a Xero tax type. Account codes and tax types are checked against the
    /// organisation at the first sync (preflight).
    pub fn offline_problems(md: &MappedDocument) -> Vec<Problem> {
        md.doc
            .lines
            .iter()
            .zip(&md.lines)
            .enumerate()
            .filter(|(_, (_, m))| m.key(config::TAX_TYPE).is_none())
            .map(|(i, (l, _))| tax_type_missing(i, &l.tax_code))
            .collect()
    }

    fn code_problems(&self, md: &MappedDocument) -> Vec<Problem> {
        let mut out = Vec::new();
        let (Some(accounts), Some(taxes)) = (&self.accounts, &self.tax_types) else {
            return out;
        };
        for (i, (l, m)) in md.doc.lines.iter().zip(&md.lines).enumerate() {
            let account_code = m.key(config::ACCOUNT_CODE).unwrap_or_default();
            if !accounts.contains(account_code) {
                out.push(Problem::new(
                    "xero-account",
                    format!("lines[{i}]"),
                    format!(
                        "account code {} is not an active account of the Xero organisation",
                        account_code
                    ),
                    "create it in Xero, or set xero_account_code on the GL mapping entry",
                ));
            }
            match m.key(config::TAX_TYPE) {
                None => out.push(tax_type_missing(i, &l.tax_code)),
                Some(t) if !taxes.contains(t) => out.push(Problem::new(
                    "xero-tax-type",
                    format!("lines[{i}].tax_code"),
                    format!("tax type {t} is not an active tax rate of the Xero organisation"),
                    format!(
                        "create it in Xero, or correct xero_tax_type of [tax.{}]",
                        l.tax_code
                    ),
                )),
                Some(_) => {}
            }
        }
        out
    }

    async fn send_batch(&self, credit: bool, body: &str, key: &str) -> Result<Value, XeroError> {
        let path = if credit { "/CreditNotes" } else { "/Invoices" };
        self.api
            .as_ref()
            .ok_or_else(|| XeroError::Api(ApiError::Config("dry run".into())))?
            .call(
                Method::PUT,
                path,
                &[("summarizeErrors", "false".into()), ("unitdp", "4".into())],
                Some(body),
                Some(key),
            )
            .await
    }
}

/// One batch: invoices or credit notes, its exact JSON and its idempotency key.
pub struct Batch {
    credit: bool,
    body: String,
    key: String,
}

/// Xero's per-item answer of a batch, in request order (`n` items expected).
fn items(answer: &Value, credit: bool, n: usize) -> Vec<Option<Item>> {
    let list = if credit { "CreditNotes" } else { "Invoices" };
    let id_field = if credit { "CreditNoteID" } else { "InvoiceID" };
    let items = answer
        .get(list)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    (0..n)
        .map(|i| {
            let item = items.get(i)?;
            let failed = item
                .get("HasErrors")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                || item.get("StatusAttributeString").and_then(Value::as_str) == Some("ERROR");
            Some(if failed {
                Item::Refused {
                    error: format!("Xero refused it: {}", messages(item)),
                    note: "refused by Xero".into(),
                }
            } else {
                let id = item
                    .get(id_field)
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                Item::Delivered(Receipt {
                    note: format!("sent to Xero ({})", id.as_deref().unwrap_or("?")),
                    remote_id: id,
                    status: item
                        .get("Status")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    key: None,
                })
            })
        })
        .collect()
}

impl Target for XeroRun {
    type Ready = String;
    type Payload = Batch;

    fn name(&self) -> &str {
        &self.name
    }

    fn grace_minutes(&self) -> u64 {
        self.cfg.lookup_grace_minutes
    }

    fn lot_size(&self) -> usize {
        self.cfg.batch_size
    }

    /// Invoices first, so that credit notes can be allocated to them.
    fn order(&self, docs: &mut [Doc]) {
        docs.sort_by_key(|(md, _)| (md.doc.kind == DocKind::CreditNote, md.doc.issue_date));
    }

    /// A batch holds invoices or credit notes, not both.
    fn joins(&self, first: &MappedDocument, next: &MappedDocument) -> bool {
        (first.doc.kind == DocKind::CreditNote) == (next.doc.kind == DocKind::CreditNote)
    }

    fn offline_problems(
        &self,
        _ledger: &dyn Ledger,
        _origin: &str,
        md: &MappedDocument,
    ) -> Result<Vec<Problem>, TargetError> {
        Ok(Self::offline_problems(md))
    }

    /// The organisation's active accounts and tax rates, kept for the mapping editor.
    async fn preflight(&mut self, ledger: &dyn Ledger) -> Result<(), TargetError> {
        if self.accounts.is_some() {
            return Ok(());
        }
        self.read_preflight().await?;
        self.remember_preflight(ledger)
    }

    /// The contacts of the page's customers, found or created in bulk (documents whose codes
    /// Xero lacks are held, so their customers are left out).
    async fn prepare(&mut self, ledger: &dyn Ledger, docs: &[Doc]) -> Result<(), TargetError> {
        let mds: Vec<&MappedDocument> = docs
            .iter()
            .map(|(md, _)| md.as_ref())
            .filter(|md| self.code_problems(md).is_empty())
            .collect();
        self.resolve_contacts(ledger, &mds).await
    }

    /// Account codes and tax types against the preflight, then the contact (found or created).
    async fn check(
        &mut self,
        ledger: &dyn Ledger,
        md: &MappedDocument,
        _rec: &Record,
    ) -> Result<Result<String, Vec<Problem>>, TargetError> {
        let problems = self.code_problems(md);
        if !problems.is_empty() {
            return Ok(Err(problems));
        }
        self.contact(ledger, md).await
    }

    /// The batch's JSON, and its key derived from its content; the batch is stored with the
    /// claim, so that a lost answer is sent again identical.
    async fn pack(
        &mut self,
        docs: Vec<(Arc<MappedDocument>, Record, String)>,
        _run_id: &str,
    ) -> Result<Lot<Batch>, TargetError> {
        let credit = docs
            .first()
            .is_some_and(|(md, _, _)| md.doc.kind == DocKind::CreditNote);
        let xdocs: Vec<XDoc> = docs
            .iter()
            .map(|(md, _, c)| self.document(md, c.clone()))
            .collect();
        let list = if credit { "CreditNotes" } else { "Invoices" };
        #[derive(Serialize)]
        struct Wrap<'a> {
            #[serde(rename = "Invoices", skip_serializing_if = "Option::is_none")]
            invoices: Option<&'a [XDoc]>,
            #[serde(rename = "CreditNotes", skip_serializing_if = "Option::is_none")]
            credit_notes: Option<&'a [XDoc]>,
        }
        let w = Wrap {
            invoices: (!credit).then_some(xdocs.as_slice()),
            credit_notes: credit.then_some(xdocs.as_slice()),
        };
        let body = serde_json::to_string(&w).unwrap_or_else(|_| "{}".into());
        let ids: Vec<String> = docs.iter().map(|(_, r, _)| r.key.doc_id.clone()).collect();
        let key = format!(
            "facto-{}",
            &hex::encode(Sha256::digest(format!(
                "{}\0{}\0{list}\0{body}",
                self.job, self.name
            )))[..48]
        );
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        Ok(Lot {
            docs: docs
                .into_iter()
                .map(|(md, rec, _)| LotDoc {
                    md,
                    rec,
                    payload_hash: hash.clone(),
                })
                .collect(),
            values: vec![(
                format!("xero-batch\0{key}"),
                json!({"credit": credit, "body": body, "docs": ids}),
            )],
            label: format!("Xero batch {key}"),
            key: Some(key.clone()),
            payload: Batch { credit, body, key },
        })
    }

    async fn send(
        &mut self,
        _ledger: &dyn Ledger,
        lot: &Lot<Batch>,
    ) -> Result<Outcome, TargetError> {
        let b = &lot.payload;
        Ok(match self.send_batch(b.credit, &b.body, &b.key).await {
            Ok(answer) => Outcome::Partial(items(&answer, b.credit, lot.docs.len())),
            // Refused before processing: nothing was created.
            Err(
                e @ (XeroError::Api(ApiError::Auth(_) | ApiError::Config(_))
                | XeroError::DailyLimit(_)),
            ) => Outcome::NotSent {
                error: e.to_string(),
                note: format!("not sent: {e}"),
                stop: remote(&self.name, &e),
            },
            Err(XeroError::Api(ApiError::Http(HttpFailure::Refused {
                status: 400, body, ..
            }))) => Outcome::Refused {
                error: format!("Xero refused the batch: {body}"),
                note: "batch refused by Xero".into(),
            },
            // Maybe processed: the batch is sent again, same key, at the next run.
            Err(e) => Outcome::Uncertain {
                error: format!("{e}; sent again under the same idempotency key at the next run"),
                stop: remote(&self.name, &e),
            },
        })
    }

    /// Credit notes delivered are allocated to the invoices they credit, the batch's in one
    /// call; invoices delivered are remembered, so that this run's poll skips them.
    async fn settle(
        &mut self,
        ledger: &dyn Ledger,
        lot: &Lot<Batch>,
        recs: &mut [Record],
    ) -> Result<(), TargetError> {
        if !lot.payload.credit {
            self.sent.extend(
                recs.iter()
                    .filter(|r| r.state == State::Delivered)
                    .filter_map(|r| r.remote_id.clone()),
            );
            return Ok(());
        }
        self.allocate(ledger, lot, recs).await
    }

    /// By batch: the records that went in one call share its idempotency key.
    fn claimed_lots(&self, claimed: Vec<Record>) -> Vec<Vec<Record>> {
        let mut by_key: std::collections::BTreeMap<String, Vec<Record>> = Default::default();
        for r in claimed {
            by_key
                .entry(r.idempotency_key.clone().unwrap_or_default())
                .or_default()
                .push(r);
        }
        by_key.into_values().collect()
    }

    async fn lookup(&mut self, r: &Record) -> Result<Option<Found>, TargetError> {
        Ok(self
            .find_by_number(std::slice::from_ref(r))
            .await?
            .pop()
            .flatten())
    }

    /// A batch in one call.
    async fn lookup_lot(&mut self, claimed: &[Record]) -> Result<Vec<Option<Found>>, TargetError> {
        self.find_by_number(claimed).await
    }

    async fn resend(
        &mut self,
        ledger: &dyn Ledger,
        claimed: &[Record],
    ) -> Result<Option<Resent>, TargetError> {
        self.send_stored(ledger, claimed).await
    }

    fn waiting_note(&self) -> String {
        format!(
            "the batch's answer was lost and Xero does not list it yet; looked up again at the next run, sent again (same idempotency key) only if still unknown {} minutes after it was sent",
            self.cfg.lookup_grace_minutes
        )
    }

    fn released_note(&self) -> String {
        "claim without a stored batch: released".into()
    }

    async fn poll(
        &mut self,
        ledger: &dyn Ledger,
        live: Vec<Record>,
    ) -> Result<Polled, TargetError> {
        self.follow(ledger, live).await
    }
}

use crate::retry::HttpFailure;

fn tax_type_missing(i: usize, tax_code: &str) -> Problem {
    Problem::new(
        "xero-tax-type",
        format!("lines[{i}].tax_code"),
        format!("tax code `{tax_code}` has no Xero tax type"),
        format!("add xero_tax_type = \"...\" (from Xero's tax rates) to [tax.{tax_code}] in the mapping"),
    )
}
