//! The webhook channel: the alert's JSON POSTed with `X-Facto-Signature: sha256=<hex
//! HMAC-SHA-256 of the timestamp, a dot and the body>` (key from the environment), `X-Facto-Timestamp` and
//! `Idempotency-Key` (the alert id: a receiver drops a second delivery after a crash). Retried
//! on transport errors, 408, 429 and 5xx within the bounded backoff (the idempotency key makes a
//! repeat harmless).

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::{AlertError, AlertsConfig, Message};
use crate::retry::{self, RetryPolicy};

/// `sha256=<hex>` of `body` under `key`.
pub(crate) fn signature(key: &SecretString, body: &[u8]) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.expose_secret().as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What the signature covers: the timestamp, a dot, then the body's exact bytes.
pub(crate) fn signed(ts: &str, body: &[u8]) -> Vec<u8> {
    let mut text = Vec::with_capacity(ts.len() + 1 + body.len());
    text.extend_from_slice(ts.as_bytes());
    text.push(b'.');
    text.extend_from_slice(body);
    text
}

/// The sending budget of one attempt.
pub(super) fn policy(a: &AlertsConfig) -> RetryPolicy {
    let budget = Duration::from_secs(a.send_budget_secs.max(1));
    RetryPolicy {
        max_elapsed: budget,
        max_retry_after: budget,
        ..RetryPolicy::default()
    }
}

/// Sends `message` to the webhook.
pub(super) async fn send(a: &AlertsConfig, message: &Message) -> Result<(), AlertError> {
    let (Some(url), Some(var)) = (&a.webhook_url, &a.webhook_secret_env) else {
        return Err(AlertError::Config(
            "[alerts] webhook_url is no longer set; the alert waits until it is".into(),
        ));
    };
    let key = std::env::var(var)
        .ok()
        .filter(|k| !k.is_empty())
        .map(SecretString::from)
        .ok_or_else(|| {
            AlertError::Config(format!(
                "the variable {var} (webhook_secret_env) is not set"
            ))
        })?;
    let body = serde_json::to_vec(message).unwrap_or_default();
    // No redirect is followed: a 3xx is no delivery (the body would be dropped or re-posted
    // elsewhere), so the alert stays pending.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| AlertError::Send(e.to_string()))?;
    // Errors name the origin only: a hook's path or query is often its secret.
    let origin = url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let resp = retry::send(policy(a), &origin, || {
        // The signature covers the timestamp: a captured alert cannot be replayed as fresh.
        let ts = chrono::Utc::now().timestamp().to_string();
        client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Facto-Signature", signature(&key, &signed(&ts, &body)))
            .header("X-Facto-Timestamp", ts)
            .header("Idempotency-Key", &message.id)
            .body(body.clone())
    })
    .await
    .map_err(|e| match e {
        // A 4xx answers this alert (too large, unprocessable...), not the channel: the alerts
        // after it are still tried. A 408 is the receiver's state, like a 5xx or a 429.
        retry::HttpFailure::Refused { status, .. }
            if (400..500).contains(&status) && status != 408 =>
        {
            AlertError::Refused(e.to_string())
        }
        e => AlertError::Send(e.to_string()),
    })?;
    if !resp.status().is_success() {
        return Err(AlertError::Send(format!(
            "{origin}: HTTP {}",
            resp.status().as_u16()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        let key = SecretString::from("Jefe");
        assert_eq!(
            signature(&key, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(
            signature(&key, b"what do ya want for nothing!"),
            signature(&key, b"what do ya want for nothing?")
        );
        assert_eq!(signed("1700000000", b"{}"), b"1700000000.{}");
        assert_ne!(
            signature(&key, &signed("1700000000", b"{}")),
            signature(&key, &signed("1700000001", b"{}"))
        );
    }
}
