//! What a target's answer does to a lot's claimed records: delivered (with the target's id,
//! status and idempotency key), refused (failed, with the error), released unsent, or left
//! claimed when the answer is uncertain.

use chrono::{DateTime, Utc};

use super::{Item, Outcome, Receipt};
use crate::ledger::{IllegalTransition, Record};
use crate::targets::TargetError;

fn deliver(rec: &mut Record, r: Receipt, now: DateTime<Utc>) -> Result<(), IllegalTransition> {
    rec.remote_id = r.remote_id;
    rec.remote_status = r.status;
    if r.key.is_some() {
        rec.idempotency_key = r.key;
    }
    rec.delivered(r.note, now)
}

fn fail(
    rec: &mut Record,
    error: &str,
    note: &str,
    now: DateTime<Utc>,
) -> Result<(), IllegalTransition> {
    rec.last_error = Some(error.to_owned());
    rec.fail(note, now)
}

/// Records an outcome on a lot's claimed records: how many were delivered, and why the target
/// stops for this run, if it does.
pub(super) fn apply(
    outcome: Outcome,
    recs: &mut [Record],
    now: DateTime<Utc>,
) -> Result<(u64, Option<TargetError>), IllegalTransition> {
    Ok(match outcome {
        Outcome::Delivered(r) => {
            for rec in recs.iter_mut() {
                deliver(rec, r.clone(), now)?;
            }
            (recs.len() as u64, None)
        }
        Outcome::Partial(items) => {
            let mut n = 0;
            for (rec, item) in recs.iter_mut().zip(items) {
                match item {
                    None => {}
                    Some(Item::Delivered(r)) => {
                        deliver(rec, r, now)?;
                        n += 1;
                    }
                    Some(Item::Refused { error, note }) => fail(rec, &error, &note, now)?,
                }
            }
            (n, None)
        }
        Outcome::Refused { error, note } => {
            for rec in recs.iter_mut() {
                fail(rec, &error, &note, now)?;
            }
            (0, None)
        }
        Outcome::NotSent { error, note, stop } => {
            for rec in recs.iter_mut() {
                rec.last_error = Some(error.clone());
                rec.release(note.clone(), now)?;
            }
            (0, Some(stop))
        }
        Outcome::Uncertain { error, stop } => {
            for rec in recs.iter_mut() {
                rec.last_error = Some(error.clone());
            }
            (0, Some(stop))
        }
    })
}
