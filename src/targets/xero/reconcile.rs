//! After delivery: following delivered invoices in Xero (paid or not), and what the driver asks
//! of a batch whose answer was lost: which of its documents Xero has, and the batch sent again,
//! identical, under the same idempotency key.

use std::collections::HashMap;

use chrono::Utc;
use serde_json::Value;

use super::{items, remote, XeroRun};
use crate::ledger::{Ledger, Record, State};
use crate::mapping::Side;
use crate::targets::driver::{Found, Item, Outcome, Polled, Receipt, Resent};
use crate::targets::TargetError;

impl XeroRun {
    /// Xero's status of delivered invoices (`PAID` moves the record to paid), 50 per call; the
    /// records of each call are stored at once. Those delivered in this run are not asked for:
    /// Xero answered their status a moment ago.
    pub(super) async fn follow(
        &self,
        ledger: &dyn Ledger,
        live: Vec<Record>,
    ) -> Result<Polled, TargetError> {
        let invoices: Vec<Record> = live
            .into_iter()
            .filter(|r| {
                r.kind == "invoice"
                    && r.remote_id
                        .as_ref()
                        .is_some_and(|id| !self.sent.contains(id))
            })
            .collect();
        let mut out = Polled::default();
        for chunk in invoices.chunks(50) {
            let ids: Vec<&str> = chunk
                .iter()
                .filter_map(|r| r.remote_id.as_deref())
                .collect();
            let v = self.get("/Invoices", &[("IDs", ids.join(","))]).await?;
            let now = Utc::now();
            let mut chunk_out = Polled::default();
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
                let paid = (status == "PAID").then_some("paid in Xero");
                chunk_out.status(&self.name, r.clone(), status, paid, now);
            }
            ledger.put_records(&chunk_out.changed)?;
            out.changes.append(&mut chunk_out.changes);
        }
        Ok(out)
    }

    /// Which records of one batch Xero has, by number (a deleted one does not count). A sale
    /// and a supplier's bill, or two suppliers' bills, may share a number: only the documents
    /// of this run's type count, and a bill is the record's supplier's (by the contact number
    /// Xero gives, else by the contact's id), never a guess between two suppliers.
    pub(super) async fn find_by_number(
        &mut self,
        claimed: &[Record],
    ) -> Result<Vec<Option<Found>>, TargetError> {
        let credit = claimed.first().is_some_and(|r| r.kind == "credit_note");
        let numbers: Vec<String> = claimed.iter().map(|r| r.number.clone()).collect();
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
        let kind = self.doc_type(credit);
        let text = |x: &Value, p: &str| x.pointer(p).and_then(Value::as_str).map(str::to_owned);
        // (number, contact number, contact id, document id)
        let known: Vec<(String, Option<String>, Option<String>, String)> = found
            .get(list)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter(|x| x.get("Status").and_then(Value::as_str) != Some("DELETED"))
                    .filter(|x| {
                        x.get("Type")
                            .and_then(Value::as_str)
                            .is_none_or(|t| t == kind)
                    })
                    .filter_map(|x| {
                        Some((
                            text(x, &format!("/{number_field}"))?,
                            text(x, "/Contact/ContactNumber"),
                            text(x, "/Contact/ContactID"),
                            text(x, &format!("/{id_field}"))?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if self.side == Side::Purchases && known.iter().any(|k| k.1.is_none()) {
            // Xero did not say whose: the suppliers' contact ids decide.
            let suppliers: Vec<String> = claimed
                .iter()
                .map(|r| r.customer_id.clone())
                .filter(|n| !self.contacts.contains_key(n))
                .collect();
            self.lookup_contacts(&suppliers).await?;
        }
        Ok(claimed
            .iter()
            .map(|r| {
                let mut same = known.iter().filter(|k| k.0 == r.number);
                let id = match self.side {
                    // Xero numbers sales uniquely.
                    Side::Sales => same.next(),
                    Side::Purchases => {
                        let contact = self.contacts.get(&r.customer_id);
                        same.find(|k| {
                            k.1.as_deref() == Some(r.customer_id.as_str())
                                || (k.1.is_none() && contact.is_some() && k.2.as_ref() == contact)
                        })
                    }
                }
                .map(|k| k.3.clone());
                id.map(|id| Found {
                    state: State::Delivered,
                    receipt: Receipt {
                        remote_id: Some(id),
                        note: "found in Xero after an interrupted run: not sent again".into(),
                        ..Receipt::default()
                    },
                })
            })
            .collect())
    }

    /// Sends the stored batch again, identical, under the same key: Xero answers without
    /// creating anything twice. `None` when no batch was stored (it was never sent).
    pub(super) async fn send_stored(
        &self,
        ledger: &dyn Ledger,
        claimed: &[Record],
    ) -> Result<Option<Resent>, TargetError> {
        let key = claimed
            .first()
            .and_then(|r| r.idempotency_key.clone())
            .unwrap_or_default();
        let Some(stored) = ledger.value(&format!("xero-batch\0{key}"))? else {
            return Ok(None);
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
        let n = order.len();
        let answer = self
            .send_batch(credit, &body, &key)
            .await
            .map_err(|e| remote(&self.name, &e))?;
        // Xero answers in the batch's order; each claimed record takes its own item.
        let mut by_doc: HashMap<String, Item> = order
            .into_iter()
            .zip(items(&answer, credit, n))
            .filter_map(|(id, item)| Some((id, item?)))
            .collect();
        let mut notes = vec![format!(
            "batch {key} ({} documents) sent again under the same idempotency key after an interrupted run: Xero recorded nothing twice",
            claimed.len()
        )];
        let answers: Vec<Option<Item>> = claimed
            .iter()
            .map(|r| by_doc.remove(&r.key.doc_id))
            .collect();
        for (r, item) in claimed.iter().zip(&answers) {
            if let Some(Item::Refused { error, .. }) = item {
                let why = error.trim_start_matches("Xero refused it: ");
                notes.push(format!("{} ({}): refused: {why}", r.number, self.name));
            }
        }
        Ok(Some(Resent {
            outcome: Outcome::Partial(answers),
            notes,
        }))
    }
}
