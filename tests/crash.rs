//! Crash safety, proven on the real binary: a sync is killed with SIGKILL at every point of a
//! delivery (after the claim, in the middle of writing the file, after the file is written but
//! before the ledger commit, after the commit but before the rename, after the rename), for each
//! target and on several pages; the next sync must leave every document in exactly one active
//! batch, no temp file, committed files byte-identical to the ledger, no claimed record, and the
//! ledger's indexes in agreement with its records.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{active_batches, sha256, Project, DEMO_DELIVERABLE};

fn kill_at(p: &Project, point: &str) {
    let flag = p.path("paused");
    let _ = std::fs::remove_file(&flag);
    let mut child = p
        .command(&["sync"])
        .env("FACTO_TEST_PAUSE_AT", point)
        .env("FACTO_TEST_PAUSE_FILE", &flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if flag.exists() {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("sync ended ({status}) before reaching {point}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "sync never reached {point}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // std's Child::kill sends SIGKILL: no destructor, no flush, nothing runs after this.
    child.kill().unwrap();
    child.wait().unwrap();
}

fn assert_consistent(p: &Project, point: &str) {
    let ledger = facto::ledger::sled::SledLedger::open(&p.path("data")).unwrap();
    let differences = ledger.check_indexes().unwrap();
    drop(ledger);
    assert_consistent_with(p, point, differences);
}

/// What [`assert_consistent`] checks, the ledger's index differences read by the caller (from
/// sled or PostgreSQL).
fn assert_consistent_with(p: &Project, point: &str, index_differences: Vec<String>) {
    let leftovers: Vec<_> = p
        .out_files()
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("facto-tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "{point}: temp files left: {leftovers:?}"
    );
    // The ledger's indexes (state tallies, per-state lists) agree with its records.
    assert_eq!(
        index_differences,
        Vec::<String>::new(),
        "{point}: ledger indexes"
    );
    let (_, claimed) = p.json(&["ledger", "list", "--state", "claimed"]);
    assert!(
        claimed.as_array().unwrap().is_empty(),
        "{point}: claimed records left: {claimed}"
    );
    for t in ["sales-fec", "sales-csv"] {
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        for (batch, docs) in active_batches(p, t) {
            let path = p.path(batch["path"].as_str().unwrap());
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{point}: {} missing: {e}", path.display()));
            assert_eq!(
                sha256(&bytes),
                batch["sha256"].as_str().unwrap(),
                "{point}: {} differs from the ledger",
                path.display()
            );
            let (code, _) = p.json(&[
                "exports",
                "download",
                &batch["id"].to_string(),
                "--out",
                p.path("dl.bin").to_str().unwrap(),
            ]);
            assert_eq!(code, 0);
            assert_eq!(
                std::fs::read(p.path("dl.bin")).unwrap(),
                bytes,
                "{point}: download differs from the file"
            );
            assert_eq!(
                batch["documents"].as_u64().unwrap(),
                docs.len() as u64,
                "{point}"
            );
            for d in docs {
                *seen.entry(d).or_insert(0) += 1;
            }
        }
        assert_eq!(
            seen.len() as u64,
            DEMO_DELIVERABLE,
            "{point}/{t}: documents exported: {}",
            seen.len()
        );
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{point}/{t}: documents in two active batches: {twice:?}"
        );
        // The files on disk hold each document exactly once too.
        let (_, list) = p.json(&["exports", "list"]);
        let mut text = String::new();
        for b in list
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["target"] == t && b["status"] == "active")
        {
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(p.path(b["path"].as_str().unwrap())).unwrap(),
            ));
        }
        // PieceRef (FEC column 9) or number (CSV column 2) → distinct entries holding it.
        let mut entries: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = if t == "sales-fec" {
                line.split('\t').collect()
            } else {
                line.split(';').collect()
            };
            if cols.len() < 3
                || cols[0] == "JournalCode"
                || cols[0].starts_with('\u{feff}')
                || cols[0] == "type"
            {
                continue;
            }
            let (number, entry) = if t == "sales-fec" {
                (cols[8], cols[2])
            } else {
                (cols[1], cols[1])
            };
            let count = entries.entry(number.to_owned()).or_default();
            if t == "sales-csv" && !count.insert(format!("{}", count.len())) {
                unreachable!();
            }
            if t == "sales-fec" {
                count.insert(entry.to_owned());
            }
        }
        assert_eq!(
            entries.len() as u64,
            DEMO_DELIVERABLE,
            "{point}/{t}: documents in the files"
        );
        for (number, e) in &entries {
            assert_eq!(
                e.len(),
                1,
                "{point}/{t}: {number} is in {} entries or rows",
                e.len()
            );
        }
    }
}

#[test]
fn sigkill_at_every_delivery_point_loses_nothing_and_duplicates_nothing() {
    let points = [
        "after-claim",
        "after-claim:3",
        "mid-write",
        "mid-write:2",
        "after-write",
        "after-commit",
        "after-publish",
    ];
    for target in ["sales-fec", "sales-csv"] {
        for point in points {
            let p = Project::demo();
            // Small pages: a batch is written over several claims and writes.
            let src = p
                .read("connectors/demo-invoices.toml")
                .replace("page_size = 500", "page_size = 7");
            p.write("connectors/demo-invoices.toml", &src);
            let spec = format!("{point}@{target}");
            kill_at(&p, &spec);
            let (code, report) = p.json(&["sync"]);
            assert_eq!(code, 1, "{spec}: {report}");
            assert_consistent(&p, &spec);
            // And a further sync finds nothing to do.
            let (_, again) = p.json(&["sync"]);
            assert!(
                again["batches"].as_array().unwrap().is_empty(),
                "{spec}: {again}"
            );
        }
    }
}

/// The same with the ledger in PostgreSQL (issue 16): a SIGKILL at every point of a delivery
/// to the FEC target, then the next sync leaves every document in exactly one batch, the files
/// equal to the database's copies, nothing claimed, the indexes in agreement.
#[test]
fn sigkill_at_every_delivery_point_on_postgres_loses_nothing_and_duplicates_nothing() {
    let Some(url) = crate::postgres_ledger::url() else {
        return;
    };
    for point in [
        "after-claim",
        "mid-write:2",
        "after-write",
        "after-commit",
        "after-publish",
    ] {
        let p = Project::demo();
        let src = p
            .read("connectors/demo-invoices.toml")
            .replace("page_size = 500", "page_size = 7");
        p.write("connectors/demo-invoices.toml", &src);
        let ns = crate::postgres_ledger::on_postgres(&p, &url);
        let spec = format!("{point}@sales-fec");
        kill_at(&p, &spec);
        let (code, report) = p.json(&["sync"]);
        assert_eq!(code, 1, "{spec}: {report}");
        let differences = crate::postgres_ledger::open(&url, &ns)
            .check_indexes()
            .unwrap();
        assert_consistent_with(&p, &spec, differences);
        let (_, again) = p.json(&["sync"]);
        assert!(
            again["batches"].as_array().unwrap().is_empty(),
            "{spec}: {again}"
        );
    }
}

#[test]
fn a_kill_during_recovery_of_a_crash_is_recovered_too() {
    let p = Project::demo();
    kill_at(&p, "after-commit@sales-fec");
    kill_at(&p, "mid-write@sales-csv");
    let (code, report) = p.json(&["sync"]);
    assert_eq!(code, 1, "{report}");
    assert!(
        !report["recovery"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_consistent(&p, "double crash");
}
