//! Status 212 for payments learned from an accounting target (issue 15 §2): a service invoice
//! the invoicing application still shows unpaid, reported paid by Pennylane, gets one 212 for
//! its whole gross (per VAT rate, valid against the official CDAR chain), once, even when the
//! invoicing application later records the same payment; a document the source shows paid in
//! full first gets only the source's payments.

use std::process::Command;

use serde_json::Value;

use crate::common::{json_of, with_json, Project};
use crate::pa_cashed::{pay, posted, FILE};
use crate::pa_sim::{Sim, BEARER};

const NUMBER: &str = "F2026-0010";

/// The demo project with the PA simulator as target `pa` and the Pennylane fake as target
/// `pennylane`, both acknowledging at once.
async fn started() -> (Sim, crate::pennylane_sim::Sim, Project) {
    let pa = Sim::start().await;
    pa.state.lock().unwrap().instant_ack = true;
    let pl = crate::pennylane_sim::Sim::start().await;
    let p = crate::pennylane_api::with_connector(&pl.connector(""));
    p.write("connectors/pa.toml", &pa.bearer_connector(""));
    let cfg = p
        .read("facto.toml")
        .replace("\"pennylane\"]", "\"pennylane\", \"pa\"]");
    assert!(cfg.contains("\"pa\"]"));
    p.write("facto.toml", &cfg);
    (pa, pl, p)
}

fn command(p: &Project, args: &[&str]) -> Command {
    let mut c = p.command(&with_json(args));
    c.env("PA_TOKEN", BEARER)
        .env("PENNYLANE_API_TOKEN", crate::pennylane_sim::TOKEN);
    c
}

async fn sync(p: &Project) -> Value {
    let (_, r, err) = json_of(command(p, &["sync"])).await;
    assert!(r.is_object(), "{err}");
    r
}

/// The `collected` lines of the 212s, added up (`1185.00 EUR` in all).
fn total(sent: &[crate::pa_sim_cdar::Posted]) -> rust_decimal::Decimal {
    sent.iter()
        .flat_map(|f| &f.collected)
        .map(|c| {
            c.split_once(" EUR at ")
                .unwrap()
                .0
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_learned_from_pennylane_sends_one_212_for_what_was_left_to_pay() {
    let (pa, pl, p) = started().await;
    let v = p.read_json(FILE);
    assert!(v["payments"].as_array().is_none_or(Vec::is_empty), "{v}");
    let r = sync(&p).await;
    assert!(posted(&pa).0.is_empty(), "not paid yet: {r}");

    // Paid in Pennylane, not in the invoicing application: the next run learns it (the
    // document is not read again; its kept copy gives the VAT breakdown).
    pl.state.lock().unwrap().paid.push(NUMBER.into());
    let r = sync(&p).await;
    let (sent, counts) = posted(&pa);
    assert_eq!((sent.len(), counts.as_slice()), (1, [1].as_slice()), "{r}");
    assert_eq!(sent[0].code, 212);
    assert_eq!(
        total(&sent).to_string(),
        "1185.00",
        "{:?}",
        sent[0].collected
    );
    let statuses = r["statuses"].to_string();
    assert!(statuses.contains("paid in pennylane on"), "{statuses}");
    assert!(statuses.contains("status 212 sent"), "{statuses}");
    let files = vec![("learned-212.xml".to_owned(), sent[0].file.clone())];
    crate::pa_official::cdar_chain_passes(&files);

    // Later runs send nothing more; nor does the invoicing application recording the same
    // money afterwards (in two payments): the learned payment covered it.
    sync(&p).await;
    pay(&p);
    let r = sync(&p).await;
    let (sent, counts) = posted(&pa);
    assert_eq!((sent.len(), counts.as_slice()), (1, [1].as_slice()), "{r}");
    assert!(
        r["statuses"].to_string().contains("covered it"),
        "{}",
        r["statuses"]
    );
    sync(&p).await;
    assert_eq!(posted(&pa).0.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_source_paying_in_full_first_leaves_nothing_to_learn() {
    let (pa, pl, p) = started().await;
    sync(&p).await;
    pay(&p);
    let r = sync(&p).await;
    assert_eq!(posted(&pa).0.len(), 2, "{r}");
    pl.state.lock().unwrap().paid.push(NUMBER.into());
    let r = sync(&p).await;
    let (sent, counts) = posted(&pa);
    assert_eq!((sent.len(), counts), (2, vec![1, 1]), "{r}");
    assert_eq!(total(&sent).to_string(), "1185.00");
    assert!(
        !r["statuses"].to_string().contains("paid in pennylane on"),
        "{r}"
    );
}

/// A learned payment waiting for its invoice to be accepted goes away, audited, when the source
/// shows the document paid in full meanwhile: the source's payments are sent instead, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_learned_payment_still_waiting_gives_way_to_the_sources_payments() {
    let (pa, pl, p) = started().await;
    pa.state.lock().unwrap().instant_ack = false;
    pa.state.lock().unwrap().ack_never = true;
    sync(&p).await;
    pl.state.lock().unwrap().paid.push(NUMBER.into());
    let r = sync(&p).await;
    let held = crate::pa_cashed::records(&p, Some("held"));
    assert_eq!(held.len(), 1, "{r}");
    assert_eq!(held[0]["problems"][0]["code"], "cashed-waiting");
    assert_eq!(held[0]["gross"], "1185.00");

    pay(&p);
    let r = sync(&p).await;
    assert!(
        r["statuses"].to_string().contains("is removed"),
        "{}",
        r["statuses"]
    );
    let held = crate::pa_cashed::records(&p, Some("held"));
    let mut amounts: Vec<&str> = held.iter().map(|h| h["gross"].as_str().unwrap()).collect();
    amounts.sort_unstable();
    assert_eq!(amounts, ["585.00", "600.00"], "{held:?}");

    pa.state.lock().unwrap().ack_never = false;
    for _ in 0..4 {
        sync(&p).await;
    }
    let (sent, counts) = posted(&pa);
    assert_eq!((sent.len(), counts), (2, vec![1, 1]));
    assert_eq!(total(&sent).to_string(), "1185.00");
}

/// A learned 212 the PA turns away for now (429s until the run gives up) is sent at a later
/// run, once: its document's copy stays until it is.
#[tokio::test(flavor = "multi_thread")]
async fn a_learned_212_refused_for_now_is_sent_at_a_later_run() {
    let (pa, pl, p) = started().await;
    sync(&p).await;
    pl.state.lock().unwrap().paid.push(NUMBER.into());
    for _ in 0..20 {
        pa.state
            .lock()
            .unwrap()
            .faults
            .push_back(crate::pa_sim::Fault::TooMany);
    }
    sync(&p).await;
    assert!(posted(&pa).0.is_empty());
    pa.state.lock().unwrap().faults.clear();
    for _ in 0..3 {
        sync(&p).await;
    }
    let (sent, counts) = posted(&pa);
    assert_eq!((sent.len(), counts), (1, vec![1]));
    assert_eq!(total(&sent).to_string(), "1185.00");
}

/// Payments reported, then removed from the source, then the invoice paid in Pennylane: what
/// was reported already counts, so the total never passes the gross.
#[tokio::test(flavor = "multi_thread")]
async fn a_learned_payment_never_reports_more_than_the_gross_with_what_was_sent() {
    let (pa, pl, p) = started().await;
    sync(&p).await;
    pay(&p);
    sync(&p).await;
    assert_eq!(posted(&pa).0.len(), 2);
    let mut v = p.read_json(FILE);
    v["payments"] = serde_json::json!([]);
    v["totals"]["paid"] = "0.00".into();
    v["totals"]["due"] = "1185.00".into();
    v["updated_at"] = "2026-11-21T09:00:00Z".into();
    p.write_json(FILE, &v);
    pl.state.lock().unwrap().paid.push(NUMBER.into());
    sync(&p).await;
    sync(&p).await;
    let (sent, _) = posted(&pa);
    assert_eq!(total(&sent).to_string(), "1185.00", "{sent:?}");
}
