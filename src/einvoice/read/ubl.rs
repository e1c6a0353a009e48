//! A UBL 2.1 `Invoice` or `CreditNote` (EN 16931 and French core) into the source format's JSON.

use serde_json::{json, Value};

use super::{date, need, tax_code, El, ReadError};

/// A `cac:Accounting*Party` as a source party.
fn party(p: Option<&El>) -> Value {
    let Some(p) = p.and_then(|p| p.child("Party")) else {
        return json!({"name": ""});
    };
    let legal = p.at(&["PartyLegalEntity", "CompanyID"]);
    let legal_id = legal.and_then(|l| l.text(&[]));
    let (mut siren, siret) = match legal.and_then(|l| l.attr("schemeID")) {
        Some("0002") => (legal_id, None),
        Some("0009") => (None, legal_id),
        _ => (None, None),
    };
    if siren.is_none() {
        siren = siret.as_ref().and_then(|s| s.get(..9)).map(str::to_owned);
    }
    // The legal name (BT-27) first, as CII's `ram:Name` holds it; else the trading name.
    let name = p
        .text(&["PartyLegalEntity", "RegistrationName"])
        .or_else(|| p.text(&["PartyName", "Name"]))
        .unwrap_or_default();
    let vat = p
        .all("PartyTaxScheme")
        .find(|t| t.text(&["TaxScheme", "ID"]).as_deref() == Some("VAT"))
        .and_then(|t| t.text(&["CompanyID"]));
    let address = p.child("PostalAddress").map(|a| {
        let lines: Vec<String> = [&["StreetName"][..], &["AdditionalStreetName"], &["AddressLine", "Line"]]
            .iter()
            .filter_map(|l| a.text(l))
            .collect();
        json!({"lines": lines, "postcode": a.json(&["PostalZone"]),
            "city": a.json(&["CityName"]), "country_code": a.json(&["Country", "IdentificationCode"])})
    });
    let electronic = p.child("EndpointID").and_then(|e| {
        Some(json!({"scheme": e.attr("schemeID").unwrap_or_default(), "value": e.text(&[])?}))
    });
    json!({
        "name": name, "siren": siren, "siret": siret, "vat_id": vat,
        "email": p.json(&["Contact", "ElectronicMail"]),
        "billing_address": address,
        "electronic_address": electronic,
    })
}

fn line(l: &El, quantity: &str) -> Result<Value, ReadError> {
    let qty = l.child(quantity);
    let item = l.child("Item");
    let tax = item.and_then(|i| i.child("ClassifiedTaxCategory"));
    let name = item.and_then(|i| i.text(&["Name"]));
    let description = item.and_then(|i| i.text(&["Description"]));
    Ok(json!({
        "id": l.json(&["ID"]),
        "description": name.or(description).unwrap_or_default(),
        "quantity": need(qty.and_then(|q| q.text(&[])), "line quantity, BT-129")?,
        "unit": qty.and_then(|q| q.attr("unitCode")).unwrap_or("C62"),
        "unit_price": need(l.text(&["Price", "PriceAmount"]), "line net price, BT-146 (cbc:PriceAmount)")?,
        "net_amount": need(l.text(&["LineExtensionAmount"]), "line net amount, BT-131 (cbc:LineExtensionAmount)")?,
        "product_code": item.map_or(Value::Null, |i| i.json(&["SellersItemIdentification", "ID"])),
        "tax_code": tax_code(tax.and_then(|t| t.text(&["ID"])), tax.and_then(|t| t.text(&["Percent"]))),
    }))
}

/// The source-format JSON of a UBL invoice or credit note (no `id`, `status`, `updated_at`).
pub(super) fn read(root: &El) -> Result<Value, ReadError> {
    let credit = root.name == "CreditNote";
    let number = root
        .text(&["ID"])
        .ok_or(ReadError::Missing("number, BT-1 (cbc:ID)"))?;
    let issue = root
        .text(&["IssueDate"])
        .ok_or(ReadError::Missing("issue date, BT-2 (cbc:IssueDate)"))?;
    let type_code = root
        .text(&[if credit {
            "CreditNoteTypeCode"
        } else {
            "InvoiceTypeCode"
        }])
        .unwrap_or_else(|| if credit { "381" } else { "380" }.into());
    let currency = root
        .text(&["DocumentCurrencyCode"])
        .unwrap_or_else(|| "EUR".into());
    let empty = El::default();
    let totals = root.child("LegalMonetaryTotal").unwrap_or(&empty);
    // The VAT total with the breakdown (a second one may be in the accounting currency).
    let tax_total = root
        .all("TaxTotal")
        .find(|t| t.child("TaxSubtotal").is_some())
        .or_else(|| root.child("TaxTotal"));
    let breakdown: Vec<Value> = tax_total
        .map(|t| {
            t.all("TaxSubtotal")
                .map(|s| {
                    let cat = s.child("TaxCategory");
                    let rate = cat.and_then(|c| c.text(&["Percent"]));
                    json!({
                        "tax_code": tax_code(cat.and_then(|c| c.text(&["ID"])), rate.clone()),
                        "rate": rate.unwrap_or_else(|| "0".into()),
                        "base": s.json(&["TaxableAmount"]),
                        "amount": s.json(&["TaxAmount"]),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let notes: Vec<Value> = root
        .all("Note")
        .filter_map(|n| n.text(&[]))
        .map(|text| {
            // The French core writes `#AAB#text`: the subject code between hashes.
            match text.strip_prefix('#').and_then(|r| r.split_once('#')) {
                Some((code, rest)) => json!({"subject_code": code, "text": rest}),
                None => json!({"subject_code": null, "text": text}),
            }
        })
        .collect();
    let means = root.child("PaymentMeans");
    let due_date = root
        .text(&["DueDate"])
        .or_else(|| means.and_then(|m| m.text(&["PaymentDueDate"])));
    let preceding = root.at(&["BillingReference", "InvoiceDocumentReference"]);
    let (line_name, quantity) = if credit {
        ("CreditNoteLine", "CreditedQuantity")
    } else {
        ("InvoiceLine", "InvoicedQuantity")
    };
    let lines = root
        .all(line_name)
        .map(|l| line(l, quantity))
        .collect::<Result<Vec<Value>, ReadError>>()?;
    let net = need(
        totals.text(&["TaxExclusiveAmount"]),
        "total without VAT, BT-109 (cbc:TaxExclusiveAmount)",
    )?;
    let gross = need(
        totals.text(&["TaxInclusiveAmount"]),
        "total with VAT, BT-112 (cbc:TaxInclusiveAmount)",
    )?;
    let due = need(
        totals.text(&["PayableAmount"]),
        "amount due, BT-115 (cbc:PayableAmount)",
    )?;
    Ok(json!({
        "number": number,
        "kind": if type_code == "381" { "credit_note" } else { "invoice" },
        "type_code": match type_code.as_str() { "384" | "386" => Value::String(type_code.clone()), _ => Value::Null },
        "issue_date": date(Some(issue)),
        "due_date": date(due_date),
        "currency": currency,
        "purchase_order": root.json(&["OrderReference", "ID"]),
        "contract_reference": root.json(&["ContractDocumentReference", "ID"]),
        "preceding_invoice": preceding.map_or(Value::Null, |p| p.json(&["ID"])),
        "preceding_invoice_date": date(preceding.and_then(|p| p.text(&["IssueDate"]))),
        "delivery_date": date(root.text(&["Delivery", "ActualDeliveryDate"])),
        "notes": notes,
        "seller": party(root.child("AccountingSupplierParty")),
        "buyer": party(root.child("AccountingCustomerParty")),
        "payment_means": means.map_or(Value::Null, |m| m.json(&["PaymentMeansCode"])),
        "iban": means.map_or(Value::Null, |m| m.json(&["PayeeFinancialAccount", "ID"])),
        "payment_terms": root.json(&["PaymentTerms", "Note"]),
        "lines": lines,
        "totals": {
            "net": net,
            "tax": tax_total.and_then(|t| t.text(&["TaxAmount"])).unwrap_or_else(|| "0".into()),
            "gross": gross,
            "paid": totals.text(&["PrepaidAmount"]).unwrap_or_else(|| "0".into()),
            "due": due,
        },
        "tax_breakdown": breakdown,
    }))
}
