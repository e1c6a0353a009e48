//! `facto mappings check`: the mapping files validated and the source's unmapped codes listed.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::{fail, Context, Failure};
use crate::preview::Gap;
use crate::report::exit;

/// What `mappings check` found, for every job checked.
#[derive(Serialize)]
struct MappingsCheck {
    jobs: Vec<JobCheck>,
}

/// One job's mapping and the codes of its source. The JSON keys are in alphabetical order
/// (`unmapped` too, see [`sorted_keys`]), as this output has always had them.
#[derive(Serialize)]
struct JobCheck {
    customers: usize,
    /// What the parties are (`customers`, or `suppliers` in a purchases mapping), for the text.
    #[serde(skip)]
    parties: &'static str,
    documents_scanned: u64,
    gl_accounts: usize,
    gl_products: usize,
    job: String,
    mapping: PathBuf,
    tax_codes: usize,
    #[serde(serialize_with = "sorted_keys")]
    unmapped: Vec<Gap>,
    unreadable: Vec<String>,
    valid: bool,
}

/// Serializes through a JSON value, whose objects keep their keys sorted.
fn sorted_keys<S: serde::Serializer>(v: &Vec<Gap>, s: S) -> Result<S::Ok, S::Error> {
    serde_json::to_value(v)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

impl MappingsCheck {
    fn render(&self) -> String {
        let mut s = String::new();
        for r in &self.jobs {
            let _ = writeln!(
                s,
                "{}: valid — {} GL accounts, {} products, {} tax codes, {} {} (job {})",
                r.mapping.display(),
                r.gl_accounts,
                r.gl_products,
                r.tax_codes,
                r.customers,
                r.parties,
                r.job
            );
            if !r.unreadable.is_empty() {
                let _ = writeln!(
                    s,
                    "  {} source document(s) could not be read, so their codes are not checked:",
                    r.unreadable.len()
                );
                for u in r.unreadable.iter().take(5) {
                    let _ = writeln!(s, "  - {u}");
                }
            }
            let gaps = &r.unmapped;
            if gaps.is_empty() && !r.unreadable.is_empty() && r.documents_scanned == 0 {
                s.push_str("  no document could be read from the source: nothing was checked\n");
            } else if gaps.is_empty() && r.documents_scanned == 0 {
                s.push_str("  the source holds no document yet: no code to check\n");
            } else if gaps.is_empty() {
                let _ = writeln!(
                    s,
                    "  every code of the {} documents in the source is mapped",
                    r.documents_scanned
                );
            } else {
                let _ = writeln!(
                    s,
                    "  codes in the source with no mapping ({} documents scanned):",
                    r.documents_scanned
                );
                for g in gaps {
                    let missing = g
                        .key
                        .as_ref()
                        .map(|k| format!(" lacks {k} (needed by a target of the job);"))
                        .unwrap_or_default();
                    let _ = writeln!(
                        s,
                        "  - [{}.\"{}\"]{missing} used by {} document(s), e.g. {}",
                        g.table,
                        g.code,
                        g.documents,
                        g.examples.join(", ")
                    );
                }
            }
        }
        s
    }
}

pub(super) async fn mappings_check(cx: &mut Context<'_>, job: Option<&str>) -> Result<u8, Failure> {
    let cfg = cx.load()?;
    let jobs: Vec<&crate::config::Job> = match job {
        Some(n) => vec![cfg.job(n).map_err(|e| fail(exit::USAGE, e))?],
        None => cfg.jobs.iter().collect(),
    };
    let mut report = MappingsCheck { jobs: Vec::new() };
    let mut any_gap = false;
    for j in jobs {
        let m = &cfg.mappings[&j.mapping];
        let scan = crate::preview::mapping_gaps(&cfg, j)
            .await
            .map_err(|e| fail(exit::UNREACHABLE, e))?;
        // A document that could not be read had its codes unchecked: not a clean bill.
        any_gap |= !scan.gaps.is_empty() || !scan.unreadable.is_empty();
        report.jobs.push(JobCheck {
            customers: m.customers.accounts.len(),
            parties: m.journal.side.parties(),
            documents_scanned: scan.documents,
            gl_accounts: m.gl.accounts.len(),
            gl_products: m.gl.products.len(),
            job: j.name.clone(),
            mapping: m.path.clone(),
            tax_codes: m.tax.len(),
            unmapped: scan.gaps,
            unreadable: scan.unreadable,
            valid: true,
        });
    }
    cx.out.report(&report, MappingsCheck::render)?;
    Ok(if any_gap { exit::PROBLEMS } else { exit::OK })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_typed_report_encodes_as_the_json_it_replaced() {
        let gap = Gap {
            table: "tax".into(),
            code: "TVA20".into(),
            key: Some("pennylane_vat_rate".into()),
            documents: 2,
            examples: vec!["F1".into(), "F2".into()],
        };
        let report = MappingsCheck {
            jobs: vec![JobCheck {
                customers: 1,
                parties: "customers",
                documents_scanned: 3,
                gl_accounts: 4,
                gl_products: 5,
                job: "demo".into(),
                mapping: PathBuf::from("mappings/demo.toml"),
                tax_codes: 6,
                unmapped: vec![gap.clone()],
                unreadable: vec!["x: bad".into()],
                valid: true,
            }],
        };
        // What `mappings check --json` printed before the typed report.
        let before = serde_json::json!({ "jobs": [serde_json::json!({
            "job": "demo",
            "mapping": PathBuf::from("mappings/demo.toml"),
            "valid": true,
            "gl_accounts": 4,
            "gl_products": 5,
            "tax_codes": 6,
            "customers": 1,
            "documents_scanned": 3,
            "unmapped": vec![gap],
            "unreadable": ["x: bad"],
        })] });
        assert_eq!(
            serde_json::to_string_pretty(&report).unwrap(),
            serde_json::to_string_pretty(&before).unwrap()
        );
        assert!(report
            .render()
            .contains("  - [tax.\"TVA20\"] lacks pennylane_vat_rate (needed by a target of the job); used by 2 document(s), e.g. F1, F2\n"));
    }
}
