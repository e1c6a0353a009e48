//! `[alerts]` in `facto.toml`: where alerts go (a signed webhook, e-mail through SMTP) and which
//! events raise one. Checked when the configuration loads; secrets are only the names of
//! environment variables, read when an alert is sent.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::toml_file::{ConfigError, Spans};

/// `[alerts]` as written by the admin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Where the alert's JSON is POSTed (`http` or `https`).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Environment variable holding the HMAC-SHA-256 key that signs the webhook's body
    /// (required with `webhook_url`).
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
    /// `[alerts.smtp]`: e-mail.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// Which events raise an alert. Default: all of them.
    #[serde(default = "all_events")]
    pub on: Vec<Event>,
    /// Give up one sending attempt after this long, seconds (the alert stays pending and is
    /// sent again after the next pass). Default 60.
    #[serde(default = "sixty")]
    pub send_budget_secs: u64,
}

/// `[alerts.smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Port. Default: 587 with `starttls`, 465 with `tls`, 25 with `none`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` (implicit TLS) or `none` (loopback servers only when
    /// credentials are set).
    #[serde(default)]
    pub tls: TlsMode,
    /// Sender address.
    pub from: String,
    /// Recipients (at least one).
    pub to: Vec<String>,
    /// Environment variable holding the SMTP user name.
    #[serde(default)]
    pub username_env: Option<String>,
    /// Environment variable holding the SMTP password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Connection and command timeout, seconds. Default 30.
    #[serde(default = "thirty")]
    pub timeout_secs: u64,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption.
    None,
}

impl SmtpConfig {
    /// The port, or the usual one of the TLS mode.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        })
    }
}

/// What raises an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// New documents held back (mapping or checks).
    Held,
    /// New documents rejected by a target after delivery.
    Rejected,
    /// New documents refused by a target at delivery.
    Failed,
    /// New documents changed in the source after delivery.
    ChangedAfterDelivery,
    /// A target or the source stopped the pass (a `sync` exit code 3).
    Stopped,
}

impl Event {
    /// The event of a report's problem status (`held`, ...), if any.
    pub fn of_status(status: &str) -> Option<Event> {
        match status {
            "held" => Some(Event::Held),
            "rejected" => Some(Event::Rejected),
            "failed" => Some(Event::Failed),
            "changed-after-delivery" => Some(Event::ChangedAfterDelivery),
            _ => None,
        }
    }

    /// The name written in `on` and in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Held => "held",
            Event::Rejected => "rejected",
            Event::Failed => "failed",
            Event::ChangedAfterDelivery => "changed-after-delivery",
            Event::Stopped => "stopped",
        }
    }
}

fn all_events() -> Vec<Event> {
    vec![
        Event::Held,
        Event::Rejected,
        Event::Failed,
        Event::ChangedAfterDelivery,
        Event::Stopped,
    ]
}
fn sixty() -> u64 {
    60
}
fn thirty() -> u64 {
    30
}

/// A name usable as an environment variable.
fn env_name_ok(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl AlertsConfig {
    /// Checks the section; errors name the file and the line of the key at fault.
    ///
    /// # Errors
    ///
    /// No channel, a URL that is not http(s), a missing or malformed variable name, an address
    /// that does not parse, credentials over an unencrypted non-loopback connection.
    pub fn validate(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let spans = Spans::new(text);
        let at = |keys: &[&str], msg: String| {
            let mut steps: Vec<crate::toml_file::Step<'_>> = vec!["alerts".into()];
            steps.extend(keys.iter().map(|k| crate::toml_file::Step::Key(k)));
            let line = spans
                .line(&steps)
                .or_else(|| spans.line(&["alerts".into()]));
            ConfigError::at(path, line, format!("[alerts] {msg}"))
        };
        if self.webhook_url.is_none() && self.smtp.is_none() {
            return Err(at(
                &[],
                "names no channel: set webhook_url and/or [alerts.smtp]".into(),
            ));
        }
        if let Some(u) = &self.webhook_url {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => {}
                _ => {
                    return Err(at(
                        &["webhook_url"],
                        format!("webhook_url `{u}` is not an http(s) URL"),
                    ))
                }
            }
            match &self.webhook_secret_env {
                Some(n) if env_name_ok(n) => {}
                Some(n) => {
                    return Err(at(
                        &["webhook_secret_env"],
                        format!("webhook_secret_env `{n}` is not an environment variable name"),
                    ))
                }
                None => {
                    return Err(at(
                        &["webhook_url"],
                        "webhook_url needs webhook_secret_env (the variable holding the key that signs each alert)".into(),
                    ))
                }
            }
        }
        if let Some(s) = &self.smtp {
            let key = |k: &'static str| ["smtp", k];
            if s.host.trim().is_empty() {
                return Err(at(&key("host"), "smtp host is empty".into()));
            }
            if s.from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(at(
                    &key("from"),
                    format!("smtp from `{}` is not an e-mail address", s.from),
                ));
            }
            if s.to.is_empty() {
                return Err(at(&key("to"), "smtp to lists no recipient".into()));
            }
            if let Some(bad) =
                s.to.iter()
                    .find(|a| a.parse::<lettre::message::Mailbox>().is_err())
            {
                return Err(at(
                    &key("to"),
                    format!("smtp to `{bad}` is not an e-mail address"),
                ));
            }
            for (k, v) in [
                ("username_env", &s.username_env),
                ("password_env", &s.password_env),
            ] {
                if let Some(n) = v.as_ref().filter(|n| !env_name_ok(n)) {
                    return Err(at(
                        &key(k),
                        format!("smtp {k} `{n}` is not an environment variable name"),
                    ));
                }
            }
            if s.username_env.is_some() != s.password_env.is_some() {
                return Err(at(
                    &key("username_env"),
                    "smtp username_env and password_env go together".into(),
                ));
            }
            if s.tls == TlsMode::None && s.username_env.is_some() && !loopback(&s.host) {
                return Err(at(
                    &key("tls"),
                    format!(
                        "smtp tls = \"none\" would send the password in clear to `{}`: use starttls or tls",
                        s.host
                    ),
                ));
            }
        }
        if self.on.is_empty() {
            return Err(at(&["on"], "on lists no event".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<AlertsConfig, ConfigError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Top {
            alerts: AlertsConfig,
        }
        let path = Path::new("facto.toml");
        let top: Top = crate::toml_file::parse_toml(path, text)?;
        top.alerts.validate(path, text)?;
        Ok(top.alerts)
    }

    #[test]
    fn a_valid_section_keeps_its_settings_and_defaults_to_every_event() {
        let a = check(
            "[alerts]\nwebhook_url = \"https://hooks.example/x\"\nwebhook_secret_env = \"ALERT_KEY\"\n[alerts.smtp]\nhost = \"smtp.example\"\nfrom = \"facto@example.fr\"\nto = [\"Compta <compta@example.fr>\"]\nusername_env = \"SMTP_USER\"\npassword_env = \"SMTP_PASS\"\n",
        )
        .unwrap();
        assert_eq!(a.on.len(), 5);
        let s = a.smtp.unwrap();
        assert_eq!((s.tls, s.port()), (TlsMode::Starttls, 587));
    }

    #[test]
    fn errors_name_the_line_of_the_key_at_fault() {
        let cases = [
            ("[alerts]\non = [\"held\"]\n", 1, "no channel"),
            ("[alerts]\nwebhook_url = \"ftp://x\"\nwebhook_secret_env = \"K\"\n", 2, "http(s)"),
            ("[alerts]\n\nwebhook_url = \"https://x\"\n", 3, "webhook_secret_env"),
            ("[alerts]\nwebhook_url = \"https://x\"\nwebhook_secret_env = \"a-b\"\n", 3, "variable name"),
            ("[alerts]\n[alerts.smtp]\nhost = \"h\"\nfrom = \"nope\"\nto = [\"a@b.fr\"]\n", 4, "from `nope`"),
            ("[alerts]\n[alerts.smtp]\nhost = \"h\"\nfrom = \"a@b.fr\"\nto = []\n", 5, "no recipient"),
            ("[alerts]\n[alerts.smtp]\nhost = \"h\"\nfrom = \"a@b.fr\"\nto = [\"a@b.fr\"]\nusername_env = \"U\"\n", 6, "go together"),
            ("[alerts]\n[alerts.smtp]\nhost = \"mail.example\"\ntls = \"none\"\nfrom = \"a@b.fr\"\nto = [\"a@b.fr\"]\nusername_env = \"U\"\npassword_env = \"P\"\n", 4, "in clear"),
            ("[alerts]\nwebhook_url = \"https://x\"\nwebhook_secret_env = \"K\"\non = [\"held\", \"late\"]\n", 4, "unknown variant"),
            ("[alerts]\nwebhook = \"https://x\"\n", 2, "unknown field"),
        ];
        for (text, line, msg) in cases {
            let e = check(text).unwrap_err();
            assert_eq!(e.line, Some(line), "{text}: {e}");
            assert!(e.to_string().contains(msg), "{text}: {e}");
            assert!(e.to_string().starts_with("facto.toml:"), "{e}");
        }
        // Credentials over a clear connection to a local relay are allowed.
        check("[alerts]\n[alerts.smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\nfrom = \"a@b.fr\"\nto = [\"a@b.fr\"]\nusername_env = \"U\"\npassword_env = \"P\"\n").unwrap();
    }
}
