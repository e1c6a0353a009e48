//! Xero's Accounting API for one organisation: OAuth2 access tokens refreshed through the
//! `oauth2` crate one at a time (the rotated refresh token is saved to the token store before
//! the new access token is used; a refresh refused after a race reads the store once more), the
//! `xero-tenant-id` header, calls paced under the per-minute limit, `Retry-After` honoured, and
//! the daily limit (`X-Rate-Limit-Problem: day`) turned into a stop for the run. Writes carry an
//! `Idempotency-Key`, so they are retried safely.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, RefreshToken, TokenResponse, TokenUrl};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::tokens::{self, StoredTokens};
use crate::config::XeroConfig;
use crate::retry::{self, HttpFailure, RateLimiter, RetryPolicy};

/// Errors of the Xero API.
#[derive(Debug, thiserror::Error)]
pub enum XeroError {
    /// Missing secret or connection.
    #[error("{0}")]
    Config(String),
    /// Tokens refused.
    #[error("{0}")]
    Auth(String),
    /// Xero's daily call limit is reached: nothing more today.
    #[error("{0}")]
    DailyLimit(String),
    /// No answer, or refused, after retries.
    #[error(transparent)]
    Http(#[from] HttpFailure),
    /// An answer that is not what the API documents.
    #[error("unexpected answer from {path}: {detail}")]
    Protocol {
        /// Endpoint.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

struct Tokens {
    access: SecretString,
    refresh: SecretString,
    expires_at: chrono::DateTime<Utc>,
    tenant: String,
    tenant_name: Option<String>,
}

/// A client of one Xero organisation.
pub struct XeroApi {
    http: reqwest::Client,
    base: String,
    token_url: String,
    client_id: String,
    client_secret: Option<SecretString>,
    store: PathBuf,
    state: tokio::sync::Mutex<Tokens>,
    policy: RetryPolicy,
    limiter: RateLimiter,
}

fn env_secret(var: &str, what: &str) -> Result<SecretString, XeroError> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(SecretString::from(v.trim().to_owned())),
        _ => Err(XeroError::Config(format!(
            "the environment variable {var} ({what}) is not set; export it before running facto"
        ))),
    }
}

/// The OAuth2 client of a connector (client id, optional secret, token URL).
///
/// # Errors
///
/// A secret is missing or the token URL is invalid.
pub fn oauth_client(cfg: &XeroConfig) -> Result<(String, Option<SecretString>), XeroError> {
    let id = env_secret(&cfg.client_id_env, "Xero app client id")?;
    let secret = match &cfg.client_secret_env {
        Some(v) => Some(env_secret(v, "Xero app client secret")?),
        None => None,
    };
    Ok((id.expose_secret().to_owned(), secret))
}

impl XeroApi {
    /// A client for a connector whose tokens are in `store` (written by `facto connect`).
    ///
    /// # Errors
    ///
    /// A secret is missing, or the organisation is not connected yet.
    pub fn new(cfg: &XeroConfig, name: &str, store: PathBuf) -> Result<Self, XeroError> {
        let (client_id, client_secret) = oauth_client(cfg)?;
        let stored = tokens::load(&store)
            .map_err(XeroError::Config)?
            .ok_or_else(|| {
                XeroError::Config(format!(
                    "target `{name}` is not connected to Xero yet: run `facto connect {name}`"
                ))
            })?;
        let tenant = stored.tenant_id.clone().ok_or_else(|| {
            XeroError::Config(format!(
                "no Xero organisation is chosen for `{name}`: run `facto connect {name} --tenant ID`"
            ))
        })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| XeroError::Config(format!("HTTP client: {e}")))?;
        Ok(XeroApi {
            http,
            base: cfg.api_url.trim_end_matches('/').to_owned(),
            token_url: cfg.token_url.clone(),
            client_id,
            client_secret,
            store,
            state: tokio::sync::Mutex::new(Tokens {
                access: SecretString::from(stored.access_token),
                refresh: SecretString::from(stored.refresh_token),
                expires_at: stored.expires_at,
                tenant,
                tenant_name: stored.tenant_name,
            }),
            policy: RetryPolicy {
                max_elapsed: Duration::from_secs(cfg.max_retry_secs),
                max_retry_after: Duration::from_secs(cfg.max_retry_secs),
                ..RetryPolicy::default()
            },
            limiter: RateLimiter::new(cfg.calls_per_minute, Duration::from_secs(60)),
        })
    }

    /// The organisation's name, when known.
    pub async fn tenant_name(&self) -> Option<String> {
        self.state.lock().await.tenant_name.clone()
    }

    async fn refresh(&self, st: &mut Tokens) -> Result<(), XeroError> {
        let url = TokenUrl::new(self.token_url.clone())
            .map_err(|e| XeroError::Config(format!("token_url: {e}")))?;
        let mut client = BasicClient::new(ClientId::new(self.client_id.clone())).set_token_uri(url);
        match &self.client_secret {
            Some(s) => {
                client = client
                    .set_client_secret(ClientSecret::new(s.expose_secret().to_owned()))
                    .set_auth_type(AuthType::BasicAuth);
            }
            None => client = client.set_auth_type(AuthType::RequestBody),
        }
        let result = client
            .exchange_refresh_token(&RefreshToken::new(st.refresh.expose_secret().to_owned()))
            .request_async(&self.http)
            .await;
        let resp = match result {
            Ok(r) => r,
            Err(oauth2::RequestTokenError::ServerResponse(e)) => {
                // Another process may have rotated the pair: read the store once more.
                if let Ok(Some(s)) = tokens::load(&self.store) {
                    if s.refresh_token != st.refresh.expose_secret() {
                        st.access = SecretString::from(s.access_token);
                        st.refresh = SecretString::from(s.refresh_token);
                        st.expires_at = s.expires_at;
                        return Ok(());
                    }
                }
                return Err(XeroError::Auth(format!(
                    "Xero refused the refresh token ({}): connect again with `facto connect`",
                    e.error()
                )));
            }
            Err(oauth2::RequestTokenError::Request(e)) => {
                return Err(XeroError::Http(HttpFailure::Unreachable {
                    url: self.token_url.clone(),
                    detail: e.to_string(),
                }))
            }
            Err(e) => return Err(XeroError::Auth(format!("Xero token refresh failed: {e}"))),
        };
        let access = resp.access_token().secret().to_owned();
        let refresh = resp.refresh_token().map_or_else(
            || st.refresh.expose_secret().to_owned(),
            |r| r.secret().to_owned(),
        );
        let life = resp.expires_in().unwrap_or(Duration::from_secs(1800));
        let expires_at = Utc::now() + chrono::Duration::seconds(life.as_secs() as i64);
        // The rotated pair is on disk before the new access token is used.
        tokens::save(
            &self.store,
            &StoredTokens {
                access_token: access.clone(),
                refresh_token: refresh.clone(),
                expires_at,
                tenant_id: Some(st.tenant.clone()),
                tenant_name: st.tenant_name.clone(),
            },
        )
        .map_err(|e| {
            XeroError::Config(format!(
                "cannot save the tokens to {}: {e}",
                self.store.display()
            ))
        })?;
        st.access = SecretString::from(access);
        st.refresh = SecretString::from(refresh);
        st.expires_at = expires_at;
        Ok(())
    }

    /// A valid access token and the tenant; refreshed first when it expires within a minute,
    /// or when `force` (after a 401).
    async fn access(&self, force: bool) -> Result<(SecretString, String), XeroError> {
        let mut st = self.state.lock().await;
        if force || Utc::now() + chrono::Duration::seconds(60) >= st.expires_at {
            self.refresh(&mut st).await?;
        }
        Ok((st.access.clone(), st.tenant.clone()))
    }

    /// One call: `body` is sent as is (exact JSON text), with an idempotency key for writes.
    ///
    /// # Errors
    ///
    /// See [`XeroError`]; a 400 comes back as `Http(Refused)` with Xero's message.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&str>,
        key: Option<&str>,
    ) -> Result<Value, XeroError> {
        let url = format!("{}{path}", self.base);
        for attempt in 0..2 {
            let (token, tenant) = self.access(attempt > 0).await?;
            self.limiter.acquire().await;
            let result = retry::send(self.policy, &url, || {
                let mut r = self
                    .http
                    .request(method.clone(), &url)
                    .query(query)
                    .bearer_auth(token.expose_secret())
                    .header("xero-tenant-id", &tenant)
                    .header("Accept", "application/json");
                if let Some(b) = body {
                    r = r
                        .header("Content-Type", "application/json")
                        .body(b.to_owned());
                }
                if let Some(k) = key {
                    r = r.header("Idempotency-Key", k);
                }
                r
            })
            .await;
            match result {
                Ok(resp) => {
                    return resp.json().await.map_err(|e| XeroError::Protocol {
                        path: path.to_owned(),
                        detail: e.to_string(),
                    })
                }
                Err(HttpFailure::Refused { status: 401, .. }) if attempt == 0 => {}
                Err(HttpFailure::Refused { status: 401 | 403, .. }) => {
                    return Err(XeroError::Auth(
                        "Xero refused the access token (401/403): check the app's scopes, or connect again with `facto connect`".into(),
                    ))
                }
                Err(HttpFailure::Refused { status: 429, body, .. }) => {
                    return Err(XeroError::DailyLimit(format!(
                        "Xero's daily limit for this organisation is reached ({body}); the rest waits for the next run after the reset"
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(XeroError::Auth(
            "Xero refused the access token twice".into(),
        ))
    }
}
