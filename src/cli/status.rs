//! `facto status`: what API targets received, reconciled and polled.

use super::{fail, ledger_failure, run_failure, Context, Failure};
use crate::ledger::Ledger;
use crate::report::exit;

pub(super) async fn status(cx: &mut Context<'_>, job: Option<&str>) -> Result<u8, Failure> {
    let cfg = cx.load()?;
    let jobs: Vec<&crate::config::Job> = match job {
        Some(n) => vec![cfg.job(n).map_err(|e| fail(exit::USAGE, e))?],
        None => cfg.jobs.iter().collect(),
    };
    let ledger = cx.open_ledger(&cfg)?;
    let mut out_json = Vec::new();
    let mut text = String::new();
    let mut code = exit::OK;
    for j in jobs {
        for t in &j.targets {
            let Some(run) = crate::sync::api_target(&cfg, j, t) else {
                continue;
            };
            let mut run = run.map_err(run_failure)?;
            let mut changes = Vec::new();
            let mut error = None;
            match run.reconcile(&ledger).await {
                Ok(notes) => changes.extend(notes),
                Err(e) => error = Some(e.to_string()),
            }
            if error.is_none() {
                match run.poll(&ledger).await {
                    Ok(c) => changes.extend(c),
                    Err(e) => error = Some(e.to_string()),
                }
            }
            let counts = ledger.count_states(&j.name, t).map_err(ledger_failure)?;
            let counts: std::collections::BTreeMap<&str, u64> =
                counts.iter().map(|(s, n)| (s.as_str(), *n)).collect();
            if error.is_some() {
                code = exit::UNREACHABLE;
            }
            text.push_str(&format!("job {} → {t}:\n", j.name));
            for c in &changes {
                text.push_str(&format!("  {c}\n"));
            }
            if changes.is_empty() && error.is_none() {
                text.push_str("  no change\n");
            }
            if let Some(e) = &error {
                text.push_str(&format!("  error: {e}\n"));
            }
            let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
            text.push_str(&format!("  now: {}\n", summary.join(", ")));
            out_json.push(serde_json::json!({
                "job": j.name, "target": t, "changes": changes, "error": error, "states": counts,
            }));
        }
    }
    if cx.out.is_json() {
        cx.out.json(&out_json)?;
    } else if out_json.is_empty() {
        cx.out
            .text("no API target to follow (chorus-pro, pennylane or xero)\n")?;
    } else {
        cx.out.text(&text)?;
    }
    Ok(code)
}
