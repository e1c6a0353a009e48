//! Factur-X through the real binary: an `afnor-pa` connector with `syntax = "facturx"` sends
//! each invoice as a PDF (`<number>.pdf`, `application/pdf`, `flowSyntax` Factur-X) whose
//! `factur-x.xml` is byte for byte the CII the same connector sends with `syntax = "cii"`; the
//! PDFs pass the independent checker (pikepdf, factur-x) when it is installed.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use crate::common::{self, json_of, target, with_json, Project};
use crate::pa_sim::{parts, Sim, CLIENT_ID, CLIENT_SECRET};

const T: &str = "pa";

/// The FNFE's sample Factur-X, as the invoice PDF a source gives, or `None` without ../shared.
fn sample_pdf() -> Option<Vec<u8>> {
    let p = common::repo()
        .join("../shared/reference/france/examples/UC1_F202500003_00-INV_20250701_EN16931_FX.pdf");
    let pdf = std::fs::read(&p).ok();
    if pdf.is_none() {
        common::skip(&format!("{} is missing", p.display()));
    }
    pdf
}

/// Gives a demo document an invoice PDF (in the source's folder) with these bytes.
fn give_pdf(p: &Project, id: &str, bytes: &[u8]) {
    let rel = format!("examples/invoices/{id}.json");
    let mut doc = p.read_json(&rel);
    let pdf = format!("pdf/{id}.pdf");
    doc["attachments"] = serde_json::json!([{"kind": "invoice_pdf", "path": pdf}]);
    p.write_json(&rel, &doc);
    std::fs::create_dir_all(p.path("examples/invoices/pdf")).unwrap();
    std::fs::write(p.path(&format!("examples/invoices/{pdf}")), bytes).unwrap();
}

/// Syncs the demo to a fresh simulator with `extra` in the connector, after `prepare`; the
/// report and the flows it received: trackingId → (flowInfo, file part headers, file).
async fn flows(
    extra: &str,
    prepare: impl FnOnce(&Project),
) -> (Value, BTreeMap<String, (Value, String, Vec<u8>)>) {
    let sim = Sim::start().await;
    let p = Project::demo_with_target(T, &sim.connector(extra));
    prepare(&p);
    let mut cmd = p.command(&with_json(&["sync"]));
    cmd.env("PA_CLIENT_ID", CLIENT_ID)
        .env("PA_CLIENT_SECRET", CLIENT_SECRET);
    let (_, r, err) = json_of(cmd).await;
    let delivered = target(&r, T)["delivered"].as_u64().unwrap_or(0);
    assert!(delivered > 0, "{r} {err}");
    common::assert_once(&sim.created(), delivered as usize, "sent");
    let mut out = BTreeMap::new();
    for req in sim.server.received_requests().await.unwrap_or_default() {
        if req.method.as_str() != "POST" || !req.url.path().ends_with("/v1/flows") {
            continue;
        }
        let parts = parts(&req);
        let info: Value = serde_json::from_slice(&parts["flowInfo"].1).unwrap();
        let (head, file) = parts["file"].clone();
        let tracking = info["trackingId"].as_str().unwrap().to_owned();
        out.insert(tracking, (info, head, file));
    }
    assert_eq!(out.len() as u64, delivered);
    (r, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_facturx_connector_sends_pdfs_whose_attachment_is_the_cii() {
    let (_, cii) = flows("", |_| {}).await;
    // One invoice comes with its own PDF (the FNFE's Factur-X stands for an application's), one
    // with a file that is no PDF: that one is held, named, and nothing of it is sent.
    let sample = sample_pdf();
    let (report, fx) = flows("syntax = \"facturx\"\n", |p| {
        if let Some(pdf) = &sample {
            give_pdf(p, "inv-2026-0001", pdf);
        }
        give_pdf(p, "inv-2026-0002", b"%PDF-1.4 truncated");
    })
    .await;
    let held = common::problems_of(&report, "inv-2026-0002");
    assert!(
        held.iter().any(|p| p["field"] == "attachments"
            && p["reason"]
                .as_str()
                .unwrap_or("")
                .contains("cannot be read")),
        "{report}"
    );
    assert_eq!(fx.len() + 1, cii.len());
    assert!(fx.keys().all(|k| cii.contains_key(k)));
    if let Some(sample) = &sample {
        let own = fx
            .values()
            .find(|(info, _, _)| info["name"] == "F2026-0001.pdf")
            .map(|(_, _, pdf)| lopdf_pages(pdf));
        assert_eq!(
            own,
            Some(lopdf_pages(sample)),
            "the source's pages are sent"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut pdfs = Vec::new();
    for (tracking, (info, head, pdf)) in &fx {
        assert_eq!(info["flowSyntax"], "Factur-X", "{info}");
        let name = info["name"].as_str().unwrap();
        assert!(name.ends_with(".pdf") && !name.contains("CII"), "{name}");
        assert!(
            head.to_ascii_lowercase().contains("application/pdf"),
            "{head}"
        );
        assert!(pdf.starts_with(b"%PDF-1.7"), "{name}");
        let xml = facto::einvoice::facturx::embedded_xml(pdf).unwrap();
        assert_eq!(
            xml, cii[tracking].2,
            "{name}: the attachment is not the CII flow"
        );
        let path = tmp.path().join(name);
        std::fs::write(&path, pdf).unwrap();
        pdfs.push(path);
    }
    // Independently of facto's PDF code, when the checker is there (always in CI).
    let Some(python) = facturx_python() else {
        return;
    };
    let out = common::tool_ok(
        Command::new(python)
            .arg(common::repo().join("tests/tools/check_facturx.py"))
            .arg("--strict")
            .arg(tmp.path().join("xml"))
            .args(&pdfs),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok ")).count(),
        pdfs.len(),
        "{report}"
    );
    for (tracking, (info, _, _)) in &fx {
        let stem = info["name"].as_str().unwrap().trim_end_matches(".pdf");
        let extracted = std::fs::read(tmp.path().join("xml").join(format!("{stem}.xml"))).unwrap();
        assert_eq!(extracted, cii[tracking].2, "{stem}");
    }
}

/// The Python of the schematrons with pikepdf and factur-x (`.ci/run` installs them), or
/// `None` (a failure under CI=true).
fn facturx_python() -> Option<std::path::PathBuf> {
    let p = std::env::var_os("FACTO_SCHEMATRON_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| common::repo().join("target/fec-venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import pikepdf, facturx, fontTools, PIL.ImageCms"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(p);
    }
    common::skip(
        "the Factur-X checker needs pikepdf, factur-x and fonttools (.ci/run installs them)",
    );
    None
}

/// The number of pages of a PDF.
fn lopdf_pages(pdf: &[u8]) -> usize {
    lopdf::Document::load_mem(pdf).unwrap().get_pages().len()
}
