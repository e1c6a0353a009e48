//! A CII `CrossIndustryInvoice` (D16B or D22B, EN 16931 and French core) into the source
//! format's JSON: number, type, dates, parties (SIREN, SIRET, VAT id, address, electronic
//! address), lines, VAT breakdown, totals, payment means and references.

use serde_json::{json, Value};

use super::{date, need, tax_code, El, ReadError};

/// A `ram:*TradeParty` as a source party.
fn party(p: Option<&El>) -> Value {
    let Some(p) = p else {
        return json!({"name": ""});
    };
    let legal = p.at(&["SpecifiedLegalOrganization", "ID"]);
    let scheme = legal.and_then(|l| l.attr("schemeID"));
    let legal_id = p.text(&["SpecifiedLegalOrganization", "ID"]);
    let (mut siren, mut siret) = match scheme {
        Some("0002") => (legal_id, None),
        Some("0009") => (None, legal_id),
        _ => (None, None),
    };
    if let Some(g) = p
        .all("GlobalID")
        .find(|g| g.attr("schemeID") == Some("0009"))
    {
        siret = siret.or_else(|| g.text(&[]));
    }
    if siren.is_none() {
        siren = siret.as_ref().and_then(|s| s.get(..9)).map(str::to_owned);
    }
    let vat = p
        .all("SpecifiedTaxRegistration")
        .find(|t| t.at(&["ID"]).and_then(|i| i.attr("schemeID")) == Some("VA"))
        .and_then(|t| t.text(&["ID"]));
    let address = p.child("PostalTradeAddress").map(|a| {
        let lines: Vec<String> = ["LineOne", "LineTwo", "LineThree"]
            .iter()
            .filter_map(|l| a.text(&[l]))
            .collect();
        json!({"lines": lines, "postcode": a.json(&["PostcodeCode"]),
            "city": a.json(&["CityName"]), "country_code": a.json(&["CountryID"])})
    });
    let electronic = p.at(&["URIUniversalCommunication", "URIID"]).and_then(|u| {
        Some(json!({"scheme": u.attr("schemeID").unwrap_or_default(), "value": u.text(&[])?}))
    });
    json!({
        "name": p.text(&["Name"]).unwrap_or_default(),
        "siren": siren, "siret": siret, "vat_id": vat,
        "email": p.json(&["DefinedTradeContact", "EmailURIUniversalCommunication", "URIID"]),
        "billing_address": address,
        "electronic_address": electronic,
    })
}

fn line(l: &El) -> Result<Value, ReadError> {
    let qty = l.at(&["SpecifiedLineTradeDelivery", "BilledQuantity"]);
    let tax = l.at(&["SpecifiedLineTradeSettlement", "ApplicableTradeTax"]);
    let product = l.child("SpecifiedTradeProduct");
    let name = product.and_then(|p| p.text(&["Name"]));
    let description = product.and_then(|p| p.text(&["Description"]));
    Ok(json!({
        "id": l.json(&["AssociatedDocumentLineDocument", "LineID"]),
        "description": name.or(description).unwrap_or_default(),
        "quantity": need(qty.and_then(|q| q.text(&[])), "line quantity, BT-129 (ram:BilledQuantity)")?,
        "unit": qty.and_then(|q| q.attr("unitCode")).unwrap_or("C62"),
        "unit_price": need(l.text(&["SpecifiedLineTradeAgreement", "NetPriceProductTradePrice", "ChargeAmount"]), "line net price, BT-146")?,
        "net_amount": need(l.text(&["SpecifiedLineTradeSettlement", "SpecifiedTradeSettlementLineMonetarySummation", "LineTotalAmount"]), "line net amount, BT-131")?,
        "product_code": product.map_or(Value::Null, |p| p.json(&["SellerAssignedID"])),
        "tax_code": tax_code(
            tax.and_then(|t| t.text(&["CategoryCode"])),
            tax.and_then(|t| t.text(&["RateApplicablePercent"])),
        ),
    }))
}

/// The source-format JSON of a CII invoice (no `id`, `status`, `updated_at`: the caller's).
pub(super) fn read(root: &El) -> Result<Value, ReadError> {
    let doc = root
        .child("ExchangedDocument")
        .ok_or(ReadError::Missing("rsm:ExchangedDocument"))?;
    let number = doc.text(&["ID"]).ok_or(ReadError::Missing(
        "number, BT-1 (rsm:ExchangedDocument/ram:ID)",
    ))?;
    let issue = doc
        .text(&["IssueDateTime", "DateTimeString"])
        .ok_or(ReadError::Missing("issue date, BT-2"))?;
    let type_code = doc.text(&["TypeCode"]).unwrap_or_else(|| "380".into());
    let tx = root
        .child("SupplyChainTradeTransaction")
        .ok_or(ReadError::Missing("rsm:SupplyChainTradeTransaction"))?;
    let empty = El::default();
    let agreement = tx.child("ApplicableHeaderTradeAgreement").unwrap_or(&empty);
    let delivery = tx.child("ApplicableHeaderTradeDelivery").unwrap_or(&empty);
    let settlement = tx
        .child("ApplicableHeaderTradeSettlement")
        .unwrap_or(&empty);
    let sums = settlement
        .child("SpecifiedTradeSettlementHeaderMonetarySummation")
        .unwrap_or(&empty);
    let currency = settlement
        .text(&["InvoiceCurrencyCode"])
        .unwrap_or_else(|| "EUR".into());
    // The VAT total in the invoice's currency (a second one may be in the accounting currency).
    let tax = sums
        .all("TaxTotalAmount")
        .find(|t| t.attr("currencyID").is_none_or(|c| c == currency))
        .and_then(|t| t.text(&[]));
    let breakdown: Vec<Value> = settlement
        .all("ApplicableTradeTax")
        .map(|t| {
            json!({
                "tax_code": tax_code(t.text(&["CategoryCode"]), t.text(&["RateApplicablePercent"])),
                "rate": t.text(&["RateApplicablePercent"]).unwrap_or_else(|| "0".into()),
                "base": t.json(&["BasisAmount"]),
                "amount": t.json(&["CalculatedAmount"]),
            })
        })
        .collect();
    let notes: Vec<Value> = doc
        .all("IncludedNote")
        .map(|n| json!({"subject_code": n.json(&["SubjectCode"]), "text": n.text(&["Content"]).unwrap_or_default()}))
        .collect();
    let means = settlement.child("SpecifiedTradeSettlementPaymentMeans");
    let preceding = settlement.child("InvoiceReferencedDocument");
    let kind = if type_code == "381" {
        "credit_note"
    } else {
        "invoice"
    };
    let lines = tx
        .all("IncludedSupplyChainTradeLineItem")
        .map(line)
        .collect::<Result<Vec<Value>, ReadError>>()?;
    let net = need(
        sums.text(&["TaxBasisTotalAmount"])
            .or_else(|| sums.text(&["LineTotalAmount"])),
        "total without VAT, BT-109 (ram:TaxBasisTotalAmount)",
    )?;
    let gross = need(
        sums.text(&["GrandTotalAmount"]),
        "total with VAT, BT-112 (ram:GrandTotalAmount)",
    )?;
    let due = need(
        sums.text(&["DuePayableAmount"]),
        "amount due, BT-115 (ram:DuePayableAmount)",
    )?;
    Ok(json!({
        "number": number,
        "kind": kind,
        "type_code": match type_code.as_str() { "384" | "386" => Value::String(type_code.clone()), _ => Value::Null },
        "issue_date": date(Some(issue)),
        "due_date": date(settlement.text(&["SpecifiedTradePaymentTerms", "DueDateDateTime", "DateTimeString"])),
        "currency": currency,
        "purchase_order": agreement.json(&["BuyerOrderReferencedDocument", "IssuerAssignedID"]),
        "contract_reference": agreement.json(&["ContractReferencedDocument", "IssuerAssignedID"]),
        "preceding_invoice": preceding.map_or(Value::Null, |p| p.json(&["IssuerAssignedID"])),
        "preceding_invoice_date": date(preceding.and_then(|p| p.text(&["FormattedIssueDateTime", "DateTimeString"]))),
        "delivery_date": date(delivery.text(&["ActualDeliverySupplyChainEvent", "OccurrenceDateTime", "DateTimeString"])),
        "notes": notes,
        "seller": party(agreement.child("SellerTradeParty")),
        "buyer": party(agreement.child("BuyerTradeParty")),
        "payment_means": means.map_or(Value::Null, |m| m.json(&["TypeCode"])),
        "iban": means.map_or(Value::Null, |m| m.json(&["PayeePartyCreditorFinancialAccount", "IBANID"])),
        "payment_terms": settlement.json(&["SpecifiedTradePaymentTerms", "Description"]),
        "lines": lines,
        "totals": {
            "net": net,
            "tax": tax.unwrap_or_else(|| "0".into()),
            "gross": gross,
            "paid": sums.text(&["TotalPrepaidAmount"]).unwrap_or_else(|| "0".into()),
            "due": due,
        },
        "tax_breakdown": breakdown,
    }))
}
