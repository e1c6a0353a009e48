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

/// Syncs the demo to a fresh simulator with `extra` in the connector; the flows it received:
/// trackingId → (flowInfo, file part headers, file).
async fn flows(extra: &str) -> BTreeMap<String, (Value, String, Vec<u8>)> {
    let sim = Sim::start().await;
    let p = Project::demo_with_target(T, &sim.connector(extra));
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
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_facturx_connector_sends_pdfs_whose_attachment_is_the_cii() {
    let cii = flows("").await;
    let fx = flows("syntax = \"facturx\"\n").await;
    assert_eq!(
        fx.keys().collect::<Vec<_>>(),
        cii.keys().collect::<Vec<_>>()
    );
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
        .args(["-c", "import pikepdf, facturx"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(p);
    }
    common::skip("the Factur-X checker needs pikepdf and factur-x (.ci/run installs them)");
    None
}
