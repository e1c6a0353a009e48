//! CSV in the two shapes invoicing users export: one row per document with the payer's totals,
//! or one row per invoice line (detailed). `;` and decimal comma by default (what French
//! spreadsheet software opens); a field holding the separator or a quote is quoted.

use rust_decimal::Decimal;

use crate::format::text::amount;
use crate::mapping::MappedDocument;

/// Columns of the one-row-per-document shape.
pub const DOCUMENT_COLUMNS: [&str; 16] = [
    "type",
    "number",
    "date",
    "due_date",
    "payer",
    "customer_id",
    "customer_account",
    "period",
    "net",
    "tax",
    "gross",
    "paid",
    "due",
    "currency",
    "status",
    "journal",
];

/// Columns of the one-row-per-line shape.
pub const LINE_COLUMNS: [&str; 17] = [
    "type",
    "number",
    "date",
    "payer",
    "customer_id",
    "line",
    "description",
    "quantity",
    "unit",
    "unit_price",
    "discount",
    "net",
    "tax_code",
    "vat_rate",
    "account",
    "job_ref",
    "journal",
];

/// Field and decimal separators of one CSV file.
#[derive(Debug, Clone, Copy)]
pub struct CsvStyle {
    /// Field separator.
    pub sep: char,
    /// Decimal separator: `,` unless the field separator is a comma.
    pub decimal: char,
}

impl CsvStyle {
    /// The style for a field separator.
    pub fn new(sep: char) -> Self {
        CsvStyle {
            sep,
            decimal: if sep == ',' { '.' } else { ',' },
        }
    }
}

fn field(out: &mut String, value: &str, style: CsvStyle, first: bool) {
    if !first {
        out.push(style.sep);
    }
    // Line breaks and other control characters never survive into a cell: importers split
    // records on them or refuse the file.
    let v: String = value
        .chars()
        .map(|c| if super::text::unwritable(c) { ' ' } else { c })
        .collect();
    if v.contains(style.sep) || v.contains('"') || v.starts_with(' ') || v.ends_with(' ') {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&v);
    }
}

fn row(out: &mut String, values: &[&str], style: CsvStyle) {
    for (i, v) in values.iter().enumerate() {
        field(out, v, style, i == 0);
    }
    out.push_str("\r\n");
}

/// The header row of a shape.
pub fn header(columns: &[&str], style: CsvStyle) -> String {
    let mut s = String::new();
    row(&mut s, columns, style);
    s
}

fn payment_status(md: &MappedDocument) -> &'static str {
    let t = &md.doc.totals;
    if t.due.is_zero() {
        "paid"
    } else if t.paid > Decimal::ZERO {
        "partially_paid"
    } else {
        "unpaid"
    }
}

/// Appends the document's row (one-row-per-document shape).
pub fn render_document(out: &mut String, md: &MappedDocument, style: CsvStyle) {
    let d = &md.doc;
    let t = &d.totals;
    let aux = md
        .entry
        .lines
        .first()
        .and_then(|l| l.aux.clone())
        .unwrap_or_default();
    row(
        out,
        &[
            d.kind.as_str(),
            &d.number,
            &d.issue_date.to_string(),
            &d.due_date.map(|x| x.to_string()).unwrap_or_default(),
            &d.buyer.name,
            d.customer_id(),
            &aux,
            &d.issue_date.format("%Y-%m").to_string(),
            &amount(t.net, style.decimal),
            &amount(t.tax, style.decimal),
            &amount(t.gross, style.decimal),
            &amount(t.paid, style.decimal),
            &amount(t.due, style.decimal),
            &d.currency,
            payment_status(md),
            &md.entry.journal_code,
        ],
        style,
    );
}

/// Appends one row per document line (detailed shape).
pub fn render_lines(out: &mut String, md: &MappedDocument, style: CsvStyle) {
    let d = &md.doc;
    // A quantity, price or rate as written, without trailing zeros, in the style's decimal sign.
    let number = |d: Decimal| {
        let s = d.to_string();
        if style.decimal == ',' {
            s.replace('.', ",")
        } else {
            s
        }
    };
    for (i, (l, m)) in d.lines.iter().zip(&md.lines).enumerate() {
        let qty = number(l.quantity.normalize());
        let price = l.unit_price.normalize();
        let price = if price.scale() < 2 {
            amount(price, style.decimal)
        } else {
            number(price)
        };
        let rate = number(m.rate.normalize());
        row(
            out,
            &[
                d.kind.as_str(),
                &d.number,
                &d.issue_date.to_string(),
                &d.buyer.name,
                d.customer_id(),
                l.id.as_deref().unwrap_or(&(i + 1).to_string()),
                &l.description,
                &qty,
                &l.unit,
                &price,
                &amount(l.discount.unwrap_or_default(), style.decimal),
                &amount(l.net_amount, style.decimal),
                &l.tax_code,
                &rate,
                &m.account,
                l.job_ref.as_deref().unwrap_or(""),
                &md.entry.journal_code,
            ],
            style,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::map_document;
    use crate::mapping::tests::{mapping, worked_credit_note, worked_invoice};

    #[test]
    fn document_rows_snapshot() {
        let m = mapping();
        let style = CsvStyle::new(';');
        let mut s = header(&DOCUMENT_COLUMNS, style);
        for doc in [worked_invoice(), worked_credit_note()] {
            render_document(&mut s, &map_document(&doc, &m).unwrap(), style);
        }
        insta::assert_snapshot!(s);
    }

    #[test]
    fn line_rows_snapshot_and_quoting() {
        let m = mapping();
        let style = CsvStyle::new(';');
        let mut doc = worked_invoice();
        doc.lines[0].description = "Conseil; \"stratégie\"\nphase 2".into();
        let mut s = header(&LINE_COLUMNS, style);
        render_lines(&mut s, &map_document(&doc, &m).unwrap(), style);
        insta::assert_snapshot!(s);
        assert_eq!(
            s.lines().count(),
            3,
            "a line break inside a description must not add a record"
        );
    }
}
