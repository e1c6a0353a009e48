//! One page handed to every target, an API target that fails stopping alone, and the amounts
//! of what each target counted as delivered.

use std::sync::Arc;

use super::process::Pending;
use crate::ledger::{Ledger, LedgerError, Record, RecordKey};
use crate::mapping::MappedDocument;
use crate::report::Amounts;
use crate::targets::{TargetError, TargetRun};

/// The amounts of a page handed to a target, added to the run's sum for the documents the
/// target counts as delivered.
struct PageAmounts {
    before: u64,
    docs: Vec<(RecordKey, Amounts)>,
}

impl PageAmounts {
    fn before(run: &dyn TargetRun, docs: &[(Arc<MappedDocument>, Record)]) -> PageAmounts {
        PageAmounts {
            before: run.delivered(),
            docs: docs
                .iter()
                .map(|(m, r)| (r.key.clone(), Amounts::of(&m.doc)))
                .collect(),
        }
    }

    fn after(
        self,
        run: &dyn TargetRun,
        ledger: &dyn Ledger,
        sum: &mut Amounts,
    ) -> Result<(), LedgerError> {
        let n = run.delivered().saturating_sub(self.before);
        if n == self.docs.len() as u64 {
            self.docs.into_iter().for_each(|(_, a)| sum.add(a));
        } else if n > 0 {
            // Some were refused (per-item errors): the ledger says which went through.
            for (key, a) in self.docs {
                if ledger.get(&key)?.is_some_and(|r| r.state.is_delivered()) {
                    sum.add(a);
                }
            }
        }
        Ok(())
    }
}

/// Delivers one page to every target. An API target that fails (unreachable, credentials
/// refused) stops for this run with its reason, without stopping the others.
pub(super) async fn deliver(
    runs: &mut [Box<dyn TargetRun>],
    stopped: &mut [Option<String>],
    ledger: &dyn Ledger,
    pending: Vec<Pending>,
    run_id: &str,
    amounts: &mut [Amounts],
) -> Result<(), TargetError> {
    for (((run, p), stop), sum) in runs
        .iter_mut()
        .zip(pending)
        .zip(stopped.iter_mut())
        .zip(amounts.iter_mut())
    {
        let page = PageAmounts::before(run.as_ref(), &p.deliver);
        if let Some(j) = run.journal() {
            j.register_numbers(p.numbers);
            // A journal file takes every document of the page, or fails the run.
            run.deliver_page(ledger, p.deliver, p.others, run_id)
                .await?;
        } else if stop.is_some() {
            ledger.put_claims(&[], &p.others)?;
        } else {
            match run.deliver_page(ledger, p.deliver, p.others, run_id).await {
                Ok(()) => {}
                Err(e @ (TargetError::Remote { .. } | TargetError::Config(_))) => {
                    tracing::error!(target = %run.name(), error = %e, "Target stopped for this run.");
                    *stop = Some(e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        page.after(run.as_ref(), ledger, sum)?;
    }
    Ok(())
}
