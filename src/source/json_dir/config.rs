//! `kind = "json-dir"` connectors: the folder, the page size and the attachments folder.

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::toml_file::{parse_toml, ConfigError};

/// `kind = "json-dir"`: documents as JSON files in a folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonDirConfig {
    /// Always `json-dir`.
    pub kind: String,
    /// Folder to read (relative to `facto.toml`).
    pub path: PathBuf,
    /// Documents handed to the pipeline at a time (memory bound). Default 500.
    #[serde(default = "default_page")]
    pub page_size: usize,
    /// A second folder the documents' attachments may live in (relative to `facto.toml`);
    /// an attachment path never leaves `path` or this folder.
    #[serde(default)]
    pub attachments_dir: Option<PathBuf>,
    /// Also read e-invoices: `.xml` (CII or UBL) and `.pdf` (Factur-X) files, as supplier
    /// invoices arrive from a PA's portal or by mail. Default false.
    #[serde(default)]
    pub einvoices: bool,
}

fn default_page() -> usize {
    500
}

impl JsonDirConfig {
    /// Reads a json-dir connector from the text of its connector file.
    ///
    /// # Errors
    ///
    /// Unknown keys, bad values, with the line.
    pub fn load(path: &Path, text: &str) -> Result<Self, ConfigError> {
        parse_toml(path, text)
    }
}
