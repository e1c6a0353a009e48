//! What the API targets share of their HTTP clients: the failures every remote API can give
//! ([`ApiError`], which each target's error wraps beside what is its own) and the client they
//! build. The words of a target's messages stay its own: its client writes them.

use std::time::Duration;

use crate::retry::{HttpFailure, RetryPolicy};
use crate::targets::oauth::OAuthError;

/// A failed call to a remote API, as every API target can have one.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A secret is missing, the target is not connected, or the HTTP client cannot be built.
    #[error("{0}")]
    Config(String),
    /// The credentials or tokens were refused; the message says what to do.
    #[error("{0}")]
    Auth(String),
    /// A call that changes nothing failed: no answer, or refused with its status and body.
    #[error(transparent)]
    Http(#[from] HttpFailure),
    /// A change certainly not processed: safe to send again (the target's message).
    #[error("{0}")]
    NotSent(String),
    /// A change that may have been processed: look it up before any new attempt (the target's
    /// message).
    #[error("{0}")]
    Unknown(String),
    /// An answer that is not what the API documents.
    #[error("unexpected answer from {path}: {detail}")]
    Protocol {
        /// Endpoint.
        path: String,
        /// What is wrong.
        detail: String,
    },
}

impl ApiError {
    /// Why no token could be had; a refusal is prefixed with `remote` (`Xero: ...`) when given.
    pub fn from_oauth(e: OAuthError, remote: Option<&str>) -> Self {
        match e {
            OAuthError::Config(m) => ApiError::Config(m),
            OAuthError::Refused(m) => ApiError::Auth(match remote {
                Some(r) => format!("{r}: {m}"),
                None => m,
            }),
            OAuthError::Http(h) => ApiError::Http(h),
        }
    }

    /// The answer of `path` cannot be read as documented.
    pub fn protocol(path: &str, detail: impl std::fmt::Display) -> Self {
        ApiError::Protocol {
            path: path.to_owned(),
            detail: detail.to_string(),
        }
    }
}

/// The HTTP client of an API target: a timeout per request, no redirect followed.
///
/// # Errors
///
/// [`ApiError::Config`] when the client cannot be built.
pub fn client(timeout_secs: u64) -> Result<reqwest::Client, ApiError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_secs))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ApiError::Config(format!("HTTP client: {e}")))
}

/// The retry policy of an API target: the default, within `max_retry_secs` in all.
pub fn policy(max_retry_secs: u64) -> RetryPolicy {
    RetryPolicy {
        max_elapsed: Duration::from_secs(max_retry_secs),
        max_retry_after: Duration::from_secs(max_retry_secs),
        ..RetryPolicy::default()
    }
}

/// A target's own error, which wraps [`ApiError`] beside what is its own: what the driver and
/// the run need to classify a failed call.
pub trait CallError: std::fmt::Display {
    /// The part every API can give, when it is that.
    fn api(&self) -> Option<&ApiError>;
}

/// Default timeout of one API call, seconds (`timeout_secs` of every API target).
pub(crate) fn default_timeout_secs() -> u64 {
    30
}

/// Default longest time spent retrying one call, seconds (`max_retry_secs`).
pub(crate) fn default_max_retry_secs() -> u64 {
    120
}

/// Default time a claimed record whose outcome is unknown waits for the platform to list it
/// before it is sent again, minutes (`lookup_grace_minutes`).
pub(crate) fn default_lookup_grace_minutes() -> u64 {
    60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_token_names_its_remote_and_the_rest_passes_through() {
        let e = ApiError::from_oauth(
            OAuthError::Refused("the refresh token was refused".into()),
            Some("Xero"),
        );
        assert!(matches!(&e, ApiError::Auth(m) if m == "Xero: the refresh token was refused"));
        let e = ApiError::from_oauth(OAuthError::Refused("PISTE refused".into()), None);
        assert_eq!(e.to_string(), "PISTE refused");
        let e = ApiError::from_oauth(OAuthError::Config("not connected".into()), Some("Xero"));
        assert!(matches!(&e, ApiError::Config(m) if m == "not connected"));
        assert_eq!(
            ApiError::protocol("/x", "no id").to_string(),
            "unexpected answer from /x: no id"
        );
    }
}
