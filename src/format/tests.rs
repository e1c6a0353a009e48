//! Tests of the journal writers: the note's worked example byte for byte in every layout,
//! snapshots of a richer set, a reader of every layout at its documented positions, and
//! property tests that every file balances and no label breaks a layout.

use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::json;

use super::text::encode;
use super::*;
use crate::checks::prepare;
use crate::format::JournalFormat;
use crate::mapping::tests::{mapping, worked_credit_note, worked_invoice};
use crate::mapping::{MappedDocument, Mapping};
use crate::model::{parse_document, Document};

/// The worked example of the note in the quadratus layout (exact text, before encoding).
pub(crate) const QUADRATUS: &str = concat!(
    "MCDUPONT VE000150324 F2024-0001 Dupont SAD+000000135825        140424     1                        1       EURVE    F2024-0001 Dupont SARL          F2024-0001                                                                         \r\n",
    "M706000  VE000150324 F2024-0001 Dupont SAC+000000100000        140424     1                        1       EURVE    F2024-0001 Dupont SARL          F2024-0001                                                                         \r\n",
    "M707000  VE000150324 F2024-0001 Dupont SAC+000000015000        140424     1                        1       EURVE    F2024-0001 Dupont SARL          F2024-0001                                                                         \r\n",
    "M445711  VE000150324 F2024-0001 Dupont SAC+000000020000        140424     1                        1       EURVE    F2024-0001 Dupont SARL          F2024-0001                                                                         \r\n",
    "M445713  VE000150324 F2024-0001 Dupont SAC+000000000825        140424     1                        1       EURVE    F2024-0001 Dupont SARL          F2024-0001                                                                         \r\n",
    "MCDUPONT VE000200324 A2024-0001 Dupont SAC+000000012000        200324     2                        2       EURVE    A2024-0001 Dupont SARL          A2024-0001                                                                         \r\n",
    "M706000  VE000200324 A2024-0001 Dupont SAD+000000010000        200324     2                        2       EURVE    A2024-0001 Dupont SARL          A2024-0001                                                                         \r\n",
    "M445711  VE000200324 A2024-0001 Dupont SAD+000000002000        200324     2                        2       EURVE    A2024-0001 Dupont SARL          A2024-0001                                                                         \r\n",
);

/// The worked example of the note in the ebp layout (exact text, before encoding).
pub(crate) const EBP: &str = concat!(
    "1,15032024,VE,CDUPONT,,\"F2024-0001 Dupont SARL\",\"F2024-0001\",1358.25,D,14042024,EUR\r\n",
    "2,15032024,VE,706000,,\"F2024-0001 Dupont SARL\",\"F2024-0001\",1000.00,C,14042024,EUR\r\n",
    "3,15032024,VE,707000,,\"F2024-0001 Dupont SARL\",\"F2024-0001\",150.00,C,14042024,EUR\r\n",
    "4,15032024,VE,445711,,\"F2024-0001 Dupont SARL\",\"F2024-0001\",200.00,C,14042024,EUR\r\n",
    "5,15032024,VE,445713,,\"F2024-0001 Dupont SARL\",\"F2024-0001\",8.25,C,14042024,EUR\r\n",
    "6,20032024,VE,CDUPONT,,\"A2024-0001 Dupont SARL\",\"A2024-0001\",120.00,C,20032024,EUR\r\n",
    "7,20032024,VE,706000,,\"A2024-0001 Dupont SARL\",\"A2024-0001\",100.00,D,20032024,EUR\r\n",
    "8,20032024,VE,445711,,\"A2024-0001 Dupont SARL\",\"A2024-0001\",20.00,D,20032024,EUR\r\n",
);

/// The worked example of the note in the acd layout (exact text, before encoding).
pub(crate) const ACD: &str = concat!(
    "1;15/03/2024;2024;03;15;F2024-0001;F2024-0001 Dupont SARL;CDUPONT;Dupont SARL;1358,25;0,00;1358,25;VE\r\n",
    "1;15/03/2024;2024;03;15;F2024-0001;F2024-0001 Dupont SARL;706000;Dupont SARL;0,00;1000,00;1000,00;VE\r\n",
    "1;15/03/2024;2024;03;15;F2024-0001;F2024-0001 Dupont SARL;707000;Dupont SARL;0,00;150,00;150,00;VE\r\n",
    "1;15/03/2024;2024;03;15;F2024-0001;F2024-0001 Dupont SARL;445711;Dupont SARL;0,00;200,00;200,00;VE\r\n",
    "1;15/03/2024;2024;03;15;F2024-0001;F2024-0001 Dupont SARL;445713;Dupont SARL;0,00;8,25;8,25;VE\r\n",
    "2;20/03/2024;2024;03;20;A2024-0001;A2024-0001 Dupont SARL;CDUPONT;Dupont SARL;0,00;120,00;120,00;VE\r\n",
    "2;20/03/2024;2024;03;20;A2024-0001;A2024-0001 Dupont SARL;706000;Dupont SARL;100,00;0,00;100,00;VE\r\n",
    "2;20/03/2024;2024;03;20;A2024-0001;A2024-0001 Dupont SARL;445711;Dupont SARL;20,00;0,00;20,00;VE\r\n",
);

/// The worked example of the note in the agiris layout (exact text, before encoding).
pub(crate) const AGIRIS: &str = concat!(
    "1;F2024-0001 Dupont SARL;15032024;F2024-0001 Dupont SARL;CDUPONT;Dupont SARL;F2024-0001;1358,25;0,00;1358,25;D;;VE\n",
    "1;F2024-0001 Dupont SARL;15032024;F2024-0001 Dupont SARL;706000;Prestations de services;F2024-0001;0,00;1000,00;1000,00;C;;VE\n",
    "1;F2024-0001 Dupont SARL;15032024;F2024-0001 Dupont SARL;707000;Ventes de marchandises;F2024-0001;0,00;150,00;150,00;C;;VE\n",
    "1;F2024-0001 Dupont SARL;15032024;F2024-0001 Dupont SARL;445711;TVA collect\u{e9}e 20%;F2024-0001;0,00;200,00;200,00;C;;VE\n",
    "1;F2024-0001 Dupont SARL;15032024;F2024-0001 Dupont SARL;445713;TVA collect\u{e9}e 5,5%;F2024-0001;0,00;8,25;8,25;C;;VE\n",
    "2;A2024-0001 Dupont SARL;20032024;A2024-0001 Dupont SARL;CDUPONT;Dupont SARL;A2024-0001;0,00;120,00;120,00;C;;VE\n",
    "2;A2024-0001 Dupont SARL;20032024;A2024-0001 Dupont SARL;706000;Prestations de services;A2024-0001;100,00;0,00;100,00;D;;VE\n",
    "2;A2024-0001 Dupont SARL;20032024;A2024-0001 Dupont SARL;445711;TVA collect\u{e9}e 20%;A2024-0001;20,00;0,00;20,00;D;;VE\n",
);

/// The worked example of the note in the coala layout (exact text, before encoding).
pub(crate) const COALA: &str = concat!(
    "15/03/2024;VE;411000;1;F2024-0001;1358,25;0,00;E;CDUPONT\n",
    "15/03/2024;VE;706000;1;F2024-0001;0,00;1000,00;E;\n",
    "15/03/2024;VE;707000;1;F2024-0001;0,00;150,00;E;\n",
    "15/03/2024;VE;445711;1;F2024-0001;0,00;200,00;E;\n",
    "15/03/2024;VE;445713;1;F2024-0001;0,00;8,25;E;\n",
    "20/03/2024;VE;411000;2;A2024-0001;0,00;120,00;E;CDUPONT\n",
    "20/03/2024;VE;706000;2;A2024-0001;100,00;0,00;E;\n",
    "20/03/2024;VE;445711;2;A2024-0001;20,00;0,00;E;\n",
);

/// The worked example of the note in the ciel layout (exact text, before encoding).
pub(crate) const CIEL: &str = concat!(
    "1    VE2024031520240414F2024-0001  CDUPONT    F2024-0001 Dupont SARL         1358,25D                  F2024-0001 Dupont SARL            O2003\r\n",
    "1    VE2024031520240414F2024-0001  706000     F2024-0001 Dupont SARL         1000,00C                  F2024-0001 Dupont SARL            O2003\r\n",
    "1    VE2024031520240414F2024-0001  707000     F2024-0001 Dupont SARL          150,00C                  F2024-0001 Dupont SARL            O2003\r\n",
    "1    VE2024031520240414F2024-0001  445711     F2024-0001 Dupont SARL          200,00C                  F2024-0001 Dupont SARL            O2003\r\n",
    "1    VE2024031520240414F2024-0001  445713     F2024-0001 Dupont SARL            8,25C                  F2024-0001 Dupont SARL            O2003\r\n",
    "2    VE2024032020240320A2024-0001  CDUPONT    A2024-0001 Dupont SARL          120,00C                  A2024-0001 Dupont SARL            O2003\r\n",
    "2    VE2024032020240320A2024-0001  706000     A2024-0001 Dupont SARL          100,00D                  A2024-0001 Dupont SARL            O2003\r\n",
    "2    VE2024032020240320A2024-0001  445711     A2024-0001 Dupont SARL           20,00D                  A2024-0001 Dupont SARL            O2003\r\n",
);

/// The worked example of the note in the cegid layout (exact text, before encoding).
pub(crate) const CEGID: &str = concat!(
    "15032024;VE;411000;CDUPONT;D;1358,25;F2024-0001 Dupont SARL;F2024-0001\n",
    "15032024;VE;706000;;C;1000,00;F2024-0001 Dupont SARL;F2024-0001\n",
    "15032024;VE;707000;;C;150,00;F2024-0001 Dupont SARL;F2024-0001\n",
    "15032024;VE;445711;;C;200,00;F2024-0001 Dupont SARL;F2024-0001\n",
    "15032024;VE;445713;;C;8,25;F2024-0001 Dupont SARL;F2024-0001\n",
    "20032024;VE;411000;CDUPONT;C;120,00;A2024-0001 Dupont SARL;A2024-0001\n",
    "20032024;VE;706000;;D;100,00;A2024-0001 Dupont SARL;A2024-0001\n",
    "20032024;VE;445711;;D;20,00;A2024-0001 Dupont SARL;A2024-0001\n",
);

/// The seven accounting-package layouts of this module (FEC and CSV have their own tests).
const PACKAGES: [JournalFormat; 7] = [
    JournalFormat::Quadratus,
    JournalFormat::Ebp,
    JournalFormat::Acd,
    JournalFormat::Agiris,
    JournalFormat::Coala,
    JournalFormat::Ciel,
    JournalFormat::Cegid,
];

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Renders mapped documents as one file (entries numbered from 1), as text.
fn render_text(layout: &Layout, mds: &[MappedDocument]) -> String {
    let mut out = layout.header();
    let mut state = FileState::default();
    for (i, md) in mds.iter().enumerate() {
        let e = EntryView::new(md, i as u64 + 1, d("2024-04-02"), layout);
        render(layout, &mut state, &e, &mut out);
    }
    out
}

pub(crate) fn worked() -> Vec<MappedDocument> {
    let m = mapping();
    [worked_invoice(), worked_credit_note()]
        .iter()
        .map(|doc| prepare(doc, &m).unwrap())
        .collect()
}

fn golden(format: JournalFormat) -> &'static str {
    match format {
        JournalFormat::Quadratus => QUADRATUS,
        JournalFormat::Ebp => EBP,
        JournalFormat::Acd => ACD,
        JournalFormat::Agiris => AGIRIS,
        JournalFormat::Coala => COALA,
        JournalFormat::Ciel => CIEL,
        JournalFormat::Cegid => CEGID,
        _ => unreachable!(),
    }
}

#[test]
fn worked_example_is_byte_exact_in_every_layout() {
    for f in PACKAGES {
        let layout = Layout::default_for(f);
        let got = encode(&render_text(&layout, &worked()), layout.encoding);
        let want = encode(golden(f), layout.encoding);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{f:?}"
        );
        assert_eq!(got, want, "{f:?}");
    }
    // The one accent of the example is byte E9 in Windows-1252.
    let agiris = Layout::default_for(JournalFormat::Agiris);
    assert!(encode(&render_text(&agiris, &worked()), agiris.encoding).contains(&0xE9));
}

#[test]
fn fixed_width_records_have_their_exact_length() {
    for (f, len) in [
        (JournalFormat::Quadratus, quadratus::RECORD_LEN),
        (JournalFormat::Ciel, ciel::RECORD_LEN),
    ] {
        let layout = Layout::default_for(f);
        let bytes = encode(&render_text(&layout, &rich()), layout.encoding);
        for rec in bytes.split(|b| *b == b'\n').filter(|r| !r.is_empty()) {
            assert_eq!(
                rec.len(),
                len + 1,
                "{f:?}: {:?}",
                String::from_utf8_lossy(rec)
            );
            assert_eq!(rec[len], b'\r');
        }
    }
}

#[test]
fn account_padding_applies_to_general_accounts_only() {
    let mut layout = Layout::default_for(JournalFormat::Coala);
    layout.account_length = Some(8);
    let text = render_text(&layout, &worked());
    assert!(text.starts_with("15/03/2024;VE;41100000;1;F2024-0001;1358,25;0,00;E;CDUPONT\n"));
    assert!(text.contains(";70600000;"));
}

/// The chart of the richer set: every French rate, an exemption, long accented names.
const RICH_MAPPING: &str = r#"
[journal]
code = "VE"
label = "Journal des ventes"

[customers]
collective_account = "411000"

[customers.accounts.C001]
aux = "CDUPONT"
label = "Dupont SARL"

[customers.accounts.C010]
aux = "CSOCGEN"
label = "Société Générale d'Équipements Électriques du Littoral Méditerranéen"

[gl.accounts.CONSEIL]
account = "706100"
label = "Prestations de conseil"

[gl.accounts.FORMATION]
account = "706200"
label = "Prestations de formation"

[gl.products.LIVRE]
account = "707100"
label = "Ventes de livres"

[gl.products.REPAS]
account = "707200"
label = "Ventes de repas"

[gl.products.PRESSE]
account = "707300"
label = "Ventes de presse"

[tax.TVA20]
rate = "20"
category = "S"
account = "445711"
label = "TVA collectée 20%"

[tax.TVA10]
rate = "10"
category = "S"
account = "445712"
label = "TVA collectée 10%"

[tax.TVA55]
rate = "5.5"
category = "S"
account = "445713"
label = "TVA collectée 5,5%"

[tax.TVA21]
rate = "2.1"
category = "S"
account = "445714"
label = "TVA collectée 2,1%"

[tax.EXO]
rate = "0"
category = "E"
exemption_reason = "Exonération de TVA, article 261-4-4° du CGI"
"#;

fn rich_mapping() -> Mapping {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rich.toml");
    std::fs::write(&p, RICH_MAPPING).unwrap();
    Mapping::load(&p, crate::config::MAPPING_KEYS).unwrap()
}

const TAXES: [(&str, &str); 5] = [
    ("TVA20", "20"),
    ("TVA10", "10"),
    ("TVA55", "5.5"),
    ("TVA21", "2.1"),
    ("EXO", "0"),
];

/// A final document whose totals add up: VAT per rate on the sum of its lines.
fn document(
    number: &str,
    credit: bool,
    date: &str,
    buyer: (&str, &str),
    lines: &[(&str, (&str, &str), Decimal, &str)],
) -> Document {
    let mut net = Decimal::ZERO;
    let mut per_rate: Vec<(&str, &str, Decimal)> = Vec::new();
    let json_lines: Vec<serde_json::Value> = lines
        .iter()
        .map(|(desc, (key, code), amount, tax)| {
            net += amount;
            match per_rate.iter_mut().find(|r| r.0 == *tax) {
                Some(r) => r.2 += amount,
                None => {
                    let rate = TAXES.iter().find(|t| t.0 == *tax).unwrap().1;
                    per_rate.push((tax, rate, *amount));
                }
            }
            json!({"description": desc, "quantity": "1", "unit_price": amount.to_string(),
                   "net_amount": amount.to_string(), *key: code, "tax_code": tax})
        })
        .collect();
    let mut tax_total = Decimal::ZERO;
    let breakdown: Vec<serde_json::Value> = per_rate
        .iter()
        .map(|(code, rate, base)| {
            let vat = (base * rate.parse::<Decimal>().unwrap() / Decimal::ONE_HUNDRED)
                .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            tax_total += vat;
            json!({"tax_code": code, "rate": rate, "base": base.to_string(), "amount": vat.to_string()})
        })
        .collect();
    let gross = net + tax_total;
    let mut v = json!({
        "id": number, "number": number,
        "kind": if credit { "credit_note" } else { "invoice" }, "status": "final",
        "issue_date": date, "due_date": date, "currency": "EUR",
        "updated_at": format!("{date}T10:00:00Z"),
        "seller": {"name": "S"}, "buyer": {"name": buyer.1, "customer_id": buyer.0},
        "lines": json_lines,
        "totals": {"net": net.to_string(), "tax": tax_total.to_string(),
                   "gross": gross.to_string(), "due": gross.to_string()},
        "tax_breakdown": breakdown
    });
    if credit {
        v["preceding_invoice"] = json!("R2026-0101");
    }
    parse_document(v, "t", 0).unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Long labels, accents, hostile characters, many lines, every rate, exempt lines, a credit note
/// and a document number longer than the fixed-width piece fields.
fn rich() -> Vec<MappedDocument> {
    let m = rich_mapping();
    let hostile = (
        "C010",
        "Société Générale d'Équipements; \"Électriques\"\tdu|Littoral\r\nMéditerranéen – Œuvres",
    );
    let docs = [
        document(
            "R2026-0101",
            false,
            "2026-02-03",
            hostile,
            &[
                ("Audit", ("gl_account", "CONSEIL"), dec("1250.00"), "TVA20"),
                (
                    "Formation",
                    ("gl_account", "FORMATION"),
                    dec("3000.00"),
                    "EXO",
                ),
                ("Repas", ("product_code", "REPAS"), dec("412.37"), "TVA10"),
                ("Livres", ("product_code", "LIVRE"), dec("89.90"), "TVA55"),
                ("Presse", ("product_code", "PRESSE"), dec("12.45"), "TVA21"),
                ("Suivi", ("gl_account", "CONSEIL"), dec("0.99"), "TVA20"),
                ("Suivi", ("gl_account", "CONSEIL"), dec("0.99"), "TVA20"),
                ("Suivi", ("gl_account", "CONSEIL"), dec("0.99"), "TVA20"),
            ],
        ),
        document(
            "AV-2026-LONG-000123456",
            true,
            "2026-02-10",
            hostile,
            &[
                ("Audit", ("gl_account", "CONSEIL"), dec("250.00"), "TVA20"),
                ("Repas", ("product_code", "REPAS"), dec("12.37"), "TVA10"),
            ],
        ),
        document(
            "R2026-0102",
            false,
            "2026-02-11",
            ("C001", "Dupont SARL"),
            &[(
                "Conseil",
                ("gl_account", "CONSEIL"),
                dec("9999999.99"),
                "TVA20",
            )],
        ),
    ];
    docs.iter().map(|doc| prepare(doc, &m).unwrap()).collect()
}

#[test]
fn richer_set_snapshots() {
    for f in PACKAGES {
        let layout = Layout::default_for(f);
        let bytes = encode(&render_text(&layout, &rich()), layout.encoding);
        // The bytes as the importer decodes them, with CR made visible.
        let shown = text::decode(&bytes, layout.encoding).replace('\r', "␍");
        insta::assert_snapshot!(format!("rich_{}", f.as_str()), shown);
    }
}

/// One line read back from a file: entry key, account as written, side, amount.
#[derive(Debug, PartialEq)]
struct ReadLine {
    entry: String,
    account: String,
    debit: bool,
    amount: Decimal,
}

fn comma(s: &str) -> Decimal {
    s.trim().replace(',', ".").parse().unwrap()
}

/// Reads a file back at the positions and columns the note documents.
fn read_back(f: JournalFormat, bytes: &[u8]) -> Vec<ReadLine> {
    let text: String = bytes.iter().map(|b| char::from(*b)).collect();
    let eol = match f {
        JournalFormat::Quadratus
        | JournalFormat::Ciel
        | JournalFormat::Ebp
        | JournalFormat::Acd => "\r\n",
        _ => "\n",
    };
    assert!(text.ends_with(eol), "{f:?}: every record ends with its EOL");
    let records: Vec<&str> = text[..text.len() - eol.len()].split(eol).collect();
    records
        .iter()
        .map(|r| {
            assert!(!r.contains('\r') && !r.contains('\n'), "{f:?}: {r:?}");
            let cols: Vec<&str> = match f {
                JournalFormat::Ebp => r.split(',').collect(),
                JournalFormat::Quadratus | JournalFormat::Ciel => Vec::new(),
                _ => r.split(';').collect(),
            };
            let expect = match f {
                JournalFormat::Ebp => 11,
                JournalFormat::Acd | JournalFormat::Agiris => 13,
                JournalFormat::Coala => 9,
                JournalFormat::Cegid => 8,
                _ => 0,
            };
            assert_eq!(cols.len(), expect, "{f:?}: {r:?}");
            match f {
                JournalFormat::Quadratus => {
                    assert_eq!(r.len(), quadratus::RECORD_LEN);
                    assert_eq!(&r[0..1], "M");
                    assert_eq!(&r[42..43], "+");
                    ReadLine {
                        entry: r[74..79].trim().to_owned(),
                        account: r[1..9].trim().to_owned(),
                        debit: &r[41..42] == "D",
                        amount: Decimal::new(r[43..55].parse().unwrap(), 2),
                    }
                }
                JournalFormat::Ciel => {
                    // Positions are bytes; each byte was read as one character.
                    let c: Vec<char> = r.chars().collect();
                    let cut = |a: usize, b: usize| c[a..b].iter().collect::<String>();
                    assert_eq!(c.len(), ciel::RECORD_LEN);
                    assert_eq!(cut(137, 142), "O2003");
                    ReadLine {
                        entry: cut(0, 5).trim().to_owned(),
                        account: cut(35, 46).trim().to_owned(),
                        debit: cut(84, 85) == "D",
                        amount: comma(&cut(71, 84)),
                    }
                }
                JournalFormat::Ebp => {
                    assert!(cols[5].starts_with('"') && cols[5].ends_with('"'));
                    ReadLine {
                        entry: cols[6].to_owned(),
                        account: cols[3].to_owned(),
                        debit: cols[8] == "D",
                        amount: cols[7].parse().unwrap(),
                    }
                }
                JournalFormat::Acd => {
                    let (dr, cr) = (comma(cols[9]), comma(cols[10]));
                    assert_eq!(dr + cr, comma(cols[11]));
                    ReadLine {
                        entry: cols[0].to_owned(),
                        account: cols[7].to_owned(),
                        debit: !dr.is_zero(),
                        amount: dr + cr,
                    }
                }
                JournalFormat::Agiris => {
                    let (dr, cr) = (comma(cols[7]), comma(cols[8]));
                    assert_eq!(cols[10], if dr.is_zero() { "C" } else { "D" });
                    assert_eq!(dr + cr, comma(cols[9]));
                    ReadLine {
                        entry: cols[0].to_owned(),
                        account: cols[4].to_owned(),
                        debit: !dr.is_zero(),
                        amount: comma(cols[9]),
                    }
                }
                JournalFormat::Coala => {
                    let (dr, cr) = (comma(cols[5]), comma(cols[6]));
                    ReadLine {
                        entry: cols[3].to_owned(),
                        account: if cols[8].is_empty() { cols[2] } else { cols[8] }.to_owned(),
                        debit: !dr.is_zero(),
                        amount: dr + cr,
                    }
                }
                JournalFormat::Cegid => ReadLine {
                    entry: cols[7].to_owned(),
                    account: if cols[3].is_empty() { cols[2] } else { cols[3] }.to_owned(),
                    debit: cols[4] == "D",
                    amount: comma(cols[5]),
                },
                _ => unreachable!(),
            }
        })
        .collect()
}

/// What a reader must find: every non-zero line of every entry, in order.
fn expected(layout: &Layout, mds: &[MappedDocument]) -> Vec<(String, bool, Decimal)> {
    mds.iter()
        .enumerate()
        .flat_map(|(i, md)| {
            EntryView::new(md, i as u64 + 1, d("2024-04-02"), layout)
                .lines
                .into_iter()
                .map(|l| {
                    (
                        text::fold(l.account(), layout.encoding),
                        l.is_debit(),
                        l.amount(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Checks a file against its entries: same lines, each entry and the file balanced.
fn assert_reads_back(f: JournalFormat, mds: &[MappedDocument]) {
    let layout = Layout::default_for(f);
    let bytes = encode(&render_text(&layout, mds), layout.encoding);
    let read = read_back(f, &bytes);
    let got: Vec<(String, bool, Decimal)> = read
        .iter()
        .map(|l| (l.account.clone(), l.debit, l.amount))
        .collect();
    assert_eq!(got, expected(&layout, mds), "{f:?}");
    let mut per_entry: std::collections::BTreeMap<&str, Decimal> = Default::default();
    for l in &read {
        assert!(
            l.amount > Decimal::ZERO,
            "{f:?}: amounts are positive, the side says D or C"
        );
        *per_entry.entry(&l.entry).or_default() += if l.debit { l.amount } else { -l.amount };
    }
    assert!(
        per_entry.values().all(|v| v.is_zero()),
        "{f:?}: {per_entry:?}"
    );
}

#[test]
fn every_layout_reads_back_to_its_entries() {
    for f in PACKAGES {
        assert_reads_back(f, &worked());
        assert_reads_back(f, &rich());
    }
}

#[test]
fn too_wide_accounts_and_journal_codes_are_refused_not_cut() {
    let m = rich_mapping();
    let mut doc = worked_invoice();
    doc.buyer.customer_id = Some("C010".into());
    let mut md = prepare(&doc, &m).unwrap();
    md.entry.lines[0].aux = Some("CSOCIETEGEN".into());
    md.entry.journal_code = "VTE".into();
    let q = check(
        &Layout::default_for(JournalFormat::Quadratus),
        &md,
        "m.toml",
    );
    let codes: Vec<&str> = q.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(
        codes,
        ["journal-code-too-long", "account-too-long"],
        "{q:?}"
    );
    assert_eq!(q[1].field, "buyer.customer_id");
    assert!(q[1].message.contains("CSOCIETEGEN") && q[1].fix.contains("C010"));
    // Ciel holds 11 characters; the separated layouts have no width.
    md.entry.journal_code = "VE".into();
    assert!(check(&Layout::default_for(JournalFormat::Ciel), &md, "m.toml").is_empty());
    assert!(check(&Layout::default_for(JournalFormat::Ebp), &md, "m.toml").is_empty());
}

/// Routes apart from syntax: the Chorus Pro rules hold documents back for the Chorus route only,
/// while the EN 16931 rules run for every e-invoice syntax; a layout takes the documents
/// `route::of` sends its way, a journal every document.
#[test]
fn chorus_rules_and_scope_follow_the_route_not_the_syntax() {
    use crate::einvoice::{rules, InvoiceView, Syntax};
    use crate::route::Route;
    let mut doc = worked_invoice();
    // Longer than the 20 characters Chorus Pro takes: a Chorus rule, not an EN 16931 one.
    doc.number = "F2024-0001-0000000000001".into();
    doc.buyer.chorus = true;
    let md = prepare(&doc, &mapping()).unwrap();
    let codes = |l: &Layout| -> Vec<String> {
        check(l, &md, "m.toml")
            .into_iter()
            .map(|p| p.code)
            .collect()
    };
    let en16931: Vec<String> = rules::en16931(&InvoiceView::new(&md))
        .into_iter()
        .map(|p| p.code)
        .collect();
    let mut other = doc.clone();
    other.buyer.chorus = false;
    for (format, syntax) in [
        (JournalFormat::ChorusUbl, Syntax::Ubl),
        (JournalFormat::ChorusCii, Syntax::Cii),
    ] {
        let chorus = Layout::default_for(format);
        assert_eq!(
            (chorus.syntax, chorus.route),
            (Some(syntax), Some(Route::ChorusB2g))
        );
        assert!(codes(&chorus).contains(&"CHORUS-NUMBER-LENGTH".to_owned()));
        assert!(in_scope(&chorus, &doc) && !in_scope(&chorus, &other));
        // The same syntax for no platform: EN 16931 only, and every document.
        let unrouted = Layout {
            route: None,
            ..chorus
        };
        assert_eq!(codes(&unrouted), en16931);
        assert!(in_scope(&unrouted, &doc) && in_scope(&unrouted, &other));
    }
    let fec = Layout::default_for(JournalFormat::Fec);
    assert_eq!((fec.syntax, fec.route), (None, None));
    assert!(in_scope(&fec, &doc) && in_scope(&fec, &other));
}

fn label_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(';'),
            Just(','),
            Just('"'),
            Just('\t'),
            Just('\r'),
            Just('\n'),
            Just('|'),
            Just('é'),
            Just('Œ'),
            Just('€'),
            Just('’'),
            Just('日'),
            Just(' '),
            proptest::char::range('a', 'z'),
        ],
        1..60,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn line_strategy() -> impl Strategy<Value = (usize, usize, i64)> {
    (0..5usize, 0..5usize, 1..5_000_000i64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any documents, any label: every layout keeps its columns or widths, every entry and the
    /// file balance, and every amount and account reads back where the note puts it.
    #[test]
    fn any_documents_read_back_balanced(
        docs in proptest::collection::vec(
            (label_strategy(), any::<bool>(), proptest::collection::vec(line_strategy(), 1..12)),
            1..5,
        )
    ) {
        let m = rich_mapping();
        const GL: [(&str, &str); 5] = [
            ("gl_account", "CONSEIL"), ("gl_account", "FORMATION"), ("product_code", "LIVRE"),
            ("product_code", "REPAS"), ("product_code", "PRESSE"),
        ];
        let mds: Vec<MappedDocument> = docs
            .iter()
            .enumerate()
            .map(|(i, (name, credit, lines))| {
                let lines: Vec<(&str, (&str, &str), Decimal, &str)> = lines
                    .iter()
                    .map(|(g, t, cents)| ("x", GL[*g], Decimal::new(*cents, 2), TAXES[*t].0))
                    .collect();
                let doc = document(&format!("P{name}{i}").replace(['\r', '\n', '\t'], ""),
                    *credit, "2026-05-04", ("C010", name), &lines);
                prepare(&doc, &m).unwrap()
            })
            .collect();
        for f in PACKAGES {
            assert_reads_back(f, &mds);
        }
    }
}

/// The French core layout runs the BR-FR pre-check and writes what it asks, where the Chorus
/// layout of the same syntax writes and checks the document as before.
#[test]
fn the_french_core_layout_writes_and_checks_the_br_fr_terms_and_chorus_does_not() {
    use crate::einvoice::{Profile, Syntax};
    let mut doc = worked_invoice();
    doc.billing_framework = Some("A1".into());
    doc.operation_nature = None;
    let md = prepare(&doc, &mapping()).unwrap();
    let codes = |l: &Layout| -> Vec<String> {
        check(l, &md, "m.toml")
            .into_iter()
            .map(|p| p.code)
            .filter(|c| c.starts_with("BR-FR"))
            .collect()
    };
    for (format, syntax) in [
        (JournalFormat::ChorusUbl, Syntax::Ubl),
        (JournalFormat::ChorusCii, Syntax::Cii),
    ] {
        let chorus = Layout::default_for(format);
        let french = Layout::french_core(syntax);
        assert_eq!(chorus.profile, Profile::En16931);
        assert_eq!((french.syntax, french.route), (Some(syntax), None));
        assert!(codes(&chorus).is_empty());
        assert!(
            codes(&french).contains(&"BR-FR-08".to_owned()),
            "{:?}",
            codes(&french)
        );
        let xml = |l: &Layout| String::from_utf8(einvoice_xml(l, &md).unwrap()).unwrap();
        // The defaults notes of the French core, absent from the Chorus document.
        assert!(xml(&french).contains("PMT") && !xml(&chorus).contains("AAB"));
    }
    // With a nature of operation, BT-23 is its French code.
    let mut doc = worked_invoice();
    doc.billing_framework = None;
    doc.operation_nature = Some(crate::model::OperationNature::Services);
    let md = prepare(&doc, &mapping()).unwrap();
    let cii =
        String::from_utf8(einvoice_xml(&Layout::french_core(Syntax::Cii), &md).unwrap()).unwrap();
    assert!(cii.contains("<ram:ID>S1</ram:ID>"), "{cii}");
}
