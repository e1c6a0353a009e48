//! The typed transitions of a record's delivery: [`Record::claim`], [`Record::delivered`],
//! [`Record::fail`] and [`Record::release`], each refusing an edge the exactly-once protocol
//! never takes. The target follow-ups (`accepted`, `rejected`, `paid`) and the ledger's own
//! batch roll-backs keep [`Record::transition`].

use chrono::{DateTime, Utc};

use super::{Record, State};

/// A transition the delivery protocol never takes (e.g. delivering a record that is not claimed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document {} is {} in the ledger; it cannot become {}", crate::model::shown_id(doc_id), from.as_str(), to.as_str())]
pub struct IllegalTransition {
    /// The record's document id.
    pub doc_id: String,
    /// Its current state.
    pub from: State,
    /// The state refused.
    pub to: State,
}

impl Record {
    fn refuse(&self, to: State) -> Result<(), IllegalTransition> {
        Err(IllegalTransition {
            doc_id: self.key.doc_id.clone(),
            from: self.state,
            to,
        })
    }

    /// Claims the record for a delivery (flush it before sending): one more attempt, and the
    /// last error and remote answer of an earlier attempt cleared.
    ///
    /// # Errors
    ///
    /// The record is claimed or failed already, or delivered without `restore_to` set (only a
    /// re-export, which records where to go back to, claims a delivered document again).
    pub fn claim(
        &mut self,
        note: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Result<(), IllegalTransition> {
        let legal =
            self.state.is_eligible() || (self.state.is_delivered() && self.restore_to.is_some());
        if !legal {
            return self.refuse(State::Claimed);
        }
        self.attempts += 1;
        self.last_error = None;
        self.remote_id = None;
        self.remote_status = None;
        self.idempotency_key = None;
        self.transition(State::Claimed, note, now);
        Ok(())
    }

    /// Records the claimed record as delivered (the target took it).
    ///
    /// # Errors
    ///
    /// The record is not claimed.
    pub fn delivered(
        &mut self,
        note: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Result<(), IllegalTransition> {
        self.leave_claim(State::Delivered, note, now)
    }

    /// Records the claimed record as refused for good by the target. `reason` is the history
    /// note; the target's full answer goes in `last_error`, set by the caller.
    ///
    /// # Errors
    ///
    /// The record is not claimed.
    pub fn fail(
        &mut self,
        reason: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Result<(), IllegalTransition> {
        self.leave_claim(State::Failed, reason, now)
    }

    /// Frees a claimed record that certainly did not reach the target: eligible again.
    ///
    /// # Errors
    ///
    /// The record is not claimed.
    pub fn release(
        &mut self,
        note: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Result<(), IllegalTransition> {
        self.leave_claim(State::Released, note, now)
    }

    fn leave_claim(
        &mut self,
        to: State,
        note: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Result<(), IllegalTransition> {
        if self.state != State::Claimed {
            return self.refuse(to);
        }
        self.transition(to, note, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RecordKey;

    fn record(state: State) -> Record {
        let key = RecordKey {
            job: "j".into(),
            target: "t".into(),
            doc_id: "d".into(),
        };
        Record {
            state,
            ..Record::new(key, Utc::now())
        }
    }

    type Step = fn(&mut Record, &str, DateTime<Utc>) -> Result<(), IllegalTransition>;

    fn steps() -> [(State, Step); 4] {
        [
            (State::Claimed, |r, n, t| r.claim(n, t)),
            (State::Delivered, |r, n, t| r.delivered(n, t)),
            (State::Failed, |r, n, t| r.fail(n, t)),
            (State::Released, |r, n, t| r.release(n, t)),
        ]
    }

    /// Every (state, step) pair: legal ones move and stamp the record, the others leave it as
    /// it was and name the record, its state and the refused one.
    #[test]
    fn every_edge_is_legal_or_refused_as_the_protocol_says() {
        for from in State::ALL {
            for restore in [false, true] {
                for (to, step) in steps() {
                    let mut r = record(from);
                    if restore {
                        r.restore_to = Some((from, Some(1)));
                    }
                    let before = r.clone();
                    let legal = match to {
                        State::Claimed => from.is_eligible() || (from.is_delivered() && restore),
                        _ => from == State::Claimed,
                    };
                    let now = Utc::now();
                    match step(&mut r, "why", now) {
                        Ok(()) => {
                            assert!(legal, "{from:?} → {to:?} (restore {restore}) was allowed");
                            assert_eq!(r.state, to);
                            assert_eq!(r.updated_at, now);
                            let last = r.history.last().unwrap();
                            assert_eq!((last.state, last.note.as_str()), (to, "why"));
                        }
                        Err(e) => {
                            assert!(!legal, "{from:?} → {to:?} (restore {restore}) was refused");
                            assert_eq!(
                                e,
                                IllegalTransition {
                                    doc_id: "d".into(),
                                    from,
                                    to
                                }
                            );
                            assert_eq!(r, before);
                            let msg = e.to_string();
                            assert!(msg.contains(from.as_str()) && msg.contains(to.as_str()));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_claim_counts_the_attempt_and_clears_the_last_answer() {
        let mut r = record(State::Released);
        r.attempts = 2;
        r.last_error = Some("timeout".into());
        r.remote_id = Some("42".into());
        r.remote_status = Some("DEPOSEE".into());
        r.idempotency_key = Some("k".into());
        r.payload_hash = Some("h".into());
        r.batch_id = Some(3);
        r.claim("run r: claimed", Utc::now()).unwrap();
        assert_eq!(r.state, State::Claimed);
        assert_eq!(r.attempts, 3);
        assert_eq!(
            (
                r.last_error,
                r.remote_id,
                r.remote_status,
                r.idempotency_key
            ),
            (None, None, None, None)
        );
        // What the caller set for this delivery stays.
        assert_eq!(
            (r.payload_hash.as_deref(), r.batch_id),
            (Some("h"), Some(3))
        );
    }

    #[test]
    fn a_failure_keeps_the_error_the_caller_recorded() {
        let mut r = record(State::Claimed);
        r.last_error = Some("refused: bad SIRET".into());
        r.fail("deposit refused", Utc::now()).unwrap();
        assert_eq!(r.state, State::Failed);
        assert_eq!(r.last_error.as_deref(), Some("refused: bad SIRET"));
    }
}
