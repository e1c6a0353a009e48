//! `kind = "push"` connectors: documents the invoicing application POSTs to the daemon's
//! ingestion endpoint (`daemon::ingest`) instead of facto pulling them. They wait in the
//! ledger's inbox (the top-level `inbox` module), which the job's pull reads.

use serde::Deserialize;

use crate::toml_file::{parse_toml, ConfigError};

/// `kind = "push"`: documents pushed to `POST /api/v1/tenants/{tenant}/documents`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// Always `push`.
    pub kind: String,
    /// Documents handed to the pipeline at a time. Default 500.
    #[serde(default = "default_page")]
    pub page_size: usize,
    /// Deliver at once: a push that brought something new starts the jobs reading this source
    /// without waiting for their schedule. Default false (the push is delivered on schedule; a
    /// request may still ask `?deliver=now`).
    #[serde(default)]
    pub deliver_at_once: bool,
}

fn default_page() -> usize {
    500
}

impl PushConfig {
    /// Reads a push connector from the text of its connector file.
    ///
    /// # Errors
    ///
    /// Unknown keys, bad values, with the line.
    pub fn load(path: &std::path::Path, text: &str) -> Result<Self, ConfigError> {
        let c: PushConfig = parse_toml(path, text)?;
        if c.page_size == 0 {
            return Err(ConfigError::at(
                path,
                crate::toml_file::key_line(text, "page_size"),
                "page_size must be at least 1",
            ));
        }
        Ok(c)
    }
}
