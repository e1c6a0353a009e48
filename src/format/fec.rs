//! The FEC layout (journal-formats note §1.4): 18 columns, tab or pipe, AAAAMMJJ dates, decimal
//! comma, `0,00` on the empty side, CRLF after every record, auxiliary account on the customer
//! line only, zero lines skipped.

use chrono::NaiveDate;

use crate::format::text::{amount, clean_label};
use crate::format::FecSeparator;
use crate::mapping::MappedDocument;

/// The 18 column names, in order.
pub const COLUMNS: [&str; 18] = [
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
];

fn sep_char(sep: FecSeparator) -> char {
    match sep {
        FecSeparator::Tab => '\t',
        FecSeparator::Pipe => '|',
    }
}

/// The header line, CRLF included.
pub fn header(sep: FecSeparator) -> String {
    let mut s = COLUMNS.join(&sep_char(sep).to_string());
    s.push_str("\r\n");
    s
}

/// `EcritureNum` for the n-th entry of a journal: the journal code and six digits (`VE000001`).
pub fn entry_number(journal: &str, n: u64) -> String {
    format!("{journal}{n:06}")
}

/// File name: `<SIREN>FEC<fiscal-year closing AAAAMMJJ>`, then a suffix that keeps each batch apart.
pub fn file_name(siren: &str, closing: NaiveDate, suffix: &str) -> String {
    format!("{siren}FEC{}{suffix}.txt", closing.format("%Y%m%d"))
}

/// Appends the records of one document's entry (as text; the caller encodes).
pub fn render_entry(
    out: &mut String,
    md: &MappedDocument,
    entry_num: &str,
    valid_date: NaiveDate,
    sep: FecSeparator,
    account_length: Option<usize>,
) {
    let sep = sep_char(sep);
    let e = &md.entry;
    let date = md.doc.issue_date.format("%Y%m%d").to_string();
    let valid = valid_date
        .max(md.doc.issue_date)
        .format("%Y%m%d")
        .to_string();
    let journal_code = clean_label(&e.journal_code);
    let journal_label = clean_label(&e.journal_label);
    let piece = clean_label(&md.doc.number);
    let label = clean_label(&e.label);
    for l in &e.lines {
        if l.debit.is_zero() && l.credit.is_zero() {
            continue;
        }
        let fields: [&str; 18] = [
            &journal_code,
            &journal_label,
            entry_num,
            &date,
            &clean_label(&super::pad_account(&l.account, account_length)),
            &clean_label(&l.account_label),
            &l.aux.as_deref().map(clean_label).unwrap_or_default(),
            &l.aux_label.as_deref().map(clean_label).unwrap_or_default(),
            &piece,
            &date,
            &label,
            &amount(l.debit, ','),
            &amount(l.credit, ','),
            "",
            "",
            &valid,
            "",
            "",
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(sep);
            }
            out.push_str(f);
        }
        out.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::text::encode;
    use crate::format::Encoding;
    use crate::mapping::map_document;
    use crate::mapping::tests::{mapping, worked_credit_note, worked_invoice};

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// The exact bytes of the journal-formats note §1.5 (the account labels of the note's chart).
    fn worked_file(sep: FecSeparator) -> Vec<u8> {
        let m = mapping();
        let mut s = header(sep);
        for (i, doc) in [worked_invoice(), worked_credit_note()].iter().enumerate() {
            let md = map_document(doc, &m).unwrap();
            render_entry(
                &mut s,
                &md,
                &entry_number("VE", i as u64 + 1),
                d("2024-04-02"),
                sep,
                None,
            );
        }
        encode(&s, Encoding::Iso885915)
    }

    #[test]
    fn worked_example_tab_is_byte_exact() {
        let want = "JournalCode\tJournalLib\tEcritureNum\tEcritureDate\tCompteNum\tCompteLib\tCompAuxNum\tCompAuxLib\tPieceRef\tPieceDate\tEcritureLib\tDebit\tCredit\tEcritureLet\tDateLet\tValidDate\tMontantdevise\tIdevise\r\n\
VE\tJournal des ventes\tVE000001\t20240315\t411000\tClients\tCDUPONT\tDupont SARL\tF2024-0001\t20240315\tF2024-0001 Dupont SARL\t1358,25\t0,00\t\t\t20240402\t\t\r\n\
VE\tJournal des ventes\tVE000001\t20240315\t706000\tPrestations de services\t\t\tF2024-0001\t20240315\tF2024-0001 Dupont SARL\t0,00\t1000,00\t\t\t20240402\t\t\r\n\
VE\tJournal des ventes\tVE000001\t20240315\t707000\tVentes de marchandises\t\t\tF2024-0001\t20240315\tF2024-0001 Dupont SARL\t0,00\t150,00\t\t\t20240402\t\t\r\n\
VE\tJournal des ventes\tVE000001\t20240315\t445711\tTVA collect\u{e9}e 20%\t\t\tF2024-0001\t20240315\tF2024-0001 Dupont SARL\t0,00\t200,00\t\t\t20240402\t\t\r\n\
VE\tJournal des ventes\tVE000001\t20240315\t445713\tTVA collect\u{e9}e 5,5%\t\t\tF2024-0001\t20240315\tF2024-0001 Dupont SARL\t0,00\t8,25\t\t\t20240402\t\t\r\n\
VE\tJournal des ventes\tVE000002\t20240320\t411000\tClients\tCDUPONT\tDupont SARL\tA2024-0001\t20240320\tA2024-0001 Dupont SARL\t0,00\t120,00\t\t\t20240402\t\t\r\n\
VE\tJournal des ventes\tVE000002\t20240320\t706000\tPrestations de services\t\t\tA2024-0001\t20240320\tA2024-0001 Dupont SARL\t100,00\t0,00\t\t\t20240402\t\t\r\n\
VE\tJournal des ventes\tVE000002\t20240320\t445711\tTVA collect\u{e9}e 20%\t\t\tA2024-0001\t20240320\tA2024-0001 Dupont SARL\t20,00\t0,00\t\t\t20240402\t\t\r\n";
        assert_eq!(
            worked_file(FecSeparator::Tab),
            encode(want, Encoding::Iso885915)
        );
        assert!(worked_file(FecSeparator::Tab).contains(&0xE9));
    }

    #[test]
    fn pipe_variant_differs_only_by_separator() {
        let tab = worked_file(FecSeparator::Tab);
        let pipe: Vec<u8> = worked_file(FecSeparator::Pipe)
            .into_iter()
            .map(|b| if b == b'|' { b'\t' } else { b })
            .collect();
        assert_eq!(tab, pipe);
    }

    #[test]
    fn hostile_labels_keep_eighteen_columns() {
        let m = mapping();
        let mut doc = worked_invoice();
        doc.buyer.name = "Dupont\t|SARL\r\nbis".into();
        doc.number = "F|1\t2".into();
        let md = map_document(&doc, &m).unwrap();
        let mut s = String::new();
        render_entry(
            &mut s,
            &md,
            "VE000001",
            d("2024-04-02"),
            FecSeparator::Tab,
            None,
        );
        for line in s.split("\r\n").filter(|l| !l.is_empty()) {
            assert_eq!(line.split('\t').count(), 18, "{line:?}");
            assert!(!line.contains('|') && !line.contains('\n'));
        }
    }

    #[test]
    fn file_name_follows_the_norm() {
        assert_eq!(
            file_name("123456782", d("2024-12-31"), ""),
            "123456782FEC20241231.txt"
        );
    }
}
