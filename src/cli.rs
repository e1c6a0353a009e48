//! The command line: the entry point, the dispatch of each command to its module (the clap types
//! in `args`, forwarding to a running daemon in `forward`), the `Context` each command runs
//! with (its arguments, its `Output`, the daemon's ledger when the daemon runs it), and the
//! mapping of every outcome to SPEC §3's exit codes. The binary's edge: `anyhow` is used here and
//! in `main.rs` only.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::anyhow;
use chrono::NaiveDate;
use clap::Parser;

use crate::config::Config;
use crate::ledger::LedgerError;
use crate::ledger::{Ledger, SharedLedger};
use crate::report::{exit, RunReport};
use crate::sync::RunError;

mod args;
mod chorus;
mod connect;
mod events;
mod export;
mod forward;
mod ledger;
mod mappings;
mod output;
mod respond;
mod status;
mod sync;

pub use args::{
    ChorusCmd, Cli, Command, EventsCmd, ExportArgs, ExportsCmd, LedgerCmd, MappingsCmd,
};
use chorus::chorus_answer;
use connect::connect;
use export::{export, exports};
use forward::{execute_forwarded, forward_to_daemon};
use ledger::ledger_cmd;
use mappings::mappings_check;
use output::Output;
use status::status;
use sync::sync;

/// An error with the exit code it calls for.
struct Failure(u8, anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(exit::USAGE, e.into())
    }
}

fn fail(code: u8, e: impl Into<anyhow::Error>) -> Failure {
    Failure(code, e.into())
}

fn ledger_failure(e: LedgerError) -> Failure {
    match e {
        LedgerError::Unreachable(_) => fail(exit::UNREACHABLE, e),
        e => fail(exit::USAGE, e),
    }
}

fn daemon_failure(e: crate::daemon::DaemonError) -> Failure {
    match e {
        crate::daemon::DaemonError::Ledger(e) => ledger_failure(e),
        e => fail(exit::USAGE, e),
    }
}

fn run_failure(e: RunError) -> Failure {
    match e {
        RunError::Config(_) => fail(exit::USAGE, e),
        RunError::Ledger(e) => ledger_failure(e),
        RunError::Target(_) => fail(exit::UNREACHABLE, e),
    }
}

/// Parses the arguments, runs the command, returns the exit code.
pub fn main_entry() -> ExitCode {
    let mut cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing(&cli);
    if let Err(e) = tenant_config(&mut cli) {
        eprintln!("error: {e}");
        return ExitCode::from(exit::USAGE);
    }
    if let Some(code) = forward_to_daemon(&cli) {
        return code;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let mut cx = Context {
        cli: &cli,
        out: Output::stdout(cli.json),
        daemon_ledger: None,
        who: crate::ledger::WHO_CLI.to_owned(),
    };
    let result = runtime.block_on(run(&mut cx));
    if matches!(cli.command, Command::Run) {
        // A daemon pass still running after the grace period is not waited for: the ledger
        // settles it at the next start, as after any stop.
        runtime.shutdown_background();
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure(code, e)) => {
            if cli.json {
                let _ = writeln!(
                    std::io::stdout(),
                    "{}",
                    serde_json::json!({ "error": format!("{e:#}"), "exit_code": code })
                );
            }
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

/// With `--tenant NAME`, the configuration is that tenant's: `<tenants>/<NAME>/facto.toml`.
fn tenant_config(cli: &mut Cli) -> Result<(), String> {
    let Some(name) = &cli.tenant_name else {
        if cli.tenants.is_some() && !matches!(cli.command, Command::Run) {
            return Err("--tenants names a deployment: say which tenant with --tenant NAME (only `facto --tenants DIR run` serves them all)".into());
        }
        return Ok(());
    };
    let dir = cli
        .tenants
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(crate::daemon::tenants::DEFAULT_DIR));
    cli.config = crate::daemon::tenants::config_of(&dir, name)?;
    Ok(())
}

fn init_tracing(cli: &Cli) {
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("facto={level},warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// What a command runs with: its arguments, where it writes, and the ledger of the daemon when
/// the daemon runs it for a client.
struct Context<'a> {
    cli: &'a Cli,
    out: Output,
    /// The ledger the daemon holds (its lock is the daemon's): `None` when the command runs on
    /// its own.
    daemon_ledger: Option<SharedLedger>,
    /// Who runs the command, as the audit log records it (`cli`, `api`, `console:admin`...).
    who: String,
}

impl Context<'_> {
    /// The tenant the command is for (`default` for a single company).
    fn tenant(&self) -> String {
        self.cli
            .tenant_name
            .clone()
            .unwrap_or_else(|| crate::daemon::DEFAULT_TENANT.to_owned())
    }

    fn load(&self) -> Result<Config, Failure> {
        Config::load(&self.cli.config, self.cli.data_dir.as_deref())
            .map_err(|e| fail(exit::USAGE, e))
    }

    fn open_ledger(&self, cfg: &Config) -> Result<SharedLedger, Failure> {
        match &self.daemon_ledger {
            Some(l) => Ok(std::sync::Arc::clone(l)),
            None => cfg.open_ledger().map_err(ledger_failure),
        }
    }

    /// Settles what an interrupted run left (open batches rolled back, committed ones
    /// published). Inside the daemon it was done at its start: a command run for a client must
    /// not roll back the batch of a pass in flight.
    fn recover(
        &self,
        cfg: &Config,
        ledger: &dyn Ledger,
        dry_run: bool,
    ) -> Result<Vec<String>, Failure> {
        if dry_run || self.daemon_ledger.is_some() {
            return Ok(Vec::new());
        }
        crate::sync::recover(ledger, cfg).map_err(run_failure)
    }

    fn progress(&self) -> Option<indicatif::ProgressBar> {
        let cli = self.cli;
        if cli.json || cli.quiet || !std::io::stderr().is_terminal() || self.out.is_captured() {
            return None;
        }
        let pb = indicatif::ProgressBar::new_spinner();
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} {pos} documents processed {elapsed}")
        {
            pb.set_style(style);
        }
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(pb)
    }

    fn emit_reports(&mut self, reports: &[RunReport]) -> Result<u8, Failure> {
        if self.out.is_json() {
            match reports {
                [one] => self.out.json(one)?,
                many => self.out.json(&serde_json::json!({ "reports": many }))?,
            }
        } else {
            for r in reports {
                self.out.text(&r.render())?;
            }
        }
        Ok(reports
            .iter()
            .map(RunReport::exit_code)
            .max()
            .unwrap_or(exit::OK))
    }
}

fn pick_job<'a>(cfg: &'a Config, name: Option<&str>) -> Result<&'a crate::config::Job, Failure> {
    match name {
        Some(n) => cfg.job(n).map_err(|e| fail(exit::USAGE, e)),
        None => match cfg.jobs.as_slice() {
            [only] => Ok(only),
            [] => Err(fail(
                exit::USAGE,
                anyhow!("{} declares no job", cfg.path.display()),
            )),
            _ => Err(fail(
                exit::USAGE,
                anyhow!("several jobs are configured; name one with --job"),
            )),
        },
    }
}

/// `facto preview --ereporting --target <pa>`: what the job's PA target would e-report for the
/// period (nothing is sent).
fn ereporting_preview(
    cx: &mut Context<'_>,
    cfg: &Config,
    job: &str,
    target: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<u8, Failure> {
    let is_pa = cfg
        .job(job)
        .map_err(|e| fail(exit::USAGE, e))?
        .targets
        .iter()
        .any(|t| t == target)
        && matches!(
            cfg.connectors.get(target),
            Some(crate::config::Connector::AfnorPa(_))
        );
    if !is_pa {
        return Err(fail(
            exit::USAGE,
            anyhow!("--ereporting needs --target to name an afnor-pa target of job {job}; `{target}` is not one"),
        ));
    }
    let shared = cx.open_ledger(cfg)?;
    let ledger: &dyn crate::ledger::Ledger = &*shared;
    let r = crate::ereporting::Report::from_ledger(ledger, job, target, from, to)
        .map_err(|e| fail(exit::UNREACHABLE, anyhow!("{e}")))?
        .in_periods(cfg.company.vat_regime, today());
    cx.out.report(&r, crate::ereporting::Report::render)?;
    Ok(exit::OK)
}

fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

async fn run(cx: &mut Context<'_>) -> Result<u8, Failure> {
    let cli = cx.cli;
    match &cli.command {
        Command::Sync {
            job,
            dry_run,
            fail_on,
        } => sync(cx, job.as_deref(), *dry_run, *fail_on).await,
        Command::Preview {
            job,
            from,
            to,
            target,
            ereporting,
        } => {
            let mut cfg = cx.load()?;
            let job_name = pick_job(&cfg, job.as_deref())?.name.clone();
            if let (true, Some(t)) = (ereporting, target) {
                return ereporting_preview(cx, &cfg, &job_name, t, *from, *to);
            }
            if let Some(t) = target {
                cfg.add_export_target(&job_name, t)
                    .map_err(|e| fail(exit::USAGE, e))?;
            }
            let job = cfg.job(&job_name).map_err(|e| fail(exit::USAGE, e))?;
            let shared = cx.open_ledger(&cfg)?;
            let ledger: &dyn crate::ledger::Ledger = &*shared;
            let p = crate::preview::preview(&cfg, ledger, job, *from, *to, target.as_deref())
                .await
                .map_err(|e| fail(exit::UNREACHABLE, anyhow!("{e}")))?;
            cx.out.report(&p, crate::preview::Preview::render)?;
            Ok(exit::OK)
        }
        Command::Export(args) => export(cx, args).await,
        Command::Exports { cmd } => exports(cx, cmd),
        Command::Ledger { cmd } => ledger_cmd(cx, cmd),
        Command::Mappings {
            cmd: MappingsCmd::Check { job },
        } => mappings_check(cx, job.as_deref()).await,
        Command::Status { job } => status(cx, job.as_deref()).await,
        Command::Chorus { cmd } => chorus_answer(cx, cmd).await,
        Command::Events { cmd } => events::events_cmd(cx, cmd),
        Command::Respond {
            doc,
            status,
            reason,
            text,
            action,
            job,
        } => {
            let response = crate::targets::pa::respond::Response {
                status: *status,
                reason: reason.clone(),
                text: text.clone(),
                action: action.clone(),
            };
            respond::respond(cx, job.as_deref(), doc, response).await
        }
        Command::Run if cli.tenants.is_some() && cli.tenant_name.is_none() => {
            let dir = cli.tenants.clone().unwrap_or_default();
            crate::daemon::tenants::run(&dir, execute_forwarded)
                .await
                .map_err(daemon_failure)?;
            Ok(exit::OK)
        }
        Command::Run => {
            let cfg = cx.load()?;
            // Forwarded commands name this file: absolute, whatever the client's folder.
            let path = std::fs::canonicalize(&cli.config).unwrap_or_else(|_| cli.config.clone());
            crate::daemon::run(cfg, path, execute_forwarded, cx.tenant())
                .await
                .map_err(daemon_failure)?;
            Ok(exit::OK)
        }
        Command::Connect { target, tenant } => connect(cx, target, tenant.as_deref()).await,
    }
}
