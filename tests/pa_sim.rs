//! An in-repo simulator of an approved platform's AFNOR Flow API (Flow Service 1.3.0) on
//! 127.0.0.1: OAuth2 client-credentials tokens or one static bearer token, `Request-Id` required
//! on every call (and `Organization-Id` recorded), `POST /v1/flows` that reads the multipart
//! `flowInfo` and `file` parts and checks them as the spec says (required fields, `flowSyntax`
//! enum, `trackingId` ≤ 64, `sha256` of the file), searches by `trackingId`, searches of
//! outgoing flows changed after `updatedAfter` (paged, `updatedAt` in Paris time; each first page
//! is a processing step of the PA), flow metadata whose acknowledgement moves from `Pending` to
//! `Ok` (or `Error` with reasons) as it is read or searched, and
//! faults on demand: an answer lost after the flow was created, a 500 before it was, a 429, an
//! answer later than the client waits, searches
//! that do not list a new flow yet, the uniqueness check (`AlreadyExistingFlow`). It counts the
//! flows created per `trackingId` so that tests prove "sent exactly once". Lifecycle statuses
//! come over time (`lifecycle`): each invoice has a script of steps, and every search for
//! `CustomerInvoiceLC` flows publishes the next step of each as CDAR flows (built from the FNFE
//! examples' structure), listed after `updatedAfter` page by page and downloaded with
//! `docType=Original`.
//! Webhooks (`/v1/webhooks`) are in `pa_sim_webhook`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Duration, FixedOffset, Timelike, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::{Request, ResponseTemplate};

use crate::common::oauth::FakeOAuth;
use crate::common::sim::Answer;

pub const CLIENT_ID: &str = "facto-pa-client";
pub const CLIENT_SECRET: &str = "s3cret-pa";
pub const BEARER: &str = "pa-static-token";
const BASE: &str = "/flow-service";

/// What the next `POST /v1/flows` does.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Create the flow, then answer 500 (the answer is lost).
    LoseAnswer,
    /// Answer 500 without creating anything.
    Fail,
    /// Answer 429 with `Retry-After: 1` without creating anything.
    TooMany,
    /// Create the flow, then answer after this long (longer than the client waits).
    Slow(std::time::Duration),
}

pub use crate::pa_sim_lc::Lc;
use crate::pa_sim_lc::LcFlow;

#[derive(Debug, Clone)]
pub struct SimFlow {
    pub id: String,
    pub tracking_id: String,
    pub number: String,
    pub name: String,
    pub syntax: String,
    /// The seller's SIREN and the invoice date (`YYYYMMDD`), as the file says.
    pub siren: String,
    pub date: String,
    ack: &'static str,
    reads: u32,
    /// Acknowledged `Error` as a duplicate of an earlier flow.
    duplicate: bool,
    /// Its last change (created, acknowledged), on the PA's clock.
    updated_at: DateTime<Utc>,
    /// Searches of outgoing flows while it was pending (the PA processes it meanwhile).
    processed: u32,
}

#[derive(Default)]
pub struct State {
    pub oauth: FakeOAuth,
    pub flows: Vec<SimFlow>,
    /// Flows created per `trackingId`.
    pub created: BTreeMap<String, u32>,
    pub faults: VecDeque<Fault>,
    /// The next this many searches list nothing (the PA has not indexed new flows yet).
    pub search_lag: u32,
    /// A second flow of a known `trackingId` or invoice number is refused with
    /// `AlreadyExistingFlow` (off by default, so that a resend would show in `created`).
    pub unique_check: bool,
    /// A second flow of a known `trackingId` is taken, then acknowledged `Error`
    /// (`AlreadyExistingFlow`) when processed.
    pub async_unique_check: bool,
    /// Flows are acknowledged as soon as they are created (searches show it at once).
    pub instant_ack: bool,
    /// Invoice numbers whose acknowledgement is `Error` (reasonCode, reasonMessage).
    pub ack_errors: BTreeMap<String, (String, String)>,
    /// Invoice numbers refused at once (422 with an `Error` body).
    pub refuse: BTreeMap<String, String>,
    pub request_ids: Vec<String>,
    pub organizations: BTreeSet<String>,
    pub calls: Vec<String>,
    /// Acknowledgements stay `Pending` however often they are read.
    pub ack_never: bool,
    /// The steps every new invoice's lifecycle starts with (each step: the statuses one
    /// lifecycle search publishes).
    pub default_script: Vec<Vec<Lc>>,
    /// Steps still to publish, per invoice number.
    pub scripts: BTreeMap<String, VecDeque<Vec<Lc>>>,
    /// Published lifecycle flows.
    pub lc: Vec<LcFlow>,
    /// Most lifecycle flows on one search page (the request's `limit` when lower).
    pub lc_page: usize,
    /// Lifecycle searches that published a step.
    pub ticks: u32,
    /// Downloads (`docType=Original`) per flow id.
    pub downloads: BTreeMap<String, u32>,
    /// The PA's Directory Service, served under `/directory-service`.
    pub directory: crate::pa_directory::Directory,
    /// The PA's clock for outgoing flows: minutes after `epoch`, one per change.
    pub clock: i64,
    /// When the PA's clock started (the first flow's creation).
    pub epoch: Option<DateTime<Utc>>,
    /// Most outgoing flows on one search page (0: the request's `limit`).
    pub out_page: usize,
    /// Searches by `trackingId`.
    pub tracking_searches: u32,
    /// Searches by `trackingId` ignore it and list every flow, without their `trackingId`.
    pub search_blind: bool,
    /// The webhooks (`/v1/webhooks`).
    pub webhooks: crate::pa_sim_webhook::Webhooks,
    /// The lifecycle statuses (CDAR flows) facto posted.
    pub posted: Vec<crate::pa_sim_cdar::Posted>,
    /// The supplier invoices the PA received for the company.
    pub inbox: Vec<crate::pa_sim_inbox::Incoming>,
}

/// The running simulator.
pub type Sim = crate::common::sim::Sim<State>;

/// The answer of a fault that creates nothing (a 500, a 429), if it is one.
pub fn refused_by(fault: &Option<Fault>) -> Option<ResponseTemplate> {
    match fault {
        Some(Fault::Fail) => Some(ResponseTemplate::new(500)),
        Some(Fault::TooMany) => {
            Some(error(429, "TOO_MANY_REQUESTS", "slow down").insert_header("Retry-After", "1"))
        }
        _ => None,
    }
}

/// The answer to a created flow, as the fault makes it: lost (a 500), late, or `answer`.
pub fn created_answer(fault: &Option<Fault>, answer: Value) -> ResponseTemplate {
    match fault {
        Some(Fault::LoseAnswer) => ResponseTemplate::new(500),
        Some(Fault::Slow(d)) => ResponseTemplate::new(202)
            .set_body_json(answer)
            .set_delay(*d),
        _ => ResponseTemplate::new(202).set_body_json(answer),
    }
}

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"errorCode": code, "errorMessage": message}))
}

/// The parts of a `multipart/form-data` body: name → (headers, bytes).
pub fn parts(req: &Request) -> BTreeMap<String, (String, Vec<u8>)> {
    let ct = req
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some((_, boundary)) = ct.split_once("boundary=") else {
        return BTreeMap::new();
    };
    let delim = format!("--{}", boundary.trim_matches('"'));
    let body = &req.body;
    let mut out = BTreeMap::new();
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from.min(hay.len())..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let mut pos = match find(body, delim.as_bytes(), 0) {
        Some(p) => p + delim.len(),
        None => return out,
    };
    while let Some(next) = find(body, delim.as_bytes(), pos) {
        let part = &body[pos..next];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        if let Some(split) = find(part, b"\r\n\r\n", 0) {
            let head = String::from_utf8_lossy(&part[..split]).into_owned();
            let content = part[split + 4..].to_vec();
            let name = head
                .split("name=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("")
                .to_owned();
            out.insert(name, (head, content));
        }
        pos = next + delim.len();
    }
    out
}

/// The invoice number of a CII or UBL document.
fn number_of(xml: &str) -> Option<String> {
    if xml.contains("CrossIndustryInvoice") {
        let start = xml.find("<rsm:ExchangedDocument>")?;
        return xml[start..]
            .split_once("<ram:ID>")
            .and_then(|(_, rest)| rest.split_once("</ram:ID>"))
            .map(|(n, _)| n.to_owned());
    }
    xml.split_once("<cbc:ID>")
        .and_then(|(_, rest)| rest.split_once("</cbc:ID>"))
        .map(|(n, _)| n.to_owned())
}

/// A time as a French PA may write it: in Paris time (+01:00 in winter).
fn paris(t: DateTime<Utc>) -> String {
    let cet = FixedOffset::east_opt(3600).unwrap();
    t.with_timezone(&cet)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

impl SimFlow {
    /// Acknowledges the flow `Error` (with the reasons of its number in `ack_errors`).
    pub fn force_error(&mut self) {
        self.ack = "Error";
    }

    fn json(&self, s: &State) -> Value {
        let details = match (self.ack, s.ack_errors.get(&self.number)) {
            ("Error", _) if self.duplicate => {
                json!([{"level": "Error", "item": "trackingId", "reasonCode": "AlreadyExistingFlow",
                    "reasonMessage": "a flow of this invoice already exists"}])
            }
            ("Error", Some((code, msg))) => {
                json!([{"level": "Error", "item": "BT-1", "reasonCode": code, "reasonMessage": msg}])
            }
            _ => json!([]),
        };
        json!({"flowId": self.id, "trackingId": self.tracking_id, "name": self.name,
            "flowSyntax": self.syntax, "flowProfile": "CIUS", "processingRule": "B2B",
            "processingRuleSource": "Computed", "flowType": "CustomerInvoice", "flowDirection": "Out",
            "submittedAt": "2026-12-01T10:00:00Z", "updatedAt": paris(self.updated_at),
            "acknowledgement": {"status": self.ack, "details": details}})
    }
}

impl State {
    fn authorised(&mut self, req: &Request) -> bool {
        let bearer = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(&format!("Bearer {BEARER}"));
        bearer || self.oauth.authorised(req)
    }

    fn create(&mut self, req: &Request) -> ResponseTemplate {
        let parts = parts(req);
        let (Some((info_head, info)), Some((_, file))) = (parts.get("flowInfo"), parts.get("file"))
        else {
            return error(
                422,
                "MISSING_REQUIRED_FIELD",
                "flowInfo and file are required",
            );
        };
        if !info_head.to_ascii_lowercase().contains("application/json") {
            return error(422, "INVALID_FORMAT", "flowInfo must be application/json");
        }
        let info: Value = serde_json::from_slice(info).unwrap_or(Value::Null);
        let syntax = info["flowSyntax"].as_str().unwrap_or("");
        let name = info["name"].as_str().unwrap_or("");
        let tracking = info["trackingId"].as_str().unwrap_or("");
        if !["CII", "UBL", "Factur-X", "CDAR", "FRR"].contains(&syntax) || name.is_empty() {
            return error(422, "INVALID_FORMAT", "name and flowSyntax are required");
        }
        let profile = info.get("flowProfile").and_then(Value::as_str);
        if profile.is_some_and(|p| !["Basic", "CIUS", "Extended-CTC-FR", "Undefined"].contains(&p))
        {
            return error(422, "INVALID_FORMAT", "flowProfile is outside its enum");
        }
        if tracking.is_empty() || tracking.chars().count() > 64 || name.chars().count() > 255 {
            return error(422, "INVALID_FORMAT", "trackingId is at most 64 characters");
        }
        if info["sha256"].as_str() != Some(hex::encode(Sha256::digest(file)).as_str()) {
            return error(422, "ChecksumMismatch", "sha256 does not match the file");
        }
        if syntax == "CDAR" {
            return self.create_cdar(tracking, name, file, &info);
        }
        // A Factur-X is a PDF carrying its CII as `factur-x.xml`.
        let pdf_xml = (syntax == "Factur-X" && file.starts_with(b"%PDF-"))
            .then(|| facto::einvoice::facturx::embedded_xml(file).unwrap_or_default());
        let xml = String::from_utf8_lossy(pdf_xml.as_deref().unwrap_or(file));
        let root_ok = match syntax {
            "CII" | "Factur-X" => xml.contains("<rsm:CrossIndustryInvoice"),
            _ => xml.contains("<Invoice") || xml.contains("<CreditNote"),
        };
        let Some(number) = number_of(&xml).filter(|_| root_ok) else {
            return error(
                422,
                "InvalidSchema",
                "the file is not a document of its flowSyntax",
            );
        };
        if let Some(why) = self.refuse.get(&number) {
            return error(422, "InvalidSchema", why);
        }
        // A PA runs the French rules: a document that is not the French core invoice (here: no
        // early-payment discount note, BR-FR-05) is refused.
        if !xml.contains("AAB") {
            return error(422, "InvalidSchema", "BR-FR-05: the AAB note is missing");
        }
        let fault = self.faults.pop_front();
        if let Some(refused) = refused_by(&fault) {
            return refused;
        }
        if self.unique_check
            && self
                .flows
                .iter()
                .any(|f| f.tracking_id == tracking || f.number == number)
        {
            return error(
                422,
                "AlreadyExistingFlow",
                "a flow of this invoice already exists",
            );
        }
        let flow = SimFlow {
            id: format!("flow-{:04}", self.flows.len() + 1),
            tracking_id: tracking.to_owned(),
            name: name.to_owned(),
            syntax: syntax.to_owned(),
            ack: match (self.instant_ack, self.ack_errors.contains_key(&number)) {
                (true, true) => "Error",
                (true, false) => "Ok",
                _ => "Pending",
            },
            siren: crate::pa_sim_lc::seller_siren(&xml),
            date: crate::pa_sim_lc::issue_date(&xml),
            number,
            reads: 0,
            duplicate: false,
            updated_at: self.tick_clock(),
            processed: 0,
        };
        if !self.default_script.is_empty() && !self.scripts.contains_key(&flow.number) {
            let steps = self.default_script.iter().cloned().collect();
            self.scripts.insert(flow.number.clone(), steps);
        }
        *self.created.entry(tracking.to_owned()).or_insert(0) += 1;
        let answer = json!({"flowId": flow.id, "submittedAt": "2026-12-01T10:00:00Z",
            "trackingId": tracking, "name": name, "flowSyntax": syntax, "sha256": info["sha256"]});
        self.flows.push(flow);
        created_answer(&fault, answer)
    }

    fn search(&mut self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let Some(filters) = body.get("where").filter(|w| w.is_object()) else {
            return error(400, "MISSING_REQUIRED_FIELD", "where is required");
        };
        if body["limit"].as_u64().is_some_and(|l| l > 100) {
            return error(400, "INVALID_FORMAT", "limit is at most 100");
        }
        let lifecycle = filters["flowType"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "CustomerInvoiceLC"));
        if lifecycle {
            return self.search_lifecycle(&body);
        }
        if filters["flowType"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "SupplierInvoice"))
        {
            return self.search_inbox(&body);
        }
        let Some(tracking) = filters["trackingId"].as_str() else {
            return self.search_out(&body);
        };
        self.tracking_searches += 1;
        if self.search_lag > 0 {
            self.search_lag -= 1;
            return ResponseTemplate::new(200).set_body_json(json!({"limit": 100, "results": []}));
        }
        // A PA that ignores the criterion and echoes no trackingId lists every flow.
        let blind = self.search_blind;
        let results: Vec<Value> = self
            .flows
            .iter()
            .filter(|f| blind || f.tracking_id == tracking)
            .map(|f| {
                let mut v = f.json(self);
                if blind {
                    v.as_object_mut().map(|o| o.remove("trackingId"));
                }
                v
            })
            .chain(
                self.posted
                    .iter()
                    .filter(|p| !blind && p.tracking_id == tracking)
                    .map(crate::pa_sim_cdar::Posted::json),
            )
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(json!({"limit": 100, "filters": filters, "results": results}))
    }

    /// Metadata of a flow: each read moves a pending acknowledgement on (the PA processes it).
    fn metadata(&mut self, id: &str) -> ResponseTemplate {
        let errors = self.ack_errors.clone();
        let earlier = |f: &SimFlow| {
            self.async_unique_check
                && self
                    .flows
                    .iter()
                    .take_while(|o| o.id != f.id)
                    .any(|o| o.tracking_id == f.tracking_id)
        };
        let duplicate = self.flows.iter().find(|f| f.id == id).is_some_and(earlier);
        let next = self.at(self.clock + 1);
        let Some(f) = self.flows.iter_mut().find(|f| f.id == id) else {
            return error(404, "NOT_FOUND", "unknown flow");
        };
        f.reads += 1;
        if f.ack == "Pending" && f.reads >= 2 && !self.ack_never {
            f.duplicate = duplicate;
            f.ack = if duplicate || errors.contains_key(&f.number) {
                "Error"
            } else {
                "Ok"
            };
            self.clock += 1;
            f.updated_at = next;
        }
        let f = f.clone();
        ResponseTemplate::new(200).set_body_json(f.json(self))
    }
}

impl State {
    /// The PA's clock, moved on by one change.
    fn tick_clock(&mut self) -> DateTime<Utc> {
        self.clock += 1;
        self.at(self.clock)
    }

    /// A time on the PA's clock for outgoing flows.
    fn at(&mut self, clock: i64) -> DateTime<Utc> {
        let epoch = *self
            .epoch
            .get_or_insert_with(|| Utc::now().with_nanosecond(0).unwrap());
        epoch + Duration::minutes(clock)
    }

    /// Each search of outgoing flows, the PA processes the pending ones: acknowledged at the
    /// second (`Ok`, or `Error` with the reasons of `ack_errors`, or as a duplicate of an
    /// earlier flow of its `trackingId` under `async_unique_check`), which moves `updatedAt`.
    fn process_out(&mut self) {
        if self.ack_never {
            return;
        }
        for i in 0..self.flows.len() {
            if self.flows[i].ack != "Pending" {
                continue;
            }
            self.flows[i].processed += 1;
            if self.flows[i].processed < 2 {
                continue;
            }
            let duplicate = self.async_unique_check
                && self.flows[..i]
                    .iter()
                    .any(|o| o.tracking_id == self.flows[i].tracking_id);
            let error = duplicate || self.ack_errors.contains_key(&self.flows[i].number);
            let when = self.tick_clock();
            let f = &mut self.flows[i];
            f.duplicate = duplicate;
            f.ack = if error { "Error" } else { "Ok" };
            f.updated_at = when;
        }
    }

    /// A search of outgoing flows (`flowDirection`, `flowType`, strict `updatedAfter`), paged
    /// by an offset cursor; a first page is a processing step. Each listed flow counts as read.
    fn search_out(&mut self, body: &Value) -> ResponseTemplate {
        let filters = &body["where"];
        let offset = match body["cursor"].as_str() {
            None => {
                self.process_out();
                0
            }
            Some(c) => match c.strip_prefix("out:").and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => n,
                None => return error(400, "INVALID_FORMAT", "unknown cursor"),
            },
        };
        let listed = |key: &str, value: &str| {
            filters[key]
                .as_array()
                .is_none_or(|l| l.iter().any(|v| v == value))
        };
        if !listed("flowDirection", "Out") || !listed("flowType", "CustomerInvoice") {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"limit": 100, "filters": filters, "results": []}));
        }
        let after = match filters.get("updatedAfter").and_then(Value::as_str) {
            None => None,
            Some(a) => match DateTime::parse_from_rfc3339(a) {
                Ok(a) => Some(a.with_timezone(&Utc)),
                Err(_) => return error(400, "INVALID_FORMAT", "updatedAfter is a date-time"),
            },
        };
        let size = body["limit"].as_u64().map_or(25, |l| l as usize);
        let size = if self.out_page > 0 {
            size.min(self.out_page)
        } else {
            size
        };
        let matching: Vec<usize> = (0..self.flows.len())
            .filter(|&i| after.is_none_or(|a| self.flows[i].updated_at > a))
            .collect();
        let page: Vec<usize> = matching.iter().copied().skip(offset).take(size).collect();
        let results: Vec<Value> = page
            .iter()
            .map(|&i| {
                self.flows[i].reads += 1;
                self.flows[i].json(self)
            })
            .collect();
        let mut answer = json!({"limit": size, "filters": filters, "results": results});
        if offset + size < matching.len() {
            answer["nextCursor"] = json!(format!("out:{}", offset + size));
        }
        ResponseTemplate::new(200).set_body_json(answer)
    }
}

impl Answer for State {
    fn answer(&mut self, req: &Request) -> ResponseTemplate {
        let path = req.url.path().to_owned();
        self.calls.push(format!("{} {path}", req.method));
        if path == "/token" {
            return self.oauth.token(req);
        }
        if !self.authorised(req) {
            return error(401, "UNAUTHORIZED", "invalid token");
        }
        let Some(rid) = req
            .headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() == 36)
        else {
            return error(400, "MISSING_REQUEST_ID", "facto always sends Request-Id");
        };
        self.request_ids.push(rid.to_owned());
        if let Some(org) = req
            .headers
            .get("organization-id")
            .and_then(|v| v.to_str().ok())
        {
            self.organizations.insert(org.to_owned());
        }
        if let Some(rest) = path.strip_prefix(crate::pa_directory::BASE) {
            return self.directory.answer(req, rest);
        }
        let rest = path.strip_prefix(BASE).unwrap_or("");
        match (req.method.as_str(), rest) {
            ("POST", "/v1/flows") => self.create(req),
            ("POST", "/v1/flows/search") => self.search(req),
            (_, p) if p.starts_with("/v1/webhooks") => self.webhooks.answer(req, p),
            ("GET", p) if p.starts_with("/v1/flows/") => {
                let id = &p["/v1/flows/".len()..];
                let original = req
                    .url
                    .query_pairs()
                    .any(|(k, v)| k == "docType" && v == "Original");
                if original {
                    if let Some(answer) = self.incoming_file(id) {
                        return answer;
                    }
                }
                match self.lc.iter().find(|f| f.id == id) {
                    Some(f) if original => {
                        *self.downloads.entry(id.to_owned()).or_insert(0) += 1;
                        ResponseTemplate::new(200)
                            .insert_header(
                                "Content-Disposition",
                                format!("attachment;filename={}.xml", f.id).as_str(),
                            )
                            .set_body_raw(f.cdar.clone().into_bytes(), "application/xml")
                    }
                    Some(f) => ResponseTemplate::new(200).set_body_json(f.json()),
                    None => self.metadata(id),
                }
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

impl Sim {
    /// A PA that knows facto's client.
    pub async fn start() -> Sim {
        Sim::serve(State {
            oauth: FakeOAuth::client_credentials(CLIENT_ID, CLIENT_SECRET),
            ..State::default()
        })
        .await
    }

    /// The connector file of an `afnor-pa` target talking to this simulator with client
    /// credentials.
    pub fn connector(&self, extra: &str) -> String {
        format!(
            "kind = \"afnor-pa\"\napi_url = \"{0}{BASE}\"\ndirectory_url = \"{0}{1}\"\ntoken_url = \"{0}/token\"\nclient_id_env = \"PA_CLIENT_ID\"\nclient_secret_env = \"PA_CLIENT_SECRET\"\nmax_retry_secs = 5\n{extra}",
            self.server.uri(),
            crate::pa_directory::BASE
        )
    }

    /// The same with a bearer token and an organization.
    pub fn bearer_connector(&self, extra: &str) -> String {
        format!(
            "kind = \"afnor-pa\"\napi_url = \"{0}{BASE}\"\ndirectory_url = \"{0}{1}\"\nbearer_token_env = \"PA_TOKEN\"\norganization_id = \"552100554\"\nmax_retry_secs = 5\n{extra}",
            self.server.uri(),
            crate::pa_directory::BASE
        )
    }

    /// A PA that also sends lifecycle statuses: every new invoice's script starts with `steps`.
    pub async fn with_lifecycle(steps: &[&[Lc]]) -> Sim {
        Sim::serve(State {
            oauth: FakeOAuth::client_credentials(CLIENT_ID, CLIENT_SECRET),
            default_script: steps.iter().map(|s| s.to_vec()).collect(),
            lc_page: 100,
            ..State::default()
        })
        .await
    }

    /// Adds steps to an invoice's lifecycle script.
    pub fn then(&self, number: &str, steps: &[&[Lc]]) {
        let mut s = self.state.lock().unwrap();
        let q = s.scripts.entry(number.to_owned()).or_default();
        q.extend(steps.iter().map(|s| s.to_vec()));
    }

    /// Publishes a status about an invoice the PA never received from facto (same seller as
    /// facto's invoices).
    pub fn status_of_unknown(&self, number: &str, lc: Lc) {
        let mut s = self.state.lock().unwrap();
        let siren = s.flows.first().map(|f| f.siren.clone()).unwrap_or_default();
        s.publish(number, &siren, "20261130", &lc);
    }

    /// `n` outgoing flows acknowledged `days` ago, sent before facto (other trackingIds).
    pub fn history(&self, n: usize, days: i64) {
        let mut s = self.state.lock().unwrap();
        let at = Utc::now() - Duration::days(days);
        for k in 0..n {
            s.flows.push(SimFlow {
                id: format!("old-{k:04}"),
                tracking_id: format!("erp-{k}"),
                number: format!("OLD-{k}"),
                name: format!("OLD-{k}.xml"),
                syntax: "CII".into(),
                siren: String::new(),
                date: String::new(),
                ack: "Ok",
                reads: 0,
                duplicate: false,
                updated_at: at,
                processed: 0,
            });
        }
    }

    /// How often each invoice's flow metadata was read.
    pub fn reads(&self) -> BTreeMap<String, u32> {
        let s = self.state.lock().unwrap();
        s.flows
            .iter()
            .map(|f| (f.number.clone(), f.reads))
            .collect()
    }

    pub fn created(&self) -> BTreeMap<String, u32> {
        self.state.lock().unwrap().created.clone()
    }

    /// Calls whose `METHOD /path` starts with `prefix`.
    pub fn calls(&self, prefix: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }
}
