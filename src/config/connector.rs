//! The [`Connector`] enum and [`load_connector`], which reads one `connectors/*.toml` file and
//! hands it, by its `kind`, to the config module beside its component (`source/*/config.rs`,
//! `targets/*/config.rs`), which parses and validates it.

use serde::Deserialize;
use std::path::Path;

use crate::toml_file::key_line;

use super::{
    parse_toml, ChorusConfig, ConfigError, HttpConfig, JournalFileConfig, JsonDirConfig,
    PennylaneConfig, XeroConfig,
};

/// A configured connector instance.
#[derive(Debug, Clone)]
pub enum Connector {
    /// JSON files in a folder.
    JsonDir(JsonDirConfig),
    /// A paged HTTP API.
    Http(HttpConfig),
    /// Journal import files.
    JournalFile(JournalFileConfig),
    /// The Chorus Pro API (French public buyers).
    ChorusPro(ChorusConfig),
    /// Pennylane's Company API v2.
    Pennylane(PennylaneConfig),
    /// Xero's Accounting API.
    Xero(XeroConfig),
}

impl Connector {
    /// True for connectors that can be a job's source.
    pub fn is_source(&self) -> bool {
        matches!(self, Connector::JsonDir(_) | Connector::Http(_))
    }
}

#[derive(Deserialize)]
struct KindOnly {
    kind: Option<String>,
}

/// Loads one connector file.
///
/// # Errors
///
/// Unreadable file, unknown `kind`, unknown keys, bad values.
pub fn load_connector(path: &Path) -> Result<Connector, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, format!("cannot read the file: {e}")))?;
    let kind: KindOnly = parse_toml(path, &text)?;
    // The one place a `kind` names its component.
    match kind.kind.as_deref() {
        Some("json-dir") => JsonDirConfig::load(path, &text).map(Connector::JsonDir),
        Some("http") => HttpConfig::load(path, &text).map(Connector::Http),
        Some("journal-file") => JournalFileConfig::load(path, &text).map(Connector::JournalFile),
        Some("chorus-pro") => ChorusConfig::load(path, &text).map(Connector::ChorusPro),
        Some("pennylane") => PennylaneConfig::load(path, &text).map(Connector::Pennylane),
        Some("xero") => XeroConfig::load(path, &text).map(Connector::Xero),
        Some(other) => Err(ConfigError::at(
            path,
            key_line(&text, "kind"),
            format!("unknown connector kind `{other}`; expected json-dir, http, journal-file, chorus-pro, pennylane or xero"),
        )),
        None => Err(ConfigError::new(
            path,
            "missing `kind`; add kind = \"json-dir\", \"http\" or \"journal-file\"",
        )),
    }
}
