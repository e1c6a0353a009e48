//! Read-only looks at a job: `preview` (what a sync or export would do, per document) and the
//! source scan of `mappings check` (every code the source uses that the mapping lacks). Neither
//! writes anything.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::checks::prepare;
use crate::config::{Config, Connector, Job};
use crate::format;
use crate::ledger::{BatchStatus, Ledger, RecordKey, State};
use crate::mapping::unmapped_codes;
use crate::model::{DocStatus, Document};
use crate::problem::Problem;
use crate::source::{Item, SourceError};
use crate::sync::duplicates::Duplicate;
use crate::sync::readahead::ReadAhead;

/// One document's fate.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewRow {
    /// Source id.
    pub doc_id: String,
    /// Number.
    pub number: String,
    /// Issue date.
    pub date: Option<NaiveDate>,
    /// Customer.
    pub customer: String,
    /// Gross total.
    pub gross: Option<Decimal>,
    /// `new`, `already-transferred`, `held`, `changed-after-delivery`, `failed`, `in-progress`,
    /// `nothing-to-book` (every amount zero: no line for a journal layout).
    pub status: String,
    /// Batch, reasons, fixes.
    pub detail: String,
    /// Its route, address and why, for a target that routes documents (a PA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<crate::route::Shown>,
}

/// Preview of one target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetPreview {
    /// Target.
    pub target: String,
    /// `export` for journal files, `transfer` for the other targets.
    pub action: &'static str,
    /// Documents to transfer.
    pub to_transfer: u64,
    /// Final documents in the period.
    pub documents: u64,
    /// Per document.
    pub rows: Vec<PreviewRow>,
}

/// What a run would do now.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// Job.
    pub job: String,
    /// Period, if one was given.
    pub from: Option<NaiveDate>,
    /// End of the period.
    pub to: Option<NaiveDate>,
    /// Documents skipped because not final, per status.
    pub skipped: BTreeMap<String, u64>,
    /// Per target.
    pub targets: Vec<TargetPreview>,
}

impl Preview {
    /// Text for a terminal.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let period = match (self.from, self.to) {
            (None, None) => "all dates".to_owned(),
            (f, t) => format!(
                "{} to {}",
                f.map(|d| d.to_string()).unwrap_or_else(|| "…".into()),
                t.map(|d| d.to_string()).unwrap_or_else(|| "…".into())
            ),
        };
        let _ = writeln!(
            s,
            "preview of job {} ({period}) — nothing is changed",
            self.job
        );
        for t in &self.targets {
            let _ = writeln!(s, "\ntarget {}:", t.target);
            for r in &t.rows {
                let _ = writeln!(
                    s,
                    "  {:<14} {:<10} {:<24} {:>10}  {:<22} {}",
                    r.number,
                    r.date.map(|d| d.to_string()).unwrap_or_default(),
                    r.customer.chars().take(24).collect::<String>(),
                    r.gross.map(|g| format!("{g:.2}")).unwrap_or_default(),
                    r.status,
                    r.detail
                );
                if let Some(route) = &r.route {
                    let _ = writeln!(
                        s,
                        "  {:<14} route {}{}: {}",
                        "",
                        route.route,
                        route
                            .address
                            .as_deref()
                            .map(|a| format!(" to {a}"))
                            .unwrap_or_default(),
                        route.why
                    );
                }
            }
            let _ = writeln!(
                s,
                "  {} to {} of {} documents in the period",
                t.to_transfer, t.action, t.documents
            );
        }
        if !self.skipped.is_empty() {
            let v: Vec<String> = self
                .skipped
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            let _ = writeln!(
                s,
                "\nskipped (not final, never transferred): {}",
                v.join(", ")
            );
        }
        s
    }
}

/// Reads every document of the job's source (no cursor), calling `f` on each item.
///
/// # Errors
///
/// The source fails.
pub async fn scan_source(
    cfg: &Config,
    job: &Job,
    ledger: Option<&dyn Ledger>,
    mut f: impl FnMut(Item),
) -> Result<(), SourceError> {
    let mut src = cfg.open_source(&job.source, None, ledger.map(|l| (l, job.name.as_str())))?;
    while let Some(page) = src.next_page().await? {
        page.items.into_iter().for_each(&mut f);
    }
    Ok(())
}

fn in_period(doc: &Document, from: Option<NaiveDate>, to: Option<NaiveDate>) -> bool {
    from.is_none_or(|f| doc.issue_date >= f) && to.is_none_or(|t| doc.issue_date <= t)
}

/// What a sync or export would do now, per document and target.
///
/// # Errors
///
/// Source or ledger failure.
pub async fn preview(
    cfg: &Config,
    ledger: &dyn Ledger,
    job: &Job,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    target: Option<&str>,
) -> Result<Preview, Box<dyn std::error::Error + Send + Sync>> {
    let targets: Vec<String> = match target {
        Some(t)
            if !job.targets.iter().any(|x| x == t)
                && !matches!(cfg.connectors.get(t), Some(Connector::JournalFile(_))) =>
        {
            return Err(format!(
                "job `{}` has no target `{t}`; its targets: {} (or any journal-file connector)",
                job.name,
                job.targets.join(", ")
            )
            .into())
        }
        Some(t) => vec![t.to_owned()],
        None => job.targets.clone(),
    };
    let mapping = cfg
        .mapping_for(job)
        .ok_or_else(|| format!("mapping `{}` is not loaded", job.mapping))?;
    let mapping = mapping.as_ref();
    let mapping_file = crate::sync::mapping_file(mapping);
    // Built as for a dry run: what each target knows without calling anything, and its layout
    // (which documents it takes).
    let mut runs = targets
        .iter()
        .map(|t| crate::sync::offline_target(cfg, job, t))
        .collect::<Result<Vec<_>, _>>()?;
    let layouts: Vec<_> = runs.iter().map(|r| r.layout()).collect();
    let mut out = Preview {
        job: job.name.clone(),
        from,
        to,
        skipped: BTreeMap::new(),
        targets: Vec::new(),
    };
    let mut tps: Vec<TargetPreview> = targets
        .iter()
        .zip(runs.iter_mut())
        .map(|(t, run)| TargetPreview {
            action: if run.journal().is_some() {
                "export"
            } else {
                "transfer"
            },
            target: t.clone(),
            to_transfer: 0,
            documents: 0,
            rows: Vec::new(),
        })
        .collect();
    let mut bad = Vec::new();
    // Duplicates as the sync would find them, in source order and over the whole source (a
    // document out of the period still owns its number); nothing is saved.
    let mut dups = crate::sync::duplicates::Duplicates::default();
    dups.backfill(ledger, &job.name, true)?;
    // Page by page: each document becomes its rows at once; only the rows stay.
    let mut src = cfg.open_source(&job.source, None, Some((ledger, &job.name)))?;
    let mut ahead = ReadAhead::default();
    while let Some(page) = src.next_page().await? {
        // The page's records, on every target, and the owners of its numbers, read at once: one
        // round trip to a database for the page instead of one for each document and target.
        let docs = page.items.iter().filter_map(|i| match i {
            Item::Doc { doc, .. } => Some(&**doc),
            Item::Bad { .. } => None,
        });
        // Only the period's records are read: a preview's work follows its period. Every
        // document still owns its number, whatever its date.
        let keys = docs
            .clone()
            .filter(|d| in_period(d, from, to))
            .flat_map(|d| {
                targets.iter().map(|t| RecordKey {
                    job: job.name.clone(),
                    target: t.clone(),
                    doc_id: d.id.clone(),
                })
            })
            .collect();
        ahead.load(ledger, keys)?;
        dups.read_ahead(ledger, &job.name, docs)?;
        for item in page.items {
            match item {
                Item::Doc { doc, hash, origin } if doc.status == DocStatus::Final => {
                    let hash = hash.unwrap_or_else(|| crate::sync::source_hash(&doc));
                    let dup = dups.check(ledger, &job.name, &job.targets, &doc, &origin, &hash)?;
                    if matches!(dup, Some(Duplicate::Reread)) || !in_period(&doc, from, to) {
                        continue;
                    }
                    let seen = Seen {
                        doc: &doc,
                        hash: &hash,
                        origin: &origin,
                        dup: dup.as_ref(),
                        ahead: &ahead,
                    };
                    for ((tp, layout), run) in tps.iter_mut().zip(&layouts).zip(&runs) {
                        // Chorus Pro files are for public buyers only: other documents are not
                        // in their count.
                        if layout.as_ref().is_some_and(|l| !format::in_scope(l, &doc)) {
                            continue;
                        }
                        tp.documents += 1;
                        let row = row(
                            ledger,
                            job,
                            mapping,
                            &mapping_file,
                            tp,
                            *layout,
                            run.as_ref(),
                            &seen,
                        )?;
                        tp.rows.push(row);
                    }
                }
                Item::Doc { doc, .. } if in_period(&doc, from, to) => {
                    if skipped_by_a_target(ledger, &ahead, job, &targets, &layouts, &doc)? {
                        *out.skipped
                            .entry(doc.status.as_str().to_owned())
                            .or_insert(0) += 1;
                    }
                }
                Item::Doc { .. } => {}
                Item::Bad { id, number, error } => bad.push(PreviewRow {
                    doc_id: crate::model::shown_id(&id).to_owned(),
                    number: number.unwrap_or_else(|| crate::model::shown_id(&id).to_owned()),
                    date: None,
                    customer: String::new(),
                    gross: None,
                    status: "held".into(),
                    detail: error.to_string(),
                    route: None,
                }),
            }
        }
    }
    for mut tp in tps {
        // Stable: documents with the same date and number keep their source order.
        tp.rows
            .sort_by(|a, b| (a.date, &a.number).cmp(&(b.date, &b.number)));
        tp.rows.extend(bad.iter().cloned());
        out.targets.push(tp);
    }
    Ok(out)
}

/// A final document of the period as read, with what the duplicate check found.
struct Seen<'a> {
    doc: &'a Document,
    hash: &'a str,
    origin: &'a str,
    dup: Option<&'a Duplicate>,
    /// The page's records, read at once.
    ahead: &'a ReadAhead,
}

/// One document's row for one target, in the order the sync decides; a new one is counted in
/// `tp.to_transfer`.
#[allow(clippy::too_many_arguments)]
fn row(
    ledger: &dyn Ledger,
    job: &Job,
    mapping: &crate::mapping::Mapping,
    mapping_file: &str,
    tp: &mut TargetPreview,
    layout: Option<format::Layout>,
    run: &dyn crate::targets::TargetRun,
    seen: &Seen<'_>,
) -> Result<PreviewRow, crate::ledger::LedgerError> {
    let Seen {
        doc,
        hash,
        origin,
        dup,
        ahead,
    } = *seen;
    let key = RecordKey {
        job: job.name.clone(),
        target: tp.target.clone(),
        doc_id: doc.id.clone(),
    };
    let rec = ahead.get(ledger, &key)?;
    let held_for = |p: &Problem| {
        (
            "held".to_owned(),
            format!("{}: {} — fix: {}", p.field, p.message, p.fix),
        )
    };
    let route = run.offline_route(ledger, doc);
    // In the order the sync decides: a second copy of an id first, whatever its record.
    let (status, detail) = match (dup, rec.as_ref().map(|r| r.state)) {
        (Some(Duplicate::SameId(p)), _) => held_for(p),
        (_, Some(s)) if s.is_delivered() => {
            let batch = match rec.as_ref().and_then(|r| r.batch_id) {
                Some(id) => match ledger.batch(id)? {
                    Some(b) if b.status == BatchStatus::Active => {
                        format!("in export batch {id} ({})", b.file_name)
                    }
                    _ => format!("batch {id}"),
                },
                None => s.as_str().to_owned(),
            };
            let changed = rec
                .as_ref()
                .map(|r| crate::sync::changes_after_delivery(r, doc, hash))
                .unwrap_or_default();
            if !changed.is_empty() {
                (
                    "changed-after-delivery".to_owned(),
                    format!("{batch}; changed in the source since, never re-sent"),
                )
            } else {
                ("already-transferred".to_owned(), batch)
            }
        }
        (_, Some(State::Claimed)) => (
            "in-progress".into(),
            "claimed by a delivery in progress".into(),
        ),
        (_, Some(State::Failed)) => (
            "failed".into(),
            rec.and_then(|r| r.last_error).unwrap_or_default(),
        ),
        (Some(Duplicate::SameNumber(p)), _) => held_for(p),
        _ => match prepare(doc, mapping).and_then(|md| {
            let mut p = layout.map_or_else(Vec::new, |l| format::check(&l, &md, mapping_file));
            p.extend(
                run.offline_problems(ledger, origin, &md)
                    .unwrap_or_default(),
            );
            if p.is_empty() {
                Ok(md)
            } else {
                Err(p)
            }
        }) {
            Ok(md) if layout.is_some_and(|l| l.nothing_to_book(&md)) => (
                "nothing-to-book".into(),
                "every amount is zero: no line to write".into(),
            ),
            Ok(_) => {
                tp.to_transfer += 1;
                ("new".into(), String::new())
            }
            Err(problems) => (
                "held".into(),
                problems
                    .iter()
                    .map(|p| {
                        format!(
                            "{}: {} — fix: {}",
                            crate::problem::field_label(&p.field),
                            p.message,
                            p.fix
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
        },
    };
    Ok(PreviewRow {
        doc_id: doc.id.clone(),
        number: doc.number.clone(),
        date: Some(doc.issue_date),
        // The counterparty: the supplier of a received invoice.
        customer: crate::mapping::counterparty(doc, mapping.journal.side)
            .1
            .to_owned(),
        gross: Some(doc.totals.gross),
        status,
        detail,
        route,
    })
}

/// A code the source uses that the mapping lacks.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    /// Mapping table to add it to (`tax`, `gl.accounts`, `gl.products`, `customers.accounts`).
    pub table: String,
    /// The code.
    pub code: String,
    /// The key missing from an existing entry (`pennylane_vat_rate`), when the code is mapped
    /// but lacks what one of the job's targets needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Documents using it.
    pub documents: u64,
    /// A few of their numbers.
    pub examples: Vec<String>,
}

/// Whether a document that is not final counts as skipped, as `export` and `sync` count it: a
/// target would take it were it final (Chorus Pro files: public buyers only) and has not already
/// received it (a delivered document that went back is already delivered, not skipped).
fn skipped_by_a_target(
    ledger: &dyn Ledger,
    ahead: &ReadAhead,
    job: &Job,
    targets: &[String],
    layouts: &[Option<format::Layout>],
    doc: &Document,
) -> Result<bool, crate::ledger::LedgerError> {
    for (t, layout) in targets.iter().zip(layouts) {
        if layout.as_ref().is_some_and(|l| !format::in_scope(l, doc)) {
            continue;
        }
        let key = RecordKey {
            job: job.name.clone(),
            target: t.clone(),
            doc_id: doc.id.clone(),
        };
        if !ahead
            .get(ledger, &key)?
            .is_some_and(|r| r.state.is_delivered())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What `mappings check` found in a job's source.
#[derive(Debug, Default, Serialize)]
pub struct SourceScan {
    /// Documents read.
    pub documents: u64,
    /// Codes with no mapping.
    pub gaps: Vec<Gap>,
    /// Documents or files that could not be read (`id: why`): their codes are not checked.
    pub unreadable: Vec<String>,
}

/// Every code seen in the job's source with no mapping, with counts and example numbers, and
/// what could not be read.
///
/// # Errors
///
/// Source failure.
pub async fn mapping_gaps(cfg: &Config, job: &Job) -> Result<SourceScan, SourceError> {
    let mapping = &cfg.mappings[&job.mapping];
    let pennylane = job
        .targets
        .iter()
        .any(|t| matches!(cfg.connectors.get(t), Some(Connector::Pennylane(_))));
    let xero = job
        .targets
        .iter()
        .any(|t| matches!(cfg.connectors.get(t), Some(Connector::Xero(_))));
    let mut gaps: BTreeMap<(&'static str, String), Gap> = BTreeMap::new();
    let mut n = 0u64;
    let mut unreadable = Vec::new();
    scan_source(cfg, job, None, |item| {
        if let Item::Bad { id, error, .. } = &item {
            unreadable.push(format!("{id}: {error}"));
        }
        if let Item::Doc { doc, .. } = item {
            n += 1;
            let mut missing: Vec<(&'static str, String, Option<&str>)> =
                unmapped_codes(&doc, mapping)
                    .into_iter()
                    .map(|(t, c)| (t, c, None))
                    .collect();
            if pennylane || xero {
                // Per-target codes: Pennylane needs each tax code's vat_rate, Xero its tax type.
                let mut codes: Vec<&str> = doc.lines.iter().map(|l| l.tax_code.as_str()).collect();
                codes.sort_unstable();
                codes.dedup();
                for c in codes {
                    let Some(t) = mapping.tax.get(c) else {
                        continue;
                    };
                    if pennylane && t.key("pennylane_vat_rate").is_none() {
                        missing.push(("tax", c.to_owned(), Some("pennylane_vat_rate")));
                    }
                    if xero && t.key("xero_tax_type").is_none() {
                        missing.push(("tax", c.to_owned(), Some("xero_tax_type")));
                    }
                }
            }
            for (table, code, key) in missing {
                let g = gaps
                    .entry((table, format!("{code}{}", key.unwrap_or(""))))
                    .or_insert_with(|| Gap {
                        table: table.to_owned(),
                        code,
                        key: key.map(str::to_owned),
                        documents: 0,
                        examples: Vec::new(),
                    });
                g.documents += 1;
                if g.examples.len() < 5 {
                    g.examples.push(doc.number.clone());
                }
            }
        }
    })
    .await?;
    Ok(SourceScan {
        documents: n,
        gaps: gaps.into_values().collect(),
        unreadable,
    })
}
