//! `facto export` and `facto exports`: writing an export batch for a period, and the history
//! of batches (list, show, download, cancel).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use chrono::Utc;

use super::{
    fail, ledger_failure, pick_job, run_failure, today, Context, ExportArgs, ExportsCmd, Failure,
};
use crate::ledger::{AuditEvent, BatchStatus, LedgerError};
use crate::report::{exit, RunReport};
use crate::sync::{ExportSelection, Mode, RunOptions};

pub(super) async fn export(cx: &mut Context<'_>, a: &ExportArgs) -> Result<u8, Failure> {
    if a.from > a.to {
        return Err(fail(
            exit::USAGE,
            anyhow!("--from {} is after --to {}", a.from, a.to),
        ));
    }
    let mut cfg = cx.load()?;
    let job_name = pick_job(&cfg, a.job.as_deref())?.name.clone();
    cfg.add_export_target(&job_name, &a.target)
        .map_err(|e| fail(exit::USAGE, e))?;
    let job = cfg.job(&job_name).map_err(|e| fail(exit::USAGE, e))?;
    let shared = cx.open_ledger(&cfg)?;
    let ledger: &dyn crate::ledger::Ledger = &*shared;
    let recovery = cx.recover(&cfg, ledger, false)?;
    let pb = cx.progress();
    let opts = RunOptions {
        dry_run: false,
        today: today(),
        progress: pb.clone(),
    };
    let sel = ExportSelection {
        target: a.target.clone(),
        from: a.from,
        to: a.to,
        journal: a.journal.clone(),
        out_dir: a.out.clone(),
        include_exported: a.include_exported,
        only: a.only.clone(),
        exclude: a.exclude.clone(),
        validation_date: a.validation_date,
    };
    let mut r = crate::sync::run_job(&cfg, ledger, job, &Mode::Export(sel), &opts)
        .await
        .map_err(run_failure)?;
    r.recovery = recovery;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if r.batches.is_empty() && r.error.is_none() && !cx.out.is_json() {
        cx.out
            .text("no document to export in this period (see `facto preview`)\n")?;
    }
    cx.emit_reports(&[r])
}

pub(super) fn exports(cx: &mut Context<'_>, cmd: &ExportsCmd) -> Result<u8, Failure> {
    let cfg = cx.load()?;
    let shared = cx.open_ledger(&cfg)?;
    let ledger: &dyn crate::ledger::Ledger = &*shared;
    match cmd {
        ExportsCmd::List => {
            let batches = ledger.batches().map_err(ledger_failure)?;
            if cx.out.is_json() {
                cx.out.json(&batches)?;
            } else if batches.is_empty() {
                cx.out.text("no export batch yet\n")?;
            } else {
                let mut s = format!(
                    "{:>5}  {:<9}  {:<8} {:<12} {:<14} {:<3} {:<23} {:>5} {:>12}  {}\n",
                    "id",
                    "status",
                    "job",
                    "target",
                    "format",
                    "jnl",
                    "period",
                    "docs",
                    "total",
                    "file"
                );
                for b in &batches {
                    s.push_str(&format!(
                        "{:>5}  {:<9}  {:<8} {:<12} {:<14} {:<3} {} → {} {:>5} {:>12.2}  {}\n",
                        b.id,
                        if b.status == BatchStatus::Active {
                            "active"
                        } else {
                            "cancelled"
                        },
                        b.job,
                        b.target,
                        b.format,
                        b.journal,
                        b.period_from,
                        b.period_to,
                        b.documents,
                        b.total_debit,
                        b.file_name
                    ));
                }
                cx.out.text(&s)?;
            }
            Ok(exit::OK)
        }
        ExportsCmd::Show { id } => {
            let b = ledger
                .batch(*id)
                .map_err(ledger_failure)?
                .ok_or_else(|| anyhow!("no export batch {id}; `facto exports list` shows them"))?;
            let keys = ledger.batch_documents(*id).map_err(ledger_failure)?;
            let mut docs = Vec::new();
            for k in &keys {
                if let Some(r) = ledger.get(k).map_err(ledger_failure)? {
                    docs.push(r);
                }
            }
            let report = ledger.report(&b.run_id).map_err(ledger_failure)?;
            if cx.out.is_json() {
                let docs: Vec<_> = docs
                    .iter()
                    .map(|r| serde_json::json!({"doc_id": r.key.doc_id, "number": r.number, "customer": r.customer_name, "gross": r.gross, "state": r.state, "batch_id": r.batch_id}))
                    .collect();
                cx.out.json(
                    &serde_json::json!({ "batch": b, "documents": docs, "run_report": report }),
                )?;
            } else {
                let mut s = format!(
                    "export batch {} ({})\n  job {} · target {} · format {} · journal {}\n  period {} → {} · {} documents · debit {:.2} · credit {:.2}\n  file {} ({} bytes, sha256 {})\n  created {} by {} (run {}){}\n  documents:\n",
                    b.id,
                    if b.status == BatchStatus::Active { "active" } else { "cancelled" },
                    b.job, b.target, b.format, b.journal, b.period_from, b.period_to, b.documents,
                    b.total_debit, b.total_credit, b.path.display(), b.size, b.sha256,
                    b.created_at.format("%Y-%m-%d %H:%M:%S UTC"), b.origin, b.run_id,
                    b.cancelled_at.map(|t| format!("\n  cancelled {}", t.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_default()
                );
                for r in &docs {
                    let now_in = if r.batch_id == Some(b.id) {
                        String::new()
                    } else {
                        format!("  (now {})", r.state.as_str())
                    };
                    s.push_str(&format!(
                        "    {:<14} {:<28} {:>12}{now_in}\n",
                        r.number,
                        r.customer_name,
                        r.gross.map(|g| format!("{g:.2}")).unwrap_or_default()
                    ));
                }
                if let Some(rep) = report.and_then(|v| serde_json::from_value::<RunReport>(v).ok())
                {
                    s.push_str("  report of that run:\n");
                    for line in rep.render().lines() {
                        s.push_str(&format!("    {line}\n"));
                    }
                }
                cx.out.text(&s)?;
            }
            Ok(exit::OK)
        }
        ExportsCmd::Download { id, out: dest } => {
            let b = ledger
                .batch(*id)
                .map_err(ledger_failure)?
                .ok_or_else(|| anyhow!("no export batch {id}; `facto exports list` shows them"))?;
            let bytes = ledger.batch_file(*id).map_err(ledger_failure)?;
            if !b.holds(&bytes) {
                return Err(fail(exit::USAGE, anyhow!("the stored bytes of batch {id} do not match its recorded sha256; the ledger is damaged")));
            }
            match dest.as_deref() {
                Some(p) if p == Path::new("-") => cx.out.write(&bytes)?,
                other => {
                    // The recorded name only, never a path (older ledgers could hold `../`).
                    let name = Path::new(&b.file_name)
                        .file_name()
                        .map_or_else(|| PathBuf::from(format!("batch-{id}")), PathBuf::from);
                    let path = other.map_or_else(|| name.clone(), Path::to_path_buf);
                    let path = if path.is_dir() {
                        path.join(&name)
                    } else {
                        path
                    };
                    // The target's file_mode, as its own file got: journal data is not for every user.
                    let mode = b.file_mode.unwrap_or(crate::config::DEFAULT_FILE_MODE);
                    crate::fsutil::write_atomic(&path, &bytes, Some(mode))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    if cx.out.is_json() {
                        cx.out.json(
                            &serde_json::json!({"batch": id, "path": path, "bytes": bytes.len(), "sha256": b.sha256}),
                        )?;
                    } else {
                        cx.out.text(&format!(
                            "batch {id} written to {} ({} bytes, sha256 {})\n",
                            path.display(),
                            bytes.len(),
                            b.sha256
                        ))?;
                    }
                }
            }
            Ok(exit::OK)
        }
        ExportsCmd::Cancel { id } => {
            let audit = AuditEvent {
                at: Utc::now(),
                action: "cancel-batch".into(),
                detail: format!("export batch {id} cancelled"),
                who: cx.who.clone(),
            };
            let (b, n) = ledger.cancel_batch(*id, audit).map_err(|e| match e {
                LedgerError::NotFound(_) | LedgerError::Invalid(_) => fail(exit::USAGE, e),
                e => ledger_failure(e),
            })?;
            // Its file leaves its importable name, so nobody imports a cancelled batch.
            use crate::targets::journal_file::{set_aside, SetAside};
            let file = match set_aside(&b, |p| cfg.resolve(p)) {
                Ok(SetAside::Renamed(to)) => format!("its file was renamed {}", to.display()),
                Ok(SetAside::Missing(p)) => format!("its file {} is no longer there", p.display()),
                Ok(SetAside::Changed(p)) => format!(
                    "the file at {} is not this batch's (other bytes): left as it is",
                    p.display()
                ),
                Err(e) => format!(
                    "its file {} could not be renamed ({e}): move it aside yourself",
                    b.path.display()
                ),
            };
            if cx.out.is_json() {
                cx.out
                    .json(&serde_json::json!({"batch": b, "released": n, "file": file}))?;
            } else {
                cx.out.text(&format!(
                    "export batch {id} cancelled ({}): {n} documents are free for a new export; {file}. It stays in the history and can still be downloaded.\nIf its file was already imported into the accounting software, delete that import there before importing a new export.\n",
                    b.file_name
                ))?;
            }
            Ok(exit::OK)
        }
    }
}
