//! Supplier invoices into Xero as bills (issue 15 §3), through the real binary and the Xero fake:
//! a purchases job whose target is Xero sends the received invoices as `ACCPAY` bills and the
//! credit note as an `ACCPAYCREDIT` allocated to the supplier's bill, each supplier a contact
//! numbered by its SIREN; exactly once across runs and a lost answer (the lookup knows a bill
//! from a sale of the same number). A purchases job may not send to a PA, Chorus Pro or
//! Pennylane: it is refused with its line.

use serde_json::Value;

use crate::common::{json_of, kill_at, target, with_json, Project};
use crate::xero_api::{command, connected};
use crate::xero_sim::Sim;

const PURCHASES: &str = "\n[[job]]\nname = \"achats\"\nsource = \"received\"\nmapping = \"pcg-achats\"\ntargets = [\"xero\"]\n";

/// The demo connected to the Xero fake, with the `achats` job sending the three received
/// supplier invoices to it, and the purchase mapping's Xero tax type.
async fn project(sim: &Sim) -> Project {
    {
        let mut s = sim.state.lock().unwrap();
        s.accounts
            .extend(["623600".to_owned(), "606400".to_owned()]);
        s.tax_types.push("INPUT2".into());
    }
    let p = connected(sim, "").await;
    let m = p.read("mappings/pcg-achats.toml").replace(
        "account = \"445660\"\n",
        "account = \"445660\"\nxero_tax_type = \"INPUT2\"\n",
    );
    p.write("mappings/pcg-achats.toml", &m);
    p.write("facto.toml", &(p.read("facto.toml") + PURCHASES));
    p
}

async fn sync(p: &Project) -> (i32, Value) {
    let (code, v, err) = json_of(command(p, &with_json(&["sync", "--job", "achats"]))).await;
    assert!(v.is_object(), "{err}");
    (code, v)
}

fn docs(sim: &Sim) -> Vec<(String, String, String)> {
    sim.state
        .lock()
        .unwrap()
        .docs
        .iter()
        .map(|d| {
            let number = d["InvoiceNumber"]
                .as_str()
                .or(d["CreditNoteNumber"].as_str())
                .unwrap_or("")
                .to_owned();
            let t = d["Type"].as_str().unwrap_or("").to_owned();
            let c = d["Contact"]["ContactNumber"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            (number, t, c)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn supplier_invoices_become_bills_of_their_suppliers_once() {
    let sim = Sim::start().await;
    let p = project(&sim).await;
    let (code, r) = sync(&p).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(target(&r, "xero")["delivered"], 3, "{r}");
    let own = |n: &str, t: &str, c: &str| (n.to_owned(), t.to_owned(), c.to_owned());
    let mut sent = docs(&sim);
    sent.sort();
    assert_eq!(
        sent,
        [
            own("FA-2026-0457", "ACCPAY", "380129866"),
            own("IMP-2026-0118", "ACCPAY", "732829320"),
            own("IMP-AV-2026-0007", "ACCPAYCREDIT", "732829320"),
        ]
    );
    {
        let s = sim.state.lock().unwrap();
        let numbers: Vec<&str> = s.contacts.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(
            numbers,
            ["380129866", "732829320"],
            "one contact per supplier"
        );
        // The credit note is allocated to the bill it credits.
        assert_eq!(s.allocations.len(), 1, "{:?}", s.allocations);
        let bill = s
            .docs
            .iter()
            .find(|d| d["InvoiceNumber"] == "IMP-2026-0118")
            .unwrap()["InvoiceID"]
            .clone();
        assert_eq!(s.allocations[0].1, bill.as_str().unwrap());
    }
    let (code, r) = sync(&p).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(target(&r, "xero")["delivered"], 0, "{r}");
    crate::common::assert_once(&sim.created(), 3, "created");
}

/// Killed right after the bills were sent; a sale of the same number is in Xero too. The next
/// run finds the bills by number, type and supplier, sends nothing twice, and does not take the
/// sale for a bill.
#[tokio::test(flavor = "multi_thread")]
async fn a_kill_after_the_send_is_settled_by_the_bills_of_the_same_supplier() {
    kill_then_settle(false).await;
}

/// The same when Xero names a document's contact by its id only: the suppliers' contacts are
/// looked up by number, and their ids decide.
#[tokio::test(flavor = "multi_thread")]
async fn a_kill_after_the_send_is_settled_by_contact_ids_when_xero_gives_no_numbers() {
    kill_then_settle(true).await;
}

async fn kill_then_settle(unnumbered: bool) {
    let sim = Sim::start().await;
    sim.state.lock().unwrap().contacts_unnumbered = unnumbered;
    let p = project(&sim).await;
    kill_at(
        command(&p, &["sync", "--job", "achats"]),
        "after-send:1@xero",
        &p.path("paused"),
    )
    .await;
    assert_eq!(
        sim.created().len(),
        2,
        "the bills were sent, the credit note not"
    );
    // The supplier is a customer too, under the same number (its SIREN), with a sale numbered
    // like its bill.
    let contact = if unnumbered {
        serde_json::json!({"ContactID": "x"})
    } else {
        serde_json::json!({"ContactID": "x", "ContactNumber": "380129866"})
    };
    sim.state.lock().unwrap().docs.push(serde_json::json!({
        "InvoiceID": "sale-0001", "InvoiceNumber": "FA-2026-0457", "Status": "AUTHORISED",
        "Type": "ACCREC", "Contact": contact}));
    // Another supplier's bill of the same number, listed first.
    sim.state.lock().unwrap().docs.insert(
        0,
        serde_json::json!({
        "InvoiceID": "other-0001", "InvoiceNumber": "FA-2026-0457", "Status": "AUTHORISED",
        "Type": "ACCPAY", "Contact": {"ContactID": "c-other"}}),
    );
    let (code, r) = sync(&p).await;
    assert_eq!(code, 0, "{r}");
    assert!(
        r["statuses"].to_string().contains("found in Xero"),
        "settled by the lookup: {r}"
    );
    let (_, list) = p.json(&["ledger", "list", "--job", "achats", "--target", "xero"]);
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(list.iter().all(|r| r["state"] == "delivered"), "{list:?}");
    let ids: Vec<&str> = list
        .iter()
        .filter_map(|r| r["remote_id"].as_str())
        .collect();
    assert!(!ids.contains(&"sale-0001"), "a sale is not a bill: {ids:?}");
    assert!(
        !ids.contains(&"other-0001"),
        "nor another supplier's bill: {ids:?}"
    );
    crate::common::assert_once(&sim.created(), 3, "created");
}

#[test]
fn a_purchases_job_may_not_send_to_a_pa_or_chorus_pro() {
    for (target, connector) in [
        ("pa", "kind = \"afnor-pa\"\napi_url = \"http://127.0.0.1:9/flow-service\"\nbearer_token_env = \"PA_TOKEN\"\n"),
        ("chorus-files", "kind = \"journal-file\"\nformat = \"chorus-ubl\"\nout_dir = \"out/chorus\"\n"),
    ] {
        let p = Project::demo();
        p.write(&format!("connectors/{target}.toml"), connector);
        let job = PURCHASES.replace("[\"xero\"]", &format!("[\"{target}\"]"));
        p.write("facto.toml", &(p.read("facto.toml") + &job));
        let out = p.run(&["sync", "--job", "achats"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("books supplier invoices") && err.contains(&format!("`{target}`")),
            "{err}"
        );
    }
}
