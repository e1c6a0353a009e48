//! Test-only fault injection for the crash-safety tests: when `FACTO_TEST_PAUSE_AT` names a
//! point (`after-claim`, `mid-write`, `after-write`, `after-commit`, `after-publish`, optionally
//! `:N` for its N-th passage and `@target` for one target), the process writes the point's name
//! to `FACTO_TEST_PAUSE_FILE` and sleeps, so that the test can kill it there with SIGKILL.
//! Unset (always, outside tests), it costs one environment lookup per run.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

struct Plan {
    point: String,
    nth: u32,
    target: Option<String>,
    file: Option<String>,
}

/// `point@target` split: the point, and the one target it applies to (all when none is named).
fn for_target(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('@') {
        Some((p, t)) => (p, Some(t)),
        None => (spec, None),
    }
}

fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let spec = std::env::var("FACTO_TEST_PAUSE_AT").ok()?;
        let (spec, target) = for_target(&spec);
        let (spec, target) = (spec.to_owned(), target.map(str::to_owned));
        let (point, nth) = match spec.split_once(':') {
            Some((p, n)) => (p.to_owned(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        };
        Some(Plan {
            point,
            nth,
            target,
            file: std::env::var("FACTO_TEST_PAUSE_FILE").ok(),
        })
    })
    .as_ref()
}

/// Slows a journal file's writer by `FACTO_TEST_SLOW_WRITER_MS` before each page, so that a
/// test sees what the run reads while a page is still on its way to the ledger.
pub fn slow_writer() {
    static MS: OnceLock<Option<u64>> = OnceLock::new();
    let ms = MS.get_or_init(|| {
        std::env::var("FACTO_TEST_SLOW_WRITER_MS")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(ms) = ms {
        std::thread::sleep(std::time::Duration::from_millis(*ms));
    }
}

/// Fails a journal file's write at `name` when `FACTO_TEST_FAIL_AT` names it (`name` or
/// `name@target`): what a full disk does there, for the tests of the rollback.
///
/// # Errors
///
/// The injected failure.
pub fn fail(name: &str, target: &str) -> std::io::Result<()> {
    static SPEC: OnceLock<Option<String>> = OnceLock::new();
    let Some(spec) = SPEC.get_or_init(|| std::env::var("FACTO_TEST_FAIL_AT").ok()) else {
        return Ok(());
    };
    let (point, only) = for_target(spec);
    if point == name && only.is_none_or(|t| t == target) {
        return Err(std::io::Error::other(
            "injected failure (FACTO_TEST_FAIL_AT)",
        ));
    }
    Ok(())
}

/// Marks a point of the delivery; pauses forever there when a test asked for it.
pub fn point(name: &str, target: &str) {
    static HITS: AtomicU32 = AtomicU32::new(0);
    let Some(p) = plan() else { return };
    if p.point != name || p.target.as_deref().is_some_and(|t| t != target) {
        return;
    }
    if HITS.fetch_add(1, Ordering::SeqCst) + 1 != p.nth {
        return;
    }
    if let Some(f) = &p.file {
        let _ = std::fs::write(f, name);
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
