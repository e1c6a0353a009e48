//! The Overview (`/console`, the admin's landing page): the last pass of each job (time,
//! counts, amounts, grouped problems, from the kept run reports), the jobs whose last pass
//! stopped early (a target or the source unreachable), and what waits for a human: held and
//! rejected documents, Chorus Pro's `SUSPENDUE` / `A_RECYCLER`, the PA's statuses 207, 208, 210
//! and 213, read from the records' `remote_status` as `facto status` records them.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::documents::{doc_ref, enc};
use super::html::esc;
use super::i18n::{self, t, Locale};
use super::{guard, page, to, Action, Role, Shared};
use crate::ledger::{Ledger, Record, RecordFilter, State as RecordState};
use crate::report::RunReport;

/// Most kept reports read to find each job's last pass (newest first).
const MAX_REPORTS: usize = 500;

/// Why a record waits for a human, if it does: a ledger state or a remote status that only a
/// person can move on.
pub(super) fn waits_for_human(r: &Record) -> Option<&'static str> {
    let remote = r.remote_status.as_deref().unwrap_or_default();
    let pa = |code: &str| remote.starts_with(&format!("cdv:{code}"));
    if remote.starts_with("SUSPENDUE") {
        Some("chorus_suspended")
    } else if remote.starts_with("A_RECYCLER") {
        Some("chorus_recycle")
    } else if pa("207") || pa("208") || pa("210") || pa("213") {
        Some("pa_status")
    } else {
        match r.state {
            RecordState::Held => Some("wait_held"),
            RecordState::Rejected => Some("wait_rejected"),
            RecordState::Failed => Some("wait_failed"),
            _ => None,
        }
    }
}

/// `GET /console`: the overview for the admin; the accountant lands on the export wizard.
pub(super) async fn overview(State(s): Shared, headers: HeaderMap) -> Response {
    let a = match guard(&s, &headers, false, Action::Read) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    if a.role != Role::Admin {
        return to("/console/export");
    }
    let lang = a.lang;
    let mut ids = s.ledger.report_ids().unwrap_or_default();
    // Run ids sort by time (`R%Y%m%dT...`): newest first.
    ids.sort_unstable_by(|x, y| y.cmp(x));
    let mut last: BTreeMap<String, RunReport> = BTreeMap::new();
    for id in ids.iter().take(MAX_REPORTS) {
        let Some(r) = s
            .ledger
            .report(id)
            .ok()
            .flatten()
            .and_then(|v| serde_json::from_value::<RunReport>(v).ok())
        else {
            continue;
        };
        if r.command == "sync" && !r.dry_run && !last.contains_key(&r.job) {
            last.insert(r.job.clone(), r);
        }
    }
    let records = s.ledger.list(&RecordFilter::default()).unwrap_or_default();
    let passes: Vec<RunReport> = last.into_values().collect();
    page(&a, t(lang, "overview"), &body(lang, &passes, &records))
}

/// The overview's body: last passes, stopped jobs, what waits for a human.
pub(super) fn body(lang: Locale, passes: &[RunReport], records: &[Record]) -> String {
    let mut s = format!("<h2>{}</h2>", esc(t(lang, "last_passes")));
    if passes.is_empty() {
        s.push_str(&format!("<p id=\"passes\">{}</p>", esc(t(lang, "no_pass"))));
    } else {
        s.push_str(&format!(
            "<table id=\"passes\"><thead><tr><th>Job</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            esc(t(lang, "when")),
            esc(t(lang, "read")),
            esc(t(lang, "delivered")),
            esc(t(lang, "held")),
            esc(t(lang, "rejected_failed")),
            esc(t(lang, "gross")),
            esc(t(lang, "problems")),
        ));
        for p in passes {
            let sum =
                |f: fn(&crate::report::TargetReport) -> u64| p.targets.iter().map(f).sum::<u64>();
            let gross: rust_decimal::Decimal = p.targets.iter().map(|t| t.amounts.gross).sum();
            let groups: String = p
                .problem_groups
                .iter()
                .map(|g| {
                    format!(
                        "<li>{} × {} — {}: {} <span class=\"fix\">{} {}</span></li>",
                        g.documents,
                        esc(i18n::state(lang, &g.status)),
                        esc(&crate::problem::field_label(&g.field)),
                        esc(&g.reason),
                        esc(t(lang, "fix")),
                        esc(&g.fix)
                    )
                })
                .collect();
            s.push_str(&format!(
                "<tr class=\"pass\" data-job=\"{job}\"><td>{job}</td><td>{} {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><ul class=\"groups\">{groups}</ul></td></tr>",
                i18n::date(lang, p.started_at.date_naive()),
                p.started_at.format("%H:%M UTC"),
                p.documents_read,
                sum(|t| t.delivered),
                sum(|t| t.held),
                sum(|t| t.rejected + t.failed),
                i18n::amount(lang, gross),
                job = esc(&p.job),
            ));
        }
        s.push_str("</tbody></table>");
    }
    s.push_str(&format!("<h2>{}</h2>", esc(t(lang, "stopped"))));
    let stopped: Vec<&RunReport> = passes.iter().filter(|p| p.error.is_some()).collect();
    if stopped.is_empty() {
        s.push_str(&format!(
            "<p id=\"stopped\">{}</p>",
            esc(t(lang, "none_stopped"))
        ));
    } else {
        s.push_str("<ul id=\"stopped\">");
        for p in stopped {
            s.push_str(&format!(
                "<li class=\"error\"><strong>{}</strong>: {}</li>",
                esc(&p.job),
                esc(p.error.as_deref().unwrap_or_default())
            ));
        }
        s.push_str("</ul>");
    }
    s.push_str(&format!("<h2>{}</h2>", esc(t(lang, "waiting"))));
    let waiting: Vec<(&Record, &str)> = records
        .iter()
        .filter_map(|r| waits_for_human(r).map(|w| (r, w)))
        .collect();
    if waiting.is_empty() {
        s.push_str(&format!(
            "<p id=\"waiting\">{}</p>",
            esc(t(lang, "none_waiting"))
        ));
        return s;
    }
    s.push_str(&format!(
        "<table id=\"waiting\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(t(lang, "number")),
        esc(t(lang, "customer")),
        esc(t(lang, "target")),
        esc(t(lang, "why")),
        esc(t(lang, "remote_status")),
        esc(t(lang, "reasons")),
    ));
    for (r, why) in waiting {
        s.push_str(&format!(
            "<tr class=\"wait {w}\" data-number=\"{n}\"><td><a href=\"/console/documents/{href}\">{n}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.customer_name),
            esc(&r.key.target),
            esc(t(lang, why)),
            esc(r.remote_status.as_deref().unwrap_or_default()),
            esc(
                &r.problems
                    .first()
                    .map(|p| format!("{}: {}", crate::problem::field_label(&p.field), p.message))
                    .or_else(|| r.last_error.clone())
                    .unwrap_or_default()
            ),
            w = esc(why),
            n = esc(doc_ref(r)),
            href = enc(doc_ref(r)),
        ));
    }
    s.push_str("</tbody></table>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RecordKey;
    use crate::report::{Amounts, TargetReport};
    use chrono::Utc;

    fn record(number: &str, state: RecordState, remote: Option<&str>) -> Record {
        let mut r = Record::new(
            RecordKey {
                job: "sales".into(),
                target: "pa".into(),
                doc_id: number.into(),
            },
            Utc::now(),
        );
        r.number = number.into();
        r.state = state;
        r.remote_status = remote.map(str::to_owned);
        r
    }

    #[test]
    fn what_waits_for_a_human() {
        let cases = [
            (RecordState::Held, None, Some("wait_held")),
            (RecordState::Rejected, None, Some("wait_rejected")),
            (
                RecordState::Delivered,
                Some("SUSPENDUE"),
                Some("chorus_suspended"),
            ),
            (
                RecordState::Delivered,
                Some("A_RECYCLER"),
                Some("chorus_recycle"),
            ),
            (
                RecordState::Delivered,
                Some("cdv:208 Suspendue"),
                Some("pa_status"),
            ),
            (
                RecordState::Rejected,
                Some("cdv:213 Rejetée"),
                Some("pa_status"),
            ),
            (RecordState::Delivered, Some("cdv:205 Approuvée"), None),
            (RecordState::Delivered, Some("MISE_A_DISPOSITION"), None),
            (RecordState::Paid, None, None),
        ];
        for (st, remote, want) in cases {
            assert_eq!(
                waits_for_human(&record("F1", st, remote)),
                want,
                "{st:?} {remote:?}"
            );
        }
    }

    #[test]
    fn the_overview_lists_passes_stops_and_waiting_documents_escaped() {
        let mut p = RunReport::new("R1", "sync", "sales<", false);
        p.documents_read = 7;
        p.targets.push(TargetReport {
            target: "sales-fec".into(),
            kind: "fec".into(),
            delivered: 5,
            already_delivered: 0,
            held: 1,
            rejected: 0,
            failed: 1,
            changed_after_delivery: 0,
            amounts: Amounts {
                net: "1000".parse().unwrap_or_default(),
                tax: "200".parse().unwrap_or_default(),
                gross: "1200".parse().unwrap_or_default(),
            },
            nothing_to_book: 0,
        });
        p.error = Some("source <down>".into());
        let mut held = record("F<2>", RecordState::Held, None);
        held.customer_name = "A & B".into();
        let html = body(
            Locale::Fr,
            &[p],
            &[
                held,
                record("F3", RecordState::Delivered, Some("cdv:207 Litige")),
                record("F4", RecordState::Paid, None),
            ],
        );
        assert!(html.contains("data-job=\"sales&lt;\""), "{html}");
        assert!(html.contains("1\u{202F}200,00"), "{html}");
        assert!(html.contains("source &lt;down&gt;"), "{html}");
        assert!(
            html.contains("href=\"/console/documents/F%3C2%3E\">F&lt;2&gt;</a>"),
            "{html}"
        );
        assert!(
            html.contains("A &amp; B") && html.contains("cdv:207 Litige"),
            "{html}"
        );
        assert!(!html.contains("data-number=\"F4\""), "{html}");
        assert_eq!(html.matches("<tr class=\"wait").count(), 2);
    }
}
