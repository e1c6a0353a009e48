//! Many tenants in one daemon (issue 16): `FACTO_BENCH_TENANTS` (default 1 000) tenants of
//! `FACTO_BENCH_DOCS` (default 100) invoices each, every one a copy of the demo project with its
//! own sled ledger, its json-dir source and its FEC target, served by one `facto --tenants DIR
//! run`. Measured:
//! - the first full pass: from the daemon's start until every tenant delivered every invoice
//!   (the deployment's `/metrics`), and the daemon's resident memory then;
//! - the steady state: every tenant's job runs `every 1m`; the daemon's CPU time over
//!   `FACTO_BENCH_WINDOW` seconds (default 120), per incremental pass (nothing new to deliver),
//!   and its peak memory.
//!
//! With `FACTO_BENCH_POSTGRES` (a server's URL, the password in `PGPASSWORD`), every tenant's
//! ledger is a namespace of that database instead, the tenants sharing
//! `FACTO_BENCH_CONNECTIONS` (default 8) connections; the sessions the daemon holds are counted.
//!
//! Run: `cargo bench --bench tenants` (about 5 minutes on 2 cores for 1 000 tenants).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

/// `n` invoices made from the demo's final invoices that deliver (ids and numbers suffixed).
fn invoices(repo: &Path, n: usize) -> Vec<Value> {
    let mut base = Vec::new();
    for e in std::fs::read_dir(repo.join("examples/invoices")).expect("invoices") {
        let path = e.expect("entry").path();
        let v: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        let docs = match v {
            Value::Array(a) => a,
            one => vec![one],
        };
        base.extend(docs.into_iter().filter(|d| {
            d["kind"] == "invoice"
                && d["status"] == "final"
                && !matches!(d["id"].as_str(), Some("inv-2026-0030" | "inv-2026-0032"))
        }));
    }
    (0..n)
        .map(|i| {
            let d = &base[i % base.len()];
            let mut c = d.clone();
            c["id"] = format!("{}-c{i}", d["id"].as_str().unwrap_or("")).into();
            c["number"] = format!("{}-C{i}", d["number"].as_str().unwrap_or("")).into();
            c
        })
        .collect()
}

fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of `pid`.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat, counted after the command name: 12 and 13 here.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of every `postgres` process of this machine (the test server's): their sum at
/// two moments counts the server's work between them, but for processes that ended meanwhile.
fn server_cpu_secs() -> f64 {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    procs
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(cpu_secs)
        .sum()
}

fn metrics(addr: &str, token: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sum(m: &str, pattern: &str) -> u64 {
    m.lines()
        .filter(|l| !l.starts_with('#') && l.contains(pattern))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn main() {
    let tenants = env_usize("FACTO_BENCH_TENANTS", 1000);
    let docs = env_usize("FACTO_BENCH_DOCS", 100);
    let window = env_usize("FACTO_BENCH_WINDOW", 120);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let template = dir.join(".template");
    std::fs::create_dir_all(&template).expect("mkdir");
    for d in ["connectors", "mappings"] {
        copy_dir(&repo.join(d), &template.join(d));
    }
    let cfg = std::fs::read_to_string(repo.join("facto.toml"))
        .expect("facto.toml")
        .replace("\"sales-fec\", \"sales-csv\"", "\"sales-fec\"")
        .replace("schedule = \"every 15m\"", "schedule = \"every 1m\"");
    std::fs::write(template.join("facto.toml"), cfg).expect("write");
    std::fs::create_dir_all(template.join("examples/invoices")).expect("mkdir");
    std::fs::write(
        template.join("examples/invoices/all.json"),
        serde_json::to_vec(&Value::Array(invoices(repo, docs))).expect("json"),
    )
    .expect("write");
    let postgres = std::env::var("FACTO_BENCH_POSTGRES").ok();
    let connections = env_usize("FACTO_BENCH_CONNECTIONS", 8);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let made = Instant::now();
    for i in 0..tenants {
        let to = dir.join(format!("t{i:05}"));
        copy_dir(&template, &to);
        if let Some(url) = &postgres {
            let cfg = std::fs::read_to_string(to.join("facto.toml")).expect("read");
            std::fs::write(
                to.join("facto.toml"),
                format!("{cfg}\n[ledger]\nurl = \"{url}\"\nnamespace = \"bench-{stamp}-{i}\"\n"),
            )
            .expect("write");
        }
    }
    eprintln!(
        "{tenants} tenant folders made in {:.1} s",
        made.elapsed().as_secs_f64()
    );
    std::fs::write(
        dir.join("deployment.toml"),
        format!("max_parallel_passes = 2\nrescan_secs = 3600\nledger_connections = {connections}\n[daemon]\nlisten = \"127.0.0.1:0\"\nmax_connections = 16\nshutdown_grace_secs = 60\n"),
    )
    .expect("write");
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_facto"))
        .arg("--tenants")
        .arg(dir)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("facto run");
    let pid = child.id();
    let handle = dir.join(".deployment/daemon.json");
    let addr = loop {
        if let Ok(b) = std::fs::read(&handle) {
            let h: Value = serde_json::from_slice(&b).expect("handle");
            break h["addr"].as_str().unwrap_or_default().to_owned();
        }
        assert!(start.elapsed() < Duration::from_secs(600), "no start");
        std::thread::sleep(Duration::from_millis(200));
    };
    let started = start.elapsed().as_secs_f64();
    let token = std::fs::read_to_string(dir.join(".deployment/admin-token"))
        .expect("token")
        .trim()
        .to_owned();
    let want = (tenants * docs) as u64;
    let mut peak = 0u64;
    loop {
        let m = metrics(&addr, &token);
        peak = peak.max(status_field(pid, "VmRSS:"));
        if sum(&m, "state=\"delivered\"") >= want {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3600),
            "not all delivered: {}",
            sum(&m, "state=\"delivered\"")
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let first = start.elapsed().as_secs_f64();
    let rss_first = status_field(pid, "VmRSS:");
    let passes = |m: &str| sum(m, "facto_passes_total{");
    let m0 = metrics(&addr, &token);
    let (p0, c0, s0) = (passes(&m0), cpu_secs(pid), server_cpu_secs());
    std::thread::sleep(Duration::from_secs(window as u64));
    let m1 = metrics(&addr, &token);
    let (p1, c1, s1) = (passes(&m1), cpu_secs(pid), server_cpu_secs());
    let hwm = status_field(pid, "VmHWM:");
    let sessions = postgres.as_deref().map(|url| {
        let mut c = postgres::Client::connect(url, postgres::NoTls).expect("connect");
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&format!("facto deployment {pid}")],
            )
            .expect("count")
            .get(0);
        n
    });
    let failed = sum(&m1, "outcome=\"failed\"") + sum(&m1, "outcome=\"error\"");
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    let incremental = p1.saturating_sub(p0);
    println!("tenants: {tenants}, invoices each: {docs}, max_parallel_passes: 2");
    match sessions {
        Some(n) => println!(
            "ledgers in PostgreSQL, ledger_connections = {connections}: {n} sessions held by the daemon; the server's CPU in steady state {:.1} s ({:.1} ms a pass)",
            s1 - s0,
            (s1 - s0) * 1000.0 / (p1.saturating_sub(p0)).max(1) as f64
        ),
        None => println!("ledgers in sled"),
    }
    println!("daemon up (all tenants loaded): {started:.1} s");
    println!(
        "first full pass, {want} invoices: {first:.1} s ({:.0} invoices/s), RSS then {} MiB (peak seen {} MiB)",
        want as f64 / first,
        rss_first / 1024,
        peak / 1024
    );
    println!(
        "steady state over {window} s: {incremental} incremental passes, {:.1} CPU s ({:.1} ms CPU a pass, {:.0}% of one core), peak RSS {} MiB, failed passes {failed}",
        c1 - c0,
        (c1 - c0) * 1000.0 / incremental.max(1) as f64,
        (c1 - c0) * 100.0 / window as f64,
        hwm / 1024
    );
}
