//! Mapping files (`mappings/NAME.toml`, edited by admins): their types, loading and validation.
//! The pure function that turns a document into one balanced journal entry through them,
//! [`map_document`], lives in `mapping/entry.rs`. Strict: a code with no mapping is never guessed;
//! it becomes a [`crate::problem::Problem`] naming the code, the file and the table to add.
//! The per-code keys targets need (`pennylane_vat_rate`, `xero_tax_type`, ...) are declared by the
//! targets and carried by name ([`keys`]).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::toml_file::{line_of, parse_toml, ConfigError, Spans, Step};

mod entry;
pub mod keys;

use keys::{DeclaredKeys, KeyTable};

pub use entry::{
    counterparty, map_document, unmapped_codes, EntryLine, JournalEntry, LineRole, MappedDocument,
    MappedLine,
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
    /// `sales` (the default: customers in `[customers]`, revenue credited) or `purchases`
    /// (supplier invoices: suppliers in `[suppliers]`, by SIREN, expenses and deductible VAT
    /// debited).
    #[serde(default)]
    pub side: Side,
}

/// Which book a mapping's entries go to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// Sales: the buyer is the counterparty (411), revenue (7xx) and collected VAT credited.
    #[default]
    Sales,
    /// Purchases: the seller is the counterparty (401), expenses (6xx) and deductible VAT
    /// (4456x) debited.
    Purchases,
}

impl Side {
    /// The table that lists the counterparties' accounts.
    pub fn parties(self) -> &'static str {
        match self {
            Side::Sales => "customers",
            Side::Purchases => "suppliers",
        }
    }

    /// The usual collective account of the counterparties, as the messages suggest it.
    fn collective_example(self) -> &'static str {
        match self {
            Side::Sales => "411000",
            Side::Purchases => "401000",
        }
    }
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
    /// The `[gl.accounts]` code of this party's lines that carry neither a GL code nor a mapped
    /// product (a supplier's usual expense account, for received invoices).
    #[serde(default)]
    pub gl: Option<String>,
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
                gl: None,
            })
        })
    }
}

fn default_collective_label() -> String {
    "Clients".to_owned()
}

/// A revenue account.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GlAccount {
    /// Target account number, e.g. `706000`.
    pub account: String,
    /// Its label.
    pub label: String,
    /// The keys targets declare for GL entries (`xero_account_code`, ...; see [`keys`]).
    /// Unknown keys are refused at loading, as serde's `deny_unknown_fields` would.
    #[serde(flatten)]
    pub keys: BTreeMap<String, toml::Value>,
    /// The keys the targets declare, set when the mapping is loaded: [`Self::key`] needs only
    /// the entry.
    #[serde(skip)]
    declared: DeclaredKeys,
}

impl GlAccount {
    fn facts(&self) -> keys::EntryFacts<'_> {
        keys::EntryFacts {
            account: Some(&self.account),
            rate: None,
            category: None,
        }
    }

    /// The value in effect of the declared key `name`: the one set, else the key's default.
    pub fn key(&self, name: &str) -> Option<String> {
        self.declared.find(KeyTable::Gl, name)?.value(
            self.keys.get(name).and_then(toml::Value::as_str),
            &self.facts(),
        )
    }
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

/// The keys of a tax entry before the ones targets declare (serde's order, for its messages).
pub const TAX_FIELDS: [&str; 6] = [
    "rate",
    "category",
    "account",
    "label",
    "exemption_reason",
    "exemption_code",
];

/// The keys of a GL entry before the ones targets declare.
pub const GL_FIELDS: [&str; 2] = ["account", "label"];

/// A tax code.
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// The keys targets declare for tax entries (`pennylane_vat_rate`, `xero_tax_type`, ...;
    /// see [`keys`]). Unknown keys are refused at loading, as serde's `deny_unknown_fields` would.
    #[serde(flatten)]
    pub keys: BTreeMap<String, toml::Value>,
    /// The keys the targets declare, set when the mapping is loaded: [`Self::key`] needs only
    /// the entry.
    #[serde(skip)]
    declared: DeclaredKeys,
}

impl TaxCode {
    fn facts(&self) -> keys::EntryFacts<'_> {
        keys::EntryFacts {
            account: self.account.as_deref(),
            rate: Some(self.rate),
            category: Some(self.category),
        }
    }

    /// The value in effect of the declared key `name`: the one set, else the key's default
    /// (Pennylane's code of a standard French rate, for example).
    pub fn key(&self, name: &str) -> Option<String> {
        self.declared.find(KeyTable::Tax, name)?.value(
            self.keys.get(name).and_then(toml::Value::as_str),
            &self.facts(),
        )
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    journal: JournalSection,
    #[serde(default)]
    customers: Option<CustomersSection>,
    #[serde(default)]
    suppliers: Option<CustomersSection>,
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
    /// The counterparties' accounts: `[customers]` in a sales mapping, `[suppliers]` (by
    /// SIREN) in a purchases one.
    pub customers: CustomersSection,
    /// `[gl]`.
    pub gl: GlSection,
    /// `[tax]`.
    pub tax: BTreeMap<String, TaxCode>,
    /// The keys the targets declare, as the registry handed them.
    pub declared: DeclaredKeys,
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
    /// Loads and validates a mapping file, with the keys the targets declare (`declared`, from
    /// the registry).
    ///
    /// # Errors
    ///
    /// Syntax errors, unknown keys, malformed accounts or rates: with file, line and key.
    pub fn load(path: &Path, declared: DeclaredKeys) -> Result<Mapping, ConfigError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ConfigError::new(path, format!("cannot read the file: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| ConfigError::new(path, "the file is not UTF-8"))?;
        Self::from_text(path, &text, declared)
    }

    /// A mapping from the text it would have at `path` (to check an edit before saving it), with
    /// the keys the targets declare.
    ///
    /// # Errors
    ///
    /// The first problem, with the line.
    pub fn from_text(
        path: &Path,
        text: &str,
        declared: DeclaredKeys,
    ) -> Result<Mapping, ConfigError> {
        let bytes = text.as_bytes();
        let text = text.to_owned();
        check_keys(path, &text, declared)?;
        let mut raw: RawMapping = parse_toml(path, &text)?;
        for a in raw
            .gl
            .accounts
            .values_mut()
            .chain(raw.gl.products.values_mut())
        {
            a.declared = declared;
        }
        for t in raw.tax.values_mut() {
            t.declared = declared;
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let side = raw.journal.side;
        let (parties, other) = match side {
            Side::Sales => (
                raw.customers,
                raw.suppliers.is_some().then_some("suppliers"),
            ),
            Side::Purchases => (
                raw.suppliers,
                raw.customers.is_some().then_some("customers"),
            ),
        };
        let spans = Spans::new(&text);
        if let Some(other) = other {
            return Err(ConfigError::at(
                path,
                spans.line(&[other.into()]),
                format!(
                    "[{other}] does not belong in a {} mapping: its counterparties are in [{}]",
                    match side {
                        Side::Sales => "sales",
                        Side::Purchases => "purchases (side = \"purchases\")",
                    },
                    side.parties()
                ),
            ));
        }
        let Some(parties) = parties else {
            return Err(ConfigError::new(
                path,
                format!(
                    "missing table [{}] (with collective_account = \"{}\")",
                    side.parties(),
                    side.collective_example()
                ),
            ));
        };
        let m = Mapping {
            name,
            path: path.to_owned(),
            hash: hex::encode(Sha256::digest(bytes)),
            journal: raw.journal,
            customers: parties,
            gl: raw.gl,
            tax: raw.tax,
            declared,
        };
        m.validate(&text)?;
        Ok(m)
    }

    fn validate(&self, text: &str) -> Result<(), ConfigError> {
        let spans = Spans::new(text);
        // The line of the key or table at `path`, from its span.
        let err =
            |path: &[Step<'_>], msg: String| ConfigError::at(&self.path, spans.line(path), msg);
        if !code_is_valid(&self.journal.code) {
            return Err(err(
                &["journal".into()],
                format!(
                    "journal code `{}` must be 1-20 letters or digits",
                    self.journal.code
                ),
            ));
        }
        let t = self.journal.side.parties();
        if !account_is_valid(&self.customers.collective_account) {
            return Err(err(
                &[t.into(), "collective_account".into()],
                format!(
                    "[{t}] collective_account `{}` is not an account number (three digits first, e.g. {})",
                    self.customers.collective_account,
                    self.journal.side.collective_example()
                ),
            ));
        }
        if let Some(p) = &self.customers.aux_pattern {
            if p.matches("{id}").count() != 1 || !code_is_valid(&p.replace("{id}", "X")) {
                return Err(err(
                    &[t.into(), "aux_pattern".into()],
                    format!("[{t}] aux_pattern `{p}` must hold `{{id}}` once, with letters, digits, `-` or `_` around it (e.g. \"C{{id}}\")"),
                ));
            }
        }
        for (id, c) in &self.customers.accounts {
            let here = [t.into(), "accounts".into(), id.as_str().into()];
            if !code_is_valid(&c.aux) {
                return Err(err(
                    &here,
                    format!(
                        "[{t}.accounts.\"{id}\"] aux `{}` must be 1-20 letters, digits, `-` or `_`",
                        c.aux
                    ),
                ));
            }
            if let Some(a) = &c.collective_account {
                if !account_is_valid(a) {
                    return Err(err(
                        &here,
                        format!("[{t}.accounts.\"{id}\"] collective_account `{a}` is not an account number"),
                    ));
                }
            }
            if let Some(g) = c.gl.as_ref().filter(|g| !self.gl.accounts.contains_key(*g)) {
                return Err(err(
                    &here,
                    format!("[{t}.accounts.\"{id}\"] gl `{g}` is not a code of [gl.accounts]: add [gl.accounts.\"{g}\"] with its account"),
                ));
            }
        }
        for (table, map) in [
            ("gl.accounts", &self.gl.accounts),
            ("gl.products", &self.gl.products),
        ] {
            for (code, a) in map {
                let mut here: Vec<Step<'_>> = table.split('.').map(Step::Key).collect();
                here.push(Step::Key(code));
                if !account_is_valid(&a.account) {
                    return Err(err(
                        &here,
                        format!(
                            "[{table}.\"{code}\"] account `{}` is not an account number (three digits first, e.g. 706000)",
                            a.account
                        ),
                    ));
                }
                let facts = a.facts();
                for k in self.declared.of_table(KeyTable::Gl) {
                    let (Some(check), Some(v)) =
                        (k.check, a.keys.get(k.name).and_then(|v| v.as_str()))
                    else {
                        continue;
                    };
                    if let Err(e) = check(v, &facts) {
                        here.push(Step::Key(k.name));
                        return Err(err(&here, format!("[{table}.\"{code}\"] {e}")));
                    }
                }
            }
        }
        for (code, t) in &self.tax {
            let here = ["tax".into(), code.as_str().into()];
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
                        return Err(err(
                            &here,
                            format!(
                            "[tax.\"{code}\"] account `{a}` is not an account number (e.g. 445711)"
                        ),
                        ))
                    }
                    None => {
                        return Err(err(
                            &here,
                            format!(
                                "[tax.\"{code}\"] a {} % rate needs the VAT `account` (e.g. {})",
                                t.rate,
                                match self.journal.side {
                                    Side::Sales => "445711",
                                    Side::Purchases => "445660",
                                }
                            ),
                        ))
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
            for k in self.declared.of_table(KeyTable::Tax) {
                let (Some(check), Some(v)) = (k.check, t.keys.get(k.name).and_then(|v| v.as_str()))
                else {
                    continue;
                };
                if let Err(e) = check(v, &t.facts()) {
                    // The key's own line, in this table.
                    let key = ["tax".into(), code.as_str().into(), k.name.into()];
                    return Err(err(&key, format!("[tax.\"{code}\"] {e}")));
                }
            }
        }
        Ok(())
    }

    fn file_name(&self) -> String {
        self.path.display().to_string()
    }
}

/// Refuses, before the typed parse (as serde's `deny_unknown_fields` did), the keys of tax and
/// GL entries that neither the entry nor any target declares, and declared keys that are not
/// strings: the first in the file, at its line, in serde's words.
fn check_keys(path: &Path, text: &str, declared: DeclaredKeys) -> Result<(), ConfigError> {
    // A text that does not parse is left to the typed parse, which says why.
    let Ok(doc) = toml_edit::ImDocument::parse(text) else {
        return Ok(());
    };
    let root = doc.as_table();
    let gl = root.get("gl").and_then(toml_edit::Item::as_table_like);
    let tables = [
        (KeyTable::Gl, gl.and_then(|g| g.get("accounts"))),
        (KeyTable::Gl, gl.and_then(|g| g.get("products"))),
        (KeyTable::Tax, root.get("tax")),
    ];
    let mut first: Option<(usize, String)> = None;
    for (kind, table) in tables {
        let Some(table) = table.and_then(toml_edit::Item::as_table_like) else {
            continue;
        };
        let own: &[&str] = match kind {
            KeyTable::Tax => &TAX_FIELDS,
            KeyTable::Gl => &GL_FIELDS,
        };
        for (_, entry) in table.iter() {
            let Some(entry) = entry.as_table_like() else {
                continue;
            };
            for (name, value) in entry.iter() {
                if own.contains(&name) {
                    continue;
                }
                let message = if declared.find(kind, name).is_none() {
                    let expected: Vec<String> = own
                        .iter()
                        .copied()
                        .chain(declared.of_table(kind).map(|k| k.name))
                        .map(|k| format!("`{k}`"))
                        .collect();
                    format!(
                        "unknown field `{name}`, expected one of {}",
                        expected.join(", ")
                    )
                } else if value.as_str().is_none() {
                    let found = match value.as_value() {
                        Some(toml_edit::Value::Integer(i)) => format!("integer `{}`", i.value()),
                        Some(toml_edit::Value::Float(f)) => {
                            format!("floating point `{}`", f.value())
                        }
                        Some(toml_edit::Value::Boolean(b)) => format!("boolean `{}`", b.value()),
                        Some(toml_edit::Value::Array(_)) => "sequence".to_owned(),
                        _ => "map".to_owned(),
                    };
                    format!("invalid type: {found}, expected a string")
                } else {
                    continue;
                };
                let line = entry
                    .key(name)
                    .and_then(toml_edit::Key::span)
                    .or_else(|| value.span())
                    .map_or(usize::MAX, |s| line_of(text, s.start));
                if first.as_ref().is_none_or(|(l, _)| line < *l) {
                    first = Some((line, message));
                }
            }
        }
    }
    match first {
        Some((line, message)) => Err(ConfigError::at(
            path,
            (line != usize::MAX).then_some(line),
            message,
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests;
