//! The Xero target: sales invoices (`PUT /Invoices`) and credit notes (`PUT /CreditNotes`, then
//! allocated to their invoice) in batches of up to 50, each batch under an `Idempotency-Key`
//! derived from its content. The ledger stores the batch (its exact JSON and documents) and
//! claims its records before the call; after a crash or a lost answer the documents are looked
//! up by number, and what is still unknown is sent again as the same batch with the same key,
//! which Xero answers without creating anything twice. A preflight (`GET /Accounts`,
//! `GET /TaxRates`) holds back a document whose account code or tax type Xero does not have.

pub mod api;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use reqwest::Method;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use self::api::{XeroApi, XeroError};
use super::{Num, TargetError};
use crate::config::XeroConfig;
use crate::einvoice::InvoiceView;
use crate::fault;
use crate::ledger::{Ledger, Record, RecordFilter, State};
use crate::mapping::MappedDocument;
use crate::model::DocKind;
use crate::problem::Problem;
use crate::target::pennylane::line_taxes;

/// Where a connector's tokens live.
pub fn token_path(cfg: &XeroConfig, data_dir: &Path, name: &str) -> PathBuf {
    cfg.token_file
        .clone()
        .unwrap_or_else(|| data_dir.join(format!("xero-{name}.json")))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct XLine {
    description: String,
    quantity: Num,
    unit_amount: Num,
    account_code: String,
    tax_type: String,
    tax_amount: Num,
    line_amount: Num,
    #[serde(skip_serializing_if = "Option::is_none")]
    discount_amount: Option<Num>,
}

#[derive(Serialize)]
struct XContact {
    #[serde(rename = "ContactID")]
    contact_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct XDoc {
    #[serde(rename = "Type")]
    kind: &'static str,
    contact: XContact,
    date: String,
    due_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    invoice_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credit_note_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    status: &'static str,
    line_amount_types: &'static str,
    currency_code: String,
    line_items: Vec<XLine>,
}

fn remote(target: &str, e: &XeroError) -> TargetError {
    match e {
        XeroError::Config(m) => TargetError::Config(m.clone()),
        e => TargetError::Remote {
            target: target.to_owned(),
            detail: e.to_string(),
        },
    }
}

/// One run's delivery to a Xero organisation.
pub struct XeroRun {
    name: String,
    job: String,
    cfg: XeroConfig,
    api: Option<XeroApi>,
    dry_run: bool,
    delivered: u64,
    accounts: Option<HashSet<String>>,
    tax_types: Option<HashSet<String>>,
    contacts: HashMap<String, String>,
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
        let api = if dry_run {
            None
        } else {
            Some(
                XeroApi::new(cfg, name, token_path(cfg, data_dir, name))
                    .map_err(|e| remote(name, &e))?,
            )
        };
        Ok(XeroRun {
            name: name.to_owned(),
            job: job.to_owned(),
            cfg: cfg.clone(),
            api,
            dry_run,
            delivered: 0,
            accounts: None,
            tax_types: None,
            contacts: HashMap::new(),
        })
    }

    /// Target name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Documents sent in this run.
    pub fn delivered(&self) -> u64 {
        self.delivered
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

    async fn preflight(&mut self) -> Result<(), TargetError> {
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
            .filter(|(_, (_, m))| m.xero_tax_type.is_none())
            .map(|(i, (l, _))| tax_type_missing(i, &l.tax_code))
            .collect()
    }

    fn check(&self, md: &MappedDocument) -> Vec<Problem> {
        let mut out = Vec::new();
        let (Some(accounts), Some(taxes)) = (&self.accounts, &self.tax_types) else {
            return out;
        };
        for (i, (l, m)) in md.doc.lines.iter().zip(&md.lines).enumerate() {
            if !accounts.contains(&m.xero_account_code) {
                out.push(Problem::new(
                    "xero-account",
                    format!("lines[{i}]"),
                    format!(
                        "account code {} is not an active account of the Xero organisation",
                        m.xero_account_code
                    ),
                    "create it in Xero, or set xero_account_code on the GL mapping entry",
                ));
            }
            match &m.xero_tax_type {
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

    async fn contact(&mut self, md: &MappedDocument) -> Result<String, TargetError> {
        let number = md.doc.customer_id().to_owned();
        if let Some(id) = self.contacts.get(&number) {
            return Ok(id.clone());
        }
        let found = self
            .get(
                "/Contacts",
                &[("where", format!("ContactNumber==\"{number}\""))],
            )
            .await?;
        let id = found
            .pointer("/Contacts/0/ContactID")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let id = match id {
            Some(id) => id,
            None => {
                let b = &md.doc.buyer;
                let mut c = json!({"Name": b.name, "ContactNumber": number});
                if let Some(m) = &b.email {
                    c["EmailAddress"] = json!(m);
                }
                if let Some(v) = &b.vat_id {
                    c["TaxNumber"] = json!(v);
                }
                let body = json!({"Contacts": [c]}).to_string();
                let key = format!(
                    "facto-contact-{}",
                    hex::encode(&Sha256::digest(format!("{}:{number}", self.job))[..16])
                );
                let v = self
                    .api()?
                    .call(
                        Method::PUT,
                        "/Contacts",
                        &[("summarizeErrors", "false".into())],
                        Some(&body),
                        Some(&key),
                    )
                    .await
                    .map_err(|e| remote(&self.name, &e))?;
                v.pointer("/Contacts/0/ContactID")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| TargetError::Remote {
                        target: self.name.clone(),
                        detail: format!(
                            "Xero did not create contact {number}: {}",
                            v.pointer("/Contacts/0").map(messages).unwrap_or_default()
                        ),
                    })?
            }
        };
        self.contacts.insert(number, id.clone());
        Ok(id)
    }

    fn document(md: &MappedDocument, contact: String) -> XDoc {
        let d = &md.doc;
        let v = InvoiceView::new(md);
        let credit = d.kind == DocKind::CreditNote;
        let taxes = line_taxes(&v);
        let line_items = v
            .lines
            .iter()
            .zip(&md.lines)
            .zip(taxes)
            .map(|((l, m), tax)| {
                let line = l.line;
                let discount = line.discount.filter(|x| !x.is_zero());
                // Xero takes no discount on credit notes: the line's net is sent as one unit.
                let (quantity, unit, discount) = match discount {
                    Some(_) if credit => (Decimal::ONE, line.net_amount, None),
                    other => (line.quantity, line.unit_price, other),
                };
                XLine {
                    description: if line.description.trim().is_empty() {
                        d.number.clone()
                    } else {
                        line.description.clone()
                    },
                    quantity: Num(quantity),
                    unit_amount: Num(unit),
                    account_code: m.xero_account_code.clone(),
                    tax_type: m.xero_tax_type.clone().unwrap_or_default(),
                    tax_amount: Num(tax),
                    line_amount: Num(line.net_amount),
                    discount_amount: discount.map(Num),
                }
            })
            .collect();
        XDoc {
            kind: if credit { "ACCRECCREDIT" } else { "ACCREC" },
            contact: XContact {
                contact_id: contact,
            },
            date: d.issue_date.to_string(),
            due_date: d.due_date.unwrap_or(d.issue_date).to_string(),
            invoice_number: (!credit).then(|| d.number.clone()),
            credit_note_number: credit.then(|| d.number.clone()),
            reference: d
                .purchase_order
                .clone()
                .or_else(|| d.engagement_number.clone()),
            status: "AUTHORISED",
            line_amount_types: "Exclusive",
            currency_code: d.currency.clone(),
            line_items,
        }
    }

    /// Records Xero's per-item answer of a batch (items come back in request order).
    fn apply(
        &mut self,
        answer: &Value,
        credit: bool,
        recs: &mut [Record],
        changes: &mut Vec<String>,
    ) {
        let list = if credit { "CreditNotes" } else { "Invoices" };
        let id_field = if credit { "CreditNoteID" } else { "InvoiceID" };
        let items = answer
            .get(list)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let now = Utc::now();
        for (i, r) in recs.iter_mut().enumerate() {
            let Some(item) = items.get(i) else {
                continue;
            };
            let failed = item
                .get("HasErrors")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                || item.get("StatusAttributeString").and_then(Value::as_str) == Some("ERROR");
            if failed {
                r.last_error = Some(format!("Xero refused it: {}", messages(item)));
                r.transition(State::Failed, "refused by Xero", now);
                changes.push(format!(
                    "{} ({}): refused: {}",
                    r.number,
                    self.name,
                    messages(item)
                ));
            } else {
                r.remote_id = item
                    .get(id_field)
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                r.remote_status = item
                    .get("Status")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                r.transition(
                    State::Delivered,
                    format!("sent to Xero ({})", r.remote_id.as_deref().unwrap_or("?")),
                    now,
                );
                self.delivered += 1;
            }
        }
    }

    async fn send_batch(&self, credit: bool, body: &str, key: &str) -> Result<Value, XeroError> {
        let path = if credit { "/CreditNotes" } else { "/Invoices" };
        self.api
            .as_ref()
            .ok_or_else(|| XeroError::Config("dry run".into()))?
            .call(
                Method::PUT,
                path,
                &[("summarizeErrors", "false".into()), ("unitdp", "4".into())],
                Some(body),
                Some(key),
            )
            .await
    }

    async fn allocate(
        &self,
        ledger: &dyn Ledger,
        md: &MappedDocument,
        rec: &mut Record,
    ) -> Result<(), TargetError> {
        let (Some(cn), Some(prev)) = (rec.remote_id.clone(), md.doc.preceding_invoice.as_deref())
        else {
            return Ok(());
        };
        let invoice = ledger
            .find(prev)?
            .into_iter()
            .filter(|r| r.key.target == self.name && r.key.job == self.job)
            .find_map(|r| r.remote_id);
        let Some(invoice) = invoice else {
            rec.remote_status = Some(format!(
                "not allocated: invoice {prev} is not in Xero through facto"
            ));
            return Ok(());
        };
        let body = serde_json::to_string(&json!({"Allocations": [{
            "Invoice": {"InvoiceID": invoice}, "Amount": crate::target::num(md.doc.totals.gross),
            "Date": md.doc.issue_date.to_string()}]}))
        .unwrap_or_default();
        let key = format!("facto-alloc-{cn}");
        match self
            .api()?
            .call(
                Method::PUT,
                &format!("/CreditNotes/{cn}/Allocations"),
                &[],
                Some(&body),
                Some(&key),
            )
            .await
        {
            Ok(_) => rec.remote_status = Some(format!("allocated to {prev}")),
            Err(e @ (XeroError::Auth(_) | XeroError::DailyLimit(_))) => {
                return Err(remote(&self.name, &e))
            }
            Err(e) => rec.remote_status = Some(format!("not allocated to {prev}: {e}")),
        }
        Ok(())
    }

    /// Follows delivered invoices: Xero's status (`PAID` moves the record to paid).
    ///
    /// # Errors
    ///
    /// Ledger failure, or Xero unreachable.
    pub async fn poll(&self, ledger: &dyn Ledger) -> Result<Vec<String>, TargetError> {
        if self.dry_run {
            return Ok(Vec::new());
        }
        let live = ledger.list(&RecordFilter {
            job: Some(self.job.clone()),
            target: Some(self.name.clone()),
            state: Some(State::Delivered),
        })?;
        let invoices: Vec<Record> = live
            .into_iter()
            .filter(|r| r.kind == "invoice" && r.remote_id.is_some())
            .collect();
        let mut changes = Vec::new();
        for chunk in invoices.chunks(50) {
            let ids: Vec<&str> = chunk
                .iter()
                .filter_map(|r| r.remote_id.as_deref())
                .collect();
            let v = self.get("/Invoices", &[("IDs", ids.join(","))]).await?;
            let now = Utc::now();
            let mut changed = Vec::new();
            for r in chunk {
                let found = v.get("Invoices").and_then(Value::as_array).and_then(|a| {
                    a.iter().find(|x| {
                        x.get("InvoiceID").and_then(Value::as_str) == r.remote_id.as_deref()
                    })
                });
                let Some(status) = found.and_then(|x| x.get("Status")).and_then(Value::as_str)
                else {
                    continue;
                };
                if r.remote_status.as_deref() == Some(status) {
                    continue;
                }
                let mut r = r.clone();
                changes.push(format!(
                    "{} ({}): {} → {status}",
                    r.number,
                    self.name,
                    r.remote_status.as_deref().unwrap_or("?")
                ));
                r.remote_status = Some(status.to_owned());
                if status == "PAID" {
                    r.transition(State::Paid, "paid in Xero", now);
                } else {
                    r.updated_at = now;
                }
                changed.push(r);
            }
            ledger.put_records(&changed)?;
        }
        Ok(changes)
    }

    /// Settles batches whose answer was lost: documents Xero has are recorded; the rest of the
    /// batch is sent again, identical, under the same idempotency key, once
    /// `lookup_grace_minutes` have passed since the claim (a late answer may still land).
    ///
    /// # Errors
    ///
    /// Ledger failure, or Xero unreachable (the records stay claimed).
    pub async fn reconcile(&mut self, ledger: &dyn Ledger) -> Result<Vec<String>, TargetError> {
        if self.dry_run {
            return Ok(Vec::new());
        }
        let claimed = ledger.list(&RecordFilter {
            job: Some(self.job.clone()),
            target: Some(self.name.clone()),
            state: Some(State::Claimed),
        })?;
        let mut by_key: HashMap<String, Vec<Record>> = HashMap::new();
        for r in claimed {
            by_key
                .entry(r.idempotency_key.clone().unwrap_or_default())
                .or_default()
                .push(r);
        }
        let mut notes = Vec::new();
        for (key, recs) in by_key {
            let stored = ledger.value(&format!("xero-batch\0{key}"))?;
            let Some(stored) = stored else {
                // Claimed without a stored batch: it was never sent.
                let now = Utc::now();
                let mut recs = recs;
                for r in &mut recs {
                    r.transition(
                        State::Released,
                        "claim without a stored batch: released",
                        now,
                    );
                }
                ledger.put_records(&recs)?;
                continue;
            };
            let credit = stored["credit"].as_bool().unwrap_or(false);
            let body = stored["body"].as_str().unwrap_or_default().to_owned();
            let order: Vec<String> = stored["docs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            // First ask Xero which of them it has.
            let numbers: Vec<String> = recs.iter().map(|r| r.number.clone()).collect();
            let found = if credit {
                let cond: Vec<String> = numbers
                    .iter()
                    .map(|n| format!("CreditNoteNumber==\"{n}\""))
                    .collect();
                self.get("/CreditNotes", &[("where", cond.join(" OR "))])
                    .await?
            } else {
                self.get("/Invoices", &[("InvoiceNumbers", numbers.join(","))])
                    .await?
            };
            let (list, number_field, id_field) = if credit {
                ("CreditNotes", "CreditNoteNumber", "CreditNoteID")
            } else {
                ("Invoices", "InvoiceNumber", "InvoiceID")
            };
            let known: HashMap<String, String> = found
                .get(list)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter(|x| x.get("Status").and_then(Value::as_str) != Some("DELETED"))
                        .filter_map(|x| {
                            Some((
                                x.get(number_field)?.as_str()?.to_owned(),
                                x.get(id_field)?.as_str()?.to_owned(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            if recs.iter().all(|r| known.contains_key(&r.number)) {
                let now = Utc::now();
                let mut recs = recs;
                for r in &mut recs {
                    r.remote_id = known.get(&r.number).cloned();
                    r.last_error = None;
                    r.transition(
                        State::Delivered,
                        "found in Xero after an interrupted run: not sent again",
                        now,
                    );
                    notes.push(format!(
                        "{} ({}): found in Xero after an interrupted run: not sent again",
                        r.number, self.name
                    ));
                }
                ledger.put_records(&recs)?;
                continue;
            }
            let now = Utc::now();
            if recs
                .iter()
                .any(|r| super::in_lookup_grace(r, self.cfg.lookup_grace_minutes, now))
            {
                // The first call may still be in flight: sending the batch again before Xero
                // has stored its key could create the documents twice.
                for r in recs.iter().filter(|r| !known.contains_key(&r.number)) {
                    notes.push(format!(
                        "{} ({}): {}: the batch's answer was lost and Xero does not list it yet; looked up again at the next run, sent again (same idempotency key) only if still unknown {} minutes after it was sent",
                        r.number, self.name, super::WAITING, self.cfg.lookup_grace_minutes
                    ));
                }
                continue;
            }
            let answer = self
                .send_batch(credit, &body, &key)
                .await
                .map_err(|e| remote(&self.name, &e))?;
            // Records in the batch's order, as Xero answers.
            let mut all: Vec<Record> = Vec::new();
            for id in &order {
                let k = crate::ledger::RecordKey {
                    job: self.job.clone(),
                    target: self.name.clone(),
                    doc_id: id.clone(),
                };
                all.push(
                    ledger
                        .get(&k)?
                        .unwrap_or_else(|| Record::new(k, Utc::now())),
                );
            }
            let mut changes = Vec::new();
            let before = self.delivered;
            let claimed_ids: HashSet<String> = recs.iter().map(|r| r.key.doc_id.clone()).collect();
            let mut replay: Vec<Record> = all;
            self.apply(&answer, credit, &mut replay, &mut changes);
            let settled: Vec<Record> = replay
                .into_iter()
                .filter(|r| claimed_ids.contains(&r.key.doc_id))
                .collect();
            self.delivered = before;
            notes.push(format!(
                "batch {key} ({} documents) sent again under the same idempotency key after an interrupted run: Xero recorded nothing twice",
                settled.len()
            ));
            notes.extend(changes);
            ledger.put_records(&settled)?;
        }
        Ok(notes)
    }

    /// Preflight, checks, contacts, then batches of up to `batch_size` documents.
    ///
    /// # Errors
    ///
    /// Ledger failure, or Xero unreachable, refusing the tokens, or out of daily calls.
    pub async fn deliver_page(
        &mut self,
        ledger: &dyn Ledger,
        docs: Vec<(Arc<MappedDocument>, Record)>,
        mut others: Vec<Record>,
        run_id: &str,
    ) -> Result<(), TargetError> {
        if self.dry_run {
            self.delivered += docs.len() as u64;
            return Ok(());
        }
        let first = self.accounts.is_none();
        self.preflight().await?;
        if first {
            self.remember_preflight(ledger)?;
        }
        let now = Utc::now();
        let mut ready: Vec<(Arc<MappedDocument>, Record, String)> = Vec::new();
        for (md, mut rec) in docs {
            let problems = self.check(&md);
            if !problems.is_empty() {
                rec.hold(problems, serde_json::to_value(&md.doc).ok(), run_id, now);
                others.push(rec);
                continue;
            }
            let contact = self.contact(&md).await?;
            ready.push((md, rec, contact));
        }
        // Invoices first, so that credit notes can be allocated to them.
        ready.sort_by_key(|(md, _, _)| (md.doc.kind == DocKind::CreditNote, md.doc.issue_date));
        let mut rest = ready.into_iter().peekable();
        while let Some((first, _, _)) = rest.peek() {
            let credit = first.doc.kind == DocKind::CreditNote;
            let mut batch = Vec::new();
            while batch.len() < self.cfg.batch_size
                && rest
                    .peek()
                    .is_some_and(|(m, _, _)| (m.doc.kind == DocKind::CreditNote) == credit)
            {
                batch.extend(rest.next());
            }
            let docs: Vec<XDoc> = batch
                .iter()
                .map(|(md, _, c)| Self::document(md, c.clone()))
                .collect();
            let list = if credit { "CreditNotes" } else { "Invoices" };
            let body = serde_json::to_string(&json!({})).unwrap_or_default();
            let body = {
                #[derive(Serialize)]
                struct Wrap<'a> {
                    #[serde(rename = "Invoices", skip_serializing_if = "Option::is_none")]
                    invoices: Option<&'a [XDoc]>,
                    #[serde(rename = "CreditNotes", skip_serializing_if = "Option::is_none")]
                    credit_notes: Option<&'a [XDoc]>,
                }
                let w = Wrap {
                    invoices: (!credit).then_some(docs.as_slice()),
                    credit_notes: credit.then_some(docs.as_slice()),
                };
                serde_json::to_string(&w).unwrap_or(body)
            };
            let ids: Vec<String> = batch.iter().map(|(_, r, _)| r.key.doc_id.clone()).collect();
            let key = format!(
                "facto-{}",
                &hex::encode(Sha256::digest(format!(
                    "{}\0{}\0{list}\0{body}",
                    self.job, self.name
                )))[..48]
            );
            // The batch is stored, then its records claimed, before the call.
            ledger.put_value(
                &format!("xero-batch\0{key}"),
                &json!({"credit": credit, "body": body, "docs": ids}),
            )?;
            let mut recs: Vec<Record> = batch
                .iter()
                .map(|(_, r, _)| {
                    let mut r = r.clone();
                    r.idempotency_key = Some(key.clone());
                    r.payload_hash = Some(hex::encode(Sha256::digest(body.as_bytes())));
                    r.attempts += 1;
                    r.last_error = None;
                    r.transition(
                        State::Claimed,
                        format!("run {run_id}: claimed for Xero batch {key}"),
                        now,
                    );
                    r
                })
                .collect();
            let mut first = recs.clone();
            first.append(&mut others);
            ledger.put_records(&first)?;
            fault::point("after-claim", &self.name);
            match self.send_batch(credit, &body, &key).await {
                Ok(answer) => {
                    fault::point("after-send", &self.name);
                    let mut changes = Vec::new();
                    self.apply(&answer, credit, &mut recs, &mut changes);
                    if credit {
                        for ((md, _, _), r) in batch.iter().zip(recs.iter_mut()) {
                            if r.state == State::Delivered {
                                self.allocate(ledger, md, r).await?;
                            }
                        }
                    }
                    ledger.put_records(&recs)?;
                }
                Err(e @ (XeroError::Auth(_) | XeroError::DailyLimit(_) | XeroError::Config(_))) => {
                    // Refused before processing: nothing was created.
                    let now = Utc::now();
                    for r in &mut recs {
                        r.last_error = Some(e.to_string());
                        r.transition(State::Released, format!("not sent: {e}"), now);
                    }
                    ledger.put_records(&recs)?;
                    return Err(remote(&self.name, &e));
                }
                Err(XeroError::Http(HttpFailure::Refused {
                    status: 400, body, ..
                })) => {
                    let now = Utc::now();
                    for r in &mut recs {
                        r.last_error = Some(format!("Xero refused the batch: {body}"));
                        r.transition(State::Failed, "batch refused by Xero", now);
                    }
                    ledger.put_records(&recs)?;
                }
                Err(e) => {
                    // Maybe processed: the batch is sent again, same key, at the next run.
                    for r in &mut recs {
                        r.last_error = Some(format!(
                            "{e}; sent again under the same idempotency key at the next run"
                        ));
                    }
                    ledger.put_records(&recs)?;
                    return Err(remote(&self.name, &e));
                }
            }
        }
        ledger.put_records(&others)?;
        Ok(())
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
