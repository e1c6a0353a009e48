//! The end of a run's report: each target's counts, from the ledger and the run's tallies, and
//! the problem lines of every held, failed or rejected document.

use std::collections::BTreeSet;

use super::process::{problem_lines, JobRun};
use super::{Mode, RunError};
use crate::config::{Config, Connector};
use crate::ledger::{Ledger, RecordFilter, State};
use crate::report::{ProblemLine, TargetReport};

/// Fills the report's per-target counts (from the ledger and the run's tallies) and its
/// problem lines, held documents not read this run included.
pub(super) fn finish_report(
    cfg: &Config,
    ledger: &dyn Ledger,
    jr: &mut JobRun<'_>,
    delivered: &[u64],
) -> Result<(), RunError> {
    let sync_live = matches!(jr.mode, Mode::Sync) && !jr.dry_run;
    let mut lines = std::mem::take(&mut jr.lines);
    for (ti, t) in jr.targets.iter().enumerate() {
        let kind = cfg
            .connectors
            .get(t)
            .map_or_else(|| "target".into(), Connector::kind);
        let tally = &jr.tallies[ti];
        let mut tr = TargetReport {
            target: t.clone(),
            kind,
            delivered: delivered[ti],
            ..Default::default()
        };
        let counts = ledger.count_states(&jr.job.name, t)?;
        let count = |s: State| counts.get(&s).copied().unwrap_or(0);
        tr.rejected = count(State::Rejected);
        tr.failed = count(State::Failed);
        tr.changed_after_delivery = tally.changed;
        tr.nothing_to_book = tally.nothing_to_book;
        if sync_live {
            let total_delivered: u64 = counts
                .iter()
                .filter(|(s, _)| s.is_delivered())
                .map(|(_, n)| n)
                .sum();
            tr.already_delivered = total_delivered.saturating_sub(tr.delivered);
            tr.held = count(State::Held) + tally.copies;
            // Held documents not read this run (unchanged files) still deserve their line.
            let listed: BTreeSet<(String, String)> = lines
                .iter()
                .map(|l| (l.target.clone(), l.doc_id.clone()))
                .collect();
            for state in [State::Held, State::Failed, State::Rejected] {
                let filter = RecordFilter {
                    job: Some(jr.job.name.clone()),
                    target: Some(t.clone()),
                    state: Some(state),
                };
                for r in ledger.list(&filter)? {
                    let shown = crate::model::shown_id(&r.key.doc_id).to_owned();
                    if listed.contains(&(t.clone(), shown)) {
                        continue;
                    }
                    if state == State::Held {
                        lines.extend(problem_lines(t, &r, "held"));
                    } else {
                        lines.push(ProblemLine {
                            target: t.clone(),
                            doc_id: crate::model::shown_id(&r.key.doc_id).to_owned(),
                            number: r.number.clone(),
                            customer: r.customer_name.clone(),
                            status: state.as_str().into(),
                            field: "(document)".into(),
                            reason: r
                                .last_error
                                .clone()
                                .unwrap_or_else(|| format!("{} by the target", state.as_str())),
                            fix: match crate::targets::pa::lifecycle::final_refusal(&r) {
                                // The reform's rule: never again under this number.
                                Some(_) => "cancel it in the books with a credit note and issue a new invoice with a new number".into(),
                                None => "correct the document, then `facto ledger retry`".into(),
                            },
                        });
                    }
                }
            }
        } else {
            tr.already_delivered = if matches!(jr.mode, Mode::Sync) {
                counts
                    .iter()
                    .filter(|(s, _)| s.is_delivered())
                    .map(|(_, n)| n)
                    .sum()
            } else {
                tally.already
            };
            tr.held = tally.held;
        }
        jr.report.targets.push(tr);
    }
    lines.sort_by(|a, b| (&a.target, &a.number, &a.field).cmp(&(&b.target, &b.number, &b.field)));
    jr.report.problems = lines;
    Ok(())
}
