//! `kind = "http"` connectors: the endpoint, paging, retries and the attachments folder, with
//! their defaults and validation.

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::toml_file::{key_line, parse_toml, ConfigError};

/// How an HTTP source pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pagination {
    /// Follow a `next` URL found in the body (`next_field`) or the `Link` header.
    NextLink,
    /// Increment a page-number parameter until a page comes back empty or short.
    PageNumber,
}

/// `kind = "http"`: a paged JSON API of the invoicing application.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Always `http`.
    pub kind: String,
    /// Endpoint listing documents.
    pub url: String,
    /// Name of the environment variable holding the bearer token (never the token itself).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Query parameter carrying the cursor. Default `updated_since`.
    #[serde(default = "default_cursor_param")]
    pub cursor_param: String,
    /// Paging style. Default `next-link`.
    #[serde(default = "default_pagination")]
    pub pagination: Pagination,
    /// Page-number parameter. Default `page`.
    #[serde(default = "default_page_param")]
    pub page_param: String,
    /// Page-size parameter. Default `per_page`.
    #[serde(default = "default_per_page_param")]
    pub per_page_param: String,
    /// Page size asked for. Default 100.
    #[serde(default = "default_http_page")]
    pub page_size: usize,
    /// Field of the response object holding the documents (absent: the body is an array).
    #[serde(default)]
    pub items_field: Option<String>,
    /// Field of the response object holding the next page's URL. Default `next`.
    #[serde(default = "default_next_field")]
    pub next_field: String,
    /// Per-request timeout, seconds. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Give up retrying a request after this long, seconds. Default 120.
    #[serde(default = "default_retry_secs")]
    pub max_retry_secs: u64,
    /// First retry delay, milliseconds. Default 500.
    #[serde(default = "default_initial_ms")]
    pub initial_retry_ms: u64,
    /// Folder the documents' attachment paths are relative to (relative to `facto.toml`);
    /// without it, a document's attachment path is never read.
    #[serde(default)]
    pub attachments_dir: Option<PathBuf>,
}

fn default_cursor_param() -> String {
    "updated_since".to_owned()
}
fn default_pagination() -> Pagination {
    Pagination::NextLink
}
fn default_page_param() -> String {
    "page".to_owned()
}
fn default_per_page_param() -> String {
    "per_page".to_owned()
}
fn default_http_page() -> usize {
    100
}
fn default_next_field() -> String {
    "next".to_owned()
}
fn default_timeout() -> u64 {
    30
}
fn default_retry_secs() -> u64 {
    120
}
fn default_initial_ms() -> u64 {
    500
}

impl HttpConfig {
    /// Reads an http connector from the text of its connector file and validates it.
    ///
    /// # Errors
    ///
    /// Unknown keys, an endpoint that is not an absolute URL, with the line.
    pub fn load(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let c: HttpConfig = parse_toml(path, text)?;
        if url::Url::parse(&c.url).is_err() {
            return Err(ConfigError::at(
                path,
                key_line(text, "url"),
                format!("url `{}` is not an absolute URL", c.url),
            ));
        }
        Ok(c)
    }
}
