//! The targets of a job's run: each connector's run built for sync or export (refusing what
//! the mode cannot do), and the file layout of those that write files.

use crate::config::{Config, Connector, Job};
use crate::mapping::Mapping;
use crate::targets::chorus::ChorusRun;
use crate::targets::journal_file::JournalRun;
use crate::targets::pa::config::PaConfig;
use crate::targets::pa::PaRun;
use crate::targets::pennylane::PennylaneRun;
use crate::targets::xero::XeroRun;
use crate::targets::{Driven, TargetRun};

use super::{Mode, RunError, RunOptions};

/// The mapping's file name as admins know it (`mappings/pcg-demo.toml`), for fixes.
pub fn mapping_file(m: &Mapping) -> String {
    let parent = m
        .path
        .parent()
        .and_then(|p| p.file_name())
        .map(|p| p.to_string_lossy().into_owned());
    let file = m
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    match parent {
        Some(p) => format!("{p}/{file}"),
        None => file,
    }
}

/// A PA connector as a job runs it: told whether the job also has a Chorus Pro target.
pub(super) fn pa_config(cfg: &Config, job: &Job, c: &PaConfig) -> PaConfig {
    let mut c = c.clone();
    c.chorus_in_job = crate::config::chorus_target(&job.targets, &cfg.connectors).is_some();
    c
}

/// The run of an API target of a job (Chorus Pro, Pennylane, Xero), to follow statuses; `None`
/// for targets that are files.
pub fn api_target(
    cfg: &Config,
    job: &Job,
    name: &str,
) -> Option<Result<Box<dyn TargetRun>, RunError>> {
    if matches!(
        cfg.connectors.get(name),
        Some(Connector::JournalFile(_)) | None
    ) {
        return None;
    }
    Some(one_target(cfg, job, name, false, "status"))
}

/// A target of a job built as for a dry run (no secret read, nothing called), for what it
/// knows offline (`preview`).
///
/// # Errors
///
/// The connector is not a target.
pub fn offline_target(cfg: &Config, job: &Job, name: &str) -> Result<Box<dyn TargetRun>, RunError> {
    one_target(cfg, job, name, true, "preview")
}

fn one_target(
    cfg: &Config,
    job: &Job,
    name: &str,
    dry_run: bool,
    origin: &str,
) -> Result<Box<dyn TargetRun>, RunError> {
    let opts = RunOptions {
        dry_run,
        today: chrono::Local::now().date_naive(),
        progress: None,
    };
    build_targets(cfg, job, &[name.to_owned()], &Mode::Sync, &opts, origin).map(|mut v| v.remove(0))
}

pub(super) fn build_targets(
    cfg: &Config,
    job: &Job,
    names: &[String],
    mode: &Mode,
    opts: &RunOptions,
    origin: &str,
) -> Result<Vec<Box<dyn TargetRun>>, RunError> {
    names
        .iter()
        .map(|name| match cfg.connectors.get(name) {
            Some(Connector::JournalFile(c)) => {
                let (journal, out) = match mode {
                    Mode::Export(sel) => (sel.journal.clone(), sel.out_dir.clone()),
                    Mode::Sync => (None, None),
                };
                let width = c.layout().journal_width();
                if let (Some(code), Some(w)) = (&journal, width) {
                    if code.chars().count() > w {
                        return Err(RunError::Config(format!(
                            "--journal {code}: the {} layout holds journal codes of {w} characters",
                            c.format.as_str()
                        )));
                    }
                }
                let out_dir = out.unwrap_or_else(|| cfg.resolve(&c.out_dir));
                let valid_date = match mode {
                    Mode::Export(sel) => sel.validation_date,
                    Mode::Sync => None,
                }
                .or(job.validation_date)
                .unwrap_or(opts.today);
                let run = JournalRun::new(
                    name,
                    &job.name,
                    c,
                    out_dir,
                    &cfg.company,
                    journal,
                    valid_date,
                    opts.dry_run,
                    origin,
                );
                Ok(Box::new(match mode {
                    Mode::Export(sel) => run.for_period(sel.from, sel.to),
                    Mode::Sync => run,
                }) as Box<dyn TargetRun>)
            }
            Some(Connector::ChorusPro(c)) => {
                if matches!(mode, Mode::Export(_)) {
                    return Err(RunError::Config(format!(
                        "`{name}` deposits on Chorus Pro through its API: `facto sync` sends to it; `facto export` writes files (use a chorus-ubl or chorus-cii journal-file target for the portal)"
                    )));
                }
                ChorusRun::new(name, c, opts.dry_run)
                    .map(|r| Box::new(Driven::new(r, &job.name, opts.dry_run)) as Box<dyn TargetRun>)
                    .map_err(|e| RunError::Config(e.to_string()))
            }
            Some(Connector::AfnorPa(c)) => {
                if matches!(mode, Mode::Export(_)) {
                    return Err(RunError::Config(format!(
                        "`{name}` sends to the approved platform (PA) through its API: `facto sync` sends to it"
                    )));
                }
                let c = pa_config(cfg, job, c);
                PaRun::new(name, &c, opts.dry_run)
                    .map(|r| {
                        r.with_attachments(cfg.attachment_roots(&job.source))
                            .with_notes(cfg.company.invoice_notes.clone())
                    })
                    .map(|r| Box::new(Driven::new(r, &job.name, opts.dry_run)) as Box<dyn TargetRun>)
                    .map_err(|e| RunError::Config(e.to_string()))
            }
            Some(Connector::Xero(c)) => {
                if matches!(mode, Mode::Export(_)) {
                    return Err(RunError::Config(format!(
                        "`{name}` sends to Xero through its API: `facto sync` sends to it"
                    )));
                }
                let side = cfg
                    .mapping_for(job)
                    .map_or(crate::mapping::Side::Sales, |m| m.journal.side);
                XeroRun::new(name, &job.name, c, &cfg.data_dir, opts.dry_run)
                    .map(|r| Box::new(Driven::new(r.for_side(side), &job.name, opts.dry_run)) as Box<dyn TargetRun>)
                    .map_err(|e| RunError::Config(e.to_string()))
            }
            Some(Connector::Pennylane(c)) => {
                if matches!(mode, Mode::Export(_)) {
                    return Err(RunError::Config(format!(
                        "`{name}` imports into Pennylane through its API: `facto sync` sends to it"
                    )));
                }
                PennylaneRun::new(
                    name,
                    &job.name,
                    c,
                    cfg.attachment_roots(&job.source),
                    &cfg.data_dir,
                    opts.dry_run,
                )
                    .map(|r| Box::new(Driven::new(r, &job.name, opts.dry_run)) as Box<dyn TargetRun>)
                    .map_err(|e| RunError::Config(e.to_string()))
            }
            _ => Err(RunError::Config(format!(
                "connector `{name}` is not a target facto can deliver to"
            ))),
        })
        .collect()
}
