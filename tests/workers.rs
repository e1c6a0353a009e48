//! Several workers on one PostgreSQL ledger (issue 16 §1): four `facto sync` processes run the
//! same job at once, over and over, each killed (SIGKILL) at a random moment, against the
//! Pennylane fake, which counts every import. A document is claimed by one worker only; a
//! killed worker's claims are settled by the others through the target's lookup, never by
//! sending blindly. At the end: every document imported exactly once, none lost, none claimed,
//! and each customer created once.
//! Needs the server `.ci/run` starts (`FACTO_TEST_POSTGRES`); without it the test says
//! "skipped".

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{assert_once, Project};
use crate::pennylane_api::{self, DELIVERABLE};
use crate::pennylane_sim::{Sim, TOKEN};

/// The demo job delivering to Pennylane only (a shared ledger takes no journal files), its
/// ledger in its own namespace of the test database, shared by several workers.
fn project(sim: &Sim, url: &str) -> (Project, String) {
    let p = pennylane_api::with_connector(&sim.connector("lookup_grace_minutes = 0"));
    let cfg = p
        .read("facto.toml")
        .replace("\"sales-fec\", \"sales-csv\", ", "");
    assert!(cfg.contains("targets = [\"pennylane\"]"), "{cfg}");
    p.write("facto.toml", &cfg);
    let ns = crate::postgres_ledger::on_postgres(&p, url);
    let cfg = p
        .read("facto.toml")
        .replace("[ledger]\n", "[ledger]\nshared = true\n");
    p.write("facto.toml", &cfg);
    (p, ns)
}

/// `facto sync` in the project folder `dir`.
fn sync(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_facto"));
    c.current_dir(dir)
        .arg("sync")
        .env_remove("RUST_LOG")
        .env_remove("FACTO_TEST_PAUSE_AT")
        .env("PENNYLANE_API_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// A small generator (xorshift), seeded from the clock; the seed is printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn four_workers_killed_at_random_deliver_each_document_once() {
    let Some(url) = crate::postgres_ledger::url() else {
        return;
    };
    let sim = Sim::start().await;
    let (p, ns) = project(&sim, &url);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let dir = p.path("");
    let kills = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let dir = dir.clone();
            let kills = std::sync::Arc::clone(&kills);
            std::thread::spawn(move || {
                let mut rng = Rng(seed.wrapping_mul(w + 1) | 1);
                for _ in 0..8 {
                    let mut child = sync(&dir).spawn().unwrap();
                    // Killed somewhere in its run (or not at all, a quarter of the time).
                    let at = Duration::from_millis(rng.below(400));
                    let kill = rng.below(4) != 0;
                    let start = Instant::now();
                    loop {
                        if child.try_wait().unwrap().is_some() {
                            break;
                        }
                        if kill && start.elapsed() >= at {
                            child.kill().unwrap();
                            child.wait().unwrap();
                            kills.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            break;
                        }
                        assert!(start.elapsed() < Duration::from_secs(120), "a run hung");
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        tokio::task::spawn_blocking(move || w.join().unwrap())
            .await
            .unwrap();
    }
    // The last runs, never killed, settle what the killed ones left claimed.
    for _ in 0..2 {
        let out = sync(&dir).stderr(Stdio::piped()).output().unwrap();
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let kills = kills.load(std::sync::atomic::Ordering::Relaxed);
    println!("{kills} workers killed");
    assert_once(&sim.imports(), DELIVERABLE, "imported");
    // Each customer created once, however many workers met it at the same moment.
    let customers: Vec<String> = sim
        .state
        .lock()
        .unwrap()
        .customers
        .iter()
        .map(|(_, r)| r.clone())
        .collect();
    let distinct: std::collections::BTreeSet<&String> = customers.iter().collect();
    assert_eq!(distinct.len(), customers.len(), "{customers:?}");
    let (_, claimed) = p.json(&["ledger", "list", "--state", "claimed"]);
    assert_eq!(claimed.as_array().map(Vec::len), Some(0), "{claimed}");
    // The indexes agree with the records, recounted from scratch.
    let differences = crate::postgres_ledger::open(&url, &ns)
        .check_indexes()
        .unwrap();
    assert!(differences.is_empty(), "{differences:?}");
    let (_, delivered) = p.json(&["ledger", "list", "--state", "delivered"]);
    assert_eq!(
        delivered.as_array().map(Vec::len),
        Some(DELIVERABLE),
        "{delivered}"
    );
}

/// The share of a document id among `of` workers, as facto computes it (FNV-1a of the id).
fn share_of(id: &str, of: u64) -> u64 {
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    h % of
}

/// Workers divide a run: each plans and delivers its own share of the documents first, the
/// others' after. Here a second worker is registered (the test holds it) but never runs: the
/// one `facto sync` delivers its own share, then the other's share, which it finds undelivered.
/// The imports come as two runs, one share then the other. A credit note whose invoice is in
/// the other share waits with it: two invoice and credit note pairs, one each way, both go in
/// the first sync, each credit note after its invoice (Pennylane holds a credit note whose
/// invoice it does not have). A second sync delivers what waited; every document once.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_delivers_its_share_first_then_what_the_other_worker_left() {
    let Some(url) = crate::postgres_ledger::url() else {
        return;
    };
    let sim = Sim::start().await;
    let (p, ns) = project(&sim, &url);
    let other = facto::ledger::postgres::PgStore::open_as(&url, None, &ns, true).unwrap();
    // Two pairs: the credit note in share 0 and its invoice in share 1, and the reverse. Their
    // files sort after the demo's, the credit notes last: one worker reads each invoice first.
    let template = p.read_json("examples/new-invoice.json");
    let mut pairs = Vec::new();
    for (cn_share, tag) in [(0, "a"), (1, "b")] {
        let inv = (0..)
            .map(|i| format!("pair-{tag}-inv-{i}"))
            .find(|id| share_of(id, 2) != cn_share)
            .unwrap();
        let cn = (0..)
            .map(|i| format!("pair-{tag}-cn-{i}"))
            .find(|id| share_of(id, 2) == cn_share)
            .unwrap();
        let mut d = template.clone();
        d["purchase_order"] = serde_json::Value::Null;
        let with_pdf = |d: &mut serde_json::Value, id: &str| {
            d["id"] = id.into();
            let pdf = format!("pdf/{id}.pdf");
            p.write(&format!("examples/invoices/{pdf}"), "%PDF-1.4\n%%EOF\n");
            d["attachments"] = serde_json::json!([{"kind": "invoice_pdf", "path": pdf, "mime_type": "application/pdf"}]);
        };
        with_pdf(&mut d, &inv);
        d["number"] = format!("P{tag}-INV").into();
        p.write_json(&format!("examples/invoices/y-{tag}-inv.json"), &d);
        with_pdf(&mut d, &cn);
        d["number"] = format!("P{tag}-CN").into();
        d["kind"] = "credit_note".into();
        d["preceding_invoice"] = format!("P{tag}-INV").into();
        d["preceding_invoice_date"] = d["issue_date"].clone();
        p.write_json(&format!("examples/invoices/z-{tag}-cn.json"), &d);
        pairs.push((format!("P{tag}-INV"), format!("P{tag}-CN")));
    }
    let mut id_of = std::collections::BTreeMap::new();
    let mut credits = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(p.path("examples/invoices")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let docs = match v {
            serde_json::Value::Array(a) => a,
            one => vec![one],
        };
        for d in docs {
            let number = d["number"].as_str().unwrap().to_owned();
            if let Some(inv) = d["preceding_invoice"].as_str() {
                credits.insert(number.clone(), inv.to_owned());
            }
            id_of.insert(number, d["id"].as_str().unwrap().to_owned());
        }
    }
    let dir = p.path("");
    let out = sync(&dir).stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let order: Vec<String> = sim
        .state
        .lock()
        .unwrap()
        .invoices
        .iter()
        .map(|v| v["invoice_number"].as_str().unwrap().to_owned())
        .collect();
    // The first import is of this worker's share. A document goes in the first run if it is of
    // that share, unless it credits an invoice of the other share.
    let mine = share_of(&id_of[&order[0]], 2);
    let first_run = |n: &String| {
        let theirs = |n: &String| share_of(&id_of[n], 2) != mine;
        !theirs(n)
            && !credits
                .get(n)
                .is_some_and(|inv| id_of.contains_key(inv) && theirs(inv))
    };
    let runs: Vec<bool> = order.iter().map(first_run).collect();
    let switches = runs.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(runs.contains(&false), "{order:?}");
    assert_eq!(switches, 1, "one share, then the other: {order:?} {runs:?}");
    for (inv, cn) in &pairs {
        let at = |n: &String| order.iter().position(|o| o == n);
        assert!(
            at(inv).is_some() && at(cn) > at(inv),
            "{cn} after {inv} in the first sync: {order:?}"
        );
    }
    let out = sync(&dir).stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_once(&sim.imports(), DELIVERABLE + 4, "imported");
    drop(other);
}

/// Four workers on one shared ledger sync the same 200 documents of 50 customers to the Xero
/// fake at once: each contact is created once (looked up and created under one lock across the
/// workers; the fake refuses a second contact of a number), each document once.
#[tokio::test(flavor = "multi_thread")]
async fn four_workers_create_each_xero_contact_once() {
    use crate::xero_calls::{many_documents, CUSTOMERS, DOCUMENTS};
    let Some(url) = crate::postgres_ledger::url() else {
        return;
    };
    let sim = crate::xero_sim::Sim::start().await;
    let p = crate::xero_api::connected(&sim, "").await;
    many_documents(&p);
    // Slow lookups: without the lock, two workers would both find a contact missing.
    sim.state.lock().unwrap().contacts_delay = Some(std::time::Duration::from_millis(300));
    let cfg = p
        .read("facto.toml")
        .replace("\"sales-fec\", \"sales-csv\", ", "");
    p.write("facto.toml", &cfg);
    crate::postgres_ledger::on_postgres(&p, &url);
    let cfg = p
        .read("facto.toml")
        .replace("[ledger]\n", "[ledger]\nshared = true\n");
    p.write("facto.toml", &cfg);
    let sync = || {
        let mut c = crate::xero_api::command(&p, &["sync"]);
        c.env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    let children: Vec<_> = (0..4).map(|_| sync().spawn().unwrap()).collect();
    let outs: Vec<_> = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    })
    .await
    .unwrap();
    for out in outs.iter().chain([&sync().output().unwrap()]) {
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_once(&sim.created(), DOCUMENTS, "created");
    let s = sim.state.lock().unwrap();
    assert_eq!(s.created_contacts as usize, CUSTOMERS);
    assert_eq!(
        s.refused_contacts, 0,
        "no worker tried to create a contact another had made"
    );
}
