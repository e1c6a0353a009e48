//! What is sent to Xero for one document: the invoice or credit note (`XDoc`), its contact
//! reference and its lines, built from a mapped document.

use rust_decimal::Decimal;
use serde::Serialize;

use super::XeroRun;
use crate::einvoice::InvoiceView;
use crate::mapping::MappedDocument;
use crate::model::DocKind;
use crate::targets::pennylane::line_taxes;
use crate::targets::Num;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct XLine {
    description: String,
    quantity: Num,
    unit_amount: Num,
    account_code: String,
    tax_type: String,
    tax_amount: Num,
    line_amount: Num,
    #[serde(skip_serializing_if = "Option::is_none")]
    discount_amount: Option<Num>,
}

#[derive(Serialize)]
struct XContact {
    #[serde(rename = "ContactID")]
    contact_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct XDoc {
    #[serde(rename = "Type")]
    kind: &'static str,
    contact: XContact,
    date: String,
    due_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    invoice_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credit_note_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    status: &'static str,
    line_amount_types: &'static str,
    currency_code: String,
    line_items: Vec<XLine>,
}

impl XeroRun {
    pub(super) fn document(&self, md: &MappedDocument, contact: String) -> XDoc {
        let d = &md.doc;
        let v = InvoiceView::new(md);
        let credit = d.kind == DocKind::CreditNote;
        let taxes = line_taxes(&v);
        let line_items = v
            .lines
            .iter()
            .zip(&md.lines)
            .zip(taxes)
            .map(|((l, m), tax)| {
                let line = l.line;
                let discount = line.discount.filter(|x| !x.is_zero());
                // Xero takes no discount on credit notes: the line's net is sent as one unit.
                let (quantity, unit, discount) = match discount {
                    Some(_) if credit => (Decimal::ONE, line.net_amount, None),
                    other => (line.quantity, line.unit_price, other),
                };
                XLine {
                    description: if line.description.trim().is_empty() {
                        d.number.clone()
                    } else {
                        line.description.clone()
                    },
                    quantity: Num(quantity),
                    unit_amount: Num(unit),
                    account_code: m
                        .key(super::config::ACCOUNT_CODE)
                        .unwrap_or_default()
                        .to_owned(),
                    tax_type: m
                        .key(super::config::TAX_TYPE)
                        .unwrap_or_default()
                        .to_owned(),
                    tax_amount: Num(tax),
                    line_amount: Num(line.net_amount),
                    discount_amount: discount.map(Num),
                }
            })
            .collect();
        XDoc {
            kind: self.doc_type(credit),
            contact: XContact {
                contact_id: contact,
            },
            date: d.issue_date.to_string(),
            due_date: d.due_date.unwrap_or(d.issue_date).to_string(),
            invoice_number: (!credit).then(|| d.number.clone()),
            credit_note_number: credit.then(|| d.number.clone()),
            reference: d
                .purchase_order
                .clone()
                .or_else(|| d.engagement_number.clone()),
            status: "AUTHORISED",
            line_amount_types: "Exclusive",
            currency_code: d.currency.clone(),
            line_items,
        }
    }
}
