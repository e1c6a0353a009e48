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
            let c = i % 50;
            let day = 1 + i % 28;
            format!(
                r#"{{"id":"{tag}{i}","number":"{tag}{i:06}","kind":"invoice","status":"final","issue_date":"2026-{m:02}-{day:02}",
"currency":"EUR","updated_at":"2026-{m:02}-{day:02}T10:00:00Z","seller":{{"name":"Bench SAS","siren":"123456782"}},
"buyer":{{"name":"Client {c}","customer_id":"C{c}"}},
"lines":[{{"id":"1","description":"Prestation","quantity":"3","unit_price":"125.50","net_amount":"376.50","gl_account":"CONSEIL","tax_code":"TVA20"}}],
"totals":{{"net":"376.50","tax":"75.30","gross":"451.80","paid":"0.00","due":"451.80"}},
"tax_breakdown":[{{"tax_code":"TVA20","rate":"20.00","base":"376.50","amount":"75.30"}}]}}"#
            )
        })
        .collect();
    format!("[{}]", docs.join(","))
}

fn project(dir: &Path, ledger: &Path) {
    std::fs::create_dir_all(dir.join("connectors")).expect("connectors");
    std::fs::create_dir_all(dir.join("mappings")).expect("mappings");
    std::fs::create_dir_all(dir.join("invoices")).expect("invoices");
    let cfg = format!(
        "data_dir = {:?}\n[company]\nname = \"Bench\"\nsiren = \"123456782\"\n[[job]]\nname = \"shop-0\"\nsource = \"src\"\nmapping = \"m\"\ntargets = [\"books\"]\n",
        ledger.display().to_string()
    );
    std::fs::write(dir.join("facto.toml"), cfg).expect("facto.toml");
    std::fs::write(
        dir.join("connectors/src.toml"),
        "kind = \"json-dir\"\npath = \"invoices\"\npage_size = 500\n",
    )
    .expect("source");
    std::fs::write(
        dir.join("connectors/books.toml"),
        "kind = \"journal-file\"\nformat = \"fec\"\nout_dir = \"out\"\n",
    )
    .expect("target");
    let mut m = String::from(
        "[journal]\ncode = \"VE\"\nlabel = \"Ventes\"\n[customers]\ncollective_account = \"411000\"\n",
    );
    for c in 0..50 {
        m.push_str(&format!("[customers.accounts.C{c}]\naux = \"CC{c}\"\n"));
    }
    m.push_str("[gl.accounts.CONSEIL]\naccount = \"706100\"\nlabel = \"Conseil\"\n[tax.TVA20]\nrate = \"20\"\ncategory = \"S\"\naccount = \"445711\"\n");
    std::fs::write(dir.join("mappings/m.toml"), m).expect("mapping");
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
        if let Some(kib) = std::fs::read_to_string(&status).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        }) {
            hwm = hwm.max(kib / 1024.0);
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

/// Times the commands beside the ledger at `ledger` (not open in this process).
pub(crate) fn commands(ledger: &Path) {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    project(dir, ledger);
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
            project(&only, &empty);
            std::fs::write(only.join("invoices/one.json"), month("CMDE", 3)).expect("month");
            run(&only, &["sync"])
        })
        .collect();
    report("facto sync, the same into an empty ledger", fresh);
}
