//! `facto ledger ...`: listing, showing, retrying and forgetting per-document records, and the
//! kept run reports.

use anyhow::{anyhow, Context as _};
use chrono::Utc;

use super::{fail, ledger_failure, Context, Failure, LedgerCmd};
use crate::ledger::{AuditEvent, LedgerError, Record, RecordFilter, State};
use crate::report::{exit, RunReport};

fn record_line(r: &Record) -> String {
    let why = r
        .problems
        .first()
        .map(|p| format!("{}: {}", crate::problem::field_label(&p.field), p.message))
        .unwrap_or_default();
    format!(
        "{:<8} {:<12} {:<18} {:<14} {:<10} {:>6}  {}  {}\n",
        r.key.job,
        r.key.target,
        crate::model::shown_id(&r.key.doc_id),
        r.number,
        r.state.as_str(),
        r.batch_id.map(|b| b.to_string()).unwrap_or_default(),
        r.updated_at.format("%Y-%m-%d %H:%M"),
        why
    )
}

fn find_records(
    ledger: &dyn crate::ledger::Ledger,
    doc: &str,
    target: Option<&str>,
) -> Result<Vec<Record>, Failure> {
    let found: Vec<Record> = ledger
        .find(doc)
        .map_err(ledger_failure)?
        .into_iter()
        .filter(|r| target.is_none_or(|t| r.key.target == t))
        .collect();
    if found.is_empty() {
        return Err(fail(
            exit::USAGE,
            anyhow!(
                "no ledger record for document `{doc}`{}",
                target
                    .map(|t| format!(" and target {t}"))
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(found)
}

/// Keeps, of `found`, the records whose id is exactly `doc` when there are some: a document
/// named by its id wins over another whose number is that id.
fn exact_id_wins(found: &mut Vec<Record>, doc: &str) {
    if found.iter().any(|r| r.key.doc_id == doc) {
        found.retain(|r| r.key.doc_id == doc);
    }
}

/// The records `ledger retry` acts on among `found` (the records answering to `doc`, already
/// narrowed to the asked target): those of `job` when named, and only one document's. An id or
/// number answering for several jobs or documents is refused without `--job`, naming the
/// candidates; within the named job the document whose id is exactly `doc` wins.
///
/// # Errors
///
/// The refusal's message, when more than one document answers.
fn retry_candidates(
    found: Vec<Record>,
    doc: &str,
    job: Option<&str>,
) -> Result<Vec<Record>, String> {
    let mut found: Vec<Record> = found
        .into_iter()
        .filter(|r| job.is_none_or(|j| r.key.job == j))
        .collect();
    let docs = |v: &[Record]| {
        let mut d: Vec<(String, String)> = v
            .iter()
            .map(|r| (r.key.job.clone(), r.key.doc_id.clone()))
            .collect();
        d.sort();
        d.dedup();
        d
    };
    if job.is_some() && docs(&found).len() > 1 {
        exact_id_wins(&mut found, doc);
    }
    let candidates = docs(&found);
    if candidates.len() > 1 {
        let named: Vec<String> = candidates
            .iter()
            .map(|(j, id)| {
                let number = found
                    .iter()
                    .find(|r| r.key.job == *j && r.key.doc_id == *id)
                    .map(|r| r.number.as_str())
                    .unwrap_or_default();
                format!(
                    "job {j}, document {} (number {number})",
                    crate::model::shown_id(id)
                )
            })
            .collect();
        return Err(format!(
            "`{doc}` answers for {} documents: {}; name one with --job JOB and its document id",
            candidates.len(),
            named.join("; ")
        ));
    }
    Ok(found)
}

pub(super) fn ledger_cmd(cx: &mut Context<'_>, cmd: &LedgerCmd) -> Result<u8, Failure> {
    let cfg = cx.load()?;
    let shared = cx.open_ledger(&cfg)?;
    let ledger: &dyn crate::ledger::Ledger = &*shared;
    match cmd {
        LedgerCmd::List { job, target, state } => {
            let state = match state.as_deref() {
                Some(s) => Some(State::parse(s).ok_or_else(|| {
                    let all: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
                    anyhow!("unknown state `{s}`; one of: {}", all.join(", "))
                })?),
                None => None,
            };
            let records = ledger
                .list(&RecordFilter {
                    job: job.clone(),
                    target: target.clone(),
                    state,
                })
                .map_err(ledger_failure)?;
            if cx.out.is_json() {
                cx.out.json(&records)?;
            } else {
                let mut s = format!(
                    "{:<8} {:<12} {:<18} {:<14} {:<10} {:>6}  {:<16}  {}\n",
                    "job", "target", "doc", "number", "state", "batch", "updated", "problem"
                );
                for r in &records {
                    s.push_str(&record_line(r));
                }
                s.push_str(&format!("{} records\n", records.len()));
                cx.out.text(&s)?;
            }
            Ok(exit::OK)
        }
        LedgerCmd::Show { doc } => {
            let found = find_records(ledger, doc, None)?;
            if cx.out.is_json() {
                cx.out.json(&found)?;
            } else {
                let mut s = String::new();
                for r in &found {
                    s.push_str(&format!(
                        "{} — {} {} ({} {}), state {}\n  origin {}\n  source sha256 {}\n  payload sha256 {}\n  mapping sha256 {}\n  batch {} · attempts {}{}\n",
                        r.key, r.kind, r.number, r.customer_id, r.customer_name, r.state.as_str(), r.origin, r.source_hash,
                        r.payload_hash.as_deref().unwrap_or("-"), r.mapping_hash.as_deref().unwrap_or("-"),
                        r.batch_id.map(|b| b.to_string()).unwrap_or_else(|| "-".into()), r.attempts,
                        r.last_error.as_ref().map(|e| format!("\n  last error: {e}")).unwrap_or_default()
                    ));
                    for p in &r.problems {
                        s.push_str(&format!(
                            "  problem {}: {}\n    fix: {}\n",
                            crate::problem::field_label(&p.field),
                            p.message,
                            p.fix
                        ));
                    }
                    if let Some(c) = &r.changed_after_delivery {
                        s.push_str(&format!(
                            "  changed in the source after delivery (seen {}):\n",
                            c.detected_at.format("%Y-%m-%d %H:%M")
                        ));
                        for ch in &c.changes {
                            s.push_str(&format!(
                                "    {}: {} → {}\n",
                                crate::problem::field_label(&ch.field),
                                ch.before,
                                ch.after
                            ));
                        }
                    }
                    s.push_str("  history:\n");
                    for e in &r.history {
                        s.push_str(&format!(
                            "    {} {:<10} {}\n",
                            e.at.format("%Y-%m-%d %H:%M:%S"),
                            e.state.as_str(),
                            e.note
                        ));
                    }
                }
                cx.out.text(&s)?;
            }
            Ok(exit::OK)
        }
        LedgerCmd::Retry { doc, target, job } => {
            let found = find_records(ledger, doc, target.as_deref())?;
            let found = retry_candidates(found, doc, job.as_deref())
                .map_err(|e| fail(exit::USAGE, anyhow!(e)))?;
            if found.is_empty() {
                return Err(fail(
                    exit::USAGE,
                    anyhow!(
                        "no ledger record for document `{doc}` in job {}",
                        job.as_deref().unwrap_or_default()
                    ),
                ));
            }
            let now = Utc::now();
            let mut changed = Vec::new();
            // The states read: a pass that claims or delivers one of them meanwhile wins.
            let mut was = Vec::new();
            let mut notes = Vec::new();
            for mut r in found {
                match r.state {
                    State::Held => notes.push(format!("{}: held; it is checked again by the next sync", r.key)),
                    // Refused or rejected in its lifecycle at the PA: never under this number.
                    State::Rejected if crate::targets::pa::lifecycle::final_refusal(&r).is_some() => {
                        let why = crate::targets::pa::lifecycle::final_refusal(&r).unwrap_or_default();
                        return Err(fail(exit::USAGE, anyhow!("{} is not sent again: {why}", r.key)))
                    }
                    State::Failed | State::Rejected | State::Released => {
                        was.push(r.state);
                        r.transition(State::Released, format!("retry asked ({})", cx.who), now);
                        notes.push(format!("{}: released; the next sync delivers it again", r.key));
                        changed.push(r);
                    }
                    State::Claimed => {
                        return Err(fail(exit::USAGE, anyhow!("{} is claimed by a delivery in progress; run `facto sync` to complete it", r.key)))
                    }
                    _ => {
                        return Err(fail(exit::USAGE, anyhow!(
                            "{} is {} (batch {}): it is never sent twice; cancel its batch (`facto exports cancel {}`) or export with --include-exported",
                            r.key,
                            r.state.as_str(),
                            r.batch_id.map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
                            r.batch_id.map(|b| b.to_string()).unwrap_or_else(|| "ID".into())
                        )))
                    }
                }
            }
            ledger
                .put_records_if(&changed, &was)
                .map_err(ledger_failure)?;
            let mut jobs: Vec<&str> = changed.iter().map(|r| r.key.job.as_str()).collect();
            jobs.sort_unstable();
            jobs.dedup();
            for j in jobs {
                ledger.request_rescan(j).map_err(ledger_failure)?;
            }
            ledger
                .audit(AuditEvent {
                    at: now,
                    action: "retry".into(),
                    detail: notes.join("; "),
                    who: cx.who.clone(),
                })
                .map_err(ledger_failure)?;
            if cx.out.is_json() {
                cx.out.json(&notes)?;
            } else {
                cx.out.text(&(notes.join("\n") + "\n"))?;
            }
            Ok(exit::OK)
        }
        LedgerCmd::Forget {
            doc,
            target,
            job,
            yes,
        } => {
            let mut found: Vec<Record> = find_records(ledger, doc, Some(target))?
                .into_iter()
                .filter(|r| job.as_ref().is_none_or(|j| r.key.job == *j))
                .collect();
            // Within the named job, the document whose id is exactly `doc` wins over one whose
            // number is that id.
            if job.is_some() && found.len() > 1 {
                exact_id_wins(&mut found, doc);
            }
            let [r] = found.as_slice() else {
                if found
                    .iter()
                    .any(|r| r.key.doc_id.starts_with(crate::model::MALFORMED_ID))
                {
                    return Err(fail(
                        exit::USAGE,
                        anyhow!("`{doc}` names a malformed document and another record; `malformed:{doc}` names the malformed one"),
                    ));
                }
                return Err(fail(
                    exit::USAGE,
                    anyhow!("`{doc}` has records in several jobs; name one with --job"),
                ));
            };
            if !yes {
                // A refused or rejected invoice at the PA: the reform forbids sending it again.
                let reform = crate::targets::pa::lifecycle::final_refusal(r)
                    .map(|why| format!(" Beware: {why}; forgetting it lets the next sync send it again under the same number."))
                    .unwrap_or_default();
                return Err(fail(exit::USAGE, anyhow!(
                    "forget removes the record of {} ({}): the next sync treats the document as new and may deliver it again.{reform} Add --yes to confirm",
                    r.key,
                    r.state.as_str()
                )));
            }
            let audit = AuditEvent {
                at: Utc::now(),
                action: "forget".into(),
                detail: format!(
                    "{} forgotten (was {}, batch {:?}, payload {:?})",
                    r.key,
                    r.state.as_str(),
                    r.batch_id,
                    r.payload_hash
                ),
                who: cx.who.clone(),
            };
            let removed = ledger.forget(&r.key, audit).map_err(|e| match e {
                LedgerError::Invalid(_) => fail(exit::USAGE, e),
                e => ledger_failure(e),
            })?;
            // The source is read again from the start, so the document is seen as new.
            ledger
                .request_rescan(&removed.key.job)
                .map_err(ledger_failure)?;
            if cx.out.is_json() {
                cx.out.json(&removed)?;
            } else {
                cx.out.text(&format!(
                    "forgot {} (was {}); audited\n",
                    removed.key,
                    removed.state.as_str()
                ))?;
            }
            Ok(exit::OK)
        }
        LedgerCmd::Reports { run } => {
            match run {
                Some(id) => {
                    let rep = ledger
                        .report(id)
                        .map_err(ledger_failure)?
                        .ok_or_else(|| anyhow!("no kept report for run {id}"))?;
                    if cx.out.is_json() {
                        cx.out.json(&rep)?;
                    } else {
                        let r: RunReport =
                            serde_json::from_value(rep).context("the kept report is unreadable")?;
                        cx.out.text(&r.render())?;
                    }
                }
                None => {
                    let ids = ledger.report_ids().map_err(ledger_failure)?;
                    if cx.out.is_json() {
                        cx.out.json(&ids)?;
                    } else {
                        cx.out.text(&(ids.join("\n") + "\n"))?;
                    }
                }
            }
            Ok(exit::OK)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RecordKey;

    fn rec(job: &str, target: &str, id: &str, number: &str) -> Record {
        let mut r = Record::new(
            RecordKey {
                job: job.into(),
                target: target.into(),
                doc_id: id.into(),
            },
            Utc::now(),
        );
        r.number = number.into();
        r
    }

    fn keys(v: &[Record]) -> Vec<String> {
        v.iter().map(|r| r.key.to_string()).collect()
    }

    #[test]
    fn retry_refuses_a_number_in_two_jobs_without_job() {
        let found = vec![rec("a", "fec", "id-1", "F1"), rec("b", "fec", "id-9", "F1")];
        let e = retry_candidates(found.clone(), "F1", None).unwrap_err();
        assert!(
            e.contains("job a, document id-1") && e.contains("job b, document id-9"),
            "{e}"
        );
        assert!(e.contains("--job"), "{e}");
        let one = retry_candidates(found, "F1", Some("b")).unwrap();
        assert_eq!(keys(&one), ["b/fec/id-9"]);
    }

    #[test]
    fn retry_takes_one_document_on_every_target_of_its_job() {
        let found = vec![rec("a", "fec", "id-1", "F1"), rec("a", "csv", "id-1", "F1")];
        let all = retry_candidates(found, "F1", None).unwrap();
        assert_eq!(keys(&all), ["a/fec/id-1", "a/csv/id-1"]);
    }

    #[test]
    fn retry_prefers_the_exact_id_within_the_named_job() {
        // Document `X7`, and another whose number is `X7`.
        let found = vec![rec("a", "fec", "X7", "F1"), rec("a", "fec", "id-2", "X7")];
        let e = retry_candidates(found.clone(), "X7", None).unwrap_err();
        assert!(e.contains("answers for 2 documents"), "{e}");
        let one = retry_candidates(found, "X7", Some("a")).unwrap();
        assert_eq!(keys(&one), ["a/fec/X7"]);
    }
}
