//! The [`Connector`] enum and [`load_connector`], which reads one `connectors/*.toml` file and
//! hands it, by its `kind`, to the config module beside its component (`source/*/config.rs`,
//! `targets/*/config.rs`), which parses and validates it; and the opening of a source from its
//! connector.

use serde::Deserialize;
use std::path::Path;

use crate::source::attachments::AttachmentRoots;
use crate::source::{http, json_dir, Source, SourceError};
use crate::toml_file::key_line;

use super::{
    parse_toml, ChorusConfig, Config, ConfigError, HttpConfig, JournalFileConfig, JsonDirConfig,
    PaConfig, PennylaneConfig, XeroConfig,
};

/// A configured connector instance.
#[derive(Debug, Clone)]
pub enum Connector {
    /// JSON files in a folder.
    JsonDir(JsonDirConfig),
    /// A paged HTTP API.
    Http(HttpConfig),
    /// Documents pushed to the daemon's ingestion endpoint.
    Push(crate::source::push::PushConfig),
    /// Journal import files.
    JournalFile(JournalFileConfig),
    /// The Chorus Pro API (French public buyers).
    ChorusPro(ChorusConfig),
    /// The company's approved platform (PA) through the AFNOR Flow API (French e-invoicing).
    AfnorPa(PaConfig),
    /// Pennylane's Company API v2.
    Pennylane(PennylaneConfig),
    /// Xero's Accounting API.
    Xero(XeroConfig),
}

impl Connector {
    /// True for connectors that can be a job's source (a PA: the supplier invoices it received).
    pub fn is_source(&self) -> bool {
        matches!(
            self,
            Connector::JsonDir(_) | Connector::Http(_) | Connector::Push(_) | Connector::AfnorPa(_)
        )
    }

    /// True for connectors that can be a job's target: all but the folder and HTTP sources
    /// (a PA is both: the target of sales, the source of supplier invoices).
    pub fn is_target(&self) -> bool {
        !matches!(
            self,
            Connector::JsonDir(_) | Connector::Http(_) | Connector::Push(_)
        )
    }

    /// True for targets that book a purchases job's supplier invoices: journal files in an
    /// accounting layout, and Xero (as bills). Chorus Pro, a PA and the Chorus portal files send
    /// the company's own sales invoices; Pennylane imports customer invoices.
    pub fn takes_purchases(&self) -> bool {
        match self {
            Connector::JournalFile(c) => !matches!(
                c.format,
                crate::format::JournalFormat::ChorusUbl | crate::format::JournalFormat::ChorusCii
            ),
            Connector::Xero(_) => true,
            _ => false,
        }
    }

    /// Its kind as reports name it (`journal-file/fec`, `chorus-pro`, `xero`, …).
    pub fn kind(&self) -> String {
        match self {
            Connector::JsonDir(_) => "json-dir".into(),
            Connector::Http(_) => "http".into(),
            Connector::Push(_) => "push".into(),
            Connector::JournalFile(c) => format!("journal-file/{}", c.format.as_str()),
            Connector::ChorusPro(_) => "chorus-pro".into(),
            Connector::AfnorPa(_) => "afnor-pa".into(),
            Connector::Pennylane(_) => "pennylane".into(),
            Connector::Xero(_) => "xero".into(),
        }
    }
}

// The source connectors, opened from their settings and the configuration's folder: the sources
// do not know the configuration.
impl Config {
    /// Opens the job's source, connector `name`. `cursor` is where the last complete pull
    /// ended; `None` reads everything. A push source reads the inbox of `inbox`'s job in its ledger
    /// (nothing without).
    ///
    /// # Errors
    ///
    /// A folder that cannot be listed, a missing token variable, a connector that is not a
    /// source.
    pub fn open_source(
        &self,
        name: &str,
        cursor: Option<&serde_json::Value>,
        inbox: Option<(&dyn crate::ledger::Ledger, &str)>,
    ) -> Result<Source, SourceError> {
        match self.connectors.get(name) {
            Some(Connector::JsonDir(c)) => Ok(Source::JsonDir(json_dir::JsonDirSource::open(
                &self.resolve(&c.path),
                c.page_size,
                cursor,
                c.einvoices,
            )?)),
            Some(Connector::Http(c)) => {
                Ok(Source::Http(Box::new(http::HttpSource::open(c, cursor)?)))
            }
            Some(Connector::Push(c)) => Ok(Source::Paged(Box::new(match inbox {
                Some((l, job)) => {
                    crate::inbox::PushSource::open(l.shared(), job, c.page_size, cursor)?
                }
                // Without the ledger (`mappings check`), nothing is waiting.
                None => crate::inbox::PushSource::empty(),
            }))),
            Some(Connector::AfnorPa(c)) => Ok(Source::Paged(Box::new(
                crate::targets::pa::inbox::PaInbox::open(name, c, cursor, 100)?,
            ))),
            _ => Err(SourceError::Config(format!(
                "connector `{name}` is not a source"
            ))),
        }
    }

    /// The folders the documents of source connector `source` may name files in (none for an
    /// unknown one: nothing is read).
    pub fn attachment_roots(&self, source: &str) -> AttachmentRoots {
        match self.connectors.get(source) {
            Some(Connector::JsonDir(c)) => AttachmentRoots::new(
                Some(self.resolve(&c.path)),
                c.attachments_dir.as_deref().map(|d| self.resolve(d)),
            ),
            Some(Connector::Http(c)) => {
                AttachmentRoots::new(None, c.attachments_dir.as_deref().map(|d| self.resolve(d)))
            }
            _ => AttachmentRoots::default(),
        }
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
        Some("push") => crate::source::push::PushConfig::load(path, &text).map(Connector::Push),
        Some("journal-file") => JournalFileConfig::load(path, &text).map(Connector::JournalFile),
        Some("chorus-pro") => ChorusConfig::load(path, &text).map(Connector::ChorusPro),
        Some("afnor-pa") => PaConfig::load(path, &text).map(Connector::AfnorPa),
        Some("pennylane") => PennylaneConfig::load(path, &text).map(Connector::Pennylane),
        Some("xero") => XeroConfig::load(path, &text).map(Connector::Xero),
        Some(other) => Err(ConfigError::at(
            path,
            key_line(&text, "kind"),
            format!("unknown connector kind `{other}`; expected json-dir, http, push, journal-file, chorus-pro, afnor-pa, pennylane or xero"),
        )),
        None => Err(ConfigError::new(
            path,
            "missing `kind`; add kind = \"json-dir\", \"http\" or \"journal-file\"",
        )),
    }
}
