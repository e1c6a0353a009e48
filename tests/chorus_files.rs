//! Chorus Pro files for the portal through the real binary: only public buyers, EN 16931 and
//! Chorus rules before anything is written, zip lots of at most `lot_size` documents that are
//! valid against the official schemas, and the export lifecycle of journal batches.

use crate::common::{target, xmllint, xsd, Project};

const YEAR: [&str; 4] = ["--from", "2026-01-01", "--to", "2026-12-31"];

fn export(p: &Project, t: &str) -> (i32, serde_json::Value) {
    let mut args = vec!["export", "--target", t];
    args.extend_from_slice(&YEAR);
    p.json(&args)
}

fn lot(p: &Project, report: &serde_json::Value, i: usize) -> Vec<(String, Vec<u8>)> {
    let path = p.path(report["batches"][i]["path"].as_str().unwrap());
    facto::format::zip::read(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn public_buyers_only_checked_valid_and_never_twice() {
    let p = Project::demo();
    let (code, r) = export(&p, "chorus-files");
    assert_eq!(code, 1, "one document is held: {r}");
    let t = target(&r, "chorus-files");
    assert_eq!(
        (t["delivered"].as_u64(), t["held"].as_u64()),
        (Some(9), Some(1)),
        "{r}"
    );
    let held = r["problems"].to_string();
    assert!(
        held.contains("F2026-0004") && held.contains("CHORUS-EJ-OR-PO"),
        "{held}"
    );

    let docs = lot(&p, &r, 0);
    assert_eq!(docs.len(), 9);
    assert!(docs
        .iter()
        .all(|(n, _)| n.starts_with("UBL_chorus_facture_")));
    let text: Vec<String> = docs
        .iter()
        .map(|(_, b)| String::from_utf8(b.clone()).unwrap())
        .collect();
    // Only the customers flagged `chorus` (Mairie de Lyon, Lycée Jean Moulin).
    assert!(text
        .iter()
        .all(|x| x.contains("Mairie de Lyon") || x.contains("Lycée Jean Moulin")));
    let (invoices, credit_notes): (Vec<_>, Vec<_>) = docs
        .into_iter()
        .partition(|(_, b)| !b.windows(11).any(|w| w == b"<CreditNote"));
    assert_eq!(credit_notes.len(), 1);
    if let Some(s) = xsd("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd") {
        xmllint(&s, &invoices);
    }
    if let Some(s) = xsd("ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd") {
        xmllint(&s, &credit_notes);
    }

    // Nothing twice; the fixed document alone next time; cancel frees the lot; download is exact.
    let (_, again) = export(&p, "chorus-files");
    assert!(again["batches"].as_array().unwrap().is_empty(), "{again}");
    let f = p.read("examples/invoices/inv-2026-0004.json").replace(
        "\"purchase_order\": \"PO-LYON-2026-0042\"",
        "\"purchase_order\": null",
    );
    p.write("examples/invoices/inv-2026-0004.json", &f);
    let (code, fixed) = export(&p, "chorus-files");
    assert_eq!(code, 0, "{fixed}");
    let only = lot(&p, &fixed, 0);
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].0, "UBL_chorus_facture_F2026-0004.xml");

    let id = r["batches"][0]["id"].as_u64().unwrap().to_string();
    let first = std::fs::read(p.path(r["batches"][0]["path"].as_str().unwrap())).unwrap();
    let (code, c) = p.json(&["exports", "cancel", &id]);
    assert_eq!((code, c["released"].as_u64()), (0, Some(9)));
    let (_, redo) = export(&p, "chorus-files");
    assert_eq!(target(&redo, "chorus-files")["delivered"], 9);
    let out = p.run(&["exports", "download", &id, "--out", "-"]);
    assert_eq!(out.stdout, first);
}

#[test]
fn lots_hold_at_most_lot_size_documents_and_cii_is_valid() {
    let p = Project::demo();
    p.write(
        "connectors/chorus-cii.toml",
        "kind = \"journal-file\"\nformat = \"chorus-cii\"\nout_dir = \"out/chorus\"\nlot_size = 4\n",
    );
    let (_, r) = export(&p, "chorus-cii");
    let batches = r["batches"].as_array().unwrap();
    let sizes: Vec<u64> = batches
        .iter()
        .map(|b| b["documents"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [4, 4, 1], "{r}");
    let mut all = Vec::new();
    for i in 0..batches.len() {
        all.extend(lot(&p, &r, i));
    }
    let mut names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 9, "every document in exactly one lot");
    if let Some(s) = xsd("cii-d16b/data/standard/CrossIndustryInvoice_100pD16B.xsd") {
        xmllint(&s, &all);
    }
    let (_, list) = p.json(&["exports", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 3);

    let bad = "kind = \"journal-file\"\nformat = \"chorus-cii\"\nlot_size = 501\n";
    p.write("connectors/chorus-cii.toml", bad);
    let out = p.run(&[
        "export",
        "--target",
        "chorus-cii",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("chorus-cii.toml:3") && err.contains("500"),
        "{err}"
    );
}

#[test]
fn lot_size_one_writes_each_document_as_its_own_xml() {
    let p = Project::demo();
    p.write(
        "connectors/chorus-one.toml",
        "kind = \"journal-file\"\nformat = \"chorus-ubl\"\nout_dir = \"out/chorus\"\nlot_size = 1\n",
    );
    let (_, r) = export(&p, "chorus-one");
    let batches = r["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 9, "{r}");
    let first = p.path(batches[0]["path"].as_str().unwrap());
    assert_eq!(
        first.file_name().unwrap().to_string_lossy(),
        "UBL_chorus_facture_F2026-0008.xml"
    );
    let bytes = std::fs::read(&first).unwrap();
    assert!(bytes.starts_with(b"<?xml"));
    if let Some(s) = xsd("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd") {
        xmllint(&s, &[("one.xml".into(), bytes)]);
    }
}
