//! The client-credentials flow (Chorus Pro's PISTE today, the approved platform next): one token
//! cached per client and renewed a margin before it expires, one request at a time; a call whose
//! token is refused (401) renews it once and is sent once more, never more.

use std::future::Future;
use std::time::{Duration, Instant};

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use secrecy::{ExposeSecret, SecretString};

use super::OAuthError;
use crate::retry::HttpFailure;

/// Lifetime assumed when the server does not say (`expires_in` absent).
const DEFAULT_LIFE: Duration = Duration::from_secs(3600);

/// What a client-credentials client is.
pub struct ClientCredentialsSettings {
    /// The authorization server's name, for messages (`PISTE`).
    pub provider: String,
    /// Token endpoint.
    pub token_url: String,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretString,
    /// Scope asked for, if any.
    pub scope: Option<String>,
    /// Renew the token this long before it expires.
    pub margin: Duration,
}

/// What one call with a token gave.
pub enum Attempt<T, E> {
    /// Done, well or not: returned as is.
    Done(Result<T, E>),
    /// The token was refused (401): renewed and sent once more; the error is returned when the
    /// renewed token is refused too.
    TokenRefused(E),
}

/// The cached token of one client.
pub struct ClientCredentials {
    http: reqwest::Client,
    settings: ClientCredentialsSettings,
    cached: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("provider", &self.settings.provider)
            .field("token_url", &self.settings.token_url)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// A client with no token yet (the first call asks for one).
    pub fn new(http: reqwest::Client, settings: ClientCredentialsSettings) -> Self {
        ClientCredentials {
            http,
            settings,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// A valid access token: the cached one, or a new one (one request at a time).
    ///
    /// # Errors
    ///
    /// The server refuses the credentials or does not answer, or the token URL is invalid.
    pub async fn access(&self) -> Result<SecretString, OAuthError> {
        let mut cached = self.cached.lock().await;
        if let Some((t, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(t.clone());
            }
        }
        let s = &self.settings;
        let url = TokenUrl::new(s.token_url.clone())
            .map_err(|e| OAuthError::Config(format!("token_url: {e}")))?;
        let client = BasicClient::new(ClientId::new(s.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                s.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(url);
        let mut request = client.exchange_client_credentials();
        if let Some(scope) = &s.scope {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let resp = request.request_async(&self.http).await.map_err(|e| match e {
            oauth2::RequestTokenError::ServerResponse(r) => OAuthError::Refused(format!(
                "{0} refused the client credentials ({1}); check the client id and secret of the {0} application for this environment",
                s.provider,
                r.error()
            )),
            oauth2::RequestTokenError::Request(e) => OAuthError::Http(HttpFailure::Unreachable {
                url: s.token_url.clone(),
                detail: e.to_string(),
            }),
            other => OAuthError::Refused(format!("{} token request failed: {other}", s.provider)),
        })?;
        let life = resp.expires_in().unwrap_or(DEFAULT_LIFE);
        let token = SecretString::from(resp.access_token().secret().to_owned());
        *cached = Some((
            token.clone(),
            Instant::now() + life.saturating_sub(s.margin),
        ));
        Ok(token)
    }

    /// Forgets the cached token: the next call asks for a new one.
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    /// Runs `call` with a valid token; when the token is refused, renews it and runs `call`
    /// once more.
    ///
    /// # Errors
    ///
    /// No token could be had, `call` failed, or the renewed token was refused too.
    pub async fn authorized<T, E, F, Fut>(&self, mut call: F) -> Result<T, E>
    where
        F: FnMut(SecretString) -> Fut,
        Fut: Future<Output = Attempt<T, E>>,
        E: From<OAuthError>,
    {
        let mut renewed = false;
        loop {
            let token = self.access().await?;
            match call(token).await {
                Attempt::Done(r) => return r,
                Attempt::TokenRefused(e) if renewed => return Err(e),
                Attempt::TokenRefused(_) => {
                    self.forget().await;
                    renewed = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_string_contains, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const SECRET: &str = "very-secret-value";

    fn client(server: &MockServer, margin: u64) -> ClientCredentials {
        ClientCredentials::new(
            reqwest::Client::new(),
            ClientCredentialsSettings {
                provider: "PISTE".into(),
                token_url: format!("{}/token", server.uri()),
                client_id: "id".into(),
                client_secret: SecretString::from(SECRET.to_owned()),
                scope: Some("openid".into()),
                margin: Duration::from_secs(margin),
            },
        )
    }

    async fn issuing(server: &MockServer, expires_in: u64, times: u64) {
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(body_string_contains("grant_type=client_credentials"))
            .and(body_string_contains(format!("client_secret={SECRET}")))
            .and(body_string_contains("scope=openid"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "access_token": "AT", "token_type": "Bearer", "expires_in": expires_in})))
            .expect(times)
            .mount(server)
            .await;
    }

    #[tokio::test]
    async fn the_token_is_cached_until_the_margin_before_expiry() {
        let server = MockServer::start().await;
        issuing(&server, 3600, 1).await;
        let c = client(&server, 240);
        for _ in 0..3 {
            assert_eq!(c.access().await.unwrap().expose_secret(), "AT");
        }
    }

    #[tokio::test]
    async fn a_token_within_the_margin_is_renewed() {
        let server = MockServer::start().await;
        // 240 s of life and a 240 s margin: already due for renewal.
        issuing(&server, 240, 2).await;
        let c = client(&server, 240);
        c.access().await.unwrap();
        c.access().await.unwrap();
    }

    #[tokio::test]
    async fn a_refused_token_is_renewed_once_and_no_more() {
        let server = MockServer::start().await;
        // Two tokens for the first call (the second one refused too), one more for the next.
        issuing(&server, 3600, 3).await;
        let c = client(&server, 240);
        let calls = std::sync::atomic::AtomicU32::new(0);
        let r: Result<(), OAuthError> = c
            .authorized(|_| async {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Attempt::TokenRefused(OAuthError::Refused("401".into()))
            })
            .await;
        assert!(matches!(r, Err(OAuthError::Refused(m)) if m == "401"));
        assert_eq!(calls.into_inner(), 2, "sent once more after one renewal");
        // Renewed once, then it works: the renewed token is kept.
        let n = std::sync::atomic::AtomicU32::new(0);
        let r: Result<u32, OAuthError> = c
            .authorized(|_| async {
                if n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
                    Attempt::TokenRefused(OAuthError::Refused("401".into()))
                } else {
                    Attempt::Done(Ok(7))
                }
            })
            .await;
        assert_eq!(r.unwrap(), 7);
    }

    #[tokio::test]
    async fn the_secret_is_never_in_an_error_or_debug() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(serde_json::json!({"error": "invalid_client"})),
            )
            .mount(&server)
            .await;
        let c = client(&server, 240);
        let e = c.access().await.unwrap_err().to_string();
        assert!(
            e.contains("PISTE refused the client credentials (invalid_client)"),
            "{e}"
        );
        assert!(!e.contains(SECRET), "{e}");
        assert!(!format!("{c:?}").contains(SECRET));
        drop(server);
        let e = client(&MockServer::start().await, 0).access().await;
        assert!(!format!("{e:?}").contains(SECRET));
    }
}
