//! The approved-platform target (`afnor-pa`) through the real binary against the in-repo Flow
//! API simulator: every document sent as one flow exactly once, with the record's `trackingId`
//! (even when an answer is lost, a 500 leaves the outcome unknown, the PA answers
//! `AlreadyExistingFlow`, or the process is killed right after the send), and acknowledgements
//! followed (`Ok` kept delivered, `Error` rejected with the PA's reason).

use serde_json::Value;

use crate::common::{self, json_of, kill_at, target, with_json, Project};
use crate::pa_sim::{Fault, Sim, BEARER, CLIENT_ID, CLIENT_SECRET};

pub const T: &str = "pa";

pub fn project(sim: &Sim, extra: &str) -> Project {
    Project::demo_with_target(T, &sim.connector(extra))
}

pub fn command(p: &Project, args: &[&str]) -> std::process::Command {
    let mut c = p.command(args);
    c.env("PA_CLIENT_ID", CLIENT_ID)
        .env("PA_CLIENT_SECRET", CLIENT_SECRET)
        .env("PA_TOKEN", BEARER);
    c
}

pub async fn run(p: &Project, args: &[&str]) -> (i32, Value, String) {
    json_of(command(p, &with_json(args))).await
}

pub fn records(p: &Project, state: Option<&str>) -> Vec<Value> {
    let mut args = vec!["ledger", "list", "--target", T];
    if let Some(s) = state {
        args.extend(["--state", s]);
    }
    let (_, v) = p.json(&args);
    v.as_array().cloned().unwrap_or_default()
}

/// Every document the target took reached the PA once, under its record's `trackingId`.
pub fn assert_once(sim: &Sim, p: &Project) {
    let sent: Vec<Value> = records(p, None)
        .into_iter()
        .filter(|r| r["state"] != "held")
        .collect();
    assert!(!sent.is_empty());
    common::assert_once(&sim.created(), sent.len(), "sent");
    for r in &sent {
        let key = r["idempotency_key"].as_str().unwrap_or("");
        assert!(sim.created().contains_key(key), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sends_each_document_once_and_follows_acknowledgements() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    sim.state.lock().unwrap().ack_errors.insert(
        "F2026-0003".into(),
        ("InvalidSchema".into(), "BT-49 missing".into()),
    );
    let (_, r, err) = run(&p, &["sync"]).await;
    let delivered = target(&r, T)["delivered"].as_u64().unwrap();
    assert!(delivered > 0, "{r} {err}");
    assert_eq!(target(&r, "sales-fec")["delivered"], 42);
    assert_eq!(sim.created().len() as u64, delivered);
    assert_once(&sim, &p);
    assert_eq!(
        sim.state.lock().unwrap().oauth.requests,
        1,
        "one token per run"
    );
    {
        let s = sim.state.lock().unwrap();
        let ids: std::collections::BTreeSet<_> = s.request_ids.iter().collect();
        assert_eq!(ids.len(), s.request_ids.len(), "one Request-Id per call");
    }

    // Acknowledgements: Pending, then Ok (kept delivered) or Error (rejected, with the reason).
    for _ in 0..2 {
        let (code, s, err) = run(&p, &["status"]).await;
        assert_eq!(code, 0, "{s} {err}");
    }
    let rejected = records(&p, Some("rejected"));
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let reason = rejected[0]["last_error"].as_str().unwrap();
    assert!(
        reason.contains("InvalidSchema (BT-1): BT-49 missing"),
        "{reason}"
    );
    let ok = records(&p, Some("delivered"));
    assert_eq!(ok.len() as u64, delivered - 1);
    assert!(ok.iter().all(|r| r["remote_status"] == "ack Ok"), "{ok:?}");
    assert!(ok.iter().all(|r| r["remote_id"].is_string()));
    // Acknowledged flows are not read again.
    let reads = sim.calls("GET ");
    run(&p, &["status"]).await;
    let reads_after = sim.calls("GET ");
    assert_eq!(reads, reads_after);

    // Nothing is sent again.
    let (_, r, _) = run(&p, &["sync"]).await;
    assert_eq!(target(&r, T)["delivered"], 0, "{r}");
    assert_once(&sim, &p);
}

/// The next sync finds the flow left claimed at the PA by its `trackingId`: recorded, not sent
/// again, every flow once.
pub async fn next_run_finds_it(sim: &Sim, p: &Project) {
    let (_, r, err) = run(p, &["sync"]).await;
    assert!(
        r["statuses"].to_string().contains("not sent again"),
        "{r} {err}"
    );
    assert!(records(p, Some("claimed")).is_empty());
    assert_once(sim, p);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_answer_is_found_by_its_tracking_id_and_not_sent_again() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    sim.state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::LoseAnswer);
    let (code, r, _) = run(&p, &["sync"]).await;
    assert_eq!(code, 3, "an unknown outcome stops the target: {r}");
    assert!(r["error"].to_string().contains("outcome unknown"), "{r}");
    assert_eq!(records(&p, Some("claimed")).len(), 1);
    assert_eq!(target(&r, "sales-fec")["delivered"], 42);

    next_run_finds_it(&sim, &p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_500_is_looked_up_and_sent_again_only_after_the_grace_period() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    sim.state.lock().unwrap().faults.push_back(Fault::Fail);
    let (code, r, _) = run(&p, &["sync"]).await;
    assert_eq!(code, 3, "{r}");
    let claimed = records(&p, Some("claimed"));
    assert_eq!(claimed.len(), 1);
    let number = claimed[0]["number"].as_str().unwrap().to_owned();

    // Within the grace period: searched, not listed, left claimed (a late flow may appear).
    let (_, r, _) = run(&p, &["sync"]).await;
    assert!(
        r["statuses"]
            .to_string()
            .contains("waiting for the platform"),
        "{r}"
    );
    assert_eq!(records(&p, Some("claimed")).len(), 1);

    // After it: sent again, identical, with the same trackingId, once.
    p.write(
        &format!("connectors/{T}.toml"),
        &sim.connector("lookup_grace_minutes = 0\n"),
    );
    let (_, r, err) = run(&p, &["sync"]).await;
    assert!(
        r["statuses"]
            .to_string()
            .contains("sent again with the same trackingId"),
        "{r} {err}"
    );
    assert!(records(&p, Some("claimed")).is_empty());
    let rec = records(&p, None)
        .into_iter()
        .find(|r| r["number"] == number.as_str())
        .unwrap();
    assert_eq!(rec["state"], "delivered", "{rec}");
    assert_once(&sim, &p);
}

#[tokio::test(flavor = "multi_thread")]
async fn already_existing_flow_is_adopted_not_a_failure() {
    let sim = Sim::start().await;
    let p = project(&sim, "lookup_grace_minutes = 0\n");
    {
        let mut s = sim.state.lock().unwrap();
        s.unique_check = true;
        s.faults.push_back(Fault::LoseAnswer);
        // The PA does not list the new flow at the next run's search: facto sends again.
        s.search_lag = 1;
    }
    let (code, _, _) = run(&p, &["sync"]).await;
    assert_eq!(code, 3);
    let (_, r, err) = run(&p, &["sync"]).await;
    assert!(records(&p, Some("claimed")).is_empty(), "{r} {err}");
    assert!(records(&p, Some("failed")).is_empty(), "{r}");
    let all = records(&p, None).into_iter().map(|r| r.to_string());
    assert!(
        all.clone().any(|h| h.contains("the PA already held it")),
        "{r}"
    );
    assert_once(&sim, &p);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_right_after_the_send_the_next_run_finds_the_flow() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    kill_at(
        command(&p, &["sync"]),
        &format!("after-send:2@{T}"),
        &p.path("paused"),
    )
    .await;
    assert_eq!(sim.created().len(), 2, "two flows before the kill");
    assert_eq!(records(&p, Some("claimed")).len(), 1);
    next_run_finds_it(&sim, &p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_fails_the_document_with_the_pa_error_and_a_bearer_token_names_the_company() {
    let sim = Sim::start().await;
    let p = Project::demo_with_target(T, &sim.bearer_connector(""));
    sim.state
        .lock()
        .unwrap()
        .refuse
        .insert("F2026-0002".into(), "BR-FR-01: invoice number".into());
    let (_, r, err) = run(&p, &["sync"]).await;
    assert!(
        target(&r, T)["delivered"].as_u64().unwrap() > 0,
        "{r} {err}"
    );
    let failed = records(&p, Some("failed"));
    assert_eq!(failed.len(), 1, "{r}");
    assert!(
        failed[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("InvalidSchema: BR-FR-01: invoice number"),
        "{failed:?}"
    );
    let s = sim.state.lock().unwrap();
    assert_eq!(s.oauth.requests, 0, "a bearer token needs no token call");
    assert_eq!(
        s.organizations.iter().collect::<Vec<_>>(),
        vec!["552100554"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_send_nothing_and_claim_nothing() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    let mut c = p.command(&with_json(&["sync"]));
    c.env("PA_CLIENT_ID", CLIENT_ID)
        .env("PA_CLIENT_SECRET", "wrong");
    let (code, r, _) = json_of(c).await;
    assert_eq!(code, 3, "{r}");
    assert!(sim.created().is_empty());
    assert!(records(&p, Some("claimed")).is_empty());
    assert_eq!(target(&r, "sales-fec")["delivered"], 42);
}

#[tokio::test(flavor = "multi_thread")]
async fn preview_calls_nothing_and_export_is_refused() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    let (_, pv, err) = run(&p, &["preview", "--target", T]).await;
    let rows = pv["targets"][0]["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!rows.is_empty(), "{pv} {err}");
    assert!(sim.state.lock().unwrap().calls.is_empty());
    let (code, r, err) = run(
        &p,
        &[
            "export",
            "--target",
            T,
            "--from",
            "2026-01-01",
            "--to",
            "2026-03-31",
        ],
    )
    .await;
    assert_ne!(code, 0, "{r}");
    assert!(
        format!("{r}{err}").contains("sends to the approved platform (PA) through its API"),
        "{r} {err}"
    );
    assert!(sim.created().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flow_the_pa_acknowledges_as_a_duplicate_keeps_the_first_one() {
    let sim = Sim::start().await;
    let p = project(&sim, "lookup_grace_minutes = 0\n");
    {
        let mut s = sim.state.lock().unwrap();
        s.async_unique_check = true;
        s.faults.push_back(Fault::LoseAnswer);
        // The next search misses the first flow: facto sends it again; the PA takes the second
        // flow, then acknowledges it as a duplicate.
        s.search_lag = 1;
    }
    run(&p, &["sync"]).await;
    let (_, r, err) = run(&p, &["sync"]).await;
    assert!(records(&p, Some("claimed")).is_empty(), "{r} {err}");
    let twice: Vec<String> = sim
        .created()
        .into_iter()
        .filter(|(_, n)| *n == 2)
        .map(|(t, _)| t)
        .collect();
    assert_eq!(twice.len(), 1, "{:?}", sim.created());
    for _ in 0..3 {
        run(&p, &["status"]).await;
    }
    assert!(records(&p, Some("rejected")).is_empty());
    let rec = records(&p, None)
        .into_iter()
        .find(|r| r["idempotency_key"] == twice[0].as_str())
        .unwrap();
    assert_eq!(rec["state"], "delivered", "{rec}");
    assert_eq!(rec["remote_status"], "ack Ok", "{rec}");
    let first = sim
        .state
        .lock()
        .unwrap()
        .flows
        .iter()
        .find(|f| f.tracking_id == twice[0])
        .map(|f| f.id.clone())
        .unwrap();
    assert_eq!(rec["remote_id"], first.as_str(), "{rec}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_flow_found_refused_by_the_pa_is_rejected_with_its_reason() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    {
        let mut s = sim.state.lock().unwrap();
        s.instant_ack = true;
        s.faults.push_back(Fault::LoseAnswer);
    }
    run(&p, &["sync"]).await;
    let claimed = records(&p, Some("claimed"));
    assert_eq!(claimed.len(), 1);
    let number = claimed[0]["number"].as_str().unwrap().to_owned();
    sim.state.lock().unwrap().ack_errors.insert(
        number.clone(),
        ("VirusFound".into(), "the file is infected".into()),
    );
    // The flow is acknowledged Error as the next run finds it.
    sim.state
        .lock()
        .unwrap()
        .flows
        .iter_mut()
        .filter(|f| f.number == number)
        .for_each(|f| f.force_error());
    let (_, r, err) = run(&p, &["sync"]).await;
    assert!(
        r["statuses"].to_string().contains("not sent again"),
        "{r} {err}"
    );
    run(&p, &["status"]).await;
    let rejected = records(&p, Some("rejected"));
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["number"], number.as_str());
    assert!(
        rejected[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("VirusFound (BT-1): the file is infected"),
        "{rejected:?}"
    );
    assert_once(&sim, &p);
}

/// Acknowledgements come from searches of facto's flows changed since the last read (paged,
/// the position kept in the ledger), not from one read per flow: 30 and more waiting flows are
/// settled with a few calls, and an `Error` found this way rejects its document with the PA's
/// reasons.
#[tokio::test(flavor = "multi_thread")]
async fn thirty_waiting_flows_are_acknowledged_with_a_bounded_number_of_calls() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    // More business invoices than the demo's, to the same buyer.
    for k in 0..8 {
        let mut doc = p.read_json("examples/invoices/inv-2026-0039.json");
        doc["id"] = serde_json::json!(format!("test-more-{k}"));
        doc["number"] = serde_json::json!(format!("T2026-010{k}"));
        p.write_json(&format!("examples/invoices/test-more-{k}.json"), &doc);
    }
    {
        let mut s = sim.state.lock().unwrap();
        // Pages of 10: the searches go on with the PA's cursor.
        s.out_page = 10;
        s.ack_errors.insert(
            "F2026-0003".into(),
            ("InvalidSchema".into(), "BT-49 missing".into()),
        );
    }
    let (_, r, err) = run(&p, &["sync"]).await;
    assert!(r["error"].is_null(), "{r} {err}");
    let n = sim.created().len();
    assert!(n >= 30, "{n} flows: {r}");
    let searches = || sim.calls("POST /flow-service/v1/flows/search");
    let reads = || sim.calls("GET /flow-service/v1/flows/");
    assert_eq!(reads(), 0, "no flow read one by one");
    // The PA acknowledges each flow at its second processing step.
    let before = searches();
    let (code, s, err) = run(&p, &["status"]).await;
    assert_eq!(code, 0, "{s} {err}");
    let per_run = searches() - before;
    // Every changed flow listed (pages of 10) and the lifecycle search: not one call per flow.
    assert!(
        per_run <= n.div_ceil(10) + 1,
        "{per_run} searches for {n} flows"
    );
    assert_eq!(reads(), 0, "no flow read one by one");
    let ok = records(&p, Some("delivered"));
    assert_eq!(ok.len(), n - 1, "{ok:?}");
    assert!(ok.iter().all(|r| r["remote_status"] == "ack Ok"), "{ok:?}");
    let rejected = records(&p, Some("rejected"));
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["number"], "F2026-0003");
    let reason = rejected[0]["last_error"].as_str().unwrap();
    assert!(
        reason.contains("InvalidSchema (BT-1): BT-49 missing"),
        "{reason}"
    );
    // Nothing waits: only the lifecycle search.
    let before = searches();
    run(&p, &["status"]).await;
    assert_eq!(searches() - before, 1);
    // The read position is kept: a new flow's search lists it alone, not the flows read before.
    let listed = || sim.reads().values().sum::<u32>();
    let before = listed();
    let mut doc = p.read_json("examples/invoices/inv-2026-0039.json");
    doc["id"] = serde_json::json!("test-more-new");
    doc["number"] = serde_json::json!("T2026-0200");
    p.write_json("examples/invoices/test-more-new.json", &doc);
    let (_, r, err) = run(&p, &["sync"]).await;
    assert_eq!(target(&r, T)["delivered"], 1, "{r} {err}");
    assert_eq!(listed() - before, 1);
    assert_eq!(reads(), 0);
    assert_once(&sim, &p);
}

/// A resent flow the PA acknowledges as a duplicate: the earlier flow of its `trackingId`,
/// accepted, is adopted from the acknowledgement search itself (no search by `trackingId`).
#[tokio::test(flavor = "multi_thread")]
async fn an_accepted_earlier_flow_of_a_tracking_id_is_adopted_from_the_search() {
    let sim = Sim::start().await;
    let p = project(&sim, "lookup_grace_minutes = 0\n");
    {
        let mut s = sim.state.lock().unwrap();
        s.async_unique_check = true;
        s.faults.push_back(Fault::LoseAnswer);
        s.search_lag = 1;
    }
    run(&p, &["sync"]).await;
    run(&p, &["sync"]).await;
    let twice: Vec<String> = sim
        .created()
        .into_iter()
        .filter(|(_, n)| *n == 2)
        .map(|(t, _)| t)
        .collect();
    assert_eq!(twice.len(), 1, "{:?}", sim.created());
    let before = sim.state.lock().unwrap().tracking_searches;
    for _ in 0..2 {
        run(&p, &["status"]).await;
    }
    assert_eq!(sim.state.lock().unwrap().tracking_searches, before);
    assert_eq!(sim.calls("GET "), 0);
    let rec = records(&p, None)
        .into_iter()
        .find(|r| r["idempotency_key"] == twice[0].as_str())
        .unwrap();
    let first = sim
        .state
        .lock()
        .unwrap()
        .flows
        .iter()
        .find(|f| f.tracking_id == twice[0])
        .map(|f| f.id.clone())
        .unwrap();
    assert_eq!(rec["state"], "delivered", "{rec}");
    assert_eq!(rec["remote_status"], "ack Ok", "{rec}");
    assert_eq!(rec["remote_id"], first.as_str(), "{rec}");
    assert!(records(&p, Some("rejected")).is_empty());
}

/// The acknowledgement search's position is stored after the records it settled: killed in
/// between, the next run reads the same flows again, and no acknowledgement is lost.
#[tokio::test(flavor = "multi_thread")]
async fn killed_between_the_acknowledgements_and_the_position_the_next_run_loses_none() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    sim.state.lock().unwrap().ack_errors.insert(
        "F2026-0003".into(),
        ("InvalidSchema".into(), "BT-49 missing".into()),
    );
    let (_, r, err) = run(&p, &["sync"]).await;
    assert!(r["error"].is_null(), "{r} {err}");
    let n = sim.created().len();
    // The PA acknowledges every flow during this run, killed once its records are stored.
    kill_at(
        command(&p, &["status"]),
        "after-ack-records@pa",
        &p.path("paused"),
    )
    .await;
    let (code, s, err) = run(&p, &["status"]).await;
    assert_eq!(code, 0, "{s} {err}");
    let ok = records(&p, Some("delivered"));
    assert_eq!(ok.len(), n - 1, "{ok:?}");
    assert!(ok.iter().all(|r| r["remote_status"] == "ack Ok"), "{ok:?}");
    let rejected = records(&p, Some("rejected"));
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("InvalidSchema (BT-1): BT-49 missing"));
}

/// An account with a long history at the PA: the first acknowledgement search starts shortly
/// before facto's oldest waiting flow, and pages through none of the older flows.
#[tokio::test(flavor = "multi_thread")]
async fn the_first_acknowledgement_search_skips_the_accounts_older_flows() {
    let sim = Sim::start().await;
    sim.history(250, 30);
    let p = project(&sim, "");
    let (_, r, err) = run(&p, &["sync"]).await;
    assert!(r["error"].is_null(), "{r} {err}");
    // One acknowledgement search, one lifecycle search.
    assert_eq!(sim.calls("POST /flow-service/v1/flows/search"), 2);
    let reads = sim.reads();
    assert!(
        reads
            .iter()
            .filter(|(n, _)| n.starts_with("OLD-"))
            .all(|(_, r)| *r == 0),
        "{reads:?}"
    );
    for _ in 0..2 {
        run(&p, &["status"]).await;
    }
    let ok = records(&p, Some("delivered"));
    assert!(!ok.is_empty());
    assert!(ok.iter().all(|r| r["remote_status"] == "ack Ok"), "{ok:?}");
}
