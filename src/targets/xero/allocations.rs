//! Credit notes allocated to the invoices they credit, all those of a batch in one call:
//! `POST /CreditNotes` (update) with each credit note's `CreditNoteID` and its `Allocations`,
//! one result per credit note. `PUT /CreditNotes/{id}/Allocations` takes one credit note a
//! call. The allocation is not folded into the creation (`Allocations` in the `PUT
//! /CreditNotes` body, which the spec allows): an allocation Xero refuses there (the invoice
//! paid meanwhile, less left due than credited) refuses the credit note itself, which would then
//! never reach Xero; sent after, it only leaves the credit note unallocated, said in its status.

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::api::XeroError;
use super::{messages, remote, Batch, XeroRun};
use crate::ledger::{Ledger, Record, State};
use crate::targets::driver::Lot;
use crate::targets::http::ApiError;
use crate::targets::TargetError;

/// Xero's messages about one credit note's update: its own and its allocations'.
fn refusal(item: &Value) -> Option<String> {
    let own = item.get("HasErrors").and_then(Value::as_bool) == Some(true)
        || item.get("StatusAttributeString").and_then(Value::as_str) == Some("ERROR");
    let mut why: Vec<String> = Vec::new();
    if own {
        why.push(messages(item));
    }
    for a in item
        .get("Allocations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let errs = a.get("ValidationErrors").and_then(Value::as_array);
        if errs.is_some_and(|e| !e.is_empty()) {
            why.push(messages(a));
        }
    }
    (!why.is_empty()).then(|| why.join("; "))
}

impl XeroRun {
    /// Allocates the delivered credit notes of a batch to their invoices (known to the ledger
    /// under this target) in one call, and notes the result in each one's remote status.
    pub(super) async fn allocate(
        &self,
        ledger: &dyn Ledger,
        lot: &Lot<Batch>,
        recs: &mut [Record],
    ) -> Result<(), TargetError> {
        let mut items = Vec::new();
        let mut who: Vec<(usize, String)> = Vec::new();
        for (i, (d, r)) in lot.docs.iter().zip(recs.iter_mut()).enumerate() {
            if r.state != State::Delivered {
                continue;
            }
            let (Some(cn), Some(prev)) =
                (r.remote_id.clone(), d.md.doc.preceding_invoice.as_deref())
            else {
                continue;
            };
            let invoice = ledger
                .find_in_job(&self.job, prev)?
                .into_iter()
                .filter(|x| x.key.target == self.name)
                // Two suppliers may number their invoices alike: the bill credited is this
                // supplier's.
                .filter(|x| {
                    self.side == crate::mapping::Side::Sales || x.customer_id == r.customer_id
                })
                .find_map(|x| x.remote_id);
            let Some(invoice) = invoice else {
                r.remote_status = Some(format!(
                    "not allocated: invoice {prev} is not in Xero through facto"
                ));
                continue;
            };
            items.push(json!({"CreditNoteID": cn, "Allocations": [{
                "Invoice": {"InvoiceID": invoice},
                "Amount": crate::targets::num(d.md.doc.totals.gross),
                "Date": d.md.doc.issue_date.to_string()}]}));
            who.push((i, prev.to_owned()));
        }
        if items.is_empty() {
            return Ok(());
        }
        let body = json!({ "CreditNotes": items }).to_string();
        let key = format!(
            "facto-alloc-{}",
            &hex::encode(Sha256::digest(format!("{}\0{body}", self.job)))[..48]
        );
        let answer = self
            .api()?
            .call(
                Method::POST,
                "/CreditNotes",
                &[("summarizeErrors", "false".into())],
                Some(&body),
                Some(&key),
            )
            .await;
        match answer {
            Ok(v) => {
                let list = v.get("CreditNotes").and_then(Value::as_array);
                for (k, (i, prev)) in who.into_iter().enumerate() {
                    let status = match list.and_then(|a| a.get(k)) {
                        None => format!("not allocated to {prev}: Xero did not answer for it"),
                        Some(item) => match refusal(item) {
                            Some(why) => format!("not allocated to {prev}: {why}"),
                            None => format!("allocated to {prev}"),
                        },
                    };
                    if let Some(r) = recs.get_mut(i) {
                        r.remote_status = Some(status);
                    }
                }
            }
            Err(e @ (XeroError::Api(ApiError::Auth(_)) | XeroError::DailyLimit(_))) => {
                return Err(remote(&self.name, &e))
            }
            Err(e) => {
                for (i, prev) in who {
                    if let Some(r) = recs.get_mut(i) {
                        r.remote_status = Some(format!("not allocated to {prev}: {e}"));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::refusal;
    use serde_json::json;

    #[test]
    fn an_allocation_refused_inside_an_accepted_update_is_a_refusal() {
        assert_eq!(
            refusal(&json!({"CreditNoteID": "x", "HasErrors": false})),
            None
        );
        let item = json!({"CreditNoteID": "x", "Allocations": [{"ValidationErrors":
            [{"Message": "Credit Note cannot be allocated as amount is greater than amount outstanding"}]}]});
        assert!(refusal(&item).unwrap().contains("amount outstanding"));
        let item = json!({"HasErrors": true, "ValidationErrors": [{"Message": "gone"}]});
        assert_eq!(refusal(&item).as_deref(), Some("gone"));
    }
}
