//! Sending the outbox: one POST per event, signed, in order, each retried within the bounded
//! backoff; one sender at a time across the process and the workers sharing the ledger.

use std::time::Duration;

use secrecy::SecretString;

use super::{outbox, Queued, OUTBOX};
use crate::alerts::webhook::{signature, signed};
use crate::ledger::Ledger;
use crate::retry::{self, RetryPolicy};

/// Why the outbox was not (all) sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A setting is missing (the secret's variable is unset).
    #[error("{0}")]
    Config(String),
    /// The receiver could not be reached or failed, after retries: the rest waits.
    #[error("{0}")]
    Send(String),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
}

enum Outcome {
    Sent,
    /// A 4xx: this event is refused, the next ones may go.
    Refused(String),
}

/// Sends every event of the outbox not refused, oldest first; stops at the first that cannot
/// be delivered (the receiver is down: the order is kept). One sender at a time per `tenant`,
/// across the process and the workers sharing its ledger. Returns how many were sent.
///
/// # Errors
///
/// The `[events]` secret unset, the receiver unreachable, the ledger failing.
pub async fn send_pending(
    ev: &super::EventsConfig,
    ledger: &dyn Ledger,
    tenant: &str,
) -> Result<usize, SendError> {
    let key = std::env::var(&ev.webhook_secret_env)
        .ok()
        .filter(|k| !k.is_empty())
        .map(SecretString::from)
        .ok_or_else(|| {
            SendError::Config(format!(
                "[events] the variable {} (webhook_secret_env) is not set",
                ev.webhook_secret_env
            ))
        })?;
    let sent = crate::targets::one_at_a_time(ledger, &format!("events-outbox/{tenant}"), async {
        let mut sent = 0;
        for mut q in outbox(ledger)?.into_iter().filter(|q| !q.refused) {
            match post(&ev.webhook_url, &key, ev.send_budget_secs, &q).await {
                Ok(Outcome::Sent) => {
                    ledger.put_entries(OUTBOX, &[(vec![q.event.id.clone()], None)])?;
                    sent += 1;
                }
                Ok(Outcome::Refused(why)) => {
                    tracing::warn!(event = %q.event.id, error = %why, "Document event refused by the receiver; kept in the outbox.");
                    q.refused = true;
                    q.attempts += 1;
                    q.last_error = Some(why);
                    keep(ledger, &q)?;
                }
                Err(why) => {
                    q.attempts += 1;
                    q.last_error = Some(why.clone());
                    keep(ledger, &q)?;
                    return Err(SendError::Send(why));
                }
            }
        }
        Ok(sent)
    })
    .await
    .map_err(|e| SendError::Send(e.to_string()))??;
    Ok(sent)
}

fn keep(ledger: &dyn Ledger, q: &Queued) -> Result<(), SendError> {
    let v = serde_json::to_value(q).map_err(|e| {
        SendError::Ledger(crate::ledger::LedgerError::Corrupt {
            key: OUTBOX.into(),
            detail: e.to_string(),
        })
    })?;
    ledger.put_entries(OUTBOX, &[(vec![q.event.id.clone()], Some(v))])?;
    Ok(())
}

async fn post(url: &str, key: &SecretString, budget: u64, q: &Queued) -> Result<Outcome, String> {
    let body = serde_json::to_vec(&q.event).unwrap_or_default();
    // No redirect is followed: a 3xx is no delivery.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    // Errors name the origin only: a hook's path or query is often its secret.
    let origin = url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let budget = Duration::from_secs(budget.max(1));
    let policy = RetryPolicy {
        max_elapsed: budget,
        max_retry_after: budget,
        ..RetryPolicy::default()
    };
    let resp = retry::send(policy, &origin, || {
        let ts = chrono::Utc::now().timestamp().to_string();
        client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Facto-Signature", signature(key, &signed(&ts, &body)))
            .header("X-Facto-Timestamp", ts)
            .header("Idempotency-Key", &q.event.id)
            .body(body.clone())
    })
    .await;
    match resp {
        Ok(r) if r.status().is_success() => Ok(Outcome::Sent),
        Ok(r) => Err(format!("{origin}: HTTP {}", r.status().as_u16())),
        // The receiver refuses this event (malformed, conflict, too large, unprocessable): the
        // next ones may go. Any other answer (401, 403, 404: a wrong secret or URL; 408, 429)
        // is the receiver's state: the outbox waits, in order.
        Err(retry::HttpFailure::Refused { status, .. })
            if matches!(status, 400 | 409 | 410 | 413 | 415 | 422) =>
        {
            Ok(Outcome::Refused(format!("{origin}: HTTP {status}")))
        }
        Err(e) => Err(e.to_string()),
    }
}
