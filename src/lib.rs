//! facto: an accounting-integration gateway. Finalized invoices and credit notes flow
//! `source → mapping → checks → format → target`, and the ledger records every transfer so that
//! nothing is sent twice and nothing is lost.

pub mod alerts;
pub mod alloc;
#[cfg(test)]
mod architecture;
pub mod checks;
pub mod cli;
pub mod company;
pub mod config;
pub mod connect;
pub mod daemon;
pub mod einvoice;
pub mod ereporting;
pub mod events;
pub mod fail_on;
pub mod fault;
pub mod format;
pub mod fsutil;
pub mod inbox;
pub mod ledger;
pub mod mapping;
pub mod model;
pub mod par;
pub mod preview;
pub mod problem;
pub mod received;
pub mod report;
pub mod retry;
pub mod route;
pub mod schedule;
pub mod source;
pub mod sync;
pub mod targets;
pub mod toml_file;

/// The tests' "skipped: …" report, one file shared with the integration tests.
#[cfg(test)]
#[allow(unreachable_pub)] // shared with the integration tests, where it is public
#[path = "../tests/common/skip.rs"]
pub(crate) mod test_skip;
