//! The Overview (`/console`, the admin's landing page): the last pass of each job (time,
//! documents read, grouped problems, and per target its counts and amounts, from the kept run
//! reports), the passes that stopped early (the job, the target when the report names it, the
//! error), and what waits for a human, paged: held and rejected documents, Chorus Pro's
//! `SUSPENDUE` / `A_RECYCLER`, the PA's statuses 207, 208, 210 and 213, read from the records'
//! `remote_status` as `facto status` records them.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::documents::{doc_ref, enc, pager};
use super::html::esc;
use super::i18n::{self, t, Locale};
use super::{guard, page, query, to, Action, Role, Shared};
use crate::ledger::{Record, RecordFilter, State as RecordState};
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
pub(super) async fn overview(State(s): Shared, headers: HeaderMap, uri: Uri) -> Response {
    let a = match guard(&s, &headers, false, Action::Read) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    if a.role != Role::Admin {
        return to("/console/export");
    }
    let lang = a.lang;
    // The ledger reads (reports, every record) off the async threads.
    let server = std::sync::Arc::clone(&s);
    let read = super::blocking(move || {
        let mut ids = server.ledger.report_ids().unwrap_or_default();
        // Run ids sort by time (`R%Y%m%dT...`): newest first.
        ids.sort_unstable_by(|x, y| y.cmp(x));
        let mut last: BTreeMap<String, RunReport> = BTreeMap::new();
        for id in ids.iter().take(MAX_REPORTS) {
            let Some(r) = server
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
        let records = server
            .ledger
            .list(&RecordFilter::default())
            .unwrap_or_default();
        (last.into_values().collect::<Vec<RunReport>>(), records)
    })
    .await;
    let (passes, records) = match read {
        Ok(x) => x,
        Err(e) => {
            return super::failure(
                &a,
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                t(lang, "overview"),
                &e,
            )
        }
    };
    let wpage = query(&uri, "wpage")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    page(
        &a,
        t(lang, "overview"),
        &body(lang, &passes, &records, wpage),
    )
}

/// Rows per page of the waiting table.
pub(super) const WAITING_PAGE: usize = 50;

/// The overview's body: last passes (one row per job and target), the passes that stopped,
/// and page `wpage` (from 1) of what waits for a human, newest change first.
pub(super) fn body(lang: Locale, passes: &[RunReport], records: &[Record], wpage: usize) -> String {
    let mut s = format!("<h2>{}</h2>", esc(t(lang, "last_passes")));
    if passes.is_empty() {
        s.push_str(&format!("<p id=\"passes\">{}</p>", esc(t(lang, "no_pass"))));
    } else {
        s.push_str(&passes_table(lang, passes));
    }
    s.push_str(&format!("<h2>{}</h2>", esc(t(lang, "stopped"))));
    s.push_str(&stopped(lang, passes));
    s.push_str(&format!("<h2>{}</h2>", esc(t(lang, "waiting"))));
    s.push_str(&waiting(lang, records, wpage));
    s
}

/// The last passes: per job its time, documents read and problems once, and under it one row
/// per target with that target's own counts and gross (a document goes to each target: summed
/// across targets, it would count twice).
fn passes_table(lang: Locale, passes: &[RunReport]) -> String {
    let mut s = format!(
        "<table id=\"passes\"><thead><tr><th>Job</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(t(lang, "when")),
        esc(t(lang, "read")),
        esc(t(lang, "target")),
        esc(t(lang, "delivered")),
        esc(t(lang, "held")),
        esc(t(lang, "rejected_failed")),
        esc(t(lang, "gross")),
        esc(t(lang, "problems")),
    );
    for p in passes {
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
        let span = p.targets.len().max(1);
        let job_cells = format!(
            "<td rowspan=\"{span}\">{job}</td><td rowspan=\"{span}\">{} {}</td><td class=\"num\" rowspan=\"{span}\">{}</td>",
            i18n::date(lang, p.started_at.date_naive()),
            p.started_at.format("%H:%M UTC"),
            p.documents_read,
            job = esc(&p.job),
        );
        let problems = format!("<td rowspan=\"{span}\"><ul class=\"groups\">{groups}</ul></td>");
        if p.targets.is_empty() {
            s.push_str(&format!(
                "<tr class=\"pass\" data-job=\"{}\">{job_cells}<td></td><td></td><td></td><td></td><td></td>{problems}</tr>",
                esc(&p.job)
            ));
        }
        for (i, tr) in p.targets.iter().enumerate() {
            let (first, last) = if i == 0 {
                (job_cells.as_str(), problems.as_str())
            } else {
                ("", "")
            };
            s.push_str(&format!(
                "<tr class=\"pass\" data-job=\"{}\" data-target=\"{}\">{first}<td>{}</td><td class=\"num delivered\">{}</td><td class=\"num held\">{}</td><td class=\"num bad\">{}</td><td class=\"num gross\">{}</td>{last}</tr>",
                esc(&p.job),
                esc(&tr.target),
                esc(&tr.target),
                tr.delivered,
                tr.held,
                tr.rejected.saturating_add(tr.failed),
                i18n::amount(lang, tr.amounts.gross),
            ));
        }
    }
    s.push_str("</tbody></table>");
    s
}

/// The target a stopped pass names: its error is a target's (`{target}: {detail}`, as
/// `TargetError::Remote` writes it) for one of the pass's targets; else none (the source, the
/// ledger, or the report does not tell).
fn stopped_target<'a>(p: &'a RunReport, error: &str) -> Option<&'a str> {
    p.targets.iter().map(|t| t.target.as_str()).find(|t| {
        error
            .strip_prefix(t)
            .is_some_and(|rest| rest.starts_with(": "))
    })
}

/// The passes that stopped early: job, the target when the report tells it, when, the error.
fn stopped(lang: Locale, passes: &[RunReport]) -> String {
    let stopped: Vec<(&RunReport, &str)> = passes
        .iter()
        .filter_map(|p| p.error.as_deref().map(|e| (p, e)))
        .collect();
    if stopped.is_empty() {
        return format!("<p id=\"stopped\">{}</p>", esc(t(lang, "none_stopped")));
    }
    let mut s = format!(
        "<table id=\"stopped\"><thead><tr><th>Job</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(t(lang, "target")),
        esc(t(lang, "when")),
        esc(t(lang, "error")),
    );
    for (p, e) in stopped {
        let at = p.finished_at.unwrap_or(p.started_at);
        let target = stopped_target(p, e);
        s.push_str(&format!(
            "<tr class=\"error\" data-job=\"{job}\" data-target=\"{tg}\"><td>{job}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            target.map_or_else(|| "-".to_owned(), esc),
            i18n::date(lang, at.date_naive()),
            at.format("%H:%M UTC"),
            esc(e),
            job = esc(&p.job),
            tg = esc(target.unwrap_or_default()),
        ));
    }
    s.push_str("</tbody></table>");
    s
}

/// Page `wpage` of the records waiting for a human, newest change first, with the pager.
fn waiting(lang: Locale, records: &[Record], wpage: usize) -> String {
    let mut waiting: Vec<(&Record, &str)> = records
        .iter()
        .filter_map(|r| waits_for_human(r).map(|w| (r, w)))
        .collect();
    if waiting.is_empty() {
        return format!("<p id=\"waiting\">{}</p>", esc(t(lang, "none_waiting")));
    }
    waiting.sort_by_key(|(r, _)| std::cmp::Reverse(r.updated_at));
    let pages = waiting.len().div_ceil(WAITING_PAGE);
    let page = wpage.clamp(1, pages);
    let mut s = format!(
        "<table id=\"waiting\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(t(lang, "number")),
        esc(t(lang, "customer")),
        esc(t(lang, "target")),
        esc(t(lang, "why")),
        esc(t(lang, "remote_status")),
        esc(t(lang, "reasons")),
    );
    for (r, why) in waiting
        .iter()
        .skip((page - 1) * WAITING_PAGE)
        .take(WAITING_PAGE)
    {
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
    s.push_str(&pager(
        lang,
        "waiting-",
        (page, pages),
        waiting.len(),
        &|n| format!("/console?wpage={n}"),
    ));
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
            1,
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

    fn target(name: &str, delivered: u64, gross: &str) -> TargetReport {
        TargetReport {
            target: name.into(),
            kind: "journal-file".into(),
            delivered,
            held: 1,
            failed: 2,
            amounts: Amounts {
                gross: gross.parse().unwrap_or_default(),
                ..Amounts::default()
            },
            ..TargetReport::default()
        }
    }

    #[test]
    fn each_target_of_a_pass_has_its_own_row_and_gross() {
        let mut p = RunReport::new("R1", "sync", "sales", false);
        p.documents_read = 17;
        p.targets = vec![target("fec", 5, "1200"), target("csv", 4, "1000")];
        let html = body(Locale::Fr, &[p], &[], 1);
        assert_eq!(html.matches("<tr class=\"pass\"").count(), 2, "{html}");
        for (t, delivered, gross) in [("fec", 5, "1\u{202F}200,00"), ("csv", 4, "1\u{202F}000,00")]
        {
            let row = html
                .split("<tr ")
                .find(|r| r.contains(&format!("data-target=\"{t}\"")))
                .unwrap_or_default();
            assert!(
                row.contains(&format!("class=\"num delivered\">{delivered}<"))
                    && row.contains(&format!("class=\"num gross\">{gross}<"))
                    && row.contains("class=\"num held\">1<")
                    && row.contains("class=\"num bad\">2<"),
                "{t}: {row}"
            );
        }
        // Not added across targets: no 9 delivered, no 2 200 gross; the documents read once.
        assert!(
            !html.contains(">9<") && !html.contains("2\u{202F}200,00"),
            "{html}"
        );
        assert_eq!(html.matches(">17<").count(), 1, "{html}");
    }

    #[test]
    fn a_stopped_pass_names_its_target_when_its_report_tells() {
        let mut by_target = RunReport::new("R1", "sync", "sales", false);
        by_target.targets = vec![target("pa", 0, "0"), target("pa-2", 0, "0")];
        by_target.error = Some("pa-2: unreachable <timeout>".into());
        let mut by_source = RunReport::new("R2", "sync", "purchases", false);
        by_source.targets = vec![target("pa", 0, "0")];
        by_source.error = Some("source unreachable".into());
        let html = body(Locale::En, &[by_target, by_source], &[], 1);
        assert!(
            html.contains("data-job=\"sales\" data-target=\"pa-2\"><td>sales</td><td>pa-2</td>"),
            "{html}"
        );
        assert!(html.contains("unreachable &lt;timeout&gt;"), "{html}");
        assert!(
            html.contains("data-job=\"purchases\" data-target=\"\"><td>purchases</td><td>-</td>"),
            "no target invented: {html}"
        );
    }

    #[test]
    fn the_waiting_table_is_paged_newest_first() {
        let start = Utc::now();
        let records: Vec<Record> = (0..WAITING_PAGE + 3)
            .map(|i| {
                let mut r = record(&format!("F{i}"), RecordState::Held, None);
                r.updated_at = start + chrono::Duration::seconds(i64::try_from(i).unwrap_or(0));
                r
            })
            .collect();
        let newest = format!("F{}", WAITING_PAGE + 2);
        let html = body(Locale::En, &[], &records, 1);
        assert_eq!(html.matches("<tr class=\"wait").count(), WAITING_PAGE);
        let first = html.find("<tr class=\"wait").unwrap_or_default();
        assert!(
            html[first..].starts_with(&format!(
                "<tr class=\"wait wait_held\" data-number=\"{newest}\""
            )),
            "{html}"
        );
        assert!(
            html.contains(&format!("Page 1/2 · {} records", WAITING_PAGE + 3))
                && html.contains("id=\"waiting-next\" href=\"/console?wpage=2\"")
                && !html.contains("waiting-prev"),
            "{html}"
        );
        let html = body(Locale::En, &[], &records, 2);
        assert_eq!(html.matches("<tr class=\"wait").count(), 3);
        assert!(
            html.contains("data-number=\"F0\"")
                && html.contains("id=\"waiting-prev\" href=\"/console?wpage=1\""),
            "{html}"
        );
    }
}
