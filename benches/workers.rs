//! Documents per second through 1, 2 and 4 workers sharing one PostgreSQL ledger (issue 16), and
//! one worker on sled for comparison. The demo's invoices are copied (FACTO_BENCH_COPIES, default
//! 40, times each) into one job that delivers to the in-repo Pennylane fake. The workers are
//! `facto sync` processes started together; the time is from their start until the last one
//! ends. The fake counts every import, and the bench checks each document was imported exactly
//! once.
//!
//! Run: `FACTO_BENCH_POSTGRES=postgres://user@host:port/db cargo bench --bench workers`
//! (`.ci/postgres.sh` starts a server). Without it, only the sled row is printed.
//! `FACTO_BENCH_WORKERS=1,4` runs only the PostgreSQL rows of those worker counts.

// The fakes and the projects are the integration tests' own modules: what only their tests use
// is unused here.
#![allow(dead_code, unused_imports, unreachable_pub)]

use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/pennylane_api.rs"]
mod pennylane_api;
#[path = "../tests/pennylane_sim.rs"]
mod pennylane_sim;

/// Adds `copies` copies of every invoice of the demo (ids and numbers suffixed), with the
/// original's PDF; returns how many invoices the job then holds.
fn multiply(p: &common::Project, copies: usize) -> usize {
    let dir = p.path("examples/invoices");
    let mut invoices = Vec::new();
    for e in std::fs::read_dir(&dir).expect("invoices") {
        let path = e.expect("entry").path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        let docs = match v {
            Value::Array(a) => a,
            one => vec![one],
        };
        invoices.extend(
            docs.into_iter()
                .filter(|d| d["kind"] == "invoice" && d["status"] == "final"),
        );
    }
    let mut all = Vec::new();
    for k in 0..copies {
        for d in &invoices {
            let mut c = d.clone();
            c["id"] = format!("{}-c{k}", d["id"].as_str().unwrap_or("")).into();
            c["number"] = format!("{}-C{k}", d["number"].as_str().unwrap_or("")).into();
            all.push(c);
        }
    }
    std::fs::write(
        dir.join("copies.json"),
        serde_json::to_vec(&Value::Array(all.clone())).expect("json"),
    )
    .expect("write");
    all.len()
}

/// The demo job delivering to the Pennylane fake only, with the copies.
fn project(sim: &pennylane_sim::Sim, copies: usize) -> common::Project {
    let p = pennylane_api::with_connector(&sim.connector("lookup_grace_minutes = 0"));
    let cfg = p
        .read("facto.toml")
        .replace("\"sales-fec\", \"sales-csv\", ", "");
    p.write("facto.toml", &cfg);
    multiply(&p, copies);
    p
}

/// Starts `workers` syncs together and waits for all; the seconds they took.
fn run(dir: &std::path::Path, workers: usize) -> f64 {
    let start = Instant::now();
    let children: Vec<_> = (0..workers)
        .map(|i| {
            // FACTO_BENCH_LOG=DIR: each worker's log (RUST_LOG as given) in DIR/worker-<n>.log.
            let log = std::env::var("FACTO_BENCH_LOG").ok().map(|d| {
                std::fs::File::create(format!("{d}/worker-{workers}-{i}.log")).expect("log")
            });
            let mut c = Command::new(env!("CARGO_BIN_EXE_facto"));
            c.current_dir(dir)
                .arg("sync")
                .env("PENNYLANE_API_TOKEN", pennylane_sim::TOKEN)
                .stdout(Stdio::null());
            match log {
                Some(f) => c.stderr(f),
                None => c.env_remove("RUST_LOG").stderr(Stdio::null()),
            };
            c.spawn().expect("facto")
        })
        .collect();
    for mut c in children {
        c.wait().expect("wait");
    }
    start.elapsed().as_secs_f64()
}

/// The machine's CPU ticks so far: (busy, all), from `/proc/stat`'s first line.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let all: u64 = f.iter().sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (all - idle, all)
}

/// The CPU seconds of the children waited for so far (`/proc/self/stat`'s cutime + cstime).
fn children_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // After the command's name: state is field 3, cutime 16 and cstime 17 (1-based).
    (f.get(13).copied().unwrap_or(0.0) + f.get(14).copied().unwrap_or(0.0)) / 100.0
}

async fn row(what: &str, workers: usize, copies: usize, postgres: Option<&str>) {
    let sim = pennylane_sim::Sim::start().await;
    let p = project(&sim, copies);
    if let Some(url) = postgres {
        let ns = format!("bench-workers-{}-{workers}", std::process::id());
        p.write(
            "facto.toml",
            &format!(
                "{}\n[ledger]\nurl = \"{url}\"\nnamespace = \"{ns}\"\nshared = true\n",
                p.read("facto.toml")
            ),
        );
    }
    let cpu = children_cpu();
    let ticks = machine_ticks();
    let secs = tokio::task::spawn_blocking({
        let dir = p.path("");
        move || run(&dir, workers)
    })
    .await
    .expect("run");
    let imports = sim.imports();
    assert!(
        imports.values().all(|n| *n == 1),
        "imported twice: {imports:?}"
    );
    let n = imports.len();
    if let Ok(d) = std::env::var("FACTO_BENCH_LOG") {
        let keys: Vec<&String> = imports.keys().collect();
        let _ = std::fs::write(
            format!("{d}/imported-{workers}-{}.txt", postgres.is_some()),
            format!("{keys:#?}"),
        );
    }
    let (busy, all) = machine_ticks();
    let busy = (busy - ticks.0) as f64 * 100.0 / (all - ticks.1).max(1) as f64;
    println!(
        "| {what} | {workers} | {n} | {secs:.2} s | {:.0} | {:.2} s | {busy:.0} % |",
        n as f64 / secs,
        children_cpu() - cpu
    );
    if let Some(url) = postgres {
        let ns = format!("bench-workers-{}-{workers}", std::process::id());
        if let Ok(s) = facto::ledger::postgres::PgStore::open(url, None, &ns) {
            let _ = s.drop_namespace();
        }
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let copies: usize = std::env::var("FACTO_BENCH_COPIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    println!("| ledger | workers | documents | time | documents/s | workers' CPU | machine busy |");
    println!("|---|---|---|---|---|---|---|");
    row("sled", 1, copies, None).await;
    match std::env::var("FACTO_BENCH_POSTGRES").ok() {
        Some(url) => {
            // FACTO_BENCH_WORKERS="1,4" runs only those rows.
            let counts: Vec<usize> = std::env::var("FACTO_BENCH_WORKERS")
                .ok()
                .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
                .unwrap_or_else(|| vec![1, 2, 4]);
            for w in counts {
                row("PostgreSQL, shared", w, copies, Some(&url)).await;
            }
        }
        None => println!("(FACTO_BENCH_POSTGRES not set: no PostgreSQL rows)"),
    }
}
