//! The official CEN EN 16931 validation rules (schematrons compiled to XSLT 2.0, in
//! `../shared/reference/en16931-rules/`) run on every document the test corpus produces, in both
//! syntaxes, through `../shared/reference/france/run_schematron.py` (SaxonC-HE from PyPI, no
//! JVM). Zero fatal findings; every finding is printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::tests::demo;
use super::*;
use crate::checks::prepare;
use crate::mapping::tests::{mapping, worked_credit_note, worked_invoice};

pub(crate) fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference")
}

/// A Python with `saxonche`: `FACTO_SCHEMATRON_PYTHON`, else the venv `.ci/run` fills, else
/// `python3`. `None` (said on stderr) when there is none or `../shared` is missing; under
/// `CI=true` that is a failure.
pub(crate) fn schematron_python() -> Option<PathBuf> {
    let script = shared().join("france/run_schematron.py");
    let candidates: Vec<PathBuf> = match std::env::var_os("FACTO_SCHEMATRON_PYTHON") {
        Some(p) => vec![PathBuf::from(p)],
        None => vec![
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fec-venv/bin/python"),
            PathBuf::from("python3"),
        ],
    };
    let python = candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import saxonche"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let why = match (&python, script.exists()) {
        (Some(_), true) => return python,
        (_, false) => format!("{} is missing", script.display()),
        (None, true) => "no Python with saxonche (.ci/run installs it into target/fec-venv; or set FACTO_SCHEMATRON_PYTHON)".to_owned(),
    };
    crate::test_skip::skip(&format!("the EN 16931 schematrons cannot run: {why}"));
    None
}

/// Runs one compiled schematron of the EN 16931 rules on files; the report of every finding when
/// one is fatal.
fn run(python: &Path, rules: &str, files: &[PathBuf]) -> Result<(), String> {
    run_rules(python, &format!("en16931-rules/{rules}"), files)
}

/// Runs one compiled schematron (`rules`, under `../shared/reference`) on files; the report of
/// every finding when one is fatal.
pub(crate) fn run_rules(python: &Path, rules: &str, files: &[PathBuf]) -> Result<(), String> {
    let out = Command::new(python)
        .arg(shared().join("france/run_schematron.py"))
        .arg(shared().join(rules))
        .args(files)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let checked = report.lines().filter(|l| l.starts_with("== ")).count();
    if out.status.success() && checked == files.len() {
        return Ok(());
    }
    let findings: Vec<&str> = report
        .lines()
        .filter(|l| !l.ends_with(": 0 fatal, 0 other"))
        .collect();
    Err(format!(
        "{rules}: {checked} of {} files checked, fatal findings:\n{}\n{}",
        files.len(),
        findings.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The documents written for the schematrons, per syntax.
#[derive(Default)]
struct Written {
    ubl: Vec<PathBuf>,
    cii: Vec<PathBuf>,
}

impl Written {
    /// Writes one document in both syntaxes, as `<name>.ubl.xml` and `<name>.cii.xml` in `dir`.
    fn add(&mut self, dir: &Path, name: &str, v: &InvoiceView<'_>) {
        let u = dir.join(format!("{name}.ubl.xml"));
        std::fs::write(&u, ubl::render(v)).unwrap();
        self.ubl.push(u);
        let c = dir.join(format!("{name}.cii.xml"));
        std::fs::write(&c, cii::render(v)).unwrap();
        self.cii.push(c);
    }

    /// Runs the official rules of each syntax on its documents: no fatal finding.
    fn assert_pass(&self, python: &Path) {
        let ubl = run(python, "EN16931-UBL-validation.xslt", &self.ubl);
        let cii = run(python, "EN16931-CII-validation.xslt", &self.cii);
        assert!(
            ubl.is_ok() && cii.is_ok(),
            "{}",
            [ubl, cii].map(|r| r.err().unwrap_or_default()).join("\n")
        );
    }
}

#[test]
fn every_corpus_document_passes_the_en16931_schematrons_in_ubl_and_cii() {
    let Some(python) = schematron_python() else {
        return;
    };
    // What facto writes as UBL or CII: documents that pass mapping, checks and its own EN 16931
    // rules (the unit tests' bare worked examples lack addresses, so they are held there).
    let mut docs = demo();
    for d in [worked_invoice(), worked_credit_note()] {
        let md = prepare(&d, &mapping()).unwrap();
        if rules::en16931(&InvoiceView::new(&md)).is_empty() {
            docs.push(md);
        }
    }
    assert!(docs.len() >= 40, "{}", docs.len());
    let tmp = tempfile::tempdir().unwrap();
    // `.ci/run` keeps the documents for inspection.
    let dir =
        std::env::var_os("FACTO_EINVOICE_OUT").map_or_else(|| tmp.path().to_owned(), PathBuf::from);
    std::fs::create_dir_all(&dir).unwrap();
    let mut written = Written::default();
    for md in &docs {
        written.add(&dir, &md.doc.id, &InvoiceView::new(md));
    }
    written.assert_pass(&python);
}

#[test]
fn any_text_in_any_field_is_held_by_facto_or_passes_the_en16931_schematrons() {
    use proptest::strategy::{Strategy, ValueTree};
    let Some(python) = schematron_python() else {
        return;
    };
    // Each text field of a demo document takes, now and then, any text (control characters,
    // markup, blanks, `#XYZ#`): facto's own rules hold the document, or the official rules
    // find nothing fatal in what it writes.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(
        proptest::option::weighted(0.15, super::tests::any_text()),
        40,
    );
    let tmp = tempfile::tempdir().unwrap();
    let docs = demo();
    let mut written = Written::default();
    for case in 0..120 {
        let texts = strategy.new_tree(&mut runner).unwrap().current();
        let mut md = docs[case % docs.len()].clone();
        super::tests::fill_text_fields(&mut md.doc, &texts);
        let v = InvoiceView::new(&md);
        if !rules::en16931(&v).is_empty() {
            continue;
        }
        written.add(tmp.path(), &case.to_string(), &v);
    }
    assert!(
        written.ubl.len() >= 40,
        "only {} documents passed facto's rules",
        written.ubl.len()
    );
    written.assert_pass(&python);
}

/// Lifecycle statuses (CDAR) through the official chain: the CDAR D22B XSD, then the BR-FR-CDV
/// rules, zero fatal findings (each step says "skipped" when its tools are absent, and fails
/// under `CI=true`).
pub(crate) fn cdar_chain_passes(files: &[PathBuf]) {
    use crate::einvoice::tests::{schema_tools, validate};
    if let Some(xsd) = schema_tools("cdar-d22b/CrossDomainAcknowledgementAndResponse_100pD22B.xsd")
    {
        validate(&xsd, files);
    }
    if let Some(python) = schematron_python() {
        run_rules(
            &python,
            "france/rules/BR-FR-CDV-Schematron-CDAR.xslt",
            files,
        )
        .unwrap_or_else(|report| panic!("{report}"));
    }
}
