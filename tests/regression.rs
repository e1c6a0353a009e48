//! Regression tests: one test per bug fixed, named after what it pins (issue "Keep the promise at
//! the edges"). Each drives the real binary or the library and fails without its fix.

#![allow(unused_imports)]

use crate::common::*;

// ── 1. Secrets and files ────────────────────────────────────────────────────────────────────────

// end of section 1

// ── 2. Never twice ──────────────────────────────────────────────────────────────────────────────

// end of section 2

// ── 3. No hang, no panic, no wedge; 4. documents that are always valid ─────────────────────────

// end of sections 3 and 4

// ── 5. What the accountant receives; 6. source documents ────────────────────────────────────────

/// Writes a copy of the demo's F2026-0001 (1 line, 12 × 95.00 at 20 %) as document `id`,
/// changed by `edit`, into the demo source folder.
fn add_demo_doc(p: &Project, id: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&p.read("examples/invoices/inv-2026-0001.json")).unwrap();
    v["id"] = serde_json::json!(id);
    v["number"] = serde_json::json!(format!("T-{id}"));
    edit(&mut v);
    p.write(
        &format!("examples/invoices/{id}.json"),
        &serde_json::to_string_pretty(&v).unwrap(),
    );
}

/// The problems the report gives for document `id`.
fn problems_of<'a>(report: &'a serde_json::Value, id: &str) -> Vec<&'a serde_json::Value> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["doc_id"] == id)
        .collect()
}

#[test]
fn notes_given_as_a_plain_string_are_read_as_one_note() {
    let p = Project::demo();
    add_demo_doc(&p, "t-notes", |v| {
        v["notes"] = serde_json::json!("Merci de votre confiance");
    });
    let (_, r) = p.json(&["sync"]);
    assert!(problems_of(&r, "t-notes").is_empty(), "{r}");
    assert_eq!(target(&r, "sales-fec")["delivered"], DEMO_DELIVERABLE + 1);
}

// end of sections 5 and 6

// ── 7. The admin API and the daemon; 8. packaging and operations ────────────────────────────────

// end of sections 7 and 8
