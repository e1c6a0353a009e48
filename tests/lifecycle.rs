//! The export lifecycle of SPEC §3: preview, export by period, never twice, only what is new,
//! cancel (all again), download (the exact bytes first produced), and the ledger's admin commands.

use crate::common::{target, Project};

const FEC: &str = "sales-fec";
/// `--target sales-fec` over the first quarter, as `preview` and `export` take it.
const Q1: [&str; 6] = [
    "--target",
    FEC,
    "--from",
    "2026-01-01",
    "--to",
    "2026-03-31",
];

fn preview(p: &Project) -> (i32, serde_json::Value) {
    let mut args = vec!["preview"];
    args.extend_from_slice(&Q1);
    p.json(&args)
}

fn export(p: &Project, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["export"];
    args.extend_from_slice(&Q1);
    args.extend_from_slice(extra);
    p.json(&args)
}

#[test]
fn export_preview_cancel_download() {
    let p = Project::demo();
    // Preview: documents of the first quarter, none exported yet.
    let (code, pv) = preview(&p);
    assert_eq!(code, 0);
    let t = &pv["targets"][0];
    let (to_transfer, total) = (
        t["to_transfer"].as_u64().unwrap(),
        t["documents"].as_u64().unwrap(),
    );
    assert!(to_transfer > 10 && to_transfer == total, "{pv}");
    let human = String::from_utf8(p.run(&[&["preview"][..], &Q1[..]].concat()).stdout).unwrap();
    assert!(
        human.contains(&format!(
            "{to_transfer} to export of {total} documents in the period"
        )),
        "{human}"
    );

    let (code, r) = export(&p, &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(target(&r, FEC)["delivered"], to_transfer);
    let batch1 = r["batches"][0]["id"].as_u64().unwrap();
    let path1 = p.path(r["batches"][0]["path"].as_str().unwrap());
    let bytes1 = std::fs::read(&path1).unwrap();
    assert!(String::from_utf8_lossy(&bytes1).contains("\tF2026-0001\t"));
    let text1 = String::from_utf8_lossy(&bytes1).into_owned();
    assert!(
        text1.contains("\tF2026-0013\t") && !text1.contains("\tF2026-0014\t"),
        "F2026-0013 is dated 2026-03-25, F2026-0014 2026-04-01"
    );

    // Preview now shows them as already transferred, in which batch.
    let (_, pv) = preview(&p);
    assert_eq!(pv["targets"][0]["to_transfer"], 0);
    let rows = pv["targets"][0]["rows"].as_array().unwrap();
    assert!(
        rows.iter().all(|r| r["status"] == "already-transferred"),
        "{pv}"
    );
    assert!(pv["targets"][0]["rows"][0]["detail"]
        .as_str()
        .unwrap()
        .contains(&format!("batch {batch1}")));

    // Again: nothing.
    let (code, r) = export(&p, &[]);
    assert_eq!(code, 0);
    assert!(r["batches"].as_array().unwrap().is_empty());
    assert_eq!(target(&r, FEC)["already_delivered"], to_transfer);

    // A document added to the period: only it.
    let mut doc: serde_json::Value =
        serde_json::from_str(&p.read("examples/new-invoice.json")).unwrap();
    doc["issue_date"] = serde_json::json!("2026-03-30");
    p.write("examples/invoices/late.json", &doc.to_string());
    let (_, r) = export(&p, &[]);
    assert_eq!(r["batches"][0]["documents"], 1);

    // Cancel the first batch: its documents are exported again by the next export.
    let (code, c) = p.json(&["exports", "cancel", &batch1.to_string()]);
    assert_eq!(code, 0);
    assert_eq!(c["released"], to_transfer);
    let (code, _) = p.json(&["exports", "cancel", &batch1.to_string()]);
    assert_eq!(code, 2, "cancelling twice is refused");
    let (_, list) = p.json(&["exports", "list"]);
    assert_eq!(list[0]["status"], "cancelled");
    let (_, r) = export(&p, &[]);
    assert_eq!(target(&r, FEC)["delivered"], to_transfer);

    // Download returns the exact bytes first produced, even after the mapping changed and the
    // file on disk is gone.
    let m = p
        .read("mappings/pcg-demo.toml")
        .replace("Journal des ventes", "Ventes");
    p.write("mappings/pcg-demo.toml", &m);
    // Cancel renamed the file aside (`….cancelled`); it is gone too.
    assert!(!path1.exists());
    std::fs::remove_file(format!("{}.cancelled", path1.display())).unwrap();
    let dl = p.path("again.txt");
    let (code, _) = p.json(&[
        "exports",
        "download",
        &batch1.to_string(),
        "--out",
        dl.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read(&dl).unwrap(), bytes1);
    let out = p.run(&["exports", "download", &batch1.to_string(), "--out", "-"]);
    assert_eq!(out.stdout, bytes1);

    // The batch history shows the documents and the report of the run that wrote it.
    let (_, show) = p.json(&["exports", "show", &batch1.to_string()]);
    assert_eq!(show["batch"]["status"], "cancelled");
    assert_eq!(show["run_report"]["command"], "export");
}

#[test]
fn include_exported_only_exclude_and_journal_override() {
    let p = Project::demo();
    export(&p, &[]);
    let (_, r) = export(
        &p,
        &[
            "--include-exported",
            "--only",
            "F2026-0001",
            "F2026-0002",
            "--journal",
            "VT",
        ],
    );
    assert_eq!(r["batches"][0]["documents"], 2);
    let text = std::fs::read_to_string(p.path(r["batches"][0]["path"].as_str().unwrap()))
        .unwrap_or_else(|_| {
            String::from_utf8_lossy(
                &std::fs::read(p.path(r["batches"][0]["path"].as_str().unwrap())).unwrap(),
            )
            .into_owned()
        });
    assert!(
        text.contains("VT\tJournal des ventes\tVT000001\t"),
        "{text}"
    );
    let (_, r) = export(&p, &["--include-exported", "--exclude", "F2026-0001"]);
    let n = r["batches"][0]["documents"].as_u64().unwrap();
    assert!(n > 5);
    assert!(
        !std::fs::read_to_string(p.path(r["batches"][0]["path"].as_str().unwrap()))
            .unwrap_or_default()
            .contains("\tF2026-0001\t")
    );
}

#[test]
fn ledger_commands_retry_forget_and_audit() {
    let p = Project::demo();
    p.json(&["sync"]);
    let (_, held) = p.json(&["ledger", "list", "--state", "held"]);
    assert_eq!(
        held.as_array().unwrap().len(),
        4,
        "two documents, two targets"
    );
    let (_, show) = p.json(&["ledger", "show", "F2026-0001"]);
    assert_eq!(show.as_array().unwrap().len(), 2);
    assert!(show[0]["payload_hash"].is_string() && show[0]["mapping_hash"].is_string());

    // A delivered document is never retried.
    let out = p.run(&["ledger", "retry", "F2026-0001"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("never sent twice"));

    // Forget needs --yes, then the next sync treats the document as new.
    let out = p.run(&["ledger", "forget", "F2026-0001", "--target", FEC]);
    assert_eq!(out.status.code(), Some(2));
    let (code, _) = p.json(&["ledger", "forget", "F2026-0001", "--target", FEC, "--yes"]);
    assert_eq!(code, 0);
    let (_, r) = p.json(&["sync"]);
    assert_eq!(target(&r, FEC)["delivered"], 1);
    assert_eq!(target(&r, "sales-csv")["delivered"], 0);
    let (_, reports) = p.json(&["ledger", "reports"]);
    assert_eq!(reports.as_array().unwrap().len(), 2);
    let (_, audit) = p.json(&["ledger", "show", "F2026-0001"]);
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["state"] == "delivered"));
    let (_, one) = p.json(&["ledger", "reports", reports[0].as_str().unwrap()]);
    assert_eq!(one["command"], "sync");
}

/// The batches of an export of the whole year to `target` and the preview's rows, with the
/// demo source read `page_size` documents at a time.
fn export_in_pages(page_size: usize, target: &str) -> (Vec<(String, String, Vec<u8>)>, String) {
    let p = Project::demo();
    p.write(
        "connectors/chorus-cii.toml",
        "kind = \"journal-file\"\nformat = \"chorus-cii\"\nout_dir = \"out/chorus\"\nlot_size = 4\n",
    );
    let src = p.read("connectors/demo-invoices.toml");
    assert!(src.contains("page_size = 500"));
    p.write(
        "connectors/demo-invoices.toml",
        &src.replace("page_size = 500", &format!("page_size = {page_size}")),
    );
    let year = [
        "--target",
        target,
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ];
    let (code, pv) = p.json(&[&["preview"][..], &year[..]].concat());
    assert_eq!(code, 0, "{pv}");
    let args = [
        &["export"][..],
        &year[..],
        &["--validation-date", "2026-12-31"],
    ]
    .concat();
    // Exit 1: the demo holds two documents on purpose.
    let (code, r) = p.json(&args);
    assert!(code <= 1 && r["error"].is_null(), "{r}");
    let batches = r["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let bytes = std::fs::read(p.path(b["path"].as_str().unwrap())).unwrap();
            let name = b["path"].as_str().unwrap().rsplit('/').next().unwrap();
            (
                name.to_owned(),
                b["sha256"].as_str().unwrap().to_owned(),
                bytes,
            )
        })
        .collect();
    (batches, pv["targets"].to_string())
}

/// Issue 14: `export` and `preview` stream the period page by page. Whatever the source's page
/// size, the batch holds the period sorted by date and number across the pages, entries
/// numbered in that order: the same bytes and sha256 as from one page (and the same lots).
#[test]
fn an_export_read_two_documents_a_page_writes_the_same_bytes_as_from_one_page() {
    for target in [FEC, "chorus-cii"] {
        let (one, rows_one) = export_in_pages(1000, target);
        let (many, rows_many) = export_in_pages(2, target);
        assert!(!one.is_empty(), "{target}: a batch is written");
        if target == FEC {
            let text = String::from_utf8_lossy(&one[0].2).into_owned();
            assert!(text.find("\tF2026-0001\t") < text.find("\tF2026-0013\t"));
        } else {
            assert!(one.len() > 1, "lots of 4 documents");
        }
        for ((name1, sha1, bytes1), (name2, sha2, bytes2)) in one.iter().zip(&many) {
            assert_eq!(name1, name2);
            assert_eq!(sha1, sha2, "{target}: the ledger's sha256 is the same");
            assert!(bytes1 == bytes2, "{target} {name1}: the same bytes");
        }
        assert_eq!(one.len(), many.len());
        assert_eq!(rows_one, rows_many, "{target}: the same preview rows");
    }
}
