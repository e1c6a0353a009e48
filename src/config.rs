//! Configuration: `facto.toml` (company, jobs, daemon) turned from raw serde types into validated
//! types, and the loading of the connectors and mappings its jobs name (each connector's settings
//! are parsed and checked beside its component, `source/*/config.rs` and `targets/*/config.rs`).
//! Every error names the file and, where it can, the line, from the TOML spans.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::company::{parse_month_day, siren_is_valid, Company};
use crate::mapping::keys::DeclaredKeys;
use crate::mapping::Mapping;

mod connector;
mod overlap;

pub use connector::{load_connector, Connector};
pub use overlap::chorus_target;
// The connectors' settings live beside their components; those the layers above config name
// through it are re-exported.
use crate::source::http::HttpConfig;
use crate::source::json_dir::JsonDirConfig;
use crate::targets::chorus::config::ChorusConfig;
use crate::targets::journal_file::config::JournalFileConfig;
pub use crate::targets::journal_file::config::DEFAULT_FILE_MODE;
use crate::targets::pa::config::PaConfig;
pub use crate::targets::pennylane::config::PennylaneConfig;
pub use crate::targets::xero::config::XeroConfig;
use crate::toml_file::Spans;
pub use crate::toml_file::{find_line, line_of, load_toml, parse_toml, ConfigError};

/// The per-code mapping keys every target declares, in the order of the editor's columns: the
/// registry hands them to the mapping, which does not know the targets.
pub const MAPPING_KEYS: DeclaredKeys = DeclaredKeys::new(&[
    crate::targets::pennylane::config::MAPPING_KEYS,
    crate::targets::xero::config::MAPPING_KEYS,
]);

/// `facto.toml` as written by the admin.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// Where the ledger lives (relative to this file). Default `data`.
    #[serde(default)]
    data_dir: Option<PathBuf>,
    /// Folder of connector files. Default `connectors`.
    #[serde(default)]
    connectors_dir: Option<PathBuf>,
    /// Folder of mapping files. Default `mappings`.
    #[serde(default)]
    mappings_dir: Option<PathBuf>,
    /// The company.
    company: Company,
    /// Jobs, `[[job]]` tables.
    #[serde(default)]
    job: Vec<RawJob>,
    /// The daemon (`facto run`).
    #[serde(default)]
    daemon: DaemonSection,
    /// Alerts (`[alerts]`).
    #[serde(default)]
    alerts: Option<crate::alerts::AlertsConfig>,
    /// Document events for the invoicing application (`[events]`).
    #[serde(default)]
    events: Option<crate::events::EventsConfig>,
    /// The ledger in PostgreSQL (`[ledger]`); without it, sled in `data_dir`.
    #[serde(default)]
    ledger: Option<LedgerSection>,
}

/// `[ledger]`: the ledger in a PostgreSQL database instead of sled's folder.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LedgerSection {
    /// `postgres://user@host:port/database`, without the password.
    pub url: String,
    /// The environment variable that holds the password. Default `PGPASSWORD`.
    #[serde(default)]
    pub password_env: Option<String>,
    /// This company's namespace in the database. Default: its SIREN.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Several facto workers (processes, machines) share this ledger and run the same jobs:
    /// no worker holds the namespace alone; each claim is taken at the database, by one worker
    /// only. Jobs then deliver through APIs only (a journal file is written by one process).
    #[serde(default)]
    pub shared: bool,
}

impl LedgerSection {
    /// What is wrong with it, if anything: a connection string PostgreSQL does not read, or
    /// one that holds the password (which belongs in the environment). The string itself is
    /// never repeated: it may hold the password.
    fn problem(&self) -> Option<String> {
        if self.url.parse::<postgres::Config>().is_err() {
            return Some(
                "[ledger] url is not a PostgreSQL connection string (postgres://user@host:port/database)".into(),
            );
        }
        crate::ledger::postgres::has_password(&self.url).then(|| {
            "[ledger] url holds a password: remove it, and put the password in the environment variable that password_env names (default PGPASSWORD)".into()
        })
    }
}

/// `[daemon]`: how `facto run` listens and polls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSection {
    /// Address of the admin API. Default `127.0.0.1:8720`. Any other than a loopback address
    /// needs `allow_remote = true` (requests always need the admin token).
    #[serde(default = "daemon_listen")]
    pub listen: String,
    /// Allows a non-loopback `listen`.
    #[serde(default)]
    pub allow_remote: bool,
    /// Schedule of the status polling of API targets. Default `every 1h`.
    #[serde(default = "daemon_status")]
    pub status_every: String,
    /// Schedule of jobs that set none. Default `every 15m`.
    #[serde(default = "daemon_default")]
    pub default_schedule: String,
    /// How long in-flight passes may finish after SIGTERM, seconds. Default 30.
    #[serde(default = "thirty")]
    pub shutdown_grace_secs: u64,
    /// Most connections the admin API keeps open; when all are taken, the oldest one still
    /// waiting for its request is closed. Default 64.
    #[serde(default = "daemon_max_connections")]
    pub max_connections: usize,
    /// A client that sends nothing for this long is disconnected, seconds. Default 10.
    #[serde(default = "daemon_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// The whole request must arrive within this, and the answer be taken within it, seconds.
    /// Default 30.
    #[serde(default = "thirty")]
    pub request_timeout_secs: u64,
}

impl Default for DaemonSection {
    fn default() -> Self {
        DaemonSection {
            listen: daemon_listen(),
            allow_remote: false,
            status_every: daemon_status(),
            default_schedule: daemon_default(),
            shutdown_grace_secs: 30,
            max_connections: daemon_max_connections(),
            idle_timeout_secs: daemon_idle_timeout(),
            request_timeout_secs: 30,
        }
    }
}

fn thirty() -> u64 {
    30
}
fn daemon_max_connections() -> usize {
    64
}
fn daemon_idle_timeout() -> u64 {
    10
}

fn daemon_listen() -> String {
    "127.0.0.1:8720".to_owned()
}
fn daemon_status() -> String {
    "every 1h".to_owned()
}
fn daemon_default() -> String {
    "every 15m".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: String,
    source: String,
    mapping: String,
    targets: Vec<String>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    journal: Option<String>,
    #[serde(default)]
    journal_label: Option<String>,
    #[serde(default)]
    fail_on: crate::fail_on::FailOn,
    validation_date: Option<chrono::NaiveDate>,
}

/// A job: one source, one mapping, one or more targets.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job name (ledger key part).
    pub name: String,
    /// Source connector name.
    pub source: String,
    /// Mapping name.
    pub mapping: String,
    /// Target connector names.
    pub targets: Vec<String>,
    /// Schedule for the daemon (`every 15m` or a cron expression); unused by `sync`.
    pub schedule: Option<String>,
    /// Journal code of this job's entries, replacing the mapping's `[journal] code` (two jobs
    /// sharing one chart can post to two journals).
    pub journal: Option<String>,
    /// Journal label that goes with it.
    pub journal_label: Option<String>,
    /// Which document problems make `sync` exit with code 1 (`any`, `new`, `never`).
    pub fail_on: crate::fail_on::FailOn,
    /// Validation date written in journal files (FEC `ValidDate`), to reproduce a file as it
    /// was validated; default: the day of the run.
    pub validation_date: Option<chrono::NaiveDate>,
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `facto.toml` file.
    pub path: PathBuf,
    /// Folder relative paths are resolved against.
    pub base_dir: PathBuf,
    /// Ledger folder.
    pub data_dir: PathBuf,
    /// The company.
    pub company: Company,
    /// Jobs in file order.
    pub jobs: Vec<Job>,
    /// Connectors by name.
    pub connectors: BTreeMap<String, Connector>,
    /// Mappings by name.
    pub mappings: BTreeMap<String, Mapping>,
    /// Folder of mapping files.
    pub mappings_dir: PathBuf,
    /// Folder of connector files.
    pub connectors_dir: PathBuf,
    /// The daemon's settings.
    pub daemon: DaemonSection,
    /// Where alerts go, when `[alerts]` is set.
    pub alerts: Option<crate::alerts::AlertsConfig>,
    /// Where document events go, when `[events]` is set.
    pub events: Option<crate::events::EventsConfig>,
    /// The ledger in PostgreSQL, when `[ledger]` is set; else sled in `data_dir`.
    pub ledger: Option<LedgerSection>,
}

impl Config {
    /// Loads `facto.toml` and every connector and mapping its jobs name.
    ///
    /// # Errors
    ///
    /// The first problem found, with file and line.
    pub fn load(path: &Path, data_dir_override: Option<&Path>) -> Result<Config, ConfigError> {
        let (raw, text): (RawConfig, String) = load_toml(path)?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        // Lines of errors found after parsing come from the keys' spans.
        let spans = Spans::new(&text);
        if !siren_is_valid(&raw.company.siren) {
            return Err(ConfigError::at(
                path,
                spans.line(&["company".into(), "siren".into()]),
                format!(
                    "company siren `{}` is not a valid SIREN (9 digits with a correct Luhn key)",
                    raw.company.siren
                ),
            ));
        }
        if parse_month_day(&raw.company.fiscal_year_end).is_none() {
            return Err(ConfigError::at(
                path,
                spans.line(&["company".into(), "fiscal_year_end".into()]),
                format!(
                    "fiscal_year_end `{}` is not MM-DD (for example \"12-31\")",
                    raw.company.fiscal_year_end
                ),
            ));
        }
        let data_dir = match data_dir_override {
            Some(d) => d.to_owned(),
            None => base_dir.join(raw.data_dir.unwrap_or_else(|| PathBuf::from("data"))),
        };
        let connectors_dir = base_dir.join(
            raw.connectors_dir
                .unwrap_or_else(|| PathBuf::from("connectors")),
        );
        let mappings_dir = base_dir.join(
            raw.mappings_dir
                .unwrap_or_else(|| PathBuf::from("mappings")),
        );
        let mut connectors = BTreeMap::new();
        let mut mappings = BTreeMap::new();
        let mut jobs = Vec::new();
        // Where each job's targets deliver, found by the per-job check, compared across jobs.
        let mut job_dests = Vec::new();
        for (i, rj) in raw.job.into_iter().enumerate() {
            let job_key = |key: &str| spans.line(&["job".into(), i.into(), key.into()]);
            let job_line = job_key("name").or_else(|| spans.line(&["job".into(), i.into()]));
            if jobs.iter().any(|j: &Job| j.name == rj.name) {
                return Err(ConfigError::at(
                    path,
                    job_line,
                    format!("job `{}` is declared twice", rj.name),
                ));
            }
            if rj.name.is_empty() || rj.name.contains(['\0', '/']) {
                return Err(ConfigError::at(
                    path,
                    job_line,
                    "a job name must be non-empty, without `/`",
                ));
            }
            if rj.targets.is_empty() {
                return Err(ConfigError::at(
                    path,
                    job_line,
                    format!(
                        "job `{}` has no targets; list at least one connector in `targets`",
                        rj.name
                    ),
                ));
            }
            for name in std::iter::once(&rj.source).chain(rj.targets.iter()) {
                if name.contains('#') {
                    return Err(ConfigError::at(
                        path,
                        job_line,
                        format!("connector name `{name}`: a connector's name holds no `#` (facto keeps a PA's status 212 records under `<pa>#212`); rename its file"),
                    ));
                }
                if !connectors.contains_key(name) {
                    let file = connectors_dir.join(format!("{name}.toml"));
                    if !file.exists() {
                        return Err(ConfigError::at(
                            path,
                            job_line,
                            format!(
                                "job `{}` names connector `{name}` but {} does not exist",
                                rj.name,
                                file.display()
                            ),
                        ));
                    }
                    connectors.insert(name.clone(), load_connector(&file)?);
                }
            }
            if !connectors[&rj.source].is_source() {
                return Err(ConfigError::at(
                    path,
                    job_line,
                    format!(
                        "job `{}`: connector `{}` is not a source (json-dir, http, or afnor-pa for the supplier invoices a PA received)",
                        rj.name, rj.source
                    ),
                ));
            }
            for t in &rj.targets {
                if !connectors[t].is_target() {
                    return Err(ConfigError::at(
                        path,
                        job_line,
                        format!(
                            "job `{}`: connector `{t}` is a source, not a target",
                            rj.name
                        ),
                    ));
                }
            }
            let dests = overlap::check_targets(
                path,
                job_key("targets").or(job_line),
                &rj.name,
                &rj.targets,
                &connectors,
                &base_dir,
                &data_dir,
            )?;
            if let Some(code) = &rj.journal {
                if code.is_empty()
                    || code.len() > 10
                    || !code.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(ConfigError::at(
                        path,
                        job_key("journal"),
                        format!(
                            "job `{}`: journal `{code}` must be 1 to 10 letters or digits",
                            rj.name
                        ),
                    ));
                }
            }
            if !mappings.contains_key(&rj.mapping) {
                let file = mappings_dir.join(format!("{}.toml", rj.mapping));
                if !file.exists() {
                    return Err(ConfigError::at(
                        path,
                        job_line,
                        format!(
                            "job `{}` names mapping `{}` but {} does not exist",
                            rj.name,
                            rj.mapping,
                            file.display()
                        ),
                    ));
                }
                mappings.insert(rj.mapping.clone(), Mapping::load(&file, MAPPING_KEYS)?);
            }
            if mappings[&rj.mapping].journal.side == crate::mapping::Side::Purchases {
                if let Some(t) = rj
                    .targets
                    .iter()
                    .find(|t| !connectors[*t].takes_purchases())
                {
                    return Err(ConfigError::at(
                        path,
                        job_key("targets").or(job_line),
                        format!(
                            "job `{}` books supplier invoices (mapping `{}` has side = \"purchases\"), and `{t}` ({}) takes the company's own sales: a purchases job's targets are journal files in an accounting layout, or Xero (as bills)",
                            rj.name,
                            rj.mapping,
                            connectors[t].kind()
                        ),
                    ));
                }
            }
            if let Some(sch) = &rj.schedule {
                if let Err(e) = crate::schedule::parse(sch) {
                    return Err(ConfigError::at(
                        path,
                        job_key("schedule"),
                        format!("job `{}`: schedule {e}", rj.name),
                    ));
                }
            }
            job_dests.push(dests);
            jobs.push(Job {
                name: rj.name,
                source: rj.source,
                mapping: rj.mapping,
                targets: rj.targets,
                schedule: rj.schedule,
                journal: rj.journal,
                journal_label: rj.journal_label,
                fail_on: rj.fail_on,
                validation_date: rj.validation_date,
            });
        }
        overlap::check_jobs(path, &jobs, &job_dests, &connectors, &base_dir)?;
        for (key, value) in [
            ("status_every", &raw.daemon.status_every),
            ("default_schedule", &raw.daemon.default_schedule),
        ] {
            if let Err(e) = crate::schedule::parse(value) {
                return Err(ConfigError::at(
                    path,
                    spans.line(&["daemon".into(), key.into()]),
                    format!("[daemon] {key} {e}"),
                ));
            }
        }
        if let Some(a) = &raw.alerts {
            a.validate(path, &text)?;
        }
        if let Some(e) = &raw.events {
            let names: Vec<&str> = jobs.iter().map(|j: &Job| j.name.as_str()).collect();
            e.validate(path, &text, &names)?;
        }
        if let Some(why) = raw.ledger.as_ref().and_then(LedgerSection::problem) {
            return Err(ConfigError::at(
                path,
                spans.line(&["ledger".into(), "url".into()]),
                why,
            ));
        }
        if raw.ledger.as_ref().is_some_and(|l| l.shared) {
            let files = jobs.iter().find_map(|j| {
                let t = j
                    .targets
                    .iter()
                    .find(|t| matches!(connectors.get(*t), Some(Connector::JournalFile(_))))?;
                Some((j, t))
            });
            if let Some((j, t)) = files {
                return Err(ConfigError::at(
                    path,
                    spans.line(&["ledger".into(), "shared".into()]),
                    format!(
                        "[ledger] shared = true lets several workers run the same jobs, and job `{}` writes journal files (`{t}`), which one process writes: run that job from a deployment whose ledger is not shared, or remove `{t}` from its targets",
                        j.name
                    ),
                ));
            }
        }
        Ok(Config {
            alerts: raw.alerts,
            events: raw.events,
            ledger: raw.ledger,
            daemon: raw.daemon,
            path: path.to_owned(),
            base_dir,
            data_dir,
            company: raw.company,
            jobs,
            connectors,
            mappings,
            mappings_dir,
            connectors_dir,
        })
    }

    /// Opens the ledger the configuration names: PostgreSQL when `[ledger]` is set (the
    /// password from its variable, the namespace by default the company's SIREN), else sled in
    /// `data_dir`.
    ///
    /// # Errors
    ///
    /// The ledger is in use by another process, cannot be reached, or is of another version.
    pub fn open_ledger(&self) -> Result<crate::ledger::SharedLedger, crate::ledger::LedgerError> {
        self.open_ledger_in(None)
    }

    /// [`Config::open_ledger`], a PostgreSQL ledger on the connections of `pools` (a
    /// deployment's tenants share them) instead of one of its own.
    ///
    /// # Errors
    ///
    /// As [`Config::open_ledger`].
    pub fn open_ledger_in(
        &self,
        pools: Option<&crate::ledger::postgres::PgPools>,
    ) -> Result<crate::ledger::SharedLedger, crate::ledger::LedgerError> {
        use crate::ledger::{postgres::PgLedger, sled::SledLedger};
        Ok(match &self.ledger {
            None => std::sync::Arc::new(SledLedger::open(&self.data_dir)?),
            Some(l) => {
                let password = match &l.password_env {
                    Some(var) => Some(std::env::var(var).map_err(|_| {
                        crate::ledger::LedgerError::Invalid(format!(
                            "[ledger] password_env names {var}, which is not set: export the ledger database's password in it"
                        ))
                    })?),
                    None => std::env::var("PGPASSWORD").ok(),
                };
                let ns = l.namespace.as_deref().unwrap_or(&self.company.siren);
                let store = match pools {
                    Some(p) => p.open(&l.url, password.as_deref(), ns, l.shared)?,
                    None => crate::ledger::postgres::PgStore::open_as(
                        &l.url,
                        password.as_deref(),
                        ns,
                        l.shared,
                    )?,
                };
                std::sync::Arc::new(PgLedger::on(store)?)
            }
        })
    }

    /// The job's mapping, with the job's journal in place of the mapping's when it sets one.
    /// `None` when the mapping is not loaded (a configuration built by hand).
    pub fn mapping_for(&self, job: &Job) -> Option<std::borrow::Cow<'_, Mapping>> {
        let m = self.mappings.get(&job.mapping)?;
        if job.journal.is_none() && job.journal_label.is_none() {
            return Some(std::borrow::Cow::Borrowed(m));
        }
        let mut m = m.clone();
        if let Some(code) = &job.journal {
            m.journal.code.clone_from(code);
        }
        if let Some(label) = &job.journal_label {
            m.journal.label.clone_from(label);
        }
        // The journal is part of what was delivered: a record states which mapping produced it.
        m.hash = format!("{}+{}/{}", m.hash, m.journal.code, m.journal.label);
        Some(std::borrow::Cow::Owned(m))
    }

    /// Makes `name` usable as the `--target` of `export` and `preview` for `job`: one of the
    /// job's targets, or any journal-file connector of the connectors folder (the accountant
    /// picks the format of their software at export time).
    ///
    /// # Errors
    ///
    /// No such connector, or one that is not a journal-file target and not in the job.
    pub fn add_export_target(&mut self, job: &str, name: &str) -> Result<(), ConfigError> {
        let job = self.job(job)?.clone();
        if job.targets.iter().any(|t| t == name) {
            return Ok(());
        }
        let refuse = |why: String| {
            ConfigError::new(
                &self.path,
                format!(
                    "{why}; job `{}` delivers to {}, and any journal-file connector of {} can be named",
                    job.name,
                    job.targets.join(", "),
                    self.connectors_dir.display()
                ),
            )
        };
        let file = self.connectors_dir.join(format!("{name}.toml"));
        let connector = match self.connectors.get(name) {
            Some(c) => c.clone(),
            None if !name.contains(['/', '\\']) && file.exists() => load_connector(&file)?,
            None => {
                return Err(refuse(format!(
                    "no connector `{name}` ({} does not exist)",
                    file.display()
                )))
            }
        };
        if !matches!(connector, Connector::JournalFile(_)) {
            return Err(refuse(format!(
                "connector `{name}` is not a journal-file target"
            )));
        }
        if self.ledger.as_ref().is_some_and(|l| l.shared) {
            return Err(ConfigError::new(
                &self.path,
                format!("[ledger] shared = true: workers share this ledger, and a journal file (`{name}`) is written by one process; export from a deployment whose ledger is not shared"),
            ));
        }
        self.connectors.insert(name.to_owned(), connector);
        Ok(())
    }

    /// The job named `name`.
    ///
    /// # Errors
    ///
    /// No such job; the message lists the jobs there are.
    pub fn job(&self, name: &str) -> Result<&Job, ConfigError> {
        self.jobs.iter().find(|j| j.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.jobs.iter().map(|j| j.name.as_str()).collect();
            ConfigError::new(
                &self.path,
                format!("no job named `{name}`; jobs: {}", names.join(", ")),
            )
        })
    }

    /// Resolves a path of the configuration against its folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base_dir.join(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_reports_line() {
        let text = "kind = \"json-dir\"\npath = \"x\"\npage_sise = 3\n";
        let err = parse_toml::<JsonDirConfig>(Path::new("c.toml"), text).unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.message.contains("page_sise"), "{}", err.message);
    }

    /// A folder with the demo's source, two journal-file targets, its mapping and `facto.toml`.
    fn two_jobs(second: &str) -> (tempfile::TempDir, PathBuf, String) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "connectors/demo-invoices.toml",
            "connectors/sales-fec.toml",
            "connectors/sales-quadratus.toml",
            "mappings/pcg-demo.toml",
        ] {
            let to = dir.path().join(f);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(repo.join(f), to).unwrap();
        }
        let text = format!(
            "[company]\nname = \"x\"\nsiren = \"123456782\"\n\n\
             [[job]]\nname = \"demo\"\nsource = \"demo-invoices\"\nmapping = \"pcg-demo\"\n\
             targets = [\"sales-fec\"]\nschedule = \"every 15m\"\njournal = \"VE\"\n\n\
             [[job]]\n{second}\nsource = \"demo-invoices\"\nmapping = \"pcg-demo\"\n\
             targets = [\"sales-quadratus\"]\nschedule = \"every 15 parsecs\"\n"
        );
        let path = dir.path().join("facto.toml");
        std::fs::write(&path, &text).unwrap();
        (dir, path, text)
    }

    fn line_of_nth(text: &str, start: &str, n: usize) -> usize {
        text.lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with(start))
            .nth(n)
            .unwrap()
            .0
            + 1
    }

    #[test]
    fn an_error_in_the_second_job_names_the_second_jobs_line() {
        let (_dir, path, text) = two_jobs("name = \"daily\"");
        let err = Config::load(&path, None).unwrap_err();
        assert!(err.message.contains("job `daily`: schedule"), "{err}");
        assert_eq!(err.line, Some(line_of_nth(&text, "schedule", 1)), "{err}");

        // The name repeated: the second declaration is at fault (the text search named the first).
        let (_dir, path, text) = two_jobs("name = \"demo\"");
        let err = Config::load(&path, None).unwrap_err();
        assert!(err.message.contains("declared twice"), "{err}");
        assert_eq!(
            err.line,
            Some(line_of_nth(&text, "name = \"demo\"", 1)),
            "{err}"
        );
    }
}
