use super::*;
use crate::ledger::conformance::record as rec;
use crate::ledger::{ChangeNote, FieldChange, MemLedger};

fn config(on: Vec<Kind>) -> EventsConfig {
    EventsConfig {
        webhook_url: "http://127.0.0.1:9/hook".into(),
        webhook_secret_env: "X".into(),
        on,
        jobs: Vec::new(),
        send_budget_secs: 1,
    }
}

fn kinds(l: &MemLedger) -> Vec<(String, Kind)> {
    outbox(l)
        .unwrap()
        .into_iter()
        .map(|q| (q.event.document_id, q.event.event))
        .collect()
}

#[test]
fn each_news_is_recorded_once_and_a_claim_is_no_news() {
    let l = MemLedger::in_memory().unwrap();
    let ev = config(all_kinds());
    begin(&ev, &["j"], &l).unwrap();
    let mut a = rec("A", State::Claimed);
    a.source_hash = "h1".into();
    let mut b = rec("B", State::Held);
    b.source_hash = "h1".into();
    b.problems = vec![Problem::new(
        "unmapped-tax-code",
        "lines[0].tax_code",
        "no",
        "map it",
    )];
    l.put_records(&[a.clone(), b.clone()]).unwrap();
    assert_eq!(record(&ev, &["j"], &l, "t1").unwrap(), 1);
    assert_eq!(kinds(&l), vec![("B".into(), Kind::Held)]);
    let held = &outbox(&l).unwrap()[0].event;
    assert_eq!(held.problems[0].fix, "map it");
    assert_eq!(held.tenant, "t1");
    // Nothing new: nothing recorded.
    assert_eq!(record(&ev, &["j"], &l, "t1").unwrap(), 0);
    a.state = State::Delivered;
    l.put_records(&[a.clone()]).unwrap();
    assert_eq!(record(&ev, &["j"], &l, "t1").unwrap(), 1);
    a.state = State::Paid;
    a.changed_after_delivery = Some(ChangeNote {
        detected_at: Utc::now(),
        source_hash: "h2".into(),
        changes: vec![FieldChange {
            field: "due_date".into(),
            before: "2026-02-28".into(),
            after: "2026-03-31".into(),
        }],
    });
    l.put_records(&[a.clone()]).unwrap();
    assert_eq!(record(&ev, &["j"], &l, "t1").unwrap(), 2);
    let mut got = kinds(&l);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("A".into(), Kind::Delivered),
            ("A".into(), Kind::Paid),
            ("A".into(), Kind::ChangedAfterDelivery),
            ("B".into(), Kind::Held),
        ]
    );
    assert_eq!(record(&ev, &["j"], &l, "t1").unwrap(), 0);
}

#[test]
fn an_event_recorded_again_after_a_crash_keeps_its_id() {
    let l = MemLedger::in_memory().unwrap();
    let ev = config(all_kinds());
    begin(&ev, &["j"], &l).unwrap();
    let mut a = rec("A", State::Delivered);
    a.source_hash = "h1".into();
    l.put_records(&[a]).unwrap();
    record(&ev, &["j"], &l, "t").unwrap();
    let first = outbox(&l).unwrap();
    // A crash between the outbox and the marks: the marks are lost, the news is found again.
    l.put_entries(SEEN, &[(vec!["j".into(), "t".into(), "A".into()], None)])
        .unwrap();
    record(&ev, &["j"], &l, "t").unwrap();
    let again = outbox(&l).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].event.id, first[0].event.id);
}

#[test]
fn only_the_kinds_and_jobs_asked_for_are_recorded() {
    let l = MemLedger::in_memory().unwrap();
    let mut ev = config(vec![Kind::Paid]);
    begin(&ev, &["j"], &l).unwrap();
    l.put_records(&[rec("A", State::Delivered), rec("B", State::Paid)])
        .unwrap();
    assert_eq!(record(&ev, &["j"], &l, "t").unwrap(), 1);
    assert_eq!(kinds(&l), vec![("B".into(), Kind::Paid)]);
    ev.jobs = vec!["other".into()];
    let l = MemLedger::in_memory().unwrap();
    l.put_records(&[rec("B", State::Paid)]).unwrap();
    assert_eq!(record(&ev, &["j"], &l, "t").unwrap(), 0);
}

fn step(state: State, secs: i64) -> crate::ledger::Event {
    crate::ledger::Event {
        at: Utc::now() + chrono::Duration::seconds(secs),
        state,
        note: String::new(),
    }
}

#[test]
fn a_step_between_two_announcements_is_told_too() {
    let l = MemLedger::in_memory().unwrap();
    let ev = config(all_kinds());
    begin(&ev, &["j"], &l).unwrap();
    let mut a = rec("A", State::Paid);
    a.history = vec![
        step(State::Claimed, 1),
        step(State::Delivered, 2),
        step(State::Paid, 3),
    ];
    l.put_records(&[a]).unwrap();
    record(&ev, &["j"], &l, "t").unwrap();
    let mut got = kinds(&l);
    got.sort();
    assert_eq!(
        got,
        vec![("A".into(), Kind::Delivered), ("A".into(), Kind::Paid)]
    );
}

#[test]
fn events_set_on_a_ledger_with_a_past_do_not_send_that_past() {
    let l = MemLedger::in_memory().unwrap();
    let mut old = rec("OLD", State::Delivered);
    old.history = vec![step(State::Delivered, -3600)];
    l.put_records(&[old]).unwrap();
    let ev = config(all_kinds());
    assert_eq!(record(&ev, &["j"], &l, "t").unwrap(), 0);
    let mut new = rec("NEW", State::Delivered);
    new.history = vec![step(State::Delivered, 5)];
    l.put_records(&[new]).unwrap();
    assert_eq!(record(&ev, &["j"], &l, "t").unwrap(), 1);
    assert_eq!(kinds(&l), vec![("NEW".into(), Kind::Delivered)]);
}
