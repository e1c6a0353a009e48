//! E-reporting (flow 10, SPEC §9; `../shared/reference/notes/fr-pa-flow-api.md` §10), its first
//! part: what a period would report. The sales a PA target holds for e-reporting (code
//! `e-reporting` in the ledger: B2C and international buyers) are read back from the ledger
//! with the document they were held with, and totalled as flow 10 asks:
//!
//! - B2C sales (10.3) aggregated per day, currency, category (`TLB1` goods, `TPS1` services)
//!   and VAT rate: taxable base, VAT and number of documents;
//! - international B2B sales (10.1) one entry per invoice and VAT rate;
//! - where VAT is due on receipt (services without the VAT-on-debits option), the payments
//!   received: B2C (10.4) per day, currency and rate, international (10.2) per invoice and
//!   payment, each split per VAT rate as status 212 splits it ([`crate::targets::pa::cashed`]);
//! - with the company's VAT regime (`[company] vat_regime`), the periods the data falls in
//!   ([`periods`]), open or closed, with their due dates. Only periods with data are listed:
//!   no report is ever sent empty.
//!
//! A credit note counts negative. A sale whose category cannot be told (no `operation_nature`,
//! or `mixed`: flow 10 wants each line's category, which the document format does not carry)
//! is listed apart with the fix, never guessed. Sales out of scope of French VAT are not
//! reported. The flow 10 XML itself waits for the administration's XSD and rules (not in this
//! repository's references): nothing is sent from here.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

pub mod periods;

use crate::company::VatRegime;
use crate::ledger::{Ledger, LedgerError, RecordFilter, State};
use crate::model::{DocKind, Document, OperationNature};
use crate::route::{self, PublicBuyers, Route};
use crate::targets::pa::cashed;

/// The amounts of one category and VAT rate, in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Taxed {
    /// ISO 4217.
    pub currency: String,
    /// `TLB1` goods, `TPS1` services.
    pub category: &'static str,
    /// VAT rate, in percent.
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    /// Taxable base (negative for credit notes).
    #[serde(with = "rust_decimal::serde::str")]
    pub base: Decimal,
    /// VAT.
    #[serde(with = "rust_decimal::serde::str")]
    pub vat: Decimal,
}

/// One aggregated line of 10.3 (B2C transactions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Aggregated {
    /// The day (the documents' issue date).
    pub date: NaiveDate,
    /// Its amounts.
    #[serde(flatten)]
    pub taxed: Taxed,
    /// How many documents.
    pub documents: u32,
}

/// One entry of 10.1 (an international B2B invoice, per VAT rate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unitary {
    /// Invoice number.
    pub number: String,
    /// Issue date.
    pub date: NaiveDate,
    /// `invoice` or `credit_note`.
    pub kind: &'static str,
    /// The buyer's country (ISO 3166-1 alpha-2), as the document gives it.
    pub buyer_country: String,
    /// Its amounts.
    #[serde(flatten)]
    pub taxed: Taxed,
}

/// Payments received at one VAT rate, VAT included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Collected {
    /// ISO 4217.
    pub currency: String,
    /// VAT rate, in percent.
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    /// What was received at that rate, VAT included (negative: a refund of a credit note).
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// One aggregated line of 10.4 (B2C payments received).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectedDay {
    /// The day the payments were received.
    pub date: NaiveDate,
    /// Their amounts.
    #[serde(flatten)]
    pub collected: Collected,
    /// How many payments.
    pub payments: u32,
}

/// One entry of 10.2 (a payment of an international invoice, per VAT rate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectedInvoice {
    /// Invoice number.
    pub number: String,
    /// The day the payment was received.
    pub date: NaiveDate,
    /// Its amounts.
    #[serde(flatten)]
    pub collected: Collected,
}

/// A period of the company's VAT regime that holds data, and whether it is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeriodSummary {
    /// Its dates and due date.
    #[serde(flatten)]
    pub period: periods::Period,
    /// `closed` once its last day is past (its report may be built), else `open`.
    pub state: &'static str,
    /// Its lines of transactions (10.1, 10.3).
    pub transactions: usize,
    /// Its lines of payments (10.2, 10.4).
    pub payments: usize,
}

/// A held sale that cannot be reported as it is, with why and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreported {
    /// Document number.
    pub number: String,
    /// Why.
    pub reason: String,
    /// What to do.
    pub fix: String,
}

/// What a period of a PA target would report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The PA target.
    pub target: String,
    /// First issue date, included.
    pub from: Option<NaiveDate>,
    /// Last issue date, included.
    pub to: Option<NaiveDate>,
    /// 10.3: B2C sales, per day, currency, category and rate.
    pub b2c: Vec<Aggregated>,
    /// 10.1: international B2B sales, per invoice and rate.
    pub international: Vec<Unitary>,
    /// 10.4: B2C payments received where VAT is due on receipt, per day, currency and rate.
    pub b2c_payments: Vec<CollectedDay>,
    /// 10.2: payments of international invoices where VAT is due on receipt.
    pub international_payments: Vec<CollectedInvoice>,
    /// The company's VAT regime, when set.
    pub vat_regime: Option<VatRegime>,
    /// The regime's periods that hold data (none without a regime).
    pub periods: Vec<PeriodSummary>,
    /// Sales that cannot be reported as they are.
    pub unreported: Vec<Unreported>,
    /// Sales outside French VAT (not reported), by number.
    pub out_of_scope: Vec<String>,
}

/// Errors building the report.
#[derive(Debug, thiserror::Error)]
pub enum EReportingError {
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A sum too large to hold.
    #[error("the {0} total is too large to compute with")]
    Overflow(&'static str),
}

fn category(doc: &Document) -> Result<&'static str, Unreported> {
    match doc.operation_nature {
        Some(OperationNature::Goods) => Ok("TLB1"),
        Some(OperationNature::Services) => Ok("TPS1"),
        nature => Err(Unreported {
            number: doc.number.clone(),
            reason: match nature {
                Some(_) => "operation_nature is `mixed`: flow 10 reports goods (TLB1) and services (TPS1) apart, and the document does not say which line is which".into(),
                None => "no operation_nature: flow 10 reports goods (TLB1) and services (TPS1) apart".into(),
            },
            fix: "give the document its operation_nature (`goods` or `services`); issue a mixed sale as two documents".into(),
        }),
    }
}

/// A document's payments received in the period, each split per VAT rate as status 212 splits
/// it; or why they cannot be.
fn collected(
    doc: &Document,
    in_period: &impl Fn(NaiveDate) -> bool,
) -> Result<Vec<(NaiveDate, Collected)>, Unreported> {
    let bad = |e: cashed::CashedError| Unreported {
        number: doc.number.clone(),
        reason: format!("its payments cannot be reported: {e}"),
        fix: "fix the payments in the invoicing application".into(),
    };
    let mut out = Vec::new();
    // A sale none of whose payments falls in the period is not this period's concern.
    if !doc.payments.iter().any(|p| in_period(p.date)) {
        return Ok(out);
    }
    for p in cashed::payments(doc).map_err(bad)? {
        if !in_period(p.date) {
            continue;
        }
        for at in cashed::split(doc, &p.id).map_err(bad)? {
            out.push((
                p.date,
                Collected {
                    currency: doc.currency.clone(),
                    rate: at.rate.normalize(),
                    amount: at.amount,
                },
            ));
        }
    }
    Ok(out)
}

/// Adds `b` to `a`, or says which total overflowed.
fn add(a: &mut Decimal, b: Decimal, what: &'static str) -> Result<(), EReportingError> {
    *a = a.checked_add(b).ok_or(EReportingError::Overflow(what))?;
    Ok(())
}

impl Report {
    /// Totals `docs` (the sales held for e-reporting) whose issue date is in the period.
    ///
    /// # Errors
    ///
    /// A total too large to hold.
    pub fn of(
        target: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        docs: impl IntoIterator<Item = Document>,
    ) -> Result<Report, EReportingError> {
        let mut r = Report {
            target: target.to_owned(),
            from,
            to,
            ..Report::default()
        };
        type Key = (NaiveDate, String, &'static str, Decimal);
        let mut b2c: BTreeMap<Key, (Decimal, Decimal, u32)> = BTreeMap::new();
        let mut b2c_paid: BTreeMap<(NaiveDate, String, Decimal), (Decimal, u32)> = BTreeMap::new();
        let in_period = |d: NaiveDate| !(from.is_some_and(|f| d < f) || to.is_some_and(|t| d > t));
        for doc in docs {
            let route = route::decide(&doc, PublicBuyers::Chorus).route;
            if !matches!(route, Route::B2c | Route::International) {
                if in_period(doc.issue_date) {
                    r.out_of_scope.push(doc.number.clone());
                }
                continue;
            }
            // Payments count on the day they were received, whenever the sale was made.
            if cashed::due(&doc) && !doc.payments.is_empty() {
                match collected(&doc, &in_period) {
                    Ok(parts) => {
                        for (date, at) in parts {
                            if route == Route::International {
                                r.international_payments.push(CollectedInvoice {
                                    number: doc.number.clone(),
                                    date,
                                    collected: at,
                                });
                            } else {
                                let e = b2c_paid.entry((date, at.currency, at.rate)).or_default();
                                add(&mut e.0, at.amount, "payments")?;
                                e.1 += 1;
                            }
                        }
                    }
                    Err(u) => r.unreported.push(u),
                }
            }
            if !in_period(doc.issue_date) {
                continue;
            }
            let cat = match category(&doc) {
                Ok(c) => c,
                Err(u) => {
                    r.unreported.push(u);
                    continue;
                }
            };
            if doc.tax_breakdown.is_empty() {
                r.unreported.push(Unreported {
                    number: doc.number.clone(),
                    reason: "no tax_breakdown: flow 10 reports the base and VAT per rate".into(),
                    fix: "export the document with its VAT breakdown".into(),
                });
                continue;
            }
            let sign = match doc.kind {
                DocKind::Invoice => Decimal::ONE,
                DocKind::CreditNote => Decimal::NEGATIVE_ONE,
            };
            // Per rate, the sums of the breakdown's lines of that rate.
            let mut rates: BTreeMap<Decimal, (Decimal, Decimal)> = BTreeMap::new();
            for t in &doc.tax_breakdown {
                let e = rates.entry(t.rate.normalize()).or_default();
                add(&mut e.0, t.base.abs() * sign, "base")?;
                add(&mut e.1, t.amount.abs() * sign, "VAT")?;
            }
            for (rate, (base, vat)) in rates {
                if route == Route::International {
                    r.international.push(Unitary {
                        number: doc.number.clone(),
                        date: doc.issue_date,
                        kind: doc.kind.as_str(),
                        buyer_country: doc
                            .buyer
                            .billing_address
                            .as_ref()
                            .and_then(|a| a.country_code.clone())
                            .unwrap_or_default(),
                        taxed: Taxed {
                            currency: doc.currency.clone(),
                            category: cat,
                            rate,
                            base,
                            vat,
                        },
                    });
                } else {
                    let e = b2c
                        .entry((doc.issue_date, doc.currency.clone(), cat, rate))
                        .or_default();
                    add(&mut e.0, base, "base")?;
                    add(&mut e.1, vat, "VAT")?;
                    e.2 += 1;
                }
            }
        }
        r.b2c = b2c
            .into_iter()
            .map(
                |((date, currency, category, rate), (base, vat, documents))| Aggregated {
                    date,
                    taxed: Taxed {
                        currency,
                        category,
                        rate,
                        base,
                        vat,
                    },
                    documents,
                },
            )
            .collect();
        r.international
            .sort_by(|a, b| (a.date, &a.number).cmp(&(b.date, &b.number)));
        r.b2c_payments = b2c_paid
            .into_iter()
            .map(
                |((date, currency, rate), (amount, payments))| CollectedDay {
                    date,
                    collected: Collected {
                        currency,
                        rate,
                        amount,
                    },
                    payments,
                },
            )
            .collect();
        r.international_payments
            .sort_by(|a, b| (a.date, &a.number).cmp(&(b.date, &b.number)));
        Ok(r)
    }

    /// The periods of `regime` that hold this report's data, as of `today`.
    #[must_use]
    pub fn in_periods(mut self, regime: Option<VatRegime>, today: NaiveDate) -> Report {
        self.vat_regime = regime;
        let Some(regime) = regime else {
            return self;
        };
        let mut by: BTreeMap<periods::Period, (usize, usize)> = BTreeMap::new();
        let transactions = self
            .b2c
            .iter()
            .map(|a| a.date)
            .chain(self.international.iter().map(|u| u.date));
        for d in transactions {
            if let Some(p) = periods::period_of(regime, d) {
                by.entry(p).or_default().0 += 1;
            }
        }
        let payments = self
            .b2c_payments
            .iter()
            .map(|a| a.date)
            .chain(self.international_payments.iter().map(|u| u.date));
        for d in payments {
            if let Some(p) = periods::period_of(regime, d) {
                by.entry(p).or_default().1 += 1;
            }
        }
        self.periods = by
            .into_iter()
            .map(|(period, (transactions, payments))| PeriodSummary {
                state: if periods::closed(&period, today) {
                    "closed"
                } else {
                    "open"
                },
                period,
                transactions,
                payments,
            })
            .collect();
        self
    }

    /// The report of a job's PA target: its records held for e-reporting, with the document
    /// each was held with.
    ///
    /// # Errors
    ///
    /// The ledger cannot be read, or a total too large to hold.
    pub fn from_ledger(
        ledger: &dyn Ledger,
        job: &str,
        target: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Report, EReportingError> {
        let held = ledger.list(&RecordFilter {
            job: Some(job.to_owned()),
            target: Some(target.to_owned()),
            state: Some(State::Held),
        })?;
        let docs = held
            .into_iter()
            .filter(|r| r.problems.iter().any(|p| p.code == route::E_REPORTING))
            .filter_map(|mut r| r.take_held_doc());
        Report::of(target, from, to, docs)
    }

    /// The report as text.
    pub fn render(&self) -> String {
        let period = match (self.from, self.to) {
            (None, None) => "all dates".to_owned(),
            (f, t) => format!(
                "{} to {}",
                f.map_or("…".into(), |d| d.to_string()),
                t.map_or("…".into(), |d| d.to_string())
            ),
        };
        let mut s = format!(
            "E-reporting (flow 10) of {}, {period}: preview, nothing is sent\n",
            self.target
        );
        s.push_str(&format!(
            "\nB2C sales (10.3), per day, currency, category and VAT rate: {} line(s)\n",
            self.b2c.len()
        ));
        for a in &self.b2c {
            s.push_str(&format!(
                "  {}  {}  {}  {:>6} %  base {:>12}  VAT {:>10}  ({} document(s))\n",
                a.date,
                a.taxed.currency,
                a.taxed.category,
                a.taxed.rate,
                a.taxed.base,
                a.taxed.vat,
                a.documents
            ));
        }
        s.push_str(&format!(
            "\nInternational B2B sales (10.1), per invoice and VAT rate: {} line(s)\n",
            self.international.len()
        ));
        for u in &self.international {
            s.push_str(&format!(
                "  {}  {}  {} ({})  {}  {}  {:>6} %  base {:>12}  VAT {:>10}\n",
                u.date,
                u.number,
                u.buyer_country,
                u.kind,
                u.taxed.currency,
                u.taxed.category,
                u.taxed.rate,
                u.taxed.base,
                u.taxed.vat
            ));
        }
        if !self.b2c_payments.is_empty() || !self.international_payments.is_empty() {
            s.push_str(&format!(
                "\nPayments received where VAT is due on receipt (10.4 B2C per day and rate, 10.2 international per invoice): {} line(s)\n",
                self.b2c_payments.len() + self.international_payments.len()
            ));
            for a in &self.b2c_payments {
                s.push_str(&format!(
                    "  {}  {}  B2C  {:>6} %  received {:>12}  ({} payment(s))\n",
                    a.date, a.collected.currency, a.collected.rate, a.collected.amount, a.payments
                ));
            }
            for u in &self.international_payments {
                s.push_str(&format!(
                    "  {}  {}  {:>6} %  received {:>12} {}\n",
                    u.date, u.number, u.collected.rate, u.collected.amount, u.collected.currency
                ));
            }
        }
        match self.vat_regime {
            None => s.push_str("\nPeriods: set [company] vat_regime (normal-monthly, normal-quarterly, simplified or franchise) to see the reporting periods and due dates\n"),
            Some(regime) => {
                s.push_str(&format!(
                    "\nPeriods of the {} regime that hold data (an empty period is not reported): {}\n",
                    serde_json::to_value(regime).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                    self.periods.len()
                ));
                for p in &self.periods {
                    s.push_str(&format!(
                        "  {} to {}  {:<6}  due {}  {} transaction line(s), {} payment line(s)\n",
                        p.period.start,
                        p.period.end,
                        p.state,
                        p.period.due.map_or("(ask your PA: not in facto's references)".to_owned(), |d| d.to_string()),
                        p.transactions,
                        p.payments
                    ));
                }
            }
        }
        if !self.unreported.is_empty() {
            s.push_str(&format!(
                "\nCannot be reported as they are: {}\n",
                self.unreported.len()
            ));
            for u in &self.unreported {
                s.push_str(&format!("  {}: {}; fix: {}\n", u.number, u.reason, u.fix));
            }
        }
        if !self.out_of_scope.is_empty() {
            s.push_str(&format!(
                "\nOut of scope of French VAT, not reported: {}\n",
                self.out_of_scope.join(", ")
            ));
        }
        s
    }
}

#[cfg(test)]
#[path = "ereporting_tests.rs"]
mod tests;
