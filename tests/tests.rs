//! Integration tests: they drive the real `facto` binary on copies of the demo configuration in
//! temp folders, and local servers for the HTTP source. One binary, a module per area.

// One test binary: `pub` in its modules is only how they share helpers, never an API.
#![allow(unreachable_pub)]

mod common;

mod alerts;
mod chorus_api;
mod chorus_files;
mod chorus_sim;
mod console_browser;
mod console_documents;
mod console_http;
mod console_mappings;

mod crash;
mod daemon;
mod demo;
mod editor_browser;
mod events;
mod facturx;
mod formats;
mod http_source;
mod lifecycle;
mod pa_api;
mod pa_cashed;
mod pa_cashed_learned;
mod pa_contract;
mod pa_directory;
mod pa_faults;
mod pa_inbox;
mod pa_lifecycle;
mod pa_official;
mod pa_respond;
mod pa_sim;
mod pa_sim_cdar;
mod pa_sim_inbox;
mod pa_sim_lc;
mod pa_sim_webhook;
mod pa_webhook;
mod pennylane_api;
mod pennylane_contract;
mod pennylane_sim;
mod postgres_ledger;
mod purchases;
mod push;
mod reform_demo;
mod regression;
mod tenants;
mod workers;
mod xero_api;
mod xero_bills;
mod xero_calls;
mod xero_contract;
mod xero_sim;
