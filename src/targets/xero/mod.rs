//! The Xero target: sales invoices (`PUT /Invoices`) and credit notes (`PUT /CreditNotes`, then
//! allocated to their invoice) in batches of up to 50, each batch under an `Idempotency-Key`
//! derived from its content. The ledger stores the batch (its exact JSON and documents) and
//! claims its records before the call; after a crash or a lost answer the documents are looked
//! up by number, and what is still unknown is sent again as the same batch with the same key,
//! which Xero answers without creating anything twice. A preflight (`GET /Accounts`,
//! `GET /TaxRates`) holds back a document whose account code or tax type Xero does not have.

pub mod api;
pub mod config;
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
use self::document::XDoc;
use super::TargetError;
use crate::config::XeroConfig;
use crate::fault;
use crate::ledger::{Ledger, Record, State};
use crate::mapping::MappedDocument;
use crate::model::DocKind;
use crate::problem::Problem;

/// Where a connector's tokens live.
pub fn token_path(cfg: &XeroConfig, data_dir: &Path, name: &str) -> PathBuf {
    cfg.token_file
        .clone()
        .unwrap_or_else(|| data_dir.join(format!("xero-{name}.json")))
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
            .filter(|(_, (_, m))| m.key(config::TAX_TYPE).is_none())
            .map(|(i, (l, _))| tax_type_missing(i, &l.tax_code))
            .collect()
    }

    fn check(&self, md: &MappedDocument) -> Vec<Problem> {
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
            "Invoice": {"InvoiceID": invoice}, "Amount": crate::targets::num(md.doc.totals.gross),
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
