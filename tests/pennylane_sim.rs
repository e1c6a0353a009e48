//! A behavioural fake of Pennylane's API v2 on 127.0.0.1 (wiremock with one stateful
//! responder): bearer token, ledger accounts, customers found by external reference or created,
//! file attachments (the first import of each may answer 409 "not ready"), imports checked for
//! coherent amounts and recorded by external reference, cursor-paged lists, and faults on demand
//! (429 with retry-after, an answer lost after the import, a slow answer). It counts imports per
//! invoice number so that tests prove "imported exactly once".

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{json, Value};
use wiremock::{Request, ResponseTemplate};

use crate::common::oauth::FakeOAuth;
use crate::common::sim::Answer;

pub const TOKEN: &str = "pl-company-token";

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    TooMany,
    LoseAnswer,
    Slow(Duration),
    /// The import lands only after this long (listed from then on), and so does its answer.
    Late(Duration),
}

#[derive(Default)]
pub struct State {
    pub accounts: Vec<(i64, String, String)>,
    pub customers: Vec<(i64, String)>,
    pub created_customers: u32,
    pub attachments: u32,
    pub invoices: Vec<Value>,
    pub imports: BTreeMap<String, u32>,
    pub faults: VecDeque<Fault>,
    pub requests: u32,
    pub not_ready_once: bool,
    /// Invoice numbers paid in Pennylane.
    pub paid: Vec<String>,
    /// Imports not listed yet (a late answer): invoice id → when they land.
    pub landing: BTreeMap<i64, std::time::Instant>,
    /// OAuth2 of partner apps: PKCE consent, both tokens rotated on every refresh.
    pub oauth: FakeOAuth,
}

pub const OAUTH_CLIENT: &str = "pl-partner-app";
pub const OAUTH_SECRET: &str = "pl-partner-secret";

/// The running simulator.
pub type Sim = crate::common::sim::Sim<State>;

fn dec(v: &Value) -> Decimal {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_default()
}

fn filter_value(req: &Request, field: &str) -> Option<String> {
    let f = req
        .url
        .query_pairs()
        .find(|(k, _)| k == "filter")?
        .1
        .into_owned();
    let v: Value = serde_json::from_str(&f).ok()?;
    v.as_array()?
        .iter()
        .find(|c| c["field"] == field)
        .and_then(|c| c["value"].as_str().map(str::to_owned))
}

fn page(items: Vec<Value>) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"items": items, "has_more": false, "next_cursor": null}))
}

impl Answer for State {
    fn answer(&mut self, req: &Request) -> ResponseTemplate {
        let s = self;
        s.requests += 1;
        if req.url.path() == "/oauth/token" {
            return s.oauth.token(req);
        }
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let oauth_ok = s.oauth.authorised(req);
        if auth != Some(&format!("Bearer {TOKEN}")) && !oauth_ok {
            return ResponseTemplate::new(401).set_body_json(json!({"error": "Unauthorized"}));
        }
        let path = req
            .url
            .path()
            .trim_start_matches("/api/external/v2")
            .to_owned();
        let method = req.method.as_str().to_owned();
        match (method.as_str(), path.as_str()) {
            ("GET", "/ledger_accounts") => {
                let n = filter_value(req, "number").unwrap_or_default();
                let rows = s
                    .accounts
                    .iter()
                    .filter(|(_, num, _)| *num == n)
                    .map(|(id, num, vat)| json!({"id": id, "number": num, "vat_rate": vat, "enabled": true}))
                    .collect();
                page(rows)
            }
            ("GET", "/customers") => {
                let ext = filter_value(req, "external_reference");
                page(
                    s.customers
                        .iter()
                        .filter(|(_, e)| ext.as_deref().is_none_or(|x| x == e))
                        .map(|(id, e)| json!({"id": id, "external_reference": e}))
                        .collect(),
                )
            }
            ("POST", "/company_customers") => {
                let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                let id = 200_000 + s.customers.len() as i64 + 1;
                s.customers.push((
                    id,
                    body["external_reference"].as_str().unwrap_or("").to_owned(),
                ));
                s.created_customers += 1;
                ResponseTemplate::new(201).set_body_json(json!({"id": id, "name": body["name"]}))
            }
            ("POST", "/file_attachments") => {
                let ct = req
                    .headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !ct.starts_with("multipart/form-data")
                    || !req.body.windows(4).any(|w| w == b"%PDF")
                {
                    return ResponseTemplate::new(422)
                        .set_body_json(json!({"error": "file missing"}));
                }
                s.attachments += 1;
                ResponseTemplate::new(201).set_body_json(json!({"id": 4000 + s.attachments}))
            }
            ("POST", "/customer_invoices/import") => {
                if s.not_ready_once {
                    s.not_ready_once = false;
                    return ResponseTemplate::new(409)
                        .set_body_json(json!({"error": "file not ready"}));
                }
                let fault = s.faults.pop_front();
                if let Some(Fault::TooMany) = fault {
                    return ResponseTemplate::new(429)
                        .insert_header("retry-after", "1")
                        .insert_header("ratelimit-remaining", "0")
                        .set_body_json(
                            json!({"error": "Rate limit exceeded. Please retry in 1 seconds."}),
                        );
                }
                let b: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
                // Pennylane stores amounts as sent, but they must be coherent.
                let lines = b["invoice_lines"].as_array().cloned().unwrap_or_default();
                let sum_amount: Decimal = lines.iter().map(|l| dec(&l["currency_amount"])).sum();
                let sum_tax: Decimal = lines.iter().map(|l| dec(&l["currency_tax"])).sum();
                let coherent = dec(&b["currency_amount_before_tax"]) + dec(&b["currency_tax"])
                    == dec(&b["currency_amount"])
                    && sum_amount == dec(&b["currency_amount"])
                    && sum_tax == dec(&b["currency_tax"]);
                if !coherent {
                    return ResponseTemplate::new(422)
                        .set_body_json(json!({"error": "amounts are not coherent", "details": b}));
                }
                let number = b["invoice_number"].as_str().unwrap_or("").to_owned();
                *s.imports.entry(number.clone()).or_insert(0) += 1;
                let id = 9000 + s.invoices.len() as i64 + 1;
                s.invoices.push(json!({"id": id, "invoice_number": number,
                    "external_reference": b["external_reference"], "credited_invoice_id": b["credited_invoice_id"],
                    "currency_amount": b["currency_amount"]}));
                let answer = ResponseTemplate::new(201)
                    .set_body_json(json!({"id": id, "invoice_number": number,
                    "external_reference": b["external_reference"], "status": "upcoming"}));
                match fault {
                    Some(Fault::LoseAnswer) => ResponseTemplate::new(502),
                    Some(Fault::Slow(d)) => answer.set_delay(d),
                    Some(Fault::Late(d)) => {
                        s.landing.insert(id, std::time::Instant::now() + d);
                        answer.set_delay(d)
                    }
                    _ => answer,
                }
            }
            ("GET", p) if p.starts_with("/customer_invoices/") => {
                let id: i64 = p
                    .trim_start_matches("/customer_invoices/")
                    .parse()
                    .unwrap_or(0);
                match s.invoices.iter().find(|i| i["id"] == id) {
                    Some(i) => {
                        let mut i = i.clone();
                        let paid = s.paid.iter().any(|n| i["invoice_number"] == n.as_str());
                        i["status"] = json!(if paid { "paid" } else { "upcoming" });
                        i["paid"] = json!(paid);
                        ResponseTemplate::new(200).set_body_json(i)
                    }
                    None => ResponseTemplate::new(404),
                }
            }
            ("GET", "/customer_invoices") => {
                let ext = filter_value(req, "external_reference");
                let num = filter_value(req, "invoice_number");
                let now = std::time::Instant::now();
                page(
                    s.invoices
                        .iter()
                        .filter(|i| {
                            i["id"]
                                .as_i64()
                                .and_then(|id| s.landing.get(&id))
                                .is_none_or(|t| *t <= now)
                        })
                        .filter(|i| ext.as_deref().is_none_or(|x| i["external_reference"] == x))
                        .filter(|i| num.as_deref().is_none_or(|x| i["invoice_number"] == x))
                        .cloned()
                        .collect(),
                )
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

impl Sim {
    /// A company whose chart holds the demo mapping's revenue accounts.
    pub async fn start() -> Sim {
        let mut st = State {
            oauth: FakeOAuth::authorization_code(OAUTH_CLIENT, OAUTH_SECRET)
                .prefixed("PLA", "PLR")
                .revoking_previous()
                .expiring_in(86400),
            ..State::default()
        };
        for (i, n) in [
            "706100", "706200", "706300", "706400", "707000", "707100", "707200", "708500",
        ]
        .iter()
        .enumerate()
        {
            st.accounts
                .push((5000 + i as i64, (*n).to_owned(), "any".to_owned()));
        }
        Sim::serve(st).await
    }

    pub fn connector(&self, extra: &str) -> String {
        format!(
            "kind = \"pennylane\"\napi_url = \"{}/api/external/v2\"\ntoken_env = \"PENNYLANE_API_TOKEN\"\nmax_retry_secs = 5\nrequests_per_5s = 1000\n{extra}",
            self.server.uri()
        )
    }

    pub fn imports(&self) -> BTreeMap<String, u32> {
        self.state.lock().unwrap().imports.clone()
    }
}
