//! The connections a process's stores share ([`PgPools`]): a deployment of a thousand tenants
//! whose ledgers are in one database holds a few connections to it, not one a tenant.
//!
//! - **A line is one connection and its thread.** Stores of several namespaces sit on one line;
//!   their calls take turns on it. Each store's advisory locks are held on its line's session,
//!   so a store's writes are made on the session that holds its namespace, as with a connection
//!   of its own ([`super::conn`]).
//! - **Two stores of one namespace never share a line**: a session's advisory locks do not
//!   exclude each other, so two workers on one session would both believe they hold a lock.
//! - **How many.** Up to `limit` lines per database and role; a new store takes a new line while
//!   there are fewer, else the line with the fewest stores (a second store of a namespace every
//!   line holds gets one more line).
//! - **Nobody waits on a line.** A lock another session holds is waited for in short turns
//!   ([`Conn::lock_for`]), the line serving the other stores between them.
//! - **Closed when empty.** A store that leaves lets go of its locks (and its worker's row); a
//!   line left without stores is closed, so one store opened alone keeps the life of its
//!   connection.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use postgres::{Client, NoTls};

use super::conn::{self, Conn, Seat};
use super::{gone, migrate, new_worker_id, shown, PgStore};
use crate::ledger::{LedgerError, Result};

/// Work for a line's thread.
type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// How long an open waits for a namespace that another process is letting go of.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// One connection and the thread that serves it.
pub(super) struct Line {
    /// The thread takes its work here (`None` once closed).
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Line {
    /// Runs `f` on the line's thread and waits for its answer.
    pub(super) fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> R + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .ok_or_else(gone)?
            .send(Box::new(move |conn: &mut Conn| {
                let _ = tx.send(f(conn));
            }))
            .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())
    }

    /// Closes the connection: the thread ends once its work is done.
    fn close(&self) {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// A line and the namespaces of its stores.
struct Entry {
    line: Arc<Line>,
    namespaces: HashSet<String>,
}

struct Inner {
    /// The lines of each database and role (by a hash of the connection string and password).
    lines: Mutex<HashMap<[u8; 32], Vec<Entry>>>,
    limit: usize,
    /// The sessions' `application_name` (`None`: `facto <namespace>` of the first store).
    name: Option<String>,
    seats: std::sync::atomic::AtomicU64,
}

/// Connections shared by the PostgreSQL stores a process opens through it: at most `limit` per
/// database and role (see the module's documentation).
#[derive(Clone)]
pub struct PgPools(Arc<Inner>);

impl PgPools {
    /// At most `limit` connections (at least 1) per database and role; the sessions are named
    /// `name` on the server (`application_name`, as `pg_stat_activity` lists them).
    pub fn new(limit: usize, name: &str) -> PgPools {
        PgPools::with(limit, Some(name.to_owned()))
    }

    /// The pool of a store opened alone: one connection, named after its namespace.
    pub(super) fn alone() -> PgPools {
        PgPools::with(1, None)
    }

    fn with(limit: usize, name: Option<String>) -> PgPools {
        PgPools(Arc::new(Inner {
            lines: Mutex::new(HashMap::new()),
            limit: limit.max(1),
            name,
            seats: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// The connections open now, all databases together.
    pub fn connections(&self) -> usize {
        self.0
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(Vec::len)
            .sum()
    }

    /// [`PgStore::open_as`] on this pool's connections.
    ///
    /// # Errors
    ///
    /// As [`PgStore::open_as`].
    pub fn open(
        &self,
        url: &str,
        password: Option<&str>,
        ns: &str,
        shared: bool,
    ) -> Result<PgStore> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| LedgerError::Invalid(format!("ledger URL {}: {e}", shown(url))))?;
        if let Some(p) = password {
            config.password(p);
        } else if config.get_password().is_none() {
            if let Ok(p) = std::env::var("PGPASSWORD") {
                config.password(p);
            }
        }
        let key = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(url.as_bytes());
            h.update([0]);
            h.update(config.get_password().unwrap_or_default());
            <[u8; 32]>::from(h.finalize())
        };
        // A server that stops answering, or a host that dies, is noticed within a minute or
        // so, never hours later: every call is bounded.
        config
            .connect_timeout(std::time::Duration::from_secs(10))
            .keepalives(true)
            .keepalives_idle(std::time::Duration::from_secs(30))
            .keepalives_interval(std::time::Duration::from_secs(10))
            .keepalives_retries(3)
            .tcp_user_timeout(std::time::Duration::from_secs(60))
            .application_name(self.0.name.as_deref().unwrap_or(&format!("facto {ns}")));
        let where_ = shown(url);
        let located = PathBuf::from(format!("{where_}#{ns}"));
        let line = self.place(key, ns, || {
            let where_ = where_.clone();
            Box::new(move || -> Result<Client> {
                let mut client = config.connect(NoTls).map_err(|e| {
                    LedgerError::Unreachable(format!(
                        "cannot connect to the ledger database {where_}: {e}"
                    ))
                })?;
                conn::session(&mut client)?;
                migrate(&mut client)?;
                Ok(client)
            })
        })?;
        let seat = self
            .0
            .seats
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let worker = shared.then(new_worker_id);
        let store = PgStore {
            pools: self.clone(),
            key,
            line: Arc::clone(&line),
            seat,
            ns: ns.to_owned(),
            shared,
            worker: worker.clone(),
            shown: located.clone(),
        };
        let (namespace, shown) = (ns.to_owned(), located);
        line.run(move |conn: &mut Conn| {
            conn.seats.insert(
                seat,
                Seat {
                    ns: namespace,
                    shared,
                    worker,
                    held_on: None,
                    write_lock: None,
                    names: HashMap::new(),
                    shown,
                },
            );
        })?;
        // The namespace's lock, waited for a little (a process that is closing), off the line.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match store.line.run(move |conn| conn.seated(seat).map(|_| ()))? {
                Err(LedgerError::Locked(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                done => return done.map(|()| store),
            }
        }
    }

    /// The line for a new store of `ns`: a new one while there are fewer than the limit, else
    /// the one with the fewest stores among those without `ns`, else a new one.
    fn place(
        &self,
        key: [u8; 32],
        ns: &str,
        connect: impl FnOnce() -> Box<dyn FnMut() -> Result<Client> + Send>,
    ) -> Result<Arc<Line>> {
        let mut all = self.0.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let lines = all.entry(key).or_default();
        if lines.len() >= self.0.limit {
            if let Some(e) = lines
                .iter_mut()
                .filter(|e| !e.namespaces.contains(ns))
                .min_by_key(|e| e.namespaces.len())
            {
                e.namespaces.insert(ns.to_owned());
                return Ok(Arc::clone(&e.line));
            }
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let mut conn = Conn::new(connect(), self.0.name.is_some());
        let thread = std::thread::Builder::new()
            .name("facto-postgres".into())
            .spawn(move || {
                for job in rx {
                    // A job that panics answers nothing (its caller is told the connection is
                    // gone) and closes the connection, so that nothing it took half-way stays
                    // held; the line goes on serving its other stores.
                    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        job(&mut conn);
                    }));
                    if done.is_err() {
                        conn.client = None;
                    }
                }
            })
            .map_err(|e| LedgerError::Io {
                path: PathBuf::from("postgres"),
                source: e,
            })?;
        let line = Arc::new(Line {
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        });
        lines.push(Entry {
            line: Arc::clone(&line),
            namespaces: HashSet::from([ns.to_owned()]),
        });
        Ok(line)
    }

    /// Store `seat` of `ns` leaves its line: its locks let go, and the line closed if no other
    /// store sits on it.
    pub(super) fn leave(&self, key: [u8; 32], line: &Arc<Line>, seat: u64, ns: &str) {
        let _ = line.run(move |conn| conn.leave(seat));
        let emptied = {
            let mut all = self.0.lines.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(lines) = all.get_mut(&key) else {
                return;
            };
            let Some(i) = lines.iter().position(|e| Arc::ptr_eq(&e.line, line)) else {
                return;
            };
            lines[i].namespaces.remove(ns);
            if lines[i].namespaces.is_empty() {
                let e = lines.swap_remove(i);
                if lines.is_empty() {
                    all.remove(&key);
                }
                Some(e.line)
            } else {
                None
            }
        };
        if let Some(l) = emptied {
            l.close();
        }
    }
}
