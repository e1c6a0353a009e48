//! Reading received e-invoices: every demo document written by facto in the French core, in CII
//! and in UBL, reads back to the same number, dates, parties, lines, VAT breakdown and totals; the
//! FNFE's own invoice reads the same in CII, UBL and Factur-X; hostile or foreign files are
//! errors that say what they are, never panics.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::*;
use crate::einvoice::tests::demo;
use crate::einvoice::{InvoiceView, Profile, Syntax};
use crate::model::Document;

fn received() -> Received<'static> {
    Received {
        id: "flow-0001",
        updated_at: "2026-12-01T10:00:00Z",
        origin: "PA flow flow-0001",
    }
}

/// What a reading must keep of a document, amounts normalized.
fn essentials(d: &Document) -> Vec<String> {
    let n = |x: Decimal| x.normalize().to_string();
    let mut rates: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for t in &d.tax_breakdown {
        let e = rates.entry(n(t.rate)).or_default();
        e.0 += t.base;
        e.1 += t.amount;
    }
    let mut out = vec![
        d.number.clone(),
        d.kind.as_str().to_owned(),
        d.issue_date.to_string(),
        format!("{:?}", d.due_date),
        d.currency.clone(),
        format!(
            "totals {} {} {} {}",
            n(d.totals.net),
            n(d.totals.tax),
            n(d.totals.gross),
            n(d.totals.due)
        ),
        format!("{rates:?}"),
        format!(
            "seller {} {:?}",
            d.seller.name,
            crate::einvoice::siren(&d.seller)
        ),
        format!(
            "buyer {} {:?}",
            d.buyer.name,
            crate::einvoice::siren(&d.buyer)
        ),
        format!("preceding {:?}", d.preceding_invoice),
    ];
    out.extend(d.lines.iter().map(|l| {
        format!(
            "line {} {} {}",
            l.description,
            n(l.quantity),
            n(l.net_amount)
        )
    }));
    out
}

#[test]
fn facto_s_own_cii_and_ubl_read_back_to_the_same_document() {
    let docs = demo();
    assert!(docs.len() >= 30);
    let profile = Profile::FrenchCore {
        default_notes: true,
    };
    for md in &docs {
        let v = InvoiceView::new(md).with_profile(profile);
        let want = essentials(&md.doc);
        for syntax in [Syntax::Cii, Syntax::Ubl] {
            let bytes = syntax.render(&v);
            let got = read(&bytes, &received())
                .unwrap_or_else(|e| panic!("{} in {syntax:?}: {e}", md.doc.number));
            assert_eq!(essentials(&got), want, "{} in {syntax:?}", md.doc.number);
            assert_eq!(got.id, "flow-0001");
        }
    }
}

fn example(name: &str) -> Option<Vec<u8>> {
    let dir = crate::einvoice::schematron_tests::shared().join("france/examples");
    if !dir.is_dir() {
        crate::test_skip::skip(&format!("the FNFE examples need {}", dir.display()));
        return None;
    }
    Some(std::fs::read(dir.join(name)).unwrap())
}

#[test]
fn the_fnfe_invoice_reads_the_same_in_cii_ubl_and_factur_x() {
    let names = [
        "UC1_F202500003_00-INV_20250701_CII_EN16931.xml",
        "UC1_F202500003_00-INV_20250701_UBL_EN16931.xml",
        "UC1_F202500003_00-INV_20250701_EN16931_FX.pdf",
    ];
    let mut read_back = Vec::new();
    for name in names {
        let Some(bytes) = example(name) else {
            return;
        };
        let d = read(&bytes, &received()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.number, "F202500003", "{name}");
        assert!(!d.lines.is_empty() && !d.tax_breakdown.is_empty(), "{name}");
        assert_eq!(
            d.totals.gross,
            d.totals.net + d.totals.tax,
            "{name}: {:?}",
            d.totals
        );
        read_back.push(essentials(&d));
    }
    assert_eq!(read_back[0], read_back[1], "CII and UBL");
    assert_eq!(read_back[0], read_back[2], "CII and Factur-X");
}

#[test]
fn foreign_or_hostile_files_are_errors_not_panics() {
    let r = received();
    assert!(matches!(
        read(b"not xml <", &r),
        Err(ReadError::Xml(_) | ReadError::NotInvoice(_))
    ));
    assert!(matches!(read(b"\xff\xfe", &r), Err(ReadError::Xml(_))));
    assert_eq!(
        read(b"<Order/>", &r).unwrap_err(),
        ReadError::NotInvoice("Order".into())
    );
    let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
    assert!(matches!(read(deep.as_bytes(), &r), Err(ReadError::Xml(_))));
    assert!(matches!(
        read(
            b"<Invoice><cbc:IssueDate>2026-01-01</cbc:IssueDate></Invoice>",
            &r
        ),
        Err(ReadError::Missing(_))
    ));
    assert!(matches!(
        read(b"%PDF-1.7 nothing", &r),
        Err(ReadError::NotInvoice(_))
    ));
    // An amount that is no amount: the document parser names the field.
    let bad = b"<Invoice><ID>X1</ID><IssueDate>2026-01-01</IssueDate>\
        <AccountingSupplierParty><Party><PartyName><Name>S</Name></PartyName></Party></AccountingSupplierParty>\
        <AccountingCustomerParty><Party><PartyName><Name>B</Name></PartyName></Party></AccountingCustomerParty>\
        <LegalMonetaryTotal><TaxExclusiveAmount>ten</TaxExclusiveAmount><TaxInclusiveAmount>12</TaxInclusiveAmount>\
        <PayableAmount>12</PayableAmount></LegalMonetaryTotal></Invoice>";
    let e = read(bad, &r).unwrap_err();
    assert!(
        e.to_string().contains("totals.net") && e.to_string().contains("`ten`"),
        "{e}"
    );
    // A total the invoice does not give: named by its business term.
    let no_due = String::from_utf8_lossy(bad).replace("<PayableAmount>12</PayableAmount>", "");
    assert_eq!(
        read(no_due.as_bytes(), &r).unwrap_err(),
        ReadError::Missing("amount due, BT-115 (cbc:PayableAmount)")
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// No received file makes the reader panic: a valid CII or UBL of the demo, cut anywhere
    /// or with bytes overwritten anywhere, reads or is refused with a reason.
    #[test]
    fn a_mangled_file_is_refused_never_a_panic(
        doc in 0usize..40,
        ubl in proptest::prelude::any::<bool>(),
        cut in proptest::prelude::any::<proptest::sample::Index>(),
        edits in proptest::collection::vec(
            (proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()),
            0..8,
        ),
    ) {
        let docs = demo();
        let md = &docs[doc % docs.len()];
        let profile = Profile::FrenchCore { default_notes: true };
        let v = InvoiceView::new(md).with_profile(profile);
        let syntax = if ubl { Syntax::Ubl } else { Syntax::Cii };
        let mut bytes = syntax.render(&v);
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Err(e) = read(&bytes, &received()) {
            proptest::prop_assert!(!e.to_string().is_empty());
        }
    }
}
