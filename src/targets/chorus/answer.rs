//! A supplier's answers to the invoices Chorus Pro holds for them: completing a suspended invoice
//! (`SUSPENDUE` → `completer`: a comment and files) and correcting the routing of an invoice to
//! recycle (`A_RECYCLER` → `recycler`). Each looks the invoice's status up at Chorus Pro first,
//! records the intent in the ledger (flushed) before the call, then its outcome and an audit
//! entry. A call whose answer is lost is never repeated blindly: the next attempt looks first.

use chrono::Utc;

use super::api::{ChorusApi, ChorusError, Routing};
use super::config::ChorusConfig;
use super::state_for;
use crate::ledger::{AuditEvent, Ledger, LedgerError, RecordKey};
use crate::targets::http::ApiError;

/// Chorus Pro's limit for one attachment.
pub const MAX_FILE_BYTES: usize = 10 << 20;
/// Chorus Pro's limit for an attachment's name, extension included.
pub const MAX_FILE_NAME: usize = 50;

/// What the supplier answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Completes a suspended invoice with a comment and files (name, bytes).
    Complete {
        /// What the buyer asked for, answered.
        comment: String,
        /// Files to attach.
        files: Vec<(String, Vec<u8>)>,
    },
    /// Corrects the routing of an invoice to recycle.
    Recycle(Routing),
}

impl Answer {
    /// The status Chorus Pro must show for this answer.
    fn expects(&self) -> &'static str {
        match self {
            Answer::Complete { .. } => "SUSPENDUE",
            Answer::Recycle(_) => "A_RECYCLER",
        }
    }

    fn action(&self) -> &'static str {
        match self {
            Answer::Complete { .. } => "chorus-complete",
            Answer::Recycle(_) => "chorus-recycle",
        }
    }

    fn describe(&self) -> String {
        match self {
            Answer::Complete { comment, files } => {
                let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
                format!(
                    "completion \"{comment}\" with {} file(s) {names:?}",
                    files.len()
                )
            }
            Answer::Recycle(r) => format!(
                "routing to buyer {} service {} commitment {} (\"{}\")",
                r.buyer_siret,
                r.service.as_deref().unwrap_or("-"),
                r.commitment.as_deref().unwrap_or("-"),
                r.comment
            ),
        }
    }
}

/// Why an answer was not made.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The answer does not apply (unknown document, wrong status, a file too large): nothing
    /// was sent.
    #[error("{0}")]
    NotApplicable(String),
    /// Chorus Pro refused the answer.
    #[error("{0}")]
    Refused(String),
    /// Chorus Pro could not be reached, or the outcome is unknown.
    #[error("{0}")]
    Remote(String),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Checks an attachment against Chorus Pro's limits (size, name length) before anything is read
/// or sent.
///
/// # Errors
///
/// [`AnswerError::NotApplicable`], naming the file and the limit.
pub fn check_file(name: &str, size: u64) -> Result<(), AnswerError> {
    if size > MAX_FILE_BYTES as u64 {
        return Err(AnswerError::NotApplicable(format!(
            "{name} is {size} bytes; Chorus Pro takes at most {MAX_FILE_BYTES} per file"
        )));
    }
    if name.chars().count() > MAX_FILE_NAME {
        return Err(AnswerError::NotApplicable(format!(
            "{name}: Chorus Pro takes file names of at most {MAX_FILE_NAME} characters; rename it"
        )));
    }
    Ok(())
}

/// Sends `answer` for the document of `key` (a record of the Chorus Pro target `key.target`,
/// configured by `cfg`) on behalf of `who` (for the audit log); returns what was done.
///
/// # Errors
///
/// See [`AnswerError`].
pub async fn send(
    cfg: &ChorusConfig,
    ledger: &dyn Ledger,
    key: &RecordKey,
    answer: Answer,
    who: &str,
) -> Result<String, AnswerError> {
    let Some(mut rec) = ledger.get(key)? else {
        return Err(AnswerError::NotApplicable(format!(
            "no ledger record for {key}"
        )));
    };
    let number = rec.number.clone();
    let Some(id) = rec.remote_id.as_deref().and_then(|i| i.parse::<i64>().ok()) else {
        return Err(AnswerError::NotApplicable(format!(
            "{number} has no Chorus Pro invoice id yet (its flow is not integrated); run `facto status` first"
        )));
    };
    if let Answer::Complete { files, .. } = &answer {
        for (name, bytes) in files {
            check_file(name, bytes.len() as u64)?;
        }
    }
    let api = ChorusApi::new(cfg).map_err(|e| AnswerError::Remote(e.to_string()))?;
    // The status now, at Chorus Pro: the ledger's may be old, or the answer already given.
    let live = api
        .history(id)
        .await
        .map_err(|e| AnswerError::Remote(e.to_string()))?;
    let now = Utc::now();
    if live.status != answer.expects() {
        // An earlier answer whose outcome was unknown evidently went through.
        let earlier = rec
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("outcome unknown"));
        if rec.remote_status.as_deref() != Some(live.status.as_str()) || earlier {
            rec.remote_status = Some(live.status.clone());
            if !matches!(live.status.as_str(), "SUSPENDUE" | "A_RECYCLER") {
                rec.last_error = None;
            }
            rec.transition(
                state_for(&live.status),
                format!("Chorus Pro status {}", live.status),
                now,
            );
            ledger.put_records(std::slice::from_ref(&rec))?;
        }
        let why = if earlier {
            " (the earlier answer, whose outcome was unknown, reached it)"
        } else {
            ""
        };
        return Err(AnswerError::NotApplicable(format!(
            "{number} is {} at Chorus Pro, not {}{why}: nothing sent",
            live.status,
            answer.expects()
        )));
    }
    let what = answer.describe();
    rec.transition(rec.state, format!("sending {what} to Chorus Pro"), now);
    ledger.put_records(std::slice::from_ref(&rec))?;
    let outcome = match &answer {
        Answer::Complete { comment, files } => {
            let mut uploaded = Vec::with_capacity(files.len());
            let mut result = Ok(());
            for (name, bytes) in files {
                match api.upload(bytes, name).await {
                    Ok(fid) => uploaded.push((fid, name.clone())),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            match result {
                Ok(()) => api.complete(id, comment, &uploaded).await,
                Err(e) => Err(e),
            }
        }
        Answer::Recycle(routing) => api.recycle(id, routing).await,
    };
    let now = Utc::now();
    match outcome {
        Ok(status) => {
            // The new status, when the answer gives it; else the next `facto status` reads it.
            let status = match status {
                Some(s) => {
                    rec.remote_status = Some(s.clone());
                    rec.transition(
                        state_for(&s),
                        format!("Chorus Pro accepted the {what}; status {s}"),
                        now,
                    );
                    s
                }
                None => {
                    rec.transition(rec.state, format!("Chorus Pro accepted the {what}"), now);
                    "to be read by the next `facto status`".to_owned()
                }
            };
            rec.last_error = None;
            ledger.put_records(std::slice::from_ref(&rec))?;
            ledger.audit(AuditEvent {
                at: now,
                action: answer.action().into(),
                detail: format!("{key} ({number}): {what}"),
                who: who.to_owned(),
            })?;
            Ok(format!(
                "{number}: Chorus Pro accepted the {what}; status {status}"
            ))
        }
        Err(e) => {
            let (note, err) = match e {
                ChorusError::Refused { .. } => {
                    let m = format!("{number}: {e}");
                    (m.clone(), AnswerError::Refused(m))
                }
                ChorusError::Api(ApiError::Unknown(_)) => {
                    let m = format!(
                        "{number}: {e}; `facto status` shows whether Chorus Pro took it before you try again"
                    );
                    (m.clone(), AnswerError::Remote(m))
                }
                e => {
                    let m = format!("{number}: {e}");
                    (m.clone(), AnswerError::Remote(m))
                }
            };
            rec.last_error = Some(note.clone());
            rec.transition(rec.state, note, now);
            ledger.put_records(std::slice::from_ref(&rec))?;
            Err(err)
        }
    }
}
