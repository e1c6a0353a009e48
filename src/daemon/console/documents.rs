//! The Documents pages: a search over the ledger's records (number, customer, state, target,
//! period; paged) and a document's page (its record per target, remote ids and statuses, last
//! error, history, the diff when it changed after delivery, held reasons with their fixes).
//! The admin's actions (in `actions`) run the CLI's own commands through the daemon's executor:
//! `ledger retry` of one record, `ledger forget --yes` (after a dialog showing the CLI's own
//! warning) and `sync --job` ("run this job now"); each is audited with the role. The
//! accountant reads only.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::NaiveDate;

mod actions;

use super::html::{esc, Viewer};
use super::i18n::{self, t, Locale};
use super::{cli, failure, guard, page, query, Action, Role, Shared};
use crate::ledger::{Record, State as RecordState};
use actions::forget_args;
pub(super) use actions::{forget, retry, run_now};

/// Rows per page of the search.
pub(super) const PAGE_SIZE: usize = 50;

/// A path segment or query value percent-encoded (unreserved characters kept).
pub(super) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How a document is named in its page's address: its number, else its id.
pub(super) fn doc_ref(r: &Record) -> &str {
    if r.number.trim().is_empty() {
        &r.key.doc_id
    } else {
        &r.number
    }
}

/// The search's criteria, as the GET form sends them.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Criteria {
    /// Part of the number or of the customer's name or id (any case).
    pub(super) text: String,
    /// A ledger state (`held`, `delivered`, ...).
    pub(super) state: String,
    /// A target connector.
    pub(super) target: String,
    /// First issue date.
    pub(super) from: Option<NaiveDate>,
    /// Last issue date.
    pub(super) to: Option<NaiveDate>,
    /// Page, from 1.
    pub(super) page: usize,
}

impl Criteria {
    fn of(uri: &Uri) -> Criteria {
        let date = |k: &str| query(uri, k).and_then(|v| v.parse::<NaiveDate>().ok());
        Criteria {
            text: query(uri, "q").unwrap_or_default().trim().to_owned(),
            state: query(uri, "state").unwrap_or_default(),
            target: query(uri, "target").unwrap_or_default(),
            from: date("from"),
            to: date("to"),
            page: query(uri, "page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1),
        }
    }

    /// Whether `r` matches the criteria the ledger's own filter does not take (text, period).
    pub(super) fn matches(&self, r: &Record) -> bool {
        let text = self.text.to_lowercase();
        let in_text = text.is_empty()
            || [&r.number, &r.customer_name, &r.customer_id, &r.key.doc_id]
                .iter()
                .any(|f| f.to_lowercase().contains(&text));
        let in_period = match (self.from, self.to) {
            (None, None) => true,
            (from, to) => r
                .issue_date
                .is_some_and(|d| from.is_none_or(|f| d >= f) && to.is_none_or(|t| d <= t)),
        };
        in_text && in_period
    }

    /// The query string of these criteria on page `page`.
    fn query_of(&self, page: usize) -> String {
        let date = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
        format!(
            "q={}&state={}&target={}&from={}&to={}&page={page}",
            enc(&self.text),
            enc(&self.state),
            enc(&self.target),
            date(self.from),
            date(self.to)
        )
    }
}

/// `GET /console/documents`: the search form and one page of results (`facto ledger list`).
pub(super) async fn search(State(s): Shared, headers: HeaderMap, uri: Uri) -> Response {
    let a = match guard(&s, &headers, false, Action::Read) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let lang = a.lang;
    let c = Criteria::of(&uri);
    let mut args = vec!["ledger".to_owned(), "list".to_owned(), "--json".to_owned()];
    if !c.state.is_empty() {
        args.push(format!("--state={}", c.state));
    }
    if !c.target.is_empty() {
        args.push(format!("--target={}", c.target));
    }
    let (code, out, err) = cli(&s, a.role, &args).await;
    let Ok(mut records) = serde_json::from_slice::<Vec<Record>>(&out) else {
        return failure(
            &a,
            StatusCode::BAD_REQUEST,
            t(lang, "documents"),
            &format!("{err} (exit {code})"),
        );
    };
    records.retain(|r| c.matches(r));
    records.sort_by_key(|r| std::cmp::Reverse(r.updated_at));
    let targets: Vec<String> = s
        .cfg
        .jobs
        .iter()
        .flat_map(|j| j.targets.iter().cloned())
        .collect();
    let body = search_form(lang, &c, &targets) + &results(lang, &c, &records);
    page(&a, t(lang, "documents"), &body)
}

/// The search form, filled with `c`.
pub(super) fn search_form(lang: Locale, c: &Criteria, targets: &[String]) -> String {
    let opt = |v: &str, shown: &str, chosen: &str| {
        format!(
            "<option value=\"{}\"{}>{}</option>",
            esc(v),
            if v == chosen { " selected" } else { "" },
            esc(shown)
        )
    };
    let mut states = opt("", "", &c.state);
    for st in RecordState::ALL {
        states.push_str(&opt(st.as_str(), i18n::state(lang, st.as_str()), &c.state));
    }
    let mut tg = opt("", "", &c.target);
    let mut seen: Vec<&String> = targets.iter().collect();
    seen.sort();
    seen.dedup();
    for x in seen {
        tg.push_str(&opt(x, x, &c.target));
    }
    let date = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    format!(
        "<form id=\"search\" method=\"get\" action=\"/console/documents\">\
         <label>{} <input name=\"q\" value=\"{}\"></label> \
         <label>{} <select name=\"state\">{states}</select></label> \
         <label>{} <select name=\"target\">{tg}</select></label> \
         <label>{} <input type=\"date\" name=\"from\" value=\"{}\"></label> \
         <label>{} <input type=\"date\" name=\"to\" value=\"{}\"></label> \
         <button type=\"submit\">{}</button></form>",
        esc(t(lang, "search_text")),
        esc(&c.text),
        esc(t(lang, "state")),
        esc(t(lang, "target")),
        esc(t(lang, "from")),
        date(c.from),
        esc(t(lang, "to")),
        date(c.to),
        esc(t(lang, "search")),
    )
}

/// The pager under a paged table: "page N/M · total", then links to the previous and next
/// pages (`href` gives a page's address). The elements' ids are `prefix` and `pager`, `prev`,
/// `next`.
pub(super) fn pager(
    lang: Locale,
    prefix: &str,
    (page, pages): (usize, usize),
    total: usize,
    href: &dyn Fn(usize) -> String,
) -> String {
    let mut s = format!(
        "<p id=\"{prefix}pager\">{} {page}/{pages} · {total} {}",
        esc(t(lang, "page")),
        esc(t(lang, "records"))
    );
    if page > 1 {
        s.push_str(&format!(
            " <a id=\"{prefix}prev\" href=\"{}\">←</a>",
            esc(&href(page - 1))
        ));
    }
    if page < pages {
        s.push_str(&format!(
            " <a id=\"{prefix}next\" href=\"{}\">→</a>",
            esc(&href(page + 1))
        ));
    }
    s.push_str("</p>");
    s
}

/// One page of the matching records (all of them, newest change first), with the pager.
pub(super) fn results(lang: Locale, c: &Criteria, records: &[Record]) -> String {
    if records.is_empty() {
        return format!("<p id=\"results\">{}</p>", esc(t(lang, "no_documents")));
    }
    let pages = records.len().div_ceil(PAGE_SIZE);
    let page = c.page.min(pages);
    let mut rows = String::new();
    for r in records.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE) {
        rows.push_str(&format!(
            "<tr class=\"record st-{st}\" data-number=\"{n}\"><td><a href=\"/console/documents/{href}\">{n}</a></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.issue_date.map(|d| i18n::date(lang, d)).unwrap_or_default(),
            esc(&r.customer_name),
            r.gross.map(|g| i18n::amount(lang, g)).unwrap_or_default(),
            esc(&r.key.job),
            esc(&r.key.target),
            esc(i18n::state(lang, r.state.as_str())),
            r.problems.first().map(|p| esc(&p.message)).unwrap_or_default(),
            st = esc(r.state.as_str()),
            n = esc(doc_ref(r)),
            href = enc(doc_ref(r)),
        ));
    }
    let pager = pager(lang, "", (page, pages), records.len(), &|n| {
        format!("/console/documents?{}", c.query_of(n))
    });
    format!(
        "<table id=\"results\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>Job</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{rows}</tbody></table>{pager}",
        esc(t(lang, "number")),
        esc(t(lang, "date")),
        esc(t(lang, "customer")),
        esc(t(lang, "gross")),
        esc(t(lang, "target")),
        esc(t(lang, "state")),
        esc(t(lang, "reasons")),
    )
}

/// `GET /console/documents/{doc}`: the document's records (`facto ledger show`); for the admin
/// the actions, the forget dialog carrying the CLI's own warning.
pub(super) async fn show(
    State(s): Shared,
    headers: HeaderMap,
    Path(doc): Path<String>,
) -> Response {
    let a = match guard(&s, &headers, false, Action::Read) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let (code, out, err) = cli(
        &s,
        a.role,
        // The document last, after `--`: a number such as `-12` is no option.
        &[
            "ledger".into(),
            "show".into(),
            "--json".into(),
            "--".into(),
            doc.clone(),
        ],
    )
    .await;
    let records = match serde_json::from_slice::<Vec<Record>>(&out) {
        Ok(r) if code == 0 => r,
        _ => return failure(&a, StatusCode::NOT_FOUND, &doc, &err),
    };
    let mut warnings = Vec::new();
    if a.role == Role::Admin {
        for r in &records {
            // Without --yes the CLI changes nothing and says what forgetting would do.
            let (_, _, warning) = cli(
                &s,
                a.role,
                &forget_args(&r.key.doc_id, &r.key.target, Some(&r.key.job), false),
            )
            .await;
            warnings.push(warning);
        }
    }
    page(&a, &doc, &doc_page(&a.viewer(), &doc, &records, &warnings))
}

/// The body of a document's page. `warnings` (admin only: empty for the accountant, who gets no
/// action) holds, per record, the CLI's warning before forgetting it.
pub(super) fn doc_page(
    v: &Viewer<'_>,
    doc: &str,
    records: &[Record],
    warnings: &[String],
) -> String {
    let lang = v.lang;
    let admin = v.role == Role::Admin;
    let mut body = String::new();
    if let Some(r) = records.first() {
        body.push_str(&format!(
            "<p id=\"identity\">{} {} · {} · {} ({}) · {}</p>",
            esc(&r.kind),
            esc(&r.number),
            r.issue_date
                .map(|d| i18n::date(lang, d))
                .unwrap_or_default(),
            esc(&r.customer_name),
            esc(&r.customer_id),
            r.gross.map(|g| i18n::amount(lang, g)).unwrap_or_default(),
        ));
    }
    let mut jobs: Vec<&str> = records.iter().map(|r| r.key.job.as_str()).collect();
    jobs.sort_unstable();
    jobs.dedup();
    for (i, r) in records.iter().enumerate() {
        body.push_str(&record_section(lang, doc, r));
        if admin {
            body.push_str(&actions(
                lang,
                doc,
                r,
                warnings.get(i).map_or("", String::as_str),
            ));
        }
        body.push_str("</section>");
    }
    if admin {
        for j in jobs {
            body.push_str(&format!(
                "<p><button type=\"button\" class=\"act\" id=\"run-{j}\" data-url=\"/console/documents/{d}/run\" data-body=\"{}\" data-confirm=\"{}\">{} ({j})</button></p>",
                esc(&serde_json::json!({"job": j}).to_string()),
                esc(t(lang, "confirm_run")),
                esc(t(lang, "run_now")),
                j = esc(j),
                d = enc(doc),
            ));
        }
        body.push_str(ACTIONS_JS);
    }
    body
}

/// One record's section (left open: the caller adds the actions and closes it).
fn record_section(lang: Locale, _doc: &str, r: &Record) -> String {
    let dash = || "-".to_owned();
    let mut s = format!(
        "<section class=\"record st-{st}\" data-target=\"{tg}\" data-state=\"{st}\"><h2>{job} → {tg}</h2>\
         <table class=\"fields\"><tbody>\
         <tr><th>{}</th><td class=\"state\">{}</td></tr>\
         <tr><th>{}</th><td>{}</td></tr>\
         <tr><th>{}</th><td class=\"remote-id\">{}</td></tr>\
         <tr><th>{}</th><td class=\"remote-status\">{}</td></tr>\
         <tr><th>{}</th><td class=\"last-error\">{}</td></tr>\
         <tr><th>{}</th><td>{}</td></tr></tbody></table>",
        esc(t(lang, "state")),
        esc(i18n::state(lang, r.state.as_str())),
        esc(t(lang, "batch")),
        r.batch_id.map(|b| format!("<a href=\"/console/exports/{b}\">{b}</a>")).unwrap_or_else(dash),
        esc(t(lang, "remote_id")),
        r.remote_id.as_deref().map(esc).unwrap_or_else(dash),
        esc(t(lang, "remote_status")),
        r.remote_status.as_deref().map(esc).unwrap_or_else(dash),
        esc(t(lang, "last_error")),
        r.last_error.as_deref().map(esc).unwrap_or_else(dash),
        esc(t(lang, "attempts")),
        r.attempts,
        st = esc(r.state.as_str()),
        tg = esc(&r.key.target),
        job = esc(&r.key.job),
    );
    if !r.problems.is_empty() {
        s.push_str(&format!(
            "<h3>{}</h3><ul class=\"problems\">",
            esc(t(lang, "reasons"))
        ));
        for p in &r.problems {
            s.push_str(&format!(
                "<li><strong>{}</strong>: {} <br><span class=\"fix\">{} {}</span></li>",
                esc(&crate::problem::field_label(&p.field)),
                esc(&p.message),
                esc(t(lang, "fix")),
                esc(&p.fix)
            ));
        }
        s.push_str("</ul>");
    }
    if let Some(c) = &r.changed_after_delivery {
        s.push_str(&format!(
            "<h3>{} ({} {})</h3><table class=\"diff\"><tbody>",
            esc(t(lang, "changed_after")),
            i18n::date(lang, c.detected_at.date_naive()),
            c.detected_at.format("%H:%M UTC")
        ));
        for ch in &c.changes {
            s.push_str(&format!(
                "<tr><th>{}</th><td><del>{}</del></td><td><ins>{}</ins></td></tr>",
                esc(&crate::problem::field_label(&ch.field)),
                esc(&ch.before),
                esc(&ch.after)
            ));
        }
        s.push_str("</tbody></table>");
    }
    s.push_str(&format!(
        "<h3>{}</h3><ol class=\"history\">",
        esc(t(lang, "history"))
    ));
    for e in &r.history {
        s.push_str(&format!(
            "<li>{} {} — {} — {}</li>",
            i18n::date(lang, e.at.date_naive()),
            e.at.format("%H:%M:%S UTC"),
            esc(i18n::state(lang, e.state.as_str())),
            esc(&e.note)
        ));
    }
    s.push_str("</ol>");
    s
}

/// The admin's buttons for one record.
fn actions(lang: Locale, doc: &str, r: &Record, warning: &str) -> String {
    let target = &r.key.target;
    // Retry is offered where `facto ledger retry` acts: a delivered record is never sent twice.
    let retry = if matches!(
        r.state,
        RecordState::Held | RecordState::Failed | RecordState::Rejected | RecordState::Released
    ) {
        format!(
            "<button type=\"button\" class=\"act retry\" data-url=\"/console/documents/{}/retry\" data-body=\"{}\" data-confirm=\"{}\">{}</button> ",
            enc(doc),
            esc(&serde_json::json!({"target": target, "job": r.key.job, "doc_id": r.key.doc_id}).to_string()),
            esc(&format!("{} ({target})", t(lang, "confirm_retry"))),
            esc(t(lang, "retry")),
        )
    } else {
        String::new()
    };
    format!(
        "<p class=\"actions\">{retry}<button type=\"button\" class=\"act forget\" data-url=\"/console/documents/{d}/forget\" data-body=\"{fb}\" data-confirm=\"{w}\">{}</button></p>",
        esc(t(lang, "forget")),
        d = enc(doc),
        fb = esc(&serde_json::json!({"target": target, "job": r.key.job, "doc_id": r.key.doc_id, "confirm": true}).to_string()),
        w = esc(warning),
    )
}

/// The page's script: each action asks to confirm, then posts with the CSRF header.
const ACTIONS_JS: &str = "<script>(function(){var csrf=(document.querySelector('meta[name=\"csrf\"]')||{}).content||'';\
document.querySelectorAll('button.act').forEach(function(b){b.addEventListener('click',function(){\
if(b.dataset.confirm&&!window.confirm(b.dataset.confirm))return;b.disabled=true;\
fetch(b.dataset.url,{method:'POST',headers:{'x-facto-csrf':csrf,'content-type':'application/json'},body:b.dataset.body,credentials:'same-origin'})\
.then(function(r){if(r.redirected){location.href=r.url;return;}return r.text().then(function(h){document.open();document.write(h);document.close();});});});});})();</script>";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RecordKey;
    use crate::problem::Problem;
    use chrono::Utc;

    fn record(number: &str, state: RecordState) -> Record {
        let mut r = Record::new(
            RecordKey {
                job: "sales".into(),
                target: "sales-fec".into(),
                doc_id: format!("id-{number}"),
            },
            Utc::now(),
        );
        r.number = number.into();
        r.state = state;
        r.customer_name = "Dupont & <Fils>".into();
        r.issue_date = NaiveDate::from_ymd_opt(2026, 7, 29);
        r.gross = "2538.9".parse().ok();
        r
    }

    #[test]
    fn results_are_escaped_linked_and_paged() {
        let mut all: Vec<Record> = (0..PAGE_SIZE + 3)
            .map(|i| record(&format!("F<{i}>"), RecordState::Held))
            .collect();
        all[0].problems.push(Problem::new(
            "tax_code",
            "tax_code",
            "no mapping <TVA85>",
            "add it",
        ));
        let c = Criteria {
            page: 1,
            ..Criteria::default()
        };
        let html = results(Locale::Fr, &c, &all);
        assert!(
            html.contains("href=\"/console/documents/F%3C0%3E\">F&lt;0&gt;</a>"),
            "{html}"
        );
        assert!(
            html.contains("Dupont &amp; &lt;Fils&gt;") && !html.contains("<Fils>"),
            "{html}"
        );
        assert!(html.contains("no mapping &lt;TVA85&gt;"), "{html}");
        assert!(
            html.contains("29/07/2026") && html.contains("2\u{202F}538,90"),
            "{html}"
        );
        assert_eq!(html.matches("<tr class=\"record").count(), PAGE_SIZE);
        assert!(
            html.contains("id=\"next\"") && !html.contains("id=\"prev\""),
            "{html}"
        );
        let c = Criteria {
            page: 9,
            text: "a&b".into(),
            ..Criteria::default()
        };
        let html = results(Locale::En, &c, &all);
        assert_eq!(html.matches("<tr class=\"record").count(), 3);
        assert!(
            html.contains("id=\"prev\" href=\"/console/documents?q=a%26b&amp;"),
            "{html}"
        );
    }

    #[test]
    fn the_buttons_name_the_record_s_job_and_exact_id() {
        let mut r = record("F1", RecordState::Failed);
        r.key.doc_id = "-F1".into();
        let admin = Viewer {
            role: Role::Admin,
            lang: Locale::En,
            csrf: "c",
        };
        let html = doc_page(&admin, "F1", &[r], &[String::new()]);
        let retry = esc(
            &serde_json::json!({"target": "sales-fec", "job": "sales", "doc_id": "-F1"})
                .to_string(),
        );
        assert!(html.contains(&format!("data-body=\"{retry}\"")), "{html}");
        assert!(
            html.contains("&quot;confirm&quot;:true,&quot;doc_id&quot;:&quot;-F1&quot;,&quot;job&quot;:&quot;sales&quot;"),
            "{html}"
        );
    }

    #[test]
    fn criteria_match_number_customer_and_period() {
        let r = record("F2026-0030", RecordState::Held);
        let mut c = Criteria {
            text: "f2026-00".into(),
            ..Criteria::default()
        };
        assert!(c.matches(&r));
        c.text = "dupont".into();
        assert!(c.matches(&r));
        c.text = "martin".into();
        assert!(!c.matches(&r));
        c.text.clear();
        c.from = NaiveDate::from_ymd_opt(2026, 8, 1);
        assert!(!c.matches(&r));
        c.from = NaiveDate::from_ymd_opt(2026, 7, 1);
        c.to = NaiveDate::from_ymd_opt(2026, 7, 31);
        assert!(c.matches(&r));
    }

    #[test]
    fn the_accountant_sees_no_action_and_the_admin_sees_the_cli_warning() {
        let mut r = record("F\"1", RecordState::Held);
        r.problems.push(Problem::new(
            "tax_code",
            "tax_code",
            "no <mapping>",
            "add <it>",
        ));
        r.remote_status = Some("cdv:207 <x>".into());
        r.changed_after_delivery = Some(crate::ledger::ChangeNote {
            detected_at: Utc::now(),
            source_hash: "h".into(),
            changes: vec![crate::ledger::FieldChange {
                field: "totals.gross".into(),
                before: "100 <a>".into(),
                after: "120".into(),
            }],
        });
        let acc = Viewer {
            role: Role::Accountant,
            lang: Locale::Fr,
            csrf: "c",
        };
        let html = doc_page(&acc, "F\"1", std::slice::from_ref(&r), &[]);
        assert!(
            !html.contains("<button") && !html.contains("<script>"),
            "{html}"
        );
        assert!(
            html.contains("no &lt;mapping&gt;") && html.contains("add &lt;it&gt;"),
            "{html}"
        );
        assert!(html.contains("Correction"), "{html}");
        assert!(html.contains("cdv:207 &lt;x&gt;"), "{html}");
        assert!(
            html.contains("<del>100 &lt;a&gt;</del></td><td><ins>120</ins>"),
            "{html}"
        );
        let admin = Viewer {
            role: Role::Admin,
            lang: Locale::En,
            csrf: "c",
        };
        let html = doc_page(
            &admin,
            "F\"1",
            &[r],
            &["forget removes the record of <x>".to_owned()],
        );
        assert!(
            html.contains("data-confirm=\"forget removes the record of &lt;x&gt;\""),
            "{html}"
        );
        assert!(
            html.contains("data-url=\"/console/documents/F%221/forget\""),
            "{html}"
        );
        assert!(html.contains("&quot;confirm&quot;:true"), "{html}");
        assert!(html.contains("id=\"run-sales\""), "{html}");
        assert!(html.contains("class=\"act retry\""), "{html}");
        let done = record("F2", RecordState::Delivered);
        let html = doc_page(&admin, "F2", &[done], &[String::new()]);
        assert!(
            !html.contains("class=\"act retry\"") && html.contains("class=\"act forget\""),
            "{html}"
        );
    }
}
