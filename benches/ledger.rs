//! The ledger's lookups beside a big ledger: `find` by number (`ledger show`), `list` by state
//! across every job (`ledger list --state held`) and a job's lookup of a credit note's invoice
//! by number (Xero, Pennylane). Their cost should follow what they return, not the ledger's size.
//!
//! Run: `FACTO_BENCH_LEDGER=/some/dir cargo bench --bench ledger`. The ledger of
//! FACTO_BENCH_RECORDS records (default 1 000 000: half as many documents, each on two targets,
//! over four jobs; one document in 1 000 held) is built there once and reused by later runs.
//! Each lookup is timed 5 times (min / median / max), then one full scan of the records, as
//! `find` did before the document index, for comparison. With `FACTO_BENCH_REINDEX=1` the
//! document index is dropped and the time to build it again on open is measured too. With
//! `FACTO_BENCH_NO_DOC_INDEX=1` the ledger is built as before the document index existed (no
//! `i\0` entry, no marker; use a fresh folder) and the bench stops; the next run's first open
//! builds it, as an upgrade does.
//! The open itself is timed over 5 reopens (a fresh process: `facto ledger show`, see README).
//! With `FACTO_BENCH_COMMANDS=1` the commands users type are then timed too, each its own
//! `facto` process beside the ledger: `ledger show`, `ledger list --state held`, `preview` and
//! `sync` of 1 000 documents (see `ledger/commands.rs`). Their syncs add records to the ledger.
//! With `FACTO_BENCH_POSTGRES=<url>` the ledger is built (once) in that database instead,
//! namespace `bench-ledger-<records>`, and its lookups and commands timed there.

use std::path::Path;
use std::time::{Duration, Instant};

#[path = "ledger/commands.rs"]
mod commands;
#[path = "common/mod.rs"]
mod common;

// The same allocator as the `facto` binary.
#[global_allocator]
static GLOBAL: facto::alloc::Allocator = facto::alloc::Allocator;

use facto::ledger::sled::{SledLedger, SledStore};
use facto::ledger::store::{Scan, Store, WriteBatch};
use facto::ledger::{Event, Ledger, Record, RecordFilter, RecordKey, State, StoreLedger};
use rust_decimal::Decimal;

const JOBS: usize = 4;
const TARGETS: [&str; 2] = ["books", "accounts"];
const RUNS: usize = 5;
/// Records written per atomic batch while building.
const CHUNK: usize = 10_000;

fn peak_rss_mib() -> f64 {
    common::peak_rss_mib_of("/proc/self/status").unwrap_or(0.0)
}

fn job(d: usize) -> String {
    format!("shop-{}", d % JOBS)
}

fn number(d: usize) -> String {
    format!("F{d:08}")
}

fn state(d: usize) -> State {
    if d % 1000 == 7 {
        State::Held
    } else if d % 997 == 3 {
        State::Failed
    } else {
        State::Delivered
    }
}

/// A record as an API target leaves it: hashes, remote id, a short history.
fn record(d: usize, target: &str) -> Record {
    let now = chrono::Utc::now();
    let key = RecordKey {
        job: job(d),
        target: target.into(),
        doc_id: format!("b{d}"),
    };
    let st = state(d);
    let mut r = Record::new(key, now);
    r.state = st;
    r.number = number(d);
    r.kind = if d % 10 == 9 {
        "credit_note"
    } else {
        "invoice"
    }
    .into();
    r.customer_id = format!("C{}", d % 500);
    r.customer_name = format!("Client {}", d % 500);
    r.issue_date =
        chrono::NaiveDate::from_ymd_opt(2026, 1 + (d / 28 % 12) as u32, 1 + (d % 28) as u32);
    r.gross = Some(Decimal::new(49398 + (d % 1000) as i64, 2));
    r.origin = format!("invoices/part-{:08}.json", d / 1000 * 1000);
    r.source_hash = format!("{:064x}", d as u128 * 7919);
    r.payload_hash = Some(format!("{:064x}", d as u128 * 104_729));
    r.mapping_hash = Some(format!("{:064x}", 42));
    r.idempotency_key = Some(format!("facto-{}-{target}-b{d}", job(d)));
    if st == State::Delivered {
        r.remote_id = Some(format!("{:08x}-0000-4000-8000-{d:012}", d));
        r.remote_status = Some("AUTHORISED".into());
    }
    r.attempts = 1;
    r.history = vec![
        Event {
            at: now,
            state: State::Claimed,
            note: "run 2026-01-31T10:00:00Z".into(),
        },
        Event {
            at: now,
            state: st,
            note: "run 2026-01-31T10:00:00Z".into(),
        },
    ];
    r
}

/// The sled store with every document index write (`i\0` entries, the `m\0index2` marker)
/// left out: a ledger as written before the document index existed.
struct NoDocIndex(SledStore);

impl Store for NoDocIndex {
    fn location(&self) -> &Path {
        self.0.location()
    }
    fn get(&self, key: &[u8]) -> facto::ledger::Result<Option<Vec<u8>>> {
        self.0.get(key)
    }
    fn scan(&self, prefix: &[u8]) -> Scan<'_> {
        self.0.scan(prefix)
    }
    fn apply(&self, batch: WriteBatch) -> facto::ledger::Result<()> {
        let mut b = WriteBatch::default();
        for (k, v) in batch.into_ops() {
            if k.starts_with(b"i\0") || k == b"m\0index2" {
                continue;
            }
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.0.apply(b)
    }
    fn flush(&self) -> facto::ledger::Result<()> {
        self.0.flush()
    }
    fn increment(&self, key: &[u8]) -> facto::ledger::Result<u64> {
        self.0.increment(key)
    }
    fn put_blob(&self, id: u64, file: &mut dyn std::io::Read) -> facto::ledger::Result<()> {
        self.0.put_blob(id, file)
    }
    fn blob(&self, id: u64) -> facto::ledger::Result<Vec<u8>> {
        self.0.blob(id)
    }
    fn remove_blob(&self, id: u64) {
        self.0.remove_blob(id)
    }
}

/// Writes the `n` records of the bench into `l` and marks it built.
fn fill<S: Store>(l: &StoreLedger<S>, path: &Path, n: usize) {
    let t = Instant::now();
    let docs = n / TARGETS.len();
    let mut page = Vec::with_capacity(CHUNK);
    for d in 0..docs {
        for target in TARGETS {
            page.push(record(d, target));
        }
        if page.len() >= CHUNK || d + 1 == docs {
            l.put_records(&page).expect("write records");
            page.clear();
        }
        if d > 0 && d % 100_000 == 0 {
            eprintln!("  {} records in {:.1?}", d * TARGETS.len(), t.elapsed());
        }
    }
    l.put_value("bench-records", &serde_json::json!(n))
        .expect("mark the ledger built");
    println!(
        "built a ledger of {n} records at {} in {:.1?}",
        path.display(),
        t.elapsed(),
    );
}

/// Opens the bench ledger at `path`, building it first unless a complete one of `n` records
/// is there.
fn ledger(path: &Path, n: usize) -> SledLedger {
    if path.exists() {
        let t = Instant::now();
        let l = SledLedger::open(path).expect("open the bench ledger");
        let built = l.value("bench-records").expect("read the ledger");
        if built == Some(serde_json::json!(n)) {
            println!(
                "reused the ledger of {n} records at {} (opened in {:.2?}, {:.0} MiB on disk)",
                path.display(),
                t.elapsed(),
                l.size_on_disk() as f64 / 1048576.0
            );
            return l;
        }
        drop(l);
        std::fs::remove_dir_all(path).expect("remove an incomplete bench ledger");
    }
    if std::env::var_os("FACTO_BENCH_NO_DOC_INDEX").is_some() {
        let store = SledStore::open(path).expect("create the bench ledger");
        let l = StoreLedger::on(NoDocIndex(store)).expect("open the bench ledger");
        fill(&l, path, n);
        l.store().flush().expect("flush the bench ledger");
        drop(l);
        println!(
            "built without the document index: run again without FACTO_BENCH_NO_DOC_INDEX to \
             time its build on the first open (the \"opened in\" figure)"
        );
        std::process::exit(0);
    }
    let l = SledLedger::open(path).expect("create the bench ledger");
    fill(&l, path, n);
    println!("{:.0} MiB on disk", l.size_on_disk() as f64 / 1048576.0);
    l
}

/// Times the lookups commands and targets make, on documents spread over the ledger (a
/// different one each run: nothing cached for it).
fn lookups(l: &dyn Ledger, n: usize) {
    let docs = n / TARGETS.len();
    let doc = |i: usize| (docs / (RUNS + 1)) * (i + 1) + i;
    println!(
        "{:<48} {:>10} {:>10} {:>10}",
        format!("{n} records, {RUNS} runs"),
        "min",
        "median",
        "max"
    );
    time("find by number (ledger show)", |i| {
        l.find(&number(doc(i))).expect("find").len()
    });
    time("find by id", |i| {
        l.find(&format!("b{}", doc(i))).expect("find").len()
    });
    time("find_in_job by number (a credit note's invoice)", |i| {
        let d = doc(i);
        l.find_in_job(&job(d), &number(d)).expect("find").len()
    });
    time("list --state held, every job", |_| {
        l.list(&RecordFilter {
            state: Some(State::Held),
            ..Default::default()
        })
        .expect("list")
        .len()
    });
    time("list --state failed --target accounts", |_| {
        l.list(&RecordFilter {
            target: Some("accounts".into()),
            state: Some(State::Failed),
            ..Default::default()
        })
        .expect("list")
        .len()
    });
}

/// The same ledger in PostgreSQL (namespace `bench-ledger-<n>`, built once and kept), its
/// lookups, and the commands beside it when `FACTO_BENCH_COMMANDS` is set.
fn postgres(url: &str, n: usize) {
    use facto::ledger::postgres::PgStore;
    let ns = format!("bench-ledger-{n}");
    let open = || {
        StoreLedger::on(PgStore::open(url, None, &ns).expect("open PostgreSQL"))
            .expect("open the ledger")
    };
    let t = Instant::now();
    let l = open();
    println!(
        "opened the ledger in PostgreSQL (namespace {ns}) in {:.2?}",
        t.elapsed()
    );
    if l.value("bench-records").expect("read") != Some(serde_json::json!(n)) {
        fill(&l, Path::new(&ns), n);
    }
    lookups(&l, n);
    println!("peak RSS: {:.1} MiB", peak_rss_mib());
    drop(l);
    if std::env::var_os("FACTO_BENCH_COMMANDS").is_some() {
        let data = tempfile::tempdir().expect("temp dir");
        commands::commands(data.path(), Some((url, &ns)));
    }
}

/// Runs `f` [`RUNS`] times (run `i` gets `i`) and prints min / median / max with what the
/// last run returned.
fn time(what: &str, mut f: impl FnMut(usize) -> usize) {
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut found = 0;
    for i in 0..RUNS {
        let t = Instant::now();
        found = f(i);
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "{what:<48} {:>10.3?} {:>10.3?} {:>10.3?}   ({found} records)",
        times[0],
        times[RUNS / 2],
        times[RUNS - 1]
    );
}

fn main() {
    facto::alloc::large_allocations_mapped();
    let n: usize = std::env::var("FACTO_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    if let Ok(url) = std::env::var("FACTO_BENCH_POSTGRES") {
        postgres(&url, n);
        return;
    }
    let Some(path) = std::env::var_os("FACTO_BENCH_LEDGER") else {
        println!(
            "ledger bench skipped: set FACTO_BENCH_LEDGER=/a/dir (the ledger is built there once)"
        );
        return;
    };
    let path = Path::new(&path);
    let mut l = ledger(path, n);
    println!("peak RSS after open: {:.1} MiB", peak_rss_mib());
    let docs = n / TARGETS.len();
    if std::env::var_os("FACTO_BENCH_REINDEX").is_some() {
        let mut b = WriteBatch::default();
        b.remove(&b"m\0index2"[..]);
        l.store().apply(b).expect("drop the document index marker");
        l.store().flush().expect("flush");
        let index: Vec<Vec<u8>> = l
            .store()
            .scan(b"i\0")
            .map(|kv| kv.expect("scan the index").0)
            .collect();
        for chunk in index.chunks(CHUNK) {
            let mut b = WriteBatch::default();
            for k in chunk {
                b.remove(k.as_slice());
            }
            l.store().apply(b).expect("drop the document index");
            l.store().flush().expect("flush");
        }
        drop(index);
        println!(
            "document index dropped (peak RSS so far {:.1} MiB)",
            peak_rss_mib()
        );
        drop(l);
        let t = Instant::now();
        l = SledLedger::open(path).expect("reopen the ledger");
        println!(
            "document index built on open in {:.1?} (peak RSS so far {:.1} MiB)",
            t.elapsed(),
            peak_rss_mib()
        );
    }
    // Open time: closed and opened again, sled's lock let go first (the wait not timed).
    let mut opens: Vec<Duration> = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        drop(l);
        std::thread::sleep(Duration::from_millis(1500));
        let t = Instant::now();
        l = SledLedger::open(path).expect("reopen the ledger");
        opens.push(t.elapsed());
    }
    opens.sort();
    println!(
        "{:<48} {:>10.3?} {:>10.3?} {:>10.3?}   (peak RSS so far {:.1} MiB)",
        "open (reopen of a closed ledger)",
        opens[0],
        opens[RUNS / 2],
        opens[RUNS - 1],
        peak_rss_mib()
    );
    lookups(&l, n);
    let doc = |i: usize| (docs / (RUNS + 1)) * (i + 1) + i;
    // What `find` did before the index: every record read and decoded, once.
    let t = Instant::now();
    let mut matched = 0;
    let wanted = number(doc(0));
    for kv in l.store().scan(b"r\0") {
        let (_, v) = kv.expect("scan");
        let r: Record = serde_json::from_slice(&v[9..]).expect("decode");
        matched += usize::from(r.number == wanted);
    }
    println!(
        "{:<48} {:>10.3?}   ({matched} records; one run, for comparison)",
        "full scan of the records (find before the index)",
        t.elapsed()
    );
    println!("peak RSS: {:.1} MiB", peak_rss_mib());
    // The commands, each its own process: this one lets the ledger go first.
    if std::env::var_os("FACTO_BENCH_COMMANDS").is_some() {
        drop(l);
        std::thread::sleep(Duration::from_millis(1500));
        commands::commands(path, None);
    }
}
