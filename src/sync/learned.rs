//! Payments learned from the accounting targets a job already follows (issue 15 §2): when
//! Pennylane or Xero reports an invoice paid that the invoicing application still shows unpaid,
//! what is left to pay was received, and status 212 is owed for it.
//!
//! - **Waiting documents.** A service invoice read final with something left to pay is kept,
//!   as read, in the ledger's entry space [`SPACE`] under (job, PA, document id), so that a
//!   payment learned months later, long after the source last showed the document, still has the
//!   invoice's VAT breakdown to split. Its entry goes once the source shows it paid (or no longer
//!   owing 212), or once a payment was learned for it.
//! - **A learned payment** is what the source's payments leave unpaid, on the day facto saw the
//!   document paid in the target (the target's record moved to `paid`), under the payment id
//!   `paid-in:<target>` ([`payment_id`]): one per document, from the first of the job's
//!   accounting targets that reports it paid.
//! - **No double count.** While its 212 is not sent, the source comes first: a document the
//!   source now shows paid in full gets no learned payment, and a learned one still waiting is
//!   forgotten. Once it is sent, the source's later payments of that document are not sent
//!   again: the learned payment already covered them ([`settle_sent`]).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::config::{Config, Connector, Job};
use crate::ledger::{Ledger, Record, RecordKey, State};
use crate::model::{Document, Payment};
use crate::targets::pa::cashed_run::{document_of, record_id, target_name};

/// The ledger's entry space of the documents waiting for a payment an accounting target may
/// report.
pub(super) const SPACE: &str = "cashed-open";

/// The accounting targets of a job whose "paid" facto follows: Pennylane and Xero.
pub(super) fn accounting_targets(cfg: &Config, job: &Job) -> Vec<String> {
    job.targets
        .iter()
        .filter(|t| {
            matches!(
                cfg.connectors.get(*t),
                Some(Connector::Pennylane(_) | Connector::Xero(_))
            )
        })
        .cloned()
        .collect()
}

/// The payment id of a payment learned from `target`.
pub(crate) fn payment_id(target: &str) -> String {
    format!("paid-in:{target}")
}

/// What the document's payments leave unpaid (zero when paid in full or over-paid; `None` when
/// an amount is too large to add up, which the 212 phase reports on its own).
pub(super) fn unpaid(doc: &Document) -> Option<Decimal> {
    let mut paid = Decimal::ZERO;
    for p in &doc.payments {
        paid = paid.checked_add(p.amount)?;
    }
    Some(doc.totals.gross.abs().checked_sub(paid)?.max(Decimal::ZERO))
}

/// The documents waiting for a learned payment at PA `pa` of `job`, from their kept copies (a
/// copy that no longer reads as a document is left out).
///
/// # Errors
///
/// The ledger cannot be read.
pub(super) fn waiting(
    ledger: &dyn Ledger,
    job: &str,
    pa: &str,
) -> crate::ledger::Result<BTreeMap<String, Document>> {
    let mut out = BTreeMap::new();
    for (parts, v) in ledger.entries(SPACE, &[job, pa])? {
        if let (Some(id), Ok(doc)) = (parts.first(), serde_json::from_value::<Document>(v)) {
            out.insert(id.clone(), doc);
        }
    }
    Ok(out)
}

/// The first of `targets` where `doc_id`'s record of `job` is paid, with the day it became so.
///
/// # Errors
///
/// The ledger cannot be read.
pub(super) fn paid_in(
    ledger: &dyn Ledger,
    job: &str,
    targets: &[String],
    doc_id: &str,
) -> crate::ledger::Result<Option<(String, NaiveDate)>> {
    for t in targets {
        let key = RecordKey {
            job: job.to_owned(),
            target: t.clone(),
            doc_id: doc_id.to_owned(),
        };
        let Some(r) = ledger.get(&key)? else {
            continue;
        };
        if r.state != State::Paid {
            continue;
        }
        let since = r
            .history
            .iter()
            .rev()
            .take_while(|e| e.state == State::Paid)
            .last()
            .map_or(r.updated_at, |e| e.at);
        return Ok(Some((t.clone(), since.date_naive())));
    }
    Ok(None)
}

/// Whether a 212 record counts as sent: claimed (being sent), or delivered and not rejected.
fn is_sent(r: &Record) -> bool {
    r.state == State::Claimed || (r.state.is_delivered() && r.state != State::Rejected)
}

/// What the ledger holds of a document's statuses 212 at one PA.
#[derive(Default)]
pub(super) struct Sent {
    /// The amount the 212s sent (or being sent) report, whatever the source lists now.
    pub(super) total: Decimal,
    /// The learned payment's record, with its payment id, when there is one.
    pub(super) learned: Option<(String, Record)>,
}

impl Sent {
    /// The learned payment's record is sent or being sent, or was refused for good: the
    /// document waits for none any more.
    pub(super) fn learned_done(&self) -> bool {
        self.learned
            .as_ref()
            .is_some_and(|(_, r)| !r.state.is_eligible())
    }

    /// The learned payment's record is held (its copy of the document is read again by the
    /// 212 phase's held records).
    pub(super) fn learned_held(&self) -> bool {
        self.learned
            .as_ref()
            .is_some_and(|(_, r)| r.state == State::Held)
    }
}

/// The 212 records of `doc` at PA `pa` of `job` (found by its number, as every 212 record is
/// numbered like its invoice): what they report, and the learned payment's, whichever target
/// it came from (one since removed from the job included).
///
/// # Errors
///
/// The ledger cannot be read.
pub(super) fn sent(
    ledger: &dyn Ledger,
    job: &str,
    pa: &str,
    doc: &Document,
) -> crate::ledger::Result<Sent> {
    let target = target_name(pa);
    let suffix = format!(" of {}", doc.id);
    let mut out = Sent::default();
    for r in ledger.find_in_job(job, &doc.number)? {
        if r.key.target != target || document_of(&r.key.doc_id) != Some(doc.id.as_str()) {
            continue;
        }
        if is_sent(&r) {
            let amount = r.gross.unwrap_or_default().abs();
            out.total = out.total.checked_add(amount).unwrap_or(Decimal::MAX);
        }
        let payment = r
            .origin
            .strip_prefix("payment ")
            .and_then(|o| o.strip_suffix(suffix.as_str()))
            .filter(|p| p.starts_with("paid-in:"))
            .map(str::to_owned);
        if let Some(p) = payment {
            out.learned = Some((p, r));
        }
    }
    Ok(out)
}

/// The target of `targets` whose learned payment of `doc_id` the 212 record `record` is.
pub(super) fn target_of<'a>(doc_id: &str, record: &str, targets: &'a [String]) -> Option<&'a str> {
    targets
        .iter()
        .find(|t| record_id(doc_id, &payment_id(t)) == record)
        .map(String::as_str)
}

/// Adds the payment learned from `target` on `date` to `doc`: what its payments leave unpaid,
/// and never more than what the 212s already sent (`sent`, those of payments since removed
/// from the source included) leave of its gross. Nothing when that is nothing.
pub(super) fn add(doc: &mut Document, target: &str, date: NaiveDate, sent: Decimal) {
    let left = doc.totals.gross.abs().checked_sub(sent).unwrap_or_default();
    let Some(rest) = unpaid(doc)
        .map(|u| u.min(left))
        .filter(|u| *u > Decimal::ZERO)
    else {
        return;
    };
    let id = payment_id(target);
    if doc
        .payments
        .iter()
        .any(|p| p.id.as_deref() == Some(id.as_str()))
    {
        return;
    }
    doc.payments.push(Payment {
        id: Some(id),
        date,
        amount: rest,
    });
}

/// When a learned payment was sent for `doc` (or is being sent), rewrites its payments to
/// what was reported: the learned payment as it was sent, and only those of the source's
/// payments whose own 212 was sent too. Returns the payments left out, each already counted
/// in the learned one.
///
/// # Errors
///
/// The ledger cannot be read.
pub(super) fn settle_sent(
    ledger: &dyn Ledger,
    job: &str,
    pa: &str,
    sent: &Sent,
    doc: &mut Document,
) -> crate::ledger::Result<Vec<Payment>> {
    let Some((id, r)) = sent.learned.as_ref().filter(|(_, r)| is_sent(r)) else {
        return Ok(Vec::new());
    };
    let (Some(date), Some(amount)) = (r.issue_date, r.gross) else {
        return Ok(Vec::new());
    };
    // The source's payments with their stable ids (those without one are named by date,
    // amount and rank): payments that do not read are left for the 212 phase to report.
    doc.payments
        .retain(|p| p.id.as_deref() != Some(id.as_str()));
    let Ok(source) = crate::targets::pa::cashed::payments(doc) else {
        return Ok(Vec::new());
    };
    let mut kept = Vec::new();
    let mut left = Vec::new();
    for p in source {
        let key = RecordKey {
            job: job.to_owned(),
            target: target_name(pa),
            doc_id: record_id(&doc.id, &p.id),
        };
        let was_sent = ledger.get(&key)?.is_some_and(|r| is_sent(&r));
        let p = Payment {
            id: Some(p.id),
            date: p.date,
            amount: p.amount,
        };
        if was_sent {
            kept.push(p);
        } else {
            left.push(p);
        }
    }
    kept.push(Payment {
        id: Some(id.clone()),
        date,
        amount,
    });
    doc.payments = kept;
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{MemLedger, Record};
    use crate::mapping::tests::worked_invoice;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// The worked invoice (gross 1 358.25), 1 000.00 of it paid in the source.
    fn part_paid() -> Document {
        let mut d = worked_invoice();
        d.payments = vec![Payment {
            id: Some("P-1".into()),
            date: day("2024-04-10"),
            amount: dec("1000.00"),
        }];
        d
    }

    #[test]
    fn what_is_learned_is_what_the_source_leaves_unpaid_once() {
        let mut d = part_paid();
        assert_eq!(unpaid(&d), Some(dec("358.25")));
        add(&mut d, "xero", day("2024-05-02"), Decimal::ZERO);
        add(&mut d, "xero", day("2024-05-03"), Decimal::ZERO);
        assert_eq!(d.payments.len(), 2, "{:?}", d.payments);
        assert_eq!(d.payments[1].id.as_deref(), Some("paid-in:xero"));
        assert_eq!(d.payments[1].amount, dec("358.25"));
        assert_eq!(d.payments[1].date, day("2024-05-02"));
        assert_eq!(unpaid(&d), Some(Decimal::ZERO));
        // Paid in full (or more) in the source: nothing to learn.
        add(&mut d, "pennylane", day("2024-05-04"), Decimal::ZERO);
        assert_eq!(d.payments.len(), 2);
        // The 212s already sent (for payments since removed from the source) count too.
        let mut e = part_paid();
        e.payments.clear();
        add(&mut e, "xero", day("2024-05-02"), dec("1000.00"));
        assert_eq!(e.payments[0].amount, dec("358.25"));
        let mut e = part_paid();
        e.payments.clear();
        add(&mut e, "xero", day("2024-05-02"), dec("1358.25"));
        assert!(e.payments.is_empty(), "all of it reported already");
        d.totals.gross = Decimal::MAX;
        d.payments[0].amount = Decimal::MAX;
        assert_eq!(unpaid(&d), None, "too large to add up: no panic");
    }

    #[test]
    fn the_day_learned_is_the_day_the_record_became_paid() {
        let l = MemLedger::in_memory().unwrap();
        let key = |t: &str| RecordKey {
            job: "j".into(),
            target: t.into(),
            doc_id: "d".into(),
        };
        let t0 = "2024-05-02T10:00:00Z".parse().unwrap();
        let t1 = "2024-05-09T10:00:00Z".parse().unwrap();
        let mut r = Record::new(key("pennylane"), t0);
        r.transition(State::Delivered, "sent", t0);
        r.transition(State::Paid, "paid in Pennylane", t1);
        let mut x = Record::new(key("xero"), t0);
        x.transition(State::Delivered, "sent", t0);
        l.put_records(&[r, x]).unwrap();
        let targets = ["xero".to_owned(), "pennylane".to_owned()];
        let found = paid_in(&l, "j", &targets, "d").unwrap();
        assert_eq!(found, Some(("pennylane".to_owned(), day("2024-05-09"))));
        assert_eq!(paid_in(&l, "j", &targets, "other").unwrap(), None);
        let rid = record_id("d", &payment_id("pennylane"));
        assert_eq!(target_of("d", &rid, &targets), Some("pennylane"));
        assert_eq!(target_of("d", &record_id("d", "P-1"), &targets), None);
    }

    #[test]
    fn after_a_learned_payment_was_sent_the_sources_new_payments_are_left_out() {
        let l = MemLedger::in_memory().unwrap();
        let now = chrono::Utc::now();
        let rec = |payment: &str, state: State, gross: &str, date: &str| {
            let mut r = Record::new(
                RecordKey {
                    job: "j".into(),
                    target: target_name("pa"),
                    doc_id: record_id(&worked_invoice().id, payment),
                },
                now,
            );
            r.state = state;
            r.number = worked_invoice().number;
            r.origin = format!("payment {payment} of {}", worked_invoice().id);
            r.gross = Some(dec(gross));
            r.issue_date = Some(day(date));
            r
        };
        // Nothing learned yet: the document stays as read.
        let mut d = part_paid();
        let sent = super::sent(&l, "j", "pa", &d).unwrap();
        assert!(!sent.learned_done() && sent.total.is_zero());
        assert!(settle_sent(&l, "j", "pa", &sent, &mut d)
            .unwrap()
            .is_empty());
        assert_eq!(d, part_paid());
        // P-1 sent, then the rest learned from Xero and sent; now the source adds P-2.
        l.put_records(&[
            rec("P-1", State::Delivered, "1000.00", "2024-04-10"),
            rec("paid-in:xero", State::Delivered, "358.25", "2024-05-02"),
        ])
        .unwrap();
        d.payments.push(Payment {
            id: Some("P-2".into()),
            date: day("2024-05-01"),
            amount: dec("358.25"),
        });
        let sent = super::sent(&l, "j", "pa", &d).unwrap();
        assert!(sent.learned_done());
        assert_eq!(sent.total, dec("1358.25"));
        let left = settle_sent(&l, "j", "pa", &sent, &mut d).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id.as_deref(), Some("P-2"));
        let ids: Vec<_> = d.payments.iter().map(|p| p.id.clone().unwrap()).collect();
        assert_eq!(ids, ["P-1", "paid-in:xero"]);
        assert_eq!(d.payments[1].amount, dec("358.25"));
        // A learned 212 the PA refused for good is no payment: the source's payments go.
        let mut refused = rec("paid-in:xero", State::Failed, "358.25", "2024-05-02");
        refused.number = worked_invoice().number;
        l.put_records(&[refused]).unwrap();
        let mut d = part_paid();
        let sent = super::sent(&l, "j", "pa", &d).unwrap();
        assert!(sent.learned_done() && !sent.learned_held());
        assert!(settle_sent(&l, "j", "pa", &sent, &mut d)
            .unwrap()
            .is_empty());
    }
}
