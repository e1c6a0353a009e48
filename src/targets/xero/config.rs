//! `kind = "xero"` connectors: OAuth2 URLs, batches and call budget, and their validation; and the
//! mapping keys Xero reads (`xero_tax_type`, `xero_account_code`).

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::mapping::keys::{EntryFacts, KeyTable, MappingKey};
use crate::toml_file::{key_line, parse_toml, ConfigError};

/// `kind = "xero"`: sends sales invoices and credit notes to a Xero organisation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XeroConfig {
    /// Always `xero`.
    pub kind: String,
    /// Environment variable holding the OAuth2 client id of the Xero app.
    pub client_id_env: String,
    /// Environment variable holding its client secret (none for a PKCE-only app).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Accounting API base URL. Default `https://api.xero.com/api.xro/2.0`.
    #[serde(default = "xero_api")]
    pub api_url: String,
    /// OAuth2 token URL. Default `https://identity.xero.com/connect/token`.
    #[serde(default = "xero_token")]
    pub token_url: String,
    /// OAuth2 consent URL. Default `https://login.xero.com/identity/connect/authorize`.
    #[serde(default = "xero_authorize")]
    pub authorize_url: String,
    /// Organisations the tokens reach. Default `https://api.xero.com/connections`.
    #[serde(default = "xero_connections")]
    pub connections_url: String,
    /// Scopes asked at `facto connect`.
    #[serde(default = "xero_scopes")]
    pub scopes: String,
    /// Port of the redirect `facto connect` listens on (127.0.0.1). Default 5088; the Xero
    /// app's redirect URI must be `http://127.0.0.1:<port>/callback`.
    #[serde(default = "xero_port")]
    pub redirect_port: u16,
    /// Where the tokens are kept (0600, written atomically). Default `<data_dir>/xero-<name>.json`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Documents per request (Xero advises at most 50). Default 50.
    #[serde(default = "fifty")]
    pub batch_size: usize,
    /// Calls per minute (Xero allows 60 per organisation). Default 60.
    #[serde(default = "sixty_calls")]
    pub calls_per_minute: u32,
    /// Timeout of one call, seconds. Default 30.
    #[serde(default = "crate::targets::http::default_timeout_secs")]
    pub timeout_secs: u64,
    /// Longest time spent retrying one call, seconds. Default 120.
    #[serde(default = "crate::targets::http::default_max_retry_secs")]
    pub max_retry_secs: u64,
    /// A batch whose answer was lost stays claimed, looked up at every run, for this long
    /// before it is sent again (a late answer may still land). Minutes, default 60.
    #[serde(default = "crate::targets::http::default_lookup_grace_minutes")]
    pub lookup_grace_minutes: u64,
}

fn xero_api() -> String {
    "https://api.xero.com/api.xro/2.0".to_owned()
}
fn xero_token() -> String {
    "https://identity.xero.com/connect/token".to_owned()
}
fn xero_authorize() -> String {
    "https://login.xero.com/identity/connect/authorize".to_owned()
}
fn xero_connections() -> String {
    "https://api.xero.com/connections".to_owned()
}
fn xero_scopes() -> String {
    "offline_access accounting.transactions accounting.contacts accounting.settings.read".to_owned()
}
fn xero_port() -> u16 {
    5088
}
fn fifty() -> usize {
    50
}
fn sixty_calls() -> u32 {
    60
}

impl XeroConfig {
    /// Reads a Xero connector from the text of its connector file and validates it.
    ///
    /// # Errors
    ///
    /// Unknown keys, bad values, with the line.
    pub fn load(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let c: XeroConfig = parse_toml(path, text)?;
        for (key, u) in [
            ("api_url", &c.api_url),
            ("token_url", &c.token_url),
            ("authorize_url", &c.authorize_url),
            ("connections_url", &c.connections_url),
        ] {
            if url::Url::parse(u).is_err() {
                return Err(ConfigError::at(
                    path,
                    key_line(text, key),
                    format!("{key} `{u}` is not an absolute URL"),
                ));
            }
        }
        if !(1..=50).contains(&c.batch_size) {
            return Err(ConfigError::at(
                path,
                key_line(text, "batch_size"),
                "batch_size must be between 1 and 50 (Xero's advice per request)",
            ));
        }
        Ok(c)
    }
}

/// The mapping key of Xero's `TaxType`, on tax entries.
pub const TAX_TYPE: &str = "xero_tax_type";
/// The mapping key of Xero's account code, on GL entries.
pub const ACCOUNT_CODE: &str = "xero_account_code";

/// The mapping keys Xero reads.
pub const MAPPING_KEYS: &[MappingKey] = &[
    MappingKey {
        name: TAX_TYPE,
        table: KeyTable::Tax,
        check: None,
        default: None,
        help: "Xero TaxType (OUTPUT2, TAX001, ... from the organisation's tax rates)",
    },
    MappingKey {
        name: ACCOUNT_CODE,
        table: KeyTable::Gl,
        check: None,
        default: Some(same_account),
        help: "Xero account code, when the Xero chart numbers it differently (default: account)",
    },
];

fn same_account(facts: &EntryFacts<'_>) -> Option<String> {
    facts.account.map(str::to_owned)
}
