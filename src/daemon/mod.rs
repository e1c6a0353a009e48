//! `facto run`: the daemon. It holds the ledger (sled's exclusive lock) and:
//! - runs each job on its schedule (never two passes of one job at once; a failing pass backs
//!   off that job only) and polls API statuses on their own schedule;
//! - serves the local admin API: `/health`, Prometheus `/metrics`, and `/api/cli`, through which
//!   every CLI command that needs the ledger runs while the daemon holds it. Every request but
//!   `/health` and the proof of `/api/hello` ([`auth`]) needs the bearer token of
//!   `<data_dir>/admin-token` (0600, created on first start) or a signature with a challenge of
//!   `/api/hello` (what the CLI sends); connections are bounded in number
//!   and time ([`http::Gate`]);
//! - keeps the PA webhooks registered and serves their endpoint, which brings the status poll
//!   forward (`pa_webhook`);
//! - on SIGINT / SIGTERM stops taking work, lets passes in flight finish within a bound, records
//!   them and exits 0; a second signal exits at once (the ledger rules still hold).

mod api;
pub mod auth;
pub mod console;
pub mod editor;
pub mod http;
pub mod ingest;
mod mount;
mod pa_webhook;
pub mod tenants;
pub use crate::schedule;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::config::{Config, Job};
use crate::fsutil;
use crate::ledger::{Ledger, SharedLedger};
use crate::sync::{run_job, Mode, RunOptions};

/// Errors that stop the daemon from starting.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Configuration (address, schedules).
    #[error("{0}")]
    Config(String),
    /// The ledger.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// A file or the socket.
    #[error("{0}")]
    Io(String),
}

/// What the daemon has done, for `/health` and `/metrics`.
#[derive(Default)]
pub struct Stats {
    last_success: BTreeMap<String, DateTime<Utc>>,
    passes: BTreeMap<(String, &'static str), u64>,
}

/// Where a running daemon can be reached (`<data_dir>/daemon.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Handle {
    /// Admin API address.
    pub addr: String,
    /// Process id.
    pub pid: u32,
}

/// The tenant name of a daemon serving one company (`/api/v1/tenants/default/documents`).
pub const DEFAULT_TENANT: &str = "default";

/// The admin token file.
pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-token")
}

/// The handle file.
pub fn handle_path(data_dir: &Path) -> PathBuf {
    data_dir.join("daemon.json")
}

fn admin_token(data_dir: &Path) -> Result<String, DaemonError> {
    token_at(token_path(data_dir))
}

/// The shortest token the daemon accepts from a file an admin wrote.
const MIN_TOKEN_LEN: usize = 24;

/// The token in file `p`, created (random, 0600) when there is none. A token an admin wrote that
/// is too short to resist guessing is refused: the daemon does not start. (Every file of the
/// data folder is made 0600 when the ledger opens, a token file included.)
fn token_at(p: PathBuf) -> Result<String, DaemonError> {
    if let Ok(t) = std::fs::read_to_string(&p) {
        if !t.trim().is_empty() {
            if t.trim().chars().count() < MIN_TOKEN_LEN {
                return Err(DaemonError::Config(format!(
                    "the token in {} is shorter than {MIN_TOKEN_LEN} characters; delete the file and the daemon makes a random one",
                    p.display()
                )));
            }
            return Ok(t.trim().to_owned());
        }
    }
    let token = format!(
        "{}{}",
        oauth2::CsrfToken::new_random().secret(),
        oauth2::CsrfToken::new_random().secret()
    );
    fsutil::write_atomic(&p, token.as_bytes(), Some(0o600))
        .map_err(|e| DaemonError::Io(format!("cannot write {}: {e}", p.display())))?;
    Ok(token)
}

/// Runs a forwarded CLI command (argv without the program name) with the daemon's configuration
/// file and the ledger it holds, on behalf of its fourth argument (who acts, as the audit log
/// records it: [`WHO_CLI`], [`WHO_API`], `console:<role>`), for the tenant of its fifth, and
/// returns its exit code, its standard output and its error message.
pub type Executor = fn(Vec<String>, PathBuf, SharedLedger, String, String) -> Forwarded;

pub use crate::ledger::{WHO_API, WHO_CLI, WHO_SYNC};

/// The outcome of a forwarded command: exit code, standard output, error message.
pub type Forwarded =
    std::pin::Pin<Box<dyn std::future::Future<Output = (u8, Vec<u8>, String)> + Send>>;

/// A Prometheus label value: backslash, double quote and line feed escaped (exposition format).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn metrics(cfg: &Config, ledger: &dyn Ledger, stats: &Stats) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# HELP facto_documents Documents per job, target and ledger state."
    );
    let _ = writeln!(s, "# TYPE facto_documents gauge");
    for j in &cfg.jobs {
        for t in &j.targets {
            if let Ok(counts) = ledger.count_states(&j.name, t) {
                for (state, n) in counts {
                    let _ = writeln!(
                        s,
                        "facto_documents{{job=\"{}\",target=\"{}\",state=\"{}\"}} {n}",
                        label(&j.name),
                        label(t),
                        label(state.as_str())
                    );
                }
            }
        }
    }
    let _ = writeln!(
        s,
        "# HELP facto_last_success_timestamp_seconds End of the last pass without error, per job."
    );
    let _ = writeln!(s, "# TYPE facto_last_success_timestamp_seconds gauge");
    for (job, at) in &stats.last_success {
        let _ = writeln!(
            s,
            "facto_last_success_timestamp_seconds{{job=\"{}\"}} {}",
            label(job),
            at.timestamp()
        );
    }
    let _ = writeln!(
        s,
        "# HELP facto_passes_total Passes run by the daemon, per job and outcome."
    );
    let _ = writeln!(s, "# TYPE facto_passes_total counter");
    for ((job, outcome), n) in &stats.passes {
        let _ = writeln!(
            s,
            "facto_passes_total{{job=\"{}\",outcome=\"{outcome}\"}} {n}",
            label(job)
        );
    }
    if let Some(size) = ledger.size_on_disk() {
        let _ = writeln!(
            s,
            "# HELP facto_ledger_size_bytes Size of the ledger on disk."
        );
        let _ = writeln!(s, "# TYPE facto_ledger_size_bytes gauge");
        let _ = writeln!(s, "facto_ledger_size_bytes {size}");
    }
    let _ = writeln!(
        s,
        "# HELP facto_retries_total HTTP requests sent again after a transient failure."
    );
    let _ = writeln!(s, "# TYPE facto_retries_total counter");
    let _ = writeln!(
        s,
        "facto_retries_total {}",
        crate::retry::RETRIES.load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = writeln!(
        s,
        "# HELP facto_rate_limit_waits_total Waits imposed by rate limits."
    );
    let _ = writeln!(s, "# TYPE facto_rate_limit_waits_total counter");
    let _ = writeln!(
        s,
        "facto_rate_limit_waits_total {}",
        crate::retry::RATE_LIMIT_WAITS.load(std::sync::atomic::Ordering::Relaxed)
    );
    s
}

/// What every loop of one tenant shares.
#[derive(Clone)]
struct TenantCx {
    /// The tenant's name.
    tenant: String,
    /// Its configuration file and data folder (read again at every pass).
    config: (PathBuf, PathBuf),
    /// Its ledger.
    ledger: SharedLedger,
    /// What its passes did.
    stats: Arc<Mutex<Stats>>,
    /// The deployment's passes in flight, taken in turn (first come, first served), so one
    /// tenant with many jobs or slow ones never holds the others back; none for one company.
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

async fn job_loop(
    cx: TenantCx,
    job: Job,
    schedule: schedule::Schedule,
    stop: watch::Receiver<bool>,
    wake: Arc<tokio::sync::Notify>,
) {
    let TenantCx {
        tenant,
        config,
        ledger,
        stats,
        gate,
    } = cx;
    let stop_wait = stop.clone();
    schedule::drive_woken(&schedule, stop, true, &wake, || {
        let (config, ledger, job, stats, tenant, gate, stop_wait) =
            (&config, &ledger, &job, &stats, &tenant, &gate, &stop_wait);
        async move {
            // A turn among the deployment's passes (none to wait for with one company).
            // A stop while waiting for it: no pass.
            let _turn = match gate {
                Some(g) => {
                    let mut stopping = stop_wait.clone();
                    tokio::select! {
                        t = Arc::clone(g).acquire_owned() => t.ok(),
                        _ = stopping.wait_for(|s| *s) => return true,
                    }
                }
                None => None,
            };
            let opts = RunOptions {
                dry_run: false,
                today: chrono::Local::now().date_naive(),
                progress: None,
            };
            // The configuration is read again at every pass: mapping edits take effect at once.
            let cfg = match Config::load(&config.0, Some(&config.1)) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(job = %job.name, error = %e, "Configuration unreadable; pass skipped.");
                    return false;
                }
            };
            let job = cfg.jobs.iter().find(|j| j.name == job.name).cloned().unwrap_or_else(|| job.clone());
            // A pass does blocking work (file reads, fsyncs, long CPU stretches). It runs on a
            // thread of its own, so that the runtime's workers keep serving the admin API and the
            // signals for the whole pass.
            let pass = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(run_job(&cfg, &**ledger, &job, &Mode::Sync, &opts))
            });
            if let Err(e) = &pass {
                crate::sync::record_failed_pass(&cfg, &**ledger, &job.name, e);
            }
            // Alerts go out once the job is free again (`run_job` holds the job's lock), on a
            // task of their own: a receiver that is slow or down never holds this job's next
            // pass, another job's, or the daemon's stop. (One sender at a time; an alert a stop
            // cuts short stays pending and goes out after the next pass.)
            let (alerts, l) = (cfg.alerts.clone(), ledger.clone());
            tokio::spawn(async move { crate::alerts::after_pass(alerts.as_ref(), &*l).await });
            // The document events for the invoicing application, likewise.
            let (ev, l, t) = (cfg.events.clone(), ledger.clone(), tenant.clone());
            let jobs: Vec<String> = cfg.jobs.iter().map(|j| j.name.clone()).collect();
            tokio::spawn(async move {
                let jobs: Vec<&str> = jobs.iter().map(String::as_str).collect();
                crate::events::after_pass(ev.as_ref(), &jobs, &*l, &t).await;
            });
            let outcome = match pass {
                Ok(r) if r.error.is_none() => "ok",
                Ok(r) => {
                    tracing::warn!(job = %job.name, error = ?r.error, "Pass ended with an error; backing off.");
                    "error"
                }
                Err(e) => {
                    tracing::error!(job = %job.name, error = %e, "Pass failed; backing off.");
                    "failed"
                }
            };
            let mut s = stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *s.passes.entry((job.name.clone(), outcome)).or_insert(0) += 1;
            if outcome == "ok" {
                s.last_success.insert(job.name.clone(), Utc::now());
            }
            outcome == "ok"
        }
    })
    .await;
}

async fn status_loop(
    cfg: Arc<Config>,
    ledger: SharedLedger,
    schedule: schedule::Schedule,
    mut stop: watch::Receiver<bool>,
    soon: Arc<pa_webhook::Soon>,
    tenant: String,
) {
    loop {
        let next = schedule.next(Utc::now(), 0, Duration::ZERO);
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        // A webhook event: its target is polled now instead of at its time.
        let early = tokio::select! {
            () = tokio::time::sleep(wait) => false,
            () = soon.notified() => true,
            _ = stop.changed() => false,
        };
        if *stop.borrow() {
            return;
        }
        let only = soon.take();
        for j in &cfg.jobs {
            // Never beside a pass of the job, the daemon's or one forwarded from the CLI.
            let lock = crate::sync::job_lock(&cfg, &j.name);
            let _busy = lock.lock().await;
            for t in &j.targets {
                if early && !only.contains(t) {
                    continue;
                }
                let Some(run) = crate::sync::api_target(&cfg, j, t) else {
                    continue;
                };
                let mut run = match run {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(target = %t, error = %e, "Status polling unavailable.");
                        continue;
                    }
                };
                if let Err(e) = run.reconcile(&*ledger).await {
                    tracing::warn!(target = %t, error = %e, "Status polling failed.");
                    continue;
                }
                match run.poll(&*ledger).await {
                    Ok(changes) => {
                        for c in changes {
                            tracing::info!(target = %t, change = %c, "Status changed.");
                        }
                    }
                    Err(e) => tracing::warn!(target = %t, error = %e, "Status polling failed."),
                }
            }
        }
        // Paid, accepted, rejected: told to the invoicing application.
        let jobs: Vec<&str> = cfg.jobs.iter().map(|j| j.name.as_str()).collect();
        crate::events::after_pass(cfg.events.as_ref(), &jobs, &*ledger, &tenant).await;
    }
}

fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Runs the daemon until SIGINT / SIGTERM.
///
/// # Errors
///
/// The ledger is held by another process, the address cannot be bound (or is not loopback
/// without `allow_remote`), a file cannot be written.
pub async fn run(
    cfg: Config,
    config_path: PathBuf,
    exec: Executor,
    tenant: String,
) -> Result<(), DaemonError> {
    let signals = Signals::new()?;
    let ledger = cfg.open_ledger()?;
    let listener = tokio::net::TcpListener::bind(&cfg.daemon.listen)
        .await
        .map_err(|e| DaemonError::Io(format!("cannot listen on {}: {e}", cfg.daemon.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| DaemonError::Io(e.to_string()))?;
    if !is_loopback(&addr) && !cfg.daemon.allow_remote {
        return Err(DaemonError::Config(format!(
            "[daemon] listen = {addr} is not a loopback address: set allow_remote = true (every request then needs the admin token from {})",
            token_path(&cfg.data_dir).display()
        )));
    }
    let handle = Handle {
        addr: addr.to_string(),
        pid: std::process::id(),
    };
    let handle_file = handle_path(&cfg.data_dir);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut passes = tokio::task::JoinSet::new();
    let daemon = cfg.daemon.clone();
    let server = start_tenant(
        TenantSpec {
            name: tenant,
            cfg,
            config_path,
            ledger,
        },
        handle.addr.clone(),
        &stop_rx,
        &mut passes,
        exec,
        None,
    )?;
    fsutil::write_atomic(
        &handle_file,
        &serde_json::to_vec(&handle).unwrap_or_default(),
        Some(0o600),
    )
    .map_err(|e| DaemonError::Io(format!("cannot write {}: {e}", handle_file.display())))?;
    tracing::warn!(addr = %addr, "facto daemon running; admin API on this address.");
    let request = Duration::from_secs(daemon.request_timeout_secs.max(1));
    let app = api::router(server, request);
    serve(listener, app, &daemon, signals, (stop_tx, &mut passes)).await;
    let _ = std::fs::remove_file(&handle_file);
    tracing::warn!("facto daemon stopped.");
    Ok(())
}

/// One tenant for [`start_tenant`].
struct TenantSpec {
    /// Its name.
    name: String,
    /// Its configuration.
    cfg: Config,
    /// Its configuration file (absolute).
    config_path: PathBuf,
    /// Its ledger, opened.
    ledger: SharedLedger,
}

/// Starts one tenant: settles what its last run left, spawns its job loops, its status loop
/// and its PA webhooks into `passes` (they stop when `stop` turns true), and returns the server
/// of its admin API, announced at `addr`.
///
/// # Errors
///
/// Its token files cannot be read or written, a schedule does not parse, recovery fails.
fn start_tenant(
    spec: TenantSpec,
    addr: String,
    stop_rx: &watch::Receiver<bool>,
    passes: &mut tokio::task::JoinSet<()>,
    exec: Executor,
    gate: Option<Arc<tokio::sync::Semaphore>>,
) -> Result<Arc<api::Server>, DaemonError> {
    let TenantSpec {
        name,
        cfg,
        config_path,
        ledger,
    } = spec;
    let token = admin_token(&cfg.data_dir)?;
    let accountant = token_at(console::accountant_token_path(&cfg.data_dir))?.into();
    let ingest = token_at(ingest::token_path(&cfg.data_dir))?.into();
    let recovered =
        crate::sync::recover(&*ledger, &cfg).map_err(|e| DaemonError::Io(e.to_string()))?;
    for r in recovered {
        tracing::info!(tenant = %name, recovery = %r, "Recovered at start.");
    }
    if let Some(ev) = &cfg.events {
        let names: Vec<&str> = cfg.jobs.iter().map(|j| j.name.as_str()).collect();
        crate::events::begin(ev, &names, &*ledger)?;
    }
    let cfg = Arc::new(cfg);
    let stats = Arc::new(Mutex::new(Stats::default()));
    let cx = TenantCx {
        tenant: name.clone(),
        config: (config_path.clone(), cfg.data_dir.clone()),
        ledger: ledger.clone(),
        stats: Arc::clone(&stats),
        gate,
    };
    let mut wakers = BTreeMap::new();
    for job in &cfg.jobs {
        let wake = Arc::new(tokio::sync::Notify::new());
        wakers.insert(job.name.clone(), Arc::clone(&wake));
        let text = job
            .schedule
            .clone()
            .unwrap_or_else(|| cfg.daemon.default_schedule.clone());
        let sch = schedule::parse(&text).map_err(DaemonError::Config)?;
        passes.spawn(job_loop(
            cx.clone(),
            job.clone(),
            sch,
            stop_rx.clone(),
            wake,
        ));
    }
    let status = schedule::parse(&cfg.daemon.status_every).map_err(DaemonError::Config)?;
    let soon = Arc::new(pa_webhook::Soon::default());
    passes.spawn(status_loop(
        Arc::clone(&cfg),
        ledger.clone(),
        status,
        stop_rx.clone(),
        Arc::clone(&soon),
        name.clone(),
    ));
    let webhooks = pa_webhook::Webhooks::new(&cfg, soon);
    webhooks.keep_registered(stop_rx, passes);
    Ok(Arc::new(api::Server {
        cfg: Arc::clone(&cfg),
        config_path,
        data_dir: cfg.data_dir.clone(),
        ledger,
        token,
        accountant,
        sessions: console::Sessions::default(),
        addr,
        challenges: auth::Challenges::default(),
        stats,
        exec,
        webhooks,
        tenant: name,
        ingest,
        wakers,
    }))
}

/// Serves `app` on `listener` until SIGINT / SIGTERM, then stops: no new pass starts, passes in
/// flight finish within the grace period, then the API finishes its requests.
async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    daemon: &crate::config::DaemonSection,
    mut signals: Signals,
    (stop_tx, passes): (watch::Sender<bool>, &mut tokio::task::JoinSet<()>),
) {
    let request = Duration::from_secs(daemon.request_timeout_secs.max(1));
    let listener = http::GatedListener::new(
        listener,
        daemon.max_connections,
        Duration::from_secs(daemon.idle_timeout_secs.max(1)),
        request,
    );
    let app = app.into_make_service_with_connect_info::<http::Arrived>();
    // The admin API answers until the passes are done (`/health` included), then takes no new
    // request and finishes the forwarded commands it is running, within the same grace period.
    let (api_stop, mut api_stopping) = watch::channel(false);
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = api_stopping.wait_for(|stop| *stop).await;
    });
    let mut api = tokio::spawn(async move {
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "Admin API stopped.");
        }
    });
    signals.recv().await;
    tracing::warn!("Stopping: no new pass starts; passes in flight finish.");
    let _ = stop_tx.send(true);
    // A second signal exits at once: claims are flushed before any send, so nothing is sent
    // twice; the next start settles what was in flight.
    tokio::spawn(async move {
        signals.recv().await;
        std::process::exit(130);
    });
    let grace = tokio::time::Instant::now() + Duration::from_secs(daemon.shutdown_grace_secs);
    if tokio::time::timeout_at(grace, async { while passes.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!("Passes still running after the grace period; exiting without them (the next start settles what they left).");
        passes.abort_all();
    }
    let _ = api_stop.send(true);
    if tokio::time::timeout_at(grace, &mut api).await.is_err() {
        tracing::warn!("Commands sent to the daemon still running after the grace period; exiting without them.");
        api.abort();
    }
}

/// SIGINT and SIGTERM, listened to from the daemon's start (before it announces itself), so a
/// signal never meets the default action.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, DaemonError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let e = |e: std::io::Error| DaemonError::Io(format!("cannot listen to signals: {e}"));
            Ok(Signals {
                term: signal(SignalKind::terminate()).map_err(e)?,
                int: signal(SignalKind::interrupt()).map_err(e)?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => {}
                _ = self.int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The running daemon of a data folder, if one answers.
pub fn running(data_dir: &Path) -> Option<(Handle, String)> {
    let handle: Handle =
        serde_json::from_slice(&std::fs::read(handle_path(data_dir)).ok()?).ok()?;
    let token = std::fs::read_to_string(token_path(data_dir))
        .ok()?
        .trim()
        .to_owned();
    Some((handle, token))
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(super::label("demo"), "demo");
    }
}
