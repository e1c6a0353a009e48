//! The shared connections' tests: many namespaces on a few connections, each still held by
//! one process; a lock waited for keeps no other store waiting; two workers of a namespace on
//! two sessions; a connection made again takes back every store's locks, and a write refused
//! after it leaves it to the others; a store that leaves lets go of its own.

use std::time::{Duration, Instant};

use postgres::NoTls;

use super::*;
use crate::ledger::conformance::OnPostgres;

/// The sessions named `name` on the server, once the count settles at `want` (a backend ends a
/// moment after its connection closes), or the last count after 5 s.
fn sessions(url: &str, name: &str, want: i64) -> i64 {
    let mut admin = Client::connect(url, NoTls).unwrap();
    let mut n = -1;
    for _ in 0..250 {
        n = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&name],
            )
            .unwrap()
            .get(0);
        if n == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    n
}

/// Ends the sessions named `name` (a server restart, an operator), once they are gone.
pub(super) fn end_sessions(url: &str, name: &str) -> u64 {
    let mut admin = Client::connect(url, NoTls).unwrap();
    let ended = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&name],
        )
        .unwrap();
    assert_eq!(sessions(url, name, 0), 0);
    ended
}

/// A thread that takes `store`'s write lock (waiting for it) and lets it go.
fn takes_the_write_lock(store: &std::sync::Arc<PgStore>) -> std::thread::JoinHandle<()> {
    let s = std::sync::Arc::clone(store);
    std::thread::spawn(move || {
        s.lock_writes().unwrap();
        s.unlock_writes();
    })
}

fn put(s: &PgStore, k: &[u8], v: &[u8]) {
    let mut wb = WriteBatch::default();
    wb.insert(k.to_vec(), v.to_vec());
    s.apply(wb).unwrap();
}

#[test]
fn many_namespaces_share_a_few_connections_and_each_is_still_held_by_one_process() {
    let Some(b) = OnPostgres::available() else {
        return;
    };
    let name = format!("facto pool {}", b.ns);
    let pools = PgPools::new(2, &name);
    let stores: Vec<PgStore> = (0..5)
        .map(|i| {
            pools
                .open(&b.url, None, &format!("{}-{i}", b.ns), false)
                .unwrap()
        })
        .collect();
    for (i, s) in stores.iter().enumerate() {
        put(s, b"k", format!("{i}").as_bytes());
    }
    for (i, s) in stores.iter().enumerate() {
        assert_eq!(
            s.get(b"k").unwrap(),
            Some(format!("{i}").into_bytes()),
            "each its own"
        );
    }
    assert_eq!(pools.connections(), 2);
    assert_eq!(sessions(&b.url, &name, 2), 2, "five stores, two sessions");
    // Each namespace is still this process's alone, as with a connection of its own.
    let ns1 = format!("{}-1", b.ns);
    assert!(matches!(
        PgStore::open(&b.url, None, &ns1),
        Err(LedgerError::Locked(_))
    ));
    assert!(
        matches!(
            pools.open(&b.url, None, &ns1, false),
            Err(LedgerError::Locked(_))
        ),
        "a second store of a namespace is never seated on the session that holds it"
    );
    // A store that leaves lets go of its namespace; its line stays for the others.
    let mut stores = stores;
    drop(stores.remove(1));
    let alone = PgStore::open(&b.url, None, &ns1).unwrap();
    assert_eq!(alone.get(b"k").unwrap(), Some(b"1".to_vec()));
    drop(alone);
    assert_eq!(pools.connections(), 2);
    drop(stores);
    assert_eq!(pools.connections(), 0, "closed once empty");
    assert_eq!(sessions(&b.url, &name, 0), 0);
}

#[test]
fn a_store_waiting_for_a_lock_keeps_no_other_store_of_its_connection_waiting() {
    let Some(b) = OnPostgres::available() else {
        return;
    };
    let pools = PgPools::new(1, &format!("facto pool {}", b.ns));
    let waiting = std::sync::Arc::new(pools.open(&b.url, None, &b.ns, true).unwrap());
    let other = pools
        .open(&b.url, None, &format!("{}-other", b.ns), false)
        .unwrap();
    let holder = PgStore::open_as(&b.url, None, &b.ns, true).unwrap();
    holder.lock_writes().unwrap();
    let t = takes_the_write_lock(&waiting);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!t.is_finished(), "it waits for the holder");
    // Each call of the other store waits at most one turn of the wait (200 ms), never the
    // whole wait (30 s).
    let slowest = (0..5)
        .map(|_| {
            let started = Instant::now();
            put(&other, b"k", b"v");
            started.elapsed()
        })
        .max()
        .unwrap();
    assert!(
        slowest < Duration::from_secs(1),
        "the other store's calls went between the turns of the wait ({slowest:?})"
    );
    assert!(!t.is_finished(), "still waiting");
    let released = Instant::now();
    holder.unlock_writes();
    t.join().unwrap();
    assert!(
        released.elapsed() < Duration::from_secs(2),
        "taken within a turn of its release ({:?})",
        released.elapsed()
    );
}

/// Two workers of one namespace in one pool are seated on two connections, past the limit: on
/// one session they would not exclude each other.
#[test]
fn two_workers_of_one_namespace_never_share_a_session() {
    let Some(b) = OnPostgres::available() else {
        return;
    };
    let pools = PgPools::new(1, &format!("facto pool {}", b.ns));
    let one = pools.open(&b.url, None, &b.ns, true).unwrap();
    let two = std::sync::Arc::new(pools.open(&b.url, None, &b.ns, true).unwrap());
    assert_eq!(pools.connections(), 2);
    assert!(one.try_lock_name("n").unwrap());
    assert!(!two.try_lock_name("n").unwrap(), "the name is one's");
    one.lock_writes().unwrap();
    let t = takes_the_write_lock(&two);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!t.is_finished(), "two waits for one's write lock");
    one.unlock_writes();
    t.join().unwrap();
    drop(one);
    assert_eq!(pools.connections(), 1);
}

/// A write refused because its write lock went with a lost connection leaves that connection
/// to the other stores on it (before, the refusal closed it, and every other store's locks).
#[test]
fn a_refused_write_leaves_the_connection_to_the_other_stores() {
    let Some(b) = OnPostgres::available() else {
        return;
    };
    let name = format!("facto pool {}", b.ns);
    let pools = PgPools::new(1, &name);
    let writer = pools.open(&b.url, None, &b.ns, true).unwrap();
    let other = pools
        .open(&b.url, None, &format!("{}-other", b.ns), false)
        .unwrap();
    writer.lock_writes().unwrap();
    let mut admin = Client::connect(&b.url, NoTls).unwrap();
    let pid = |admin: &mut Client| -> Vec<i32> {
        admin
            .query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                &[&name],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(end_sessions(&b.url, &name), 1);
    let mut wb = WriteBatch::default();
    wb.insert(b"k".to_vec(), b"v".to_vec());
    assert!(
        matches!(writer.apply(wb), Err(LedgerError::Unreachable(_))),
        "its write lock went with the connection"
    );
    let after_refusal = pid(&mut admin);
    assert_eq!(after_refusal.len(), 1, "connected again once");
    put(&other, b"k", b"v");
    assert_eq!(
        pid(&mut admin),
        after_refusal,
        "the same session serves the other store"
    );
    assert!(matches!(
        PgStore::open(&b.url, None, &format!("{}-other", b.ns)),
        Err(LedgerError::Locked(_))
    ));
    writer.unlock_writes();
    writer.lock_writes().unwrap();
    put(&writer, b"k", b"w");
    writer.unlock_writes();
}
#[test]
fn a_shared_connection_made_again_takes_back_every_store_s_locks() {
    let Some(b) = OnPostgres::available() else {
        return;
    };
    let name = format!("facto pool {}", b.ns);
    let pools = PgPools::new(1, &name);
    let (ns_a, ns_b) = (format!("{}-a", b.ns), format!("{}-b", b.ns));
    let a = pools.open(&b.url, None, &ns_a, false).unwrap();
    let w = pools.open(&b.url, None, &ns_b, true).unwrap();
    put(&a, b"k", b"a");
    assert!(w.try_lock_name("contact").unwrap());
    assert_eq!(end_sessions(&b.url, &name), 1);
    assert_eq!(a.get(b"k").unwrap(), Some(b"a".to_vec()));
    assert_eq!(w.workers().unwrap(), vec![w.worker().unwrap()]);
    assert!(matches!(
        PgStore::open(&b.url, None, &ns_a),
        Err(LedgerError::Locked(_))
    ));
    assert!(matches!(
        PgStore::open(&b.url, None, &ns_b),
        Err(LedgerError::Locked(_))
    ));
    // The name went with the lost session: another worker takes it, and the store's own
    // unlock of it (no longer held) lets go of nothing of the others'.
    let other = PgStore::open_as(&b.url, None, &ns_b, true).unwrap();
    assert!(other.try_lock_name("contact").unwrap());
    w.unlock_name("contact");
    assert!(!w.try_lock_name("contact").unwrap());
}

#[test]
fn a_store_that_leaves_lets_go_of_its_own_locks_and_row_only() {
    let Some(b) = OnPostgres::available() else {
        return;
    };
    let pools = PgPools::new(1, &format!("facto pool {}", b.ns));
    let leaving = pools.open(&b.url, None, &b.ns, true).unwrap();
    let staying = pools
        .open(&b.url, None, &format!("{}-staying", b.ns), true)
        .unwrap();
    assert!(leaving.try_lock_name("x").unwrap());
    assert!(leaving.try_lock_name("x").unwrap(), "taken twice");
    leaving.lock_writes().unwrap();
    assert!(staying.try_lock_name("x").unwrap());
    let gone = leaving.worker().unwrap();
    drop(leaving);
    assert_eq!(pools.connections(), 1, "the line stays for the other store");
    let mut admin = Client::connect(&b.url, NoTls).unwrap();
    let rows: i64 = admin
        .query_one(
            "SELECT count(*) FROM facto_workers WHERE ns = $1 AND id = $2",
            &[&b.ns, &gone],
        )
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "its row removed as it left");
    let next = PgStore::open_as(&b.url, None, &b.ns, true).unwrap();
    assert!(next.try_lock_name("x").unwrap(), "both takes let go");
    next.lock_writes().unwrap();
    next.unlock_writes();
    assert_eq!(next.workers().unwrap(), vec![next.worker().unwrap()]);
    assert!(!next.worker_alive(&gone).unwrap());
    let other = PgStore::open_as(&b.url, None, &format!("{}-staying", b.ns), true).unwrap();
    assert!(
        !other.try_lock_name("x").unwrap(),
        "the staying store still holds its own"
    );
    assert!(
        other.worker_alive(&staying.worker().unwrap()).unwrap(),
        "its session was not closed"
    );
}
