//! Xero's Accounting API for one organisation: OAuth2 access tokens refreshed through the
//! `oauth2` crate one at a time (the rotated refresh token is saved to the token store before
//! the new access token is used; a refresh refused after a race reads the store once more), the
//! `xero-tenant-id` header, calls paced under the per-minute limit, `Retry-After` honoured, and
//! the daily limit (`X-Rate-Limit-Problem: day`) turned into a stop for the run. Writes carry an
//! `Idempotency-Key`, so they are retried safely.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::config::XeroConfig;
use crate::retry::{self, HttpFailure, RateLimiter, RetryPolicy};
use crate::targets::http::{self, ApiError};
use crate::targets::oauth::{Attempt, OAuthError, RefreshingToken};
use crate::targets::{secret_from_env, tokens};

/// Errors of the Xero API.
#[derive(Debug, thiserror::Error)]
pub enum XeroError {
    /// What any API can give: a secret or the connection missing, tokens refused, no answer or
    /// a refusal after retries, an answer not as documented.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Xero's daily call limit is reached: nothing more today.
    #[error("{0}")]
    DailyLimit(String),
}

impl From<OAuthError> for XeroError {
    fn from(e: OAuthError) -> Self {
        ApiError::from_oauth(e, Some("Xero")).into()
    }
}

/// A client of one Xero organisation.
pub struct XeroApi {
    http: reqwest::Client,
    base: String,
    token: RefreshingToken,
    tenant: String,
    policy: RetryPolicy,
    limiter: RateLimiter,
    /// Set when Xero says no call is left today: nothing more is sent in this run.
    day_exhausted: std::sync::atomic::AtomicBool,
}

/// The OAuth2 client of a connector (client id, optional secret, token URL).
///
/// # Errors
///
/// A secret is missing or the token URL is invalid.
pub fn oauth_client(cfg: &XeroConfig) -> Result<(String, Option<SecretString>), XeroError> {
    let id = secret_from_env(&cfg.client_id_env, "Xero app client id").map_err(ApiError::Config)?;
    let secret = match &cfg.client_secret_env {
        Some(v) => Some(secret_from_env(v, "Xero app client secret").map_err(ApiError::Config)?),
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
        let http = http::client(cfg.timeout_secs)?;
        let token = RefreshingToken::load(
            http.clone(),
            store,
            &cfg.token_url,
            client_id,
            client_secret,
            format!("target `{name}` is not connected to Xero yet: run `facto connect {name}`"),
        )
        .map_err(|e| ApiError::Config(e.to_string()))?;
        let tenant = tokens::load(token.store())
            .ok()
            .flatten()
            .and_then(|t| t.tenant_id)
            .ok_or_else(|| {
                ApiError::Config(format!(
                    "no Xero organisation is chosen for `{name}`: run `facto connect {name} --tenant ID`"
                ))
            })?;
        Ok(XeroApi {
            http,
            base: cfg.api_url.trim_end_matches('/').to_owned(),
            token,
            tenant,
            policy: http::policy(cfg.max_retry_secs),
            limiter: RateLimiter::new(cfg.calls_per_minute, Duration::from_secs(60)),
            day_exhausted: std::sync::atomic::AtomicBool::new(false),
        })
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
        if self
            .day_exhausted
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(XeroError::DailyLimit(
                "Xero's daily limit for this organisation is reached (X-DayLimit-Remaining: 0); the rest waits for the next run after the reset".into(),
            ));
        }
        let (url, tenant, method) = (&url, &self.tenant, &method);
        let refused = || -> XeroError {
            ApiError::Auth(
                "Xero refused the access token (401/403): check the app's scopes, or connect again with `facto connect`".into(),
            )
            .into()
        };
        self.token
            .authorized(|token| async move {
                self.limiter.acquire().await;
                let result = retry::send(self.policy, url, || {
                    let mut r = self
                        .http
                        .request(method.clone(), url)
                        .query(query)
                        .bearer_auth(token.expose_secret())
                        .header("xero-tenant-id", tenant)
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
                Attempt::Done(match result {
                    Ok(resp) => {
                        self.note_limits(&resp).await;
                        resp.json().await.map_err(|e| ApiError::protocol(path, e).into())
                    }
                    Err(HttpFailure::Refused { status: 401, .. }) => {
                        return Attempt::TokenRefused(refused())
                    }
                    Err(HttpFailure::Refused { status: 403, .. }) => Err(refused()),
                    Err(HttpFailure::Refused { status: 429, body, .. }) => Err(XeroError::DailyLimit(format!(
                        "Xero's daily limit for this organisation is reached ({body}); the rest waits for the next run after the reset"
                    ))),
                    Err(e) => Err(ApiError::Http(e).into()),
                })
            })
            .await
    }

    /// The limits Xero reports on every answer: no storm of 429s.
    async fn note_limits(&self, resp: &reqwest::Response) {
        if retry::exhausted_wait(resp, "x-daylimit-remaining", None, Duration::ZERO).is_some() {
            self.day_exhausted
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(wait) =
            retry::exhausted_wait(resp, "x-minlimit-remaining", None, Duration::from_secs(60))
        {
            tracing::info!(
                wait_secs = wait.as_secs(),
                "Xero minute limit reached; waiting."
            );
            tokio::time::sleep(wait).await;
        }
    }
}

impl crate::targets::http::CallError for XeroError {
    fn api(&self) -> Option<&ApiError> {
        match self {
            XeroError::Api(a) => Some(a),
            _ => None,
        }
    }
}
