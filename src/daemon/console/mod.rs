//! The web console for accountants and admins, served by the daemon under `/console`:
//! server-rendered pages, a little vanilla JavaScript, assets embedded.
//!
//! Access: two roles, each with its token in a 0600 file of the data folder (`admin-token`,
//! `accountant-token`). Logging in with a token opens a server-side session (random id in a
//! strict cookie, expiry kept here); every change needs the session's CSRF token in the
//! `x-facto-csrf` header (a cross-site form cannot set it) and the role's permission. Every
//! change made here goes to the ledger's audit log with the role.
//!
//! The pages run the very commands of the CLI through the daemon's [`Executor`](super::Executor)
//! (`preview`, `export`, `exports ...`), so a screen cannot export anything twice either.

mod audit;
mod documents;
mod exports;
pub mod html;
pub mod i18n;
mod mappings;
mod overview;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use secrecy::ExposeSecret;

use super::api::Server;
use super::auth::ct_eq;
use crate::ledger::AuditEvent;
use html::{esc, Viewer};
use i18n::{t, Locale};

/// The session cookie (Path=/console).
const SESSION_COOKIE: &str = "facto_console";
/// The language switch's cookie.
const LANG_COOKIE: &str = "facto_lang";
/// The header every change must carry: the session's CSRF token.
pub const CSRF_HEADER: &str = "x-facto-csrf";
/// How long a session lives, whatever its use.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Most sessions at once; past that the oldest is dropped.
const MAX_SESSIONS: usize = 64;

/// The accountant's token file: created 0600 on the daemon's first start, like `admin-token`.
pub fn accountant_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("accountant-token")
}

/// Who may do what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Preview, export, download, cancel, read.
    Accountant,
}

/// What a request does, for the permission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read exports and documents.
    Read,
    /// Preview an export.
    Preview,
    /// Write an export batch.
    Export,
    /// Download a batch's bytes.
    Download,
    /// Cancel a batch.
    Cancel,
    /// Anything else (mappings, audit log, configuration).
    Admin,
}

impl Role {
    /// Its name (`admin`, `accountant`), as the audit log records it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Accountant => "accountant",
        }
    }

    /// Who acts, as the audit log records it: `console:admin`, `console:accountant`.
    pub fn who(self) -> String {
        format!("console:{}", self.as_str())
    }

    /// Whether the role may do `action`.
    pub fn allows(self, action: Action) -> bool {
        match self {
            Role::Admin => true,
            Role::Accountant => action != Action::Admin,
        }
    }
}

#[derive(Clone)]
struct Session {
    role: Role,
    csrf: String,
    expires: Instant,
}

/// The console's open sessions, kept in memory only (a restart logs everyone out).
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn open(&self, role: Role) -> String {
        let id = random();
        let mut m = self.map();
        m.retain(|_, s| s.expires > Instant::now());
        // Each role has half the room: logging in again and again with one role's token pushes
        // out that role's oldest sessions, never the other role's.
        if m.values().filter(|s| s.role == role).count() >= MAX_SESSIONS / 2 {
            if let Some(oldest) = m
                .iter()
                .filter(|(_, s)| s.role == role)
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                m.remove(&oldest);
            }
        }
        m.insert(
            id.clone(),
            Session {
                role,
                csrf: random(),
                expires: Instant::now() + SESSION_TTL,
            },
        );
        id
    }

    fn get(&self, id: &str) -> Option<Session> {
        let mut m = self.map();
        match m.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                m.remove(id);
                None
            }
            None => None,
        }
    }

    fn close(&self, id: &str) {
        self.map().remove(id);
    }
}

fn random() -> String {
    format!(
        "{}{}",
        oauth2::CsrfToken::new_random().secret(),
        oauth2::CsrfToken::new_random().secret()
    )
}

type Shared = State<Arc<Server>>;

/// The console's routes (merged by the admin API before its token check: the console checks
/// its own sessions).
pub(super) fn router() -> Router<Arc<Server>> {
    Router::new()
        .route("/console", get(overview::overview))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/lang", get(switch_lang))
        .route(
            "/console/export",
            get(exports::wizard).post(exports::export),
        )
        .route("/console/exports", get(exports::list))
        .route("/console/exports/{id}", get(exports::show))
        .route("/console/exports/{id}/download", get(exports::download))
        .route("/console/exports/{id}/cancel", post(exports::cancel))
        .route("/console/documents", get(documents::search))
        .route("/console/documents/{doc}", get(documents::show))
        .route("/console/documents/{doc}/retry", post(documents::retry))
        .route("/console/documents/{doc}/forget", post(documents::forget))
        .route("/console/documents/{doc}/run", post(documents::run_now))
        .route("/console/audit", get(audit::page))
        .route("/console/mappings", get(mappings::page))
        .route("/console/mappings/check", post(mappings::check))
        .route("/console/mappings/save", post(mappings::save))
        .route("/console/mappings/delete", post(mappings::delete))
}

/// A `303 See Other` to `path`.
fn to(path: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, path.to_owned())]).into_response()
}

fn html_response(status: StatusCode, page: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

/// A command of the CLI run by the daemon for `role`: exit code, standard output, error. Every
/// screen that acts goes through it, so the console follows the CLI's rules, and a command
/// that audits records the role as who acted (the console does not record it a second time).
async fn cli(s: &Server, role: Role, args: &[String]) -> (u8, Vec<u8>, String) {
    (s.exec)(
        args.to_vec(),
        s.config_path.clone(),
        s.ledger.clone(),
        role.who(),
        s.tenant.clone(),
    )
    .await
}

/// Runs `f` (file work: the configuration, mapping files, sources, the ledger's scans) on
/// tokio's blocking threads, so it never stalls the async workers serving the other requests.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("the task failed: {e}"))
}

/// A 200 page of the console.
fn page(a: &Access, title: &str, body: &str) -> Response {
    html_response(
        StatusCode::OK,
        html::frame(Some(&a.viewer()), a.lang, title, body),
    )
}

/// A page holding one error.
fn failure(a: &Access, status: StatusCode, title: &str, error: &str) -> Response {
    html_response(
        status,
        html::frame(
            Some(&a.viewer()),
            a.lang,
            title,
            &format!("<p class=\"error\" id=\"error\">{}</p>", esc(error)),
        ),
    )
}

/// The first value of `name` in the query string, decoded.
fn query(uri: &Uri, name: &str) -> Option<String> {
    html::pairs(uri.query()?)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The page's language: the switch's cookie, else the company's locale.
fn lang(s: &Server, headers: &HeaderMap) -> Locale {
    header_str(headers, header::COOKIE)
        .and_then(|c| html::cookie(c, LANG_COOKIE))
        .and_then(i18n::parse)
        .unwrap_or(s.cfg.company.locale)
}

/// A checked session: its role, language and CSRF token.
pub(super) struct Access {
    role: Role,
    lang: Locale,
    csrf: String,
}

impl Access {
    fn viewer(&self) -> Viewer<'_> {
        Viewer {
            role: self.role,
            lang: self.lang,
            csrf: &self.csrf,
        }
    }
}

fn session_of(s: &Server, headers: &HeaderMap) -> Option<Session> {
    let id = html::cookie(header_str(headers, header::COOKIE)?, SESSION_COOKIE)?;
    s.sessions.get(id)
}

/// The session of a request allowed to do `action`; a change (`change`) also needs the CSRF
/// header. Otherwise the answer to send (boxed: it is large): the login page, or a 403 page.
fn guard(
    s: &Server,
    headers: &HeaderMap,
    change: bool,
    action: Action,
) -> Result<Access, Box<Response>> {
    let lang = lang(s, headers);
    let Some(session) = session_of(s, headers) else {
        return Err(Box::new(if change {
            html_response(
                StatusCode::UNAUTHORIZED,
                html::frame(None, lang, t(lang, "login"), "<p>session expired</p>"),
            )
        } else {
            to("/console/login")
        }));
    };
    let access = Access {
        role: session.role,
        lang,
        csrf: session.csrf,
    };
    if change
        && !header_str(headers, CSRF_HEADER)
            .is_some_and(|v| ct_eq(v.as_bytes(), access.csrf.as_bytes()))
    {
        return Err(Box::new(html_response(
            StatusCode::FORBIDDEN,
            html::refusal(
                &access.viewer(),
                "CSRF: the x-facto-csrf header is missing or wrong",
            ),
        )));
    }
    if !access.role.allows(action) {
        return Err(Box::new(html_response(
            StatusCode::FORBIDDEN,
            html::refusal(&access.viewer(), &format!("{action:?}")),
        )));
    }
    Ok(access)
}

/// Records a change made through the console, with the role that made it.
fn audit(s: &Server, role: Role, action: &str, detail: &str) {
    let event = AuditEvent {
        at: Utc::now(),
        action: format!("console-{action}"),
        detail: detail.to_owned(),
        who: role.who(),
    };
    if let Err(e) = s.ledger.audit(event) {
        tracing::error!(error = %e, action, "Audit event not recorded.");
    }
}

/// For the admin API's check: the answer to a request made with the accountant's token or
/// console session, which the admin API refuses (403, not 401: the caller is known).
pub(super) fn accountant_refusal(s: &Server, headers: &HeaderMap) -> Option<Response> {
    let bearer = header_str(headers, header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .is_some_and(|b| ct_eq(b.as_bytes(), s.accountant.expose_secret().as_bytes()));
    let session = session_of(s, headers).is_some_and(|x| x.role == Role::Accountant);
    (bearer || session).then(|| {
        (
            StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({
                "error": "the accountant role may not use the admin API (mappings, configuration, commands): log in to /console, or ask an admin"
            })),
        )
            .into_response()
    })
}

async fn login_page(State(s): Shared, headers: HeaderMap) -> Response {
    let lang = lang(&s, &headers);
    html_response(StatusCode::OK, login_form(lang, ""))
}

fn login_form(lang: Locale, error: &str) -> String {
    html::frame(
        None,
        lang,
        t(lang, "login"),
        &format!(
            "{}<form method=\"post\" action=\"/console/login\"><label>{} <input type=\"password\" name=\"token\" autocomplete=\"off\" required></label> <button type=\"submit\">{}</button></form>",
            if error.is_empty() { String::new() } else { format!("<p class=\"error\" id=\"error\">{}</p>", esc(error)) },
            esc(t(lang, "token")),
            esc(t(lang, "login"))
        ),
    )
}

/// `POST /console/login` (a form: `token=`): the admin or the accountant token opens a session.
async fn login(State(s): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let lang = lang(&s, &headers);
    let given = html::pairs(&String::from_utf8_lossy(&body))
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    let role = if ct_eq(given.as_bytes(), s.token.as_bytes()) {
        Role::Admin
    } else if ct_eq(given.as_bytes(), s.accountant.expose_secret().as_bytes()) {
        Role::Accountant
    } else {
        return html_response(
            StatusCode::UNAUTHORIZED,
            login_form(lang, t(lang, "bad_token")),
        );
    };
    let id = s.sessions.open(role);
    audit(&s, role, "login", "logged in");
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/console/export".to_owned()),
            (
                header::SET_COOKIE,
                format!(
                    "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={}",
                    SESSION_TTL.as_secs()
                ),
            ),
        ],
    )
        .into_response()
}

async fn logout(State(s): Shared, headers: HeaderMap) -> Response {
    let a = match guard(&s, &headers, true, Action::Read) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    audit(&s, a.role, "logout", "logged out");
    if let Some(id) =
        header_str(&headers, header::COOKIE).and_then(|c| html::cookie(c, SESSION_COOKIE))
    {
        s.sessions.close(id);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/console/login".to_owned()),
            (
                header::SET_COOKIE,
                format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0"),
            ),
        ],
    )
        .into_response()
}

/// `GET /console/lang?to=en`: the language switch (a cookie; no state of the server changes).
async fn switch_lang(uri: Uri, headers: HeaderMap) -> Response {
    let code = query(&uri, "to")
        .and_then(|c| i18n::parse(&c))
        .map_or("fr", |l| match l {
            Locale::Fr => "fr",
            Locale::En => "en",
        });
    let back = header_str(&headers, header::REFERER)
        .and_then(|r| r.find("/console").map(|i| r[i..].to_owned()))
        .filter(|p| !p.starts_with("/console/lang"))
        .unwrap_or_else(|| "/console/export".to_owned());
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, back),
            (
                header::SET_COOKIE,
                format!("{LANG_COOKIE}={code}; SameSite=Strict; Path=/console; Max-Age=31536000"),
            ),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accountant_may_export_but_not_administer() {
        for a in [
            Action::Read,
            Action::Preview,
            Action::Export,
            Action::Download,
            Action::Cancel,
        ] {
            assert!(Role::Accountant.allows(a), "{a:?}");
            assert!(Role::Admin.allows(a), "{a:?}");
        }
        assert!(!Role::Accountant.allows(Action::Admin));
        assert!(Role::Admin.allows(Action::Admin));
    }

    #[test]
    fn sessions_are_random_and_closed_on_logout() {
        let s = Sessions::default();
        let a = s.open(Role::Accountant);
        let b = s.open(Role::Admin);
        assert_ne!(a, b);
        assert!(a.len() >= 40);
        assert_eq!(s.get(&a).map(|x| x.role), Some(Role::Accountant));
        assert_ne!(s.get(&a).map(|x| x.csrf), s.get(&b).map(|x| x.csrf));
        s.close(&a);
        assert!(s.get(&a).is_none());
        assert!(s.get("made-up").is_none());
    }

    #[test]
    fn one_roles_logins_never_push_out_the_other_roles_sessions() {
        let s = Sessions::default();
        let admin = s.open(Role::Admin);
        let first = s.open(Role::Accountant);
        for _ in 0..MAX_SESSIONS * 2 {
            s.open(Role::Accountant);
        }
        assert_eq!(s.get(&admin).map(|x| x.role), Some(Role::Admin));
        assert!(s.get(&first).is_none(), "the role's oldest goes first");
        assert!(s.map().len() <= MAX_SESSIONS);
    }
}
