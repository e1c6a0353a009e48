//! The PA simulator's received invoices (issue 15 §3): flows of type `SupplierInvoice`,
//! direction `In`, listed by searches with `updatedAfter` (strict, paged) and downloaded with
//! `docType=Original`, each download counted.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use wiremock::ResponseTemplate;

use crate::pa_sim::State;

/// A supplier invoice the PA received for the company.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub id: String,
    pub name: String,
    pub syntax: String,
    pub file: Vec<u8>,
    pub updated_at: DateTime<Utc>,
}

impl Incoming {
    fn json(&self) -> Value {
        json!({"flowId": self.id, "trackingId": format!("in-{}", self.id), "name": self.name,
            "flowSyntax": self.syntax, "flowProfile": "CIUS", "processingRule": "B2B",
            "processingRuleSource": "Computed", "flowType": "SupplierInvoice", "flowDirection": "In",
            "submittedAt": self.updated_at.to_rfc3339(), "updatedAt": self.updated_at.to_rfc3339(),
            "acknowledgement": {"status": "Ok", "details": []}})
    }
}

impl State {
    /// The PA receives `file` for the company: a new incoming flow, a minute after the last.
    pub fn receive(&mut self, name: &str, syntax: &str, file: Vec<u8>) {
        let base = Utc::now() - Duration::hours(1);
        let updated_at = base + Duration::minutes(self.inbox.len() as i64);
        self.inbox.push(Incoming {
            id: format!("flow-in-{:04}", self.inbox.len() + 1),
            name: name.to_owned(),
            syntax: syntax.to_owned(),
            file,
            updated_at,
        });
    }

    /// A search of incoming supplier invoices, paged two at a time.
    pub fn search_inbox(&mut self, body: &Value) -> ResponseTemplate {
        let filters = &body["where"];
        if filters["flowDirection"]
            .as_array()
            .is_some_and(|d| !d.iter().any(|v| v == "In"))
        {
            return ResponseTemplate::new(200).set_body_json(json!({"limit": 2, "results": []}));
        }
        let after = filters["updatedAfter"]
            .as_str()
            .and_then(|a| DateTime::parse_from_rfc3339(a).ok())
            .map(|a| a.with_timezone(&Utc));
        let offset = body["cursor"]
            .as_str()
            .and_then(|c| c.strip_prefix("in:"))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        let listed: Vec<&Incoming> = self
            .inbox
            .iter()
            .filter(|f| after.is_none_or(|a| f.updated_at > a))
            .collect();
        let page: Vec<Value> = listed
            .iter()
            .skip(offset)
            .take(2)
            .map(|f| f.json())
            .collect();
        let mut answer = json!({"limit": 2, "filters": filters, "results": page});
        if offset + 2 < listed.len() {
            answer["nextCursor"] = json!(format!("in:{}", offset + 2));
        }
        ResponseTemplate::new(200).set_body_json(answer)
    }

    /// The file of an incoming flow, as deposited.
    pub fn incoming_file(&mut self, id: &str) -> Option<ResponseTemplate> {
        let f = self.inbox.iter().find(|f| f.id == id)?;
        let mime = if f.syntax == "Factur-X" {
            "application/pdf"
        } else {
            "application/xml"
        };
        let answer = ResponseTemplate::new(200)
            .insert_header(
                "Content-Disposition",
                format!("attachment;filename={}", f.name).as_str(),
            )
            .set_body_raw(f.file.clone(), mime);
        *self.downloads.entry(id.to_owned()).or_insert(0) += 1;
        Some(answer)
    }
}
