//! A sync's status 212 phase (issue 15 §2): after the run's deliveries and the targets' polls,
//! the payments of the documents read in this run, and those of earlier runs still waiting,
//! go to each PA target whose connector sends them (`status_212 = "when-due"`, the default),
//! one ledger record per payment ([`crate::targets::pa::cashed_run`]). A payment already sent is
//! never sent again; one waiting for its invoice is not rewritten while it still waits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;

use super::changes::source_hash;
use super::learned;
use super::process::{fill_from_doc, problem_lines};
use super::RunError;
use crate::checks::prepare;
use crate::config::{Config, Connector, Job};
use crate::ledger::{AuditEvent, Ledger, Record, RecordFilter, RecordKey, State, WHO_SYNC};
use crate::mapping::{MappedDocument, Mapping};
use crate::model::{DocStatus, Document};
use crate::report::ProblemLine;
use crate::targets::pa::cashed;
use crate::targets::pa::cashed_run::{document_of, record_id, target_name, CashedRun, WAITING};
use crate::targets::pa::config::Status212;
use crate::targets::pa::status_run::StatusRun;
use crate::targets::{Driven, TargetError, TargetRun};

/// The PA targets of a job that send status 212.
pub(super) fn targets(cfg: &Config, job: &Job) -> Vec<String> {
    job.targets
        .iter()
        .filter(|t| {
            matches!(cfg.connectors.get(*t), Some(Connector::AfnorPa(c)) if c.status_212 == Status212::WhenDue)
        })
        .cloned()
        .collect()
}

/// Whether a document read in this run may owe statuses 212: paid in part or in full, or,
/// when the job's accounting targets may report it paid (`learn`), not paid yet.
pub(super) fn candidate(doc: &Document, learn: bool) -> bool {
    doc.status == DocStatus::Final && (learn || !doc.payments.is_empty()) && cashed::due(doc)
}

/// What the phase tells the run: its report notes, its problem lines, and why a target stopped.
#[derive(Default)]
pub(super) struct Emitted {
    pub(super) notes: Vec<String>,
    pub(super) lines: Vec<ProblemLine>,
    pub(super) error: Option<String>,
}

/// What this run read, for the 212 phase.
pub(super) struct Read {
    /// The documents that may owe statuses 212, by id.
    pub(super) docs: BTreeMap<String, Document>,
    /// The ids of those that owe none now (no payment, not due, not final).
    pub(super) none: BTreeSet<String>,
}

/// Sends the statuses 212 owed for the documents read in this run and for the payments of
/// earlier runs still held, to every PA target of the job that sends them. A held payment the
/// document no longer lists, or whose document owes no 212 any more, is forgotten (audited; in
/// a dry run only reported).
///
/// # Errors
///
/// The ledger fails.
pub(super) async fn emit(
    cfg: &Config,
    ledger: &dyn Ledger,
    job: &Job,
    mapping: &Mapping,
    read: Read,
    dry_run: bool,
    run_id: &str,
) -> Result<Emitted, RunError> {
    let Read { docs, none } = read;
    let mut out = Emitted::default();
    for pa in targets(cfg, job) {
        let Some(Connector::AfnorPa(c)) = cfg.connectors.get(&pa) else {
            continue;
        };
        let c = super::targets::pa_config(cfg, job, c);
        let mut run = match CashedRun::new(&pa, &c, &job.name, dry_run) {
            Ok(r) => r,
            Err(e) => {
                out.error = Some(e.to_string());
                continue;
            }
        };
        let name = target_name(&pa);
        let mut all = docs.clone();
        let learn_from = learned::accounting_targets(cfg, job);
        if !learn_from.is_empty() {
            out.notes.extend(learn(
                ledger,
                job,
                &pa,
                &learn_from,
                &docs,
                &none,
                &mut all,
                dry_run,
            )?);
        }
        // Payments held in earlier runs (waiting for their invoice, most often) come back from
        // the copy their record keeps; one still waiting is left as it is.
        let held = ledger.list(&RecordFilter {
            job: Some(job.name.clone()),
            target: Some(name.clone()),
            state: Some(State::Held),
        })?;
        for mut r in held {
            // A payment removed from the document since (recorded by mistake, then deleted in
            // the invoicing application): nothing is owed for it, and its record goes, audited.
            let doc_id = document_of(&r.key.doc_id);
            let fresh = doc_id.filter(|d| docs.contains_key(*d));
            let learned_from =
                fresh.and_then(|d| learned::target_of(d, &r.key.doc_id, &learn_from));
            let gone = doc_id.is_some_and(|d| none.contains(d))
                || fresh
                    .and_then(|d| all.get(d))
                    .is_some_and(|doc| match learned_from {
                        // A learned payment waiting to be sent goes once the source shows the
                        // document paid in full; otherwise it stays, for what is still unpaid.
                        Some(_) => learned::unpaid(doc).is_some_and(|u| u.is_zero()),
                        None => payment_gone(doc, &r.key.doc_id),
                    });
            if gone {
                let note = format!(
                    "{} ({name}): its payment is no longer in the document, or the document owes no status 212 any more; the record waiting for it is removed",
                    r.number
                );
                if !dry_run {
                    ledger.forget(
                        &r.key,
                        AuditEvent {
                            at: Utc::now(),
                            action: "forget".into(),
                            detail: format!("{}: {note}", r.key),
                            who: WHO_SYNC.into(),
                        },
                    )?;
                }
                out.notes.push(note);
                continue;
            }
            if let (Some(t), Some(date), Some(d)) = (learned_from, r.issue_date, fresh) {
                if let Some(doc) = all.get(d) {
                    let sent = learned::sent(ledger, &job.name, &pa, doc)?.total;
                    if let Some(doc) = all.get_mut(d) {
                        learned::add(doc, t, date, sent);
                    }
                }
            }
            let Some(doc) = r.take_held_doc() else {
                continue;
            };
            let waiting = r.problems.iter().all(|p| p.code == WAITING);
            if waiting && !run.invoice_accepted(ledger, &doc.id)? {
                continue;
            }
            all.entry(doc.id.clone()).or_insert(doc);
        }
        let now = Utc::now();
        let mut items: Vec<(Arc<MappedDocument>, Record)> = Vec::new();
        for mut doc in all.into_values() {
            if doc.payments.is_empty() {
                continue;
            }
            // After a learned payment was sent, the source's later payments are in it.
            let sent = learned::sent(ledger, &job.name, &pa, &doc)?;
            for p in learned::settle_sent(ledger, &job.name, &pa, &sent, &mut doc)? {
                out.notes.push(format!(
                    "{} ({name}): payment {} of {} on {} not sent: the payment learned from an accounting target, already reported, covered it",
                    doc.number,
                    p.id.as_deref().unwrap_or("?"),
                    p.amount,
                    p.date
                ));
            }
            let paid = match cashed::payments(&doc) {
                Ok(p) => p,
                Err(e) => {
                    let mut r = Record::new(key(job, &name, &doc.id), now);
                    fill_from_doc(&mut r, &doc, mapping.journal.side, "", "");
                    r.problems = vec![crate::problem::Problem::new(
                        "cashed-payments",
                        "payments",
                        e.to_string(),
                        "fix the payments in the invoicing application",
                    )];
                    out.lines.extend(problem_lines(&name, &r, "held"));
                    continue;
                }
            };
            let Ok(md) = prepare(&doc, mapping) else {
                // Held for its invoice's own problems: its payments wait with it.
                continue;
            };
            let md = Arc::new(md);
            let hash = source_hash(&doc);
            for p in paid {
                let id = record_id(&doc.id, &p.id);
                let k = key(job, &name, &id);
                let existing = ledger.get(&k)?;
                if existing
                    .as_ref()
                    .is_some_and(|r| r.state.is_delivered() || !r.state.is_eligible())
                {
                    continue;
                }
                let mut rec = existing.unwrap_or_else(|| Record::new(k, now));
                let origin = format!("payment {} of {}", p.id, doc.id);
                fill_from_doc(&mut rec, &doc, mapping.journal.side, &origin, &hash);
                // The payment's own date and amount.
                rec.issue_date = Some(p.date);
                rec.gross = Some(p.amount);
                run.expect(id, p);
                items.push((Arc::clone(&md), rec));
            }
        }
        let mut driven = Driven::new(StatusRun(run), &job.name, dry_run);
        // Flows whose answer was lost are settled before anything is sent again.
        match driven.reconcile(ledger).await {
            Ok(notes) => out.notes.extend(notes),
            Err(e @ (TargetError::Remote { .. } | TargetError::Config(_))) => {
                out.error = Some(e.to_string());
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        let keys: Vec<RecordKey> = items.iter().map(|(_, r)| r.key.clone()).collect();
        match driven.deliver_page(ledger, items, Vec::new(), run_id).await {
            Ok(()) => {}
            Err(e @ (TargetError::Remote { .. } | TargetError::Config(_))) => {
                out.error = Some(e.to_string());
            }
            Err(e) => return Err(e.into()),
        }
        if dry_run {
            continue;
        }
        for k in keys {
            let Some(r) = ledger.get(&k)? else {
                continue;
            };
            match r.state {
                State::Held => out.lines.extend(problem_lines(&name, &r, "held")),
                s if s.is_delivered() => out.notes.push(format!(
                    "{} ({name}): status 212 sent ({}), flow {}",
                    r.number,
                    r.origin,
                    r.remote_id.as_deref().unwrap_or("?")
                )),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Keeps the copies of the documents read in this run that leave something unpaid, drops those
/// now paid or owing no 212, and adds to `all` the payments the accounting targets `from`
/// report (those documents from their kept copies when this run did not read them). Returns
/// the report's notes.
///
/// # Errors
///
/// The ledger fails.
#[allow(clippy::too_many_arguments)]
fn learn(
    ledger: &dyn Ledger,
    job: &Job,
    pa: &str,
    from: &[String],
    docs: &BTreeMap<String, Document>,
    none: &BTreeSet<String>,
    all: &mut BTreeMap<String, Document>,
    dry_run: bool,
) -> Result<Vec<String>, RunError> {
    let name = target_name(pa);
    let mut kept = learned::waiting(ledger, &job.name, pa)?;
    let mut writes: Vec<(Vec<String>, Option<serde_json::Value>)> = Vec::new();
    let entry = |id: &str| vec![job.name.clone(), pa.to_owned(), id.to_owned()];
    for id in none {
        if kept.remove(id).is_some() {
            writes.push((entry(id), None));
        }
    }
    // What the ledger holds of the 212s of the documents read in this run, read once.
    let mut fresh_sent = BTreeMap::new();
    for (id, doc) in docs {
        let sent = if learned::unpaid(doc).is_some_and(|u| !u.is_zero()) {
            Some(learned::sent(ledger, &job.name, pa, doc)?)
        } else {
            None
        };
        // A document whose learned payment was sent (or refused for good) waits no more.
        let open = sent.as_ref().is_some_and(|s| !s.learned_done());
        let was = kept.remove(id);
        if open && was.as_ref() != Some(doc) {
            // A copy that cannot be written leaves the last one as it is.
            if let Ok(v) = serde_json::to_value(doc) {
                writes.push((entry(id), Some(v)));
            }
        } else if !open && was.is_some() {
            writes.push((entry(id), None));
        }
        if let (true, Some(s)) = (open, sent) {
            kept.insert(id.clone(), doc.clone());
            fresh_sent.insert(id.clone(), s);
        }
    }
    let mut notes = Vec::new();
    for (id, doc) in kept {
        let sent = match fresh_sent.remove(&id) {
            Some(s) => s,
            None => learned::sent(ledger, &job.name, pa, &doc)?,
        };
        if sent.learned_done() {
            // Its learned payment was sent (or refused for good): the document waits here
            // no more.
            writes.push((entry(&id), None));
            continue;
        }
        if sent.learned_held() {
            // Held with its copy of the document: the held records bring it back. The copy
            // here stays until it is sent (a send refused for now releases it).
            continue;
        }
        let Some((target, date)) = learned::paid_in(ledger, &job.name, from, &id)? else {
            continue;
        };
        let mut doc = all.remove(&id).unwrap_or(doc);
        learned::add(&mut doc, &target, date, sent.total);
        notes.push(format!(
            "{} ({name}): paid in {target} on {date}, not in the invoicing application: status 212 owed for what was left to pay",
            doc.number
        ));
        all.insert(id, doc);
    }
    if !dry_run && !writes.is_empty() {
        ledger.put_entries(learned::SPACE, &writes)?;
    }
    Ok(notes)
}

/// Whether the 212 record `record` stands for a payment `doc` no longer lists (its payments
/// read; payments that do not read remove nothing).
fn payment_gone(doc: &Document, record: &str) -> bool {
    cashed::payments(doc).is_ok_and(|paid| paid.iter().all(|p| record_id(&doc.id, &p.id) != record))
}

fn key(job: &Job, target: &str, doc_id: &str) -> RecordKey {
    RecordKey {
        job: job.name.clone(),
        target: target.to_owned(),
        doc_id: doc_id.to_owned(),
    }
}
