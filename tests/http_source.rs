//! The `http` source against a local wiremock server: bearer token from the environment, `next`
//! pagination, the `updated_since` cursor, 429 with Retry-After, 500 then success, a malformed
//! page (clear error, exit 3, cursor not advanced past unread data).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};

use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::{target, Project};

const TOKEN: &str = "s3cr3t-token-for-tests";

/// The demo project with its source switched to an http connector on `server`.
fn project(server: &MockServer, extra: &str) -> Project {
    let p = Project::demo();
    p.write(
        "connectors/api.toml",
        &format!(
            "kind = \"http\"\nurl = \"{}/api/invoices\"\ntoken_env = \"FACTO_TEST_TOKEN\"\nitems_field = \"data\"\npage_size = 2\ninitial_retry_ms = 50\nmax_retry_secs = 20\n{extra}",
            server.uri()
        ),
    );
    let cfg = p
        .read("facto.toml")
        .replace("source = \"demo-invoices\"", "source = \"api\"");
    p.write("facto.toml", &cfg);
    p
}

fn docs() -> Vec<Value> {
    let base: Value =
        serde_json::from_str(&Project::demo().read("examples/new-invoice.json")).unwrap();
    (1..=3)
        .map(|i| {
            let mut d = base.clone();
            d["id"] = json!(format!("api-{i}"));
            d["number"] = json!(format!("F2026-09{i:02}"));
            d["updated_at"] = json!(format!("2026-11-0{i}T10:00:00Z"));
            d
        })
        .collect()
}

async fn sync(p: &Project) -> (i32, Value, String) {
    let mut cmd = p.command(&["--json", "sync"]);
    cmd.env("FACTO_TEST_TOKEN", TOKEN);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn page(items: &[Value], next: Option<String>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "data": items, "next": next }))
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_with_next_links_token_and_cursor() {
    let server = MockServer::start().await;
    let d = docs();
    Mock::given(method("GET"))
        .and(path("/api/invoices"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(query_param_is_missing("updated_since"))
        .respond_with(page(
            &d[..2],
            Some(format!("{}/api/invoices?cursor=p2", server.uri())),
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/invoices"))
        .and(query_param("cursor", "p2"))
        .respond_with(page(&d[2..], None))
        .expect(1)
        .mount(&server)
        .await;
    // The second sync asks only for what changed since the greatest updated_at seen.
    Mock::given(method("GET"))
        .and(path("/api/invoices"))
        .and(query_param("updated_since", "2026-11-03T10:00:00+00:00"))
        .respond_with(page(&[], None))
        .expect(1)
        .mount(&server)
        .await;
    let p = project(&server, "");
    let (code, r, err) = sync(&p).await;
    assert_eq!(code, 0, "{r} {err}");
    assert_eq!(target(&r, "sales-fec")["delivered"], 3);
    let (code, r, _) = sync(&p).await;
    assert_eq!(code, 0);
    assert_eq!(target(&r, "sales-fec")["already_delivered"], 3);
    // The token never leaves the environment: not in the ledger, reports or logs.
    let ledger_bytes: Vec<u8> = walk(&p.path("data"));
    assert!(!ledger_bytes
        .windows(TOKEN.len())
        .any(|w| w == TOKEN.as_bytes()));
    assert!(!err.contains(TOKEN));
}

fn walk(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.extend(std::fs::read(&p).unwrap_or_default());
        }
    }
    out
}

/// Answers each request with the next response of a list, noting when it came.
struct Script {
    times: Arc<Mutex<Vec<Instant>>>,
    responses: Vec<ResponseTemplate>,
}

impl Respond for Script {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut t = self.times.lock().unwrap();
        t.push(Instant::now());
        self.responses[(t.len() - 1).min(self.responses.len() - 1)].clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_honoured_and_5xx_retried() {
    let server = MockServer::start().await;
    let times = Arc::new(Mutex::new(Vec::new()));
    let script = Script {
        times: times.clone(),
        responses: vec![
            ResponseTemplate::new(429).insert_header("Retry-After", "2"),
            ResponseTemplate::new(500),
            page(&docs(), None),
        ],
    };
    Mock::given(method("GET"))
        .respond_with(script)
        .expect(3)
        .mount(&server)
        .await;
    let p = project(&server, "");
    let (code, r, err) = sync(&p).await;
    assert_eq!(code, 0, "{r} {err}");
    assert_eq!(target(&r, "sales-fec")["delivered"], 3);
    let t = times.lock().unwrap().clone();
    assert_eq!(t.len(), 3);
    // After the 429 the source waited for Retry-After (2 s), not the connector's 50 ms backoff;
    // after the 500 it used the short backoff.
    assert!(
        t[1] - t[0] >= Duration::from_millis(1900),
        "retried {:?} after the 429",
        t[1] - t[0]
    );
    assert!(
        t[2] - t[1] < Duration::from_millis(1500),
        "retried {:?} after the 500",
        t[2] - t[1]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_page_stops_with_exit_3_and_keeps_the_cursor() {
    let server = MockServer::start().await;
    let d = docs();
    Mock::given(method("GET"))
        .and(query_param_is_missing("cursor"))
        .respond_with(page(
            &d[..2],
            Some(format!("{}/api/invoices?cursor=p2", server.uri())),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("cursor", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"data\": [ {\"id\": "))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let p = project(&server, "");
    let (code, r, err) = sync(&p).await;
    assert_eq!(code, 3, "{r} {err}");
    let error = r["error"].as_str().unwrap();
    assert!(
        error.contains("page 2 is malformed") && error.contains("cursor stays"),
        "{error}"
    );
    // What was read is delivered; the cursor did not move.
    assert_eq!(target(&r, "sales-fec")["delivered"], 2);

    // The API is fixed: the next sync starts again from the old cursor (none) and gets the rest.
    Mock::given(method("GET"))
        .and(query_param("cursor", "p2"))
        .respond_with(page(&d[2..], None))
        .mount(&server)
        .await;
    let (code, r, err) = sync(&p).await;
    assert_eq!(code, 0, "{r} {err}");
    assert_eq!(target(&r, "sales-fec")["delivered"], 1);
    assert_eq!(target(&r, "sales-fec")["already_delivered"], 2);
    let requests = server.received_requests().await.unwrap();
    let firsts: Vec<_> = requests
        .iter()
        .filter(|r| !r.url.query().unwrap_or("").contains("cursor=p2"))
        .collect();
    assert!(
        firsts
            .iter()
            .all(|r| !r.url.query().unwrap_or("").contains("updated_since")),
        "cursor advanced past unread data"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_token_variable_is_a_clear_error() {
    let server = MockServer::start().await;
    let p = project(&server, "");
    let mut cmd = p.command(&["sync"]);
    cmd.env_remove("FACTO_TEST_TOKEN");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FACTO_TEST_TOKEN"));
}

#[tokio::test(flavor = "multi_thread")]
async fn page_number_pagination_stops_on_a_short_page() {
    let server = MockServer::start().await;
    let d = docs();
    Mock::given(method("GET"))
        .and(query_param("page", "1"))
        .and(query_param("per_page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&d[..2]))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&d[2..]))
        .expect(1)
        .mount(&server)
        .await;
    let p = project(&server, "pagination = \"page-number\"\n");
    let src = p
        .read("connectors/api.toml")
        .replace("items_field = \"data\"\n", "");
    p.write("connectors/api.toml", &src);
    let (code, r, err) = sync(&p).await;
    assert_eq!(code, 0, "{r} {err}");
    assert_eq!(target(&r, "sales-fec")["delivered"], 3);
}
