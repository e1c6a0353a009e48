//! Proof between the CLI and its daemon. `data/daemon.json` may be stale (the daemon died and
//! another program now listens on its port), so the CLI sends the admin token only to a server
//! that proved it knows it: the daemon answers a fresh nonce with HMAC-SHA256 keyed by the token,
//! without the token ever crossing the wire first. Token comparisons are constant-time.
//!
//! Even after that proof the CLI never sends the token itself (the daemon may exit and another
//! program take its port between two connections): `/api/hello` also hands out a single-use
//! challenge, and the CLI signs its request with it ([`request_mac`], scheme [`HMAC_SCHEME`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The unauthenticated endpoint that answers the CLI's nonce.
pub const HELLO_PATH: &str = "/api/hello";

/// HMAC-SHA256 (RFC 2104) of `msg` keyed by `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Compares two secrets in time that depends on their lengths only.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The daemon's answer to `nonce`, bound to the address it announced in `daemon.json`, so that a
/// server at a stale address cannot relay the question to a daemon elsewhere.
pub fn proof(token: &str, nonce: &str, addr: &str) -> String {
    hex::encode(hmac_sha256(
        token.as_bytes(),
        format!("facto-admin-v1\n{addr}\n{nonce}").as_bytes(),
    ))
}

/// Whether process `pid` holds the ledger's lock in `data_dir` (sled's `flock` on its `db`
/// file). `None` where the system does not tell (no `/proc/locks`).
pub fn holds_ledger_lock(pid: u32, data_dir: &Path) -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        let Ok(meta) = std::fs::metadata(data_dir.join("db")) else {
            return Some(false);
        };
        let ino = meta.ino().to_string();
        let pid = pid.to_string();
        // "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF"
        Some(locks.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 6
                && f[1] == "FLOCK"
                && f[4] == pid
                && f[5].rsplit(':').next() == Some(ino.as_str())
        }))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (pid, data_dir);
        None
    }
}

/// The `Authorization` scheme of a request signed with a challenge:
/// `FactoHmac <challenge>:<request_mac>`.
pub const HMAC_SCHEME: &str = "FactoHmac";

/// How long a challenge of `/api/hello` may wait for its request.
const CHALLENGE_TTL: Duration = Duration::from_secs(60);

/// Most challenges waiting at once; past that the oldest is dropped (hello is unauthenticated).
const MAX_CHALLENGES: usize = 256;

/// The signature of one request: HMAC-SHA256 keyed by the admin token over the challenge, the
/// method, the path and the SHA-256 of the body, so it is worth nothing for any other request.
pub fn request_mac(token: &str, challenge: &str, method: &str, path: &str, body: &[u8]) -> String {
    let msg = format!(
        "facto-cli-v1\n{challenge}\n{method}\n{path}\n{}",
        hex::encode(Sha256::digest(body))
    );
    hex::encode(hmac_sha256(token.as_bytes(), msg.as_bytes()))
}

/// The `Authorization` header value of a request signed with `challenge`.
pub fn signed_header(
    token: &str,
    challenge: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> String {
    format!(
        "{HMAC_SCHEME} {challenge}:{}",
        request_mac(token, challenge, method, path, body)
    )
}

/// The daemon's outstanding challenges: each accepted once, within `CHALLENGE_TTL`.
#[derive(Default)]
pub struct Challenges(Mutex<HashMap<String, Instant>>);

impl Challenges {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh challenge.
    pub fn issue(&self) -> String {
        let c = oauth2::CsrfToken::new_random().secret().clone();
        let mut m = self.map();
        m.retain(|_, at| at.elapsed() < CHALLENGE_TTL);
        if m.len() >= MAX_CHALLENGES {
            if let Some(oldest) = m.iter().min_by_key(|(_, at)| **at).map(|(k, _)| k.clone()) {
                m.remove(&oldest);
            }
        }
        m.insert(c.clone(), Instant::now());
        c
    }

    /// Whether `value` (after `FactoHmac `) signs this request with a live challenge. The
    /// challenge is burnt whatever the outcome, so a header seen once never works again.
    pub fn check(&self, value: &str, token: &str, method: &str, path: &str, body: &[u8]) -> bool {
        let Some((challenge, mac)) = value.trim().split_once(':') else {
            return false;
        };
        let live = self
            .map()
            .remove(challenge)
            .is_some_and(|at| at.elapsed() < CHALLENGE_TTL);
        let expected = request_mac(token, challenge, method, path, body);
        live & ct_eq(mac.as_bytes(), expected.as_bytes())
    }
}

/// Why the CLI does not send its token to the server of `daemon.json`.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// `daemon.json` is stale: its process does not hold the ledger (or nothing listens).
    #[error("{0}")]
    Stale(String),
    /// Something answers at the address but does not prove it knows the admin token.
    #[error("{0}")]
    Impostor(String),
}

/// Asks the server at `addr` to prove it is the daemon of `pid` holding the admin token `token`;
/// returns the single-use challenge it handed out, to sign the request that follows.
///
/// # Errors
///
/// [`VerifyError::Stale`] when the process is gone or nothing listens at `addr`,
/// [`VerifyError::Impostor`] when a server answers without the proof.
pub async fn verify(
    addr: &str,
    pid: u32,
    token: &str,
    data_dir: &Path,
    sled_ledger: bool,
) -> Result<String, VerifyError> {
    // A daemon on sled holds its folder's lock: a process that does not is stale. A ledger in
    // PostgreSQL has no such file; the proof below decides alone.
    if sled_ledger && holds_ledger_lock(pid, data_dir) == Some(false) {
        return Err(VerifyError::Stale(format!(
            "process {pid} of {} does not hold the ledger",
            data_dir.join("daemon.json").display()
        )));
    }
    let nonce = oauth2::CsrfToken::new_random().secret().clone();
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}{HELLO_PATH}"))
        .query(&[("nonce", &nonce)])
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    let impostor = || {
        VerifyError::Impostor(format!(
            "the server on {addr} does not prove it is the daemon of {} (process {pid}); the admin token was not sent to it. If that daemon is of an older facto, restart it; otherwise stop what listens there",
            data_dir.display()
        ))
    };
    let resp = match resp {
        Ok(r) => r,
        Err(e) if e.is_connect() => {
            return Err(VerifyError::Stale(format!("nothing listens on {addr}")))
        }
        Err(_) => return Err(impostor()),
    };
    let v: serde_json::Value = resp.json().await.map_err(|_| impostor())?;
    let given = v["proof"].as_str().unwrap_or_default();
    let expected = proof(token, &nonce, addr);
    let challenge = v["challenge"].as_str().unwrap_or_default();
    if v["pid"].as_u64() == Some(u64::from(pid))
        && ct_eq(given.as_bytes(), expected.as_bytes())
        && !challenge.is_empty()
    {
        Ok(challenge.to_owned())
    } else {
        Err(impostor())
    }
}

/// Whether the request's `Authorization: Bearer` token is `token` (compared in constant time).
pub fn bearer_is(headers: &axum::http::HeaderMap, token: &str) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| ct_eq(t.trim().as_bytes(), token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 2 and 6 (a key longer than the block).
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn comparison_needs_equal_bytes() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }

    #[test]
    fn a_challenge_signs_one_request_once() {
        let c = Challenges::default();
        let ch = c.issue();
        let header = signed_header("tok", &ch, "POST", "/api/cli", b"{}");
        let value = header.strip_prefix("FactoHmac ").unwrap();
        assert!(!c.check(value, "tok", "POST", "/api/cli", b"{\"x\":1}"));
        let ch = c.issue();
        let value = signed_header("tok", &ch, "POST", "/api/cli", b"{}");
        let value = value.strip_prefix("FactoHmac ").unwrap();
        assert!(!c.check(value, "other", "POST", "/api/cli", b"{}"));
        let ch = c.issue();
        let value = signed_header("tok", &ch, "POST", "/api/cli", b"{}");
        let value = value.strip_prefix("FactoHmac ").unwrap();
        assert!(c.check(value, "tok", "POST", "/api/cli", b"{}"));
        assert!(
            !c.check(value, "tok", "POST", "/api/cli", b"{}"),
            "replayed"
        );
        assert!(!c.check("made-up:00", "tok", "POST", "/api/cli", b"{}"));
    }

    #[test]
    fn proof_depends_on_token_nonce_and_address() {
        let p = proof("t", "n", "127.0.0.1:1");
        assert_ne!(p, proof("u", "n", "127.0.0.1:1"));
        assert_ne!(p, proof("t", "m", "127.0.0.1:1"));
        assert_ne!(p, proof("t", "n", "127.0.0.1:2"));
    }
}
