//! `facto events`: the outbox of document events for the invoicing application
//! ([`crate::events`]): what waits, and what the receiver refused, sent again or discarded by an
//! admin (audited).

use anyhow::anyhow;
use chrono::Utc;

use super::args::EventsCmd;
use super::{fail, ledger_failure, Context, Failure};
use crate::ledger::AuditEvent;
use crate::report::exit;

/// `facto events list|resend|discard`.
pub(super) fn events_cmd(cx: &mut Context<'_>, cmd: &EventsCmd) -> Result<u8, Failure> {
    let cfg = cx.load()?;
    let shared = cx.open_ledger(&cfg)?;
    let ledger: &dyn crate::ledger::Ledger = &*shared;
    let audit = |action: &str, detail: String| {
        ledger.audit(AuditEvent {
            at: Utc::now(),
            action: action.to_owned(),
            detail,
            who: cx.who.clone(),
        })
    };
    match cmd {
        EventsCmd::List { refused } => {
            let q: Vec<_> = crate::events::outbox(ledger)
                .map_err(ledger_failure)?
                .into_iter()
                .filter(|q| !refused || q.refused)
                .collect();
            if cx.out.is_json() {
                cx.out.json(&q)?;
                return Ok(exit::OK);
            }
            let mut s = format!(
                "{:<34} {:<22} {:<14} {:<18} {:>8}  {}\n",
                "id", "kind", "document", "at", "attempts", "last error"
            );
            for e in &q {
                s.push_str(&format!(
                    "{:<34} {:<22} {:<14} {:<18} {:>8}  {}{}\n",
                    e.event.id,
                    serde_json::to_value(e.event.event)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    e.event.number,
                    e.event.at.format("%Y-%m-%d %H:%M"),
                    e.attempts,
                    if e.refused { "REFUSED " } else { "" },
                    e.last_error.as_deref().unwrap_or("")
                ));
            }
            s.push_str(&format!(
                "{} events ({} refused)\n",
                q.len(),
                q.iter().filter(|e| e.refused).count()
            ));
            cx.out.text(&s)?;
            Ok(exit::OK)
        }
        EventsCmd::Resend { id, .. } => {
            let done = crate::events::resend(ledger, id.as_deref()).map_err(ledger_failure)?;
            if let (Some(id), true) = (id, done.is_empty()) {
                return Err(fail(
                    exit::USAGE,
                    anyhow!("no refused event `{id}` in the outbox: `facto events list --refused` lists them"),
                ));
            }
            for d in &done {
                audit(
                    "events-resend",
                    format!("event {d}: sent again at the next pass"),
                )
                .map_err(ledger_failure)?;
            }
            cx.out.text(&format!(
                "{} refused events go again at the next pass\n",
                done.len()
            ))?;
            Ok(exit::OK)
        }
        EventsCmd::Discard { id, yes } => {
            if !yes {
                return Err(fail(
                    exit::USAGE,
                    anyhow!("discard removes event `{id}` from the outbox: the invoicing application never hears it. Add --yes to confirm"),
                ));
            }
            if !crate::events::discard(ledger, id).map_err(ledger_failure)? {
                return Err(fail(
                    exit::USAGE,
                    anyhow!("no event `{id}` in the outbox: `facto events list` lists them"),
                ));
            }
            audit(
                "events-discard",
                format!("event {id}: removed from the outbox, never sent"),
            )
            .map_err(ledger_failure)?;
            cx.out.text(&format!("event {id} discarded\n"))?;
            Ok(exit::OK)
        }
    }
}
