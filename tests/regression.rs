//! Regression tests: one test per bug fixed, named after what it pins (issue "Keep the promise at
//! the edges"). Each drives the real binary or the library and fails without its fix.

#![allow(unused_imports)]

use crate::common::*;

// ── 1. Secrets and files ────────────────────────────────────────────────────────────────────────

// end of section 1

// ── 2. Never twice ──────────────────────────────────────────────────────────────────────────────

/// An id with a line break once went raw into the batch membership keys: after a crash every
/// sync stopped (exit 2). It is refused at the source now, held under its escaped id, and every
/// later run goes on.
#[test]
fn document_id_with_a_control_character_is_held_and_later_syncs_go_on() {
    let p = Project::demo();
    let mut doc: serde_json::Value =
        serde_json::from_str(&p.read("examples/new-invoice.json")).unwrap();
    doc["id"] = "inv-2026\n0041".into();
    doc["number"] = "F2026-0041".into();
    let mut other = doc.clone();
    other["id"] = "inv-2026-0042".into();
    other["number"] = "F2026\u{0}0042".into();
    p.write(
        "examples/invoices/odd.json",
        &serde_json::to_string(&[doc, other]).unwrap(),
    );
    for run in 0..3 {
        let (code, r) = p.json(&["sync"]);
        assert_eq!(code, 1, "run {run}: {r}");
        for t in ["sales-fec", "sales-csv"] {
            assert_eq!(target(&r, t)["held"], 4, "run {run}: {r}");
        }
        let problems = r["problems"].as_array().unwrap();
        let by_id = problems
            .iter()
            .find(|x| x["number"] == "F2026-0041")
            .unwrap_or_else(|| panic!("run {run}: {r}"));
        assert_eq!(by_id["field"], "id");
        assert!(
            by_id["reason"]
                .as_str()
                .unwrap()
                .contains("control character"),
            "{by_id}"
        );
        let by_number = problems
            .iter()
            .find(|x| x["number"] == "F2026\\00042")
            .unwrap_or_else(|| panic!("run {run}: {r}"));
        assert_eq!(by_number["field"], "number");
    }
    let (code, listed) = p.json(&["ledger", "list", "--state", "held"]);
    assert_eq!(code, 0, "{listed}");
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["key"]["doc_id"].as_str().unwrap_or_default())
        .collect();
    assert!(ids.contains(&"inv-2026\\n0041"), "{listed}");
    assert!(ids.iter().all(|id| !id.contains('\n')), "{listed}");
}

// end of section 2

// ── 3. No hang, no panic, no wedge; 4. documents that are always valid ─────────────────────────

// end of sections 3 and 4

// ── 5. What the accountant receives; 6. source documents ────────────────────────────────────────

// end of sections 5 and 6

// ── 7. The admin API and the daemon; 8. packaging and operations ────────────────────────────────

// end of sections 7 and 8
