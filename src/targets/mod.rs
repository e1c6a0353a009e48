//! Targets: where mapped documents go. A sync drives every target through one object,
//! [`TargetRun`]: API targets through the one delivery driver ([`driver::Driven`]), which owns
//! the exactly-once protocol (claim and flush → send → classify → record; a claimed record
//! looked up before anything is sent again), so that an API target implements only what is its
//! own ([`Target`]: check, lots, send, lookup, poll); journal files keep their batch protocol
//! (open marker, claims, bytes, commit, publish) behind the same object.
//!
//! Adding a target (`pa/`, the French approved platform, is the latest) is:
//!
//! 1. one new folder here, `targets/<kind>/`: `mod.rs` with its run implementing [`Target`],
//!    `api.rs` with its client (errors wrap [`http::ApiError`], tokens from [`oauth`]), and
//!    `config.rs` with its connector settings, their validation and the per-code mapping keys
//!    it reads;
//! 2. one arm where kinds are registered: the connector's `kind` in `config::connector` (parse
//!    and validate) and in `sync::targets::build_targets` (build), and its mapping keys in
//!    `config::MAPPING_KEYS`;
//! 3. the route it takes (`route.rs`, and its `format::Layout` if it sends e-invoices);
//! 4. its tests: unit tests beside it, an integration test against a local simulator or Prism
//!    serving the vendor's OpenAPI file.

pub mod chorus;
pub mod driver;
pub mod http;
pub mod journal_file;
pub(crate) mod named_lock;
pub mod oauth;
pub mod pa;
pub mod pennylane;
pub mod tokens;
pub mod xero;

pub use named_lock::one_at_a_time;

pub use driver::{Driven, Target, TargetRun};

use crate::ledger::LedgerError;

/// Errors of a target.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The ledger failed: nothing more is delivered in this run.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A remote API failed (unreachable, credentials refused): nothing more is sent to it in
    /// this run.
    #[error("{target}: {detail}")]
    Remote {
        /// Target connector.
        target: String,
        /// What happened (never a secret).
        detail: String,
    },
    /// The target's configuration cannot work (a secret missing from the environment).
    #[error("{0}")]
    Config(String),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// File or folder.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// Why a target stops after a failed call: its configuration cannot work (a secret missing),
/// or the remote API failed (unreachable, credentials refused). Never a secret.
pub fn remote<E: http::CallError>(target: &str, e: &E) -> TargetError {
    match e.api() {
        Some(http::ApiError::Config(m)) => TargetError::Config(m.clone()),
        _ => TargetError::Remote {
            target: target.to_owned(),
            detail: e.to_string(),
        },
    }
}

/// A target's API client, built only when the run calls it: a dry run reads no secret.
///
/// # Errors
///
/// The client cannot be built (a secret missing, the target not connected).
pub fn client<A, E: http::CallError>(
    target: &str,
    dry_run: bool,
    build: impl FnOnce() -> Result<A, E>,
) -> Result<Option<A>, TargetError> {
    if dry_run {
        return Ok(None);
    }
    build().map(Some).map_err(|e| remote(target, &e))
}

/// What the report says of a claimed record the platform does not list yet.
pub const WAITING: &str = "waiting for the platform to confirm";

const MAX_GRACE_MINUTES: i64 = 10 * 366 * 24 * 60;

/// Whether a claimed record whose outcome is unknown is still within `grace_minutes` of its
/// claim: a late answer may still land, so it is neither released nor sent again yet.
pub fn in_lookup_grace(
    r: &crate::ledger::Record,
    grace_minutes: u64,
    now: chrono::DateTime<chrono::Utc>,
) -> bool {
    let claimed_at = r
        .history
        .iter()
        .rev()
        .find(|e| e.state == crate::ledger::State::Claimed)
        .map_or(r.updated_at, |e| e.at);
    // Past ten years means "never release"; clamped so that no setting can panic.
    let minutes =
        i64::try_from(grace_minutes).map_or(MAX_GRACE_MINUTES, |m| m.min(MAX_GRACE_MINUTES));
    now - claimed_at < chrono::Duration::minutes(minutes)
}

/// A decimal written as a JSON number with its exact digits (`1358.25`, never through a float),
/// for the APIs that take numbers rather than strings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub rust_decimal::Decimal);

impl serde::Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(self.0.normalize().to_string())
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// A JSON value holding a decimal as an exact number.
pub fn num(d: rust_decimal::Decimal) -> serde_json::Value {
    // Parsing the decimal's own digits keeps them exact (serde_json keeps up to 17 significant
    // digits of a plain number; amounts and quantities here have far fewer).
    serde_json::from_str(&d.normalize().to_string()).unwrap_or(serde_json::Value::Null)
}

/// A secret from the environment variable named in a connector, held in `secrecy`; the error
/// names the variable and what it holds, never a value.
///
/// # Errors
///
/// The variable is unset or empty.
pub fn secret_from_env(var: &str, what: &str) -> Result<secrecy::SecretString, String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(secrecy::SecretString::from(v.trim().to_owned())),
        _ => Err(format!(
            "the environment variable {var} ({what}) is not set; export it before running facto"
        )),
    }
}

#[cfg(test)]
mod grace_tests {
    use super::*;
    use crate::ledger::{Record, RecordKey, State};

    #[test]
    fn the_lookup_grace_counts_from_the_claim_and_no_setting_panics() {
        let now = chrono::Utc::now();
        let key = RecordKey {
            job: "j".into(),
            target: "t".into(),
            doc_id: "d".into(),
        };
        let mut r = Record::new(key, now - chrono::Duration::minutes(90));
        r.transition(
            State::Claimed,
            "claimed",
            now - chrono::Duration::minutes(30),
        );
        assert!(in_lookup_grace(&r, 60, now));
        assert!(!in_lookup_grace(&r, 20, now));
        assert!(!in_lookup_grace(&r, 0, now));
        assert!(in_lookup_grace(&r, u64::MAX, now));
    }
}
