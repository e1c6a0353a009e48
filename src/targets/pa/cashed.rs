//! Status 212 "Encaissée" (SPEC §9; `../shared/reference/notes/fr-pa-flow-api.md` §6): where VAT
//! is due on receipt (services, or mixed, without the VAT-on-debits option), the seller tells
//! the tax administration, through its PA, what it collected on each invoice, per VAT rate.
//! This module is pure: which documents need it ([`due`]), each payment's stable id
//! ([`payments`]), its amount split per VAT rate ([`split`]), and the CDAR message itself
//! ([`cdar`]), as the FNFE example `UC1_F202500003_07-CDV-212_Encaissee.xml` shows it.
//!
//! The split is cumulative: the payments, in date order, are added up, and each one's share
//! of a rate is the rounded share of the sum so far minus that of the sum before it. So the
//! shares of every payment of a rate add up to that rate's share of what was paid, to the cent,
//! and a document paid in full reports exactly its gross per rate.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::{Decimal, RoundingStrategy};
use sha2::{Digest, Sha256};

use super::cdar_write::{type_code, write, CdarParty, Detail, InvoiceRef, StatusMessage};
use crate::model::{DocKind, Document, OperationNature};

/// Why a document's payments cannot be reported (each names the document's field to fix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CashedError {
    /// A payment of zero or less.
    #[error("payments[{index}].amount is {amount}: a payment is a positive amount (a refund of a credit note too); fix the payment in the invoicing application")]
    NotPositive {
        /// Its position in `payments[]`.
        index: usize,
        /// As read.
        amount: Decimal,
    },
    /// More paid than the document's gross.
    #[error("the payments add up to {paid}, more than the document's gross {gross} (totals.gross); fix the payments in the invoicing application")]
    OverPaid {
        /// Their sum.
        paid: Decimal,
        /// `totals.gross`.
        gross: Decimal,
    },
    /// Two payments with the same id.
    #[error("payments[{index}].id `{id}` is the id of an earlier payment of the document: each payment needs its own id")]
    SameId {
        /// Its position.
        index: usize,
        /// The id.
        id: String,
    },
    /// No VAT breakdown to split the payments by.
    #[error("the document has no VAT breakdown with a non-zero amount (tax_breakdown): status 212 reports what was collected per VAT rate")]
    NoBreakdown,
    /// No payment of the document has this id.
    #[error("the document has no payment `{0}` (payments[].id)")]
    NoSuchPayment(String),
    /// An amount too large to compute with.
    #[error("an amount of the document's payments or VAT breakdown is too large to compute with")]
    Overflow,
}

/// Whether status 212 is due for a document: VAT due on receipt, that is services (or a mix
/// of goods and services) without the VAT-on-debits option. Goods' VAT is due on delivery.
pub fn due(doc: &Document) -> bool {
    matches!(
        doc.operation_nature,
        Some(OperationNature::Services | OperationNature::Mixed)
    ) && doc.vat_on_debits != Some(true)
}

/// One payment of a document with the id its 212 is sent once under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid {
    /// The source's id, or `date/amount/rank` when the source gives none.
    pub id: String,
    /// When it was received.
    pub date: NaiveDate,
    /// How much, VAT included.
    pub amount: Decimal,
}

/// The document's payments in the order they are added up (by date, then as listed), each
/// with its stable id, after checking them.
///
/// # Errors
///
/// A payment not positive, two with the same id, or more paid than the gross.
pub fn payments(doc: &Document) -> Result<Vec<Paid>, CashedError> {
    let mut out: Vec<Paid> = Vec::with_capacity(doc.payments.len());
    let mut paid = Decimal::ZERO;
    for (index, p) in doc.payments.iter().enumerate() {
        if p.amount <= Decimal::ZERO {
            return Err(CashedError::NotPositive {
                index,
                amount: p.amount,
            });
        }
        paid = paid.checked_add(p.amount).ok_or(CashedError::Overflow)?;
        let id = match p.id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(id) => id.to_owned(),
            None => {
                let same = doc.payments[..index]
                    .iter()
                    .filter(|q| q.id.is_none() && q.date == p.date && q.amount == p.amount)
                    .count();
                format!("{}/{}/{}", p.date, p.amount.normalize(), same + 1)
            }
        };
        if out.iter().any(|q| q.id == id) {
            return Err(CashedError::SameId { index, id });
        }
        out.push(Paid {
            id,
            date: p.date,
            amount: p.amount,
        });
    }
    let gross = doc.totals.gross.abs();
    if paid > gross {
        return Err(CashedError::OverPaid { paid, gross });
    }
    out.sort_by_key(|p| p.date);
    Ok(out)
}

/// What was collected at one VAT rate, VAT included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtRate {
    /// The rate, in percent.
    pub rate: Decimal,
    /// The amount, VAT included (negative for a credit note's refund).
    pub amount: Decimal,
}

/// The gross (base + VAT) of each rate of the document, in rate order, rates with nothing
/// left out.
fn gross_per_rate(doc: &Document) -> Result<Vec<(Decimal, Decimal)>, CashedError> {
    let mut rates: Vec<(Decimal, Decimal)> = Vec::new();
    for t in &doc.tax_breakdown {
        let g = t
            .base
            .checked_add(t.amount)
            .ok_or(CashedError::Overflow)?
            .abs();
        match rates.iter_mut().find(|(r, _)| *r == t.rate) {
            Some((_, sum)) => *sum = sum.checked_add(g).ok_or(CashedError::Overflow)?,
            None => rates.push((t.rate, g)),
        }
    }
    rates.retain(|(_, g)| !g.is_zero());
    rates.sort_by_key(|(r, _)| *r);
    if rates.is_empty() {
        return Err(CashedError::NoBreakdown);
    }
    Ok(rates)
}

/// `total` spread over the rates in proportion to their gross, to the cent; the rate with the
/// largest gross takes the rounding remainder, so the parts add up to `total` exactly.
fn spread(rates: &[(Decimal, Decimal)], total: Decimal) -> Result<Vec<Decimal>, CashedError> {
    let all = rates
        .iter()
        .try_fold(Decimal::ZERO, |s, (_, g)| s.checked_add(*g))
        .ok_or(CashedError::Overflow)?;
    let mut parts = Vec::with_capacity(rates.len());
    for (_, g) in rates {
        let p = total
            .checked_mul(*g)
            .and_then(|x| x.checked_div(all))
            .ok_or(CashedError::Overflow)?
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        parts.push(p);
    }
    let sum = parts
        .iter()
        .try_fold(Decimal::ZERO, |s, p| s.checked_add(*p))
        .ok_or(CashedError::Overflow)?;
    // The largest gross (the first of equals), so that the remainder is a cent or two of it.
    let largest = rates
        .iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| a.1.cmp(&b.1).then(j.cmp(i)))
        .map_or(0, |(i, _)| i);
    parts[largest] = parts[largest]
        .checked_add(total.checked_sub(sum).ok_or(CashedError::Overflow)?)
        .ok_or(CashedError::Overflow)?;
    Ok(parts)
}

/// The amounts per VAT rate that payment `id` of the document collected: the cumulative
/// split described in the module's documentation. Negative for a credit note (a refund).
///
/// # Errors
///
/// The payments do not check ([`payments`]), no VAT breakdown, or an unknown payment id.
pub fn split(doc: &Document, id: &str) -> Result<Vec<AtRate>, CashedError> {
    let all = payments(doc)?;
    let rates = gross_per_rate(doc)?;
    let mut before = Decimal::ZERO;
    for p in &all {
        let upto = before.checked_add(p.amount).ok_or(CashedError::Overflow)?;
        if p.id == id {
            let (a, b) = (spread(&rates, before)?, spread(&rates, upto)?);
            let sign = match doc.kind {
                DocKind::CreditNote => Decimal::NEGATIVE_ONE,
                DocKind::Invoice => Decimal::ONE,
            };
            return rates
                .iter()
                .zip(a.iter().zip(&b))
                .map(|((rate, _), (a, b))| {
                    Ok(AtRate {
                        rate: *rate,
                        amount: b.checked_sub(*a).ok_or(CashedError::Overflow)? * sign,
                    })
                })
                .filter(|r| !matches!(r, Ok(AtRate { amount, .. }) if amount.is_zero()))
                .collect();
        }
        before = upto;
    }
    Err(CashedError::NoSuchPayment(id.to_owned()))
}

/// The buyer's electronic address and name, as the 212 addresses it (MDT-57/58/73).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The buyer's SIREN (MDT-57, scheme 0002); when `None`, the one its address starts with.
    pub siren: Option<String>,
    /// Its name (MDT-58).
    pub name: String,
    /// Its electronic address (MDT-73, scheme 0225): the one its invoice was sent to.
    pub address: String,
}

/// One status 212 to write.
pub struct Cashed<'a> {
    /// The invoice (or credit note) collected on.
    pub doc: &'a Document,
    /// The seller's SIREN (MDT-38, MDT-129).
    pub seller_siren: &'a str,
    /// The payment.
    pub paid: &'a Paid,
    /// Its amounts per rate ([`split`]).
    pub amounts: &'a [AtRate],
    /// The buyer.
    pub buyer: &'a Recipient,
    /// When the invoice was deposited at the PA (status 200), when known (MDT-95).
    pub deposited_at: Option<NaiveDateTime>,
    /// When facto wrote the message (MDT-8).
    pub written_at: NaiveDateTime,
}

/// The CDAR's own id (MDT-4), unique per payment: the invoice number, `212`, the payment's
/// date and 12 hex digits of the SHA-256 of the payment id.
pub fn document_id(number: &str, paid: &Paid) -> String {
    let h = hex::encode(Sha256::digest(paid.id.as_bytes()));
    format!("{number}_212_{}_{}", paid.date.format("%Y%m%d"), &h[..12])
}

/// The status 212 message, as the FNFE example writes it: one `SpecifiedDocumentStatus` per VAT
/// rate with its sequence number and its `MEN` amount and rate; addressed to the buyer and the
/// PPF (`0000`, scheme 0238, role DFH).
pub fn cdar(c: &Cashed<'_>) -> Vec<u8> {
    let doc = c.doc;
    let type_code = type_code(doc);
    // The buyer's SIREN, else the one its address (scheme 0225) starts with: without it, the
    // rules read a message whose only identified recipient is the PPF as the PPF's copy.
    let buyer_siren = c.buyer.siren.as_deref().or_else(|| {
        c.buyer
            .address
            .get(..9)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
    });
    let id = document_id(&doc.number, c.paid);
    let name = format!("{} 212 Encaissée", doc.number);
    write(&StatusMessage {
        id: &id,
        name: &name,
        written_at: c.written_at,
        issuer: CdarParty {
            siren: Some(c.seller_siren),
            name: &doc.seller.name,
            role: "SE",
            address: None,
        },
        recipients: vec![CdarParty {
            siren: buyer_siren,
            name: &c.buyer.name,
            role: "BY",
            address: Some(&c.buyer.address),
        }],
        to_ppf: true,
        // The status's date: the day the money was received.
        status_at: c.paid.date.and_hms_opt(0, 0, 0).unwrap_or_default(),
        invoice: InvoiceRef {
            number: &doc.number,
            type_code: &type_code,
            issue_date: doc.issue_date,
            received_at: c.deposited_at,
            seller_siren: c.seller_siren,
        },
        code: 212,
        label: "Encaissée",
        un_status: "47",
        details: c
            .amounts
            .iter()
            .map(|a| Detail {
                amount: Some((a.amount, &doc.currency, a.rate)),
                ..Detail::default()
            })
            .collect(),
    })
}

#[cfg(test)]
#[path = "cashed_tests.rs"]
mod tests;
