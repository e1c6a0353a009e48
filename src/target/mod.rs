//! Targets: where mapped documents go. One file per kind; `sync` drives them through the ledger's
//! claim → deliver → record steps. Journal files are the first kind; Chorus Pro and the accounting
//! APIs join as further variants of [`TargetRun`].

pub mod chorus;
pub mod journal_file;
pub mod pennylane;

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

/// A target being delivered to during one run.
pub enum TargetRun {
    /// Journal import files.
    JournalFile(Box<journal_file::JournalRun>),
    /// The Chorus Pro API.
    Chorus(Box<chorus::ChorusRun>),
    /// Pennylane's API.
    Pennylane(Box<pennylane::PennylaneRun>),
}

impl TargetRun {
    /// Target connector name.
    pub fn name(&self) -> &str {
        match self {
            TargetRun::JournalFile(j) => j.name(),
            TargetRun::Chorus(c) => c.name(),
            TargetRun::Pennylane(p) => p.name(),
        }
    }
}
