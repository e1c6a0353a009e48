//! The lifecycle half of the PA simulator (`pa_sim`): scripted statuses published as
//! `CustomerInvoiceLC` flows, searched after `updatedAfter` page by page (an offset cursor), and
//! their CDAR files, written from the structure of the FNFE examples
//! (`france/examples/*CDV*.xml`) so that the tests need no `../shared`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};
use wiremock::ResponseTemplate;

use crate::pa_sim::State;

/// One scripted status.
#[derive(Debug, Clone)]
pub struct Lc {
    pub code: u16,
    pub reason: Option<(String, String)>,
    pub action: Option<(String, String)>,
    /// Collected amount and VAT rate (212).
    pub collected: Option<(String, String)>,
    /// Delivered twice (two flows, the same CDAR).
    pub twice: bool,
}

impl Lc {
    pub fn new(code: u16) -> Lc {
        Lc {
            code,
            reason: None,
            action: None,
            collected: None,
            twice: false,
        }
    }

    pub fn reason(mut self, code: &str, text: &str) -> Lc {
        self.reason = Some((code.into(), text.into()));
        self
    }

    pub fn action(mut self, code: &str, text: &str) -> Lc {
        self.action = Some((code.into(), text.into()));
        self
    }

    pub fn collected(mut self, amount: &str, rate: &str) -> Lc {
        self.collected = Some((amount.into(), rate.into()));
        self
    }

    pub fn twice(mut self) -> Lc {
        self.twice = true;
        self
    }
}

/// A published lifecycle flow.
#[derive(Debug, Clone)]
pub struct LcFlow {
    pub id: String,
    pub updated_at: DateTime<Utc>,
    pub cdar: String,
}

impl LcFlow {
    pub fn json(&self) -> Value {
        let at = self
            .updated_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        json!({"flowId": self.id, "name": format!("{}.xml", self.id), "flowSyntax": "CDAR",
            "flowProfile": "Undefined", "processingRule": "NotApplicable",
            "processingRuleSource": "Computed", "flowType": "CustomerInvoiceLC",
            "flowDirection": "In", "submittedAt": at, "updatedAt": at,
            "acknowledgement": {"status": "Ok", "details": []}})
    }
}

fn label(code: u16) -> &'static str {
    match code {
        200 => "Déposée",
        202 => "Reçue",
        203 => "Mise à disposition",
        204 => "Prise en charge",
        205 => "Approuvée",
        206 => "Approuvée partiellement",
        207 => "En litige",
        208 => "Suspendue",
        210 => "Refusée",
        211 => "Paiement transmis",
        212 => "Encaissée",
        213 => "Rejetée",
        _ => "Autre",
    }
}

/// The first value after `after` that follows `start` (a tag or attribute prefix) up to `<`.
fn value_after(xml: &str, after: &str, start: &str) -> Option<String> {
    let from = xml.find(after)?;
    let rest = &xml[from..];
    let at = rest.find(start)? + start.len();
    rest[at..].split('<').next().map(str::to_owned)
}

/// The seller's SIREN in a CII or UBL invoice (its SIREN, or its SIRET's first 9 digits).
pub fn seller_siren(xml: &str) -> String {
    let party = if xml.contains("SellerTradeParty") {
        "SellerTradeParty"
    } else {
        "AccountingSupplierParty"
    };
    ["schemeID=\"0002\">", "schemeID=\"0009\">"]
        .iter()
        .find_map(|s| value_after(xml, party, s))
        .map(|v| v.chars().take(9).collect())
        .unwrap_or_default()
}

/// The invoice date (`YYYYMMDD`) of a CII or UBL invoice.
pub fn issue_date(xml: &str) -> String {
    value_after(xml, "<rsm:ExchangedDocument>", "format=\"102\">")
        .or_else(|| value_after(xml, "<cbc:IssueDate", ">").map(|d| d.replace('-', "")))
        .unwrap_or_default()
}

/// A CDAR about invoice `number` (seller `siren`, dated `date`), as the FNFE examples are.
pub fn cdar(id: &str, number: &str, siren: &str, date: &str, lc: &Lc, at: DateTime<Utc>) -> String {
    let phase = if matches!(lc.code, 200..=203 | 213) {
        "305"
    } else {
        "23"
    };
    let stamp = at.format("%Y%m%d%H%M%S");
    let mut detail = String::new();
    if lc.reason.is_some() || lc.action.is_some() || lc.collected.is_some() {
        detail.push_str("<ram:SpecifiedDocumentStatus>");
        if let Some((c, t)) = &lc.reason {
            detail.push_str(&format!(
                "<ram:ReasonCode>{c}</ram:ReasonCode><ram:Reason>{t}</ram:Reason>"
            ));
        }
        if let Some((c, t)) = &lc.action {
            detail.push_str(&format!("<ram:RequestedActionCode>{c}</ram:RequestedActionCode><ram:RequestedAction>{t}</ram:RequestedAction>"));
        }
        detail.push_str("<ram:SequenceNumeric>1</ram:SequenceNumeric>");
        if let Some((amount, rate)) = &lc.collected {
            detail.push_str(&format!("<ram:SpecifiedDocumentCharacteristic><ram:TypeCode>MEN</ram:TypeCode><ram:ValueChangedIndicator><udt:IndicatorString>false</udt:IndicatorString></ram:ValueChangedIndicator><ram:ValueAmount currencyID=\"EUR\">{amount}</ram:ValueAmount><ram:ValuePercent>{rate}</ram:ValuePercent></ram:SpecifiedDocumentCharacteristic>"));
        }
        detail.push_str("</ram:SpecifiedDocumentStatus>");
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossDomainAcknowledgementAndResponse xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100" xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100" xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100">
  <rsm:ExchangedDocumentContext>
    <ram:BusinessProcessSpecifiedDocumentContextParameter><ram:ID>REGULATED</ram:ID></ram:BusinessProcessSpecifiedDocumentContextParameter>
    <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn.cpro.gouv.fr:1p0:CDV:invoice</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>{id}</ram:ID>
    <ram:Name>CDV-{code}</ram:Name>
    <ram:IssueDateTime><udt:DateTimeString format="204">{stamp}</udt:DateTimeString></ram:IssueDateTime>
    <ram:SenderTradeParty><ram:RoleCode>WK</ram:RoleCode></ram:SenderTradeParty>
    <ram:RecipientTradeParty><ram:GlobalID schemeID="0002">{siren}</ram:GlobalID><ram:Name>VENDEUR</ram:Name><ram:RoleCode>SE</ram:RoleCode></ram:RecipientTradeParty>
  </rsm:ExchangedDocument>
  <rsm:AcknowledgementDocument>
    <ram:MultipleReferencesIndicator><udt:Indicator>false</udt:Indicator></ram:MultipleReferencesIndicator>
    <ram:TypeCode>{phase}</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="204">{stamp}</udt:DateTimeString></ram:IssueDateTime>
    <ram:ReferenceReferencedDocument>
      <ram:IssuerAssignedID>{number}</ram:IssuerAssignedID>
      <ram:StatusCode>1</ram:StatusCode>
      <ram:TypeCode>380</ram:TypeCode>
      <ram:FormattedIssueDateTime><qdt:DateTimeString format="102">{date}</qdt:DateTimeString></ram:FormattedIssueDateTime>
      <ram:ProcessConditionCode>{code}</ram:ProcessConditionCode>
      <ram:ProcessCondition>{label}</ram:ProcessCondition>
      <ram:IssuerTradeParty><ram:GlobalID schemeID="0002">{siren}</ram:GlobalID></ram:IssuerTradeParty>
      {detail}
    </ram:ReferenceReferencedDocument>
  </rsm:AcknowledgementDocument>
</rsm:CrossDomainAcknowledgementAndResponse>"#,
        code = lc.code,
        label = label(lc.code),
    )
}

impl State {
    /// Publishes one status as a lifecycle flow (two when `twice`), a minute after the last.
    pub fn publish(&mut self, number: &str, siren: &str, date: &str, lc: &Lc) {
        let n = self.lc.len();
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 11, 0, 0).unwrap() + Duration::minutes(n as i64);
        let id = format!("{number}_{}_{n}", lc.code);
        let xml = cdar(&id, number, siren, date, lc, at);
        for k in 0..if lc.twice { 2 } else { 1 } {
            let m = self.lc.len();
            self.lc.push(LcFlow {
                id: format!("lc-{m:04}"),
                updated_at: at + Duration::minutes(k),
                cdar: xml.clone(),
            });
        }
    }

    /// The next step of every deposited invoice's script.
    fn tick(&mut self) {
        let mut due = Vec::new();
        for f in &self.flows {
            if due
                .iter()
                .any(|(n, _, _, _): &(String, _, _, _)| *n == f.number)
            {
                continue;
            }
            if let Some(step) = self.scripts.get_mut(&f.number).and_then(|q| q.pop_front()) {
                due.push((f.number.clone(), f.siren.clone(), f.date.clone(), step));
            }
        }
        if !due.is_empty() {
            self.ticks += 1;
        }
        for (number, siren, date, step) in due {
            for lc in step {
                self.publish(&number, &siren, &date, &lc);
            }
        }
    }

    /// A search for `CustomerInvoiceLC` flows: a new step on a first page, then the flows
    /// changed after `updatedAfter`, a page at a time.
    pub fn search_lifecycle(&mut self, body: &Value) -> ResponseTemplate {
        let cursor = body["cursor"].as_str();
        let offset =
            match cursor.map(|c| c.strip_prefix("lc:").and_then(|n| n.parse::<usize>().ok())) {
                None => {
                    self.tick();
                    0
                }
                Some(Some(n)) => n,
                Some(None) => {
                    return ResponseTemplate::new(400).set_body_json(
                        json!({"errorCode": "INVALID_FORMAT", "errorMessage": "unknown cursor"}),
                    )
                }
            };
        let after = body["where"]["updatedAfter"]
            .as_str()
            .and_then(|a| DateTime::parse_from_rfc3339(a).ok())
            .map(|a| a.with_timezone(&Utc));
        let listed: Vec<&LcFlow> = self
            .lc
            .iter()
            .filter(|f| after.is_none_or(|a| f.updated_at > a))
            .collect();
        let size = body["limit"]
            .as_u64()
            .map_or(25, |l| l as usize)
            .min(self.lc_page.max(1));
        let page: Vec<Value> = listed
            .iter()
            .skip(offset)
            .take(size)
            .map(|f| f.json())
            .collect();
        let mut answer = json!({"limit": size, "filters": body["where"], "results": page});
        if offset + size < listed.len() {
            answer["nextCursor"] = json!(format!("lc:{}", offset + size));
        }
        ResponseTemplate::new(200).set_body_json(answer)
    }
}
