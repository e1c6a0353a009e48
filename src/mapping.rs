//! Mapping files (`mappings/NAME.toml`, edited by admins) and the pure function that turns a
//! document into one balanced journal entry through them. Strict: a code with no mapping is never
//! guessed; it becomes a [`Problem`] naming the code, the file and the table to add.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{find_line, parse_toml, ConfigError};
use crate::model::{DocKind, Document};
use crate::problem::Problem;

/// Reads a decimal written as a TOML string (`"5.5"`) or integer; a TOML float is refused since it
/// may not be exact.
fn toml_decimal<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    use serde::de::Error;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Str(String),
        Int(i64),
        Float(f64),
    }
    match Raw::deserialize(d)? {
        Raw::Str(s) => s
            .trim()
            .parse::<Decimal>()
            .map_err(|_| D::Error::custom(format!("`{s}` is not a decimal number"))),
        Raw::Int(i) => Ok(Decimal::from(i)),
        Raw::Float(f) => Err(D::Error::custom(format!(
            "write the rate as a string, rate = \"{f}\", so that it is exact"
        ))),
    }
}

/// `[journal]`: the journal the entries go to.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSection {
    /// Journal code, e.g. `VE`.
    pub code: String,
    /// Journal label, e.g. `Journal des ventes`.
    pub label: String,
    /// Revenue lines of an entry: one per revenue account (the default), or one per account and
    /// VAT rate.
    #[serde(default)]
    pub revenue_lines: RevenueLines,
}

/// How an entry's revenue lines are grouped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevenueLines {
    /// One credit line per revenue account (SPEC §6).
    #[default]
    PerAccount,
    /// One line per revenue account and VAT rate, for charts that follow the rate in revenue.
    PerAccountAndRate,
}

/// One customer's accounts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerAccount {
    /// Auxiliary (tiers) account, e.g. `CDUPONT`.
    pub aux: String,
    /// Label of the auxiliary account (default: the buyer's name on the document).
    #[serde(default)]
    pub label: Option<String>,
    /// Collective account for this customer, when it differs from the default.
    #[serde(default)]
    pub collective_account: Option<String>,
}

/// `[customers]`: receivable accounts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomersSection {
    /// Default collective account, e.g. `411000`.
    pub collective_account: String,
    /// Its label, e.g. `Clients`.
    #[serde(default = "default_collective_label")]
    pub collective_label: String,
    /// Customer id (shared with the accounting software) → auxiliary account.
    #[serde(default)]
    pub accounts: BTreeMap<String, CustomerAccount>,
    /// Auxiliary account of a customer not listed in `accounts`, built from its id:
    /// `"{id}"` when the accounting software uses the invoicing app's customer ids, `"C{id}"`
    /// with a prefix. Off by default: an unlisted customer is held back.
    #[serde(default)]
    pub aux_pattern: Option<String>,
}

impl CustomersSection {
    /// The accounts of customer `id`: listed, or built from `aux_pattern`.
    pub fn account(&self, id: &str) -> Option<std::borrow::Cow<'_, CustomerAccount>> {
        if let Some(c) = self.accounts.get(id) {
            return Some(std::borrow::Cow::Borrowed(c));
        }
        self.aux_pattern.as_ref().map(|p| {
            std::borrow::Cow::Owned(CustomerAccount {
                aux: p.replace("{id}", id),
                label: None,
                collective_account: None,
            })
        })
    }
}

fn default_collective_label() -> String {
    "Clients".to_owned()
}

/// A revenue account.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GlAccount {
    /// Target account number, e.g. `706000`.
    pub account: String,
    /// Its label.
    pub label: String,
    /// Xero account code, when the Xero chart numbers it differently (default: `account`).
    #[serde(default)]
    pub xero_account_code: Option<String>,
}

/// `[gl]`: source GL codes and product codes → revenue accounts.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GlSection {
    /// By the line's `gl_account` (takes precedence).
    #[serde(default)]
    pub accounts: BTreeMap<String, GlAccount>,
    /// By the line's `product_code` (used when the line has no `gl_account`).
    #[serde(default)]
    pub products: BTreeMap<String, GlAccount>,
}

/// EN 16931 VAT category (UNCL 5305).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum VatCategory {
    /// Standard rate.
    S,
    /// Zero rated.
    Z,
    /// Exempt.
    E,
    /// Reverse charge.
    AE,
    /// Intra-community supply.
    K,
    /// Export outside the EU.
    G,
    /// Outside the scope of VAT.
    O,
}

impl VatCategory {
    /// True when the category requires an exemption reason (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10, BR-O-10).
    pub fn needs_exemption_reason(self) -> bool {
        matches!(
            self,
            VatCategory::E | VatCategory::AE | VatCategory::K | VatCategory::G | VatCategory::O
        )
    }
}

/// A tax code.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaxCode {
    /// Rate in percent, as a string (`"5.5"`).
    #[serde(deserialize_with = "toml_decimal")]
    pub rate: Decimal,
    /// EN 16931 VAT category.
    pub category: VatCategory,
    /// Collected-VAT account (`445711`); required when the rate is not zero.
    #[serde(default)]
    pub account: Option<String>,
    /// Label of that account.
    #[serde(default)]
    pub label: Option<String>,
    /// Exemption reason text (required for E, AE, K, G, O).
    #[serde(default)]
    pub exemption_reason: Option<String>,
    /// Exemption reason code (VATEX), optional.
    #[serde(default)]
    pub exemption_code: Option<String>,
    /// Pennylane's `vat_rate` code (`FR_200`, `exempt`, `intracom_21`, ...). Standard French
    /// rates of category S default to theirs (20 % → `FR_200`); other categories need it.
    #[serde(default)]
    pub pennylane_vat_rate: Option<String>,
    /// Xero `TaxType` (`OUTPUT2`, `TAX001`, ... from the organisation's tax rates).
    #[serde(default)]
    pub xero_tax_type: Option<String>,
}

impl TaxCode {
    /// Pennylane's `vat_rate` for this tax code: the one set, or the standard French rate's.
    pub fn pennylane_code(&self) -> Option<String> {
        if let Some(c) = &self.pennylane_vat_rate {
            return Some(c.clone());
        }
        if self.category != VatCategory::S {
            return None;
        }
        let tenths = self.rate.checked_mul(Decimal::TEN)?.normalize();
        match tenths.to_string().as_str() {
            "200" | "100" | "85" | "55" | "21" | "130" | "9" => {
                Some(format!("FR_{:0>2}", tenths.to_string()))
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    journal: JournalSection,
    customers: CustomersSection,
    #[serde(default)]
    gl: GlSection,
    #[serde(default)]
    tax: BTreeMap<String, TaxCode>,
}

/// A loaded, validated mapping file.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// Mapping name (file stem).
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes (recorded with every transfer).
    pub hash: String,
    /// `[journal]`.
    pub journal: JournalSection,
    /// `[customers]`.
    pub customers: CustomersSection,
    /// `[gl]`.
    pub gl: GlSection,
    /// `[tax]`.
    pub tax: BTreeMap<String, TaxCode>,
}

/// True when `account` looks like a French chart account: three digits, then digits or letters.
pub fn account_is_valid(account: &str) -> bool {
    account.len() >= 3
        && account.len() <= 20
        && account.bytes().take(3).all(|b| b.is_ascii_digit())
        && account.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether a journal code is 1-20 letters, digits, `-` or `_` (it names export files too).
pub fn code_is_valid(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 20
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Mapping {
    /// Loads and validates a mapping file.
    ///
    /// # Errors
    ///
    /// Syntax errors, unknown keys, malformed accounts or rates: with file, line and key.
    pub fn load(path: &Path) -> Result<Mapping, ConfigError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ConfigError::new(path, format!("cannot read the file: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| ConfigError::new(path, "the file is not UTF-8"))?;
        Self::from_text(path, &text)
    }

    /// A mapping from the text it would have at `path` (to check an edit before saving it).
    ///
    /// # Errors
    ///
    /// The first problem, with the line.
    pub fn from_text(path: &Path, text: &str) -> Result<Mapping, ConfigError> {
        let bytes = text.as_bytes();
        let text = text.to_owned();
        let raw: RawMapping = parse_toml(path, &text)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let m = Mapping {
            name,
            path: path.to_owned(),
            hash: hex::encode(Sha256::digest(bytes)),
            journal: raw.journal,
            customers: raw.customers,
            gl: raw.gl,
            tax: raw.tax,
        };
        m.validate(&text)?;
        Ok(m)
    }

    fn validate(&self, text: &str) -> Result<(), ConfigError> {
        let err = |needles: &[&str], msg: String| {
            ConfigError::at(&self.path, find_line(text, needles), msg)
        };
        if !code_is_valid(&self.journal.code) {
            return Err(err(
                &["[journal]"],
                format!(
                    "journal code `{}` must be 1-20 letters or digits",
                    self.journal.code
                ),
            ));
        }
        if !account_is_valid(&self.customers.collective_account) {
            return Err(err(
                &["collective_account"],
                format!(
                    "[customers] collective_account `{}` is not an account number (three digits first, e.g. 411000)",
                    self.customers.collective_account
                ),
            ));
        }
        if let Some(p) = &self.customers.aux_pattern {
            if p.matches("{id}").count() != 1 || !code_is_valid(&p.replace("{id}", "X")) {
                return Err(err(
                    &["aux_pattern"],
                    format!("[customers] aux_pattern `{p}` must hold `{{id}}` once, with letters, digits, `-` or `_` around it (e.g. \"C{{id}}\")"),
                ));
            }
        }
        for (id, c) in &self.customers.accounts {
            let header = format!("[customers.accounts.{id}]");
            let quoted = format!("[customers.accounts.\"{id}\"]");
            if !code_is_valid(&c.aux) {
                return Err(err(
                    &[&header, &quoted],
                    format!("[customers.accounts.\"{id}\"] aux `{}` must be 1-20 letters, digits, `-` or `_`", c.aux),
                ));
            }
            if let Some(a) = &c.collective_account {
                if !account_is_valid(a) {
                    return Err(err(
                        &[&header, &quoted],
                        format!("[customers.accounts.\"{id}\"] collective_account `{a}` is not an account number"),
                    ));
                }
            }
        }
        for (table, map) in [
            ("gl.accounts", &self.gl.accounts),
            ("gl.products", &self.gl.products),
        ] {
            for (code, a) in map {
                if !account_is_valid(&a.account) {
                    let header = format!("[{table}.{code}]");
                    let quoted = format!("[{table}.\"{code}\"]");
                    return Err(err(
                        &[&header, &quoted],
                        format!(
                            "[{table}.\"{code}\"] account `{}` is not an account number (three digits first, e.g. 706000)",
                            a.account
                        ),
                    ));
                }
            }
        }
        for (code, t) in &self.tax {
            let header = format!("[tax.{code}]");
            let quoted = format!("[tax.\"{code}\"]");
            let here = [header.as_str(), quoted.as_str()];
            if t.rate < Decimal::ZERO || t.rate > Decimal::from(100) {
                return Err(err(
                    &here,
                    format!("[tax.\"{code}\"] rate {} must be between 0 and 100", t.rate),
                ));
            }
            let zero = t.rate.is_zero();
            if t.category == VatCategory::S && zero {
                return Err(err(&here, format!("[tax.\"{code}\"] category S needs a rate above 0; use Z, E, AE, K, G or O for 0 %")));
            }
            if t.category != VatCategory::S && !zero {
                return Err(err(
                    &here,
                    format!(
                        "[tax.\"{code}\"] category {:?} takes rate \"0\"",
                        t.category
                    ),
                ));
            }
            if !zero {
                match &t.account {
                    Some(a) if account_is_valid(a) => {}
                    Some(a) => {
                        return Err(err(&here, format!("[tax.\"{code}\"] account `{a}` is not an account number (e.g. 445711)")))
                    }
                    None => {
                        return Err(err(&here, format!("[tax.\"{code}\"] a {} % rate needs the collected-VAT `account` (e.g. 445711)", t.rate)))
                    }
                }
            }
            if t.category.needs_exemption_reason()
                && t.exemption_reason
                    .as_deref()
                    .unwrap_or("")
                    .trim()
                    .is_empty()
            {
                return Err(err(
                    &here,
                    format!("[tax.\"{code}\"] category {:?} needs an `exemption_reason` (EN 16931 requires it on the invoice)", t.category),
                ));
            }
            if let Some(c) = &t.pennylane_vat_rate {
                if let Err(e) = crate::target::pennylane::vat::check(c, t.rate) {
                    // The key's own line, in this table.
                    let table = find_line(text, &here);
                    let line = table
                        .and_then(|h| {
                            text.lines()
                                .skip(h)
                                .position(|l| l.trim_start().starts_with("pennylane_vat_rate"))
                                .map(|i| h + i + 1)
                        })
                        .or(table);
                    return Err(ConfigError::at(
                        &self.path,
                        line,
                        format!("[tax.\"{code}\"] {e}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn file_name(&self) -> String {
        self.path.display().to_string()
    }
}

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
    /// Pennylane `vat_rate`, when the mapping gives or implies one.
    #[serde(default)]
    pub pennylane_vat_rate: Option<String>,
    /// Xero account code of the revenue account.
    #[serde(default)]
    pub xero_account_code: String,
    /// Xero tax type, when the mapping gives one.
    #[serde(default)]
    pub xero_tax_type: Option<String>,
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
    /// figures beyond [`crate::checks::MAX_FIGURE`]).
    pub fn checked_sums(&self) -> Option<(Decimal, Decimal)> {
        self.lines
            .iter()
            .try_fold((Decimal::ZERO, Decimal::ZERO), |(d, c), l| {
                Some((d.checked_add(l.debit)?, c.checked_add(l.credit)?))
            })
    }

    /// Sum of debits and sum of credits, saturating: exact for entries that passed
    /// [`crate::checks::prepare`] (their figures are bounded); see [`Self::checked_sums`].
    pub fn sums(&self) -> (Decimal, Decimal) {
        self.lines
            .iter()
            .fold((Decimal::ZERO, Decimal::ZERO), |(d, c), l| {
                (d.saturating_add(l.debit), c.saturating_add(l.credit))
            })
    }
}

/// A document that passed mapping and checks, with its entry.
#[derive(Debug, Clone)]
pub struct MappedDocument {
    /// The source document.
    pub doc: Document,
    /// Its balanced entry.
    pub entry: JournalEntry,
    /// Mapped account and tax per document line, in line order.
    pub lines: Vec<MappedLine>,
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
    let customer = match doc
        .buyer
        .customer_id
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        None => {
            problems.push(Problem::new(
                "missing-customer-id",
                "buyer.customer_id",
                "the buyer has no customer_id, so no auxiliary account can be chosen",
                "set the customer's identifier in the invoicing application",
            ));
            None
        }
        Some(id) => match m.customers.account(id) {
            Some(c) if !code_is_valid(&c.aux) => {
                problems.push(Problem::new(
                    "invalid-customer-account",
                    "buyer.customer_id",
                    format!(
                        "customer id `{id}` ({}) gives auxiliary account `{}` through aux_pattern, which is not 1-20 letters, digits, `-` or `_`",
                        doc.buyer.name, c.aux
                    ),
                    format!("add [customers.accounts.\"{id}\"] with aux = \"...\" to {file}"),
                ));
                None
            }
            Some(c) => Some(c),
            None => {
                problems.push(Problem::new(
                    "unmapped-customer",
                    "buyer.customer_id",
                    format!(
                        "customer id `{id}` ({}) has no auxiliary account in {file}",
                        doc.buyer.name
                    ),
                    format!("add [customers.accounts.\"{id}\"] with aux = \"...\" to {file}"),
                ));
                None
            }
        },
    };
    let mut mapped_lines = Vec::with_capacity(doc.lines.len());
    // (account, rate when grouped by rate) → (label, net), in first-appearance order.
    let by_rate = m.journal.revenue_lines == RevenueLines::PerAccountAndRate;
    let mut revenue: Vec<((String, Option<Decimal>), String, Decimal)> = Vec::new();
    for (i, line) in doc.lines.iter().enumerate() {
        let gl = match (&line.gl_account, &line.product_code) {
            (Some(code), _) => m.gl.accounts.get(code).or_else(|| {
                problems.push(Problem::new(
                    "unmapped-gl-account",
                    format!("lines[{i}].gl_account"),
                    format!("GL code `{code}` has no revenue account in {file}"),
                    format!(
                        "add [gl.accounts.\"{code}\"] with account = \"7...\" and label to {file}"
                    ),
                ));
                None
            }),
            (None, Some(code)) => m.gl.products.get(code).or_else(|| {
                problems.push(Problem::new(
                    "unmapped-product-code",
                    format!("lines[{i}].product_code"),
                    format!("product code `{code}` has no revenue account in {file}"),
                    format!(
                        "add [gl.products.\"{code}\"] with account = \"7...\" and label to {file}"
                    ),
                ));
                None
            }),
            (None, None) => {
                problems.push(Problem::new(
                    "missing-gl-code",
                    format!("lines[{i}].gl_account"),
                    "the line has neither gl_account nor product_code",
                    "set the line's GL account or product in the invoicing application",
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
                pennylane_vat_rate: tax.pennylane_code(),
                xero_account_code: gl
                    .xero_account_code
                    .clone()
                    .unwrap_or_else(|| gl.account.clone()),
                xero_tax_type: tax.xero_tax_type.clone(),
            });
            let key = (gl.account.clone(), by_rate.then_some(tax.rate));
            match revenue.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, _, sum)) => match sum.checked_add(line.net_amount) {
                    Some(v) => *sum = v,
                    None => problems.push(crate::checks::out_of_range(
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
        let label = t
            .label
            .clone()
            .unwrap_or_else(|| format!("TVA collectée {} %", t.rate.normalize()));
        match tax_lines.iter_mut().find(|(a, _, _)| a == account) {
            Some((_, _, sum)) => match sum.checked_add(b.amount) {
                Some(v) => *sum = v,
                None => problems.push(crate::checks::out_of_range(
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
    let invoice = doc.kind == DocKind::Invoice;
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
                .unwrap_or_else(|| doc.buyer.name.clone()),
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
        label: format!("{} {}", doc.number, doc.buyer.name),
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
    if let Some(id) = doc.buyer.customer_id.as_deref() {
        if m.customers.account(id).is_none() {
            out.push(("customers.accounts", id.to_owned()));
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::parse_document;
    use serde_json::json;

    pub(crate) const MAPPING: &str = r#"
[journal]
code = "VE"
label = "Journal des ventes"

[customers]
collective_account = "411000"
collective_label = "Clients"

[customers.accounts.C001]
aux = "CDUPONT"
label = "Dupont SARL"

[gl.accounts.CONSEIL]
account = "706000"
label = "Prestations de services"

[gl.products.LIVRE]
account = "707000"
label = "Ventes de marchandises"

[tax.TVA20]
rate = "20"
category = "S"
account = "445711"
label = "TVA collectée 20%"

[tax.TVA55]
rate = "5.5"
category = "S"
account = "445713"
label = "TVA collectée 5,5%"
"#;

    pub(crate) fn mapping() -> Mapping {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.toml");
        std::fs::write(&p, MAPPING).unwrap();
        Mapping::load(&p).unwrap()
    }

    /// The worked example of the journal-formats note: F2024-0001.
    pub(crate) fn worked_invoice() -> Document {
        parse_document(
            json!({
                "id": "f1", "number": "F2024-0001", "kind": "invoice", "status": "final",
                "issue_date": "2024-03-15", "due_date": "2024-04-14", "currency": "EUR",
                "updated_at": "2024-03-15T10:00:00Z",
                "seller": {"name": "S"}, "buyer": {"name": "Dupont SARL", "customer_id": "C001"},
                "lines": [
                    {"description": "Conseil", "quantity": "1", "unit_price": "1000.00", "net_amount": "1000.00", "gl_account": "CONSEIL", "tax_code": "TVA20"},
                    {"description": "Livres", "quantity": "10", "unit_price": "15.00", "net_amount": "150.00", "product_code": "LIVRE", "tax_code": "TVA55"}
                ],
                "totals": {"net": "1150.00", "tax": "208.25", "gross": "1358.25", "due": "1358.25"},
                "tax_breakdown": [
                    {"tax_code": "TVA20", "rate": "20", "base": "1000.00", "amount": "200.00"},
                    {"tax_code": "TVA55", "rate": "5.5", "base": "150.00", "amount": "8.25"}
                ]
            }),
            "t",
            0,
        )
        .unwrap()
    }

    /// The worked example's credit note A2024-0001.
    pub(crate) fn worked_credit_note() -> Document {
        parse_document(
            json!({
                "id": "a1", "number": "A2024-0001", "kind": "credit_note", "status": "final",
                "issue_date": "2024-03-20", "due_date": "2024-03-20", "currency": "EUR",
                "updated_at": "2024-03-20T10:00:00Z", "preceding_invoice": "F2024-0001",
                "seller": {"name": "S"}, "buyer": {"name": "Dupont SARL", "customer_id": "C001"},
                "lines": [
                    {"description": "Conseil", "quantity": "1", "unit_price": "100.00", "net_amount": "100.00", "gl_account": "CONSEIL", "tax_code": "TVA20"}
                ],
                "totals": {"net": "100.00", "tax": "20.00", "gross": "120.00", "due": "120.00"},
                "tax_breakdown": [{"tax_code": "TVA20", "rate": "20", "base": "100.00", "amount": "20.00"}]
            }),
            "t",
            0,
        )
        .unwrap()
    }

    fn mapping_from(text: &str) -> Result<Mapping, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.toml");
        std::fs::write(&p, text).unwrap();
        Mapping::load(&p)
    }

    #[test]
    fn aux_pattern_builds_the_account_of_unlisted_customers() {
        let m = mapping_from(&MAPPING.replace(
            "collective_label = \"Clients\"",
            "collective_label = \"Clients\"\naux_pattern = \"C{id}\"",
        ))
        .unwrap();
        let mut doc = worked_invoice();
        doc.buyer.customer_id = Some("4711".into());
        let md = map_document(&doc, &m).unwrap();
        assert_eq!(md.entry.lines[0].aux.as_deref(), Some("C4711"));
        assert_eq!(md.entry.lines[0].aux_label.as_deref(), Some("Dupont SARL"));
        // A listed customer keeps its own account; an id that makes no valid code is held.
        let md = map_document(&worked_invoice(), &m).unwrap();
        assert_eq!(md.entry.lines[0].aux.as_deref(), Some("CDUPONT"));
        doc.buyer.customer_id = Some("47 11".into());
        let p = map_document(&doc, &m).unwrap_err();
        assert_eq!(p[0].code, "invalid-customer-account", "{p:?}");
        assert!(unmapped_codes(&doc, &m).is_empty());

        let err = mapping_from(&MAPPING.replace(
            "collective_label = \"Clients\"",
            "collective_label = \"Clients\"\naux_pattern = \"C\"",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("aux_pattern"), "{err}");
        assert_eq!(err.line, Some(9), "{err}");
    }

    #[test]
    fn invoice_maps_to_the_worked_entry() {
        let md = map_document(&worked_invoice(), &mapping()).unwrap();
        let got: Vec<(String, String, String)> = md
            .entry
            .lines
            .iter()
            .map(|l| (l.account.clone(), l.debit.to_string(), l.credit.to_string()))
            .collect();
        let want = [
            ("411000", "1358.25", "0"),
            ("706000", "0", "1000.00"),
            ("707000", "0", "150.00"),
            ("445711", "0", "200.00"),
            ("445713", "0", "8.25"),
        ];
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0);
            assert_eq!(
                g.1.parse::<Decimal>().unwrap(),
                w.1.parse::<Decimal>().unwrap()
            );
            assert_eq!(
                g.2.parse::<Decimal>().unwrap(),
                w.2.parse::<Decimal>().unwrap()
            );
        }
        assert_eq!(md.entry.lines[0].aux.as_deref(), Some("CDUPONT"));
        assert_eq!(md.entry.label, "F2024-0001 Dupont SARL");
    }

    #[test]
    fn credit_note_is_mirrored_with_positive_amounts() {
        let md = map_document(&worked_credit_note(), &mapping()).unwrap();
        let l = &md.entry.lines;
        assert_eq!(
            (l[0].debit, l[0].credit),
            (Decimal::ZERO, Decimal::new(12000, 2))
        );
        assert_eq!(
            (l[1].debit, l[1].credit),
            (Decimal::new(10000, 2), Decimal::ZERO)
        );
        assert_eq!(
            (l[2].debit, l[2].credit),
            (Decimal::new(2000, 2), Decimal::ZERO)
        );
    }

    #[test]
    fn unmapped_tax_code_names_field_file_and_fix() {
        let mut doc = worked_invoice();
        doc.lines[1].tax_code = "TVA85".into();
        let problems = map_document(&doc, &mapping()).unwrap_err();
        let p = problems
            .iter()
            .find(|p| p.code == "unmapped-tax-code")
            .unwrap();
        assert_eq!(p.field, "lines[1].tax_code");
        assert!(
            p.message.contains("TVA85") && p.message.contains("m.toml"),
            "{}",
            p.message
        );
        assert!(p.fix.contains("[tax.\"TVA85\"]"), "{}", p.fix);
    }

    #[test]
    fn one_revenue_line_per_account_unless_the_mapping_asks_per_rate() {
        let mut doc = worked_invoice();
        // The books now on the consulting account too, at 5.5 %.
        doc.lines[1].product_code = None;
        doc.lines[1].gl_account = Some("CONSEIL".into());
        let revenue = |m: &Mapping| -> Vec<(String, Decimal)> {
            map_document(&doc, m)
                .unwrap()
                .entry
                .lines
                .iter()
                .filter(|l| l.role == LineRole::Revenue)
                .map(|l| (l.account.clone(), l.credit))
                .collect()
        };
        assert_eq!(
            revenue(&mapping()),
            [("706000".to_owned(), Decimal::new(115000, 2))]
        );
        let m = mapping_from(&MAPPING.replace(
            "label = \"Journal des ventes\"",
            "label = \"Journal des ventes\"\nrevenue_lines = \"per-account-and-rate\"",
        ))
        .unwrap();
        assert_eq!(
            revenue(&m),
            [
                ("706000".to_owned(), Decimal::new(100000, 2)),
                ("706000".to_owned(), Decimal::new(15000, 2))
            ]
        );
        let err = mapping_from(&MAPPING.replace(
            "label = \"Journal des ventes\"",
            "label = \"Journal des ventes\"\nrevenue_lines = \"per-rate\"",
        ))
        .unwrap_err();
        assert!(err.message.contains("per-account-and-rate"), "{err}");
        assert_eq!(err.line, Some(5), "{err}");
    }

    #[test]
    fn unknown_customer_is_held_not_guessed() {
        let mut doc = worked_invoice();
        doc.buyer.customer_id = Some("C999".into());
        let problems = map_document(&doc, &mapping()).unwrap_err();
        assert_eq!(problems[0].code, "unmapped-customer");
    }

    #[test]
    fn mapping_rejects_unknown_key_with_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.toml");
        std::fs::write(
            &p,
            MAPPING.replace("label = \"Prestations de services\"", "lable = \"x\""),
        )
        .unwrap();
        let err = Mapping::load(&p).unwrap_err();
        assert!(err.message.contains("lable"), "{}", err.message);
        assert_eq!(
            err.line,
            Some(find_line(&std::fs::read_to_string(&p).unwrap(), &["lable"]).unwrap())
        );
    }

    #[test]
    fn mapping_rejects_bad_account_with_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.toml");
        std::fs::write(
            &p,
            MAPPING.replace("account = \"445713\"", "account = \"TVA\""),
        )
        .unwrap();
        let err = Mapping::load(&p).unwrap_err();
        assert!(err.message.contains("TVA55"), "{}", err.message);
        assert!(err.line.is_some());
    }

    #[test]
    fn a_pennylane_code_that_pennylane_lacks_or_that_contradicts_the_rate_is_refused_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.toml");
        let with = |code: &str| {
            MAPPING.replace(
                "account = \"445713\"",
                &format!("account = \"445713\"\npennylane_vat_rate = \"{code}\""),
            )
        };
        std::fs::write(&p, with("FR_55")).unwrap();
        assert!(Mapping::load(&p).is_ok());
        for (code, says) in [("FR_5_5", "write `FR_55`"), ("FR_200", "is 20 % but")] {
            let text = with(code);
            std::fs::write(&p, &text).unwrap();
            let err = Mapping::load(&p).unwrap_err();
            assert!(
                err.message.contains("TVA55") && err.message.contains(says),
                "{}",
                err.message
            );
            let line = text
                .lines()
                .position(|l| l.starts_with("pennylane_vat_rate"))
                .unwrap()
                + 1;
            assert_eq!(err.line, Some(line));
        }
    }

    #[test]
    fn float_rate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.toml");
        std::fs::write(&p, MAPPING.replace("rate = \"5.5\"", "rate = 5.5")).unwrap();
        let err = Mapping::load(&p).unwrap_err();
        assert!(err.message.contains("string"), "{}", err.message);
    }
}
