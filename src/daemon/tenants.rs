//! Many companies in one deployment (issue 16 §2): `facto --tenants DIR run` serves every
//! tenant of `DIR`, a folder per company holding its own `facto.toml` (its `[company]`, jobs,
//! connectors, mappings, the names of its secrets' variables, its data folder or ledger
//! namespace). Every other command takes `--tenant NAME` and runs on that tenant's
//! configuration.
//!
//! - **Loaded and reloaded without a restart**: the folder is scanned every `rescan_secs`; a new
//!   tenant starts, a removed one stops (its passes finish first), one whose `facto.toml`
//!   changed restarts with its ledger kept open. A tenant whose configuration does not load is
//!   reported and tried again at the next scan; the others run.
//! - **Fair**: every tenant's jobs run on their own schedules, and the passes in flight across
//!   the deployment are bounded (`max_parallel_passes`) and taken first come, first served, so
//!   a tenant that is slow or failing (it backs off on its own) never delays the others.
//! - **Isolated**: each tenant keeps its own tokens in its data folder; its admin API is under
//!   `/tenants/<name>/…` (the CLI reaches it through the `daemon.json` written in the tenant's
//!   data folder) and its ingestion endpoint is `/api/v1/tenants/<name>/documents`. A tenant's
//!   token opens nothing of another's. The deployment's own token (`DIR/.deployment/admin-token`)
//!   reads `/metrics` of every tenant (a `tenant` label on each series).
//!
//! `DIR/deployment.toml` (optional) holds the `[daemon]` settings of the listener and the
//! deployment's limits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::watch;
use tower::ServiceExt as _;

use super::{api, DaemonError, Executor, Handle, Signals, TenantSpec};
use crate::config::{Config, DaemonSection};
use crate::fsutil;
use crate::ledger::SharedLedger;

/// The tenants' folder when `--tenants` is not given.
pub const DEFAULT_DIR: &str = "tenants";

/// A tenant's name: a folder name of lower-case letters, digits, `-` and `_`, at most 63
/// characters, starting with a letter or a digit (it is a path segment and a metric label).
pub fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

/// The configuration file of tenant `name` in `dir`.
///
/// # Errors
///
/// A name that is not one, a tenant that does not exist.
pub fn config_of(dir: &Path, name: &str) -> Result<PathBuf, String> {
    if !valid_name(name) {
        return Err(format!(
            "`{name}` is not a tenant name: lower-case letters, digits, - and _ (at most 63)"
        ));
    }
    let p = dir.join(name).join("facto.toml");
    if !p.is_file() {
        return Err(format!(
            "no tenant `{name}` in {}: {} does not exist",
            dir.display(),
            p.display()
        ));
    }
    Ok(p)
}

/// `DIR/deployment.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// The listener and its limits (as `[daemon]` of a single company).
    #[serde(default)]
    pub daemon: DaemonSection,
    /// Passes running at once across all tenants. Default 4.
    #[serde(default = "four")]
    pub max_parallel_passes: usize,
    /// How often the folder is scanned for tenants added, removed or changed, seconds.
    /// Default 10.
    #[serde(default = "ten")]
    pub rescan_secs: u64,
    /// Connections the tenants whose ledger is in PostgreSQL share, per database and role.
    /// Default 8.
    #[serde(default = "eight")]
    pub ledger_connections: usize,
}

fn four() -> usize {
    4
}
fn ten() -> u64 {
    10
}
fn eight() -> usize {
    8
}

impl DeploymentConfig {
    /// Reads `DIR/deployment.toml`, or the defaults when there is none.
    ///
    /// # Errors
    ///
    /// Unreadable file, unknown keys, bad values (with the line).
    pub fn load(dir: &Path) -> Result<Self, DaemonError> {
        let p = dir.join("deployment.toml");
        let Ok(text) = std::fs::read_to_string(&p) else {
            return toml::from_str("").map_err(|e| DaemonError::Config(e.to_string()));
        };
        let c: DeploymentConfig = crate::toml_file::parse_toml(&p, &text)
            .map_err(|e| DaemonError::Config(e.to_string()))?;
        for (key, n) in [
            ("max_parallel_passes", c.max_parallel_passes),
            ("ledger_connections", c.ledger_connections),
        ] {
            if n == 0 {
                return Err(DaemonError::Config(format!(
                    "{}: {key} must be at least 1",
                    p.display()
                )));
            }
        }
        Ok(c)
    }
}

/// The deployment's own files (`DIR/.deployment/`): its admin token and `daemon.json`.
pub fn own_dir(dir: &Path) -> PathBuf {
    dir.join(".deployment")
}

/// What the router reads: the tenants being served.
#[derive(Default)]
struct Served {
    servers: BTreeMap<String, (Arc<api::Server>, Router)>,
    /// Tenants whose configuration did not load, with why.
    unloaded: BTreeMap<String, String>,
}

struct Deployment {
    served: RwLock<Served>,
    token: String,
}

impl Deployment {
    fn served(&self) -> std::sync::RwLockReadGuard<'_, Served> {
        self.served
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn served_mut(&self) -> std::sync::RwLockWriteGuard<'_, Served> {
        self.served
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One tenant running.
struct Running {
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<()>,
    /// The configuration it runs.
    text: String,
    /// A configuration that did not load (not tried again until it changes).
    refused: Option<String>,
    ledger: SharedLedger,
    data_dir: PathBuf,
    ledger_key: String,
}

/// The tenants of `dir`: name and configuration file, sorted.
fn scan(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let cfg = e.path().join("facto.toml");
            if valid_name(&name) && cfg.is_file() {
                out.push((name, cfg));
            }
        }
    }
    out.sort();
    out
}

/// Serves every tenant of `dir` until SIGINT / SIGTERM.
///
/// # Errors
///
/// `deployment.toml` is wrong, the address cannot be bound (or is not loopback without
/// `allow_remote`), the deployment's files cannot be written.
pub async fn run(dir: &Path, exec: Executor) -> Result<(), DaemonError> {
    let signals = Signals::new()?;
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| DaemonError::Config(format!("the tenants folder {}: {e}", dir.display())))?;
    let dc = DeploymentConfig::load(&dir)?;
    let own = own_dir(&dir);
    fsutil::private_dir(&own)
        .map_err(|e| DaemonError::Io(format!("cannot create {}: {e}", own.display())))?;
    let token = super::admin_token(&own)?;
    let listener = tokio::net::TcpListener::bind(&dc.daemon.listen)
        .await
        .map_err(|e| DaemonError::Io(format!("cannot listen on {}: {e}", dc.daemon.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| DaemonError::Io(e.to_string()))?;
    if !super::is_loopback(&addr) && !dc.daemon.allow_remote {
        return Err(DaemonError::Config(format!(
            "{}: [daemon] listen = {addr} is not a loopback address: set allow_remote = true",
            dir.join("deployment.toml").display()
        )));
    }
    let deployment = Arc::new(Deployment {
        served: RwLock::new(Served::default()),
        token,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut passes = tokio::task::JoinSet::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(dc.max_parallel_passes));
    let keeper = Keeper {
        dir: dir.clone(),
        addr: addr.to_string(),
        exec,
        gate,
        deployment: Arc::clone(&deployment),
        pools: crate::ledger::postgres::PgPools::new(
            dc.ledger_connections,
            &format!("facto deployment {}", std::process::id()),
        ),
        request: Duration::from_secs(dc.daemon.request_timeout_secs.max(1)),
        grace: Duration::from_secs(dc.daemon.shutdown_grace_secs),
    };
    // The first scan before the address is announced: the tenants answer from the start.
    let mut running = BTreeMap::new();
    keeper.rescan(&mut running).await;
    passes.spawn(keeper.keep(running, Duration::from_secs(dc.rescan_secs.max(1)), stop_rx));
    let handle = Handle {
        addr: addr.to_string(),
        pid: std::process::id(),
    };
    let handle_file = super::handle_path(&own);
    fsutil::write_atomic(
        &handle_file,
        &serde_json::to_vec(&handle).unwrap_or_default(),
        Some(0o600),
    )
    .map_err(|e| DaemonError::Io(format!("cannot write {}: {e}", handle_file.display())))?;
    tracing::warn!(addr = %addr, tenants = %dir.display(), "facto deployment running.");
    let app = Router::new()
        .route("/health", any(health))
        .route("/metrics", get(metrics))
        .fallback(dispatch)
        .with_state(deployment);
    super::serve(listener, app, &dc.daemon, signals, (stop_tx, &mut passes)).await;
    let _ = std::fs::remove_file(&handle_file);
    tracing::warn!("facto deployment stopped.");
    Ok(())
}

/// Starts, restarts and stops the tenants as the folder changes.
struct Keeper {
    dir: PathBuf,
    addr: String,
    exec: Executor,
    gate: Arc<tokio::sync::Semaphore>,
    deployment: Arc<Deployment>,
    /// The connections the tenants' PostgreSQL ledgers share.
    pools: crate::ledger::postgres::PgPools,
    request: Duration,
    grace: Duration,
}

impl Keeper {
    async fn keep(
        self,
        mut running: BTreeMap<String, Running>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
            self.rescan(&mut running).await;
        }
        // Every tenant told at once, then waited for together, within one grace period.
        for r in running.values() {
            let _ = r.stop.send(true);
        }
        let all = std::mem::take(&mut running);
        let _ = tokio::time::timeout(
            self.grace,
            futures_join(all.into_iter().map(|(name, r)| self.stop(name, r, false))),
        )
        .await;
    }

    /// Stops a tenant: no new pass; the passes in flight finish (within the grace period).
    /// Unless `unserve` is false (a restart: the new one takes its place), its API goes too.
    async fn stop(&self, name: String, mut r: Running, unserve: bool) {
        let name = name.as_str();
        let _ = r.stop.send(true);
        if tokio::time::timeout(self.grace, async {
            while r.tasks.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!(tenant = %name, "Passes still running after the grace period; stopped without them (the next start settles what they left).");
            r.tasks.abort_all();
        }
        if unserve {
            let _ = std::fs::remove_file(super::handle_path(&r.data_dir));
            self.deployment.served_mut().servers.remove(name);
        }
    }

    async fn rescan(&self, running: &mut BTreeMap<String, Running>) {
        let found: BTreeMap<String, PathBuf> = scan(&self.dir).into_iter().collect();
        let gone: Vec<String> = running
            .keys()
            .filter(|n| !found.contains_key(*n))
            .cloned()
            .collect();
        // A folder gone is no longer counted as unloaded before any removed tenant stops: a
        // tenant seen stopped (its API gone) is seen with the folder as it was then.
        self.deployment
            .served_mut()
            .unloaded
            .retain(|n, _| found.contains_key(n));
        for name in gone {
            if let Some(r) = running.remove(&name) {
                tracing::warn!(tenant = %name, "Tenant removed; stopping it.");
                self.stop(name, r, true).await;
            }
        }
        for (name, path) in found {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if let Some(r) = running.get_mut(&name) {
                if r.text == text {
                    // Back to what it runs (a bad edit undone).
                    if r.refused.take().is_some() {
                        self.deployment.served_mut().unloaded.remove(&name);
                    }
                    continue;
                }
                if r.refused.as_ref() == Some(&text) {
                    continue;
                }
            }
            // Loaded first: a configuration that does not load leaves the tenant running as it
            // was (a restart would take it down).
            let cfg = match Config::load(&path, None) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(tenant = %name, error = %e, "Tenant configuration does not load; tried again when it changes.");
                    if let Some(r) = running.get_mut(&name) {
                        r.refused = Some(text);
                    }
                    self.deployment
                        .served_mut()
                        .unloaded
                        .insert(name, e.to_string());
                    continue;
                }
            };
            let mut kept = None;
            if let Some(r) = running.remove(&name) {
                tracing::warn!(tenant = %name, "Tenant configuration changed; restarting it.");
                let reuse = (r.data_dir.clone(), r.ledger_key.clone(), r.ledger.clone());
                // Its API keeps answering until the new one takes its place.
                self.stop(name.clone(), r, false).await;
                kept = Some(reuse);
            }
            // Opening a ledger and settling what it holds are blocking work.
            match tokio::task::block_in_place(|| self.start(&name, &path, cfg, text, kept)) {
                Ok(r) => {
                    self.deployment.served_mut().unloaded.remove(&name);
                    running.insert(name, r);
                }
                Err(e) => {
                    tracing::error!(tenant = %name, error = %e, "Tenant not started; tried again at the next scan.");
                    let mut served = self.deployment.served_mut();
                    served.servers.remove(&name);
                    served.unloaded.insert(name, e.to_string());
                }
            }
        }
    }

    fn start(
        &self,
        name: &str,
        path: &Path,
        cfg: Config,
        text: String,
        kept: Option<(PathBuf, String, SharedLedger)>,
    ) -> Result<Running, DaemonError> {
        let ledger_key = format!("{:?}", cfg.ledger);
        let ledger = match kept {
            // The ledger stays open across a restart (sled's lock is this process's).
            Some((d, k, l)) if d == cfg.data_dir && k == ledger_key => l,
            _ => cfg.open_ledger_in(Some(&self.pools))?,
        };
        let data_dir = cfg.data_dir.clone();
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        let addr = format!("{}/tenants/{name}", self.addr);
        let server = super::start_tenant(
            TenantSpec {
                name: name.to_owned(),
                cfg,
                config_path: path.to_owned(),
                ledger: ledger.clone(),
            },
            addr.clone(),
            &stop_rx,
            &mut tasks,
            self.exec,
            Some(Arc::clone(&self.gate)),
        )?;
        let router = api::router(Arc::clone(&server), self.request);
        self.deployment
            .served_mut()
            .servers
            .insert(name.to_owned(), (server, router));
        // The CLI run with `--tenant` finds the deployment through the tenant's data folder.
        let handle = Handle {
            addr,
            pid: std::process::id(),
        };
        fsutil::write_atomic(
            &super::handle_path(&data_dir),
            &serde_json::to_vec(&handle).unwrap_or_default(),
            Some(0o600),
        )
        .map_err(|e| DaemonError::Io(format!("cannot write the handle of {name}: {e}")))?;
        tracing::info!(tenant = %name, "Tenant started.");
        Ok(Running {
            stop,
            tasks,
            text,
            refused: None,
            ledger,
            data_dir,
            ledger_key,
        })
    }
}

/// `/health`: counts only (tenant names are not public).
async fn health(State(d): State<Arc<Deployment>>) -> Response {
    let s = d.served();
    Json(serde_json::json!({
        "status": "ok",
        "tenants": s.servers.len(),
        "unloaded": s.unloaded.len(),
    }))
    .into_response()
}

/// `/metrics` (the deployment's token): every tenant's series with a `tenant` label, and the
/// tenants that did not load.
async fn metrics(State(d): State<Arc<Deployment>>, req: Request) -> Response {
    if !super::auth::bearer_is(req.headers(), &d.token) {
        return (
            StatusCode::UNAUTHORIZED,
            "the deployment's admin token is required (.deployment/admin-token)",
        )
            .into_response();
    }
    let servers: Vec<(String, Arc<api::Server>)> = d
        .served()
        .servers
        .iter()
        .map(|(n, (s, _))| (n.clone(), Arc::clone(s)))
        .collect();
    let unloaded = d.served().unloaded.len();
    let text = tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        let mut described = std::collections::BTreeSet::new();
        for (name, s) in servers {
            let text = api::metrics_text(&s);
            out.push_str(&labelled(&text, &name, &mut described));
        }
        out.push_str("# HELP facto_tenants_unloaded Tenants whose configuration does not load.\n# TYPE facto_tenants_unloaded gauge\n");
        out.push_str(&format!("facto_tenants_unloaded {unloaded}\n"));
        out
    })
    .await
    .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// A tenant's metrics with `tenant="<name>"` on every series; HELP and TYPE lines once.
fn labelled(
    text: &str,
    tenant: &str,
    described: &mut std::collections::BTreeSet<String>,
) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with('#') {
            if described.insert(line.to_owned()) {
                out.push_str(line);
                out.push('\n');
            }
            continue;
        }
        let label = format!("tenant=\"{}\"", super::label(tenant));
        let l = match line.split_once('{') {
            Some((name, rest)) if rest.starts_with('}') => format!("{name}{{{label}{rest}"),
            Some((name, rest)) => format!("{name}{{{label},{rest}"),
            None => match line.split_once(' ') {
                Some((name, v)) => format!("{name}{{{label}}} {v}"),
                None => line.to_owned(),
            },
        };
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// A tenant's path and the path its own API knows: `/api/v1/tenants/<t>/<rest>` is its
/// `/api/v1/<rest>`, `/tenants/<t>/<rest>` its `/<rest>`.
fn route(path: &str) -> Option<(&str, String)> {
    if let Some(r) = path.strip_prefix("/api/v1/tenants/") {
        let (t, rest) = r.split_once('/')?;
        return Some((t, format!("/api/v1/{rest}")));
    }
    let r = path.strip_prefix("/tenants/")?;
    let (t, rest) = r.split_once('/').unwrap_or((r, ""));
    Some((t, format!("/{rest}")))
}

async fn dispatch(State(d): State<Arc<Deployment>>, mut req: Request) -> Response {
    let no = || {
        (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "no such tenant or endpoint"})),
        )
            .into_response()
    };
    let Some((tenant, inner)) = route(req.uri().path()).map(|(t, i)| (t.to_owned(), i)) else {
        return no();
    };
    // A tenant's `/health` names its jobs without a token: the deployment's counts only.
    if inner == "/health" {
        return no();
    }
    let Some(router) = d.served().servers.get(&tenant).map(|(_, r)| r.clone()) else {
        return no();
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{inner}?{q}"),
        None => inner,
    };
    let Ok(uri) = pq.parse() else {
        return no();
    };
    *req.uri_mut() = uri;
    let resp = match router.oneshot(req).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    // The tenant's pages, redirects and cookies under its prefix.
    super::mount::under(&format!("/tenants/{tenant}"), resp).await
}

/// Runs every future to its end, together.
async fn futures_join<F: std::future::Future<Output = ()>>(futs: impl IntoIterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_needs_a_pass_and_a_ledger_connection_at_least() {
        let dir = tempfile::tempdir().unwrap();
        let c = DeploymentConfig::load(dir.path()).unwrap();
        assert_eq!((c.max_parallel_passes, c.ledger_connections), (4, 8));
        for key in ["max_parallel_passes", "ledger_connections"] {
            std::fs::write(dir.path().join("deployment.toml"), format!("{key} = 0\n")).unwrap();
            let e = DeploymentConfig::load(dir.path()).unwrap_err().to_string();
            assert!(e.contains(&format!("{key} must be at least 1")), "{e}");
            assert!(e.contains("deployment.toml"), "{e}");
        }
        std::fs::write(
            dir.path().join("deployment.toml"),
            "ledger_connection = 2\n",
        )
        .unwrap();
        let e = DeploymentConfig::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("ledger_connection"), "unknown keys refused: {e}");
    }

    #[test]
    fn tenant_names_are_folder_names_that_cannot_escape() {
        for ok in ["acme", "a", "ecole-42", "print_shop"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "-x",
            "Acme",
            "a/b",
            "a b",
            ".deployment",
            &"x".repeat(64),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn paths_go_to_the_tenant_they_name() {
        assert_eq!(
            route("/api/v1/tenants/acme/documents"),
            Some(("acme", "/api/v1/documents".to_owned()))
        );
        assert_eq!(
            route("/tenants/acme/api/cli"),
            Some(("acme", "/api/cli".to_owned()))
        );
        assert_eq!(route("/tenants/acme"), Some(("acme", "/".to_owned())));
        assert_eq!(route("/metrics"), None);
    }

    #[test]
    fn every_series_carries_its_tenant() {
        let mut d = std::collections::BTreeSet::new();
        let text = "# HELP a A.\n# TYPE a gauge\na{job=\"j\"} 1\nb 2\nc{} 3\n";
        assert_eq!(
            labelled(text, "acme", &mut d),
            "# HELP a A.\n# TYPE a gauge\na{tenant=\"acme\",job=\"j\"} 1\nb{tenant=\"acme\"} 2\nc{tenant=\"acme\"} 3\n"
        );
        assert_eq!(
            labelled(text, "b", &mut d).lines().count(),
            3,
            "HELP and TYPE once"
        );
    }
}
