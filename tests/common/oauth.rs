//! One fake OAuth2 authorization server for every simulator: the token endpoint of the flows
//! facto uses (client credentials for PISTE; authorization code with PKCE, then refresh tokens
//! rotated on every use, for Xero and Pennylane) and the check of the bearer tokens it issued.
//! A simulator keeps one in its state and hands it its token requests.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::Digest as _;
use wiremock::{Request, ResponseTemplate};

/// The authorization code the consent page gives (`give_consent` answers with it).
pub const CODE: &str = "THE-CODE";

/// Which flow the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// `client_credentials`, the client id and secret in the form (PISTE).
    ClientCredentials,
    /// `authorization_code` with PKCE, then `refresh_token`; the client authenticated with
    /// HTTP Basic (Xero, Pennylane).
    AuthorizationCode,
}

/// The state of a fake authorization server.
pub struct FakeOAuth {
    flow: Flow,
    client_id: &'static str,
    client_secret: &'static str,
    access_prefix: &'static str,
    refresh_prefix: &'static str,
    /// A refresh revokes every token issued before (else only the refresh token used).
    revoke_previous: bool,
    /// `expires_in` of the tokens issued, in seconds.
    pub expires_in: u64,
    /// An access token stops working after this many calls (0: never), as if it had expired.
    pub max_uses: u32,
    /// The PKCE challenge of the consent page (the test giving the consent sets it).
    pub challenge: Option<String>,
    /// Requests to the token endpoint, refused ones included.
    pub requests: u32,
    /// Refresh grants honoured.
    pub refreshes: u32,
    issued: u32,
    access: HashMap<String, (Instant, u32)>,
    refresh: Vec<String>,
}

/// A server that knows no client yet: each simulator sets its own.
impl Default for FakeOAuth {
    fn default() -> Self {
        Self::new(Flow::AuthorizationCode, "", "")
    }
}

impl FakeOAuth {
    fn new(flow: Flow, client_id: &'static str, client_secret: &'static str) -> Self {
        FakeOAuth {
            flow,
            client_id,
            client_secret,
            access_prefix: "AT",
            refresh_prefix: "RT",
            revoke_previous: false,
            expires_in: 3600,
            max_uses: 0,
            challenge: None,
            requests: 0,
            refreshes: 0,
            issued: 0,
            access: HashMap::new(),
            refresh: Vec::new(),
        }
    }

    /// A client-credentials server (PISTE): tokens `T1`, `T2`, ...
    pub fn client_credentials(client_id: &'static str, client_secret: &'static str) -> Self {
        FakeOAuth {
            access_prefix: "T",
            ..Self::new(Flow::ClientCredentials, client_id, client_secret)
        }
    }

    /// An authorization-code server whose refresh tokens work once (Xero): tokens `AT1`/`RT1`...
    pub fn authorization_code(client_id: &'static str, client_secret: &'static str) -> Self {
        Self::new(Flow::AuthorizationCode, client_id, client_secret)
    }

    /// Names the tokens `{access}1`, `{refresh}1`, ...
    pub fn prefixed(self, access: &'static str, refresh: &'static str) -> Self {
        FakeOAuth {
            access_prefix: access,
            refresh_prefix: refresh,
            ..self
        }
    }

    /// Tokens that expire after `secs` seconds.
    pub fn expiring_in(self, secs: u64) -> Self {
        FakeOAuth {
            expires_in: secs,
            ..self
        }
    }

    /// Every issue revokes both tokens issued before (Pennylane).
    pub fn revoking_previous(self) -> Self {
        FakeOAuth {
            revoke_previous: true,
            ..self
        }
    }

    /// The refresh tokens that still work, oldest first.
    pub fn refresh_tokens(&self) -> &[String] {
        &self.refresh
    }

    /// Every access token stops working (as when they expire).
    pub fn expire_access(&mut self) {
        self.access.clear();
    }

    fn issue(&mut self) -> Value {
        self.issued += 1;
        let access = format!("{}{}", self.access_prefix, self.issued);
        if self.revoke_previous {
            self.access.clear();
            self.refresh.clear();
        }
        let until = Instant::now() + Duration::from_secs(self.expires_in);
        self.access.insert(access.clone(), (until, 0));
        let mut v =
            json!({"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in});
        match self.flow {
            Flow::ClientCredentials => v["scope"] = json!("openid"),
            Flow::AuthorizationCode => {
                let refresh = format!("{}{}", self.refresh_prefix, self.issued);
                self.refresh.push(refresh.clone());
                v["refresh_token"] = json!(refresh);
            }
        }
        v
    }

    fn refused(status: u16, error: &str) -> ResponseTemplate {
        ResponseTemplate::new(status).set_body_json(json!({ "error": error }))
    }

    /// Answers a request to the token endpoint.
    pub fn token(&mut self, req: &Request) -> ResponseTemplate {
        self.requests += 1;
        let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        let field = |k: &str| form.get(k).map(String::as_str);
        let client = match self.flow {
            Flow::ClientCredentials => field("client_id")
                .zip(field("client_secret"))
                .map(|(i, s)| format!("{i}:{s}")),
            Flow::AuthorizationCode => req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        };
        if client.as_deref() != Some(&format!("{}:{}", self.client_id, self.client_secret)) {
            return Self::refused(401, "invalid_client");
        }
        match (self.flow, field("grant_type")) {
            (Flow::ClientCredentials, Some("client_credentials")) => {}
            (Flow::AuthorizationCode, Some("authorization_code")) => {
                let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha2::Sha256::digest(field("code_verifier").unwrap_or("")));
                if field("code") != Some(CODE) || self.challenge.as_deref() != Some(&digest) {
                    return Self::refused(400, "invalid_grant");
                }
            }
            (Flow::AuthorizationCode, Some("refresh_token")) => {
                // Rotation: a refresh token works once.
                let rt = field("refresh_token").unwrap_or("");
                let Some(i) = self.refresh.iter().position(|r| r == rt) else {
                    return Self::refused(400, "invalid_grant");
                };
                self.refresh.remove(i);
                self.refreshes += 1;
            }
            _ => return Self::refused(400, "unsupported_grant_type"),
        }
        ResponseTemplate::new(200).set_body_json(self.issue())
    }

    /// Whether the request carries a bearer token this server issued, still valid (a call
    /// counts as one use of it).
    pub fn authorised(&mut self, req: &Request) -> bool {
        let max = self.max_uses;
        req.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|t| self.access.get_mut(t))
            .is_some_and(|(until, uses)| {
                *uses += 1;
                Instant::now() < *until && (max == 0 || *uses <= max)
            })
    }
}
