//! Tests of mapping files and of [`super::map_document`]; `mapping()`, `worked_invoice()` and
//! `worked_credit_note()` are shared with other modules' tests.

use super::*;
use crate::model::{parse_document, Document};
use crate::toml_file::find_line;
use serde_json::json;

pub(crate) const MAPPING: &str = r#"
[journal]
code = "VE"
label = "Journal des ventes"

[customers]
collective_account = "411000"
collective_label = "Clients"

[customers.accounts.C001]
aux = "CDUPONT"
label = "Dupont SARL"

[gl.accounts.CONSEIL]
account = "706000"
label = "Prestations de services"

[gl.products.LIVRE]
account = "707000"
label = "Ventes de marchandises"

[tax.TVA20]
rate = "20"
category = "S"
account = "445711"
label = "TVA collectée 20%"

[tax.TVA55]
rate = "5.5"
category = "S"
account = "445713"
label = "TVA collectée 5,5%"
"#;

pub(crate) fn mapping() -> Mapping {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.toml");
    std::fs::write(&p, MAPPING).unwrap();
    Mapping::load(&p, crate::config::MAPPING_KEYS).unwrap()
}

/// The worked example of the journal-formats note: F2024-0001.
pub(crate) fn worked_invoice() -> Document {
    parse_document(
        json!({
            "id": "f1", "number": "F2024-0001", "kind": "invoice", "status": "final",
            "issue_date": "2024-03-15", "due_date": "2024-04-14", "currency": "EUR",
            "updated_at": "2024-03-15T10:00:00Z",
            "seller": {"name": "S"}, "buyer": {"name": "Dupont SARL", "customer_id": "C001"},
            "lines": [
                {"description": "Conseil", "quantity": "1", "unit_price": "1000.00", "net_amount": "1000.00", "gl_account": "CONSEIL", "tax_code": "TVA20"},
                {"description": "Livres", "quantity": "10", "unit_price": "15.00", "net_amount": "150.00", "product_code": "LIVRE", "tax_code": "TVA55"}
            ],
            "totals": {"net": "1150.00", "tax": "208.25", "gross": "1358.25", "due": "1358.25"},
            "tax_breakdown": [
                {"tax_code": "TVA20", "rate": "20", "base": "1000.00", "amount": "200.00"},
                {"tax_code": "TVA55", "rate": "5.5", "base": "150.00", "amount": "8.25"}
            ]
        }),
        "t",
        0,
    )
    .unwrap()
}

/// The worked example's credit note A2024-0001.
pub(crate) fn worked_credit_note() -> Document {
    parse_document(
        json!({
            "id": "a1", "number": "A2024-0001", "kind": "credit_note", "status": "final",
            "issue_date": "2024-03-20", "due_date": "2024-03-20", "currency": "EUR",
            "updated_at": "2024-03-20T10:00:00Z", "preceding_invoice": "F2024-0001",
            "seller": {"name": "S"}, "buyer": {"name": "Dupont SARL", "customer_id": "C001"},
            "lines": [
                {"description": "Conseil", "quantity": "1", "unit_price": "100.00", "net_amount": "100.00", "gl_account": "CONSEIL", "tax_code": "TVA20"}
            ],
            "totals": {"net": "100.00", "tax": "20.00", "gross": "120.00", "due": "120.00"},
            "tax_breakdown": [{"tax_code": "TVA20", "rate": "20", "base": "100.00", "amount": "20.00"}]
        }),
        "t",
        0,
    )
    .unwrap()
}

fn mapping_from(text: &str) -> Result<Mapping, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.toml");
    std::fs::write(&p, text).unwrap();
    Mapping::load(&p, crate::config::MAPPING_KEYS)
}

#[test]
fn aux_pattern_builds_the_account_of_unlisted_customers() {
    let m = mapping_from(&MAPPING.replace(
        "collective_label = \"Clients\"",
        "collective_label = \"Clients\"\naux_pattern = \"C{id}\"",
    ))
    .unwrap();
    let mut doc = worked_invoice();
    doc.buyer.customer_id = Some("4711".into());
    let md = map_document(&doc, &m).unwrap();
    assert_eq!(md.entry.lines[0].aux.as_deref(), Some("C4711"));
    assert_eq!(md.entry.lines[0].aux_label.as_deref(), Some("Dupont SARL"));
    // A listed customer keeps its own account; an id that makes no valid code is held.
    let md = map_document(&worked_invoice(), &m).unwrap();
    assert_eq!(md.entry.lines[0].aux.as_deref(), Some("CDUPONT"));
    doc.buyer.customer_id = Some("47 11".into());
    let p = map_document(&doc, &m).unwrap_err();
    assert_eq!(p[0].code, "invalid-customer-account", "{p:?}");
    assert!(unmapped_codes(&doc, &m).is_empty());

    let err = mapping_from(&MAPPING.replace(
        "collective_label = \"Clients\"",
        "collective_label = \"Clients\"\naux_pattern = \"C\"",
    ))
    .unwrap_err();
    assert!(err.to_string().contains("aux_pattern"), "{err}");
    assert_eq!(err.line, Some(9), "{err}");
}

#[test]
fn invoice_maps_to_the_worked_entry() {
    let md = map_document(&worked_invoice(), &mapping()).unwrap();
    let got: Vec<(String, String, String)> = md
        .entry
        .lines
        .iter()
        .map(|l| (l.account.clone(), l.debit.to_string(), l.credit.to_string()))
        .collect();
    let want = [
        ("411000", "1358.25", "0"),
        ("706000", "0", "1000.00"),
        ("707000", "0", "150.00"),
        ("445711", "0", "200.00"),
        ("445713", "0", "8.25"),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.0, w.0);
        assert_eq!(
            g.1.parse::<Decimal>().unwrap(),
            w.1.parse::<Decimal>().unwrap()
        );
        assert_eq!(
            g.2.parse::<Decimal>().unwrap(),
            w.2.parse::<Decimal>().unwrap()
        );
    }
    assert_eq!(md.entry.lines[0].aux.as_deref(), Some("CDUPONT"));
    assert_eq!(md.entry.label, "F2024-0001 Dupont SARL");
}

#[test]
fn credit_note_is_mirrored_with_positive_amounts() {
    let md = map_document(&worked_credit_note(), &mapping()).unwrap();
    let l = &md.entry.lines;
    assert_eq!(
        (l[0].debit, l[0].credit),
        (Decimal::ZERO, Decimal::new(12000, 2))
    );
    assert_eq!(
        (l[1].debit, l[1].credit),
        (Decimal::new(10000, 2), Decimal::ZERO)
    );
    assert_eq!(
        (l[2].debit, l[2].credit),
        (Decimal::new(2000, 2), Decimal::ZERO)
    );
}

#[test]
fn unmapped_tax_code_names_field_file_and_fix() {
    let mut doc = worked_invoice();
    doc.lines[1].tax_code = "TVA85".into();
    let problems = map_document(&doc, &mapping()).unwrap_err();
    let p = problems
        .iter()
        .find(|p| p.code == "unmapped-tax-code")
        .unwrap();
    assert_eq!(p.field, "lines[1].tax_code");
    assert!(
        p.message.contains("TVA85") && p.message.contains("m.toml"),
        "{}",
        p.message
    );
    assert!(p.fix.contains("[tax.\"TVA85\"]"), "{}", p.fix);
}

#[test]
fn one_revenue_line_per_account_unless_the_mapping_asks_per_rate() {
    let mut doc = worked_invoice();
    // The books now on the consulting account too, at 5.5 %.
    doc.lines[1].product_code = None;
    doc.lines[1].gl_account = Some("CONSEIL".into());
    let revenue = |m: &Mapping| -> Vec<(String, Decimal)> {
        map_document(&doc, m)
            .unwrap()
            .entry
            .lines
            .iter()
            .filter(|l| l.role == LineRole::Revenue)
            .map(|l| (l.account.clone(), l.credit))
            .collect()
    };
    assert_eq!(
        revenue(&mapping()),
        [("706000".to_owned(), Decimal::new(115000, 2))]
    );
    let m = mapping_from(&MAPPING.replace(
        "label = \"Journal des ventes\"",
        "label = \"Journal des ventes\"\nrevenue_lines = \"per-account-and-rate\"",
    ))
    .unwrap();
    assert_eq!(
        revenue(&m),
        [
            ("706000".to_owned(), Decimal::new(100000, 2)),
            ("706000".to_owned(), Decimal::new(15000, 2))
        ]
    );
    let err = mapping_from(&MAPPING.replace(
        "label = \"Journal des ventes\"",
        "label = \"Journal des ventes\"\nrevenue_lines = \"per-rate\"",
    ))
    .unwrap_err();
    assert!(err.message.contains("per-account-and-rate"), "{err}");
    assert_eq!(err.line, Some(5), "{err}");
}

#[test]
fn unknown_customer_is_held_not_guessed() {
    let mut doc = worked_invoice();
    doc.buyer.customer_id = Some("C999".into());
    let problems = map_document(&doc, &mapping()).unwrap_err();
    assert_eq!(problems[0].code, "unmapped-customer");
}

#[test]
fn mapping_rejects_unknown_key_with_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.toml");
    std::fs::write(
        &p,
        MAPPING.replace("label = \"Prestations de services\"", "lable = \"x\""),
    )
    .unwrap();
    let err = Mapping::load(&p, crate::config::MAPPING_KEYS).unwrap_err();
    assert!(err.message.contains("lable"), "{}", err.message);
    assert_eq!(
        err.line,
        Some(find_line(&std::fs::read_to_string(&p).unwrap(), &["lable"]).unwrap())
    );
}

#[test]
fn mapping_rejects_bad_account_with_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.toml");
    std::fs::write(
        &p,
        MAPPING.replace("account = \"445713\"", "account = \"TVA\""),
    )
    .unwrap();
    let err = Mapping::load(&p, crate::config::MAPPING_KEYS).unwrap_err();
    assert!(err.message.contains("TVA55"), "{}", err.message);
    assert!(err.line.is_some());
}

#[test]
fn a_pennylane_code_that_pennylane_lacks_or_that_contradicts_the_rate_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.toml");
    let with = |code: &str| {
        MAPPING.replace(
            "account = \"445713\"",
            &format!("account = \"445713\"\npennylane_vat_rate = \"{code}\""),
        )
    };
    std::fs::write(&p, with("FR_55")).unwrap();
    assert!(Mapping::load(&p, crate::config::MAPPING_KEYS).is_ok());
    for (code, says) in [("FR_5_5", "write `FR_55`"), ("FR_200", "is 20 % but")] {
        let text = with(code);
        std::fs::write(&p, &text).unwrap();
        let err = Mapping::load(&p, crate::config::MAPPING_KEYS).unwrap_err();
        assert!(
            err.message.contains("TVA55") && err.message.contains(says),
            "{}",
            err.message
        );
        let line = text
            .lines()
            .position(|l| l.starts_with("pennylane_vat_rate"))
            .unwrap()
            + 1;
        assert_eq!(err.line, Some(line));
    }
}

#[test]
fn float_rate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.toml");
    std::fs::write(&p, MAPPING.replace("rate = \"5.5\"", "rate = 5.5")).unwrap();
    let err = Mapping::load(&p, crate::config::MAPPING_KEYS).unwrap_err();
    assert!(err.message.contains("string"), "{}", err.message);
}

#[test]
fn keys_no_target_declares_are_refused_in_serdes_words_and_declared_ones_carried_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.toml");
    let at = |text: &str, start: &str| text.lines().position(|l| l.starts_with(start)).unwrap() + 1;
    let with = |extra: &str| {
        MAPPING.replace(
            "account = \"445713\"",
            &format!("account = \"445713\"\n{extra}"),
        )
    };
    // The messages serde gave when the vendor keys were fields of the entry.
    for (extra, says) in [
        (
            "xero_tax_tipe = \"OUTPUT2\"",
            "unknown field `xero_tax_tipe`, expected one of `rate`, `category`, `account`, `label`, `exemption_reason`, `exemption_code`, `pennylane_vat_rate`, `xero_tax_type`",
        ),
        (
            "xero_tax_type = 2",
            "invalid type: integer `2`, expected a string",
        ),
    ] {
        let text = with(extra);
        std::fs::write(&p, &text).unwrap();
        let err = Mapping::load(&p, crate::config::MAPPING_KEYS).unwrap_err();
        assert_eq!(err.message, says);
        assert_eq!(err.line, Some(at(&text, extra)));
    }
    let text = MAPPING.replace(
        "label = \"Prestations de services\"",
        "label = \"Prestations de services\"\nxero_acount_code = \"200\"",
    );
    std::fs::write(&p, &text).unwrap();
    let err = Mapping::load(&p, crate::config::MAPPING_KEYS).unwrap_err();
    assert_eq!(
        err.message,
        "unknown field `xero_acount_code`, expected one of `account`, `label`, `xero_account_code`"
    );
    assert_eq!(err.line, Some(at(&text, "xero_acount_code")));

    // Set, defaulted (a standard French rate, the GL account) and absent keys, by name.
    std::fs::write(&p, with("xero_tax_type = \"OUTPUT2\"")).unwrap();
    let m = Mapping::load(&p, crate::config::MAPPING_KEYS).unwrap();
    let t = &m.tax["TVA55"];
    assert_eq!(t.key("xero_tax_type").as_deref(), Some("OUTPUT2"));
    assert_eq!(t.key("pennylane_vat_rate").as_deref(), Some("FR_55"));
    assert_eq!(t.key("no_such_key"), None);
    let md = map_document(&worked_invoice(), &m).unwrap();
    for l in &md.lines {
        assert_eq!(l.key("xero_account_code"), Some(l.account.as_str()));
    }
}

/// A purchases mapping: suppliers by SIREN in `[suppliers]` (never `[customers]`), a supplier's
/// `gl` naming a `[gl.accounts]` code; a sales mapping takes no `[suppliers]`. Each error names
/// the line and the fix.
#[test]
fn a_purchases_mapping_keeps_its_suppliers_apart() {
    let purchases = "[journal]\ncode = \"HA\"\nlabel = \"Achats\"\nside = \"purchases\"\n\n[suppliers]\ncollective_account = \"401000\"\n\n[suppliers.accounts.\"732829320\"]\naux = \"FIMPRIM\"\ngl = \"IMPRESSION\"\n\n[gl.accounts.IMPRESSION]\naccount = \"623600\"\nlabel = \"Imprimés\"\n";
    let m = mapping_from(purchases).unwrap();
    assert_eq!(m.journal.side, Side::Purchases);
    assert_eq!(m.customers.collective_account, "401000");

    let e = mapping_from(&purchases.replace("gl = \"IMPRESSION\"", "gl = \"NOPE\"")).unwrap_err();
    assert!(
        e.to_string()
            .contains("gl `NOPE` is not a code of [gl.accounts]"),
        "{e}"
    );
    let e = mapping_from(
        &purchases
            .replace("[suppliers]\ncollective_account = \"401000\"\n", "")
            .replace(
                "[suppliers.accounts.\"732829320\"]\naux = \"FIMPRIM\"\ngl = \"IMPRESSION\"\n",
                "",
            ),
    )
    .unwrap_err();
    assert!(e.to_string().contains("missing table [suppliers]"), "{e}");
    let sales = purchases.replace("side = \"purchases\"\n", "");
    let e = mapping_from(&sales).unwrap_err();
    assert!(
        e.to_string()
            .contains("[suppliers] does not belong in a sales mapping"),
        "{e}"
    );
    assert_eq!(e.line, Some(5), "the line of [suppliers]: {e}");
}

/// A received invoice through the purchase mapping: the supplier credited with the gross (its
/// auxiliary account, its name), the expense and the deductible VAT debited; a credit note the
/// other way round; an unknown supplier held with the table to add it to.
#[test]
fn a_supplier_invoice_credits_its_supplier() {
    let text = "[journal]\ncode = \"HA\"\nlabel = \"Achats\"\nside = \"purchases\"\n\n[suppliers]\ncollective_account = \"401000\"\ncollective_label = \"Fournisseurs\"\n\n[suppliers.accounts.\"100000009\"]\naux = \"FVEND\"\ngl = \"ACHATS\"\n\n[gl.accounts.ACHATS]\naccount = \"604000\"\nlabel = \"Achats\"\n\n[tax.TVA20]\nrate = \"20\"\ncategory = \"S\"\naccount = \"445660\"\n\n[tax.TVA55]\nrate = \"5.5\"\ncategory = \"S\"\naccount = \"445660\"\n";
    let m = mapping_from(text).unwrap();
    let mut doc = worked_invoice();
    doc.seller.siren = Some("100000009".into());
    doc.seller.name = "Le Vendeur".into();
    for l in &mut doc.lines {
        l.gl_account = None;
        l.product_code = None;
    }
    let md = map_document(&doc, &m).unwrap();
    let l = &md.entry.lines;
    assert_eq!(
        (l[0].account.as_str(), l[0].aux.as_deref()),
        ("401000", Some("FVEND"))
    );
    assert_eq!((l[0].debit, l[0].credit), (Decimal::ZERO, doc.totals.gross));
    assert_eq!(l[1].account, "604000");
    assert_eq!(l[1].debit, doc.totals.net);
    assert_eq!(
        (l[2].account.as_str(), l[2].debit),
        ("445660", doc.totals.tax)
    );
    assert_eq!(md.entry.label, "F2024-0001 Le Vendeur");
    assert_eq!(
        md.entry.lines.last().unwrap().account_label,
        "TVA déductible 20 %"
    );

    doc.kind = crate::model::DocKind::CreditNote;
    let md = map_document(&doc, &m).unwrap();
    assert_eq!(
        md.entry.lines[0].debit, doc.totals.gross,
        "a credit note debits the supplier"
    );

    doc.seller.siren = Some("443061841".into());
    let problems = map_document(&doc, &m).unwrap_err();
    assert!(
        problems.iter().any(|p| p.code == "unmapped-supplier"
            && p.field == "seller.siren"
            && p.fix.contains("[suppliers.accounts.\"443061841\"]")),
        "{problems:?}"
    );
}

/// A sale's customer id is looked up as written: purchases trim the seller's ids, but the
/// sales side kept its rule (a padded id is not the listed one).
#[test]
fn a_sale_s_customer_id_is_looked_up_as_written() {
    let m = mapping();
    let mut doc = worked_invoice();
    doc.buyer.customer_id = Some(" C001 ".into());
    let problems = map_document(&doc, &m).unwrap_err();
    assert!(
        problems.iter().any(|p| p.code == "unmapped-customer"),
        "{problems:?}"
    );
}
