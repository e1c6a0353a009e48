//! The French core profile through the official validation chain of the approved platforms
//! (`../shared/reference/notes/fr-pa-flow-api.md` §11): every demo document written in the
//! French core passes the XSD of its syntax (xmllint; CII against D22B), the EN 16931 rules, then
//! the BR-FR rules (`BR-FR-Flux2-Schematron-{CII,UBL}`), with zero fatal findings, in CII and
//! UBL; so does each optional term of the French core on a built document; a corrupted copy is
//! held by facto's own BR-FR pre-check with the rule id the official rules give it; and the
//! FNFE's own examples pass the same chain (the fixtures that prove it is wired right).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::schematron_tests::{run_rules, schematron_python, shared};
use super::tests::{demo, schema_tools, validate};
use super::*;
use crate::mapping::MappedDocument;
use crate::model::Note;

const FRENCH: Profile = Profile::FrenchCore {
    default_notes: true,
};

/// The XML of `md` in the French core, written to `dir`.
fn write(dir: &Path, name: &str, syntax: Syntax, v: &InvoiceView<'_>) -> PathBuf {
    let path = dir.join(format!("{name}.{}.xml", syntax.as_str().to_lowercase()));
    std::fs::write(&path, syntax.render(v)).unwrap();
    path
}

fn rules_of(syntax: Syntax) -> [String; 2] {
    let s = syntax.as_str();
    [
        format!("en16931-rules/EN16931-{s}-validation.xslt"),
        format!("france/rules/BR-FR-Flux2-Schematron-{s}.xslt"),
    ]
}

/// The ids of the fatal findings of one compiled schematron on one file.
fn fatal_ids(python: &Path, rules: &str, file: &Path) -> Vec<String> {
    let out = Command::new(python)
        .arg(shared().join("france/run_schematron.py"))
        .arg(shared().join(rules))
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[fatal] "))
        .filter_map(|l| l.split_once(':').map(|(id, _)| id.to_owned()))
        .collect()
}

#[test]
fn demo_documents_in_the_french_core_pass_xsd_en16931_and_br_fr_in_cii_and_ubl() {
    let docs = demo();
    assert!(docs.len() >= 30, "{}", docs.len());
    let tmp = tempfile::tempdir().unwrap();
    // `.ci/run` keeps the documents for inspection, beside the EN 16931 corpus.
    let dir = std::env::var_os("FACTO_EINVOICE_OUT").map_or_else(
        || tmp.path().to_owned(),
        |d| PathBuf::from(d).join("french-core"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let (mut cii, mut ubl_invoices, mut ubl_credit_notes) = (Vec::new(), Vec::new(), Vec::new());
    for md in &docs {
        let v = InvoiceView::new(md).with_profile(FRENCH);
        // facto's own rules let every demo document through.
        let mut held = rules::en16931(&v);
        held.extend(rules_fr::french_core(&v));
        assert!(held.is_empty(), "{}: {held:?}", md.doc.id);
        cii.push(write(&dir, &md.doc.id, Syntax::Cii, &v));
        let u = write(&dir, &md.doc.id, Syntax::Ubl, &v);
        if v.is_credit_note() {
            ubl_credit_notes.push(u);
        } else {
            ubl_invoices.push(u);
        }
    }
    assert!(!ubl_credit_notes.is_empty());
    if let Some(xsd) = schema_tools("cii-d22b/CrossIndustryInvoice_100pD22B.xsd") {
        validate(&xsd, &cii);
    }
    if let Some(xsd) = schema_tools("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd") {
        validate(&xsd, &ubl_invoices);
    }
    if let Some(xsd) = schema_tools("ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd") {
        validate(&xsd, &ubl_credit_notes);
    }
    let Some(python) = schematron_python() else {
        return;
    };
    let ubl: Vec<PathBuf> = ubl_invoices.into_iter().chain(ubl_credit_notes).collect();
    assert_official_rules_pass(&python, &cii, &ubl);
}

/// The demo invoice the built documents start from: an invoice with a nature of operation
/// and a buyer with a SIREN.
fn base() -> MappedDocument {
    demo()
        .into_iter()
        .find(|md| {
            md.doc.kind == crate::model::DocKind::Invoice
                && md.doc.operation_nature.is_some()
                && siren(&md.doc.buyer).is_some()
        })
        .unwrap()
}

fn day(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// The demo invoice with each of the French core's optional terms in turn, and a text each
/// syntax must then carry: a corrective invoice (384) and a prepayment invoice (386), an
/// invoice already paid (BT-23 `?2`) and a final invoice after down payments (`?4`), VAT on
/// debits (BT-8), a delivery date (BT-72) and a B2B processing rule (BAR note).
fn with_each_term() -> Vec<(&'static str, MappedDocument, [String; 2])> {
    use crate::model::BillingCase;
    let base = base();
    let letter = &v_process(&base)[..1];
    let mut corrective = base.clone();
    corrective.doc.type_code = Some("384".to_owned());
    corrective.doc.preceding_invoice = Some("F2026-0001".to_owned());
    corrective.doc.preceding_invoice_date = Some(day(2026, 1, 9));
    let mut prepayment = base.clone();
    prepayment.doc.type_code = Some("386".to_owned());
    let mut paid = base.clone();
    paid.doc.billing_case = Some(BillingCase::AlreadyPaid);
    paid.doc.totals.paid = paid.doc.totals.gross;
    paid.doc.totals.due = rust_decimal::Decimal::ZERO;
    paid.doc.due_date = Some(paid.doc.issue_date);
    let mut after_down_payments = base.clone();
    after_down_payments.doc.billing_case = Some(BillingCase::FinalAfterDownPayments);
    after_down_payments.doc.totals.paid = rust_decimal::Decimal::new(10_000, 2);
    after_down_payments.doc.totals.due =
        base.doc.totals.gross - rust_decimal::Decimal::new(10_000, 2);
    let mut debits = base.clone();
    debits.doc.vat_on_debits = Some(true);
    let mut delivered = base.clone();
    delivered.doc.delivery_date = Some(day(2026, 6, 2));
    delivered.doc.buyer.delivery_address = delivered.doc.buyer.billing_address.clone();
    let mut b2b = base;
    b2b.doc.notes.push(Note {
        subject_code: Some("BAR".to_owned()),
        text: "B2B".to_owned(),
    });
    let both = |cii: &str, ubl: &str| [cii.to_owned(), ubl.to_owned()];
    vec![
        ("corrective", corrective, both(
            "<ram:TypeCode>384</ram:TypeCode>",
            "<cbc:InvoiceTypeCode>384</cbc:InvoiceTypeCode>",
        )),
        ("prepayment", prepayment, both(
            "<ram:TypeCode>386</ram:TypeCode>",
            "<cbc:InvoiceTypeCode>386</cbc:InvoiceTypeCode>",
        )),
        ("paid", paid, both(
            &format!("<ram:ID>{letter}2</ram:ID>"),
            &format!("<cbc:ProfileID>{letter}2</cbc:ProfileID>"),
        )),
        ("after-down-payments", after_down_payments, both(
            &format!("<ram:ID>{letter}4</ram:ID>"),
            &format!("<cbc:ProfileID>{letter}4</cbc:ProfileID>"),
        )),
        ("debits", debits, both(
            "<ram:DueDateTypeCode>5</ram:DueDateTypeCode>",
            "<cac:InvoicePeriod><cbc:DescriptionCode>3</cbc:DescriptionCode></cac:InvoicePeriod>",
        )),
        ("delivered", delivered, both(
            "<ram:ActualDeliverySupplyChainEvent><ram:OccurrenceDateTime><udt:DateTimeString format=\"102\">20260602</udt:DateTimeString>",
            "<cac:Delivery><cbc:ActualDeliveryDate>2026-06-02</cbc:ActualDeliveryDate><cac:DeliveryLocation>",
        )),
        ("b2b", b2b, both(
            "<ram:Content>B2B</ram:Content><ram:SubjectCode>BAR</ram:SubjectCode>",
            "<cbc:Note>#BAR#B2B</cbc:Note>",
        )),
    ]
}

/// The business process the base document writes (`M1`, `S1`, ...).
fn v_process(md: &MappedDocument) -> String {
    InvoiceView::new(md)
        .with_profile(FRENCH)
        .business_process()
        .to_owned()
}

#[test]
fn each_french_core_term_is_written_in_cii_and_ubl_and_passes_xsd_en16931_and_br_fr() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut cii, mut ubl) = (Vec::new(), Vec::new());
    for (name, md, [in_cii, in_ubl]) in with_each_term() {
        let v = InvoiceView::new(&md).with_profile(FRENCH);
        let mut held = rules::en16931(&v);
        held.extend(rules_fr::french_core(&v));
        assert!(held.is_empty(), "{name}: {held:?}");
        let c = write(tmp.path(), name, Syntax::Cii, &v);
        let u = write(tmp.path(), name, Syntax::Ubl, &v);
        // The writers indent; compare without the whitespace between elements.
        let flat = |p: &Path| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines().map(str::trim).collect::<String>()
        };
        assert!(
            flat(&c).contains(&in_cii),
            "{name}: no {in_cii} in\n{}",
            flat(&c)
        );
        assert!(
            flat(&u).contains(&in_ubl),
            "{name}: no {in_ubl} in\n{}",
            flat(&u)
        );
        cii.push(c);
        ubl.push(u);
    }
    if let Some(xsd) = schema_tools("cii-d22b/CrossIndustryInvoice_100pD22B.xsd") {
        validate(&xsd, &cii);
    }
    if let Some(xsd) = schema_tools("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd") {
        validate(&xsd, &ubl);
    }
    let Some(python) = schematron_python() else {
        return;
    };
    assert_official_rules_pass(&python, &cii, &ubl);
}

/// One demo invoice corrupted several ways (no PMT note and no default notes; a Chorus framework
/// as BT-23 and no nature of operation; a buyer with no electronic address nor SIREN; a SIRET
/// of another company; a seller with neither SIREN nor SIRET), and a demo credit note without
/// the date of the invoice it corrects: the BR-FR ids each breaks.
fn corrupted() -> Vec<(&'static [&'static str], Profile, MappedDocument)> {
    let base = base();
    let no_defaults = Profile::FrenchCore {
        default_notes: false,
    };
    let mut no_pmt = base.clone();
    no_pmt.doc.notes = ["PMD", "AAB"]
        .iter()
        .zip(FRENCH_NOTES.iter().skip(1))
        .map(|(code, (_, text))| Note {
            subject_code: Some((*code).to_owned()),
            text: (*text).to_owned(),
        })
        .collect();
    let mut chorus_process = base.clone();
    chorus_process.doc.billing_framework = Some("A1".to_owned());
    chorus_process.doc.operation_nature = None;
    let mut foreign_siret = base.clone();
    foreign_siret.doc.seller.siren = Some("123456782".to_owned());
    foreign_siret.doc.seller.siret = Some("73282932000074".to_owned());
    let mut no_seller_siren = base.clone();
    no_seller_siren.doc.seller.siren = None;
    no_seller_siren.doc.seller.siret = None;
    no_seller_siren.doc.seller.electronic_address = None;
    if let Some(a) = no_seller_siren.doc.seller.billing_address.as_mut() {
        a.siret = None;
    }
    let mut undated_credit = demo()
        .into_iter()
        .find(|md| md.doc.kind == crate::model::DocKind::CreditNote)
        .unwrap();
    undated_credit.doc.preceding_invoice_date = None;
    let mut spaced_number = base.clone();
    spaced_number.doc.number = "F 2026.1".to_owned();
    let mut bad_directory_address = base.clone();
    bad_directory_address.doc.buyer.electronic_address = Some(crate::model::ElectronicAddress {
        scheme: "0225".to_owned(),
        value: "412358764 /x".to_owned(),
    });
    let mut two_pmt = base.clone();
    two_pmt.doc.notes.extend(["PMT", "PMT"].map(|code| Note {
        subject_code: Some(code.to_owned()),
        text: FRENCH_NOTES[0].1.to_owned(),
    }));
    let mut b2b_without_siren = base.clone();
    b2b_without_siren.doc.notes.push(Note {
        subject_code: Some("BAR".to_owned()),
        text: "B2B".to_owned(),
    });
    let buyer = &mut b2b_without_siren.doc.buyer;
    (buyer.siren, buyer.siret, buyer.electronic_address) = (None, None, None);
    if let Some(a) = buyer.billing_address.as_mut() {
        a.siret = None;
    }
    let mut foreign_rate = base.clone();
    for l in &mut foreign_rate.lines {
        l.rate = rust_decimal::Decimal::new(15, 0);
    }
    let mut fine_price = base.clone();
    fine_price.doc.lines[0].unit_price = rust_decimal::Decimal::new(1_234_567, 7);
    let mut last_century = base.clone();
    last_century.doc.issue_date = day(1999, 12, 31);
    let mut proforma_code = base.clone();
    proforma_code.doc.type_code = Some("325".to_owned());
    let bar = |text: &str| Note {
        subject_code: Some("BAR".to_owned()),
        text: text.to_owned(),
    };
    let mut unknown_bar = base.clone();
    unknown_bar.doc.notes.push(bar("B2G"));
    let mut two_bars = base.clone();
    two_bars.doc.notes.extend([bar("B2C"), bar("OUTOFSCOPE")]);
    let mut corrective_alone = base.clone();
    corrective_alone.doc.type_code = Some("384".to_owned());
    corrective_alone.doc.preceding_invoice = None;
    let mut due_before_issue = base.clone();
    due_before_issue.doc.due_date = Some(base.doc.issue_date - chrono::Days::new(1));
    let mut final_prepayment = base.clone();
    final_prepayment.doc.billing_case = Some(crate::model::BillingCase::FinalAfterDownPayments);
    final_prepayment.doc.type_code = Some("386".to_owned());
    let mut unpaid_paid = base.clone();
    unpaid_paid.doc.billing_case = Some(crate::model::BillingCase::AlreadyPaid);
    unpaid_paid.doc.due_date = None;
    let mut dollars = base.clone();
    dollars.doc.currency = "USD".to_owned();
    let mut huge = base.clone();
    huge.doc.totals.gross = rust_decimal::Decimal::from(10_u64.pow(18));
    let mut short_buyer_siren = base.clone();
    short_buyer_siren.doc.buyer.siren = Some("41235876".to_owned());
    short_buyer_siren.doc.buyer.siret = None;
    short_buyer_siren.doc.buyer.electronic_address = None;
    if let Some(a) = short_buyer_siren.doc.buyer.billing_address.as_mut() {
        a.siret = None;
    }
    let mut multi_vendor = base.clone();
    multi_vendor.doc.billing_framework = Some("S8".to_owned());
    let mut two_groups = base.clone();
    two_groups.doc.billing_framework = Some("B9".to_owned());
    let mut no_bt49 = base;
    no_bt49.doc.buyer.electronic_address = None;
    no_bt49.doc.buyer.siren = None;
    no_bt49.doc.buyer.siret = None;
    if let Some(a) = no_bt49.doc.buyer.billing_address.as_mut() {
        a.siret = None;
    }
    vec![
        (&["BR-FR-05"], no_defaults, no_pmt),
        (&["BR-FR-08"], FRENCH, chorus_process),
        (&["BR-FR-12"], FRENCH, no_bt49),
        (&["BR-FR-09"], FRENCH, foreign_siret),
        (&["BR-FR-10", "BR-FR-13"], FRENCH, no_seller_siren),
        (&["BR-FR-CO-05"], FRENCH, undated_credit),
        (&["BR-FR-02"], FRENCH, spaced_number),
        (&["BR-FR-23"], FRENCH, bad_directory_address),
        (&["BR-FR-06"], FRENCH, two_pmt),
        (&["BR-FR-16"], FRENCH, foreign_rate),
        (&["BR-FR-DEC-03"], FRENCH, fine_price),
        (
            &["BR-FR-11", "BR-FR-12", "BR-FR-21"],
            FRENCH,
            b2b_without_siren,
        ),
        (&["BR-FR-03"], FRENCH, last_century),
        (&["BR-FR-04"], FRENCH, proforma_code),
        (&["BR-FR-20"], FRENCH, unknown_bar),
        (&["BR-FR-31"], FRENCH, two_bars),
        (&["BR-FR-CO-04"], FRENCH, corrective_alone),
        (&["BR-FR-CO-07"], FRENCH, due_before_issue),
        (&["BR-FR-CO-08"], FRENCH, final_prepayment),
        (&["BR-FR-CO-09"; 3], FRENCH, unpaid_paid),
        (&["BR-FR-CO-12"], FRENCH, dollars),
        (&["BR-FR-DEC-01"], FRENCH, huge),
        (&["BR-FR-32"], FRENCH, short_buyer_siren),
        (&["BR-FR-MV-02"], FRENCH, multi_vendor),
        (&["BR-FR-BD-02"], FRENCH, two_groups),
    ]
}

/// Whether the official rules of `syntax` have `rule`: BR-FR-31 (one BAR note) is CII's alone,
/// BR-FR-32 (a 0002 identifier has 9 digits) UBL's alone.
fn checked_in(rule: &str, syntax: Syntax) -> bool {
    match rule {
        "BR-FR-31" => syntax == Syntax::Cii,
        "BR-FR-32" => syntax == Syntax::Ubl,
        _ => true,
    }
}

#[test]
fn a_corrupted_document_is_held_by_facto_with_the_br_fr_id_the_official_rules_give() {
    let cases = corrupted();
    let python = schematron_python();
    let tmp = tempfile::tempdir().unwrap();
    for (rules, profile, md) in &cases {
        let v = InvoiceView::new(md).with_profile(*profile);
        let ours: Vec<String> = rules_fr::french_core(&v)
            .into_iter()
            .map(|p| p.code)
            .collect();
        assert_eq!(ours, *rules, "facto's pre-check");
        let Some(python) = &python else {
            continue;
        };
        for syntax in [Syntax::Cii, Syntax::Ubl] {
            let file = write(tmp.path(), rules[0], syntax, &v);
            let [_, br_fr] = rules_of(syntax);
            let official = fatal_ids(python, &br_fr, &file);
            for rule in rules.iter().filter(|r| checked_in(r, syntax)) {
                assert!(
                    // `BR-FR-05_BT-22`; UBL's BR-FR-32 says `BR-FR-32-LEGALID`.
                    official.iter().any(|id| id
                        .strip_prefix(rule)
                        .is_some_and(|tail| tail.starts_with(['_', '-']))),
                    "{rule} in {}: the official rules found {official:?}",
                    syntax.as_str()
                );
            }
        }
    }
}

#[test]
fn any_text_in_any_field_is_held_by_facto_or_passes_the_br_fr_rules() {
    use proptest::strategy::{Strategy, ValueTree};
    let Some(python) = schematron_python() else {
        return;
    };
    // Each text field of a demo document takes, now and then, any text: facto's own rules
    // (EN 16931 and BR-FR) hold the document, or the official rules find nothing fatal in the
    // French core it writes.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(
        proptest::option::weighted(0.15, super::tests::any_text()),
        40,
    );
    let tmp = tempfile::tempdir().unwrap();
    let docs = demo();
    let (mut cii, mut ubl) = (Vec::new(), Vec::new());
    for case in 0..120 {
        let texts = strategy.new_tree(&mut runner).unwrap().current();
        let mut md = docs[case % docs.len()].clone();
        super::tests::fill_text_fields(&mut md.doc, &texts);
        let v = InvoiceView::new(&md).with_profile(FRENCH);
        if !rules::en16931(&v).is_empty() || !rules_fr::french_core(&v).is_empty() {
            continue;
        }
        cii.push(write(tmp.path(), &case.to_string(), Syntax::Cii, &v));
        ubl.push(write(tmp.path(), &case.to_string(), Syntax::Ubl, &v));
    }
    assert!(
        cii.len() >= 30,
        "only {} documents passed facto's rules",
        cii.len()
    );
    assert_official_rules_pass(&python, &cii, &ubl);
}

/// Runs every official rule set of each syntax (EN 16931, then BR-FR) on its files and asserts
/// that none finds anything fatal.
fn assert_official_rules_pass(python: &Path, cii: &[PathBuf], ubl: &[PathBuf]) {
    let mut failures = Vec::new();
    for (syntax, files) in [(Syntax::Cii, cii), (Syntax::Ubl, ubl)] {
        for rules in rules_of(syntax) {
            if let Err(e) = run_rules(python, &rules, files) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The FNFE's own French core invoices (`../shared/reference/france/examples/`), CII and UBL.
const FNFE_EXAMPLES: [(Syntax, &str); 2] = [
    (
        Syntax::Cii,
        "UC1_F202500003_00-INV_20250701_CII_EN16931.xml",
    ),
    (
        Syntax::Ubl,
        "UC1_F202500003_00-INV_20250701_UBL_EN16931.xml",
    ),
];

#[test]
fn the_fnfe_examples_pass_the_same_official_chain_and_a_copy_without_pmt_fails_br_fr_05() {
    // The chain facto's documents go through, on the reform's own examples: if a schema or a
    // rule file were wired wrong, these would fail too.
    let examples = shared().join("france/examples");
    let [(_, cii_name), (_, ubl_name)] = FNFE_EXAMPLES;
    let (cii, ubl) = (examples.join(cii_name), examples.join(ubl_name));
    if let Some(xsd) = schema_tools("cii-d22b/CrossIndustryInvoice_100pD22B.xsd") {
        validate(&xsd, std::slice::from_ref(&cii));
    }
    if let Some(xsd) = schema_tools("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd") {
        validate(&xsd, std::slice::from_ref(&ubl));
    }
    let Some(python) = schematron_python() else {
        return;
    };
    assert_official_rules_pass(
        &python,
        std::slice::from_ref(&cii),
        std::slice::from_ref(&ubl),
    );
    // The same rules do find a fault in them: without the PMT note, BR-FR-05.
    let tmp = tempfile::tempdir().unwrap();
    for (syntax, name) in FNFE_EXAMPLES {
        let text = std::fs::read_to_string(examples.join(name)).unwrap();
        let broken = match syntax {
            Syntax::Cii => text.replace(
                "<ram:SubjectCode>PMT</ram:SubjectCode>",
                "<ram:SubjectCode>AAI</ram:SubjectCode>",
            ),
            Syntax::Ubl => text.replace("#PMT#", "#AAI#"),
        };
        assert_ne!(broken, text, "{name} has a PMT note");
        let file = tmp.path().join(name);
        std::fs::write(&file, broken).unwrap();
        let [_, br_fr] = rules_of(syntax);
        let official = fatal_ids(&python, &br_fr, &file);
        assert!(
            official.iter().any(|id| id.starts_with("BR-FR-05_")),
            "{name} without PMT: {official:?}"
        );
    }
}

#[test]
fn every_vat_category_facto_writes_is_one_br_fr_15_accepts() {
    use crate::mapping::VatCategory::*;
    // BR-FR-15 holds nothing facto can write: its categories are a closed enum, all in the list.
    // The match makes a new category fail to compile here until it is checked.
    for c in [S, Z, E, AE, K, G, O] {
        match c {
            S | Z | E | AE | K | G | O => {}
        }
        let code = super::ubl::category_code(c);
        assert!(
            ["S", "E", "AE", "K", "G", "O", "Z"].contains(&code),
            "{code}"
        );
    }
}

/// A demo document with the French core's terms set by `pick` (one choice per term: below 32
/// the document's own, else an index taken modulo the term's choices): type code, billing case
/// and what it pays, VAT on debits, delivery, due and preceding dates, currency and BAR notes,
/// sane or not.
fn with_terms(mut md: MappedDocument, pick: &[usize]) -> MappedDocument {
    use crate::model::BillingCase;
    // Half the time a term keeps the document's own value (choice 0).
    let at = |i: usize, n: usize| pick.get(i).copied().unwrap_or(0).saturating_sub(32) % n;
    let d = &mut md.doc;
    d.type_code = [
        None,
        Some("380"),
        Some("381"),
        Some("384"),
        Some("386"),
        Some("389"),
        Some("325"),
    ][at(0, 7)]
    .map(str::to_owned);
    d.billing_case = [
        None,
        Some(BillingCase::Standard),
        Some(BillingCase::AlreadyPaid),
        Some(BillingCase::FinalAfterDownPayments),
    ][at(1, 4)];
    if at(2, 2) == 1 {
        // Settled in full, as an invoice paid at issue says.
        d.totals.paid = d.totals.gross;
        d.totals.due = rust_decimal::Decimal::ZERO;
    }
    d.vat_on_debits = [None, Some(true), Some(false)][at(3, 3)];
    d.delivery_date = [
        None,
        Some(d.issue_date),
        Some(day(1999, 12, 31)),
        Some(day(2100, 1, 1)),
    ][at(4, 4)];
    if at(5, 2) == 1 {
        d.buyer.delivery_address = d.buyer.billing_address.clone();
    }
    match at(6, 3) {
        1 => d.due_date = Some(d.issue_date - chrono::Days::new(3)),
        2 => d.due_date = None,
        _ => {}
    }
    match at(7, 3) {
        1 => {
            d.preceding_invoice = Some("F2026-0001".to_owned());
            d.preceding_invoice_date = Some(day(2026, 1, 9));
        }
        2 => {
            d.preceding_invoice = Some("F2026-0001".to_owned());
            d.preceding_invoice_date = None;
        }
        _ => {}
    }
    if at(8, 5) == 1 {
        d.currency = "USD".to_owned();
    }
    let bars: &[&str] = [
        &[][..],
        &["B2B"],
        &["B2C"],
        &["B2G"],
        &["B2C", "OUTOFSCOPE"],
    ][at(9, 5)];
    d.notes.extend(bars.iter().map(|t| Note {
        subject_code: Some("BAR".to_owned()),
        text: (*t).to_owned(),
    }));
    md
}

#[test]
fn any_combination_of_the_french_core_terms_is_held_by_facto_or_passes_the_official_rules() {
    use proptest::strategy::{Strategy, ValueTree};
    let Some(python) = schematron_python() else {
        return;
    };
    // facto's pre-check (EN 16931 and BR-FR) and the official rules agree on the new terms:
    // whatever facto lets through, XSD, EN 16931 and BR-FR accept.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(0..64usize, 10);
    let tmp = tempfile::tempdir().unwrap();
    let docs = demo();
    let (mut cii, mut ubl_invoices, mut ubl_credit_notes) = (Vec::new(), Vec::new(), Vec::new());
    let mut held = 0;
    for case in 0..160 {
        let pick = strategy.new_tree(&mut runner).unwrap().current();
        let md = with_terms(docs[case % docs.len()].clone(), &pick);
        let v = InvoiceView::new(&md).with_profile(FRENCH);
        if !rules::en16931(&v).is_empty() || !rules_fr::french_core(&v).is_empty() {
            held += 1;
            continue;
        }
        cii.push(write(tmp.path(), &case.to_string(), Syntax::Cii, &v));
        let u = write(tmp.path(), &case.to_string(), Syntax::Ubl, &v);
        if v.is_credit_note() {
            ubl_credit_notes.push(u);
        } else {
            ubl_invoices.push(u);
        }
    }
    // Both ways are exercised.
    assert!(
        cii.len() >= 30 && held >= 30,
        "{} passed, {held} held",
        cii.len()
    );
    if let Some(xsd) = schema_tools("cii-d22b/CrossIndustryInvoice_100pD22B.xsd") {
        validate(&xsd, &cii);
    }
    if let Some(xsd) = schema_tools("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd") {
        validate(&xsd, &ubl_invoices);
    }
    if let Some(xsd) = schema_tools("ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd") {
        validate(&xsd, &ubl_credit_notes);
    }
    let ubl: Vec<PathBuf> = ubl_invoices.into_iter().chain(ubl_credit_notes).collect();
    assert_official_rules_pass(&python, &cii, &ubl);
}

#[test]
fn a_french_core_document_with_every_new_term_snapshot_passes_the_official_chain() {
    // A corrective invoice (384) already paid at issue, with VAT on debits, a delivery date and
    // address and a B2B processing rule: the terms as each syntax writes them, for review; valid
    // in the official chain, and as the XML of a Factur-X.
    use crate::model::BillingCase;
    let mut md = base();
    let d = &mut md.doc;
    d.type_code = Some("384".to_owned());
    d.preceding_invoice = Some("F2026-0001".to_owned());
    d.preceding_invoice_date = Some(day(2026, 1, 9));
    d.billing_case = Some(BillingCase::AlreadyPaid);
    (d.totals.paid, d.totals.due) = (d.totals.gross, rust_decimal::Decimal::ZERO);
    d.due_date = Some(d.issue_date);
    d.vat_on_debits = Some(true);
    d.delivery_date = Some(day(2026, 6, 2));
    d.buyer.delivery_address = d.buyer.billing_address.clone();
    d.notes.push(Note {
        subject_code: Some("BAR".to_owned()),
        text: "B2B".to_owned(),
    });
    let v = InvoiceView::new(&md).with_profile(FRENCH);
    let mut held = rules::en16931(&v);
    held.extend(rules_fr::french_core(&v));
    assert!(held.is_empty(), "{held:?}");
    for syntax in [Syntax::Cii, Syntax::Ubl] {
        let xml = String::from_utf8(syntax.render(&v)).unwrap();
        insta::assert_snapshot!(format!("french_core_terms_{}", syntax.as_str()), xml);
    }
    // All of them at once pass the official chain too.
    let tmp = tempfile::tempdir().unwrap();
    let cii = write(tmp.path(), "terms", Syntax::Cii, &v);
    let ubl = write(tmp.path(), "terms", Syntax::Ubl, &v);
    if let Some(xsd) = schema_tools("cii-d22b/CrossIndustryInvoice_100pD22B.xsd") {
        validate(&xsd, std::slice::from_ref(&cii));
    }
    if let Some(xsd) = schema_tools("ubl-2.1/maindoc/UBL-Invoice-2.1.xsd") {
        validate(&xsd, std::slice::from_ref(&ubl));
    }
    // And the CII, as the XML inside a Factur-X (EN 16931 profile), its schema and rules.
    if let Some(xsd) = schema_tools("facturx-1.09/en16931/Factur-X_EN16931.xsd") {
        validate(&xsd, std::slice::from_ref(&cii));
    }
    if let Some(python) = schematron_python() {
        let facturx = "france/rules/facturx-en16931/FACTUR-X_EN16931.xslt";
        run_rules(&python, facturx, std::slice::from_ref(&cii)).unwrap();
        assert_official_rules_pass(&python, &[cii], &[ubl]);
    }
}
