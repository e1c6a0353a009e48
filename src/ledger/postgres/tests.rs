//! The PostgreSQL store's own tests: connection strings, paging, locks, lost connections.

use super::*;

#[test]
fn a_connection_string_is_shown_without_its_password() {
    for (url, want) in [
        (
            "postgres://facto:s3cret@127.0.0.1:5432/facto",
            "postgres://facto@127.0.0.1:5432/facto",
        ),
        (
            "postgres://facto@db/facto",
            "postgres://facto@db:5432/facto",
        ),
        (
            "postgres://u@h/db?password=s3cret",
            "postgres://u@h:5432/db",
        ),
        (
            "host=db password='s3 cret' user=facto dbname=f",
            "postgres://facto@db:5432/f",
        ),
    ] {
        assert_eq!(shown(url), want, "{url}");
        assert!(!shown(url).contains("s3"));
    }
    assert!(has_password("postgres://facto:pa/ss@host/db"));
    assert!(has_password("host=db password=x"));
    assert!(has_password("postgres://u@h/db?password=x"));
    assert!(!has_password("postgres://facto@db/facto"));
    assert!(!shown("not a url \u{0}").contains("not a url"));
}

/// A scan reads page by page: more rows than a page, in key order, none of the next
/// prefix's.
#[test]
fn a_scan_pages_through_more_rows_than_a_page() {
    let Some(b) = crate::ledger::conformance::OnPostgres::available() else {
        return;
    };
    let s = PgStore::open(&b.url, None, &b.ns).unwrap();
    let mut wb = WriteBatch::default();
    for i in 0..2500u32 {
        wb.insert(
            [b"p\0".as_slice(), &i.to_be_bytes()].concat(),
            i.to_be_bytes().to_vec(),
        );
    }
    wb.insert(b"p\x01after".to_vec(), b"x".to_vec());
    wb.insert(b"o\xffbefore".to_vec(), b"x".to_vec());
    s.apply(wb).unwrap();
    let keys: Vec<Vec<u8>> = s.scan(b"p\0").map(|kv| kv.unwrap().0).collect();
    assert_eq!(keys.len(), 2500);
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "in key order");
    assert!(keys.iter().all(|k| k.starts_with(b"p\0")));
}

/// One process at a time writes a namespace: a second open is refused as sled's would be,
/// and the namespace is free again once the first closes; another namespace is not held.
#[test]
fn shared_workers_see_each_other_alive_and_write_one_at_a_time() {
    let Some(b) = crate::ledger::conformance::OnPostgres::available() else {
        return;
    };
    let a = PgStore::open_as(&b.url, None, &b.ns, true).unwrap();
    let c = PgStore::open_as(&b.url, None, &b.ns, true).unwrap();
    let (wa, wc) = (a.worker().unwrap(), c.worker().unwrap());
    assert_ne!(wa, wc);
    assert!(c.worker_alive(&wa).unwrap(), "a runs");
    let mut both = vec![wa.clone(), wc.clone()];
    both.sort();
    assert_eq!(
        c.workers().unwrap(),
        both,
        "each lists the live workers, in order"
    );
    assert_eq!(a.workers().unwrap(), both);
    assert!(
        !a.worker_alive(&wa).unwrap(),
        "its own claims are from a run of its own"
    );
    // One write section at a time: c waits while a holds the lock.
    a.lock_writes().unwrap();
    let c = std::sync::Arc::new(c);
    let (c2, done) = (
        std::sync::Arc::clone(&c),
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let d2 = std::sync::Arc::clone(&done);
    let t = std::thread::spawn(move || {
        c2.lock_writes().unwrap();
        d2.store(true, std::sync::atomic::Ordering::SeqCst);
        c2.unlock_writes();
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!done.load(std::sync::atomic::Ordering::SeqCst), "c waited");
    a.unlock_writes();
    t.join().unwrap();
    assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    drop(a);
    // The server lets go of a's locks when its backend ends, a moment after the connection
    // closes (seen failing once in three runs under load): asked again for up to 5 s.
    let gone = (0..250).any(|_| {
        let alive = c.worker_alive(&wa).unwrap();
        if alive {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        !alive
    });
    assert!(gone, "a is gone: its claims are for the others to settle");
    assert_eq!(
        c.workers().unwrap(),
        [wc.as_str()],
        "a gone is no longer listed"
    );
    assert!(
        matches!(
            PgStore::open(&b.url, None, &b.ns),
            Err(LedgerError::Locked(_))
        ),
        "no process holds a shared namespace alone"
    );
    drop(c);
    let alone = PgStore::open(&b.url, None, &b.ns).unwrap();
    assert!(matches!(
        PgStore::open_as(&b.url, None, &b.ns, true),
        Err(LedgerError::Locked(_))
    ));
    drop(alone);
}

#[test]
fn a_namespace_has_one_writer_at_a_time() {
    let Some(b) = crate::ledger::conformance::OnPostgres::available() else {
        return;
    };
    let first = PgStore::open(&b.url, None, &b.ns).unwrap();
    assert!(matches!(
        PgStore::open(&b.url, None, &b.ns),
        Err(LedgerError::Locked(_))
    ));
    let other = PgStore::open(&b.url, None, &format!("{}-other", b.ns)).unwrap();
    drop(first);
    let again = PgStore::open(&b.url, None, &b.ns).unwrap();
    drop((again, other));
}

/// The server ends facto's session (a restart, an operator): the next call connects again,
/// takes the namespace again, and answers; nothing written before is lost.
#[test]
fn a_lost_connection_is_made_again_and_the_namespace_held_again() {
    let Some(b) = crate::ledger::conformance::OnPostgres::available() else {
        return;
    };
    let s = PgStore::open(&b.url, None, &b.ns).unwrap();
    let mut wb = WriteBatch::default();
    wb.insert(b"k".to_vec(), b"1".to_vec());
    s.apply(wb).unwrap();
    let ended = super::pool_tests::end_sessions(&b.url, &format!("facto {}", b.ns));
    assert_eq!(ended, 1);
    assert_eq!(s.get(b"k").unwrap(), Some(b"1".to_vec()));
    assert!(matches!(
        PgStore::open(&b.url, None, &b.ns),
        Err(LedgerError::Locked(_))
    ));
}

#[test]
fn a_prefix_ends_before_its_first_outsider() {
    assert_eq!(after_prefix(b"r\0"), Some(b"r\x01".to_vec()));
    assert_eq!(after_prefix(b"a\xff"), Some(b"b".to_vec()));
    assert_eq!(after_prefix(b"\xff\xff"), None);
    assert_eq!(after_prefix(b""), None);
}
