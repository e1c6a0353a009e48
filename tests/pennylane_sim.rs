//! A behavioural fake of Pennylane's API v2 on 127.0.0.1 (wiremock with one stateful
//! responder): bearer token, ledger accounts, customers found by external reference or created,
//! file attachments (the first import of each may answer 409 "not ready"), imports checked for
//! coherent amounts and recorded by external reference, cursor-paged lists, and faults on demand
//! (429 with retry-after, an answer lost after the import, a slow answer). It counts imports per
//! invoice number so that tests prove "imported exactly once", and every call per endpoint
//! (`calls`) so that tests prove what a sync costs. Lists honour `limit` and `cursor`, and the
//! `filter` conditions facto sends (`eq`, `in`, and `gt`/`gteq` on `updated_at`); an invoice's
//! `updated_at` moves when it is imported and when it is paid.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
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
    /// Invoice ids whose payment moved their `updated_at` already.
    pub paid_seen: BTreeSet<i64>,
    /// Calls per endpoint (`GET /customer_invoices/{id}`), authorised or not.
    pub calls: BTreeMap<String, u32>,
    /// Invoices returned by lists of customer invoices.
    pub listed: u32,
    /// Filters refused (422) when they contain one of these, as an API that does not support
    /// them would: `"operator":"in"`, `"updated_at"`.
    pub refuse: Vec<&'static str>,
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

fn query(req: &Request, key: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// The `filter` conditions on `field`: (operator, value).
fn conditions(req: &Request, field: &str) -> Vec<(String, Value)> {
    let v: Value = query(req, "filter")
        .and_then(|f| serde_json::from_str(&f).ok())
        .unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["field"] == field)
        .map(|c| {
            (
                c["operator"].as_str().unwrap_or("").to_owned(),
                c["value"].clone(),
            )
        })
        .collect()
}

/// Whether `value` passes every condition on `field` (`eq`, `in`, `gt`, `gteq`; timestamps
/// compared as instants).
fn passes(req: &Request, field: &str, value: &Value) -> bool {
    let time = |v: &Value| {
        v.as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
    };
    conditions(req, field)
        .iter()
        .all(|(op, want)| match op.as_str() {
            "eq" => value == want,
            "in" => want.as_array().is_some_and(|a| a.contains(value)),
            "gt" | "gteq" => match (time(value), time(want)) {
                (Some(v), Some(w)) => v > w || (op == "gteq" && v == w),
                _ => false,
            },
            _ => false,
        })
}

/// One page of `items` as `limit` and `cursor` (an offset here) ask.
fn page_of(req: &Request, items: Vec<Value>) -> ResponseTemplate {
    let limit: usize = query(req, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let from: usize = query(req, "cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let more = items.len() > from + limit;
    let items: Vec<Value> = items.into_iter().skip(from).take(limit).collect();
    ResponseTemplate::new(200).set_body_json(json!({"items": items, "has_more": more,
        "next_cursor": more.then(|| (from + limit).to_string())}))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl Answer for State {
    fn answer(&mut self, req: &Request) -> ResponseTemplate {
        let s = self;
        s.requests += 1;
        let route = req.url.path().trim_start_matches("/api/external/v2");
        let route = match route.strip_prefix("/customer_invoices/") {
            Some(rest) if rest.parse::<i64>().is_ok() => "/customer_invoices/{id}".to_owned(),
            _ => route.to_owned(),
        };
        *s.calls
            .entry(format!("{} {route}", req.method))
            .or_insert(0) += 1;
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
        if let Some(f) = query(req, "filter") {
            if s.refuse.iter().any(|r| f.contains(r)) {
                return ResponseTemplate::new(422)
                    .set_body_json(json!({"error": "this filter is not supported"}));
            }
        }
        match (method.as_str(), path.as_str()) {
            ("GET", "/ledger_accounts") => {
                let rows = s
                    .accounts
                    .iter()
                    .filter(|(_, num, _)| passes(req, "number", &json!(num)))
                    .map(|(id, num, vat)| json!({"id": id, "number": num, "vat_rate": vat, "enabled": true}))
                    .collect();
                page_of(req, rows)
            }
            ("GET", "/customers") => {
                let rows = s
                    .customers
                    .iter()
                    .filter(|(_, e)| passes(req, "external_reference", &json!(e)))
                    .map(|(id, e)| json!({"id": id, "external_reference": e}))
                    .collect();
                page_of(req, rows)
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
                    "currency_amount": b["currency_amount"], "updated_at": now()}));
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
                s.settle_payments();
                match s.invoices.iter().find(|i| i["id"] == id) {
                    Some(i) => ResponseTemplate::new(200).set_body_json(i),
                    None => ResponseTemplate::new(404),
                }
            }
            ("GET", "/customer_invoices") => {
                s.settle_payments();
                let now = std::time::Instant::now();
                let rows = s
                    .invoices
                    .iter()
                    .filter(|i| {
                        i["id"]
                            .as_i64()
                            .and_then(|id| s.landing.get(&id))
                            .is_none_or(|t| *t <= now)
                    })
                    .filter(|i| {
                        ["external_reference", "invoice_number", "updated_at"]
                            .iter()
                            .all(|f| passes(req, f, &i[*f]))
                    })
                    .cloned()
                    .collect::<Vec<_>>();
                s.listed += rows.len() as u32;
                page_of(req, rows)
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

impl State {
    /// Gives every invoice its status, and moves `updated_at` of those paid since last seen.
    fn settle_payments(&mut self) {
        for i in &mut self.invoices {
            let id = i["id"].as_i64().unwrap_or(0);
            let paid = self.paid.iter().any(|n| i["invoice_number"] == n.as_str());
            if paid && self.paid_seen.insert(id) {
                i["updated_at"] = json!(now());
            }
            i["status"] = json!(if paid { "paid" } else { "upcoming" });
            i["paid"] = json!(paid);
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

    /// Moves every invoice's `updated_at` back by `by` (time passing since they changed).
    pub fn age(&self, by: chrono::Duration) {
        for i in &mut self.state.lock().unwrap().invoices {
            let t =
                chrono::DateTime::parse_from_rfc3339(i["updated_at"].as_str().unwrap()).unwrap();
            i["updated_at"] = json!((t - by).to_rfc3339());
        }
    }

    /// Calls per endpoint so far, and forgets them.
    pub fn take_calls(&self) -> BTreeMap<String, u32> {
        std::mem::take(&mut self.state.lock().unwrap().calls)
    }
}
