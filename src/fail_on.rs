//! When a `sync` fails (`--fail-on` / a job's `fail_on`): on any problem (SPEC §3's exit 1, the
//! default), only on problems an earlier run of the job did not already report, or never. A cron
//! job that should alert once per new problem, not every run while a document waits for a human,
//! uses `new`.
//!
//! "Already reported" is read from the ledger: the problems every live sync (a daemon pass too)
//! of the job reported, under [`REPORTED`]. A run that completes replaces the set with what it
//! reports, so a problem that was solved and comes back is new again; a run that stopped early
//! (exit 3) may have seen only part of the documents, so it only adds to the set.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::ledger::{Ledger, LedgerError};
use crate::report::{exit, ProblemLine, RunReport};

/// Prefix of the ledger value holding the problems already reported for a job.
pub const REPORTED: &str = "reported-problems/";

/// One problem as compared across runs: target, document id, status, field, reason.
type Identity = (String, String, String, String, String);

/// Which problems make a `sync` exit with code 1. A source or target that is unreachable (3)
/// and a usage error (2) fail whatever the setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FailOn {
    /// Any held, failed or rejected document, or change after delivery (today's contract).
    #[default]
    Any,
    /// Only problems that the job's previous run did not report.
    New,
    /// Never for document problems (they are still reported).
    Never,
}

impl FailOn {
    /// The name written in `facto.toml` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            FailOn::Any => "any",
            FailOn::New => "new",
            FailOn::Never => "never",
        }
    }

    /// The exit code of a run's report under this setting.
    pub fn exit_code(self, report: &RunReport) -> u8 {
        let code = report.exit_code();
        if code != exit::PROBLEMS {
            return code;
        }
        match self {
            FailOn::Any => code,
            FailOn::New if report.new_problems > 0 => code,
            FailOn::New | FailOn::Never => exit::OK,
        }
    }
}

/// What identifies one problem across runs. A failure's message is left out: the remote's words
/// (request ids, times) may change between attempts while the problem stays the same.
fn identity(p: &ProblemLine) -> Identity {
    let reason = if p.status == "held" || p.status == "changed-after-delivery" {
        p.reason.clone()
    } else {
        String::new()
    };
    (
        p.target.clone(),
        p.doc_id.clone(),
        p.status.clone(),
        p.field.clone(),
        reason,
    )
}

/// The problems already reported for `job`.
fn known(ledger: &dyn Ledger, job: &str) -> Result<BTreeSet<Identity>, LedgerError> {
    Ok(ledger
        .value(&format!("{REPORTED}{job}"))?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

/// Counts the problems of `report` that no earlier live sync of the job reported, into
/// `report.new_problems`.
///
/// # Errors
///
/// Ledger failure.
pub fn count_new(ledger: &dyn Ledger, report: &mut RunReport) -> Result<(), LedgerError> {
    // Counted per document and problem, as the report lists them (one line for all targets).
    let new: BTreeSet<_> = new_problems(ledger, report)?
        .iter()
        .map(identity)
        .map(|(_, doc, status, field, reason)| (doc, status, field, reason))
        .collect();
    report.new_problems = new.len() as u64;
    Ok(())
}

/// The problem lines of `report` that no earlier live sync of the job reported (what an alert
/// is about); read before [`remember`] records them.
///
/// # Errors
///
/// Ledger failure.
pub fn new_problems(
    ledger: &dyn Ledger,
    report: &RunReport,
) -> Result<Vec<ProblemLine>, LedgerError> {
    let known = known(ledger, &report.job)?;
    Ok(report
        .problems
        .iter()
        .filter(|p| !known.contains(&identity(p)))
        .cloned()
        .collect())
}

/// Records the problems of `report` (already saved) as reported: they replace the job's set when
/// the run completed (what it no longer lists is solved), and join it when it stopped early.
///
/// # Errors
///
/// Ledger failure.
pub fn remember(ledger: &dyn Ledger, report: &RunReport) -> Result<(), LedgerError> {
    ledger.put_values(&[remembered(ledger, report)?])
}

/// The ledger value [`remember`] writes, for a caller that writes it in one batch with others
/// (the alert of the same problems: both or neither survive a crash).
///
/// # Errors
///
/// Ledger failure.
pub fn remembered(
    ledger: &dyn Ledger,
    report: &RunReport,
) -> Result<(String, serde_json::Value), LedgerError> {
    let mut set: BTreeSet<Identity> = report.problems.iter().map(identity).collect();
    if report.error.is_some() {
        set.extend(known(ledger, &report.job)?);
    }
    Ok((
        format!("{REPORTED}{}", report.job),
        serde_json::to_value(&set).unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(doc: &str) -> ProblemLine {
        ProblemLine {
            target: "t".into(),
            doc_id: doc.into(),
            number: doc.into(),
            customer: "c".into(),
            status: "held".into(),
            field: "tax_code".into(),
            reason: "no mapping".into(),
            fix: "add it".into(),
        }
    }

    #[test]
    fn new_fails_only_on_new_problems_and_never_never_does() {
        let mut r = RunReport::new("r", "sync", "demo", false);
        r.problems.push(problem("a"));
        assert_eq!(FailOn::Any.exit_code(&r), exit::PROBLEMS);
        assert_eq!(FailOn::New.exit_code(&r), exit::OK);
        assert_eq!(FailOn::Never.exit_code(&r), exit::OK);
        r.new_problems = 1;
        assert_eq!(FailOn::New.exit_code(&r), exit::PROBLEMS);
        r.error = Some("down".into());
        assert_eq!(FailOn::Never.exit_code(&r), exit::UNREACHABLE);
    }

    #[test]
    fn a_run_stopped_early_adds_to_what_was_reported_and_a_complete_one_prunes_it() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = crate::ledger::sled::SledLedger::open(dir.path()).unwrap();
        let run = |docs: &[&str], error: bool| {
            let mut r = RunReport::new("r", "sync", "demo", false);
            r.problems = docs.iter().map(|d| problem(d)).collect();
            r.error = error.then(|| "down".to_owned());
            count_new(&ledger, &mut r).unwrap();
            remember(&ledger, &r).unwrap();
            r.new_problems
        };
        assert_eq!(run(&["a"], false), 1);
        assert_eq!(run(&[], true), 0, "stopped early: `a` stays reported");
        assert_eq!(run(&["a", "b"], false), 1, "only `b` is new");
        assert_eq!(run(&["b"], false), 0, "`a` was solved");
        assert_eq!(run(&["a"], false), 1, "`a` is back: new again");
    }

    #[test]
    fn a_failure_is_the_same_problem_whatever_the_remote_said() {
        let mut a = problem("a");
        a.status = "failed".into();
        let mut b = a.clone();
        b.reason = "request 42 refused".into();
        assert_eq!(identity(&a), identity(&b));
        let mut h = problem("a");
        h.reason = "other code".into();
        assert_ne!(identity(&problem("a")), identity(&h));
    }
}
