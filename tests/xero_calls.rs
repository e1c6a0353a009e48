//! What a Xero sync costs in calls (issue 14), counted per endpoint by the fake: a first sync of
//! 200 documents (180 invoices and 20 credit notes of 50 customers) looks the contacts up and
//! creates the missing ones in bulk, allocates the credit notes in one call and does not poll
//! the invoices it has just sent; a contact Xero refuses holds only its customer's documents.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::common::{json_of, target, with_json, Project};
use crate::xero_api::{command, connected};
use crate::xero_sim::Sim;

pub const INVOICES: usize = 180;
pub const CREDIT_NOTES: usize = 20;
pub const CUSTOMERS: usize = 50;
pub const DOCUMENTS: usize = INVOICES + CREDIT_NOTES;

/// Replaces the demo's documents: invoice `i` goes to customer `i % CUSTOMERS`, and each of the
/// first `CREDIT_NOTES` invoices is credited in full.
pub fn many_documents(p: &Project) {
    let template = p.read_json("examples/new-invoice.json");
    let mut m = p.read("mappings/pcg-demo.toml");
    for c in 0..CUSTOMERS {
        m.push_str(&format!(
            "\n[customers.accounts.K{c:03}]\naux = \"K{c:03}\"\nlabel = \"Client {c}\"\n"
        ));
    }
    p.write("mappings/pcg-demo.toml", &m);
    std::fs::remove_dir_all(p.path("examples/invoices")).unwrap();
    for i in 0..INVOICES {
        let c = i % CUSTOMERS;
        let mut d = template.clone();
        d["id"] = json!(format!("inv-{i:04}"));
        d["number"] = json!(format!("F-{i:04}"));
        d["purchase_order"] = Value::Null;
        d["buyer"]["customer_id"] = json!(format!("K{c:03}"));
        d["buyer"]["name"] = json!(format!("Client {c}"));
        p.write_json(&format!("examples/invoices/inv-{i:04}.json"), &d);
        if i < CREDIT_NOTES {
            d["id"] = json!(format!("avoir-{i:04}"));
            d["number"] = json!(format!("A-{i:04}"));
            d["kind"] = json!("credit_note");
            d["preceding_invoice"] = json!(format!("F-{i:04}"));
            d["preceding_invoice_date"] = d["issue_date"].clone();
            p.write_json(&format!("examples/invoices/avoir-{i:04}.json"), &d);
        }
    }
}

pub async fn sync(p: &Project) -> Value {
    json_of(command(p, &with_json(&["sync"]))).await.1
}

pub fn calls_since(sim: &Sim, before: &BTreeMap<String, u32>) -> BTreeMap<String, u32> {
    let s = sim.state.lock().unwrap();
    s.api_calls
        .iter()
        .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_sync_of_200_documents_costs_at_most_0_06_calls_each() {
    let sim = Sim::start().await;
    let p = connected(&sim, "").await;
    many_documents(&p);
    let before = sim.state.lock().unwrap().api_calls.clone();
    let r = sync(&p).await;
    assert_eq!(target(&r, "xero")["delivered"], DOCUMENTS as u64, "{r}");
    assert!(r["error"].is_null(), "{r}");
    crate::common::assert_once(&sim.created(), DOCUMENTS, "created");
    let calls = calls_since(&sim, &before);
    let expected: BTreeMap<String, u32> = [
        ("GET /Accounts", 1),
        ("GET /TaxRates", 1),
        // 50 customers: one lookup, the missing ones created in one call.
        ("GET /Contacts", 1),
        ("PUT /Contacts", 1),
        // 180 invoices in batches of 50, 20 credit notes in one.
        ("PUT /Invoices", 4),
        ("PUT /CreditNotes", 1),
        // The 20 allocations in one call; no poll of the invoices just sent.
        ("POST /CreditNotes", 1),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n))
    .collect();
    assert_eq!(calls, expected);
    let total: u32 = calls.values().sum();
    let per_document = f64::from(total) / DOCUMENTS as f64;
    assert!(per_document <= 0.06, "{per_document} calls per document");
    {
        let s = sim.state.lock().unwrap();
        assert_eq!(s.created_contacts as usize, CUSTOMERS);
        assert_eq!(
            s.allocations.len(),
            CREDIT_NOTES,
            "every credit note allocated"
        );
    }
    let (_, recs) = p.json(&["ledger", "list", "--target", "xero", "--state", "delivered"]);
    let statuses: Vec<&str> = recs
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["kind"] == "credit_note")
                .filter_map(|r| r["remote_status"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(statuses.len(), CREDIT_NOTES, "{recs}");
    assert!(
        statuses.iter().all(|s| s.starts_with("allocated to F-")),
        "{statuses:?}"
    );

    // The next sync sends nothing and looks no contact up: it follows the invoices' statuses.
    let before = sim.state.lock().unwrap().api_calls.clone();
    let r = sync(&p).await;
    assert_eq!(target(&r, "xero")["delivered"], 0, "{r}");
    let calls = calls_since(&sim, &before);
    assert!(
        calls.keys().all(|k| k.starts_with("GET /Invoices")
            || k == "GET /Accounts"
            || k == "GET /TaxRates"),
        "{calls:?}"
    );
    crate::common::assert_once(&sim.created(), DOCUMENTS, "created");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_contact_xero_refuses_holds_only_its_customers_documents() {
    let sim = Sim::start().await;
    let p = connected(&sim, "").await;
    many_documents(&p);
    sim.state
        .lock()
        .unwrap()
        .reject_contacts
        .push("K007".into());
    let r = sync(&p).await;
    // K007: invoices 7, 57, 107 and 157, and the credit note of invoice 7.
    assert_eq!(target(&r, "xero")["delivered"], DOCUMENTS as u64 - 5, "{r}");
    assert!(r["error"].is_null(), "{r}");
    let problems = r["problems"].to_string();
    assert!(
        problems.contains("Xero did not create contact K007")
            && problems.contains("unique across all active contacts"),
        "{problems}"
    );
    let (_, held) = p.json(&["ledger", "list", "--target", "xero", "--state", "held"]);
    assert_eq!(held.as_array().map(Vec::len), Some(5), "{held}");

    // Corrected in Xero: the next sync creates the contact and delivers the five, once.
    sim.state.lock().unwrap().reject_contacts.clear();
    let r = sync(&p).await;
    assert_eq!(target(&r, "xero")["delivered"], 5, "{r}");
    crate::common::assert_once(&sim.created(), DOCUMENTS, "created");
    let s = sim.state.lock().unwrap();
    assert_eq!(s.created_contacts as usize, CUSTOMERS);
    assert_eq!(s.allocations.len(), CREDIT_NOTES);
}
