//! `kind = "afnor-pa"` connectors: the company's approved platform (PA) reached through the
//! AFNOR XP Z12-013 Flow API: its URLs, credentials (OAuth2 client credentials or a bearer
//! token, by the names of environment variables), the syntax sent, timeouts and the lookup
//! grace, and their validation.

use serde::Deserialize;
use std::path::Path;

use crate::toml_file::{key_line, parse_toml, ConfigError};

/// Syntax of the documents sent to the PA (`flowSyntax`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaSyntax {
    /// UN/CEFACT CII (`flowSyntax = CII`).
    #[default]
    Cii,
    /// UBL 2.1 (`flowSyntax = UBL`).
    Ubl,
    /// Factur-X, EN 16931 profile: a PDF/A-3 carrying the CII as `factur-x.xml`
    /// (`flowSyntax = Factur-X`).
    Facturx,
}

impl PaSyntax {
    /// The `flowSyntax` value of the Flow API.
    pub fn flow_syntax(self) -> &'static str {
        match self {
            PaSyntax::Cii => "CII",
            PaSyntax::Ubl => "UBL",
            PaSyntax::Facturx => "Factur-X",
        }
    }

    /// The MIME type of the file sent.
    pub fn mime(self) -> &'static str {
        match self {
            PaSyntax::Cii | PaSyntax::Ubl => "application/xml",
            PaSyntax::Facturx => "application/pdf",
        }
    }
}

/// Whether facto sends status 212 "Encaissée" for the payments of invoices whose VAT is due on
/// receipt (`status_212`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status212 {
    /// Sent, once per payment, where VAT is due on receipt (the seller's obligation).
    #[default]
    WhenDue,
    /// Never sent by facto (the PA builds it from payment data it gets otherwise).
    Off,
}

/// `kind = "afnor-pa"`: sends each e-invoice as one flow to the company's approved platform
/// and follows its acknowledgement.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaConfig {
    /// Always `afnor-pa`.
    pub kind: String,
    /// Base URL of the PA's Flow Service, up to (not including) `/v1`
    /// (`https://pa.example/flow-service`).
    pub api_url: String,
    /// OAuth2 token URL (client credentials); required with `client_id_env`.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Environment variable holding the OAuth2 client id.
    #[serde(default)]
    pub client_id_env: Option<String>,
    /// Environment variable holding the OAuth2 client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Environment variable holding a bearer token (instead of client credentials).
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// The company on whose behalf the credentials act (`Organization-Id` header), when one
    /// set of credentials serves several companies.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// `cii` (default), `ubl` or `facturx`.
    #[serde(default)]
    pub syntax: PaSyntax,
    /// Timeout of one API call, seconds. Default 30.
    #[serde(default = "crate::targets::http::default_timeout_secs")]
    pub timeout_secs: u64,
    /// Longest time spent retrying one call (429, 503, no connection), seconds. Default 120.
    #[serde(default = "crate::targets::http::default_max_retry_secs")]
    pub max_retry_secs: u64,
    /// A flow whose answer was lost is looked up (by `trackingId`) at every run; when the PA
    /// still does not list it this long after, it is sent again. Minutes, default 60.
    #[serde(default = "crate::targets::http::default_lookup_grace_minutes")]
    pub lookup_grace_minutes: u64,
    /// Most flows whose acknowledgement is read one by one in a status run (those the searches
    /// of changed flows did not settle: waiting over an hour, or found `Error`). Default 200.
    #[serde(default = "two_hundred")]
    pub poll_max_flows: usize,
    /// Base URL of the PA's Directory Service, up to (not including) `/v1`
    /// (`https://pa.example/directory-service`). No default: the standard mounts it beside the
    /// Flow Service, not under it; without it, B2B documents are held (their address cannot be
    /// looked up).
    #[serde(default)]
    pub directory_url: Option<String>,
    /// How long a directory answer for a SIREN is used before it is looked up again, hours.
    /// Default 24.
    #[serde(default = "twenty_four")]
    pub directory_cache_hours: u64,
    /// Where public buyers' invoices go: `chorus` (default: Chorus Pro directly, through a
    /// `chorus` target) or `pa` (through the PA, `processingRule = B2G`).
    #[serde(default)]
    pub public_buyers: crate::route::PublicBuyers,
    /// The public URL at which the PA calls facto's daemon when a flow changes
    /// (`https://facto.example/api/v1/pa/<target>/webhook`): the daemon registers it and polls
    /// at once on a signed event. None (default): polling only.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// How the PA signs its events: `hmac-body-ts` (default) or `hmac-sha256-of-body-ts`.
    #[serde(default)]
    pub webhook_signature: super::webhook::WebhookSignature,
    /// Status 212 "Encaissée": `when-due` (default) sends one for each payment of an invoice
    /// whose VAT is due on receipt (services without VAT on debits); `off` never.
    #[serde(default)]
    pub status_212: Status212,
    /// Whether the job that runs this connector also has a Chorus Pro target (the API or
    /// portal files): set when the job's targets are built, never read from the file. Without
    /// one, public buyers' invoices with `public_buyers = "chorus"` are taken and held (named,
    /// with the fix) rather than left to no platform.
    #[serde(skip)]
    pub chorus_in_job: bool,
}

fn twenty_four() -> u64 {
    24
}

fn two_hundred() -> usize {
    200
}

/// How the client authenticates, as validated by [`PaConfig::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaAuth {
    /// OAuth2 client credentials: token URL and the variables of the id and the secret.
    ClientCredentials {
        /// Token endpoint.
        token_url: String,
        /// Variable of the client id.
        id_env: String,
        /// Variable of the client secret.
        secret_env: String,
    },
    /// A bearer token read from this variable.
    Bearer(String),
}

impl PaConfig {
    /// The authentication in effect (validated at load).
    pub fn auth(&self) -> PaAuth {
        match (&self.bearer_token_env, &self.client_id_env) {
            (Some(b), None) => PaAuth::Bearer(b.clone()),
            _ => PaAuth::ClientCredentials {
                token_url: self.token_url.clone().unwrap_or_default(),
                id_env: self.client_id_env.clone().unwrap_or_default(),
                secret_env: self.client_secret_env.clone().unwrap_or_default(),
            },
        }
    }

    /// The variable naming the account (for overlap checks): the client id or the token.
    pub fn account_env(&self) -> &str {
        self.client_id_env
            .as_deref()
            .or(self.bearer_token_env.as_deref())
            .unwrap_or("")
    }

    /// Reads a PA connector from the text of its connector file and validates it.
    ///
    /// # Errors
    ///
    /// Unknown keys, bad values, with the line.
    pub fn load(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let c: PaConfig = parse_toml(path, text)?;
        let at = |key: &str, msg: String| ConfigError::at(path, key_line(text, key), msg);
        for (key, url) in [
            ("api_url", Some(&c.api_url)),
            ("token_url", c.token_url.as_ref()),
            ("directory_url", c.directory_url.as_ref()),
            ("webhook_url", c.webhook_url.as_ref()),
        ] {
            if let Some(u) = url {
                if url::Url::parse(u).is_err() {
                    return Err(at(key, format!("{key} `{u}` is not an absolute URL")));
                }
            }
        }
        match (
            &c.client_id_env,
            &c.client_secret_env,
            &c.bearer_token_env,
        ) {
            (Some(_), Some(_), None) if c.token_url.is_some() => {}
            (Some(_), Some(_), None) => {
                return Err(at(
                    "client_id_env",
                    "client credentials need token_url (the PA's OAuth2 token endpoint)".into(),
                ))
            }
            (None, None, Some(_)) => {}
            (_, _, Some(_)) => {
                return Err(at(
                    "bearer_token_env",
                    "give either bearer_token_env or client_id_env and client_secret_env, not both"
                        .into(),
                ))
            }
            _ => {
                return Err(ConfigError::new(
                    path,
                    "name the PA credentials: client_id_env, client_secret_env and token_url (OAuth2 client credentials), or bearer_token_env",
                ))
            }
        }
        if c.timeout_secs == 0 {
            return Err(at("timeout_secs", "timeout_secs must be at least 1".into()));
        }
        if c.poll_max_flows == 0 {
            return Err(at(
                "poll_max_flows",
                "poll_max_flows must be at least 1".into(),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<PaConfig, ConfigError> {
        PaConfig::load(Path::new("connectors/pa.toml"), text)
    }

    const BASE: &str = "kind = \"afnor-pa\"\napi_url = \"https://pa.example/flow-service\"\n";

    #[test]
    fn client_credentials_or_a_bearer_token_and_nothing_unknown() {
        let c = load(&format!(
            "{BASE}token_url = \"https://pa.example/token\"\nclient_id_env = \"PA_ID\"\nclient_secret_env = \"PA_SECRET\"\n"
        ))
        .unwrap();
        assert_eq!(c.syntax, PaSyntax::Cii);
        assert_eq!(c.lookup_grace_minutes, 60);
        assert!(matches!(c.auth(), PaAuth::ClientCredentials { .. }));
        let c = load(&format!(
            "{BASE}bearer_token_env = \"PA_TOKEN\"\nsyntax = \"ubl\"\norganization_id = \"123456789\"\n"
        ))
        .unwrap();
        assert_eq!(c.auth(), PaAuth::Bearer("PA_TOKEN".into()));
        assert_eq!(c.syntax.flow_syntax(), "UBL");

        let e = load(BASE).unwrap_err().to_string();
        assert!(e.contains("name the PA credentials"), "{e}");
        let e = load(&format!(
            "{BASE}client_id_env = \"A\"\nclient_secret_env = \"B\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("token_url"), "{e}");
        let e = load(&format!(
            "{BASE}bearer_token_env = \"T\"\nclient_id_env = \"A\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("not both"), "{e}");
        let e = load(&format!("{BASE}bearer_token_env = \"T\"\nlot_size = 2\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("lot_size"), "{e}");
    }

    #[test]
    fn factur_x_is_a_syntax_and_an_unknown_one_is_refused_with_the_values() {
        let c = load(&format!(
            "{BASE}bearer_token_env = \"T\"\nsyntax = \"facturx\"\n"
        ))
        .unwrap();
        assert_eq!(c.syntax, PaSyntax::Facturx);
        assert_eq!(
            (c.syntax.flow_syntax(), c.syntax.mime()),
            ("Factur-X", "application/pdf")
        );
        let e = load(&format!(
            "{BASE}bearer_token_env = \"T\"\nsyntax = \"pdf\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`cii`") && e.contains("`ubl`") && e.contains("`facturx`"),
            "{e}"
        );
    }

    #[test]
    fn webhook_settings_are_optional_and_checked() {
        use super::super::webhook::WebhookSignature;
        let c = load(&format!("{BASE}bearer_token_env = \"T\"\n")).unwrap();
        assert_eq!(c.webhook_url, None);
        assert_eq!(c.webhook_signature, WebhookSignature::HmacBodyTs);
        let c = load(&format!(
            "{BASE}bearer_token_env = \"T\"\nwebhook_url = \"https://facto.example/api/v1/pa/pa/webhook\"\nwebhook_signature = \"hmac-sha256-of-body-ts\"\n"
        ))
        .unwrap();
        assert_eq!(c.webhook_signature, WebhookSignature::HmacSha256OfBodyTs);
        assert!(c.webhook_url.is_some());
        let e = load(&format!(
            "{BASE}bearer_token_env = \"T\"\nwebhook_url = \"/api/v1/pa/pa/webhook\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("webhook_url") && e.contains("absolute URL"),
            "{e}"
        );
        let e = load(&format!(
            "{BASE}bearer_token_env = \"T\"\nwebhook_signature = \"sha1\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("hmac-body-ts") && e.contains("hmac-sha256-of-body-ts"),
            "{e}"
        );
    }

    #[test]
    fn directory_settings_have_named_defaults_and_are_checked() {
        let c = load(&format!("{BASE}bearer_token_env = \"T\"\n")).unwrap();
        assert_eq!(c.directory_url, None);
        assert_eq!(c.directory_cache_hours, 24);
        assert_eq!(c.public_buyers, crate::route::PublicBuyers::Chorus);
        let c = load(&format!(
            "{BASE}bearer_token_env = \"T\"\ndirectory_url = \"https://pa.example/directory-service\"\ndirectory_cache_hours = 2\npublic_buyers = \"pa\"\n"
        ))
        .unwrap();
        assert_eq!(c.directory_cache_hours, 2);
        assert_eq!(c.public_buyers, crate::route::PublicBuyers::Pa);
        let e = load(&format!(
            "{BASE}bearer_token_env = \"T\"\ndirectory_url = \"pa.example\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("directory_url") && e.contains("absolute URL"),
            "{e}"
        );
        let e = load(&format!(
            "{BASE}bearer_token_env = \"T\"\npublic_buyers = \"ppf\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("public_buyers") || e.contains("ppf"), "{e}");
    }
}
