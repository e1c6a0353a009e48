//! The Pennylane target (Company API v2): imports each issued invoice or credit note with its PDF
//! (`POST /file_attachments`, then `POST /customer_invoices/import`) with the amounts exactly as
//! the document states them, the ledger account resolved from the mapped account number, the
//! customer found by `external_reference` (the customer id shared with the accounting software)
//! or created. Pennylane has no idempotency key: the record is claimed and flushed with its
//! external reference before the import, and a claimed record is looked up by that reference
//! before anything is sent again. Statuses and payments are read from one paged list of the
//! invoices updated since the newest change seen before (a cursor kept in the ledger).

pub mod api;
pub mod config;
mod lookup;
pub mod vat;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use self::api::{filter_eq, PennylaneApi, PennylaneError};
use self::config::PennylaneConfig;
use super::driver::{Doc, Found, Lot, LotDoc, Outcome, Polled, Receipt, Target};
use super::{remote, TargetError};
use crate::einvoice::InvoiceView;
use crate::ledger::{Ledger, Record, State};
use crate::mapping::MappedDocument;
use crate::model::{AttachmentKind, DocKind, Document};
use crate::problem::Problem;
use crate::source::attachments::AttachmentRoots;

/// Where a connector's OAuth2 tokens live.
pub fn token_path(cfg: &PennylaneConfig, data_dir: &std::path::Path, name: &str) -> PathBuf {
    cfg.token_file
        .clone()
        .unwrap_or_else(|| data_dir.join(format!("pennylane-{name}.json")))
}

/// One run's delivery to a Pennylane company.
pub struct PennylaneRun {
    name: String,
    job: String,
    cfg: PennylaneConfig,
    attachments: AttachmentRoots,
    api: Option<PennylaneApi>,
    accounts: HashMap<String, Vec<(i64, String)>>,
    customers: HashMap<String, i64>,
    /// Customers known to be missing from Pennylane in this run (created without a lookup).
    absent: HashSet<String>,
    /// What the page being delivered will look up, for the bulk lookups.
    wanted: Mutex<lookup::Wanted>,
    /// Whether bulk lookups are used (until Pennylane refuses one).
    bulk: bool,
}

fn money(d: Decimal) -> String {
    format!(
        "{:.2}",
        d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    )
}

/// Account numbers compared without their trailing zeros (`706000` is `706`).
fn account_key(n: &str) -> String {
    let t = n.trim_end_matches('0');
    if t.is_empty() {
        n.to_owned()
    } else {
        t.to_owned()
    }
}

/// The VAT of each line: the document's VAT per rate shared over that rate's lines by their net,
/// the rounding remainder on the largest line, so that the lines add up to the document exactly.
pub fn line_taxes(v: &InvoiceView<'_>) -> Vec<Decimal> {
    let mut out = vec![Decimal::ZERO; v.lines.len()];
    for row in &v.vat {
        let idx: Vec<usize> = v
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.category == row.category && l.rate == row.rate)
            .map(|(i, _)| i)
            .collect();
        if row.base.is_zero() || idx.is_empty() {
            continue;
        }
        let mut given = Decimal::ZERO;
        for &i in &idx {
            // Checked: a tiny base under a large VAT could overflow; such a share is left to
            // the largest line below, so the shares still add up to the VAT.
            let share = row
                .amount
                .checked_mul(v.lines[i].line.net_amount)
                .and_then(|x| x.checked_div(row.base))
                .map(|x| x.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
                .filter(|x| given.checked_add(*x).is_some())
                .unwrap_or_default();
            out[i] = share;
            given += share;
        }
        if let Some(&largest) = idx
            .iter()
            .max_by_key(|&&i| v.lines[i].line.net_amount.abs())
        {
            let rest = row.amount.checked_sub(given).unwrap_or_default();
            out[largest] = out[largest].checked_add(rest).unwrap_or(rest);
        }
    }
    out
}

impl PennylaneRun {
    /// Prepares a run; the token is read now (not in a dry run).
    ///
    /// # Errors
    ///
    /// The token variable is missing.
    pub fn new(
        name: &str,
        job: &str,
        cfg: &PennylaneConfig,
        attachments: AttachmentRoots,
        data_dir: &std::path::Path,
        dry_run: bool,
    ) -> Result<Self, TargetError> {
        Ok(PennylaneRun {
            api: super::client(name, dry_run, || {
                PennylaneApi::new(cfg, name, token_path(cfg, data_dir, name))
            })?,
            name: name.to_owned(),
            job: job.to_owned(),
            cfg: cfg.clone(),
            attachments,
            accounts: HashMap::new(),
            customers: HashMap::new(),
            absent: HashSet::new(),
            wanted: Mutex::new(lookup::Wanted::default()),
            bulk: true,
        })
    }

    fn api(&self) -> Result<&PennylaneApi, TargetError> {
        self.api
            .as_ref()
            .ok_or_else(|| TargetError::Config("Pennylane is not called in a dry run".into()))
    }

    /// The external reference of a document: stable, so a lookup always finds its import.
    pub fn reference(&self, doc_id: &str) -> String {
        format!("{}{}:{doc_id}", self.cfg.reference_prefix, self.job)
    }

    fn pdf(&self, rec: &Record, doc: &Document) -> Result<(String, Vec<u8>), Problem> {
        invoice_pdf(&self.attachments, &rec.origin, doc)
    }

    /// What keeps a document from Pennylane that is known without calling it (for `preview`):
    /// no readable invoice PDF, a tax code without a Pennylane code.
    pub fn offline_problems(
        attachments: &AttachmentRoots,
        origin: &str,
        md: &MappedDocument,
    ) -> Vec<Problem> {
        let mut p = Vec::new();
        if let Err(e) = invoice_pdf(attachments, origin, &md.doc) {
            p.push(e);
        }
        for (i, (l, m)) in md.doc.lines.iter().zip(&md.lines).enumerate() {
            if m.key(config::VAT_RATE).is_none() {
                p.push(vat_problem(i, &l.tax_code));
            }
        }
        p
    }

    async fn credited_invoice(
        &self,
        ledger: &dyn Ledger,
        doc: &Document,
    ) -> Result<Option<i64>, TargetError> {
        let Some(prev) = doc.preceding_invoice.as_deref() else {
            return Ok(None);
        };
        let known = ledger
            .find_in_job(&self.job, prev)?
            .into_iter()
            .filter(|r| r.key.target == self.name)
            .find_map(|r| r.remote_id.and_then(|id| id.parse::<i64>().ok()));
        if known.is_some() {
            return Ok(known);
        }
        let found = self
            .api()?
            .list(
                "/customer_invoices",
                Some(
                    json!([{"field": "invoice_number", "operator": "eq", "value": prev}])
                        .to_string(),
                ),
            )
            .await
            .map_err(|e| remote(&self.name, &e))?;
        Ok(found
            .iter()
            .find(|v| v.get("invoice_number").and_then(Value::as_str) == Some(prev))
            .and_then(|v| v.get("id").and_then(Value::as_i64)))
    }

    /// The import body: amounts as the document states them (negative for a credit note).
    fn body(
        md: &MappedDocument,
        reference: &str,
        attachment: i64,
        customer: i64,
        accounts: &[i64],
        credited: Option<i64>,
    ) -> Value {
        let d = &md.doc;
        let v = InvoiceView::new(md);
        let sign = if d.kind == DocKind::CreditNote {
            -Decimal::ONE
        } else {
            Decimal::ONE
        };
        let taxes = line_taxes(&v);
        let lines: Vec<Value> = v
            .lines
            .iter()
            .zip(&md.lines)
            .zip(taxes.iter().zip(accounts))
            .map(|((l, m), (tax, account))| {
                let net = l.line.net_amount;
                json!({
                    "label": if l.line.description.trim().is_empty() { d.number.clone() } else { l.line.description.clone() },
                    "quantity": crate::targets::num(l.line.quantity),
                    "raw_currency_unit_price": (sign * l.line.unit_price).normalize().to_string(),
                    "unit": l.line.unit,
                    "vat_rate": m.key(config::VAT_RATE),
                    "currency_amount": money(sign * net.saturating_add(*tax)),
                    "currency_tax": money(sign * *tax),
                    "ledger_account_id": account,
                })
            })
            .collect();
        let mut body = json!({
            "file_attachment_id": attachment,
            "customer_id": customer,
            "invoice_number": d.number,
            "external_reference": reference,
            "date": d.issue_date.to_string(),
            "deadline": d.due_date.unwrap_or(d.issue_date).to_string(),
            "currency": d.currency,
            "currency_amount_before_tax": money(sign * d.totals.net),
            "currency_tax": money(sign * d.totals.tax),
            "currency_amount": money(sign * d.totals.gross),
            "invoice_lines": lines,
        });
        if let Some(id) = credited {
            body["credited_invoice_id"] = json!(id);
        }
        if let Some(po) = d
            .purchase_order
            .as_deref()
            .or(d.engagement_number.as_deref())
        {
            body["purchase_order_reference"] = json!(po);
        }
        body
    }
}

/// How an import whose outcome is unknown is found again.
const LOOKED_UP: &str = "looked up by its external reference before any new import";

/// What checking a document found that its import needs.
pub struct Ready {
    pdf: (String, Vec<u8>),
    customer: i64,
    accounts: Vec<i64>,
    credited: Option<i64>,
}

impl Target for PennylaneRun {
    type Ready = Ready;
    type Payload = Value;

    fn name(&self) -> &str {
        &self.name
    }

    fn grace_minutes(&self) -> u64 {
        self.cfg.lookup_grace_minutes
    }

    /// Invoices before credit notes, so that a credit note finds the invoice it credits; notes
    /// the page's customers and accounts, looked up in bulk at its first check.
    fn order(&self, docs: &mut [Doc]) {
        docs.sort_by(|a, b| {
            let key = |m: &MappedDocument| (m.doc.kind == DocKind::CreditNote, m.doc.issue_date);
            key(&a.0).cmp(&key(&b.0))
        });
        self.want(docs);
    }

    fn offline_problems(
        &self,
        _ledger: &dyn Ledger,
        origin: &str,
        md: &MappedDocument,
    ) -> Result<Vec<Problem>, TargetError> {
        Ok(Self::offline_problems(&self.attachments, origin, md))
    }

    /// The PDF, each line's Pennylane VAT code and ledger account, the credited invoice, then
    /// the customer (found by external reference, or created).
    async fn check(
        &mut self,
        ledger: &dyn Ledger,
        md: &MappedDocument,
        rec: &Record,
    ) -> Result<Result<Ready, Vec<Problem>>, TargetError> {
        let d = &md.doc;
        let mut problems = Vec::new();
        let pdf = match self.pdf(rec, d) {
            Ok(p) => Some(p),
            Err(p) => {
                problems.push(p);
                None
            }
        };
        let mut accounts = Vec::new();
        for (i, (l, m)) in d.lines.iter().zip(&md.lines).enumerate() {
            let Some(vat) = m.key(config::VAT_RATE) else {
                problems.push(vat_problem(i, &l.tax_code));
                continue;
            };
            match self.ledger_account(&m.account, vat).await? {
                Some(id) => accounts.push(id),
                None => problems.push(Problem::new(
                    "pennylane-account",
                    format!("lines[{i}]"),
                    format!("account {} is not in Pennylane's chart of accounts", m.account),
                    "create the account in Pennylane, or map the line to an account that exists there",
                )),
            }
        }
        let credited = if d.kind == DocKind::CreditNote {
            let c = self.credited_invoice(ledger, d).await?;
            if c.is_none() {
                problems.push(Problem::new(
                    "pennylane-credited-invoice",
                    "preceding_invoice",
                    format!("the credited invoice {} is not in Pennylane yet", d.preceding_invoice.as_deref().unwrap_or("(none)")),
                    "send the invoice first (it is retried at every run), or set preceding_invoice on the credit note",
                ));
            }
            c
        } else {
            None
        };
        let customer = if problems.is_empty() {
            match self.customer(ledger, d).await? {
                Ok(id) => Some(id),
                Err(p) => {
                    problems.push(p);
                    None
                }
            }
        } else {
            None
        };
        Ok(match (pdf, customer) {
            (Some(pdf), Some(customer)) => Ok(Ready {
                pdf,
                customer,
                accounts,
                credited,
            }),
            _ => Err(problems),
        })
    }

    /// Uploads the PDF, then builds the import (one document per call).
    async fn pack(
        &mut self,
        docs: Vec<(Arc<MappedDocument>, Record, Ready)>,
        _run_id: &str,
    ) -> Result<Lot<Value>, TargetError> {
        let mut lot = Lot {
            docs: Vec::with_capacity(1),
            payload: Value::Null,
            key: None,
            label: String::new(),
            values: Vec::new(),
        };
        for (md, rec, ready) in docs {
            let (name, bytes) = &ready.pdf;
            let attachment = self
                .api()?
                .upload(name, bytes)
                .await
                .map_err(|e| remote(&self.name, &e))?;
            let reference = self.reference(&rec.key.doc_id);
            let body = Self::body(
                &md,
                &reference,
                attachment,
                ready.customer,
                &ready.accounts,
                ready.credited,
            );
            lot.docs.push(LotDoc {
                md,
                rec,
                payload_hash: hex::encode(Sha256::digest(body.to_string().as_bytes())),
            });
            lot.label = format!("Pennylane import {reference}");
            lot.key = Some(reference);
            lot.payload = body;
        }
        Ok(lot)
    }

    async fn send(
        &mut self,
        _ledger: &dyn Ledger,
        lot: &Lot<Value>,
    ) -> Result<Outcome, TargetError> {
        let result = self
            .api()?
            .post("/customer_invoices/import", &lot.payload)
            .await;
        Ok(match result {
            Ok(v) => {
                let id = v.get("id").and_then(Value::as_i64).map(|i| i.to_string());
                Outcome::Delivered(Receipt {
                    note: format!(
                        "imported into Pennylane (id {})",
                        id.as_deref().unwrap_or("?")
                    ),
                    remote_id: id,
                    status: v.get("status").and_then(Value::as_str).map(str::to_owned),
                    key: None,
                })
            }
            Err(PennylaneError::Refused { status, body }) => Outcome::refused(
                format!("Pennylane refused the import (HTTP {status}): {body}"),
                "import refused by Pennylane",
            ),
            Err(e) => Outcome::failed(&self.name, &e, LOOKED_UP, "not imported"),
        })
    }

    /// By external reference (Pennylane has no idempotency key).
    async fn lookup(&mut self, r: &Record) -> Result<Option<Found>, TargetError> {
        let key = self.reference(&r.key.doc_id);
        let found = self
            .api()?
            .list(
                "/customer_invoices",
                Some(filter_eq("external_reference", &key)),
            )
            .await
            .map_err(|e| remote(&self.name, &e))?;
        let id = found
            .iter()
            .find(|v| v.get("external_reference").and_then(Value::as_str) == Some(key.as_str()))
            .and_then(|v| v.get("id"))
            .and_then(Value::as_i64);
        Ok(id.map(|id| Found {
            state: State::Delivered,
            receipt: Receipt {
                remote_id: Some(id.to_string()),
                note: format!(
                    "found in Pennylane after an interrupted import (id {id}): not sent again"
                ),
                ..Receipt::default()
            },
        }))
    }

    fn waiting_note(&self) -> String {
        format!(
            "the import's answer was lost and Pennylane does not list it yet; looked up again at the next run, imported again only if still unknown {} minutes after it was sent",
            self.cfg.lookup_grace_minutes
        )
    }

    fn released_note(&self) -> String {
        format!(
            "not in Pennylane {} minutes after an interrupted import: released to be sent again",
            self.cfg.lookup_grace_minutes
        )
    }

    /// Pennylane's status of imported invoices (`paid` moves the record to paid), from one
    /// paged list of the invoices updated since the last poll (a cursor kept in the ledger),
    /// not one call per invoice.
    async fn poll(
        &mut self,
        ledger: &dyn Ledger,
        live: Vec<Record>,
    ) -> Result<Polled, TargetError> {
        let mut out = Polled::default();
        let mut live: HashMap<i64, Record> = live
            .into_iter()
            .filter(|r| r.kind == "invoice")
            .filter_map(|r| Some((r.remote_id.as_deref()?.parse().ok()?, r)))
            .collect();
        let key = poll_key(&self.name, &self.job);
        let now = Utc::now();
        let stored = ledger
            .value(&key)?
            .and_then(|v| v.as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok()));
        if live.is_empty() {
            // Nothing to follow, no call; the next poll starts from what it will follow.
            if stored.is_some() {
                ledger.put_value(&key, &Value::Null)?;
            }
            return Ok(out);
        }
        // The cursor is Pennylane's own `updated_at` of the newest change seen (its clock, not
        // ours); without one, from the oldest invoice followed, by our clock.
        let since = match stored {
            Some(t) => t - POLL_OVERLAP,
            None => live.values().map(|r| r.updated_at).min().unwrap_or(now) - CLOCK_SKEW,
        };
        let changed = match self
            .api()?
            .list("/customer_invoices", Some(updated_since(since)))
            .await
        {
            Ok(changed) => changed,
            Err(PennylaneError::Refused { status, .. }) => {
                // A company whose API does not filter on `updated_at`: one call per invoice.
                tracing::warn!(
                    target = %self.name,
                    status,
                    "Pennylane refused the updated_at filter; statuses are read one invoice at a time."
                );
                self.each_invoice(live.keys().copied().collect()).await?
            }
            Err(e) => return Err(remote(&self.name, &e)),
        };
        let mut newest = stored;
        for v in changed {
            let updated = v
                .get("updated_at")
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc));
            newest = newest.max(updated);
            let Some(r) = v
                .get("id")
                .and_then(Value::as_i64)
                .and_then(|id| live.remove(&id))
            else {
                continue;
            };
            let paid = v.get("paid").and_then(Value::as_bool) == Some(true);
            let Some(status) = v.get("status").and_then(Value::as_str).map(str::to_owned) else {
                continue;
            };
            if r.remote_status.as_deref() == Some(status.as_str()) {
                continue;
            }
            let paid = (paid || status == "paid").then_some("paid in Pennylane");
            out.status(&self.name, r, &status, paid, now);
        }
        // The records first, then the cursor: a crash between them lists the same changes again.
        ledger.put_records(&std::mem::take(&mut out.changed))?;
        let next = newest.unwrap_or(since);
        ledger.put_value(&key, &json!(next.to_rfc3339()))?;
        Ok(out)
    }
}

impl PennylaneRun {
    /// Each invoice of `ids`, one call each (when the list cannot be filtered by `updated_at`).
    async fn each_invoice(&self, ids: Vec<i64>) -> Result<Vec<Value>, TargetError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(
                self.api()?
                    .get(&format!("/customer_invoices/{id}"), &[])
                    .await
                    .map_err(|e| remote(&self.name, &e))?,
            );
        }
        Ok(out)
    }
}

/// How far back a poll looks before the newest change the previous one saw: a change
/// committed while that poll was listing may carry an earlier `updated_at`. An invoice listed
/// twice is skipped when its status is unchanged.
const POLL_OVERLAP: chrono::Duration = chrono::Duration::minutes(1);

/// How far back the first poll looks before the oldest invoice it follows, whose time is ours
/// while `updated_at` is Pennylane's.
const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(15);

/// The ledger value holding a target's poll cursor for a job (Pennylane's `updated_at`).
fn poll_key(target: &str, job: &str) -> String {
    format!("pennylane-poll\0{target}\0{job}")
}

/// The list filter of invoices updated at or after `since`.
fn updated_since(since: DateTime<Utc>) -> String {
    json!([{"field": "updated_at", "operator": "gteq",
        "value": since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}])
    .to_string()
}

/// The document's invoice PDF: its file name and bytes, read under the attachment rule
/// (inside the source's folders, a PDF, its sha256 checked).
fn invoice_pdf(
    attachments: &AttachmentRoots,
    origin: &str,
    doc: &Document,
) -> Result<(String, Vec<u8>), Problem> {
    let att = doc
        .attachments
        .iter()
        .find(|a| a.kind == AttachmentKind::InvoicePdf && a.path.is_some())
        .ok_or_else(|| {
            Problem::new(
                "pennylane-no-pdf",
                "attachments",
                "no invoice PDF is attached: Pennylane imports an issued invoice with its PDF",
                "attach the invoice PDF in the source (attachments, kind invoice_pdf, with its path)",
            )
        })?;
    let loaded = attachments
        .read(origin, att)
        .map_err(|e| Problem::new(e.code(), "attachments", e.to_string(), e.fix()))?;
    let name = if loaded.name.is_empty() {
        format!("{}.pdf", doc.number)
    } else {
        loaded.name
    };
    Ok((name, loaded.bytes))
}

fn vat_problem(i: usize, tax_code: &str) -> Problem {
    Problem::new(
        "pennylane-vat-rate",
        format!("lines[{i}].tax_code"),
        format!("tax code `{tax_code}` has no Pennylane vat_rate"),
        format!("add pennylane_vat_rate = \"...\" (FR_200, exempt, intracom_21, ...) to [tax.{tax_code}] in the mapping"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::prepare;
    use crate::mapping::tests::{mapping, worked_invoice};

    #[test]
    fn line_taxes_add_up_to_the_vat_per_rate() {
        let m = mapping();
        let mut d = worked_invoice();
        // Three lines at 20 % of 0.99: per-line rounding would give 0.60, the document says 0.59.
        let mut line = d.lines[0].clone();
        line.net_amount = Decimal::new(99, 2);
        line.unit_price = Decimal::new(99, 2);
        line.quantity = Decimal::ONE;
        d.lines = vec![line.clone(), line.clone(), line];
        d.tax_breakdown.truncate(1);
        d.tax_breakdown[0].base = Decimal::new(297, 2);
        d.tax_breakdown[0].amount = Decimal::new(59, 2);
        d.totals.net = Decimal::new(297, 2);
        d.totals.tax = Decimal::new(59, 2);
        d.totals.gross = Decimal::new(356, 2);
        d.totals.due = d.totals.gross;
        let md = prepare(&d, &m).unwrap();
        let taxes = line_taxes(&InvoiceView::new(&md));
        assert_eq!(taxes.iter().copied().sum::<Decimal>(), Decimal::new(59, 2));
        assert_eq!(account_key("706000"), "706");
        assert_eq!(account_key("7061"), "7061");
        let f: Value =
            serde_json::from_str(&updated_since("2026-01-02T03:04:05.678Z".parse().unwrap()))
                .unwrap();
        assert_eq!(
            f,
            json!([{"field": "updated_at", "operator": "gteq", "value": "2026-01-02T03:04:05Z"}]),
            "to the second below: gteq still lists what changed in that second"
        );
        assert_eq!(
            m.tax["TVA55"].key(config::VAT_RATE).as_deref(),
            Some("FR_55"),
            "standard French rates imply their code"
        );
    }
}
