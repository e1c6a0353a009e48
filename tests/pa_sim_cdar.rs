//! The PA simulator's side of the lifecycle statuses facto posts (status 212 "Encaissée", issue
//! 15): `POST /v1/flows` with `flowSyntax = CDAR` reads the message with facto's CDAR reader and
//! refuses one that is not a CDAR or reports no amount (as a PA's checks would), counts the flows
//! per `trackingId` like invoices, takes the same faults (a lost answer, a 500, a 429), and lists
//! them in searches by `trackingId`.

use serde_json::{json, Value};
use wiremock::ResponseTemplate;

use crate::pa_sim::{created_answer, refused_by, State};

/// A status flow facto posted, as the PA took it.
#[derive(Debug, Clone)]
pub struct Posted {
    pub flow_id: String,
    pub tracking_id: String,
    pub name: String,
    /// The invoice it is about (BT-1).
    pub number: String,
    /// Its status code (MDT-105).
    pub code: u16,
    /// Its amounts per VAT rate (`12000 EUR at 20.00 %`).
    pub collected: Vec<String>,
    /// The file as received.
    pub file: Vec<u8>,
}

impl Posted {
    pub fn json(&self) -> Value {
        json!({"flowId": self.flow_id, "trackingId": self.tracking_id, "name": self.name,
            "flowSyntax": "CDAR", "flowProfile": "CIUS", "processingRule": "B2B",
            "processingRuleSource": "Computed", "flowType": "CustomerInvoiceLC", "flowDirection": "Out",
            "submittedAt": "2026-12-01T10:00:00Z", "updatedAt": "2026-12-01T11:00:00+01:00",
            "acknowledgement": {"status": "Ok", "details": []}})
    }
}

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"errorCode": code, "errorMessage": message}))
}

impl State {
    /// A CDAR flow (its `flowInfo` already checked).
    pub fn create_cdar(
        &mut self,
        tracking: &str,
        name: &str,
        file: &[u8],
        info: &Value,
    ) -> ResponseTemplate {
        let statuses = match facto::targets::pa::cdar::parse(file) {
            Ok(s) => s,
            Err(e) => return error(422, "InvalidSchema", &format!("not a CDAR: {e}")),
        };
        let Some(st) = statuses.first() else {
            return error(422, "InvalidSchema", "the CDAR references no invoice");
        };
        if st.code.code() == 212 && st.collected().is_empty() {
            return error(
                422,
                "InvalidSchema",
                "BR-FR-CDV-14: a 212 needs its MEN amounts",
            );
        }
        let fault = self.faults.pop_front();
        if let Some(refused) = refused_by(&fault) {
            return refused;
        }
        let posted = Posted {
            flow_id: format!("flow-cdar-{:04}", self.posted.len() + 1),
            tracking_id: tracking.to_owned(),
            name: name.to_owned(),
            number: st.invoice_number.clone(),
            code: st.code.code(),
            collected: st.collected(),
            file: file.to_vec(),
        };
        *self.created.entry(tracking.to_owned()).or_insert(0) += 1;
        let answer = json!({"flowId": posted.flow_id, "submittedAt": "2026-12-01T10:00:00Z",
            "trackingId": tracking, "name": name, "flowSyntax": "CDAR", "sha256": info["sha256"]});
        self.posted.push(posted);
        created_answer(&fault, answer)
    }
}
