//! `facto sync`: one pass of every job, or of one.

use super::{fail, ledger_failure, run_failure, today, Context, Failure};
use crate::report::exit;
use crate::sync::{Mode, RunOptions};

pub(super) async fn sync(
    cx: &mut Context<'_>,
    job: Option<&str>,
    dry_run: bool,
    fail_on: Option<crate::fail_on::FailOn>,
) -> Result<u8, Failure> {
    let cfg = cx.load()?;
    let jobs: Vec<&crate::config::Job> = match job {
        Some(n) => vec![cfg.job(n).map_err(|e| fail(exit::USAGE, e))?],
        None => cfg.jobs.iter().collect(),
    };
    let shared = cx.open_ledger(&cfg)?;
    let ledger: &dyn crate::ledger::Ledger = &*shared;
    let recovery = cx.recover(&cfg, ledger, dry_run)?;
    if let (Some(ev), false) = (&cfg.events, dry_run) {
        // The news of this run is sent, not the past of a ledger that had records before.
        let names: Vec<&str> = cfg.jobs.iter().map(|j| j.name.as_str()).collect();
        crate::events::begin(ev, &names, ledger).map_err(ledger_failure)?;
    }
    let pb = cx.progress();
    let opts = RunOptions {
        dry_run,
        today: today(),
        progress: pb.clone(),
    };
    let mut reports = Vec::new();
    let mut code = exit::OK;
    for (i, j) in jobs.into_iter().enumerate() {
        let mut r = match crate::sync::run_job(&cfg, ledger, j, &Mode::Sync, &opts).await {
            Ok(r) => r,
            Err(e) => {
                // The stop is kept and alerted; the alerts the earlier jobs recorded go now,
                // not after the next run.
                if !dry_run {
                    crate::sync::record_failed_pass(&cfg, ledger, &j.name, &e);
                    crate::alerts::after_pass(cfg.alerts.as_ref(), ledger).await;
                }
                return Err(run_failure(e));
            }
        };
        if i == 0 {
            r.recovery.clone_from(&recovery);
        }
        code = code.max(fail_on.unwrap_or(j.fail_on).exit_code(&r));
        reports.push(r);
    }
    if !dry_run {
        crate::alerts::after_pass(cfg.alerts.as_ref(), ledger).await;
        let jobs: Vec<&str> = cfg.jobs.iter().map(|j| j.name.as_str()).collect();
        crate::events::after_pass(cfg.events.as_ref(), &jobs, ledger, &cx.tenant()).await;
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    cx.emit_reports(&reports)?;
    Ok(code)
}
