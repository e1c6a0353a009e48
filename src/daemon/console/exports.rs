//! The accountants' screens: the export wizard (target, journal, period → preview → export →
//! report) and the export history (open, download the exact bytes, cancel). Each screen runs
//! the CLI's own command through the daemon's executor (`preview`, `export`, `exports ...`):
//! the same code path, the same exactly-once rules.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::html::esc;
use super::i18n::{self, t, Locale};
use super::{audit, cli, failure, guard, page, query, to, Action, Shared};
use crate::config::{Config, Connector};
use crate::ledger::{Batch, BatchStatus};
use crate::report::RunReport;

fn opt_date(lang: Locale, d: Option<NaiveDate>) -> String {
    d.map(|d| i18n::date(lang, d)).unwrap_or_default()
}

fn amount_of(lang: Locale, v: &Value) -> String {
    v.as_str()
        .and_then(|s| s.parse::<Decimal>().ok())
        .or_else(|| v.as_f64().and_then(|f| Decimal::try_from(f).ok()))
        .map(|d| i18n::amount(lang, d))
        .unwrap_or_default()
}

/// Options of a `<select>`, `chosen` selected.
fn options(items: &[(String, String)], chosen: &str) -> String {
    items
        .iter()
        .map(|(value, shown)| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                esc(value),
                if value == chosen { " selected" } else { "" },
                esc(shown)
            )
        })
        .collect()
}

/// `GET /console/export`: the wizard's form, and the preview once a target and a period are
/// chosen.
pub(super) async fn wizard(State(s): Shared, headers: HeaderMap, uri: Uri) -> Response {
    let a = match guard(&s, &headers, false, Action::Preview) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let lang = a.lang;
    // The configuration and the connectors folder are read off the async threads.
    let (config, data, asked) = (
        s.config_path.clone(),
        s.data_dir.clone(),
        query(&uri, "job"),
    );
    let loaded = super::blocking(move || choices(&config, &data, asked)).await;
    let Choices {
        jobs,
        job,
        targets,
        default_journal,
    } = match loaded.and_then(|r| r) {
        Ok(c) => c,
        Err(e) => return failure(&a, StatusCode::INTERNAL_SERVER_ERROR, t(lang, "export"), &e),
    };
    let target = query(&uri, "target").unwrap_or_default();
    let journal = query(&uri, "journal").unwrap_or_default();
    let from = query(&uri, "from").unwrap_or_default();
    let until = query(&uri, "to").unwrap_or_default();
    let mut body = format!(
        "<form id=\"wizard\" method=\"get\" action=\"/console/export\">\
         <label>Job <select name=\"job\">{}</select></label> \
         <label>{} <select name=\"target\" required>{}</select></label> \
         <label>{} <input name=\"journal\" value=\"{}\" placeholder=\"{}\" size=\"8\"></label> \
         <label>{} <input type=\"date\" name=\"from\" value=\"{}\" required></label> \
         <label>{} <input type=\"date\" name=\"to\" value=\"{}\" required></label> \
         <button type=\"submit\" id=\"preview-button\">{}</button></form>",
        options(&jobs, &job),
        esc(t(lang, "target")),
        options(&targets, &target),
        esc(t(lang, "journal")),
        esc(&journal),
        esc(&default_journal),
        esc(t(lang, "from")),
        esc(&from),
        esc(t(lang, "to")),
        esc(&until),
        esc(t(lang, "preview")),
    );
    if !target.is_empty() && !from.is_empty() && !until.is_empty() {
        body.push_str(
            &preview_section(&s, a.role, lang, [&job, &target, &journal, &from, &until]).await,
        );
    }
    page(&a, t(lang, "export"), &body)
}

/// What the wizard's form offers: the jobs, the job chosen, its journal-file targets, and the
/// journal code of its mapping.
struct Choices {
    jobs: Vec<(String, String)>,
    job: String,
    targets: Vec<(String, String)>,
    default_journal: String,
}

/// The wizard's [`Choices`] for the job `asked` (else the first), from the configuration as
/// it is on disk now. File work: run on a blocking thread.
fn choices(
    config: &std::path::Path,
    data_dir: &std::path::Path,
    asked: Option<String>,
) -> Result<Choices, String> {
    let mut cfg = Config::load(config, Some(data_dir)).map_err(|e| e.to_string())?;
    let jobs: Vec<(String, String)> = cfg
        .jobs
        .iter()
        .map(|j| (j.name.clone(), j.name.clone()))
        .collect();
    let job = asked.unwrap_or_else(|| jobs.first().map(|j| j.0.clone()).unwrap_or_default());
    let targets = journal_targets(&mut cfg, &job);
    let default_journal = cfg
        .jobs
        .iter()
        .find(|j| j.name == job)
        .and_then(|j| cfg.mapping_for(j))
        .map(|m| m.journal.code.clone())
        .unwrap_or_default();
    Ok(Choices {
        jobs,
        job,
        targets,
        default_journal,
    })
}

/// Every journal-file connector (the job's and those of the connectors folder), as the CLI's
/// `export --target` takes them: (name, name and format).
fn journal_targets(cfg: &mut Config, job: &str) -> Vec<(String, String)> {
    let files = std::fs::read_dir(&cfg.connectors_dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for f in files {
        if f.extension().is_some_and(|x| x == "toml") {
            if let Some(name) = f.file_stem().and_then(|n| n.to_str()) {
                // Refused for any other kind of connector: only journal files are added.
                let _ = cfg.add_export_target(job, name);
            }
        }
    }
    cfg.connectors
        .iter()
        .filter(|(_, c)| matches!(c, Connector::JournalFile(_)))
        .map(|(n, c)| (n.clone(), format!("{n} ({})", c.kind())))
        .collect()
}

/// The preview of an export, as `facto preview --target` gives it, with the selection.
async fn preview_section(
    s: &super::Server,
    role: super::Role,
    lang: Locale,
    [job, target, journal, from, until]: [&str; 5],
) -> String {
    let args = vec![
        "preview".to_owned(),
        "--json".to_owned(),
        format!("--job={job}"),
        format!("--target={target}"),
        format!("--from={from}"),
        format!("--to={until}"),
    ];
    let (code, out, err) = cli(s, role, &args).await;
    let v: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
    let Some(tp) = v["targets"].as_array().and_then(|a| a.first()) else {
        let e = if err.is_empty() {
            format!("preview failed (exit {code})")
        } else {
            err
        };
        return format!("<p class=\"error\" id=\"error\">{}</p>", esc(&e));
    };
    let rows: String = tp["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| doc_row(lang, r))
        .collect();
    format!(
        "<section id=\"preview\" data-job=\"{}\" data-target=\"{}\" data-journal=\"{}\" data-from=\"{}\" data-to=\"{}\">\
         <p id=\"count\"><strong id=\"to-export\">{}</strong> {} <strong id=\"in-period\">{}</strong> {}</p>\
         <p><button type=\"button\" id=\"all\">{}</button> <button type=\"button\" id=\"none\">{}</button> \
         <label><input type=\"checkbox\" id=\"include-exported\"> {}</label></p>\
         <table id=\"docs\"><thead><tr><th></th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{rows}</tbody></table>\
         <p><button type=\"button\" id=\"do-export\">{}</button></p></section>",
        esc(job), esc(target), esc(journal), esc(from), esc(until),
        tp["to_transfer"].as_u64().unwrap_or(0),
        esc(t(lang, "to_export_of")),
        tp["documents"].as_u64().unwrap_or(0),
        esc(t(lang, "documents_in_period")),
        esc(t(lang, "all")), esc(t(lang, "none")), esc(t(lang, "include_exported")),
        esc(t(lang, "number")), esc(t(lang, "date")), esc(t(lang, "customer")), esc(t(lang, "gross")),
        esc(t(lang, "state")), esc(t(lang, "reasons")),
        esc(t(lang, "finish")),
    )
}

/// One document of the preview (a row of `facto preview --json`): a checkbox when it can be
/// exported, struck through with its reasons and fixes when it is held.
fn doc_row(lang: Locale, r: &Value) -> String {
    let status = r["status"].as_str().unwrap_or_default();
    let number = r["number"].as_str().unwrap_or_default();
    let customer = r["customer"].as_str().unwrap_or_default();
    let detail = r["detail"].as_str().unwrap_or_default();
    let date = r["date"].as_str().and_then(|d| d.parse::<NaiveDate>().ok());
    let held = matches!(status, "held" | "failed" | "changed-after-delivery");
    let strike = |x: String| if held { format!("<s>{x}</s>") } else { x };
    let pick = match status {
        "new" => format!(
            "<input type=\"checkbox\" class=\"pick\" value=\"{}\" checked>",
            esc(number)
        ),
        "already-transferred" => format!(
            "<input type=\"checkbox\" class=\"pick exported\" value=\"{}\" disabled>",
            esc(number)
        ),
        _ => "<input type=\"checkbox\" disabled>".to_owned(),
    };
    let reasons = if held && !detail.is_empty() {
        let items: String = detail
            .split(" | ")
            .map(|d| format!("<li>{}</li>", esc(d)))
            .collect();
        format!(
            "<details class=\"reasons\"><summary>{}</summary><ul>{items}</ul></details>",
            esc(t(lang, "reasons"))
        )
    } else {
        esc(detail)
    };
    format!(
        "<tr class=\"doc st-{st}{h}\" data-number=\"{n}\" data-status=\"{st}\"><td>{pick}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{reasons}</td></tr>",
        strike(esc(number)),
        opt_date(lang, date),
        strike(esc(customer)),
        amount_of(lang, &r["gross"]),
        esc(i18n::state(lang, status)),
        st = esc(status),
        h = if held { " held" } else { "" },
        n = esc(number),
    )
}

/// The wizard's export request (JSON, sent by the page's script).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportForm {
    job: String,
    target: String,
    #[serde(default)]
    journal: String,
    from: NaiveDate,
    to: NaiveDate,
    #[serde(default)]
    include_exported: bool,
    #[serde(default)]
    exclude: Vec<String>,
    /// The documents ticked in the preview, when the page sends them: exactly these are
    /// exported (a document held at preview time and fixed since, or one that arrived since, is
    /// never exported unseen).
    #[serde(default)]
    only: Option<Vec<String>>,
}

/// `POST /console/export`: `facto export` with the wizard's choices; on success, to the new
/// batch's page (its report, sha256 and download link).
pub(super) async fn export(State(s): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let a = match guard(&s, &headers, true, Action::Export) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let lang = a.lang;
    let f: ExportForm = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return failure(
                &a,
                StatusCode::BAD_REQUEST,
                t(lang, "failed"),
                &format!("bad request: {e}"),
            )
        }
    };
    let mut args = vec![
        "export".to_owned(),
        "--json".to_owned(),
        format!("--job={}", f.job),
        format!("--target={}", f.target),
        format!("--from={}", f.from),
        format!("--to={}", f.to),
    ];
    if !f.journal.trim().is_empty() {
        args.push(format!("--journal={}", f.journal.trim()));
    }
    if f.include_exported {
        args.push("--include-exported".to_owned());
    }
    args.extend(f.exclude.iter().map(|n| format!("--exclude={n}")));
    if let Some(only) = &f.only {
        if only.is_empty() {
            return failure(
                &a,
                StatusCode::BAD_REQUEST,
                t(lang, "failed"),
                "no document is ticked: nothing to export",
            );
        }
        args.extend(only.iter().map(|n| format!("--only={n}")));
    }
    let (code, out, err) = cli(&s, a.role, &args).await;
    let report: Option<RunReport> = serde_json::from_slice(&out).ok();
    let batches = report
        .as_ref()
        .map(|r| r.batches.clone())
        .unwrap_or_default();
    if let Some(b) = batches.first() {
        audit(
            &s,
            a.role,
            "export",
            &format!(
                "export batch {} of job {}, target {}, period {} → {}: {} documents, sha256 {}{}",
                b.id,
                f.job,
                f.target,
                f.from,
                f.to,
                b.documents,
                b.sha256,
                if f.exclude.is_empty() {
                    String::new()
                } else {
                    format!(", excluded {}", f.exclude.join(", "))
                }
            ),
        );
        return to(&format!("/console/exports/{}", b.id));
    }
    let mut text = if err.is_empty() {
        t(lang, "nothing").to_owned()
    } else {
        err
    };
    if let Some(r) = &report {
        text.push_str(&format!(" ({})", r.render().trim()));
    } else if code != 0 && text.is_empty() {
        text = format!("exit {code}");
    }
    failure(
        &a,
        StatusCode::UNPROCESSABLE_ENTITY,
        t(lang, "failed"),
        &text,
    )
}

fn status_label(lang: Locale, b: &Batch) -> &str {
    if b.status == BatchStatus::Active {
        t(lang, "active")
    } else {
        t(lang, "cancelled")
    }
}

/// `GET /console/exports`: the history, newest first.
pub(super) async fn list(State(s): Shared, headers: HeaderMap) -> Response {
    let a = match guard(&s, &headers, false, Action::Read) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let lang = a.lang;
    let (code, out, err) = cli(
        &s,
        a.role,
        &["exports".into(), "list".into(), "--json".into()],
    )
    .await;
    let Ok(batches) = serde_json::from_slice::<Vec<Batch>>(&out) else {
        return failure(
            &a,
            StatusCode::INTERNAL_SERVER_ERROR,
            t(lang, "exports"),
            &format!("{err} (exit {code})"),
        );
    };
    if batches.is_empty() {
        return page(
            &a,
            t(lang, "exports"),
            &format!("<p id=\"exports\">{}</p>", esc(t(lang, "no_batches"))),
        );
    }
    let mut rows = String::new();
    for b in batches.iter().rev() {
        rows.push_str(&format!(
            "<tr class=\"batch {cls}\" data-id=\"{id}\"><td><a href=\"/console/exports/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{} – {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td><code title=\"{sha}\">{}…</code></td><td>{}</td></tr>",
            esc(&b.target),
            esc(&b.journal),
            i18n::date(lang, b.period_from),
            i18n::date(lang, b.period_to),
            b.documents,
            i18n::amount(lang, b.total_debit),
            esc(b.sha256.get(..12).unwrap_or(&b.sha256)),
            esc(status_label(lang, b)),
            cls = if b.status == BatchStatus::Active { "active" } else { "cancelled" },
            id = b.id,
            sha = esc(&b.sha256),
        ));
    }
    let body = format!(
        "<table id=\"exports\"><thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>sha256</th><th>{}</th></tr></thead><tbody>{rows}</tbody></table>",
        esc(t(lang, "target")), esc(t(lang, "journal")), esc(t(lang, "period")), esc(t(lang, "documents")),
        esc(t(lang, "debit")), esc(t(lang, "state")),
    );
    page(&a, t(lang, "exports"), &body)
}

fn batch_id(raw: &str) -> Option<u64> {
    raw.parse().ok()
}

/// `GET /console/exports/{id}`: one batch, its documents, the report of its run; download and
/// cancel.
pub(super) async fn show(State(s): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let a = match guard(&s, &headers, false, Action::Read) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let lang = a.lang;
    let Some(id) = batch_id(&id) else {
        return failure(
            &a,
            StatusCode::NOT_FOUND,
            t(lang, "batch"),
            "no such export",
        );
    };
    let (_, out, err) = cli(
        &s,
        a.role,
        &[
            "exports".into(),
            "show".into(),
            id.to_string(),
            "--json".into(),
        ],
    )
    .await;
    let v: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
    let Ok(b) = serde_json::from_value::<Batch>(v["batch"].clone()) else {
        return failure(&a, StatusCode::NOT_FOUND, t(lang, "batch"), &err);
    };
    let mut body = format!(
        "<dl id=\"batch\" data-id=\"{id}\" data-status=\"{st}\"><dt>{}</dt><dd>{} · {} · {}</dd><dt>{}</dt><dd>{} – {}</dd>\
         <dt>{}</dt><dd id=\"batch-documents\">{}</dd><dt>{} / {}</dt><dd>{} / {}</dd><dt>{}</dt><dd>{} ({} B)</dd>\
         <dt>sha256</dt><dd><code id=\"sha256\">{}</code></dd><dt>{}</dt><dd>{} {} ({})</dd><dt>{}</dt><dd id=\"batch-state\">{}</dd></dl>",
        esc(t(lang, "target")), esc(&b.target), esc(&b.format), esc(&b.journal),
        esc(t(lang, "period")), i18n::date(lang, b.period_from), i18n::date(lang, b.period_to),
        esc(t(lang, "documents")), b.documents,
        esc(t(lang, "debit")), esc(t(lang, "credit")), i18n::amount(lang, b.total_debit), i18n::amount(lang, b.total_credit),
        esc(t(lang, "file")), esc(&b.file_name), b.size,
        esc(&b.sha256),
        esc(t(lang, "created")), i18n::date(lang, b.created_at.date_naive()), b.created_at.format("%H:%M UTC"), esc(&b.origin),
        esc(t(lang, "state")), esc(status_label(lang, &b)),
        st = if b.status == BatchStatus::Active { "active" } else { "cancelled" },
    );
    body.push_str(&format!(
        "<p><a id=\"download\" href=\"/console/exports/{id}/download\">{}</a>",
        esc(t(lang, "download"))
    ));
    if b.status == BatchStatus::Active && a.role.allows(Action::Cancel) {
        body.push_str(&format!(
            " <button type=\"button\" id=\"cancel\" data-id=\"{id}\" data-confirm=\"{}\">{}</button>",
            esc(t(lang, "confirm_cancel")),
            esc(t(lang, "cancel"))
        ));
    }
    body.push_str("</p>");
    if let Ok(report) = serde_json::from_value::<RunReport>(v["run_report"].clone()) {
        body.push_str(&format!("<h2>{}</h2><table id=\"report\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
            esc(t(lang, "run_report")), esc(t(lang, "target")), esc(t(lang, "delivered")), esc(t(lang, "held")), esc(t(lang, "gross"))));
        for tr in &report.targets {
            body.push_str(&format!(
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&tr.target), tr.delivered, tr.held, i18n::amount(lang, tr.amounts.gross)
            ));
        }
        body.push_str(&format!(
            "</tbody></table><p>{} {}</p>",
            report.documents_read,
            esc(t(lang, "read"))
        ));
    }
    body.push_str(&format!(
        "<h2>{}</h2><table id=\"batch-docs\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        esc(t(lang, "documents")), esc(t(lang, "number")), esc(t(lang, "customer")), esc(t(lang, "gross")), esc(t(lang, "state"))
    ));
    for d in v["documents"].as_array().into_iter().flatten() {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(d["number"].as_str().unwrap_or_default()),
            esc(d["customer"].as_str().unwrap_or_default()),
            amount_of(lang, &d["gross"]),
            esc(i18n::state(lang, d["state"].as_str().unwrap_or_default())),
        ));
    }
    body.push_str("</tbody></table>");
    page(&a, &format!("{} {id}", t(lang, "batch")), &body)
}

/// `GET /console/exports/{id}/download`: the exact bytes first produced (`facto exports
/// download`).
pub(super) async fn download(
    State(s): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let a = match guard(&s, &headers, false, Action::Download) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let Some(id) = batch_id(&id) else {
        return failure(
            &a,
            StatusCode::NOT_FOUND,
            t(a.lang, "download"),
            "no such export",
        );
    };
    let (code, bytes, err) = cli(
        &s,
        a.role,
        &[
            "exports".into(),
            "download".into(),
            id.to_string(),
            "--out".into(),
            "-".into(),
        ],
    )
    .await;
    if code != 0 {
        return failure(&a, StatusCode::NOT_FOUND, t(a.lang, "download"), &err);
    }
    // A name safe in a header: the recorded file name's own characters, nothing else.
    let name: String = s
        .ledger
        .batch(id)
        .ok()
        .flatten()
        .map(|b| b.file_name)
        .unwrap_or_else(|| format!("batch-{id}"))
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// `POST /console/exports/{id}/cancel`: `facto exports cancel` (the page asks to confirm).
pub(super) async fn cancel(
    State(s): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let a = match guard(&s, &headers, true, Action::Cancel) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let Some(id) = batch_id(&id) else {
        return failure(
            &a,
            StatusCode::NOT_FOUND,
            t(a.lang, "cancel"),
            "no such export",
        );
    };
    let (code, _, err) = cli(
        &s,
        a.role,
        &[
            "exports".into(),
            "cancel".into(),
            id.to_string(),
            "--json".into(),
        ],
    )
    .await;
    if code != 0 {
        return failure(&a, StatusCode::CONFLICT, t(a.lang, "cancel"), &err);
    }
    // `exports cancel` audited it, with the role as who acted.
    to(&format!("/console/exports/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_held_row_is_struck_through_with_its_reasons_and_every_value_is_escaped() {
        let row = doc_row(
            Locale::Fr,
            &json!({"number": "F<1>", "customer": "A & \"B\" <script>", "date": "2026-07-29",
                "gross": "2538.9", "status": "held",
                "detail": "tax_code: no mapping <TVA85> — fix: add it | totals: off — fix: <b>"}),
        );
        assert!(row.contains("<s>F&lt;1&gt;</s>"), "{row}");
        assert!(
            row.contains("<s>A &amp; &quot;B&quot; &lt;script&gt;</s>"),
            "{row}"
        );
        assert!(!row.contains("<script>") && !row.contains("<b>"), "{row}");
        assert!(
            row.contains("<li>tax_code: no mapping &lt;TVA85&gt; — fix: add it</li>"),
            "{row}"
        );
        assert!(
            row.contains("<li>totals: off — fix: &lt;b&gt;</li>"),
            "{row}"
        );
        assert!(
            row.contains("<details class=\"reasons\">") && row.contains("retenu"),
            "{row}"
        );
        assert!(
            row.contains("29/07/2026") && row.contains("2\u{202F}538,90"),
            "{row}"
        );
        assert!(row.contains("<input type=\"checkbox\" disabled>"), "{row}");
    }

    #[test]
    fn new_rows_are_ticked_and_exported_ones_wait_for_the_include_option() {
        let new = doc_row(
            Locale::En,
            &json!({"number": "F1", "status": "new", "detail": ""}),
        );
        assert!(new.contains("class=\"pick\" value=\"F1\" checked"), "{new}");
        assert!(!new.contains("<s>") && new.contains("to export"), "{new}");
        let old = doc_row(
            Locale::En,
            &json!({"number": "F\"2", "status": "already-transferred", "detail": "in export batch 1"}),
        );
        assert!(
            old.contains("class=\"pick exported\" value=\"F&quot;2\" disabled"),
            "{old}"
        );
        assert!(
            !old.contains("<s>") && old.contains("already exported"),
            "{old}"
        );
    }
}
