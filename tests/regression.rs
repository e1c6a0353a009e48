//! Regression tests: one test per bug fixed, named after what it pins (issue "Keep the promise at
//! the edges"). Each drives the real binary or the library and fails without its fix.

#![allow(unused_imports)]

use crate::common::*;
use serde_json::Value;

// ── 1. Secrets and files ────────────────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread")]
async fn attachment_path_outside_the_source_folder_is_held() {
    use crate::pennylane_sim::{Sim, TOKEN};
    let sim = Sim::start().await;
    let p = crate::pennylane_api::project(&sim, "");
    // A PDF-looking file outside the source folder, and a symlink to it inside.
    p.write("secret.pdf", "%PDF-1.4 SECRET-OUTSIDE");
    std::os::unix::fs::symlink(
        p.path("secret.pdf"),
        p.path("examples/invoices/pdf/link.pdf"),
    )
    .unwrap();
    p.write("examples/invoices/pdf/fake.pdf", "not a pdf");
    let paths = [
        ("inv-2026-0001", "../../../../../../../../etc/passwd"),
        ("inv-2026-0002", "/proc/self/environ"),
        ("inv-2026-0003", "../../secret.pdf"),
        ("inv-2026-0004", "pdf/link.pdf"),
        ("inv-2026-0006", "pdf/fake.pdf"),
    ];
    for (file, path) in paths {
        let rel = format!("examples/invoices/{file}.json");
        let mut v: Value = serde_json::from_str(&p.read(&rel)).unwrap();
        v["attachments"] = serde_json::json!([{"kind": "invoice_pdf", "path": path}]);
        p.write(&rel, &v.to_string());
    }
    let mut c = p.command(&["--json", "sync"]);
    c.env("PENNYLANE_API_TOKEN", TOKEN)
        .env("XERO_CLIENT_SECRET", "xero-secret-value");
    let (code, r, _) = json_of(c).await;
    assert_eq!(code, 1, "{r}");
    let problems = r["problems"].to_string();
    let outside = problems
        .matches("leads outside the source's folders")
        .count()
        + problems.matches("is absolute").count();
    assert_eq!(outside, 4, "{problems}");
    assert!(problems.contains("is not a PDF file"), "{problems}");
    assert!(!problems.contains("SECRET-OUTSIDE"), "{problems}");
    let imported = sim.imports();
    for n in [
        "F2026-0001",
        "F2026-0002",
        "F2026-0003",
        "F2026-0004",
        "F2026-0006",
    ] {
        assert!(!imported.contains_key(n), "{n} was imported: {imported:?}");
    }
    assert_eq!(
        sim.state.lock().unwrap().attachments as usize,
        imported.len()
    );
}

#[test]
fn export_journal_code_cannot_lead_outside_out_dir() {
    let p = Project::demo();
    // Put the project two folders down so that `../../X` would land inside the temp dir.
    let p2 = Project {
        dir: tempfile::tempdir_in(p.dir.path()).unwrap(),
    };
    for e in ["facto.toml", "connectors", "mappings", "examples"] {
        std::fs::rename(p.path(e), p2.path(e)).unwrap();
    }
    let year = ["--from", "2026-01-01", "--to", "2026-12-31"];
    for t in ["sales-csv", "sales-fec"] {
        let mut args = vec!["export", "--target", t, "--journal", "../../X"];
        args.extend_from_slice(&year);
        let out = p2.run(&args);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("journal code `../../X`"),
            "{out:?}"
        );
    }
    let stray: Vec<_> = std::fs::read_dir(p.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with('X'))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    assert!(p2.out_files().is_empty());
    let mut args = vec!["export", "--target", "sales-csv", "--journal", "VT-2"];
    args.extend_from_slice(&year);
    let out = p2.run(&args);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{out:?}"
    );
    assert_eq!(p2.out_files().len(), 1, "{:?}", p2.out_files());
}

#[test]
fn chorus_lot_names_stay_unique_when_numbers_differ_only_in_punctuation() {
    let p = Project::demo();
    for (file, number) in [
        ("inv-2026-0008", "F2026/0100"),
        ("inv-2026-0012", "F2026.0100"),
        ("inv-2026-0017", "F2026_0100"),
    ] {
        let rel = format!("examples/invoices/{file}.json");
        let mut v: Value = serde_json::from_str(&p.read(&rel)).unwrap();
        v["number"] = Value::String(number.to_owned());
        p.write(&rel, &v.to_string());
    }
    let (_, r) = p.json(&[
        "export",
        "--target",
        "chorus-files",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ]);
    let t = target(&r, "chorus-files");
    assert_eq!(t["delivered"], 9, "{r}");
    let path = p.path(r["batches"][0]["path"].as_str().unwrap());
    let entries = facto::format::zip::read(&std::fs::read(path).unwrap()).unwrap();
    let mut names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 9);
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 9, "two documents share a file name: {names:?}");
    let hundred = names.iter().filter(|n| n.contains("F2026_0100")).count();
    assert_eq!(hundred, 3, "{names:?}");
}

#[cfg(unix)]
#[test]
fn data_files_are_private_and_output_files_follow_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let p = Project::demo();
    let csv = p.read("connectors/sales-csv.toml");
    p.write(
        "connectors/sales-csv.toml",
        &format!("{csv}\nfile_mode = \"0600\"\n"),
    );
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(mode(&p.path("data")), 0o700);
    let mut stack = vec![p.path("data")];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                assert_eq!(mode(&e.path()), 0o700, "{}", e.path().display());
                stack.push(e.path());
            } else {
                assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
                files += 1;
            }
        }
    }
    assert!(files >= 4, "ledger files and batch copies: {files}");
    for f in p.out_files() {
        let want = if f.extension().is_some_and(|e| e == "csv") {
            0o600
        } else {
            0o640
        };
        assert_eq!(mode(&p.path(&f.to_string_lossy())), want, "{}", f.display());
    }
    // A mode that is not octal is refused with its line.
    p.write(
        "connectors/sales-csv.toml",
        &format!("{csv}\nfile_mode = \"rw\"\n"),
    );
    let out = p.run(&["sync"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sales-csv.toml:") && err.contains("file_mode"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn temp_files_of_a_killed_run_are_removed_by_recovery_from_any_folder() {
    let p = Project::demo();
    kill_at(
        p.command(&["sync"]),
        "mid-write@sales-fec",
        &p.path("paused"),
    )
    .await;
    // A temp file no recorded batch names (an older version's, another step's).
    p.write("out/.batch-000099.facto-tmp", "orphan");
    let temps = |p: &Project| -> Vec<String> {
        let mut v = Vec::new();
        let mut stack = vec![p.path("out"), p.path("data/batches")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else if name.ends_with("tmp") {
                    v.push(e.path().display().to_string());
                }
            }
        }
        v
    };
    assert_eq!(temps(&p).len(), 2, "{:?}", temps(&p));
    // The next run is started from another folder (cron), with the config's absolute path.
    let config = p.path("facto.toml").display().to_string();
    let mut c = p.command(&["--json", "--config", &config, "sync"]);
    c.current_dir("/");
    let (code, r, _) = json_of(c).await;
    assert_eq!(code, 1, "{r}");
    assert!(r["recovery"].to_string().contains("rolled back"), "{r}");
    assert!(temps(&p).is_empty(), "{:?}", temps(&p));
}

#[test]
fn a_cancelled_batch_file_leaves_its_importable_name() {
    let p = Project::demo();
    let (_, r) = p.json(&[
        "export",
        "--target",
        "sales-csv",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ]);
    let b = &r["batches"][0];
    let path = p.path(b["path"].as_str().unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let id = b["id"].to_string();
    let out = p.run(&["exports", "cancel", &id]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    let aside = std::path::PathBuf::from(format!("{}.cancelled", path.display()));
    assert!(said.contains(".cancelled"), "{said}");
    assert!(
        !path.exists(),
        "the cancelled file keeps its importable name"
    );
    assert_eq!(std::fs::read(&aside).unwrap(), bytes);
    // The next sync's recovery does not put it back, and a new export gets a new name.
    let (_, r) = p.json(&["sync"]);
    assert!(!path.exists(), "{r}");
    let (_, again) = p.json(&[
        "export",
        "--target",
        "sales-csv",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ]);
    assert_ne!(again["batches"][0]["path"], b["path"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_cancelled_before_its_file_was_in_place_is_never_published() {
    let p = Project::demo();
    let export = [
        "export",
        "--target",
        "sales-csv",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ];
    // Killed after the ledger commit, before the rename: the batch exists, its file does not.
    kill_at(
        p.command(&export),
        "after-commit@sales-csv",
        &p.path("paused"),
    )
    .await;
    let (_, list) = p.json(&["exports", "list"]);
    let id = list[0]["id"].to_string();
    let path = p.path(list[0]["path"].as_str().unwrap());
    let (code, c) = p.json(&["exports", "cancel", &id]);
    assert_eq!(code, 0, "{c}");
    assert!(
        c["file"].as_str().unwrap().contains("no longer there"),
        "{c}"
    );
    let (_, r) = p.json(&["sync"]);
    assert!(!path.exists(), "recovery published a cancelled batch: {r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn attachments_dir_names_a_second_folder_for_the_documents_files() {
    use crate::pennylane_sim::{Sim, TOKEN};
    let sim = Sim::start().await;
    let p = crate::pennylane_api::project(&sim, "");
    // The PDFs live beside the source folder, in the folder the connector names.
    std::fs::create_dir_all(p.path("attachments")).unwrap();
    std::fs::rename(p.path("examples/invoices/pdf"), p.path("attachments/pdf")).unwrap();
    let src = p.read("connectors/demo-invoices.toml");
    p.write(
        "connectors/demo-invoices.toml",
        &format!("{src}\nattachments_dir = \"attachments\"\n"),
    );
    let mut c = p.command(&["--json", "sync"]);
    c.env("PENNYLANE_API_TOKEN", TOKEN);
    let (code, r, _) = json_of(c).await;
    assert_eq!(code, 1, "the demo's two held documents: {r}");
    assert_eq!(target(&r, "pennylane")["delivered"], 41, "{r}");
    // A typo in the key is refused with its line (deny_unknown_fields).
    p.write(
        "connectors/demo-invoices.toml",
        &format!("{src}\nattachment_dir = \"attachments\"\n"),
    );
    let out = p.run(&["sync"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("demo-invoices.toml:"), "{err}");
}

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

    // Corrected in the source: delivered under its new id; the old record goes as documented.
    let mut fixed: serde_json::Value =
        serde_json::from_str(&p.read("examples/new-invoice.json")).unwrap();
    fixed["id"] = "inv-2026-0041".into();
    fixed["number"] = "F2026-0041".into();
    p.write(
        "examples/invoices/odd.json",
        &serde_json::to_string(&[fixed]).unwrap(),
    );
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(target(&r, "sales-fec")["delivered"], 1, "{r}");
    for t in ["sales-fec", "sales-csv"] {
        let out = p.run(&[
            "ledger",
            "forget",
            "inv-2026\\n0041",
            "--target",
            t,
            "--yes",
        ]);
        assert!(out.status.success(), "{out:?}");
    }
    let (_, r) = p.json(&["sync"]);
    assert!(
        r["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["number"] != "F2026-0041"),
        "{r}"
    );
}

/// A version-2 ledger that a crash left with a line break in an id of an open batch: its
/// membership page no longer parsed and every sync stopped with exit 2, which no command repaired.
/// The first run of this facto upgrades it (schema 3) and rolls the batch back.
#[test]
fn version_2_ledger_with_a_newline_id_in_an_open_batch_is_upgraded_and_recovers() {
    let p = Project::demo();
    {
        let db = sled::open(p.path("data")).unwrap();
        let now = "2026-11-30T10:00:00Z";
        let open = serde_json::json!({"id": 1, "job": "demo", "target": "sales-fec",
            "tmp_path": p.path("out/.batch-000001.facto-tmp"), "started_at": now});
        db.insert(b"o\x000000000000000001", serde_json::to_vec(&open).unwrap())
            .unwrap();
        for id in ["inv\n9001", "inv-9002"] {
            let rec = serde_json::json!({
                "key": {"job": "demo", "target": "sales-fec", "doc_id": id},
                "state": "claimed", "number": format!("X-{id}"), "kind": "invoice",
                "customer_id": "C1", "customer_name": "C", "origin": "o", "source_hash": "h",
                "batch_id": 1, "attempts": 1, "created_at": now, "updated_at": now});
            // Header: state code (claimed = 1), batch id; then the record.
            let mut v = vec![1u8];
            v.extend(1u64.to_be_bytes());
            v.extend(serde_json::to_vec(&rec).unwrap());
            db.insert(format!("r\0demo\0sales-fec\0{id}").as_bytes(), v)
                .unwrap();
        }
        db.insert(
            b"d\x000000000000000001\x000000000000000001",
            &b"demo\0sales-fec\0inv\n9001\ndemo\0sales-fec\0inv-9002\n"[..],
        )
        .unwrap();
        db.insert(b"n\0batch", 1u64.to_be_bytes().to_vec()).unwrap();
        db.insert(b"m\0schema", &b"2"[..]).unwrap();
        db.insert(b"m\0index", &b"1"[..]).unwrap();
        db.flush().unwrap();
    }
    // sled lets go of its lock a moment after the handle is dropped.
    let mut attempt = 0;
    let (code, r) = loop {
        let out = p.run(&["--json", "sync"]);
        attempt += 1;
        if out.status.code() == Some(2)
            && String::from_utf8_lossy(&out.stderr).contains("in use")
            && attempt < 100
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        }
        let code = out.status.code().unwrap_or(-1);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("exit {code}, {e}: {}", String::from_utf8_lossy(&out.stderr))
        });
        break (code, v);
    };
    assert_eq!(code, 1, "{r}");
    assert!(r["recovery"].to_string().contains("export batch 1"), "{r}");
    let (_, shown) = p.json(&["ledger", "show", "inv\n9001"]);
    assert_eq!(shown[0]["state"], "released", "{shown}");
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
}

/// Runs `facto sync` on a config that must be refused; returns stderr.
fn refused_config(p: &Project) -> String {
    let out = p.run(&["sync"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        p.out_files().is_empty(),
        "nothing written: {:?}",
        p.out_files()
    );
    err
}

#[test]
fn a_target_listed_twice_in_a_job_is_refused_with_its_line() {
    let p = Project::demo();
    let cfg = p.read("facto.toml").replace(
        "targets = [\"sales-fec\", \"sales-csv\"]",
        "targets = [\"sales-fec\", \"sales-csv\", \"sales-fec\"]",
    );
    let line = cfg.lines().position(|l| l.starts_with("targets")).unwrap() + 1;
    p.write("facto.toml", &cfg);
    let err = refused_config(&p);
    assert!(err.contains(&format!("facto.toml:{line}:")), "{err}");
    assert!(err.contains("`sales-fec` twice"), "{err}");
}

#[test]
fn two_targets_writing_the_same_files_or_reaching_the_same_account_are_refused() {
    // Same format into the same folder, spelled differently.
    let p = Project::demo();
    p.write(
        "connectors/fec-again.toml",
        "kind = \"journal-file\"\nformat = \"fec\"\nout_dir = \"./out/\"\n",
    );
    let cfg = p.read("facto.toml").replace(
        "targets = [\"sales-fec\", \"sales-csv\"]",
        "targets = [\"sales-fec\", \"sales-csv\", \"fec-again\"]",
    );
    p.write("facto.toml", &cfg);
    let err = refused_config(&p);
    assert!(
        err.contains("`sales-fec` and `fec-again` both deliver to fec files in"),
        "{err}"
    );
    // Another format into the same folder is another file: accepted.
    p.write(
        "connectors/fec-again.toml",
        "kind = \"journal-file\"\nformat = \"ebp\"\nout_dir = \"out\"\n",
    );
    let out = p.run(&["--json", "sync", "--dry-run"]);
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Two Pennylane connectors on one company token, the URL spelled with a trailing slash.
    let p = Project::demo();
    let pl = |url: &str| {
        format!("kind = \"pennylane\"\napi_url = \"{url}\"\ntoken_env = \"PENNYLANE_API_TOKEN\"\n")
    };
    p.write(
        "connectors/pl-a.toml",
        &pl("http://127.0.0.1:9/api/external/v2"),
    );
    p.write(
        "connectors/pl-b.toml",
        &pl("http://127.0.0.1:9/api/external/v2/"),
    );
    let cfg = p.read("facto.toml").replace(
        "targets = [\"sales-fec\", \"sales-csv\"]",
        "targets = [\"sales-fec\", \"pl-a\", \"pl-b\"]",
    );
    p.write("facto.toml", &cfg);
    let err = refused_config(&p);
    assert!(
        err.contains(
            "`pl-a` and `pl-b` both deliver to the company of the token in PENNYLANE_API_TOKEN"
        ),
        "{err}"
    );

    // Two Chorus Pro connectors on one technical account.
    let p = Project::demo();
    let chorus = p.read("connectors/chorus-pro.toml");
    p.write("connectors/chorus-2.toml", &chorus);
    let cfg = p.read("facto.toml").replace(
        "targets = [\"sales-fec\", \"sales-csv\"]",
        "targets = [\"chorus-pro\", \"chorus-2\"]",
    );
    p.write("facto.toml", &cfg);
    let err = refused_config(&p);
    assert!(err.contains("`chorus-pro` and `chorus-2` both deliver to the Chorus Pro account of CHORUS_PRO_ACCOUNT"), "{err}");

    // Two jobs reading the same source into the same files (each keeps its own records).
    let p = Project::demo();
    let mut cfg = p.read("facto.toml");
    cfg.push_str("\n[[job]]\nname = \"again\"\nsource = \"demo-invoices\"\nmapping = \"pcg-demo\"\ntargets = [\"sales-ebp\", \"sales-fec\"]\n");
    let line = cfg.lines().count();
    p.write("facto.toml", &cfg);
    let err = refused_config(&p);
    assert!(err.contains(&format!("facto.toml:{line}:")), "{err}");
    assert!(
        err.contains("jobs `demo` and `again` both read the folder")
            && err.contains("(target `sales-fec`)"),
        "{err}"
    );
}

/// Records of `target` in `state`, from `facto ledger list`.
fn in_state(p: &Project, target: &str, state: &str) -> usize {
    let (_, v) = p.json(&["ledger", "list", "--target", target, "--state", state]);
    v.as_array().map_or(0, Vec::len)
}

/// Runs a `facto --json` command built by `make`; returns (exit code, report).
async fn report_of(cmd: std::process::Command) -> (i32, serde_json::Value) {
    let (code, v, _) = json_of(cmd).await;
    (code, v)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_pennylane_answer_is_waited_for_and_never_imported_twice() {
    use crate::pennylane_api::{command, project};
    use crate::pennylane_sim::{Fault, Sim, TOKEN};
    let sim = Sim::start().await;
    let p = project(&sim, "timeout_secs = 1\n");
    let late = std::time::Duration::from_secs(6);
    sim.state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::Late(late));
    let landed_at = std::time::Instant::now() + late + std::time::Duration::from_secs(3);
    let sync = || command(&p, &["--json", "sync"], TOKEN);
    let (code, r) = report_of(sync()).await;
    assert_eq!(code, 3, "the first import timed out: {r}");
    assert_eq!(in_state(&p, "pennylane", "claimed"), 1);
    // At once: Pennylane does not list it yet; it stays claimed and is not imported again.
    let (_, r) = report_of(sync()).await;
    let imports = sim.imports();
    assert!(
        imports.values().all(|n| *n == 1),
        "imported twice: {imports:?}"
    );
    assert!(
        r["statuses"]
            .to_string()
            .contains("waiting for the platform to confirm"),
        "{r}"
    );
    assert_eq!(in_state(&p, "pennylane", "claimed"), 1, "{r}");
    // Once it has landed, the lookup finds it.
    std::thread::sleep(landed_at.saturating_duration_since(std::time::Instant::now()));
    let (code, r) = report_of(sync()).await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(in_state(&p, "pennylane", "claimed"), 0, "{r}");
    let imports = sim.imports();
    assert_eq!(imports.len(), DEMO_DELIVERABLE as usize, "{imports:?}");
    assert!(
        imports.values().all(|n| *n == 1),
        "imported twice: {imports:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_xero_answer_is_waited_for_and_never_sent_twice() {
    use crate::xero_api::{command, connected};
    use crate::xero_sim::{Fault, Sim};
    let sim = Sim::start().await;
    let p = connected(&sim, "batch_size = 10\ntimeout_secs = 1\n").await;
    let late = std::time::Duration::from_secs(6);
    sim.state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::Late(late));
    let landed_at = std::time::Instant::now() + late + std::time::Duration::from_secs(3);
    let sync = || command(&p, &["--json", "sync"]);
    let (code, r) = report_of(sync()).await;
    assert_eq!(code, 3, "the first batch timed out: {r}");
    assert_eq!(in_state(&p, "xero", "claimed"), 10);
    // At once: Xero does not list the batch yet; it stays claimed and is not sent again.
    let (_, r) = report_of(sync()).await;
    assert!(
        r["statuses"]
            .to_string()
            .contains("waiting for the platform to confirm"),
        "{r}"
    );
    assert_eq!(in_state(&p, "xero", "claimed"), 10, "{r}");
    std::thread::sleep(landed_at.saturating_duration_since(std::time::Instant::now()));
    let (code, r) = report_of(sync()).await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(in_state(&p, "xero", "claimed"), 0, "{r}");
    let created = sim.created();
    assert_eq!(created.len(), DEMO_DELIVERABLE as usize, "{created:?}");
    assert!(
        created.values().all(|n| *n == 1),
        "created twice: {created:?}"
    );
}

/// Rows of the demo's documents CSV that hold `number`.
fn csv_rows_of(p: &Project, number: &str) -> usize {
    p.out_files()
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "csv"))
        .map(|f| {
            p.read(f.to_str().unwrap())
                .lines()
                .filter(|l| l.contains(number))
                .count()
        })
        .sum()
}

/// The report's problem lines about document `doc_id`, as text.
fn problems_of(report: &serde_json::Value, doc_id: &str) -> String {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["doc_id"] == doc_id)
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_document_id_read_twice_is_reported_and_delivered_once() {
    for page_size in [500, 3] {
        let p = Project::demo();
        let c = p
            .read("connectors/demo-invoices.toml")
            .replace("page_size = 500", &format!("page_size = {page_size}"));
        p.write("connectors/demo-invoices.toml", &c);
        // The same id again with other contents, in a file read later (another page when
        // pages are small).
        let doc = p.read("examples/invoices/inv-2026-0001.json").replacen(
            "\"id\"",
            "\"contract_reference\": \"a copy\", \"id\"",
            1,
        );
        p.write("examples/invoices/zz-copy.json", &doc);
        // An identical copy is the same document read twice: taken once, without a word.
        let same = p.read("examples/invoices/inv-2026-0002.json");
        p.write("examples/invoices/zz-same.json", &same);
        let (code, r) = p.json(&["sync"]);
        assert_eq!(code, 1, "{r}");
        let lines = problems_of(&r, "inv-2026-0001");
        assert!(
            lines.contains("read twice")
                && lines.contains("inv-2026-0001.json")
                && lines.contains("zz-copy.json"),
            "page size {page_size}: {r}"
        );
        assert_eq!(
            target(&r, "sales-csv")["delivered"],
            DEMO_DELIVERABLE,
            "{r}"
        );
        assert_eq!(csv_rows_of(&p, "F2026-0001"), 1, "page size {page_size}");
        assert_eq!(csv_rows_of(&p, "F2026-0002"), 1, "page size {page_size}");
        assert!(problems_of(&r, "inv-2026-0002").is_empty(), "{r}");
    }
}

#[test]
fn an_invoice_number_under_two_ids_is_held_and_booked_once() {
    let p = Project::demo();
    let mut doc: serde_json::Value =
        serde_json::from_str(&p.read("examples/invoices/inv-2026-0001.json")).unwrap();
    doc["id"] = "inv-2026-9001".into();
    p.write("examples/invoices/zz-renumbered.json", &doc.to_string());
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
    let lines = problems_of(&r, "inv-2026-9001");
    assert!(
        lines.contains("F2026-0001 is already used by document `inv-2026-0001`")
            && lines.contains("inv-2026-0001.json")
            && lines.contains("zz-renumbered.json")
            && lines.contains("\"held\""),
        "{r}"
    );
    assert_eq!(csv_rows_of(&p, "F2026-0001"), 1);
    // Later runs keep it held, and a third id with the number in a later run is held too.
    doc["id"] = "inv-2026-9002".into();
    p.write("examples/invoices/zz-again.json", &doc.to_string());
    // `preview` says what the sync will do.
    let (_, pv) = p.json(&["preview", "--target", "sales-csv"]);
    let row = pv["targets"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["doc_id"] == "inv-2026-9002")
        .cloned()
        .unwrap();
    assert_eq!(row["status"], "held", "{row}");
    assert!(
        row["detail"].as_str().unwrap().contains("already used"),
        "{row}"
    );
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
    assert!(
        problems_of(&r, "inv-2026-9001").contains("already used"),
        "{r}"
    );
    assert!(
        problems_of(&r, "inv-2026-9002").contains("already used"),
        "{r}"
    );
    assert_eq!(target(&r, "sales-csv")["delivered"], 0, "{r}");
    assert_eq!(csv_rows_of(&p, "F2026-0001"), 1);
    let (_, held) = p.json(&["ledger", "list", "--target", "sales-fec", "--state", "held"]);
    assert_eq!(
        held.as_array().unwrap().len(),
        4,
        "the demo's two and these two: {held}"
    );
}

// end of section 2

// ── 3. No hang, no panic, no wedge; 4. documents that are always valid ─────────────────────────

/// Runs `facto --json sync` with the Pennylane token set; kills it if it outlives `limit` (a
/// retry loop that ignores its budget would otherwise hang the test).
fn sync_with_deadline(p: &Project, limit: std::time::Duration) -> (i32, serde_json::Value, String) {
    let mut c = p.command(&["--json", "sync"]);
    c.env("PENNYLANE_API_TOKEN", "test-token")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("facto sync still running after {limit:?}: a retry loop ignores its budget");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| serde_json::Value::String(stderr.clone()));
    (out.status.code().unwrap_or(-1), v, stderr)
}

/// [`sync_with_deadline`] of a minute, on a blocking-capable worker (the mock server keeps answering).
fn sync_within_a_minute(p: &Project) -> (i32, serde_json::Value, String) {
    tokio::task::block_in_place(|| sync_with_deadline(p, std::time::Duration::from_secs(60)))
}

/// A Pennylane connector on `uri` with a retry budget of `budget` seconds.
fn project_with_pennylane_on(uri: &str, budget: u64) -> Project {
    crate::pennylane_api::with_connector(&format!(
        "kind = \"pennylane\"\napi_url = \"{uri}/api/external/v2\"\ntoken_env = \"PENNYLANE_API_TOKEN\"\nmax_retry_secs = {budget}\nrequests_per_5s = 1000\n"
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_forever_stays_within_the_retry_budget() {
    use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .mount(&server)
        .await;
    let p = project_with_pennylane_on(&server.uri(), 3);
    let (code, r, err) = sync_within_a_minute(&p);
    assert!(
        p.out_files()
            .iter()
            .any(|f| f.to_string_lossy().contains("FEC")),
        "the FEC target is still delivered: {:?}",
        p.out_files()
    );
    assert_eq!(
        code, 3,
        "a target that never answers is unreachable: {r}\n{err}"
    );
    // A 3 s budget with a 1 s Retry-After: a handful of requests, not one a second for ever.
    let sent = server.received_requests().await.unwrap().len();
    assert!((2..=5).contains(&sent), "{sent} requests for a 3 s budget");
    assert_eq!(
        target(&r, "sales-fec")["delivered"],
        DEMO_DELIVERABLE,
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_longer_than_the_budget_stops_the_target_at_once() {
    use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .mount(&server)
        .await;
    let p = project_with_pennylane_on(&server.uri(), 3);
    let (code, r, err) = sync_within_a_minute(&p);
    assert_eq!(code, 3, "{r}\n{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let text = r.to_string();
    assert!(
        text.contains("Retry-After") && text.contains("3600"),
        "the reason names the wait asked for: {r}"
    );
    assert_eq!(
        target(&r, "sales-fec")["delivered"],
        DEMO_DELIVERABLE,
        "{r}"
    );
}

#[test]
fn quantity_at_decimals_limit_is_held_and_never_panics() {
    let p = Project::demo();
    let mut doc: serde_json::Value =
        serde_json::from_str(&p.read("examples/new-invoice.json")).unwrap();
    doc["lines"][0]["quantity"] = "79228162514264337593543950335".into();
    doc["lines"][0]["unit_price"] = "2".into();
    p.write("examples/invoices/zz-huge.json", &doc.to_string());
    for run in 1..=2 {
        let (code, r) = p.json(&["sync"]);
        assert_eq!(code, 1, "run {run}: held documents, no panic: {r}");
        let problems = r["problems"].as_array().unwrap();
        let huge = problems
            .iter()
            .find(|x| x.to_string().contains("F2026-0040"))
            .unwrap_or_else(|| panic!("run {run}: the document is held: {r}"));
        let text = huge.to_string();
        assert!(
            text.contains("amount out of range") && text.contains("lines[0].quantity"),
            "run {run}: {huge}"
        );
        if run == 1 {
            assert_eq!(
                target(&r, "sales-fec")["delivered"],
                DEMO_DELIVERABLE,
                "{r}"
            );
        }
    }
}

#[test]
fn control_characters_in_notes_and_descriptions_give_well_formed_chorus_files() {
    for (format, schema) in [
        ("chorus-ubl", "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd"),
        (
            "chorus-cii",
            "cii-d16b/data/standard/CrossIndustryInvoice_100pD16B.xsd",
        ),
    ] {
        let p = Project::demo();
        let c = p
            .read("connectors/chorus-files.toml")
            .replace("format = \"chorus-ubl\"", &format!("format = \"{format}\""));
        p.write("connectors/chorus-files.toml", &c);
        let mut doc: serde_json::Value =
            serde_json::from_str(&p.read("examples/invoices/inv-2026-0008.json")).unwrap();
        doc["notes"][0]["text"] = "Indemnité\u{1} de 40\u{7} EUR\u{FFFF}".into();
        doc["lines"][0]["description"] = "Formation\u{2}\u{1F} Excel\u{FFFE}".into();
        doc["payment_terms"] = "30 jours\u{B}net".into();
        p.write("examples/invoices/inv-2026-0008.json", &doc.to_string());
        let (code, r) = p.json(&[
            "export",
            "--target",
            "chorus-files",
            "--from",
            "2026-01-01",
            "--to",
            "2026-12-31",
        ]);
        assert_eq!(code, 1, "{format}: F2026-0004 is held on purpose: {r}");
        assert_eq!(target(&r, "chorus-files")["delivered"], 9, "{format}: {r}");
        let path = p.path(r["batches"][0]["path"].as_str().unwrap());
        let docs = facto::format::zip::read(&std::fs::read(path).unwrap()).unwrap();
        let (name, bytes) = docs
            .iter()
            .find(|(n, _)| n.contains("F2026-0008"))
            .unwrap_or_else(|| panic!("{format}: F2026-0008 is in the lot"));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            !text
                .chars()
                .any(|c| (c < ' ' && !matches!(c, '\t' | '\n' | '\r'))
                    || c == '\u{FFFE}'
                    || c == '\u{FFFF}'),
            "{format}: {name} holds a character XML forbids"
        );
        assert!(
            text.contains("Formation") && text.contains("Indemnité"),
            "{text}"
        );
        if let Some(s) = xsd(schema) {
            let invoices: Vec<_> = docs
                .into_iter()
                .filter(|(_, b)| !b.windows(11).any(|w| w == b"<CreditNote"))
                .collect();
            xmllint(&s, &invoices);
        }
    }
}

#[test]
fn chorus_documents_the_official_rules_would_reject_are_held_or_written_valid() {
    let p = Project::demo();
    let edit = |file: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let path = format!("examples/invoices/{file}");
        let mut doc: serde_json::Value = serde_json::from_str(&p.read(&path)).unwrap();
        f(&mut doc);
        p.write(&path, &doc.to_string());
    };
    // A VAT number without its country prefix (BR-CO-09): held with the rule named.
    edit("inv-2026-0008.json", &|d| {
        d["buyer"]["vat_id"] = "12345678901".into()
    });
    // A blank line id, IBAN and preceding invoice (BR-21, BR-50, BR-55): left out of the
    // document (the line's number stands for its id) instead of written empty.
    edit("inv-2026-0012.json", &|d| {
        d["lines"][0]["id"] = "\u{1} ".into();
        d["iban"] = " ".into();
        d["preceding_invoice"] = "\u{2}".into();
    });
    let (code, r) = p.json(&[
        "export",
        "--target",
        "chorus-files",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ]);
    assert_eq!(code, 1, "{r}");
    let held = r["problems"].to_string();
    assert!(
        held.contains("F2026-0008") && held.contains("BR-CO-09"),
        "{held}"
    );
    assert_eq!(target(&r, "chorus-files")["delivered"], 8, "{r}");
    let path = p.path(r["batches"][0]["path"].as_str().unwrap());
    let docs = facto::format::zip::read(&std::fs::read(path).unwrap()).unwrap();
    let (_, bytes) = docs.iter().find(|(n, _)| n.contains("F2026-0012")).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(!text.contains("<cbc:ID> </cbc:ID>"), "{text}");
    assert!(!text.contains("BillingReference"), "{text}");
    assert!(
        text.contains("<cbc:ID>1</cbc:ID>"),
        "the line's number is its id: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_source_answering_429_for_ever_stops_within_its_budget() {
    use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .mount(&server)
        .await;
    let p = Project::demo();
    p.write(
        "connectors/api.toml",
        &format!(
            "kind = \"http\"\nurl = \"{}/api/invoices\"\nitems_field = \"data\"\ninitial_retry_ms = 50\nmax_retry_secs = 3\n",
            server.uri()
        ),
    );
    let cfg = p
        .read("facto.toml")
        .replace("source = \"demo-invoices\"", "source = \"api\"");
    p.write("facto.toml", &cfg);
    let (code, r, err) = sync_within_a_minute(&p);
    assert_eq!(code, 3, "{r}\n{err}");
    let sent = server.received_requests().await.unwrap().len();
    assert!((2..=5).contains(&sent), "{sent} requests for a 3 s budget");
}

// end of sections 3 and 4

// ── 5. What the accountant receives; 6. source documents ────────────────────────────────────────

fn bytes_under(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            bytes_under(&e.path())
        } else {
            m.len()
        };
    }
    n
}

/// Every run rewrote each held record with its copy of the document: the ledger grew by the
/// held documents' size on every run (14 → 85 MB over 30 runs). An unchanged held record is now
/// left as it is: its bytes, history and timestamp stay, and the ledger does not grow with it.
#[test]
fn held_documents_are_not_rewritten_on_every_run() {
    let p = Project::demo();
    // F2026-0030 is held (tax code TVA85 has no mapping); make it weigh 2 MB.
    let mut doc: serde_json::Value =
        serde_json::from_str(&p.read("examples/invoices/inv-2026-0030.json")).unwrap();
    doc["notes"] = serde_json::json!([{"subject_code": null, "text": "x".repeat(2 << 20)}]);
    p.write(
        "examples/invoices/inv-2026-0030.json",
        &serde_json::to_string(&doc).unwrap(),
    );
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
    let held = |p: &Project| {
        let (_, a) = p.json(&["ledger", "show", "F2026-0030"]);
        let (_, b) = p.json(&["ledger", "show", "F2026-0032"]);
        (a, b)
    };
    let (first_a, first_b) = held(&p);
    assert_eq!(first_a.as_array().unwrap().len(), 2, "{first_a}");
    assert!(first_a
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["state"] == "held"));
    // The second run re-checks the held records from their copies; later ones find nothing new.
    let (code, _) = p.json(&["sync"]);
    assert_eq!(code, 1);
    let size = bytes_under(&p.path("data"));
    for run in 0..4 {
        let (code, r) = p.json(&["sync"]);
        assert_eq!(code, 1, "{r}");
        assert_eq!(target(&r, "sales-fec")["held"], 2, "run {run}: {r}");
        assert_eq!(held(&p), (first_a.clone(), first_b.clone()), "run {run}");
    }
    let grown = bytes_under(&p.path("data")).saturating_sub(size);
    println!("ledger: {size} bytes, +{grown} over 4 runs");
    assert!(
        grown < 1 << 20,
        "the ledger grew by {grown} bytes over 4 runs"
    );
}

// end of sections 5 and 6

// ── 7. The admin API and the daemon; 8. packaging and operations ────────────────────────────────

/// A daemon that is killed if the test panics before stopping it (no stray daemon left behind).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// One raw HTTP/1.1 exchange with the daemon (its answer read to the end, within `wait`); `None`
/// when it does not answer in time.
fn raw_http(addr: &str, request: &str, wait: std::time::Duration) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn post_cli(addr: &str, token: &str, args: &[&str]) -> Option<String> {
    let body = serde_json::json!({ "args": args }).to_string();
    raw_http(
        addr,
        &format!(
            "POST /api/cli HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        std::time::Duration::from_secs(20),
    )
}

/// A server that records every byte it is sent and answers each request like a daemon would,
/// with a made-up proof.
fn fake_daemon(pid: u32) -> (String, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            c.set_read_timeout(Some(std::time::Duration::from_millis(300)))
                .unwrap();
            let mut buf = [0u8; 65536];
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            let body =
                format!(r#"{{"pid":{pid},"proof":"00","exit_code":0,"stdout":"","error":""}}"#);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, seen)
}

fn write_handle(p: &Project, addr: &str, pid: u32) {
    p.write(
        "data/daemon.json",
        &serde_json::json!({ "addr": addr, "pid": pid }).to_string(),
    );
}

#[test]
fn a_stale_daemon_json_never_sends_the_admin_token_to_the_server_on_its_port() {
    let p = Project::demo();
    let (code, _) = p.json(&["ledger", "list"]);
    assert_eq!(code, 0);
    // The daemon died long ago: its pid is no one's, its port someone else's.
    p.write("data/admin-token", "the-secret-admin-token-0123456789");
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let (addr, seen) = fake_daemon(dead_pid);
    write_handle(&p, &addr, dead_pid);
    let (code, list) = p.json(&["ledger", "list"]);
    assert_eq!(code, 0, "the command runs here: {list}");
    let got = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(!got.contains("the-secret-admin-token"), "{got}");

    // A live daemon holds the ledger, but daemon.json names another server: it cannot prove
    // it knows the token, so the token is not sent and the command stops.
    std::fs::remove_file(p.path("data/daemon.json")).unwrap();
    let (child, _, token) = crate::daemon::start(&p);
    let mut child = Running(child);
    let (addr, seen) = fake_daemon(child.0.id());
    write_handle(&p, &addr, child.0.id());
    let out = p.run(&["ledger", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("does not prove"), "{stderr}");
    let got = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(got.contains("/api/hello"), "the CLI asked first: {got}");
    assert!(!got.contains(&token), "{got}");
    assert_eq!(crate::daemon::terminate(&mut child.0), 0);
}

/// Starts `facto run` with at most `fds` file descriptors; returns the child and its address.
#[allow(clippy::zombie_processes)]
fn daemon_with_few_fds(p: &Project, daemon: &str, fds: u32) -> (std::process::Child, String) {
    let cfg = p.read("facto.toml") + "\n[daemon]\nlisten = \"127.0.0.1:0\"\n" + daemon;
    p.write("facto.toml", &cfg);
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {fds} && exec \"$0\" run"))
        .arg(env!("CARGO_BIN_EXE_facto"))
        .current_dir(p.dir.path())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if let Ok(b) = std::fs::read(p.path("data/daemon.json")) {
            let h: serde_json::Value = serde_json::from_slice(&b).unwrap();
            return (child, h["addr"].as_str().unwrap().to_owned());
        }
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon did not start");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn idle_connections_never_lock_health_out_and_are_closed_after_the_idle_timeout() {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let p = Project::demo();
    // Fewer descriptors than idle clients: without a bound the daemon runs out of them.
    let (child, addr) = daemon_with_few_fds(
        &p,
        "max_connections = 8\nidle_timeout_secs = 3\nrequest_timeout_secs = 30\n",
        64,
    );
    let mut child = Running(child);
    let idle: Vec<std::net::TcpStream> = (0..150)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let asked = Instant::now();
    let health = raw_http(
        &addr,
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(10),
    );
    let health = health.unwrap_or_default();
    assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "/health waited for idle clients: {:?}",
        asked.elapsed()
    );
    drop(idle);

    // A client that sends nothing is disconnected after the idle timeout.
    let mut quiet = std::net::TcpStream::connect(&addr).unwrap();
    quiet
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let since = Instant::now();
    let mut b = [0u8; 16];
    let n = quiet.read(&mut b);
    assert!(
        matches!(n, Ok(0))
            || matches!(&n, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{n:?}"
    );
    let waited = since.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    assert_eq!(crate::daemon::terminate(&mut child.0), 0);
}

#[test]
fn health_answers_and_the_daemon_does_not_spin_when_file_descriptors_run_out() {
    use std::time::{Duration, Instant};
    let p = Project::demo();
    // More connections allowed than descriptors: accepting fails, and an idle client must make
    // room instead of the loop spinning.
    let (child, addr) = daemon_with_few_fds(&p, "idle_timeout_secs = 60\n", 32);
    let mut child = Running(child);
    let idle: Vec<std::net::TcpStream> = (0..150)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let asked = Instant::now();
    let health = raw_http(
        &addr,
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(10),
    )
    .unwrap_or_default();
    assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    // Still out of descriptors with clients waiting: the daemon waits, it does not spin.
    let more: Vec<std::net::TcpStream> = (0..50)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let cpu = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or_default().to_owned();
        let f: Vec<&str> = after.split_whitespace().collect();
        f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    };
    if std::path::Path::new("/proc/self/stat").exists() {
        std::thread::sleep(Duration::from_millis(500));
        let before = cpu(child.0.id());
        std::thread::sleep(Duration::from_secs(2));
        let ticks = cpu(child.0.id()) - before;
        // Clock ticks are 1/100 s: a spinning loop burns about 200 in 2 s.
        assert!(ticks < 60, "the daemon used {ticks} ticks of CPU in 2 s");
    }
    drop((idle, more));
    assert_eq!(crate::daemon::terminate(&mut child.0), 0);
}

#[test]
fn a_forwarded_run_behind_a_global_flag_is_refused() {
    let p = Project::demo();
    let (child, addr, token) = crate::daemon::start(&p);
    let mut child = Running(child);
    let other = p.path("other");
    let other = other.to_str().unwrap();
    for args in [
        &["--data-dir", other, "run"][..],
        &["--json", "run"],
        &["-v", "connect", "sales-fec"],
        &["--data-dir", other, "ledger", "list"],
    ] {
        let answer = post_cli(&addr, &token, args).unwrap_or_default();
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{args:?}: no answer ({e}): {answer:?}"));
        assert_eq!(v["exit_code"], 2, "{args:?}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("daemon"),
            "{args:?}: {v}"
        );
    }
    assert!(!p.path("other").exists(), "no second ledger was opened");
    assert_eq!(crate::daemon::terminate(&mut child.0), 0);
}

#[test]
fn metrics_label_values_are_escaped() {
    let p = Project::demo();
    let cfg = p
        .read("facto.toml")
        .replace("name = \"demo\"", "name = 'de\"mo\\x'");
    p.write("facto.toml", &cfg);
    let (child, addr, token) = crate::daemon::start(&p);
    let mut child = Running(child);
    let start = std::time::Instant::now();
    let metrics = loop {
        let m = raw_http(
            &addr,
            &format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"),
            std::time::Duration::from_secs(10),
        )
        .unwrap_or_default();
        if m.contains("facto_passes_total{") && m.contains("facto_documents{") {
            break m;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "{m}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        metrics.contains(r#"facto_passes_total{job="de\"mo\\x",outcome="#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"facto_documents{job="de\"mo\\x",target="sales-fec""#),
        "{metrics}"
    );
    assert_eq!(crate::daemon::terminate(&mut child.0), 0);
}

#[test]
fn dockerfile_creates_the_volume_folders_for_its_user_and_checks_health() {
    let d = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let flat = d.replace("\\\n", " ");
    let mkdir = flat
        .lines()
        .find(|l| l.contains("mkdir -p /app/data /app/out"))
        .expect("the volume folders are created");
    assert!(
        mkdir.contains("chown facto:facto /app/data /app/out"),
        "{mkdir}"
    );
    let volume = d.find("VOLUME").unwrap();
    assert!(
        d.find("mkdir -p /app/data").unwrap() < volume,
        "before VOLUME"
    );
    let hc = flat
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("a HEALTHCHECK");
    assert!(hc.contains("/health"), "{hc}");
}

/// A copy of the demo's F2026-0030 (tax code TVA85 has no mapping) under another id and number.
fn unmapped_copy(p: &Project, n: u32) {
    let mut v: serde_json::Value =
        serde_json::from_str(&p.read("examples/invoices/inv-2026-0030.json")).unwrap();
    v["id"] = format!("inv-2026-9{n:03}").into();
    v["number"] = format!("F2026-9{n:03}").into();
    p.write(
        &format!("examples/invoices/inv-2026-9{n:03}.json"),
        &serde_json::to_string_pretty(&v).unwrap(),
    );
}

#[test]
fn a_test_that_skips_for_a_missing_tool_says_skipped_and_fails_under_ci() {
    // The Pennylane contract test needs Prism: pointed at none, it must skip visibly (libtest
    // would print only "ok"), and fail under CI=true.
    let name =
        "pennylane_contract::every_request_of_a_sync_is_valid_against_the_pennylane_contract";
    let run = |ci: bool| {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap());
        c.args([name, "--exact", "--test-threads=1"])
            .env("FACTO_PRISM", "/nonexistent/prism")
            .env_remove("CI");
        if ci {
            c.env("CI", "true");
        }
        c.output().unwrap()
    };
    let out = run(false);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(all.contains(&format!("skipped: {name}: Prism")), "{all}");
    // Listed again after libtest's summary, the last thing a user sees.
    let summary = all.find("test result:").unwrap();
    assert!(all[summary..].contains("skipped: 1 test(s)"), "{all}");
    let out = run(true);
    assert!(!out.status.success(), "under CI=true a missing tool fails");
}

#[test]
fn the_report_groups_identical_problems_and_gives_the_amounts_delivered() {
    use rust_decimal::Decimal;
    let p = Project::demo();
    for n in 1..=4 {
        unmapped_copy(&p, n);
    }
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1);
    let groups = r["problem_groups"].as_array().unwrap();
    let tva85: Vec<_> = groups
        .iter()
        .filter(|g| g["reason"].as_str().unwrap().contains("TVA85"))
        .collect();
    assert_eq!(tva85.len(), 1, "{groups:#?}");
    assert_eq!(tva85[0]["documents"], 5);
    assert_eq!(
        tva85[0]["targets"],
        serde_json::json!(["sales-csv", "sales-fec"])
    );
    assert_eq!(tva85[0]["examples"].as_array().unwrap().len(), 3);
    // The amounts of what was delivered: every final document but the two held ones (and the
    // copies), credit notes deducted.
    let (mut net, mut tax, mut gross) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for e in std::fs::read_dir(repo().join("examples/invoices")).unwrap() {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
        let docs = match v {
            serde_json::Value::Array(a) => a,
            one => vec![one],
        };
        for d in docs {
            if d["status"] != "final"
                || ["F2026-0030", "F2026-0032"].contains(&d["number"].as_str().unwrap())
            {
                continue;
            }
            let sign = if d["kind"] == "credit_note" {
                -Decimal::ONE
            } else {
                Decimal::ONE
            };
            let amount =
                |k: &str| sign * d["totals"][k].as_str().unwrap().parse::<Decimal>().unwrap();
            net += amount("net");
            tax += amount("tax");
            gross += amount("gross");
        }
    }
    for t in ["sales-fec", "sales-csv"] {
        let a = &target(&r, t)["amounts"];
        assert_eq!(target(&r, t)["delivered"], DEMO_DELIVERABLE);
        assert_eq!(
            a["net"].as_str().unwrap().parse::<Decimal>().unwrap(),
            net,
            "{a}"
        );
        assert_eq!(
            a["tax"].as_str().unwrap().parse::<Decimal>().unwrap(),
            tax,
            "{a}"
        );
        assert_eq!(
            a["gross"].as_str().unwrap().parse::<Decimal>().unwrap(),
            gross,
            "{a}"
        );
    }
    // For humans: one line for the five documents, and the amounts beside the counts.
    let p2 = Project::demo();
    for n in 1..=4 {
        unmapped_copy(&p2, n);
    }
    let text = String::from_utf8(p2.run(&["sync"]).stdout).unwrap();
    assert_eq!(text.matches("`TVA85` has no mapping").count(), 1, "{text}");
    assert!(text.contains("5 documents, e.g. F2026-0030"), "{text}");
    assert!(
        text.contains(&format!("net {net}, VAT {tax}, gross {gross}")),
        "{text}"
    );
}

#[test]
fn sync_fail_on_new_exits_0_when_nothing_new_went_wrong() {
    let p = Project::demo();
    let code = |args: &[&str]| p.run(args).status.code().unwrap();
    // The demo's two held documents are new at the first run.
    assert_eq!(code(&["sync", "--fail-on", "new"]), 1);
    // Still held, already reported: a cron job is not failed again.
    assert_eq!(code(&["sync", "--fail-on", "new"]), 0);
    let (c, r) = p.json(&["sync", "--fail-on", "new"]);
    assert_eq!((c, r["new_problems"].as_u64()), (0, Some(0)));
    assert_eq!(r["problems"].as_array().unwrap().len(), 4, "still reported");
    let (c, r) = p.json(&["sync", "--fail-on", "new", "--dry-run"]);
    assert_eq!((c, r["new_problems"].as_u64()), (0, Some(0)));
    // The default is unchanged.
    assert_eq!(code(&["sync"]), 1);
    assert_eq!(code(&["sync", "--fail-on", "never"]), 0);
    // A new problem fails once.
    unmapped_copy(&p, 1);
    let (c, r) = p.json(&["sync", "--fail-on", "new"]);
    // One new document, held for both targets: one new problem, as the report lists it.
    assert_eq!((c, r["new_problems"].as_u64()), (1, Some(1)));
    assert_eq!(code(&["sync", "--fail-on", "new"]), 0);
    // The job setting, and a bad value named with its line.
    let toml = p.read("facto.toml");
    p.write(
        "facto.toml",
        &toml.replace("name = \"demo\"", "name = \"demo\"\nfail_on = \"new\""),
    );
    assert_eq!(code(&["sync"]), 0);
    p.write(
        "facto.toml",
        &toml.replace(
            "name = \"demo\"",
            "name = \"demo\"\nfail_on = \"sometimes\"",
        ),
    );
    let out = p.run(&["sync"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("facto.toml:") && err.contains("sometimes"),
        "{err}"
    );
}

#[test]
fn mappings_check_fails_when_no_source_document_could_be_read() {
    let p = Project::demo();
    for e in std::fs::read_dir(p.path("examples/invoices")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    p.write("examples/invoices/broken.json", "{\"id\": \"x\",");
    let (code, v) = p.json(&["mappings", "check"]);
    assert_eq!(code, 1, "{v}");
    let job = &v["jobs"][0];
    assert_eq!(job["documents_scanned"], 0);
    let unreadable = job["unreadable"].as_array().unwrap();
    assert_eq!(unreadable.len(), 1);
    assert!(
        unreadable[0].as_str().unwrap().contains("broken.json"),
        "{v}"
    );
    let text = String::from_utf8(p.run(&["mappings", "check"]).stdout).unwrap();
    assert!(text.contains("no document could be read"), "{text}");
}

#[test]
fn preview_and_export_agree_on_the_skipped_counts() {
    let p = Project::demo();
    for t in ["chorus-files", "sales-fec"] {
        let period = ["--target", t, "--from", "2026-01-01", "--to", "2026-12-31"];
        let (_, preview) = p.json(&[&["preview"][..], &period].concat());
        let (_, export) = p.json(&[&["export"][..], &period].concat());
        assert_eq!(preview["skipped"], export["skipped"], "{t}");
    }
    // A delivered document cancelled later in the source is already delivered, not skipped.
    let p = Project::demo();
    assert_eq!(p.json(&["sync"]).0, 1);
    let f = "examples/invoices/inv-2026-0001.json";
    p.write(
        f,
        &p.read(f)
            .replace("\"status\": \"final\"", "\"status\": \"cancelled\""),
    );
    let period = [
        "--target",
        "sales-fec",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ];
    let (_, preview) = p.json(&[&["preview"][..], &period].concat());
    let (_, export) = p.json(&[&["export"][..], &period].concat());
    assert_eq!(preview["skipped"], export["skipped"]);
    assert!(preview["skipped"].get("cancelled").is_none(), "{preview}");
}

/// A Python with the `jsonschema` package (`.ci/run` installs it into target/fec-venv and sets
/// FACTO_SCHEMA_PYTHON), or `None` after saying "skipped" (a failure under CI=true).
fn python_with_jsonschema() -> Option<std::path::PathBuf> {
    let py = std::env::var_os("FACTO_SCHEMA_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "python3".into());
    let ok = std::process::Command::new(&py)
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    skip("no Python with the jsonschema package (.ci/run installs it into target/fec-venv)");
    None
}

/// Validates JSON files against schema/document.schema.json (draft 2020-12, formats checked);
/// returns (success, messages).
fn validate_documents(py: &std::path::Path, files: &[std::path::PathBuf]) -> (bool, String) {
    const CHECK: &str = r#"
import json, sys, jsonschema
V = jsonschema.Draft202012Validator
schema = json.load(open(sys.argv[1], encoding="utf-8"))
V.check_schema(schema)
v = V(schema, format_checker=V.FORMAT_CHECKER)
bad = 0
for f in sys.argv[2:]:
    data = json.load(open(f, encoding="utf-8"))
    for doc in data if isinstance(data, list) else [data]:
        for e in v.iter_errors(doc):
            bad += 1
            print(f, doc.get("id") if isinstance(doc, dict) else "", e.json_path, e.message[:300])
sys.exit(1 if bad else 0)
"#;
    let out = std::process::Command::new(py)
        .args(["-c", CHECK])
        .arg(repo().join("schema/document.schema.json"))
        .args(files)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn every_example_document_is_valid_against_the_published_schema() {
    let Some(py) = python_with_jsonschema() else {
        return;
    };
    fn walk(d: &std::path::Path, v: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, v);
            } else if p.extension().is_some_and(|x| x == "json") {
                v.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join("examples"), &mut files);
    assert!(files.len() > 40, "{files:?}");
    let (ok, msg) = validate_documents(&py, &files);
    assert!(ok, "{msg}");
    // The schema refuses what facto refuses: an amount as a JSON number, an unknown kind, a
    // missing total.
    let dir = tempfile::tempdir().unwrap();
    let good: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("examples/new-invoice.json")).unwrap())
            .unwrap();
    let mut bad = Vec::new();
    for (i, change) in [
        ("/totals/gross", serde_json::json!(1419.0)),
        ("/kind", serde_json::json!("quote")),
        ("/lines/0/quantity", serde_json::json!(1)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut v = good.clone();
        *v.pointer_mut(change.0).unwrap() = change.1;
        let f = dir.path().join(format!("bad{i}.json"));
        std::fs::write(&f, serde_json::to_vec(&v).unwrap()).unwrap();
        bad.push(f);
    }
    let mut v = good.clone();
    v["totals"].as_object_mut().unwrap().remove("due");
    let f = dir.path().join("bad-due.json");
    std::fs::write(&f, serde_json::to_vec(&v).unwrap()).unwrap();
    bad.push(f);
    for f in &bad {
        let (ok, msg) = validate_documents(&py, std::slice::from_ref(f));
        assert!(!ok, "{} should be invalid: {msg}", f.display());
    }
}

#[test]
fn the_document_schema_names_every_field_the_model_reads() {
    // Every field facto's model has (serialized from a document that uses them all) is
    // described in the schema and in docs/document-format.md.
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("examples/new-invoice.json")).unwrap())
            .unwrap();
    v["attachments"] = serde_json::json!([{"kind": "invoice_pdf", "path": "f.pdf"}]);
    v["buyer"]["delivery_address"] = v["buyer"]["billing_address"].clone();
    let doc = facto::model::parse_document(v, "new-invoice.json", 0).unwrap();
    let model = serde_json::to_value(&doc).unwrap();
    fn keys(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    out.insert(k.clone());
                    keys(x, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
            _ => {}
        }
    }
    fn properties(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Object(p)) = m.get("properties") {
                    out.extend(p.keys().cloned());
                }
                m.values().for_each(|x| properties(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| properties(x, out)),
            _ => {}
        }
    }
    let mut used = std::collections::BTreeSet::new();
    keys(&model, &mut used);
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("schema/document.schema.json")).unwrap())
            .unwrap();
    let mut described = std::collections::BTreeSet::new();
    properties(&schema, &mut described);
    let missing: Vec<_> = used.difference(&described).collect();
    assert!(missing.is_empty(), "not in the schema: {missing:?}");
    let doc_text = std::fs::read_to_string(repo().join("docs/document-format.md")).unwrap();
    let undocumented: Vec<_> = used
        .iter()
        .filter(|k| !doc_text.contains(&format!("`{k}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/document-format.md: {undocumented:?}"
    );
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains("docs/document-format.md")
            && readme.contains("schema/document.schema.json")
    );
}

// end of sections 7 and 8
