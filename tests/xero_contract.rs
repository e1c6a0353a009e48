//! Contract test: every request facto sends to Xero in a full sync is accepted by Prism serving
//! Xero's official OpenAPI file, made strict by `../shared/reference/openapi/inline_request_schemas.py`
//! (no `$ref` left, no unknown field), and a deliberately broken request is refused.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{target, Project};
use crate::pennylane_contract::{prism, send_bad, start};

fn python_with_yaml() -> Option<PathBuf> {
    let py = std::env::var_os("FACTO_CONTRACT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&py)
        .args(["-c", "import yaml"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    crate::common::skip("no Python with PyYAML for the contract inliner (.ci/run installs it)");
    None
}

#[test]
fn every_request_of_a_sync_is_valid_against_the_xero_contract() {
    let (Some((bin, _)), Some(py)) = (prism(), python_with_yaml()) else {
        return;
    };
    let shared = crate::common::repo().join("../shared/reference/openapi");
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("xero.yaml");
    crate::common::tool_ok(Command::new(&py)
        .arg(shared.join("inline_request_schemas.py"))
        .arg(shared.join("xero/xero_accounting.yaml"))
        .arg(&spec)
        .args(["--strict", "--add-429", "--paths"])
        .arg("/Invoices,/CreditNotes,/CreditNotes/{CreditNoteID}/Allocations,/Contacts,/Accounts,/TaxRates"));
    // Xero's own examples break some of its response schemas ("Code": 91), so only requests
    // are held to the contract here.
    let mock = start(&bin, &spec, &dir.path().join("prism.log"), false);
    let base = format!("http://127.0.0.1:{}", mock.port);

    let p = Project::demo_with_target(
        "xero",
        &format!(
            "kind = \"xero\"\nclient_id_env = \"XERO_CLIENT_ID\"\napi_url = \"{base}\"\ntoken_url = \"{base}/token\"\nbatch_size = 1\ncalls_per_minute = 1000\nmax_retry_secs = 5\n"
        ),
    );
    p.write(
        "data/xero-xero.json",
        &serde_json::json!({"access_token": "contract", "refresh_token": "r",
            "expires_at": "2099-01-01T00:00:00Z", "tenant_id": "11111111-1111-1111-1111-111111111111"})
        .to_string(),
    );
    // Prism answers every contact lookup and creation with the spec's examples (no contact
    // number of ours, one contact created): the demo's customers are made one, so that the
    // contact it creates is the contact of every document.
    one_customer(&p);
    // Prism answers with the spec's examples: the chart's "200 Sales" and the tax type OUTPUT2.
    p.extend_mapping(|line| {
        if line.starts_with("[gl.") {
            Some("xero_account_code = \"200\"".into())
        } else if line.starts_with("[tax.") {
            Some("xero_tax_type = \"OUTPUT2\"".into())
        } else {
            None
        }
    });

    let out = p
        .command(&["--json", "sync"])
        .env("XERO_CLIENT_ID", "contract-app")
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let t = target(&r, "xero");
    assert_eq!(t["failed"], 0, "a request was refused by the contract: {r}");
    assert_eq!(t["delivered"], 42, "{r}");
    assert!(r["error"].is_null(), "{r}");
    // The credit notes' allocations (one `POST /CreditNotes`) were accepted too.
    let (_, recs) = p.json(&["ledger", "list", "--target", "xero", "--state", "delivered"]);
    let allocated: Vec<&serde_json::Value> = recs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "credit_note")
        .map(|r| &r["remote_status"])
        .collect();
    assert!(
        !allocated.is_empty()
            && allocated
                .iter()
                .all(|s| s.as_str().is_some_and(|s| s.starts_with("allocated to"))),
        "{allocated:?}"
    );

    // Validation is on: a wrong type, a bad uuid, a misspelt field and a bad status are refused.
    let bad = serde_json::json!({"Invoices": [{"Type": "SALES",
        "Contact": {"ContactID": "not-a-uuid"}, "Status": "FINAL",
        "LineItems": [{"Description": "x", "Quantity": "two", "UnitAmount": 1.0, "Taxtype": "OUTPUT2"}]}]});
    let (status, violations) = send_bad(
        reqwest::Client::new()
            .put(format!("{base}/Invoices"))
            .bearer_auth("contract")
            .header("xero-tenant-id", "11111111-1111-1111-1111-111111111111")
            .header("Accept", "application/json")
            .json(&bad),
    );
    assert_eq!(status, 400, "{violations}");
    for what in ["Type", "ContactID", "Taxtype", "Quantity", "Status"] {
        assert!(
            violations.contains(what),
            "{what} not flagged: {violations}"
        );
    }
}

/// Gives every document of the demo the customer `C001`.
fn one_customer(p: &Project) {
    for f in std::fs::read_dir(p.path("examples/invoices")).unwrap() {
        let path = f.unwrap().path();
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let docs = match v.as_array_mut() {
            Some(a) => a.iter_mut().collect::<Vec<_>>(),
            None => vec![&mut v],
        };
        for d in docs {
            d["buyer"]["customer_id"] = serde_json::json!("C001");
        }
        std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }
}
