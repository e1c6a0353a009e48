//! Pennylane's Company API v2: bearer token (a company API token from the environment, held in
//! `secrecy`), every call paced under the 25-per-5-seconds limit and retried on 429 (honouring
//! `retry-after`) and 5xx when it changes nothing; creating calls are sent once (`send_once`) and
//! retried only when certainly not processed, or on 409 "file not ready".

use std::time::Duration;

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::config::PennylaneConfig;
use crate::retry::{self, HttpFailure, OnceFailure, RateLimiter, RetryPolicy};
use crate::targets::http::{self, ApiError};
use crate::targets::oauth::{Attempt, OAuthError, RefreshingToken};
use crate::targets::secret_from_env;

/// Pennylane's rate-limit window: 25 calls per 5 s per token (the connector's `requests_per_5s`).
const WINDOW: Duration = Duration::from_secs(5);

/// Errors of the Pennylane API.
#[derive(Debug, thiserror::Error)]
pub enum PennylaneError {
    /// What any API can give: the token missing or refused, no answer, a creating call not
    /// processed or maybe processed ([`ApiError::Unknown`]: look it up before any new attempt),
    /// an answer not as documented.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Pennylane refused the content (422 and other 4xx), with its message.
    #[error("Pennylane refused it (HTTP {status}): {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Pennylane's message.
        body: String,
    },
}

impl From<OAuthError> for PennylaneError {
    fn from(e: OAuthError) -> Self {
        ApiError::from_oauth(e, Some("Pennylane")).into()
    }
}

/// How calls are authorised: a company API token, or OAuth2 tokens from `facto connect`.
enum Auth {
    Company(SecretString),
    OAuth(Box<RefreshingToken>),
}

/// A client of one Pennylane company.
pub struct PennylaneApi {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    policy: RetryPolicy,
    limiter: RateLimiter,
}

fn auth_error(status: u16, body: &str) -> PennylaneError {
    PennylaneError::Api(ApiError::Auth(if status == 403 {
        format!("Pennylane refused the call (403): the API token lacks a scope ({body}); facto needs customer_invoices:all, file_attachments:all, ledger_accounts:readonly and customers:all")
    } else {
        "Pennylane refused the API token (401): it is wrong or expired; create a new company API token and export it again".to_owned()
    }))
}

impl PennylaneApi {
    /// A client for a `pennylane` connector, with its token read from the environment.
    ///
    /// # Errors
    ///
    /// The token variable is missing, or the HTTP client cannot be built.
    pub fn new(cfg: &PennylaneConfig, name: &str, store: PathBuf) -> Result<Self, PennylaneError> {
        let http = http::client(cfg.timeout_secs)?;
        let auth = match (&cfg.token_env, &cfg.client_id_env) {
            (Some(var), _) => Auth::Company(
                secret_from_env(var, "Pennylane company API token").map_err(ApiError::Config)?,
            ),
            (None, Some(id)) => {
                let client_id =
                    secret_from_env(id, "Pennylane OAuth2 client id").map_err(ApiError::Config)?;
                let secret = match &cfg.client_secret_env {
                    Some(v) => Some(
                        secret_from_env(v, "Pennylane OAuth2 client secret")
                            .map_err(ApiError::Config)?,
                    ),
                    None => None,
                };
                Auth::OAuth(Box::new(
                    RefreshingToken::load(
                        http.clone(),
                        store,
                        &cfg.token_url,
                        client_id.expose_secret().to_owned(),
                        secret,
                        format!("target `{name}` is not connected to Pennylane yet: run `facto connect {name}`"),
                    )
                    .map_err(|e| ApiError::Config(e.to_string()))?,
                ))
            }
            (None, None) => {
                return Err(ApiError::Config(
                    "set token_env or client_id_env in the Pennylane connector".into(),
                )
                .into())
            }
        };
        Ok(PennylaneApi {
            http,
            base: cfg.api_url.trim_end_matches('/').to_owned(),
            auth,
            policy: http::policy(cfg.max_retry_secs),
            // 1 % over the window: the server counts arrivals, the limiter departures, and a
            // call arriving a few milliseconds early would be refused.
            limiter: RateLimiter::new(cfg.requests_per_5s, WINDOW + WINDOW / 100),
        })
    }

    /// The bearer token; OAuth2 tokens are refreshed when they expire, or when `force`.
    async fn bearer(&self, force: bool) -> Result<SecretString, PennylaneError> {
        match &self.auth {
            Auth::Company(t) => Ok(t.clone()),
            Auth::OAuth(t) => t.access(force).await.map_err(Into::into),
        }
    }

    /// Honours `ratelimit-remaining: 0`: the next call waits for `ratelimit-reset` unless the
    /// limiter, which counts the same calls to the millisecond, already has its window full.
    fn note_exhausted(&self, resp: &reqwest::Response) {
        if let Some(wait) =
            retry::exhausted_wait(resp, "ratelimit-remaining", Some("ratelimit-reset"), WINDOW)
        {
            tracing::info!(
                wait_ms = wait.as_millis() as u64,
                "Pennylane rate limit reached; the next call waits."
            );
            self.limiter.exhausted(wait);
        }
    }

    /// Runs `call` with the bearer token; an OAuth2 token refused is refreshed and `call` runs
    /// once more (a company token cannot be refreshed: its refusal is final).
    async fn authorized<T, F, Fut>(&self, mut call: F) -> Result<T, PennylaneError>
    where
        F: FnMut(SecretString) -> Fut,
        Fut: std::future::Future<Output = Attempt<T, PennylaneError>>,
    {
        match &self.auth {
            Auth::Company(t) => match call(t.clone()).await {
                Attempt::Done(r) => r,
                Attempt::TokenRefused(e) => Err(e),
            },
            Auth::OAuth(t) => t.authorized(call).await,
        }
    }

    /// Whether a 401 may be cured by a refresh (OAuth2 tokens only).
    fn refreshable(&self) -> bool {
        matches!(self.auth, Auth::OAuth(_))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A GET, retried; `query` pairs are encoded.
    ///
    /// # Errors
    ///
    /// Network, credentials or protocol failure.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, PennylaneError> {
        let url = self.url(path);
        let url = &url;
        self.authorized(|token| async move {
            self.limiter.acquire().await;
            let result = retry::send(self.policy, url, || {
                self.http
                    .get(url)
                    .query(query)
                    .bearer_auth(token.expose_secret())
                    .header("Accept", "application/json")
            })
            .await;
            let resp = match result {
                Ok(r) => r,
                Err(HttpFailure::Refused {
                    status: 401, body, ..
                }) => return Attempt::TokenRefused(auth_error(401, &body)),
                Err(HttpFailure::Refused {
                    status: 403, body, ..
                }) => return Attempt::Done(Err(auth_error(403, &body))),
                Err(HttpFailure::Refused { status, body, .. }) => {
                    return Attempt::Done(Err(PennylaneError::Refused { status, body }))
                }
                Err(e) => return Attempt::Done(Err(ApiError::Http(e).into())),
            };
            self.note_exhausted(&resp);
            Attempt::Done(
                resp.json()
                    .await
                    .map_err(|e| ApiError::protocol(path, e).into()),
            )
        })
        .await
    }

    /// Every item of a cursor-paged list (`{items, has_more, next_cursor}`).
    ///
    /// # Errors
    ///
    /// Network, credentials or protocol failure.
    pub async fn list(
        &self,
        path: &str,
        filter: Option<String>,
    ) -> Result<Vec<Value>, PennylaneError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut q = vec![("limit", "100".to_owned())];
            if let Some(f) = &filter {
                q.push(("filter", f.clone()));
            }
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let page = self.get(path, &q).await?;
            if let Some(items) = page.get("items").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
            }
            cursor = page
                .get("next_cursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if !page
                .get("has_more")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                || cursor.is_none()
            {
                break;
            }
        }
        Ok(out)
    }

    /// A creating call, sent once (and again only on 409 "not ready", or when certainly not
    /// processed). `make` builds the request body for each attempt.
    async fn create<F>(&self, path: &str, make: F) -> Result<Value, PennylaneError>
    where
        F: Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    {
        let url = self.url(path);
        let mut refreshed = false;
        for attempt in 0..5u32 {
            let token = self.bearer(false).await?;
            self.limiter.acquire().await;
            let result = retry::send_once(self.policy, &url, || {
                make(
                    self.http
                        .post(&url)
                        .bearer_auth(token.expose_secret())
                        .header("Accept", "application/json"),
                )
            })
            .await;
            match result {
                Ok(resp) => {
                    self.note_exhausted(&resp);
                    return resp.json().await.map_err(|e| {
                        ApiError::Unknown(format!("outcome unknown: unreadable answer: {e}")).into()
                    });
                }
                Err(OnceFailure::Refused(HttpFailure::Refused { status: 401, .. }))
                    if !refreshed && self.refreshable() =>
                {
                    // Refused before processing: refresh the token once and send again.
                    self.bearer(true).await?;
                    refreshed = true;
                }
                Err(OnceFailure::Refused(HttpFailure::Refused { status: 409, .. }))
                    if attempt < 4 =>
                {
                    // The attachment is not ready yet: nothing was created.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(OnceFailure::Refused(HttpFailure::Refused { status, body, .. })) => {
                    return Err(if status == 401 || status == 403 {
                        auth_error(status, &body)
                    } else {
                        PennylaneError::Refused { status, body }
                    })
                }
                Err(OnceFailure::Refused(e) | OnceFailure::NotSent(e)) => {
                    return Err(ApiError::NotSent(format!("not processed: {e}")).into())
                }
                Err(OnceFailure::Unknown { detail, .. }) => {
                    return Err(ApiError::Unknown(format!("outcome unknown: {detail}")).into())
                }
            }
        }
        Err(ApiError::NotSent(format!(
            "not processed: {path}: the attachment never became ready"
        ))
        .into())
    }

    /// A JSON POST that creates something.
    ///
    /// # Errors
    ///
    /// See [`PennylaneError`].
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, PennylaneError> {
        self.create(path, |r| r.json(body)).await
    }

    /// Uploads a file (`POST /file_attachments`, multipart) and returns its id.
    ///
    /// # Errors
    ///
    /// See [`PennylaneError`].
    pub async fn upload(&self, name: &str, bytes: &[u8]) -> Result<i64, PennylaneError> {
        let v = self
            .create("/file_attachments", |r| {
                let part = reqwest::multipart::Part::bytes(bytes.to_vec())
                    .file_name(name.to_owned())
                    .mime_str("application/pdf")
                    .unwrap_or_else(|_| reqwest::multipart::Part::bytes(bytes.to_vec()));
                r.multipart(reqwest::multipart::Form::new().part("file", part))
            })
            .await?;
        v.get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| ApiError::protocol("/file_attachments", "no id in the answer").into())
    }
}

/// A filter expression of Pennylane's list endpoints.
pub fn filter_eq(field: &str, value: &str) -> String {
    serde_json::json!([{"field": field, "operator": "eq", "value": value}]).to_string()
}

impl crate::targets::http::CallError for PennylaneError {
    fn api(&self) -> Option<&ApiError> {
        match self {
            PennylaneError::Api(a) => Some(a),
            _ => None,
        }
    }
}
