//! The console's Audit page (admin): every change recorded in the ledger's audit log, made
//! through the console, the admin API or the CLI: who (the console's role, else the command
//! line or API), when (dates as the language writes them), what, and the detail with the diff
//! of a mapping save; newest first, a page at a time.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::html::{self, esc};
use super::i18n::{self, t, Locale};
use super::{guard, html_response, query, Action, Shared};
use crate::ledger::{AuditEvent, Ledger};

/// Events per page.
pub(super) const PER_PAGE: usize = 50;

/// Who made a change: the console's role, recorded as `(web console, role …)`, else the
/// command line or the admin API.
pub(super) fn who(lang: Locale, e: &AuditEvent) -> String {
    let role = e
        .detail
        .split("(web console, role ")
        .nth(1)
        .and_then(|r| r.split(')').next());
    match role {
        Some(r) => format!("{} (console)", t(lang, r)),
        None => t(lang, "cli").to_owned(),
    }
}

/// The rows of page `page` (0 = newest) of `trail` (oldest first, as the ledger keeps it),
/// and whether an older page follows.
pub(super) fn rows(lang: Locale, trail: &[AuditEvent], page: usize) -> (String, bool) {
    let mut out = String::new();
    let newest_first = trail.iter().rev().skip(page.saturating_mul(PER_PAGE));
    for e in newest_first.clone().take(PER_PAGE) {
        out.push_str(&format!(
            "<tr class=\"event\" data-action=\"{a}\"><td>{} {}</td><td class=\"who\">{}</td><td>{a}</td><td><pre>{}</pre></td></tr>",
            i18n::date(lang, e.at.date_naive()),
            e.at.format("%H:%M:%S UTC"),
            esc(&who(lang, e)),
            esc(&e.detail),
            a = esc(&e.action),
        ));
    }
    (out, newest_first.count() > PER_PAGE)
}

/// `GET /console/audit[?page=N]` (admin): every change, newest first.
pub(super) async fn page(State(s): Shared, headers: HeaderMap, uri: Uri) -> Response {
    let a = match guard(&s, &headers, false, Action::Admin) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let lang = a.lang;
    let n: usize = query(&uri, "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let trail = s.ledger.audit_trail().unwrap_or_default();
    let (rows, more) = rows(lang, &trail, n);
    let mut pager = String::new();
    if n > 0 {
        pager.push_str(&format!(
            "<a id=\"newer\" href=\"/console/audit?page={}\">{}</a> ",
            n - 1,
            esc(t(lang, "previous"))
        ));
    }
    if more {
        pager.push_str(&format!(
            "<a id=\"older\" href=\"/console/audit?page={}\">{}</a>",
            n + 1,
            esc(t(lang, "next"))
        ));
    }
    let body = format!(
        "<table id=\"audit\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{rows}</tbody></table><p class=\"pager\">{pager}</p>",
        esc(t(lang, "when")),
        esc(t(lang, "who")),
        esc(t(lang, "action")),
        esc(t(lang, "detail"))
    );
    html_response(
        StatusCode::OK,
        html::frame(Some(&a.viewer()), lang, t(lang, "audit"), &body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event(i: usize, detail: &str) -> AuditEvent {
        AuditEvent {
            at: chrono::Utc
                .with_ymd_and_hms(2026, 3, 7, 9, 0, 0)
                .single()
                .unwrap_or_default(),
            action: format!("act-{i}"),
            detail: detail.to_owned(),
        }
    }

    #[test]
    fn newest_first_paged_with_the_role_and_french_dates() {
        let trail: Vec<AuditEvent> = (0..PER_PAGE + 3)
            .map(|i| {
                event(
                    i,
                    if i == 0 {
                        "x (web console, role admin)"
                    } else {
                        "<cli>"
                    },
                )
            })
            .collect();
        let (first, more) = rows(Locale::Fr, &trail, 0);
        assert!(more);
        assert_eq!(first.matches("<tr").count(), PER_PAGE);
        let newest = format!("data-action=\"act-{}\"", PER_PAGE + 2);
        assert!(
            first.find(&newest) < first.find("data-action=\"act-3\""),
            "{first}"
        );
        assert!(first.contains("07/03/2026 09:00:00 UTC"), "{first}");
        assert!(first.contains("&lt;cli&gt;"));
        let (last, more) = rows(Locale::Fr, &trail, 1);
        assert!(!more);
        assert_eq!(last.matches("<tr").count(), 3);
        assert!(last.contains("administrateur (console)"), "{last}");
        assert!(last.contains("ligne de commande ou API"));
        assert_eq!(who(Locale::En, &trail[0]), "admin (console)");
    }
}
