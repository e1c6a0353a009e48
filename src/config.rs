//! Configuration: `facto.toml`, `connectors/*.toml` and the loading of `mappings/*.toml`, turned from
//! raw serde types into validated types. Every error names the file and, where it can, the line.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::mapping::Mapping;

mod overlap;

/// A configuration problem, located in its file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// The file at fault.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl ConfigError {
    /// An error about a whole file.
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            line: None,
            message: message.into(),
        }
    }

    /// An error at a line of the file.
    pub fn at(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }
}

/// 1-based line number of a byte offset in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Line of the first line of `text` that, trimmed, starts with one of `needles` (a table header
/// or a key), for errors found after parsing.
pub fn find_line(text: &str, needles: &[&str]) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            needles.iter().any(|n| t.starts_with(n))
        })
        .map(|i| i + 1)
}

/// Reads and parses a TOML file into `T`; syntax errors and unknown keys come back with the line.
///
/// # Errors
///
/// The file cannot be read, or its content does not fit `T`.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<(T, String), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, format!("cannot read the file: {e}")))?;
    let value = parse_toml(path, &text)?;
    Ok((value, text))
}

/// Parses TOML text (see [`load_toml`]).
///
/// # Errors
///
/// The content does not fit `T`; the error carries the line of the offending key.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str::<T>(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        ConfigError::at(path, line, e.message().trim().to_owned())
    })
}

/// The company whose sales are booked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Company {
    /// Company name.
    pub name: String,
    /// SIREN (9 digits, Luhn key checked): names the FEC files.
    pub siren: String,
    /// Closing day of the fiscal year, `MM-DD` (default `12-31`).
    #[serde(default = "default_fy_end")]
    pub fiscal_year_end: String,
}

fn default_fy_end() -> String {
    "12-31".to_owned()
}

impl Company {
    /// Closing date of the fiscal year that contains `date`.
    pub fn fiscal_year_closing(&self, date: chrono::NaiveDate) -> chrono::NaiveDate {
        use chrono::Datelike;
        let (m, d) = parse_month_day(&self.fiscal_year_end).unwrap_or((12, 31));
        let this_year = chrono::NaiveDate::from_ymd_opt(date.year(), m, d)
            .unwrap_or_else(|| last_day_of_month(date.year(), m));
        if date <= this_year {
            this_year
        } else {
            chrono::NaiveDate::from_ymd_opt(date.year() + 1, m, d)
                .unwrap_or_else(|| last_day_of_month(date.year() + 1, m))
        }
    }
}

fn last_day_of_month(year: i32, month: u32) -> chrono::NaiveDate {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    chrono::NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .unwrap_or(chrono::NaiveDate::MIN)
}

fn parse_month_day(s: &str) -> Option<(u32, u32)> {
    let (m, d) = s.split_once('-')?;
    let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((m, d))
}

/// True when `siren` is 9 digits with a valid Luhn key.
pub fn siren_is_valid(siren: &str) -> bool {
    siren.len() == 9 && siren.bytes().all(|b| b.is_ascii_digit()) && luhn(siren)
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// `facto.toml` as written by the admin.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// Where the ledger lives (relative to this file). Default `data`.
    #[serde(default)]
    data_dir: Option<PathBuf>,
    /// Folder of connector files. Default `connectors`.
    #[serde(default)]
    connectors_dir: Option<PathBuf>,
    /// Folder of mapping files. Default `mappings`.
    #[serde(default)]
    mappings_dir: Option<PathBuf>,
    /// The company.
    company: Company,
    /// Jobs, `[[job]]` tables.
    #[serde(default)]
    job: Vec<RawJob>,
    /// The daemon (`facto run`).
    #[serde(default)]
    daemon: DaemonSection,
}

/// `[daemon]`: how `facto run` listens and polls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSection {
    /// Address of the admin API. Default `127.0.0.1:8720`. Any other than a loopback address
    /// needs `allow_remote = true` (requests always need the admin token).
    #[serde(default = "daemon_listen")]
    pub listen: String,
    /// Allows a non-loopback `listen`.
    #[serde(default)]
    pub allow_remote: bool,
    /// Schedule of the status polling of API targets. Default `every 1h`.
    #[serde(default = "daemon_status")]
    pub status_every: String,
    /// Schedule of jobs that set none. Default `every 15m`.
    #[serde(default = "daemon_default")]
    pub default_schedule: String,
    /// How long in-flight passes may finish after SIGTERM, seconds. Default 30.
    #[serde(default = "thirty")]
    pub shutdown_grace_secs: u64,
    /// Most connections the admin API keeps open; when all are taken, the oldest one still
    /// waiting for its request is closed. Default 64.
    #[serde(default = "daemon_max_connections")]
    pub max_connections: usize,
    /// A client that sends nothing for this long is disconnected, seconds. Default 10.
    #[serde(default = "daemon_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// The whole request must arrive within this, and the answer be taken within it, seconds.
    /// Default 30.
    #[serde(default = "thirty")]
    pub request_timeout_secs: u64,
}

impl Default for DaemonSection {
    fn default() -> Self {
        DaemonSection {
            listen: daemon_listen(),
            allow_remote: false,
            status_every: daemon_status(),
            default_schedule: daemon_default(),
            shutdown_grace_secs: 30,
            max_connections: daemon_max_connections(),
            idle_timeout_secs: daemon_idle_timeout(),
            request_timeout_secs: 30,
        }
    }
}

fn daemon_max_connections() -> usize {
    64
}
fn daemon_idle_timeout() -> u64 {
    10
}

fn daemon_listen() -> String {
    "127.0.0.1:8720".to_owned()
}
fn daemon_status() -> String {
    "every 1h".to_owned()
}
fn daemon_default() -> String {
    "every 15m".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: String,
    source: String,
    mapping: String,
    targets: Vec<String>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    journal: Option<String>,
    #[serde(default)]
    journal_label: Option<String>,
    #[serde(default)]
    fail_on: crate::fail_on::FailOn,
    validation_date: Option<chrono::NaiveDate>,
}

/// A job: one source, one mapping, one or more targets.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job name (ledger key part).
    pub name: String,
    /// Source connector name.
    pub source: String,
    /// Mapping name.
    pub mapping: String,
    /// Target connector names.
    pub targets: Vec<String>,
    /// Schedule for the daemon (`every 15m` or a cron expression); unused by `sync`.
    pub schedule: Option<String>,
    /// Journal code of this job's entries, replacing the mapping's `[journal] code` (two jobs
    /// sharing one chart can post to two journals).
    pub journal: Option<String>,
    /// Journal label that goes with it.
    pub journal_label: Option<String>,
    /// Which document problems make `sync` exit with code 1 (`any`, `new`, `never`).
    pub fail_on: crate::fail_on::FailOn,
    /// Validation date written in journal files (FEC `ValidDate`), to reproduce a file as it
    /// was validated; default: the day of the run.
    pub validation_date: Option<chrono::NaiveDate>,
}

/// Separator of a FEC file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FecSeparator {
    /// Tabulation (default).
    Tab,
    /// `|`.
    Pipe,
}

/// Text encoding of a journal file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Encoding {
    /// ISO-8859-15 (Latin-9), characters outside it transliterated.
    #[serde(rename = "iso-8859-15")]
    Iso885915,
    /// Windows-1252 (what Windows accounting software reads), characters outside it transliterated.
    #[serde(rename = "windows-1252")]
    Windows1252,
    /// Plain ASCII: accents and symbols transliterated (fixed-width formats count bytes).
    #[serde(rename = "ascii")]
    Ascii,
    /// UTF-8 without BOM.
    #[serde(rename = "utf-8")]
    Utf8,
    /// UTF-8 with a BOM (what spreadsheet software expects of a CSV).
    #[serde(rename = "utf-8-bom")]
    Utf8Bom,
}

/// Layout of a journal file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JournalFormat {
    /// FEC layout (18 columns), the import format most French accounting software takes.
    Fec,
    /// CSV, one row per document with the payer's totals.
    CsvDocuments,
    /// CSV, one row per invoice line.
    CsvLines,
    /// QuadraCOMPTA ASCII import, fixed-width `M` records.
    Quadratus,
    /// EBP Compta ASCII import (comma separated).
    Ebp,
    /// ACD iSuite Expert import (semicolon separated).
    Acd,
    /// Agiris Isacompta import (semicolon separated).
    Agiris,
    /// Sage Coala import (semicolon separated).
    Coala,
    /// Sage 50 / Ciel Compta `XIMPORT.TXT` (fixed width).
    #[serde(alias = "sage50")]
    Ciel,
    /// Cegid import (semicolon separated).
    Cegid,
    /// Chorus Pro files for the portal: EN 16931 UBL 2.1 documents, in a zip lot.
    ChorusUbl,
    /// Chorus Pro files for the portal: EN 16931 CII D16B documents, in a zip lot.
    ChorusCii,
}

impl JournalFormat {
    /// Short name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalFormat::Fec => "fec",
            JournalFormat::CsvDocuments => "csv-documents",
            JournalFormat::CsvLines => "csv-lines",
            JournalFormat::Quadratus => "quadratus",
            JournalFormat::Ebp => "ebp",
            JournalFormat::Acd => "acd",
            JournalFormat::Agiris => "agiris",
            JournalFormat::Coala => "coala",
            JournalFormat::Ciel => "ciel",
            JournalFormat::Cegid => "cegid",
            JournalFormat::ChorusUbl => "chorus-ubl",
            JournalFormat::ChorusCii => "chorus-cii",
        }
    }

    /// Whether the target writes EN 16931 e-invoices (Chorus Pro files) rather than entries.
    pub fn is_einvoice(self) -> bool {
        matches!(self, JournalFormat::ChorusUbl | JournalFormat::ChorusCii)
    }

    /// Whether the layout is fixed width (field positions are byte positions).
    pub fn fixed_width(self) -> bool {
        matches!(self, JournalFormat::Quadratus | JournalFormat::Ciel)
    }

    /// Whether the layout is one of the two generic CSV shapes.
    pub fn is_csv(self) -> bool {
        matches!(self, JournalFormat::CsvDocuments | JournalFormat::CsvLines)
    }

    /// The encoding each accounting package reads (journal-formats note §2.8).
    pub fn default_encoding(self) -> Encoding {
        match self {
            JournalFormat::Fec => Encoding::Iso885915,
            JournalFormat::CsvDocuments | JournalFormat::CsvLines => Encoding::Utf8,
            JournalFormat::ChorusUbl | JournalFormat::ChorusCii => Encoding::Utf8,
            JournalFormat::Quadratus => Encoding::Ascii,
            _ => Encoding::Windows1252,
        }
    }
}

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
}

fn default_out() -> PathBuf {
    PathBuf::from("out")
}

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
}

fn default_page() -> usize {
    500
}

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
fn thirty() -> u64 {
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

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `facto.toml` file.
    pub path: PathBuf,
    /// Folder relative paths are resolved against.
    pub base_dir: PathBuf,
    /// Ledger folder.
    pub data_dir: PathBuf,
    /// The company.
    pub company: Company,
    /// Jobs in file order.
    pub jobs: Vec<Job>,
    /// Connectors by name.
    pub connectors: BTreeMap<String, Connector>,
    /// Mappings by name.
    pub mappings: BTreeMap<String, Mapping>,
    /// Folder of mapping files.
    pub mappings_dir: PathBuf,
    /// Folder of connector files.
    pub connectors_dir: PathBuf,
    /// The daemon's settings.
    pub daemon: DaemonSection,
}

impl Config {
    /// Loads `facto.toml` and every connector and mapping its jobs name.
    ///
    /// # Errors
    ///
    /// The first problem found, with file and line.
    pub fn load(path: &Path, data_dir_override: Option<&Path>) -> Result<Config, ConfigError> {
        let (raw, text): (RawConfig, String) = load_toml(path)?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        if !siren_is_valid(&raw.company.siren) {
            return Err(ConfigError::at(
                path,
                find_line(&text, &["siren"]),
                format!(
                    "company siren `{}` is not a valid SIREN (9 digits with a correct Luhn key)",
                    raw.company.siren
                ),
            ));
        }
        if parse_month_day(&raw.company.fiscal_year_end).is_none() {
            return Err(ConfigError::at(
                path,
                find_line(&text, &["fiscal_year_end"]),
                format!(
                    "fiscal_year_end `{}` is not MM-DD (for example \"12-31\")",
                    raw.company.fiscal_year_end
                ),
            ));
        }
        let data_dir = match data_dir_override {
            Some(d) => d.to_owned(),
            None => base_dir.join(raw.data_dir.unwrap_or_else(|| PathBuf::from("data"))),
        };
        let connectors_dir = base_dir.join(
            raw.connectors_dir
                .unwrap_or_else(|| PathBuf::from("connectors")),
        );
        let mappings_dir = base_dir.join(
            raw.mappings_dir
                .unwrap_or_else(|| PathBuf::from("mappings")),
        );
        let mut connectors = BTreeMap::new();
        let mut mappings = BTreeMap::new();
        let mut jobs = Vec::new();
        for rj in raw.job {
            let job_line = find_line(&text, &[&format!("name = \"{}\"", rj.name)]);
            if jobs.iter().any(|j: &Job| j.name == rj.name) {
                return Err(ConfigError::at(
                    path,
                    job_line,
                    format!("job `{}` is declared twice", rj.name),
                ));
            }
            if rj.name.is_empty() || rj.name.contains(['\0', '/']) {
                return Err(ConfigError::at(
                    path,
                    job_line,
                    "a job name must be non-empty, without `/`",
                ));
            }
            if rj.targets.is_empty() {
                return Err(ConfigError::at(
                    path,
                    job_line,
                    format!(
                        "job `{}` has no targets; list at least one connector in `targets`",
                        rj.name
                    ),
                ));
            }
            for name in std::iter::once(&rj.source).chain(rj.targets.iter()) {
                if !connectors.contains_key(name) {
                    let file = connectors_dir.join(format!("{name}.toml"));
                    if !file.exists() {
                        return Err(ConfigError::at(
                            path,
                            job_line,
                            format!(
                                "job `{}` names connector `{name}` but {} does not exist",
                                rj.name,
                                file.display()
                            ),
                        ));
                    }
                    connectors.insert(name.clone(), load_connector(&file)?);
                }
            }
            if !connectors[&rj.source].is_source() {
                return Err(ConfigError::at(
                    path,
                    job_line,
                    format!(
                        "job `{}`: connector `{}` is not a source (json-dir or http)",
                        rj.name, rj.source
                    ),
                ));
            }
            for t in &rj.targets {
                if connectors[t].is_source() {
                    return Err(ConfigError::at(
                        path,
                        job_line,
                        format!(
                            "job `{}`: connector `{t}` is a source, not a target",
                            rj.name
                        ),
                    ));
                }
            }
            overlap::check_targets(
                path,
                overlap::targets_line(&text, job_line),
                &rj.name,
                &rj.targets,
                &connectors,
                &base_dir,
                &data_dir,
            )?;
            if let Some(code) = &rj.journal {
                if code.is_empty()
                    || code.len() > 10
                    || !code.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(ConfigError::at(
                        path,
                        find_line(&text, &["journal"]),
                        format!(
                            "job `{}`: journal `{code}` must be 1 to 10 letters or digits",
                            rj.name
                        ),
                    ));
                }
            }
            if !mappings.contains_key(&rj.mapping) {
                let file = mappings_dir.join(format!("{}.toml", rj.mapping));
                if !file.exists() {
                    return Err(ConfigError::at(
                        path,
                        job_line,
                        format!(
                            "job `{}` names mapping `{}` but {} does not exist",
                            rj.name,
                            rj.mapping,
                            file.display()
                        ),
                    ));
                }
                mappings.insert(rj.mapping.clone(), Mapping::load(&file)?);
            }
            if let Some(sch) = &rj.schedule {
                if let Err(e) = crate::daemon::schedule::parse(sch) {
                    return Err(ConfigError::at(
                        path,
                        find_line(&text, &["schedule"]),
                        format!("job `{}`: schedule {e}", rj.name),
                    ));
                }
            }
            jobs.push(Job {
                name: rj.name,
                source: rj.source,
                mapping: rj.mapping,
                targets: rj.targets,
                schedule: rj.schedule,
                journal: rj.journal,
                journal_label: rj.journal_label,
                fail_on: rj.fail_on,
                validation_date: rj.validation_date,
            });
        }
        overlap::check_jobs(path, &text, &jobs, &connectors, &base_dir, &data_dir)?;
        for (key, value) in [
            ("status_every", &raw.daemon.status_every),
            ("default_schedule", &raw.daemon.default_schedule),
        ] {
            if let Err(e) = crate::daemon::schedule::parse(value) {
                return Err(ConfigError::at(
                    path,
                    find_line(&text, &[key]),
                    format!("[daemon] {key} {e}"),
                ));
            }
        }
        Ok(Config {
            daemon: raw.daemon,
            path: path.to_owned(),
            base_dir,
            data_dir,
            company: raw.company,
            jobs,
            connectors,
            mappings,
            mappings_dir,
            connectors_dir,
        })
    }

    /// The job's mapping, with the job's journal in place of the mapping's when it sets one.
    /// `None` when the mapping is not loaded (a configuration built by hand).
    pub fn mapping_for(&self, job: &Job) -> Option<std::borrow::Cow<'_, Mapping>> {
        let m = self.mappings.get(&job.mapping)?;
        if job.journal.is_none() && job.journal_label.is_none() {
            return Some(std::borrow::Cow::Borrowed(m));
        }
        let mut m = m.clone();
        if let Some(code) = &job.journal {
            m.journal.code.clone_from(code);
        }
        if let Some(label) = &job.journal_label {
            m.journal.label.clone_from(label);
        }
        // The journal is part of what was delivered: a record states which mapping produced it.
        m.hash = format!("{}+{}/{}", m.hash, m.journal.code, m.journal.label);
        Some(std::borrow::Cow::Owned(m))
    }

    /// Makes `name` usable as the `--target` of `export` and `preview` for `job`: one of the
    /// job's targets, or any journal-file connector of the connectors folder (the accountant
    /// picks the format of their software at export time).
    ///
    /// # Errors
    ///
    /// No such connector, or one that is not a journal-file target and not in the job.
    pub fn add_export_target(&mut self, job: &str, name: &str) -> Result<(), ConfigError> {
        let job = self.job(job)?.clone();
        if job.targets.iter().any(|t| t == name) {
            return Ok(());
        }
        let refuse = |why: String| {
            ConfigError::new(
                &self.path,
                format!(
                    "{why}; job `{}` delivers to {}, and any journal-file connector of {} can be named",
                    job.name,
                    job.targets.join(", "),
                    self.connectors_dir.display()
                ),
            )
        };
        let file = self.connectors_dir.join(format!("{name}.toml"));
        let connector = match self.connectors.get(name) {
            Some(c) => c.clone(),
            None if !name.contains(['/', '\\']) && file.exists() => load_connector(&file)?,
            None => {
                return Err(refuse(format!(
                    "no connector `{name}` ({} does not exist)",
                    file.display()
                )))
            }
        };
        if !matches!(connector, Connector::JournalFile(_)) {
            return Err(refuse(format!(
                "connector `{name}` is not a journal-file target"
            )));
        }
        self.connectors.insert(name.to_owned(), connector);
        Ok(())
    }

    /// The job named `name`.
    ///
    /// # Errors
    ///
    /// No such job; the message lists the jobs there are.
    pub fn job(&self, name: &str) -> Result<&Job, ConfigError> {
        self.jobs.iter().find(|j| j.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.jobs.iter().map(|j| j.name.as_str()).collect();
            ConfigError::new(
                &self.path,
                format!("no job named `{name}`; jobs: {}", names.join(", ")),
            )
        })
    }

    /// Resolves a path of the configuration against its folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base_dir.join(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siren_luhn() {
        assert!(siren_is_valid("123456782"));
        assert!(!siren_is_valid("123456789"));
        assert!(!siren_is_valid("12345678"));
    }

    #[test]
    fn fiscal_year_closing_handles_offset_years() {
        let c = Company {
            name: "x".into(),
            siren: "123456782".into(),
            fiscal_year_end: "06-30".into(),
        };
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(c.fiscal_year_closing(d("2026-03-01")), d("2026-06-30"));
        assert_eq!(c.fiscal_year_closing(d("2026-07-01")), d("2027-06-30"));
    }

    #[test]
    fn unknown_key_reports_line() {
        let text = "kind = \"json-dir\"\npath = \"x\"\npage_sise = 3\n";
        let err = parse_toml::<JsonDirConfig>(Path::new("c.toml"), text).unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.message.contains("page_sise"), "{}", err.message);
    }
}
