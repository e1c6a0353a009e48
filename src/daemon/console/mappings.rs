//! The console's Mappings page: the mapping editor of [`crate::daemon::editor`] inside the
//! console frame (the same functions check, save and audit every change), plus a search over
//! code, account and label, an edit in place, the deletion of an entry with what it would hold
//! back (confirmed first), and every reason the ledger holds documents back for, with its fix.
//!
//! The admin edits; the accountant reads, and every change of theirs is refused (403).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::super::api::Server;
use super::super::editor::{self, Edit, Removal, SaveError};
use super::html::esc;
use super::i18n::{t, Locale};
use super::{blocking, guard, html, html_response, query, Access, Action, Role, Shared};
use crate::config::Config;
use crate::ledger::{Ledger, RecordFilter, State as RecordState};
use crate::model::Document;
use crate::preview::scan_source;
use crate::source::Item;

/// The page's script (edit in place, check on the spot, delete with confirmation), embedded.
const JS: &str = include_str!("mappings.js");

/// The configuration as it is on disk now (mappings edited since the start included); file
/// work: called on a blocking thread ([`blocking`]).
fn fresh(s: &Server) -> Result<Config, String> {
    Config::load(&s.config_path, Some(&s.data_dir)).map_err(|e| e.to_string())
}

fn json_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// Whether an entry matches the search `q` (code, account or label; case-insensitive).
pub(super) fn matches(q: &str, code: &str, fields: &BTreeMap<&str, String>) -> bool {
    let q = q.trim().to_lowercase();
    q.is_empty()
        || std::iter::once(code)
            .chain(
                ["account", "aux", "label"]
                    .iter()
                    .filter_map(|k| fields.get(k).map(String::as_str)),
            )
            .any(|v| v.to_lowercase().contains(&q))
}

/// Every reason documents of the jobs using `mapping` are held for, with its fix: (code,
/// message, fix) → the numbers of the documents.
fn held_reasons(
    cfg: &Config,
    ledger: &dyn Ledger,
    mapping: &str,
) -> BTreeMap<(String, String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    for j in cfg.jobs.iter().filter(|j| j.mapping == mapping) {
        let Ok(held) = ledger.list(&RecordFilter {
            job: Some(j.name.clone()),
            target: None,
            state: Some(RecordState::Held),
        }) else {
            continue;
        };
        for r in held {
            for p in &r.problems {
                let g = out
                    .entry((p.code.clone(), p.message.clone(), p.fix.clone()))
                    .or_default();
                // Once per document, whatever the number of its targets.
                g.insert(r.number.clone());
            }
        }
    }
    out
}

fn reasons_table(
    lang: Locale,
    reasons: &BTreeMap<(String, String, String), BTreeSet<String>>,
) -> String {
    let mut h = format!("<h3>{}</h3>", esc(t(lang, "held_reasons")));
    if reasons.is_empty() {
        let _ = write!(h, "<p class=\"no-reasons\">{}</p>", esc(t(lang, "none")));
        return h;
    }
    let _ = write!(
        h,
        "<table class=\"reasons\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(t(lang, "reason")),
        esc(t(lang, "fix_col")),
        esc(t(lang, "documents")),
        esc(t(lang, "examples"))
    );
    for ((code, message, fix), numbers) in reasons {
        let ex: Vec<&str> = numbers.iter().take(5).map(String::as_str).collect();
        let n = numbers.len();
        let _ = write!(
            h,
            "<tr class=\"reason\" data-code=\"{}\"><td>{}</td><td>{}</td><td class=\"num\">{n}</td><td>{}</td></tr>",
            esc(code),
            esc(message),
            esc(fix),
            esc(&ex.join(", "))
        );
    }
    h.push_str("</tbody></table>");
    h
}

/// The body of the page: per mapping, the held reasons, then each table's entries matching
/// `q`, with edit and delete buttons for the admin.
fn body(cfg: &Config, ledger: &dyn Ledger, role: Role, lang: Locale, q: &str) -> String {
    let admin = role == Role::Admin;
    let mut h = format!(
        "<form method=\"get\" action=\"/console/mappings\" id=\"search-form\"><label>{} <input type=\"search\" id=\"search\" name=\"q\" value=\"{}\"></label> <button type=\"submit\">{}</button></form>",
        esc(t(lang, "search")),
        esc(q),
        esc(t(lang, "search"))
    );
    if !admin {
        let _ = write!(h, "<p id=\"read-only\">{}</p>", esc(t(lang, "read_only")));
    }
    let columns = editor::columns();
    let mut names: Vec<&String> = cfg.mappings.keys().collect();
    names.sort();
    for name in names {
        let m = &cfg.mappings[name];
        let _ = write!(
            h,
            "<section class=\"mapping\" data-mapping=\"{0}\" data-base=\"{2}\"><h2>{0} <small>({1})</small></h2>",
            esc(name),
            esc(&editor::display(&m.path, cfg)),
            // What a change is made on: a save refuses (409) once the file changed since.
            std::fs::read_to_string(&m.path).map_or_else(|_| String::new(), |t| editor::base_of(&t))
        );
        h.push_str(&reasons_table(lang, &held_reasons(cfg, ledger, name)));
        for table in editor::TABLES {
            let keys = editor::table_keys(table).unwrap_or_default();
            let shown: Vec<&str> = columns
                .iter()
                .copied()
                .filter(|k| keys.contains(k))
                .collect();
            let _ = write!(
                h,
                "<h3>[{0}]</h3><table class=\"entries\" data-table=\"{0}\" data-keys=\"{1}\"><thead><tr><th>code</th>",
                esc(table),
                esc(&keys.join(","))
            );
            for k in &shown {
                let _ = write!(h, "<th>{k}</th>");
            }
            h.push_str("<th></th></tr></thead><tbody>");
            for (code, f) in editor::entries(m, table) {
                if !matches(q, &code, &f) {
                    continue;
                }
                let _ = write!(
                    h,
                    "<tr class=\"entry\" data-code=\"{}\"><td>{}</td>",
                    esc(&code),
                    esc(&code)
                );
                for k in &shown {
                    let _ = write!(
                        h,
                        "<td data-key=\"{k}\">{}</td>",
                        esc(f.get(k).map_or("", String::as_str))
                    );
                }
                h.push_str("<td>");
                if admin {
                    let _ = write!(
                        h,
                        "<button type=\"button\" class=\"edit\">{}</button> <button type=\"button\" class=\"delete\">{}</button>",
                        esc(t(lang, "edit")),
                        esc(t(lang, "delete"))
                    );
                }
                h.push_str("</td></tr>");
            }
            h.push_str("</tbody></table>");
            if admin {
                let _ = write!(
                    h,
                    "<p><button type=\"button\" class=\"add\">{}</button></p>",
                    esc(t(lang, "add"))
                );
            }
        }
        let _ = write!(
            h,
            "<pre class=\"result\" id=\"result-{}\"></pre></section>",
            esc(name)
        );
    }
    let labels: BTreeMap<&str, &str> = [
        "save",
        "check",
        "confirm_delete",
        "would_hold",
        "would_release",
        "none",
        "refused",
        "saved",
        "audit_missing",
    ]
    .into_iter()
    .map(|k| (k, t(lang, k)))
    .collect();
    let _ = write!(
        h,
        "<script>const mappingLabels={};{JS}</script>",
        json!(labels).to_string().replace("</", "<\\/")
    );
    h
}

/// `GET /console/mappings[?q=]`: every role reads; the admin's page can edit.
pub(super) async fn page(State(s): Shared, headers: HeaderMap, uri: Uri) -> Response {
    let a: Access = match guard(&s, &headers, false, Action::Read) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let q = query(&uri, "q").unwrap_or_default();
    let (role, lang) = (a.role, a.lang);
    let server = Arc::clone(&s);
    // The configuration, the mapping files and the ledger are read off the async threads.
    let body =
        blocking(move || fresh(&server).map(|cfg| body(&cfg, &*server.ledger, role, lang, &q)))
            .await
            .and_then(|r| r);
    match body {
        Ok(b) => html_response(
            StatusCode::OK,
            html::frame(Some(&a.viewer()), a.lang, t(a.lang, "mappings"), &b),
        ),
        Err(e) => html_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            html::refusal(&a.viewer(), &e),
        ),
    }
}

/// The admin's session for a change, or the answer to send.
fn change(s: &Server, headers: &HeaderMap) -> Result<Access, Box<Response>> {
    guard(s, headers, true, Action::Admin)
}

/// The answer to a save or a deletion: 409 when the file changed since the page was loaded,
/// 422 when the change does not check; a change saved but not audited is a 200 with its
/// `warning`.
fn saved(result: Result<Result<Value, SaveError>, String>) -> Response {
    match result {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e @ SaveError::Stale(_))) => json_error(StatusCode::CONFLICT, &e.to_string()),
        Ok(Err(e)) => json_error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// `POST /console/mappings/check` (admin): an edit checked on the spot, as the editor does.
pub(super) async fn check(State(s): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = change(&s, &headers) {
        return *r;
    }
    let e = match serde_json::from_slice::<Edit>(&body) {
        Ok(e) => e,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &format!("bad edit: {e}")),
    };
    let server = Arc::clone(&s);
    let checked =
        blocking(move || fresh(&server).map(|cfg| editor::preview(&cfg, &*server.ledger, &e)))
            .await
            .and_then(|r| r);
    match checked {
        Ok(v) => Json(v).into_response(),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// `POST /console/mappings/save` (admin): the edit checked again, saved, audited with the role;
/// refused (409) when the file changed since the page was loaded (`base`).
pub(super) async fn save(State(s): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let a = match change(&s, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let e = match serde_json::from_slice::<Edit>(&body) {
        Ok(e) => e,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &format!("bad edit: {e}")),
    };
    let server = Arc::clone(&s);
    saved(
        blocking(move || {
            let cfg = fresh(&server).map_err(SaveError::Refused)?;
            editor::save_as(&cfg, &*server.ledger, &e, &a.role.who())
        })
        .await,
    )
}

/// The documents a deletion is checked against: every document of the sources of the jobs
/// using the mapping, and the held ones the ledger keeps; and the sources that could not be
/// read (then what the deletion would hold back is not known).
async fn documents(
    cfg: &Config,
    ledger: &dyn Ledger,
    mapping: &str,
) -> (Vec<Document>, Vec<String>) {
    let mut unread = Vec::new();
    let mut docs = editor::held_documents(cfg, ledger, mapping);
    let mut seen: std::collections::BTreeSet<String> = docs.iter().map(|d| d.id.clone()).collect();
    for j in cfg.jobs.iter().filter(|j| j.mapping == mapping) {
        let scanned = scan_source(cfg, j, Some(ledger), |item| {
            if let Item::Doc { doc, .. } = item {
                if seen.insert(doc.id.clone()) {
                    docs.push(*doc);
                }
            }
        })
        .await;
        if let Err(e) = scanned {
            tracing::warn!(job = %j.name, error = %e, "Source not read for a deletion's impact.");
            unread.push(format!("job {}: {e}", j.name));
        }
    }
    (docs, unread)
}

/// A deletion, off the async threads (the sources are read for its impact): without
/// `confirm`, 409 with what it would hold back and its diff (nothing changes), and which
/// sources could not be read (`impact_unknown`); confirmed, the entry goes, audited.
fn delete_blocking(s: &Server, r: &Removal, who: &str) -> Result<Response, SaveError> {
    let cfg = fresh(s).map_err(SaveError::Refused)?;
    let handle = tokio::runtime::Handle::current();
    let (docs, unread) = handle.block_on(documents(&cfg, &*s.ledger, &r.mapping));
    if !r.confirm {
        let mut v: Value = editor::check_removal(&cfg, r, &docs);
        if v["ok"] != true {
            return Err(SaveError::Refused(
                v["error"].as_str().unwrap_or("refused").to_owned(),
            ));
        }
        v["confirm"] = json!("needed");
        // A source not read: what the deletion would hold back is not known, and says so.
        if !unread.is_empty() {
            v["impact_unknown"] = json!(unread);
        }
        return Ok((StatusCode::CONFLICT, Json(v)).into_response());
    }
    editor::delete_as(&cfg, &*s.ledger, r, &docs, who).map(|v| Json(v).into_response())
}

/// `POST /console/mappings/delete` (admin): without `confirm`, 409 with what the deletion
/// would hold back and its diff (nothing changes); confirmed, the entry goes, audited.
pub(super) async fn delete(State(s): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let a = match change(&s, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let r = match serde_json::from_slice::<Removal>(&body) {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &format!("bad deletion: {e}")),
    };
    let server = Arc::clone(&s);
    let done = blocking(move || delete_blocking(&server, &r, &a.role.who())).await;
    match done {
        Ok(Ok(resp)) => resp,
        other => saved(other.map(|r| r.map(|_| Value::Null))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_looks_at_code_account_and_label_only() {
        let f: BTreeMap<&str, String> = [
            ("account", "445712".to_owned()),
            ("label", "TVA collectée 20%".to_owned()),
            ("rate", "20".to_owned()),
        ]
        .into_iter()
        .collect();
        assert!(matches("", "TVA20", &f));
        assert!(matches("tva20", "TVA20", &f));
        assert!(matches("4457", "TVA20", &f));
        assert!(matches("COLLECTÉE", "TVA20", &f));
        assert!(!matches("706", "TVA20", &f));
        assert!(!matches("20%x", "TVA20", &f));
    }

    #[test]
    fn a_rate_takes_the_decimal_comma_and_is_stored_as_a_decimal() {
        assert_eq!(editor::rate("8,5").unwrap(), "8.5");
        assert_eq!(editor::rate(" 8.50 ").unwrap(), "8.5");
        assert_eq!(editor::rate("20").unwrap(), "20");
        assert_eq!(editor::rate("2,10").unwrap(), "2.1");
        // Exact: a float would print 0.30000000000000004 for 0,1 + 0,2's kind of values.
        assert_eq!(editor::rate("0,000001").unwrap(), "0.000001");
        for bad in ["8,5,1", "1,234.5", "huit", "", "8 ,5"] {
            assert!(editor::rate(bad).is_err(), "{bad}");
        }
        let e = Edit {
            mapping: "m".into(),
            table: "tax".into(),
            code: "TVA85".into(),
            fields: [("rate".to_owned(), "8,5".to_owned())]
                .into_iter()
                .collect(),
            base: None,
        };
        let text = editor::apply("[tax.TVA20]\nrate = \"20\"\n", &e).unwrap();
        assert!(text.contains("[tax.TVA85]\nrate = \"8.5\""), "{text}");
        let e = Edit {
            fields: [("rate".to_owned(), "huit".to_owned())]
                .into_iter()
                .collect(),
            ..e
        };
        let text = editor::apply("", &e).unwrap();
        assert!(
            text.contains("rate = \"huit\""),
            "left for the check to name: {text}"
        );
    }

    #[test]
    fn a_deletion_lists_the_documents_it_would_hold_back() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let cfg = crate::config::Config::load(&repo.join("facto.toml"), None).unwrap();
        let docs: Vec<Document> = ["0001", "0002", "0003"]
            .iter()
            .map(|n| {
                let f = repo.join(format!("examples/invoices/inv-2026-{n}.json"));
                let v = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
                crate::model::parse_document(v, "test", 0).unwrap()
            })
            .collect();
        let r = |table: &str, code: &str| Removal {
            mapping: "pcg-demo".into(),
            table: table.into(),
            code: code.into(),
            confirm: false,
            base: None,
        };
        // Only the invoice with a 5.5 % line needs TVA55.
        let v = editor::check_removal(&cfg, &r("tax", "TVA55"), &docs);
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["holds"], json!(["F2026-0003"]), "{v}");
        assert!(v["diff"].as_str().unwrap().contains("- [tax.TVA55]"), "{v}");
        // A code no document uses holds nothing back.
        let v = editor::check_removal(&cfg, &r("tax", "TVA10"), &docs);
        assert_eq!(v["holds"], json!([]), "{v}");
        // A customer's account: its invoices.
        let v = editor::check_removal(&cfg, &r("customers.accounts", "C001"), &docs);
        assert_eq!(v["holds"], json!(["F2026-0001"]), "{v}");
        assert_eq!(
            editor::check_removal(&cfg, &r("tax", "NOPE"), &docs)["ok"],
            false
        );
        assert_eq!(
            editor::check_removal(&cfg, &r("journal", "code"), &docs)["ok"],
            false
        );
        let text = std::fs::read_to_string(repo.join("mappings/pcg-demo.toml")).unwrap();
        let without = editor::remove(&text, "tax", "TVA55").unwrap();
        assert!(without.contains("[tax.TVA10]") && !without.contains("[tax.TVA55]"));
        assert!(without.contains("# Tax codes: rate"));
    }
}
