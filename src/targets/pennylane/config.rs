//! `kind = "pennylane"` connectors: the API token or OAuth2 app, the request budget, the
//! reference prefix, and their validation; and the mapping key Pennylane reads
//! (`pennylane_vat_rate`).

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::mapping::keys::{EntryFacts, KeyTable, MappingKey};
use crate::mapping::VatCategory;
use crate::toml_file::{key_line, parse_toml, ConfigError};
use rust_decimal::Decimal;

/// `kind = "pennylane"`: imports issued invoices and credit notes into Pennylane (API v2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PennylaneConfig {
    /// Always `pennylane`.
    pub kind: String,
    /// API base URL. Default `https://app.pennylane.com/api/external/v2`.
    #[serde(default = "pennylane_url")]
    pub api_url: String,
    /// Environment variable holding the company API token (Settings › Connectivity › Developers).
    /// Either this, or `client_id_env` for the OAuth2 flow (`facto connect`).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Environment variable holding the OAuth2 client id (partner apps): tokens then come from
    /// `facto connect` and are refreshed, the rotated pair saved before use.
    #[serde(default)]
    pub client_id_env: Option<String>,
    /// Environment variable holding the OAuth2 client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// OAuth2 consent URL. Default `https://app.pennylane.com/oauth/authorize`.
    #[serde(default = "pennylane_authorize")]
    pub authorize_url: String,
    /// OAuth2 token URL. Default `https://app.pennylane.com/oauth/token`.
    #[serde(default = "pennylane_token")]
    pub token_url: String,
    /// Scopes asked at `facto connect`.
    #[serde(default = "pennylane_scopes")]
    pub scopes: String,
    /// Port of the redirect `facto connect` listens on (127.0.0.1). Default 5089.
    #[serde(default = "pennylane_port")]
    pub redirect_port: u16,
    /// Where OAuth2 tokens are kept (0600). Default `<data_dir>/pennylane-<name>.json`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Timeout of one call, seconds. Default 30.
    #[serde(default = "crate::targets::http::default_timeout_secs")]
    pub timeout_secs: u64,
    /// Longest time spent retrying one call, seconds. Default 120.
    #[serde(default = "crate::targets::http::default_max_retry_secs")]
    pub max_retry_secs: u64,
    /// Requests per 5 seconds. Default 25, Pennylane's limit per token; a higher value only
    /// makes sense for a proxy or a test server.
    #[serde(default = "twenty_five")]
    pub requests_per_5s: u32,
    /// Prefix of the external reference that identifies facto's invoices (`facto:` by default):
    /// `<prefix><job>:<document id>`.
    #[serde(default = "facto_prefix")]
    pub reference_prefix: String,
    /// An import whose answer was lost stays claimed, looked up at every run, for this long
    /// before it is sent again (a late answer may still land). Minutes, default 60.
    #[serde(default = "crate::targets::http::default_lookup_grace_minutes")]
    pub lookup_grace_minutes: u64,
}

fn pennylane_authorize() -> String {
    "https://app.pennylane.com/oauth/authorize".to_owned()
}
fn pennylane_token() -> String {
    "https://app.pennylane.com/oauth/token".to_owned()
}
fn pennylane_scopes() -> String {
    "customer_invoices:all file_attachments:all ledger_accounts:readonly customers:all".to_owned()
}
fn pennylane_port() -> u16 {
    5089
}
fn pennylane_url() -> String {
    "https://app.pennylane.com/api/external/v2".to_owned()
}
fn twenty_five() -> u32 {
    25
}
fn facto_prefix() -> String {
    "facto:".to_owned()
}

impl PennylaneConfig {
    /// Reads a Pennylane connector from the text of its connector file and validates it.
    ///
    /// # Errors
    ///
    /// Unknown keys, bad values, with the line.
    pub fn load(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let c: PennylaneConfig = parse_toml(path, text)?;
        if url::Url::parse(&c.api_url).is_err() {
            return Err(ConfigError::at(
                path,
                key_line(text, "api_url"),
                format!("api_url `{}` is not an absolute URL", c.api_url),
            ));
        }
        if c.token_env.is_some() == c.client_id_env.is_some() {
            return Err(ConfigError::at(
                path,
                ["token_env", "client_id_env", "kind"]
                    .into_iter()
                    .filter_map(|k| key_line(text, k))
                    .min(),
                "set either token_env (a company API token) or client_id_env (OAuth2 with `facto connect`)",
            ));
        }
        if !(1..=1000).contains(&c.requests_per_5s) {
            return Err(ConfigError::at(
                path,
                key_line(text, "requests_per_5s"),
                "requests_per_5s must be between 1 and 1000 (Pennylane itself allows 25 per token)",
            ));
        }
        Ok(c)
    }
}

/// The mapping key of Pennylane's `vat_rate` code, on tax entries.
pub const VAT_RATE: &str = "pennylane_vat_rate";

/// The mapping keys Pennylane reads.
pub const MAPPING_KEYS: &[MappingKey] = &[MappingKey {
    name: VAT_RATE,
    table: KeyTable::Tax,
    check: Some(check_vat_rate),
    default: Some(standard_vat_rate),
    help: "Pennylane's vat_rate code (FR_200, exempt, intracom_21, ...); standard French rates of category S default to theirs",
}];

fn check_vat_rate(code: &str, facts: &EntryFacts<'_>) -> Result<(), String> {
    super::vat::check(code, facts.rate.unwrap_or_default())
}

/// Standard French rates of category S default to their code (20 % → `FR_200`); other
/// categories need it set.
fn standard_vat_rate(facts: &EntryFacts<'_>) -> Option<String> {
    if facts.category != Some(VatCategory::S) {
        return None;
    }
    let tenths = facts.rate?.checked_mul(Decimal::TEN)?.normalize();
    match tenths.to_string().as_str() {
        "200" | "100" | "85" | "55" | "21" | "130" | "9" => {
            Some(format!("FR_{:0>2}", tenths.to_string()))
        }
        _ => None,
    }
}
