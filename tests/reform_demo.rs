//! The reform's demo (issue 15), end to end through the real binary and one PA simulator: the
//! demo company sends its sales to its PA; its B2C period is totalled for e-reporting, in the
//! ten-day periods of its VAT regime with their due dates; a service invoice paid in two parts
//! gets its two statuses 212; the three supplier invoices its PA received are booked into the
//! purchase journal (HA), whose FEC both checkers accept; the company approves one of them
//! (205). A second run sends nothing again.

use serde_json::Value;

use crate::common::{json_of, target, with_json, Project};
use crate::pa_sim::{Sim, BEARER};

async fn run(p: &Project, args: &[&str]) -> (i32, Value, String) {
    let mut c = p.command(&with_json(args));
    c.env("PA_TOKEN", BEARER);
    json_of(c).await
}

/// Flows posted per kind: invoices, statuses by code.
fn counts(sim: &Sim) -> (usize, Vec<(String, u16)>) {
    let s = sim.state.lock().unwrap();
    let statuses = s
        .posted
        .iter()
        .map(|f| (f.number.clone(), f.code))
        .collect();
    (s.flows.len(), statuses)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reform_demo_sends_reports_collects_receives_and_answers() {
    let sim = Sim::start().await;
    sim.state.lock().unwrap().instant_ack = true;
    let p = Project::demo_with_target("pa", &sim.bearer_connector(""));
    p.write(
        "facto.toml",
        &p.read("facto.toml").replace(
            "fiscal_year_end = \"12-31\"\n",
            "fiscal_year_end = \"12-31\"\nvat_regime = \"normal-monthly\"\n",
        ),
    );
    p.write(
        "facto.toml",
        &(p.read("facto.toml")
            + "\n[[job]]\nname = \"achats\"\nsource = \"pa\"\nmapping = \"pcg-achats\"\ntargets = [\"purchases-fec\"]\n"),
    );
    crate::pa_inbox::receive_the_demo_invoices(&sim, &p);
    // The service invoice F2026-0010, paid in two parts.
    crate::pa_cashed::pay(&p);

    let (_, r, err) = run(&p, &["sync", "--job", "demo"]).await;
    assert!(r.is_object(), "{err}");
    let (invoices, statuses) = counts(&sim);
    assert!(invoices > 0, "the sales went to the PA: {r}");
    assert_eq!(
        statuses,
        [
            ("F2026-0010".to_owned(), 212),
            ("F2026-0010".to_owned(), 212)
        ],
        "one 212 per payment"
    );

    // The supplier invoices, booked in the purchase journal.
    let (code, r, err) = run(&p, &["sync", "--job", "achats"]).await;
    assert_eq!(code, 0, "{r} {err}");
    assert_eq!(target(&r, "purchases-fec")["delivered"], 3, "{r}");
    let (file, rows) = crate::purchases::fec_lines(&p);
    assert_eq!(rows.len(), 9, "{rows:?}");
    crate::common::fec_checkers_pass(&file);

    // The B2C period, as flow 10 would total it.
    let (code, r, err) = run(
        &p,
        &["preview", "--job", "demo", "--target", "pa", "--ereporting"],
    )
    .await;
    assert_eq!(code, 0, "{r} {err}");
    assert_eq!(r["b2c"], crate::pa_directory::demo_b2c(), "{r}");
    // Its ten-day period, closed, with its due date.
    let period = r["periods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["start"] == "2026-10-21")
        .cloned()
        .unwrap_or_default();
    assert_eq!(period["end"], "2026-10-31", "{r}");
    assert_eq!(period["due"], "2026-11-10", "{r}");
    assert_eq!(period["state"], "closed", "{r}");

    // The company approves a supplier invoice.
    let (code, r, err) = run(&p, &["respond", "IMP-2026-0118", "approved"]).await;
    assert_eq!(code, 0, "{r} {err}");

    // Nothing is sent twice.
    run(&p, &["sync", "--job", "demo"]).await;
    run(&p, &["sync", "--job", "achats"]).await;
    let (again, statuses) = counts(&sim);
    assert_eq!(again, invoices);
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    assert_eq!(statuses[2], ("IMP-2026-0118".to_owned(), 205));
}
