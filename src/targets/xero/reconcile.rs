//! After delivery: `poll` follows delivered invoices in Xero (paid or not), `reconcile` settles
//! batches whose answer was lost, by looking them up and sending what is still unknown again
//! under the same idempotency key.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use serde_json::Value;

use super::{remote, XeroRun};
use crate::ledger::{Ledger, Record, RecordFilter, State};
use crate::targets::TargetError;

impl XeroRun {
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
                .any(|r| crate::targets::in_lookup_grace(r, self.cfg.lookup_grace_minutes, now))
            {
                // The first call may still be in flight: sending the batch again before Xero
                // has stored its key could create the documents twice.
                for r in recs.iter().filter(|r| !known.contains_key(&r.number)) {
                    notes.push(format!(
                        "{} ({}): {}: the batch's answer was lost and Xero does not list it yet; looked up again at the next run, sent again (same idempotency key) only if still unknown {} minutes after it was sent",
                        r.number, self.name, crate::targets::WAITING, self.cfg.lookup_grace_minutes
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
}
