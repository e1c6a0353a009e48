//! The commands a user types, timed beside the bench's big ledger: `facto ledger show`,
//! `facto ledger list --state held`, `facto preview` of a month of 1 000 documents and `facto
//! sync` of 1 000 new ones, each run as its own process (so each opens the ledger, as a user's
//! command does). Peak RSS is the child's high-water mark (`VmHWM`), read until it exits.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 3;
const DOCS: usize = 1000;

/// One month of `DOCS` documents of job `shop-0`, ids and numbers prefixed by `tag`.
fn month(tag: &str, m: u32) -> String {
    let docs: Vec<String> = (0..DOCS)
        .map(|i| {
            let date = format!("2026-{m:02}-{:02}", 1 + i % 28);
            super::common::doc(
                &format!("{tag}{i}"),
                &format!("{tag}{i:06}"),
                &date,
                i % 50,
                false,
            )
        })
        .collect();
    format!("[{}]", docs.join(","))
}

/// The project beside the big ledger: sled's folder `ledger`, or with `pg` (URL, namespace) that
/// PostgreSQL namespace.
fn project(dir: &Path, ledger: &Path, pg: Option<(&str, &str)>) {
    match pg {
        None => super::common::project(dir, "shop-0", "books", Some(ledger), 500),
        Some((url, ns)) => {
            super::common::project(dir, "shop-0", "books", None, 500);
            let cfg = std::fs::read_to_string(dir.join("facto.toml")).expect("facto.toml");
            std::fs::write(
                dir.join("facto.toml"),
                format!("{cfg}[ledger]\nurl = \"{url}\"\nnamespace = \"{ns}\"\n"),
            )
            .expect("facto.toml");
        }
    }
}

/// Runs `facto args` in `dir`: wall time, peak RSS in MiB, exit code.
fn run(dir: &Path, args: &[&str]) -> (Duration, f64, i32) {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_facto"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start facto");
    let status = format!("/proc/{}/status", child.id());
    let mut hwm = 0.0f64;
    let code = loop {
        if let Some(mib) = super::common::peak_rss_mib_of(&status) {
            hwm = hwm.max(mib);
        }
        if let Some(st) = child.try_wait().expect("wait") {
            break st.code().unwrap_or(-1);
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    (t.elapsed(), hwm, code)
}

fn report(what: &str, mut runs: Vec<(Duration, f64, i32)>) {
    runs.sort_by_key(|r| r.0);
    let rss: Vec<f64> = runs.iter().map(|r| r.1).collect();
    let lo = rss.iter().copied().fold(f64::MAX, f64::min);
    let hi = rss.iter().copied().fold(0.0, f64::max);
    let codes: Vec<i32> = runs.iter().map(|r| r.2).collect();
    println!(
        "{what:<48} {:>10.3?} {:>10.3?} {:>10.3?}   peak RSS {lo:.0}–{hi:.0} MiB, exit {codes:?}",
        runs[0].0,
        runs[runs.len() / 2].0,
        runs[runs.len() - 1].0,
    );
}

/// Times the commands beside the ledger at `ledger`, or in PostgreSQL with `pg` (URL,
/// namespace); not open in this process.
pub(crate) fn commands(ledger: &Path, pg: Option<(&str, &str)>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    project(dir, ledger, pg);
    std::fs::write(dir.join("invoices/march.json"), month("CMDM", 3)).expect("month");
    println!(
        "{:<48} {:>10} {:>10} {:>10}",
        format!("commands, {RUNS} runs each"),
        "min",
        "median",
        "max"
    );
    let show: Vec<_> = (0..RUNS)
        .map(|_| run(dir, &["ledger", "show", "F00001234"]))
        .collect();
    report("facto ledger show F00001234", show);
    let held: Vec<_> = (0..RUNS)
        .map(|_| run(dir, &["ledger", "list", "--state", "held"]))
        .collect();
    report("facto ledger list --state held", held);
    let preview: Vec<_> = (0..RUNS)
        .map(|_| {
            run(
                dir,
                &["preview", "--from", "2026-03-01", "--to", "2026-03-31"],
            )
        })
        .collect();
    report("facto preview (a month of 1 000 documents)", preview);
    // The first sync of a job registers its numbers once (not timed with the others).
    let (t, rss, code) = run(dir, &["sync"]);
    println!(
        "{:<48} {t:>10.3?}   peak RSS {rss:.0} MiB, exit {code} (once per job)",
        "facto sync, first of the job"
    );
    let sync: Vec<_> = (0..RUNS)
        .map(|k| {
            let tag = format!("CMD{}{k}", std::process::id());
            std::fs::write(
                dir.join(format!("invoices/{tag}.json")),
                month(&tag, 4 + k as u32),
            )
            .expect("month");
            run(dir, &["sync"])
        })
        .collect();
    report("facto sync (1 000 new documents)", sync);
    let empty = dir.join("empty-ledger");
    let fresh: Vec<_> = (0..RUNS)
        .map(|k| {
            let _ = std::fs::remove_dir_all(&empty);
            let only = dir.join(format!("only-{k}"));
            let ns = pg.map(|(url, ns)| (url, format!("{ns}-empty-{}-{k}", std::process::id())));
            project(&only, &empty, ns.as_ref().map(|(u, n)| (*u, n.as_str())));
            std::fs::write(only.join("invoices/one.json"), month("CMDE", 3)).expect("month");
            let r = run(&only, &["sync"]);
            if let Some((url, ns)) = &ns {
                if let Ok(s) = facto::ledger::postgres::PgStore::open(url, None, ns) {
                    let _ = s.drop_namespace();
                }
            }
            r
        })
        .collect();
    report("facto sync, the same into an empty ledger", fresh);
}
