//! The refresh-token flow of the targets connected with `facto connect` (Xero, Pennylane partner
//! apps): refreshed through the `oauth2` crate one at a time, a minute before expiry or when
//! forced after a 401; the rotated pair is saved to the token store before the new access token
//! is used; a refresh refused after a race reads the store once more.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, RefreshToken, TokenResponse, TokenUrl};
use secrecy::{ExposeSecret, SecretString};

use super::{Attempt, OAuthError};
use crate::retry::HttpFailure;
use crate::targets::tokens::{self, StoredTokens};

struct Pair {
    access: SecretString,
    refresh: SecretString,
    expires_at: DateTime<Utc>,
    tenant_id: Option<String>,
    tenant_name: Option<String>,
}

/// The tokens of one connection.
pub struct RefreshingToken {
    http: reqwest::Client,
    store: PathBuf,
    token_url: String,
    client_id: String,
    client_secret: Option<SecretString>,
    pair: tokio::sync::Mutex<Pair>,
}

impl RefreshingToken {
    /// The connection saved in `store` by `facto connect`.
    ///
    /// # Errors
    ///
    /// No store yet (`not_connected` is the message), or an unreadable one.
    pub fn load(
        http: reqwest::Client,
        store: PathBuf,
        token_url: &str,
        client_id: String,
        client_secret: Option<SecretString>,
        not_connected: String,
    ) -> Result<Self, OAuthError> {
        let t = tokens::load(&store)
            .map_err(OAuthError::Config)?
            .ok_or(OAuthError::Config(not_connected))?;
        Ok(RefreshingToken {
            http,
            store,
            token_url: token_url.to_owned(),
            client_id,
            client_secret,
            pair: tokio::sync::Mutex::new(Pair {
                access: SecretString::from(t.access_token),
                refresh: SecretString::from(t.refresh_token),
                expires_at: t.expires_at,
                tenant_id: t.tenant_id,
                tenant_name: t.tenant_name,
            }),
        })
    }

    /// The token store's path.
    pub fn store(&self) -> &std::path::Path {
        &self.store
    }

    /// The organisation chosen at `facto connect`, when there is one.
    pub async fn tenant(&self) -> (Option<String>, Option<String>) {
        let p = self.pair.lock().await;
        (p.tenant_id.clone(), p.tenant_name.clone())
    }

    /// A valid access token: refreshed first when it expires within a minute, or when `force`.
    ///
    /// # Errors
    ///
    /// The refresh token is refused, the server does not answer, or the store cannot be saved.
    pub async fn access(&self, force: bool) -> Result<SecretString, OAuthError> {
        let mut p = self.pair.lock().await;
        if force || Utc::now() + chrono::Duration::seconds(60) >= p.expires_at {
            self.refresh(&mut p).await?;
        }
        Ok(p.access.clone())
    }

    /// Runs `call` with a valid access token; when the token is refused, refreshes it and runs
    /// `call` once more.
    ///
    /// # Errors
    ///
    /// No token could be had, `call` failed, or the refreshed token was refused too.
    pub async fn authorized<T, E, F, Fut>(&self, mut call: F) -> Result<T, E>
    where
        F: FnMut(SecretString) -> Fut,
        Fut: std::future::Future<Output = Attempt<T, E>>,
        E: From<OAuthError>,
    {
        let mut force = false;
        loop {
            let token = self.access(force).await?;
            match call(token).await {
                Attempt::Done(r) => return r,
                Attempt::TokenRefused(e) if force => return Err(e),
                Attempt::TokenRefused(_) => force = true,
            }
        }
    }

    async fn refresh(&self, p: &mut Pair) -> Result<(), OAuthError> {
        let url = TokenUrl::new(self.token_url.clone())
            .map_err(|e| OAuthError::Config(format!("token_url: {e}")))?;
        let mut client = BasicClient::new(ClientId::new(self.client_id.clone())).set_token_uri(url);
        client = match &self.client_secret {
            Some(s) => client
                .set_client_secret(ClientSecret::new(s.expose_secret().to_owned()))
                .set_auth_type(AuthType::BasicAuth),
            None => client.set_auth_type(AuthType::RequestBody),
        };
        let result = client
            .exchange_refresh_token(&RefreshToken::new(p.refresh.expose_secret().to_owned()))
            .request_async(&self.http)
            .await;
        let resp = match result {
            Ok(r) => r,
            Err(oauth2::RequestTokenError::ServerResponse(e)) => {
                // Another process may have rotated the pair: read the store once more.
                if let Ok(Some(s)) = tokens::load(&self.store) {
                    if s.refresh_token != p.refresh.expose_secret() {
                        p.access = SecretString::from(s.access_token);
                        p.refresh = SecretString::from(s.refresh_token);
                        p.expires_at = s.expires_at;
                        return Ok(());
                    }
                }
                return Err(OAuthError::Refused(format!(
                    "the refresh token was refused ({}): connect again with `facto connect`",
                    e.error()
                )));
            }
            Err(oauth2::RequestTokenError::Request(e)) => {
                return Err(OAuthError::Http(HttpFailure::Unreachable {
                    url: self.token_url.clone(),
                    detail: e.to_string(),
                }))
            }
            Err(e) => return Err(OAuthError::Refused(format!("token refresh failed: {e}"))),
        };
        let access = resp.access_token().secret().to_owned();
        let refresh = resp.refresh_token().map_or_else(
            || p.refresh.expose_secret().to_owned(),
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
                tenant_id: p.tenant_id.clone(),
                tenant_name: p.tenant_name.clone(),
            },
        )
        .map_err(|e| {
            OAuthError::Config(format!(
                "cannot save the tokens to {}: {e}",
                self.store.display()
            ))
        })?;
        p.access = SecretString::from(access);
        p.refresh = SecretString::from(refresh);
        p.expires_at = expires_at;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    struct Rotating(Arc<AtomicU32>);

    impl Respond for Rotating {
        fn respond(&self, req: &Request) -> ResponseTemplate {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            let body = String::from_utf8_lossy(&req.body);
            // Only the current refresh token works (rotation).
            let expected = if n == 1 {
                "RT0".to_owned()
            } else {
                format!("RT{}", n - 1)
            };
            if !body.contains(&format!("refresh_token={expected}")) {
                return ResponseTemplate::new(400)
                    .set_body_json(serde_json::json!({"error": "invalid_grant"}));
            }
            ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "access_token": format!("AT{n}"), "refresh_token": format!("RT{n}"),
                "token_type": "Bearer", "expires_in": 1800}))
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_callers_share_one_refresh_and_the_rotated_pair_is_saved() {
        let server = MockServer::start().await;
        let calls = Arc::new(AtomicU32::new(0));
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(Rotating(Arc::clone(&calls)))
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("t.json");
        tokens::save(
            &store,
            &StoredTokens {
                access_token: "AT0".into(),
                refresh_token: "RT0".into(),
                expires_at: Utc::now() - chrono::Duration::seconds(1),
                tenant_id: None,
                tenant_name: None,
            },
        )
        .unwrap();
        let t = Arc::new(
            RefreshingToken::load(
                reqwest::Client::new(),
                store.clone(),
                &format!("{}/token", server.uri()),
                "id".into(),
                Some(SecretString::from("secret".to_owned())),
                "not connected".into(),
            )
            .unwrap(),
        );
        let (a, b) = tokio::join!(
            {
                let t = Arc::clone(&t);
                async move { t.access(false).await.unwrap() }
            },
            {
                let t = Arc::clone(&t);
                async move { t.access(false).await.unwrap() }
            }
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "one refresh for both callers"
        );
        assert_eq!(a.expose_secret(), "AT1");
        assert_eq!(b.expose_secret(), "AT1");
        assert_eq!(tokens::load(&store).unwrap().unwrap().refresh_token, "RT1");
        // Forced after a 401: the rotated token is the one sent.
        assert_eq!(t.access(true).await.unwrap().expose_secret(), "AT2");
        assert_eq!(tokens::load(&store).unwrap().unwrap().refresh_token, "RT2");
    }
}
