//! `facto status`: what API targets received, reconciled and polled.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::{fail, ledger_failure, run_failure, Context, Failure};
use crate::report::exit;

/// One API target of one job: what changed, and how many documents are in each state now. The
/// JSON keys are in alphabetical order, as this output has always had them.
#[derive(Serialize)]
struct TargetStatus {
    changes: Vec<String>,
    error: Option<String>,
    job: String,
    states: BTreeMap<&'static str, u64>,
    target: String,
}

fn render(all: &[TargetStatus]) -> String {
    if all.is_empty() {
        return "no API target to follow (chorus-pro, afnor-pa, pennylane or xero)\n".to_owned();
    }
    let mut text = String::new();
    for t in all {
        let _ = writeln!(text, "job {} → {}:", t.job, t.target);
        for c in &t.changes {
            let _ = writeln!(text, "  {c}");
        }
        if t.changes.is_empty() && t.error.is_none() {
            text.push_str("  no change\n");
        }
        if let Some(e) = &t.error {
            let _ = writeln!(text, "  error: {e}");
        }
        let summary: Vec<String> = t.states.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let _ = writeln!(text, "  now: {}", summary.join(", "));
    }
    text
}

pub(super) async fn status(cx: &mut Context<'_>, job: Option<&str>) -> Result<u8, Failure> {
    let cfg = cx.load()?;
    let jobs: Vec<&crate::config::Job> = match job {
        Some(n) => vec![cfg.job(n).map_err(|e| fail(exit::USAGE, e))?],
        None => cfg.jobs.iter().collect(),
    };
    let shared = cx.open_ledger(&cfg)?;
    let ledger: &dyn crate::ledger::Ledger = &*shared;
    let mut all = Vec::new();
    let mut code = exit::OK;
    for j in jobs {
        for t in &j.targets {
            let Some(run) = crate::sync::api_target(&cfg, j, t) else {
                continue;
            };
            let mut run = run.map_err(run_failure)?;
            let mut changes = Vec::new();
            let mut error = None;
            match run.reconcile(ledger).await {
                Ok(notes) => changes.extend(notes),
                Err(e) => error = Some(e.to_string()),
            }
            if error.is_none() {
                match run.poll(ledger).await {
                    Ok(c) => changes.extend(c),
                    Err(e) => error = Some(e.to_string()),
                }
            }
            let counts = ledger.count_states(&j.name, t).map_err(ledger_failure)?;
            if error.is_some() {
                code = exit::UNREACHABLE;
            }
            all.push(TargetStatus {
                changes,
                error,
                job: j.name.clone(),
                states: counts.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
                target: t.clone(),
            });
        }
    }
    cx.out.report(&all, |all| render(all))?;
    Ok(code)
}
