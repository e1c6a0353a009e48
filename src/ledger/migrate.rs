//! One-time upgrade of a version-1 or version-2 ledger to the key layout of version 3
//! (`ledger::keys`). Before it, names and ids were joined raw by `\0` and batch members by `\n`,
//! so an id holding either byte broke its keys (a membership page that no longer parsed stopped
//! every later sync). Record keys are rewritten escaped (only those holding `\0` or `\x01`
//! change), every membership page is rewritten, and the indexes are dropped so that opening
//! rebuilds them: all in one atomic write with the new version, so a crash leaves either
//! layout whole.

use super::keys;
use super::store::{Store, WriteBatch};
use super::{LedgerError, Result, SCHEMA_VERSION};

/// Splits a key or member written by versions 1–2 (`job\0target\0doc`; the id may hold `\0`).
fn old_parts(b: &[u8]) -> Option<[String; 3]> {
    let mut it = b.splitn(3, |c| *c == 0);
    let mut part = || it.next().map(|p| String::from_utf8_lossy(p).into_owned());
    Some([part()?, part()?, part()?])
}

/// The members of a version-2 membership page: `job\0target\0doc\n` repeated. A line that does
/// not start as a member of the batch's own job and target (when known) or that lacks its two
/// separators continues the previous id, which held a `\n`.
fn old_members(v: &[u8], owner: Option<(&str, &str)>) -> Option<Vec<[String; 3]>> {
    let body = v.strip_suffix(b"\n").unwrap_or(v);
    let head = owner.map(|(j, t)| format!("{j}\0{t}\0").into_bytes());
    let mut out: Vec<[String; 3]> = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        let starts = match &head {
            Some(h) => line.starts_with(h),
            None => old_parts(line).is_some(),
        };
        match (starts.then(|| old_parts(line)).flatten(), out.last_mut()) {
            (Some(p), _) => out.push(p),
            (None, Some(prev)) => {
                prev[2].push('\n');
                prev[2].push_str(&String::from_utf8_lossy(line));
            }
            (None, None) => return None,
        }
    }
    Some(out)
}

/// The job and target of batch `id`, from its committed or open marker.
fn owner<S: Store>(db: &S, id: &[u8]) -> Result<Option<(String, String)>> {
    #[derive(serde::Deserialize)]
    struct Owner {
        job: String,
        target: String,
    }
    for tag in [&b"b\0"[..], b"o\0"] {
        let k = [tag, id].concat();
        if let Some(v) = db.get(&k)? {
            if let Ok(o) = serde_json::from_slice::<Owner>(&v) {
                return Ok(Some((o.job, o.target)));
            }
        }
    }
    Ok(None)
}

/// Rewrites a ledger of version 1 or 2 in the version-3 layout and marks it version 3. The
/// caller rebuilds the indexes (their marker is removed here).
///
/// # Errors
///
/// Storage errors; a membership page that cannot be read at all.
pub(super) fn to_v3<S: Store>(db: &S) -> Result<()> {
    let mut b = WriteBatch::default();
    for kv in db.scan(b"r\0") {
        let (k, v) = kv?;
        let Some([job, target, doc]) = old_parts(&k[2..]) else {
            continue; // Left as it is: `check_indexes` names unreadable records.
        };
        let new = keys::key("r", &[&job, &target, &doc]);
        if new != k {
            b.remove(k);
            b.insert(new, v);
        }
    }
    for kv in db.scan(b"d\0") {
        let (k, v) = kv?;
        // `d\0<16-digit id>\0<page>`
        let id = k.get(2..18).unwrap_or_default();
        let owner = owner(db, id)?;
        let members = old_members(&v, owner.as_ref().map(|(j, t)| (j.as_str(), t.as_str())))
            .ok_or_else(|| LedgerError::Corrupt {
                key: String::from_utf8_lossy(&k).replace('\0', "/"),
                detail: "membership page of an earlier version cannot be read".into(),
            })?;
        let mut page = Vec::with_capacity(v.len() + members.len());
        for [job, target, doc] in &members {
            keys::push_member(&mut page, job, target, doc);
        }
        b.insert(k, page);
    }
    b.remove(&b"m\0index"[..]);
    b.insert(&b"m\0schema"[..], SCHEMA_VERSION.to_string().into_bytes());
    db.apply(b)?;
    db.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::rules::encode_record;
    use crate::ledger::sled::SledLedger;
    use crate::ledger::{Ledger, OpenBatch, Record, RecordFilter, State};

    fn record(doc: &str, state: State, batch: Option<u64>) -> Record {
        Record {
            batch_id: batch,
            ..crate::ledger::conformance::record(doc, state)
        }
    }

    /// A version-2 ledger, as a crash left it: batch 1 open with two claimed documents, one of
    /// them with a `\n` in its id (its membership page did not parse: every sync stopped), and a
    /// held document whose id holds a `\0`.
    #[test]
    fn a_version_2_ledger_with_odd_ids_is_migrated_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let l = SledLedger::open(dir.path()).unwrap();
        let db = l.store();
        let mut b = WriteBatch::default();
        for kv in db.scan(b"") {
            b.remove(kv.unwrap().0);
        }
        let open = OpenBatch {
            id: 1,
            job: "j".into(),
            target: "t".into(),
            tmp_path: "tmp".into(),
            started_at: chrono::Utc::now(),
        };
        b.insert(
            &b"o\x000000000000000001"[..],
            serde_json::to_vec(&open).unwrap(),
        );
        for r in [
            record("a\nb", State::Claimed, Some(1)),
            record("c", State::Claimed, Some(1)),
            record("x\0y", State::Held, None),
        ] {
            let k = format!("r\0j\0t\0{}", r.key.doc_id);
            b.insert(k.as_bytes(), encode_record(&r).unwrap());
        }
        b.insert(
            &b"d\x000000000000000001\x000000000000000001"[..],
            &b"j\0t\0a\nb\nj\0t\0c\n"[..],
        );
        b.insert(&b"m\0schema"[..], &b"2"[..]);
        b.insert(&b"m\0index"[..], &b"1"[..]);
        db.apply(b).unwrap();
        db.flush().unwrap();
        drop(l);

        let l = SledLedger::open(dir.path()).unwrap();
        assert_eq!(l.store().get(b"m\0schema").unwrap().unwrap(), b"3");
        assert_eq!(l.check_indexes().unwrap(), Vec::<String>::new());
        let rec = l.recover().unwrap();
        assert_eq!(rec.released, 2);
        for doc in ["a\nb", "c"] {
            let r = l.get(&record(doc, State::Held, None).key).unwrap().unwrap();
            assert_eq!(r.state, State::Released, "{doc:?}");
        }
        let held = l
            .list(&RecordFilter {
                job: Some("j".into()),
                target: Some("t".into()),
                state: Some(State::Held),
            })
            .unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].key.doc_id, "x\0y");
        assert_eq!(l.check_indexes().unwrap(), Vec::<String>::new());
        // Opened again: nothing left to migrate, nothing changes.
        drop(l);
        let l = SledLedger::open(dir.path()).unwrap();
        assert_eq!(l.list(&RecordFilter::default()).unwrap().len(), 3);
    }

    #[test]
    fn version_2_members_with_a_newline_in_an_id_are_read_whole() {
        let v = b"j\0t\0a\nb\nj\0t\0c\n";
        let m = old_members(v, Some(("j", "t"))).unwrap();
        assert_eq!(
            m,
            [["j", "t", "a\nb"], ["j", "t", "c"]].map(|p| p.map(String::from))
        );
        let m = old_members(v, None).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0][2], "a\nb");
        assert!(old_members(b"junk\n", Some(("j", "t"))).is_none());
    }
}
