//! The approved-platform target through the faults a real PA shows: access tokens that stop
//! working mid-sync, a 429 with `Retry-After`, and an answer later than facto waits. Each
//! document still reaches the PA exactly once.

use std::time::Duration;

use crate::common::target;
use crate::pa_api::{assert_once, next_run_finds_it, project, records, run, T};
use crate::pa_sim::{Fault, Sim};

#[tokio::test(flavor = "multi_thread")]
async fn expiring_tokens_and_a_429_are_waited_out_and_each_flow_is_created_once() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    {
        let mut s = sim.state.lock().unwrap();
        // Each access token works for three calls, then answers 401.
        s.oauth.max_uses = 3;
        s.faults.push_back(Fault::TooMany);
    }
    let (code, r, err) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "the demo holds two documents: {r} {err}");
    let sent = target(&r, T)["delivered"].as_u64().unwrap_or(0);
    assert!(sent > 3, "{r}");
    assert!(
        sim.state.lock().unwrap().oauth.requests > 1,
        "a new token was fetched after a 401"
    );
    assert!(records(&p, Some("claimed")).is_empty());
    assert_once(&sim, &p);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_later_than_the_timeout_is_found_by_its_tracking_id_not_sent_again() {
    let sim = Sim::start().await;
    let p = project(&sim, "timeout_secs = 1\nlookup_grace_minutes = 0\n");
    sim.state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::Slow(Duration::from_secs(3)));
    let (code, r, _) = run(&p, &["sync"]).await;
    assert_eq!(code, 3, "a timeout leaves the outcome unknown: {r}");
    assert!(r["error"].to_string().contains("outcome unknown"), "{r}");
    assert_eq!(records(&p, Some("claimed")).len(), 1);
    next_run_finds_it(&sim, &p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flow_sent_again_after_the_grace_keeps_the_syntax_it_was_packed_in() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    sim.state.lock().unwrap().faults.push_back(Fault::Fail);
    let (code, r, _) = run(&p, &["sync"]).await;
    assert_eq!(code, 3, "{r}");
    let claimed = records(&p, Some("claimed"));
    assert_eq!(claimed.len(), 1);
    let key = claimed[0]["idempotency_key"].as_str().unwrap().to_owned();
    // The connector moves to Factur-X while the CII flow is claimed: the stored CII goes again
    // as CII, not as a PDF the PA would refuse.
    p.write(
        &format!("connectors/{T}.toml"),
        &sim.connector("lookup_grace_minutes = 0\nsyntax = \"facturx\"\n"),
    );
    let (_, r, err) = run(&p, &["sync"]).await;
    assert!(
        r["statuses"]
            .to_string()
            .contains("sent again with the same trackingId"),
        "{r} {err}"
    );
    assert!(records(&p, Some("claimed")).is_empty());
    let s = sim.state.lock().unwrap();
    let resent: Vec<&str> = s
        .flows
        .iter()
        .filter(|f| f.tracking_id == key)
        .map(|f| f.syntax.as_str())
        .collect();
    assert_eq!(
        resent,
        ["CII"],
        "the resent flow is labelled as it was packed"
    );
    // The documents packed after the change go as Factur-X.
    assert!(s.flows.iter().any(|f| f.syntax == "Factur-X"));
    drop(s);
    assert_once(&sim, &p);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_search_that_ignores_the_tracking_id_never_makes_another_documents_flow_ours() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    sim.state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::LoseAnswer);
    let (code, r, _) = run(&p, &["sync"]).await;
    assert_eq!(code, 3, "{r}");
    assert_eq!(records(&p, Some("claimed")).len(), 1);
    // The next run's search lists every flow of the account, none saying its trackingId: none
    // is taken for the lost one, which waits for its grace period, claimed.
    sim.state.lock().unwrap().search_blind = true;
    let (_, r, _) = run(&p, &["sync"]).await;
    assert!(
        r["statuses"]
            .to_string()
            .contains("waiting for the platform"),
        "{r}"
    );
    assert_eq!(records(&p, Some("claimed")).len(), 1, "{r}");
    sim.state.lock().unwrap().search_blind = false;
    next_run_finds_it(&sim, &p).await;
}
