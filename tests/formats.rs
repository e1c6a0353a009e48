//! Every accounting package's layout through the real binary on the demo data: the export
//! lifecycle per format (export, nothing twice, only what is new, cancel then all again,
//! download of the exact bytes), fixed widths on real output, and an account too wide for one
//! layout held back for that layout only.

use crate::common::{target, Project};

/// (connector, record length in bytes without EOL for fixed-width layouts, line ending).
const FORMATS: [(&str, Option<usize>, &str); 7] = [
    ("sales-quadratus", Some(231), "\r\n"),
    ("sales-ebp", None, "\r\n"),
    ("sales-acd", None, "\r\n"),
    ("sales-agiris", None, "\n"),
    ("sales-coala", None, "\n"),
    ("sales-ciel", Some(142), "\r\n"),
    ("sales-cegid", None, "\n"),
];

fn q1<'a>(cmd: &'a str, t: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        cmd,
        "--target",
        t,
        "--from",
        "2026-01-01",
        "--to",
        "2026-03-31",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn every_format_goes_through_the_export_lifecycle() {
    let p = Project::demo();
    for (i, (t, width, eol)) in FORMATS.iter().enumerate() {
        // Preview: the count line of the users' export screen.
        let human = String::from_utf8(p.run(&q1("preview", t, &[])).stdout).unwrap();
        let (_, pv) = p.json(&q1("preview", t, &[]));
        let n = pv["targets"][0]["to_transfer"].as_u64().unwrap();
        assert!(n > 10, "{t}: {pv}");
        assert!(
            human.contains(&format!("{n} to export of {n} documents in the period")),
            "{t}: {human}"
        );

        let (code, r) = p.json(&q1("export", t, &[]));
        assert_eq!(code, 0, "{t}: {r}");
        assert_eq!(target(&r, t)["delivered"], n, "{t}");
        let batch = &r["batches"][0];
        let id = batch["id"].as_u64().unwrap().to_string();
        let path = p.path(batch["path"].as_str().unwrap());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if *t == "sales-ciel" {
            assert_eq!(name, "XIMPORT.TXT");
        } else {
            assert!(name.contains("_VE_20260101_20260331_B"), "{t}: {name}");
        }
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.ends_with(eol.as_bytes()), "{t}");
        let records: Vec<&[u8]> = bytes[..bytes.len() - eol.len()]
            .split(|b| *b == b'\n')
            .collect();
        assert!(
            records.len() as u64 >= 3 * n,
            "{t}: three lines or more per entry"
        );
        let crs = bytes.iter().filter(|b| **b == b'\r').count();
        let lfs = bytes.iter().filter(|b| **b == b'\n').count();
        assert_eq!(
            crs,
            if *eol == "\r\n" { lfs } else { 0 },
            "{t}: line endings"
        );
        for rec in &records {
            let rec = rec.strip_suffix(b"\r").unwrap_or(rec);
            if let Some(w) = width {
                assert_eq!(rec.len(), *w, "{t}: {:?}", String::from_utf8_lossy(rec));
            }
        }
        // UTF-8 never reaches these files: the Windows packages read Windows-1252, Quadra ASCII.
        assert!(
            std::str::from_utf8(&bytes).is_err() || bytes.is_ascii(),
            "{t}"
        );

        // Again: nothing.
        let (code, r) = p.json(&q1("export", t, &[]));
        assert_eq!(code, 0);
        assert!(r["batches"].as_array().unwrap().is_empty(), "{t}: {r}");
        assert_eq!(target(&r, t)["already_delivered"], n);

        // A document added to the period: only it (numbering continues).
        let mut doc: serde_json::Value =
            serde_json::from_str(&p.read("examples/new-invoice.json")).unwrap();
        doc["id"] = serde_json::json!(format!("late-{i}"));
        doc["number"] = serde_json::json!(format!("F2026-09{i:02}"));
        doc["issue_date"] = serde_json::json!("2026-03-30");
        p.write(
            &format!("examples/invoices/late-{i}.json"),
            &doc.to_string(),
        );
        let (_, r2) = p.json(&q1("export", t, &[]));
        assert_eq!(r2["batches"][0]["documents"], 1, "{t}: {r2}");
        let late = std::fs::read(p.path(r2["batches"][0]["path"].as_str().unwrap())).unwrap();
        assert!(
            String::from_utf8_lossy(&late).contains(&format!("F2026-09{i:02}")),
            "{t}"
        );

        // Cancel the first batch: the next export holds its documents again, with the late
        // ones of earlier formats' loops, but not this loop's (still in its active batch).
        let (code, c) = p.json(&["exports", "cancel", &id]);
        assert_eq!(code, 0, "{t}: {c}");
        assert_eq!(c["released"], n);
        let (_, r3) = p.json(&q1("export", t, &[]));
        assert_eq!(target(&r3, t)["delivered"], n, "{t}: {r3}");

        // Download: the exact bytes first produced, though the file is gone.
        // Cancel renamed the file aside (`….cancelled`); it is gone too.
        assert!(!path.exists(), "{t}");
        std::fs::remove_file(format!("{}.cancelled", path.display())).unwrap();
        let out = p.run(&["exports", "download", &id, "--out", "-"]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(out.stdout, bytes, "{t}");
    }
    let (_, list) = p.json(&["exports", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 3 * FORMATS.len());
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["status"] == "active" || b["status"] == "cancelled"));
}

#[test]
fn an_account_too_wide_for_a_layout_is_held_for_that_layout_only() {
    let p = Project::demo();
    let m = p
        .read("mappings/pcg-demo.toml")
        .replace("aux = \"CDUPONT\"", "aux = \"CDUPONTSARL\"");
    p.write("mappings/pcg-demo.toml", &m);

    // Quadratus holds 8 characters: Dupont's documents wait, with the customer and the fix.
    let (_, pv) = p.json(&q1("preview", "sales-quadratus", &[]));
    let rows = pv["targets"][0]["rows"].as_array().unwrap();
    let held: Vec<&serde_json::Value> = rows.iter().filter(|r| r["status"] == "held").collect();
    assert!(!held.is_empty(), "{pv}");
    assert!(held.iter().all(|r| r["customer"] == "Dupont SARL"));
    let detail = held[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("CDUPONTSARL") && detail.contains("C001") && detail.contains("8"),
        "{detail}"
    );
    let (code, r) = p.json(&q1("export", "sales-quadratus", &[]));
    assert_eq!(code, 1, "held documents make exit code 1: {r}");
    assert_eq!(target(&r, "sales-quadratus")["held"], held.len() as u64);
    let text = std::fs::read_to_string(p.path(r["batches"][0]["path"].as_str().unwrap())).unwrap();
    assert!(!text.contains("CDUPONT"));

    // Ciel holds 11: the same documents go.
    let (code, r) = p.json(&q1("export", "sales-ciel", &[]));
    assert_eq!(code, 0, "{r}");
    assert_eq!(target(&r, "sales-ciel")["held"], 0);

    // A journal code wider than the layout's field is refused before anything is written.
    let out = p.run(&q1(
        "export",
        "sales-ciel",
        &["--journal", "VTE", "--include-exported"],
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 characters"));

    // Fixing the mapping releases them on the next export.
    let m = m.replace("aux = \"CDUPONTSARL\"", "aux = \"CDUPONT\"");
    p.write("mappings/pcg-demo.toml", &m);
    let (code, r) = p.json(&q1("export", "sales-quadratus", &[]));
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["batches"][0]["documents"], held.len() as u64);
}

#[test]
fn a_job_can_post_to_its_own_journal_and_unknown_targets_are_named() {
    let p = Project::demo();
    let cfg = p.read("facto.toml").replace(
        "mapping = \"pcg-demo\"",
        "mapping = \"pcg-demo\"\njournal = \"VT\"\njournal_label = \"Ventes boutique\"",
    );
    p.write("facto.toml", &cfg);
    let (code, r) = p.json(&q1("export", "sales-coala", &[]));
    assert_eq!(code, 0, "{r}");
    let text = std::fs::read_to_string(p.path(r["batches"][0]["path"].as_str().unwrap())).unwrap();
    assert!(
        text.lines().all(|l| l.split(';').nth(1) == Some("VT")),
        "{text}"
    );
    let (_, r) = p.json(&q1("export", "sales-fec", &[]));
    let fec = std::fs::read(p.path(r["batches"][0]["path"].as_str().unwrap())).unwrap();
    assert!(String::from_utf8_lossy(&fec).contains("VT\tVentes boutique\tVT000001\t"));

    let out = p.run(&q1("export", "nowhere", &[]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nowhere") && err.contains("sales-fec"),
        "{err}"
    );
    let out = p.run(&q1("export", "demo-invoices", &[]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a journal-file target"));
}
