//! The buyer's answers to the supplier invoices received through a PA (issue 15 §3): `facto
//! respond` and the admin API's `POST /api/v1/received/status` send 204 taken over, 205
//! approved, 207 disputed or 210 refused back to the seller through the PA the invoice came
//! from ([`crate::targets::pa::respond`]).
//!
//! Each (invoice, status) is sent exactly once: its record (target `<pa>#status`) is claimed
//! and flushed before the flow is posted; asking again answers with the flow already sent; a
//! send whose answer was lost is looked up at the PA by its `trackingId` before anything is
//! posted again. A refusal is final: nothing follows it. The invoice's own record notes every
//! status sent, and the audit log says who sent it.

use std::sync::Arc;

use chrono::Utc;

use crate::config::{Config, Connector, Job};
use crate::ledger::{AuditEvent, Ledger, LedgerError, Record, RecordKey, State};
use crate::mapping::{JournalEntry, MappedDocument, Side};
use crate::targets::pa::api::PaApi;
use crate::targets::pa::respond::{self, Buyer, BuyerStatus, RespondRun, Response};
use crate::targets::pa::status_run::StatusRun;
use crate::targets::{Driven, TargetError, TargetRun};

/// Why a status was not sent.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// The request does not apply (an unknown invoice, a bad reason, after a refusal): nothing
    /// was sent.
    #[error("{0}")]
    Usage(String),
    /// The status is held (its problem and fix named) or the PA refused it.
    #[error("{0}")]
    Refused(String),
    /// The PA could not be reached, or the outcome is unknown.
    #[error("{0}")]
    Remote(String),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// A status sent, or found sent earlier.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Answered {
    /// The status's record.
    pub record: String,
    /// Its flow at the PA.
    pub flow: Option<String>,
    /// Sent by an earlier request: not sent again.
    pub already: bool,
    /// What happened, in words.
    pub message: String,
}

fn usage(m: String) -> RespondError {
    RespondError::Usage(m)
}

/// The received invoice `doc` (its id or number) of a job whose source is a PA, in `job` when
/// given: its record and its job.
fn received<'a>(
    cfg: &'a Config,
    ledger: &dyn Ledger,
    job: Option<&str>,
    doc: &str,
) -> Result<(Record, &'a Job), RespondError> {
    let mut found: Vec<(Record, &Job)> = Vec::new();
    for r in ledger.find(doc)? {
        let Some(j) = cfg.jobs.iter().find(|j| j.name == r.key.job) else {
            continue;
        };
        let from_pa = matches!(cfg.connectors.get(&j.source), Some(Connector::AfnorPa(_)));
        if !from_pa || !j.targets.contains(&r.key.target) || job.is_some_and(|n| n != j.name) {
            continue;
        }
        if !found
            .iter()
            .any(|(f, _)| f.key.job == r.key.job && f.key.doc_id == r.key.doc_id)
        {
            found.push((r, j));
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(usage(format!(
            "no supplier invoice `{doc}` received through a PA{} (a job whose source is an afnor-pa connector); see `facto ledger show {doc}`",
            job.map(|j| format!(" in job `{j}`")).unwrap_or_default()
        ))),
        _ => Err(usage(format!(
            "`{doc}` names several received invoices ({}); give the document id, or the job with --job",
            found
                .iter()
                .map(|(r, _)| format!("{}/{}", r.key.job, r.key.doc_id))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn sent_note(r: &Record) -> String {
    format!(
        "sent on {}, flow {}",
        r.updated_at.format("%Y-%m-%d %H:%M UTC"),
        r.remote_id.as_deref().unwrap_or("?")
    )
}

/// What a status record keeps of the response it sends, to tell a request asking for another.
const SENT_REASON: &str = "reason";
const SENT_ACTION: &str = "action";
const SENT_TEXT: &str = "text";

/// The response's reason, action and text, as a status record keeps them.
fn kept(r: &Response) -> [(&'static str, Option<String>); 3] {
    [
        (SENT_REASON, r.reason.clone()),
        (SENT_ACTION, r.action.clone()),
        (SENT_TEXT, Some(r.text.clone()).filter(|t| !t.is_empty())),
    ]
}

fn keep(rec: &mut Record, r: &Response) {
    for (k, v) in kept(r) {
        match v {
            Some(v) => rec.snapshot.insert(k.to_owned(), v),
            None => rec.snapshot.remove(k),
        };
    }
}

/// How the response sent differs from `r`, if it does.
fn differs(sent: &Record, r: &Response) -> Option<String> {
    let asked = kept(r);
    let same = asked
        .iter()
        .all(|(k, v)| sent.snapshot.get(*k) == v.as_ref());
    let shown = |pairs: &mut dyn Iterator<Item = (&str, Option<&String>)>| {
        pairs
            .filter_map(|(k, v)| v.map(|v| format!("{k} {v}")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    (!same).then(|| {
        format!(
            "it was sent with [{}], not [{}]",
            shown(&mut asked.iter().map(|(k, _)| (*k, sent.snapshot.get(*k)))),
            shown(&mut asked.iter().map(|(k, v)| (*k, v.as_ref())))
        )
    })
}

/// Notes a status sent on the invoice's own record (read again now: a pass may have moved it)
/// and in the audit log. A record in the middle of a delivery gets no note: its history dates
/// its claim.
fn record_sent(
    ledger: &dyn Ledger,
    invoice: &RecordKey,
    what: &str,
    who: &str,
) -> Result<(), LedgerError> {
    let now = Utc::now();
    if let Some(mut inv) = ledger.get(invoice)? {
        if inv.state != State::Claimed {
            inv.transition(inv.state, format!("{what} ({who})"), now);
            ledger.put_records(std::slice::from_ref(&inv))?;
        }
    }
    ledger.audit(AuditEvent {
        at: now,
        action: "pa-status".into(),
        detail: format!("{invoice}: {what}"),
        who: who.to_owned(),
    })
}

/// What a status sent says, for the invoice's history and the audit log.
fn sent_what(status: BuyerStatus, reason: Option<&str>, pa: &str, r: &Record) -> String {
    let reason = reason.map(|x| format!(", reason {x}")).unwrap_or_default();
    format!(
        "status {} {}{reason} sent to {} through {pa}, flow {}",
        status.code(),
        status.label(),
        r.customer_name,
        r.remote_id.as_deref().unwrap_or("?")
    )
}

/// Sends `response` about the received invoice `doc` through the PA it came from, on behalf of
/// `who` (the audit log's `cli`, `api`...). It runs under the job's lock, so that a pass of the
/// job, or another request, never works on the same records meanwhile.
///
/// # Errors
///
/// [`RespondError`]: nothing was sent unless the error is [`RespondError::Remote`] with an
/// unknown outcome, which the next request looks up before anything is sent again.
pub async fn respond(
    cfg: &Config,
    ledger: &dyn Ledger,
    job: Option<&str>,
    doc: &str,
    response: Response,
    who: &str,
) -> Result<Answered, RespondError> {
    response.check().map_err(|e| usage(e.to_string()))?;
    let (_, first) = received(cfg, ledger, job, doc)?;
    let lock = crate::sync::job_lock(cfg, &first.name);
    let _pass = lock.lock().await;
    // Read again under the lock.
    let (invoice, job) = received(cfg, ledger, Some(&first.name), doc)?;
    let pa = job.source.clone();
    let Some(Connector::AfnorPa(pa_cfg)) = cfg.connectors.get(&pa) else {
        return Err(usage(format!(
            "the source of job `{}` is not a PA",
            job.name
        )));
    };
    let status = response.status;
    let code = status.code();
    let target = respond::target_name(&pa);
    let key = |s: BuyerStatus| RecordKey {
        job: job.name.clone(),
        target: target.clone(),
        doc_id: respond::record_id(&invoice.key.doc_id, s),
    };
    let number = invoice.number.clone();
    if status != BuyerStatus::Refused {
        if let Some(r) = ledger.get(&key(BuyerStatus::Refused))? {
            if r.state.is_delivered() {
                return Err(usage(format!(
                    "{number} was refused (210, {}): a refusal is final, no status follows it",
                    sent_note(&r)
                )));
            }
            if r.state == State::Claimed {
                return Err(usage(format!(
                    "{number}: a refusal (210) was sent and its outcome is not known yet: ask for the refusal again (`facto respond {number} 210 ...`) to settle it first; a refusal is final"
                )));
            }
        }
    }
    let k = key(status);
    let already = |r: &Record| -> Result<Answered, RespondError> {
        if let Some(why) = differs(r, &response) {
            return Err(usage(format!(
                "{number}: status {code} {} was already {}, and a status goes once per invoice: {why}",
                status.label(),
                sent_note(r)
            )));
        }
        Ok(Answered {
            record: r.key.to_string(),
            flow: r.remote_id.clone(),
            already: true,
            message: format!(
                "{number}: status {code} {} was already {}: not sent again",
                status.label(),
                sent_note(r)
            ),
        })
    };
    let unknown = || {
        RespondError::Remote(format!(
            "{number}: status {code} was sent and its outcome is unknown; ask again later: facto looks it up at the PA first, and sends it again only if the PA still does not have it {} minutes after the send",
            pa_cfg.lookup_grace_minutes
        ))
    };
    let buyer = Buyer {
        siren: cfg.company.siren.clone(),
        name: cfg.company.name.clone(),
    };
    let run = RespondRun::new(&pa, pa_cfg, buyer, response.clone())
        .map_err(|e| RespondError::Remote(e.to_string()))?;
    let mut driven = Driven::new(StatusRun(run), &job.name, false);
    let mut rec = match ledger.get(&k)? {
        Some(r) if r.state.is_delivered() => return already(&r),
        // An earlier send whose answer was lost: settled first (found at the PA, sent again
        // identical after the grace period), never posted again blindly.
        Some(r) if r.state == State::Claimed => {
            driven.reconcile(ledger).await.map_err(remote)?;
            match ledger.get(&k)? {
                Some(r) if r.state.is_delivered() => {
                    let asked = r.snapshot.get(SENT_REASON).cloned();
                    let what = sent_what(status, asked.as_deref(), &pa, &r);
                    record_sent(
                        ledger,
                        &invoice.key,
                        &format!("{what}, found at the PA after a lost answer"),
                        who,
                    )?;
                    return already(&r);
                }
                Some(r) if r.state == State::Claimed => return Err(unknown()),
                Some(r) => r,
                None => Record::new(k.clone(), Utc::now()),
            }
        }
        Some(r) => r,
        None => Record::new(k.clone(), Utc::now()),
    };
    if rec.state == State::Failed {
        // Refused by the PA before: nothing was created, the request sends it again.
        rec.transition(
            State::Released,
            format!("sent again on request ({who})"),
            Utc::now(),
        );
    }
    let flow_id = invoice
        .origin
        .strip_prefix(&format!("PA {pa} flow "))
        .map(str::to_owned)
        .ok_or_else(|| {
            usage(format!(
                "{number} was not read from a flow of the PA `{pa}` ({}): its status cannot go back through it",
                invoice.origin
            ))
        })?;
    // The invoice as the PA holds it: the status names it by its number, date and seller.
    let api = PaApi::new(pa_cfg).map_err(|e| RespondError::Remote(format!("{pa}: {e}")))?;
    let bytes = api
        .original(&flow_id)
        .await
        .map_err(|e| RespondError::Remote(format!("{pa}: reading flow {flow_id}: {e}")))?
        .ok_or_else(|| {
            RespondError::Remote(format!("{pa} no longer has the file of flow {flow_id}"))
        })?;
    let doc = crate::einvoice::read::read_received(
        &bytes,
        &invoice.updated_at.to_rfc3339(),
        &invoice.origin,
    )
    .map_err(|e| RespondError::Refused(format!("{number}: {e}")))?;
    let origin = format!(
        "status {code} of {number} ({}), asked by {who}",
        invoice.origin
    );
    crate::sync::fill_from_doc(&mut rec, &doc, Side::Purchases, &origin, "");
    keep(&mut rec, &response);
    let md = MappedDocument {
        doc,
        entry: JournalEntry {
            journal_code: String::new(),
            journal_label: String::new(),
            label: String::new(),
            lines: Vec::new(),
        },
        lines: Vec::new(),
    };
    let run_id = crate::sync::new_run_id();
    let sent = driven
        .deliver_page(ledger, vec![(Arc::new(md), rec)], Vec::new(), &run_id)
        .await;
    let r = ledger.get(&k)?;
    match (sent, r) {
        (Err(TargetError::Ledger(e)), _) => Err(RespondError::Ledger(e)),
        (_, Some(r)) if r.state == State::Claimed => Err(unknown()),
        (Err(e), _) => Err(RespondError::Remote(format!(
            "{number}: status {code} not sent: {e}"
        ))),
        (Ok(()), None) => Err(RespondError::Remote(format!(
            "{number}: no record of the status"
        ))),
        (Ok(()), Some(r)) if r.state == State::Held => {
            let why: Vec<String> = r
                .problems
                .iter()
                .map(|p| format!("{} ({}): fix: {}", p.message, p.field, p.fix))
                .collect();
            Err(RespondError::Refused(format!(
                "{number}: status {code} not sent: {}",
                why.join("; ")
            )))
        }
        (Ok(()), Some(r)) if !r.state.is_delivered() => Err(RespondError::Refused(format!(
            "{number}: status {code} not sent: {}",
            r.last_error.as_deref().unwrap_or(r.state.as_str())
        ))),
        (Ok(()), Some(r)) => {
            let what = sent_what(status, response.reason.as_deref(), &pa, &r);
            record_sent(ledger, &invoice.key, &what, who)?;
            Ok(Answered {
                record: r.key.to_string(),
                flow: r.remote_id.clone(),
                already: false,
                message: format!("{number}: {what}"),
            })
        }
    }
}

fn remote(e: TargetError) -> RespondError {
    match e {
        TargetError::Ledger(e) => RespondError::Ledger(e),
        e => RespondError::Remote(e.to_string()),
    }
}
