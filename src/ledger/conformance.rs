//! The conformance suite (as tikv's `engine_traits_tests`): every test of the ledger's rules —
//! export batches committed, rolled back on recovery and cancelled, the indexes followed through
//! random writes (proptest) — is a function over a [`Backend`] that opens fresh ledgers, run for
//! each store by [`conformance!`]. A new backend is proven by adding it there. Tests of one
//! backend's own storage (sled's files, locks, on-disk upgrades) stay with it.

use std::collections::BTreeMap;
use std::path::Path;

use super::rules::now;
use super::sled::{SledLedger, SledStore};
use super::store::{MemStore, Store, WriteBatch};
use super::{
    AuditEvent, Batch, BatchCommit, BatchStatus, Ledger, MemLedger, OpenBatch, Record,
    RecordFilter, RecordKey, State, StoreLedger,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;

/// A store under test: opens the ledger on the same data each time, as a restarted process
/// would. The previous ledger is dropped before the next `open`.
pub(crate) trait Backend {
    /// The store.
    type S: Store;
    /// A backend with no data.
    fn fresh() -> Self;
    /// The ledger on this backend's data.
    fn open(&mut self) -> StoreLedger<Self::S>;
}

/// sled in a temporary folder.
pub(crate) struct OnSled(tempfile::TempDir);

impl Backend for OnSled {
    type S = SledStore;
    fn fresh() -> Self {
        OnSled(tempfile::tempdir().unwrap())
    }
    fn open(&mut self) -> SledLedger {
        SledLedger::open(self.0.path()).unwrap()
    }
}

/// The in-memory store.
pub(crate) struct InMemory(MemStore);

impl Backend for InMemory {
    type S = MemStore;
    fn fresh() -> Self {
        InMemory(MemStore::default())
    }
    fn open(&mut self) -> MemLedger {
        StoreLedger::on(self.0.clone()).unwrap()
    }
}

/// PostgreSQL, at `FACTO_TEST_POSTGRES` (`.ci/run` starts a server on 127.0.0.1), one
/// namespace per test, removed when the test ends.
pub(crate) struct OnPostgres {
    pub(crate) url: String,
    pub(crate) ns: String,
}

impl OnPostgres {
    /// The backend, or `None` (said "skipped", a failure under `CI=true`) without a server.
    pub(crate) fn available() -> Option<OnPostgres> {
        let Ok(url) = std::env::var("FACTO_TEST_POSTGRES") else {
            crate::test_skip::skip(
                "FACTO_TEST_POSTGRES is not set: the PostgreSQL ledger's conformance needs a server (`.ci/run` starts one)",
            );
            return None;
        };
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ns = format!(
            "test-{}-{}-{n}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        Some(OnPostgres { url, ns })
    }
}

impl Backend for OnPostgres {
    type S = super::postgres::PgStore;
    fn fresh() -> Self {
        OnPostgres::available().expect("FACTO_TEST_POSTGRES")
    }
    fn open(&mut self) -> StoreLedger<super::postgres::PgStore> {
        StoreLedger::open_postgres(&self.url, None, &self.ns).unwrap()
    }
}

impl Drop for OnPostgres {
    fn drop(&mut self) {
        if let Ok(s) = super::postgres::PgStore::open(&self.url, None, &self.ns) {
            let _ = s.drop_namespace();
        }
    }
}

/// Runs each named generic test on every backend, one `#[test]` per (backend, test).
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod on_sled {
            $(#[test] fn $test() { super::$test(&mut <super::OnSled as super::Backend>::fresh()) })*
        }
        mod in_memory {
            $(#[test] fn $test() { super::$test(&mut <super::InMemory as super::Backend>::fresh()) })*
        }
        mod on_postgres {
            $(#[test] fn $test() {
                if let Some(mut b) = super::OnPostgres::available() {
                    super::$test(&mut b)
                }
            })*
        }
    };
}

conformance!(
    commit_makes_members_delivered_and_file_downloadable,
    interrupted_batch_is_rolled_back_on_recovery,
    cancel_releases_documents_and_keeps_history,
    earlier_failures_stay_fixed,
    records_cursors_reports_and_values_round_trip,
    a_claimed_record_cannot_be_forgotten,
    the_store_keeps_what_the_rules_rely_on,
    find_answers_by_id_number_shown_and_malformed_id,
    a_change_made_on_a_stale_read_is_refused_whole,
    claims_and_values_are_recorded_together,
    a_claim_is_taken_once_and_never_written_over,
    records_and_values_are_read_at_once_in_order,
);

#[path = "conformance_claims.rs"]
mod claims;
use claims::{
    a_claim_is_taken_once_and_never_written_over, records_and_values_are_read_at_once_in_order,
};

pub(crate) fn record(doc: &str, state: State) -> Record {
    let key = RecordKey {
        job: "j".into(),
        target: "t".into(),
        doc_id: doc.into(),
    };
    Record {
        state,
        number: format!("N-{doc}"),
        ..Record::new(key, now())
    }
}

/// The store's primitives behave as the rules expect: a batch is applied whole with the last
/// write of a key winning, a prefix scan stays in its prefix in key order, counters count from
/// one, kept files read back.
fn the_store_keeps_what_the_rules_rely_on<B: Backend>(b: &mut B) {
    let l = b.open();
    let s = l.store();
    let mut wb = WriteBatch::default();
    for k in [&b"z\0b"[..], b"z\0a", b"z\x01", b"z", b"z\0c"] {
        wb.insert(k, k);
    }
    wb.remove(&b"z\0c"[..]);
    wb.insert(&b"z\0a"[..], &b"last"[..]);
    s.apply(wb).unwrap();
    s.flush().unwrap();
    let scanned: Vec<_> = s.scan(b"z\0").map(|kv| kv.unwrap()).collect();
    assert_eq!(
        scanned,
        [
            (b"z\0a".to_vec(), b"last".to_vec()),
            (b"z\0b".to_vec(), b"z\0b".to_vec())
        ]
    );
    assert_eq!(s.get(b"z\0c").unwrap(), None);
    assert_eq!(s.get(b"z").unwrap().as_deref(), Some(&b"z"[..]));
    assert_eq!(s.increment(b"z\0n").unwrap(), 1);
    assert_eq!(s.increment(b"z\0n").unwrap(), 2);
    assert_eq!(s.get(b"z\0n").unwrap(), Some(2u64.to_be_bytes().to_vec()));
    s.put_blob(7, &mut &b"bytes"[..]).unwrap();
    assert_eq!(s.blob(7).unwrap(), b"bytes");
    s.remove_blob(7);
    assert!(s.blob(7).is_err());
}

fn batch(id: u64) -> Batch {
    Batch {
        id,
        job: "j".into(),
        target: "t".into(),
        format: "fec".into(),
        journal: "VE".into(),
        period_from: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        period_to: NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
        file_name: "f.txt".into(),
        path: "out/f.txt".into(),
        sha256: "x".into(),
        size: 3,
        documents: 2,
        total_debit: Decimal::ONE,
        total_credit: Decimal::ONE,
        entries: None,
        status: BatchStatus::Active,
        origin: "sync".into(),
        run_id: "r".into(),
        created_at: now(),
        cancelled_at: None,
        file_mode: None,
    }
}

fn claimed(open: &OpenBatch, doc: &str) -> Record {
    let mut r = record(doc, State::Claimed);
    r.batch_id = Some(open.id);
    r
}

fn audit(action: &str) -> AuditEvent {
    AuditEvent {
        at: now(),
        action: action.into(),
        detail: String::new(),
        who: "cli".into(),
    }
}

fn commit_makes_members_delivered_and_file_downloadable<B: Backend>(b: &mut B) {
    let l = b.open();
    let open = l.begin_batch("j", "t", Path::new("tmp")).unwrap();
    l.claim(
        &open,
        &[claimed(&open, "a"), claimed(&open, "b")],
        &[record("c", State::Held)],
    )
    .unwrap();
    let file = vec![7u8; (1 << 20) + 10];
    l.commit_batch(
        &open,
        BatchCommit {
            batch: &batch(open.id),
            counters: vec![("VE".into(), 3)],
        },
        &mut &file[..],
    )
    .unwrap();
    assert_eq!(l.batch_file(open.id).unwrap(), file);
    let counts = l.count_states("j", "t").unwrap();
    assert_eq!(counts.get(&State::Delivered), Some(&2));
    assert_eq!(counts.get(&State::Held), Some(&1));
    assert_eq!(l.counter("VE").unwrap(), 3);
    assert_eq!(l.recover().unwrap().unpublished.len(), 1);
    l.mark_published(open.id).unwrap();
    assert!(l.recover().unwrap().unpublished.is_empty());
}

/// A page's number registrations ride with its claims (a journal file's writer): both are in
/// the ledger after the call, and after a reopen.
fn claims_and_values_are_recorded_together<B: Backend>(b: &mut B) {
    let key = "doc-number\0j\0invoice\0\"N-a\"".to_owned();
    {
        let l = b.open();
        let open = l.begin_batch("j", "t", Path::new("tmp")).unwrap();
        let values = vec![(
            key.clone(),
            serde_json::json!({"id": "a", "origin": "f.json"}),
        )];
        l.claim_with_values(
            &open,
            &[claimed(&open, "a")],
            &[record("c", State::Held)],
            &values,
        )
        .unwrap();
        l.claim_with_values(&open, &[claimed(&open, "b")], &[], &[])
            .unwrap();
    }
    let l = b.open();
    assert_eq!(l.value(&key).unwrap().unwrap()["id"], "a");
    let counts = l.count_states("j", "t").unwrap();
    assert_eq!(counts.get(&State::Held), Some(&1), "{counts:?}");
    for doc in ["a", "b"] {
        let k = RecordKey {
            job: "j".into(),
            target: "t".into(),
            doc_id: doc.into(),
        };
        assert_eq!(l.get(&k).unwrap().unwrap().state, State::Claimed, "{doc}");
    }
}

fn interrupted_batch_is_rolled_back_on_recovery<B: Backend>(b: &mut B) {
    {
        let l = b.open();
        let open = l.begin_batch("j", "t", Path::new("tmp")).unwrap();
        l.claim(&open, &[claimed(&open, "a")], &[]).unwrap();
    }
    let l = b.open();
    let rec = l.recover().unwrap();
    assert_eq!(rec.rolled_back.len(), 1);
    assert_eq!(rec.released, 1);
    let r = l.get(&record("a", State::Held).key).unwrap().unwrap();
    assert_eq!(r.state, State::Released);
    assert!(l.cursor("j").unwrap().unwrap().rescan);
    assert!(l.batches().unwrap().is_empty());
}

fn cancel_releases_documents_and_keeps_history<B: Backend>(b: &mut B) {
    let l = b.open();
    let open = l.begin_batch("j", "t", Path::new("tmp")).unwrap();
    l.claim(&open, &[claimed(&open, "a")], &[]).unwrap();
    l.commit_batch(
        &open,
        BatchCommit {
            batch: &batch(open.id),
            counters: vec![],
        },
        &mut &b"abc"[..],
    )
    .unwrap();
    let (b, n) = l.cancel_batch(open.id, audit("cancel")).unwrap();
    assert_eq!((b.status, n), (BatchStatus::Cancelled, 1));
    assert!(l.cancel_batch(open.id, audit("cancel")).is_err());
    assert_eq!(l.batch_file(open.id).unwrap(), b"abc");
    assert_eq!(
        l.get(&record("a", State::Held).key).unwrap().unwrap().state,
        State::Released
    );
    assert_eq!(l.audit_trail().unwrap().len(), 1);
}

/// One step of the `indexes_follow_every_write` proptests.
#[derive(Debug, Clone)]
enum Op {
    /// An API-target record written in this state.
    Put(usize, State),
    /// The API-target record (if any) takes another number: one of a few, some of them another
    /// document's id.
    Renumber(usize, usize),
    /// A record of another job written in this state.
    OtherJob(usize, State),
    /// An export of these documents: claimed, then committed (true) or abandoned (false).
    Export(Vec<usize>, bool),
    /// The last committed batch is cancelled.
    Cancel,
    /// The record is forgotten on both targets (where it is not claimed).
    Forget(usize),
    /// The process stops and the ledger is opened again (recovery rolls back an open batch).
    Reopen,
    /// The indexes are dropped, as in a ledger written before them, and the ledger reopened.
    Legacy,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    let state = proptest::sample::select(State::ALL.to_vec());
    prop_oneof![
        4 => (0..DOCS, state.clone()).prop_map(|(d, s)| Op::Put(d, s)),
        1 => (0..DOCS, 0..4usize).prop_map(|(d, n)| Op::Renumber(d, n)),
        1 => (0..DOCS, state).prop_map(|(d, s)| Op::OtherJob(d, s)),
        4 => (proptest::collection::vec(0..DOCS, 1..4), any::<bool>())
            .prop_map(|(d, c)| Op::Export(d, c)),
        2 => Just(Op::Cancel),
        1 => (0..DOCS).prop_map(Op::Forget),
        1 => Just(Op::Reopen),
        1 => Just(Op::Legacy),
    ]
}

/// Everything the indexes answer matches a scan of the records themselves.
fn assert_indexes_match<S: Store>(l: &StoreLedger<S>) {
    assert_eq!(l.check_indexes().unwrap(), Vec::<String>::new());
    let every = l.list(&RecordFilter::default()).unwrap();
    // By state across jobs (and of one target across jobs).
    for state in State::ALL {
        for target in [None, Some("api")] {
            let listed: Vec<RecordKey> = l
                .list(&RecordFilter {
                    target: target.map(String::from),
                    state: Some(state),
                    ..Default::default()
                })
                .unwrap()
                .into_iter()
                .map(|r| r.key)
                .collect();
            let scanned: Vec<RecordKey> = every
                .iter()
                .filter(|r| r.state == state && target.is_none_or(|t| r.key.target == t))
                .map(|r| r.key.clone())
                .collect();
            assert_eq!(listed, scanned, "{target:?} {state:?}");
        }
    }
    // By document: every name a record answers to, and some it does not.
    let mut names: Vec<String> = (0..DOCS).map(doc_id).collect();
    names.extend((0..4).map(number));
    names.extend(["N-d0", "malformed:d0", "d0", "malformed:", ""].map(String::from));
    for name in &names {
        let scanned: Vec<RecordKey> = every
            .iter()
            .filter(|r| {
                let id = &r.key.doc_id;
                id == name
                    || crate::model::shown_id(id) == name
                    || id
                        .strip_prefix(crate::model::MALFORMED_ID)
                        .is_some_and(|m| name.strip_prefix("malformed:") == Some(m))
                    || r.number == *name
            })
            .map(|r| r.key.clone())
            .collect();
        let found: Vec<RecordKey> = l.find(name).unwrap().into_iter().map(|r| r.key).collect();
        assert_eq!(found, scanned, "find {name:?}");
        let in_job: Vec<RecordKey> = l
            .find_in_job("k", name)
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        let of_k: Vec<RecordKey> = scanned.into_iter().filter(|k| k.job == "k").collect();
        assert_eq!(in_job, of_k, "find {name:?} in job k");
    }
    let all: Vec<Record> = every.into_iter().filter(|r| r.key.job == "j").collect();
    for target in ["t", "api"] {
        let mut counts = BTreeMap::new();
        for state in State::ALL {
            let listed: Vec<String> = l
                .list(&RecordFilter {
                    job: Some("j".into()),
                    target: Some(target.into()),
                    state: Some(state),
                })
                .unwrap()
                .into_iter()
                .map(|r| r.key.doc_id)
                .collect();
            let scanned: Vec<String> = all
                .iter()
                .filter(|r| r.key.target == target && r.state == state)
                .map(|r| r.key.doc_id.clone())
                .collect();
            assert_eq!(listed, scanned, "{target} {state:?}");
            if !scanned.is_empty() {
                counts.insert(state, scanned.len() as u64);
            }
        }
        assert_eq!(l.count_states("j", target).unwrap(), counts, "{target}");
    }
}

fn on(target: &str, doc: &str, state: State) -> Record {
    let mut r = record(doc, state);
    r.key.target = target.into();
    r
}

/// How many document ids the proptests use.
const DOCS: usize = 7;

/// Document ids, some with the bytes that once broke keys and membership pages, one of a
/// malformed document (which `find` also answers by its shown and `malformed:` ids).
fn doc_id(d: usize) -> String {
    let malformed = format!("{}d0", crate::model::MALFORMED_ID);
    ["d0", "d\n1", "d\0 2", "d\u{1}3", "d4\n", "\0", &malformed][d % DOCS].to_owned()
}

/// Numbers a record can be given: one another document's id, one empty.
fn number(n: usize) -> String {
    ["X-1", "d0", "", "N-d0"][n % 4].to_owned()
}

/// Applies `ops` to a fresh ledger, checking the indexes after each.
fn run_ops<B: Backend>(b: &mut B, ops: Vec<Op>) {
    let mut l = Some(b.open());
    let mut committed = Vec::new();
    for op in ops {
        let led = l.as_ref().unwrap();
        match op {
            Op::Put(d, state) => led.put_records(&[on("api", &doc_id(d), state)]).unwrap(),
            Op::Renumber(d, n) => {
                if let Some(mut r) = led.get(&on("api", &doc_id(d), State::Held).key).unwrap() {
                    r.number = number(n);
                    led.put_records(&[r]).unwrap();
                }
            }
            Op::OtherJob(d, state) => {
                let mut r = on("api", &doc_id(d), state);
                r.key.job = "k".into();
                led.put_records(&[r]).unwrap();
            }
            Op::Export(docs, commit) => {
                let open = led.begin_batch("j", "t", Path::new("tmp")).unwrap();
                let mut claimed = Vec::new();
                for d in docs {
                    let key = on("t", &doc_id(d), State::Held).key;
                    let mut rec = led
                        .get(&key)
                        .unwrap()
                        .unwrap_or_else(|| on("t", &doc_id(d), State::Held));
                    if claimed.iter().any(|c: &Record| c.key == rec.key)
                        || rec.state == State::Claimed
                    {
                        continue;
                    }
                    rec.restore_to = rec
                        .state
                        .is_delivered()
                        .then_some((rec.state, rec.batch_id));
                    rec.batch_id = Some(open.id);
                    rec.transition(State::Claimed, "claimed", now());
                    claimed.push(rec);
                }
                led.claim(&open, &claimed, &[on("t", "h", State::Held)])
                    .unwrap();
                if commit {
                    led.commit_batch(
                        &open,
                        BatchCommit {
                            batch: &batch(open.id),
                            counters: vec![],
                        },
                        &mut &b"x"[..],
                    )
                    .unwrap();
                    committed.push(open.id);
                }
            }
            Op::Cancel => {
                if let Some(id) = committed.pop() {
                    led.cancel_batch(id, audit("cancel")).unwrap();
                }
            }
            Op::Forget(d) => {
                for t in ["t", "api"] {
                    let _ = led.forget(&on(t, &doc_id(d), State::Held).key, audit("forget"));
                }
            }
            Op::Reopen | Op::Legacy => {
                if matches!(op, Op::Legacy) {
                    let mut wb = WriteBatch::default();
                    for prefix in [&b"t\0"[..], b"x\0", b"q\0", b"i\0", b"m\0index"] {
                        for kv in led.store().scan(prefix) {
                            wb.remove(kv.unwrap().0);
                        }
                    }
                    led.store().apply(wb).unwrap();
                    led.store().flush().unwrap();
                }
                drop(l.take());
                let reopened = b.open();
                reopened.recover().unwrap();
                l = Some(reopened);
            }
        }
        assert_indexes_match(l.as_ref().unwrap());
    }
}

proptest::proptest! {
    // A failure is reported with its shrunk case (add it to `earlier_failures_stay_fixed`)
    // rather than written to a tracked file.
    #![proptest_config(proptest::prelude::ProptestConfig {
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::with_cases(48)
    })]
    #[test]
    fn indexes_follow_every_write_on_sled(ops in proptest::collection::vec(op(), 1..24)) {
        run_ops(&mut OnSled::fresh(), ops);
    }

    #[test]
    fn indexes_follow_every_write_in_memory(ops in proptest::collection::vec(op(), 1..24)) {
        run_ops(&mut InMemory::fresh(), ops);
    }

    #[test]
    fn indexes_follow_every_write_on_postgres(ops in proptest::collection::vec(op(), 1..24)) {
        if let Some(mut b) = OnPostgres::available() {
            run_ops(&mut b, ops);
        }
    }
}

fn earlier_failures_stay_fixed<B: Backend>(b: &mut B) {
    run_ops(b, vec![Op::Export(vec![0], true)]);
    run_ops(
        &mut B::fresh(),
        vec![Op::Put(0, State::Held), Op::Put(0, State::Claimed)],
    );
    run_ops(
        &mut B::fresh(),
        vec![Op::Put(0, State::Held), Op::Reopen, Op::Reopen, Op::Legacy],
    );
}

/// What is kept besides records reads back as written, and survives a reopen.
fn records_cursors_reports_and_values_round_trip<B: Backend>(b: &mut B) {
    {
        let l = b.open();
        let mut held = record("a", State::Held);
        held.gross = Some(Decimal::new(12345, 2));
        l.put_records(&[held, record("b", State::Delivered)])
            .unwrap();
        l.set_cursor(
            "j",
            &super::Cursor {
                state: serde_json::json!({"after": "b"}),
                rescan: false,
            },
        )
        .unwrap();
        l.request_rescan("j").unwrap();
        l.save_report("r1", &serde_json::json!({"ok": 1})).unwrap();
        l.save_report("r2", &serde_json::json!({"ok": 2})).unwrap();
        l.audit(audit("retry")).unwrap();
        l.put_value("k1", &serde_json::json!(1)).unwrap();
        l.put_values(&[("k2".into(), serde_json::json!([2]))])
            .unwrap();
        // Entries: listed by their first parts, none reaching a neighbour's (`j` vs `j\0x`).
        let e = |p: &[&str], v: Option<i32>| {
            let parts = p.iter().map(|s| (*s).to_owned()).collect();
            (parts, v.map(|v| serde_json::json!(v)))
        };
        l.put_entries("s", &[e(&["j", "d1"], Some(1)), e(&["j", "d\0z"], Some(2))])
            .unwrap();
        l.put_entries("s", &[e(&["j\0x", "d"], Some(3)), e(&["j", "d1"], None)])
            .unwrap();
    }
    let l = b.open();
    let a = l.get(&record("a", State::Held).key).unwrap().unwrap();
    assert_eq!(
        (a.state, a.gross),
        (State::Held, Some(Decimal::new(12345, 2)))
    );
    assert_eq!(l.find("N-b").unwrap().len(), 1);
    assert_eq!(l.find("b").unwrap()[0].state, State::Delivered);
    assert_eq!(l.list(&RecordFilter::default()).unwrap().len(), 2);
    let c = l.cursor("j").unwrap().unwrap();
    assert_eq!((c.state["after"].as_str(), c.rescan), (Some("b"), true));
    assert!(l.cursor("other").unwrap().is_none());
    assert_eq!(l.report_ids().unwrap(), ["r1", "r2"]);
    assert_eq!(l.report("r2").unwrap(), Some(serde_json::json!({"ok": 2})));
    assert_eq!(l.audit_trail().unwrap()[0].action, "retry");
    assert_eq!(l.value("k1").unwrap(), Some(serde_json::json!(1)));
    assert_eq!(l.value("k2").unwrap(), Some(serde_json::json!([2])));
    assert_eq!(l.value("k3").unwrap(), None);
    assert_eq!(l.counter("VE").unwrap(), 1);
    let kept = l.entries("s", &["j"]).unwrap();
    assert_eq!(kept, [(vec!["d\0z".to_owned()], serde_json::json!(2))]);
    assert_eq!(l.entries("s", &[]).unwrap().len(), 2);
    assert!(l.entries("other", &["j"]).unwrap().is_empty());
}

/// A claimed record is a delivery in progress: forgetting it is refused; others go, audited.
fn a_claimed_record_cannot_be_forgotten<B: Backend>(b: &mut B) {
    let l = b.open();
    l.put_records(&[record("a", State::Claimed), record("b", State::Failed)])
        .unwrap();
    let err = l.forget(&record("a", State::Held).key, audit("forget"));
    assert!(matches!(err, Err(super::LedgerError::Invalid(_))));
    let gone = l
        .forget(&record("b", State::Held).key, audit("forget"))
        .unwrap();
    assert_eq!(gone.state, State::Failed);
    assert!(l.get(&gone.key).unwrap().is_none());
    assert!(matches!(
        l.forget(&gone.key, audit("forget")),
        Err(super::LedgerError::NotFound(_))
    ));
    assert_eq!(l.audit_trail().unwrap().len(), 1);
    assert_eq!(
        l.count_states("j", "t").unwrap(),
        BTreeMap::from([(State::Claimed, 1)])
    );
}

/// `put_records_if`: a retry read as failed loses to the claim a pass made meanwhile, and
/// writes nothing, not even the records that had not changed.
fn a_change_made_on_a_stale_read_is_refused_whole<B: Backend>(b: &mut B) {
    let l = b.open();
    l.put_records(&[record("a", State::Failed), record("b", State::Failed)])
        .unwrap();
    // A pass claims `a` after the admin's read.
    l.put_records(&[record("a", State::Claimed)]).unwrap();
    let released = [record("b", State::Released), record("a", State::Released)];
    let err = l.put_records_if(&released, &[State::Failed, State::Failed]);
    assert!(
        matches!(&err, Err(super::LedgerError::Invalid(m)) if m.contains("changed meanwhile") && m.contains("claimed")),
        "{err:?}"
    );
    assert_eq!(
        l.get(&record("a", State::Held).key).unwrap().unwrap().state,
        State::Claimed
    );
    assert_eq!(
        l.get(&record("b", State::Held).key).unwrap().unwrap().state,
        State::Failed
    );
    // Read again, as it is: accepted.
    l.put_records_if(&released[..1], &[State::Failed]).unwrap();
    assert_eq!(
        l.count_states("j", "t").unwrap(),
        BTreeMap::from([(State::Claimed, 1), (State::Released, 1)])
    );
}

fn keys_of(found: Vec<Record>) -> Vec<String> {
    found
        .into_iter()
        .map(|r| format!("{}/{}/{}", r.key.job, r.key.target, r.key.doc_id))
        .collect()
}

/// `find` answers by id, number, a malformed document's shown id and `malformed:` id, through
/// the document index: after a renumbering, a forget, an export cancelled, and on a ledger
/// opened without the index (built then), with a stray entry left by an interrupted build.
fn find_answers_by_id_number_shown_and_malformed_id<B: Backend>(b: &mut B) {
    let bad = format!("{}x", crate::model::MALFORMED_ID);
    {
        let l = b.open();
        let mut other_job = record("a", State::Delivered);
        other_job.key.job = "k".into();
        let mut malformed = record(&bad, State::Held);
        malformed.number = String::new();
        let mut x = record("x", State::Failed);
        x.number = "a".into();
        l.put_records(&[record("a", State::Held), other_job, malformed, x])
            .unwrap();
        assert_eq!(keys_of(l.find("a").unwrap()), ["j/t/a", "j/t/x", "k/t/a"]);
        assert_eq!(keys_of(l.find("N-a").unwrap()), ["j/t/a", "k/t/a"]);
        assert_eq!(keys_of(l.find_in_job("k", "N-a").unwrap()), ["k/t/a"]);
        assert_eq!(
            keys_of(l.find_in_job("j", "a").unwrap()),
            ["j/t/a", "j/t/x"]
        );
        assert!(l.find_in_job("z", "a").unwrap().is_empty());
        // The malformed document by its shown id (a real document has it too), its
        // `malformed:` id and its stored id; its empty number as well.
        assert_eq!(
            keys_of(l.find("x").unwrap()),
            [format!("j/t/{bad}"), "j/t/x".into()]
        );
        assert_eq!(
            keys_of(l.find("malformed:x").unwrap()),
            [format!("j/t/{bad}")]
        );
        assert_eq!(keys_of(l.find(&bad).unwrap()), [format!("j/t/{bad}")]);
        assert_eq!(keys_of(l.find("").unwrap()), [format!("j/t/{bad}")]);
        assert!(l.find("N-x").unwrap().is_empty());
        assert!(l.find("nothing").unwrap().is_empty());
        // Renumbered: the old number no longer answers.
        let mut a = l.get(&record("a", State::Held).key).unwrap().unwrap();
        a.number = "N-a2".into();
        l.put_records(&[a]).unwrap();
        assert_eq!(keys_of(l.find("N-a").unwrap()), ["k/t/a"]);
        assert_eq!(keys_of(l.find("N-a2").unwrap()), ["j/t/a"]);
        // Forgotten: gone from every name.
        l.forget(&record("x", State::Held).key, audit("forget"))
            .unwrap();
        assert_eq!(keys_of(l.find("a").unwrap()), ["j/t/a", "k/t/a"]);
        assert_eq!(keys_of(l.find("x").unwrap()), [format!("j/t/{bad}")]);
        // Exported, then the export cancelled: found in each state.
        let open = l.begin_batch("j", "t", Path::new("tmp")).unwrap();
        l.claim(&open, &[claimed(&open, "e")], &[]).unwrap();
        assert_eq!(l.find("N-e").unwrap()[0].state, State::Claimed);
        l.commit_batch(
            &open,
            BatchCommit {
                batch: &batch(open.id),
                counters: vec![],
            },
            &mut &b"f"[..],
        )
        .unwrap();
        assert_eq!(l.find("e").unwrap()[0].state, State::Delivered);
        l.cancel_batch(open.id, audit("cancel")).unwrap();
        assert_eq!(l.find("N-e").unwrap()[0].state, State::Released);
        assert_eq!(l.check_indexes().unwrap(), Vec::<String>::new());
        // As a ledger written before the document index: the other indexes there, this one
        // not, with a stray entry of an interrupted build.
        let mut wb = WriteBatch::default();
        for kv in l.store().scan(b"i\0") {
            wb.remove(kv.unwrap().0);
        }
        wb.remove(&b"m\0index2"[..]);
        wb.insert(&b"i\0gone\0j\0t\0gone"[..], &[][..]);
        l.store().apply(wb).unwrap();
        l.store().flush().unwrap();
        assert!(l.find("N-a2").unwrap().is_empty());
    }
    let l = b.open();
    assert_eq!(l.check_indexes().unwrap(), Vec::<String>::new());
    assert_eq!(keys_of(l.find("N-a2").unwrap()), ["j/t/a"]);
    assert_eq!(
        keys_of(l.find("malformed:x").unwrap()),
        [format!("j/t/{bad}")]
    );
    assert!(l.find("gone").unwrap().is_empty());
}
