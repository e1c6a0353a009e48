//! Contract test: every request facto sends to Pennylane in a full sync is accepted by Prism
//! serving the vendor's own request schemas (`../shared/reference/openapi/pennylane`, strict: no
//! unknown field, every type and pattern checked), and a deliberately broken request is rejected
//! (proof that validation is on). Prism is installed by `.ci/run` under `target/prism`.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{repo, target};
use crate::pennylane_api::{command, with_connector};

pub fn prism() -> Option<(PathBuf, PathBuf)> {
    let bin = std::env::var_os("FACTO_PRISM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/prism/node_modules/.bin/prism"));
    let spec = repo().join("../shared/reference/openapi/pennylane/pennylane_v2.contract.yaml");
    if bin.exists() && spec.exists() {
        return Some((bin, spec));
    }
    crate::common::skip(&format!(
        "Prism ({}) or the Pennylane contract is missing (.ci/run installs Prism)",
        bin.display()
    ));
    None
}

pub struct Mock {
    child: Child,
    pub port: u16,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Prism on a free port. `strict_responses` also checks the spec's own example answers
/// (`--errors`); requests are validated either way.
pub fn start(bin: &PathBuf, spec: &PathBuf, log: &PathBuf, strict_responses: bool) -> Mock {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new(bin)
        .args(["mock", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(strict_responses.then_some("--errors"))
        .arg(spec)
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let mock = Mock { child, port };
    let start = Instant::now();
    loop {
        let mut text = String::new();
        std::fs::File::open(log)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        if text.contains("Prism is listening") {
            return mock;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "Prism did not start: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_request_of_a_sync_is_valid_against_the_pennylane_contract() {
    let Some((bin, spec)) = prism() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mock = start(&bin, &spec, &dir.path().join("prism.log"), true);
    let base = format!("http://127.0.0.1:{}/api/external/v2", mock.port);
    let p = with_connector(&format!(
        "kind = \"pennylane\"\napi_url = \"{base}\"\ntoken_env = \"PENNYLANE_API_TOKEN\"\nrequests_per_5s = 1000\nmax_retry_secs = 5\n"
    ));
    // Prism answers with the spec's examples: its chart has account 706 only.
    let m: String = p
        .read("mappings/pcg-demo.toml")
        .lines()
        .map(|l| {
            if l.starts_with("account = \"70") {
                "account = \"706000\"".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    p.write("mappings/pcg-demo.toml", &m);

    let out = command(&p, &["--json", "sync"], "contract-token")
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let t = target(&r, "pennylane");
    assert_eq!(t["failed"], 0, "a request was refused by the contract: {r}");
    assert_eq!(t["delivered"], 42, "{r}");
    assert_eq!(out.status.code(), Some(1), "{r}");
    // The statuses' list (filtered by `updated_at`) and the bulk lookups were accepted too.
    assert!(r["error"].is_null(), "{r}");

    // Validation is on: a request with wrong types, a bad date and an unknown field is refused.
    let bad = serde_json::json!({
        "file_attachment_id": 1, "customer_id": "acme", "date": "15/01/2025", "deadline": "2025-02-14",
        "currency_amount_before_tax": 200, "currency_amount": "240.00", "currency_tax": "40,00",
        "invoice_lines": [{"quantity": 1, "raw_currency_unit_price": "1", "unit": "piece",
            "vat_rate": "20%", "currency_amount": "1", "currency_tax": "0", "account": "706"}]
    });
    let (status, violations) = send_bad(
        reqwest::Client::new()
            .post(format!("{base}/customer_invoices/import"))
            .bearer_auth("contract-token")
            .json(&bad),
    );
    assert_eq!(status, 422);
    for field in [
        "customer_id",
        "date",
        "currency_amount_before_tax",
        "vat_rate",
        "account",
    ] {
        assert!(
            violations.contains(field),
            "{field} not flagged: {violations}"
        );
    }
}

/// Sends a request meant to break the contract; returns its status and Prism's `sl-violations`.
pub fn send_bad(req: reqwest::RequestBuilder) -> (u16, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let resp = req.send().await.unwrap();
        let v = resp
            .headers()
            .get("sl-violations")
            .map(|h| h.to_str().unwrap_or("").to_owned())
            .unwrap_or_default();
        (resp.status().as_u16(), v)
    })
}
