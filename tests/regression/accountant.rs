//! What the accountant receives and what the source sends: revenue lines, validation date, tolerances, all-zero documents, notes, unknown fields, line numbers.

use crate::common::*;

fn bytes_under(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            bytes_under(&e.path())
        } else {
            m.len()
        };
    }
    n
}

/// Every run rewrote each held record with its copy of the document: the ledger grew by the
/// held documents' size on every run (14 → 85 MB over 30 runs). An unchanged held record is now
/// left as it is: its bytes, history and timestamp stay, and the ledger does not grow with it.
#[test]
fn held_documents_are_not_rewritten_on_every_run() {
    let p = Project::demo();
    // F2026-0030 is held (tax code TVA85 has no mapping); make it weigh 2 MB.
    let mut doc = p.read_json("examples/invoices/inv-2026-0030.json");
    doc["notes"] = serde_json::json!([{"subject_code": null, "text": "x".repeat(2 << 20)}]);
    p.write(
        "examples/invoices/inv-2026-0030.json",
        &serde_json::to_string(&doc).unwrap(),
    );
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
    let held = |p: &Project| {
        let (_, a) = p.json(&["ledger", "show", "F2026-0030"]);
        let (_, b) = p.json(&["ledger", "show", "F2026-0032"]);
        (a, b)
    };
    let (first_a, first_b) = held(&p);
    assert_eq!(first_a.as_array().unwrap().len(), 2, "{first_a}");
    assert!(first_a
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["state"] == "held"));
    // The second run re-checks the held records from their copies; later ones find nothing new.
    let (code, _) = p.json(&["sync"]);
    assert_eq!(code, 1);
    let size = bytes_under(&p.path("data"));
    for run in 0..4 {
        let (code, r) = p.json(&["sync"]);
        assert_eq!(code, 1, "{r}");
        assert_eq!(target(&r, "sales-fec")["held"], 2, "run {run}: {r}");
        assert_eq!(held(&p), (first_a.clone(), first_b.clone()), "run {run}");
    }
    let grown = bytes_under(&p.path("data")).saturating_sub(size);
    println!("ledger: {size} bytes, +{grown} over 4 runs");
    assert!(
        grown < 1 << 20,
        "the ledger grew by {grown} bytes over 4 runs"
    );
}

/// Writes a copy of the demo's F2026-0001 (1 line, 12 × 95.00 at 20 %) as document `id`,
/// changed by `edit`, into the demo source folder.
fn add_demo_doc(p: &Project, id: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v = p.read_json("examples/invoices/inv-2026-0001.json");
    v["id"] = serde_json::json!(id);
    v["number"] = serde_json::json!(format!("T-{id}"));
    edit(&mut v);
    p.write_json(&format!("examples/invoices/{id}.json"), &v);
}

#[test]
fn notes_given_as_a_plain_string_are_read_as_one_note() {
    let p = Project::demo();
    add_demo_doc(&p, "t-notes", |v| {
        v["notes"] = serde_json::json!("Merci de votre confiance");
    });
    let (_, r) = p.json(&["sync"]);
    assert!(problems_of(&r, "t-notes").is_empty(), "{r}");
    assert_eq!(target(&r, "sales-fec")["delivered"], DEMO_DELIVERABLE + 1);
}

#[test]
fn a_line_net_one_cent_off_quantity_times_price_is_held() {
    let p = Project::demo();
    add_demo_doc(&p, "t-line-cent", |v| {
        let l = &mut v["lines"][0];
        l["quantity"] = serde_json::json!("1");
        l["unit_price"] = serde_json::json!("10.00");
        l["net_amount"] = serde_json::json!("10.01");
        v["totals"] = serde_json::json!({"net": "10.01", "tax": "2.00", "gross": "12.01",
                                         "paid": "0.00", "due": "12.01"});
        v["tax_breakdown"] = serde_json::json!([{"tax_code": "TVA20", "rate": "20.00",
                                                 "base": "10.01", "amount": "2.00"}]);
    });
    let (_, r) = p.json(&["sync"]);
    let probs = problems_of(&r, "t-line-cent");
    assert!(
        probs.iter().any(|p| p["reason"]
            .as_str()
            .unwrap()
            .contains("states 10.01 but the figures give 10.00")),
        "{r}"
    );
    assert_eq!(target(&r, "sales-fec")["held"], 3);
}

#[test]
fn vat_beyond_what_per_line_rounding_explains_is_held() {
    let p = Project::demo();
    let three_lines = |vat: &'static str, gross: &'static str| {
        move |v: &mut serde_json::Value| {
            let mut l = v["lines"][0].clone();
            l["quantity"] = serde_json::json!("1");
            l["unit_price"] = serde_json::json!("0.99");
            l["net_amount"] = serde_json::json!("0.99");
            v["lines"] = serde_json::json!([l.clone(), l.clone(), l]);
            v["totals"] = serde_json::json!({"net": "2.97", "tax": vat, "gross": gross,
                                             "paid": "0.00", "due": gross});
            v["tax_breakdown"] = serde_json::json!([{"tax_code": "TVA20", "rate": "20.00",
                                                     "base": "2.97", "amount": vat}]);
        }
    };
    add_demo_doc(&p, "t-vat-wide", three_lines("0.62", "3.59"));
    add_demo_doc(&p, "t-vat-rounded", three_lines("0.60", "3.57"));
    let (_, r) = p.json(&["sync"]);
    assert!(problems_of(&r, "t-vat-rounded").is_empty(), "{r}");
    let probs = problems_of(&r, "t-vat-wide");
    assert!(
        probs.iter().any(|p| p["reason"]
            .as_str()
            .unwrap()
            .contains("VAT of tax code TVA20")),
        "{r}"
    );
    assert_eq!(target(&r, "sales-fec")["held"], 3);
}

/// A document on one revenue account at two VAT rates (100.00 at 20 % and 100.00 at 5.5 %).
fn add_two_rates_on_one_account(p: &Project, id: &str) {
    add_demo_doc(p, id, |v| {
        let mut l = v["lines"][0].clone();
        l["quantity"] = serde_json::json!("1");
        l["unit_price"] = serde_json::json!("100.00");
        l["net_amount"] = serde_json::json!("100.00");
        l["gl_account"] = serde_json::json!("MARCHANDISES");
        let mut l2 = l.clone();
        l2["tax_code"] = serde_json::json!("TVA55");
        v["lines"] = serde_json::json!([l, l2]);
        v["totals"] = serde_json::json!({"net": "200.00", "tax": "25.50", "gross": "225.50",
                                         "paid": "0.00", "due": "225.50"});
        v["tax_breakdown"] = serde_json::json!([
            {"tax_code": "TVA20", "rate": "20", "base": "100.00", "amount": "20.00"},
            {"tax_code": "TVA55", "rate": "5.5", "base": "100.00", "amount": "5.50"}]);
    });
}

/// The FEC records (tab-separated fields) of piece `piece` in every FEC file under `out/`.
fn fec_records(p: &Project, piece: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for f in p.out_files() {
        if !f.to_string_lossy().contains("FEC") {
            continue;
        }
        let bytes = std::fs::read(p.dir.path().join(&f)).unwrap();
        let text: String = bytes.iter().map(|b| char::from(*b)).collect();
        for line in text.split("\r\n") {
            let fields: Vec<String> = line.split('\t').map(str::to_owned).collect();
            if fields.len() == 18 && fields[8] == piece {
                out.push(fields);
            }
        }
    }
    out
}

#[test]
fn two_vat_rates_on_one_revenue_account_give_one_revenue_line() {
    let p = Project::demo();
    add_two_rates_on_one_account(&p, "t-rev");
    let (_, r) = p.json(&["sync"]);
    assert!(problems_of(&r, "t-rev").is_empty(), "{r}");
    let recs = fec_records(&p, "T-t-rev");
    let revenue: Vec<&Vec<String>> = recs.iter().filter(|f| f[4] == "707000").collect();
    assert_eq!(revenue.len(), 1, "{recs:?}");
    assert_eq!(revenue[0][12], "200,00");
    // VAT stays one line per rate.
    assert_eq!(recs.iter().filter(|f| f[4].starts_with("4457")).count(), 2);

    // The mapping option keeps one line per account and rate.
    let p = Project::demo();
    let m = p.read("mappings/pcg-demo.toml").replacen(
        "revenue_lines = \"per-account\"",
        "revenue_lines = \"per-account-and-rate\"",
        1,
    );
    p.write("mappings/pcg-demo.toml", &m);
    add_two_rates_on_one_account(&p, "t-rev");
    let (_, r) = p.json(&["sync"]);
    assert!(problems_of(&r, "t-rev").is_empty(), "{r}");
    let recs = fec_records(&p, "T-t-rev");
    assert_eq!(
        recs.iter().filter(|f| f[4] == "707000").count(),
        2,
        "{recs:?}"
    );
}

#[test]
fn a_documents_problems_number_its_lines_from_one() {
    let p = Project::demo();
    add_demo_doc(&p, "t-line-two", |v| {
        let mut l2 = v["lines"][0].clone();
        l2["tax_code"] = serde_json::json!("TVA99");
        v["lines"] = serde_json::json!([v["lines"][0].clone(), l2]);
    });
    let out = p.run(&["sync"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("T-t-line-two") && l.contains("TVA99"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("line 2 tax_code"), "{line}");
    assert!(!text.contains("lines[1]"), "{text}");
    let out = p.run(&["ledger", "show", "t-line-two"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("problem line 2 tax_code"), "{text}");
}

/// The `ValidDate` of every FEC record under `out/`.
fn fec_valid_dates(p: &Project) -> Vec<String> {
    let mut dates = Vec::new();
    for f in p.out_files() {
        if !f.to_string_lossy().contains("FEC") {
            continue;
        }
        let bytes = std::fs::read(p.dir.path().join(&f)).unwrap();
        let text: String = bytes.iter().map(|b| char::from(*b)).collect();
        for line in text.split("\r\n").skip(1) {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() == 18 {
                dates.push(fields[15].to_owned());
            }
        }
    }
    dates
}

#[test]
fn fec_validation_date_can_be_given_to_reproduce_a_file() {
    let p = Project::demo();
    let (code, r) = p.json(&[
        "export",
        "--target",
        "sales-fec",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-31",
        "--validation-date",
        "2026-02-15",
    ]);
    assert!(code <= 1, "{r}");
    let dates = fec_valid_dates(&p);
    assert!(!dates.is_empty());
    assert!(dates.iter().all(|d| d == "20260215"), "{dates:?}");

    // The job setting does the same for every run of the job.
    let p = Project::demo();
    let cfg = p.read("facto.toml").replacen(
        "schedule = \"every 15m\"",
        "schedule = \"every 15m\"\nvalidation_date = \"2026-12-31\"",
        1,
    );
    p.write("facto.toml", &cfg);
    p.json(&["sync"]);
    let dates = fec_valid_dates(&p);
    assert!(!dates.is_empty());
    assert!(dates.iter().all(|d| d == "20261231"), "{dates:?}");
}

#[test]
fn an_all_zero_document_is_reported_as_nothing_to_book_not_delivered_to_the_fec() {
    let p = Project::demo();
    add_demo_doc(&p, "t-zero", |v| {
        let l = &mut v["lines"][0];
        l["quantity"] = serde_json::json!("1");
        l["unit_price"] = serde_json::json!("0.00");
        l["net_amount"] = serde_json::json!("0.00");
        v["totals"] = serde_json::json!({"net": "0.00", "tax": "0.00", "gross": "0.00",
                                         "paid": "0.00", "due": "0.00"});
        v["tax_breakdown"] = serde_json::json!([{"tax_code": "TVA20", "rate": "20",
                                                 "base": "0.00", "amount": "0.00"}]);
    });
    let (_, pv) = p.json(&["preview", "--job", "demo"]);
    let row = |t: &str| {
        pv["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["target"] == t)
            .and_then(|x| x["rows"].as_array())
            .and_then(|rows| rows.iter().find(|r| r["doc_id"] == "t-zero"))
            .map(|r| r["status"].clone())
    };
    assert_eq!(
        row("sales-fec"),
        Some(serde_json::json!("nothing-to-book")),
        "{pv}"
    );
    assert_eq!(row("sales-csv"), Some(serde_json::json!("new")), "{pv}");
    let (_, r) = p.json(&["sync"]);
    assert!(problems_of(&r, "t-zero").is_empty(), "{r}");
    let fec = target(&r, "sales-fec");
    assert_eq!(fec["delivered"], DEMO_DELIVERABLE, "{r}");
    assert_eq!(fec["nothing_to_book"], 1, "{r}");
    // The CSV of documents does hold its row.
    assert_eq!(target(&r, "sales-csv")["delivered"], DEMO_DELIVERABLE + 1);
    let batch = r["batches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["target"] == "sales-fec")
        .unwrap();
    assert_eq!(batch["documents"], DEMO_DELIVERABLE);
    assert!(fec_records(&p, "T-t-zero").is_empty());
    assert!(
        r["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("T-t-zero")),
        "{r}"
    );
    let out = p.run(&["ledger", "show", "t-zero"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("demo/sales-csv/t-zero"), "{text}");
    assert!(!text.contains("demo/sales-fec/t-zero"), "{text}");
}

#[test]
fn unknown_fields_are_listed_once_per_run_with_the_known_name_they_likely_meant() {
    let p = Project::demo();
    let misplaced = |v: &mut serde_json::Value| {
        let b = v.as_object_mut().unwrap().remove("tax_breakdown").unwrap();
        v["totals"]["tax_breakdown"] = b;
    };
    add_demo_doc(&p, "t-unknown-1", misplaced);
    add_demo_doc(&p, "t-unknown-2", misplaced);
    let (_, r) = p.json(&["sync"]);
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|w| w.as_str().unwrap())
        .filter(|w| w.contains("`totals.tax_breakdown`"))
        .collect();
    assert_eq!(warnings.len(), 1, "{r}");
    assert!(
        warnings[0].contains("did you mean `tax_breakdown`"),
        "{}",
        warnings[0]
    );
    // The documents are still read, held with one clear reason; the rest is delivered.
    assert_eq!(target(&r, "sales-fec")["delivered"], DEMO_DELIVERABLE);
    let probs = problems_of(&r, "t-unknown-1");
    assert!(
        probs.iter().all(|p| p["field"] == "tax_breakdown"
            && p["fix"].as_str().unwrap().contains("beside `totals`")),
        "{probs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_fields_from_the_http_source_are_listed_too() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let p = Project::demo();
    let mut d = p.read_json("examples/new-invoice.json");
    d["lines"][0]["colour"] = serde_json::json!("red");
    let mut d2 = d.clone();
    d2["id"] = serde_json::json!("api-2");
    d2["number"] = serde_json::json!("F2026-0902");
    Mock::given(method("GET"))
        .and(path("/api/invoices"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({ "data": [d, d2] })),
        )
        .mount(&server)
        .await;
    p.write(
        "connectors/api.toml",
        &format!(
            "kind = \"http\"\nurl = \"{}/api/invoices\"\ntoken_env = \"FACTO_TEST_TOKEN\"\nitems_field = \"data\"\n",
            server.uri()
        ),
    );
    let cfg = p
        .read("facto.toml")
        .replace("source = \"demo-invoices\"", "source = \"api\"");
    p.write("facto.toml", &cfg);
    let mut cmd = p.command(&["--json", "sync"]);
    cmd.env("FACTO_TEST_TOKEN", "t");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|w| w.as_str().unwrap())
        .filter(|w| w.contains("`lines[].colour`"))
        .collect();
    assert_eq!(warnings.len(), 1, "{r}");
    assert_eq!(target(&r, "sales-fec")["delivered"], 2, "{r}");
}

/// A payment recorded in the invoicing application after delivery (`totals.paid`, `totals.due`,
/// `payments[]`) was reported as "changed after delivery", with the fix "a credit note and a new
/// invoice": a false alarm on every paid invoice. A payment is the invoice's life, not a
/// correction; a real change made with it is still reported.
#[test]
fn a_payment_after_delivery_is_not_a_change_after_delivery() {
    let p = Project::demo();
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
    let path = "examples/invoices/inv-2026-0001.json";
    let mut v = p.read_json(path);
    let gross = v["totals"]["gross"].clone();
    v["totals"]["paid"] = gross.clone();
    v["totals"]["due"] = "0.00".into();
    v["payments"] = serde_json::json!([{"id": "PAY-1", "date": "2026-02-10", "amount": gross}]);
    v["updated_at"] = "2026-11-01T00:00:00Z".into();
    p.write_json(path, &v);
    let changed = |r: &serde_json::Value| r.to_string().contains("changed-after-delivery");
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
    assert!(!changed(&r), "{r}");

    // Paid, and its due date moved: the due date is reported, the payment is not.
    v["due_date"] = "2026-03-31".into();
    v["updated_at"] = "2026-11-02T00:00:00Z".into();
    p.write_json(path, &v);
    let (_, r) = p.json(&["sync"]);
    assert!(changed(&r), "{r}");
    let text = r.to_string();
    assert!(text.contains("2026-03-31"), "{r}");
    assert!(!text.contains("totals.paid"), "{r}");
}

/// A payment recorded by mistake, then removed in the invoicing application while its status
/// 212 waited for the invoice to be accepted: the waiting record stayed held for ever, and the
/// report named it at every run. It is now removed (audited as the sync's); the payment left
/// is removed the same way when it goes too, and a dry run only reports it.
#[tokio::test(flavor = "multi_thread")]
async fn a_212_waiting_for_a_payment_removed_since_is_removed_not_held_for_ever() {
    use crate::pa_cashed::{pay, posted, project, records, sync, FILE};
    let sim = crate::pa_sim::Sim::start().await;
    sim.state.lock().unwrap().ack_never = true;
    let p = project(&sim, "");
    pay(&p);
    sync(&p).await;
    assert_eq!(records(&p, Some("held")).len(), 2);
    let mut v = p.read_json(FILE);
    v["payments"] = serde_json::json!([{"id": "VIR-1", "date": "2026-05-10", "amount": "600.00"}]);
    v["totals"]["paid"] = "600.00".into();
    v["totals"]["due"] = "585.00".into();
    v["updated_at"] = "2026-11-22T09:00:00Z".into();
    p.write_json(FILE, &v);
    let r = sync(&p).await;
    assert!(
        r.to_string()
            .contains("its payment is no longer in the document"),
        "{r}"
    );
    let held = records(&p, Some("held"));
    assert_eq!(held.len(), 1, "{held:?}");
    let ledger = facto::ledger::sled::SledLedger::open(&p.path("data")).unwrap();
    let forgotten: Vec<_> = facto::ledger::Ledger::audit_trail(&ledger)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "forget")
        .map(|e| (e.who, e.detail))
        .collect();
    drop(ledger);
    assert_eq!(forgotten.len(), 1, "{forgotten:?}");
    assert_eq!(forgotten[0].0, "sync");

    // The last payment removed too: the document owes no 212 at all. A dry run only says so;
    // the sync removes the record, and nothing is ever sent for money that never came in.
    let mut v = p.read_json(FILE);
    v["payments"] = serde_json::json!([]);
    v["totals"]["paid"] = "0.00".into();
    v["totals"]["due"] = "1185.00".into();
    v["updated_at"] = "2026-11-23T09:00:00Z".into();
    p.write_json(FILE, &v);
    let mut c = p.command(&["--json", "sync", "--dry-run"]);
    c.env("PA_TOKEN", crate::pa_sim::BEARER);
    let dry = c.output().unwrap();
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("owes no status 212"),
        "{}",
        String::from_utf8_lossy(&dry.stdout)
    );
    assert_eq!(
        records(&p, Some("held")).len(),
        1,
        "a dry run changes nothing"
    );
    sync(&p).await;
    assert!(records(&p, Some("held")).is_empty());
    sim.state.lock().unwrap().ack_never = false;
    for _ in 0..4 {
        sync(&p).await;
    }
    let (sent, _) = posted(&sim);
    assert!(sent.is_empty(), "no 212 for a payment removed: {sent:?}");
}
