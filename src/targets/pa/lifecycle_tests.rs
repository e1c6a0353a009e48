//! Recording lifecycle statuses on a record (history, terminal refusals, statuses for a human,
//! duplicates, any order) and the polling rotation.

use chrono::{NaiveDate, TimeZone};

use super::*;
use crate::targets::pa::cdar::{Detail, StatusCode};

fn record(number: &str) -> Record {
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
    let mut r = Record::new(
        RecordKey {
            job: "sales".into(),
            target: "pa".into(),
            doc_id: number.into(),
        },
        now,
    );
    r.number = number.into();
    r.state = State::Delivered;
    r.remote_status = Some("ack Ok".into());
    r
}

fn status(code: u16, id: &str) -> CdarStatus {
    CdarStatus {
        document_id: Some(id.into()),
        invoice_number: "F1".into(),
        invoice_type: Some("380".into()),
        invoice_date: NaiveDate::from_ymd_opt(2026, 11, 30),
        issuer_siren: Some("552100554".into()),
        code: StatusCode::new(code).unwrap(),
        label: None,
        cefact_status: None,
        details: Vec::new(),
        status_at: NaiveDate::from_ymd_opt(2026, 12, 1).and_then(|d| d.and_hms_opt(9, 0, 0)),
        phase: None,
    }
}

fn disputed(code: u16, id: &str) -> CdarStatus {
    let mut s = status(code, id);
    s.details.push(Detail {
        reason_code: Some("TX_TVA_ERR".into()),
        reason: Some("Taux de TVA erroné".into()),
        action_code: Some("NIN".into()),
        action: Some("Créer une Facture Rectificative".into()),
        ..Detail::default()
    });
    s
}

#[test]
fn statuses_are_recorded_in_order_and_a_duplicate_once() {
    let mut r = record("F1");
    let now = Utc::now();
    let line = apply(&mut r, &status(200, "a"), "lc-1", "pa", now).unwrap();
    assert_eq!(line, "F1 (pa): ack Ok → cdv:200 Déposée");
    assert!(apply(&mut r, &status(200, "a"), "lc-9", "pa", now).is_none());
    apply(&mut r, &status(202, "b"), "lc-2", "pa", now).unwrap();
    assert_eq!(r.state, State::Delivered);
    apply(&mut r, &status(205, "c"), "lc-3", "pa", now).unwrap();
    assert_eq!(r.state, State::Accepted);
    assert_eq!(r.remote_status.as_deref(), Some("cdv:205 Approuvée"));
    // Processing statuses in any order: paid, then disputed, all kept.
    apply(&mut r, &status(212, "d"), "lc-4", "pa", now).unwrap();
    assert_eq!(r.state, State::Paid);
    apply(&mut r, &disputed(207, "e"), "lc-5", "pa", now).unwrap();
    let notes: Vec<&str> = r.history.iter().map(|e| e.note.as_str()).collect();
    assert_eq!(notes.len(), 5, "{notes:?}");
    for (n, code) in notes.iter().zip(["200", "202", "205", "212", "207"]) {
        assert!(n.starts_with(&format!("PA status {code}")), "{n}");
    }
    assert!(notes[0].contains("(flow lc-1)") && notes[0].ends_with("[CDAR a]"));
}

#[test]
fn a_dispute_is_listed_for_a_human_with_its_reason_and_action() {
    let mut r = record("F1");
    let line = apply(&mut r, &disputed(207, "x"), "lc-1", "pa", Utc::now()).unwrap();
    assert_eq!(
        line,
        "F1 (pa): ack Ok → cdv:207 En litige: to act on: the buyer disputes it (TX_TVA_ERR: Taux de TVA erroné; expected action NIN: Créer une Facture Rectificative): answer the buyer (a corrective invoice when the expected action is NIN)"
    );
    assert_eq!(r.state, State::Accepted);
    assert!(r.last_error.as_deref().unwrap().starts_with("to act on:"));
    assert!(r.history[0].note.contains("TX_TVA_ERR"));
    // Settled by a later status.
    apply(&mut r, &status(205, "y"), "lc-2", "pa", Utc::now()).unwrap();
    assert_eq!(r.last_error, None);
    let mut r = record("F2");
    let line = apply(&mut r, &status(208, "s"), "lc-3", "pa", Utc::now()).unwrap();
    assert!(line.contains("to act on: the buyer suspended it"), "{line}");
}

#[test]
fn a_refusal_is_final_and_names_the_credit_note_and_new_number() {
    for code in [210, 213] {
        let mut r = record("F7");
        let line = apply(&mut r, &disputed(code, "r"), "lc-1", "pa", Utc::now()).unwrap();
        assert_eq!(r.state, State::Rejected);
        assert!(
            line.contains("the reform requires cancelling invoice F7 in the books with a credit note and issuing a new invoice with a new number"),
            "{line}"
        );
        assert!(r
            .last_error
            .as_deref()
            .unwrap()
            .contains("facto never sends F7 again"));
        let why = final_refusal(&r).unwrap();
        assert!(why.starts_with(&format!("F7 (cdv:{code}")), "{why}");
        // Nothing after it reopens it.
        apply(&mut r, &status(205, "later"), "lc-2", "pa", Utc::now()).unwrap();
        assert_eq!(r.state, State::Rejected);
        assert!(final_refusal(&r).is_some());
        assert_eq!(r.history.len(), 2);
    }
    // A technical rejection (acknowledgement Error) may be sent again once fixed.
    let mut r = record("F8");
    r.state = State::Rejected;
    r.remote_status = Some("ack Error".into());
    assert!(final_refusal(&r).is_none());
}

#[test]
fn the_rotation_polls_every_record_in_turn() {
    let recs: Vec<Record> = ["c", "a", "d", "b"].iter().map(|n| record(n)).collect();
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let next = rotate(recs.clone(), after.as_deref(), 2);
        assert_eq!(next.len(), 2);
        after = next.last().map(rotation_key);
        seen.extend(next.into_iter().map(|r| r.number));
    }
    assert_eq!(seen, ["a", "b", "c", "d", "a", "b", "c", "d"]);
    // The last one polled gone: the rotation goes on from its place.
    let fewer: Vec<Record> = recs.into_iter().filter(|r| r.number != "b").collect();
    let next = rotate(fewer, Some(&rotation_key(&record("b"))), 1);
    assert_eq!(next[0].number, "c");
}

#[test]
fn index_keys_hold_number_seller_and_year() {
    assert_eq!(
        index_key("pa", "552100554", 2026, "F1"),
        "pa-lc-doc\u{0}pa\u{0}552100554\u{0}2026\u{0}F1"
    );
    assert_ne!(
        index_key("pa", "552100554", 2026, "F1"),
        index_key("pa", "552100554", 2025, "F1")
    );
}

#[test]
fn update_times_with_or_without_a_zone() {
    let z = rfc3339("2026-12-01T11:00:00Z").unwrap();
    assert_eq!(rfc3339("2026-12-01T12:00:00+01:00"), Some(z));
    assert_eq!(rfc3339("2026-12-01T11:00:00"), Some(z));
    assert_eq!(rfc3339("2026-12-01T11:00:00.000"), Some(z));
    assert_eq!(rfc3339("yesterday"), None);
}

#[test]
fn a_status_set_before_the_last_one_is_history_only() {
    let now = Utc::now();
    let mut r = record("F1");
    let at = |h: u32| NaiveDate::from_ymd_opt(2026, 12, 1).and_then(|d| d.and_hms_opt(h, 0, 0));
    let mut dispute = status(207, "late-dispute");
    dispute.status_at = at(11);
    apply(&mut r, &dispute, "lc-1", "pa", now).unwrap();
    assert_eq!(r.remote_status.as_deref(), Some("cdv:207 En litige"));
    let todo = r.last_error.clone();
    assert!(todo.as_deref().is_some_and(|t| t.starts_with("to act on")));
    // A 204 set at 10:00 arrives after the 207 of 11:00: recorded, and the dispute stands.
    let mut taken = status(204, "early-taken");
    taken.status_at = at(10);
    let line = apply(&mut r, &taken, "lc-2", "pa", now).unwrap();
    assert!(line.contains("earlier date"), "{line}");
    assert_eq!(r.remote_status.as_deref(), Some("cdv:207 En litige"));
    assert_eq!(r.last_error, todo);
    assert_eq!(r.history.len(), 2);
    // A later one moves on.
    let mut approved = status(205, "approved");
    approved.status_at = at(12);
    apply(&mut r, &approved, "lc-3", "pa", now).unwrap();
    assert_eq!(r.remote_status.as_deref(), Some("cdv:205 Approuvée"));
    assert_eq!(r.last_error, None);
}

#[test]
fn a_status_for_a_record_left_failed_or_rejected_makes_it_delivered() {
    let now = Utc::now();
    for (state, code, then) in [
        (State::Failed, 200, State::Delivered),
        (State::Rejected, 202, State::Delivered),
        (State::Rejected, 205, State::Accepted),
        (State::Failed, 212, State::Paid),
    ] {
        let mut r = record("F1");
        r.state = state;
        r.remote_status = Some("ack Error".into());
        apply(&mut r, &status(code, "x"), "lc-1", "pa", now).unwrap();
        assert_eq!(r.state, then, "{state:?} + {code}");
        assert!(final_refusal(&r).is_none());
    }
}
