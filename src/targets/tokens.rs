//! The OAuth2 token store of one connection: a JSON file, mode 0600, always written atomically.
//! A rotated refresh token is written here before the new access token is used, so a crash never
//! loses the only valid refresh token. Tokens never reach a log: `Debug` shows none.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::fsutil;

/// What the file holds.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredTokens {
    /// Access token.
    pub access_token: String,
    /// Refresh token (rotated by every refresh).
    pub refresh_token: String,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    /// The organisation (tenant) chosen at `facto connect`.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Its name, for messages.
    #[serde(default)]
    pub tenant_name: Option<String>,
}

impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("expires_at", &self.expires_at)
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

/// Reads the store; `Ok(None)` when there is none yet.
///
/// # Errors
///
/// An unreadable or malformed file, with what is wrong (never its content).
pub fn load(path: &Path) -> Result<Option<StoredTokens>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            format!(
                "{} is not a token file facto wrote ({})",
                path.display(),
                e.classify_name()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "bad JSON",
            serde_json::error::Category::Data => "missing or wrong fields",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

/// Writes the store atomically with mode 0600.
///
/// # Errors
///
/// The file cannot be written.
pub fn save(path: &Path, tokens: &StoredTokens) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(tokens).map_err(std::io::Error::other)?;
    fsutil::write_atomic(path, &bytes, Some(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_with_mode_0600_and_never_debug_printed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.json");
        let t = StoredTokens {
            access_token: "AT-secret".into(),
            refresh_token: "RT-secret".into(),
            expires_at: Utc::now(),
            tenant_id: Some("tenant".into()),
            tenant_name: None,
        };
        save(&p, &t).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(load(&p).unwrap().unwrap().refresh_token, "RT-secret");
        assert!(!format!("{t:?}").contains("secret"));
        std::fs::write(&p, b"{").unwrap();
        assert!(!load(&p).unwrap_err().contains('{'));
    }
}
