//! Malformed documents whose id holds a control character: kept under
//! [`crate::model::MALFORMED_ID`], so that no real document shares their record.

use chrono::{DateTime, Utc};

use crate::ledger::{AuditEvent, Ledger, LedgerError, RecordKey, State};

/// A ledger made before malformed ids had their own prefix holds such a document under its
/// escaped id, a name a real document may have: that record goes (audited) when the document
/// is held under `key`, so that `ledger forget` names one record.
///
/// # Errors
///
/// Ledger failure.
pub(super) fn rekey(
    ledger: &dyn Ledger,
    key: &RecordKey,
    origin: &str,
    now: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let shown = crate::model::shown_id(&key.doc_id);
    if shown == key.doc_id {
        return Ok(());
    }
    let old = RecordKey {
        doc_id: shown.to_owned(),
        ..key.clone()
    };
    let stale = ledger.get(&old)?.is_some_and(|r| {
        r.state == State::Held
            && r.origin == origin
            && r.problems.iter().all(|p| p.code == "malformed-document")
    });
    if stale {
        ledger.forget(
            &old,
            AuditEvent {
                at: now,
                action: "rekeyed".into(),
                detail: format!("{old}: a malformed document, now held under its own key"),
                who: crate::ledger::WHO_SYNC.into(),
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::sled::SledLedger;
    use crate::ledger::Record;
    use crate::problem::Problem;

    #[test]
    fn a_record_kept_under_the_escaped_id_goes_and_a_real_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = SledLedger::open(dir.path()).unwrap();
        let now = Utc::now();
        let key = |id: &str| RecordKey {
            job: "j".into(),
            target: "t".into(),
            doc_id: id.into(),
        };
        let held = |id: &str, code: &str| {
            let mut r = Record::new(key(id), now);
            r.origin = "a.json".into();
            r.hold(vec![Problem::new(code, "id", "m", "f")], None, "R1", now);
            r
        };
        ledger
            .put_records(&[
                held("inv\\n42", "malformed-document"),
                held("x\\ty", "unmapped-tax-code"),
            ])
            .unwrap();
        let malformed = |id: &str| key(&format!("{}{id}", crate::model::MALFORMED_ID));
        rekey(&ledger, &malformed("inv\\n42"), "a.json", now).unwrap();
        rekey(&ledger, &malformed("x\\ty"), "a.json", now).unwrap();
        assert!(ledger.get(&key("inv\\n42")).unwrap().is_none());
        // A real document (held for a mapping problem) keeps its record.
        assert!(ledger.get(&key("x\\ty")).unwrap().is_some());
    }
}
