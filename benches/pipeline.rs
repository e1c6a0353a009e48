//! Throughput and memory of the offline pipeline: N synthetic documents (FACTO_BENCH_N, default
//! 100 000) in a json-dir source, then `sync` (map → check → FEC file → ledger, durable), then a
//! second `sync` with nothing new. Prints documents per second and the peak resident memory.
//!
//! Run: `cargo bench --bench pipeline` (or `FACTO_BENCH_N=10000 cargo bench --bench pipeline`).
//! With `FACTO_BENCH_TRACE=1` it also prints the resident memory every 200 ms, to stderr.
//! With `FACTO_BENCH_POSTGRES=postgres://user@host:port/db` the ledger is in that database (a
//! namespace of its own, removed at the end) instead of sled: `.ci/postgres.sh` starts a server.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

// The same allocator as the `facto` binary.
#[global_allocator]
static GLOBAL: facto::alloc::Allocator = facto::alloc::Allocator;

use facto::config::Config;
use facto::sync::{run_job, Mode, RunOptions};

#[path = "common/mod.rs"]
mod common;

const PER_FILE: usize = 1000;

/// Document `i` of the bench: one in ten a credit note, spread over the year and 50 customers.
fn doc(i: usize) -> String {
    let date = format!("2026-{:02}-{:02}", 1 + (i / 28) % 12, 1 + i % 28);
    common::doc(
        &format!("b{i}"),
        &format!("F{i:08}"),
        &date,
        i % 50,
        i % 10 == 9,
    )
}

fn setup(dir: &Path, n: usize) {
    let inv = dir.join("invoices");
    std::fs::create_dir_all(&inv).unwrap();
    let mut i = 0;
    while i < n {
        let end = (i + PER_FILE).min(n);
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(inv.join(format!("part-{i:08}.json"))).unwrap(),
        );
        f.write_all(b"[").unwrap();
        for k in i..end {
            if k > i {
                f.write_all(b",").unwrap();
            }
            f.write_all(doc(k).as_bytes()).unwrap();
        }
        f.write_all(b"]").unwrap();
        i = end;
    }
    common::project(dir, "bench", "fec", None, 2000);
}

fn peak_rss_mib() -> f64 {
    common::peak_rss_mib_of("/proc/self/status").unwrap_or(f64::NAN)
}

fn main() {
    facto::alloc::large_allocations_mapped();
    // `cargo bench` passes `--bench`; nothing else is expected.
    let n: usize = std::env::var("FACTO_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    setup(dir.path(), n);
    println!(
        "generated {n} documents in {:.2?} (peak RSS so far {:.1} MiB)",
        t.elapsed(),
        peak_rss_mib()
    );

    let postgres = std::env::var("FACTO_BENCH_POSTGRES").ok();
    let ns = format!("bench-{}", std::process::id());
    if let Some(url) = &postgres {
        let path = dir.path().join("facto.toml");
        let cfg = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            format!("{cfg}\n[ledger]\nurl = \"{url}\"\nnamespace = \"{ns}\"\n"),
        )
        .unwrap();
    }
    let cfg = Config::load(&dir.path().join("facto.toml"), None).unwrap();
    let shared = cfg.open_ledger().unwrap();
    let ledger = &*shared;
    println!(
        "ledger: {}",
        if postgres.is_some() {
            "PostgreSQL"
        } else {
            "sled"
        }
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let opts = RunOptions {
        dry_run: false,
        today: chrono::Local::now().date_naive(),
        progress: None,
    };
    let job = &cfg.jobs[0];

    if std::env::var("FACTO_BENCH_TRACE").is_ok() {
        let t0 = Instant::now();
        std::thread::spawn(move || loop {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let rss = status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .unwrap_or("");
            eprintln!("{:>7.2}s {rss}", t0.elapsed().as_secs_f64());
            std::thread::sleep(std::time::Duration::from_millis(200));
        });
    }
    let t = Instant::now();
    let report = rt
        .block_on(run_job(&cfg, ledger, job, &Mode::Sync, &opts))
        .unwrap();
    let first = t.elapsed();
    assert_eq!(report.targets[0].delivered, n as u64, "{}", report.render());
    let rss = peak_rss_mib();

    let t = Instant::now();
    let again = rt
        .block_on(run_job(&cfg, ledger, job, &Mode::Sync, &opts))
        .unwrap();
    let second = t.elapsed();
    assert_eq!(again.targets[0].delivered, 0);
    assert_eq!(again.targets[0].already_delivered, n as u64);

    let file = dir.path().join(&report.batches[0].path);
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let on_disk = ledger
        .size_on_disk()
        .map(|b| format!(", ledger {:.1} MiB on disk", b as f64 / 1048576.0))
        .unwrap_or_default();
    println!(
        "first sync: {n} documents in {first:.2?} = {:.0} documents/s (FEC file {:.1} MiB{on_disk})",
        n as f64 / first.as_secs_f64(),
        size as f64 / 1048576.0,
    );
    println!("second sync (nothing new, {n} documents in the ledger): {second:.2?}");
    println!("peak RSS: {rss:.1} MiB");
    if let Some(url) = &postgres {
        // The bench's namespace goes once its ledger is closed.
        drop(shared);
        if let Err(e) =
            facto::ledger::postgres::PgStore::open(url, None, &ns).and_then(|s| s.drop_namespace())
        {
            eprintln!("the bench's namespace {ns} was not removed: {e}");
        }
    }
}
