//! Documents pushed by the invoicing application (issue 16 §3): `POST
//! /api/v1/tenants/{tenant}/documents` on the real daemon, with the tenant's ingestion token;
//! each document answered at once (accepted, held with the fix, rejected, duplicate, changed
//! after delivery), idempotent, delivered by the next pass (at once with `?deliver=now`), once.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::Project;
use crate::daemon::{start_with, terminate};

/// POSTs `body` to the daemon; the status and the JSON answer.
pub fn post(addr: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut r = reqwest::Client::new()
            .post(format!("http://{addr}{path}"))
            .json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    })
}

/// The demo project with its job reading a push source, on an hourly schedule (so only a push
/// starts a pass after the first).
pub fn push_project() -> Project {
    let p = Project::demo();
    p.write("connectors/app.toml", "kind = \"push\"\n");
    let cfg = p
        .read("facto.toml")
        .replace("source = \"demo-invoices\"", "source = \"app\"")
        .replace("schedule = \"every 15m\"", "schedule = \"every 1h\"");
    p.write("facto.toml", &cfg);
    p
}

pub fn example(p: &Project, file: &str) -> Value {
    p.read_json(&format!("examples/invoices/{file}"))
}

fn statuses(answer: &Value) -> Vec<(String, String)> {
    answer["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap_or_default().to_owned(),
                d["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The daemon's metrics, with `token`.
pub fn metrics(addr: &str, token: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .get(format!("http://{addr}/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}

fn delivered(addr: &str, token: &str) -> Option<u64> {
    metrics(addr, token)
        .lines()
        .find(|l| {
            l.starts_with("facto_documents{job=\"demo\",target=\"sales-fec\",state=\"delivered\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
}

/// Waits for the daemon's first pass (at start) to end: a push then meets no pass in flight.
pub fn wait_first_pass(addr: &str, token: &str) {
    let start = Instant::now();
    while !metrics(addr, token).contains("facto_passes_total{job=\"demo\"") {
        assert!(start.elapsed() < Duration::from_secs(30), "no first pass");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_delivered(addr: &str, token: &str, n: u64) {
    let start = Instant::now();
    while delivered(addr, token) != Some(n) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not delivered: {:?}",
            delivered(addr, token)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pushed_documents_are_answered_at_once_and_delivered_once() {
    let p = push_project();
    let (mut child, addr, admin) = start_with(&p, "", &[]);
    wait_first_pass(&addr, &admin);
    let ingest = p.read("data/ingest-token").trim().to_owned();
    assert!(ingest.len() >= 24 && ingest != admin);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p.path("data/ingest-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let path = "/api/v1/tenants/default/documents?deliver=now";
    let good = example(&p, "inv-2026-0001.json");
    let unmapped = example(&p, "inv-2026-0030.json");
    let mut broken = example(&p, "inv-2026-0002.json");
    broken["issue_date"] = json!("the fifth");
    let batch = json!([good, unmapped, broken]);

    // No token, a wrong one, another tenant: refused, nothing stored.
    assert_eq!(post(&addr, path, None, &batch).0, 401);
    assert_eq!(post(&addr, path, Some("wrong-token"), &batch).0, 401);
    let (code, _) = post(
        &addr,
        "/api/v1/tenants/other/documents",
        Some(&ingest),
        &batch,
    );
    assert_eq!(code, 404);

    let (code, answer) = post(&addr, path, Some(&ingest), &batch);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        statuses(&answer),
        vec![
            ("inv-2026-0001".into(), "accepted".into()),
            ("inv-2026-0030".into(), "held".into()),
            ("inv-2026-0002".into(), "rejected".into()),
        ],
        "{answer}"
    );
    let held = &answer["documents"][1]["problems"][0];
    assert!(
        held["field"].as_str().unwrap().contains("tax_code")
            && !held["fix"].as_str().unwrap().is_empty(),
        "{held}"
    );
    let rejected = &answer["documents"][2]["problems"][0];
    assert_eq!(rejected["field"], "issue_date", "{rejected}");
    assert_eq!(answer["delivering_now"], true);
    assert_eq!(answer["tenant"], "default");

    // Delivered by the pass the push started, not by the hourly schedule.
    wait_delivered(&addr, &admin, 1);

    // The same request again (its answer was lost, say): nothing new.
    let (code, again) = post(&addr, path, Some(&ingest), &batch);
    assert_eq!(code, 200);
    assert_eq!(
        statuses(&again),
        vec![
            ("inv-2026-0001".into(), "duplicate".into()),
            ("inv-2026-0030".into(), "duplicate".into()),
            ("inv-2026-0002".into(), "rejected".into()),
        ],
        "{again}"
    );
    assert!(again["documents"][0]["states"]
        .to_string()
        .contains("demo/sales-fec: delivered"));

    // A changed version of a delivered document is taken, said, and never sent again.
    let mut changed = example(&p, "inv-2026-0001.json");
    changed["due_date"] = json!("2026-03-31");
    let (code, c) = post(&addr, path, Some(&ingest), &changed);
    assert_eq!(code, 200);
    assert_eq!(
        statuses(&c),
        vec![("inv-2026-0001".into(), "changed-after-delivery".into())]
    );
    // A second good document, by the admin token, on the tenant-less path, on schedule only.
    let (code, b) = post(
        &addr,
        "/api/v1/documents",
        Some(&admin),
        &example(&p, "inv-2026-0003.json"),
    );
    assert_eq!(
        (code, b["delivering_now"].clone()),
        (200, json!(false)),
        "{b}"
    );
    // Every document rejected: 422. Not JSON: 400.
    assert_eq!(post(&addr, path, Some(&ingest), &json!([broken])).0, 422);
    assert_eq!(post(&addr, path, Some(&ingest), &json!("text")).0, 400);
    // The change is seen by the next pass, started by the next push.
    let (_, _) = post(
        &addr,
        path,
        Some(&ingest),
        &example(&p, "inv-2026-0004.json"),
    );
    wait_delivered(&addr, &admin, 3);
    assert_eq!(terminate(&mut child), 0);

    // Once each in the journal files; the change after delivery is on record, not re-sent.
    let files: Vec<String> = p
        .out_files()
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(".txt"))
        .map(|f| {
            String::from_utf8_lossy(&std::fs::read(p.path(&f.to_string_lossy())).unwrap())
                .into_owned()
        })
        .collect();
    for number in ["F2026-0001", "F2026-0003", "F2026-0004"] {
        let with = files.iter().filter(|t| t.contains(number)).count();
        assert_eq!(with, 1, "{number} is in {with} journal files");
    }
    assert!(!files.iter().any(|t| t.contains("F2026-0030")));
    let (_, listed) = p.json(&["ledger", "show", "inv-2026-0001"]);
    let s = listed.to_string();
    assert!(s.contains("delivered"), "{s}");
    assert!(s.contains("due_date"), "the change is on record: {s}");
}

#[test]
fn an_accepted_push_survives_a_killed_daemon_and_the_next_sync_delivers_it() {
    let p = push_project();
    let (mut child, addr, admin) = start_with(&p, "", &[]);
    wait_first_pass(&addr, &admin);
    let ingest = p.read("data/ingest-token").trim().to_owned();
    let docs = json!([
        example(&p, "inv-2026-0005.json"),
        example(&p, "inv-2026-0006.json")
    ]);
    let (code, answer) = post(
        &addr,
        "/api/v1/tenants/default/documents",
        Some(&ingest),
        &docs,
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["counts"]["accepted"], 2, "{answer}");
    // A newer version replaces the waiting one; the older one sent again after it is stale.
    let first = example(&p, "inv-2026-0005.json");
    let mut newer = first.clone();
    newer["updated_at"] = json!("2026-12-01T09:00:00Z");
    newer["due_date"] = json!("2026-12-31");
    let path = "/api/v1/tenants/default/documents";
    let (_, a) = post(&addr, path, Some(&ingest), &newer);
    assert_eq!(a["documents"][0]["status"], "accepted", "{a}");
    let (_, a) = post(&addr, path, Some(&ingest), &first);
    assert_eq!(a["documents"][0]["status"], "stale", "{a}");
    // A draft is taken but never booked.
    let (_, a) = post(
        &addr,
        path,
        Some(&ingest),
        &example(&p, "draft-2026-0001.json"),
    );
    assert_eq!(a["documents"][0]["status"], "skipped", "{a}");
    // SIGKILL right after the answer: no pass ran for them (the schedule is hourly).
    child.kill().unwrap();
    child.wait().unwrap();
    let (code, report) = p.json(&["sync"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        crate::common::target(&report, "sales-fec")["delivered"],
        2,
        "{report}"
    );
    // Read once: the next sync finds nothing waiting.
    let (code, report) = p.json(&["sync"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["documents_read"], 0, "{report}");
}

#[test]
fn a_source_that_delivers_at_once_needs_no_deliver_now() {
    let p = push_project();
    p.write(
        "connectors/app.toml",
        "kind = \"push\"\ndeliver_at_once = true\n",
    );
    let (mut child, addr, admin) = start_with(&p, "", &[]);
    wait_first_pass(&addr, &admin);
    let ingest = p.read("data/ingest-token").trim().to_owned();
    let (code, a) = post(
        &addr,
        "/api/v1/tenants/default/documents",
        Some(&ingest),
        &example(&p, "inv-2026-0007.json"),
    );
    assert_eq!(
        (code, a["delivering_now"].clone()),
        (200, json!(true)),
        "{a}"
    );
    wait_delivered(&addr, &admin, 1);
    assert_eq!(terminate(&mut child), 0);
}
