//! The connection's thread's state: its client, made again when lost, the write lock it
//! holds, and the statements prepared on it; and the settings of each session it opens.

use postgres::{Client, Statement};

use super::{gone, store_error};
use crate::ledger::{LedgerError, Result};

/// What the connection's thread holds: its client, and how to make a new one (connected, its
/// session set, the namespace's lock taken again) when the last one was lost.
pub(super) struct Conn {
    pub(super) client: Option<Client>,
    pub(super) connect: Box<dyn FnMut() -> Result<Client> + Send>,
    /// How many connections were made: a lock taken on one is gone with it.
    pub(super) generation: u64,
    /// The connection on which this process took the write lock, while it holds it.
    pub(super) write_lock: Option<u64>,
    /// The statements prepared on the current connection (parsed and planned once).
    pub(super) prepared: std::collections::HashMap<&'static str, (u64, Statement)>,
}

impl Conn {
    /// Whether there is no client or its connection was lost.
    fn lost(&self) -> bool {
        self.client.as_ref().is_none_or(Client::is_closed)
    }

    /// The client, connected again first if the last one was lost.
    pub(super) fn client(&mut self) -> Result<&mut Client> {
        if self.lost() {
            self.client = None;
            self.client = Some((self.connect)()?);
            self.generation += 1;
        }
        self.client.as_mut().ok_or_else(gone)
    }

    /// The client and `sql` prepared on it (once per connection: a statement's parsing and
    /// its round trip are not paid at each call).
    pub(super) fn prepared(&mut self, sql: &'static str) -> Result<(&mut Client, Statement)> {
        self.client()?;
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

    /// [`Conn::prepared`] on the connection as it is, never made again (a lock is let go
    /// with its connection): `None` when it is lost.
    pub(super) fn prepared_if_open(
        &mut self,
        sql: &'static str,
    ) -> Result<Option<(&mut Client, Statement)>> {
        if self.lost() {
            return Ok(None);
        }
        self.prepared(sql).map(Some)
    }

    /// The client for a write: refused when the write lock was taken on a connection since
    /// lost (the server let it go with the connection; another worker may have written since).
    pub(super) fn writer(&mut self) -> Result<&mut Client> {
        let client_lost = self.lost();
        if self
            .write_lock
            .is_some_and(|g| g != self.generation || client_lost)
        {
            return Err(LedgerError::Unreachable(
                "the connection that held the ledger's write lock was lost: the write is not made"
                    .into(),
            ));
        }
        self.client()
    }
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
