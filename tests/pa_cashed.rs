//! Status 212 "Encaissée" through the real binary and the PA simulator (issue 15 §2): a service
//! invoice paid in two parts gets one 212 per payment, once the PA has accepted the invoice, with
//! the amounts per VAT rate adding up to its gross, valid against the CDAR XSD and the official
//! BR-FR-CDV rules; never twice across later runs, a lost answer, or a SIGKILL right after the
//! send; a payment that waits for its invoice is not rewritten while it waits; `status_212 =
//! "off"` sends none; goods send none.

use std::process::Command;

use serde_json::{json, Value};

use crate::common::{json_of, kill_at, with_json, Project};
use crate::pa_sim::{Fault, Sim, BEARER};

const T: &str = "pa";
const CASHED: &str = "pa#212";
/// Services, buyer 528471931, 1 185.00 at two VAT rates.
pub const FILE: &str = "examples/invoices/inv-2026-0010.json";
const NUMBER: &str = "F2026-0010";

pub fn project(sim: &Sim, extra: &str) -> Project {
    Project::demo_with_target(T, &sim.bearer_connector(extra))
}

/// A PA that acknowledges every flow at once, and the demo project with it as target `pa`.
async fn started(extra: &str) -> (Sim, Project) {
    let sim = Sim::start().await;
    sim.state.lock().unwrap().instant_ack = true;
    let p = project(&sim, extra);
    (sim, p)
}

fn command(p: &Project, args: &[&str]) -> Command {
    let mut c = p.command(&with_json(args));
    c.env("PA_TOKEN", BEARER);
    c
}

pub async fn sync(p: &Project) -> Value {
    let (_, r, err) = json_of(command(p, &["sync"])).await;
    assert!(r.is_object(), "{err}");
    r
}

/// Gives the invoice its two payments (600.00, then 585.00), read again by the next sync.
pub fn pay(p: &Project) {
    let mut v = p.read_json(FILE);
    assert_eq!(v["operation_nature"], "services");
    assert_eq!(v["totals"]["gross"], "1185.00");
    v["payments"] = json!([
        {"id": "VIR-1", "date": "2026-05-10", "amount": "600.00"},
        {"id": "VIR-2", "date": "2026-05-25", "amount": "585.00"}
    ]);
    v["totals"]["paid"] = "1185.00".into();
    v["totals"]["due"] = "0.00".into();
    v["updated_at"] = "2026-11-20T09:00:00Z".into();
    p.write_json(FILE, &v);
}

pub fn records(p: &Project, state: Option<&str>) -> Vec<Value> {
    let mut args = vec!["ledger", "list", "--target", CASHED];
    if let Some(s) = state {
        args.extend(["--state", s]);
    }
    let (_, v) = p.json(&args);
    v.as_array().cloned().unwrap_or_default()
}

/// The 212 flows the PA took for the invoice, and how many flows each `trackingId` made.
pub fn posted(sim: &Sim) -> (Vec<crate::pa_sim_cdar::Posted>, Vec<u32>) {
    let s = sim.state.lock().unwrap();
    let posted: Vec<_> = s
        .posted
        .iter()
        .filter(|f| f.number == NUMBER)
        .cloned()
        .collect();
    let counts = posted
        .iter()
        .map(|f| s.created.get(&f.tracking_id).copied().unwrap_or(0))
        .collect();
    (posted, counts)
}

/// The amounts the 212s of the invoice report, added up per rate.
fn per_rate(
    posted: &[crate::pa_sim_cdar::Posted],
) -> std::collections::BTreeMap<String, rust_decimal::Decimal> {
    let mut m = std::collections::BTreeMap::new();
    for f in posted {
        for c in &f.collected {
            // `600.00 EUR at 20.00 %`
            let (amount, rest) = c.split_once(" EUR at ").unwrap();
            let rate = rest.trim_end_matches(" %").to_owned();
            *m.entry(rate).or_default() += amount.parse::<rust_decimal::Decimal>().unwrap();
        }
    }
    m
}

/// The gross (base + VAT) per rate of the invoice, from its file.
fn gross_per_rate(p: &Project) -> std::collections::BTreeMap<String, rust_decimal::Decimal> {
    let v = p.read_json(FILE);
    let mut m = std::collections::BTreeMap::new();
    for t in v["tax_breakdown"].as_array().unwrap() {
        let d = |k: &str| {
            t[k].as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        };
        let mut rate = d("rate");
        rate.rescale(2);
        *m.entry(rate.to_string()).or_default() += d("base") + d("amount");
    }
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_invoice_paid_in_two_parts_gets_one_212_per_payment_once() {
    let (sim, p) = started("").await;
    pay(&p);
    let r = sync(&p).await;
    let (sent, counts) = posted(&sim);
    assert_eq!(sent.len(), 2, "{r}");
    assert_eq!(counts, [1, 1]);
    assert!(sent.iter().all(|f| f.code == 212));
    assert_eq!(
        per_rate(&sent),
        gross_per_rate(&p),
        "paid in full: its gross per rate"
    );
    assert!(r["statuses"].to_string().contains("status 212 sent"), "{r}");
    let delivered = records(&p, Some("delivered"));
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    assert!(delivered.iter().all(|d| d["number"] == NUMBER));
    // Only this invoice is paid and a service: no other 212.
    assert_eq!(sim.state.lock().unwrap().posted.len(), 2);

    // What the PA received passes the official chain: the CDAR D22B XSD, then the BR-FR-CDV
    // rules, zero fatal findings.
    let files: Vec<(String, Vec<u8>)> = sent
        .iter()
        .enumerate()
        .map(|(i, f)| (format!("212-{i}.xml"), f.file.clone()))
        .collect();
    crate::pa_official::cdar_chain_passes(&files);

    // Later runs, the same document read again: nothing more.
    sync(&p).await;
    let mut v = p.read_json(FILE);
    v["updated_at"] = "2026-11-21T09:00:00Z".into();
    p.write_json(FILE, &v);
    sync(&p).await;
    let (sent, counts) = posted(&sim);
    assert_eq!((sent.len(), counts), (2, vec![1, 1]));
}

/// The invoice not accepted yet: the payments wait, held with the reason, and are not rewritten
/// while they wait; once the PA acknowledges the invoice, they go, once each.
#[tokio::test(flavor = "multi_thread")]
async fn payments_wait_for_their_invoice_to_be_accepted() {
    let sim = Sim::start().await;
    sim.state.lock().unwrap().ack_never = true;
    let p = project(&sim, "");
    pay(&p);
    let r = sync(&p).await;
    assert!(posted(&sim).0.is_empty());
    let held = records(&p, Some("held"));
    assert_eq!(held.len(), 2, "{r}");
    assert!(
        held.iter()
            .all(|h| h["problems"][0]["code"] == "cashed-waiting"),
        "{held:?}"
    );
    assert!(r["problems"].to_string().contains("waits for it"), "{r}");
    sync(&p).await;
    let again = records(&p, Some("held"));
    assert_eq!(
        held.iter().map(|h| &h["updated_at"]).collect::<Vec<_>>(),
        again.iter().map(|h| &h["updated_at"]).collect::<Vec<_>>(),
        "not rewritten while it waits"
    );
    sim.state.lock().unwrap().ack_never = false;
    for _ in 0..4 {
        sync(&p).await;
    }
    let (sent, counts) = posted(&sim);
    assert_eq!((sent.len(), counts), (2, vec![1, 1]));
    assert!(records(&p, Some("held")).is_empty());
}

/// A lost answer leaves the payment claimed; the next run finds the flow by its `trackingId`
/// and records it, never posting it again. So does a SIGKILL right after the send.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_answer_or_a_kill_after_the_send_never_sends_a_212_twice() {
    let (sim, p) = started("").await;
    sync(&p).await;
    pay(&p);
    sim.state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::LoseAnswer);
    sync(&p).await;
    assert_eq!(records(&p, Some("claimed")).len(), 1);
    sync(&p).await;
    let (sent, counts) = posted(&sim);
    assert_eq!((sent.len(), counts), (2, vec![1, 1]));
    assert_eq!(records(&p, Some("delivered")).len(), 2);

    // A second invoice, killed right after its first 212 is posted.
    let (sim, p) = started("").await;
    sync(&p).await;
    pay(&p);
    kill_at(
        command(&p, &["sync"]),
        &format!("after-send:1@{CASHED}"),
        &p.path("paused"),
    )
    .await;
    assert_eq!(posted(&sim).0.len(), 1);
    assert_eq!(records(&p, Some("claimed")).len(), 1);
    sync(&p).await;
    let (sent, counts) = posted(&sim);
    assert_eq!((sent.len(), counts), (2, vec![1, 1]));
}

/// `status_212 = "off"` sends none; a goods invoice's payments owe none.
#[tokio::test(flavor = "multi_thread")]
async fn off_or_goods_sends_no_212() {
    let (sim, p) = started("status_212 = \"off\"\n").await;
    pay(&p);
    sync(&p).await;
    assert!(sim.state.lock().unwrap().posted.is_empty());
    assert!(records(&p, None).is_empty());

    let (sim, p) = started("").await;
    pay(&p);
    let mut v = p.read_json(FILE);
    v["operation_nature"] = "goods".into();
    p.write_json(FILE, &v);
    sync(&p).await;
    assert!(sim.state.lock().unwrap().posted.is_empty());
}
