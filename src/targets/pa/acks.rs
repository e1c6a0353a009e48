//! Acknowledgements of facto's flows (issue 13 §2, notes §5): facto's own outgoing invoice
//! flows changed since the last read are searched page by page ([`super::feed`]) and matched to
//! the records waiting for one by `flowId` (checked against their `trackingId`), or by
//! `trackingId` for an accepted earlier flow of the same document: `Ok` keeps the
//! record delivered, `Error` rejects it with the PA's reasons, and a flow refused only as a
//! duplicate gives way to the earlier flow of its `trackingId`. The calls per run stay bounded
//! whatever the number of waiting flows: at most [`super::feed::MAX_PAGES`] search pages, plus
//! at most `poll_max_flows` flows read one by one (in turn), only for the records the searches
//! could not settle.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::api::{Flow, PaApi};
use super::feed::Feed;
use super::{ack, lifecycle, tracking_id, PaRun};
use crate::ledger::{Ledger, Record, State};
use crate::targets::driver::Polled;
use crate::targets::{remote, TargetError};

/// A record waiting this long without the searches settling it is read on its own: the PA
/// indexed its flow late (after a newer change was read), or does not move `updatedAt` when
/// it acknowledges a flow.
const STALE_MINUTES: i64 = 60;

/// The ledger value holding where the acknowledgement searches of a connector stand.
fn feed_key(target: &str) -> String {
    format!("pa-ack-feed\0{target}")
}

/// The ledger value holding the last record read on its own (the rotation).
fn rotation_key(target: &str) -> String {
    format!("pa-ack-cursor\0{target}")
}

/// The flows facto sends: outgoing invoices (the PA derives `CustomerInvoice` for them).
fn filter() -> serde_json::Value {
    json!({"flowDirection": ["Out"], "flowType": ["CustomerInvoice"]})
}

/// Whether a record still waits for its acknowledgement: sent (a flow id), no lifecycle status
/// yet (a status means the PA took the flow), not acknowledged `Ok`.
pub fn waits(r: &Record) -> bool {
    r.remote_id.is_some()
        && r.remote_status
            .as_deref()
            .is_none_or(|s| s.starts_with("ack ") && s != ack("Ok"))
}

/// Whether a record the searches did not settle is read on its own: a lookup found its flow
/// acknowledged `Error` (the reasons are in the flow, not in the record), or it has waited
/// longer than [`STALE_MINUTES`].
pub fn read_alone(r: &Record, now: DateTime<Utc>) -> bool {
    r.remote_status.as_deref() == Some(ack("Error").as_str())
        || now - r.updated_at > chrono::Duration::minutes(STALE_MINUTES)
}

/// The acknowledgements of the records of `live` waiting for one, into a [`Polled`]; its
/// records are stored, then the read position.
///
/// # Errors
///
/// The PA unreachable (what was read before is kept), or the ledger failed.
pub async fn poll(
    api: &PaApi,
    name: &str,
    max_alone: usize,
    ledger: &dyn Ledger,
    live: Vec<Record>,
) -> Result<Polled, TargetError> {
    let mut polled = Polled::default();
    let mut waiting: BTreeMap<String, Record> = live
        .into_iter()
        .filter(waits)
        .filter_map(|r| Some((r.remote_id.clone()?, r)))
        .collect();
    if waiting.is_empty() {
        return Ok(polled);
    }
    let mut feed = Feed::load(ledger, feed_key(name), filter(), 0)?;
    // No flow waited for changed before its record's first step (a day earlier for the PA's
    // clock): a first read, or one after a long time with nothing waiting, starts there.
    if let Some(oldest) = waiting
        .values()
        .map(|r| r.history.first().map_or(r.updated_at, |e| e.at))
        .min()
    {
        feed.skip_before(oldest - chrono::Duration::days(1));
    }
    let result = search(api, name, &mut feed, &mut waiting, &mut polled).await;
    let result = match result {
        Ok(()) => alone(api, name, max_alone, ledger, waiting, &mut polled).await,
        Err(e) => Err(e),
    };
    ledger.put_records(&polled.changed)?;
    // A crash here reads the same flows again at the next run: nothing is skipped.
    crate::fault::point("after-ack-records", name);
    feed.save(ledger)?;
    result.map(|()| polled)
}

/// The changed flows, matched to the waiting records (each settled one leaves `waiting`): by
/// `flowId`, its `trackingId` agreeing; or an accepted flow of a record's `trackingId` (an
/// earlier flow of an interrupted send), which then stands for it.
async fn search(
    api: &PaApi,
    name: &str,
    feed: &mut Feed,
    waiting: &mut BTreeMap<String, Record>,
    polled: &mut Polled,
) -> Result<(), TargetError> {
    let flows = feed.changes(api).await.map_err(|e| remote(name, &e))?;
    let mut by_tracking: BTreeMap<String, String> = waiting
        .iter()
        .map(|(id, r)| (tracking_id(&r.key), id.clone()))
        .collect();
    for flow in flows {
        // A PA may ignore a criterion: only facto's outgoing flows, and only their own record.
        let ours = flow.flow_direction.as_deref().is_none_or(|d| d == "Out");
        let tracking = flow.tracking_id.as_deref().unwrap_or_default();
        let record_id = match waiting.get(&flow.flow_id) {
            Some(r) => (tracking.is_empty() || tracking == tracking_id(&r.key))
                .then(|| flow.flow_id.clone()),
            None if flow.ack_status() == "Ok" => by_tracking.get(tracking).cloned(),
            None => None,
        };
        if let Some(mut r) = record_id
            .filter(|_| ours)
            .and_then(|id| waiting.remove(&id))
        {
            by_tracking.remove(&tracking_id(&r.key));
            r.remote_id = Some(flow.flow_id.clone());
            settle(api, name, r, flow.clone(), polled).await?;
        }
        feed.handled(&flow);
    }
    feed.finish();
    Ok(())
}

/// The records the searches did not settle and that need it, read one by one: at most
/// `max_alone` per run, in turn from where the last run stopped, so that none waits forever.
async fn alone(
    api: &PaApi,
    name: &str,
    max_alone: usize,
    ledger: &dyn Ledger,
    waiting: BTreeMap<String, Record>,
    polled: &mut Polled,
) -> Result<(), TargetError> {
    let now = Utc::now();
    let due: Vec<Record> = waiting
        .into_values()
        .filter(|r| read_alone(r, now))
        .collect();
    let rotation = rotation_key(name);
    let after = ledger.value(&rotation)?;
    let due = lifecycle::rotate(due, after.as_ref().and_then(|v| v.as_str()), max_alone);
    if let Some(last) = due.last() {
        ledger.put_value(&rotation, &json!(lifecycle::rotation_key(last)))?;
    }
    for r in due {
        let id = r.remote_id.clone().unwrap_or_default();
        if let Some(flow) = api.flow(&id).await.map_err(|e| remote(name, &e))? {
            settle(api, name, r, flow, polled).await?;
        }
    }
    Ok(())
}

/// Applies a flow's acknowledgement to its record (into `polled` when it changed).
async fn settle(
    api: &PaApi,
    name: &str,
    mut r: Record,
    flow: Flow,
    polled: &mut Polled,
) -> Result<(), TargetError> {
    let id = flow.flow_id.clone();
    let now = Utc::now();
    let status = flow.ack_status().to_owned();
    // Unchanged; an `Error` is acted on even when a lookup already recorded it.
    if status != "Error" && r.remote_status.as_deref() == Some(ack(&status).as_str()) {
        return Ok(());
    }
    let Some(a) = flow.acknowledgement.filter(|_| status == "Error") else {
        polled.status(name, r, &ack(&status), None, now);
        return Ok(());
    };
    // A duplicate of an earlier flow of the same trackingId: that one stands for it.
    if a.only_duplicate() {
        let flows = api
            .search(&tracking_id(&r.key))
            .await
            .map_err(|e| remote(name, &e))?;
        let other = PaRun::best(flows.into_iter().filter(|f| f.flow_id != id).collect());
        if let Some(o) = other.filter(|o| o.ack_status() != "Error") {
            r.remote_id = Some(o.flow_id.clone());
            polled.status(name, r, &ack(o.ack_status()), None, now);
            return Ok(());
        }
    }
    let reasons = a.reasons();
    polled.changes.push(format!(
        "{} ({name}): flow {id} acknowledged Error: rejected: {reasons}",
        r.number
    ));
    r.remote_status = Some(ack("Error"));
    r.last_error = Some(format!("the PA rejected flow {id}: {reasons}"));
    r.transition(
        State::Rejected,
        format!("flow {id}: acknowledgement Error: {reasons}"),
        now,
    );
    polled.changed.push(r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::ledger::RecordKey;

    fn record(status: Option<&str>, at: DateTime<Utc>) -> Record {
        let mut r = Record::new(
            RecordKey {
                job: "sales".into(),
                target: "pa".into(),
                doc_id: "F1".into(),
            },
            at,
        );
        r.state = State::Delivered;
        r.remote_id = Some("flow-1".into());
        r.remote_status = status.map(str::to_owned);
        r
    }

    #[test]
    fn only_records_without_an_ok_or_a_lifecycle_status_wait() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        assert!(waits(&record(Some("ack Pending"), at)));
        assert!(waits(&record(Some("ack Error"), at)));
        assert!(waits(&record(None, at)));
        assert!(!waits(&record(Some("ack Ok"), at)));
        assert!(!waits(&record(Some("cdv:200 Déposée"), at)));
        let mut unsent = record(None, at);
        unsent.remote_id = None;
        assert!(!waits(&unsent));
    }

    #[test]
    fn a_record_is_read_alone_when_stale_or_found_in_error() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        let soon = at + chrono::Duration::minutes(5);
        let late = at + chrono::Duration::minutes(STALE_MINUTES + 1);
        assert!(!read_alone(&record(Some("ack Pending"), at), soon));
        assert!(read_alone(&record(Some("ack Pending"), at), late));
        assert!(read_alone(&record(Some("ack Error"), at), soon));
    }
}
