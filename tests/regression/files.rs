//! Secrets and files: attachments, paths built from data, file names, file modes, temp and cancelled files.

use crate::common::*;
use serde_json::Value;

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
    // A temp file of the rolled-back batch that the run did not record (an older version's, in
    // another folder of the target).
    let killed = std::fs::read_dir(p.path("out"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".facto-tmp"))
        .unwrap();
    p.write(&format!("out/older/{killed}"), "orphan");
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
    // The killed batch's temp file and the orphan; the run's other journal target may have
    // begun its own batch meanwhile (the killed one's writer thread paused, not the run).
    let before = temps(&p);
    assert!(
        before.len() >= 2 && before.iter().any(|t| t.contains("/older/")),
        "{before:?}"
    );
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
    assert_eq!(target(&r, "pennylane")["delivered"], 42, "{r}");
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

#[cfg(unix)]
#[test]
fn exports_download_writes_the_file_with_the_targets_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::demo();
    let csv = p.read("connectors/sales-csv.toml");
    p.write(
        "connectors/sales-csv.toml",
        &format!("{csv}\nfile_mode = \"0600\"\n"),
    );
    let (_, r) = p.json(&[
        "export",
        "--target",
        "sales-csv",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ]);
    let id = r["batches"][0]["id"].to_string();
    let dest = p.path("copy.csv");
    let out = p.run(&[
        "exports",
        "download",
        &id,
        "--out",
        &dest.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "not the umask's default");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_committed_before_a_kill_is_published_in_its_out_dir_from_any_folder() {
    let p = Project::demo();
    // Started the usual way (`--config facto.toml` from the config's folder), killed after the
    // ledger commit, before the file was renamed into place.
    kill_at(
        p.command(&["sync"]),
        "after-commit@sales-csv",
        &p.path("paused"),
    )
    .await;
    // Recovery runs elsewhere (cron, daemon) with the config's absolute path.
    let elsewhere = tempfile::tempdir().unwrap();
    let config = p.path("facto.toml").display().to_string();
    let mut c = p.command(&["--json", "--config", &config, "sync"]);
    c.current_dir(elsewhere.path());
    let (_, r, _) = json_of(c).await;
    assert!(
        r["recovery"]
            .to_string()
            .contains("written from the ledger"),
        "{r}"
    );
    let stray: Vec<_> = std::fs::read_dir(elsewhere.path())
        .unwrap()
        .flatten()
        .collect();
    assert!(stray.is_empty(), "written in the working folder: {stray:?}");
    let (_, list) = p.json(&["exports", "list"]);
    let list = list.as_array().unwrap();
    let b = list.iter().find(|b| b["target"] == "sales-csv").unwrap();
    let path = std::path::PathBuf::from(b["path"].as_str().unwrap());
    assert!(path.is_absolute(), "recorded relative: {}", path.display());
    assert!(path.starts_with(p.path("out")), "{}", path.display());
    assert_eq!(
        sha256(&std::fs::read(&path).unwrap()),
        b["sha256"].as_str().unwrap()
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_named_as_the_invoice_pdf_is_held_and_the_sync_finishes() {
    use crate::pennylane_sim::{Sim, TOKEN};
    let sim = Sim::start().await;
    let p = crate::pennylane_api::project(&sim, "");
    let made = std::process::Command::new("mkfifo")
        .arg(p.path("examples/invoices/pdf/pipe.pdf"))
        .status()
        .unwrap();
    assert!(made.success());
    let rel = "examples/invoices/inv-2026-0001.json";
    let mut v: Value = serde_json::from_str(&p.read(rel)).unwrap();
    v["attachments"] = serde_json::json!([{"kind": "invoice_pdf", "path": "pdf/pipe.pdf"}]);
    p.write(rel, &v.to_string());
    let mut c = p.command(&["--json", "sync"]);
    c.env("PENNYLANE_API_TOKEN", TOKEN)
        .stdout(std::fs::File::create(p.path("report.json")).unwrap())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    // Bounded: opening a FIFO for reading used to wait for a writer forever.
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the sync hung on the FIFO");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let r: Value = serde_json::from_str(&p.read("report.json")).unwrap();
    assert_eq!(status.code(), Some(1), "{r}");
    let problems = r["problems"].to_string();
    assert!(problems.contains("is not a regular file"), "{problems}");
    assert!(!sim.imports().contains_key("F2026-0001"));
}

#[test]
fn recovery_leaves_another_configurations_temp_files_in_a_shared_out_dir() {
    let p = Project::demo();
    let (_, r) = p.json(&["sync"]);
    let known = r["batches"][0]["id"].as_u64().unwrap();
    // Another configuration writes to the same folder: its temp files are in use right now.
    let theirs = [
        format!("out/.batch-{known:06}.facto-tmp"),
        "out/.batch-000777.facto-tmp".to_owned(),
        "out/.their-journal.txt.facto-tmp".to_owned(),
    ];
    for t in &theirs {
        p.write(t, "in progress");
    }
    // Every sync starts with the recovery's sweep.
    let (_, r) = p.json(&["sync"]);
    for t in &theirs {
        assert!(p.path(t).exists(), "{t} removed by recovery: {r}");
    }
    // Untouched for two hours, a temp named after this ledger's batch is a dead run's: removed.
    let stale = p.path(&theirs[0]);
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let (_, r) = p.json(&["sync"]);
    assert!(
        !stale.exists(),
        "a stale temp of this ledger's batch stays: {r}"
    );
    assert!(p.path(&theirs[1]).exists() && p.path(&theirs[2]).exists());
}

#[test]
fn a_batch_exported_with_a_relative_config_path_is_cancelled_from_the_configs_folder() {
    let p = Project::demo();
    // Exported from the parent folder with `--config <dir>/facto.toml` (a relative out_dir).
    let parent = p.dir.path().parent().unwrap();
    let rel_config = format!(
        "{}/facto.toml",
        p.dir.path().file_name().unwrap().to_string_lossy()
    );
    let mut c = p.command(&[
        "--json",
        "--config",
        &rel_config,
        "export",
        "--target",
        "sales-csv",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ]);
    c.current_dir(parent);
    let out = c.output().unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = &r["batches"][0];
    let path = parent.join(b["path"].as_str().unwrap());
    assert!(path.exists(), "{}", path.display());
    // Cancelled later from the config's own folder: the file is found and set aside.
    let out = p.run(&["exports", "cancel", &b["id"].to_string()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!path.exists(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_a_committed_batch_leaves_another_configurations_temp_file_of_that_name() {
    let p = Project::demo();
    kill_at(
        p.command(&["sync"]),
        "after-commit@sales-fec",
        &p.path("paused"),
    )
    .await;
    // The FEC batch's folder (`…_B000001`) is made before the commit; another configuration's
    // write named like that batch's temp file is in progress there.
    let folder = std::fs::read_dir(p.path("out"))
        .unwrap()
        .flatten()
        .find(|e| e.file_type().unwrap().is_dir())
        .unwrap()
        .path();
    let id = folder
        .to_string_lossy()
        .rsplit("_B")
        .next()
        .unwrap()
        .to_owned();
    let killed = format!(".batch-{id}.facto-tmp");
    assert!(p.path(&format!("out/{killed}")).exists());
    let theirs = folder.join(&killed);
    std::fs::write(&theirs, "in progress").unwrap();
    let (_, r) = p.json(&["sync"]);
    assert!(
        r["recovery"]
            .to_string()
            .contains("written from the ledger"),
        "{r}"
    );
    assert!(!p.path(&format!("out/{killed}")).exists(), "{r}");
    assert!(theirs.exists(), "removed: {r}");
}
