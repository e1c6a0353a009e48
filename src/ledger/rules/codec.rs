//! Record and batch keys, and the stored form of values: JSON, and a record's 9-byte header.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ledger::{keys, LedgerError, Record, RecordKey, Result, State};

pub(super) fn rkey(k: &RecordKey) -> Vec<u8> {
    keys::key("r", &[&k.job, &k.target, &k.doc_id])
}
/// The key of a stored value ([`crate::ledger::Ledger::put_value`]).
pub(super) fn vkey(key: &str) -> Vec<u8> {
    format!("k\0{key}").into_bytes()
}
pub(super) fn bkey(id: u64) -> Vec<u8> {
    format!("b\0{id:016}").into_bytes()
}
pub(super) fn okey(id: u64) -> Vec<u8> {
    format!("o\0{id:016}").into_bytes()
}
pub(super) fn ukey(id: u64) -> Vec<u8> {
    format!("u\0{id:016}").into_bytes()
}
pub(super) fn dprefix(id: u64) -> Vec<u8> {
    format!("d\0{id:016}\0").into_bytes()
}

pub(super) fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| LedgerError::Corrupt {
        key: "(encode)".into(),
        detail: e.to_string(),
    })
}

pub(super) fn from_json<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| LedgerError::Corrupt {
        key: String::from_utf8_lossy(key).replace('\0', "/"),
        detail: e.to_string(),
    })
}

/// A record is stored as a 9-byte header — state, batch id (`u64::MAX` for none) — then its JSON.
/// The header is authoritative. A record claimed for a batch that has since been committed is
/// delivered: the commit is one small atomic write, however many documents the batch holds, and
/// an interrupted batch (its open marker still there) is rolled back record by record.
const HEADER: usize = 9;

pub(in crate::ledger) fn encode_record(r: &Record) -> Result<Vec<u8>> {
    let mut v = Vec::with_capacity(1024);
    v.push(r.state.code());
    v.extend_from_slice(&r.batch_id.unwrap_or(u64::MAX).to_be_bytes());
    serde_json::to_writer(&mut v, r).map_err(|e| LedgerError::Corrupt {
        key: "(encode)".into(),
        detail: e.to_string(),
    })?;
    Ok(v)
}

pub(super) fn header(v: &[u8]) -> Option<(State, Option<u64>)> {
    let state = State::from_code(*v.first()?)?;
    let id = u64::from_be_bytes(v.get(1..HEADER)?.try_into().ok()?);
    Some((state, (id != u64::MAX).then_some(id)))
}

/// The JSON of a stored record, after its header.
pub(super) fn body(v: &[u8]) -> &[u8] {
    v.get(HEADER..).unwrap_or_default()
}

pub(super) fn decode_record(key: &[u8], v: &[u8], state: State) -> Result<Record> {
    let mut r: Record = from_json(key, body(v))?;
    let batch = header(v).and_then(|h| h.1);
    if state != r.state {
        let note = match batch {
            Some(id) => format!("export batch {id} committed"),
            None => "state changed".to_owned(),
        };
        r.history.push(crate::ledger::Event {
            at: r.updated_at,
            state,
            note,
        });
        r.state = state;
    }
    r.batch_id = batch;
    Ok(r)
}
