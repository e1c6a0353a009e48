//! Tests of the sled store itself: an on-disk ledger of an earlier version upgraded, another
//! version refused. The ledger's rules are proven on sled by `ledger::conformance`.

use super::*;
use crate::ledger::conformance::record;
use crate::ledger::{Ledger, State};
use std::collections::BTreeMap;

#[test]
fn a_version_1_ledger_is_indexed_and_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let l = SledLedger::open(dir.path()).unwrap();
    l.put_records(&[record("a", State::Held), record("b", State::Failed)])
        .unwrap();
    // As an earlier facto left it: version 1, no indexes.
    for prefix in [&b"t\0"[..], b"x\0", b"i\0", b"m\0index"] {
        for kv in l.store().db.scan_prefix(prefix) {
            l.store().db.remove(kv.unwrap().0).unwrap();
        }
    }
    l.store().db.insert(b"m\0schema", b"1".to_vec()).unwrap();
    l.store().db.flush().unwrap();
    drop(l);
    let l = SledLedger::open(dir.path()).unwrap();
    assert_eq!(l.check_indexes().unwrap(), Vec::<String>::new());
    assert_eq!(
        l.count_states("j", "t").unwrap(),
        BTreeMap::from([(State::Held, 1), (State::Failed, 1)])
    );
    assert_eq!(&*l.store().db.get(b"m\0schema").unwrap().unwrap(), b"3");
}

#[test]
fn second_process_is_told_the_ledger_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _l = SledLedger::open(dir.path()).unwrap();
    // sled's lock is per process (fcntl); a second open in the same process may succeed, so
    // this is proven across processes by the integration tests. Here: the schema check.
    drop(_l);
    // sled lets go of its folder's lock when its background threads end, a moment after the
    // drop (seen failing under load): tried again for up to 5 s.
    let mut db = ::sled::open(dir.path());
    for _ in 0..250 {
        if db.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        db = ::sled::open(dir.path());
    }
    let db = db.unwrap();
    db.insert(b"m\0schema", b"99".to_vec()).unwrap();
    db.flush().unwrap();
    drop(db);
    match SledLedger::open(dir.path()) {
        Err(LedgerError::Schema { found: 99, .. }) => {}
        other => panic!("{:?}", other.err()),
    }
}
