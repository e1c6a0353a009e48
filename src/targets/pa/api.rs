//! The AFNOR XP Z12-013 Flow API (Flow Service 1.3.0) of the company's approved platform:
//! OAuth2 client credentials (the shared [`ClientCredentials`] cache) or a bearer token, a
//! `Request-Id` on every call (the correlation key for the PA's support) and `Organization-Id`
//! when configured. A flow is created once (`POST /v1/flows`, retried only when certainly not
//! processed: the API has no idempotency key), searched by `trackingId`, and read for its
//! acknowledgement. Secrets stay in `secrecy` types and never reach an error message or a log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::config::{PaAuth, PaConfig};
use crate::retry::{self, HttpFailure, OnceFailure, RetryPolicy};
use crate::targets::http::{self, ApiError, CallError};
use crate::targets::oauth::{Attempt, ClientCredentials, ClientCredentialsSettings, OAuthError};
use crate::targets::secret_from_env;

/// Renew the token this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// The largest lifecycle file read (a CDAR is a few kilobytes).
pub const MAX_DOWNLOAD: usize = 4 * 1024 * 1024;
/// Most pages of one search (100 flows each): a `trackingId` names one flow, rarely a few.
const MAX_PAGES: usize = 10;

/// Errors of the Flow API.
#[derive(Debug, thiserror::Error)]
pub enum PaError {
    /// What any API can give: a secret missing, credentials refused, no answer, a flow not
    /// processed or maybe processed ([`ApiError::Unknown`]: search it before any new attempt),
    /// an answer not as documented.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The PA refused the request for good (4xx with its `Error` body).
    #[error("the PA refused it (HTTP {status}): {code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// `errorCode`.
        code: String,
        /// `errorMessage`.
        message: String,
    },
    /// The PA already holds a flow of this document (`AlreadyExistingFlow`): not a failure,
    /// the existing flow is looked up.
    #[error("the PA already holds this flow: {0}")]
    AlreadyExisting(String),
}

impl CallError for PaError {
    fn api(&self) -> Option<&ApiError> {
        match self {
            PaError::Api(e) => Some(e),
            _ => None,
        }
    }
}

impl From<HttpFailure> for PaError {
    fn from(e: HttpFailure) -> Self {
        PaError::Api(e.into())
    }
}

impl From<OAuthError> for PaError {
    fn from(e: OAuthError) -> Self {
        ApiError::from_oauth(e, Some("the PA's authorization server")).into()
    }
}

/// The reason code of a duplicate flow.
pub const ALREADY_EXISTING: &str = "AlreadyExistingFlow";

/// `FullFlowInfo`: the answer to a created flow.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowCreated {
    /// The PA's flow id.
    pub flow_id: String,
    /// When the PA received it (its clock is the reference).
    #[serde(default)]
    pub submitted_at: Option<String>,
}

/// One line of an acknowledgement.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AckDetail {
    /// `Error` or `Warning`.
    #[serde(default)]
    pub level: Option<String>,
    /// What it is about.
    #[serde(default)]
    pub item: Option<String>,
    /// `reasonCode` (an open list).
    #[serde(default)]
    pub reason_code: Option<String>,
    /// `reasonMessage`.
    #[serde(default)]
    pub reason_message: Option<String>,
}

/// A flow's technical acknowledgement.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Ack {
    /// `Pending`, `Ok` or `Error`.
    pub status: String,
    /// Why, when `Error` (or warnings).
    #[serde(default)]
    pub details: Vec<AckDetail>,
}

impl Ack {
    /// The errors, as the accountant reads them: `reasonCode (item): reasonMessage; ...`.
    pub fn reasons(&self) -> String {
        let errors: Vec<String> = self
            .details
            .iter()
            .filter(|d| d.level.as_deref() != Some("Warning"))
            .map(|d| {
                format!(
                    "{}{}: {}",
                    d.reason_code.as_deref().unwrap_or("?"),
                    d.item
                        .as_deref()
                        .map(|i| format!(" ({i})"))
                        .unwrap_or_default(),
                    d.reason_message.as_deref().unwrap_or("no reason given")
                )
            })
            .collect();
        if errors.is_empty() {
            "no reason given".into()
        } else {
            errors.join("; ")
        }
    }

    /// Whether its only errors say the flow is a duplicate.
    pub fn only_duplicate(&self) -> bool {
        let mut errors = self
            .details
            .iter()
            .filter(|d| d.level.as_deref() != Some("Warning"))
            .peekable();
        errors.peek().is_some()
            && errors.all(|d| d.reason_code.as_deref() == Some(ALREADY_EXISTING))
    }
}

/// A `Flow` (search result or metadata).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flow {
    /// The PA's flow id.
    pub flow_id: String,
    /// facto's id of the flow.
    #[serde(default)]
    pub tracking_id: Option<String>,
    /// `In` or `Out`.
    #[serde(default)]
    pub flow_direction: Option<String>,
    /// The acknowledgement.
    #[serde(default)]
    pub acknowledgement: Option<Ack>,
    /// `CustomerInvoice`, `CustomerInvoiceLC` (a lifecycle status about facto's invoice)...
    #[serde(default)]
    pub flow_type: Option<String>,
    /// Its last change (RFC 3339): where the searches of changed flows stand.
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl Flow {
    /// The acknowledgement status (`Pending` when the PA gives none yet).
    pub fn ack_status(&self) -> &str {
        self.acknowledgement
            .as_ref()
            .map_or("Pending", |a| a.status.as_str())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchPage {
    #[serde(default)]
    next_cursor: Option<String>,
    #[serde(default)]
    results: Vec<Flow>,
}

/// A `Request-Id` (UUID v4 layout) for each call, unique in the process and across processes.
fn request_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{nanos}:{}:{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut b: [u8; 16] = Sha256::digest(seed.as_bytes())[..16]
        .try_into()
        .unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

enum Auth {
    OAuth(ClientCredentials),
    Bearer(SecretString),
}

/// A client of one PA account.
pub struct PaApi {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    organization: Option<String>,
    policy: RetryPolicy,
}

/// A change certainly not processed.
fn not_sent(detail: impl std::fmt::Display) -> PaError {
    ApiError::NotSent(format!("not processed by the PA: {detail}")).into()
}

/// A change that may have been processed.
fn unknown(detail: impl std::fmt::Display) -> PaError {
    ApiError::Unknown(format!(
        "outcome unknown (the PA may have received it): {detail}"
    ))
    .into()
}

fn auth_refused(status: u16) -> PaError {
    ApiError::Auth(if status == 403 {
        "the PA answered 403: these credentials may not act for this company (check organization_id and the rights given to facto)".to_owned()
    } else {
        "the PA refused the credentials (401): check the client id and secret or the bearer token".to_owned()
    })
    .into()
}

/// A 4xx answer as the PA explains it (`Error`: `errorCode`, `errorMessage`).
fn refusal(status: u16, body: &str) -> PaError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = v
        .get("errorCode")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let message = v
        .get("errorMessage")
        .and_then(Value::as_str)
        .map_or_else(|| body.to_owned(), str::to_owned);
    if code == ALREADY_EXISTING {
        return PaError::AlreadyExisting(message);
    }
    PaError::Refused {
        status,
        code: if code.is_empty() {
            format!("HTTP {status}")
        } else {
            code
        },
        message,
    }
}

impl PaApi {
    /// A client for an `afnor-pa` connector, with its secrets read from the environment.
    ///
    /// # Errors
    ///
    /// A secret is missing, or the HTTP client cannot be built.
    pub fn new(cfg: &PaConfig) -> Result<Self, PaError> {
        let http = http::client(cfg.timeout_secs)?;
        let auth = match cfg.auth() {
            PaAuth::Bearer(var) => {
                Auth::Bearer(secret_from_env(&var, "PA bearer token").map_err(ApiError::Config)?)
            }
            PaAuth::ClientCredentials {
                token_url,
                id_env,
                secret_env,
            } => {
                let id = secret_from_env(&id_env, "PA client id").map_err(ApiError::Config)?;
                let secret =
                    secret_from_env(&secret_env, "PA client secret").map_err(ApiError::Config)?;
                Auth::OAuth(ClientCredentials::new(
                    http.clone(),
                    ClientCredentialsSettings {
                        provider: "the PA".into(),
                        token_url,
                        client_id: id.expose_secret().to_owned(),
                        client_secret: secret,
                        scope: None,
                        margin: TOKEN_MARGIN,
                    },
                ))
            }
        };
        Ok(PaApi {
            http,
            base: cfg.api_url.trim_end_matches('/').to_owned(),
            auth,
            organization: cfg.organization_id.clone(),
            policy: http::policy(cfg.max_retry_secs),
        })
    }

    /// One request with its headers; a new `Request-Id` for each attempt, logged.
    fn request(&self, method: Method, url: &str, token: &SecretString) -> reqwest::RequestBuilder {
        self.request_accepting(method, url, token, "application/json")
    }

    /// [`Self::request`] for an answer of another type (a downloaded file).
    fn request_accepting(
        &self,
        method: Method,
        url: &str,
        token: &SecretString,
        accept: &str,
    ) -> reqwest::RequestBuilder {
        let id = request_id();
        tracing::debug!(request_id = %id, method = %method, url = %url, "Calling the PA.");
        let mut b = self
            .http
            .request(method, url)
            .bearer_auth(token.expose_secret())
            .header("Request-Id", id)
            .header("Accept", accept);
        if let Some(org) = &self.organization {
            b = b.header("Organization-Id", org);
        }
        b
    }

    /// Runs `call` with a token: a refused OAuth token is renewed once; a refused bearer token
    /// is an error at once.
    async fn with_token<T, F, Fut>(&self, mut call: F) -> Result<T, PaError>
    where
        F: FnMut(SecretString) -> Fut,
        Fut: std::future::Future<Output = Attempt<T, PaError>>,
    {
        match &self.auth {
            Auth::OAuth(cc) => cc.authorized(call).await,
            Auth::Bearer(t) => match call(t.clone()).await {
                Attempt::Done(r) => r,
                Attempt::TokenRefused(e) => Err(e),
            },
        }
    }

    /// A call that changes nothing: retried; `None` for a 404.
    pub(super) async fn read<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Option<T>, PaError> {
        self.with_token(|token| {
            let method = method.clone();
            async move {
                let sent = retry::send(self.policy, url, || {
                    let b = self.request(method.clone(), url, &token);
                    match body {
                        Some(v) => b.json(v),
                        None => b,
                    }
                })
                .await;
                Attempt::Done(match sent {
                    Ok(resp) => match resp.json().await {
                        Ok(v) => Ok(Some(v)),
                        Err(e) => Err(ApiError::protocol(url, e).into()),
                    },
                    Err(HttpFailure::Refused { status: 401, .. }) => {
                        return Attempt::TokenRefused(auth_refused(401))
                    }
                    Err(HttpFailure::Refused { status: 403, .. }) => Err(auth_refused(403)),
                    Err(HttpFailure::Refused { status: 404, .. }) => Ok(None),
                    Err(HttpFailure::Refused { status, body, .. }) => Err(refusal(status, &body)),
                    Err(e) => Err(e.into()),
                })
            }
        })
        .await
    }

    /// The URL of an API path (`/v1/...`).
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `DELETE` of a resource: retried; a 404 (already gone) is done.
    pub(super) async fn delete(&self, url: &str) -> Result<(), PaError> {
        self.with_token(|token| async move {
            let sent = retry::send(self.policy, url, || {
                self.request(Method::DELETE, url, &token)
            })
            .await;
            Attempt::Done(match sent {
                Ok(_) | Err(HttpFailure::Refused { status: 404, .. }) => Ok(()),
                Err(HttpFailure::Refused { status: 401, .. }) => {
                    return Attempt::TokenRefused(auth_refused(401))
                }
                Err(HttpFailure::Refused { status: 403, .. }) => Err(auth_refused(403)),
                Err(HttpFailure::Refused { status, body, .. }) => Err(refusal(status, &body)),
                Err(e) => Err(e.into()),
            })
        })
        .await
    }

    /// Creates one flow (`POST /v1/flows`): `flowInfo` (name, syntax, `trackingId`, `sha256`,
    /// `processingRule` when the route gives one) and the file. Sent once: see
    /// [`ApiError::Unknown`].
    ///
    /// # Errors
    ///
    /// `NotSent` (safe to send again), `Unknown` (search it first), `Refused`,
    /// `AlreadyExisting`, `Auth`.
    pub async fn create_flow(
        &self,
        file: &[u8],
        name: &str,
        syntax: &str,
        mime: &str,
        tracking_id: &str,
        processing_rule: Option<&str>,
    ) -> Result<FlowCreated, PaError> {
        let mut info = json!({
            "name": name,
            "flowSyntax": syntax,
            "flowProfile": "CIUS",
            "trackingId": tracking_id,
            "sha256": hex::encode(Sha256::digest(file)),
        });
        if let Some(rule) = processing_rule {
            info["processingRule"] = json!(rule);
        }
        let info = info.to_string();
        let url = format!("{}/v1/flows", self.base);
        let url = &url;
        let form = || -> Result<reqwest::multipart::Form, PaError> {
            let info = reqwest::multipart::Part::text(info.clone())
                .mime_str("application/json")
                .map_err(|e| ApiError::Config(format!("flowInfo part: {e}")))?;
            let file = reqwest::multipart::Part::bytes(file.to_vec())
                .file_name(name.to_owned())
                .mime_str(mime)
                .map_err(|e| ApiError::Config(format!("file part: {e}")))?;
            Ok(reqwest::multipart::Form::new()
                .part("flowInfo", info)
                .part("file", file))
        };
        form()?;
        self.with_token(|token| async move {
            let sent = retry::send_once(self.policy, url, || {
                let b = self.request(Method::POST, url, &token);
                match form() {
                    Ok(f) => b.multipart(f),
                    Err(_) => b,
                }
            })
            .await;
            Attempt::Done(match sent {
                Ok(resp) => match resp.json::<FlowCreated>().await {
                    Ok(v) => Ok(v),
                    Err(e) => Err(unknown(format!("unreadable answer: {e}"))),
                },
                Err(OnceFailure::Refused(HttpFailure::Refused { status: 401, .. })) => {
                    return Attempt::TokenRefused(auth_refused(401))
                }
                Err(OnceFailure::Refused(HttpFailure::Refused { status: 403, .. })) => {
                    Err(auth_refused(403))
                }
                // The server gave up waiting for the request: it did not take it.
                Err(OnceFailure::Refused(e @ HttpFailure::Refused { status: 408, .. })) => {
                    Err(not_sent(e))
                }
                Err(OnceFailure::Refused(HttpFailure::Refused { status, body, .. })) => {
                    Err(refusal(status, &body))
                }
                Err(OnceFailure::Refused(e) | OnceFailure::NotSent(e)) => Err(not_sent(e)),
                Err(OnceFailure::Unknown { detail, .. }) => Err(unknown(detail)),
            })
        })
        .await
    }

    /// The outgoing flows of a `trackingId` (`POST /v1/flows/search`), every page.
    ///
    /// # Errors
    ///
    /// Network, credentials or protocol failure, or the PA's refusal.
    pub async fn search(&self, tracking_id: &str) -> Result<Vec<Flow>, PaError> {
        let url = format!("{}/v1/flows/search", self.base);
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut body = json!({
                "limit": 100,
                "where": {"trackingId": tracking_id, "flowDirection": ["Out"]},
            });
            if let Some(c) = &cursor {
                body["cursor"] = json!(c);
            }
            let page: Option<SearchPage> = self.read(Method::POST, &url, Some(&body)).await?;
            let Some(page) = page else {
                return Err(ApiError::protocol(&url, "HTTP 404").into());
            };
            out.extend(page.results);
            match page.next_cursor {
                Some(c) if Some(&c) != cursor.as_ref() => cursor = Some(c),
                _ => break,
            }
        }
        // A PA that ignores a criterion must not make another document's flow ours: a flow is
        // ours only when it says so (taking another's would leave this document never sent).
        out.retain(|f| f.tracking_id.as_deref() == Some(tracking_id));
        Ok(out)
    }

    /// A flow's metadata (`GET /v1/flows/{flowId}`); `None` when the PA does not know it.
    ///
    /// # Errors
    ///
    /// Network, credentials or protocol failure.
    pub async fn flow(&self, flow_id: &str) -> Result<Option<Flow>, PaError> {
        let url = self.flow_url(flow_id, "Metadata")?;
        self.read(Method::GET, url.as_str(), None).await
    }

    /// `…/v1/flows/{flowId}?docType=…`, the id escaped as one path segment.
    fn flow_url(&self, flow_id: &str, doc_type: &str) -> Result<url::Url, PaError> {
        let mut url = url::Url::parse(&format!("{}/v1/flows/", self.base))
            .map_err(|e| ApiError::Config(format!("api_url: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| ApiError::Config("api_url cannot hold a path".into()))?
            .pop_if_empty()
            .push(flow_id);
        url.query_pairs_mut().append_pair("docType", doc_type);
        Ok(url)
    }

    /// One page of the flows matching `filter` (a `where` object) changed after
    /// `updated_after`, from `cursor`: the flows and the next page's cursor (`None` on the last).
    ///
    /// # Errors
    ///
    /// Network, credentials or protocol failure, or the PA's refusal.
    pub async fn search_changed(
        &self,
        filter: &Value,
        updated_after: Option<&str>,
        cursor: Option<&str>,
    ) -> Result<(Vec<Flow>, Option<String>), PaError> {
        let url = format!("{}/v1/flows/search", self.base);
        let mut filter = filter.clone();
        if let Some(after) = updated_after {
            filter["updatedAfter"] = json!(after);
        }
        let mut body = json!({"limit": 100, "where": filter});
        if let Some(c) = cursor {
            body["cursor"] = json!(c);
        }
        let page: Option<SearchPage> = self.read(Method::POST, &url, Some(&body)).await?;
        let page = page.ok_or_else(|| PaError::from(ApiError::protocol(&url, "HTTP 404")))?;
        // The same cursor again would loop: the last page.
        let next = page.next_cursor.filter(|n| Some(n.as_str()) != cursor);
        Ok((page.results, next))
    }

    /// A flow's file as it was deposited (`GET /v1/flows/{flowId}?docType=Original`): the CDAR
    /// of a lifecycle status, at most [`MAX_DOWNLOAD`] bytes; `None` when the PA does not know
    /// the flow.
    ///
    /// # Errors
    ///
    /// Network, credentials or protocol failure, or a file over the limit.
    pub async fn original(&self, flow_id: &str) -> Result<Option<Vec<u8>>, PaError> {
        let url = self.flow_url(flow_id, "Original")?;
        let url = url.as_str();
        self.with_token(|token| async move {
            let sent = retry::send(self.policy, url, || {
                self.request_accepting(Method::GET, url, &token, "application/xml")
            })
            .await;
            Attempt::Done(match sent {
                Ok(resp) => read_capped(resp, url).await.map(Some).map_err(Into::into),
                Err(HttpFailure::Refused { status: 401, .. }) => {
                    return Attempt::TokenRefused(auth_refused(401))
                }
                Err(HttpFailure::Refused { status: 403, .. }) => Err(auth_refused(403)),
                Err(HttpFailure::Refused { status: 404, .. }) => Ok(None),
                Err(HttpFailure::Refused { status, body, .. }) => Err(refusal(status, &body)),
                Err(e) => Err(e.into()),
            })
        })
        .await
    }
}

/// The body of a download, read chunk by chunk and refused as soon as it passes
/// [`MAX_DOWNLOAD`] bytes (a PA's answer is never held whole in memory beyond that).
async fn read_capped(mut resp: reqwest::Response, url: &str) -> Result<Vec<u8>, ApiError> {
    let too_big = |n: u64| {
        ApiError::protocol(
            url,
            format!("a file of {n} bytes or more (at most {MAX_DOWNLOAD})"),
        )
    };
    if let Some(n) = resp.content_length().filter(|n| *n > MAX_DOWNLOAD as u64) {
        return Err(too_big(n));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| ApiError::protocol(url, e))? {
        if out.len() + chunk.len() > MAX_DOWNLOAD {
            return Err(too_big((out.len() + chunk.len()) as u64));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_download_over_the_cap_is_refused_and_one_under_it_read() {
        use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::path("/big"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; MAX_DOWNLOAD + 1]))
            .mount(&server)
            .await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200).set_body_bytes(b"<cdar/>".to_vec()))
            .mount(&server)
            .await;
        let get = |p: &str| reqwest::get(format!("{}{p}", server.uri()));
        let big = get("/big").await.unwrap();
        let e = read_capped(big, "big").await.unwrap_err().to_string();
        assert!(e.contains("at most"), "{e}");
        let small = get("/small").await.unwrap();
        assert_eq!(read_capped(small, "small").await.unwrap(), b"<cdar/>");
    }

    #[test]
    fn request_ids_are_distinct_uuids() {
        let (a, b) = (request_id(), request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
    }

    #[test]
    fn refusals_read_the_error_body_and_a_duplicate_is_not_a_failure() {
        let e = refusal(
            422,
            r#"{"errorCode":"InvalidSchema","errorMessage":"BT-1 missing"}"#,
        );
        assert_eq!(
            e.to_string(),
            "the PA refused it (HTTP 422): InvalidSchema: BT-1 missing"
        );
        let e = refusal(
            409,
            r#"{"errorCode":"AlreadyExistingFlow","errorMessage":"dup"}"#,
        );
        assert!(matches!(e, PaError::AlreadyExisting(m) if m == "dup"));
        let e = refusal(400, "not json");
        assert_eq!(
            e.to_string(),
            "the PA refused it (HTTP 400): HTTP 400: not json"
        );
    }

    #[test]
    fn acknowledgement_reasons_name_code_item_and_message() {
        let ack: Ack = serde_json::from_value(json!({"status": "Error", "details": [
            {"level": "Warning", "item": "x", "reasonCode": "W", "reasonMessage": "w"},
            {"level": "Error", "item": "BT-1", "reasonCode": "InvalidSchema", "reasonMessage": "bad"}]}))
        .unwrap();
        assert_eq!(ack.reasons(), "InvalidSchema (BT-1): bad");
        assert!(!ack.only_duplicate());
        let dup: Ack = serde_json::from_value(json!({"status": "Error", "details": [
            {"level": "Error", "item": "flow", "reasonCode": "AlreadyExistingFlow", "reasonMessage": "dup"}]}))
        .unwrap();
        assert!(dup.only_duplicate());
    }
}
