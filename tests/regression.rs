//! Regression tests: one test per bug fixed, named after what it pins (issue "Keep the promise at
//! the edges"). Each drives the real binary or the library and fails without its fix. One module
//! per area of that issue.

mod accountant;
mod daemon;
mod files;
mod ledger_keys;
mod never_twice;
mod ops;
mod pipeline;
mod robust;
