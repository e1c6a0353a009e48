//! The e-mail channel, through SMTP with `lettre` (STARTTLS, implicit TLS or, for a local relay,
//! none; rustls). Credentials come from the environment and are never logged. A failure before
//! the message is written (no connection, a 4xx reply to the envelope) is retried within the
//! bounded backoff; a 5xx reply is final for this attempt (the alert stays pending). Once the
//! message is written, only a 4xx/5xx reply proves it was refused: a lost reply (timeout,
//! closed connection) leaves the alert `uncertain`, never sent again blindly.
//!
//! An e-mail cannot be made exactly-once across a crash between the server's `250` and the
//! ledger's `sent`: it would then be sent again, with the same `Message-ID` (the alert id), which
//! lets a mail client or a filter spot it.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, MailBodyParameter, MailParameter};
use secrecy::{ExposeSecret, SecretString};

use super::{AlertError, AlertsConfig, Message, TlsMode};

fn env_secret(var: &str) -> Result<SecretString, AlertError> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .map(SecretString::from)
        .ok_or_else(|| AlertError::Config(format!("the variable {var} is not set")))
}

fn mailbox(addr: &str) -> Result<Mailbox, AlertError> {
    addr.parse()
        .map_err(|e| AlertError::Config(format!("`{addr}` is not an e-mail address: {e}")))
}

/// The e-mail of `message`.
fn mail(s: &super::SmtpConfig, message: &Message) -> Result<lettre::Message, AlertError> {
    let mut b = lettre::Message::builder()
        .from(mailbox(&s.from)?)
        .subject(message.subject())
        .message_id(Some(format!(
            "<{}@facto.alert>",
            message.id.replace('/', ".")
        )))
        .header(ContentType::TEXT_PLAIN);
    for to in &s.to {
        b = b.to(mailbox(to)?);
    }
    b.body(message.text.clone())
        .map_err(|e| AlertError::Config(format!("cannot build the e-mail: {e}")))
}

/// What one SMTP attempt came to.
enum Attempt {
    /// The server answered `250` to the message.
    Sent,
    /// Certainly not accepted (no connection, a refusal before the message, or a `4xx`/`5xx`
    /// reply to it); `true` when the refusal is permanent.
    NotSent(String, bool),
    /// The message went out but its reply was lost (timeout, closed connection): the server may
    /// have accepted it. Never sent again blindly.
    Uncertain(String),
}

/// The connection, greeted, secured and authenticated as `[alerts.smtp]` says.
async fn connect(s: &super::SmtpConfig) -> Result<AsyncSmtpConnection, AlertError> {
    let timeout = Some(Duration::from_secs(s.timeout_secs.max(1)));
    let hello = ClientId::default();
    let tls = || {
        TlsParameters::new(s.host.clone())
            .map_err(|e| AlertError::Config(format!("smtp {}: {e}", s.host)))
    };
    let implicit = match s.tls {
        TlsMode::Tls => Some(tls()?),
        TlsMode::Starttls | TlsMode::None => None,
    };
    let failed =
        |e: lettre::transport::smtp::Error| AlertError::Send(format!("smtp {}: {e}", s.host));
    let mut conn = AsyncSmtpConnection::connect_tokio1(
        (s.host.as_str(), s.port()),
        timeout,
        &hello,
        implicit,
        None,
    )
    .await
    .map_err(failed)?;
    if s.tls == TlsMode::Starttls {
        if !conn.can_starttls() {
            return Err(AlertError::Send(format!(
                "smtp {}: the server does not offer STARTTLS; set tls = \"tls\" or, for a local relay only, \"none\"",
                s.host
            )));
        }
        conn.starttls(tls()?, &hello).await.map_err(failed)?;
    }
    if let (Some(u), Some(p)) = (&s.username_env, &s.password_env) {
        let (user, pass) = (env_secret(u)?, env_secret(p)?);
        let credentials = Credentials::new(
            user.expose_secret().to_owned(),
            pass.expose_secret().to_owned(),
        );
        conn.auth(DEFAULT_MECHANISMS, &credentials)
            .await
            .map_err(failed)?;
    }
    Ok(conn)
}

/// One attempt: everything up to the `DATA` command's reply can be tried again; once the
/// message itself is written, only a `4xx`/`5xx` reply proves it was not accepted.
async fn attempt(s: &super::SmtpConfig, mail: &lettre::Message) -> Attempt {
    let host = &s.host;
    let mut conn = match connect(s).await {
        Ok(c) => c,
        Err(AlertError::Config(m)) => return Attempt::NotSent(m, true),
        Err(e) => return Attempt::NotSent(e.to_string(), false),
    };
    // lettre's errors carry the server's reply, never the credentials.
    let refused = |e: lettre::transport::smtp::Error| {
        Attempt::NotSent(format!("smtp {host}: {e}"), e.is_permanent())
    };
    let envelope = mail.envelope();
    let bytes = mail.formatted();
    // As lettre's own transport does: the options a non-ASCII envelope or body needs.
    let mut options = Vec::new();
    let non_ascii = |a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii();
    if envelope.from().is_some_and(non_ascii) || envelope.to().iter().any(non_ascii) {
        options.push(MailParameter::SmtpUtfEight);
    }
    if !bytes.is_ascii() {
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    // Each exchange within the timeout (lettre's applies to the connection only).
    let limit = Duration::from_secs(s.timeout_secs.max(1));
    let late = || format!("smtp {host}: no answer within {} s", limit.as_secs());
    let mut commands: Vec<Box<dyn std::fmt::Display + Send + Sync>> =
        vec![Box::new(Mail::new(envelope.from().cloned(), options))];
    for to in envelope.to() {
        commands.push(Box::new(Rcpt::new(to.clone(), Vec::new())));
    }
    commands.push(Box::new(Data));
    for c in &commands {
        match tokio::time::timeout(limit, conn.command(c)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return refused(e),
            Err(_) => return Attempt::NotSent(late(), false),
        }
    }
    // Test-only: the moment between the message written and its reply read.
    crate::fault::point("smtp-data-sent", "smtp");
    let outcome = match tokio::time::timeout(limit, conn.message(&bytes)).await {
        Ok(Ok(_)) => Attempt::Sent,
        Ok(Err(e)) if e.is_transient() || e.is_permanent() => refused(e),
        Ok(Err(e)) => Attempt::Uncertain(format!(
            "smtp {host}: the message was written but its reply was lost ({e}); the server may have accepted it, so it is not sent again"
        )),
        Err(_) => Attempt::Uncertain(format!(
            "{}, after the message was written; the server may have accepted it, so it is not sent again",
            late()
        )),
    };
    let _ = tokio::time::timeout(limit, conn.quit()).await;
    outcome
}

/// Sends `message` by e-mail.
pub(super) async fn send(a: &AlertsConfig, message: &Message) -> Result<(), AlertError> {
    let Some(s) = &a.smtp else {
        return Err(AlertError::Config(
            "[alerts.smtp] is no longer set; the alert waits until it is".into(),
        ));
    };
    let mail = mail(s, message)?;
    crate::retry::bounded(
        super::webhook::policy(a),
        || {
            let (s, mail) = (s, &mail);
            async move {
                match attempt(s, mail).await {
                    Attempt::Sent => Ok(()),
                    Attempt::NotSent(m, true) => {
                        Err(backoff::Error::permanent(AlertError::Send(m)))
                    }
                    Attempt::NotSent(m, false) => {
                        Err(backoff::Error::transient(AlertError::Send(m)))
                    }
                    Attempt::Uncertain(m) => {
                        Err(backoff::Error::permanent(AlertError::Uncertain(m)))
                    }
                }
            }
        },
        |e, _, _| e,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_carries_the_alert_id_and_every_recipient() {
        let s = super::super::SmtpConfig {
            host: "h".into(),
            port: None,
            tls: TlsMode::None,
            from: "facto@example.fr".into(),
            to: vec!["a@example.fr".into(), "B <b@example.fr>".into()],
            username_env: None,
            password_env: None,
            timeout_secs: 5,
        };
        let m = Message {
            id: "run-1/smtp".into(),
            job: "demo".into(),
            run_id: "run-1".into(),
            finished_at: None,
            events: vec![super::super::Event::Held],
            counts: Default::default(),
            stopped: None,
            problems: Vec::new(),
            text: "hello".into(),
        };
        let raw = String::from_utf8(mail(&s, &m).unwrap().formatted()).unwrap();
        assert!(
            raw.contains("Message-ID: <run-1.smtp@facto.alert>"),
            "{raw}"
        );
        assert!(raw.contains("b@example.fr"), "{raw}");
        assert!(
            raw.contains("Subject: facto: job demo needs attention (held)"),
            "{raw}"
        );
    }
}
