//! What the approved platform actually receives, through the official validation chain
//! (`../shared/reference/notes/fr-pa-flow-api.md` §11): every flow of a demo sync to the PA
//! simulator — routed, with BT-49 from the directory, the BAR note of its route, public buyers
//! through the PA (B2G) — in CII and in UBL, passes the XSD of its syntax (CII D22B, UBL 2.1),
//! the EN 16931 rules and the BR-FR rules with zero fatal findings.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::common::{self, json_of, with_json, Project};
use crate::pa_directory::line;
use crate::pa_sim::{parts, Sim, BEARER};

/// The Python with SaxonC-HE (`.ci/run` installs it), or `None` (a failure under CI=true).
pub fn saxon() -> Option<PathBuf> {
    let p = std::env::var_os("FACTO_SCHEMATRON_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::repo().join("target/fec-venv/bin/python"));
    let ok = Command::new(&p)
        .args(["-c", "import saxonche"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok && reference().exists() {
        return Some(p);
    }
    common::skip("the official rules need ../shared/reference and saxonche (.ci/run installs it)");
    None
}

fn reference() -> PathBuf {
    common::repo().join("../shared/reference")
}

/// Runs one schematron on files; panics with the findings when one is fatal.
pub fn rules(python: &Path, rules: &str, files: &[PathBuf]) {
    let out = Command::new(python)
        .arg(reference().join("france/run_schematron.py"))
        .arg(reference().join(rules))
        .args(files)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let checked = report.lines().filter(|l| l.starts_with("== ")).count();
    assert!(
        out.status.success() && checked == files.len(),
        "{rules}: {checked} of {} files checked:\n{report}\n{}",
        files.len(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The files of every flow the PA received, by name.
async fn received(sim: &Sim) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for q in sim.server.received_requests().await.unwrap_or_default() {
        if q.method.as_str() == "POST" && q.url.path().ends_with("/v1/flows") {
            let p = parts(&q);
            let info: serde_json::Value = serde_json::from_slice(&p["flowInfo"].1).unwrap();
            out.push((
                info["name"].as_str().unwrap().to_owned(),
                p["file"].1.clone(),
            ));
        }
    }
    out
}

/// A demo sync to the PA in `syntax`, public buyers through the PA, one buyer with several
/// directory lines (its facility's address is chosen): the files the PA received.
async fn sync(syntax: &str) -> Vec<(String, Vec<u8>)> {
    let sim = Sim::start().await;
    sim.state.lock().unwrap().directory.lines.insert(
        "528471931".into(),
        vec![
            line("528471931", "528471931_FACTURES", "Enabled"),
            json!({"addressingIdentifier": "528471931_52847193100014", "siren": "528471931",
                "siret": "52847193100014", "directoryLineStatus": "Enabled"}),
        ],
    );
    let p = Project::demo_with_target(
        "pa",
        &sim.bearer_connector(&format!("syntax = \"{syntax}\"\npublic_buyers = \"pa\"\n")),
    );
    let mut c = p.command(&with_json(&["sync"]));
    c.env("PA_TOKEN", BEARER);
    let (_, r, err) = json_of(c).await;
    let files = received(&sim).await;
    assert!(files.len() > 20, "{} flows: {r} {err}", files.len());
    let routes = String::from_utf8_lossy(
        &files
            .iter()
            .flat_map(|(_, b)| b.clone())
            .collect::<Vec<u8>>(),
    )
    .into_owned();
    assert!(routes.contains("B2B</") && routes.contains("528471931_52847193100014"));
    files
}

fn write(dir: &Path, files: &[(String, Vec<u8>)]) -> Vec<PathBuf> {
    files
        .iter()
        .map(|(name, bytes)| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_cii_flow_the_pa_receives_passes_xsd_d22b_en16931_and_br_fr() {
    let files = sync("cii").await;
    let Some(python) = saxon() else { return };
    if let Some(xsd) = common::xsd("cii-d22b/CrossIndustryInvoice_100pD22B.xsd") {
        common::xmllint(&xsd, &files);
    }
    let dir = tempfile::tempdir().unwrap();
    let paths = write(dir.path(), &files);
    rules(&python, "en16931-rules/EN16931-CII-validation.xslt", &paths);
    rules(
        &python,
        "france/rules/BR-FR-Flux2-Schematron-CII.xslt",
        &paths,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_ubl_flow_the_pa_receives_passes_xsd_en16931_and_br_fr() {
    let files = sync("ubl").await;
    let Some(python) = saxon() else { return };
    let (credit_notes, invoices): (Vec<_>, Vec<_>) = files
        .iter()
        .cloned()
        .partition(|(_, b)| String::from_utf8_lossy(b).contains("<CreditNote"));
    assert!(!credit_notes.is_empty() && !invoices.is_empty());
    if let Some(xsd) = common::xsd("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd") {
        common::xmllint(&xsd, &invoices);
    }
    if let Some(xsd) = common::xsd("ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd") {
        common::xmllint(&xsd, &credit_notes);
    }
    let dir = tempfile::tempdir().unwrap();
    let paths = write(dir.path(), &files);
    rules(&python, "en16931-rules/EN16931-UBL-validation.xslt", &paths);
    rules(
        &python,
        "france/rules/BR-FR-Flux2-Schematron-UBL.xslt",
        &paths,
    );
}

/// Lifecycle statuses (CDAR) the PA simulator received, through the official chain: the CDAR
/// D22B XSD, then the BR-FR-CDV rules, zero fatal findings.
pub fn cdar_chain_passes(files: &[(String, Vec<u8>)]) {
    if let Some(xsd) = common::xsd("cdar-d22b/CrossDomainAcknowledgementAndResponse_100pD22B.xsd") {
        common::xmllint(&xsd, files);
    }
    if let Some(python) = saxon() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, bytes)| {
                let path = dir.path().join(name);
                std::fs::write(&path, bytes).unwrap();
                path
            })
            .collect();
        rules(
            &python,
            "france/rules/BR-FR-CDV-Schematron-CDAR.xslt",
            &paths,
        );
    }
}
