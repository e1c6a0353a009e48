//! Throughput and memory of the offline pipeline: N synthetic documents (FACTO_BENCH_N, default
//! 100 000) in a json-dir source, then `sync` (map → check → FEC file → ledger, durable), then a
//! second `sync` with nothing new. Prints documents per second and the peak resident memory.
//!
//! Run: `cargo bench --bench pipeline` (or `FACTO_BENCH_N=10000 cargo bench --bench pipeline`).
//! With `FACTO_BENCH_TRACE=1` it also prints the resident memory every 200 ms, to stderr.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

// The same allocator as the `facto` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use facto::config::Config;
use facto::ledger::sled::SledLedger;
use facto::sync::{run_job, Mode, RunOptions};

const PER_FILE: usize = 1000;

fn doc(i: usize) -> String {
    let customer = i % 50;
    let day = 1 + i % 28;
    let month = 1 + (i / 28) % 12;
    // Two lines: 3 × 125.50 at 20 % and 2 × 19.99 at 5.5 %.
    format!(
        r#"{{"id":"b{i}","number":"F{i:08}","kind":"{kind}","status":"final","issue_date":"2026-{month:02}-{day:02}",
"due_date":"2026-12-31","currency":"EUR","updated_at":"2026-{month:02}-{day:02}T10:00:00Z",
"seller":{{"name":"Bench SAS","siren":"123456782"}},
"buyer":{{"name":"Client {customer}","customer_id":"C{customer}"}},
"lines":[{{"id":"1","description":"Prestation de conseil","quantity":"3","unit":"HUR","unit_price":"125.50","net_amount":"376.50","gl_account":"CONSEIL","tax_code":"TVA20"}},
{{"id":"2","description":"Livre technique","quantity":"2","unit_price":"19.99","net_amount":"39.98","product_code":"PRD-LIVRE","tax_code":"TVA55"}}],
"totals":{{"net":"416.48","tax":"77.50","gross":"493.98","paid":"0.00","due":"493.98"}},
"tax_breakdown":[{{"tax_code":"TVA20","rate":"20.00","base":"376.50","amount":"75.30"}},{{"tax_code":"TVA55","rate":"5.50","base":"39.98","amount":"2.20"}}]}}"#,
        kind = if i % 10 == 9 {
            "credit_note"
        } else {
            "invoice"
        },
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
    std::fs::create_dir_all(dir.join("connectors")).unwrap();
    std::fs::create_dir_all(dir.join("mappings")).unwrap();
    std::fs::write(
        dir.join("facto.toml"),
        "[company]\nname = \"Bench\"\nsiren = \"123456782\"\n[[job]]\nname = \"bench\"\nsource = \"src\"\nmapping = \"m\"\ntargets = [\"fec\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("connectors/src.toml"),
        "kind = \"json-dir\"\npath = \"invoices\"\npage_size = 2000\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("connectors/fec.toml"),
        "kind = \"journal-file\"\nformat = \"fec\"\nout_dir = \"out\"\n",
    )
    .unwrap();
    let mut m = String::from(
        "[journal]\ncode = \"VE\"\nlabel = \"Journal des ventes\"\n[customers]\ncollective_account = \"411000\"\n",
    );
    for c in 0..50 {
        m.push_str(&format!(
            "[customers.accounts.C{c}]\naux = \"CCLIENT{c}\"\n"
        ));
    }
    m.push_str(
        "[gl.accounts.CONSEIL]\naccount = \"706100\"\nlabel = \"Conseil\"\n[gl.products.PRD-LIVRE]\naccount = \"707100\"\nlabel = \"Livres\"\n\
         [tax.TVA20]\nrate = \"20\"\ncategory = \"S\"\naccount = \"445711\"\n[tax.TVA55]\nrate = \"5.5\"\ncategory = \"S\"\naccount = \"445713\"\n",
    );
    std::fs::write(dir.join("mappings/m.toml"), m).unwrap();
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
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

    let cfg = Config::load(&dir.path().join("facto.toml"), None).unwrap();
    let ledger = SledLedger::open(&cfg.data_dir).unwrap();
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
        .block_on(run_job(&cfg, &ledger, job, &Mode::Sync, &opts))
        .unwrap();
    let first = t.elapsed();
    assert_eq!(report.targets[0].delivered, n as u64, "{}", report.render());
    let rss = peak_rss_mib();

    let t = Instant::now();
    let again = rt
        .block_on(run_job(&cfg, &ledger, job, &Mode::Sync, &opts))
        .unwrap();
    let second = t.elapsed();
    assert_eq!(again.targets[0].delivered, 0);
    assert_eq!(again.targets[0].already_delivered, n as u64);

    let file = dir.path().join(&report.batches[0].path);
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!(
        "first sync: {n} documents in {first:.2?} = {:.0} documents/s (FEC file {:.1} MiB, ledger {:.1} MiB on disk)",
        n as f64 / first.as_secs_f64(),
        size as f64 / 1048576.0,
        ledger.size_on_disk() as f64 / 1048576.0
    );
    println!("second sync (nothing new, {n} documents in the ledger): {second:.2?}");
    println!("peak RSS: {rss:.1} MiB");
}
