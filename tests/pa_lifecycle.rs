//! Lifecycle statuses from the PA (issue 13 §4) through the real binary against the simulator:
//! statuses arrive over several `facto status` runs and are recorded in order, each once; a
//! dispute is listed for a human with its reason and expected action; a refusal rejects the
//! invoice for good (the report names it and the credit-note advice, no sync or `ledger retry`
//! sends it again); a status about an invoice facto never sent is reported; and every flow
//! waiting for its acknowledgement is polled in turn whatever `poll_max_flows` is.

use serde_json::Value;

use crate::common::{self, json_of, with_json, Project};
use crate::pa_sim::{Lc, Sim, BEARER, CLIENT_ID, CLIENT_SECRET};

const T: &str = "pa";

fn command(p: &Project, args: &[&str]) -> std::process::Command {
    let mut c = p.command(args);
    c.env("PA_CLIENT_ID", CLIENT_ID)
        .env("PA_CLIENT_SECRET", CLIENT_SECRET)
        .env("PA_TOKEN", BEARER);
    c
}

async fn run(p: &Project, args: &[&str]) -> (i32, Value, String) {
    json_of(command(p, &with_json(args))).await
}

/// `facto status` as text: the lines a human reads.
fn status_text(p: &Project) -> String {
    let out = command(p, &["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn record(p: &Project, number: &str) -> Value {
    let (_, v) = p.json(&["ledger", "list", "--target", T]);
    v.as_array()
        .unwrap()
        .iter()
        .find(|r| r["number"] == number)
        .cloned()
        .unwrap_or_else(|| panic!("no record of {number}: {v}"))
}

/// The PA statuses in a record's history, in the order recorded.
fn statuses(r: &Value) -> Vec<String> {
    r["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["note"].as_str())
        .filter_map(|n| n.strip_prefix("PA status "))
        .map(|n| n[..3].to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn statuses_over_several_runs_a_dispute_a_refusal_and_an_unknown_invoice() {
    let sim = Sim::with_lifecycle(&[&[Lc::new(200)], &[Lc::new(202), Lc::new(203)]]).await;
    // Several pages per search.
    sim.state.lock().unwrap().lc_page = 20;
    let p = Project::demo_with_target(T, &sim.connector(""));
    let (_, r, err) = run(&p, &["sync"]).await;
    assert!(r["error"].is_null(), "{r} {err}");
    let numbers: Vec<String> = {
        let s = sim.state.lock().unwrap();
        s.flows.iter().map(|f| f.number.clone()).collect()
    };
    assert!(numbers.len() >= 5, "{numbers:?}");
    let (a, b, c, d, e) = (
        &numbers[0],
        &numbers[1],
        &numbers[2],
        &numbers[3],
        &numbers[4],
    );
    // The sync read the first step already: deposited.
    assert_eq!(record(&p, a)["remote_status"], "cdv:200 Déposée");

    sim.then(a, &[&[Lc::new(205)]]);
    sim.then(
        b,
        &[&[Lc::new(207)
            .reason("TX_TVA_ERR", " Taux de TVA erroné")
            .action("NIN", "Créer une Facture Rectificative")]],
    );
    sim.then(
        c,
        &[&[Lc::new(210).reason("AUTRE", "Commande inconnue du service")]],
    );
    sim.then(
        e,
        &[&[Lc::new(213).reason("DOUBLON", "Facture déjà reçue")]],
    );
    // Collected (delivered twice by the PA), then taken in hand: processing statuses in any order.
    sim.then(
        d,
        &[
            &[Lc::new(212).collected("1200.00", "20.00").twice()],
            &[Lc::new(204)],
        ],
    );

    let first = status_text(&p);
    assert!(
        first.contains(&format!("{a} (pa): cdv:200 Déposée → cdv:202 Reçue")),
        "{first}"
    );
    let second = status_text(&p);
    assert!(
        second.contains(&format!(
            "{b} (pa): cdv:203 Mise à disposition → cdv:207 En litige: to act on: the buyer disputes it (TX_TVA_ERR: Taux de TVA erroné; expected action NIN: Créer une Facture Rectificative)"
        )),
        "{second}"
    );
    assert!(
        second.contains(&format!("{c} (pa): cdv:203 Mise à disposition → cdv:210 Refusée: refused by the buyer 210 Refusée (AUTRE: Commande inconnue du service): the reform requires cancelling invoice {c} in the books with a credit note and issuing a new invoice with a new number")),
        "{second}"
    );
    assert!(
        second.contains(&format!("{e} (pa): cdv:203 Mise à disposition → cdv:213 Rejetée: rejected by a PA's regulatory checks 213 Rejetée (DOUBLON: Facture déjà reçue): the reform requires cancelling invoice {e}")),
        "{second}"
    );
    sim.status_of_unknown("F2099-9999", Lc::new(205));
    let third = status_text(&p);
    assert!(
        third.contains("status 205 Approuvée for invoice F2099-9999")
            && third.contains("no invoice facto sent through pa"),
        "{third}"
    );
    // Nothing new: nothing recorded again, each status file read once.
    let before = record(&p, d);
    let fourth = status_text(&p);
    assert_eq!(record(&p, d)["history"], before["history"], "{fourth}");
    {
        let s = sim.state.lock().unwrap();
        assert_eq!(s.downloads.len(), s.lc.len());
        assert!(s.downloads.values().all(|n| *n == 1), "{:?}", s.downloads);
    }

    let ra = record(&p, a);
    assert_eq!(statuses(&ra), ["200", "202", "203", "205"]);
    assert_eq!(ra["state"], "accepted");
    let rb = record(&p, b);
    assert_eq!(rb["state"], "accepted");
    assert!(
        rb["last_error"]
            .as_str()
            .unwrap()
            .starts_with("to act on: the buyer disputes it"),
        "{rb}"
    );
    let rd = record(&p, d);
    assert_eq!(statuses(&rd), ["200", "202", "203", "212", "204"], "{rd}");
    assert_eq!(rd["state"], "paid");
    assert!(
        rd.to_string().contains("collected 1200.00 EUR at 20.00 %"),
        "{rd}"
    );
    let rc = record(&p, c);
    assert_eq!(rc["state"], "rejected");
    assert_eq!(rc["remote_status"], "cdv:210 Refusée");

    // Refused: never sent again under its number, by a sync or by `ledger retry`.
    let (_, r, err) = run(&p, &["sync"]).await;
    assert_eq!(common::target(&r, T)["delivered"], 0, "{r} {err}");
    let line = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["number"] == c.as_str())
        .unwrap_or_else(|| panic!("{r}"));
    assert_eq!(line["status"], "rejected");
    assert!(
        line["reason"].as_str().unwrap().contains(&format!(
            "cancelling invoice {c} in the books with a credit note"
        )),
        "{line}"
    );
    assert_eq!(
        line["fix"],
        "cancel it in the books with a credit note and issue a new invoice with a new number"
    );
    let retry = command(&p, &["ledger", "retry", c, "--target", T])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&retry.stderr);
    assert_ne!(retry.status.code(), Some(0), "{said}");
    assert!(
        said.contains("is not sent again") && said.contains("credit note"),
        "{said}"
    );
    // `forget` without --yes names the reform's rule before anything is removed.
    let forget = command(&p, &["ledger", "forget", c, "--target", T])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&forget.stderr);
    assert_ne!(forget.status.code(), Some(0), "{said}");
    assert!(
        said.contains("Beware") && said.contains("same number"),
        "{said}"
    );
    let (_, r, _) = run(&p, &["sync"]).await;
    assert_eq!(common::target(&r, T)["delivered"], 0, "{r}");
    assert_eq!(record(&p, c)["state"], "rejected");
    assert_eq!(record(&p, e)["state"], "rejected");
    common::assert_once(&sim.created(), numbers.len(), "sent");
}

/// Regression: `poll_max_flows` took the first flows waiting for their acknowledgement on every
/// run, so that flows the PA never acknowledged kept the others from ever being read.
#[tokio::test(flavor = "multi_thread")]
async fn every_waiting_acknowledgement_is_polled_in_turn() {
    let sim = Sim::start().await;
    sim.state.lock().unwrap().ack_never = true;
    let p = Project::demo_with_target(T, &sim.connector("poll_max_flows = 5\n"));
    let (_, r, err) = run(&p, &["sync"]).await;
    assert!(r["error"].is_null(), "{r} {err}");
    let n = sim.created().len();
    assert!(n > 10, "{n}");
    for _ in 0..n.div_ceil(5) {
        status_text(&p);
    }
    let reads = sim.reads();
    assert!(reads.values().all(|r| *r >= 1), "{reads:?}");
    // At most five reads per run.
    let total: u32 = reads.values().sum();
    assert!(total as usize <= 5 * (n.div_ceil(5) + 1), "{reads:?}");
}

/// The daemon's status polling reads the PA's statuses too, on its own schedule.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_reads_the_statuses_on_its_status_schedule() {
    let sim = Sim::with_lifecycle(&[&[Lc::new(200)], &[Lc::new(202)], &[Lc::new(205)]]).await;
    let p = Project::demo_with_target(T, &sim.connector(""));
    let (mut child, _, _) = crate::daemon::start_with(
        &p,
        "status_every = \"every 1s\"\n",
        &[
            ("PA_CLIENT_ID", CLIENT_ID),
            ("PA_CLIENT_SECRET", CLIENT_SECRET),
        ],
    );
    let start = std::time::Instant::now();
    loop {
        let done = {
            let s = sim.state.lock().unwrap();
            s.ticks >= 3 && s.downloads.len() == s.lc.len()
        };
        if done || start.elapsed() > std::time::Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // One more status pass: the one that read the last step has stored it.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(crate::daemon::terminate(&mut child), 0);
    let number = sim.state.lock().unwrap().flows[0].number.clone();
    let r = record(&p, &number);
    assert_eq!(statuses(&r), ["200", "202", "205"], "{r}");
    assert_eq!(r["state"], "accepted");
}

/// A run reads at most ten pages of statuses; the next run goes on from the PA's cursor, and
/// every status is read once.
#[tokio::test(flavor = "multi_thread")]
async fn statuses_beyond_a_runs_pages_are_read_by_the_next_run_once() {
    let sim = Sim::with_lifecycle(&[&[Lc::new(200)]]).await;
    sim.state.lock().unwrap().lc_page = 2;
    let p = Project::demo_with_target(T, &sim.connector(""));
    let (_, r, err) = run(&p, &["sync"]).await;
    assert!(r["error"].is_null(), "{r} {err}");
    let n = sim.created().len();
    assert!(n > 20, "{n}");
    let deposited = |p: &Project| {
        let (_, v) = p.json(&["ledger", "list", "--target", T]);
        v.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["remote_status"] == "cdv:200 Déposée")
            .count()
    };
    // Ten pages of two.
    assert_eq!(deposited(&p), 20);
    status_text(&p);
    assert_eq!(deposited(&p), 40.min(n));
    for _ in 0..n.div_ceil(20) {
        status_text(&p);
    }
    assert_eq!(deposited(&p), n);
    let s = sim.state.lock().unwrap();
    assert_eq!(s.lc.len(), n);
    assert_eq!(s.downloads.len(), n);
    assert!(s.downloads.values().all(|d| *d == 1), "{:?}", s.downloads);
}
