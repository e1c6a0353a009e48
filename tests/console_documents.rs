//! The console's Documents pages and Overview over HTTP: the search finds the demo's held
//! document, its page shows the reason and the fix, the accountant reads only (a POST is 403),
//! the admin's retry does what `facto ledger retry` does, forget needs the confirmation and is
//! audited with the role, and the overview lists what waits for a human.

use reqwest::header::{COOKIE, LOCATION};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::Project;
use crate::console_browser::screenshot;
use crate::console_http::{client, csrf_of, login, post};
use crate::daemon::{start, terminate};

const HELD: &str = "F2026-0030";

async fn get(addr: &str, path: &str, cookie: &str) -> reqwest::Response {
    client()
        .get(format!("http://{addr}{path}"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

async fn page(addr: &str, path: &str, cookie: &str) -> String {
    let r = get(addr, path, cookie).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_search_show_retry_forget_and_the_overview() {
    let p = Project::demo();
    // A pass before the daemon starts: the demo holds F2026-0030 (tax code TVA85 unmapped).
    let (_, _) = p.json(&["sync"]);
    let (mut daemon, addr, admin) = start(&p);
    let accountant = std::fs::read_to_string(p.path("data/accountant-token")).unwrap();
    let (acc, _) = login(&addr, accountant.trim()).await;
    let (adm, _) = login(&addr, &admin).await;

    // The search (French by default): the held document, its date and amount the French way.
    let list = page(&addr, "/console/documents?q=f2026-0030&state=held", &acc).await;
    assert!(
        list.contains(&format!("href=\"/console/documents/{HELD}\">{HELD}</a>")),
        "{list}"
    );
    assert!(
        list.contains("29/07/2026") && list.contains("2\u{202F}538,90"),
        "{list}"
    );
    assert!(list.contains("retenu"), "{list}");
    let none = page(
        &addr,
        "/console/documents?q=F2026-0030&state=delivered",
        &acc,
    )
    .await;
    assert!(!none.contains(&format!(">{HELD}</a>")), "{none}");
    let other = page(
        &addr,
        "/console/documents?q=F2026-0030&from=2026-08-01",
        &acc,
    )
    .await;
    assert!(!other.contains(&format!(">{HELD}</a>")), "{other}");

    // Its page, read-only for the accountant: the reason and the fix, no action.
    let doc = page(&addr, &format!("/console/documents/{HELD}"), &acc).await;
    assert!(doc.contains("TVA85") && doc.contains("Correction"), "{doc}");
    assert!(doc.contains("class=\"history\""), "{doc}");
    assert!(!doc.contains("class=\"act"), "{doc}");
    let csrf = csrf_of(&doc);
    for action in ["retry", "forget", "run"] {
        let r = post(
            &addr,
            &format!("/console/documents/{HELD}/{action}"),
            &acc,
            Some(&csrf),
            &json!({"target": "sales-fec", "job": "sales", "confirm": true}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{action}");
    }

    // The overview: the accountant lands on the wizard, the admin sees what waits.
    let r = get(&addr, "/console", &acc).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/console/export");
    let over = page(&addr, "/console", &adm).await;
    assert!(
        over.contains("id=\"passes\"") && over.contains("class=\"pass\""),
        "{over}"
    );
    assert!(
        over.contains(&format!("class=\"wait wait_held\" data-number=\"{HELD}\"")),
        "{over}"
    );

    // The admin's page: the actions, forget's dialog with the CLI's own warning.
    let (_, shown) = p.json(&["ledger", "show", HELD]);
    let rec = &shown[0];
    let (job, target) = (
        rec["key"]["job"].as_str().unwrap(),
        rec["key"]["target"].as_str().unwrap(),
    );
    let doc = page(&addr, &format!("/console/documents/{HELD}"), &adm).await;
    assert!(doc.contains("class=\"act retry\""), "{doc}");
    assert!(doc.contains("forget removes the record of"), "{doc}");
    let csrf = csrf_of(&doc);

    // Retry: the CSRF header is needed; then the very notes `facto ledger retry` gives.
    let body = json!({"target": target});
    let r = post(
        &addr,
        &format!("/console/documents/{HELD}/retry"),
        &adm,
        None,
        &body,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(
        &addr,
        &format!("/console/documents/{HELD}/retry"),
        &adm,
        Some(&csrf),
        &body,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], format!("/console/documents/{HELD}"));
    let (_, after) = p.json(&["ledger", "show", HELD]);
    assert_eq!(
        after[0]["state"], rec["state"],
        "a held record stays held: rechecked by the next pass"
    );
    let (code, notes) = p.json(&["ledger", "retry", HELD, "--target", target]);
    assert_eq!(code, 0);
    let note = notes[0].as_str().unwrap().to_owned();
    assert!(note.contains("checked again by the next sync"), "{note}");
    let audit = page(&addr, "/console/audit", &adm).await;
    // Recorded once, by `ledger retry` itself, with the console's role as who acted.
    let row = |audit: &str, action: &str| {
        let at = format!("data-action=\"{action}\" data-who=\"console:admin\"");
        audit
            .split("<tr")
            .find(|r| r.contains(&at))
            .map(str::to_owned)
    };
    assert!(!audit.contains("console-retry"), "{audit}");
    assert!(
        row(&audit, "retry").is_some_and(|r| r.contains(&note) && r.contains("role admin")),
        "{audit}"
    );

    // Forget: without the confirmation, the CLI's warning and nothing removed.
    let url = format!("/console/documents/{HELD}/forget");
    let r = post(
        &addr,
        &url,
        &adm,
        Some(&csrf),
        &json!({"target": target, "job": job}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let text = r.text().await.unwrap();
    assert!(text.contains("Add --yes to confirm"), "{text}");
    let (code, _) = p.json(&["ledger", "show", HELD]);
    assert_eq!(code, 0, "still recorded");
    let r = post(
        &addr,
        &url,
        &adm,
        Some(&csrf),
        &json!({"target": target, "job": job, "confirm": true}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, left) = p.json(&["ledger", "show", HELD]);
    let kept = |v: &Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .any(|r| r["key"]["target"] == target && r["key"]["job"] == job)
    };
    assert!(!kept(&left), "forgotten: {left}");
    let audit = page(&addr, "/console/audit", &adm).await;
    assert!(
        !audit.contains("console-forget")
            && row(&audit, "forget").is_some_and(|r| r.contains("forgotten (was held")),
        "{audit}"
    );

    // Run the job now: a pass, audited; the document is held again.
    let r = post(
        &addr,
        &format!("/console/documents/{HELD}/run"),
        &adm,
        Some(&csrf),
        &json!({"job": job}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, again) = p.json(&["ledger", "show", HELD]);
    assert!(kept(&again), "recorded again by the pass: {again}");
    let audit = page(&addr, "/console/audit", &adm).await;
    assert!(
        audit.contains("console-run-job") && audit.contains(&format!("job {job} run now")),
        "{audit}"
    );

    assert_eq!(terminate(&mut daemon), 0);
}

/// In a real browser: the admin's overview links the held document, whose page's Forget asks
/// with the CLI's warning in the browser's dialog and, accepted, removes the record.
#[test]
fn the_admin_forgets_a_document_through_the_confirmation_dialog() {
    let Some(browser) = crate::editor_browser::Driver::start() else {
        return;
    };
    let p = Project::demo();
    let (_, _) = p.json(&["sync"]);
    let (mut daemon, addr, admin) = start(&p);
    let base = format!("http://{addr}");
    browser.call(
        "POST",
        "/window/rect",
        Some(json!({"width": 1280, "height": 1000})),
    );
    browser.call(
        "POST",
        "/url",
        Some(json!({ "url": format!("{base}/console/login") })),
    );
    browser.wait_for("return document.querySelector('input[name=token]') !== null");
    browser.type_into("input[name=token]", &admin);
    browser.click("form button[type=submit]");
    browser.wait_for("return document.getElementById('wizard') !== null");

    browser.call(
        "POST",
        "/url",
        Some(json!({ "url": format!("{base}/console") })),
    );
    browser.wait_for("return document.getElementById('waiting') !== null");
    screenshot(&browser, "overview");
    browser.click(&format!("tr.wait_held[data-number='{HELD}'] a"));
    browser.wait_for("return document.querySelector('button.act.forget') !== null");
    screenshot(&browser, "document");
    let target = browser.script("return document.querySelector('section.record').dataset.target");
    let target = target.as_str().unwrap().to_owned();

    browser.click("section.record button.act.forget");
    let asked = browser.call("GET", "/alert/text", None)["value"].clone();
    assert!(
        asked
            .as_str()
            .unwrap()
            .contains("forget removes the record of"),
        "{asked}"
    );
    browser.call("POST", "/alert/accept", Some(json!({})));
    browser.wait_for("return location.pathname === '/console/documents' && document.getElementById('search') !== null");
    screenshot(&browser, "documents");
    let (_, left) = p.json(&["ledger", "show", HELD]);
    assert!(
        !left
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["key"]["target"] == target.as_str()),
        "{left}"
    );
    assert_eq!(terminate(&mut daemon), 0);
}

/// Two jobs hold a document of the same number: the page's Retry of one record releases that
/// record only (the console sends its job and exact id), and `ledger retry` by the number alone
/// refuses, naming both, and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn retry_of_a_number_in_two_jobs_acts_on_one_record() {
    let p = Project::demo();
    p.write(
        "connectors/other-invoices.toml",
        "kind = \"json-dir\"\npath = \"other\"\n",
    );
    p.write(
        "other/inv-2026-0030.json",
        &p.read("examples/invoices/inv-2026-0030.json"),
    );
    let cfg = p.read("facto.toml")
        + "\n[[job]]\nname = \"other\"\nsource = \"other-invoices\"\nmapping = \"pcg-demo\"\ntargets = [\"sales-csv\"]\n";
    p.write("facto.toml", &cfg);
    let (_, _) = p.json(&["sync"]);
    let (_, shown) = p.json(&["ledger", "show", HELD]);
    let jobs: Vec<&str> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"]["job"].as_str().unwrap())
        .collect();
    assert!(jobs.contains(&"demo") && jobs.contains(&"other"), "{shown}");

    // The CLI by number alone: refused, both named, the flag told; nothing changed or audited.
    let out = p.run(&["ledger", "retry", "--target", "sales-csv", "--", HELD]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("job demo") && err.contains("job other") && err.contains("--job"),
        "{err}"
    );
    assert_eq!(
        p.json(&["ledger", "show", HELD]).1,
        shown,
        "nothing changed"
    );

    let (mut daemon, addr, admin) = start(&p);
    let (adm, _) = login(&addr, &admin).await;
    let audit = page(&addr, "/console/audit", &adm).await;
    assert!(
        !audit.contains("console-retry") && !audit.contains(": held;"),
        "{audit}"
    );
    // The overview: one row per job and target; the waiting table paged with its total.
    let over = page(&addr, "/console?wpage=9", &adm).await;
    for (job, target) in [
        ("demo", "sales-fec"),
        ("demo", "sales-csv"),
        ("other", "sales-csv"),
    ] {
        assert!(
            over.contains(&format!(
                "class=\"pass\" data-job=\"{job}\" data-target=\"{target}\""
            )),
            "{over}"
        );
    }
    assert!(
        over.contains("id=\"waiting-pager\"") && over.contains("Page 1/1"),
        "{over}"
    );
    let doc = page(&addr, &format!("/console/documents/{HELD}"), &adm).await;
    let body = json!({"target": "sales-csv", "job": "other", "doc_id": "inv-2026-0030"});
    let shown_body = body.to_string().replace('"', "&quot;");
    assert!(
        doc.contains(&format!("data-body=\"{shown_body}\"")),
        "{doc}"
    );
    let r = post(
        &addr,
        &format!("/console/documents/{HELD}/retry"),
        &adm,
        Some(&csrf_of(&doc)),
        &body,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let audit = page(&addr, "/console/audit", &adm).await;
    assert!(
        audit.contains("other/sales-csv/inv-2026-0030: held;"),
        "{audit}"
    );
    assert!(
        !audit.contains("demo/sales-csv/inv-2026-0030: held;")
            && !audit.contains("demo/sales-fec/inv-2026-0030: held;"),
        "the other job's records are untouched: {audit}"
    );
    assert_eq!(terminate(&mut daemon), 0);
}

/// A document whose id and number start with `-`: its page, Retry and Forget reach the CLI as
/// a document (after `--`), not as an unknown flag.
#[tokio::test(flavor = "multi_thread")]
async fn a_document_named_with_a_leading_dash_is_retried_and_forgotten() {
    let p = Project::demo();
    let mut doc = p.read_json("examples/invoices/inv-2026-0030.json");
    doc["id"] = json!("-F1");
    doc["number"] = json!("-N1");
    p.write_json("examples/invoices/dash.json", &doc);
    let (_, _) = p.json(&["sync"]);
    let (mut daemon, addr, admin) = start(&p);
    let (adm, _) = login(&addr, &admin).await;
    let shown = page(&addr, "/console/documents/-N1", &adm).await;
    assert!(shown.contains("class=\"act retry\""), "{shown}");
    let csrf = csrf_of(&shown);
    let r = post(
        &addr,
        "/console/documents/-N1/retry",
        &adm,
        Some(&csrf),
        &json!({"target": "sales-fec", "job": "demo", "doc_id": "-F1"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let audit = page(&addr, "/console/audit", &adm).await;
    assert!(audit.contains("demo/sales-fec/-F1: held;"), "{audit}");
    let r = post(
        &addr,
        "/console/documents/-N1/forget",
        &adm,
        Some(&csrf),
        &json!({"target": "sales-fec", "job": "demo", "doc_id": "-F1", "confirm": true}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, left) = p.json(&["ledger", "show", "--", "-F1"]);
    let targets: Vec<&str> = left
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["key"]["target"].as_str())
        .collect();
    assert_eq!(targets, ["sales-csv"], "{left}");
    assert_eq!(terminate(&mut daemon), 0);
}
