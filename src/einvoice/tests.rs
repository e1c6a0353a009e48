//! Tests of the e-invoice writers: every demo document as UBL, validated against the official
//! UBL 2.1 schemas with xmllint, and snapshots of the note's worked example.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::checks::prepare;
use crate::mapping::tests::{mapping, worked_invoice};
use crate::mapping::Mapping;
use crate::model::parse_document;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The CII schemas every document facto writes is valid against: D16B (Chorus Pro's) and D22B
/// (the French core's, as the approved platforms validate it).
const CII_SCHEMAS: [&str; 2] = [
    "cii-d16b/data/standard/CrossIndustryInvoice_100pD16B.xsd",
    "cii-d22b/CrossIndustryInvoice_100pD22B.xsd",
];

/// The official schemas in `../shared/reference/xsd`, and xmllint; `None` (with a message) when
/// either is missing outside CI. CI always has both: there their absence fails the test.
pub(crate) fn schema_tools(xsd: &str) -> Option<PathBuf> {
    let path = repo().join("../shared/reference/xsd").join(xsd);
    let xmllint = Command::new("xmllint").arg("--version").output().is_ok();
    if path.exists() && xmllint {
        return Some(path);
    }
    let why = format!(
        "schema validation needs xmllint (Debian package libxml2-utils) and {}",
        path.display()
    );
    crate::test_skip::skip(&why);
    None
}

/// Validates files against a schema; panics with xmllint's own messages.
pub(crate) fn validate(xsd: &Path, files: &[PathBuf]) {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd)
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The demo's documents that pass mapping and checks.
pub(super) fn demo() -> Vec<crate::mapping::MappedDocument> {
    let m = Mapping::load(
        &repo().join("mappings/pcg-demo.toml"),
        crate::config::MAPPING_KEYS,
    )
    .unwrap();
    let mut docs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(repo().join("examples/invoices"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let values = match v {
            serde_json::Value::Array(a) => a,
            v => vec![v],
        };
        for (i, v) in values.into_iter().enumerate() {
            if let Ok(doc) = parse_document(v, "t", i) {
                if doc.status == crate::model::DocStatus::Final {
                    if let Ok(md) = prepare(&doc, &m) {
                        docs.push(md);
                    }
                }
            }
        }
    }
    docs
}

#[test]
fn every_demo_document_is_valid_ubl_and_cii() {
    let docs = demo();
    assert!(docs.len() >= 40, "{}", docs.len());
    let dir = tempfile::tempdir().unwrap();
    let (mut invoices, mut credit_notes) = (Vec::new(), Vec::new());
    for md in &docs {
        let v = InvoiceView::new(md);
        let p = dir.path().join(format!("{}.xml", md.doc.id));
        std::fs::write(&p, ubl::render(&v)).unwrap();
        if v.is_credit_note() {
            credit_notes.push(p);
        } else {
            invoices.push(p);
        }
    }
    assert!(!credit_notes.is_empty());
    let cii: Vec<PathBuf> = docs
        .iter()
        .map(|md| {
            let p = dir.path().join(format!("{}.cii.xml", md.doc.id));
            std::fs::write(&p, cii::render(&InvoiceView::new(md))).unwrap();
            p
        })
        .collect();
    for schema in CII_SCHEMAS {
        if let Some(xsd) = schema_tools(schema) {
            validate(&xsd, &cii);
        }
    }
    if let Some(xsd) = schema_tools("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd") {
        validate(&xsd, &invoices);
    }
    if let Some(xsd) = schema_tools("ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd") {
        validate(&xsd, &credit_notes);
    }
}

#[test]
fn vat_breakdown_takes_the_documents_vat_per_rate() {
    let md = prepare(&worked_invoice(), &mapping()).unwrap();
    let v = InvoiceView::new(&md);
    let rows: Vec<(String, String, String)> = v
        .vat
        .iter()
        .map(|r| (number(r.rate), amount(r.base), amount(r.amount)))
        .collect();
    assert_eq!(
        rows,
        [
            ("20".into(), "1000.00".into(), "200.00".into()),
            ("5.5".into(), "150.00".into(), "8.25".into())
        ]
    );
}

#[test]
fn representative_documents_snapshots() {
    // F2026-0004: a public buyer (Chorus Pro) with service code, engagement number, delivery
    // address, discounts and exempt lines; A2026-0003: its credit note; F2026-0005: reverse charge.
    let docs = demo();
    for number in ["F2026-0004", "A2026-0003", "F2026-0005"] {
        let md = docs.iter().find(|d| d.doc.number == number).unwrap();
        let xml = String::from_utf8(ubl::render(&InvoiceView::new(md))).unwrap();
        insta::assert_snapshot!(format!("ubl_{number}"), xml);
        let xml = String::from_utf8(cii::render(&InvoiceView::new(md))).unwrap();
        insta::assert_snapshot!(format!("cii_{number}"), xml);
    }
}

#[test]
fn demo_documents_pass_the_business_rules() {
    let docs = demo();
    let mut chorus = 0;
    for md in &docs {
        let v = InvoiceView::new(md);
        assert_eq!(rules::en16931(&v), vec![], "{}", md.doc.number);
        if crate::route::of(&md.doc) == Some(crate::route::Route::ChorusB2g) {
            chorus += 1;
            let codes: Vec<String> = rules::chorus(&v).into_iter().map(|p| p.code).collect();
            // The demo's one Chorus anomaly: a purchase order beside the engagement number.
            let expected: &[&str] = match md.doc.number.as_str() {
                "F2026-0004" => &["CHORUS-EJ-OR-PO"],
                _ => &[],
            };
            assert_eq!(codes, expected, "{}", md.doc.number);
        }
    }
    assert!(chorus >= 3, "{chorus} public-buyer documents in the demo");
}

/// Any text: every character, biased towards what XML forbids or must escape.
pub(super) fn any_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop::collection::vec(
        prop_oneof![
            any::<char>(),
            (0u32..0x20).prop_map(|u| char::from_u32(u).unwrap_or(' ')),
            prop::sample::select(vec![
                '\u{FFFE}', '\u{FFFF}', '\u{7F}', '\u{85}', '<', '>', '&', '"', '\'', ']',
                '\u{2028}',
            ]),
        ],
        0..12,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// Puts the texts of `t` (cycled) into the free-text fields of the document, in order; a `None`
/// leaves its field as it is.
pub(super) fn fill_text_fields(doc: &mut crate::model::Document, t: &[Option<String>]) {
    let mut it = t.iter().cycle().cloned();
    let mut next = move || it.next().flatten();
    let set = |field: &mut String, v: Option<String>| {
        if let Some(v) = v {
            *field = v;
        }
    };
    let set_opt = |field: &mut Option<String>, v: Option<String>| {
        if v.is_some() {
            *field = v;
        }
    };
    set(&mut doc.number, next());
    set_opt(&mut doc.purchase_order, next());
    set_opt(&mut doc.engagement_number, next());
    set_opt(&mut doc.service_code, next());
    set_opt(&mut doc.contract_reference, next());
    set_opt(&mut doc.preceding_invoice, next());
    set_opt(&mut doc.payment_terms, next());
    set_opt(&mut doc.iban, next());
    set_opt(&mut doc.bic, next());
    if let (Some(code), Some(text)) = (next(), next()) {
        doc.notes.push(crate::model::Note {
            subject_code: Some(code),
            text,
        });
    }
    if let Some(text) = next() {
        doc.notes.push(crate::model::Note {
            subject_code: None,
            text,
        });
    }
    for party in [&mut doc.seller, &mut doc.buyer] {
        set(&mut party.name, next());
        set_opt(&mut party.email, next());
        set_opt(&mut party.vat_id, next());
        for a in [&mut party.billing_address, &mut party.delivery_address] {
            let (l1, l2, city, postcode) = (next(), next(), next(), next());
            let Some(a) = a.as_mut() else {
                continue;
            };
            if let (Some(l1), Some(l2)) = (l1, l2) {
                a.lines = vec![l1, l2];
            }
            set_opt(&mut a.city, city);
            set_opt(&mut a.postcode, postcode);
        }
    }
    for l in &mut doc.lines {
        set(&mut l.description, next());
        set_opt(&mut l.id, next());
        set_opt(&mut l.job_ref, next());
    }
}

#[test]
fn any_text_in_any_field_gives_well_formed_schema_valid_xml() {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(any_text().prop_map(Some), 40);
    let dir = tempfile::tempdir().unwrap();
    let (mut ubl_inv, mut ubl_cn, mut cii_all) = (Vec::new(), Vec::new(), Vec::new());
    let docs = demo();
    for case in 0..64 {
        let texts = strategy.new_tree(&mut runner).unwrap().current();
        // The demo's documents carry every kind of field (addresses, notes, credit notes).
        let mut md = docs[case % docs.len()].clone();
        fill_text_fields(&mut md.doc, &texts);
        let v = InvoiceView::new(&md);
        for (syntax, bytes) in [("ubl", ubl::render(&v)), ("cii", cii::render(&v))] {
            // No character XML 1.0 forbids reaches the bytes.
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert!(
                !text
                    .chars()
                    .any(|c| (c < ' ' && !matches!(c, '\t' | '\n' | '\r'))
                        || c == '\u{FFFE}'
                        || c == '\u{FFFF}'),
                "case {case} {syntax}: {texts:?}"
            );
            let p = dir.path().join(format!("{case}.{syntax}.xml"));
            std::fs::write(&p, bytes).unwrap();
            match syntax {
                "cii" => cii_all.push(p),
                _ if v.is_credit_note() => ubl_cn.push(p),
                _ => ubl_inv.push(p),
            }
        }
    }
    for schema in CII_SCHEMAS {
        if let Some(xsd) = schema_tools(schema) {
            validate(&xsd, &cii_all);
        }
    }
    if let Some(xsd) = schema_tools("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd") {
        validate(&xsd, &ubl_inv);
    }
    if let Some(xsd) = schema_tools("ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd") {
        validate(&xsd, &ubl_cn);
    }
}
