//! Pennylane's Company API v2: bearer token (a company API token from the environment, held in
//! `secrecy`), every call paced under the 25-per-5-seconds limit and retried on 429 (honouring
//! `retry-after`) and 5xx when it changes nothing; creating calls are sent once (`send_once`) and
//! retried only when certainly not processed, or on 409 "file not ready".

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::config::PennylaneConfig;
use crate::retry::{self, HttpFailure, OnceFailure, RateLimiter, RetryPolicy};

/// Errors of the Pennylane API.
#[derive(Debug, thiserror::Error)]
pub enum PennylaneError {
    /// The token variable is missing.
    #[error("{0}")]
    Config(String),
    /// Token refused or scope missing.
    #[error("{0}")]
    Auth(String),
    /// A read failed after retries.
    #[error(transparent)]
    Http(#[from] HttpFailure),
    /// A creating call certainly not processed.
    #[error("not processed: {0}")]
    NotSent(String),
    /// A creating call that may have been processed: look it up before any new attempt.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// Pennylane refused the content (422 and other 4xx), with its message.
    #[error("Pennylane refused it (HTTP {status}): {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Pennylane's message.
        body: String,
    },
    /// An answer that is not what the API documents.
    #[error("unexpected answer from {path}: {detail}")]
    Protocol {
        /// Endpoint.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

/// A client of one Pennylane company.
pub struct PennylaneApi {
    http: reqwest::Client,
    base: String,
    token: SecretString,
    policy: RetryPolicy,
    limiter: RateLimiter,
}

fn auth_error(status: u16, body: &str) -> PennylaneError {
    PennylaneError::Auth(if status == 403 {
        format!("Pennylane refused the call (403): the API token lacks a scope ({body}); facto needs customer_invoices:all, file_attachments:all, ledger_accounts:readonly and customers:all")
    } else {
        "Pennylane refused the API token (401): it is wrong or expired; create a new company API token and export it again".to_owned()
    })
}

impl PennylaneApi {
    /// A client for a `pennylane` connector, with its token read from the environment.
    ///
    /// # Errors
    ///
    /// The token variable is missing, or the HTTP client cannot be built.
    pub fn new(cfg: &PennylaneConfig) -> Result<Self, PennylaneError> {
        let token = match std::env::var(&cfg.token_env) {
            Ok(v) if !v.trim().is_empty() => SecretString::from(v.trim().to_owned()),
            _ => {
                return Err(PennylaneError::Config(format!(
                    "the environment variable {} (Pennylane company API token) is not set; export it before running facto",
                    cfg.token_env
                )))
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| PennylaneError::Config(format!("HTTP client: {e}")))?;
        Ok(PennylaneApi {
            http,
            base: cfg.api_url.trim_end_matches('/').to_owned(),
            token,
            policy: RetryPolicy {
                max_elapsed: Duration::from_secs(cfg.max_retry_secs),
                max_retry_after: Duration::from_secs(cfg.max_retry_secs),
                ..RetryPolicy::default()
            },
            limiter: RateLimiter::new(cfg.requests_per_5s, Duration::from_secs(5)),
        })
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
        self.limiter.acquire().await;
        let resp = retry::send(self.policy, &url, || {
            self.http
                .get(&url)
                .query(query)
                .bearer_auth(self.token.expose_secret())
                .header("Accept", "application/json")
        })
        .await
        .map_err(|e| match e {
            HttpFailure::Refused { status, body, .. } if status == 401 || status == 403 => {
                auth_error(status, &body)
            }
            HttpFailure::Refused { status, body, .. } => PennylaneError::Refused { status, body },
            e => PennylaneError::Http(e),
        })?;
        resp.json().await.map_err(|e| PennylaneError::Protocol {
            path: path.to_owned(),
            detail: e.to_string(),
        })
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
        for attempt in 0..5u32 {
            self.limiter.acquire().await;
            let result = retry::send_once(self.policy, &url, || {
                make(
                    self.http
                        .post(&url)
                        .bearer_auth(self.token.expose_secret())
                        .header("Accept", "application/json"),
                )
            })
            .await;
            match result {
                Ok(resp) => {
                    return resp
                        .json()
                        .await
                        .map_err(|e| PennylaneError::Unknown(format!("unreadable answer: {e}")))
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
                    return Err(PennylaneError::NotSent(e.to_string()))
                }
                Err(OnceFailure::Unknown { detail, .. }) => {
                    return Err(PennylaneError::Unknown(detail))
                }
            }
        }
        Err(PennylaneError::NotSent(format!(
            "{path}: the attachment never became ready"
        )))
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
            .ok_or_else(|| PennylaneError::Protocol {
                path: "/file_attachments".into(),
                detail: "no id in the answer".into(),
            })
    }
}

/// A filter expression of Pennylane's list endpoints.
pub fn filter_eq(field: &str, value: &str) -> String {
    serde_json::json!([{"field": field, "operator": "eq", "value": value}]).to_string()
}
