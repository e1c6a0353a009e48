//! Regression tests: one test per bug fixed, named after what it pins (issue "Keep the promise at
//! the edges"). Each drives the real binary or the library and fails without its fix.

#![allow(unused_imports)]

use crate::common::*;

// ── 1. Secrets and files ────────────────────────────────────────────────────────────────────────

// end of section 1

// ── 2. Never twice ──────────────────────────────────────────────────────────────────────────────

// end of section 2

// ── 3. No hang, no panic, no wedge; 4. documents that are always valid ─────────────────────────

// end of sections 3 and 4

// ── 5. What the accountant receives; 6. source documents ────────────────────────────────────────

// end of sections 5 and 6

// ── 7. The admin API and the daemon; 8. packaging and operations ────────────────────────────────

// end of sections 7 and 8
