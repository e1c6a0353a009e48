//! Status 212 "Encaissée" sent to the PA, exactly once per payment (issue 15 §2), through the
//! same protocol as invoices ([`crate::targets::Driven`]): one ledger record per payment, under
//! the target `<pa>#212` and the id `<document id>#212-<12 hex digits of the payment id>`;
//! claimed and flushed before the CDAR flow is posted; after a lost answer, the PA is searched
//! by the record's `trackingId` before the same file is sent again.
//!
//! A payment waits (held, checked again at every run) while its invoice is not at the PA yet;
//! an invoice the buyer refused (210) or a PA rejected (213) gets none. The buyer's address is
//! the directory's, as for the invoice ([`PaRun::route`]).

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

use super::cashed::{self, AtRate, Cashed, Paid, Recipient};
use super::config::PaConfig;
use super::status_run::{Message, StatusKind};
use super::PaRun;
use crate::ledger::{Ledger, Record, RecordKey, State};
use crate::mapping::MappedDocument;
use crate::problem::Problem;
use crate::targets::TargetError;

/// The ledger target of a PA's status 212 records: `<pa>#212` (a connector's name holds no `#`).
pub fn target_name(pa: &str) -> String {
    format!("{pa}#212")
}

/// The record id of one payment's 212: the document's id, `#212-` and 12 hex digits of the
/// SHA-256 of the payment's id. The suffix has a fixed length, so no two (document, payment)
/// pairs share an id.
pub fn record_id(doc_id: &str, payment_id: &str) -> String {
    let h = hex::encode(Sha256::digest(payment_id.as_bytes()));
    format!("{doc_id}#212-{}", &h[..12])
}

/// The document id of a 212 record's id ([`record_id`]).
pub fn document_of(record_id: &str) -> Option<&str> {
    let (doc, hash) = record_id.rsplit_once("#212-")?;
    (hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(doc)
}

/// The problem code of a 212 that waits for its invoice.
pub const WAITING: &str = "cashed-waiting";

/// What checking a payment learned: its amounts, the parties, the invoice's deposit time.
pub struct CashedReady {
    paid: Paid,
    amounts: Vec<AtRate>,
    buyer: Recipient,
    seller_siren: String,
    deposited_at: Option<NaiveDateTime>,
}

/// One run's status 212 of a PA target.
pub struct CashedRun {
    name: String,
    job: String,
    pa: PaRun,
    /// The payment each record of this run stands for, by record id.
    payments: BTreeMap<String, Paid>,
}

impl CashedRun {
    /// The 212 of PA target `pa` for `job`; the secrets are read now (not in a dry run).
    ///
    /// # Errors
    ///
    /// A secret is missing from the environment.
    pub fn new(pa: &str, cfg: &PaConfig, job: &str, dry_run: bool) -> Result<Self, TargetError> {
        Ok(CashedRun {
            name: target_name(pa),
            job: job.to_owned(),
            pa: PaRun::new(pa, cfg, dry_run)?,
            payments: BTreeMap::new(),
        })
    }

    /// Says which payment the record `record_id` stands for in this run.
    pub fn expect(&mut self, record_id: String, paid: Paid) {
        self.payments.insert(record_id, paid);
    }

    /// Whether the invoice `doc_id` is at the PA and accepted there (acknowledged `Ok`, or a
    /// lifecycle status since), so that its payments' statuses may follow it.
    ///
    /// # Errors
    ///
    /// The ledger cannot be read.
    pub fn invoice_accepted(&self, ledger: &dyn Ledger, doc_id: &str) -> Result<bool, TargetError> {
        Ok(self.invoice(ledger, doc_id)?.is_some_and(|r| accepted(&r)))
    }

    /// The invoice's record at the PA.
    fn invoice(&self, ledger: &dyn Ledger, doc_id: &str) -> Result<Option<Record>, TargetError> {
        Ok(ledger.get(&RecordKey {
            job: self.job.clone(),
            target: self.pa.name.clone(),
            doc_id: doc_id.to_owned(),
        })?)
    }
}

/// Whether an invoice's record says the PA took it: delivered, not rejected, and no longer
/// waiting for its acknowledgement.
fn accepted(r: &Record) -> bool {
    r.state.is_delivered() && r.state != State::Rejected && !super::acks::waits(r)
}

/// When the PA deposited the invoice (status 200), from its record's history.
fn deposited_at(r: &Record) -> Option<NaiveDateTime> {
    r.history.iter().find_map(|e| {
        let rest = e.note.strip_prefix("PA status 200")?;
        let (_, at) = rest.split_once(" of ")?;
        NaiveDateTime::parse_from_str(at.get(..16)?, "%Y-%m-%d %H:%M").ok()
    })
}

fn problem(code: &str, message: String, fix: &str) -> Problem {
    Problem::new(code, "payments", message, fix)
}

impl StatusKind for CashedRun {
    type Ready = CashedReady;

    fn target(&self) -> &str {
        &self.name
    }

    fn pa(&self) -> &PaRun {
        &self.pa
    }

    fn pa_mut(&mut self) -> &mut PaRun {
        &mut self.pa
    }

    /// The invoice at the PA, its payments in order, the seller's SIREN and the buyer's address.
    async fn check(
        &mut self,
        ledger: &dyn Ledger,
        md: &MappedDocument,
        rec: &Record,
    ) -> Result<Result<CashedReady, Vec<Problem>>, TargetError> {
        let doc = &md.doc;
        // Every record handed to this run comes with its payment ([`CashedRun::expect`]).
        let paid = self
            .payments
            .get(&rec.key.doc_id)
            .cloned()
            .ok_or_else(|| TargetError::Config(format!("{}: no payment expected", rec.key)))?;
        let invoice = self.invoice(ledger, &doc.id)?;
        if let Some(why) = invoice.as_ref().and_then(super::lifecycle::final_refusal) {
            return Ok(Err(vec![problem(
                "cashed-invoice-refused",
                format!("no status 212 for an invoice refused or rejected at the PA: {why}"),
                "nothing to send; the payment belongs to the invoice that replaces it",
            )]));
        }
        let at_pa = invoice.as_ref().filter(|r| accepted(r));
        let Some(invoice) = at_pa else {
            let state = invoice.map_or("not sent".to_owned(), |r| {
                format!(
                    "{}{}",
                    r.state.as_str(),
                    r.remote_status
                        .as_deref()
                        .map(|s| format!(", {s}"))
                        .unwrap_or_default()
                )
            });
            return Ok(Err(vec![problem(
                WAITING,
                format!(
                    "{} is not accepted at the PA yet (its record for {} is {state}): its status 212 for the payment of {} waits for it",
                    doc.number, self.pa.name, paid.date
                ),
                "nothing to do: it is sent at the first run after the PA accepts the invoice",
            )]));
        };
        let amounts = match cashed::split(doc, &paid.id) {
            Ok(a) => a,
            Err(e) => {
                return Ok(Err(vec![problem(
                    "cashed-payments",
                    e.to_string(),
                    "fix the payments in the invoicing application",
                )]))
            }
        };
        let Some(seller_siren) = crate::einvoice::siren(&doc.seller).map(str::to_owned) else {
            return Ok(Err(vec![problem(
                "cashed-seller-siren",
                "the seller has no SIREN: status 212 names the invoice by its issuer's SIREN"
                    .into(),
                "give the seller its SIREN (seller.siren)",
            )]));
        };
        let address = match self.pa.route(ledger, md).await? {
            Ok(ready) => ready.address,
            Err(problems) => return Ok(Err(problems)),
        };
        Ok(Ok(CashedReady {
            paid,
            amounts,
            buyer: Recipient {
                siren: crate::route::siren(&doc.buyer),
                name: doc.buyer.name.clone(),
                address,
            },
            seller_siren,
            deposited_at: deposited_at(invoice),
        }))
    }

    /// The CDAR of one payment.
    fn message(&self, md: &MappedDocument, ready: &CashedReady) -> Message {
        let file = cashed::cdar(&Cashed {
            doc: &md.doc,
            seller_siren: &ready.seller_siren,
            paid: &ready.paid,
            amounts: &ready.amounts,
            buyer: &ready.buyer,
            deposited_at: ready.deposited_at,
            written_at: Utc::now().naive_utc(),
        });
        let safe: String = crate::fsutil::safe_name(&md.doc.number)
            .chars()
            .take(180)
            .collect();
        let label = format!(
            "status 212 of {} for the payment {} of {} ({})",
            md.doc.number,
            ready.paid.id,
            ready.paid.date,
            ready
                .amounts
                .iter()
                .map(|a| format!("{} {} at {} %", a.amount, md.doc.currency, a.rate))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Message {
            file_name: format!("CDAR_212_{safe}_{}.xml", ready.paid.date.format("%Y%m%d")),
            file,
            label,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_are_one_per_payment_and_never_shared() {
        let a = record_id("F1", "P-1");
        assert_eq!(a, record_id("F1", "P-1"));
        assert_ne!(a, record_id("F1", "P-2"));
        assert!(a.starts_with("F1#212-") && a.len() == "F1#212-".len() + 12);
        // A document id that looks like another's record id does not meet it.
        assert_ne!(record_id("F1#212-000000000000", "x"), record_id("F1", "x"));
        assert_eq!(target_name("pa"), "pa#212");
        assert_eq!(document_of(&a), Some("F1"));
        assert_eq!(document_of(&record_id("F#212-1", "x")), Some("F#212-1"));
        assert_eq!(document_of("F1"), None);
    }

    #[test]
    fn the_deposit_time_is_read_from_the_invoice_history() {
        let now = Utc::now();
        let mut r = Record::new(
            RecordKey {
                job: "j".into(),
                target: "pa".into(),
                doc_id: "F1".into(),
            },
            now,
        );
        assert_eq!(deposited_at(&r), None);
        r.transition(
            State::Delivered,
            "PA status 200 Déposée of 2026-10-02 09:15 (flow flow-0001) [cdv:200]",
            now,
        );
        assert_eq!(
            deposited_at(&r),
            chrono::NaiveDate::from_ymd_opt(2026, 10, 2).and_then(|d| d.and_hms_opt(9, 15, 0))
        );
    }
}
