//! The e-mail channel, through SMTP with `lettre` (STARTTLS, implicit TLS or, for a local relay,
//! none; rustls). Credentials come from the environment and are never logged. Transient
//! failures (connection, 4xx replies) are retried within the bounded backoff; a 5xx reply is
//! final for this attempt (the alert stays pending).
//!
//! An e-mail cannot be made exactly-once across a crash between the server's `250` and the
//! ledger's `sent`: it would then be sent again, with the same `Message-ID` (the alert id), which
//! lets a mail client or a filter spot it.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
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

/// Sends `message` by e-mail.
pub(super) async fn send(a: &AlertsConfig, message: &Message) -> Result<(), AlertError> {
    let Some(s) = &a.smtp else {
        return Err(AlertError::Config(
            "[alerts.smtp] is no longer set; the alert waits until it is".into(),
        ));
    };
    let mail = mail(s, message)?;
    let tls_err = |e: lettre::transport::smtp::Error| AlertError::Config(format!("smtp: {e}"));
    let builder = match s.tls {
        TlsMode::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host).map_err(tls_err)?
        }
        TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host).map_err(tls_err)?,
        TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
    };
    let mut builder = builder
        .port(s.port())
        .timeout(Some(Duration::from_secs(s.timeout_secs.max(1))));
    if let (Some(u), Some(p)) = (&s.username_env, &s.password_env) {
        let (user, pass) = (env_secret(u)?, env_secret(p)?);
        builder = builder.credentials(Credentials::new(
            user.expose_secret().to_owned(),
            pass.expose_secret().to_owned(),
        ));
    }
    let transport = builder.build();
    let host = s.host.clone();
    crate::retry::bounded(
        super::webhook::policy(a),
        || {
            let (transport, mail, host) = (&transport, mail.clone(), &host);
            async move {
                match transport.send(mail).await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        // lettre's errors carry the server's reply, never the credentials.
                        let msg = format!("smtp {host}: {e}");
                        if e.is_permanent() {
                            Err(backoff::Error::permanent(AlertError::Send(msg)))
                        } else {
                            Err(backoff::Error::transient(AlertError::Send(msg)))
                        }
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
