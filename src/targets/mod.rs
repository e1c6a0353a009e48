//! Targets: where mapped documents go. One file per kind; `sync` drives them through the ledger's
//! claim → deliver → record steps. Journal files are the first kind; Chorus Pro and the accounting
//! APIs join as further variants of [`TargetRun`].

pub mod chorus;
pub mod http;
pub mod journal_file;
pub mod oauth;
pub mod pennylane;
pub mod tokens;
pub mod xero;

use crate::ledger::{Ledger, LedgerError};

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

/// A target being delivered to during one run.
pub enum TargetRun {
    /// Journal import files.
    JournalFile(Box<journal_file::JournalRun>),
    /// The Chorus Pro API.
    Chorus(Box<chorus::ChorusRun>),
    /// Pennylane's API.
    Pennylane(Box<pennylane::PennylaneRun>),
    /// Xero's API.
    Xero(Box<xero::XeroRun>),
}

impl TargetRun {
    /// Target connector name.
    pub fn name(&self) -> &str {
        match self {
            TargetRun::JournalFile(j) => j.name(),
            TargetRun::Chorus(c) => c.name(),
            TargetRun::Pennylane(p) => p.name(),
            TargetRun::Xero(x) => x.name(),
        }
    }

    /// Documents delivered in this run.
    pub fn delivered(&self) -> u64 {
        match self {
            TargetRun::JournalFile(j) => j.delivered(),
            TargetRun::Chorus(c) => c.delivered(),
            TargetRun::Pennylane(p) => p.delivered(),
            TargetRun::Xero(x) => x.delivered(),
        }
    }

    /// Settles what an interrupted run left claimed at an API target (looked up there before
    /// anything is sent again). Journal files recover through the ledger instead.
    ///
    /// # Errors
    ///
    /// Ledger failure, or the API unreachable.
    pub async fn reconcile(&mut self, ledger: &dyn Ledger) -> Result<Vec<String>, TargetError> {
        match self {
            TargetRun::JournalFile(_) => Ok(Vec::new()),
            TargetRun::Chorus(c) => c.reconcile(ledger).await,
            TargetRun::Pennylane(p) => p.reconcile(ledger).await,
            TargetRun::Xero(x) => x.reconcile(ledger).await,
        }
    }

    /// Follows what an API target received (statuses, payments); journal files have none.
    ///
    /// # Errors
    ///
    /// Ledger failure, or the API unreachable.
    pub async fn poll(&self, ledger: &dyn Ledger) -> Result<Vec<String>, TargetError> {
        match self {
            TargetRun::JournalFile(_) => Ok(Vec::new()),
            TargetRun::Chorus(c) => c.poll(ledger).await,
            TargetRun::Pennylane(p) => p.poll(ledger).await,
            TargetRun::Xero(x) => x.poll(ledger).await,
        }
    }

    /// Delivers one page to an API target.
    ///
    /// # Errors
    ///
    /// Ledger failure, or the API unreachable or refusing the credentials.
    pub async fn deliver_api(
        &mut self,
        ledger: &dyn Ledger,
        docs: Vec<(
            std::sync::Arc<crate::mapping::MappedDocument>,
            crate::ledger::Record,
        )>,
        others: Vec<crate::ledger::Record>,
        run_id: &str,
    ) -> Result<(), TargetError> {
        match self {
            TargetRun::JournalFile(j) => j.deliver_page(ledger, docs, others, run_id),
            TargetRun::Chorus(c) => c.deliver_page(ledger, docs, others, run_id).await,
            TargetRun::Pennylane(p) => p.deliver_page(ledger, docs, others, run_id).await,
            TargetRun::Xero(x) => x.deliver_page(ledger, docs, others, run_id).await,
        }
    }
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
