//! Lifecycle statuses of facto's invoices at the PA (issue 13 §4, notes §6): the flows of type
//! `CustomerInvoiceLC` (direction `In`) changed since the last read are listed page by page,
//! each CDAR is downloaded (`docType=Original`) and read ([`super::cdar`]), matched to facto's
//! record by (BT-1, seller SIREN, BT-2 year) through the index written when the invoice was
//! sent (never by the number alone), and recorded in the record's history. 210 Refusée and 213
//! Rejetée are final: the record is rejected and never sent again under its number. 206–208 and
//! 221 wait for a human. The read position is a ledger value, written after the records, and
//! recording is idempotent (each CDAR once, by its id), so a crash in between loses nothing.

use chrono::{DateTime, Datelike, Utc};
use serde_json::json;

use super::api::{Flow, PaApi};
use super::cdar::{self, CdarStatus};
#[cfg(test)]
use super::feed::rfc3339;
use super::feed::Feed;
use crate::ledger::{Ledger, Record, RecordKey, State};
use crate::targets::driver::Polled;
use crate::targets::{remote, TargetError};

pub use super::feed::MAX_PAGES;

/// How far back each search reaches before the newest change already read: a flow the PA
/// indexes late with an earlier `updatedAt` is still seen (the ones already read are skipped).
const OVERLAP_SECS: i64 = 300;

/// The ledger value holding a connector's read position.
fn cursor_key(target: &str) -> String {
    format!("pa-lc-cursor\0{target}")
}

/// The ledger value naming the record of an invoice sent through `target`: the key the
/// lifecycle statuses are matched with (BT-1, seller SIREN, BT-2 year).
pub fn index_key(target: &str, siren: &str, year: i32, number: &str) -> String {
    format!("pa-lc-doc\0{target}\0{siren}\0{year}\0{number}")
}

/// The index entry of a record: written with its claim, before the invoice is sent.
pub fn index_value(key: &RecordKey) -> serde_json::Value {
    json!({"job": key.job, "target": key.target, "doc_id": key.doc_id})
}

/// The advice a final refusal (210, 213) gives, naming the document.
fn advice(number: &str) -> String {
    format!(
        "the reform requires cancelling invoice {number} in the books with a credit note and issuing a new invoice with a new number; facto never sends {number} again"
    )
}

/// Why a record must never be sent again: the buyer refused it (210) or a PA rejected it (213).
/// `None` for any other record (a technical `Error` acknowledgement may be sent again once fixed).
pub fn final_refusal(r: &Record) -> Option<String> {
    let status = r.remote_status.as_deref()?;
    (r.state == State::Rejected && (status.starts_with("cdv:210") || status.starts_with("cdv:213")))
        .then(|| format!("{} ({}): {}", r.number, status, advice(&r.number)))
}

/// When the latest status recorded on `r` was set at the PA (from the history notes, `PA status
/// NNN of YYYY-MM-DD HH:MM`), to the minute.
fn last_status_at(r: &Record) -> Option<chrono::NaiveDateTime> {
    r.history
        .iter()
        .filter_map(|e| {
            let rest = e.note.strip_prefix("PA status ")?;
            let (_, at) = rest.split_once(" of ")?;
            chrono::NaiveDateTime::parse_from_str(at.get(..16)?, "%Y-%m-%d %H:%M").ok()
        })
        .max()
}

/// Records one status on its record; the report's line, or `None` when this CDAR is already
/// in the history (the same status delivered twice).
pub fn apply(
    r: &mut Record,
    st: &CdarStatus,
    flow_id: &str,
    target: &str,
    now: DateTime<Utc>,
) -> Option<String> {
    let id = st.document_id.clone().unwrap_or_else(|| {
        let at = st.status_at.map(|t| t.to_string()).unwrap_or_default();
        format!("{} {at} {flow_id}", st.code.code())
    });
    let marker = format!("[CDAR {id}]");
    if r.history.iter().any(|e| e.note.ends_with(&marker)) {
        return None;
    }
    let status = format!("cdv:{}", st.code);
    let old = r.remote_status.clone().unwrap_or_else(|| "?".into());
    let reasons = st.reasons();
    let because = if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({reasons})")
    };
    let mut note = format!("PA status {}", st.code);
    if let Some(t) = st.status_at {
        note.push_str(&format!(" of {}", t.format("%Y-%m-%d %H:%M")));
    }
    note.push_str(&format!(" (flow {flow_id})"));
    if !reasons.is_empty() {
        note.push_str(&format!(": {reasons}"));
    }
    let collected = st.collected();
    if !collected.is_empty() {
        note.push_str(&format!("; collected {}", collected.join(", ")));
    }
    note.push_str(&format!(" {marker}"));
    // A final refusal stands whatever comes after it (kept in the history all the same).
    let closed = final_refusal(r).is_some();
    // Processing statuses come in any order: one set before the last applied is history only.
    let stale = matches!((st.status_at, last_status_at(r)), (Some(at), Some(last)) if at < last)
        && !st.code.is_terminal();
    let mut line = format!("{} ({target}): {old} → {status}", r.number);
    let state = if closed {
        line.push_str(&format!(" (kept {old}: the invoice is closed)"));
        r.state
    } else if stale {
        line = format!(
            "{} ({target}): {status} of an earlier date recorded in the history; {old} stands",
            r.number
        );
        r.state
    } else if st.code.is_terminal() {
        let why = format!(
            "{} {}{because}: {}",
            if st.code.code() == 210 {
                "refused by the buyer"
            } else {
                "rejected by a PA's regulatory checks"
            },
            st.code,
            advice(&r.number)
        );
        line.push_str(&format!(": {why}"));
        r.last_error = Some(why);
        r.remote_status = Some(status);
        State::Rejected
    } else {
        if st.code.needs_a_human() {
            let todo = match st.code.code() {
                206 => format!("the buyer approved it in part{because}: issue what the approved part calls for (a credit note for the rest) and tell the buyer"),
                207 => format!("the buyer disputes it{because}: answer the buyer (a corrective invoice when the expected action is NIN)"),
                208 => format!("the buyer suspended it{because}: send the buyer what it waits for, then the status moves on"),
                _ => format!("the PA could not route it{because}: check the buyer's directory line (SIREN, electronic address), then ask the PA"),
            };
            line.push_str(&format!(": to act on: {todo}"));
            r.last_error = Some(format!("to act on: {todo}"));
        } else {
            // A status that moves on settles what waited for a human.
            r.last_error = None;
            if !collected.is_empty() {
                line.push_str(&format!(": collected {}", collected.join(", ")));
            }
        }
        r.remote_status = Some(status);
        // As Chorus Pro's statuses move the state: in the buyer's hands → accepted, cashed →
        // paid; never back (statuses after payment are kept in the history only).
        // A status at all means the PA holds the invoice: a record left failed or rejected by
        // a technical answer (a duplicate acknowledged `Error`, an `AlreadyExistingFlow` not
        // found yet) is delivered, so that no retry sends it again.
        match (st.code.code(), r.state) {
            (204..=209 | 211, State::Delivered | State::Failed | State::Rejected) => {
                State::Accepted
            }
            (212, State::Delivered | State::Accepted | State::Failed | State::Rejected) => {
                State::Paid
            }
            (_, State::Failed | State::Rejected) => State::Delivered,
            (_, s) => s,
        }
    };
    r.transition(state, note, now);
    Some(line)
}

/// The record an index entry names, from this run's changes first.
fn record_of(
    ledger: &dyn Ledger,
    changed: &[Record],
    target: &str,
    st: &CdarStatus,
) -> Result<Result<Record, String>, TargetError> {
    let (Some(siren), Some(date)) = (st.issuer_siren.as_deref(), st.invoice_date) else {
        return Ok(Err(format!(
            "status {} for invoice {}: the CDAR gives no seller SIREN or invoice date, and facto never matches a status on the number alone; not recorded",
            st.code, st.invoice_number
        )));
    };
    let unknown = || {
        format!(
            "status {} for invoice {} (seller SIREN {siren}, {date}): no invoice facto sent through {target} has this number, seller and year; not recorded",
            st.code, st.invoice_number
        )
    };
    let Some(v) = ledger.value(&index_key(target, siren, date.year(), &st.invoice_number))? else {
        return Ok(Err(unknown()));
    };
    let Ok(key) = serde_json::from_value::<RecordKey>(v) else {
        return Ok(Err(unknown()));
    };
    if let Some(r) = changed.iter().rev().find(|r| r.key == key) {
        return Ok(Ok(r.clone()));
    }
    Ok(ledger.get(&key)?.ok_or_else(unknown))
}

/// Reads the statuses changed since the last run into `polled` and stores them with the new
/// read position (the records of `polled` are stored first).
///
/// # Errors
///
/// The PA unreachable (what was read before is kept), or the ledger failed.
pub async fn follow(
    api: &PaApi,
    target: &str,
    ledger: &dyn Ledger,
    polled: &mut Polled,
) -> Result<(), TargetError> {
    let filter = json!({"flowType": ["CustomerInvoiceLC"], "flowDirection": ["In"]});
    let mut feed = Feed::load(ledger, cursor_key(target), filter, OVERLAP_SECS)?;
    let result = read(api, target, ledger, polled, &mut feed).await;
    ledger.put_records(&polled.changed)?;
    feed.save(ledger)?;
    result
}

async fn read(
    api: &PaApi,
    target: &str,
    ledger: &dyn Ledger,
    polled: &mut Polled,
    feed: &mut Feed,
) -> Result<(), TargetError> {
    let flows = feed.changes(api).await.map_err(|e| remote(target, &e))?;
    for f in flows {
        if is_status(&f) {
            read_flow(api, target, ledger, polled, &f).await?;
        }
        feed.handled(&f);
    }
    feed.finish();
    Ok(())
}

/// A lifecycle status about one of facto's invoices (a PA may ignore a search criterion).
fn is_status(f: &Flow) -> bool {
    f.flow_type.as_deref() == Some("CustomerInvoiceLC")
        && f.flow_direction.as_deref().is_none_or(|d| d == "In")
}

async fn read_flow(
    api: &PaApi,
    target: &str,
    ledger: &dyn Ledger,
    polled: &mut Polled,
    f: &Flow,
) -> Result<(), TargetError> {
    let id = &f.flow_id;
    let Some(bytes) = api.original(id).await.map_err(|e| remote(target, &e))? else {
        polled.changes.push(format!(
            "{target}: lifecycle flow {id} is listed but the PA has no file for it; not recorded"
        ));
        return Ok(());
    };
    let statuses = match cdar::parse(&bytes) {
        Ok(s) => s,
        Err(e) => {
            polled.changes.push(format!(
                "{target}: lifecycle flow {id} cannot be read: {e}; not recorded"
            ));
            return Ok(());
        }
    };
    let now = Utc::now();
    for st in statuses {
        match record_of(ledger, &polled.changed, target, &st)? {
            Err(why) => polled.changes.push(format!("{target}: flow {id}: {why}")),
            Ok(mut r) => {
                if let Some(line) = apply(&mut r, &st, id, target, now) {
                    polled.changes.push(line);
                    polled.changed.retain(|c| c.key != r.key);
                    polled.changed.push(r);
                }
            }
        }
    }
    Ok(())
}

/// The next `n` records to poll after the one polled last (`after`, a [`rotation_key`]),
/// wrapping around: every waiting record is polled in turn whatever `n` is.
pub fn rotate(mut waiting: Vec<Record>, after: Option<&str>, n: usize) -> Vec<Record> {
    waiting.sort_by_key(rotation_key);
    let start = after.map_or(0, |a| {
        waiting.partition_point(|r| rotation_key(r).as_str() <= a)
    });
    waiting.rotate_left(start);
    waiting.truncate(n);
    waiting
}

/// A record's place in the polling rotation.
pub fn rotation_key(r: &Record) -> String {
    format!("{}\0{}", r.key.job, r.key.doc_id)
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
