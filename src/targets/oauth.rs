//! OAuth2 access tokens for the API targets, in one place and through the `oauth2` crate: the
//! refresh-token flow of the targets connected with `facto connect` ([`RefreshingToken`]: Xero,
//! Pennylane partner apps) and the client-credentials flow of the platforms that give a client id
//! and secret ([`ClientCredentials`]: Chorus Pro's PISTE today, the approved platform next).
//! Both run a call through `authorized`: a token refused (401) is renewed once, and the call
//! sent once more, never more ([`Attempt`]).
//! Secrets stay in `secrecy` types and never reach an error message, a log or `Debug`.

mod client_credentials;
mod refresh;

pub use client_credentials::{Attempt, ClientCredentials, ClientCredentialsSettings};
pub use refresh::RefreshingToken;

use crate::retry::HttpFailure;

/// Why a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// Not connected, a bad token URL, or the store cannot be written.
    #[error("{0}")]
    Config(String),
    /// The authorization server refused the refresh token or the client credentials.
    #[error("{0}")]
    Refused(String),
    /// The authorization server did not answer.
    #[error(transparent)]
    Http(#[from] HttpFailure),
}
