//! The ingestion endpoint: `POST /api/v1/tenants/{tenant}/documents` (and `/api/v1/documents`
//! for the daemon's own tenant), where the invoicing application pushes one document or a
//! batch (a JSON array) in the canonical format (`schema/document.schema.json`) to a `push`
//! source (`source::push`).
//!
//! - Authenticated per tenant: `Authorization: Bearer <data_dir/ingest-token>` (0600, made on
//!   first start; the admin token is taken too).
//! - Each document is answered at once: `accepted` (stored, delivered at the next pass),
//!   `held` (stored, but the mapping or the checks hold it: the problems say the field and the
//!   fix; it goes once they are fixed), `changed-after-delivery` (stored; a delivered document
//!   is never sent again, the change is reported), `duplicate` (this id with this content was
//!   already received: nothing is done, its states are given) or `rejected` (not a document:
//!   nothing is stored; the field and the fix are given), `stale` (a newer version of it, by
//!   `updated_at`, is waiting: nothing is stored) or `skipped` (not final: stored, never booked).
//! - Idempotent on (tenant, document id, content hash): a request sent again after a lost
//!   answer changes nothing.
//! - Stored in the ledger and flushed before the answer: what was accepted is never lost.
//! - Delivered on the jobs' schedule, or at once with `?deliver=now` or the connector's
//!   `deliver_at_once`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use super::api::{error, query_param, Server};
use crate::config::{Config, Connector};
use crate::ledger::Ledger;
use crate::problem::Problem;
use crate::source::{item_from_value, Item, Page};

/// The ingestion token file of a data folder.
pub fn token_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("ingest-token")
}

/// What became of one pushed document.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// Its place in the request (0 for a single document).
    pub position: usize,
    /// Its id, as far as it could be read.
    pub id: String,
    /// Its number, when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// `accepted`, `held`, `changed-after-delivery`, `duplicate`, `stale`, `skipped` or
    /// `rejected`.
    pub status: &'static str,
    /// Why it is held or rejected: the field, what is wrong, the fix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// For a duplicate: where it stands per target (`<job>/<target>: <state>`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<String>,
}

/// The answer to a push.
#[derive(Debug, Serialize)]
pub struct Answer {
    /// The tenant.
    pub tenant: String,
    /// The push source the documents went to.
    pub source: String,
    /// Counts per status.
    pub counts: BTreeMap<&'static str, u64>,
    /// Whether the jobs were started at once.
    pub delivering_now: bool,
    /// One line per document, in the request's order.
    pub documents: Vec<Outcome>,
}

/// Why a push was refused as a whole.
#[derive(Debug)]
pub struct Refusal(pub StatusCode, pub String);

fn refuse(status: StatusCode, msg: impl Into<String>) -> Refusal {
    Refusal(status, msg.into())
}

/// The ledger failed: nothing was stored, the application sends again.
fn led(e: crate::ledger::LedgerError) -> Refusal {
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the ledger cannot be read or written ({e}); nothing was stored, send again"),
    )
}

/// The push source a request goes to: the one it names, or the only one.
fn push_source(cfg: &Config, named: Option<&str>) -> Result<String, Refusal> {
    let push: Vec<&String> = cfg
        .connectors
        .iter()
        .filter(|(_, c)| matches!(c, Connector::Push(_)))
        .map(|(n, _)| n)
        .collect();
    match named {
        Some(n) if push.iter().any(|p| *p == n) => Ok(n.to_owned()),
        Some(n) => Err(refuse(
            StatusCode::NOT_FOUND,
            format!(
                "`{n}` is not a push source here; push sources: {}",
                list(&push)
            ),
        )),
        None if push.len() == 1 => Ok(push[0].clone()),
        None if push.is_empty() => Err(refuse(
            StatusCode::NOT_FOUND,
            "no push source is configured: add a connector with kind = \"push\" and a job reading it",
        )),
        None => Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("several push sources; name one with ?source=: {}", list(&push)),
        )),
    }
}

fn list(names: &[&String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Takes a push: checks each document, stores the new ones (one flushed write) and says what
/// became of each.
///
/// # Errors
///
/// No such source, no job reading it, a body that is not JSON, the ledger failing (then
/// nothing is stored).
pub fn take(
    cfg: &Config,
    ledger: &dyn Ledger,
    tenant: &str,
    source: Option<&str>,
    body: &[u8],
) -> Result<(Answer, Vec<String>), Refusal> {
    let source = push_source(cfg, source)?;
    let jobs: Vec<&crate::config::Job> = cfg.jobs.iter().filter(|j| j.source == source).collect();
    if jobs.is_empty() {
        return Err(refuse(
            StatusCode::CONFLICT,
            format!(
                "no job reads the push source `{source}`: add a [[job]] with source = \"{source}\""
            ),
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not JSON ({e}): send one document (an object) or an array of them"
            ),
        )
    })?;
    let values = match value {
        Value::Array(v) => v,
        v @ Value::Object(_) => vec![v],
        _ => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "send one document (a JSON object) or an array of them",
            ))
        }
    };
    let job_names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    // One push at a time between the checks and the write: in this process, and across the
    // workers sharing the ledger (two pushes of one id would both be stored).
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    ledger.lock_name("ingest").map_err(led)?;
    let taken = take_locked(cfg, ledger, &jobs, &job_names, values);
    ledger.unlock_name("ingest");
    let (out, stored) = taken?;
    let mut counts = BTreeMap::new();
    for o in &out {
        *counts.entry(o.status).or_insert(0) += 1;
    }
    let woken = if stored {
        job_names.iter().map(|s| (*s).to_owned()).collect()
    } else {
        Vec::new()
    };
    Ok((
        Answer {
            tenant: tenant.to_owned(),
            source,
            counts,
            delivering_now: false,
            documents: out,
        },
        woken,
    ))
}

/// [`take`]'s checks and write, under its lock: each document's outcome, and whether anything
/// was stored.
fn take_locked(
    cfg: &Config,
    ledger: &dyn Ledger,
    jobs: &[&crate::config::Job],
    job_names: &[&str],
    values: Vec<Value>,
) -> Result<(Vec<Outcome>, bool), Refusal> {
    let mut out = Vec::with_capacity(values.len());
    let mut store = Vec::new();
    let mut first_at: BTreeMap<String, usize> = BTreeMap::new();
    for (pos, v) in values.into_iter().enumerate() {
        let mut page = Page::default();
        item_from_value(
            v.clone(),
            &format!("push:{}", jobs.first().map_or("", |j| j.source.as_str())),
            pos,
            &mut page,
        );
        let doc = match page.items.pop() {
            Some(Item::Doc { doc, .. }) => doc,
            Some(Item::Bad { id, number, error }) => {
                out.push(Outcome {
                    position: pos,
                    id,
                    number,
                    status: "rejected",
                    problems: vec![Problem::new(
                        "malformed-document",
                        error.path.clone(),
                        error.message.clone(),
                        "correct the field as docs/document-format.md describes, then send the document again",
                    )],
                    states: Vec::new(),
                });
                continue;
            }
            None => continue,
        };
        let mut line = Outcome {
            position: pos,
            id: doc.id.clone(),
            number: Some(doc.number.clone()),
            status: "accepted",
            problems: Vec::new(),
            states: Vec::new(),
        };
        if let Some(first) = first_at.insert(doc.id.clone(), pos) {
            line.status = "rejected";
            line.problems.push(Problem::new(
                "id-twice-in-request",
                "id",
                format!(
                    "the id `{}` is also at position {first} of this request",
                    doc.id
                ),
                "send each document once per request (the latest version)",
            ));
            out.push(line);
            continue;
        }
        let hash = crate::sync::source_hash(&doc);
        let mut seen = false;
        let mut delivered_other = false;
        let mut newer: Option<String> = None;
        for j in jobs {
            for (h, w) in crate::inbox::waiting_versions(ledger, &j.name, &doc.id).map_err(led)? {
                if h == hash {
                    seen = true;
                    line.states
                        .push(format!("{}: waiting for the next pass", j.name));
                } else if let Some(at) = w.document["updated_at"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .filter(|at| *at > doc.updated_at)
                {
                    newer = Some(at.to_rfc3339());
                }
            }
            for r in ledger.find_in_job(&j.name, &doc.id).map_err(led)? {
                if r.key.doc_id != doc.id {
                    continue;
                }
                if r.source_hash == hash {
                    seen = true;
                    line.states
                        .push(format!("{}/{}: {}", j.name, r.key.target, r.state.as_str()));
                } else if r.state.is_delivered() {
                    delivered_other = true;
                }
            }
        }
        if seen {
            line.status = "duplicate";
            out.push(line);
            continue;
        }
        line.states.clear();
        if let Some(at) = newer {
            // A retry of an older version after a newer one: the newer one stays.
            line.status = "stale";
            line.problems.push(Problem::new(
                "older-version",
                "updated_at",
                format!(
                    "a newer version of this document (updated_at {at}) is waiting; this one was updated at {}",
                    doc.updated_at.to_rfc3339()
                ),
                "nothing to do if the newer version is the right one; otherwise send the document again with a later updated_at",
            ));
            out.push(line);
            continue;
        }
        if doc.status != crate::model::DocStatus::Final {
            // Stored all the same: a document booked before and no longer final is handled as
            // the pipeline does for a pulled one.
            line.status = "skipped";
            line.problems.push(Problem::new(
                "not-final",
                "status",
                format!(
                    "the document is {}: facto books final documents only",
                    doc.status.as_str()
                ),
                "send it again once it is final",
            ));
            store.push((doc.id.clone(), hash, v));
            out.push(line);
            continue;
        }
        if delivered_other {
            line.status = "changed-after-delivery";
            line.problems.push(Problem::new(
                "changed-after-delivery",
                "(document)",
                "an earlier version of this document was already delivered; it is never sent again",
                "issue a credit note and a new invoice for the change; the change is reported to the accountant",
            ));
        } else {
            let mut problems = Vec::new();
            for j in jobs {
                if let Some(m) = cfg.mapping_for(j) {
                    if let Err(p) = crate::checks::prepare(&doc, m.as_ref()) {
                        for p in p {
                            if !problems.contains(&p) {
                                problems.push(p);
                            }
                        }
                    }
                }
            }
            if !problems.is_empty() {
                line.status = "held";
                line.problems = problems;
            }
        }
        store.push((doc.id.clone(), hash, v));
        out.push(line);
    }
    if !store.is_empty() {
        crate::inbox::put(ledger, job_names, &store).map_err(led)?;
    }
    Ok((out, !store.is_empty()))
}

/// Whether the bearer of `req` may push to this tenant: its ingestion token or its admin token.
fn allowed(s: &Server, headers: &axum::http::HeaderMap) -> bool {
    use secrecy::ExposeSecret;
    super::auth::bearer_is(headers, s.ingest.expose_secret())
        || super::auth::bearer_is(headers, &s.token)
}

/// `POST /api/v1/tenants/{tenant}/documents`.
pub(super) async fn tenant_documents(
    State(s): State<Arc<Server>>,
    Path(tenant): Path<String>,
    req: Request,
) -> Response {
    if tenant != s.tenant {
        return error(StatusCode::NOT_FOUND, "no such tenant");
    }
    documents(State(s), req).await
}

/// `POST /api/v1/documents`: the daemon's own tenant.
pub(super) async fn documents(State(s): State<Arc<Server>>, req: Request) -> Response {
    let source = query_param(&req, "source").map(str::to_owned);
    let now = query_param(&req, "deliver") == Some("now");
    let (parts, body) = req.into_parts();
    if !allowed(&s, &parts.headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "the tenant's ingestion token is required (Authorization: Bearer <data_dir/ingest-token>)",
        );
    }
    let Ok(body): Result<Bytes, _> = axum::body::to_bytes(body, super::http::MAX_REQUEST).await
    else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "the request is too large");
    };
    let server = Arc::clone(&s);
    // The ledger may wait on a database: on a thread of its own.
    let taken = tokio::task::spawn_blocking(move || {
        let cfg = server
            .fresh()
            .map_err(|e| Refusal(StatusCode::INTERNAL_SERVER_ERROR, e))?;
        take(
            &cfg,
            &*server.ledger,
            &server.tenant,
            source.as_deref(),
            &body,
        )
        .map(|(a, woken)| {
            // The source `take` resolved (the one named, or the only one).
            let at_once = matches!(
                cfg.connectors.get(&a.source),
                Some(Connector::Push(c)) if c.deliver_at_once
            );
            (a, woken, at_once)
        })
    })
    .await;
    match taken {
        Ok(Ok((mut answer, woken, at_once))) => {
            if (now || at_once) && !woken.is_empty() {
                answer.delivering_now = true;
                for j in &woken {
                    s.wake(j);
                }
            }
            let all_rejected = !answer.documents.is_empty()
                && answer.documents.iter().all(|d| d.status == "rejected");
            let status = if all_rejected {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            (status, Json(answer)).into_response()
        }
        Ok(Err(Refusal(status, msg))) => error(status, msg),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the task failed: {e}"),
        ),
    }
}
