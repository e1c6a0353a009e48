//! Mapping files (`mappings/NAME.toml`, edited by admins): their types, loading and validation.
//! The pure function that turns a document into one balanced journal entry through them,
//! [`map_document`], lives in `mapping/entry.rs`. Strict: a code with no mapping is never guessed;
//! it becomes a [`crate::problem::Problem`] naming the code, the file and the table to add.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::toml_file::{find_line, parse_toml, ConfigError};

mod entry;

pub use entry::{
    map_document, unmapped_codes, EntryLine, JournalEntry, LineRole, MappedDocument, MappedLine,
};

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
                if let Err(e) = crate::targets::pennylane::vat::check(c, t.rate) {
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

#[cfg(test)]
pub(crate) mod tests;
