//! `kind = "journal-file"` connectors: which layout, encoding and separators the import files
//! written for accounting software take (the vocabulary is the writers', in `format`), and the
//! validated file permissions.

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::format::{csv::CsvStyle, Encoding, FecSeparator, JournalFormat, Layout};
use crate::toml_file::{key_line, parse_toml, ConfigError};

/// `kind = "journal-file"`: a target writing import files for accounting software.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalFileConfig {
    /// Always `journal-file`.
    pub kind: String,
    /// File layout.
    pub format: JournalFormat,
    /// Folder the files are written to (relative to `facto.toml`). Default `out`.
    #[serde(default = "default_out")]
    pub out_dir: PathBuf,
    /// FEC separator (`tab` or `pipe`). Default `tab`.
    #[serde(default)]
    pub separator: Option<FecSeparator>,
    /// CSV field separator, one character. Default `;`.
    #[serde(default)]
    pub csv_separator: Option<char>,
    /// Encoding. Default: `iso-8859-15` for FEC, `utf-8` for CSV, `ascii` for Quadratus,
    /// `windows-1252` for the other accounting packages.
    #[serde(default)]
    pub encoding: Option<Encoding>,
    /// Pads general account numbers with trailing zeros to this length (`411` → `41100000` for
    /// 8). Auxiliary accounts are written as mapped. Off by default.
    #[serde(default)]
    pub account_length: Option<usize>,
    /// Chorus Pro files: documents per zip lot (the portal takes at most 500). Default 500.
    #[serde(default)]
    pub lot_size: Option<usize>,
    /// Permissions of the files written, in octal as a string (`"0640"`). Default `"0640"`:
    /// the owner writes, the group (the accountants' share) reads, others nothing.
    #[serde(
        default = "default_file_mode",
        deserialize_with = "deserialize_file_mode"
    )]
    pub file_mode: u32,
}

/// Permissions of output files unless a connector says otherwise.
pub const DEFAULT_FILE_MODE: u32 = 0o640;

fn default_file_mode() -> u32 {
    DEFAULT_FILE_MODE
}

fn deserialize_file_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let s = String::deserialize(d)?;
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777 && m & 0o600 == 0o600)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "file_mode `{s}` is not a file mode: write it in octal as a string, at most \"0777\" and at least owner read and write (for example \"0640\")"
            ))
        })
}

impl JournalFileConfig {
    /// The encoding in effect.
    pub fn encoding(&self) -> Encoding {
        self.encoding
            .unwrap_or_else(|| self.format.default_encoding())
    }

    /// The layout this connector asks for: its format's, with the settings it gives.
    pub fn layout(&self) -> Layout {
        Layout {
            fec_sep: self.separator.unwrap_or(FecSeparator::Tab),
            csv: CsvStyle::new(self.csv_separator.unwrap_or(';')),
            encoding: self.encoding(),
            account_length: self.account_length,
            ..Layout::default_for(self.format)
        }
    }
}

fn default_out() -> PathBuf {
    PathBuf::from("out")
}

impl JournalFileConfig {
    /// Reads a journal-file connector from the text of its connector file and validates it.
    ///
    /// # Errors
    ///
    /// Unknown keys, bad values, with the line.
    pub fn load(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let c: JournalFileConfig = parse_toml(path, text)?;
        if !c.format.is_csv() && c.csv_separator.is_some() {
            return Err(ConfigError::at(
                path,
                key_line(text, "csv_separator"),
                format!("csv_separator applies to the csv-documents and csv-lines formats; the {} layout has its own separator", c.format.as_str()),
            ));
        }
        if c.format != JournalFormat::Fec && c.separator.is_some() {
            return Err(ConfigError::at(
                path,
                key_line(text, "separator"),
                "separator (tab or pipe) applies to the FEC layout only; remove it",
            ));
        }
        if c.format.fixed_width() && matches!(c.encoding(), Encoding::Utf8 | Encoding::Utf8Bom) {
            return Err(ConfigError::at(
                path,
                key_line(text, "encoding"),
                format!("the {} layout is fixed width: positions are bytes, so UTF-8 would shift them; use \"ascii\" or \"windows-1252\"", c.format.as_str()),
            ));
        }
        if c.lot_size.is_some() && !c.format.is_einvoice() {
            return Err(ConfigError::at(
                path,
                key_line(text, "lot_size"),
                "lot_size applies to the chorus-ubl and chorus-cii formats only",
            ));
        }
        if c.lot_size.is_some_and(|n| !(1..=500).contains(&n)) {
            return Err(ConfigError::at(
                path,
                key_line(text, "lot_size"),
                "lot_size must be between 1 and 500 (Chorus Pro takes at most 500 documents per lot)",
            ));
        }
        if c.format.is_einvoice() && c.encoding.is_some_and(|e| e != Encoding::Utf8) {
            return Err(ConfigError::at(
                path,
                key_line(text, "encoding"),
                "Chorus Pro documents are UTF-8 XML; remove `encoding`",
            ));
        }
        if c.account_length.is_some_and(|n| !(3..=20).contains(&n)) {
            return Err(ConfigError::at(
                path,
                key_line(text, "account_length"),
                "account_length must be between 3 and 20",
            ));
        }
        Ok(c)
    }
}
