//! How a test says it could not run for lack of a tool (xmllint, Chromium, Prism, a Python
//! package, `../shared`). Shared by the integration tests and, through `#[path]`, the unit tests.
//!
//! libtest prints `ok` for a test that returns early and captures what `println!`/`eprintln!`
//! print, so a skip would look like a pass. The line is therefore written straight to the
//! process's standard error (which the capture does not intercept) when the test skips, and the
//! skipped tests are listed again after libtest's summary, the last thing the run prints.
//! Under `CI=true` a missing tool is a failure instead: CI always has every tool.

use std::io::Write as _;
use std::sync::{Mutex, Once};

static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static AT_EXIT: Once = Once::new();

extern "C" {
    fn atexit(f: extern "C" fn()) -> std::os::raw::c_int;
}

extern "C" fn list_skipped() {
    let skipped = SKIPPED.lock().map(|v| v.clone()).unwrap_or_default();
    if skipped.is_empty() {
        return;
    }
    let mut s = format!(
        "\nskipped: {} test(s) did not run their check (a tool is missing; CI=true makes this a failure):\n",
        skipped.len()
    );
    for line in skipped {
        s.push_str(&format!("  skipped: {line}\n"));
    }
    let _ = std::io::stderr().write_all(s.as_bytes());
}

/// Records that the current test skips its check for `reason` (what is missing and how to get
/// it). Panics under `CI=true`; otherwise prints `skipped: <test>: <reason>` past the capture
/// and lists it again at the end of the run.
pub fn skip(reason: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {reason}"
    );
    let test = std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("a test")
        .to_owned();
    let line = format!("{test}: {reason}");
    let _ = std::io::stderr().write_all(format!("skipped: {line}\n").as_bytes());
    // Under --nocapture the line above is already seen; with the capture, the test's own output
    // (shown if it fails) keeps it too.
    println!("skipped: {line}");
    AT_EXIT.call_once(|| {
        // SAFETY: `atexit` from the C library registers a plain function with no captured state;
        // libtest's process ends through `exit` (or a return from `main`), which runs it.
        unsafe {
            atexit(list_skipped);
        }
    });
    if let Ok(mut v) = SKIPPED.lock() {
        v.push(line);
    }
}
