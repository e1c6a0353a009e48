//! The buyer's statuses: the codes and words, the checks against the reform's lists before
//! anything is recorded, and every message through the official chain (read back by facto's own
//! CDAR reader, then the CDAR D22B XSD and the BR-FR-CDV rules, zero fatal findings).

use std::path::PathBuf;

use chrono::NaiveDate;

use super::*;
use crate::mapping::tests::{worked_credit_note, worked_invoice};

fn response(status: &str, reason: Option<&str>, action: Option<&str>) -> Response {
    Response {
        status: BuyerStatus::parse(status).unwrap(),
        reason: reason.map(str::to_owned),
        text: String::new(),
        action: action.map(str::to_owned),
    }
}

#[test]
fn statuses_parse_from_their_codes_and_words() {
    for (s, code) in [
        ("204", 204),
        ("taken-over", 204),
        ("205", 205),
        ("approved", 205),
        ("207", 207),
        ("disputed", 207),
        ("210", 210),
        ("refused", 210),
    ] {
        assert_eq!(BuyerStatus::parse(s).map(BuyerStatus::code), Some(code));
    }
    for s in ["206", "212", "200", "", "refuse"] {
        assert_eq!(BuyerStatus::parse(s), None, "{s}");
    }
    assert_eq!(
        record_id("732829320:F1", BuyerStatus::Refused),
        "732829320:F1#210"
    );
    assert_eq!(target_name("pa"), "pa#status");
}

#[test]
fn reasons_and_actions_are_checked_against_the_reform_s_lists() {
    assert!(response("204", None, None).check().is_ok());
    assert!(response("205", None, None).check().is_ok());
    assert!(response("207", Some("TX_TVA_ERR"), Some("NIN"))
        .check()
        .is_ok());
    assert!(response("207", Some("LIVR_INCOMP"), None).check().is_ok());
    assert!(response("210", Some("DOUBLON"), Some("CNF"))
        .check()
        .is_ok());
    let err = |r: Response| r.check().unwrap_err().to_string();
    assert!(err(response("207", None, None)).contains("needs a reason"));
    assert!(err(response("210", None, None)).contains("REF_CT_ABSENT"));
    // A reason a dispute may give, but not a refusal.
    assert!(err(response("210", Some("LIVR_INCOMP"), None)).contains("not a reason status 210"));
    assert!(err(response("207", Some("NOPE"), None)).contains("not a reason status 207"));
    assert!(err(response("205", Some("AUTRE"), None)).contains("takes no reason"));
    assert!(err(response("204", None, Some("NIN"))).contains("expects no action"));
    assert!(err(response("207", Some("AUTRE"), Some("XYZ"))).contains("not an action"));
    let mut text = response("205", None, None);
    text.text = "OK pour paiement".into();
    assert!(err(text).contains("carries no text"));
    let mut long = response("207", Some("AUTRE"), None);
    long.text = "x".repeat(1025);
    assert!(err(long.clone()).contains("1 024"));
    long.text = "two\nlines".into();
    assert!(err(long).contains("one line"));
}

fn company() -> Buyer {
    Buyer {
        siren: "200000008".into(),
        name: "ACHETEUR".into(),
    }
}

fn ready() -> Ready {
    Ready {
        seller_siren: "100000009".into(),
        address: "100000009_STATUTS".into(),
    }
}

fn at() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2025, 7, 1)
        .and_then(|d| d.and_hms_opt(18, 0, 0))
        .unwrap()
}

#[test]
fn each_status_reads_back_as_sent_and_passes_the_cdar_xsd_and_the_br_fr_cdv_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("FACTO_EINVOICE_OUT").map_or_else(
        || tmp.path().to_owned(),
        |d| PathBuf::from(d).join("cdar-buyer"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let invoice = worked_invoice();
    let mut odd = worked_credit_note();
    odd.number = "AV<&>\"'-1".into();
    let mut disputed = response("207", Some("TX_TVA_ERR"), Some("NIN"));
    disputed.text = "Taux de TVA erroné <ligne 2>".into();
    let cases = [
        ("204", &invoice, response("204", None, None)),
        ("205", &invoice, response("205", None, None)),
        ("207", &invoice, disputed),
        ("210", &invoice, response("210", Some("DOUBLON"), None)),
        (
            "210-credit-note",
            &odd,
            response("210", Some("MONTANTTOTAL_ERR"), Some("CNF")),
        ),
    ];
    let mut files = Vec::new();
    for (name, doc, r) in &cases {
        let bytes = cdar(doc, &company(), r, &ready(), at());
        let read = crate::targets::pa::cdar::parse(&bytes).unwrap();
        let [s] = read.as_slice() else {
            panic!("one status: {read:?}")
        };
        assert_eq!(s.code.code(), r.status.code());
        assert_eq!(s.invoice_number, doc.number);
        assert_eq!(s.issuer_siren.as_deref(), Some("100000009"));
        assert_eq!(s.invoice_date, Some(doc.issue_date));
        if let Some(reason) = &r.reason {
            assert!(s.reasons().starts_with(reason.as_str()), "{}", s.reasons());
        }
        // The same status about the same invoice is the same message (its id too).
        assert_eq!(bytes, cdar(doc, &company(), r, &ready(), at()));
        let f = dir.join(format!("buyer-{name}.xml"));
        std::fs::write(&f, bytes).unwrap();
        files.push(f);
    }
    crate::einvoice::schematron_tests::cdar_chain_passes(&files);
}

/// The chain is wired for these statuses too: a dispute without its reason fails BR-FR-CDV-15.
#[test]
fn a_dispute_without_its_reason_fails_the_official_rules() {
    use crate::einvoice::schematron_tests::{run_rules, schematron_python};
    let Some(python) = schematron_python() else {
        return;
    };
    let mut r = response("207", Some("TX_TVA_ERR"), None);
    let good = cdar(&worked_invoice(), &company(), &r, &ready(), at());
    // Built by hand: `check` never lets one through.
    r.reason = None;
    let bad = cdar(&worked_invoice(), &company(), &r, &ready(), at());
    let dir = tempfile::tempdir().unwrap();
    let (g, b) = (dir.path().join("good.xml"), dir.path().join("bad.xml"));
    std::fs::write(&g, good).unwrap();
    std::fs::write(&b, bad).unwrap();
    assert!(run_rules(&python, "france/rules/BR-FR-CDV-Schematron-CDAR.xslt", &[g]).is_ok());
    let report = run_rules(&python, "france/rules/BR-FR-CDV-Schematron-CDAR.xslt", &[b])
        .expect_err("no reason must fail");
    assert!(report.contains("BR-FR-CDV-15"), "{report}");
}
