//! The admin API's routes on axum: `/health`, the proof of `/api/hello` and the PA webhooks
//! (signed events) open to all, every other path (unknown ones included) behind the admin
//! token, a signed request or the editor's cookie ([`authorize`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use super::{auth, editor, http, Executor, Stats};
use crate::config::Config;

/// What the handlers share.
pub(super) struct Server {
    pub(super) cfg: Arc<Config>,
    pub(super) config_path: PathBuf,
    pub(super) data_dir: PathBuf,
    pub(super) ledger: crate::ledger::SharedLedger,
    pub(super) token: String,
    /// The accountant's token (`accountant-token`), for the console.
    pub(super) accountant: secrecy::SecretString,
    /// The console's sessions.
    pub(super) sessions: super::console::Sessions,
    /// The address announced in `daemon.json` (bound into the proof of `/api/hello`).
    pub(super) addr: String,
    /// Challenges handed out by `/api/hello`, for requests signed by the CLI.
    pub(super) challenges: auth::Challenges,
    pub(super) stats: Arc<Mutex<Stats>>,
    pub(super) exec: Executor,
    /// The PA webhooks (their endpoint is open: events are signed).
    pub(super) webhooks: Arc<super::pa_webhook::Webhooks>,
    /// The tenant this server answers for (`default` for a single company).
    pub(super) tenant: String,
    /// The ingestion token (`ingest-token`), for the invoicing application's pushes.
    pub(super) ingest: secrecy::SecretString,
    /// Per job: what starts its next pass at once.
    pub(super) wakers: BTreeMap<String, Arc<tokio::sync::Notify>>,
}

type Shared = State<Arc<Server>>;

impl Server {
    /// Starts job `job`'s next pass now (after the one running, if any).
    pub(super) fn wake(&self, job: &str) {
        if let Some(w) = self.wakers.get(job) {
            w.notify_one();
        }
    }

    /// The configuration as it is on disk now (mappings edited since the start included).
    pub(super) fn fresh(&self) -> Result<Config, String> {
        Config::load(&self.config_path, Some(&self.data_dir)).map_err(|e| e.to_string())
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The admin API; `request` bounds the reading of a body and every answer but a forwarded
/// command's (which runs as long as a pass may).
pub(super) fn router(server: Arc<Server>, request: Duration) -> Router {
    let bounded = Router::new()
        .route("/metrics", get(metrics).fallback(not_found))
        .route("/editor", get(editor_page).fallback(not_found))
        .route(
            "/api/mapping/preview",
            post(mapping_preview).fallback(not_found),
        )
        .route("/api/mapping/save", post(mapping_save).fallback(not_found))
        .fallback(not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request,
        ));
    let guarded = Router::new()
        .route("/api/cli", post(cli).fallback(not_found))
        .route(
            "/api/v1/received/status",
            post(received_status).fallback(not_found),
        )
        .merge(bounded)
        .layer(from_fn_with_state(Arc::clone(&server), authorize));
    Router::new()
        .route("/health", any(health))
        .route(auth::HELLO_PATH, any(hello))
        .route(
            "/api/v1/tenants/{tenant}/documents",
            post(super::ingest::tenant_documents).fallback(not_found),
        )
        .route(
            "/api/v1/documents",
            post(super::ingest::documents).fallback(not_found),
        )
        .route(
            "/api/v1/pa/{target}/webhook",
            post(super::pa_webhook::receive)
                .fallback(not_found)
                .layer(DefaultBodyLimit::max(super::pa_webhook::MAX_BODY)),
        )
        .merge(super::console::router())
        .merge(guarded)
        .with_state(server)
        .layer(DefaultBodyLimit::max(http::MAX_REQUEST))
        .layer(from_fn(http::arrived))
        .layer(RequestBodyTimeoutLayer::new(request))
        .layer(from_fn(http::close_and_no_store))
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.into(),
        }),
    )
        .into_response()
}

/// A refusal or a failure.
#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

/// The value of `name` in the query string (`?name=value`), as written.
pub(super) fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| {
        kv.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

/// `/health`: keys in alphabetical order, as they have always been.
#[derive(Serialize)]
struct Health {
    last_success: BTreeMap<String, String>,
    status: &'static str,
}

async fn health(State(s): Shared) -> Json<Health> {
    let last = s
        .stats()
        .last_success
        .iter()
        .map(|(j, t)| (j.clone(), t.to_rfc3339()))
        .collect();
    Json(Health {
        last_success: last,
        status: "ok",
    })
}

/// The answer to the CLI's question before it sends the token.
#[derive(Serialize)]
struct Hello {
    challenge: String,
    pid: u32,
    proof: String,
}

async fn hello(State(s): Shared, req: Request) -> Response {
    let nonce = query_param(&req, "nonce").unwrap_or_default();
    if nonce.len() < 16 {
        return error(StatusCode::BAD_REQUEST, "a nonce is required");
    }
    Json(Hello {
        pid: std::process::id(),
        proof: auth::proof(&s.token, nonce, &s.addr),
        challenge: s.challenges.issue(),
    })
    .into_response()
}

/// Middleware: the admin token as a bearer, a request signed with a challenge of `/api/hello`,
/// or the editor's cookie (changes also need its own header). The editor page is opened once
/// with `?token=`, which sets a strict cookie.
async fn authorize(State(s): Shared, req: Request, next: Next) -> Response {
    let is_token = |given: &str| auth::ct_eq(given.as_bytes(), s.token.as_bytes());
    if req.uri().path() == "/editor" && query_param(&req, "token").is_some_and(is_token) {
        return (
            StatusCode::SEE_OTHER,
            [
                (header::CONTENT_TYPE, "text/plain".to_owned()),
                (header::LOCATION, "/editor".to_owned()),
                (
                    header::SET_COOKIE,
                    format!("facto_admin={}; HttpOnly; SameSite=Strict; Path=/", s.token),
                ),
            ],
        )
            .into_response();
    }
    let (parts, body) = req.into_parts();
    // The body is already read (see `http::arrived`).
    let Ok(body) = axum::body::to_bytes(body, http::MAX_REQUEST).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let headers = &parts.headers;
    let value = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = value(header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let cookie = value(header::COOKIE).is_some_and(|c| {
        c.split(';')
            .any(|kv| kv.trim().strip_prefix("facto_admin=").is_some_and(is_token))
    });
    let browser_ok = cookie && (parts.method == Method::GET || editor_header(headers));
    let signed = value(header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix(auth::HMAC_SCHEME))
        .and_then(|v| v.strip_prefix(' '))
        .is_some_and(|v| {
            s.challenges
                .check(v, &s.token, parts.method.as_str(), parts.uri.path(), &body)
        });
    if !bearer.is_some_and(is_token) && !browser_ok && !signed {
        if let Some(refused) = super::console::accountant_refusal(&s, headers) {
            return refused;
        }
        return error(
            StatusCode::UNAUTHORIZED,
            "the admin token is required (Authorization: Bearer <data_dir/admin-token>, or a request signed with a fresh challenge of /api/hello)",
        );
    }
    // Who acts, as verified here (never from a header the check did not prove): a signed
    // request is the CLI's, a bearer a program's, the cookie the mapping editor's.
    let who = if signed {
        super::WHO_CLI
    } else if bearer.is_some_and(is_token) {
        super::WHO_API
    } else {
        editor::WHO_EDITOR
    };
    let mut parts = parts;
    parts.extensions.insert(Verified(who));
    next.run(Request::from_parts(parts, axum::body::Body::from(body)))
        .await
}

/// Who the authorization check proved a request comes from (an audit `who`).
#[derive(Clone, Copy)]
struct Verified(&'static str);

fn editor_header(headers: &HeaderMap) -> bool {
    headers.get("x-facto-editor").map(|v| v.as_bytes()) == Some(b"1")
}

/// The Prometheus text of this server's tenant.
pub(super) fn metrics_text(s: &Server) -> String {
    super::metrics(&s.cfg, &*s.ledger, &s.stats())
}

async fn metrics(State(s): Shared) -> Response {
    let text = metrics_text(&s);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn editor_page(State(s): Shared) -> Response {
    match s.fresh() {
        Ok(cfg) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            editor::page(&cfg, &*s.ledger),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            e,
        )
            .into_response(),
    }
}

/// The edit of a mapping request and the configuration it applies to.
fn edit_of(s: &Server, body: &[u8]) -> Result<(editor::Edit, Config), (StatusCode, String)> {
    let edit: editor::Edit = serde_json::from_slice(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad edit: {e}")))?;
    let cfg = s
        .fresh()
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok((edit, cfg))
}

async fn mapping_preview(State(s): Shared, body: Bytes) -> Response {
    match edit_of(&s, &body) {
        Ok((edit, cfg)) => Json(editor::preview(&cfg, &*s.ledger, &edit)).into_response(),
        Err((status, e)) => error(status, e),
    }
}

async fn mapping_save(
    State(s): Shared,
    verified: Option<axum::Extension<Verified>>,
    body: Bytes,
) -> Response {
    let who = verified.map_or(editor::WHO_EDITOR, |v| v.0 .0);
    // File work under the mapping files' lock: off the async threads.
    let server = Arc::clone(&s);
    let done = tokio::task::spawn_blocking(move || {
        edit_of(&server, &body)
            .map(|(edit, cfg)| editor::save_as(&cfg, &*server.ledger, &edit, who))
    })
    .await
    .unwrap_or_else(|e| Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())));
    match done {
        Ok(saved) => match saved {
            Ok(v) => Json(v).into_response(),
            Err(e @ editor::SaveError::Stale(_)) => error(StatusCode::CONFLICT, e.to_string()),
            Err(e) => Json(json!({ "error": e.to_string() })).into_response(),
        },
        Err((status, e)) => error(status, e),
    }
}

/// A command forwarded by the CLI.
#[derive(Deserialize)]
struct CliRequest {
    #[serde(default)]
    args: Vec<Value>,
}

/// What the forwarded command did: keys in alphabetical order, as they have always been.
#[derive(Serialize)]
struct CliAnswer {
    error: String,
    exit_code: u8,
    /// Standard output, base64.
    stdout: String,
}

async fn cli(
    State(s): Shared,
    verified: Option<axum::Extension<Verified>>,
    body: Bytes,
) -> Response {
    let Ok(req) = serde_json::from_slice::<CliRequest>(&body) else {
        return error(StatusCode::BAD_REQUEST, "expected {\"args\": [...]}");
    };
    let args: Vec<String> = req
        .args
        .iter()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect();
    // The executor parses the arguments as the CLI does and refuses, by command, what does not
    // go through the daemon (`run`, `connect`). Who acts is what the authorization proved.
    let who = verified.map_or(super::WHO_API, |v| v.0 .0);
    let (exit_code, out, error) = (s.exec)(
        args,
        s.config_path.clone(),
        s.ledger.clone(),
        who.to_owned(),
        s.tenant.clone(),
    )
    .await;
    use base64::Engine as _;
    Json(CliAnswer {
        error,
        exit_code,
        stdout: base64::engine::general_purpose::STANDARD.encode(out),
    })
    .into_response()
}

/// A buyer status about a received invoice ([`crate::received::respond`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRequest {
    /// The received invoice: its document id or number.
    doc: String,
    /// `204`, `205`, `207`, `210` (or `taken-over`, `approved`, `disputed`, `refused`).
    status: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    job: Option<String>,
}

/// `POST /api/v1/received/status`: sends the company's status about a supplier invoice
/// received through a PA, once (asked again, answers with the flow already sent: 200,
/// `"already": true`); audited under the caller that the authorization proved.
async fn received_status(
    State(s): Shared,
    verified: Option<axum::Extension<Verified>>,
    body: Bytes,
) -> Response {
    use crate::received::RespondError;
    use crate::targets::pa::respond::{BuyerStatus, Response as Answer};
    let req = match serde_json::from_slice::<StatusRequest>(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"doc\", \"status\", \"reason\"?, \"text\"?, \"action\"?, \"job\"?}}: {e}"),
            )
        }
    };
    let Some(status) = BuyerStatus::parse(&req.status) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "`{}` is not a status the buyer sends: 204, 205, 207 or 210",
                req.status
            ),
        );
    };
    let cfg = match s.fresh() {
        Ok(c) => c,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let who = verified.map_or(super::WHO_API, |v| v.0 .0);
    let answer = Answer {
        status,
        reason: req.reason,
        text: req.text,
        action: req.action,
    };
    // The request waits on the ledger (a database call may take seconds) and on the PA: on a
    // thread of its own, as a forwarded command, so the runtime's workers keep serving.
    let done = tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(crate::received::respond(
            &cfg,
            &*s.ledger,
            req.job.as_deref(),
            &req.doc,
            answer,
            who,
        ))
    });
    match done {
        Ok(done) => Json(done).into_response(),
        Err(e @ RespondError::Usage(_)) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e @ RespondError::Refused(_)) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(e @ RespondError::Remote(_)) => error(StatusCode::BAD_GATEWAY, e.to_string()),
        Err(e @ RespondError::Ledger(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
