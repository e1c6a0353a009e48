//! API calls per document against the in-repo fakes of Xero and Pennylane (issue 14): the real
//! `facto` binary syncs the integration tests' scenarios, the fakes count every call by
//! endpoint, and the bench prints the calls of a first sync, per document, and of the syncs
//! after it. The same scenarios' tests (`tests/xero_calls.rs`, `tests/pennylane_api.rs`) assert
//! the limits; this prints the figures.
//!
//! Run: `cargo bench --bench calls`.

// The fakes and scenarios are the integration tests' own modules: what only their tests use is
// unused here.
#![allow(dead_code, unused_imports, unreachable_pub)]

use std::collections::BTreeMap;

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/pennylane_api.rs"]
mod pennylane_api;
#[path = "../tests/pennylane_sim.rs"]
mod pennylane_sim;
#[path = "../tests/xero_api.rs"]
mod xero_api;
#[path = "../tests/xero_calls.rs"]
mod xero_calls;
#[path = "../tests/xero_sim.rs"]
mod xero_sim;

/// One line of the table: the calls of one sync and what they were.
fn row(what: &str, documents: usize, calls: &BTreeMap<String, u32>) {
    let total: u32 = calls.values().sum();
    let per = match documents {
        0 => "-".to_owned(),
        n => format!("{:.3}", f64::from(total) / n as f64),
    };
    let detail: Vec<String> = calls.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    println!(
        "| {what} | {documents} | {total} | {per} | {} |",
        detail.join(", ")
    );
}

async fn xero() {
    use xero_calls::{calls_since, many_documents, sync, DOCUMENTS};
    let sim = xero_sim::Sim::start().await;
    let p = xero_api::connected(&sim, "").await;
    many_documents(&p);
    let before = sim.state.lock().expect("fake").api_calls.clone();
    let r = sync(&p).await;
    let delivered = common::target(&r, "xero")["delivered"].as_u64();
    assert_eq!(delivered, Some(DOCUMENTS as u64), "{r}");
    row(
        "Xero, first sync (180 invoices, 20 credit notes, 50 new customers)",
        DOCUMENTS,
        &calls_since(&sim, &before),
    );
    let before = sim.state.lock().expect("fake").api_calls.clone();
    sync(&p).await;
    row(
        "Xero, next sync (nothing new; follows the invoices' statuses)",
        0,
        &calls_since(&sim, &before),
    );
}

async fn pennylane() {
    use pennylane_api::{project, run, DELIVERABLE};
    let sim = pennylane_sim::Sim::start().await;
    let p = project(&sim, "");
    let (_, r) = run(&p, &["sync"]).await;
    let delivered = common::target(&r, "pennylane")["delivered"].as_u64();
    assert_eq!(delivered, Some(DELIVERABLE as u64), "{r}");
    row(
        "Pennylane, first sync (the demo's 42 documents, 9 new customers)",
        DELIVERABLE,
        &sim.take_calls(),
    );
    sim.age(chrono::Duration::hours(1));
    run(&p, &["sync"]).await;
    row(
        "Pennylane, next sync an hour later (nothing new)",
        0,
        &sim.take_calls(),
    );
    sim.state
        .lock()
        .expect("fake")
        .paid
        .push("F2026-0002".into());
    run(&p, &["status"]).await;
    row(
        "Pennylane, `status` after one payment",
        0,
        &sim.take_calls(),
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    println!("| sync | documents | calls | calls per document | by endpoint |");
    println!("|---|---|---|---|---|");
    xero().await;
    pennylane().await;
}
