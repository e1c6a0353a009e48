//! The journal entry a document becomes ([`JournalEntry`], [`MappedDocument`]) and the pure
//! functions that build it from a [`Mapping`]: [`map_document`] and [`unmapped_codes`].

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::keys::{DeclaredKeys, KeyTable};
use super::{code_is_valid, GlAccount, Mapping, RevenueLines, Side, TaxCode, VatCategory};
use crate::model::{DocKind, Document};
use crate::problem::Problem;

/// Which side of the entry a line is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineRole {
    /// The receivable (411).
    Customer,
    /// A revenue account (7xx).
    Revenue,
    /// A collected-VAT account (44571x).
    Tax,
}

/// One line of a journal entry. Exactly one of debit and credit is non-zero; both are positive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryLine {
    /// What the line books.
    pub role: LineRole,
    /// Account number.
    pub account: String,
    /// Account label.
    pub account_label: String,
    /// Auxiliary account (customer line only).
    pub aux: Option<String>,
    /// Auxiliary account label.
    pub aux_label: Option<String>,
    /// Debit amount.
    pub debit: Decimal,
    /// Credit amount.
    pub credit: Decimal,
}

/// The mapped account and tax of one document line (for detailed exports).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappedLine {
    /// Revenue account.
    pub account: String,
    /// VAT rate in percent.
    pub rate: Decimal,
    /// VAT category.
    pub category: VatCategory,
    /// Exemption reason text (BT-120), from the tax mapping.
    #[serde(default)]
    pub exemption_reason: Option<String>,
    /// Exemption reason code (BT-121), from the tax mapping.
    #[serde(default)]
    pub exemption_code: Option<String>,
    /// The values in effect of the keys targets declare (`pennylane_vat_rate`,
    /// `xero_account_code`, ...), from the line's GL and tax entries; read with [`Self::key`].
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
}

impl MappedLine {
    /// The value of the declared mapping key `name` for this line, when the mapping gives or
    /// implies one.
    pub fn key(&self, name: &str) -> Option<&str> {
        self.keys.get(name).map(String::as_str)
    }
}

/// The declared keys' values in effect for a line mapped through `gl` and `tax`.
fn declared_values(
    declared: DeclaredKeys,
    gl: &GlAccount,
    tax: &TaxCode,
) -> BTreeMap<String, String> {
    let gl_keys = declared
        .of_table(KeyTable::Gl)
        .filter_map(|k| Some((k.name, gl.key(k.name)?)));
    let tax_keys = declared
        .of_table(KeyTable::Tax)
        .filter_map(|k| Some((k.name, tax.key(k.name)?)));
    gl_keys
        .chain(tax_keys)
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// One balanced entry for one document, format-neutral.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Journal code.
    pub journal_code: String,
    /// Journal label.
    pub journal_label: String,
    /// Entry label, `<number> <customer>`.
    pub label: String,
    /// Lines: customer, revenue, VAT.
    pub lines: Vec<EntryLine>,
}

impl JournalEntry {
    /// Sum of debits and sum of credits, or `None` when a sum overflows (an entry built from
    /// figures beyond [`crate::model::MAX_FIGURE`]).
    pub fn checked_sums(&self) -> Option<(Decimal, Decimal)> {
        self.lines
            .iter()
            .try_fold((Decimal::ZERO, Decimal::ZERO), |(d, c), l| {
                Some((d.checked_add(l.debit)?, c.checked_add(l.credit)?))
            })
    }

    /// Sum of debits and sum of credits, saturating: exact for entries that passed
    /// `checks::prepare` (their figures are bounded); see [`Self::checked_sums`].
    pub fn sums(&self) -> (Decimal, Decimal) {
        self.lines
            .iter()
            .fold((Decimal::ZERO, Decimal::ZERO), |(d, c), l| {
                (d.saturating_add(l.debit), c.saturating_add(l.credit))
            })
    }
}

/// A document that passed mapping and checks, with its entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappedDocument {
    /// The source document.
    pub doc: Document,
    /// Its balanced entry.
    pub entry: JournalEntry,
    /// Mapped account and tax per document line, in line order.
    pub lines: Vec<MappedLine>,
}

/// The counterparty of a document's entry under a mapping of `side`: its id in the mapping's
/// party table (when it has one) and its name; the buyer of a sale, the seller of a purchase.
pub fn counterparty(doc: &Document, side: Side) -> (Option<&str>, &str) {
    let p = Party::of(doc, side);
    (p.id, p.name)
}

/// The counterparty of an entry, as the mapping's side sees it: the buyer of a sale (by its
/// `customer_id`), the seller of a purchase (by its SIREN, else its VAT id, else its
/// `customer_id`), with the words its problems use.
struct Party<'a> {
    id: Option<&'a str>,
    name: &'a str,
    word: &'static str,
    field: &'static str,
    missing_code: &'static str,
    missing: &'static str,
    missing_fix: &'static str,
    invalid_code: &'static str,
    unmapped_code: &'static str,
}

impl<'a> Party<'a> {
    fn of(doc: &'a Document, side: Side) -> Party<'a> {
        let present = |s: &'a Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty());
        match side {
            // As before purchases existed: the id as written, unless blank.
            Side::Sales => Party {
                id: doc
                    .buyer
                    .customer_id
                    .as_deref()
                    .filter(|s| !s.trim().is_empty()),
                name: &doc.buyer.name,
                word: "customer",
                field: "buyer.customer_id",
                missing_code: "missing-customer-id",
                missing: "the buyer has no customer_id, so no auxiliary account can be chosen",
                missing_fix: "set the customer's identifier in the invoicing application",
                invalid_code: "invalid-customer-account",
                unmapped_code: "unmapped-customer",
            },
            Side::Purchases => {
                let s = &doc.seller;
                let siret = present(&s.siret).and_then(|t| t.get(..9));
                Party {
                    id: present(&s.siren)
                        .or(siret)
                        .or_else(|| present(&s.vat_id))
                        .or_else(|| present(&s.customer_id)),
                    name: &s.name,
                    word: "supplier",
                    field: "seller.siren",
                    missing_code: "missing-supplier-id",
                    missing: "the seller has no SIREN, SIRET, VAT id or customer_id, so no supplier account can be chosen",
                    missing_fix: "ask the supplier for an invoice that names its SIREN",
                    invalid_code: "invalid-supplier-account",
                    unmapped_code: "unmapped-supplier",
                }
            }
        }
    }
}

fn push_side(
    lines: &mut Vec<EntryLine>,
    role: LineRole,
    account: &str,
    label: &str,
    amount: Decimal,
    debit_side: bool,
) {
    if amount.is_zero() {
        return;
    }
    // A negative amount (a discount line larger than the rest of its group) goes on the other side.
    let (debit_side, amount) = if amount < Decimal::ZERO {
        (!debit_side, -amount)
    } else {
        (debit_side, amount)
    };
    lines.push(EntryLine {
        role,
        account: account.to_owned(),
        account_label: label.to_owned(),
        aux: None,
        aux_label: None,
        debit: if debit_side { amount } else { Decimal::ZERO },
        credit: if debit_side { Decimal::ZERO } else { amount },
    });
}

/// Maps a document to its journal entry.
///
/// # Errors
///
/// Every unmapped code and every imbalance, as [`Problem`]s naming the field, the file and the fix.
pub fn map_document(doc: &Document, m: &Mapping) -> Result<MappedDocument, Vec<Problem>> {
    let mut problems = Vec::new();
    let file = m.file_name();
    if doc.currency != "EUR" {
        problems.push(Problem::new(
            "foreign-currency",
            "currency",
            format!("currency {} : the journal is kept in EUR and the document carries no exchange rate", doc.currency),
            "book this document by hand, or issue it in EUR",
        ));
    }
    let side = m.journal.side;
    let party = Party::of(doc, side);
    let table = side.parties();
    let customer = match party.id {
        None => {
            problems.push(Problem::new(
                party.missing_code,
                party.field,
                party.missing,
                party.missing_fix,
            ));
            None
        }
        Some(id) => match m.customers.account(id) {
            Some(c) if !code_is_valid(&c.aux) => {
                problems.push(Problem::new(
                    party.invalid_code,
                    party.field,
                    format!(
                        "{} id `{id}` ({}) gives auxiliary account `{}` through aux_pattern, which is not 1-20 letters, digits, `-` or `_`",
                        party.word, party.name, c.aux
                    ),
                    format!("add [{table}.accounts.\"{id}\"] with aux = \"...\" to {file}"),
                ));
                None
            }
            Some(c) => Some(c),
            None => {
                problems.push(Problem::new(
                    party.unmapped_code,
                    party.field,
                    format!(
                        "{} id `{id}` ({}) has no auxiliary account in {file}",
                        party.word, party.name
                    ),
                    format!("add [{table}.accounts.\"{id}\"] with aux = \"...\" to {file}"),
                ));
                None
            }
        },
    };
    // Revenue (class 7) in sales, expenses (class 6) in purchases.
    let (what, class) = match side {
        Side::Sales => ("revenue", 7),
        Side::Purchases => ("expense", 6),
    };
    // The party's usual GL code, for lines that name none the mapping knows.
    let party_gl = customer
        .as_ref()
        .and_then(|c| c.gl.as_deref())
        .and_then(|g| m.gl.accounts.get(g));
    let mut mapped_lines = Vec::with_capacity(doc.lines.len());
    // (account, rate when grouped by rate) → (label, net), in first-appearance order.
    let by_rate = m.journal.revenue_lines == RevenueLines::PerAccountAndRate;
    let mut revenue: Vec<((String, Option<Decimal>), String, Decimal)> = Vec::new();
    for (i, line) in doc.lines.iter().enumerate() {
        let product = line
            .product_code
            .as_ref()
            .and_then(|c| m.gl.products.get(c));
        let gl = match (&line.gl_account, &line.product_code) {
            (None, _) if product.is_none() && party_gl.is_some() => party_gl,
            (Some(code), _) => m.gl.accounts.get(code).or_else(|| {
                problems.push(Problem::new(
                    "unmapped-gl-account",
                    format!("lines[{i}].gl_account"),
                    format!("GL code `{code}` has no {what} account in {file}"),
                    format!(
                        "add [gl.accounts.\"{code}\"] with account = \"{class}...\" and label to {file}"
                    ),
                ));
                None
            }),
            (None, Some(code)) => product.or_else(|| {
                problems.push(Problem::new(
                    "unmapped-product-code",
                    format!("lines[{i}].product_code"),
                    format!("product code `{code}` has no {what} account in {file}"),
                    format!(
                        "add [gl.products.\"{code}\"] with account = \"{class}...\" and label to {file}"
                    ),
                ));
                None
            }),
            (None, None) => {
                problems.push(Problem::new(
                    "missing-gl-code",
                    format!("lines[{i}].gl_account"),
                    "the line has neither gl_account nor product_code",
                    match side {
                        Side::Sales => "set the line's GL account or product in the invoicing application".to_owned(),
                        Side::Purchases => format!("give the supplier its usual account: gl = \"...\" in [suppliers.accounts] of {file}"),
                    },
                ));
                None
            }
        };
        let tax = m.tax.get(&line.tax_code).or_else(|| {
            problems.push(Problem::new(
                "unmapped-tax-code",
                format!("lines[{i}].tax_code"),
                format!("tax code `{}` has no mapping in {file}", line.tax_code),
                format!(
                    "add [tax.\"{}\"] with rate, category and account to {file}",
                    line.tax_code
                ),
            ));
            None
        });
        if let (Some(gl), Some(tax)) = (gl, tax) {
            mapped_lines.push(MappedLine {
                account: gl.account.clone(),
                rate: tax.rate,
                category: tax.category,
                exemption_reason: tax.exemption_reason.clone(),
                exemption_code: tax.exemption_code.clone(),
                keys: declared_values(m.declared, gl, tax),
            });
            let key = (gl.account.clone(), by_rate.then_some(tax.rate));
            match revenue.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, _, sum)) => match sum.checked_add(line.net_amount) {
                    Some(v) => *sum = v,
                    None => problems.push(crate::model::out_of_range(
                        format!("lines[{i}].net_amount"),
                        format!("the revenue on account {} (sum of the lines)", key.0),
                    )),
                },
                None => revenue.push((key, gl.label.clone(), line.net_amount)),
            }
        }
    }
    let mut tax_lines: Vec<(String, String, Decimal)> = Vec::new();
    for (i, b) in doc.tax_breakdown.iter().enumerate() {
        let Some(t) = m.tax.get(&b.tax_code) else {
            if !doc.lines.iter().any(|l| l.tax_code == b.tax_code) {
                problems.push(Problem::new(
                    "unmapped-tax-code",
                    format!("tax_breakdown[{i}].tax_code"),
                    format!("tax code `{}` has no mapping in {file}", b.tax_code),
                    format!(
                        "add [tax.\"{}\"] with rate, category and account to {file}",
                        b.tax_code
                    ),
                ));
            }
            continue;
        };
        if t.rate != b.rate {
            problems.push(Problem::new(
                "tax-rate-mismatch",
                format!("tax_breakdown[{i}].rate"),
                format!(
                    "tax code `{}` is {} % on the document but {} % in {file}",
                    b.tax_code, b.rate, t.rate
                ),
                format!(
                    "correct [tax.\"{}\"] rate in {file}, or the document's tax code",
                    b.tax_code
                ),
            ));
            continue;
        }
        if b.amount.is_zero() {
            continue;
        }
        let Some(account) = &t.account else {
            problems.push(Problem::new(
                "missing-vat-account",
                format!("tax_breakdown[{i}].amount"),
                format!(
                    "tax code `{}` carries VAT {} but has no account in {file}",
                    b.tax_code, b.amount
                ),
                format!(
                    "add account = \"44571...\" to [tax.\"{}\"] in {file}",
                    b.tax_code
                ),
            ));
            continue;
        };
        let label = t.label.clone().unwrap_or_else(|| match side {
            Side::Sales => format!("TVA collectée {} %", t.rate.normalize()),
            Side::Purchases => format!("TVA déductible {} %", t.rate.normalize()),
        });
        match tax_lines.iter_mut().find(|(a, _, _)| a == account) {
            Some((_, _, sum)) => match sum.checked_add(b.amount) {
                Some(v) => *sum = v,
                None => problems.push(crate::model::out_of_range(
                    format!("tax_breakdown[{i}].amount"),
                    format!("the VAT on account {account} (sum of the breakdown)"),
                )),
            },
            None => tax_lines.push((account.clone(), label, b.amount)),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let Some(customer) = customer else {
        return Err(problems);
    };
    // Sales: an invoice debits its customer; purchases: an invoice credits its supplier. A
    // credit note the other way round.
    let invoice = (doc.kind == DocKind::Invoice) == (side == Side::Sales);
    let mut lines = Vec::with_capacity(1 + revenue.len() + tax_lines.len());
    let collective = customer
        .collective_account
        .as_deref()
        .unwrap_or(&m.customers.collective_account);
    push_side(
        &mut lines,
        LineRole::Customer,
        collective,
        &m.customers.collective_label,
        doc.totals.gross,
        invoice,
    );
    if let Some(first) = lines.first_mut() {
        first.aux = Some(customer.aux.clone());
        first.aux_label = Some(
            customer
                .label
                .clone()
                .unwrap_or_else(|| party.name.to_owned()),
        );
    }
    for ((account, _), label, net) in &revenue {
        push_side(
            &mut lines,
            LineRole::Revenue,
            account,
            label,
            *net,
            !invoice,
        );
    }
    for (account, label, amount) in &tax_lines {
        push_side(&mut lines, LineRole::Tax, account, label, *amount, !invoice);
    }
    let entry = JournalEntry {
        journal_code: m.journal.code.clone(),
        journal_label: m.journal.label.clone(),
        label: format!("{} {}", doc.number, party.name),
        lines,
    };
    Ok(MappedDocument {
        doc: doc.clone(),
        entry,
        lines: mapped_lines,
    })
}

/// Codes a document uses that the mapping lacks: `(table, code)` pairs, for `facto mappings check`.
pub fn unmapped_codes(doc: &Document, m: &Mapping) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(id) = Party::of(doc, m.journal.side).id {
        if m.customers.account(id).is_none() {
            let table = match m.journal.side {
                Side::Sales => "customers.accounts",
                Side::Purchases => "suppliers.accounts",
            };
            out.push((table, id.to_owned()));
        }
    }
    for l in &doc.lines {
        match (&l.gl_account, &l.product_code) {
            (Some(c), _) if !m.gl.accounts.contains_key(c) => out.push(("gl.accounts", c.clone())),
            (None, Some(p)) if !m.gl.products.contains_key(p) => {
                out.push(("gl.products", p.clone()))
            }
            _ => {}
        }
        if !m.tax.contains_key(&l.tax_code) {
            out.push(("tax", l.tax_code.clone()));
        }
    }
    for b in &doc.tax_breakdown {
        if !m.tax.contains_key(&b.tax_code) {
            out.push(("tax", b.tax_code.clone()));
        }
    }
    out.sort();
    out.dedup();
    out
}
