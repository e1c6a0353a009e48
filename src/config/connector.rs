//! The [`Connector`] enum, the API targets' settings (Chorus Pro, Pennylane, Xero) and
//! [`load_connector`], which reads one `connectors/*.toml` file by its `kind` and validates it.

use serde::Deserialize;
use std::path::{Path, PathBuf};

use super::{
    find_line, parse_toml, ConfigError, Encoding, HttpConfig, JournalFileConfig, JournalFormat,
    JsonDirConfig,
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
    #[serde(default = "thirty")]
    pub timeout_secs: u64,
    /// Longest time spent retrying one call, seconds. Default 120.
    #[serde(default = "one_twenty")]
    pub max_retry_secs: u64,
    /// A batch whose answer was lost stays claimed, looked up at every run, for this long
    /// before it is sent again (a late answer may still land). Minutes, default 60.
    #[serde(default = "sixty")]
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
    #[serde(default = "thirty")]
    pub timeout_secs: u64,
    /// Longest time spent retrying one call, seconds. Default 120.
    #[serde(default = "one_twenty")]
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
    #[serde(default = "sixty")]
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

/// Chorus Pro environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChorusEnv {
    /// The qualification platform (PISTE sandbox).
    #[default]
    Sandbox,
    /// Production.
    Production,
}

/// Syntax of the documents deposited on Chorus Pro.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EinvoiceSyntax {
    /// UN/CEFACT CII D16B (`IN_DP_E1_CII_16B`): one root for invoices and credit notes.
    #[default]
    Cii,
    /// UBL 2.1 (`IN_DP_E1_UBL_INVOICE`).
    Ubl,
}

/// `kind = "chorus-pro"`: deposits on Chorus Pro through the PISTE API, and follows statuses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChorusConfig {
    /// Always `chorus-pro`.
    pub kind: String,
    /// `sandbox` (default) or `production`: picks the PISTE URLs.
    #[serde(default)]
    pub environment: ChorusEnv,
    /// API base URL, replacing the environment's (a proxy, or a local simulator).
    #[serde(default)]
    pub api_url: Option<String>,
    /// OAuth2 token URL, replacing the environment's.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Environment variable holding the PISTE client id.
    pub client_id_env: String,
    /// Environment variable holding the PISTE client secret.
    pub client_secret_env: String,
    /// Environment variable holding the Chorus Pro technical account, `login:password`.
    pub cpro_account_env: String,
    /// `cii` (default) or `ubl`.
    #[serde(default)]
    pub syntax: EinvoiceSyntax,
    /// Documents per flow: 1 (default) deposits each alone; up to 500 makes zip lots.
    #[serde(default = "one")]
    pub lot_size: usize,
    /// Timeout of one API call, seconds. Default 30.
    #[serde(default = "thirty")]
    pub timeout_secs: u64,
    /// Longest time spent retrying one call (429, 5xx, no answer), seconds. Default 120.
    #[serde(default = "one_twenty")]
    pub max_retry_secs: u64,
    /// How long a buyer's structure settings are trusted before being read again. Default 24.
    #[serde(default = "twenty_four")]
    pub structure_cache_hours: u64,
    /// A deposit whose answer was lost is looked up at every run; when Chorus Pro still does
    /// not know the invoice this long after, it is deposited again. Minutes, default 60.
    #[serde(default = "sixty")]
    pub lookup_grace_minutes: u64,
}

fn one() -> usize {
    1
}
pub(super) fn thirty() -> u64 {
    30
}
fn one_twenty() -> u64 {
    120
}
fn twenty_four() -> u64 {
    24
}
fn sixty() -> u64 {
    60
}

impl ChorusConfig {
    /// The API base URL in effect.
    pub fn api_url(&self) -> String {
        self.api_url.clone().unwrap_or_else(|| {
            match self.environment {
                ChorusEnv::Sandbox => "https://sandbox-api.piste.gouv.fr",
                ChorusEnv::Production => "https://api.piste.gouv.fr",
            }
            .to_owned()
        })
    }

    /// The OAuth2 token URL in effect.
    pub fn token_url(&self) -> String {
        self.token_url.clone().unwrap_or_else(|| {
            match self.environment {
                ChorusEnv::Sandbox => "https://sandbox-oauth.piste.gouv.fr/api/oauth/token",
                ChorusEnv::Production => "https://oauth.piste.gouv.fr/api/oauth/token",
            }
            .to_owned()
        })
    }
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
    let kind_line = find_line(&text, &["kind"]);
    match kind.kind.as_deref() {
        Some("json-dir") => Ok(Connector::JsonDir(parse_toml(path, &text)?)),
        Some("http") => {
            let c: HttpConfig = parse_toml(path, &text)?;
            if url::Url::parse(&c.url).is_err() {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &["url"]),
                    format!("url `{}` is not an absolute URL", c.url),
                ));
            }
            Ok(Connector::Http(c))
        }
        Some("chorus-pro") => {
            let c: ChorusConfig = parse_toml(path, &text)?;
            for (key, url) in [("api_url", &c.api_url), ("token_url", &c.token_url)] {
                if let Some(u) = url {
                    if url::Url::parse(u).is_err() {
                        return Err(ConfigError::at(
                            path,
                            find_line(&text, &[key]),
                            format!("{key} `{u}` is not an absolute URL"),
                        ));
                    }
                }
            }
            if !(1..=500).contains(&c.lot_size) {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &["lot_size"]),
                    "lot_size must be between 1 and 500 (Chorus Pro takes at most 500 documents per flow)",
                ));
            }
            Ok(Connector::ChorusPro(c))
        }
        Some("pennylane") => {
            let c: PennylaneConfig = parse_toml(path, &text)?;
            if url::Url::parse(&c.api_url).is_err() {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &["api_url"]),
                    format!("api_url `{}` is not an absolute URL", c.api_url),
                ));
            }
            if c.token_env.is_some() == c.client_id_env.is_some() {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &["token_env", "client_id_env", "kind"]),
                    "set either token_env (a company API token) or client_id_env (OAuth2 with `facto connect`)",
                ));
            }
            if !(1..=1000).contains(&c.requests_per_5s) {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &["requests_per_5s"]),
                    "requests_per_5s must be between 1 and 1000 (Pennylane itself allows 25 per token)",
                ));
            }
            Ok(Connector::Pennylane(c))
        }
        Some("xero") => {
            let c: XeroConfig = parse_toml(path, &text)?;
            for (key, u) in [
                ("api_url", &c.api_url),
                ("token_url", &c.token_url),
                ("authorize_url", &c.authorize_url),
                ("connections_url", &c.connections_url),
            ] {
                if url::Url::parse(u).is_err() {
                    return Err(ConfigError::at(
                        path,
                        find_line(&text, &[key]),
                        format!("{key} `{u}` is not an absolute URL"),
                    ));
                }
            }
            if !(1..=50).contains(&c.batch_size) {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &["batch_size"]),
                    "batch_size must be between 1 and 50 (Xero's advice per request)",
                ));
            }
            Ok(Connector::Xero(c))
        }
        Some("journal-file") => {
            let c: JournalFileConfig = parse_toml(path, &text)?;
            if !c.format.is_csv() && c.csv_separator.is_some() {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &["csv_separator"]),
                    format!("csv_separator applies to the csv-documents and csv-lines formats; the {} layout has its own separator", c.format.as_str()),
                ));
            }
            if c.format != JournalFormat::Fec && c.separator.is_some() {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &["separator"]),
                    "separator (tab or pipe) applies to the FEC layout only; remove it",
                ));
            }
            if c.format.fixed_width() && matches!(c.encoding(), Encoding::Utf8 | Encoding::Utf8Bom)
            {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &["encoding"]),
                    format!("the {} layout is fixed width: positions are bytes, so UTF-8 would shift them; use \"ascii\" or \"windows-1252\"", c.format.as_str()),
                ));
            }
            if c.lot_size.is_some() && !c.format.is_einvoice() {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &["lot_size"]),
                    "lot_size applies to the chorus-ubl and chorus-cii formats only",
                ));
            }
            if c.lot_size.is_some_and(|n| !(1..=500).contains(&n)) {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &["lot_size"]),
                    "lot_size must be between 1 and 500 (Chorus Pro takes at most 500 documents per lot)",
                ));
            }
            if c.format.is_einvoice() && c.encoding.is_some_and(|e| e != Encoding::Utf8) {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &["encoding"]),
                    "Chorus Pro documents are UTF-8 XML; remove `encoding`",
                ));
            }
            if c.account_length.is_some_and(|n| !(3..=20).contains(&n)) {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &["account_length"]),
                    "account_length must be between 3 and 20",
                ));
            }
            Ok(Connector::JournalFile(c))
        }
        Some(other) => Err(ConfigError::at(
            path,
            kind_line,
            format!("unknown connector kind `{other}`; expected json-dir, http, journal-file, chorus-pro, pennylane or xero"),
        )),
        None => Err(ConfigError::new(
            path,
            "missing `kind`; add kind = \"json-dir\", \"http\" or \"journal-file\"",
        )),
    }
}
