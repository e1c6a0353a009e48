//! The workers sharing a namespace, as the `facto_workers` table lists them and their locks
//! tell alive; and the read of several keys, with the plan the server makes for it.

use postgres::Client;

use super::{store_error, worker_lock};
use crate::ledger::Result;

/// The read of several keys of a namespace at once, each key looked up in the primary key on
/// its own: the subquery (kept apart by `OFFSET 0`) cannot be planned as one pass over the
/// namespace, which a table the statistics took for empty was (10 s a read at 40 000 rows).
pub(super) const READ_MANY: &str = "SELECT k.key, f.value FROM unnest($2::bytea[]) AS k(key) \
     CROSS JOIN LATERAL (SELECT value FROM facto_kv WHERE ns = $1 AND key = k.key OFFSET 0) f";

/// The registered workers of namespace `ns` whose lock is held (`me` among them), in order;
/// the rows of those gone are removed.
pub(super) fn live(c: &mut Client, ns: &str, me: &str) -> Result<Vec<String>> {
    let ids: Vec<String> = c
        .query(
            "SELECT id FROM facto_workers WHERE ns = $1 ORDER BY id",
            &[&ns],
        )
        .map_err(store_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut live = Vec::with_capacity(ids.len());
    for id in ids {
        if id != me {
            let key = worker_lock(ns, &id);
            let gone: bool = c
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .map_err(store_error)?
                .get(0);
            if gone {
                // Let go of its lock whatever the removal did: held on, it would make the gone
                // worker look alive to every other.
                let removed = c.execute(
                    "DELETE FROM facto_workers WHERE ns = $1 AND id = $2",
                    &[&ns, &id],
                );
                c.execute("SELECT pg_advisory_unlock($1)", &[&key])
                    .map_err(store_error)?;
                removed.map_err(store_error)?;
                continue;
            }
        }
        live.push(id);
    }
    Ok(live)
}

/// [`READ_MANY`]'s plan on this session for namespace `ns` and a page's worth of keys (500),
/// as a prepared statement is planned after its first runs.
pub(super) fn read_plan(c: &mut Client, ns: &str) -> Result<String> {
    c.batch_execute(&format!(
        "PREPARE facto_read_plan(text, bytea[]) AS {READ_MANY}"
    ))
    .map_err(store_error)?;
    // A utility statement takes no parameters: the namespace and keys are written out.
    let keys: Vec<String> = (0..500).map(|i| format!("'\\x72{i:08x}'::bytea")).collect();
    let run = format!(
        "facto_read_plan('{}', ARRAY[{}])",
        ns.replace('\'', "''"),
        keys.join(",")
    );
    // Six runs: the server chooses between a plan for the values and a generic one after five.
    for _ in 0..6 {
        c.batch_execute(&format!("EXECUTE {run}"))
            .map_err(store_error)?;
    }
    let rows = c
        .query(&format!("EXPLAIN EXECUTE {run}"), &[])
        .map_err(store_error)?;
    let plan: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    c.batch_execute("DEALLOCATE facto_read_plan")
        .map_err(store_error)?;
    Ok(plan.join("\n"))
}
