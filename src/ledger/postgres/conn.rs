//! A connection's thread's state: its client, made again when lost, the stores seated on it
//! (each with the locks it holds there), and the statements prepared on it; and the settings of
//! each session it opens.
//!
//! Several stores of different namespaces may share one connection ([`super::pool`]): each is a
//! [`Seat`], and every advisory lock a store takes (its namespace's, its worker's, the write
//! lock, its names) is kept on its seat, so that a connection made again takes back what each
//! seat held, and a store that leaves lets go of its own and nothing else.

use std::collections::HashMap;

use postgres::{Client, Statement};

use super::{gone, namespace_lock, store_error, worker_lock};
use crate::ledger::{LedgerError, Result};

/// One store on a connection: its namespace and what it holds there.
pub(super) struct Seat {
    pub(super) ns: String,
    /// Shared by several workers: the namespace lock is taken in shared mode.
    pub(super) shared: bool,
    /// This worker's id, when shared.
    pub(super) worker: Option<String>,
    /// The connection (its generation) on which the namespace's lock, and the worker's, were
    /// taken: `None` until they are, and again once that connection is lost.
    pub(super) held_on: Option<u64>,
    /// The connection on which this store took the write lock, while it holds it.
    pub(super) write_lock: Option<u64>,
    /// The name locks this store holds on the current connection, with how many times each
    /// was taken (a session's advisory locks stack).
    pub(super) names: HashMap<i64, u32>,
    /// Where the namespace is, for [`LedgerError::Locked`].
    pub(super) shown: std::path::PathBuf,
}

/// What the connection's thread holds: its client, how to make a new one (connected, its
/// session set, the schema migrated) when the last one was lost, and its seats.
pub(super) struct Conn {
    pub(super) client: Option<Client>,
    pub(super) connect: Box<dyn FnMut() -> Result<Client> + Send>,
    /// How many connections were made: a lock taken on one is gone with it.
    pub(super) generation: u64,
    /// The statements prepared on the current connection (parsed and planned once).
    pub(super) prepared: HashMap<&'static str, (u64, Statement)>,
    /// The stores on this connection, by seat number.
    pub(super) seats: HashMap<u64, Seat>,
    /// Whether a lock another session holds is waited for in turns, the connection serving
    /// its other seats between them (a shared pool), or at once (a store alone on its line:
    /// the server then also finds deadlocks between workers).
    pub(super) turns: bool,
    /// The last error was a refusal made here, not a lost connection: the connection, which
    /// other seats use, is kept.
    pub(super) refused: bool,
}

impl Conn {
    /// A connection's state, not connected yet.
    pub(super) fn new(connect: Box<dyn FnMut() -> Result<Client> + Send>, turns: bool) -> Conn {
        Conn {
            client: None,
            connect,
            generation: 0,
            prepared: HashMap::new(),
            seats: HashMap::new(),
            turns,
            refused: false,
        }
    }

    /// Whether there is no client or its connection was lost.
    pub(super) fn lost(&self) -> bool {
        self.client.as_ref().is_none_or(Client::is_closed)
    }

    /// The client, connected again first if the last one was lost. Only [`Conn::seated`]
    /// calls it: a connection made again holds no seat's locks until it takes them back.
    fn client(&mut self) -> Result<&mut Client> {
        if self.lost() {
            self.client = None;
            self.client = Some((self.connect)()?);
            self.generation += 1;
        }
        self.client.as_mut().ok_or_else(gone)
    }

    /// The client as it is, never made again (a statement after [`Conn::seated`] runs on the
    /// session that holds the seat's locks, or not at all): a lost one is
    /// [`LedgerError::Unreachable`], and the call is made again from its start.
    fn current(&mut self) -> Result<&mut Client> {
        match self.client.as_mut() {
            Some(c) if !c.is_closed() => Ok(c),
            _ => Err(LedgerError::Unreachable(
                "the connection to the ledger database was lost; it is made again at the next call"
                    .into(),
            )),
        }
    }

    /// The seat `seat`, or the error of a store that has left.
    pub(super) fn seat(&mut self, seat: u64) -> Result<&mut Seat> {
        self.seats.get_mut(&seat).ok_or_else(left)
    }

    /// The client for seat `seat`, its namespace's lock (and its worker's) held on it: taken
    /// again on a connection made again. Never waits: a lock another session holds is
    /// [`LedgerError::Locked`] (the caller waits, off this thread, which other stores share).
    pub(super) fn seated(&mut self, seat: u64) -> Result<&mut Client> {
        self.client()?;
        let generation = self.generation;
        let s = self.seats.get_mut(&seat).ok_or_else(left)?;
        if s.held_on == Some(generation) {
            return self.current();
        }
        let c = self.client.as_mut().ok_or_else(gone)?;
        // Whatever was held on a lost connection went with it.
        s.names.clear();
        match take_seat(c, s) {
            Ok(true) => {
                s.held_on = Some(generation);
                self.current()
            }
            Ok(false) => Err(LedgerError::Locked(s.shown.clone())),
            Err(e) => {
                // Closed, so that nothing taken half-way stays held; every seat takes its
                // locks again on the next connection.
                self.client = None;
                Err(e)
            }
        }
    }

    /// Lets go of everything seat `seat` holds on this connection, and removes the seat. On a
    /// failure the connection is closed (the server lets go of every lock with it; the other
    /// seats take theirs again at their next call), so nothing of the store is left held.
    pub(super) fn leave(&mut self, seat: u64) {
        let Some(s) = self.seats.remove(&seat) else {
            return;
        };
        if self.lost() || s.held_on != Some(self.generation) {
            return;
        }
        let generation = self.generation;
        let Some(c) = self.client.as_mut() else {
            return;
        };
        let mut undo = || -> std::result::Result<(), postgres::Error> {
            if s.write_lock == Some(generation) {
                c.execute(
                    "SELECT pg_advisory_unlock($1)",
                    &[&super::write_lock(&s.ns)],
                )?;
            }
            for (key, times) in &s.names {
                for _ in 0..*times {
                    c.execute("SELECT pg_advisory_unlock($1)", &[key])?;
                }
            }
            c.execute(namespace_sql(s.shared).1, &[&namespace_lock(&s.ns)])?;
            if let Some(id) = &s.worker {
                c.execute(
                    "DELETE FROM facto_workers WHERE ns = $1 AND id = $2",
                    &[&s.ns, id],
                )?;
                c.execute("SELECT pg_advisory_unlock($1)", &[&worker_lock(&s.ns, id)])?;
            }
            Ok(())
        };
        if undo().is_err() {
            self.client = None;
        }
    }

    /// The client and `sql` prepared on it (once per connection: a statement's parsing and
    /// its round trip are not paid at each call). Never connects again ([`Conn::current`]).
    pub(super) fn prepared(&mut self, sql: &'static str) -> Result<(&mut Client, Statement)> {
        self.current()?;
        let generation = self.generation;
        let known = self
            .prepared
            .get(sql)
            .filter(|(g, _)| *g == generation)
            .map(|(_, st)| st.clone());
        let c = self.client.as_mut().ok_or_else(gone)?;
        let st = match known {
            Some(st) => st,
            None => {
                let st = c.prepare(sql).map_err(store_error)?;
                self.prepared.insert(sql, (generation, st.clone()));
                st
            }
        };
        Ok((c, st))
    }

    /// [`Conn::prepared`] for seat `seat`, its locks held.
    pub(super) fn prepared_for(
        &mut self,
        seat: u64,
        sql: &'static str,
    ) -> Result<(&mut Client, Statement)> {
        self.seated(seat)?;
        self.prepared(sql)
    }

    /// The client for a write of seat `seat`, its locks held: refused when its write lock was
    /// taken on a connection since lost (the server let it go with the connection; another
    /// worker may have written since). The refusal leaves the connection to the other seats.
    pub(super) fn writer(&mut self, seat: u64) -> Result<&mut Client> {
        self.seated(seat)?;
        let generation = self.generation;
        if self.seat(seat)?.write_lock.is_some_and(|g| g != generation) {
            self.refused = true;
            return Err(LedgerError::Unreachable(
                "the connection that held the ledger's write lock was lost: the write is not made"
                    .into(),
            ));
        }
        self.current()
    }

    /// Whether seat `seat` holds its locks on the connection as it is: a lock is let go with
    /// its connection, never taken again to be let go.
    pub(super) fn holds(&self, seat: u64) -> bool {
        !self.lost()
            && self
                .seats
                .get(&seat)
                .is_some_and(|s| s.held_on == Some(self.generation))
    }

    /// Tries once to take the session lock `key` for seat `seat`, then waits for it at most
    /// `turn` when the connection waits in turns (a lock timeout of this transaction alone, so
    /// that its other seats wait no longer than that), else `whole`. `Ok(false)`: not taken yet.
    pub(super) fn lock_for(
        &mut self,
        seat: u64,
        key: i64,
        turn: std::time::Duration,
        whole: std::time::Duration,
    ) -> Result<bool> {
        let wait = if self.turns { turn } else { whole };
        let (c, st) = self.prepared_for(seat, "SELECT pg_try_advisory_lock($1)")?;
        if c.query_one(&st, &[&key]).map_err(store_error)?.get(0) {
            return Ok(true);
        }
        let mut tx = c.transaction().map_err(store_error)?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = '{}ms'",
            wait.as_millis().max(1)
        ))
        .map_err(store_error)?;
        // A session lock taken in a transaction stays held after it.
        match tx.execute("SELECT pg_advisory_lock($1)", &[&key]) {
            Ok(_) => {
                tx.commit().map_err(store_error)?;
                Ok(true)
            }
            Err(e) if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }
}

/// Takes seat `s`'s locks on `c`: its worker's (asked a few times: another worker holds it only
/// for the moment it asks whether this one is alive), its row, and its namespace's.
/// `Ok(false)`: another session holds one (nothing is left held).
fn take_seat(c: &mut Client, s: &Seat) -> Result<bool> {
    let try_lock = |c: &mut Client, key: i64, shared: bool| -> Result<bool> {
        Ok(c.query_one(namespace_sql(shared).0, &[&key])
            .map_err(store_error)?
            .get(0))
    };
    let worker = s.worker.as_deref().map(|w| (worker_lock(&s.ns, w), w));
    if let Some((key, id)) = worker {
        // Held for the life of the seat: this worker is alive while it is.
        let mut taken = false;
        for _ in 0..10 {
            taken = try_lock(c, key, false)?;
            if taken {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if !taken {
            return Ok(false);
        }
        c.execute(
            "INSERT INTO facto_workers (ns, id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&s.ns, &id],
        )
        .map_err(store_error)?;
    }
    if !try_lock(c, namespace_lock(&s.ns), s.shared)? {
        if let Some((key, _)) = worker {
            c.execute("SELECT pg_advisory_unlock($1)", &[&key])
                .map_err(store_error)?;
        }
        return Ok(false);
    }
    Ok(true)
}

/// How a seat's namespace lock is tried and let go: in shared mode when several workers share
/// the namespace (they exclude a process that would hold it alone, not each other).
fn namespace_sql(shared: bool) -> (&'static str, &'static str) {
    if shared {
        (
            "SELECT pg_try_advisory_lock_shared($1)",
            "SELECT pg_advisory_unlock_shared($1)",
        )
    } else {
        (
            "SELECT pg_try_advisory_lock($1)",
            "SELECT pg_advisory_unlock($1)",
        )
    }
}

/// The error of a store used after it left its connection.
fn left() -> LedgerError {
    LedgerError::Invalid(
        "this ledger was closed: open it again (a bug if it was not closed on purpose)".into(),
    )
}

/// The session's settings: a write is durable when its commit returns, whatever the server's
/// default, and no statement or lock wait runs unbounded.
pub(super) fn session(c: &mut Client) -> Result<()> {
    // Every statement of a key-value table is a lookup of keys, or a range of them, in the
    // primary key: the plans are pinned to that, whatever the statistics say. Left to them, a
    // namespace or a table the statistics did not know yet (a first sync, a new tenant, a new
    // database) was planned as a few rows: keys were looked up by namespace alone, every row of
    // it read for each read of several keys (445 ms a read at 40 000 rows on a new database),
    // and the plan kept for the connection's life. Index scans only, planned once per statement
    // ([`super::members::READ_MANY`] looks each key up on its own). No JIT: the cost a turned-off scan
    // still counts made the server compile the few statements with no other way (120 ms each).
    c.batch_execute(
        "SET plan_cache_mode = force_generic_plan;
         SET enable_seqscan = off;
         SET enable_bitmapscan = off;
         SET enable_hashjoin = off;
         SET enable_mergejoin = off;
         SET enable_material = off;
         SET jit = off;
         SET synchronous_commit = on;
         SET statement_timeout = '60s';
         SET lock_timeout = '30s';
         SET idle_in_transaction_session_timeout = '60s';
         SET tcp_keepalives_idle = 30;
         SET tcp_keepalives_interval = 10;
         SET tcp_keepalives_count = 3;",
    )
    .map_err(store_error)
}
