//! Factur-X of every demo document: the XML inside is the CII writer's bytes, the output is
//! the same at every call, and (with the tools) an independent PDF library finds the Factur-X
//! structure and the official chain passes the XML it extracts.

use super::super::tests::demo;
use super::super::{InvoiceView, Profile, Syntax};
use super::*;

const FRENCH: Profile = Profile::FrenchCore {
    default_notes: true,
};

#[test]
fn every_demo_document_renders_to_a_deterministic_factur_x_carrying_its_cii() {
    for md in demo() {
        let v = InvoiceView::new(&md).with_profile(FRENCH);
        let cii = Syntax::Cii.render(&v);
        let pdf = render(&v, &cii).unwrap();
        assert!(pdf.starts_with(b"%PDF-1.7"), "{}", md.doc.id);
        assert_eq!(embedded_xml(&pdf).unwrap(), cii, "{}", md.doc.id);
        assert_eq!(
            render(&v, &cii).unwrap(),
            pdf,
            "{}: not deterministic",
            md.doc.id
        );
    }
}

/// A Python with saxonche (the schematrons), pikepdf and factur-x (the PDF checker); `None`
/// (said as skipped, a failure under `CI=true`) without one.
fn pdf_python() -> Option<std::path::PathBuf> {
    let python = super::super::schematron_tests::schematron_python()?;
    let ok = std::process::Command::new(&python)
        .args(["-c", "import pikepdf, facturx, fontTools, PIL.ImageCms"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        crate::test_skip::skip(
            "the Factur-X check needs pikepdf, factur-x and fonttools in the Python of the schematrons (.ci/run installs them)",
        );
        return None;
    }
    Some(python)
}

/// The FNFE's Factur-X sample (EN 16931), a fixture the check must accept.
fn fnfe_sample() -> std::path::PathBuf {
    super::super::schematron_tests::shared()
        .join("france/examples/UC1_F202500003_00-INV_20250701_EN16931_FX.pdf")
}

/// Runs the independent PDF checker on `pdfs` (`strict`: the information dictionary must say
/// what the XMP says); the XML it extracts from each lands in `out`.
fn check_pdfs(
    python: &std::path::Path,
    out: &std::path::Path,
    pdfs: &[std::path::PathBuf],
    strict: bool,
) {
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/check_facturx.py");
    let run = std::process::Command::new(python)
        .arg(script)
        .args(strict.then_some("--strict"))
        .arg(out)
        .args(pdfs)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success()
            && report.lines().filter(|l| l.starts_with("ok ")).count() == pdfs.len(),
        "{report}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn every_factur_x_passes_an_independent_pdf_check_and_its_xml_the_official_chain() {
    let Some(python) = pdf_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // `.ci/run` keeps them for inspection, beside the e-invoice corpus.
    let dir = std::env::var_os("FACTO_EINVOICE_OUT").map_or_else(
        || tmp.path().to_owned(),
        |d| std::path::PathBuf::from(d).join("facturx"),
    );
    let xml_dir = dir.join("extracted");
    std::fs::create_dir_all(&xml_dir).unwrap();
    let mut pdfs = vec![fnfe_sample()];
    for md in demo() {
        let v = InvoiceView::new(&md).with_profile(FRENCH);
        let cii = Syntax::Cii.render(&v);
        let path = dir.join(format!("{}.pdf", md.doc.id));
        std::fs::write(&path, render(&v, &cii).unwrap()).unwrap();
        pdfs.push(path);
    }
    // From a source's own PDF: an application's plain PDF, and another Factur-X (the FNFE's).
    for (name, source) in sources() {
        let md = &demo()[0];
        let v = InvoiceView::new(md).with_profile(FRENCH);
        let path = dir.join(format!("attached-{name}.pdf"));
        let pdf = attach(&source, &v, &Syntax::Cii.render(&v)).unwrap();
        std::fs::write(&path, pdf).unwrap();
        pdfs.push(path);
    }
    // The FNFE's sample disagrees with itself on its producer: only facto's are held to it.
    check_pdfs(&python, &xml_dir, &pdfs[..1], false);
    check_pdfs(&python, &xml_dir, &pdfs[1..], true);
    let xmls: Vec<std::path::PathBuf> = pdfs
        .iter()
        .map(|p| xml_dir.join(p.with_extension("xml").file_name().unwrap()))
        .collect();
    if let Some(xsd) =
        super::super::tests::schema_tools("cii-d22b/CrossIndustryInvoice_100pD22B.xsd")
    {
        super::super::tests::validate(&xsd, &xmls);
    }
    let mut failures = Vec::new();
    for rules in [
        "france/rules/facturx-en16931/FACTUR-X_EN16931.xslt",
        "france/rules/BR-FR-Flux2-Schematron-CII.xslt",
    ] {
        if let Err(e) = super::super::schematron_tests::run_rules(&python, rules, &xmls) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_long_invoice_flows_onto_several_pages_and_any_text_is_drawn_without_failing() {
    let mut md = demo().into_iter().next().unwrap();
    let (line, mapped) = (md.doc.lines[0].clone(), md.lines[0].clone());
    for i in 0..120 {
        let mut l = line.clone();
        l.description = format!(
            "Ligne {i} : 漢字 \u{0}\u{7} «guillemets» — œuvre {}",
            "x".repeat(i)
        );
        md.doc.lines.push(l);
        md.lines.push(mapped.clone());
    }
    md.doc.seller.name = "Société \u{202f}<&> \u{1F600}".into();
    let v = InvoiceView::new(&md).with_profile(FRENCH);
    let cii = Syntax::Cii.render(&v);
    let pdf = render(&v, &cii).unwrap();
    let doc = lopdf::Document::load_mem(&pdf).unwrap();
    assert!(
        doc.get_pages().len() >= 4,
        "{} pages",
        doc.get_pages().len()
    );
    assert_eq!(embedded_xml(&pdf).unwrap(), cii);
}

/// Invoice PDFs a source could give: an application's plain PDF (facto's drawing without any
/// of the Factur-X parts) and a Factur-X carrying another XML (the FNFE sample).
fn sources() -> Vec<(&'static str, Vec<u8>)> {
    let md = &demo()[1];
    let v = InvoiceView::new(md).with_profile(FRENCH);
    let mut plain = render::document(&v).unwrap();
    let mut bytes = Vec::new();
    plain.save_to(&mut bytes).unwrap();
    vec![
        ("plain", bytes),
        ("fnfe", std::fs::read(fnfe_sample()).unwrap_or_default()),
    ]
}

#[test]
fn a_source_pdf_gets_the_cii_attached_in_place_of_any_earlier_factur_x_xml() {
    let md = &demo()[0];
    let v = InvoiceView::new(md).with_profile(FRENCH);
    let cii = Syntax::Cii.render(&v);
    for (name, source) in sources() {
        if source.is_empty() {
            crate::test_skip::skip("the FNFE sample Factur-X is missing (../shared)");
            continue;
        }
        let pdf = attach(&source, &v, &cii).unwrap();
        assert_eq!(embedded_xml(&pdf).unwrap(), cii, "{name}");
        assert_eq!(
            attach(&source, &v, &cii).unwrap(),
            pdf,
            "{name}: not deterministic"
        );
        let doc = lopdf::Document::load_mem(&pdf).unwrap();
        let names = doc
            .catalog()
            .and_then(|c| c.get_deref(b"Names", &doc))
            .and_then(lopdf::Object::as_dict)
            .and_then(|n| n.get_deref(b"EmbeddedFiles", &doc))
            .and_then(lopdf::Object::as_dict)
            .and_then(|e| e.get(b"Names"))
            .and_then(lopdf::Object::as_array)
            .unwrap()
            .clone();
        let fx = names
            .iter()
            .filter(|n| n.as_str().is_ok_and(|s| s == XML_NAME.as_bytes()))
            .count();
        assert_eq!(fx, 1, "{name}: one factur-x.xml");
        // A PDF/A source keeps its own output intent; a plain one gets facto's sRGB.
        let icc = |doc: &lopdf::Document| {
            let intents = doc
                .catalog()
                .unwrap()
                .get(b"OutputIntents")
                .unwrap()
                .clone();
            let first = doc.dereference(&intents.as_array().unwrap()[0]).unwrap().1;
            let profile = first.as_dict().unwrap().get(b"DestOutputProfile").unwrap();
            let stream = doc.dereference(profile).unwrap().1.as_stream().unwrap();
            stream.decompressed_content().unwrap()
        };
        let source_doc = lopdf::Document::load_mem(&source).unwrap();
        if name == "fnfe" {
            assert_eq!(icc(&doc), icc(&source_doc), "the sample's own intent");
        } else {
            assert_eq!(icc(&doc), super::pdfa::srgb_icc());
        }
        assert_eq!(
            doc.get_pages().len(),
            lopdf::Document::load_mem(&source)
                .unwrap()
                .get_pages()
                .len(),
            "{name}: the pages are the source's"
        );
    }
    for bad in [b"not a pdf".as_slice(), b"%PDF-1.7\n%%EOF\n"] {
        let e = attach(bad, &v, &cii).unwrap_err();
        assert!(matches!(e, FacturxError::Unreadable(_)), "{e}");
    }
}

#[test]
fn a_damaged_source_pdf_is_refused_or_attached_never_a_panic() {
    use proptest::strategy::{Strategy, ValueTree};
    let md = &demo()[0];
    let v = InvoiceView::new(md).with_profile(FRENCH);
    let cii = Syntax::Cii.render(&v);
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for (_, source) in sources().into_iter().filter(|(_, s)| !s.is_empty()) {
        let edits = proptest::collection::vec((0..source.len(), proptest::num::u8::ANY), 1..8);
        for _ in 0..300 {
            let mut damaged = source.clone();
            for (at, b) in edits.new_tree(&mut runner).unwrap().current() {
                damaged[at] = b;
            }
            let cut = damaged.len() - (damaged[0] as usize * 97) % damaged.len();
            for bytes in [&damaged[..], &damaged[..cut]] {
                if let Ok(pdf) = attach(bytes, &v, &cii) {
                    assert_eq!(embedded_xml(&pdf).unwrap(), cii);
                }
            }
        }
    }
}

#[test]
fn any_text_in_any_field_renders_a_factur_x_that_passes_the_pdf_check() {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(
        proptest::option::weighted(0.3, super::super::tests::any_text()),
        40,
    );
    let docs = demo();
    let tmp = tempfile::tempdir().unwrap();
    let mut pdfs = Vec::new();
    for case in 0..40 {
        let texts = strategy.new_tree(&mut runner).unwrap().current();
        let mut md = docs[case % docs.len()].clone();
        super::super::tests::fill_text_fields(&mut md.doc, &texts);
        let v = InvoiceView::new(&md).with_profile(FRENCH);
        let cii = Syntax::Cii.render(&v);
        let pdf = render(&v, &cii).unwrap();
        assert_eq!(embedded_xml(&pdf).unwrap(), cii, "case {case}");
        let path = tmp.path().join(format!("case-{case}.pdf"));
        std::fs::write(&path, pdf).unwrap();
        pdfs.push(path);
    }
    let Some(python) = pdf_python() else {
        return;
    };
    check_pdfs(&python, &tmp.path().join("xml"), &pdfs, true);
}
