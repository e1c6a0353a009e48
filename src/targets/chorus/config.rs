//! `kind = "chorus-pro"` connectors: the PISTE environment, the deposited syntax, lots and
//! timeouts, and their validation.

use serde::Deserialize;
use std::path::Path;

use crate::toml_file::{key_line, parse_toml, ConfigError};

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
    #[serde(default = "crate::targets::http::default_timeout_secs")]
    pub timeout_secs: u64,
    /// Longest time spent retrying one call (429, 5xx, no answer), seconds. Default 120.
    #[serde(default = "crate::targets::http::default_max_retry_secs")]
    pub max_retry_secs: u64,
    /// How long a buyer's structure settings are trusted before being read again. Default 24.
    #[serde(default = "twenty_four")]
    pub structure_cache_hours: u64,
    /// A deposit whose answer was lost is looked up at every run; when Chorus Pro still does
    /// not know the invoice this long after, it is deposited again. Minutes, default 60.
    #[serde(default = "crate::targets::http::default_lookup_grace_minutes")]
    pub lookup_grace_minutes: u64,
}

fn one() -> usize {
    1
}
fn twenty_four() -> u64 {
    24
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

impl ChorusConfig {
    /// Reads a Chorus Pro connector from the text of its connector file and validates it.
    ///
    /// # Errors
    ///
    /// Unknown keys, bad values, with the line.
    pub fn load(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let c: ChorusConfig = parse_toml(path, text)?;
        for (key, url) in [("api_url", &c.api_url), ("token_url", &c.token_url)] {
            if let Some(u) = url {
                if url::Url::parse(u).is_err() {
                    return Err(ConfigError::at(
                        path,
                        key_line(text, key),
                        format!("{key} `{u}` is not an absolute URL"),
                    ));
                }
            }
        }
        if !(1..=500).contains(&c.lot_size) {
            return Err(ConfigError::at(
                path,
                key_line(text, "lot_size"),
                "lot_size must be between 1 and 500 (Chorus Pro takes at most 500 documents per flow)",
            ));
        }
        Ok(c)
    }
}
