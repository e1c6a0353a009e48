//! The records one page of a run will read, read at once before the page is sorted: one round
//! trip to a database server for the page instead of one for each document and target.
//!
//! A record read ahead is what the ledger held when the page started. Between that read and the
//! delivery, another worker may change it, exactly as between two single reads: the claim that
//! guards each delivery decides, never this copy.

use std::collections::HashMap;

use crate::ledger::{Ledger, LedgerError, Record, RecordKey};

/// The page's records by key (`None`: not stored when read).
#[derive(Default)]
pub(crate) struct ReadAhead {
    records: HashMap<RecordKey, Option<Record>>,
}

impl ReadAhead {
    /// Reads `keys` at once, replacing what an earlier page read.
    ///
    /// # Errors
    ///
    /// Ledger failure.
    pub(crate) fn load(
        &mut self,
        ledger: &dyn Ledger,
        keys: Vec<RecordKey>,
    ) -> Result<(), LedgerError> {
        self.records.clear();
        if keys.is_empty() {
            return Ok(());
        }
        let found = ledger.get_many(&keys)?;
        self.records = keys.into_iter().zip(found).collect();
        Ok(())
    }

    /// The record under `key`: the copy read ahead, or read now when the page did not ask for it.
    ///
    /// # Errors
    ///
    /// Ledger failure.
    pub(crate) fn get(
        &self,
        ledger: &dyn Ledger,
        key: &RecordKey,
    ) -> Result<Option<Record>, LedgerError> {
        match self.records.get(key) {
            Some(r) => Ok(r.clone()),
            None => ledger.get(key),
        }
    }

    /// Drops the copy of `key`: the run changed the record (it forgot it), so it is read again.
    pub(super) fn changed(&mut self, key: &RecordKey) {
        self.records.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_reads_its_records_at_once_and_a_changed_one_again() {
        let ledger = crate::ledger::MemLedger::in_memory().unwrap();
        let key = |id: &str| RecordKey {
            job: "j".into(),
            target: "t".into(),
            doc_id: id.into(),
        };
        let now = chrono::Utc::now();
        ledger.put_records(&[Record::new(key("a"), now)]).unwrap();
        let mut ahead = ReadAhead::default();
        ahead.load(&ledger, vec![key("a"), key("b")]).unwrap();
        // Written after the read: the page sees the record as it started...
        ledger.put_records(&[Record::new(key("b"), now)]).unwrap();
        assert!(ahead.get(&ledger, &key("a")).unwrap().is_some());
        assert!(ahead.get(&ledger, &key("b")).unwrap().is_none());
        // ... unless the run itself changed it, or never asked for it.
        ahead.changed(&key("b"));
        assert!(ahead.get(&ledger, &key("b")).unwrap().is_some());
        ledger.put_records(&[Record::new(key("c"), now)]).unwrap();
        assert!(ahead.get(&ledger, &key("c")).unwrap().is_some());
    }
}
