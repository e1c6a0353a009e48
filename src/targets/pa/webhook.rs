//! PA webhooks (notes §7): an optional push that only brings the status poll forward, polling
//! stays the source of truth. This module owns the signature of an event (HMAC-SHA-256 with the
//! webhook's `signingKey`, in the two readings of the spec), its time window, the memory of
//! events already seen (replays), and the registration of facto's callback URL with the PA
//! (`GET` then, when missing, `POST /v1/webhooks`), whose signing key is kept in a `secrecy`
//! type and stored 0600 under the data folder so that a restart verifies without registering
//! again. The key never reaches a log, the ledger or an error message.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::api::{PaApi, PaError};
use crate::fsutil;

/// How far an event's `Afnor-Signature-Timestamp` may be from now, seconds (±5 min).
pub const WINDOW_SECS: i64 = 300;
/// Events remembered against replays: longer than the window, so a replayed event is either
/// remembered or stale.
const REMEMBER: Duration = Duration::from_secs(2 * WINDOW_SECS as u64);
/// Most events remembered (bounded memory whatever the PA sends).
const REMEMBER_MAX: usize = 10_000;
/// The flow types whose changes facto follows: its invoices' acknowledgements and their
/// lifecycle statuses.
pub const FLOW_TYPES: [&str; 2] = ["CustomerInvoice", "CustomerInvoiceLC"];

/// How the PA signs its events (`webhook_signature`); the spec's wording admits both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookSignature {
    /// `hmac-body-ts` (default): HMAC-SHA-256(key, body + "@" + timestamp).
    #[default]
    HmacBodyTs,
    /// `hmac-sha256-of-body-ts`: HMAC-SHA-256(key, SHA-256(body + "@" + timestamp)), the digest
    /// as its 32 bytes.
    HmacSha256OfBodyTs,
}

/// Why an event is refused (answered 401). Never carries the body, the key or the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A signature header is missing or not readable.
    #[error("header {0} is missing or malformed")]
    Header(&'static str),
    /// The timestamp is outside the window (an old event replayed, or a clock far off).
    #[error("the signature timestamp is {0} s away from now (at most {WINDOW_SECS} s)")]
    Stale(i64),
    /// The signature does not match the body and the timestamp.
    #[error("the signature does not match")]
    Signature,
}

/// Errors of the registration.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The Flow API call failed.
    #[error(transparent)]
    Api(#[from] PaError),
    /// The PA does not serve `/v1/webhooks`.
    #[error(
        "the PA does not offer webhooks (404 on /v1/webhooks); remove webhook_url to poll only"
    )]
    Unsupported,
    /// The PA's answer has no `signingKey`.
    #[error("the PA's answer to the webhook registration has no signingKey")]
    NoKey,
    /// The key file cannot be written.
    #[error("cannot store the webhook signing key in {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        error: String,
    },
}

/// The signing key's bytes: the spec gives it as base64 (`format: byte`); a key that is not
/// base64 is used as its text.
fn key_bytes(key: &SecretString) -> Vec<u8> {
    let text = key.expose_secret().trim();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|_| text.as_bytes().to_vec())
}

/// The MAC of an event; `None` only if the key were refused (HMAC takes any length).
fn mac(sig: WebhookSignature, key: &SecretString, body: &[u8], ts: &str) -> Option<Hmac<Sha256>> {
    let mut m = Hmac::<Sha256>::new_from_slice(&key_bytes(key)).ok()?;
    match sig {
        WebhookSignature::HmacBodyTs => {
            m.update(body);
            m.update(b"@");
            m.update(ts.as_bytes());
        }
        WebhookSignature::HmacSha256OfBodyTs => {
            let mut h = Sha256::new();
            h.update(body);
            h.update(b"@");
            h.update(ts.as_bytes());
            m.update(&h.finalize());
        }
    }
    Some(m)
}

/// The `Afnor-Signature` of `body` sent at `ts` (base64), as the PA computes it.
pub fn sign(sig: WebhookSignature, key: &SecretString, body: &[u8], ts: &str) -> Option<String> {
    let m = mac(sig, key, body, ts)?;
    Some(base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes()))
}

/// Checks an event: the timestamp within ±[`WINDOW_SECS`] of `now` (epoch seconds), then the
/// signature over the raw body bytes, compared in constant time.
///
/// # Errors
///
/// The [`Refusal`]: a header missing, a stale timestamp, a signature that does not match.
pub fn verify(
    sig: WebhookSignature,
    key: &SecretString,
    body: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    now: i64,
) -> Result<(), Refusal> {
    const TS: &str = "Afnor-Signature-Timestamp";
    const SIG: &str = "Afnor-Signature";
    let ts_text = timestamp.map(str::trim).ok_or(Refusal::Header(TS))?;
    let ts: i64 = ts_text.parse().map_err(|_| Refusal::Header(TS))?;
    let off = now.saturating_sub(ts);
    if off.saturating_abs() > WINDOW_SECS {
        return Err(Refusal::Stale(off));
    }
    let given = base64::engine::general_purpose::STANDARD
        .decode(signature.map(str::trim).ok_or(Refusal::Header(SIG))?)
        .map_err(|_| Refusal::Header(SIG))?;
    mac(sig, key, body, ts_text)
        .ok_or(Refusal::Signature)?
        .verify_slice(&given)
        .map_err(|_| Refusal::Signature)
}

/// What identifies an event for replays: its flow and the change (`flowId`, `updatedAt`);
/// `None` when the body does not say them.
pub fn event_key(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let id = v.get("flowId")?.as_str()?;
    let at = v.get("updatedAt").and_then(Value::as_str).unwrap_or("");
    Some(format!("{id}@{at}"))
}

/// Events already processed, remembered for twice the window (ten thousand at most).
#[derive(Default)]
pub struct Replays {
    seen: HashSet<String>,
    order: VecDeque<(Instant, String)>,
}

impl Replays {
    /// Whether `key` is new at `now` (and remembers it).
    pub fn first_time(&mut self, key: &str, now: Instant) -> bool {
        while let Some((at, k)) = self.order.front() {
            if now.saturating_duration_since(*at) < REMEMBER && self.order.len() < REMEMBER_MAX {
                break;
            }
            self.seen.remove(k);
            self.order.pop_front();
        }
        if self.seen.contains(key) {
            return false;
        }
        self.seen.insert(key.to_owned());
        self.order.push_back((now, key.to_owned()));
        true
    }

    /// How many events are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The registered webhook as stored (0600) under the data folder.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    webhook_id: String,
    callback_url: String,
    signing_key: String,
}

/// The file keeping a target's webhook signing key.
pub fn key_path(data_dir: &Path, target: &str) -> PathBuf {
    // Connector names come from file names; anything else is hashed rather than trusted in a path.
    let safe = !target.is_empty()
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let name = if safe {
        target.to_owned()
    } else {
        hex::encode(Sha256::digest(target.as_bytes()))
    };
    data_dir.join("pa-webhooks").join(format!("{name}.json"))
}

fn load(file: &Path) -> Option<Stored> {
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

/// The stored signing key of `callback`, if any (to verify before the PA has been asked).
pub fn stored_key(file: &Path, callback: &str) -> Option<SecretString> {
    load(file)
        .filter(|s| s.callback_url == callback)
        .map(|s| SecretString::from(s.signing_key))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    #[serde(default)]
    webhook_id: Option<String>,
    #[serde(default)]
    callback_url: Option<String>,
}

#[derive(Deserialize)]
struct List {
    #[serde(default)]
    webhooks: Vec<Listed>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    #[serde(default)]
    webhook_id: Option<String>,
    #[serde(default)]
    signing_key: Option<String>,
}

/// Makes sure the PA has facto's webhook at `callback` and returns its signing key: kept when
/// the PA still lists the stored webhook; otherwise (never registered, lost by the PA, or a key
/// file lost) the PA's webhooks at this URL that facto cannot verify are removed and a new one
/// is created, its key stored in `file` before it is used.
///
/// # Errors
///
/// The PA cannot be reached or refuses, offers no webhooks, or the key cannot be stored.
pub async fn ensure(
    api: &PaApi,
    callback: &str,
    file: &Path,
) -> Result<SecretString, WebhookError> {
    let url = api.url("/v1/webhooks");
    let list: List = api
        .read(Method::GET, &url, None)
        .await?
        .ok_or(WebhookError::Unsupported)?;
    let here: Vec<&Listed> = list
        .webhooks
        .iter()
        .filter(|w| w.callback_url.as_deref() == Some(callback))
        .collect();
    // A PA that gave no id: the stored key is the one of this URL.
    let kept = load(file)
        .filter(|s| s.callback_url == callback)
        .filter(|s| {
            here.iter().any(|w| {
                s.webhook_id.is_empty() || w.webhook_id.as_deref() == Some(s.webhook_id.as_str())
            })
        });
    // Webhooks of this URL facto cannot verify (a key file lost, a registration whose answer
    // was lost) would only bring refused events: removed.
    for w in &here {
        let Some(id) = w.webhook_id.as_deref() else {
            continue;
        };
        let ours = kept
            .as_ref()
            .is_some_and(|s| s.webhook_id.is_empty() || s.webhook_id == id);
        let plain = id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ours && plain && !id.is_empty() {
            tracing::info!(webhook = %id, "Removing a webhook of this URL whose key facto does not hold.");
            api.delete(&api.url(&format!("/v1/webhooks/{id}"))).await?;
        }
    }
    if let Some(s) = kept {
        return Ok(SecretString::from(s.signing_key));
    }
    // `flowDirection` takes one value: facto follows its invoices' acknowledgements (`Out`)
    // and their lifecycle (`In`), so it filters on the types only.
    let body = json!({"callbackUrl": callback, "flowTypes": FLOW_TYPES});
    let created: Created = api
        .read(Method::POST, &url, Some(&body))
        .await?
        .ok_or(WebhookError::Unsupported)?;
    let key = created.signing_key.ok_or(WebhookError::NoKey)?;
    let stored = Stored {
        webhook_id: created.webhook_id.unwrap_or_default(),
        callback_url: callback.to_owned(),
        signing_key: key,
    };
    let bytes = serde_json::to_vec(&stored).map_err(|e| WebhookError::Io {
        path: file.display().to_string(),
        error: e.to_string(),
    })?;
    fsutil::write_atomic(file, &bytes, Some(0o600)).map_err(|e| WebhookError::Io {
        path: file.display().to_string(),
        error: e.to_string(),
    })?;
    tracing::info!(webhook = %stored.webhook_id, callback = %callback, "Webhook registered with the PA.");
    Ok(SecretString::from(stored.signing_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretString {
        // 32 bytes, base64 as the PA gives it.
        SecretString::from(base64::engine::general_purpose::STANDARD.encode([7u8; 32]))
    }

    #[test]
    fn the_mac_is_rfc_4231_hmac_sha256_with_the_decoded_key() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?". Its data has no
        // `@`, so the MAC is checked through a key that is not base64 (used as its text).
        let k = SecretString::from("Jefe!".to_owned());
        assert_eq!(key_bytes(&k), b"Jefe!");
        let mut m = Hmac::<Sha256>::new_from_slice(&key_bytes(&SecretString::from(
            base64::engine::general_purpose::STANDARD.encode("Jefe"),
        )))
        .unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes()),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
    }

    #[test]
    fn a_fixed_vector_for_each_variant() {
        // Computed independently: Python's hmac.new(b"\x07" * 32, msg, sha256), msg being
        // body + b"@1764583200" (or its SHA-256 digest).
        let body = br#"{"flowId":"f-1","updatedAt":"2026-12-01T10:00:00Z"}"#;
        let a = sign(WebhookSignature::HmacBodyTs, &key(), body, "1764583200").unwrap();
        let b = sign(
            WebhookSignature::HmacSha256OfBodyTs,
            &key(),
            body,
            "1764583200",
        )
        .unwrap();
        assert_eq!(a, VECTOR_A);
        assert_eq!(b, VECTOR_B);
        assert_ne!(a, b);
    }

    const VECTOR_A: &str = "SF8t5rxi5VDpm+ZQtfql0qj//ifNFFSCFCJxuzsndok=";
    const VECTOR_B: &str = "LUT9+cVRvJ7tnUiTRE5MPPkyrJb1fn7DBHsgbDTedKs=";

    #[test]
    fn both_variants_verify_their_own_signature_and_refuse_the_other() {
        let body = br#"{"flowId":"f-1"}"#;
        let now = 1_764_583_200;
        let ts = now.to_string();
        for (v, other) in [
            (
                WebhookSignature::HmacBodyTs,
                WebhookSignature::HmacSha256OfBodyTs,
            ),
            (
                WebhookSignature::HmacSha256OfBodyTs,
                WebhookSignature::HmacBodyTs,
            ),
        ] {
            let s = sign(v, &key(), body, &ts).unwrap();
            assert_eq!(verify(v, &key(), body, Some(&ts), Some(&s), now), Ok(()));
            assert_eq!(
                verify(other, &key(), body, Some(&ts), Some(&s), now),
                Err(Refusal::Signature)
            );
            // One byte of the body changed, or the timestamp, or another key.
            assert_eq!(
                verify(v, &key(), br#"{"flowId":"f-2"}"#, Some(&ts), Some(&s), now),
                Err(Refusal::Signature)
            );
            let ts2 = (now + 1).to_string();
            assert_eq!(
                verify(v, &key(), body, Some(&ts2), Some(&s), now),
                Err(Refusal::Signature)
            );
            let other_key = SecretString::from("b3RoZXI=".to_owned());
            assert_eq!(
                verify(v, &other_key, body, Some(&ts), Some(&s), now),
                Err(Refusal::Signature)
            );
        }
    }

    #[test]
    fn the_timestamp_must_be_within_five_minutes_and_the_headers_readable() {
        let v = WebhookSignature::HmacBodyTs;
        let now = 1_764_583_200;
        let at = |ts: i64| {
            let t = ts.to_string();
            let s = sign(v, &key(), b"{}", &t).unwrap();
            verify(v, &key(), b"{}", Some(&t), Some(&s), now)
        };
        assert_eq!(at(now - 300), Ok(()));
        assert_eq!(at(now + 300), Ok(()));
        assert_eq!(at(now - 301), Err(Refusal::Stale(301)));
        assert_eq!(at(now + 301), Err(Refusal::Stale(-301)));
        let s = sign(v, &key(), b"{}", "x").unwrap();
        assert!(matches!(
            verify(v, &key(), b"{}", Some("x"), Some(&s), now),
            Err(Refusal::Header("Afnor-Signature-Timestamp"))
        ));
        assert!(matches!(
            verify(v, &key(), b"{}", None, Some(&s), now),
            Err(Refusal::Header(_))
        ));
        let t = now.to_string();
        assert_eq!(
            verify(v, &key(), b"{}", Some(&t), Some("not base64!"), now),
            Err(Refusal::Header("Afnor-Signature"))
        );
        assert_eq!(
            verify(v, &key(), b"{}", Some(&t), None, now),
            Err(Refusal::Header("Afnor-Signature"))
        );
        // No input panics: the extremes of the timestamp.
        assert!(verify(v, &key(), b"{}", Some(&i64::MIN.to_string()), Some(&s), now).is_err());
    }

    #[test]
    fn an_event_is_processed_once_and_memory_is_bounded() {
        let mut r = Replays::default();
        let t0 = Instant::now();
        assert!(r.first_time("f-1@a", t0));
        assert!(!r.first_time("f-1@a", t0 + Duration::from_secs(60)));
        assert!(r.first_time("f-1@b", t0), "a new change of the same flow");
        // Forgotten after twice the window (by then the event itself is stale).
        assert!(r.first_time("f-1@a", t0 + REMEMBER + Duration::from_secs(1)));
        let mut r = Replays::default();
        for i in 0..REMEMBER_MAX + 50 {
            r.first_time(&i.to_string(), t0);
        }
        assert!(r.len() <= REMEMBER_MAX, "{}", r.len());
        assert_eq!(
            event_key(br#"{"flowId":"f-9","updatedAt":"2026-12-01T10:00:00Z"}"#).as_deref(),
            Some("f-9@2026-12-01T10:00:00Z")
        );
        assert_eq!(event_key(b"not json"), None);
    }

    #[test]
    fn key_files_stay_in_their_folder() {
        let d = Path::new("/data");
        assert_eq!(key_path(d, "pa"), Path::new("/data/pa-webhooks/pa.json"));
        let p = key_path(d, "../../etc/passwd");
        assert!(p.starts_with("/data/pa-webhooks") && !p.to_string_lossy().contains(".."));
    }
}
