//! The Xero target through the real binary against the behavioural fake: `facto connect` (PKCE
//! consent through a redirect on 127.0.0.1, organisation chosen, tokens in a 0600 file), then
//! batches sent exactly once with their idempotency key, credit notes allocated, per-item
//! failures recorded, a lost answer settled by lookup and replay, a minute 429 waited out, the
//! daily limit stopping only this target, an expired access token refreshed with the rotated
//! refresh token saved, a preflight that holds unknown tax types, and a SIGKILL after a batch.

use serde_json::Value;

use crate::common::{self, free_port, give_consent, json_of, kill_at, target, with_json, Project};
use crate::xero_sim::{Fault, Sim, CLIENT_ID, CLIENT_SECRET};

const T: &str = "xero";
const DELIVERABLE: usize = 42;

pub fn command(p: &Project, args: &[&str]) -> std::process::Command {
    let mut c = p.command(args);
    c.env("XERO_CLIENT_ID", CLIENT_ID)
        .env("XERO_CLIENT_SECRET", CLIENT_SECRET);
    c
}

async fn run(p: &Project, args: &[&str]) -> (i32, Value) {
    let (code, v, _) = json_of(command(p, &with_json(args))).await;
    (code, v)
}

/// The demo with a `xero` target, Xero tax types in the mapping, and the consent given.
pub async fn connected(sim: &Sim, extra: &str) -> Project {
    let port = free_port();
    let p = Project::demo_with_target(T, &sim.connector(port, extra));
    p.extend_mapping(|line| {
        let code = match line {
            "[tax.TVA20]" => "FR20",
            "[tax.TVA10]" => "FR10",
            "[tax.TVA55]" => "FR55",
            "[tax.TVA21]" => "FR21",
            "[tax.EXO]" => "EXEMPT",
            "[tax.AUTOLIQ]" => "RCSERV",
            _ => return None,
        };
        Some(format!("xero_tax_type = \"{code}\""))
    });

    // `facto connect xero`: read the consent URL, answer as the browser would.
    let state = std::sync::Arc::clone(&sim.state);
    let printed = give_consent(command(&p, &["connect", T]), port, move |c| {
        state.lock().unwrap().oauth.challenge = Some(c);
    })
    .await;
    assert!(printed.contains("connected to Atelier Demo"), "{printed}");
    assert!(
        !printed.contains("AT1") && !printed.contains("RT1"),
        "tokens are never printed"
    );
    let store = p.path("data/xero-xero.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&store).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let tokens: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(tokens["tenant_id"], crate::xero_sim::TENANT);
    p
}

fn assert_once(sim: &Sim) {
    common::assert_once(&sim.created(), DELIVERABLE, "created");
}

fn count(p: &Project, state: &str) -> usize {
    let (_, v) = p.json(&["ledger", "list", "--target", T, "--state", state]);
    v.as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_then_every_document_once_with_credit_notes_allocated() {
    let sim = Sim::start().await;
    let p = connected(&sim, "batch_size = 10\n").await;
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(target(&r, T)["delivered"], DELIVERABLE as u64, "{r}");
    assert_once(&sim);
    {
        let s = sim.state.lock().unwrap();
        assert_eq!(s.created_contacts, 9);
        assert_eq!(
            s.allocations.len(),
            4,
            "every credit note allocated to its invoice"
        );
    }
    let (_, r) = run(&p, &["sync"]).await;
    assert_eq!(target(&r, T)["delivered"], 0);
    assert_once(&sim);
    // A payment in Xero reaches the ledger through `facto status`.
    sim.state.lock().unwrap().paid.push("F2026-0001".into());
    let (code, st) = run(&p, &["status"]).await;
    assert_eq!(code, 0, "{st}");
    assert!(st.to_string().contains("F2026-0001"), "{st}");
    assert_eq!(count(&p, "paid"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answer_minute_limit_and_partial_failure() {
    let sim = Sim::start().await;
    let p = connected(&sim, "batch_size = 10\n").await;
    {
        let mut s = sim.state.lock().unwrap();
        s.faults.push_back(Fault::Minute);
        s.faults.push_back(Fault::LoseAnswer);
        s.reject.push("F2026-0003".into());
    }
    // The lost answer is retried at once under the same key: Xero answers from its record.
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(count(&p, "claimed"), 0);
    let failed = {
        let (_, v) = p.json(&["ledger", "list", "--target", T, "--state", "failed"]);
        v
    };
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert!(failed[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("rejected by the test"));
    let c = sim.created();
    assert_eq!(c.len(), DELIVERABLE - 1);
    assert!(c.values().all(|n| *n == 1), "{c:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_claimed_but_unanswered_is_sent_again_identical_with_its_key() {
    let sim = Sim::start().await;
    let p = connected(&sim, "batch_size = 10\nlookup_grace_minutes = 0\n").await;
    kill_at(
        command(&p, &["sync"]),
        "after-claim:2@xero",
        &p.path("paused"),
    )
    .await;
    assert_eq!(
        sim.created().len(),
        10,
        "the second batch was claimed, never sent"
    );
    assert_eq!(count(&p, "claimed"), 10);
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r}");
    assert!(
        r["statuses"].to_string().contains("same idempotency key"),
        "{r}"
    );
    assert_eq!(count(&p, "claimed"), 0);
    assert_once(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn daily_limit_stops_only_this_target_and_expired_tokens_are_refreshed() {
    let sim = Sim::start().await;
    let p = connected(&sim, "").await;
    let first = std::fs::read_to_string(p.path("data/xero-xero.json")).unwrap();
    sim.state.lock().unwrap().faults.push_back(Fault::Day);
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 3, "{r}");
    assert!(r["error"].as_str().unwrap().contains("daily limit"), "{r}");
    assert_eq!(target(&r, "sales-fec")["delivered"], 42);
    assert!(sim.created().is_empty());
    assert_eq!(
        count(&p, "claimed"),
        0,
        "a refused batch is released, not left claimed"
    );

    // The access token expires: refreshed once, the rotated refresh token saved first.
    sim.state.lock().unwrap().oauth.expire_access();
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r}");
    assert_once(&sim);
    assert_eq!(sim.state.lock().unwrap().oauth.refreshes, 1);
    let now = std::fs::read_to_string(p.path("data/xero-xero.json")).unwrap();
    let (a, b): (Value, Value) = (
        serde_json::from_str(&first).unwrap(),
        serde_json::from_str(&now).unwrap(),
    );
    assert_ne!(
        a["refresh_token"], b["refresh_token"],
        "the rotated refresh token is persisted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn preflight_holds_unknown_codes_and_a_kill_after_a_batch_sends_nothing_twice() {
    let sim = Sim::start().await;
    let p = connected(&sim, "batch_size = 5\n").await;
    sim.state
        .lock()
        .unwrap()
        .tax_types
        .retain(|t| t != "RCSERV");
    // A tax code without its Xero tax type is named by `facto mappings check`.
    let m = p
        .read("mappings/pcg-demo.toml")
        .replace("xero_tax_type = \"FR21\"\n", "");
    p.write("mappings/pcg-demo.toml", &m);
    let (_, check) = p.json(&["mappings", "check"]);
    let gaps = check["jobs"][0]["unmapped"].to_string();
    assert!(
        gaps.contains("TVA21") && gaps.contains("xero_tax_type"),
        "{gaps}"
    );
    let (_, pv) = p.json(&["preview", "--target", T]);
    let held: Vec<&Value> = pv["targets"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "held")
        .collect();
    assert!(
        held.iter()
            .any(|r| r["detail"].as_str().unwrap().contains("xero_tax_type")),
        "{pv}"
    );
    let m = p
        .read("mappings/pcg-demo.toml")
        .replace("[tax.TVA21]\n", "[tax.TVA21]\nxero_tax_type = \"FR21\"\n");
    p.write("mappings/pcg-demo.toml", &m);
    kill_at(
        command(&p, &["sync"]),
        "after-send:2@xero",
        &p.path("paused"),
    )
    .await;
    assert_eq!(
        sim.created().len(),
        10,
        "two batches of five sent before the kill"
    );
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r}");
    let problems = r["problems"].to_string();
    assert!(
        problems.contains("RCSERV") && problems.contains("F2026-0005"),
        "{problems}"
    );
    let c = sim.created();
    assert!(c.values().all(|n| *n == 1), "{c:?}");
    assert_eq!(c.len() + count(&p, "held"), DELIVERABLE + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_day_limit_reported_in_the_headers_stops_before_any_429() {
    let sim = Sim::start().await;
    let p = connected(&sim, "batch_size = 10\n").await;
    sim.state.lock().unwrap().day_exhausted_next = true;
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("X-DayLimit-Remaining"),
        "{r}"
    );
    assert_eq!(
        sim.state.lock().unwrap().batch_puts,
        1,
        "no call after Xero said none is left"
    );
    assert_eq!(sim.created().len(), 10);
    // The next day: the rest goes, nothing twice.
    let (code, r) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r}");
    assert_once(&sim);
}
