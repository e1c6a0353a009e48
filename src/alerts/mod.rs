//! Alerts (issue 17 §3): when a pass (a daemon pass or a `facto sync`) ends with NEW held,
//! rejected or failed documents, documents changed after delivery, or a target that stopped, one
//! message per pass and channel (never one per document) goes to a signed webhook and/or by
//! e-mail.
//!
//! Never lost, sent at most once as far as the channel allows: [`record`] writes the alert to
//! the ledger (one value per run and channel, `pending`) and flushes it before anything is sent
//! and before the pass's problems are remembered as reported; [`send_pending`] sends every
//! pending alert with the bounded backoff and only then marks it `sent`. A crash in between
//! leaves it pending: the next pass (or start) sends it again, with the same id, which the
//! webhook carries as `Idempotency-Key` and the e-mail as its `Message-ID`.

pub mod config;
pub mod message;
mod smtp;
pub(crate) mod webhook;

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use config::{AlertsConfig, Event, SmtpConfig, TlsMode};
pub use message::Message;

use crate::ledger::{Ledger, LedgerError};
use crate::report::RunReport;

/// Prefix of the alerts' ledger values (`alerts/<run id>/<channel>`).
pub const PREFIX: &str = "alerts/";
/// The ledger value listing the keys of the alerts not yet sent.
const PENDING: &str = "alerts-pending";
/// Per job: whether its last pass stopped early (a stop alerts once, not at every pass).
const STOPPED: &str = "alerts-stopped/";

/// Where an alert goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// The signed webhook.
    Webhook,
    /// E-mail through SMTP.
    Smtp,
}

impl Channel {
    /// Its name in keys and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Smtp => "smtp",
        }
    }
}

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertState {
    /// Recorded, not yet (known to be) sent.
    Pending,
    /// Accepted by the receiver.
    Sent,
    /// Written to the receiver, whose answer was lost: it may have arrived. Not sent again
    /// blindly (an e-mail cannot be looked up); the log and the ledger say so.
    Uncertain,
}

/// One alert for one channel, as the ledger keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    /// `<run id>/<channel>`: the idempotency id the receiver sees.
    pub id: String,
    /// Channel.
    pub channel: Channel,
    /// State.
    pub state: AlertState,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When the receiver accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// Sending attempts that failed (each one retried within its budget).
    pub attempts: u32,
    /// The last failure, without secrets.
    pub last_error: Option<String>,
    /// What is sent.
    pub message: Message,
}

/// Errors of sending one alert.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A setting needed to send is missing (the channel was removed, a variable is unset).
    #[error("{0}")]
    Config(String),
    /// The receiver could not be reached or refused, after retries.
    #[error("{0}")]
    Send(String),
    /// The receiver refused this alert (a 4xx): it stays pending, the channel's other alerts
    /// are still tried.
    #[error("{0}")]
    Refused(String),
    /// The message was written but its answer lost: it may have been accepted.
    #[error("{0}")]
    Uncertain(String),
}

/// Serialises the read-modify-write of the pending list (passes of several jobs record at once).
static INDEX: Mutex<()> = Mutex::new(());
/// One sender at a time in a process: two passes ending together never send one alert twice.
static SENDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

fn pending_keys(ledger: &dyn Ledger) -> Result<Vec<String>, LedgerError> {
    Ok(ledger
        .value(PENDING)?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

/// The channels `[alerts]` sets.
fn channels(a: &AlertsConfig) -> Vec<Channel> {
    let mut c = Vec::new();
    if a.webhook_url.is_some() {
        c.push(Channel::Webhook);
    }
    if a.smtp.is_some() {
        c.push(Channel::Smtp);
    }
    c
}

/// Records the alert of a finished live `sync` pass, if it raises one: one pending value per
/// channel and the pending list, flushed together. Called after the report is saved and before
/// its problems are remembered as reported, so a crash in between raises the alert again rather
/// than never. Returns the alert ids.
///
/// # Errors
///
/// Ledger failure.
pub fn record(
    alerts: Option<&AlertsConfig>,
    ledger: &dyn Ledger,
    report: &RunReport,
) -> Result<Vec<String>, LedgerError> {
    let Some(alerts) = alerts else {
        return Ok(Vec::new());
    };
    let stopped_key = format!("{STOPPED}{}", report.job);
    let was_stopped = ledger
        .value(&stopped_key)?
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let new = crate::fail_on::new_problems(ledger, report)?;
    let message = message::build(report, &new, was_stopped, &alerts.on);
    let mut values = Vec::new();
    if was_stopped != report.error.is_some() {
        values.push((stopped_key, serde_json::Value::Bool(report.error.is_some())));
    }
    let mut ids = Vec::new();
    let _index = INDEX
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(message) = message {
        let mut pending = pending_keys(ledger)?;
        for channel in channels(alerts) {
            let id = format!("{}/{}", report.run_id, channel.as_str());
            let alert = Alert {
                id: id.clone(),
                channel,
                state: AlertState::Pending,
                created_at: Utc::now(),
                sent_at: None,
                attempts: 0,
                last_error: None,
                message: Message {
                    id: id.clone(),
                    ..message.clone()
                },
            };
            values.push((key(&id), serde_json::to_value(&alert).unwrap_or_default()));
            pending.push(key(&id));
            ids.push(id);
        }
        values.push((
            PENDING.to_owned(),
            serde_json::to_value(&pending).unwrap_or_default(),
        ));
        // The problems as reported, in the same batch: a crash cannot leave the alert recorded
        // and its problems still "new" (the next pass would raise them again under a new id).
        values.push(crate::fail_on::remembered(ledger, report)?);
    }
    if !values.is_empty() {
        ledger.put_values(&values)?;
    }
    for id in &ids {
        tracing::info!(alert = %id, "Alert recorded.");
    }
    Ok(ids)
}

/// The alerts not yet sent.
///
/// # Errors
///
/// Ledger failure.
pub fn pending(ledger: &dyn Ledger) -> Result<Vec<Alert>, LedgerError> {
    let mut out = Vec::new();
    for k in pending_keys(ledger)? {
        if let Some(a) = ledger
            .value(&k)?
            .and_then(|v| serde_json::from_value::<Alert>(v).ok())
        {
            if a.state == AlertState::Pending {
                out.push(a);
            }
        }
    }
    Ok(out)
}

/// Stores `alert` and, once sent, takes it off the pending list, with one flush.
fn save(ledger: &dyn Ledger, alert: &Alert) -> Result<(), LedgerError> {
    let _index = INDEX
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let k = key(&alert.id);
    let mut values = vec![(k.clone(), serde_json::to_value(alert).unwrap_or_default())];
    if alert.state != AlertState::Pending {
        let mut pending = pending_keys(ledger)?;
        pending.retain(|p| *p != k);
        values.push((
            PENDING.to_owned(),
            serde_json::to_value(&pending).unwrap_or_default(),
        ));
    }
    ledger.put_values(&values)
}

async fn send_one(alerts: Option<&AlertsConfig>, alert: &Alert) -> Result<(), AlertError> {
    let Some(a) = alerts else {
        return Err(AlertError::Config(
            "[alerts] is no longer set; the alert waits until it is".into(),
        ));
    };
    match alert.channel {
        Channel::Webhook => webhook::send(a, &alert.message).await,
        Channel::Smtp => smtp::send(a, &alert.message).await,
    }
}

/// Sends every pending alert (those of this pass, and any a crash or a failed attempt left),
/// each marked `sent` once its receiver accepted it; one that still fails stays pending for the
/// next pass. Returns how many were sent.
///
/// # Errors
///
/// Ledger failure (sending failures are logged and kept in the alert).
pub async fn send_pending(
    alerts: Option<&AlertsConfig>,
    ledger: &dyn Ledger,
) -> Result<usize, LedgerError> {
    let _one = SENDING.lock().await;
    let mut sent = 0;
    // A channel whose receiver failed this round is not tried again before the next pass: a
    // receiver that is down costs one attempt's budget per pass, not one per pending alert.
    let mut down: Vec<&'static str> = Vec::new();
    for mut alert in pending(ledger)? {
        if down.contains(&alert.channel.as_str()) {
            continue;
        }
        // Test-only: a crash after the record, before the send.
        crate::fault::point("alert-recorded", alert.channel.as_str());
        match send_one(alerts, &alert).await {
            Ok(()) => {
                alert.state = AlertState::Sent;
                alert.sent_at = Some(Utc::now());
                save(ledger, &alert)?;
                tracing::info!(alert = %alert.id, "Alert sent.");
                sent += 1;
            }
            Err(AlertError::Uncertain(e)) => {
                // Off the pending list like a sent one: never sent twice blindly.
                alert.state = AlertState::Uncertain;
                alert.last_error = Some(e.clone());
                save(ledger, &alert)?;
                tracing::error!(alert = %alert.id, error = %e, "Alert perhaps delivered; it is not sent again.");
            }
            Err(e) => {
                if !matches!(e, AlertError::Refused(_)) {
                    down.push(alert.channel.as_str());
                }
                alert.attempts = alert.attempts.saturating_add(1);
                alert.last_error = Some(e.to_string());
                save(ledger, &alert)?;
                tracing::warn!(alert = %alert.id, error = %e, "Alert not sent; it stays pending for the next pass.");
            }
        }
    }
    Ok(sent)
}

/// [`send_pending`] at the end of a pass, its failures logged (a pass never fails for an alert).
pub async fn after_pass(alerts: Option<&AlertsConfig>, ledger: &dyn Ledger) {
    if let Err(e) = send_pending(alerts, ledger).await {
        tracing::error!(error = %e, "Pending alerts unreadable; they are sent after the next pass.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ProblemLine;

    fn alerts() -> AlertsConfig {
        let text = "webhook_url = \"http://127.0.0.1:9/x\"\nwebhook_secret_env = \"K\"\n[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"a@b.fr\"\nto = [\"c@d.fr\"]\n";
        toml::from_str(text).unwrap()
    }

    fn report(run: &str, docs: &[&str]) -> RunReport {
        let mut r = RunReport::new(run, "sync", "demo", false);
        r.problems = docs
            .iter()
            .map(|d| ProblemLine {
                target: "fec".into(),
                doc_id: (*d).into(),
                number: (*d).into(),
                customer: "ACME".into(),
                status: "held".into(),
                field: "tax_code".into(),
                reason: "no mapping".into(),
                fix: "map it".into(),
            })
            .collect();
        r
    }

    #[test]
    fn one_pending_alert_per_channel_and_none_for_problems_already_reported() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = crate::ledger::sled::SledLedger::open(dir.path()).unwrap();
        let a = alerts();
        let r1 = report("r1", &["1", "2"]);
        let ids = record(Some(&a), &ledger, &r1).unwrap();
        assert_eq!(ids, vec!["r1/webhook", "r1/smtp"]);
        crate::fail_on::remember(&ledger, &r1).unwrap();
        let p = pending(&ledger).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].message.problems.len(), 1, "two documents, one group");
        assert_eq!(p[0].message.id, "r1/webhook");
        // The same problems again: nothing new, no alert.
        assert!(record(Some(&a), &ledger, &report("r2", &["1", "2"]))
            .unwrap()
            .is_empty());
        // Without [alerts], nothing is recorded.
        assert!(record(None, &ledger, &report("r3", &["9"]))
            .unwrap()
            .is_empty());
        // Sent: off the pending list, kept in the ledger.
        let mut sent = p[0].clone();
        sent.state = AlertState::Sent;
        save(&ledger, &sent).unwrap();
        let left = pending(&ledger).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, "r1/smtp");
        assert!(ledger.value("alerts/r1/webhook").unwrap().is_some());
    }
}
