//! The export wizard in a real browser (headless Chromium through ChromeDriver, as for the
//! mapping editor): log in as the accountant, preview a period (the count, a struck-through
//! document and its reasons), exclude one, export, download the file and compare it byte for
//! byte with `facto exports download`, cancel with the confirmation; the accountant refused on
//! an admin page; French formatting. Screenshots go to `target/console-screens/`.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::common::Project;
use crate::daemon::{start, terminate};
use crate::editor_browser::Driver;

/// A screenshot for review under `target/console-screens/`, one per console page.
pub fn screenshot(d: &Driver, name: &str) {
    use base64::Engine as _;
    let v = d.call("GET", "/screenshot", None);
    let png = base64::engine::general_purpose::STANDARD
        .decode(v["value"].as_str().unwrap())
        .unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screens");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

fn go(d: &Driver, url: &str) {
    d.call("POST", "/url", Some(json!({ "url": url })));
}

fn text(d: &Driver, js: &str) -> String {
    d.script(js).as_str().unwrap_or_default().to_owned()
}

#[test]
fn an_accountant_exports_a_period_from_the_wizard_downloads_it_and_cancels_it() {
    let Some(browser) = Driver::start() else {
        return;
    };
    let p = Project::demo();
    let (mut daemon, addr, _) = start(&p);
    let accountant = p.read("data/accountant-token");
    let base = format!("http://{addr}");
    let (from, to) = ("2026-07-01", "2026-07-31");
    let (_, preview) = p.json(&[
        "preview",
        "--target",
        "sales-quadratus",
        "--from",
        from,
        "--to",
        to,
    ]);
    let (n, m) = (
        preview["targets"][0]["to_transfer"].as_u64().unwrap(),
        preview["targets"][0]["documents"].as_u64().unwrap(),
    );
    assert!(n >= 2 && m > n, "{preview}");

    browser.call(
        "POST",
        "/window/rect",
        Some(json!({"width": 1280, "height": 1000})),
    );
    go(&browser, &format!("{base}/console/login"));
    browser.wait_for("return document.querySelector('input[name=token]') !== null");
    screenshot(&browser, "login");
    browser.type_into("input[name=token]", accountant.trim());
    browser.click("form button[type=submit]");
    browser.wait_for("return location.pathname === '/console/export' && document.getElementById('wizard') !== null");

    // The wizard: target, period, preview.
    browser.script(&format!(
        "document.querySelector('[name=target]').value = 'sales-quadratus'; \
         document.querySelector('[name=from]').value = '{from}'; \
         document.querySelector('[name=to]').value = '{to}'; return true;"
    ));
    browser.click("#preview-button");
    browser.wait_for("return document.getElementById('count') !== null || document.getElementById('error') !== null");
    let shown = text(&browser, "return document.body.innerText");
    assert!(shown.contains("exporter sur"), "{shown}");
    assert_eq!(
        text(
            &browser,
            "return document.getElementById('to-export').textContent"
        ),
        n.to_string()
    );
    assert_eq!(
        text(
            &browser,
            "return document.getElementById('in-period').textContent"
        ),
        m.to_string()
    );
    assert!(text(
        &browser,
        "return document.getElementById('count').textContent"
    )
    .contains("à exporter sur"));
    // French dates and amounts.
    let table = text(
        &browser,
        "return document.getElementById('docs').textContent",
    );
    assert!(
        table.contains("29/07/2026") && table.contains("2\u{202F}538,90"),
        "{table}"
    );

    // The held document is struck through; its reasons open on a click.
    let held = "tr[data-number='F2026-0030']";
    let deco = text(
        &browser,
        &format!(
            "return getComputedStyle(document.querySelector(\"{held} s\")).textDecorationLine"
        ),
    );
    assert_eq!(deco, "line-through");
    assert_eq!(
        browser.script(&format!(
            "return document.querySelector(\"{held} input\").disabled"
        )),
        json!(true)
    );
    browser.click(&format!("{held} summary"));
    browser.wait_for(&format!(
        "return document.querySelector(\"{held} details\").open"
    ));
    let reasons = text(
        &browser,
        &format!("return document.querySelector(\"{held} details ul\").innerText"),
    );
    assert!(
        reasons.contains("TVA85") && reasons.contains("fix"),
        "{reasons}"
    );

    // Exclude one document: the count follows.
    let excluded = text(
        &browser,
        "return document.querySelector('tr.st-new input.pick').value",
    );
    browser.click("tr.st-new input.pick");
    assert_eq!(
        text(
            &browser,
            "return document.getElementById('to-export').textContent"
        ),
        (n - 1).to_string()
    );
    screenshot(&browser, "wizard-preview");

    // Export: the batch's page, with its report, sha256 and download link.
    browser.click("#do-export");
    browser.wait_for("return location.pathname.startsWith('/console/exports/') && document.getElementById('batch') !== null");
    screenshot(&browser, "export-report");
    let id = text(
        &browser,
        "return document.getElementById('batch').dataset.id",
    );
    assert_eq!(
        text(
            &browser,
            "return document.getElementById('batch-documents').textContent"
        ),
        (n - 1).to_string()
    );
    let docs = text(
        &browser,
        "return document.getElementById('batch-docs').textContent",
    );
    assert!(!docs.contains(&excluded), "{excluded} was excluded: {docs}");
    let (_, shown) = p.json(&["exports", "show", &id]);
    assert_eq!(shown["batch"]["documents"], json!(n - 1));
    assert_eq!(
        text(
            &browser,
            "return document.getElementById('sha256').textContent"
        ),
        shown["batch"]["sha256"].as_str().unwrap()
    );

    // The browser's download is byte for byte what `facto exports download` gives.
    let downloaded = browser.call(
        "POST",
        "/execute/async",
        Some(json!({"script": "const done = arguments[arguments.length - 1]; fetch(document.getElementById('download').href).then(r => r.arrayBuffer()).then(b => done(Array.from(new Uint8Array(b))));", "args": []})),
    )["value"]
        .clone();
    let downloaded: Vec<u8> = downloaded
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect();
    let cli = p.run(&["exports", "download", &id, "--out", "-"]);
    assert!(cli.status.success());
    assert!(!downloaded.is_empty());
    assert_eq!(
        downloaded, cli.stdout,
        "the console's download differs from the CLI's"
    );

    // Cancel, confirmed in the browser's dialog.
    browser.click("#cancel");
    let asked: Value = browser.call("GET", "/alert/text", None)["value"].clone();
    assert!(
        asked.as_str().unwrap().contains("Annuler cet export"),
        "{asked}"
    );
    browser.call("POST", "/alert/accept", Some(json!({})));
    browser.wait_for("return document.getElementById('batch') !== null && document.getElementById('batch').dataset.status === 'cancelled'");
    let (_, shown) = p.json(&["exports", "show", &id]);
    assert_eq!(shown["batch"]["status"], "cancelled");
    go(&browser, &format!("{base}/console/exports"));
    browser.wait_for(&format!(
        "return document.querySelector(\"tr.batch.cancelled[data-id='{id}']\") !== null"
    ));
    screenshot(&browser, "exports");

    // An admin page: refused to the accountant.
    go(&browser, &format!("{base}/console/audit"));
    browser.wait_for("return document.getElementById('refused') !== null");
    screenshot(&browser, "refused");
    assert_eq!(terminate(&mut daemon), 0);
}
