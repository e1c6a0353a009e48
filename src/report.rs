//! The run report (SPEC §7): per target, counts of delivered / already delivered / held /
//! rejected / failed, and one line per problem document with its number, customer, reason and
//! fix. Printed for humans or as one JSON object; kept in the ledger.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Counts for one target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    /// Target connector.
    pub target: String,
    /// Kind and format (`journal-file/fec`).
    pub kind: String,
    /// Delivered by this run (or, with `--dry-run`, that would be).
    pub delivered: u64,
    /// Delivered by earlier runs.
    pub already_delivered: u64,
    /// Held back now (mapping or check problems).
    pub held: u64,
    /// Rejected by the target after delivery.
    pub rejected: u64,
    /// Refused by the target at delivery.
    pub failed: u64,
    /// Changed in the source after delivery, seen by this run.
    pub changed_after_delivery: u64,
    /// Read by this run with every amount zero: no line to write in this target's journal, so
    /// not delivered to its file.
    #[serde(default)]
    pub nothing_to_book: u64,
}

/// One problem document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemLine {
    /// Target.
    pub target: String,
    /// Source id.
    pub doc_id: String,
    /// Invoice number.
    pub number: String,
    /// Customer.
    pub customer: String,
    /// `held`, `failed`, `rejected`, `changed-after-delivery`.
    pub status: String,
    /// Field at fault.
    pub field: String,
    /// What is wrong.
    pub reason: String,
    /// What to do.
    pub fix: String,
}

/// One batch written by the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchLine {
    /// Batch id.
    pub id: u64,
    /// Target.
    pub target: String,
    /// Where the file is.
    pub path: String,
    /// Documents in it.
    pub documents: u64,
    /// SHA-256 of the file.
    pub sha256: String,
}

/// The report of one run of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Run id (also the key it is kept under).
    pub run_id: String,
    /// `sync`, `export` or `preview`.
    pub command: String,
    /// Job.
    pub job: String,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub finished_at: Option<DateTime<Utc>>,
    /// Nothing was delivered or recorded.
    pub dry_run: bool,
    /// Documents read from the source in this run.
    pub documents_read: u64,
    /// Documents skipped because they are not final, per status.
    pub skipped: BTreeMap<String, u64>,
    /// Per target.
    pub targets: Vec<TargetReport>,
    /// Problem documents.
    pub problems: Vec<ProblemLine>,
    /// Batches written.
    pub batches: Vec<BatchLine>,
    /// What recovery did at the start of the run.
    pub recovery: Vec<String>,
    /// Remote status changes seen in this run (Chorus Pro flows and invoices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<String>,
    /// Things to know that hold no document back (documents with nothing to book, unknown
    /// fields in the source documents).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Error that stopped the run early (source or target unreachable).
    pub error: Option<String>,
}

/// Exit codes of SPEC §3.
pub mod exit {
    /// All good.
    pub const OK: u8 = 0;
    /// Completed, but documents were held back, rejected or failed.
    pub const PROBLEMS: u8 = 1;
    /// Usage or configuration error.
    pub const USAGE: u8 = 2;
    /// A source or target was unreachable after retries.
    pub const UNREACHABLE: u8 = 3;
}

impl RunReport {
    /// A new, empty report.
    pub fn new(run_id: &str, command: &str, job: &str, dry_run: bool) -> Self {
        RunReport {
            run_id: run_id.to_owned(),
            command: command.to_owned(),
            job: job.to_owned(),
            started_at: Utc::now(),
            finished_at: None,
            dry_run,
            documents_read: 0,
            skipped: BTreeMap::new(),
            targets: Vec::new(),
            problems: Vec::new(),
            batches: Vec::new(),
            recovery: Vec::new(),
            statuses: Vec::new(),
            warnings: Vec::new(),
            error: None,
        }
    }

    /// The exit code this report calls for.
    pub fn exit_code(&self) -> u8 {
        if self.error.is_some() {
            exit::UNREACHABLE
        } else if !self.problems.is_empty()
            || self
                .targets
                .iter()
                .any(|t| t.held + t.rejected + t.failed + t.changed_after_delivery > 0)
        {
            exit::PROBLEMS
        } else {
            exit::OK
        }
    }

    /// The report for a terminal.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let verb = if self.dry_run {
            " (dry run: nothing delivered or recorded)"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "{} of job {} — run {}{verb}",
            self.command, self.job, self.run_id
        );
        for r in &self.statuses {
            let _ = writeln!(s, "  status: {r}");
        }
        for r in &self.recovery {
            let _ = writeln!(s, "  recovery: {r}");
        }
        let skipped: Vec<String> = self
            .skipped
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        let _ = writeln!(
            s,
            "  {} documents read from the source{}",
            self.documents_read,
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; skipped (not final): {}", skipped.join(", "))
            }
        );
        for t in &self.targets {
            let word = if self.dry_run {
                "to deliver"
            } else {
                "delivered"
            };
            let _ = writeln!(
                s,
                "  {:<18} {word} {:>5} | already delivered {:>5} | held {:>3} | rejected {:>3} | failed {:>3}{}",
                format!("{} ({})", t.target, t.kind),
                t.delivered,
                t.already_delivered,
                t.held,
                t.rejected,
                t.failed,
                if t.changed_after_delivery > 0 {
                    format!(" | changed after delivery {}", t.changed_after_delivery)
                } else {
                    String::new()
                },
            );
            if t.nothing_to_book > 0 {
                let _ = writeln!(
                    s,
                    "  {:<18} nothing to book {:>5} (every amount zero: no line in the file)",
                    "", t.nothing_to_book
                );
            }
        }
        if !self.dry_run
            && !self.targets.is_empty()
            && self.targets.iter().all(|t| t.delivered == 0)
        {
            let already: u64 = self
                .targets
                .iter()
                .map(|t| t.already_delivered)
                .max()
                .unwrap_or(0);
            let _ = writeln!(
                s,
                "  nothing new to deliver: {already} documents already delivered to every target"
            );
        }
        for w in &self.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        for b in &self.batches {
            let _ = writeln!(
                s,
                "  batch {} → {} ({} documents, sha256 {})",
                b.id,
                b.path,
                b.documents,
                &b.sha256[..12.min(b.sha256.len())]
            );
        }
        if !self.problems.is_empty() {
            // One line per document and problem, naming every target it concerns.
            let mut grouped: Vec<(&ProblemLine, Vec<&str>)> = Vec::new();
            for p in &self.problems {
                match grouped.iter_mut().find(|(q, _)| {
                    q.doc_id == p.doc_id
                        && q.status == p.status
                        && q.field == p.field
                        && q.reason == p.reason
                }) {
                    Some((_, targets)) => targets.push(&p.target),
                    None => grouped.push((p, vec![&p.target])),
                }
            }
            grouped.sort_by(|a, b| (&a.0.number, &a.0.field).cmp(&(&b.0.number, &b.0.field)));
            let _ = writeln!(s, "  problems ({} documents):", {
                let mut ids: Vec<&str> = self.problems.iter().map(|p| p.doc_id.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                ids.len()
            });
            for (p, targets) in grouped {
                let _ = writeln!(
                    s,
                    "  - {} ({}) {} for {}: {}: {}\n      fix: {}",
                    p.number,
                    p.customer,
                    p.status,
                    targets.join(", "),
                    crate::problem::field_label(&p.field),
                    p.reason,
                    p.fix
                );
            }
        }
        if let Some(e) = &self.error {
            let _ = writeln!(s, "  error: {e}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        let mut r = RunReport::new("r", "sync", "demo", false);
        r.targets.push(TargetReport {
            target: "t".into(),
            delivered: 3,
            ..Default::default()
        });
        assert_eq!(r.exit_code(), exit::OK);
        r.targets[0].held = 1;
        assert_eq!(r.exit_code(), exit::PROBLEMS);
        r.error = Some("down".into());
        assert_eq!(r.exit_code(), exit::UNREACHABLE);
    }
}
