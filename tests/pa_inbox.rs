//! Supplier invoices received through the PA (issue 15 §3) into the purchase journal, through
//! the real binary and the PA simulator: a job whose source is the `afnor-pa` connector lists the
//! `SupplierInvoice` flows (direction `In`) changed since its cursor, page by page, downloads each
//! once, reads it (CII, UBL) and books it with the purchase mapping; the next run downloads
//! nothing again; an invoice received later is booked by the run after it; a flow that is no
//! invoice is held with the reason.

use serde_json::Value;

use crate::common::{json_of, target, with_json, Project};
use crate::pa_sim::{Sim, BEARER};
use crate::purchases::{fec_lines, row};

pub fn project(sim: &Sim) -> Project {
    let p = Project::demo();
    p.write("connectors/pa.toml", &sim.bearer_connector(""));
    let mut cfg = p.read("facto.toml");
    cfg.push_str("\n[[job]]\nname = \"achats\"\nsource = \"pa\"\nmapping = \"pcg-achats\"\ntargets = [\"purchases-fec\"]\n");
    p.write("facto.toml", &cfg);
    p
}

async fn sync(p: &Project) -> (i32, Value) {
    let mut c = p.command(&with_json(&["sync", "--job", "achats"]));
    c.env("PA_TOKEN", BEARER);
    let (code, r, err) = json_of(c).await;
    assert!(r.is_object(), "{err}");
    (code, r)
}

fn receive(sim: &Sim, p: &Project, file: &str, syntax: &str) {
    let bytes = std::fs::read(p.path(&format!("examples/received/{file}"))).unwrap();
    sim.state.lock().unwrap().receive(file, syntax, bytes);
}

/// The PA receives the three demo supplier invoices (`examples/received/`).
pub fn receive_the_demo_invoices(sim: &Sim, p: &Project) {
    receive(sim, p, "IMP-2026-0118.cii.xml", "CII");
    receive(sim, p, "BP-FA-2026-0457.ubl.xml", "UBL");
    receive(sim, p, "IMP-AV-2026-0007.cii.xml", "CII");
}

#[tokio::test(flavor = "multi_thread")]
async fn supplier_invoices_received_by_the_pa_are_booked_once() {
    let sim = Sim::start().await;
    let p = project(&sim);
    receive_the_demo_invoices(&sim, &p);
    let (code, r) = sync(&p).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(target(&r, "purchases-fec")["delivered"], 3, "{r}");
    let (file, rows) = fec_lines(&p);
    assert_eq!(rows.len(), 9, "{rows:?}");
    assert!(rows.contains(&row(
        "HA",
        "401000",
        "FBUREAU",
        "0,00",
        "450,35",
        "FA-2026-0457"
    )));
    assert!(rows.contains(&row(
        "HA",
        "401000",
        "FIMPRIM",
        "192,00",
        "0,00",
        "IMP-AV-2026-0007"
    )));
    crate::common::fec_checkers_pass(&file);
    let downloads = |sim: &Sim| sim.state.lock().unwrap().downloads.values().sum::<u32>();
    assert_eq!(downloads(&sim), 3);

    // Nothing new: nothing downloaded again, nothing booked.
    let (code, r) = sync(&p).await;
    assert_eq!(code, 0, "{r}");
    assert_eq!(target(&r, "purchases-fec")["delivered"], 0, "{r}");
    assert_eq!(downloads(&sim), 3);

    // Received later: the next run reads only it; a flow that is no invoice is held.
    let ubl = std::fs::read_to_string(p.path("examples/received/BP-FA-2026-0457.ubl.xml")).unwrap();
    let second = ubl.replace("FA-2026-0457", "FA-2026-0501");
    sim.state
        .lock()
        .unwrap()
        .receive("FA-2026-0501.xml", "UBL", second.into_bytes());
    sim.state
        .lock()
        .unwrap()
        .receive("order.xml", "UBL", b"<Order><ID>7</ID></Order>".to_vec());
    let (code, r) = sync(&p).await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(target(&r, "purchases-fec")["delivered"], 1, "{r}");
    assert_eq!(downloads(&sim), 5);
    let problems = r["problems"].to_string();
    assert!(
        problems.contains("flow-in-0005") && problems.contains("not an invoice facto reads"),
        "{problems}"
    );
}
