//! The console's Audit page (admin): every change recorded in the ledger's audit log, made
//! through the console, the admin API or the CLI: who (the event's `who`: the console's role,
//! the command line, the admin API...), when (dates as the language writes them), what, and the
//! detail with the diff of a mapping save; newest first, a page at a time.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::html::{self, esc};
use super::i18n::{self, t, Locale};
use super::{guard, html_response, query, Action, Shared};
use crate::ledger::AuditEvent;

/// Events per page.
pub(super) const PER_PAGE: usize = 50;

/// Who made a change, from the event's `who`: the console's role, the command line, the admin
/// API, the editor page or a pass; "" (a record older than the field) is the command line or
/// the API, which were not told apart then.
pub(super) fn who(lang: Locale, e: &AuditEvent) -> String {
    match recorded_who(e).as_str() {
        "" => t(lang, "cli").to_owned(),
        w => match w.strip_prefix("console:") {
            Some(role) => format!("{} (console)", t(lang, role)),
            None => t(lang, &format!("who_{w}")).to_owned(),
        },
    }
}

/// The raw value of who acted, for the cell's title: `web console, role admin`, `cli`...
fn who_title(e: &AuditEvent) -> String {
    let w = recorded_who(e);
    match w.strip_prefix("console:") {
        Some(role) => format!("web console, role {role}"),
        None if w.is_empty() => "command line or API".to_owned(),
        None => w,
    }
}

/// `who`, or for an event the console wrote before the field existed (its action starts with
/// `console-`, which only the console writes), the role it put at the very end of the detail.
fn recorded_who(e: &AuditEvent) -> String {
    if e.who.is_empty() && e.action.starts_with("console-") {
        for role in ["admin", "accountant"] {
            if e.detail.ends_with(&format!("(web console, role {role})")) {
                return format!("console:{role}");
            }
        }
    }
    e.who.clone()
}

/// The rows of page `page` (0 = newest) of `trail` (oldest first, as the ledger keeps it),
/// and whether an older page follows.
pub(super) fn rows(lang: Locale, trail: &[AuditEvent], page: usize) -> (String, bool) {
    let mut out = String::new();
    let newest_first = trail.iter().rev().skip(page.saturating_mul(PER_PAGE));
    for e in newest_first.clone().take(PER_PAGE) {
        out.push_str(&format!(
            "<tr class=\"event\" data-action=\"{a}\" data-who=\"{w}\"><td>{} {}</td><td class=\"who\" title=\"{}\">{}</td><td>{a}</td><td><pre>{}</pre></td></tr>",
            i18n::date(lang, e.at.date_naive()),
            e.at.format("%H:%M:%S UTC"),
            esc(&who_title(e)),
            esc(&who(lang, e)),
            esc(&e.detail),
            a = esc(&e.action),
            w = esc(&e.who),
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
    // The whole trail is read from the store: off the async threads.
    let server = std::sync::Arc::clone(&s);
    let trail = super::blocking(move || server.ledger.audit_trail().unwrap_or_default())
        .await
        .unwrap_or_default();
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
            who: if detail.contains("web console") {
                "console:admin".into()
            } else {
                String::new()
            },
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

    #[test]
    fn an_event_the_console_wrote_before_the_field_keeps_its_role() {
        let old: AuditEvent = serde_json::from_value(serde_json::json!({
            "at": "2026-11-30T10:00:00Z",
            "action": "console-retry",
            "detail": "demo/fec/F1: released (web console, role admin)"
        }))
        .unwrap();
        assert_eq!(
            who(Locale::En, &old),
            format!("{} (console)", t(Locale::En, "admin"))
        );
        // Not a console action: the text proves nothing.
        let cli: AuditEvent = serde_json::from_value(serde_json::json!({
            "at": "2026-11-30T10:00:00Z",
            "action": "forget",
            "detail": "x (web console, role admin)"
        }))
        .unwrap();
        assert_eq!(who(Locale::En, &cli), t(Locale::En, "cli"));
    }

    #[test]
    fn who_is_read_from_its_field_and_old_records_without_it_still_read() {
        // Written before `who` was kept: the command line or the API.
        let old: AuditEvent = serde_json::from_str(
            r#"{"at":"2026-03-07T09:00:00Z","action":"forget","detail":"x forgotten"}"#,
        )
        .unwrap();
        assert_eq!(old.who, "");
        assert_eq!(who(Locale::En, &old), "command line or API");
        let with = |w: &str, detail: &str| AuditEvent {
            who: w.into(),
            detail: detail.into(),
            ..old.clone()
        };
        // The detail is no longer parsed: a detail quoting the old text names nobody.
        let quoted = with("cli", "note: (web console, role admin)");
        assert_eq!(who(Locale::En, &quoted), "command line");
        assert_eq!(
            who(Locale::Fr, &with("console:accountant", "")),
            "comptable (console)"
        );
        assert_eq!(who(Locale::En, &with("api", "")), "admin API");
        assert_eq!(who(Locale::Fr, &with("sync", "")), "passe automatique");
        let (row, _) = rows(Locale::En, &[with("console:accountant", "batch 3")], 0);
        assert!(
            row.contains("data-who=\"console:accountant\"")
                && row.contains("title=\"web console, role accountant\">accountant (console)<"),
            "{row}"
        );
    }
}
