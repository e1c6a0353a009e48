//! The Pennylane target through the real binary against the behavioural fake: every document
//! imported exactly once with its PDF, customer and ledger accounts, credit notes linked to their
//! invoice with negative amounts; lost answers, timeouts, 429s and a SIGKILL after the import
//! never import twice; documents that cannot go are held with the reason.

use std::time::Duration;

use serde_json::Value;

use crate::common::{self, free_port, give_consent, json_of, kill_at, target, with_json, Project};
use crate::pennylane_sim::{Fault, Sim, OAUTH_CLIENT, OAUTH_SECRET, TOKEN};

const T: &str = "pennylane";
pub const DELIVERABLE: usize = 42;

/// The demo project with a `pennylane` target and an invoice PDF beside every document.
pub fn project(sim: &Sim, extra: &str) -> Project {
    with_connector(&sim.connector(extra))
}

/// The demo project with this `pennylane` connector and an invoice PDF beside every document.
pub fn with_connector(connector: &str) -> Project {
    let p = Project::demo_with_target(T, connector);
    let dir = p.path("examples/invoices");
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let mut v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let docs: Vec<&mut Value> = match &mut v {
            Value::Array(a) => a.iter_mut().collect(),
            one => vec![one],
        };
        for d in docs {
            let id = d["id"].as_str().unwrap().to_owned();
            let pdf = format!("pdf/{id}.pdf");
            d["attachments"] = serde_json::json!([{"kind": "invoice_pdf", "path": pdf, "mime_type": "application/pdf"}]);
            p.write(
                &format!("examples/invoices/{pdf}"),
                &format!("%PDF-1.4\n% {id}\n%%EOF\n"),
            );
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }
    p
}

pub fn command(p: &Project, args: &[&str], token: &str) -> std::process::Command {
    let mut c = p.command(args);
    c.env("PENNYLANE_API_TOKEN", token);
    c
}

pub async fn run(p: &Project, args: &[&str]) -> (i32, Value) {
    run_with(p, args, TOKEN).await
}

async fn run_with(p: &Project, args: &[&str], token: &str) -> (i32, Value) {
    let (code, v, _) = json_of(command(p, &with_json(args), token)).await;
    (code, v)
}

fn state_count(p: &Project, state: &str) -> usize {
    let (_, v) = p.json(&["ledger", "list", "--target", T, "--state", state]);
    v.as_array().map_or(0, Vec::len)
}

fn assert_once(sim: &Sim) {
    common::assert_once(&sim.imports(), DELIVERABLE, "imported");
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_once_with_customers_pdfs_and_linked_credit_notes() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    sim.state.lock().unwrap().not_ready_once = true;
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "the demo's two held documents: {r}");
    assert_eq!(target(&r, T)["delivered"], DELIVERABLE as u64, "{r}");
    assert_once(&sim);
    {
        let s = sim.state.lock().unwrap();
        assert_eq!(s.created_customers, 9, "one per customer, then found");
        assert_eq!(s.attachments as usize, DELIVERABLE);
        let credit = s
            .invoices
            .iter()
            .find(|i| i["invoice_number"] == "A2026-0001")
            .unwrap();
        assert!(credit["currency_amount"].as_str().unwrap().starts_with('-'));
        let invoice = s
            .invoices
            .iter()
            .find(|i| i["invoice_number"] == "F2026-0002")
            .unwrap();
        assert_eq!(credit["credited_invoice_id"], invoice["id"]);
    }
    let (_, r) = run(&p, &["sync"]).await;
    assert_eq!(target(&r, T)["delivered"], 0);
    assert_once(&sim);
    // A payment in Pennylane reaches the ledger through `facto status`.
    sim.state.lock().unwrap().paid.push("F2026-0002".into());
    let (code, st) = run(&p, &["status"]).await;
    assert_eq!(code, 0, "{st}");
    assert_eq!(state_count(&p, "paid"), 1, "{st}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_timeouts_and_429_never_import_twice() {
    let sim = Sim::start().await;
    let p = project(&sim, "timeout_secs = 1\n");
    {
        let mut s = sim.state.lock().unwrap();
        s.faults.push_back(Fault::TooMany);
        s.faults.push_back(Fault::LoseAnswer);
    }
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("outcome unknown"),
        "{r}"
    );
    assert_eq!(state_count(&p, "claimed"), 1);
    assert_eq!(target(&r, "sales-fec")["delivered"], 42);
    sim.state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::Slow(Duration::from_secs(3)));
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 3, "{r}");
    assert!(r["statuses"].to_string().contains("not sent again"), "{r}");
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(state_count(&p, "claimed"), 0);
    assert_once(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_an_import_the_next_run_finds_it() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    kill_at(
        command(&p, &["sync"], TOKEN),
        "after-send:5@pennylane",
        &p.path("paused"),
    )
    .await;
    assert_eq!(sim.imports().len(), 5);
    assert_eq!(state_count(&p, "claimed"), 1);
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(state_count(&p, "claimed"), 0);
    assert_once(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_that_cannot_go_are_held_and_a_bad_token_stops_only_this_target() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    // No PDF for F2026-0001; no Pennylane code for reverse charge; 708500 missing from the chart.
    let f = p.read("examples/invoices/inv-2026-0001.json");
    let mut v: Value = serde_json::from_str(&f).unwrap();
    v["attachments"] = serde_json::json!([]);
    p.write("examples/invoices/inv-2026-0001.json", &v.to_string());
    let m = p
        .read("mappings/pcg-demo.toml")
        .replace("pennylane_vat_rate = \"crossborder\"\n", "");
    p.write("mappings/pcg-demo.toml", &m);
    sim.state
        .lock()
        .unwrap()
        .accounts
        .retain(|(_, n, _)| n != "708500");
    // `facto mappings check` names the per-target code that is missing.
    let (code, check) = p.json(&["mappings", "check"]);
    assert_eq!(code, 1);
    let gaps = check["jobs"][0]["unmapped"].to_string();
    assert!(
        gaps.contains("AUTOLIQ") && gaps.contains("pennylane_vat_rate"),
        "{gaps}"
    );
    // `facto preview --target pennylane` shows what would not go, calling nothing.
    let (_, pv) = p.json(&["preview", "--target", T]);
    let row = |n: &str| {
        pv["targets"][0]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["number"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("F2026-0001")["status"], "held");
    assert!(row("F2026-0001")["detail"]
        .as_str()
        .unwrap()
        .contains("PDF"));
    assert!(row("F2026-0005")["detail"]
        .as_str()
        .unwrap()
        .contains("pennylane_vat_rate"));
    assert_eq!(row("F2026-0002")["status"], "new");
    assert_eq!(sim.state.lock().unwrap().requests, 0);

    let (code, r) = run_with(&p, &["sync"], "wrong-token").await;
    assert_eq!(code, 3, "{r}");
    let e = r["error"].as_str().unwrap();
    assert!(
        e.contains("refused the API token") && !e.contains("wrong-token"),
        "{e}"
    );
    assert_eq!(target(&r, "sales-fec")["delivered"], 42);
    assert!(sim.imports().is_empty());

    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r}");
    let problems = r["problems"].to_string();
    for (number, code) in [("F2026-0001", "attachments"), ("F2026-0005", "tax_code")] {
        assert!(
            problems.contains(number) && problems.contains(code),
            "{number}: {problems}"
        );
    }
    assert!(problems.contains("708500"), "{problems}");
    let held = state_count(&p, "held");
    assert!(held >= 4, "{held}");
    assert_eq!(sim.imports().len() + held, DELIVERABLE + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partner_app_connects_with_oauth_and_its_rotated_tokens_are_saved() {
    let sim = Sim::start().await;
    let port = free_port();
    let u = sim.server.uri();
    let p = with_connector(&format!(
        "kind = \"pennylane\"\napi_url = \"{u}/api/external/v2\"\nclient_id_env = \"PL_CLIENT_ID\"\nclient_secret_env = \"PL_CLIENT_SECRET\"\nauthorize_url = \"{u}/oauth/authorize\"\ntoken_url = \"{u}/oauth/token\"\nredirect_port = {port}\nrequests_per_5s = 1000\nmax_retry_secs = 5\n"
    ));
    let with_app = |args: &[&str]| {
        let mut c = p.command(args);
        c.env("PL_CLIENT_ID", OAUTH_CLIENT)
            .env("PL_CLIENT_SECRET", OAUTH_SECRET);
        c
    };
    // Not connected yet: the sync says how to connect.
    let out = with_app(&["sync"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("facto connect pennylane"));

    let state = std::sync::Arc::clone(&sim.state);
    let printed = give_consent(with_app(&["connect", T]), port, move |c| {
        state.lock().unwrap().oauth.challenge = Some(c);
    })
    .await;
    assert!(
        !printed.contains("PLA1") && !printed.contains("PLR1"),
        "{printed}"
    );
    let store = p.path("data/pennylane-pennylane.json");
    let first: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();

    // The access token expires mid-run: one refresh, the rotated pair saved, nothing twice.
    sim.state.lock().unwrap().oauth.expire_access();
    let mut c = with_app(&["--json", "sync"]);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(target(&r, T)["delivered"], DELIVERABLE as u64, "{r}");
    assert_eq!(sim.state.lock().unwrap().oauth.refreshes, 1);
    assert_once(&sim);
    let now: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    assert_ne!(first["refresh_token"], now["refresh_token"]);
    assert_eq!(
        now["refresh_token"],
        sim.state.lock().unwrap().oauth.refresh_tokens()[0]
    );
}

/// Issue 14: a first sync costs the upload and the import of each document and little more (the
/// customers and accounts of a page in one lookup each, the statuses in one list call); a later
/// sync with nothing new costs one call that lists nothing, not one call per invoice; a payment
/// made since is still seen.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_costs_two_calls_per_document_and_statuses_one_list_call() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(target(&r, T)["delivered"], DELIVERABLE as u64, "{r}");
    let calls = sim.take_calls();
    let total: u32 = calls.values().sum();
    let per_doc = f64::from(total) / DELIVERABLE as f64;
    eprintln!("first sync: {total} calls, {per_doc:.2} per document: {calls:?}");
    // Each document needs its upload and its import; each new customer its creation (the
    // contract has no bulk for any of them). Everything else is one call per sync.
    let floor = 2 * DELIVERABLE as u32 + calls["POST /company_customers"];
    assert_eq!(calls["POST /company_customers"], 9);
    assert!(total <= floor + 3, "{total} > {floor} + 3: {calls:?}");
    assert!(per_doc <= 2.3, "{per_doc:.2}: {calls:?}");
    assert_eq!(calls.get("GET /customer_invoices/{id}"), None, "{calls:?}");
    assert_eq!(calls["GET /customer_invoices"], 1, "{calls:?}");

    // An hour later, nothing changed: one call, which lists nothing.
    sim.age(chrono::Duration::hours(1));
    sim.state.lock().unwrap().listed = 0;
    let (_, r) = run(&p, &["sync"]).await;
    assert_eq!(target(&r, T)["delivered"], 0, "{r}");
    let calls = sim.take_calls();
    assert_eq!(calls.values().sum::<u32>(), 1, "{calls:?}");
    assert_eq!(sim.state.lock().unwrap().listed, 0);

    // A payment since: one call lists that invoice alone, and the ledger has it paid.
    sim.state.lock().unwrap().paid.push("F2026-0002".into());
    let (code, st) = run(&p, &["status"]).await;
    assert_eq!(code, 0, "{st}");
    assert_eq!(state_count(&p, "paid"), 1, "{st}");
    assert_eq!(sim.take_calls().values().sum::<u32>(), 1);
    assert_eq!(sim.state.lock().unwrap().listed, 1);
    assert_once(&sim);
}

/// Should Pennylane refuse the bulk (`in`) lookups and the `updated_at` filter, each customer,
/// account and invoice status is read alone, as before: everything imported once, a payment seen.
#[tokio::test(flavor = "multi_thread")]
async fn refused_filters_fall_back_to_one_call_each() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    sim.state.lock().unwrap().refuse = vec!["\"operator\":\"in\"", "\"updated_at\""];
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(target(&r, T)["delivered"], DELIVERABLE as u64, "{r}");
    assert_once(&sim);
    let calls = sim.take_calls();
    // The refused bulk lookup (accounts come first), then one per account and per customer.
    assert_eq!(calls["GET /ledger_accounts"], 1 + 8, "{calls:?}");
    assert_eq!(calls["GET /customers"], 9, "{calls:?}");
    assert_eq!(calls["GET /customer_invoices"], 1, "{calls:?}");
    assert_eq!(calls["GET /customer_invoices/{id}"], 38, "{calls:?}");
    sim.state.lock().unwrap().paid.push("F2026-0002".into());
    let (code, st) = run(&p, &["status"]).await;
    assert_eq!(code, 0, "{st}");
    assert_eq!(state_count(&p, "paid"), 1, "{st}");
}
