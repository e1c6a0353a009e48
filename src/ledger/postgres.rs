//! The PostgreSQL store (issue 16, first step): the same [`Store`] as sled's (bytes by key,
//! prefix scans in key order, atomic write batches, counters, the kept batch files), in three
//! tables of a PostgreSQL database that operators back up and replicate as they know how. The
//! ledger's rules and keys above it are unchanged, so the conformance suite proves it
//! ([`super::conformance`]).
//!
//! - **Namespaces.** Every row carries its ledger's namespace (`ns`): one database holds the
//!   ledgers of many companies, none reading another's.
//! - **Schema.** facto creates and migrates it itself: numbered migrations, each applied once in
//!   its own transaction under an advisory lock (two processes starting together migrate once),
//!   the version kept in `facto_schema`. A database migrated by a newer facto is refused.
//! - **One writer.** A process holds its namespace's advisory lock while the store is open, as
//!   sled holds its folder's: a second process is refused ([`LedgerError::Locked`]), unless
//!   the workers share the namespace (`shared`).
//! - **Durability.** A write batch is one transaction, durable when it commits (the server's
//!   `synchronous_commit`); [`Store::flush`] has nothing left to do.
//! - **Threads.** The blocking client runs on a thread of its own (a *line*), so the store may
//!   be called from the async code that drives the ledger without nesting runtimes. A store
//!   opened alone has a line of its own; a deployment's tenants share a few ([`PgPools`]). A
//!   lost connection is made again at the next call (each store's locks taken again), and the
//!   call repeated: every operation of the store is safe to repeat.
//!
//! The password never sits in the configuration: the URL names the server, the user and the
//! database, and the password comes from the environment (`PGPASSWORD`, or the variable the
//! caller names).

use std::path::{Path, PathBuf};

use postgres::Client;

use super::rules::StoreLedger;
use super::store::{Scan, Store, WriteBatch};
use super::{LedgerError, Result};
use conn::Conn;
pub use pool::PgPools;

/// The ledger on PostgreSQL.
pub type PgLedger = StoreLedger<PgStore>;

impl StoreLedger<PgStore> {
    /// Opens the ledger of namespace `ns` in the database at `url` ([`PgStore::open`]).
    ///
    /// # Errors
    ///
    /// As [`PgStore::open`], and a namespace written by another ledger version.
    pub fn open_postgres(url: &str, password: Option<&str>, ns: &str) -> Result<PgLedger> {
        StoreLedger::on(PgStore::open(url, password, ns)?)
    }
}

/// The migrations, in order: migration `n` (from 1) is `MIGRATIONS[n - 1]`.
const MIGRATIONS: &[&str] = &[
    // 1: the key-value rows (counters among them, as big-endian u64) and the kept batch
    // files, by namespace.
    "CREATE TABLE facto_kv (ns TEXT NOT NULL, key BYTEA NOT NULL, value BYTEA NOT NULL, PRIMARY KEY (ns, key));
     CREATE TABLE facto_blobs (ns TEXT NOT NULL, id BIGINT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (ns, id));",
    // 2: the workers sharing a namespace (each alive while its connection holds its lock).
    "CREATE TABLE facto_workers (ns TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (ns, id));",
];

/// How long a wait for a lock another worker holds lasts at most (the sessions' lock timeout).
const LOCK_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// One turn of that wait: the longest a store waiting for a lock keeps its line from the
/// others.
const LOCK_TURN: std::time::Duration = std::time::Duration::from_millis(200);

/// Rows read per call of a scan: a scan of a million records never holds them all.
const SCAN_PAGE: i64 = 1000;

/// The advisory lock key under which facto migrates a database.
const MIGRATION_LOCK: i64 = 0x6661_6374_6f00_0001;

/// A PostgreSQL database as a ledger store, for one namespace.
pub struct PgStore {
    /// The connections it shares, and its line among them (with its seat on it).
    pools: PgPools,
    key: [u8; 32],
    line: std::sync::Arc<pool::Line>,
    seat: u64,
    ns: String,
    /// Shared by several workers: no namespace lock; each write section takes the write lock.
    shared: bool,
    /// This worker's id when shared: its connection holds the advisory lock of that id, so
    /// the others know it is alive while the lock is held.
    worker: Option<String>,
    /// The server and database, for messages (never the password).
    shown: PathBuf,
}

/// The advisory lock that makes one process the namespace's only writer, as sled's lock on its
/// folder does, until several workers share a ledger: the namespace's hash.
fn namespace_lock(ns: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("facto-ledger\0{ns}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    i64::from_be_bytes(b)
}

/// The advisory lock of one write section of the namespace's ledger, when several workers
/// share it: another key than [`namespace_lock`]'s.
fn write_lock(ns: &str) -> i64 {
    namespace_lock(&format!("{ns}\0writes"))
}

/// The advisory lock of the name `name` ([`Store::lock_name`]), in namespace `ns`.
fn name_lock(ns: &str, name: &str) -> i64 {
    namespace_lock(&format!("{ns}\0name\0{name}"))
}

/// The advisory lock a worker's connection holds while it runs.
fn worker_lock(ns: &str, worker: &str) -> i64 {
    namespace_lock(&format!("{ns}\0worker\0{worker}"))
}

/// A new worker id: the process id and a hash of the time, unique among live workers.
fn new_worker_id() -> String {
    use sha2::{Digest, Sha256};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let h = Sha256::digest(format!("{}\0{nanos}", std::process::id()).as_bytes());
    format!("{}-{}", std::process::id(), &hex::encode(h)[..8])
}

impl Drop for PgStore {
    /// Lets go of the namespace (and closes the connection if no other store shares it)
    /// before the next open may need it.
    fn drop(&mut self) {
        self.pools.leave(self.key, &self.line, self.seat, &self.ns);
    }
}

/// A database error as the ledger reports it; a lost connection is "unreachable" (exit 3), and
/// what it was doing was not recorded.
fn store_error(e: postgres::Error) -> LedgerError {
    // Closed, reset, broken pipe, timed out, or ended by the server (a FATAL error, a
    // connection exception, an operator's shutdown): the connection is gone, not the statement
    // wrong.
    let io = std::error::Error::source(&e).is_some_and(|c| c.is::<std::io::Error>());
    let ended = e.as_db_error().is_some_and(|d| {
        let code = d.code().code();
        matches!(d.severity(), "FATAL" | "PANIC")
            || code.starts_with("08")
            || code.starts_with("57P")
    });
    if e.is_closed() || io || ended {
        return LedgerError::Unreachable(format!(
            "the connection to the ledger database was lost ({e}); it is made again at the next call"
        ));
    }
    LedgerError::Store(Box::new(e))
}

fn gone() -> LedgerError {
    LedgerError::Unreachable(
        "the PostgreSQL connection's thread has stopped: the call is made again on a new connection"
            .into(),
    )
}

/// Lets go of the session lock `key`. Should the server fail to, the connection is closed (the
/// server then lets go of every lock of it), so that no lock outlives its holder's wish.
fn unlock(conn: &mut Conn, key: i64) -> Result<()> {
    let (c, st) = conn.prepared("SELECT pg_advisory_unlock($1)")?;
    if let Err(e) = c.execute(&st, &[&key]) {
        conn.client = None;
        return Err(store_error(e));
    }
    Ok(())
}

/// Where a connection string points, for messages: user, hosts, ports and database only, read
/// from the parsed string, so that no password (however written) is ever repeated.
pub fn shown(url: &str) -> String {
    let Ok(c) = url.parse::<postgres::Config>() else {
        return "(an unreadable PostgreSQL connection string)".into();
    };
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .zip(c.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, p)| match h {
            postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
            postgres::config::Host::Unix(d) => format!("{}:{p}", d.display()),
        })
        .collect();
    format!(
        "postgres://{}@{}/{}",
        c.get_user().unwrap_or(""),
        hosts.join(","),
        c.get_dbname().unwrap_or("")
    )
}

/// Whether the connection string carries a password (which belongs in the environment).
pub fn has_password(url: &str) -> bool {
    url.parse::<postgres::Config>()
        .is_ok_and(|c| c.get_password().is_some())
}

/// The first key after every key that starts with `prefix` (`None`: there is none).
fn after_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`; the password from `password`, else
    /// `PGPASSWORD`), migrates the schema, and serves namespace `ns`.
    ///
    /// # Errors
    ///
    /// The server cannot be reached or refuses the login, the schema is newer than this facto,
    /// or a migration fails.
    pub fn open(url: &str, password: Option<&str>, ns: &str) -> Result<PgStore> {
        PgStore::open_as(url, password, ns, false)
    }

    /// [`PgStore::open`], for one of several workers sharing the namespace (`shared`): the
    /// namespace is not locked; each write section of the ledger's rules takes the
    /// namespace's write lock instead ([`Store::lock_writes`]), so one worker at a time reads
    /// then writes records and indexes.
    ///
    /// # Errors
    ///
    /// As [`PgStore::open`].
    pub fn open_as(url: &str, password: Option<&str>, ns: &str, shared: bool) -> Result<PgStore> {
        PgPools::alone().open(url, password, ns, shared)
    }

    /// Removes everything the namespace holds (a company leaving the deployment, a test's
    /// data), in one transaction.
    ///
    /// # Errors
    ///
    /// Storage failure.
    pub fn drop_namespace(&self) -> Result<()> {
        let ns = self.ns.clone();
        self.call(move |c| {
            let mut tx = c.transaction().map_err(store_error)?;
            for table in ["facto_kv", "facto_blobs", "facto_workers"] {
                tx.execute(&format!("DELETE FROM {table} WHERE ns = $1"), &[&ns])
                    .map_err(store_error)?;
            }
            tx.commit().map_err(store_error)
        })
    }

    /// The plan this connection's server makes for a read of several keys ([`Store::get_many`])
    /// in this namespace, as `EXPLAIN` prints it: for the regression test that keeps those
    /// reads on the primary key, whatever the server's statistics say of the namespace.
    ///
    /// # Errors
    ///
    /// Storage failure.
    #[doc(hidden)]
    pub fn read_plan(&self) -> Result<String> {
        let ns = self.ns.clone();
        self.call(move |c| members::read_plan(c, &ns))
    }

    /// Runs `f` on the connection's thread and waits for its answer. A connection found lost
    /// is made again (the namespace's lock taken again) and `f` runs once more: every operation
    /// of the store is safe to repeat (writes set values, a counter at worst skips a number).
    fn call<R: Send + 'static>(
        &self,
        f: impl Fn(&mut Client) -> Result<R> + Send + Sync + 'static,
    ) -> Result<R> {
        let seat = self.seat;
        self.call_on(move |conn| conn.seated(seat).and_then(&f))
    }

    /// [`PgStore::call`] with the connection's state (this store's seat and its locks).
    fn call_on<R: Send + 'static>(
        &self,
        f: impl Fn(&mut Conn) -> Result<R> + Send + Sync + 'static,
    ) -> Result<R> {
        let f = std::sync::Arc::new(f);
        match self.once(std::sync::Arc::clone(&f)) {
            Err(LedgerError::Unreachable(_)) => self.once(f),
            done => done,
        }
    }

    fn once<R: Send + 'static>(
        &self,
        f: std::sync::Arc<impl Fn(&mut Conn) -> Result<R> + Send + Sync + 'static>,
    ) -> Result<R> {
        self.line.run(move |conn: &mut Conn| {
            let done = f(conn);
            let refused = std::mem::take(&mut conn.refused);
            if matches!(done, Err(LedgerError::Unreachable(_))) && !refused {
                // Made again before the next call, whatever the client believes.
                conn.client = None;
            }
            done
        })?
    }

    /// Takes the session lock `key` for this store, waiting for it in turns of [`LOCK_TURN`]
    /// (the line serves its other stores between them) up to [`LOCK_WAIT_MAX`]; `take` records
    /// it on the seat.
    fn lock_waiting(
        &self,
        key: i64,
        what: &str,
        take: impl Fn(&mut Conn) -> Result<()> + Send + Sync + 'static,
    ) -> Result<()> {
        let seat = self.seat;
        let take = std::sync::Arc::new(take);
        let deadline = std::time::Instant::now() + LOCK_WAIT_MAX;
        loop {
            let take = std::sync::Arc::clone(&take);
            let got = self.call_on(move |conn| {
                if !conn.lock_for(seat, key, LOCK_TURN, LOCK_WAIT_MAX)? {
                    return Ok(false);
                }
                take(conn)?;
                Ok(true)
            })?;
            if got {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(LedgerError::Unreachable(format!(
                    "{what} of the ledger at {} stayed taken by another worker for {} s: tried again at the next run",
                    self.shown.display(),
                    LOCK_WAIT_MAX.as_secs()
                )));
            }
        }
    }

    /// One page of a scan: the rows after `from` (excluded when `after`), before `end`.
    fn page(
        &self,
        from: Vec<u8>,
        after: bool,
        end: Option<Vec<u8>>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let ns = self.ns.clone();
        self.call(move |c| {
            let op = if after { ">" } else { ">=" };
            let rows = match &end {
                Some(end) => c.query(
                    &format!("SELECT key, value FROM facto_kv WHERE ns = $1 AND key {op} $2 AND key < $3 ORDER BY key LIMIT $4"),
                    &[&ns, &from, end, &SCAN_PAGE],
                ),
                None => c.query(
                    &format!("SELECT key, value FROM facto_kv WHERE ns = $1 AND key {op} $2 ORDER BY key LIMIT $3"),
                    &[&ns, &from, &SCAN_PAGE],
                ),
            }
            .map_err(store_error)?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }
}

/// Applies the migrations this database has not had, each once, under the advisory lock.
fn migrate(c: &mut Client) -> Result<()> {
    let mut tx = c.transaction().map_err(store_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(store_error)?;
    // Under the lock: two processes creating it at once would collide. Created only when
    // missing, so that a role without the right to create tables uses a migrated database.
    let exists: bool = tx
        .query_one("SELECT to_regclass('facto_schema') IS NOT NULL", &[])
        .map_err(store_error)?
        .get(0);
    if !exists {
        tx.batch_execute("CREATE TABLE facto_schema (version INTEGER NOT NULL)")
            .map_err(store_error)?;
    }
    let found: i32 = tx
        .query_opt("SELECT max(version) FROM facto_schema", &[])
        .map_err(store_error)?
        .and_then(|r| r.get::<_, Option<i32>>(0))
        .unwrap_or(0);
    let expected = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
    if found > expected {
        return Err(LedgerError::Invalid(format!(
            "the ledger database has schema version {found}, this facto knows up to {expected}: use the facto version that migrated it"
        )));
    }
    for (n, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        tx.batch_execute(sql).map_err(store_error)?;
        let version = i32::try_from(n + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO facto_schema (version) VALUES ($1)",
            &[&version],
        )
        .map_err(store_error)?;
    }
    tx.commit().map_err(store_error)
}

impl Store for PgStore {
    fn location(&self) -> &Path {
        &self.shown
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (ns, key, seat) = (self.ns.clone(), key.to_vec(), self.seat);
        self.call_on(move |conn| {
            let (c, st) = conn.prepared_for(
                seat,
                "SELECT value FROM facto_kv WHERE ns = $1 AND key = $2",
            )?;
            Ok(c.query_opt(&st, &[&ns, &key])
                .map_err(store_error)?
                .map(|r| r.get(0)))
        })
    }

    /// One query for all of them.
    fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let (ns, wanted, seat) = (self.ns.clone(), keys.to_vec(), self.seat);
        let found = self.call_on(move |conn| {
            let (c, st) = conn.prepared_for(seat, members::READ_MANY)?;
            let rows = c.query(&st, &[&ns, &wanted]).map_err(store_error)?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
                .collect::<std::collections::HashMap<_, _>>())
        })?;
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    fn scan(&self, prefix: &[u8]) -> Scan<'_> {
        let end = after_prefix(prefix);
        let mut next = Some((prefix.to_vec(), false));
        let mut buffered = std::collections::VecDeque::new();
        Box::new(std::iter::from_fn(move || loop {
            if let Some(row) = buffered.pop_front() {
                return Some(Ok(row));
            }
            let (from, after) = next.take()?;
            match self.page(from, after, end.clone()) {
                Ok(rows) => {
                    if rows.len() as i64 == SCAN_PAGE {
                        next = rows.last().map(|(k, _)| (k.clone(), true));
                    }
                    if rows.is_empty() {
                        return None;
                    }
                    buffered.extend(rows);
                }
                Err(e) => return Some(Err(e)),
            }
        }))
    }

    /// One transaction of two statements, whatever the batch's size: the batch's last write of
    /// each key (a later write wins), upserted from arrays, and its removals.
    fn apply(&self, batch: WriteBatch) -> Result<()> {
        let ns = self.ns.clone();
        let mut last: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> =
            std::collections::BTreeMap::new();
        for (k, v) in batch.into_ops() {
            last.insert(k, v);
        }
        if last.is_empty() {
            return Ok(());
        }
        let (mut keys, mut values, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        for (k, v) in last {
            match v {
                Some(v) => {
                    keys.push(k);
                    values.push(v);
                }
                None => gone.push(k),
            }
        }
        // One statement, so one round trip and atomic on its own: its keys written and
        // removed are distinct (the batch's last operation per key).
        let seat = self.seat;
        self.call_on(move |conn| {
            conn.writer(seat)?;
            let (c, st) = conn.prepared(
                "WITH gone AS (DELETE FROM facto_kv WHERE ns = $1 AND key = ANY($4::bytea[]))
                 INSERT INTO facto_kv (ns, key, value)
                 SELECT $1, k, v FROM unnest($2::bytea[], $3::bytea[]) AS t(k, v)
                 ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value",
            )?;
            c.execute(&st, &[&ns, &keys, &values, &gone])
                .map_err(store_error)?;
            Ok(())
        })
    }

    /// Each batch is durable when its statement commits.
    fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// The counter is a row like any other (a big-endian `u64`, as sled keeps it), read and
    /// written under its row lock, so that two processes never take the same number.
    fn increment(&self, key: &[u8]) -> Result<u64> {
        let (ns, key) = (self.ns.clone(), key.to_vec());
        self.call(move |c| {
            let mut tx = c.transaction().map_err(store_error)?;
            tx.execute(
                "INSERT INTO facto_kv (ns, key, value) VALUES ($1, $2, $3) ON CONFLICT (ns, key) DO NOTHING",
                &[&ns, &key, &0u64.to_be_bytes().to_vec()],
            )
            .map_err(store_error)?;
            let now: Vec<u8> = tx
                .query_one(
                    "SELECT value FROM facto_kv WHERE ns = $1 AND key = $2 FOR UPDATE",
                    &[&ns, &key],
                )
                .map_err(store_error)?
                .get(0);
            // A counter that is not 8 bytes is damage, never a new start: batch ids would be
            // taken again.
            let n = <[u8; 8]>::try_from(now.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| LedgerError::Invalid("a ledger counter is damaged (not 8 bytes): restore the database from its backup".into()))?
                .checked_add(1)
                .ok_or_else(|| LedgerError::Invalid("a counter overflowed".into()))?;
            tx.execute(
                "UPDATE facto_kv SET value = $3 WHERE ns = $1 AND key = $2",
                &[&ns, &key, &n.to_be_bytes().to_vec()],
            )
            .map_err(store_error)?;
            tx.commit().map_err(store_error)?;
            Ok(n)
        })
    }

    /// With several workers: the namespace's write lock, a session lock of this store (waited
    /// for; each worker holds it only for one write of records and indexes).
    fn lock_writes(&self) -> Result<()> {
        if !self.shared {
            return Ok(());
        }
        let seat = self.seat;
        let held = self.call_on(move |conn| {
            conn.seated(seat)?;
            let generation = conn.generation;
            Ok(conn.seat(seat)?.write_lock == Some(generation))
        })?;
        if held {
            return Ok(());
        }
        self.lock_waiting(write_lock(&self.ns), "the write lock", move |conn| {
            let generation = conn.generation;
            conn.seat(seat)?.write_lock = Some(generation);
            Ok(())
        })
    }

    fn unlock_writes(&self) {
        if !self.shared {
            return;
        }
        let (key, seat) = (write_lock(&self.ns), self.seat);
        let _ = self.once(std::sync::Arc::new(move |conn: &mut Conn| {
            let (generation, holds) = (conn.generation, conn.holds(seat));
            if conn.seat(seat)?.write_lock.take() == Some(generation) && holds {
                unlock(conn, key)?;
            }
            Ok(())
        }));
    }

    fn worker(&self) -> Option<String> {
        self.worker.clone()
    }

    /// A session advisory lock of the name, in this namespace (let go with the connection if
    /// it is lost).
    fn lock_name(&self, name: &str) -> Result<()> {
        if !self.shared {
            return Ok(());
        }
        let (key, seat) = (name_lock(&self.ns, name), self.seat);
        self.lock_waiting(key, &format!("the lock `{name}`"), move |conn| {
            *conn.seat(seat)?.names.entry(key).or_default() += 1;
            Ok(())
        })
    }

    fn try_lock_name(&self, name: &str) -> Result<bool> {
        if !self.shared {
            return Ok(true);
        }
        let (key, seat) = (name_lock(&self.ns, name), self.seat);
        self.call_on(move |conn| {
            let (c, st) = conn.prepared_for(seat, "SELECT pg_try_advisory_lock($1)")?;
            let got: bool = c.query_one(&st, &[&key]).map_err(store_error)?.get(0);
            if got {
                *conn.seat(seat)?.names.entry(key).or_default() += 1;
            }
            Ok(got)
        })
    }

    fn unlock_name(&self, name: &str) {
        if !self.shared {
            return;
        }
        let (key, seat) = (name_lock(&self.ns, name), self.seat);
        let _ = self.once(std::sync::Arc::new(move |conn: &mut Conn| {
            if !conn.holds(seat) {
                return Ok(());
            }
            let names = &mut conn.seat(seat)?.names;
            match names.get_mut(&key) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    names.remove(&key);
                }
                None => return Ok(()),
            }
            unlock(conn, key)
        }));
    }

    /// Alive while its connection holds its lock: taking the lock tells it is gone (and it is
    /// let go at once). This worker's own id answers "gone": its claims met at reconciliation
    /// are from an interrupted run of its own.
    fn worker_alive(&self, id: &str) -> Result<bool> {
        if !self.shared {
            return Ok(false);
        }
        let key = worker_lock(&self.ns, id);
        let own = self.worker.as_deref() == Some(id);
        self.call(move |c| {
            if own {
                return Ok(false);
            }
            let got: bool = c
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .map_err(store_error)?
                .get(0);
            if got {
                c.execute("SELECT pg_advisory_unlock($1)", &[&key])
                    .map_err(store_error)?;
            }
            Ok(!got)
        })
    }

    /// The registered workers whose lock is held; the others are gone and their rows removed.
    fn workers(&self) -> Result<Vec<String>> {
        let Some(me) = self.worker.clone() else {
            return Ok(Vec::new());
        };
        let ns = self.ns.clone();
        self.call(move |c| members::live(c, &ns, &me))
    }

    fn put_blob(&self, id: u64, file: &mut dyn std::io::Read) -> Result<()> {
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(|e| LedgerError::Io {
            path: self.shown.join(format!("batches/{id}")),
            source: e,
        })?;
        let ns = self.ns.clone();
        let id = i64::try_from(id).map_err(|_| LedgerError::Invalid(format!("batch id {id}")))?;
        self.call(move |c| {
            c.execute(
                "INSERT INTO facto_blobs (ns, id, data) VALUES ($1, $2, $3)
                 ON CONFLICT (ns, id) DO UPDATE SET data = EXCLUDED.data",
                &[&ns, &id, &data],
            )
            .map_err(store_error)?;
            Ok(())
        })
    }

    fn blob(&self, id: u64) -> Result<Vec<u8>> {
        let ns = self.ns.clone();
        let path = self.shown.join(format!("batches/{id}"));
        let id = i64::try_from(id).map_err(|_| LedgerError::Invalid(format!("batch id {id}")))?;
        self.call(move |c| {
            c.query_opt(
                "SELECT data FROM facto_blobs WHERE ns = $1 AND id = $2",
                &[&ns, &id],
            )
            .map_err(store_error)?
            .map(|r| r.get(0))
            .ok_or_else(|| LedgerError::Io {
                path: path.clone(),
                source: std::io::ErrorKind::NotFound.into(),
            })
        })
    }

    fn remove_blob(&self, id: u64) {
        let ns = self.ns.clone();
        let Ok(id) = i64::try_from(id) else {
            return;
        };
        let _ = self.call(move |c| {
            c.execute(
                "DELETE FROM facto_blobs WHERE ns = $1 AND id = $2",
                &[&ns, &id],
            )
            .map_err(store_error)?;
            Ok(())
        });
    }
}

mod conn;
mod members;
mod pool;
#[cfg(test)]
mod pool_tests;
#[cfg(test)]
mod tests;
