//! UBL 2.1 `Invoice` and `CreditNote` carrying the EN 16931 business terms facto's model holds,
//! as Chorus Pro reads them (`IN_DP_E1_UBL_INVOICE`): BT-10 buyer reference = service code,
//! BT-13 order reference = engagement number, BT-23 = billing framework, SIRET with scheme 0009
//! (the French core profile adds its BR-FR terms: see `InvoiceView`).
//! Element order follows the UBL 2.1 schemas (the tests validate every document against them).

use rust_decimal::Decimal;

use super::xml::Xml;
use super::{amount, number, present, InvoiceView, Syntax, EN16931};
use crate::mapping::VatCategory;
use crate::model::{Address, Party};

const NS_INVOICE: &str = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
const NS_CREDIT_NOTE: &str = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2";
const NS_CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";
const NS_CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";

/// UNCL 5305 code of a VAT category.
pub fn category_code(c: VatCategory) -> &'static str {
    match c {
        VatCategory::S => "S",
        VatCategory::Z => "Z",
        VatCategory::E => "E",
        VatCategory::AE => "AE",
        VatCategory::K => "K",
        VatCategory::G => "G",
        VatCategory::O => "O",
    }
}

fn address(x: &mut Xml, tag: &str, a: &Address) {
    x.open(tag, &[]);
    x.opt("cbc:StreetName", a.lines.first().map(String::as_str));
    x.opt(
        "cbc:AdditionalStreetName",
        a.lines.get(1).map(String::as_str),
    );
    x.opt("cbc:CityName", a.city.as_deref());
    x.opt("cbc:PostalZone", a.postcode.as_deref());
    if a.lines.len() > 2 {
        x.within(
            &["cac:AddressLine"],
            "cbc:Line",
            &[],
            &a.lines[2..].join(", "),
        );
    }
    if let Some(c) = present(a.country_code.as_deref()) {
        x.within(&["cac:Country"], "cbc:IdentificationCode", &[], c);
    }
    x.close(tag);
}

fn party(x: &mut Xml, v: &InvoiceView<'_>, tag: &str, p: &Party) {
    x.open(tag, &[]);
    x.open("cac:Party", &[]);
    if let Some(e) = v.electronic_address(p) {
        x.leaf("cbc:EndpointID", &[("schemeID", &e.scheme)], &e.value);
    }
    if let Some(siret) = present(p.siret.as_deref()) {
        x.within(
            &["cac:PartyIdentification"],
            "cbc:ID",
            &[("schemeID", "0009")],
            siret,
        );
    }
    x.within(&["cac:PartyName"], "cbc:Name", &[], &p.name);
    if let Some(a) = &p.billing_address {
        address(x, "cac:PostalAddress", a);
    }
    if let Some(vat) = present(p.vat_id.as_deref()) {
        x.open("cac:PartyTaxScheme", &[]);
        x.leaf("cbc:CompanyID", &[], vat);
        x.within(&["cac:TaxScheme"], "cbc:ID", &[], "VAT");
        x.close("cac:PartyTaxScheme");
    }
    x.open("cac:PartyLegalEntity", &[]);
    x.leaf("cbc:RegistrationName", &[], &p.name);
    if let Some((scheme, id)) = v.legal_id(p) {
        x.leaf("cbc:CompanyID", &[("schemeID", scheme)], id);
    }
    x.close("cac:PartyLegalEntity");
    if let Some(mail) = present(p.email.as_deref()) {
        x.within(&["cac:Contact"], "cbc:ElectronicMail", &[], mail);
    }
    x.close("cac:Party");
    x.close(tag);
}

fn tax_category(
    x: &mut Xml,
    tag: &str,
    c: VatCategory,
    rate: &str,
    reason: (Option<&str>, Option<&str>),
) {
    x.open(tag, &[]);
    x.leaf("cbc:ID", &[], category_code(c));
    if c != VatCategory::O {
        x.leaf("cbc:Percent", &[], rate);
    }
    x.opt("cbc:TaxExemptionReasonCode", reason.1);
    x.opt("cbc:TaxExemptionReason", reason.0);
    x.within(&["cac:TaxScheme"], "cbc:ID", &[], "VAT");
    x.close(tag);
}

fn payment_means(x: &mut Xml, v: &InvoiceView<'_>) {
    x.open("cac:PaymentMeans", &[]);
    x.leaf("cbc:PaymentMeansCode", &[], v.payment_means());
    if v.is_credit_note() {
        x.opt(
            "cbc:PaymentDueDate",
            v.doc.due_date.map(|d| d.to_string()).as_deref(),
        );
    }
    if let Some(iban) = v.iban() {
        x.open("cac:PayeeFinancialAccount", &[]);
        x.leaf("cbc:ID", &[], iban);
        if let Some(bic) = v.bic() {
            x.within(&["cac:FinancialInstitutionBranch"], "cbc:ID", &[], bic);
        }
        x.close("cac:PayeeFinancialAccount");
    }
    x.close("cac:PaymentMeans");
}

/// An amount element with its currency (`currencyID`, every UBL amount carries it).
fn money(x: &mut Xml, tag: &str, cur: &str, d: Decimal) {
    x.leaf(tag, &[("currencyID", cur)], &amount(d));
}

/// The UBL document of one invoice or credit note.
pub fn render(v: &InvoiceView<'_>) -> Vec<u8> {
    let d = v.doc;
    let credit = v.is_credit_note();
    let cur = d.currency.as_str();
    let (root, ns, line_tag, qty_tag) = if credit {
        (
            "CreditNote",
            NS_CREDIT_NOTE,
            "cac:CreditNoteLine",
            "cbc:CreditedQuantity",
        )
    } else {
        (
            "Invoice",
            NS_INVOICE,
            "cac:InvoiceLine",
            "cbc:InvoicedQuantity",
        )
    };
    let mut x = Xml::new();
    x.open(
        root,
        &[("xmlns", ns), ("xmlns:cac", NS_CAC), ("xmlns:cbc", NS_CBC)],
    );
    x.leaf("cbc:CustomizationID", &[], EN16931);
    x.leaf("cbc:ProfileID", &[], v.business_process());
    x.leaf("cbc:ID", &[], &d.number);
    x.leaf("cbc:IssueDate", &[], &d.issue_date.to_string());
    if !credit {
        x.opt("cbc:DueDate", d.due_date.map(|x| x.to_string()).as_deref());
        x.leaf("cbc:InvoiceTypeCode", &[], v.type_code());
    } else {
        x.leaf("cbc:CreditNoteTypeCode", &[], v.type_code());
    }
    for n in v.notes().iter() {
        x.leaf("cbc:Note", &[], &note_text(n));
    }
    x.leaf("cbc:DocumentCurrencyCode", &[], cur);
    x.opt("cbc:BuyerReference", d.service_code.as_deref());
    if let Some(code) = v.vat_point_code(Syntax::Ubl) {
        // BT-8 lives in the invoicing period (BG-14), which may carry it alone.
        x.within(&["cac:InvoicePeriod"], "cbc:DescriptionCode", &[], code);
    }
    if let Some(po) = v.order_reference() {
        x.within(&["cac:OrderReference"], "cbc:ID", &[], po);
    }
    if let Some(prev) = present(d.preceding_invoice.as_deref()) {
        x.open("cac:BillingReference", &[]);
        x.open("cac:InvoiceDocumentReference", &[]);
        x.leaf("cbc:ID", &[], prev);
        if let Some(date) = v.preceding_invoice_date() {
            x.leaf("cbc:IssueDate", &[], &date.to_string());
        }
        x.close("cac:InvoiceDocumentReference");
        x.close("cac:BillingReference");
    }
    if let Some(c) = present(d.contract_reference.as_deref()) {
        x.within(&["cac:ContractDocumentReference"], "cbc:ID", &[], c);
    }
    party(&mut x, v, "cac:AccountingSupplierParty", &d.seller);
    party(&mut x, v, "cac:AccountingCustomerParty", &d.buyer);
    if d.buyer.delivery_address.is_some() || d.delivery_date.is_some() {
        x.open("cac:Delivery", &[]);
        if let Some(day) = d.delivery_date {
            x.leaf("cbc:ActualDeliveryDate", &[], &day.to_string());
        }
        if let Some(a) = &d.buyer.delivery_address {
            x.open("cac:DeliveryLocation", &[]);
            match present(a.siret.as_deref()) {
                // The French core names the scheme of a location identifier (BR-FR-CO-10, BT-71-1).
                Some(siret) if v.profile.is_french_core() => {
                    x.leaf("cbc:ID", &[("schemeID", "0009")], siret);
                }
                _ => x.opt("cbc:ID", a.siret.as_deref()),
            }
            address(&mut x, "cac:Address", a);
            x.close("cac:DeliveryLocation");
        }
        x.close("cac:Delivery");
    }
    if v.has_payment_means() {
        payment_means(&mut x, v);
    }
    if let Some(t) = present(d.payment_terms.as_deref()) {
        x.within(&["cac:PaymentTerms"], "cbc:Note", &[], t);
    }
    x.open("cac:TaxTotal", &[]);
    money(&mut x, "cbc:TaxAmount", cur, d.totals.tax);
    for r in &v.vat {
        x.open("cac:TaxSubtotal", &[]);
        money(&mut x, "cbc:TaxableAmount", cur, r.base);
        money(&mut x, "cbc:TaxAmount", cur, r.amount);
        tax_category(
            &mut x,
            "cac:TaxCategory",
            r.category,
            &number(r.rate),
            (r.exemption_reason.as_deref(), r.exemption_code.as_deref()),
        );
        x.close("cac:TaxSubtotal");
    }
    x.close("cac:TaxTotal");
    x.open("cac:LegalMonetaryTotal", &[]);
    money(&mut x, "cbc:LineExtensionAmount", cur, v.line_total);
    money(&mut x, "cbc:TaxExclusiveAmount", cur, d.totals.net);
    money(&mut x, "cbc:TaxInclusiveAmount", cur, d.totals.gross);
    if !d.totals.paid.is_zero() {
        money(&mut x, "cbc:PrepaidAmount", cur, d.totals.paid);
    }
    money(&mut x, "cbc:PayableAmount", cur, d.totals.due);
    x.close("cac:LegalMonetaryTotal");
    for l in &v.lines {
        let line = l.line;
        x.open(line_tag, &[]);
        x.leaf("cbc:ID", &[], &l.id());
        x.leaf(qty_tag, &[("unitCode", &line.unit)], &number(line.quantity));
        money(&mut x, "cbc:LineExtensionAmount", cur, line.net_amount);
        if let Some(disc) = line.discount.filter(|d| !d.is_zero()) {
            x.open("cac:AllowanceCharge", &[]);
            x.leaf("cbc:ChargeIndicator", &[], "false");
            x.leaf("cbc:AllowanceChargeReasonCode", &[], "95");
            money(&mut x, "cbc:Amount", cur, disc);
            x.close("cac:AllowanceCharge");
        }
        x.open("cac:Item", &[]);
        x.leaf("cbc:Name", &[], l.name());
        if let Some(code) = present(line.product_code.as_deref()) {
            x.within(&["cac:SellersItemIdentification"], "cbc:ID", &[], code);
        }
        tax_category(
            &mut x,
            "cac:ClassifiedTaxCategory",
            l.category,
            &number(l.rate),
            (None, None),
        );
        x.close("cac:Item");
        x.within(
            &["cac:Price"],
            "cbc:PriceAmount",
            &[("currencyID", cur)],
            &number(line.unit_price),
        );
        x.close(line_tag);
    }
    x.close(root);
    x.finish()
}

/// A note as UBL carries it (BT-21, BT-22): its subject code, if any, as `#XYZ#` before its
/// text. The rules read what this writes.
pub fn note_text(n: &crate::model::Note) -> String {
    match present(n.subject_code.as_deref()) {
        Some(code) => format!("#{code}#{}", n.text),
        None => n.text.clone(),
    }
}
