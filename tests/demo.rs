//! The demo job end to end, as a new user runs it: sync, sync again, add an invoice, fix a
//! mapping, bad input, changes after delivery, the ledger lock, the external FEC checkers.

use std::process::Stdio;

use crate::common::{active_batches, target, Project, DEMO_DELIVERABLE};

#[test]
fn sync_delivers_everything_once_then_only_what_is_new() {
    let p = Project::demo();
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "two demo documents are held on purpose: {r}");
    for t in ["sales-fec", "sales-csv"] {
        assert_eq!(target(&r, t)["delivered"], DEMO_DELIVERABLE);
        assert_eq!(target(&r, t)["held"], 2);
    }
    assert_eq!(r["skipped"]["draft"], 2);
    assert_eq!(r["skipped"]["proforma"], 2);
    assert_eq!(r["batches"].as_array().unwrap().len(), 2);
    let files = p.out_files();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files
        .iter()
        .any(|f| f.to_string_lossy().ends_with("/123456782FEC20261231.txt")));

    // Held documents name the document, the field and the fix.
    let problems = r["problems"].as_array().unwrap();
    let tva85 = problems
        .iter()
        .find(|x| x["number"] == "F2026-0030")
        .unwrap();
    assert_eq!(tva85["field"], "lines[0].tax_code");
    assert!(tva85["fix"].as_str().unwrap().contains("[tax.\"TVA85\"]"));
    let gross = problems
        .iter()
        .find(|x| x["number"] == "F2026-0032")
        .unwrap();
    assert_eq!(gross["field"], "totals.gross");
    assert!(
        gross["reason"]
            .as_str()
            .unwrap()
            .contains("difference 0.10"),
        "{gross}"
    );

    // Drafts and pro formas never reach the ledger.
    let (_, records) = p.json(&["ledger", "list"]);
    assert!(records.as_array().unwrap().iter().all(|x| {
        let n = x["number"].as_str().unwrap();
        !n.starts_with("BROUILLON") && !n.starts_with("PF")
    }));

    // Again: nothing is transferred, everything is already delivered.
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1);
    for t in ["sales-fec", "sales-csv"] {
        assert_eq!(target(&r, t)["delivered"], 0);
        assert_eq!(target(&r, t)["already_delivered"], DEMO_DELIVERABLE);
    }
    assert!(r["batches"].as_array().unwrap().is_empty());
    let human = String::from_utf8(p.run(&["sync"]).stdout).unwrap();
    assert!(human.contains("nothing new to deliver"), "{human}");

    // A new final invoice: only it is exported.
    std::fs::copy(
        p.path("examples/new-invoice.json"),
        p.path("examples/invoices/new-invoice.json"),
    )
    .unwrap();
    let (_, r) = p.json(&["sync"]);
    assert_eq!(target(&r, "sales-fec")["delivered"], 1);
    let newest = &r["batches"][0];
    assert_eq!(newest["documents"], 1);
    let fec = std::fs::read(newest["path"].as_str().map(|s| p.path(s)).unwrap()).unwrap();
    let text = String::from_utf8_lossy(&fec);
    assert!(
        text.contains("F2026-0040") && !text.contains("F2026-0001"),
        "{text}"
    );
    // Entry numbering continues across batches of the journal.
    assert!(text.contains("VE000043"), "{text}");
    for t in ["sales-fec", "sales-csv"] {
        let docs: usize = active_batches(&p, t).iter().map(|(_, d)| d.len()).sum();
        assert_eq!(docs as u64, DEMO_DELIVERABLE + 1);
    }
}

#[test]
fn fixing_the_mapping_releases_the_held_document() {
    let p = Project::demo();
    p.json(&["sync"]);
    let (code, gaps) = p.json(&["mappings", "check"]);
    assert_eq!(code, 1);
    let unmapped = gaps["jobs"][0]["unmapped"].as_array().unwrap();
    assert_eq!(unmapped.len(), 1, "{gaps}");
    assert_eq!(unmapped[0]["code"], "TVA85");
    assert_eq!(unmapped[0]["examples"][0], "F2026-0030");

    let mut m = p.read("mappings/pcg-demo.toml");
    m.push_str("\n[tax.TVA85]\nrate = \"8.5\"\ncategory = \"S\"\naccount = \"445715\"\nlabel = \"TVA collectée 8,5%\"\n");
    p.write("mappings/pcg-demo.toml", &m);
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "F2026-0032 is still held");
    assert_eq!(target(&r, "sales-fec")["delivered"], 1);
    assert_eq!(target(&r, "sales-fec")["held"], 1);
    let (_, rec) = p.json(&["ledger", "show", "F2026-0030"]);
    assert!(
        rec.as_array()
            .unwrap()
            .iter()
            .all(|x| x["state"] == "delivered"),
        "{rec}"
    );
    let (code, _) = p.json(&["mappings", "check"]);
    assert_eq!(code, 0);
}

#[test]
fn malformed_document_is_held_with_its_path_and_the_rest_goes_on() {
    let p = Project::demo();
    let mut bad: serde_json::Value =
        serde_json::from_str(&p.read("examples/new-invoice.json")).unwrap();
    bad["totals"]["gross"] = serde_json::json!(1419.0);
    p.write("examples/invoices/zz-bad.json", &bad.to_string());
    p.write("examples/invoices/zz-broken.json", "{ \"id\": \"x\", ");
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1);
    assert_eq!(target(&r, "sales-fec")["delivered"], DEMO_DELIVERABLE);
    let problems = r["problems"].as_array().unwrap();
    let amount = problems
        .iter()
        .find(|x| x["number"] == "F2026-0040")
        .unwrap();
    assert_eq!(amount["field"], "totals.gross");
    assert!(
        amount["reason"].as_str().unwrap().contains("zz-bad.json"),
        "{amount}"
    );
    let broken = problems
        .iter()
        .find(|x| x["doc_id"].as_str().unwrap().contains("zz-broken.json"))
        .unwrap();
    assert!(
        broken["reason"].as_str().unwrap().contains("invalid JSON"),
        "{broken}"
    );

    // Fixed in the source: delivered, and the file-level problem is gone.
    std::fs::remove_file(p.path("examples/invoices/zz-bad.json")).unwrap();
    p.write(
        "examples/invoices/zz-broken.json",
        &p.read("examples/new-invoice.json"),
    );
    let (_, r) = p.json(&["sync"]);
    assert_eq!(target(&r, "sales-fec")["delivered"], 1);
    assert_eq!(target(&r, "sales-fec")["held"], 2);
}

#[test]
fn change_after_delivery_is_reported_and_never_resent() {
    let p = Project::demo();
    p.json(&["sync"]);
    let path = "examples/invoices/inv-2026-0001.json";
    let mut doc: serde_json::Value = serde_json::from_str(&p.read(path)).unwrap();
    doc["buyer"]["name"] = serde_json::json!("Dupont & Fils SARL");
    p.write(path, &doc.to_string());
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1);
    assert_eq!(target(&r, "sales-fec")["delivered"], 0);
    assert_eq!(target(&r, "sales-fec")["changed_after_delivery"], 1);
    let line = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["number"] == "F2026-0001")
        .unwrap();
    assert_eq!(line["status"], "changed-after-delivery");
    assert!(
        line["reason"]
            .as_str()
            .unwrap()
            .contains("Dupont & Fils SARL"),
        "{line}"
    );
    let (_, rec) = p.json(&["ledger", "show", "F2026-0001"]);
    assert_eq!(
        rec[0]["changed_after_delivery"]["changes"][0]["field"],
        "buyer.name"
    );
    assert!(r["batches"].as_array().unwrap().is_empty());
    let (_, pv) = p.json(&["preview", "--target", "sales-fec", "--to", "2026-01-31"]);
    let rows = pv["targets"][0]["rows"].as_array().unwrap();
    let row = rows.iter().find(|x| x["number"] == "F2026-0001").unwrap();
    assert_eq!(row["status"], "changed-after-delivery");
    assert!(
        rows.iter()
            .filter(|x| x["number"] != "F2026-0001")
            .all(|x| x["status"] == "already-transferred"),
        "{pv}"
    );
}

#[test]
fn a_file_rewritten_with_the_same_content_is_not_a_change() {
    let p = Project::demo();
    p.json(&["sync"]);
    let path = "examples/invoices/inv-2026-0002.json";
    let doc: serde_json::Value = serde_json::from_str(&p.read(path)).unwrap();
    p.write(path, &doc.to_string()); // compact: other bytes, same document
    let (_, r) = p.json(&["sync"]);
    assert_eq!(target(&r, "sales-fec")["changed_after_delivery"], 0, "{r}");
    assert_eq!(target(&r, "sales-fec")["delivered"], 0);
}

#[test]
fn dry_run_changes_nothing() {
    let p = Project::demo();
    let (code, r) = p.json(&["sync", "--dry-run"]);
    assert_eq!(code, 1);
    assert_eq!(target(&r, "sales-fec")["delivered"], DEMO_DELIVERABLE);
    assert!(p.out_files().is_empty());
    let (_, r) = p.json(&["sync"]);
    assert_eq!(target(&r, "sales-fec")["delivered"], DEMO_DELIVERABLE);
}

#[test]
fn bad_configuration_names_file_line_and_key() {
    let p = Project::demo();
    let m = p
        .read("mappings/pcg-demo.toml")
        .replace("label = \"Prestations de conseil\"", "lable = \"x\"");
    p.write("mappings/pcg-demo.toml", &m);
    let out = p.run(&["sync"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = m.lines().position(|l| l.starts_with("lable")).unwrap() + 1;
    assert!(
        err.contains(&format!("pcg-demo.toml:{line}:")) && err.contains("lable"),
        "{err}"
    );
}

#[test]
fn a_second_process_is_told_the_ledger_is_in_use() {
    let p = Project::demo();
    let flag = p.path("paused");
    let mut first = p
        .command(&["sync"])
        .env("FACTO_TEST_PAUSE_AT", "after-claim")
        .env("FACTO_TEST_PAUSE_FILE", &flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !flag.exists() {
        assert!(
            start.elapsed().as_secs() < 60,
            "the first sync never reached its pause point"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = p.run(&["ledger", "list"]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another facto process"));
}

#[test]
fn demo_fec_passes_both_external_checkers() {
    let p = Project::demo();
    p.json(&["sync"]);
    let fec = p
        .out_files()
        .into_iter()
        .find(|f| f.to_string_lossy().contains("FEC"))
        .unwrap();
    let fec = p.path(fec.to_str().unwrap());
    crate::common::fec_checkers_pass(&fec);
}

#[test]
fn a_held_document_put_back_to_draft_is_never_delivered_from_its_old_copy() {
    let p = Project::demo();
    p.json(&["sync"]);
    let path = "examples/invoices/inv-2026-0030.json";
    let mut doc: serde_json::Value = serde_json::from_str(&p.read(path)).unwrap();
    doc["status"] = serde_json::json!("draft");
    p.write(path, &doc.to_string());
    p.json(&["sync"]);
    let mut m = p.read("mappings/pcg-demo.toml");
    m.push_str("\n[tax.TVA85]\nrate = \"8.5\"\ncategory = \"S\"\naccount = \"445715\"\n");
    p.write("mappings/pcg-demo.toml", &m);
    let (_, r) = p.json(&["sync"]);
    assert_eq!(target(&r, "sales-fec")["delivered"], 0, "{r}");
    let out = p.run(&["ledger", "show", "F2026-0030"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the draft has no record any more"
    );
}
