//! The command line: clap types, raw arguments turned into validated settings, one function per
//! command, and the mapping of every outcome to SPEC §3's exit codes. The binary's edge: `anyhow`
//! is used here and in `main.rs` only.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use chrono::{NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::ledger::sled::SledLedger;
use crate::ledger::{AuditEvent, BatchStatus, Ledger, LedgerError, Record, RecordFilter, State};
use crate::report::{exit, RunReport};
use crate::sync::{ExportSelection, Mode, RunError, RunOptions};

/// facto — finalized invoices and credit notes to accounting software, never twice, never lost.
#[derive(Debug, Parser)]
#[command(name = "facto", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = "facto.toml")]
    pub config: PathBuf,
    /// Ledger folder (overrides `data_dir` of the configuration).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Machine-readable output (JSON) on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (errors only).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One pass of every job (or one): pull, map, check, deliver, record.
    Sync {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// Do everything but deliver and record.
        #[arg(long)]
        dry_run: bool,
        /// Which document problems exit with code 1: any (default), new (not reported by the
        /// job's previous run) or never. Overrides the job's `fail_on`.
        #[arg(long, value_enum)]
        fail_on: Option<crate::fail_on::FailOn>,
    },
    /// What a sync or export would do now, per document. Changes nothing.
    Preview {
        /// Job (default: the only job).
        #[arg(long)]
        job: Option<String>,
        /// First issue date (YYYY-MM-DD).
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Last issue date (YYYY-MM-DD).
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
    },
    /// Write one export batch (journal file) for a period.
    Export(ExportArgs),
    /// Export history: list, show, download, cancel.
    Exports {
        /// What to do.
        #[command(subcommand)]
        cmd: ExportsCmd,
    },
    /// Inspect and act on per-document transfer records.
    Ledger {
        /// What to do.
        #[command(subcommand)]
        cmd: LedgerCmd,
    },
    /// Connect a target that needs the user's consent (Xero): prints the consent URL, receives
    /// the redirect on 127.0.0.1, stores the tokens in a 0600 file under the data folder.
    Connect {
        /// Target connector name.
        target: String,
        /// The organisation to use, when the tokens reach several (id or name).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Run the daemon: every job on its schedule, status polling, the local admin API; stops
    /// cleanly on SIGINT / SIGTERM.
    Run,
    /// Follow what API targets received: Chorus Pro flow reports and invoice statuses.
    Status {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
    },
    /// Validate mapping files and list the source's unmapped codes.
    Mappings {
        /// What to do.
        #[command(subcommand)]
        cmd: MappingsCmd,
    },
    /// Answer Chorus Pro about an invoice it holds for you (suspended, or to recycle).
    Chorus {
        /// What to do.
        #[command(subcommand)]
        cmd: ChorusCmd,
    },
}

/// `facto chorus ...`.
#[derive(Debug, Subcommand)]
pub enum ChorusCmd {
    /// Complete an invoice the buyer suspended (status SUSPENDUE): a comment and files.
    Complete {
        /// Document id or invoice number.
        doc: String,
        /// The answer to what the buyer asked.
        #[arg(long)]
        comment: String,
        /// A file to attach (at most 10 MB; repeat for several).
        #[arg(long = "attach")]
        attach: Vec<PathBuf>,
        /// The Chorus Pro target, when the document went to several.
        #[arg(long)]
        target: Option<String>,
    },
    /// Correct the routing of an invoice to recycle (status A_RECYCLER).
    Recycle {
        /// Document id or invoice number.
        doc: String,
        /// The buyer's SIRET on Chorus Pro (the same one, unless it went to the wrong buyer).
        #[arg(long)]
        buyer: String,
        /// The buyer's service code.
        #[arg(long)]
        service: Option<String>,
        /// The commitment (engagement) number.
        #[arg(long)]
        commitment: Option<String>,
        /// Why.
        #[arg(long, default_value = "")]
        comment: String,
        /// The Chorus Pro target, when the document went to several.
        #[arg(long)]
        target: Option<String>,
    },
}

/// `facto export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Job (default: the only job).
    #[arg(long)]
    pub job: Option<String>,
    /// Journal-file target: one of the job's, or any journal-file connector (the format of the
    /// accounting software, e.g. sales-quadratus).
    #[arg(long)]
    pub target: String,
    /// First issue date (YYYY-MM-DD).
    #[arg(long)]
    pub from: NaiveDate,
    /// Last issue date (YYYY-MM-DD).
    #[arg(long)]
    pub to: NaiveDate,
    /// Journal code to write (default: the mapping's).
    #[arg(long, value_parser = parse_journal)]
    pub journal: Option<String>,
    /// Folder to write the file to (default: the target's `out_dir`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Export documents already in an active batch again.
    #[arg(long)]
    pub include_exported: bool,
    /// Only these document numbers.
    #[arg(long, num_args = 1..)]
    pub only: Vec<String>,
    /// Leave these document numbers out.
    #[arg(long, num_args = 1..)]
    pub exclude: Vec<String>,
    /// Validation date written in the file (FEC `ValidDate`, YYYY-MM-DD), to reproduce a file
    /// validated that day (default: the job's `validation_date`, else today).
    #[arg(long)]
    pub validation_date: Option<NaiveDate>,
}

/// `facto exports ...`.
#[derive(Debug, Subcommand)]
pub enum ExportsCmd {
    /// All batches, oldest first.
    List,
    /// One batch, its documents and the report of the run that wrote it.
    Show {
        /// Batch id.
        id: u64,
    },
    /// The exact bytes first produced.
    Download {
        /// Batch id.
        id: u64,
        /// Where to write (default: the batch's file name in the current folder; `-` for stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Cancel a batch: kept in history, its documents free for a new export.
    Cancel {
        /// Batch id.
        id: u64,
    },
}

/// `facto ledger ...`.
#[derive(Debug, Subcommand)]
pub enum LedgerCmd {
    /// Records, filtered.
    List {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        /// Only this state (held, claimed, delivered, released, accepted, rejected, paid, failed).
        #[arg(long)]
        state: Option<String>,
    },
    /// Every record of a document (by id or number), with its history.
    Show {
        /// Document id or number.
        doc: String,
    },
    /// Make a held, failed or rejected document eligible again on the next sync.
    Retry {
        /// Document id or number.
        doc: String,
        /// Only for this target.
        #[arg(long)]
        target: Option<String>,
    },
    /// Remove a record (the next sync treats the document as new). Audited.
    Forget {
        /// Document id or number.
        doc: String,
        /// Target.
        #[arg(long)]
        target: String,
        /// Job, when the document is in several.
        #[arg(long)]
        job: Option<String>,
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
    /// Kept run reports: the list, or one.
    Reports {
        /// Run id.
        run: Option<String>,
    },
}

/// `facto mappings ...`.
#[derive(Debug, Subcommand)]
pub enum MappingsCmd {
    /// Validate the mapping files and list every unmapped code of the source.
    Check {
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
    },
}

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
    fail(exit::USAGE, e)
}

fn run_failure(e: RunError) -> Failure {
    match e {
        RunError::Config(_) => fail(exit::USAGE, e),
        RunError::Ledger(e) => ledger_failure(e),
        RunError::Target(_) => fail(exit::UNREACHABLE, e),
    }
}

/// Parses the arguments, runs the command, returns the exit code.
/// `--journal`: the code also names the export file, so it is checked like the mapping's.
fn parse_journal(s: &str) -> Result<String, String> {
    if crate::mapping::code_is_valid(s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "journal code `{s}` must be 1 to 20 letters, digits, - or _"
        ))
    }
}

pub fn main_entry() -> ExitCode {
    let cli = match Cli::try_parse() {
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
    if let Some(code) = forward_to_daemon(&cli) {
        return code;
    }
    if matches!(cli.command, Command::Run) {
        let path = std::fs::canonicalize(&cli.config).unwrap_or_else(|_| cli.config.clone());
        let _ = DAEMON_CONFIG.set(path);
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
    let result = runtime.block_on(run(&cli));
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

fn load(cli: &Cli) -> Result<Config, Failure> {
    Config::load(&cli.config, cli.data_dir.as_deref()).map_err(|e| fail(exit::USAGE, e))
}

fn open_ledger(cfg: &Config) -> Result<SledLedger, Failure> {
    // Inside the daemon, commands use the ledger it holds.
    if let Some(l) = crate::daemon::SHARED.get() {
        return Ok(l.clone());
    }
    SledLedger::open(&cfg.data_dir).map_err(ledger_failure)
}

tokio::task_local! {
    /// Standard output of a command run for a client of the daemon's admin API.
    static CAPTURE: std::cell::RefCell<Vec<u8>>;
}

fn write_out(bytes: &[u8]) -> Result<(), Failure> {
    if CAPTURE
        .try_with(|c| c.borrow_mut().extend_from_slice(bytes))
        .is_ok()
    {
        return Ok(());
    }
    std::io::stdout()
        .write_all(bytes)
        .context("cannot write to stdout")?;
    Ok(())
}

/// Runs a command forwarded by a client through the daemon's admin API, with the daemon's
/// configuration and ledger; returns the exit code, standard output and error message.
fn execute_forwarded(args: Vec<String>) -> crate::daemon::Forwarded {
    Box::pin(async move {
        let config = DAEMON_CONFIG.get().cloned().unwrap_or_default();
        let mut argv = vec![
            "facto".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        argv.extend(args);
        let cli = match Cli::try_parse_from(&argv) {
            Ok(c) => c,
            Err(e) => return (exit::USAGE, Vec::new(), e.to_string()),
        };
        if let Some(refused) = refused_by_daemon(&cli, &config) {
            return (exit::USAGE, Vec::new(), refused.to_owned());
        }
        let command = CAPTURE.scope(std::cell::RefCell::new(Vec::new()), async move {
            let result = run(&cli).await;
            let out = CAPTURE.with(|c| std::mem::take(&mut *c.borrow_mut()));
            match result {
                Ok(code) => (code, out, String::new()),
                Err(Failure(code, e)) => (code, out, format!("{e:#}")),
            }
        });
        // Like a pass, a forwarded command (a whole `sync`, an `export`) runs on a thread of its
        // own, so the daemon keeps answering meanwhile.
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(command))
    })
}

/// Why the daemon refuses a forwarded command, judged on the parsed command (wherever the
/// arguments put it): the daemon and consent run on their own, and a client cannot point the
/// daemon at another configuration or ledger folder.
fn refused_by_daemon(cli: &Cli, daemon_config: &Path) -> Option<&'static str> {
    match cli.command {
        Command::Run | Command::Connect { .. } => {
            Some("`facto run` and `facto connect` do not go through the daemon: run them directly")
        }
        _ if cli.config != daemon_config || cli.data_dir.is_some() => Some(
            "--config and --data-dir are the daemon's own: a command sent to it runs with its configuration",
        ),
        _ => None,
    }
}

/// The configuration file of the daemon of this process, for forwarded commands.
static DAEMON_CONFIG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Commands that use the ledger go through a running daemon (it holds the ledger's lock).
fn forward_to_daemon(cli: &Cli) -> Option<ExitCode> {
    if !matches!(
        cli.command,
        Command::Sync { .. }
            | Command::Preview { .. }
            | Command::Export(_)
            | Command::Exports { .. }
            | Command::Ledger { .. }
            | Command::Status { .. }
            | Command::Chorus { .. }
    ) {
        return None;
    }
    let cfg = Config::load(&cli.config, cli.data_dir.as_deref()).ok()?;
    let (handle, token) = crate::daemon::running(&cfg.data_dir)?;
    let cwd = std::env::current_dir().unwrap_or_default();
    let args = forwarded_args(std::env::args().skip(1), &cwd);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    // `daemon.json` may outlive its daemon: a command goes only to a server that proves it
    // knows the token. A stale file is ignored (the command runs here); an impostor is an error.
    let verified = runtime.block_on(crate::daemon::auth::verify(
        &handle.addr,
        handle.pid,
        &token,
        &cfg.data_dir,
    ));
    let challenge = match verified {
        Ok(c) => c,
        Err(crate::daemon::auth::VerifyError::Stale(why)) => {
            tracing::info!(reason = %why, "No daemon runs for this data folder; running here.");
            return None;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Some(ExitCode::from(exit::UNREACHABLE));
        }
    };
    // The token itself is never sent: the request is signed with the single-use challenge, so
    // a program that took the daemon's port since the proof learns nothing it can reuse.
    let body = serde_json::json!({ "args": args }).to_string().into_bytes();
    let authorization =
        crate::daemon::auth::signed_header(&token, &challenge, "POST", "/api/cli", &body);
    // `None`: the daemon could not be reached, so the command runs here. A command the daemon
    // took but did not answer may have run there: it is not run a second time.
    let answer: Result<serde_json::Value, Option<String>> = runtime.block_on(async {
        let resp = reqwest::Client::new()
            .post(format!("http://{}/api/cli", handle.addr))
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(std::time::Duration::from_secs(3600))
            .send()
            .await
            .map_err(|e| (!e.is_connect()).then(|| e.to_string()))?;
        resp.json().await.map_err(|e| Some(e.to_string()))
    });
    let answer = match answer {
        // Refused before running: the challenge expired or was pushed out by others.
        Ok(a) if a.get("exit_code").is_none() && a.get("error").is_some() => {
            eprintln!(
                "error: the running daemon refused the command, which did not run ({}); run it again",
                a["error"].as_str().unwrap_or_default()
            );
            return Some(ExitCode::from(exit::UNREACHABLE));
        }
        Ok(a) => a,
        Err(None) => return None,
        Err(Some(e)) => {
            eprintln!(
                "error: the running daemon took the command but did not answer ({e}); it may have run there. Look with `facto ledger show` or `facto exports list` before running it again"
            );
            return Some(ExitCode::from(exit::UNREACHABLE));
        }
    };
    use base64::Engine as _;
    let out = base64::engine::general_purpose::STANDARD
        .decode(answer["stdout"].as_str().unwrap_or(""))
        .unwrap_or_default();
    let _ = std::io::stdout().write_all(&out);
    if let Some(e) = answer["error"].as_str().filter(|e| !e.is_empty()) {
        eprintln!("error: {e}");
    }
    let code = answer["exit_code"]
        .as_u64()
        .unwrap_or(u64::from(exit::USAGE));
    Some(ExitCode::from(u8::try_from(code).unwrap_or(exit::USAGE)))
}

/// The arguments a client sends to the daemon: its own `--config` / `--data-dir` are dropped
/// (the daemon uses its configuration), and relative paths given to `--out` and `--attach`
/// (either form) are made absolute, since the daemon runs in another folder.
fn forwarded_args(argv: impl Iterator<Item = String>, cwd: &Path) -> Vec<String> {
    let absolute = |v: &str| {
        let p = PathBuf::from(v);
        if v == "-" || p.is_absolute() {
            v.to_owned()
        } else {
            cwd.join(p).display().to_string()
        }
    };
    let mut args = Vec::new();
    let mut it = argv.peekable();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "--data-dir" => {
                it.next();
            }
            _ if a.starts_with("--config=") || a.starts_with("--data-dir=") => {}
            _ if a.starts_with("--out=") || a.starts_with("--attach=") => {
                let (flag, v) = a.split_once('=').unwrap_or((a.as_str(), ""));
                args.push(format!("{flag}={}", absolute(v)));
            }
            "--out" | "--attach" => {
                args.push(a);
                if let Some(v) = it.next() {
                    args.push(absolute(&v));
                }
            }
            _ => args.push(a),
        }
    }
    args
}

/// Settles what an interrupted run left (open batches rolled back, committed ones published).
/// Inside the daemon it was done at its start: a command run for a client must not roll back
/// the batch of a pass in flight.
fn recover(cfg: &Config, ledger: &SledLedger, dry_run: bool) -> Result<Vec<String>, Failure> {
    if dry_run || crate::daemon::SHARED.get().is_some() {
        return Ok(Vec::new());
    }
    crate::sync::recover(ledger, cfg).map_err(run_failure)
}

fn print_json(v: &impl serde::Serialize) -> Result<(), Failure> {
    let mut s = serde_json::to_string_pretty(v).context("cannot encode the JSON output")?;
    s.push('\n');
    write_out(s.as_bytes())
}

fn out(s: &str) -> Result<(), Failure> {
    write_out(s.as_bytes())
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

fn progress(cli: &Cli) -> Option<indicatif::ProgressBar> {
    if cli.json || cli.quiet || !std::io::stderr().is_terminal() || CAPTURE.try_with(|_| ()).is_ok()
    {
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

fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

async fn run(cli: &Cli) -> Result<u8, Failure> {
    match &cli.command {
        Command::Sync {
            job,
            dry_run,
            fail_on,
        } => sync(cli, job.as_deref(), *dry_run, *fail_on).await,
        Command::Preview {
            job,
            from,
            to,
            target,
        } => {
            let mut cfg = load(cli)?;
            let job_name = pick_job(&cfg, job.as_deref())?.name.clone();
            if let Some(t) = target {
                cfg.add_export_target(&job_name, t)
                    .map_err(|e| fail(exit::USAGE, e))?;
            }
            let job = cfg.job(&job_name).map_err(|e| fail(exit::USAGE, e))?;
            let ledger = open_ledger(&cfg)?;
            let p = crate::preview::preview(&cfg, &ledger, job, *from, *to, target.as_deref())
                .await
                .map_err(|e| fail(exit::UNREACHABLE, anyhow!("{e}")))?;
            if cli.json {
                print_json(&p)?;
            } else {
                out(&p.render())?;
            }
            Ok(exit::OK)
        }
        Command::Export(args) => export(cli, args).await,
        Command::Exports { cmd } => exports(cli, cmd),
        Command::Ledger { cmd } => ledger_cmd(cli, cmd),
        Command::Mappings {
            cmd: MappingsCmd::Check { job },
        } => mappings_check(cli, job.as_deref()).await,
        Command::Status { job } => status(cli, job.as_deref()).await,
        Command::Chorus { cmd } => chorus_answer(cli, cmd).await,
        Command::Run => {
            let cfg = load(cli)?;
            let path = DAEMON_CONFIG
                .get()
                .cloned()
                .unwrap_or_else(|| cli.config.clone());
            crate::daemon::run(cfg, path, execute_forwarded)
                .await
                .map_err(|e| match e {
                    crate::daemon::DaemonError::Ledger(e) => ledger_failure(e),
                    e => fail(exit::USAGE, e),
                })?;
            Ok(exit::OK)
        }
        Command::Connect { target, tenant } => connect(cli, target, tenant.as_deref()).await,
    }
}

async fn connect(cli: &Cli, target: &str, tenant: Option<&str>) -> Result<u8, Failure> {
    let mut cfg = load(cli)?;
    let job = cfg.jobs.first().map(|j| j.name.clone()).unwrap_or_default();
    // The connector may not be in a job yet: connect comes first.
    let _ = cfg.add_export_target(&job, target);
    let connector = cfg.connectors.get(target).cloned().or_else(|| {
        let file = cfg.connectors_dir.join(format!("{target}.toml"));
        crate::config::load_connector(&file).ok()
    });
    let json = cli.json;
    let announce = |port: u16| {
        move |url: &str| {
            let msg = format!("Open this address in a browser and allow facto:\n\n  {url}\n\nWaiting for the answer on 127.0.0.1:{port}...\n");
            if json {
                eprint!("{msg}");
            } else {
                print!("{msg}");
            }
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
        }
    };
    let result = match connector {
        Some(crate::config::Connector::Xero(c)) => {
            let store = crate::target::xero::token_path(&c, &cfg.data_dir, target);
            crate::connect::connect_xero(target, &c, &store, tenant, announce(c.redirect_port)).await
        }
        Some(crate::config::Connector::Pennylane(c)) => {
            let store = crate::target::pennylane::token_path(&c, &cfg.data_dir, target);
            crate::connect::connect_pennylane(&c, &store, announce(c.redirect_port)).await
        }
        Some(_) => {
            return Err(fail(
                exit::USAGE,
                anyhow!("`{target}` needs no consent: Xero and Pennylane (OAuth2) targets are connected this way"),
            ))
        }
        None => {
            return Err(fail(
                exit::USAGE,
                anyhow!("no connector `{target}` in {}", cfg.connectors_dir.display()),
            ))
        }
    };
    let done = result.map_err(|e| match e {
        crate::connect::ConnectError::Usage(m) => fail(exit::USAGE, anyhow!(m)),
        crate::connect::ConnectError::Remote(m) => fail(exit::UNREACHABLE, anyhow!(m)),
    })?;
    if cli.json {
        print_json(&done)?;
    } else {
        out(&format!(
            "connected to {} ({}); tokens in {}\n",
            done.tenant.name, done.tenant.id, done.token_file
        ))?;
    }
    Ok(exit::OK)
}

/// `facto chorus complete|recycle`: one answer to Chorus Pro about one invoice.
async fn chorus_answer(cli: &Cli, cmd: &ChorusCmd) -> Result<u8, Failure> {
    use crate::config::Connector;
    use crate::target::chorus::answer::{self, Answer, AnswerError};
    let cfg = load(cli)?;
    let ledger = open_ledger(&cfg)?;
    let (doc, target, answer) = match cmd {
        ChorusCmd::Complete {
            doc,
            comment,
            attach,
            target,
        } => {
            let mut files = Vec::with_capacity(attach.len());
            for path in attach {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // The limits first, so that a huge file is never read.
                let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                answer::check_file(&name, size).map_err(|e| fail(exit::USAGE, e))?;
                let bytes = std::fs::read(path).map_err(|e| {
                    fail(
                        exit::USAGE,
                        anyhow::anyhow!("cannot read {}: {e}", path.display()),
                    )
                })?;
                files.push((name, bytes));
            }
            let answer = Answer::Complete {
                comment: comment.clone(),
                files,
            };
            (doc, target, answer)
        }
        ChorusCmd::Recycle {
            doc,
            buyer,
            service,
            commitment,
            comment,
            target,
        } => {
            let routing = crate::target::chorus::api::Routing {
                buyer_siret: buyer.clone(),
                service: service.clone(),
                commitment: commitment.clone(),
                comment: comment.clone(),
            };
            (doc, target, Answer::Recycle(routing))
        }
    };
    let records: Vec<_> = ledger
        .find(doc)
        .map_err(ledger_failure)?
        .into_iter()
        .filter(|r| {
            matches!(
                cfg.connectors.get(&r.key.target),
                Some(Connector::ChorusPro(_))
            )
        })
        .filter(|r| target.as_ref().is_none_or(|t| *t == r.key.target))
        .collect();
    let rec = match records.as_slice() {
        [r] => r,
        [] => {
            return Err(fail(
                exit::USAGE,
                anyhow::anyhow!("no Chorus Pro record for `{doc}` (see `facto ledger show {doc}`)"),
            ))
        }
        many => {
            let targets: Vec<String> = many.iter().map(|r| r.key.to_string()).collect();
            return Err(fail(
                exit::USAGE,
                anyhow::anyhow!(
                    "`{doc}` went to several Chorus Pro targets ({}); choose one with --target",
                    targets.join(", ")
                ),
            ));
        }
    };
    let Some(Connector::ChorusPro(chorus)) = cfg.connectors.get(&rec.key.target) else {
        return Err(fail(exit::USAGE, anyhow::anyhow!("no Chorus Pro target")));
    };
    match answer::send(chorus, &ledger, &rec.key, answer).await {
        Ok(done) => {
            if cli.json {
                print_json(&serde_json::json!({"doc": rec.key.to_string(), "done": done}))?;
            } else {
                out(&format!("{done}\n"))?;
            }
            Ok(exit::OK)
        }
        Err(e @ AnswerError::NotApplicable(_)) => Err(fail(exit::USAGE, e)),
        Err(e @ AnswerError::Refused(_)) => Err(fail(exit::PROBLEMS, e)),
        Err(e @ AnswerError::Remote(_)) => Err(fail(exit::UNREACHABLE, e)),
        Err(AnswerError::Ledger(e)) => Err(ledger_failure(e)),
    }
}

async fn status(cli: &Cli, job: Option<&str>) -> Result<u8, Failure> {
    let cfg = load(cli)?;
    let jobs: Vec<&crate::config::Job> = match job {
        Some(n) => vec![cfg.job(n).map_err(|e| fail(exit::USAGE, e))?],
        None => cfg.jobs.iter().collect(),
    };
    let ledger = open_ledger(&cfg)?;
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
    if cli.json {
        print_json(&out_json)?;
    } else if out_json.is_empty() {
        out("no API target to follow (chorus-pro, pennylane or xero)\n")?;
    } else {
        out(&text)?;
    }
    Ok(code)
}

fn emit_reports(cli: &Cli, reports: &[RunReport]) -> Result<u8, Failure> {
    if cli.json {
        match reports {
            [one] => print_json(one)?,
            many => print_json(&serde_json::json!({ "reports": many }))?,
        }
    } else {
        for r in reports {
            out(&r.render())?;
        }
    }
    Ok(reports
        .iter()
        .map(RunReport::exit_code)
        .max()
        .unwrap_or(exit::OK))
}

async fn sync(
    cli: &Cli,
    job: Option<&str>,
    dry_run: bool,
    fail_on: Option<crate::fail_on::FailOn>,
) -> Result<u8, Failure> {
    let cfg = load(cli)?;
    let jobs: Vec<&crate::config::Job> = match job {
        Some(n) => vec![cfg.job(n).map_err(|e| fail(exit::USAGE, e))?],
        None => cfg.jobs.iter().collect(),
    };
    let ledger = open_ledger(&cfg)?;
    let recovery = recover(&cfg, &ledger, dry_run)?;
    let pb = progress(cli);
    let opts = RunOptions {
        dry_run,
        today: today(),
        progress: pb.clone(),
    };
    let mut reports = Vec::new();
    let mut code = exit::OK;
    for (i, j) in jobs.into_iter().enumerate() {
        let mut r = crate::sync::run_job(&cfg, &ledger, j, &Mode::Sync, &opts)
            .await
            .map_err(run_failure)?;
        if i == 0 {
            r.recovery.clone_from(&recovery);
        }
        code = code.max(fail_on.unwrap_or(j.fail_on).exit_code(&r));
        reports.push(r);
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    emit_reports(cli, &reports)?;
    Ok(code)
}

async fn export(cli: &Cli, a: &ExportArgs) -> Result<u8, Failure> {
    if a.from > a.to {
        return Err(fail(
            exit::USAGE,
            anyhow!("--from {} is after --to {}", a.from, a.to),
        ));
    }
    let mut cfg = load(cli)?;
    let job_name = pick_job(&cfg, a.job.as_deref())?.name.clone();
    cfg.add_export_target(&job_name, &a.target)
        .map_err(|e| fail(exit::USAGE, e))?;
    let job = cfg.job(&job_name).map_err(|e| fail(exit::USAGE, e))?;
    let ledger = open_ledger(&cfg)?;
    let recovery = recover(&cfg, &ledger, false)?;
    let pb = progress(cli);
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
    let mut r = crate::sync::run_job(&cfg, &ledger, job, &Mode::Export(sel), &opts)
        .await
        .map_err(run_failure)?;
    r.recovery = recovery;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if r.batches.is_empty() && r.error.is_none() && !cli.json {
        out("no document to export in this period (see `facto preview`)\n")?;
    }
    emit_reports(cli, &[r])
}

fn exports(cli: &Cli, cmd: &ExportsCmd) -> Result<u8, Failure> {
    let cfg = load(cli)?;
    let ledger = open_ledger(&cfg)?;
    match cmd {
        ExportsCmd::List => {
            let batches = ledger.batches().map_err(ledger_failure)?;
            if cli.json {
                print_json(&batches)?;
            } else if batches.is_empty() {
                out("no export batch yet\n")?;
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
                out(&s)?;
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
            if cli.json {
                let docs: Vec<_> = docs
                    .iter()
                    .map(|r| serde_json::json!({"doc_id": r.key.doc_id, "number": r.number, "customer": r.customer_name, "gross": r.gross, "state": r.state, "batch_id": r.batch_id}))
                    .collect();
                print_json(
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
                out(&s)?;
            }
            Ok(exit::OK)
        }
        ExportsCmd::Download { id, out: dest } => {
            let b = ledger
                .batch(*id)
                .map_err(ledger_failure)?
                .ok_or_else(|| anyhow!("no export batch {id}; `facto exports list` shows them"))?;
            let bytes = ledger.batch_file(*id).map_err(ledger_failure)?;
            if hex::encode(Sha256::digest(&bytes)) != b.sha256 {
                return Err(fail(exit::USAGE, anyhow!("the stored bytes of batch {id} do not match its recorded sha256; the ledger is damaged")));
            }
            match dest.as_deref() {
                Some(p) if p == Path::new("-") => write_out(&bytes)?,
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
                    if cli.json {
                        print_json(
                            &serde_json::json!({"batch": id, "path": path, "bytes": bytes.len(), "sha256": b.sha256}),
                        )?;
                    } else {
                        out(&format!(
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
                detail: format!("export batch {id} cancelled from the command line"),
            };
            let (b, n) = ledger.cancel_batch(*id, audit).map_err(|e| match e {
                LedgerError::NotFound(_) | LedgerError::Invalid(_) => fail(exit::USAGE, e),
                e => ledger_failure(e),
            })?;
            // Its file leaves its importable name, so nobody imports a cancelled batch.
            use crate::target::journal_file::{set_aside, SetAside};
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
            if cli.json {
                print_json(&serde_json::json!({"batch": b, "released": n, "file": file}))?;
            } else {
                out(&format!(
                    "export batch {id} cancelled ({}): {n} documents are free for a new export; {file}. It stays in the history and can still be downloaded.\nIf its file was already imported into the accounting software, delete that import there before importing a new export.\n",
                    b.file_name
                ))?;
            }
            Ok(exit::OK)
        }
    }
}

fn record_line(r: &Record) -> String {
    let why = r
        .problems
        .first()
        .map(|p| format!("{}: {}", crate::problem::field_label(&p.field), p.message))
        .unwrap_or_default();
    format!(
        "{:<8} {:<12} {:<18} {:<14} {:<10} {:>6}  {}  {}\n",
        r.key.job,
        r.key.target,
        crate::model::shown_id(&r.key.doc_id),
        r.number,
        r.state.as_str(),
        r.batch_id.map(|b| b.to_string()).unwrap_or_default(),
        r.updated_at.format("%Y-%m-%d %H:%M"),
        why
    )
}

fn find_records(
    ledger: &SledLedger,
    doc: &str,
    target: Option<&str>,
) -> Result<Vec<Record>, Failure> {
    let found: Vec<Record> = ledger
        .find(doc)
        .map_err(ledger_failure)?
        .into_iter()
        .filter(|r| target.is_none_or(|t| r.key.target == t))
        .collect();
    if found.is_empty() {
        return Err(fail(
            exit::USAGE,
            anyhow!(
                "no ledger record for document `{doc}`{}",
                target
                    .map(|t| format!(" and target {t}"))
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(found)
}

fn ledger_cmd(cli: &Cli, cmd: &LedgerCmd) -> Result<u8, Failure> {
    let cfg = load(cli)?;
    let ledger = open_ledger(&cfg)?;
    match cmd {
        LedgerCmd::List { job, target, state } => {
            let state = match state.as_deref() {
                Some(s) => Some(State::parse(s).ok_or_else(|| {
                    let all: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
                    anyhow!("unknown state `{s}`; one of: {}", all.join(", "))
                })?),
                None => None,
            };
            let records = ledger
                .list(&RecordFilter {
                    job: job.clone(),
                    target: target.clone(),
                    state,
                })
                .map_err(ledger_failure)?;
            if cli.json {
                print_json(&records)?;
            } else {
                let mut s = format!(
                    "{:<8} {:<12} {:<18} {:<14} {:<10} {:>6}  {:<16}  {}\n",
                    "job", "target", "doc", "number", "state", "batch", "updated", "problem"
                );
                for r in &records {
                    s.push_str(&record_line(r));
                }
                s.push_str(&format!("{} records\n", records.len()));
                out(&s)?;
            }
            Ok(exit::OK)
        }
        LedgerCmd::Show { doc } => {
            let found = find_records(&ledger, doc, None)?;
            if cli.json {
                print_json(&found)?;
            } else {
                let mut s = String::new();
                for r in &found {
                    s.push_str(&format!(
                        "{} — {} {} ({} {}), state {}\n  origin {}\n  source sha256 {}\n  payload sha256 {}\n  mapping sha256 {}\n  batch {} · attempts {}{}\n",
                        r.key, r.kind, r.number, r.customer_id, r.customer_name, r.state.as_str(), r.origin, r.source_hash,
                        r.payload_hash.as_deref().unwrap_or("-"), r.mapping_hash.as_deref().unwrap_or("-"),
                        r.batch_id.map(|b| b.to_string()).unwrap_or_else(|| "-".into()), r.attempts,
                        r.last_error.as_ref().map(|e| format!("\n  last error: {e}")).unwrap_or_default()
                    ));
                    for p in &r.problems {
                        s.push_str(&format!(
                            "  problem {}: {}\n    fix: {}\n",
                            crate::problem::field_label(&p.field),
                            p.message,
                            p.fix
                        ));
                    }
                    if let Some(c) = &r.changed_after_delivery {
                        s.push_str(&format!(
                            "  changed in the source after delivery (seen {}):\n",
                            c.detected_at.format("%Y-%m-%d %H:%M")
                        ));
                        for ch in &c.changes {
                            s.push_str(&format!(
                                "    {}: {} → {}\n",
                                crate::problem::field_label(&ch.field),
                                ch.before,
                                ch.after
                            ));
                        }
                    }
                    s.push_str("  history:\n");
                    for e in &r.history {
                        s.push_str(&format!(
                            "    {} {:<10} {}\n",
                            e.at.format("%Y-%m-%d %H:%M:%S"),
                            e.state.as_str(),
                            e.note
                        ));
                    }
                }
                out(&s)?;
            }
            Ok(exit::OK)
        }
        LedgerCmd::Retry { doc, target } => {
            let found = find_records(&ledger, doc, target.as_deref())?;
            let now = Utc::now();
            let mut changed = Vec::new();
            let mut notes = Vec::new();
            for mut r in found {
                match r.state {
                    State::Held => notes.push(format!("{}: held; it is checked again by the next sync", r.key)),
                    State::Failed | State::Rejected | State::Released => {
                        r.transition(State::Released, "retry asked from the command line", now);
                        notes.push(format!("{}: released; the next sync delivers it again", r.key));
                        changed.push(r);
                    }
                    State::Claimed => {
                        return Err(fail(exit::USAGE, anyhow!("{} is claimed by a delivery in progress; run `facto sync` to complete it", r.key)))
                    }
                    _ => {
                        return Err(fail(exit::USAGE, anyhow!(
                            "{} is {} (batch {}): it is never sent twice; cancel its batch (`facto exports cancel {}`) or export with --include-exported",
                            r.key,
                            r.state.as_str(),
                            r.batch_id.map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
                            r.batch_id.map(|b| b.to_string()).unwrap_or_else(|| "ID".into())
                        )))
                    }
                }
            }
            ledger.put_records(&changed).map_err(ledger_failure)?;
            let mut jobs: Vec<&str> = changed.iter().map(|r| r.key.job.as_str()).collect();
            jobs.sort_unstable();
            jobs.dedup();
            for j in jobs {
                ledger.request_rescan(j).map_err(ledger_failure)?;
            }
            ledger
                .audit(AuditEvent {
                    at: now,
                    action: "retry".into(),
                    detail: notes.join("; "),
                })
                .map_err(ledger_failure)?;
            if cli.json {
                print_json(&notes)?;
            } else {
                out(&(notes.join("\n") + "\n"))?;
            }
            Ok(exit::OK)
        }
        LedgerCmd::Forget {
            doc,
            target,
            job,
            yes,
        } => {
            let found: Vec<Record> = find_records(&ledger, doc, Some(target))?
                .into_iter()
                .filter(|r| job.as_ref().is_none_or(|j| r.key.job == *j))
                .collect();
            let [r] = found.as_slice() else {
                if found
                    .iter()
                    .any(|r| r.key.doc_id.starts_with(crate::model::MALFORMED_ID))
                {
                    return Err(fail(
                        exit::USAGE,
                        anyhow!("`{doc}` names a malformed document and another record; `malformed:{doc}` names the malformed one"),
                    ));
                }
                return Err(fail(
                    exit::USAGE,
                    anyhow!("`{doc}` has records in several jobs; name one with --job"),
                ));
            };
            if !yes {
                return Err(fail(exit::USAGE, anyhow!(
                    "forget removes the record of {} ({}): the next sync treats the document as new and may deliver it again. Add --yes to confirm",
                    r.key,
                    r.state.as_str()
                )));
            }
            let audit = AuditEvent {
                at: Utc::now(),
                action: "forget".into(),
                detail: format!(
                    "{} forgotten (was {}, batch {:?}, payload {:?})",
                    r.key,
                    r.state.as_str(),
                    r.batch_id,
                    r.payload_hash
                ),
            };
            let removed = ledger.forget(&r.key, audit).map_err(|e| match e {
                LedgerError::Invalid(_) => fail(exit::USAGE, e),
                e => ledger_failure(e),
            })?;
            // The source is read again from the start, so the document is seen as new.
            ledger
                .request_rescan(&removed.key.job)
                .map_err(ledger_failure)?;
            if cli.json {
                print_json(&removed)?;
            } else {
                out(&format!(
                    "forgot {} (was {}); audited\n",
                    removed.key,
                    removed.state.as_str()
                ))?;
            }
            Ok(exit::OK)
        }
        LedgerCmd::Reports { run } => {
            match run {
                Some(id) => {
                    let rep = ledger
                        .report(id)
                        .map_err(ledger_failure)?
                        .ok_or_else(|| anyhow!("no kept report for run {id}"))?;
                    if cli.json {
                        print_json(&rep)?;
                    } else {
                        let r: RunReport =
                            serde_json::from_value(rep).context("the kept report is unreadable")?;
                        out(&r.render())?;
                    }
                }
                None => {
                    let ids = ledger.report_ids().map_err(ledger_failure)?;
                    if cli.json {
                        print_json(&ids)?;
                    } else {
                        out(&(ids.join("\n") + "\n"))?;
                    }
                }
            }
            Ok(exit::OK)
        }
    }
}

async fn mappings_check(cli: &Cli, job: Option<&str>) -> Result<u8, Failure> {
    let cfg = load(cli)?;
    let jobs: Vec<&crate::config::Job> = match job {
        Some(n) => vec![cfg.job(n).map_err(|e| fail(exit::USAGE, e))?],
        None => cfg.jobs.iter().collect(),
    };
    let mut results = Vec::new();
    let mut any_gap = false;
    for j in jobs {
        let m = &cfg.mappings[&j.mapping];
        let scan = crate::preview::mapping_gaps(&cfg, j)
            .await
            .map_err(|e| fail(exit::UNREACHABLE, e))?;
        let (docs, gaps) = (scan.documents, scan.gaps);
        // A document that could not be read had its codes unchecked: not a clean bill.
        any_gap |= !gaps.is_empty() || !scan.unreadable.is_empty();
        results.push(serde_json::json!({
            "job": j.name,
            "mapping": m.path,
            "valid": true,
            "gl_accounts": m.gl.accounts.len(),
            "gl_products": m.gl.products.len(),
            "tax_codes": m.tax.len(),
            "customers": m.customers.accounts.len(),
            "documents_scanned": docs,
            "unmapped": gaps,
            "unreadable": scan.unreadable,
        }));
    }
    if cli.json {
        print_json(&serde_json::json!({ "jobs": results }))?;
    } else {
        let mut s = String::new();
        for r in &results {
            s.push_str(&format!(
                "{}: valid — {} GL accounts, {} products, {} tax codes, {} customers (job {})\n",
                r["mapping"].as_str().unwrap_or_default(),
                r["gl_accounts"],
                r["gl_products"],
                r["tax_codes"],
                r["customers"],
                r["job"].as_str().unwrap_or_default()
            ));
            let unreadable = r["unreadable"].as_array().cloned().unwrap_or_default();
            if !unreadable.is_empty() {
                s.push_str(&format!(
                    "  {} source document(s) could not be read, so their codes are not checked:\n",
                    unreadable.len()
                ));
                for u in unreadable.iter().take(5) {
                    s.push_str(&format!("  - {}\n", u.as_str().unwrap_or_default()));
                }
            }
            let gaps = r["unmapped"].as_array().cloned().unwrap_or_default();
            if gaps.is_empty() && !unreadable.is_empty() && r["documents_scanned"] == 0 {
                s.push_str("  no document could be read from the source: nothing was checked\n");
            } else if gaps.is_empty() && r["documents_scanned"] == 0 {
                s.push_str("  the source holds no document yet: no code to check\n");
            } else if gaps.is_empty() {
                s.push_str(&format!(
                    "  every code of the {} documents in the source is mapped\n",
                    r["documents_scanned"]
                ));
            } else {
                s.push_str(&format!(
                    "  codes in the source with no mapping ({} documents scanned):\n",
                    r["documents_scanned"]
                ));
                for g in gaps {
                    let ex: Vec<String> = g["examples"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    let missing = g["key"]
                        .as_str()
                        .map(|k| format!(" lacks {k} (needed by a target of the job);"))
                        .unwrap_or_default();
                    s.push_str(&format!(
                        "  - [{}.\"{}\"]{missing} used by {} document(s), e.g. {}\n",
                        g["table"].as_str().unwrap_or_default(),
                        g["code"].as_str().unwrap_or_default(),
                        g["documents"],
                        ex.join(", ")
                    ));
                }
            }
        }
        out(&s)?;
    }
    Ok(if any_gap { exit::PROBLEMS } else { exit::OK })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_commands_drop_client_settings_and_make_paths_absolute() {
        let argv = [
            "--config",
            "other.toml",
            "--data-dir=elsewhere",
            "chorus",
            "complete",
            "F1",
            "--attach",
            "bl.pdf",
            "--attach=docs/pv.pdf",
            "--attach",
            "/abs/x.pdf",
            "--out=-",
            "--comment",
            "ok",
        ]
        .map(String::from);
        let got = forwarded_args(argv.into_iter(), Path::new("/home/u"));
        assert_eq!(
            got,
            [
                "chorus",
                "complete",
                "F1",
                "--attach",
                "/home/u/bl.pdf",
                "--attach=/home/u/docs/pv.pdf",
                "--attach",
                "/abs/x.pdf",
                "--out=-",
                "--comment",
                "ok",
            ]
        );
    }

    #[test]
    fn the_daemon_refuses_by_command_wherever_the_arguments_put_it() {
        let daemon = Path::new("/etc/facto.toml");
        let parse = |args: &[&str]| {
            let mut argv = vec!["facto", "--config", "/etc/facto.toml"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv)
        };
        for args in [
            &["run"][..],
            &["--data-dir", "X", "run"],
            &["--json", "run"],
            &["-v", "connect", "xero"],
            &["--config", "/tmp/other.toml", "ledger", "list"],
            &["ledger", "list", "--data-dir=X"],
        ] {
            // A second `--config` is already a usage error.
            assert!(
                parse(args).map_or(true, |c| refused_by_daemon(&c, daemon).is_some()),
                "{args:?}"
            );
        }
        let plain = parse(&["--json", "ledger", "list"]).unwrap();
        assert_eq!(refused_by_daemon(&plain, daemon), None);
    }
}
