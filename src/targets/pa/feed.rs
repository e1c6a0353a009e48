//! Reading the flows a PA changed since the last run (`POST /v1/flows/search` with
//! `updatedAfter`, page by page with the PA's cursor): the machinery the lifecycle statuses
//! ([`super::lifecycle`]) and the acknowledgements ([`super::acks`]) share. The read position
//! is a ledger value; the caller stores its records first, then the position, and a flow is
//! marked read only once handled, so a crash in between re-reads and never skips.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::api::{Flow, PaApi, PaError};
use crate::ledger::Ledger;
use crate::targets::TargetError;

/// Most pages (of 100 flows) read in one run; the next run goes on from where this one stopped.
pub const MAX_PAGES: usize = 10;

/// Where the reading of one kind of flow stands.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Position {
    /// The newest `updatedAt` read (RFC 3339).
    updated_after: Option<String>,
    /// The PA's cursor when the last run stopped at its page budget.
    resume: Option<String>,
    /// Flows already read near `updated_after` (flow id → `updatedAt`), skipped when listed
    /// again with the same `updatedAt`.
    seen: BTreeMap<String, String>,
}

/// How this run's reading ends once its flows are handled.
enum End {
    /// Every page read: the position moves on to the newest change.
    Complete(Option<DateTime<Utc>>),
    /// The page budget spent: the next run resumes at this cursor.
    Resume(Option<String>),
}

/// One kind of changed flows, read from a persisted position.
pub struct Feed {
    key: String,
    filter: Value,
    overlap_secs: i64,
    pos: Position,
    end: Option<End>,
}

/// A PA's `updatedAt`: RFC 3339, or without a zone (read as UTC) as some PAs write it.
pub fn rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|t| t.and_utc())
        })
}

impl Feed {
    /// The feed stored under `key`, searching with the `where` object `filter`; each search
    /// reaches `overlap_secs` before the newest change read, so that a flow the PA indexes late
    /// with an earlier `updatedAt` is still seen (the ones already read are skipped).
    ///
    /// # Errors
    ///
    /// The ledger failed.
    pub fn load(
        ledger: &dyn Ledger,
        key: String,
        filter: Value,
        overlap_secs: i64,
    ) -> Result<Feed, TargetError> {
        let pos = ledger
            .value(&key)?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        Ok(Feed {
            key,
            filter,
            overlap_secs,
            pos,
            end: None,
        })
    }

    /// A feed whose position is `position` (a source's cursor, [`Feed::position`]) rather
    /// than a ledger value.
    pub fn at(position: Option<&Value>, filter: Value, overlap_secs: i64) -> Feed {
        Feed {
            key: String::new(),
            filter,
            overlap_secs,
            pos: position
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
            end: None,
        }
    }

    /// The position, as a source's cursor keeps it.
    pub fn position(&self) -> Value {
        json!(self.pos)
    }

    /// Reads nothing changed before `t`, when the caller knows no flow it waits for is older:
    /// a first run does not page through the account's whole history, nor a run after a long
    /// time without reading. No effect on a position past `t`.
    pub fn skip_before(&mut self, t: DateTime<Utc>) {
        let kept = self.pos.updated_after.as_deref().and_then(rfc3339);
        if kept.is_none_or(|k| k < t) {
            self.pos.updated_after = Some(t.to_rfc3339());
            self.pos.resume = None;
        }
    }

    /// The flows changed since the last run and not read yet, at most [`MAX_PAGES`] pages.
    /// Nothing moves until [`Feed::handled`] and [`Feed::finish`].
    ///
    /// # Errors
    ///
    /// The PA unreachable or refusing the search.
    pub async fn changes(&mut self, api: &PaApi) -> Result<Vec<Flow>, PaError> {
        let after = self
            .pos
            .updated_after
            .as_deref()
            .and_then(rfc3339)
            .map(|t| (t - chrono::Duration::seconds(self.overlap_secs)).to_rfc3339());
        let mut newest = self.pos.updated_after.as_deref().and_then(rfc3339);
        let mut cursor = self.pos.resume.clone();
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let (flows, next) = match api
                .search_changed(&self.filter, after.as_deref(), cursor.as_deref())
                .await
            {
                Ok(p) => p,
                // A cursor the PA no longer takes: start again from the newest change read.
                Err(PaError::Refused { .. }) if cursor.is_some() => {
                    cursor = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            for f in flows {
                if let Some(t) = f.updated_at.as_deref().and_then(rfc3339) {
                    newest = newest.max(Some(t));
                }
                if self.is_new(&f) && !out.iter().any(|o: &Flow| o.flow_id == f.flow_id) {
                    out.push(f);
                }
            }
            match next {
                Some(n) => cursor = Some(n),
                None => {
                    self.end = Some(End::Complete(newest));
                    return Ok(out);
                }
            }
        }
        self.end = Some(End::Resume(cursor));
        Ok(out)
    }

    /// Whether a listed flow is to be handled: not read yet, or changed since (an
    /// acknowledgement moves on).
    fn is_new(&self, f: &Flow) -> bool {
        let at = f.updated_at.as_deref().unwrap_or_default();
        self.pos.seen.get(&f.flow_id).map(String::as_str) != Some(at)
    }

    /// Marks a flow read: it is skipped when a search lists it again unchanged.
    pub fn handled(&mut self, f: &Flow) {
        let at = f.updated_at.clone().unwrap_or_default();
        self.pos.seen.insert(f.flow_id.clone(), at);
    }

    /// Every flow of [`Feed::changes`] handled: the position moves on, and flows too old to be
    /// listed again are forgotten.
    pub fn finish(&mut self) {
        match self.end.take() {
            Some(End::Complete(newest)) => {
                self.pos.resume = None;
                if let Some(t) = newest {
                    self.pos.updated_after = Some(t.to_rfc3339());
                    let horizon = t - chrono::Duration::seconds(2 * self.overlap_secs.max(1));
                    self.pos
                        .seen
                        .retain(|_, at| rfc3339(at).is_some_and(|a| a >= horizon));
                }
            }
            Some(End::Resume(cursor)) => self.pos.resume = cursor,
            None => {}
        }
    }

    /// Stores the position (after the records it read).
    ///
    /// # Errors
    ///
    /// The ledger failed.
    pub fn save(&self, ledger: &dyn Ledger) -> Result<(), TargetError> {
        ledger.put_value(&self.key, &json!(self.pos))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(id: &str, at: &str) -> Flow {
        serde_json::from_value(json!({"flowId": id, "updatedAt": at})).unwrap()
    }

    fn feed(overlap_secs: i64) -> Feed {
        Feed {
            key: "k".into(),
            filter: json!({}),
            overlap_secs,
            pos: Position::default(),
            end: None,
        }
    }

    #[test]
    fn a_flow_read_is_skipped_until_it_changes() {
        let mut f = feed(0);
        let pending = flow("flow-1", "2026-12-01T11:00:00+01:00");
        assert!(f.is_new(&pending));
        f.handled(&pending);
        assert!(!f.is_new(&pending));
        assert!(f.is_new(&flow("flow-1", "2026-12-01T11:05:00+01:00")));
    }

    #[test]
    fn the_position_moves_only_when_every_page_was_read_and_is_kept_in_utc() {
        let mut f = feed(300);
        f.handled(&flow("old", "2026-12-01T08:00:00Z"));
        f.handled(&flow("new", "2026-12-01T11:00:00+01:00"));
        f.end = Some(End::Resume(Some("c2".into())));
        f.finish();
        assert_eq!(f.pos.resume.as_deref(), Some("c2"));
        assert_eq!(f.pos.updated_after, None);
        f.end = Some(End::Complete(rfc3339("2026-12-01T11:00:00+01:00")));
        f.finish();
        assert_eq!(f.pos.resume, None);
        assert_eq!(
            f.pos.updated_after.as_deref().and_then(rfc3339),
            rfc3339("2026-12-01T10:00:00Z")
        );
        // Flows too old to be listed again are forgotten.
        assert!(f.pos.seen.contains_key("new") && !f.pos.seen.contains_key("old"));
        // Nothing read: the position stays.
        f.finish();
        assert!(f.pos.updated_after.is_some());
    }

    #[test]
    fn a_feed_skips_what_changed_before_it_is_told_and_never_goes_back() {
        let t = rfc3339("2026-12-01T10:00:00Z").unwrap();
        let mut f = feed(0);
        f.skip_before(t);
        assert_eq!(f.pos.updated_after.as_deref().and_then(rfc3339), Some(t));
        f.skip_before(t - chrono::Duration::days(9));
        assert_eq!(f.pos.updated_after.as_deref().and_then(rfc3339), Some(t));
        // A position left far behind (a resumed paging included) jumps forward.
        f.pos.resume = Some("c".into());
        f.skip_before(t + chrono::Duration::days(30));
        assert_eq!(f.pos.resume, None);
        assert_eq!(
            f.pos.updated_after.as_deref().and_then(rfc3339),
            Some(t + chrono::Duration::days(30))
        );
    }
}
