//! No hang, no panic, no wedge; documents that are always valid: bounded retries, checked amounts, XML-safe text, the official rules.

use crate::common::*;

/// Runs `facto --json sync` with the Pennylane token set; kills it if it outlives `limit` (a
/// retry loop that ignores its budget would otherwise hang the test).
fn sync_with_deadline(p: &Project, limit: std::time::Duration) -> (i32, serde_json::Value, String) {
    let mut c = p.command(&["--json", "sync"]);
    c.env("PENNYLANE_API_TOKEN", "test-token")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("facto sync still running after {limit:?}: a retry loop ignores its budget");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| serde_json::Value::String(stderr.clone()));
    (out.status.code().unwrap_or(-1), v, stderr)
}

/// [`sync_with_deadline`] of a minute, on a blocking-capable worker (the mock server keeps answering).
fn sync_within_a_minute(p: &Project) -> (i32, serde_json::Value, String) {
    tokio::task::block_in_place(|| sync_with_deadline(p, std::time::Duration::from_secs(60)))
}

/// A Pennylane connector on `uri` with a retry budget of `budget` seconds.
fn project_with_pennylane_on(uri: &str, budget: u64) -> Project {
    crate::pennylane_api::with_connector(&format!(
        "kind = \"pennylane\"\napi_url = \"{uri}/api/external/v2\"\ntoken_env = \"PENNYLANE_API_TOKEN\"\nmax_retry_secs = {budget}\nrequests_per_5s = 1000\n"
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_forever_stays_within_the_retry_budget() {
    use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .mount(&server)
        .await;
    let p = project_with_pennylane_on(&server.uri(), 3);
    let (code, r, err) = sync_within_a_minute(&p);
    assert!(
        p.out_files()
            .iter()
            .any(|f| f.to_string_lossy().contains("FEC")),
        "the FEC target is still delivered: {:?}",
        p.out_files()
    );
    assert_eq!(
        code, 3,
        "a target that never answers is unreachable: {r}\n{err}"
    );
    // A 3 s budget with a 1 s Retry-After: a handful of requests, not one a second for ever.
    let sent = server.received_requests().await.unwrap().len();
    assert!((2..=5).contains(&sent), "{sent} requests for a 3 s budget");
    assert_eq!(
        target(&r, "sales-fec")["delivered"],
        DEMO_DELIVERABLE,
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_longer_than_the_budget_stops_the_target_at_once() {
    use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .mount(&server)
        .await;
    let p = project_with_pennylane_on(&server.uri(), 3);
    let (code, r, err) = sync_within_a_minute(&p);
    assert_eq!(code, 3, "{r}\n{err}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let text = r.to_string();
    assert!(
        text.contains("Retry-After") && text.contains("3600"),
        "the reason names the wait asked for: {r}"
    );
    assert_eq!(
        target(&r, "sales-fec")["delivered"],
        DEMO_DELIVERABLE,
        "{r}"
    );
}

#[test]
fn quantity_at_decimals_limit_is_held_and_never_panics() {
    let p = Project::demo();
    let mut doc = p.read_json("examples/new-invoice.json");
    doc["lines"][0]["quantity"] = "79228162514264337593543950335".into();
    doc["lines"][0]["unit_price"] = "2".into();
    p.write("examples/invoices/zz-huge.json", &doc.to_string());
    for run in 1..=2 {
        let (code, r) = p.json(&["sync"]);
        assert_eq!(code, 1, "run {run}: held documents, no panic: {r}");
        let problems = r["problems"].as_array().unwrap();
        let huge = problems
            .iter()
            .find(|x| x.to_string().contains("F2026-0040"))
            .unwrap_or_else(|| panic!("run {run}: the document is held: {r}"));
        let text = huge.to_string();
        assert!(
            text.contains("amount out of range") && text.contains("lines[0].quantity"),
            "run {run}: {huge}"
        );
        if run == 1 {
            assert_eq!(
                target(&r, "sales-fec")["delivered"],
                DEMO_DELIVERABLE,
                "{r}"
            );
        }
    }
}

#[test]
fn control_characters_in_notes_and_descriptions_give_well_formed_chorus_files() {
    for (format, schema) in [
        ("chorus-ubl", "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd"),
        (
            "chorus-cii",
            "cii-d16b/data/standard/CrossIndustryInvoice_100pD16B.xsd",
        ),
    ] {
        let p = Project::demo();
        let c = p
            .read("connectors/chorus-files.toml")
            .replace("format = \"chorus-ubl\"", &format!("format = \"{format}\""));
        p.write("connectors/chorus-files.toml", &c);
        let mut doc = p.read_json("examples/invoices/inv-2026-0008.json");
        doc["notes"][0]["text"] = "Indemnité\u{1} de 40\u{7} EUR\u{FFFF}".into();
        doc["lines"][0]["description"] = "Formation\u{2}\u{1F} Excel\u{FFFE}".into();
        doc["payment_terms"] = "30 jours\u{B}net".into();
        p.write("examples/invoices/inv-2026-0008.json", &doc.to_string());
        let (code, r) = p.json(&[
            "export",
            "--target",
            "chorus-files",
            "--from",
            "2026-01-01",
            "--to",
            "2026-12-31",
        ]);
        assert_eq!(code, 1, "{format}: F2026-0004 is held on purpose: {r}");
        assert_eq!(target(&r, "chorus-files")["delivered"], 9, "{format}: {r}");
        let path = p.path(r["batches"][0]["path"].as_str().unwrap());
        let docs = facto::format::zip::read(&std::fs::read(path).unwrap()).unwrap();
        let (name, bytes) = docs
            .iter()
            .find(|(n, _)| n.contains("F2026-0008"))
            .unwrap_or_else(|| panic!("{format}: F2026-0008 is in the lot"));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            !text
                .chars()
                .any(|c| (c < ' ' && !matches!(c, '\t' | '\n' | '\r'))
                    || c == '\u{FFFE}'
                    || c == '\u{FFFF}'),
            "{format}: {name} holds a character XML forbids"
        );
        assert!(
            text.contains("Formation") && text.contains("Indemnité"),
            "{text}"
        );
        if let Some(s) = xsd(schema) {
            let invoices: Vec<_> = docs
                .into_iter()
                .filter(|(_, b)| !b.windows(11).any(|w| w == b"<CreditNote"))
                .collect();
            xmllint(&s, &invoices);
        }
    }
}

#[test]
fn chorus_documents_the_official_rules_would_reject_are_held_or_written_valid() {
    let p = Project::demo();
    let edit = |file: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let path = format!("examples/invoices/{file}");
        let mut doc = p.read_json(&path);
        f(&mut doc);
        p.write(&path, &doc.to_string());
    };
    // A VAT number without its country prefix (BR-CO-09): held with the rule named.
    edit("inv-2026-0008.json", &|d| {
        d["buyer"]["vat_id"] = "12345678901".into()
    });
    // A blank line id, IBAN and preceding invoice (BR-21, BR-50, BR-55): left out of the
    // document (the line's number stands for its id) instead of written empty.
    edit("inv-2026-0012.json", &|d| {
        d["lines"][0]["id"] = "\u{1} ".into();
        d["iban"] = " ".into();
        d["preceding_invoice"] = "\u{2}".into();
    });
    let (code, r) = p.json(&[
        "export",
        "--target",
        "chorus-files",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ]);
    assert_eq!(code, 1, "{r}");
    let held = r["problems"].to_string();
    assert!(
        held.contains("F2026-0008") && held.contains("BR-CO-09"),
        "{held}"
    );
    assert_eq!(target(&r, "chorus-files")["delivered"], 8, "{r}");
    let path = p.path(r["batches"][0]["path"].as_str().unwrap());
    let docs = facto::format::zip::read(&std::fs::read(path).unwrap()).unwrap();
    let (_, bytes) = docs.iter().find(|(n, _)| n.contains("F2026-0012")).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(!text.contains("<cbc:ID> </cbc:ID>"), "{text}");
    assert!(!text.contains("BillingReference"), "{text}");
    assert!(
        text.contains("<cbc:ID>1</cbc:ID>"),
        "the line's number is its id: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_source_answering_429_for_ever_stops_within_its_budget() {
    use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .mount(&server)
        .await;
    let p = Project::demo();
    p.write(
        "connectors/api.toml",
        &format!(
            "kind = \"http\"\nurl = \"{}/api/invoices\"\nitems_field = \"data\"\ninitial_retry_ms = 50\nmax_retry_secs = 3\n",
            server.uri()
        ),
    );
    let cfg = p
        .read("facto.toml")
        .replace("source = \"demo-invoices\"", "source = \"api\"");
    p.write("facto.toml", &cfg);
    let (code, r, err) = sync_within_a_minute(&p);
    assert_eq!(code, 3, "{r}\n{err}");
    let sent = server.received_requests().await.unwrap().len();
    assert!((2..=5).contains(&sent), "{sent} requests for a 3 s budget");
}
