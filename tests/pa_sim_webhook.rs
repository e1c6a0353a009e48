//! The Flow API's `/v1/webhooks` in the PA simulator: list (`GET`, without the keys), create
//! (`POST`: `callbackUrl` required, `flowTypes` checked against the spec's enum; 201 with
//! `webhookId`, `signingKey`, `createdAt`), remove (`DELETE /v1/webhooks/{id}`), and the PA's
//! signature of an event, so that tests send what a PA would.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use wiremock::{Request, ResponseTemplate};

/// The signing key every webhook gets (base64 of 32 bytes, as the spec's `format: byte`).
pub const SIGNING_KEY: &str = "c2ltdWxhdGVkLXBhLXdlYmhvb2stc2lnbmluZy1rZXk=";

const FLOW_TYPES: [&str; 6] = [
    "CustomerInvoice",
    "SupplierInvoice",
    "CustomerInvoiceLC",
    "SupplierInvoiceLC",
    "StateCustomerInvoiceLC",
    "StateSupplierInvoiceLC",
];

#[derive(Default)]
pub struct Webhooks {
    /// The webhooks held (as `GET` lists them).
    pub hooks: Vec<Value>,
    /// `POST /v1/webhooks` that created one.
    pub created: u32,
    /// `GET /v1/webhooks`.
    pub listed: u32,
    /// Webhooks removed.
    pub deleted: u32,
}

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"errorCode": code, "errorMessage": message}))
}

impl Webhooks {
    /// Answers a call under `/v1/webhooks` (`rest` is the path from `/v1`).
    pub fn answer(&mut self, req: &Request, rest: &str) -> ResponseTemplate {
        match (req.method.as_str(), rest) {
            ("GET", "/v1/webhooks") => {
                self.listed += 1;
                ResponseTemplate::new(200)
                    .set_body_json(json!({"count": self.hooks.len(), "webhooks": self.hooks}))
            }
            ("POST", "/v1/webhooks") => {
                let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                    return error(400, "BAD_REQUEST", "the body is not JSON");
                };
                let Some(url) = body["callbackUrl"]
                    .as_str()
                    .filter(|u| url::Url::parse(u).is_ok())
                else {
                    return error(400, "BAD_REQUEST", "callbackUrl is required (a URI)");
                };
                if let Some(types) = body.get("flowTypes") {
                    let ok = types.as_array().is_some_and(|a| {
                        a.iter()
                            .all(|t| t.as_str().is_some_and(|t| FLOW_TYPES.contains(&t)))
                    });
                    if !ok {
                        return error(400, "BAD_REQUEST", "flowTypes: unknown flow type");
                    }
                }
                if let Some(d) = body.get("flowDirection") {
                    if !matches!(d.as_str(), Some("In" | "Out")) {
                        return error(400, "BAD_REQUEST", "flowDirection: In or Out");
                    }
                }
                self.created += 1;
                let id = format!("00000000-0000-4000-8000-{:012}", self.created);
                let mut hook = body.clone();
                hook["webhookId"] = json!(id);
                hook["callbackUrl"] = json!(url);
                self.hooks.push(hook);
                ResponseTemplate::new(201).set_body_json(json!({
                    "webhookId": id,
                    "signingKey": SIGNING_KEY,
                    "createdAt": "2026-12-01T10:00:00Z"
                }))
            }
            ("DELETE", p) if p.starts_with("/v1/webhooks/") => {
                let id = &p["/v1/webhooks/".len()..];
                let before = self.hooks.len();
                self.hooks.retain(|h| h["webhookId"] != id);
                if self.hooks.len() == before {
                    return error(404, "NOT_FOUND", "unknown webhook");
                }
                self.deleted += 1;
                ResponseTemplate::new(204)
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

/// `Afnor-Signature` of `body` at `ts`, as the PA computes it: HMAC-SHA-256 with the decoded
/// signing key over the body + `@` + the timestamp, base64.
pub fn sign(body: &[u8], ts: i64) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(SIGNING_KEY)
        .unwrap();
    let mut m = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    m.update(body);
    m.update(format!("@{ts}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}
