//! `facto mappings check`: the mapping files validated and the source's unmapped codes listed.

use super::{fail, load, out, print_json, Cli, Failure};
use crate::report::exit;

pub(super) async fn mappings_check(cli: &Cli, job: Option<&str>) -> Result<u8, Failure> {
    let cfg = load(cli)?;
    let jobs: Vec<&crate::config::Job> = match job {
        Some(n) => vec![cfg.job(n).map_err(|e| fail(exit::USAGE, e))?],
        None => cfg.jobs.iter().collect(),
    };
    let mut results = Vec::new();
    let mut any_gap = false;
    for j in jobs {
        let m = &cfg.mappings[&j.mapping];
        let scan = crate::preview::mapping_gaps(&cfg, j)
            .await
            .map_err(|e| fail(exit::UNREACHABLE, e))?;
        let (docs, gaps) = (scan.documents, scan.gaps);
        // A document that could not be read had its codes unchecked: not a clean bill.
        any_gap |= !gaps.is_empty() || !scan.unreadable.is_empty();
        results.push(serde_json::json!({
            "job": j.name,
            "mapping": m.path,
            "valid": true,
            "gl_accounts": m.gl.accounts.len(),
            "gl_products": m.gl.products.len(),
            "tax_codes": m.tax.len(),
            "customers": m.customers.accounts.len(),
            "documents_scanned": docs,
            "unmapped": gaps,
            "unreadable": scan.unreadable,
        }));
    }
    if cli.json {
        print_json(&serde_json::json!({ "jobs": results }))?;
    } else {
        let mut s = String::new();
        for r in &results {
            s.push_str(&format!(
                "{}: valid — {} GL accounts, {} products, {} tax codes, {} customers (job {})\n",
                r["mapping"].as_str().unwrap_or_default(),
                r["gl_accounts"],
                r["gl_products"],
                r["tax_codes"],
                r["customers"],
                r["job"].as_str().unwrap_or_default()
            ));
            let unreadable = r["unreadable"].as_array().cloned().unwrap_or_default();
            if !unreadable.is_empty() {
                s.push_str(&format!(
                    "  {} source document(s) could not be read, so their codes are not checked:\n",
                    unreadable.len()
                ));
                for u in unreadable.iter().take(5) {
                    s.push_str(&format!("  - {}\n", u.as_str().unwrap_or_default()));
                }
            }
            let gaps = r["unmapped"].as_array().cloned().unwrap_or_default();
            if gaps.is_empty() && !unreadable.is_empty() && r["documents_scanned"] == 0 {
                s.push_str("  no document could be read from the source: nothing was checked\n");
            } else if gaps.is_empty() && r["documents_scanned"] == 0 {
                s.push_str("  the source holds no document yet: no code to check\n");
            } else if gaps.is_empty() {
                s.push_str(&format!(
                    "  every code of the {} documents in the source is mapped\n",
                    r["documents_scanned"]
                ));
            } else {
                s.push_str(&format!(
                    "  codes in the source with no mapping ({} documents scanned):\n",
                    r["documents_scanned"]
                ));
                for g in gaps {
                    let ex: Vec<String> = g["examples"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    let missing = g["key"]
                        .as_str()
                        .map(|k| format!(" lacks {k} (needed by a target of the job);"))
                        .unwrap_or_default();
                    s.push_str(&format!(
                        "  - [{}.\"{}\"]{missing} used by {} document(s), e.g. {}\n",
                        g["table"].as_str().unwrap_or_default(),
                        g["code"].as_str().unwrap_or_default(),
                        g["documents"],
                        ex.join(", ")
                    ));
                }
            }
        }
        out(&s)?;
    }
    Ok(if any_gap { exit::PROBLEMS } else { exit::OK })
}
