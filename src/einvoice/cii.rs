//! UN/CEFACT Cross Industry Invoice D16B (the EN 16931 CII binding, Chorus Pro's
//! `IN_DP_E1_CII_16B`; also valid against D22B, the French core's): one root for invoices
//! (380, 384, 386) and credit notes (381). BT-10 buyer reference = service code, BT-13 =
//! engagement number, BT-23 = billing framework, SIRET with scheme 0009 (the French core
//! profile adds its BR-FR terms: see `InvoiceView`).
//! Element order follows the D16B schema (the tests validate every document against it, and the
//! French core's against D22B).

use super::xml::Xml;
use super::{amount, number, present, InvoiceView, Syntax, EN16931};
use crate::einvoice::ubl::category_code;
use crate::mapping::VatCategory;
use crate::model::{Address, Party};

const NS_RSM: &str = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100";
const NS_RAM: &str =
    "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100";
const NS_UDT: &str = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100";
const NS_QDT: &str = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100";

fn date(x: &mut Xml, tag: &str, d: chrono::NaiveDate) {
    x.within(
        &[tag],
        "udt:DateTimeString",
        &[("format", "102")],
        &d.format("%Y%m%d").to_string(),
    );
}

fn address(x: &mut Xml, tag: &str, a: &Address) {
    x.open(tag, &[]);
    x.opt("ram:PostcodeCode", a.postcode.as_deref());
    x.opt("ram:LineOne", a.lines.first().map(String::as_str));
    x.opt("ram:LineTwo", a.lines.get(1).map(String::as_str));
    if a.lines.len() > 2 {
        x.leaf("ram:LineThree", &[], &a.lines[2..].join(", "));
    }
    x.opt("ram:CityName", a.city.as_deref());
    x.opt("ram:CountryID", a.country_code.as_deref());
    x.close(tag);
}

fn party(x: &mut Xml, v: &InvoiceView<'_>, tag: &str, p: &Party) {
    x.open(tag, &[]);
    if let Some(siret) = present(p.siret.as_deref()) {
        x.leaf("ram:GlobalID", &[("schemeID", "0009")], siret);
    }
    x.leaf("ram:Name", &[], &p.name);
    if let Some((scheme, id)) = v.legal_id(p) {
        let outer = ["ram:SpecifiedLegalOrganization"];
        x.within(&outer, "ram:ID", &[("schemeID", scheme)], id);
    }
    if let Some(mail) = present(p.email.as_deref()) {
        let outer = [
            "ram:DefinedTradeContact",
            "ram:EmailURIUniversalCommunication",
        ];
        x.within(&outer, "ram:URIID", &[], mail);
    }
    if let Some(a) = &p.billing_address {
        address(x, "ram:PostalTradeAddress", a);
    }
    if let Some(e) = v.electronic_address(p) {
        let outer = ["ram:URIUniversalCommunication"];
        x.within(&outer, "ram:URIID", &[("schemeID", &e.scheme)], &e.value);
    }
    if let Some(vat) = present(p.vat_id.as_deref()) {
        let outer = ["ram:SpecifiedTaxRegistration"];
        x.within(&outer, "ram:ID", &[("schemeID", "VA")], vat);
    }
    x.close(tag);
}

fn indicator(x: &mut Xml, value: bool) {
    let text = if value { "true" } else { "false" };
    x.within(&["ram:ChargeIndicator"], "udt:Indicator", &[], text);
}

/// The CII document of one invoice or credit note.
pub fn render(v: &InvoiceView<'_>) -> Vec<u8> {
    let d = v.doc;
    let cur = d.currency.as_str();
    let mut x = Xml::new();
    x.open(
        "rsm:CrossIndustryInvoice",
        &[
            ("xmlns:rsm", NS_RSM),
            ("xmlns:ram", NS_RAM),
            ("xmlns:udt", NS_UDT),
            ("xmlns:qdt", NS_QDT),
        ],
    );
    x.open("rsm:ExchangedDocumentContext", &[]);
    let outer = ["ram:BusinessProcessSpecifiedDocumentContextParameter"];
    x.within(&outer, "ram:ID", &[], v.business_process());
    let outer = ["ram:GuidelineSpecifiedDocumentContextParameter"];
    x.within(&outer, "ram:ID", &[], EN16931);
    x.close("rsm:ExchangedDocumentContext");

    x.open("rsm:ExchangedDocument", &[]);
    x.leaf("ram:ID", &[], &d.number);
    x.leaf("ram:TypeCode", &[], v.type_code());
    date(&mut x, "ram:IssueDateTime", d.issue_date);
    for n in v.notes().iter() {
        x.open("ram:IncludedNote", &[]);
        x.leaf("ram:Content", &[], &n.text);
        x.opt("ram:SubjectCode", n.subject_code.as_deref());
        x.close("ram:IncludedNote");
    }
    x.close("rsm:ExchangedDocument");

    x.open("rsm:SupplyChainTradeTransaction", &[]);
    for l in &v.lines {
        let line = l.line;
        x.open("ram:IncludedSupplyChainTradeLineItem", &[]);
        x.within(
            &["ram:AssociatedDocumentLineDocument"],
            "ram:LineID",
            &[],
            &l.id(),
        );
        x.open("ram:SpecifiedTradeProduct", &[]);
        x.opt("ram:SellerAssignedID", line.product_code.as_deref());
        x.leaf("ram:Name", &[], l.name());
        x.close("ram:SpecifiedTradeProduct");
        let outer = [
            "ram:SpecifiedLineTradeAgreement",
            "ram:NetPriceProductTradePrice",
        ];
        x.within(&outer, "ram:ChargeAmount", &[], &number(line.unit_price));
        x.within(
            &["ram:SpecifiedLineTradeDelivery"],
            "ram:BilledQuantity",
            &[("unitCode", &line.unit)],
            &number(line.quantity),
        );
        x.open("ram:SpecifiedLineTradeSettlement", &[]);
        x.open("ram:ApplicableTradeTax", &[]);
        x.leaf("ram:TypeCode", &[], "VAT");
        x.leaf("ram:CategoryCode", &[], category_code(l.category));
        if l.category != VatCategory::O {
            x.leaf("ram:RateApplicablePercent", &[], &number(l.rate));
        }
        x.close("ram:ApplicableTradeTax");
        if let Some(disc) = line.discount.filter(|d| !d.is_zero()) {
            x.open("ram:SpecifiedTradeAllowanceCharge", &[]);
            indicator(&mut x, false);
            x.leaf("ram:ActualAmount", &[], &amount(disc));
            x.leaf("ram:ReasonCode", &[], "95");
            x.close("ram:SpecifiedTradeAllowanceCharge");
        }
        let outer = ["ram:SpecifiedTradeSettlementLineMonetarySummation"];
        x.within(&outer, "ram:LineTotalAmount", &[], &amount(line.net_amount));
        x.close("ram:SpecifiedLineTradeSettlement");
        x.close("ram:IncludedSupplyChainTradeLineItem");
    }

    x.open("ram:ApplicableHeaderTradeAgreement", &[]);
    x.opt("ram:BuyerReference", d.service_code.as_deref());
    party(&mut x, v, "ram:SellerTradeParty", &d.seller);
    party(&mut x, v, "ram:BuyerTradeParty", &d.buyer);
    if let Some(po) = v.order_reference() {
        let outer = ["ram:BuyerOrderReferencedDocument"];
        x.within(&outer, "ram:IssuerAssignedID", &[], po);
    }
    if let Some(c) = present(d.contract_reference.as_deref()) {
        let outer = ["ram:ContractReferencedDocument"];
        x.within(&outer, "ram:IssuerAssignedID", &[], c);
    }
    x.close("ram:ApplicableHeaderTradeAgreement");

    x.open("ram:ApplicableHeaderTradeDelivery", &[]);
    if let Some(a) = &d.buyer.delivery_address {
        x.open("ram:ShipToTradeParty", &[]);
        x.opt("ram:ID", a.siret.as_deref());
        address(&mut x, "ram:PostalTradeAddress", a);
        x.close("ram:ShipToTradeParty");
    }
    if let Some(day) = d.delivery_date {
        x.open("ram:ActualDeliverySupplyChainEvent", &[]);
        date(&mut x, "ram:OccurrenceDateTime", day);
        x.close("ram:ActualDeliverySupplyChainEvent");
    }
    x.close("ram:ApplicableHeaderTradeDelivery");

    x.open("ram:ApplicableHeaderTradeSettlement", &[]);
    x.leaf("ram:InvoiceCurrencyCode", &[], cur);
    if v.has_payment_means() {
        x.open("ram:SpecifiedTradeSettlementPaymentMeans", &[]);
        x.leaf("ram:TypeCode", &[], v.payment_means());
        if let Some(iban) = v.iban() {
            let outer = ["ram:PayeePartyCreditorFinancialAccount"];
            x.within(&outer, "ram:IBANID", &[], iban);
            if let Some(bic) = v.bic() {
                let outer = ["ram:PayeeSpecifiedCreditorFinancialInstitution"];
                x.within(&outer, "ram:BICID", &[], bic);
            }
        }
        x.close("ram:SpecifiedTradeSettlementPaymentMeans");
    }
    for r in &v.vat {
        x.open("ram:ApplicableTradeTax", &[]);
        x.leaf("ram:CalculatedAmount", &[], &amount(r.amount));
        x.leaf("ram:TypeCode", &[], "VAT");
        x.opt("ram:ExemptionReason", r.exemption_reason.as_deref());
        x.leaf("ram:BasisAmount", &[], &amount(r.base));
        x.leaf("ram:CategoryCode", &[], category_code(r.category));
        x.opt("ram:ExemptionReasonCode", r.exemption_code.as_deref());
        x.opt("ram:DueDateTypeCode", v.vat_point_code(Syntax::Cii));
        if r.category != VatCategory::O {
            x.leaf("ram:RateApplicablePercent", &[], &number(r.rate));
        }
        x.close("ram:ApplicableTradeTax");
    }
    if present(d.payment_terms.as_deref()).is_some() || d.due_date.is_some() {
        x.open("ram:SpecifiedTradePaymentTerms", &[]);
        x.opt("ram:Description", d.payment_terms.as_deref());
        if let Some(due) = d.due_date {
            date(&mut x, "ram:DueDateDateTime", due);
        }
        x.close("ram:SpecifiedTradePaymentTerms");
    }
    x.open("ram:SpecifiedTradeSettlementHeaderMonetarySummation", &[]);
    x.leaf("ram:LineTotalAmount", &[], &amount(v.line_total));
    x.leaf("ram:TaxBasisTotalAmount", &[], &amount(d.totals.net));
    x.leaf(
        "ram:TaxTotalAmount",
        &[("currencyID", cur)],
        &amount(d.totals.tax),
    );
    x.leaf("ram:GrandTotalAmount", &[], &amount(d.totals.gross));
    if !d.totals.paid.is_zero() {
        x.leaf("ram:TotalPrepaidAmount", &[], &amount(d.totals.paid));
    }
    x.leaf("ram:DuePayableAmount", &[], &amount(d.totals.due));
    x.close("ram:SpecifiedTradeSettlementHeaderMonetarySummation");
    if let Some(prev) = present(d.preceding_invoice.as_deref()) {
        x.open("ram:InvoiceReferencedDocument", &[]);
        x.leaf("ram:IssuerAssignedID", &[], prev);
        if let Some(date) = v.preceding_invoice_date() {
            x.within(
                &["ram:FormattedIssueDateTime"],
                "qdt:DateTimeString",
                &[("format", "102")],
                &date.format("%Y%m%d").to_string(),
            );
        }
        x.close("ram:InvoiceReferencedDocument");
    }
    x.close("ram:ApplicableHeaderTradeSettlement");
    x.close("rsm:SupplyChainTradeTransaction");
    x.close("rsm:CrossIndustryInvoice");
    x.finish()
}
