//! The admin's actions on a document's records, each running the CLI's own command through
//! the daemon's executor, which audits it with the role as who acted: `ledger retry` of one record (its job and
//! exact id), `ledger forget` (its warning first, then `--yes`) and `sync --job`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::super::i18n::t;
use super::super::{audit, cli, failure, guard, to, Access, Action, Shared};
use super::enc;
use crate::report::RunReport;

/// `facto ledger forget` of one record: the document last, after `--` (an id such as `-F1` is
/// no option).
pub(in crate::daemon::console) fn forget_args(
    doc: &str,
    target: &str,
    job: Option<&str>,
    yes: bool,
) -> Vec<String> {
    let mut args = vec![
        "ledger".to_owned(),
        "forget".to_owned(),
        "--json".to_owned(),
        format!("--target={target}"),
    ];
    if let Some(j) = job {
        args.push(format!("--job={j}"));
    }
    if yes {
        args.push("--yes".to_owned());
    }
    args.extend(["--".to_owned(), doc.to_owned()]);
    args
}

/// `facto ledger retry` of one record: its job and exact document id, so that a number shared
/// by two jobs, or equal to another document's id, never releases another record; the
/// document last, after `--`.
pub(in crate::daemon::console) fn retry_args(
    doc: &str,
    target: Option<&str>,
    job: Option<&str>,
) -> Vec<String> {
    let mut args = vec!["ledger".to_owned(), "retry".to_owned(), "--json".to_owned()];
    if let Some(t) = target {
        args.push(format!("--target={t}"));
    }
    if let Some(j) = job {
        args.push(format!("--job={j}"));
    }
    args.extend(["--".to_owned(), doc.to_owned()]);
    args
}

/// The body of an action's request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::daemon::console) struct ActionForm {
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    job: Option<String>,
    /// The record's exact document id (the page's address may name its number).
    #[serde(default)]
    doc_id: Option<String>,
    #[serde(default)]
    confirm: bool,
}

fn admin_action(
    s: &super::super::Server,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Access, ActionForm), Box<Response>> {
    let a = guard(s, headers, true, Action::Admin)?;
    match serde_json::from_slice::<ActionForm>(body) {
        Ok(f) => Ok((a, f)),
        Err(e) => Err(Box::new(failure(
            &a,
            StatusCode::BAD_REQUEST,
            t(a.lang, "failed_action"),
            &format!("bad request: {e}"),
        ))),
    }
}

/// Runs a CLI command that audits itself (`ledger retry`/`forget`, with the role as who
/// acted), then goes to `then`; its refusal is shown as a 409 page.
async fn self_audited(
    s: &super::super::Server,
    a: &Access,
    args: &[String],
    then: &str,
) -> Response {
    let (code, _, err) = cli(s, a.role, args).await;
    if code != 0 {
        return failure(a, StatusCode::CONFLICT, t(a.lang, "failed_action"), &err);
    }
    to(then)
}

/// `POST /console/documents/{doc}/retry` (admin, `{"target", "job", "doc_id"}`): `facto ledger
/// retry` of that record only.
pub(in crate::daemon::console) async fn retry(
    State(s): Shared,
    headers: HeaderMap,
    Path(doc): Path<String>,
    body: Bytes,
) -> Response {
    let (a, f) = match admin_action(&s, &headers, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id = f.doc_id.as_deref().unwrap_or(&doc);
    let args = retry_args(id, f.target.as_deref(), f.job.as_deref());
    self_audited(&s, &a, &args, &format!("/console/documents/{}", enc(&doc))).await
}

/// `POST /console/documents/{doc}/forget` (admin, `{"target", "job", "confirm": true}`):
/// `facto ledger forget --yes`; without the confirmation, the CLI's warning (409).
pub(in crate::daemon::console) async fn forget(
    State(s): Shared,
    headers: HeaderMap,
    Path(doc): Path<String>,
    body: Bytes,
) -> Response {
    let (a, f) = match admin_action(&s, &headers, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let args = forget_args(
        f.doc_id.as_deref().unwrap_or(&doc),
        f.target.as_deref().unwrap_or_default(),
        f.job.as_deref(),
        f.confirm,
    );
    self_audited(
        &s,
        &a,
        &args,
        &format!("/console/documents?q={}", enc(&doc)),
    )
    .await
}

/// `POST /console/documents/{doc}/run` (admin, `{"job": ...}`): "run this job now", the pass of
/// `facto sync --job` (the daemon's own executor, as the CLI's forwarded `sync`).
pub(in crate::daemon::console) async fn run_now(
    State(s): Shared,
    headers: HeaderMap,
    Path(doc): Path<String>,
    body: Bytes,
) -> Response {
    let (a, f) = match admin_action(&s, &headers, &body) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some(job) = f.job.filter(|j| !j.is_empty()) else {
        return failure(
            &a,
            StatusCode::BAD_REQUEST,
            t(a.lang, "failed_action"),
            "no job named",
        );
    };
    let (code, out, err) = cli(
        &s,
        a.role,
        &["sync".into(), "--json".into(), format!("--job={job}")],
    )
    .await;
    let Ok(report) = serde_json::from_slice::<RunReport>(&out) else {
        return failure(
            &a,
            StatusCode::CONFLICT,
            t(a.lang, "failed_action"),
            &format!("{err} (exit {code})"),
        );
    };
    audit(
        &s,
        a.role,
        "run-job",
        &format!("job {job} run now (run {}, exit {code})", report.run_id),
    );
    to(&format!("/console/documents/{}", enc(&doc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CLI's own parser on the arguments the console builds.
    fn parsed(args: Vec<String>) -> crate::cli::LedgerCmd {
        use clap::Parser as _;
        let all = std::iter::once("facto".to_owned()).chain(args);
        match crate::cli::Cli::try_parse_from(all).map(|c| c.command) {
            Ok(crate::cli::Command::Ledger { cmd }) => cmd,
            other => panic!("not a ledger command: {other:?}"),
        }
    }

    #[test]
    fn a_document_id_starting_with_a_dash_is_no_option() {
        match parsed(retry_args("-F1", Some("sales-fec"), Some("sales"))) {
            crate::cli::LedgerCmd::Retry { doc, target, job } => {
                assert_eq!(doc, "-F1");
                assert_eq!(target.as_deref(), Some("sales-fec"));
                assert_eq!(job.as_deref(), Some("sales"));
            }
            other => panic!("{other:?}"),
        }
        for yes in [false, true] {
            match parsed(forget_args("-F1", "sales-fec", Some("sales"), yes)) {
                crate::cli::LedgerCmd::Forget {
                    doc,
                    target,
                    job,
                    yes: confirmed,
                } => {
                    assert_eq!((doc.as_str(), target.as_str()), ("-F1", "sales-fec"));
                    assert_eq!((job.as_deref(), confirmed), (Some("sales"), yes));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
