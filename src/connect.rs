//! `facto connect TARGET`: the OAuth2 authorization-code flow with PKCE for a target that needs
//! the user's consent (Xero). It prints the consent URL, receives the redirect on 127.0.0.1,
//! exchanges the code through the `oauth2` crate, lets the user pick the organisation from the
//! connections the tokens reach, and stores everything in the target's token file (0600,
//! written atomically). Tokens are never printed.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::config::XeroConfig;
use crate::targets::tokens::{self, StoredTokens};
use crate::targets::xero::api::oauth_client;

/// Errors of the consent flow.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Configuration or usage.
    #[error("{0}")]
    Usage(String),
    /// The authorization server or the API refused or failed.
    #[error("{0}")]
    Remote(String),
}

/// One organisation the tokens reach.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Tenant {
    /// `tenantId`.
    pub id: String,
    /// `tenantName`.
    pub name: String,
}

/// What `connect` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Connected {
    /// Token file written.
    pub token_file: String,
    /// The organisation chosen.
    pub tenant: Tenant,
    /// Every organisation the tokens reach.
    pub tenants: Vec<Tenant>,
}

/// The redirect receiver's state: the `state` sent to the consent page, and where the first
/// answer goes.
struct Redirect {
    state: String,
    answer: std::sync::Mutex<Option<oneshot::Sender<Result<String, ConnectError>>>>,
}

/// Serves `/callback` on `listener` until the consent page's redirect arrives; its code, or why
/// there is none.
async fn wait_for_redirect(
    listener: tokio::net::TcpListener,
    state: &str,
) -> Result<String, ConnectError> {
    let (answer, answered) = oneshot::channel();
    let redirect = Arc::new(Redirect {
        state: state.to_owned(),
        answer: std::sync::Mutex::new(Some(answer)),
    });
    let app = Router::new()
        .route("/callback", any(callback))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(redirect);
    let (stop, stopped) = oneshot::channel::<()>();
    let serve = axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = stopped.await;
    });
    let serve = serve.into_future();
    tokio::pin!(serve);
    tokio::select! {
        r = answered => {
            let _ = stop.send(());
            // The browser gets its page before the listener closes.
            let _ = tokio::time::timeout(Duration::from_secs(5), serve).await;
            r.unwrap_or_else(|_| Err(ConnectError::Remote("redirect: the receiver stopped".into())))
        }
        r = &mut serve => Err(ConnectError::Remote(match r {
            Err(e) => format!("redirect: {e}"),
            Ok(()) => "redirect: the receiver stopped".into(),
        })),
    }
}

/// `/callback?code=...&state=...` (or `?error=...`): a page for the browser, and the outcome
/// for the flow.
async fn callback(State(r): State<Arc<Redirect>>, uri: Uri) -> Response {
    let q: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let (body, result) = match (q.get("code"), q.get("state"), q.get("error")) {
        (_, _, Some(err)) => (
            "facto: consent refused. You can close this page.",
            Err(ConnectError::Remote(format!("consent refused: {err}"))),
        ),
        (Some(code), Some(s), _) if *s == r.state => (
            "facto is connected. You can close this page.",
            Ok(code.clone()),
        ),
        _ => (
            "facto: this answer does not match the consent asked. You can close this page.",
            Err(ConnectError::Remote(
                "the redirect's state does not match: start `facto connect` again".into(),
            )),
        ),
    };
    let first = r
        .answer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(first) = first {
        let _ = first.send(result);
    }
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CONNECTION, "close"),
        ],
        body,
    )
        .into_response()
}

/// An OAuth2 application and where its consent happens.
pub struct App<'a> {
    /// Client id.
    pub client_id: String,
    /// Client secret, for confidential apps.
    pub client_secret: Option<secrecy::SecretString>,
    /// Consent URL.
    pub authorize_url: &'a str,
    /// Token URL.
    pub token_url: &'a str,
    /// Scopes, space separated.
    pub scopes: &'a str,
    /// Port of the redirect on 127.0.0.1.
    pub redirect_port: u16,
    /// Timeout of the token call, seconds.
    pub timeout_secs: u64,
}

/// Tokens granted by a consent.
pub struct Granted {
    /// Access token.
    pub access: String,
    /// Refresh token.
    pub refresh: String,
    /// Lifetime of the access token.
    pub life: Duration,
    /// The HTTP client used (for follow-up calls).
    pub http: reqwest::Client,
}

/// The authorization-code flow with PKCE: consent URL announced, redirect received on
/// 127.0.0.1, code exchanged.
///
/// # Errors
///
/// Bad URLs, a port in use, a refused consent or code, no refresh token.
pub async fn consent(app: &App<'_>, announce: impl FnOnce(&str)) -> Result<Granted, ConnectError> {
    let redirect = format!("http://127.0.0.1:{}/callback", app.redirect_port);
    let bad = |what: &str, e: &dyn std::fmt::Display| ConnectError::Usage(format!("{what}: {e}"));
    let mut client = BasicClient::new(ClientId::new(app.client_id.clone()))
        .set_auth_uri(
            AuthUrl::new(app.authorize_url.to_owned()).map_err(|e| bad("authorize_url", &e))?,
        )
        .set_token_uri(TokenUrl::new(app.token_url.to_owned()).map_err(|e| bad("token_url", &e))?)
        .set_redirect_uri(RedirectUrl::new(redirect).map_err(|e| bad("redirect", &e))?);
    client = match &app.client_secret {
        Some(s) => client
            .set_client_secret(ClientSecret::new(s.expose_secret().to_owned()))
            .set_auth_type(AuthType::BasicAuth),
        None => client.set_auth_type(AuthType::RequestBody),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge);
    for s in app.scopes.split_whitespace() {
        req = req.add_scope(Scope::new(s.to_owned()));
    }
    let (url, state) = req.url();
    // Listening before the address is shown: the browser may answer at once.
    let port = app.redirect_port;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            ConnectError::Usage(format!(
                "cannot listen on 127.0.0.1:{port} for the redirect: {e}"
            ))
        })?;
    announce(url.as_str());
    let code = tokio::time::timeout(
        Duration::from_secs(600),
        wait_for_redirect(listener, state.secret()),
    )
    .await
    .map_err(|_| {
        ConnectError::Remote("no answer from the consent page within 10 minutes".into())
    })??;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(app.timeout_secs))
        .build()
        .map_err(|e| ConnectError::Remote(e.to_string()))?;
    let tok = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .map_err(|e| match e {
            oauth2::RequestTokenError::ServerResponse(r) => {
                ConnectError::Remote(format!("the code was refused ({})", r.error()))
            }
            other => ConnectError::Remote(format!("token request failed: {other}")),
        })?;
    Ok(Granted {
        access: tok.access_token().secret().to_owned(),
        refresh: tok
            .refresh_token()
            .map(|r| r.secret().to_owned())
            .ok_or_else(|| {
                ConnectError::Remote("no refresh token was granted (offline access)".into())
            })?,
        life: tok.expires_in().unwrap_or(Duration::from_secs(1800)),
        http,
    })
}

fn save(store: &std::path::Path, g: &Granted, tenant: Option<&Tenant>) -> Result<(), ConnectError> {
    tokens::save(
        store,
        &StoredTokens {
            access_token: g.access.clone(),
            refresh_token: g.refresh.clone(),
            expires_at: chrono::Utc::now() + chrono::Duration::seconds(g.life.as_secs() as i64),
            tenant_id: tenant.map(|t| t.id.clone()),
            tenant_name: tenant.map(|t| t.name.clone()),
        },
    )
    .map_err(|e| ConnectError::Remote(format!("cannot write {}: {e}", store.display())))
}

/// Runs the consent flow for a Xero connector; `announce` receives the consent URL.
///
/// # Errors
///
/// Missing secrets, a refused consent or code, no organisation, or an ambiguous one without
/// `tenant`.
pub async fn connect_xero(
    name: &str,
    cfg: &XeroConfig,
    store: &std::path::Path,
    tenant: Option<&str>,
    announce: impl FnOnce(&str),
) -> Result<Connected, ConnectError> {
    let (client_id, client_secret) =
        oauth_client(cfg).map_err(|e| ConnectError::Usage(e.to_string()))?;
    let app = App {
        client_id,
        client_secret,
        authorize_url: &cfg.authorize_url,
        token_url: &cfg.token_url,
        scopes: &cfg.scopes,
        redirect_port: cfg.redirect_port,
        timeout_secs: cfg.timeout_secs,
    };
    let g = consent(&app, announce).await?;
    let conns: Value = g
        .http
        .get(&cfg.connections_url)
        .bearer_auth(&g.access)
        .send()
        .await
        .map_err(|e| ConnectError::Remote(format!("connections: {}", e.without_url())))?
        .json()
        .await
        .map_err(|e| ConnectError::Remote(format!("connections: {e}")))?;
    let tenants: Vec<Tenant> = conns
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| {
                    Some(Tenant {
                        id: c.get("tenantId")?.as_str()?.to_owned(),
                        name: c
                            .get("tenantName")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let chosen = match (tenant, tenants.as_slice()) {
        (_, []) => {
            return Err(ConnectError::Remote(
                "the tokens reach no Xero organisation".into(),
            ))
        }
        (Some(t), list) => list
            .iter()
            .find(|x| x.id == t || x.name == t)
            .cloned()
            .ok_or_else(|| {
                ConnectError::Usage(format!("no organisation `{t}` among: {}", names(list)))
            })?,
        (None, [one]) => one.clone(),
        (None, list) => {
            return Err(ConnectError::Usage(format!(
                "several organisations: run `facto connect {name} --tenant ID` with one of: {}",
                names(list)
            )))
        }
    };
    save(store, &g, Some(&chosen))?;
    Ok(Connected {
        token_file: store.display().to_string(),
        tenant: chosen,
        tenants,
    })
}

/// Runs the consent flow for a Pennylane connector with an OAuth2 client (partner apps).
///
/// # Errors
///
/// Missing secrets, or a refused consent or code.
pub async fn connect_pennylane(
    cfg: &crate::config::PennylaneConfig,
    store: &std::path::Path,
    announce: impl FnOnce(&str),
) -> Result<Connected, ConnectError> {
    let env =
        |v: &str, what: &str| crate::targets::secret_from_env(v, what).map_err(ConnectError::Usage);
    let Some(id_var) = &cfg.client_id_env else {
        return Err(ConnectError::Usage(
            "this Pennylane connector uses a company API token (token_env): nothing to connect"
                .into(),
        ));
    };
    let client_secret = match &cfg.client_secret_env {
        Some(v) => Some(env(v, "Pennylane OAuth2 client secret")?),
        None => None,
    };
    let app = App {
        client_id: env(id_var, "Pennylane OAuth2 client id")?
            .expose_secret()
            .to_owned(),
        client_secret,
        authorize_url: &cfg.authorize_url,
        token_url: &cfg.token_url,
        scopes: &cfg.scopes,
        redirect_port: cfg.redirect_port,
        timeout_secs: cfg.timeout_secs,
    };
    let g = consent(&app, announce).await?;
    let company = Tenant {
        id: "company".into(),
        name: "the company that gave its consent".into(),
    };
    save(store, &g, None)?;
    Ok(Connected {
        token_file: store.display().to_string(),
        tenant: company.clone(),
        tenants: vec![company],
    })
}

fn names(list: &[Tenant]) -> String {
    list.iter()
        .map(|t| format!("{} ({})", t.id, t.name))
        .collect::<Vec<_>>()
        .join(", ")
}
