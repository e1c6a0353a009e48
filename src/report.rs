//! The run report (SPEC §7): per target, counts of delivered / already delivered / held /
//! rejected / failed, and one line per problem document with its number, customer, reason and
//! fix. Printed for humans or as one JSON object; kept in the ledger.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::{DocKind, Document};

/// Money delivered to a target by a run, in the documents' currency, credit notes deducted.
/// Decimal strings in JSON (`"1358.25"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Amounts {
    /// Net (HT).
    pub net: Decimal,
    /// VAT.
    pub tax: Decimal,
    /// Gross (TTC).
    pub gross: Decimal,
}

impl Amounts {
    /// A document's totals, negative for a credit note.
    pub fn of(doc: &Document) -> Amounts {
        let t = &doc.totals;
        match doc.kind {
            DocKind::Invoice => Amounts {
                net: t.net,
                tax: t.tax,
                gross: t.gross,
            },
            DocKind::CreditNote => Amounts {
                net: -t.net,
                tax: -t.tax,
                gross: -t.gross,
            },
        }
    }

    /// Adds `other` (saturating: source amounts never make the report panic).
    pub fn add(&mut self, other: Amounts) {
        self.net = self.net.saturating_add(other.net);
        self.tax = self.tax.saturating_add(other.tax);
        self.gross = self.gross.saturating_add(other.gross);
    }
}

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
    /// Amounts of the documents counted in `delivered`.
    #[serde(default)]
    pub amounts: Amounts,
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

/// Documents with one identical problem (same status, targets, field, reason and fix).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemGroup {
    /// `held`, `failed`, `rejected`, `changed-after-delivery`.
    pub status: String,
    /// Targets concerned.
    pub targets: Vec<String>,
    /// Field at fault.
    pub field: String,
    /// What is wrong.
    pub reason: String,
    /// What to do.
    pub fix: String,
    /// How many documents.
    pub documents: u64,
    /// Their numbers (the first few), with the customer.
    pub examples: Vec<String>,
}

/// Examples kept per group.
const EXAMPLES: usize = 3;

/// Groups problems: first per document across targets, then documents with the same problem.
pub fn group_problems(problems: &[ProblemLine]) -> Vec<ProblemGroup> {
    // One entry per document and problem, naming every target it concerns.
    let mut per_doc: Vec<(&ProblemLine, Vec<&str>)> = Vec::new();
    let mut index: BTreeMap<(&str, &str, &str, &str), usize> = BTreeMap::new();
    for p in problems {
        let key = (
            p.doc_id.as_str(),
            p.status.as_str(),
            p.field.as_str(),
            p.reason.as_str(),
        );
        match index.get(&key) {
            Some(&i) => per_doc[i].1.push(&p.target),
            None => {
                index.insert(key, per_doc.len());
                per_doc.push((p, vec![&p.target]));
            }
        }
    }
    for (_, targets) in &mut per_doc {
        targets.sort_unstable();
        targets.dedup();
    }
    per_doc.sort_by(|a, b| (&a.0.number, &a.0.field).cmp(&(&b.0.number, &b.0.field)));
    let mut groups: Vec<ProblemGroup> = Vec::new();
    let mut by_problem: BTreeMap<(&str, Vec<&str>, &str, &str, &str), usize> = BTreeMap::new();
    for (p, targets) in &per_doc {
        let key = (
            p.status.as_str(),
            targets.clone(),
            p.field.as_str(),
            p.reason.as_str(),
            p.fix.as_str(),
        );
        let example = if p.customer.is_empty() {
            p.number.clone()
        } else {
            format!("{} ({})", p.number, p.customer)
        };
        match by_problem.get(&key) {
            Some(&i) => {
                let g = &mut groups[i];
                g.documents += 1;
                if g.examples.len() < EXAMPLES {
                    g.examples.push(example);
                }
            }
            None => {
                by_problem.insert(key, groups.len());
                groups.push(ProblemGroup {
                    status: p.status.clone(),
                    targets: targets.iter().map(|t| (*t).to_owned()).collect(),
                    field: p.field.clone(),
                    reason: p.reason.clone(),
                    fix: p.fix.clone(),
                    documents: 1,
                    examples: vec![example],
                });
            }
        }
    }
    groups
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
    /// The same problems, documents with an identical problem grouped (computed on output).
    #[serde(default)]
    pub problem_groups: Vec<ProblemGroup>,
    /// Problems that the job's previous run did not report (`sync --fail-on new`).
    #[serde(default)]
    pub new_problems: u64,
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
            problem_groups: Vec::new(),
            new_problems: 0,
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
            if t.delivered > 0 {
                let a = &t.amounts;
                let _ = writeln!(
                    s,
                    "  {:<18} amounts {word}: net {}, VAT {}, gross {} (credit notes deducted)",
                    "", a.net, a.tax, a.gross
                );
            }
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
            let _ = writeln!(s, "  problems ({} documents):", {
                let mut ids: Vec<&str> = self.problems.iter().map(|p| p.doc_id.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                ids.len()
            });
            for g in group_problems(&self.problems) {
                let who = match g.documents {
                    1 => g.examples.join(""),
                    n => format!(
                        "{n} documents, e.g. {}{}",
                        g.examples.join(", "),
                        if n > g.examples.len() as u64 {
                            ", …"
                        } else {
                            ""
                        }
                    ),
                };
                let _ = writeln!(
                    s,
                    "  - {who} {} for {}: {}: {}\n      fix: {}",
                    g.status,
                    g.targets.join(", "),
                    crate::problem::field_label(&g.field),
                    g.reason,
                    g.fix
                );
            }
            if self.command == "sync" && !self.dry_run {
                let _ = writeln!(
                    s,
                    "  new problems since the job's previous run: {}",
                    self.new_problems
                );
            }
        }
        if let Some(e) = &self.error {
            let _ = writeln!(s, "  error: {e}");
        }
        // Names and numbers come from the source: no control character (an ANSI escape in a
        // customer name) reaches the terminal.
        s.chars()
            .map(|c| {
                if c != '\n' && crate::format::text::unwritable(c) {
                    ' '
                } else {
                    c
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_from_the_source_never_reach_the_terminal() {
        let mut r = RunReport::new("r", "sync", "demo", false);
        r.problems.push(ProblemLine {
            target: "t".into(),
            doc_id: "d".into(),
            number: "F\u{1b}[2J1".into(),
            customer: "Dupont\u{7}\r".into(),
            status: "held".into(),
            field: "f".into(),
            reason: "r".into(),
            fix: "x".into(),
        });
        let out = r.render();
        assert!(out.contains("F [2J1 (Dupont  )"), "{out}");
        assert!(!out.chars().any(|c| c != '\n' && c.is_control()), "{out:?}");
    }

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
