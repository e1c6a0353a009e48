//! The PA's webhooks in the daemon: for each `afnor-pa` target with a `webhook_url`, a task keeps
//! the webhook registered (at start, then every hour in case the PA lost it), and the endpoint
//! `POST /api/v1/pa/{target}/webhook` (open: the PA calls it, with a signature instead of the
//! admin token) checks an event and only brings that target's status poll forward. Polling
//! stays the source of truth: an event lost, refused or ignored changes nothing but the delay.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::{watch, Notify};

use super::api::Server;
use crate::config::{Config, Connector};
use crate::targets::pa::api::PaApi;
use crate::targets::pa::config::PaConfig;
use crate::targets::pa::webhook::{self, Replays, WebhookSignature};

/// Largest event body accepted (a `Flow` is well under a kilobyte).
pub(super) const MAX_BODY: usize = 64 * 1024;
/// How often a registered webhook is checked again (the PA may have lost it).
const RECHECK: Duration = Duration::from_secs(3600);
/// How soon a failed registration is tried again.
const RETRY: Duration = Duration::from_secs(300);

/// Targets whose status poll a webhook event brought forward, and the wake-up of the status
/// loop.
#[derive(Default)]
pub(super) struct Soon {
    targets: Mutex<BTreeSet<String>>,
    wake: Notify,
}

impl Soon {
    /// Asks for a poll of `target` now (one wake-up is kept if the loop is busy polling).
    fn bring_forward(&self, target: &str) {
        self.targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(target.to_owned());
        self.wake.notify_one();
    }

    /// Waits for an event.
    pub(super) async fn notified(&self) {
        self.wake.notified().await;
    }

    /// The targets asked for since the last poll (a scheduled poll covers them all).
    pub(super) fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.targets.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// One target's webhook: its signature variant and, once known, its signing key.
struct Hook {
    signature: WebhookSignature,
    callback: String,
    pa: PaConfig,
    key: Mutex<Option<SecretString>>,
}

/// The webhooks of the daemon's targets and what their events share.
pub(super) struct Webhooks {
    hooks: BTreeMap<String, Hook>,
    replays: Mutex<Replays>,
    /// Wakes the status loop.
    poll: Arc<Soon>,
    data_dir: PathBuf,
}

impl Webhooks {
    /// The webhooks of the jobs' `afnor-pa` targets that name a `webhook_url`, with the keys
    /// stored by an earlier start (so events verify before the PA has been asked again).
    pub(super) fn new(cfg: &Config, poll: Arc<Soon>) -> Arc<Self> {
        let mut hooks = BTreeMap::new();
        for name in cfg.jobs.iter().flat_map(|j| &j.targets) {
            let Some(Connector::AfnorPa(pa)) = cfg.connectors.get(name) else {
                continue;
            };
            let Some(callback) = pa.webhook_url.clone() else {
                continue;
            };
            let key = webhook::stored_key(&webhook::key_path(&cfg.data_dir, name), &callback);
            hooks.insert(
                name.clone(),
                Hook {
                    signature: pa.webhook_signature,
                    callback,
                    pa: pa.clone(),
                    key: Mutex::new(key),
                },
            );
        }
        Arc::new(Webhooks {
            hooks,
            replays: Mutex::default(),
            poll,
            data_dir: cfg.data_dir.clone(),
        })
    }

    /// Starts one registration task per webhook; they end when `stop` turns true.
    pub(super) fn keep_registered(
        self: &Arc<Self>,
        stop: &watch::Receiver<bool>,
        tasks: &mut tokio::task::JoinSet<()>,
    ) {
        for name in self.hooks.keys() {
            tasks.spawn(register(Arc::clone(self), name.clone(), stop.clone()));
        }
    }
}

async fn register(hooks: Arc<Webhooks>, name: String, mut stop: watch::Receiver<bool>) {
    let Some(hook) = hooks.hooks.get(&name) else {
        return;
    };
    let file = webhook::key_path(&hooks.data_dir, &name);
    loop {
        let outcome = match PaApi::new(&hook.pa) {
            // Stopping does not wait for the PA: a registration cut short leaves a webhook
            // without a stored key, which the next start replaces.
            Ok(api) => tokio::select! {
                r = webhook::ensure(&api, &hook.callback, &file) => r.map_err(|e| e.to_string()),
                _ = stop.changed() => return,
            },
            Err(e) => Err(e.to_string()),
        };
        let again = match outcome {
            Ok(key) => {
                *hook.key.lock().unwrap_or_else(PoisonError::into_inner) = Some(key);
                RECHECK
            }
            Err(e) => {
                tracing::warn!(target = %name, error = %e, "Webhook registration failed; polling goes on, trying again later.");
                RETRY
            }
        };
        tokio::select! {
            () = tokio::time::sleep(again) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

fn answer(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// `POST /api/v1/pa/{target}/webhook`: 200 at once for a correctly signed event, which wakes
/// the status poll (once per event: replays are ignored); 401 for a missing, stale or wrong
/// signature, logged without the body; 404 for a target without a webhook; 503 while the key
/// is not known yet (the PA sends again).
pub(super) async fn receive(
    State(server): State<Arc<Server>>,
    Path(target): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let hooks = &server.webhooks;
    let Some(hook) = hooks.hooks.get(&target) else {
        return answer(StatusCode::NOT_FOUND, "no webhook for this target");
    };
    let key = hook
        .key
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let Some(key) = key else {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "the webhook is not registered yet",
        );
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = header("afnor-signature");
    if let Err(r) = webhook::verify(
        hook.signature,
        &key,
        &body,
        header("afnor-signature-timestamp"),
        signature,
        chrono::Utc::now().timestamp(),
    ) {
        tracing::warn!(target = %target, reason = %r, bytes = body.len(), "Webhook event refused.");
        return answer(StatusCode::UNAUTHORIZED, "signature refused");
    }
    // Without flowId the signature names the event (a replay carries the same one).
    let event = webhook::event_key(&body).unwrap_or_else(|| signature.unwrap_or("").to_owned());
    let first = hooks
        .replays
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .first_time(&format!("{target}:{event}"), Instant::now());
    if first {
        tracing::info!(target = %target, "Webhook event; status poll brought forward.");
        hooks.poll.bring_forward(&target);
    } else {
        tracing::debug!(target = %target, "Webhook event already processed; ignored.");
    }
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::Soon;

    #[tokio::test]
    async fn an_event_wakes_the_status_loop_for_its_target_only() {
        let soon = Soon::default();
        soon.bring_forward("pa");
        soon.bring_forward("pa");
        // The wake-up is kept for a loop that was busy polling.
        tokio::time::timeout(std::time::Duration::from_secs(1), soon.notified())
            .await
            .unwrap();
        assert_eq!(soon.take().into_iter().collect::<Vec<_>>(), ["pa"]);
        assert!(soon.take().is_empty());
    }
}
