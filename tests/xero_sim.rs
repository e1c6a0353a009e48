//! A behavioural fake of Xero on 127.0.0.1 (wiremock, one stateful responder): the OAuth2 token
//! endpoint (authorization code with PKCE checked against the consent URL's challenge, refresh
//! tokens rotated on every use), `/connections`, and the Accounting API: accounts and tax rates,
//! contacts (looked up by a `where` of numbers, created many a call, a number never twice),
//! invoices and credit notes in batches with per-item results, `Idempotency-Key` replay, lookups
//! by number, allocations (one credit note a call, or a batch's through `POST /CreditNotes`).
//! Faults on demand: minute and daily 429s, a lost answer after processing. It counts creations
//! per number so that tests prove "exactly once", and calls per endpoint so that tests prove
//! what a sync costs.

use std::collections::{BTreeMap, HashMap, VecDeque};

use rust_decimal::Decimal;
use serde_json::{json, Value};
use wiremock::{Request, ResponseTemplate};

use crate::common::oauth::FakeOAuth;
use crate::common::sim::Answer;

pub const CLIENT_ID: &str = "xero-app-id";
pub const CLIENT_SECRET: &str = "xero-app-secret";
pub const TENANT: &str = "tenant-0001";

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    Minute,
    Day,
    LoseAnswer,
    /// The batch lands only after this long (listed, and its key known, from then on), and so
    /// does its answer; the same key sent meanwhile gets 409, as a request still in progress.
    Late(std::time::Duration),
}

#[derive(Default)]
pub struct State {
    /// Xero's identity server: PKCE consent, refresh tokens rotated on every use.
    pub oauth: FakeOAuth,
    pub accounts: Vec<String>,
    pub tax_types: Vec<String>,
    pub contacts: Vec<(String, String)>,
    pub created_contacts: u32,
    /// Contacts refused by `PUT /Contacts` (a number already known, a name rejected).
    pub refused_contacts: u32,
    /// How long each contact lookup (`GET /Contacts`) takes to answer, when set.
    pub contacts_delay: Option<std::time::Duration>,
    pub docs: Vec<Value>,
    pub created: BTreeMap<String, u32>,
    pub allocations: Vec<(String, String)>,
    replies: HashMap<String, Value>,
    pub faults: VecDeque<Fault>,
    pub reject: Vec<String>,
    /// The next batch answer says no call is left today (`X-DayLimit-Remaining: 0`).
    pub day_exhausted_next: bool,
    /// Allocations of credit notes hit the daily limit (429, `X-Rate-Limit-Problem: day`).
    pub allocations_over_day_limit: bool,
    pub batch_puts: u32,
    /// Invoice numbers paid in Xero.
    pub paid: Vec<String>,
    pub calls: u32,
    /// Accounting API calls by `METHOD /path` (ids in paths as `{id}`).
    pub api_calls: BTreeMap<String, u32>,
    /// Contact numbers whose creation Xero refuses (a validation error on the item).
    pub reject_contacts: Vec<String>,
    /// Documents name their contact by id only (`Contact` without `ContactNumber`).
    pub contacts_unnumbered: bool,
    /// Batches not landed yet: idempotency key → when, and the numbers they hold.
    pub landing: Vec<(Option<String>, std::time::Instant, Vec<String>)>,
}

impl State {
    fn landed(&self, number: &str) -> bool {
        let now = std::time::Instant::now();
        !self
            .landing
            .iter()
            .any(|(_, t, n)| *t > now && n.iter().any(|x| x == number))
    }
}

/// The running simulator.
pub type Sim = crate::common::sim::Sim<State>;

/// The helpers of the answers.
struct Responder;

fn d(v: &Value) -> Decimal {
    v.to_string().trim_matches('"').parse().unwrap_or_default()
}

/// The numbers of a `where` made of `ContactNumber=="…"` joined by ` OR ` (`None`: anything
/// else, which this fake does not read).
fn contact_numbers(w: &str) -> Option<Vec<String>> {
    w.split(" OR ")
        .map(|c| {
            let v = c
                .trim()
                .strip_prefix("ContactNumber==\"")?
                .strip_suffix('"')?;
            Some(v.replace("\\\"", "\"").replace("\\\\", "\\"))
        })
        .collect()
}

/// The request's `Idempotency-Key`, if any.
fn idempotency_key(req: &Request) -> Option<String> {
    req.headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Responder {
    /// `PUT /Contacts`: every contact of the body, each its own result; a number already
    /// known, or one the test rejects, is refused (Xero would hold two contacts otherwise).
    fn contacts(s: &mut State, req: &Request) -> ResponseTemplate {
        let key = idempotency_key(req);
        if let Some(r) = key.as_ref().and_then(|k| s.replies.get(k)) {
            return ResponseTemplate::new(200).set_body_json(r.clone());
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let mut out = Vec::new();
        for c in body["Contacts"].as_array().cloned().unwrap_or_default() {
            let n = c["ContactNumber"].as_str().unwrap_or("").to_owned();
            let why = if s.contacts.iter().any(|(_, m)| *m == n) {
                Some(format!(
                    "Contact number {n} is already assigned to another contact."
                ))
            } else if s.reject_contacts.contains(&n) || c["Name"].as_str().unwrap_or("").is_empty()
            {
                Some("The contact name must be unique across all active contacts.".to_owned())
            } else {
                None
            };
            if let Some(why) = why {
                s.refused_contacts += 1;
                out.push(json!({"ContactNumber": n, "HasValidationErrors": true,
                    "ValidationErrors": [{"Message": why}]}));
                continue;
            }
            let id = format!("c0000000-0000-4000-8000-{:012x}", s.contacts.len() + 1);
            s.contacts.push((id.clone(), n.clone()));
            s.created_contacts += 1;
            out.push(json!({"ContactID": id, "ContactNumber": n, "HasValidationErrors": false}));
        }
        let reply = json!({ "Contacts": out });
        if let Some(k) = key {
            s.replies.insert(k, reply.clone());
        }
        ResponseTemplate::new(200).set_body_json(reply)
    }

    /// `POST /CreditNotes` updating credit notes by id with their `Allocations`: each credit
    /// note its own result; an unknown invoice or more than the credit note's total is refused.
    fn allocate_many(s: &mut State, req: &Request) -> ResponseTemplate {
        if s.allocations_over_day_limit {
            return ResponseTemplate::new(429)
                .insert_header("Retry-After", "3600")
                .insert_header("X-Rate-Limit-Problem", "day");
        }
        let key = idempotency_key(req);
        if let Some(r) = key.as_ref().and_then(|k| s.replies.get(k)) {
            return ResponseTemplate::new(200).set_body_json(r.clone());
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let mut out = Vec::new();
        for item in body["CreditNotes"].as_array().cloned().unwrap_or_default() {
            let cn = item["CreditNoteID"].as_str().unwrap_or("").to_owned();
            let Some(total) = s
                .docs
                .iter()
                .find(|x| x["CreditNoteID"] == cn.as_str())
                .map(|x| d(&x["Total"]))
            else {
                out.push(json!({"CreditNoteID": cn, "HasErrors": true, "ValidationErrors": [{"Message": "Credit note not found"}]}));
                continue;
            };
            let mut allocations = Vec::new();
            for a in item["Allocations"].as_array().cloned().unwrap_or_default() {
                let inv = a["Invoice"]["InvoiceID"].as_str().unwrap_or("").to_owned();
                let known = s.docs.iter().any(|x| x["InvoiceID"] == inv.as_str());
                let mut a = a.clone();
                if !known || d(&a["Amount"]) > total {
                    a["ValidationErrors"] = json!([{"Message": "Credit Note cannot be allocated as amount is greater than amount outstanding"}]);
                } else {
                    s.allocations.push((cn.clone(), inv));
                    a["ValidationErrors"] = json!([]);
                }
                allocations.push(a);
            }
            out.push(json!({"CreditNoteID": cn, "HasErrors": false, "Allocations": allocations}));
        }
        let reply = json!({ "CreditNotes": out });
        if let Some(k) = key {
            s.replies.insert(k, reply.clone());
        }
        ResponseTemplate::new(200).set_body_json(reply)
    }

    fn docs(s: &mut State, req: &Request, credit: bool) -> ResponseTemplate {
        let key = idempotency_key(req);
        if let Some(k) = &key {
            let now = std::time::Instant::now();
            if s.landing
                .iter()
                .any(|(lk, t, _)| lk.as_deref() == Some(k.as_str()) && *t > now)
            {
                return ResponseTemplate::new(409).set_body_json(
                    json!({"Title": "Conflict", "Detail": "a request with this key is in progress"}),
                );
            }
            if let Some(r) = s.replies.get(k) {
                return ResponseTemplate::new(200).set_body_json(r.clone());
            }
        }
        let fault = s.faults.pop_front();
        match fault {
            Some(Fault::Minute) => {
                return ResponseTemplate::new(429)
                    .insert_header("Retry-After", "1")
                    .insert_header("X-Rate-Limit-Problem", "minute")
            }
            Some(Fault::Day) => {
                return ResponseTemplate::new(429)
                    .insert_header("Retry-After", "3600")
                    .insert_header("X-Rate-Limit-Problem", "day")
            }
            _ => {}
        }
        s.batch_puts += 1;
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let (list, number_field, id_field) = if credit {
            ("CreditNotes", "CreditNoteNumber", "CreditNoteID")
        } else {
            ("Invoices", "InvoiceNumber", "InvoiceID")
        };
        let mut out = Vec::new();
        for item in body[list].as_array().cloned().unwrap_or_default() {
            let number = item[number_field].as_str().unwrap_or("").to_owned();
            let mut errors = Vec::new();
            for l in item["LineItems"].as_array().cloned().unwrap_or_default() {
                let code = l["AccountCode"].as_str().unwrap_or("");
                if !s.accounts.iter().any(|a| a == code) {
                    errors.push(format!(
                        "Account code '{code}' is not a valid code for this document."
                    ));
                }
                let tax = l["TaxType"].as_str().unwrap_or("");
                if !s.tax_types.iter().any(|t| t == tax) {
                    errors.push(format!(
                        "The TaxType code '{tax}' does not exist or cannot be used."
                    ));
                }
                let expected = d(&l["Quantity"]) * d(&l["UnitAmount"]) - d(&l["DiscountAmount"]);
                if expected.round_dp(2) != d(&l["LineAmount"]) {
                    errors.push(format!(
                        "Line amount {} does not match {}",
                        l["LineAmount"], expected
                    ));
                }
            }
            if s.reject.contains(&number) {
                errors.push("Document rejected by the test".into());
            }
            if errors.is_empty() {
                *s.created.entry(number.clone()).or_insert(0) += 1;
                let id = format!(
                    "{:08x}-0000-4000-8000-{:012x}",
                    s.docs.len() + 1,
                    s.docs.len() + 1
                );
                let total: Decimal = item["LineItems"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|l| d(&l["LineAmount"]) + d(&l["TaxAmount"]))
                            .sum()
                    })
                    .unwrap_or_default();
                // Xero names the document's contact, with its number.
                let contact_id = item["Contact"]["ContactID"].as_str().unwrap_or("");
                let contact_number = s
                    .contacts
                    .iter()
                    .find(|(id, _)| id == contact_id)
                    .map(|(_, n)| n.clone())
                    .filter(|_| !s.contacts_unnumbered);
                let stored = json!({id_field: id, number_field: number, "Status": "AUTHORISED", "Total": total.to_string(), "Type": item["Type"],
                    "Contact": {"ContactID": contact_id, "ContactNumber": contact_number}});
                s.docs.push(stored.clone());
                let mut r = stored;
                r["HasErrors"] = json!(false);
                r["StatusAttributeString"] = json!("OK");
                out.push(r);
            } else {
                out.push(json!({number_field: number, "HasErrors": true, "StatusAttributeString": "ERROR",
                    "ValidationErrors": errors.iter().map(|m| json!({"Message": m})).collect::<Vec<_>>()}));
            }
        }
        let reply = json!({list: out});
        if let Some(k) = key.clone() {
            s.replies.insert(k, reply.clone());
        }
        if let Some(Fault::LoseAnswer) = fault {
            return ResponseTemplate::new(500);
        }
        let late = match fault {
            Some(Fault::Late(d)) => {
                let numbers = reply[list]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r[number_field].as_str().map(str::to_owned))
                    .collect();
                s.landing
                    .push((key.clone(), std::time::Instant::now() + d, numbers));
                Some(d)
            }
            _ => None,
        };
        let day_left = if std::mem::take(&mut s.day_exhausted_next) {
            "0"
        } else {
            "4999"
        };
        let answer = ResponseTemplate::new(200)
            .insert_header("X-MinLimit-Remaining", "59")
            .insert_header("X-DayLimit-Remaining", day_left)
            .set_body_json(reply);
        match late {
            Some(d) => answer.set_delay(d),
            None => answer,
        }
    }
}

impl Answer for State {
    fn answer(&mut self, req: &Request) -> ResponseTemplate {
        let s = self;
        s.calls += 1;
        let path = req.url.path().to_owned();
        if path == "/connect/token" {
            return s.oauth.token(req);
        }
        if !s.oauth.authorised(req) {
            return ResponseTemplate::new(401).set_body_json(json!({"Type": null, "Title": "Unauthorized", "Status": 401, "Detail": "TokenExpired: token expired"}));
        }
        if path == "/connections" {
            return ResponseTemplate::new(200).set_body_json(json!([{"id": "c1", "tenantId": TENANT, "tenantType": "ORGANISATION", "tenantName": "Atelier Demo"}]));
        }
        if req
            .headers
            .get("xero-tenant-id")
            .and_then(|v| v.to_str().ok())
            != Some(TENANT)
        {
            return ResponseTemplate::new(403).set_body_json(json!({"Title": "Forbidden"}));
        }
        let path = path.trim_start_matches("/api.xro/2.0").to_owned();
        let endpoint = match path.strip_prefix("/CreditNotes/") {
            Some(rest) if rest.ends_with("/Allocations") => {
                "/CreditNotes/{id}/Allocations".to_owned()
            }
            _ => path.clone(),
        };
        *s.api_calls
            .entry(format!("{} {endpoint}", req.method))
            .or_insert(0) += 1;
        let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        match (req.method.as_str(), path.as_str()) {
            ("GET", "/Accounts") => ResponseTemplate::new(200).set_body_json(json!({"Accounts":
                s.accounts.iter().map(|c| json!({"Code": c, "Status": "ACTIVE"})).collect::<Vec<_>>()})),
            ("GET", "/TaxRates") => ResponseTemplate::new(200).set_body_json(json!({"TaxRates":
                s.tax_types.iter().map(|t| json!({"TaxType": t, "Status": "ACTIVE"})).collect::<Vec<_>>()})),
            ("GET", "/Contacts") => {
                let Some(numbers) = q.get("where").map(|w| contact_numbers(w)) else {
                    return ResponseTemplate::new(200).set_body_json(json!({"Contacts": s.contacts.iter().map(|(id, n)| json!({"ContactID": id, "ContactNumber": n})).collect::<Vec<_>>()}));
                };
                let Some(numbers) = numbers else {
                    return ResponseTemplate::new(400).set_body_json(json!({"ErrorNumber": 16, "Type": "QueryParseException", "Message": "bad where"}));
                };
                let list: Vec<Value> = s.contacts.iter().filter(|(_, n)| numbers.contains(n)).map(|(id, n)| json!({"ContactID": id, "ContactNumber": n})).collect();
                let answer = ResponseTemplate::new(200).set_body_json(json!({"Contacts": list}));
                match s.contacts_delay {
                    Some(d) => answer.set_delay(d),
                    None => answer,
                }
            }
            ("PUT", "/Contacts") => Responder::contacts(s, req),
            ("POST", "/CreditNotes") => Responder::allocate_many(s, req),
            ("PUT", "/Invoices") => Responder::docs(s, req, false),
            ("PUT", "/CreditNotes") => Responder::docs(s, req, true),
            ("GET", "/Invoices") if q.contains_key("IDs") => {
                let ids: Vec<&str> = q["IDs"].split(',').collect();
                let list: Vec<Value> = s
                    .docs
                    .iter()
                    .filter(|x| x["InvoiceID"].as_str().is_some_and(|i| ids.contains(&i)))
                    .map(|x| {
                        let mut x = x.clone();
                        if s.paid.iter().any(|n| x["InvoiceNumber"] == n.as_str()) {
                            x["Status"] = json!("PAID");
                        }
                        x
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"Invoices": list}))
            }
            ("GET", "/Invoices") => {
                let nums: Vec<String> = q.get("InvoiceNumbers").map(|v| v.split(',').map(str::to_owned).collect()).unwrap_or_default();
                let list: Vec<Value> = s.docs.iter().filter(|x| x["InvoiceNumber"].as_str().is_some_and(|n| nums.iter().any(|m| m == n) && s.landed(n))).cloned().collect();
                ResponseTemplate::new(200).set_body_json(json!({"Invoices": list}))
            }
            ("GET", "/CreditNotes") => {
                let w = q.get("where").cloned().unwrap_or_default();
                let list: Vec<Value> = s.docs.iter().filter(|x| x["CreditNoteNumber"].as_str().is_some_and(|n| w.contains(&format!("\"{n}\"")) && s.landed(n))).cloned().collect();
                ResponseTemplate::new(200).set_body_json(json!({"CreditNotes": list}))
            }
            ("PUT", p) if p.starts_with("/CreditNotes/") && p.ends_with("/Allocations") && s.allocations_over_day_limit => {
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "3600")
                    .insert_header("X-Rate-Limit-Problem", "day")
            }
            ("PUT", p) if p.starts_with("/CreditNotes/") && p.ends_with("/Allocations") => {
                let cn = p.trim_start_matches("/CreditNotes/").trim_end_matches("/Allocations").to_owned();
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let inv = body["Allocations"][0]["Invoice"]["InvoiceID"].as_str().unwrap_or("").to_owned();
                s.allocations.push((cn, inv));
                ResponseTemplate::new(200).set_body_json(json!({"Allocations": body["Allocations"]}))
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

impl Sim {
    /// An organisation whose chart and tax rates cover the demo mapping (with the Xero codes
    /// the tests add to it).
    pub async fn start() -> Sim {
        let st = State {
            accounts: [
                "706100", "706200", "706300", "706400", "707000", "707100", "707200", "708500",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            tax_types: ["FR20", "FR10", "FR55", "FR21", "EXEMPT", "RCSERV"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            oauth: FakeOAuth::authorization_code(CLIENT_ID, CLIENT_SECRET).expiring_in(1800),
            ..State::default()
        };
        Sim::serve(st).await
    }

    pub fn connector(&self, port: u16, extra: &str) -> String {
        let u = self.server.uri();
        format!(
            "kind = \"xero\"\nclient_id_env = \"XERO_CLIENT_ID\"\nclient_secret_env = \"XERO_CLIENT_SECRET\"\napi_url = \"{u}/api.xro/2.0\"\ntoken_url = \"{u}/connect/token\"\nauthorize_url = \"{u}/identity/connect/authorize\"\nconnections_url = \"{u}/connections\"\nredirect_port = {port}\nmax_retry_secs = 5\ncalls_per_minute = 1000\n{extra}"
        )
    }

    pub fn created(&self) -> BTreeMap<String, u32> {
        self.state.lock().unwrap().created.clone()
    }
}
