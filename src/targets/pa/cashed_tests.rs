//! Status 212: which documents need it, the payments' ids and checks, the cumulative split per
//! VAT rate (to the cent, whatever the payments), and the message through the official chain:
//! read back by facto's own CDAR reader, then the CDAR D22B XSD and the BR-FR-CDV rules
//! (`../shared/reference`), zero fatal findings.

use std::path::PathBuf;

use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::mapping::tests::{worked_credit_note, worked_invoice};
use crate::model::{Document, Payment};

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn pay(id: Option<&str>, date: &str, amount: &str) -> Payment {
    Payment {
        id: id.map(str::to_owned),
        date: day(date),
        amount: dec(amount),
    }
}

/// The worked invoice (1 200.00 at 20 %, 158.25 at 5.5 %), services, paid in two parts.
fn paid_in_two() -> Document {
    let mut d = worked_invoice();
    d.operation_nature = Some(OperationNature::Services);
    d.seller.siren = Some("100000009".into());
    d.payments = vec![
        pay(Some("P-2"), "2024-04-30", "358.25"),
        pay(Some("P-1"), "2024-04-10", "1000.00"),
    ];
    d
}

#[test]
fn it_is_due_for_services_and_mixed_without_vat_on_debits() {
    let mut d = worked_invoice();
    assert!(!due(&d), "no nature said: not claimed to be services");
    d.operation_nature = Some(OperationNature::Goods);
    assert!(!due(&d));
    for n in [OperationNature::Services, OperationNature::Mixed] {
        d.operation_nature = Some(n);
        d.vat_on_debits = None;
        assert!(due(&d));
        d.vat_on_debits = Some(false);
        assert!(due(&d));
        d.vat_on_debits = Some(true);
        assert!(!due(&d), "VAT on debits: due on the invoice, no 212");
    }
}

#[test]
fn payments_keep_their_ids_or_get_stable_ones_and_are_checked() {
    let d = paid_in_two();
    let p = payments(&d).unwrap();
    assert_eq!(
        p.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["P-1", "P-2"],
        "added up in date order"
    );
    let mut d = worked_invoice();
    d.payments = vec![
        pay(None, "2024-04-10", "100.0"),
        pay(None, "2024-04-10", "100"),
        pay(Some("  "), "2024-04-11", "5"),
    ];
    let ids: Vec<String> = payments(&d).unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(
        ids,
        ["2024-04-10/100/1", "2024-04-10/100/2", "2024-04-11/5/1"]
    );

    d.payments = vec![pay(None, "2024-04-10", "0")];
    assert!(matches!(
        payments(&d),
        Err(CashedError::NotPositive { index: 0, .. })
    ));
    d.payments = vec![
        pay(Some("a"), "2024-04-10", "1"),
        pay(Some("a"), "2024-04-11", "1"),
    ];
    let e = payments(&d).unwrap_err();
    assert!(e.to_string().contains("payments[1].id `a`"), "{e}");
    d.payments = vec![pay(None, "2024-04-10", "1358.26")];
    let e = payments(&d).unwrap_err();
    assert!(
        e.to_string().contains("1358.26") && e.to_string().contains("totals.gross"),
        "{e}"
    );
    d.payments = vec![
        pay(None, "2024-04-10", "79228162514264337593543950335"),
        pay(None, "2024-04-11", "1"),
    ];
    assert_eq!(payments(&d), Err(CashedError::Overflow));
}

#[test]
fn a_payment_is_split_per_rate_and_the_parts_add_up_to_the_gross_per_rate() {
    let d = paid_in_two();
    let first = split(&d, "P-1").unwrap();
    let second = split(&d, "P-2").unwrap();
    // 1000 of 1358.25: 883.49 at 20 %, 116.51 at 5.5 % (the largest takes the remainder).
    assert_eq!(
        first,
        [
            AtRate {
                rate: dec("5.5"),
                amount: dec("116.51")
            },
            AtRate {
                rate: dec("20"),
                amount: dec("883.49")
            },
        ]
    );
    let sum = |rate: &str| -> Decimal {
        first
            .iter()
            .chain(&second)
            .filter(|a| a.rate == dec(rate))
            .map(|a| a.amount)
            .sum()
    };
    assert_eq!(sum("20"), dec("1200.00"));
    assert_eq!(sum("5.5"), dec("158.25"));

    let mut c = worked_credit_note();
    c.payments = vec![pay(Some("R1"), "2024-03-25", "120.00")];
    assert_eq!(
        split(&c, "R1").unwrap(),
        [AtRate {
            rate: dec("20"),
            amount: dec("-120.00")
        }],
        "a refund is reported negative"
    );
    assert_eq!(
        split(&c, "R2"),
        Err(CashedError::NoSuchPayment("R2".into()))
    );
    c.tax_breakdown.clear();
    assert_eq!(split(&c, "R1"), Err(CashedError::NoBreakdown));
}

proptest! {
    /// Any payments that do not exceed the gross: every part is to the cent, each payment's
    /// parts add up to it, and all the parts of a rate to that rate's share of the sum paid
    /// (its gross exactly when paid in full).
    #[test]
    fn parts_add_up_whatever_the_payments(
        cents in prop::collection::vec(1u32..50_000, 1..6),
        full in any::<bool>(),
    ) {
        let mut d = worked_invoice();
        let gross = d.totals.gross;
        let mut amounts: Vec<Decimal> = cents.iter().map(|c| Decimal::new(i64::from(*c), 2)).collect();
        let total: Decimal = amounts.iter().sum();
        if total > gross {
            return Ok(());
        }
        if full {
            amounts.push(gross - total);
            amounts.retain(|a| !a.is_zero());
        }
        d.payments = amounts
            .iter()
            .enumerate()
            .map(|(i, a)| Payment { id: Some(format!("p{i}")), date: day("2024-04-01"), amount: *a })
            .collect();
        let mut per_rate = std::collections::BTreeMap::<Decimal, Decimal>::new();
        for (i, a) in amounts.iter().enumerate() {
            let parts = split(&d, &format!("p{i}")).unwrap();
            prop_assert_eq!(parts.iter().map(|p| p.amount).sum::<Decimal>(), *a);
            for p in parts {
                prop_assert!(p.amount.scale() <= 2);
                *per_rate.entry(p.rate).or_default() += p.amount;
            }
        }
        if full {
            prop_assert_eq!(per_rate.get(&dec("20")).copied(), Some(dec("1200.00")));
            prop_assert_eq!(per_rate.get(&dec("5.5")).copied(), Some(dec("158.25")));
        }
    }
}

/// The 212 of `d`'s payment `id`, written.
fn message(d: &Document, id: &str) -> Vec<u8> {
    let all = payments(d).unwrap();
    let paid = all.iter().find(|p| p.id == id).unwrap();
    let amounts = split(d, id).unwrap();
    cdar(&Cashed {
        doc: d,
        seller_siren: "100000009",
        paid,
        amounts: &amounts,
        buyer: &Recipient {
            siren: Some("200000008".into()),
            name: d.buyer.name.clone(),
            address: "200000008".into(),
        },
        deposited_at: day("2024-03-15").and_hms_opt(15, 10, 0),
        written_at: day("2024-04-11").and_hms_opt(8, 0, 0).unwrap(),
    })
}

#[test]
fn the_message_reads_back_as_the_status_it_reports() {
    let d = paid_in_two();
    let bytes = message(&d, "P-1");
    let mut read = super::super::cdar::parse(&bytes).unwrap();
    assert_eq!(read.len(), 1);
    let s = read.pop().unwrap();
    assert_eq!(s.code.code(), 212);
    assert_eq!(s.invoice_number, "F2024-0001");
    assert_eq!(s.invoice_type.as_deref(), Some("380"));
    assert_eq!(s.invoice_date, Some(day("2024-03-15")));
    assert_eq!(s.issuer_siren.as_deref(), Some("100000009"));
    assert_eq!(
        s.collected(),
        ["116.51 EUR at 5.50 %", "883.49 EUR at 20.00 %"]
    );
    assert_eq!(
        s.document_id,
        Some(document_id("F2024-0001", &payments(&d).unwrap()[0]))
    );
    assert_ne!(
        document_id("F2024-0001", &payments(&d).unwrap()[0]),
        document_id("F2024-0001", &payments(&d).unwrap()[1]),
        "one id per payment"
    );
    // The same payment written again is the same message, but for its creation time.
    assert_eq!(bytes, message(&d, "P-1"));
}

/// Every message of the fixtures passes the CDAR D22B XSD and the official BR-FR-CDV rules
/// with zero fatal findings: an invoice paid in two parts, a credit note refunded, a message
/// without the deposit time, a number with XML's special characters.
#[test]
fn messages_pass_the_cdar_xsd_and_the_br_fr_cdv_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("FACTO_EINVOICE_OUT").map_or_else(
        || tmp.path().to_owned(),
        |d| PathBuf::from(d).join("cdar-212"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let d = paid_in_two();
    let mut c = worked_credit_note();
    c.operation_nature = Some(OperationNature::Services);
    c.payments = vec![pay(Some("R1"), "2024-03-25", "120.00")];
    let mut odd = paid_in_two();
    odd.number = "F<&>\"'-1".into();
    let mut files = Vec::new();
    for (name, bytes) in [
        ("first", message(&d, "P-1")),
        ("second", message(&d, "P-2")),
        ("refund", message(&c, "R1")),
        ("odd", message(&odd, "P-2")),
    ] {
        let f = dir.join(format!("212-{name}.xml"));
        std::fs::write(&f, bytes).unwrap();
        files.push(f);
    }
    let undeposited = {
        let all = payments(&d).unwrap();
        let amounts = split(&d, "P-1").unwrap();
        cdar(&Cashed {
            doc: &d,
            seller_siren: "100000009",
            paid: &all[0],
            amounts: &amounts,
            buyer: &Recipient {
                siren: None,
                name: "B".into(),
                address: "200000008_00012".into(),
            },
            deposited_at: None,
            written_at: day("2024-04-11").and_hms_opt(8, 0, 0).unwrap(),
        })
    };
    let f = dir.join("212-undeposited.xml");
    std::fs::write(&f, undeposited).unwrap();
    files.push(f);
    crate::einvoice::schematron_tests::cdar_chain_passes(&files);
}

/// The fixture proves the chain is wired: the FNFE's own 212 passes it, and a copy without its
/// `MEN` amount fails with BR-FR-CDV-14.
#[test]
fn the_fnfe_212_passes_the_chain_and_one_without_its_amount_fails() {
    use crate::einvoice::schematron_tests::{run_rules, schematron_python, shared};
    let example = shared().join("france/examples/UC1_F202500003_07-CDV-212_Encaissee.xml");
    if !example.exists() {
        crate::test_skip::skip(&format!("the FNFE 212 example needs {}", example.display()));
        return;
    }
    let Some(python) = schematron_python() else {
        return;
    };
    let rules = "france/rules/BR-FR-CDV-Schematron-CDAR.xslt";
    run_rules(&python, rules, std::slice::from_ref(&example)).unwrap_or_else(|r| panic!("{r}"));
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("no-men.xml");
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace(">MEN<", ">XXX<");
    std::fs::write(&broken, text).unwrap();
    let report = run_rules(&python, rules, &[broken]).unwrap_err();
    assert!(report.contains("BR-FR-CDV-14"), "{report}");
}
