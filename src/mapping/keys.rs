//! The per-code mapping keys targets declare (`pennylane_vat_rate`, `xero_tax_type`, ...): each
//! target says, in its own `config.rs`, which keys it reads from which mapping table, how a value
//! is checked and what it defaults to. The registry (config) hands the list to the mapping
//! ([`DeclaredKeys`]), which loads, checks and carries them by name only.

use rust_decimal::Decimal;

use super::VatCategory;

/// The mapping table whose entries take a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTable {
    /// `[tax.CODE]` entries.
    Tax,
    /// `[gl.accounts.CODE]` and `[gl.products.CODE]` entries.
    Gl,
}

impl KeyTable {
    /// The editor's names of the tables of this kind.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            KeyTable::Tax => &["tax"],
            KeyTable::Gl => &["gl.accounts", "gl.products"],
        }
    }
}

/// What a key's check and default see of the entry it is set on.
#[derive(Debug, Clone, Copy)]
pub struct EntryFacts<'a> {
    /// The entry's account (revenue or collected-VAT account), when it has one.
    pub account: Option<&'a str>,
    /// The tax code's rate in percent (tax entries).
    pub rate: Option<Decimal>,
    /// The tax code's category (tax entries).
    pub category: Option<VatCategory>,
}

/// Checks a key's value on an entry; the error is the message, without the entry's table name.
pub type KeyCheck = fn(&str, &EntryFacts<'_>) -> Result<(), String>;

/// A mapping key a target needs, as it declares it.
#[derive(Debug, Clone, Copy)]
pub struct MappingKey {
    /// The key, as written in the mapping file.
    pub name: &'static str,
    /// The table whose entries take it.
    pub table: KeyTable,
    /// Checks a value.
    pub check: Option<KeyCheck>,
    /// The value in effect when the entry does not set the key.
    pub default: Option<fn(&EntryFacts<'_>) -> Option<String>>,
    /// What the key is, for the editor.
    pub help: &'static str,
}

impl MappingKey {
    /// The value in effect on an entry: the one set, else the key's default.
    pub fn value(&self, set: Option<&str>, facts: &EntryFacts<'_>) -> Option<String> {
        match set {
            Some(v) => Some(v.to_owned()),
            None => self.default.and_then(|d| d(facts)),
        }
    }
}

/// The keys the targets declare, handed to the mapping by the registry (config): the mapping
/// carries them without knowing the targets.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeclaredKeys(&'static [&'static [MappingKey]]);

impl DeclaredKeys {
    /// The keys of `lists`, in their order (the order of the editor's columns).
    pub const fn new(lists: &'static [&'static [MappingKey]]) -> Self {
        DeclaredKeys(lists)
    }

    /// Every declared key, in a fixed order (the order of the editor's columns).
    pub fn all(self) -> impl Iterator<Item = &'static MappingKey> {
        self.0.iter().copied().flatten()
    }

    /// The declared keys of one table.
    pub fn of_table(self, table: KeyTable) -> impl Iterator<Item = &'static MappingKey> {
        self.all().filter(move |k| k.table == table)
    }

    /// The declared key `name` of `table`.
    pub fn find(self, table: KeyTable, name: &str) -> Option<&'static MappingKey> {
        self.of_table(table).find(|k| k.name == name)
    }
}
