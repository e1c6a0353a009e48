//! Document events for the invoicing application (issue 16 §3): `[events]` in `facto.toml`
//! names a webhook to which facto POSTs, for each document, what the application needs to hear
//! back: `delivered`, `accepted`, `held` (with the problems and their fix), `failed`,
//! `rejected`, `paid`, `changed-after-delivery`. Signed as the alerts are (`X-Facto-Signature:
//! sha256=<hex HMAC-SHA-256 of the timestamp, a dot and the body>`, `X-Facto-Timestamp`,
//! `Idempotency-Key`).
//!
//! Never lost: [`record`] compares each record of the ledger with what was last announced for
//! it (entry space `events-seen`) and writes the new events to the outbox (entry space
//! `events-out`), flushed, before it marks them announced; [`send_pending`] sends the outbox in
//! order, with the bounded backoff, and removes an event only once the receiver took it. An
//! event's id is derived from what it says, so one recorded twice (a crash between the two
//! writes) is the same event, which the receiver drops by its id. A receiver that is down keeps
//! the events, in order, for the next pass, and so does one that answers 401, 403 or 404 (a
//! wrong secret or URL); one that refuses an event (400, 409, 410, 413, 415, 422) has it kept
//! in the outbox as `refused`, logged, and the others still go.

mod send;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use send::send_pending;

use crate::ledger::{Ledger, LedgerError, Record, RecordFilter, State};
use crate::problem::Problem;
use crate::toml_file::{ConfigError, Spans};

/// Entry space of what was last announced per record: parts (job, target, document id).
pub const SEEN: &str = "events-seen";
/// Entry space of the events to send: part (event id).
pub const OUTBOX: &str = "events-out";

/// `[events]` as written by the admin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Where each event's JSON is POSTed (`http` or `https`).
    pub webhook_url: String,
    /// Environment variable holding the HMAC-SHA-256 key that signs each event.
    pub webhook_secret_env: String,
    /// Which events are sent. Default: all.
    #[serde(default = "all_kinds")]
    pub on: Vec<Kind>,
    /// Only the documents of these jobs. Default: every job.
    #[serde(default)]
    pub jobs: Vec<String>,
    /// Give up one sending attempt after this long, seconds (the event stays in the outbox).
    /// Default 30.
    #[serde(default = "thirty")]
    pub send_budget_secs: u64,
}

fn thirty() -> u64 {
    30
}

/// What happened to a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Delivered to the target (written to a journal file, or taken by the API).
    Delivered,
    /// Accepted by the target after processing.
    Accepted,
    /// Held back by the mapping or the checks: the problems say the field and the fix.
    Held,
    /// Refused by the target at delivery.
    Failed,
    /// Rejected by the target after delivery.
    Rejected,
    /// Paid, as the target reports it.
    Paid,
    /// Changed in the source after delivery (never sent again).
    ChangedAfterDelivery,
}

fn all_kinds() -> Vec<Kind> {
    vec![
        Kind::Delivered,
        Kind::Accepted,
        Kind::Held,
        Kind::Failed,
        Kind::Rejected,
        Kind::Paid,
        Kind::ChangedAfterDelivery,
    ]
}

impl Kind {
    /// The event a record's state announces, if any (a claim or a release is a step, not news).
    fn of_state(s: State) -> Option<Kind> {
        match s {
            State::Delivered => Some(Kind::Delivered),
            State::Accepted => Some(Kind::Accepted),
            State::Held => Some(Kind::Held),
            State::Failed => Some(Kind::Failed),
            State::Rejected => Some(Kind::Rejected),
            State::Paid => Some(Kind::Paid),
            State::Claimed | State::Released => None,
        }
    }
}

impl EventsConfig {
    /// Checks the section; errors name the file and the line.
    ///
    /// # Errors
    ///
    /// A URL that is not http(s), a variable name that is not one, an unknown job.
    pub fn validate(&self, path: &Path, text: &str, jobs: &[&str]) -> Result<(), ConfigError> {
        let spans = Spans::new(text);
        let at = |key: &str, msg: String| {
            let line = spans
                .line(&["events".into(), crate::toml_file::Step::Key(key)])
                .or_else(|| spans.line(&["events".into()]));
            ConfigError::at(path, line, format!("[events] {msg}"))
        };
        match url::Url::parse(&self.webhook_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                return Err(at(
                    "webhook_url",
                    format!("webhook_url `{}` is not an http(s) URL", self.webhook_url),
                ))
            }
        }
        let n = &self.webhook_secret_env;
        if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(at(
                "webhook_secret_env",
                format!("webhook_secret_env `{n}` is not an environment variable name"),
            ));
        }
        if let Some(j) = self.jobs.iter().find(|j| !jobs.contains(&j.as_str())) {
            return Err(at(
                "jobs",
                format!("names job `{j}`, which facto.toml does not define"),
            ));
        }
        Ok(())
    }

    fn covers(&self, job: &str) -> bool {
        self.jobs.is_empty() || self.jobs.iter().any(|j| j == job)
    }
}

/// One event, as the receiver gets it (and the outbox keeps it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocEvent {
    /// Stable id: the same news always has the same id (`Idempotency-Key`).
    pub id: String,
    /// What happened.
    pub event: Kind,
    /// When facto saw it.
    pub at: DateTime<Utc>,
    /// The tenant (`default` for a single company).
    pub tenant: String,
    /// The job.
    pub job: String,
    /// The target.
    pub target: String,
    /// The document's id in the invoicing application.
    pub document_id: String,
    /// Its number.
    pub number: String,
    /// Its state at the target.
    pub state: String,
    /// The target's id for it, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// The target's last status, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_status: Option<String>,
    /// Why it is held, failed or rejected: the field, what is wrong, the fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// The last error the target gave, without secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `changed-after-delivery`: the fields that changed, as delivered and as now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<crate::ledger::FieldChange>,
}

/// An event in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queued {
    /// The event.
    pub event: DocEvent,
    /// Sending attempts that failed.
    #[serde(default)]
    pub attempts: u32,
    /// The last failure, without secrets.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The receiver refused it (a 4xx): kept, not sent again until an admin sends it again or
    /// removes it (`facto events resend` / `facto events discard`).
    #[serde(default)]
    pub refused: bool,
}

/// What was last announced of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    state: State,
    hash: String,
    #[serde(default)]
    changed: Option<String>,
    /// The last step of the record's history then.
    #[serde(default)]
    at: Option<DateTime<Utc>>,
}

fn seen_of(r: &Record) -> Seen {
    Seen {
        state: r.state,
        hash: r.source_hash.clone(),
        changed: r
            .changed_after_delivery
            .as_ref()
            .map(|c| c.source_hash.clone()),
        at: r.history.last().map(|e| e.at),
    }
}

fn event_id(r: &Record, kind: Kind, detail: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        r.key.job.as_str(),
        r.key.target.as_str(),
        r.key.doc_id.as_str(),
        &format!("{kind:?}"),
        detail,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("evt_{}", &hex::encode(h.finalize())[..32])
}

/// The events a record's change since `before` announces: the steps of its history since then
/// (a document delivered, then found paid in the same run, is told both), then its state now.
/// Nothing from before `since` (when `[events]` was set): the receiver is not flooded with the
/// past.
fn news(
    r: &Record,
    before: Option<&Seen>,
    since: DateTime<Utc>,
    tenant: &str,
    on: &[Kind],
) -> Vec<DocEvent> {
    let now = seen_of(r);
    let mut out = Vec::new();
    let base = |kind: Kind, state: State, detail: &str| DocEvent {
        id: event_id(r, kind, detail),
        event: kind,
        at: Utc::now(),
        tenant: tenant.to_owned(),
        job: r.key.job.clone(),
        target: r.key.target.clone(),
        document_id: r.key.doc_id.clone(),
        number: r.number.clone(),
        state: state.as_str().to_owned(),
        remote_id: r.remote_id.clone(),
        remote_status: r.remote_status.clone(),
        problems: Vec::new(),
        error: None,
        changes: Vec::new(),
    };
    let after = before.and_then(|b| b.at).unwrap_or(since).max(since);
    let steps: Vec<_> = r.history.iter().filter(|e| e.at > after).collect();
    // Every step but the last (the state now, told below with its problems).
    for e in steps.iter().take(steps.len().saturating_sub(1)) {
        if let Some(kind) = Kind::of_state(e.state) {
            out.push(base(
                kind,
                e.state,
                &format!("{}:{}", e.state.as_str(), e.at),
            ));
        }
    }
    let recent = r.history.last().is_none_or(|e| e.at > since);
    let moved = before.is_none_or(|b| b.state != now.state || b.hash != now.hash);
    if let Some(kind) = Kind::of_state(r.state).filter(|_| moved && recent) {
        // A held document is news again when a new version of it is held.
        let detail = format!("{}:{}", r.state.as_str(), r.source_hash);
        let mut e = base(kind, r.state, &detail);
        if matches!(kind, Kind::Held | Kind::Failed | Kind::Rejected) {
            e.problems.clone_from(&r.problems);
            e.error.clone_from(&r.last_error);
        }
        out.push(e);
    }
    if let Some(c) = r
        .changed_after_delivery
        .as_ref()
        .filter(|c| c.detected_at > since)
    {
        if before.and_then(|b| b.changed.as_ref()) != Some(&c.source_hash) {
            let mut e = base(Kind::ChangedAfterDelivery, r.state, &c.source_hash);
            e.changes.clone_from(&c.changes);
            out.push(e);
        }
    }
    out.retain(|e| on.contains(&e.event));
    out
}

/// The ledger value holding when `[events]` began for job `job`.
fn since_key(job: &str) -> String {
    format!("events-since/{job}")
}

/// Notes, once per job, that `[events]` begins now: the news of what happens from then on is
/// sent, not the past of a ledger that had records before. Called before a run's passes (so
/// their news is sent); [`record`] calls it too.
///
/// # Errors
///
/// Ledger failure.
pub fn begin(ev: &EventsConfig, jobs: &[&str], ledger: &dyn Ledger) -> Result<(), LedgerError> {
    for job in jobs.iter().filter(|j| ev.covers(j)) {
        if ledger.value(&since_key(job))?.is_none() {
            ledger.put_value(
                &since_key(job),
                &serde_json::Value::String(Utc::now().to_rfc3339()),
            )?;
        }
    }
    Ok(())
}

fn since(ledger: &dyn Ledger, job: &str) -> Result<DateTime<Utc>, LedgerError> {
    Ok(ledger
        .value(&since_key(job))?
        .and_then(|v| {
            v.as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        })
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc)))
}

/// Serialises the recording of one tenant within this process (the daemon's passes end
/// together).
fn recording(tenant: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static LOCKS: crate::targets::named_lock::Locks = std::sync::OnceLock::new();
    crate::targets::named_lock::keyed(&LOCKS, tenant)
}

fn corrupt(e: serde_json::Error) -> LedgerError {
    LedgerError::Corrupt {
        key: OUTBOX.into(),
        detail: e.to_string(),
    }
}

/// Records the news of every record of the jobs among `jobs` that `[events]` (`ev`) covers:
/// the events in the outbox first (flushed), then what was announced. Returns how many events
/// were recorded.
///
/// # Errors
///
/// Ledger failure (nothing is marked announced that is not in the outbox).
pub fn record(
    ev: &EventsConfig,
    jobs: &[&str],
    ledger: &dyn Ledger,
    tenant: &str,
) -> Result<usize, LedgerError> {
    let lock = recording(tenant);
    let _one = lock.blocking_lock();
    begin(ev, jobs, ledger)?;
    let mut recorded = 0;
    for job in jobs.iter().filter(|j| ev.covers(j)) {
        let since = since(ledger, job)?;
        let seen: BTreeMap<Vec<String>, Seen> = ledger
            .entries(SEEN, &[job])?
            .into_iter()
            .filter_map(|(k, v)| Some((k, serde_json::from_value(v).ok()?)))
            .collect();
        let mut events = Vec::new();
        let mut marks = Vec::new();
        ledger.visit(
            &RecordFilter {
                job: Some((*job).to_owned()),
                ..Default::default()
            },
            &mut |r| {
                let k = vec![r.key.target.clone(), r.key.doc_id.clone()];
                let before = seen.get(&k);
                let now = seen_of(&r);
                if before == Some(&now) || matches!(r.state, State::Claimed | State::Released) {
                    return Ok(());
                }
                events.extend(news(&r, before, since, tenant, &ev.on));
                let mut parts = vec![(*job).to_owned()];
                parts.extend(k);
                marks.push((parts, Some(serde_json::to_value(&now).map_err(corrupt)?)));
                Ok(())
            },
        )?;
        if marks.is_empty() {
            continue;
        }
        let out: Vec<_> = events
            .into_iter()
            .map(|e| {
                let q = Queued {
                    event: e,
                    attempts: 0,
                    last_error: None,
                    refused: false,
                };
                Ok((
                    vec![q.event.id.clone()],
                    Some(serde_json::to_value(&q).map_err(corrupt)?),
                ))
            })
            .collect::<Result<_, LedgerError>>()?;
        recorded += out.len();
        for chunk in out.chunks(1000) {
            ledger.put_entries(OUTBOX, chunk)?;
        }
        for chunk in marks.chunks(1000) {
            ledger.put_entries(SEEN, chunk)?;
        }
    }
    Ok(recorded)
}

/// The events waiting in the outbox, oldest first.
///
/// # Errors
///
/// Ledger failure.
pub fn outbox(ledger: &dyn Ledger) -> Result<Vec<Queued>, LedgerError> {
    let mut q: Vec<Queued> = ledger
        .entries(OUTBOX, &[])?
        .into_iter()
        .map(|(k, v)| {
            serde_json::from_value(v).map_err(|e| LedgerError::Corrupt {
                key: format!("{OUTBOX}/{}", k.join("/")),
                detail: e.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    q.sort_by(|a, b| (a.event.at, &a.event.id).cmp(&(b.event.at, &b.event.id)));
    Ok(q)
}

/// Makes refused events of the outbox go again at the next pass (`id`: that one, else every
/// refused one), their attempts counted from zero; returns the ids.
///
/// # Errors
///
/// Ledger failure.
pub fn resend(ledger: &dyn Ledger, id: Option<&str>) -> Result<Vec<String>, LedgerError> {
    let mut again = Vec::new();
    for mut q in outbox(ledger)? {
        if !q.refused || id.is_some_and(|i| i != q.event.id) {
            continue;
        }
        q.refused = false;
        q.attempts = 0;
        let v = serde_json::to_value(&q).map_err(corrupt)?;
        again.push((vec![q.event.id], Some(v)));
    }
    // In one write: all of them go again, or none.
    if !again.is_empty() {
        ledger.put_entries(OUTBOX, &again)?;
    }
    Ok(again
        .into_iter()
        .filter_map(|(k, _)| k.into_iter().next())
        .collect())
}

/// Removes event `id` from the outbox (never sent, or refused); `false` when it is not there.
///
/// # Errors
///
/// Ledger failure.
pub fn discard(ledger: &dyn Ledger, id: &str) -> Result<bool, LedgerError> {
    if !outbox(ledger)?.iter().any(|q| q.event.id == id) {
        return Ok(false);
    }
    ledger.put_entries(OUTBOX, &[(vec![id.to_owned()], None)])?;
    Ok(true)
}

/// Records the news (on a blocking thread: it reads every record of the jobs), then sends the
/// outbox: what a pass (or a status poll) ends with. Failures are logged; what was not sent
/// stays for the next time.
pub async fn after_pass(
    ev: Option<&EventsConfig>,
    jobs: &[&str],
    ledger: &dyn Ledger,
    tenant: &str,
) {
    let Some(ev) = ev else {
        return;
    };
    let (e, names, l, t) = (
        ev.clone(),
        jobs.iter().map(|j| (*j).to_owned()).collect::<Vec<_>>(),
        ledger.shared(),
        tenant.to_owned(),
    );
    let recorded = tokio::task::spawn_blocking(move || {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        record(&e, &names, &*l, &t)
    })
    .await;
    match recorded {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "Document events could not be recorded; they will be at the next pass.")
        }
        Err(e) => {
            tracing::error!(error = %e, "Document events could not be recorded; they will be at the next pass.")
        }
    }
    if let Err(e) = send_pending(ev, ledger, tenant).await {
        tracing::warn!(error = %e, "Document events not sent; they stay in the outbox.");
    }
}

#[cfg(test)]
mod tests;
