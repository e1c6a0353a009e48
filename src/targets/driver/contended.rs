//! Documents another worker sharing the ledger keeps this one from sending now: a lot refused at
//! its claim because another worker claimed or delivered one of its documents meanwhile
//! ([`crate::ledger::Ledger::put_claims`]), or a document another worker still had reserved
//! after the wait ([`super::turns`]). Nothing of them is sent; each waits, held with its copy,
//! for the next run, which reads held copies again. So none is lost behind a source cursor that
//! moved on.

use chrono::{DateTime, Utc};

use super::LotDoc;
use crate::ledger::{Ledger, Record, RecordKey};
use crate::mapping::MappedDocument;
use crate::problem::Problem;
use crate::targets::TargetError;

/// Holds the documents of `docs` that `refused` does not name, each with its copy, for the
/// next run; a record another worker moved on meanwhile is left as it is.
///
/// # Errors
///
/// The ledger fails.
pub(super) fn wait_for_next_run(
    ledger: &dyn Ledger,
    docs: Vec<LotDoc>,
    refused: &[RecordKey],
    run_id: &str,
    now: DateTime<Utc>,
) -> Result<(), TargetError> {
    let mut waiting = Vec::new();
    hold_for_next_run(
        ledger,
        docs.iter().map(|d| (d.md.as_ref(), &d.rec)),
        refused,
        "another worker sharing the ledger claimed a document sent together with this one",
        run_id,
        now,
        &mut waiting,
    )?;
    ledger.put_claims(&[], &waiting)?;
    Ok(())
}

/// The held records (with `why`) of the documents of `docs` that `refused` does not name and
/// whose stored record is still eligible, added to `waiting` for the caller to write.
///
/// # Errors
///
/// The ledger fails.
pub(super) fn hold_for_next_run<'d>(
    ledger: &dyn Ledger,
    docs: impl Iterator<Item = (&'d MappedDocument, &'d Record)>,
    refused: &[RecordKey],
    why: &str,
    run_id: &str,
    now: DateTime<Utc>,
    waiting: &mut Vec<Record>,
) -> Result<(), TargetError> {
    for (md, planned) in docs {
        if refused.contains(&planned.key) {
            continue;
        }
        let mut rec = match ledger.get(&planned.key)? {
            Some(r) => r,
            None => {
                let mut r = Record::new(planned.key.clone(), now);
                r.number.clone_from(&planned.number);
                r.kind.clone_from(&planned.kind);
                r.customer_id.clone_from(&planned.customer_id);
                r.customer_name.clone_from(&planned.customer_name);
                r.issue_date = planned.issue_date;
                r.gross = planned.gross;
                r.origin.clone_from(&planned.origin);
                r.source_hash.clone_from(&planned.source_hash);
                r
            }
        };
        if !rec.state.is_eligible() {
            continue;
        }
        rec.hold(
            vec![Problem::new(
                "claimed-elsewhere",
                "",
                why,
                "nothing to do: it is sent at the next run",
            )],
            serde_json::to_value(&md.doc).ok(),
            run_id,
            now,
        );
        waiting.push(rec);
    }
    Ok(())
}
