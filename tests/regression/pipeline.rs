//! The pipeline on both cores (issue "Every command costs what it touches"): a journal file's
//! writer thread claims and writes a page while the run reads the next; what the run reads
//! must never be older than what it handed over, and the bytes are those of one thread.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::*;

/// The demo project with its example documents replaced by `docs` (one file each, named
/// after the id, read in that order) and the demo's source reading `page_size` a page.
fn project_with(docs: &[Value], page_size: usize) -> Project {
    let p = Project::demo();
    for e in std::fs::read_dir(p.path("examples/invoices")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    for (i, d) in docs.iter().enumerate() {
        p.write(&format!("examples/invoices/{i:05}.json"), &d.to_string());
    }
    let src = p
        .read("connectors/demo-invoices.toml")
        .replace("page_size = 500", &format!("page_size = {page_size}"));
    p.write("connectors/demo-invoices.toml", &src);
    p
}

/// The demo's first invoice as `id`, numbered `number`, dated `date`.
fn invoice(p: &Value, id: &str, number: &str, date: &str) -> Value {
    let mut d = p.clone();
    d["id"] = id.into();
    d["number"] = number.into();
    d["issue_date"] = date.into();
    d
}

fn template() -> Value {
    let text =
        std::fs::read_to_string(repo().join("examples/invoices/inv-2026-0001.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The state `ledger list` gives `doc_id` for `target`.
fn state_of(p: &Project, target: &str, doc_id: &str) -> String {
    let (_, all) = p.json(&["ledger", "list", "--target", target]);
    all.as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"]["doc_id"] == doc_id)
        .map(|r| r["state"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("no record of {doc_id}: {all}"))
}

/// `facto --json sync` with the writer slowed (400 ms a page), so that the run reaches what it
/// reads next while a page is still on its way to the ledger: its exit code and report.
fn sync_with_slow_writer(p: &Project) -> (Option<i32>, Value) {
    let out = p
        .command(&["--json", "sync"])
        .env("FACTO_TEST_SLOW_WRITER_MS", "400")
        .output()
        .unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or_default(),
    )
}

/// How many lines of the target's files name `number`.
fn lines_naming(p: &Project, number: &str) -> usize {
    p.out_files()
        .iter()
        .filter(|f| f.to_string_lossy().contains("FEC"))
        .map(|f| {
            let bytes = std::fs::read(p.path(&f.to_string_lossy())).unwrap();
            String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| l.contains(number))
                .count()
        })
        .sum()
}

/// A document held on a first run and corrected in the source was delivered on the next
/// run, then taken again from its held copy by the re-check of held documents, which read
/// the ledger before the writer had recorded the delivery: held again, though in the file.
#[test]
fn a_held_document_corrected_in_the_source_is_delivered_once_and_stays_delivered() {
    let t = template();
    let mut late = invoice(&t, "late-1", "F2026-9100", "2026-03-02");
    late["lines"][0]["gl_account"] = "NOT-MAPPED".into();
    let p = project_with(
        &[
            invoice(&t, "first-1", "F2026-9000", "2026-03-01"),
            late.clone(),
        ],
        500,
    );
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "held: {r}");
    assert_eq!(state_of(&p, "sales-fec", "late-1"), "held");
    late["lines"][0]["gl_account"] = "CONSEIL".into();
    p.write("examples/invoices/00001.json", &late.to_string());
    // The writer is slowed: the run reaches the re-check while the page is on its way.
    let (code, r) = sync_with_slow_writer(&p);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(target(&r, "sales-fec")["delivered"], 1, "{r}");
    assert_eq!(state_of(&p, "sales-fec", "late-1"), "delivered");
    let fec_lines = lines_naming(&p, "F2026-9100");
    assert!(fec_lines > 0, "in the FEC file");
    // A third run changes nothing.
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(state_of(&p, "sales-fec", "late-1"), "delivered");
    assert_eq!(lines_naming(&p, "F2026-9100"), fec_lines, "booked once");
}

/// A page repeating an id read on an earlier page of the same run read the ledger before the
/// writer had recorded the first copy's delivery: the unreadable second copy held a document
/// that was in the file.
#[test]
fn an_unreadable_second_copy_on_a_later_page_leaves_the_delivered_first_alone() {
    let t = template();
    let mut bad = invoice(&t, "twice-1", "F2026-9200", "2026-04-01");
    bad["totals"]["gross"] = "not an amount".into();
    // Two a page: the second page holds the unreadable copy and a document to deliver, so
    // its held record goes to the writer behind the first page's claims.
    let p = project_with(
        &[
            invoice(&t, "twice-1", "F2026-9200", "2026-04-01"),
            invoice(&t, "filler-1", "F2026-9199", "2026-04-01"),
            bad,
            invoice(&t, "other-1", "F2026-9201", "2026-04-02"),
        ],
        2,
    );
    let (_, r) = sync_with_slow_writer(&p);
    assert_eq!(target(&r, "sales-fec")["delivered"], 3, "{r}");
    assert_eq!(state_of(&p, "sales-fec", "twice-1"), "delivered");
    assert_eq!(state_of(&p, "sales-csv", "twice-1"), "delivered");
}

/// The files of a sync are the same bytes whether a page's work is spread over 4 threads or
/// done on one (`FACTO_THREADS`), in every layout that numbers entries or lines.
#[test]
fn the_files_are_the_same_bytes_on_one_thread_and_on_four() {
    let t = template();
    let docs: Vec<Value> = (0..600)
        .map(|i| {
            let mut d = invoice(
                &t,
                &format!("par-{i}"),
                &format!("F2026-{:05}", 600 - i),
                &format!("2026-05-{:02}", 1 + (i * 7) % 28),
            );
            if i % 3 == 0 {
                d["buyer"]["name"] = "Société Générale d’Études".into();
            }
            d
        })
        .collect();
    let files = |threads: &str| -> BTreeMap<String, String> {
        let p = project_with(&docs, 500);
        let cfg = p.read("facto.toml").replace(
            "targets = [\"sales-fec\", \"sales-csv\"]",
            "targets = [\"sales-fec\", \"sales-csv\", \"sales-ebp\", \"sales-csv-lines\"]",
        );
        p.write("facto.toml", &cfg);
        let out = p
            .command(&["--json", "sync"])
            .env("FACTO_THREADS", threads)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        p.out_files()
            .iter()
            .map(|f| {
                let rel = f.display().to_string();
                (rel.clone(), sha256(&std::fs::read(p.path(&rel)).unwrap()))
            })
            .collect()
    };
    let one = files("1");
    let four = files("4");
    assert!(one.len() >= 4, "{one:?}");
    assert_eq!(one, four);
}

/// The demo's documents of 2026 exported to its CSV target.
const CSV_YEAR: [&str; 7] = [
    "export",
    "--target",
    "sales-csv",
    "--from",
    "2026-01-01",
    "--to",
    "2026-12-31",
];

/// A page whose claims failed on the writer surfaced only when the batch was closed (the last
/// page of an export): the batch was left open, its documents claimed, its temp file there,
/// until a next start's recovery; the daemon recovers only when it starts.
#[test]
fn a_batch_whose_last_page_fails_on_the_writer_is_rolled_back_at_once() {
    let p = Project::demo();
    let out = p
        .command(&with_json(&CSV_YEAR))
        .env("FACTO_TEST_FAIL_AT", "mid-write@sales-csv")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("injected failure"), "{said}");
    // Read without a recovery (`ledger list` does none).
    let (_, claimed) = p.json(&["ledger", "list", "--state", "claimed"]);
    assert_eq!(claimed.as_array().map(Vec::len), Some(0), "{claimed}");
    let temps: Vec<_> = p
        .out_files()
        .into_iter()
        .filter(|f| f.to_string_lossy().ends_with(".facto-tmp"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
    // The next export delivers them.
    let (code, r) = p.json(&CSV_YEAR);
    // (1: the demo's two held documents are problems.)
    assert_eq!(code, 1, "{r}");
    assert_eq!(target(&r, "sales-csv")["delivered"], 42, "{r}");
    assert!(r["recovery"].as_array().is_none_or(Vec::is_empty), "{r}");
}

/// An unreadable copy of an id held on one page, then the readable copy on a later page, held
/// for another reason while the first page was still on its way: the older hold was written
/// last and its reason replaced the newer one.
#[test]
fn a_later_hold_of_an_id_first_read_unreadable_keeps_its_own_reason() {
    let t = template();
    let mut bad = invoice(&t, "back-1", "F2026-9300", "2026-04-01");
    bad["totals"]["gross"] = "not an amount".into();
    let mut unmapped = invoice(&t, "back-1", "F2026-9300", "2026-04-01");
    unmapped["lines"][0]["gl_account"] = "NOT-MAPPED".into();
    let p = project_with(
        &[
            bad,
            invoice(&t, "good-1", "F2026-9301", "2026-04-02"),
            unmapped,
        ],
        2,
    );
    let (_, r) = sync_with_slow_writer(&p);
    assert_eq!(target(&r, "sales-fec")["delivered"], 1, "{r}");
    let (_, held) = p.json(&["ledger", "list", "--target", "sales-fec", "--state", "held"]);
    let rec = held
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"]["doc_id"] == "back-1")
        .cloned()
        .unwrap_or_else(|| panic!("back-1 not held: {held}"));
    assert_eq!(rec["problems"][0]["field"], "lines[0].gl_account", "{rec}");
}
