//! The e-reporting totals: B2C sales per day, currency, category and rate (a credit note
//! negative), international sales one entry per invoice and rate, the period's bounds, what
//! cannot be told (mixed, no nature, no breakdown) listed with its fix, out-of-scope sales left
//! out; and the totals read back from the ledger's records held for e-reporting.

use rust_decimal::Decimal;

use super::*;
use crate::ledger::{Record, RecordKey};
use crate::mapping::tests::{worked_credit_note, worked_invoice};
use crate::model::Address;
use crate::problem::Problem;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// A sale to a private person: the worked invoice (1 000 at 20 %, 150 at 5.5 %).
fn b2c(number: &str, date: &str, nature: Option<OperationNature>) -> Document {
    let mut d = worked_invoice();
    d.id = number.into();
    d.number = number.into();
    d.issue_date = day(date);
    d.operation_nature = nature;
    d
}

fn abroad(mut d: Document, country: &str) -> Document {
    d.buyer.billing_address = Some(Address {
        country_code: Some(country.into()),
        ..Address::default()
    });
    d
}

#[test]
fn b2c_sales_are_totalled_per_day_category_and_rate_and_the_rest_per_invoice() {
    let goods = Some(OperationNature::Goods);
    let services = Some(OperationNature::Services);
    let mut credit = worked_credit_note();
    credit.issue_date = day("2026-10-01");
    credit.operation_nature = services;
    let docs = vec![
        b2c("F1", "2026-10-01", services),
        b2c("F2", "2026-10-01", services),
        b2c("F3", "2026-10-01", goods),
        b2c("F4", "2026-10-02", services),
        credit,
        abroad(b2c("F5", "2026-10-03", services), "DE"),
        b2c("F6", "2026-10-03", Some(OperationNature::Mixed)),
        b2c("F7", "2026-10-03", None),
        b2c("F8", "2026-09-30", services),
        b2c("F9", "2026-11-01", services),
    ];
    let mut out_of_scope = b2c("F10", "2026-10-04", services);
    out_of_scope.seller.billing_address = Some(Address {
        country_code: Some("BE".into()),
        ..Address::default()
    });
    let mut all = docs;
    all.push(out_of_scope);
    let r = Report::of("pa", Some(day("2026-10-01")), Some(day("2026-10-31")), all).unwrap();
    let line = |date: &str, cat: &str, rate: &str| {
        r.b2c
            .iter()
            .find(|a| a.date == day(date) && a.taxed.category == cat && a.taxed.rate == dec(rate))
            .map(|a| (a.taxed.base, a.taxed.vat, a.documents))
    };
    // F1 + F2 less the credit note's 100 + 20 at 20 %: three documents.
    assert_eq!(
        line("2026-10-01", "TPS1", "20"),
        Some((dec("1900.00"), dec("380.00"), 3))
    );
    assert_eq!(
        line("2026-10-01", "TPS1", "5.5"),
        Some((dec("300.00"), dec("16.50"), 2))
    );
    assert_eq!(
        line("2026-10-01", "TLB1", "20"),
        Some((dec("1000.00"), dec("200.00"), 1))
    );
    assert_eq!(
        line("2026-10-02", "TPS1", "20"),
        Some((dec("1000.00"), dec("200.00"), 1))
    );
    assert_eq!(r.b2c.len(), 6, "{:?}", r.b2c);
    assert!(
        r.b2c.iter().all(|a| a.taxed.currency == "EUR"),
        "F8 and F9 are outside the period"
    );
    assert_eq!(r.international.len(), 2);
    assert_eq!(r.international[0].number, "F5");
    assert_eq!(r.international[0].buyer_country, "DE");
    assert_eq!(r.international[0].taxed.category, "TPS1");
    let unreported: Vec<&str> = r.unreported.iter().map(|u| u.number.as_str()).collect();
    assert_eq!(unreported, ["F6", "F7"]);
    assert!(
        r.unreported[0].reason.contains("mixed")
            && r.unreported[0].fix.contains("operation_nature")
    );
    assert_eq!(r.out_of_scope, ["F10"]);
    let text = r.render();
    assert!(
        text.contains("nothing is sent") && text.contains("TPS1") && text.contains("F6"),
        "{text}"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["b2c"][0]["base"], "150.00",
        "amounts are strings: {json}"
    );
}

#[test]
fn a_sale_without_its_breakdown_is_listed_with_the_fix() {
    let mut d = b2c("F1", "2026-10-01", Some(OperationNature::Services));
    d.tax_breakdown.clear();
    let r = Report::of("pa", None, None, [d]).unwrap();
    assert!(r.b2c.is_empty());
    assert!(r.unreported[0].reason.contains("tax_breakdown"));
}

#[test]
fn the_ledger_s_records_held_for_e_reporting_are_the_ones_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = crate::ledger::sled::SledLedger::open(dir.path()).unwrap();
    let now = chrono::Utc::now();
    let held = |doc: &Document, target: &str, code: &str| {
        let mut r = Record::new(
            RecordKey {
                job: "sales".into(),
                target: target.into(),
                doc_id: doc.id.clone(),
            },
            now,
        );
        r.number = doc.number.clone();
        r.hold(
            vec![Problem::new(code, "buyer", "held", "fix")],
            serde_json::to_value(doc).ok(),
            "run-1",
            now,
        );
        r
    };
    let services = Some(OperationNature::Services);
    let (a, b, c) = (
        b2c("F1", "2026-10-01", services),
        b2c("F2", "2026-10-01", services),
        b2c("F3", "2026-10-01", services),
    );
    ledger
        .put_records(&[
            held(&a, "pa", route::E_REPORTING),
            held(&b, "pa", "unmapped-tax-code"),
            held(&c, "other-pa", route::E_REPORTING),
        ])
        .unwrap();
    let r = Report::from_ledger(&ledger, "sales", "pa", None, None).unwrap();
    let docs: u32 = r.b2c.iter().map(|a| a.documents).max().unwrap_or(0);
    assert_eq!(docs, 1, "only F1: {:?}", r.b2c);
}

fn paid(mut d: Document, payments: &[(&str, &str, &str)]) -> Document {
    d.payments = payments
        .iter()
        .map(|(id, date, amount)| crate::model::Payment {
            id: Some((*id).into()),
            date: day(date),
            amount: dec(amount),
        })
        .collect();
    d
}

/// Where VAT is due on receipt, the payments received in the period are reported on the day
/// they were received, whenever the sale was made, split per rate as status 212 splits them:
/// B2C per day and rate, international per invoice; goods' payments and those outside the
/// period are not; a credit note's refund counts negative; payments that do not add up are
/// listed with the fix.
#[test]
fn payments_received_for_services_are_reported_on_their_day_per_rate() {
    let services = Some(OperationNature::Services);
    // The worked invoice's gross: 1 200.00 at 20 %, 158.25 at 5.5 %.
    let september = paid(
        b2c("F1", "2026-09-28", services),
        &[
            ("P1", "2026-10-05", "500.00"),
            ("P2", "2026-11-02", "858.25"),
        ],
    );
    let same_day = paid(
        b2c("F2", "2026-10-01", services),
        &[("P3", "2026-10-05", "1358.25")],
    );
    let goods = paid(
        b2c("F3", "2026-10-01", Some(OperationNature::Goods)),
        &[("P4", "2026-10-05", "100.00")],
    );
    let mut refund = worked_credit_note();
    refund.issue_date = day("2026-10-02");
    refund.operation_nature = services;
    let refund = paid(refund, &[("R1", "2026-10-06", "120.00")]);
    let foreign = paid(
        abroad(b2c("F5", "2026-10-03", services), "DE"),
        &[("P5", "2026-10-07", "1358.25")],
    );
    let over = paid(
        b2c("F6", "2026-10-03", services),
        &[("P6", "2026-10-07", "9999.00")],
    );
    let r = Report::of(
        "pa",
        Some(day("2026-10-01")),
        Some(day("2026-10-31")),
        [september, same_day, goods, refund, foreign, over],
    )
    .unwrap();
    let on = |date: &str| -> Vec<(Decimal, Decimal, u32)> {
        r.b2c_payments
            .iter()
            .filter(|a| a.date == day(date))
            .map(|a| (a.collected.rate, a.collected.amount, a.payments))
            .collect()
    };
    // 10-05: P1 (500.00 split) and P3 (the whole gross) together, per rate.
    let fifth = on("2026-10-05");
    assert_eq!(fifth.len(), 2, "{fifth:?}");
    let total: Decimal = fifth.iter().map(|x| x.1).sum();
    assert_eq!(total, dec("1858.25"));
    assert!(fifth.iter().all(|x| x.2 == 2));
    assert!(fifth.iter().any(|x| x.0 == dec("20")) && fifth.iter().any(|x| x.0 == dec("5.5")));
    // The refund, negative.
    let sixth: Decimal = on("2026-10-06").iter().map(|x| x.1).sum();
    assert_eq!(sixth, dec("-120.00"));
    // P2 is in November, P4 pays goods: neither is here.
    assert!(r
        .b2c_payments
        .iter()
        .all(|a| a.date.to_string() != "2026-11-02"));
    // The international invoice's payment, per rate.
    let foreign: Decimal = r
        .international_payments
        .iter()
        .map(|u| u.collected.amount)
        .sum();
    assert_eq!(foreign, dec("1358.25"));
    assert!(r.international_payments.iter().all(|u| u.number == "F5"));
    let over: Vec<&Unreported> = r.unreported.iter().filter(|u| u.number == "F6").collect();
    assert_eq!(over.len(), 1, "{:?}", r.unreported);
    assert!(over[0].reason.contains("payments") && over[0].fix.contains("payments"));
    let text = r.render();
    assert!(
        text.contains("Payments received") && text.contains("F5"),
        "{text}"
    );
}

/// With the company's VAT regime, the periods that hold data, open or closed on the day, with
/// their due dates; without it, none, and the preview says how to set it.
#[test]
fn the_report_lists_the_regime_s_periods_that_hold_data() {
    let services = Some(OperationNature::Services);
    let docs = [
        b2c("F1", "2026-10-01", services),
        paid(
            b2c("F2", "2026-10-12", services),
            &[("P1", "2026-10-25", "1358.25")],
        ),
    ];
    let r = Report::of("pa", None, None, docs.clone())
        .unwrap()
        .in_periods(
            Some(crate::company::VatRegime::NormalMonthly),
            day("2026-10-15"),
        );
    type Row = (String, String, Option<String>, &'static str, usize, usize);
    let got: Vec<Row> = r
        .periods
        .iter()
        .map(|p| {
            (
                p.period.start.to_string(),
                p.period.end.to_string(),
                p.period.due.map(|d| d.to_string()),
                p.state,
                p.transactions,
                p.payments,
            )
        })
        .collect();
    let s = |x: &str| x.to_owned();
    assert_eq!(
        got,
        [
            (
                s("2026-10-01"),
                s("2026-10-10"),
                Some(s("2026-10-20")),
                "closed",
                2,
                0
            ),
            (
                s("2026-10-11"),
                s("2026-10-20"),
                Some(s("2026-10-31")),
                "open",
                2,
                0
            ),
            (
                s("2026-10-21"),
                s("2026-10-31"),
                Some(s("2026-11-10")),
                "open",
                0,
                2
            ),
        ],
        "the 1-10 period holds F1's two rates; no empty period is listed"
    );
    assert!(r.render().contains("normal-monthly"), "{}", r.render());
    let none = Report::of("pa", None, None, docs)
        .unwrap()
        .in_periods(None, day("2026-10-15"));
    assert!(none.periods.is_empty());
    assert!(none.render().contains("set [company] vat_regime"));
}
