//! `http` source: GET a paged JSON API of the invoicing application, with a bearer token read
//! from the environment variable the connector names, an `updated_since` cursor, `next` links or
//! page numbers, and retries through [`crate::retry`]. The cursor is the greatest `updated_at`
//! seen; it is saved only once every page was read and processed.

mod config;

pub use config::{HttpConfig, Pagination};

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{items_from_value, Page, SourceError};
use crate::retry::{self, RetryPolicy};

/// A pull in progress.
pub struct HttpSource {
    cfg: HttpConfig,
    client: reqwest::Client,
    token: Option<SecretString>,
    policy: RetryPolicy,
    since: Option<String>,
    next_url: Option<String>,
    page_no: usize,
    done: bool,
    max_seen: Option<chrono::DateTime<chrono::FixedOffset>>,
}

impl HttpSource {
    /// Prepares the pull; no request is made yet.
    ///
    /// # Errors
    ///
    /// The token variable is named but not set.
    pub fn open(cfg: &HttpConfig, cursor: Option<&serde_json::Value>) -> Result<Self, SourceError> {
        let token = match &cfg.token_env {
            Some(var) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Some(SecretString::from(v)),
                _ => {
                    return Err(SourceError::Config(format!(
                        "the environment variable {var} (token_env of the http source) is not set; export it with the API token"
                    )))
                }
            },
            None => None,
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_secs))
            .connect_timeout(Duration::from_secs(cfg.timeout_secs.min(10)))
            .user_agent(concat!("facto/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Config(format!("cannot build the HTTP client: {e}")))?;
        let since = cursor
            .and_then(|c| c.get("updated_since"))
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let policy = RetryPolicy {
            initial: Duration::from_millis(cfg.initial_retry_ms),
            max_elapsed: Duration::from_secs(cfg.max_retry_secs),
            ..RetryPolicy::default()
        };
        Ok(HttpSource {
            cfg: cfg.clone(),
            client,
            token,
            policy,
            max_seen: since
                .as_deref()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()),
            since,
            next_url: None,
            page_no: 0,
            done: false,
        })
    }

    fn first_url(&self) -> Result<url::Url, SourceError> {
        let mut u = url::Url::parse(&self.cfg.url)
            .map_err(|e| SourceError::Config(format!("bad url: {e}")))?;
        {
            let mut q = u.query_pairs_mut();
            if let Some(s) = &self.since {
                q.append_pair(&self.cfg.cursor_param, s);
            }
            q.append_pair(&self.cfg.per_page_param, &self.cfg.page_size.to_string());
            if self.cfg.pagination == Pagination::PageNumber {
                q.append_pair(&self.cfg.page_param, "1");
            }
        }
        Ok(u)
    }

    fn page_url(&self) -> Result<String, SourceError> {
        if self.page_no == 1 {
            return Ok(self.first_url()?.to_string());
        }
        match self.cfg.pagination {
            Pagination::NextLink => self
                .next_url
                .clone()
                .ok_or_else(|| SourceError::Config("no next link".into())),
            Pagination::PageNumber => {
                let mut u = self.first_url()?;
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        if k == self.cfg.page_param.as_str() {
                            (k.into_owned(), self.page_no.to_string())
                        } else {
                            (k.into_owned(), v.into_owned())
                        }
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
                Ok(u.to_string())
            }
        }
    }

    /// Fetches the next page.
    ///
    /// # Errors
    ///
    /// Unreachable server, refused request, malformed page.
    pub async fn next_page(&mut self) -> Result<Option<Page>, SourceError> {
        if self.done {
            return Ok(None);
        }
        self.page_no += 1;
        let url = self.page_url()?;
        let resp = retry::send(self.policy, &url, || {
            let req = self
                .client
                .get(&url)
                .header(reqwest::header::ACCEPT, "application/json");
            match &self.token {
                Some(t) => req.bearer_auth(t.expose_secret()),
                None => req,
            }
        })
        .await?;
        let link_next = resp
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_link_next);
        let malformed = |detail: String| SourceError::MalformedPage {
            url: url.split('?').next().unwrap_or(&url).to_owned(),
            page: self.page_no,
            detail,
        };
        let body = resp
            .bytes()
            .await
            .map_err(|e| malformed(format!("body could not be read: {e}")))?;
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            malformed(format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ))
        })?;
        let (items_value, next_in_body) = match (&self.cfg.items_field, value) {
            (None, v @ serde_json::Value::Array(_)) => (v, None),
            (Some(field), serde_json::Value::Object(mut obj)) => {
                let items = obj
                    .remove(field)
                    .ok_or_else(|| malformed(format!("no `{field}` field in the response")))?;
                if !items.is_array() {
                    return Err(malformed(format!("`{field}` is not an array")));
                }
                let next = obj
                    .get(&self.cfg.next_field)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                (items, next)
            }
            (None, _) => {
                return Err(malformed(
                    "expected a JSON array of documents (or set items_field)".into(),
                ))
            }
            (Some(field), _) => {
                return Err(malformed(format!(
                    "expected an object with a `{field}` array"
                )))
            }
        };
        let count = items_value.as_array().map(Vec::len).unwrap_or(0);
        let mut page = Page::default();
        items_from_value(items_value, &url, &mut page);
        for item in &page.items {
            if let super::Item::Doc { doc, .. } = item {
                if self.max_seen.is_none_or(|m| doc.updated_at > m) {
                    self.max_seen = Some(doc.updated_at);
                }
            }
        }
        match self.cfg.pagination {
            Pagination::NextLink => {
                self.next_url = next_in_body.or(link_next).map(|n| resolve(&url, &n));
                self.done = self.next_url.is_none();
            }
            Pagination::PageNumber => self.done = count < self.cfg.page_size || count == 0,
        }
        Ok(Some(page))
    }

    /// `{"updated_since": <greatest updated_at seen>}`, or the cursor this pull started from
    /// when `origins` names any page: a document met twice (edited while the pull paged) is read
    /// again by the next pull.
    pub fn cursor_before(&self, origins: &std::collections::BTreeSet<String>) -> serde_json::Value {
        if !origins.is_empty() {
            return match &self.since {
                Some(s) => serde_json::json!({ "updated_since": s }),
                None => serde_json::json!({}),
            };
        }
        match self.max_seen {
            Some(t) => serde_json::json!({ "updated_since": t.to_rfc3339() }),
            None => serde_json::json!({}),
        }
    }
}

fn resolve(base: &str, next: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(next))
        .map(|u| u.to_string())
        .unwrap_or_else(|_| next.to_owned())
}

/// The `rel="next"` target of a `Link` header.
fn parse_link_next(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| {
                p.trim().trim_start_matches("rel=").trim_matches('"') == "next"
                    && p.trim().starts_with("rel=")
            })
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next() {
        let h = r#"<https://x/api?page=2>; rel="next", <https://x/api?page=9>; rel="last""#;
        assert_eq!(parse_link_next(h).as_deref(), Some("https://x/api?page=2"));
        assert_eq!(parse_link_next(r#"<https://x/a>; rel="prev""#), None);
    }
}
