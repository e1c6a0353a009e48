//! The conformance suite's claims as workers sharing a ledger take them
//! ([`crate::ledger::Ledger::put_claims`], [`crate::ledger::Ledger::put_records_unchanged`]), and
//! the reads of a page at once ([`crate::ledger::Ledger::get_many`]).

use super::{record, Backend};
use crate::ledger::{Ledger, State};

/// A claim over a record claimed or delivered meanwhile is refused whole (nothing of the lot
/// written); a held record never goes over a delivered one; a claim is taken over once.
pub(super) fn a_claim_is_taken_once_and_never_written_over<B: Backend>(b: &mut B) {
    let l = b.open();
    l.put_records(&[record("done", State::Delivered), record("h", State::Held)])
        .unwrap();
    // Worker 1 claims `a` and `h`; worker 2, which read both before, claims `a` too: refused.
    let refused = l
        .put_claims(
            &[record("a", State::Claimed), record("h", State::Claimed)],
            &[],
        )
        .unwrap();
    assert!(refused.is_empty());
    let refused = l
        .put_claims(
            &[record("a", State::Claimed), record("b", State::Claimed)],
            &[record("done", State::Held), record("c", State::Held)],
        )
        .unwrap();
    let keys: Vec<&str> = refused.iter().map(|k| k.doc_id.as_str()).collect();
    assert_eq!(keys, ["a"]);
    assert!(
        l.get(&record("b", State::Held).key).unwrap().is_none(),
        "nothing of the lot"
    );
    let state = |d: &str| l.get(&record(d, State::Held).key).unwrap().unwrap().state;
    assert_eq!(state("done"), State::Delivered, "held never over delivered");
    assert_eq!(state("c"), State::Held, "the other records are written");

    // Two workers settle the claim on `a` from the same read: one takes it over.
    let read = l.get(&record("a", State::Held).key).unwrap().unwrap();
    let mut mine = read.clone();
    mine.updated_at = read.updated_at + chrono::Duration::seconds(1);
    assert!(l
        .put_records_unchanged(&[mine.clone()], &[Some(read.updated_at)])
        .unwrap());
    mine.updated_at = read.updated_at + chrono::Duration::seconds(2);
    assert!(!l
        .put_records_unchanged(&[mine], &[Some(read.updated_at)])
        .unwrap());
    assert!(!l
        .put_records_unchanged(&[record("new", State::Held)], &[Some(read.updated_at)])
        .unwrap());
    assert!(l
        .put_records_unchanged(&[record("new", State::Held)], &[None])
        .unwrap());
}

/// Records and values read at once come back in the order asked, a missing one as `None`,
/// each as a single read would give it.
pub(super) fn records_and_values_are_read_at_once_in_order<B: Backend>(b: &mut B) {
    let l = b.open();
    l.put_records(&[record("a", State::Delivered), record("c", State::Held)])
        .unwrap();
    l.put_values(&[
        ("one".into(), serde_json::json!(1)),
        ("three".into(), serde_json::json!({"n": 3})),
    ])
    .unwrap();
    let keys: Vec<_> = ["c", "b", "a", "c"]
        .iter()
        .map(|d| record(d, State::Held).key)
        .collect();
    let got = l.get_many(&keys).unwrap();
    let one: Vec<_> = keys.iter().map(|k| l.get(k).unwrap()).collect();
    assert_eq!(got, one);
    let states: Vec<_> = got.iter().map(|r| r.as_ref().map(|r| r.state)).collect();
    assert_eq!(
        states,
        [
            Some(State::Held),
            None,
            Some(State::Delivered),
            Some(State::Held)
        ]
    );
    assert!(l.get_many(&[]).unwrap().is_empty());
    let names: Vec<String> = ["three", "two", "one"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(
        l.values(&names).unwrap(),
        [
            Some(serde_json::json!({"n": 3})),
            None,
            Some(serde_json::json!(1))
        ]
    );
}
