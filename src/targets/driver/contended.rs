//! A lot refused at its claim because another worker sharing the ledger claimed or delivered
//! one of its documents meanwhile ([`crate::ledger::Ledger::put_claims`]): nothing of it is
//! sent, and its other documents wait, held with their copy, for the next run, which reads held
//! copies again. So none is lost behind a source cursor that moved on.

use chrono::{DateTime, Utc};

use super::LotDoc;
use crate::ledger::{Ledger, Record, RecordKey};
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
    for d in docs {
        if refused.contains(&d.rec.key) {
            continue;
        }
        let mut rec = match ledger.get(&d.rec.key)? {
            Some(r) => r,
            None => {
                let mut r = Record::new(d.rec.key.clone(), now);
                r.number.clone_from(&d.rec.number);
                r.kind.clone_from(&d.rec.kind);
                r.customer_id.clone_from(&d.rec.customer_id);
                r.customer_name.clone_from(&d.rec.customer_name);
                r.issue_date = d.rec.issue_date;
                r.gross = d.rec.gross;
                r.origin.clone_from(&d.rec.origin);
                r.source_hash.clone_from(&d.rec.source_hash);
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
                "another worker sharing the ledger claimed a document sent together with this one",
                "nothing to do: it is sent at the next run",
            )],
            serde_json::to_value(&d.md.doc).ok(),
            run_id,
            now,
        );
        waiting.push(rec);
    }
    ledger.put_claims(&[], &waiting)?;
    Ok(())
}
