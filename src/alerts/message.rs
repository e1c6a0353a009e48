//! What an alert says, built from a pass's report (pure): the job, the run id, the counts, the
//! NEW problems grouped as the report groups them (with their fixes), a short text and a JSON
//! body.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Event;
use crate::report::{group_problems, ProblemGroup, ProblemLine, RunReport};

/// Counts of the pass, over its targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Delivered by the pass.
    pub delivered: u64,
    /// Held back now.
    pub held: u64,
    /// Rejected after delivery.
    pub rejected: u64,
    /// Refused at delivery.
    pub failed: u64,
    /// Changed after delivery.
    pub changed_after_delivery: u64,
    /// Problems no earlier pass reported (those the alert is about).
    pub new_problems: u64,
}

/// One alert's content, the webhook's JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The alert id (`<run id>/<channel>`), also the `Idempotency-Key`.
    pub id: String,
    /// Job.
    pub job: String,
    /// Run id of the pass.
    pub run_id: String,
    /// When the pass ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// What raised the alert.
    pub events: Vec<Event>,
    /// Counts.
    pub counts: Counts,
    /// Why the pass stopped early, when it did.
    pub stopped: Option<String>,
    /// The new problems, documents with an identical problem grouped, with their fixes.
    pub problems: Vec<ProblemGroup>,
    /// The same, as a short text (the e-mail's body).
    pub text: String,
}

impl Message {
    /// The e-mail's subject.
    pub fn subject(&self) -> String {
        let what: Vec<&str> = self.events.iter().map(|e| e.as_str()).collect();
        format!(
            "facto: job {} needs attention ({})",
            self.job,
            what.join(", ")
        )
    }
}

/// The alert of a pass, or `None` when nothing in it is worth one: no new problem of an event
/// in `on`, and no stop (or a stop already alerted: `was_stopped`).
pub fn build(
    report: &RunReport,
    new: &[ProblemLine],
    was_stopped: bool,
    on: &[Event],
) -> Option<Message> {
    let new: Vec<ProblemLine> = new
        .iter()
        .filter(|p| Event::of_status(&p.status).is_some_and(|e| on.contains(&e)))
        .cloned()
        .collect();
    let mut events: Vec<Event> = new
        .iter()
        .filter_map(|p| Event::of_status(&p.status))
        .collect();
    let stopped = report
        .error
        .clone()
        .filter(|_| !was_stopped && on.contains(&Event::Stopped));
    if stopped.is_some() {
        events.push(Event::Stopped);
    }
    events.sort_unstable();
    events.dedup();
    if events.is_empty() {
        return None;
    }
    let mut counts = Counts::default();
    for t in &report.targets {
        counts.delivered += t.delivered;
        counts.held += t.held;
        counts.rejected += t.rejected;
        counts.failed += t.failed;
        counts.changed_after_delivery += t.changed_after_delivery;
    }
    let problems = group_problems(&new);
    counts.new_problems = problems.iter().map(|g| g.documents).sum();
    let text = text(report, &counts, stopped.as_deref(), &problems);
    Some(Message {
        id: String::new(),
        job: report.job.clone(),
        run_id: report.run_id.clone(),
        finished_at: report.finished_at,
        events,
        counts,
        stopped,
        problems,
        text,
    })
}

fn text(
    report: &RunReport,
    c: &Counts,
    stopped: Option<&str>,
    problems: &[ProblemGroup],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "facto, job {}, run {}: {} new problem(s); now {} held, {} rejected, {} failed, {} changed after delivery; {} delivered.",
        report.job, report.run_id, c.new_problems, c.held, c.rejected, c.failed, c.changed_after_delivery, c.delivered
    );
    if let Some(why) = stopped {
        let _ = writeln!(s, "\nThe pass stopped early: {why}");
    }
    for g in problems {
        let _ = writeln!(
            s,
            "\n- {} document(s) {} for {} ({}): {}\n  Fix: {}\n  For example: {}",
            g.documents,
            g.status,
            g.targets.join(", "),
            g.field,
            g.reason,
            g.fix,
            g.examples.join("; ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::TargetReport;

    fn problem(doc: &str, status: &str, reason: &str) -> ProblemLine {
        ProblemLine {
            target: "fec".into(),
            doc_id: doc.into(),
            number: format!("F-{doc}"),
            customer: "ACME".into(),
            status: status.into(),
            field: "tax_code".into(),
            reason: reason.into(),
            fix: "map it".into(),
        }
    }

    fn report() -> RunReport {
        let mut r = RunReport::new("r1", "sync", "demo", false);
        r.targets.push(TargetReport {
            target: "fec".into(),
            held: 3,
            delivered: 5,
            ..TargetReport::default()
        });
        r
    }

    #[test]
    fn new_problems_are_grouped_into_one_message_with_their_fix() {
        let new = [
            problem("1", "held", "no mapping for T9"),
            problem("2", "held", "no mapping for T9"),
            problem("3", "held", "no mapping for T9"),
        ];
        let m = build(&report(), &new, false, &[Event::Held]).unwrap();
        assert_eq!(m.events, vec![Event::Held]);
        assert_eq!(m.problems.len(), 1, "one group for three documents");
        assert_eq!(m.problems[0].documents, 3);
        assert_eq!(m.counts.new_problems, 3);
        assert_eq!((m.counts.held, m.counts.delivered), (3, 5));
        assert!(m.text.contains("Fix: map it"), "{}", m.text);
        assert!(m.text.contains("run r1"), "{}", m.text);
        assert!(m.subject().contains("demo"));
    }

    #[test]
    fn nothing_new_or_not_asked_for_raises_nothing() {
        let r = report();
        assert!(build(&r, &[], false, &[Event::Held]).is_none());
        let new = [problem("1", "failed", "HTTP 400")];
        assert!(build(&r, &new, false, &[Event::Held]).is_none());
        let m = build(&r, &new, false, &[Event::Held, Event::Failed]).unwrap();
        assert_eq!(m.events, vec![Event::Failed]);
    }

    #[test]
    fn a_stop_alerts_once_until_a_pass_completes() {
        let mut r = report();
        r.error = Some("target down".into());
        let m = build(&r, &[], false, &[Event::Stopped]).unwrap();
        assert_eq!(m.stopped.as_deref(), Some("target down"));
        assert!(m.text.contains("stopped early: target down"));
        assert!(build(&r, &[], true, &[Event::Stopped]).is_none());
    }
}
