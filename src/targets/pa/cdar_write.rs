//! Writing a lifecycle status (CDAR, UN/CEFACT CrossDomainAcknowledgementAndResponse D22B) as
//! the FNFE examples do (`../shared/reference/france/examples/*CDV*.xml`): the seller's 212
//! "Encaissée" ([`super::cashed`]) and the buyer's 204, 205, 207 and 210 about a received
//! invoice ([`super::respond`]) share this one writer. Pure: a message in, bytes out. The
//! processing phase is always 23 (the statuses facto emits are processing statuses), so the
//! issuer carries its SIREN (BR-FR-CDV-07), and each status detail its sequence number
//! (BR-FR-CDV-16).

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

use crate::einvoice::xml::Xml;
use crate::model::{DocKind, Document};

/// A party of the message: the issuer, or one recipient.
#[derive(Debug, Clone)]
pub struct CdarParty<'a> {
    /// Its SIREN (scheme 0002).
    pub siren: Option<&'a str>,
    /// Its name.
    pub name: &'a str,
    /// Its role: `SE` seller, `BY` buyer.
    pub role: &'a str,
    /// Its electronic address (scheme 0225), which every recipient but the PPF needs
    /// (BR-FR-CDV-08).
    pub address: Option<&'a str>,
}

/// One status detail (MDG-37): a reason, an expected action, an amount at a VAT rate.
#[derive(Debug, Clone, Default)]
pub struct Detail<'a> {
    /// Reason code and text (MDT-113, MDT-114).
    pub reason: Option<(&'a str, &'a str)>,
    /// Expected action code and text (MDT-121, MDT-122).
    pub action: Option<(&'a str, &'a str)>,
    /// An amount (`MEN`), its currency and its VAT rate (MDT-215, MDT-224).
    pub amount: Option<(Decimal, &'a str, Decimal)>,
}

/// The invoice a status is about (MDG-33).
#[derive(Debug, Clone)]
pub struct InvoiceRef<'a> {
    /// BT-1.
    pub number: &'a str,
    /// BT-3 (`380`, `381`...).
    pub type_code: &'a str,
    /// BT-2.
    pub issue_date: NaiveDate,
    /// When the status's issuer's side received or deposited it (MDT-95), when known.
    pub received_at: Option<NaiveDateTime>,
    /// The invoice's seller's SIREN (MDT-129).
    pub seller_siren: &'a str,
}

/// A whole status message.
#[derive(Debug, Clone)]
pub struct StatusMessage<'a> {
    /// Its own id (MDT-4), unique per message.
    pub id: &'a str,
    /// Its name (MDT-5).
    pub name: &'a str,
    /// When it was written (MDT-8).
    pub written_at: NaiveDateTime,
    /// Who issues it.
    pub issuer: CdarParty<'a>,
    /// To whom, besides the PPF.
    pub recipients: Vec<CdarParty<'a>>,
    /// The PPF is a recipient too (`0000`, scheme 0238, role DFH).
    pub to_ppf: bool,
    /// The status's date (MDT-78).
    pub status_at: NaiveDateTime,
    /// The invoice.
    pub invoice: InvoiceRef<'a>,
    /// The reform's code (MDT-105) and label (MDT-106).
    pub code: u16,
    /// The label, `Encaissée`.
    pub label: &'a str,
    /// The UN/CEFACT status code (MDT-88): 47 for 212, 46 for 207...
    pub un_status: &'a str,
    /// Its details, numbered from 1 in order.
    pub details: Vec<Detail<'a>>,
}

/// A document's type (BT-3) as a status names it: its own, else `380` for an invoice and `381`
/// for a credit note.
pub fn type_code(doc: &Document) -> String {
    doc.type_code.clone().unwrap_or_else(|| {
        match doc.kind {
            DocKind::Invoice => "380",
            DocKind::CreditNote => "381",
        }
        .to_owned()
    })
}

/// `12000.00` for an amount, `20.00` for a rate: two decimals at least.
fn two(d: Decimal) -> String {
    let mut d = d.normalize();
    if d.scale() < 2 {
        d.rescale(2);
    }
    d.to_string()
}

fn stamp(t: NaiveDateTime) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}

fn party(x: &mut Xml, element: &str, p: &CdarParty<'_>) {
    x.open(element, &[]);
    if let Some(siren) = p.siren {
        x.leaf("ram:GlobalID", &[("schemeID", "0002")], siren);
    }
    x.opt("ram:Name", Some(p.name));
    x.leaf("ram:RoleCode", &[], p.role);
    if let Some(address) = p.address {
        x.within(
            &["ram:URIUniversalCommunication"],
            "ram:URIID",
            &[("schemeID", "0225")],
            address,
        );
    }
    x.close(element);
}

/// The message's bytes.
pub fn write(m: &StatusMessage<'_>) -> Vec<u8> {
    let mut x = Xml::new();
    x.open(
        "rsm:CrossDomainAcknowledgementAndResponse",
        &[
            (
                "xmlns:qdt",
                "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
            ),
            (
                "xmlns:udt",
                "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
            ),
            (
                "xmlns:ram",
                "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
            ),
            (
                "xmlns:rsm",
                "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100",
            ),
        ],
    );
    x.open("rsm:ExchangedDocumentContext", &[]);
    x.within(
        &["ram:BusinessProcessSpecifiedDocumentContextParameter"],
        "ram:ID",
        &[],
        "REGULATED",
    );
    x.within(
        &["ram:GuidelineSpecifiedDocumentContextParameter"],
        "ram:ID",
        &[],
        "urn.cpro.gouv.fr:1p0:CDV:invoice",
    );
    x.close("rsm:ExchangedDocumentContext");

    x.open("rsm:ExchangedDocument", &[]);
    x.leaf("ram:ID", &[], m.id);
    x.leaf("ram:Name", &[], m.name);
    x.within(
        &["ram:IssueDateTime"],
        "udt:DateTimeString",
        &[("format", "204")],
        &stamp(m.written_at),
    );
    x.within(&["ram:SenderTradeParty"], "ram:RoleCode", &[], "WK");
    party(&mut x, "ram:IssuerTradeParty", &m.issuer);
    for r in &m.recipients {
        party(&mut x, "ram:RecipientTradeParty", r);
    }
    if m.to_ppf {
        x.open("ram:RecipientTradeParty", &[]);
        x.leaf("ram:GlobalID", &[("schemeID", "0238")], "0000");
        x.leaf("ram:Name", &[], "PPF");
        x.leaf("ram:RoleCode", &[], "DFH");
        x.close("ram:RecipientTradeParty");
    }
    x.close("rsm:ExchangedDocument");

    x.open("rsm:AcknowledgementDocument", &[]);
    x.within(
        &["ram:MultipleReferencesIndicator"],
        "udt:Indicator",
        &[],
        "false",
    );
    x.leaf("ram:TypeCode", &[], "23");
    x.within(
        &["ram:IssueDateTime"],
        "udt:DateTimeString",
        &[("format", "204")],
        &stamp(m.status_at),
    );
    let inv = &m.invoice;
    x.open("ram:ReferenceReferencedDocument", &[]);
    x.leaf("ram:IssuerAssignedID", &[], inv.number);
    x.leaf("ram:StatusCode", &[], m.un_status);
    x.leaf("ram:TypeCode", &[], inv.type_code);
    if let Some(t) = inv.received_at {
        x.within(
            &["ram:ReceiptDateTime"],
            "udt:DateTimeString",
            &[("format", "204")],
            &stamp(t),
        );
    }
    x.within(
        &["ram:FormattedIssueDateTime"],
        "qdt:DateTimeString",
        &[("format", "102")],
        &inv.issue_date.format("%Y%m%d").to_string(),
    );
    x.leaf("ram:ProcessConditionCode", &[], &m.code.to_string());
    x.leaf("ram:ProcessCondition", &[], m.label);
    x.within(
        &["ram:IssuerTradeParty"],
        "ram:GlobalID",
        &[("schemeID", "0002")],
        inv.seller_siren,
    );
    for (i, d) in m.details.iter().enumerate() {
        x.open("ram:SpecifiedDocumentStatus", &[]);
        if let Some((code, text)) = d.reason {
            x.leaf("ram:ReasonCode", &[], code);
            x.opt("ram:Reason", Some(text).filter(|t| !t.is_empty()));
        }
        if let Some((code, text)) = d.action {
            x.leaf("ram:RequestedActionCode", &[], code);
            x.opt("ram:RequestedAction", Some(text).filter(|t| !t.is_empty()));
        }
        x.leaf("ram:SequenceNumeric", &[], &(i + 1).to_string());
        if let Some((amount, currency, rate)) = d.amount {
            x.open("ram:SpecifiedDocumentCharacteristic", &[]);
            x.leaf("ram:TypeCode", &[], "MEN");
            x.within(
                &["ram:ValueChangedIndicator"],
                "udt:IndicatorString",
                &[],
                "false",
            );
            x.leaf("ram:ValueAmount", &[("currencyID", currency)], &two(amount));
            x.leaf("ram:ValuePercent", &[], &two(rate));
            x.close("ram:SpecifiedDocumentCharacteristic");
        }
        x.close("ram:SpecifiedDocumentStatus");
    }
    x.close("ram:ReferenceReferencedDocument");
    x.close("rsm:AcknowledgementDocument");
    x.close("rsm:CrossDomainAcknowledgementAndResponse");
    x.finish()
}
