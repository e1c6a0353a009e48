//! The console's Mappings and Audit pages over plain HTTP: the admin saves a rate typed with a
//! decimal comma and the file holds it with a point; a deletion is refused until confirmed,
//! showing what it would hold back, then audited with the role and the diff; the accountant
//! reads but every change is refused (403); the search filters; every held reason shows with
//! its fix, not only mapping gaps. The same in a browser: search as one types, a row edited in
//! place, a deletion confirmed in the browser's dialog (screenshots in `target/console-screens/`).

use reqwest::header::COOKIE;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::Project;
use crate::console_browser::screenshot;
use crate::console_http::{csrf_of, login};
use crate::daemon::{start, terminate};

async fn get(addr: &str, path: &str, cookie: &str) -> (StatusCode, String) {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn post(
    addr: &str,
    path: &str,
    cookie: &str,
    csrf: &str,
    body: &Value,
) -> (StatusCode, String) {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .header(COOKIE, cookie)
        .header("x-facto-csrf", csrf)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn mappings_are_edited_deleted_and_audited_from_the_console() {
    let p = Project::demo();
    // A pass first: F2026-0030 held for a missing tax code, F2026-0032 for its totals.
    let (code, _) = p.json(&["sync"]);
    assert_eq!(code, 1);
    let (mut daemon, addr, admin) = start(&p);
    let accountant = std::fs::read_to_string(p.path("data/accountant-token")).unwrap();
    let original = p.read("mappings/pcg-demo.toml");

    // The accountant reads the page, with every held reason and its fix, and cannot change it.
    let (acc, _) = login(&addr, accountant.trim()).await;
    let (status, page) = get(&addr, "/console/mappings", &acc).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("id=\"read-only\"") && !page.contains("class=\"edit\""),
        "{page}"
    );
    assert!(
        page.contains("TVA85") && page.contains("add [tax.&quot;TVA85&quot;]"),
        "{page}"
    );
    assert!(
        page.contains("839.26") && page.contains("correct the amounts"),
        "the totals reason is shown too: {page}"
    );
    // Counted once per document, though it is held for each of its job's two targets.
    assert!(
        page.contains("<td class=\"num\">1</td><td>F2026-0032</td>"),
        "{page}"
    );
    let acc_csrf = csrf_of(&page);
    let save = json!({"mapping": "pcg-demo", "table": "tax", "code": "TVA85",
        "fields": {"rate": "8,5", "category": "S", "account": "445715", "label": "TVA collectée 8,5%"}});
    let (status, _) = post(&addr, "/console/mappings/save", &acc, &acc_csrf, &save).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let delete = json!({"mapping": "pcg-demo", "table": "tax", "code": "TVA55"});
    let (status, _) = post(
        &addr,
        "/console/mappings/delete",
        &acc,
        &acc_csrf,
        &json!({"mapping": "pcg-demo", "table": "tax", "code": "TVA55", "confirm": true}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(p.read("mappings/pcg-demo.toml"), original);

    // The admin saves a rate typed with a decimal comma: the file holds a decimal point.
    let (adm, _) = login(&addr, &admin).await;
    let (_, page) = get(&addr, "/console/mappings", &adm).await;
    assert!(
        page.contains("class=\"edit\"") && page.contains("class=\"delete\""),
        "{page}"
    );
    let csrf = csrf_of(&page);
    let (status, checked) = post(&addr, "/console/mappings/check", &adm, &csrf, &save).await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert!(
        checked.contains("F2026-0030"),
        "the check lists what it releases: {checked}"
    );
    let (status, saved) = post(&addr, "/console/mappings/save", &adm, &csrf, &save).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let text = p.read("mappings/pcg-demo.toml");
    let entry = text.split("[tax.TVA85]").nth(1).unwrap_or_default();
    assert!(entry.contains("\nrate = \"8.5\"\n"), "{text}");
    assert!(!text.contains("rate = \"8,5\""), "{text}");
    let (status, refused) = post(&addr, "/console/mappings/save", &adm, &csrf,
        &json!({"mapping": "pcg-demo", "table": "tax", "code": "TVA85", "fields": {"rate": "huit"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(
        refused.contains("pcg-demo.toml:"),
        "the error names its line: {refused}"
    );

    // The search filters entries by code, account or label.
    let (_, found) = get(&addr, "/console/mappings?q=445715", &adm).await;
    assert!(found.contains("data-code=\"TVA85\""), "{found}");
    assert!(
        !found.contains("data-code=\"TVA20\"") && !found.contains("data-code=\"C001\""),
        "{found}"
    );
    let (_, found) = get(&addr, "/console/mappings?q=mairie", &adm).await;
    assert!(
        found.contains("data-code=\"C002\"") && !found.contains("data-code=\"C001\""),
        "{found}"
    );

    // A deletion: refused until confirmed, with what it would hold back; then done.
    let (status, impact) = post(&addr, "/console/mappings/delete", &adm, &csrf, &delete).await;
    assert_eq!(status, StatusCode::CONFLICT, "{impact}");
    let impact: Value = serde_json::from_str(&impact).unwrap();
    assert!(
        impact["holds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "F2026-0003"),
        "{impact}"
    );
    assert!(p.read("mappings/pcg-demo.toml").contains("[tax.TVA55]"));
    let mut confirmed = delete.clone();
    confirmed["confirm"] = json!(true);
    let (status, done) = post(&addr, "/console/mappings/delete", &adm, &csrf, &confirmed).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(!p.read("mappings/pcg-demo.toml").contains("[tax.TVA55]"));

    // The audit page lists both changes, newest first, with the role and the diff.
    let (status, audit) = get(&addr, "/console/audit", &adm).await;
    assert_eq!(status, StatusCode::OK);
    let del = audit
        .find("mapping-delete")
        .expect("the deletion is audited");
    let edit = audit.find("mapping-edit").expect("the save is audited");
    assert!(del < edit, "newest first: {audit}");
    assert!(audit.contains("- [tax.TVA55]"), "{audit}");
    assert!(audit.contains("+ rate = &quot;8.5&quot;"), "{audit}");
    assert!(
        audit.contains("role admin") && audit.contains("administrateur (console)"),
        "{audit}"
    );
    let (status, _) = get(&addr, "/console/audit", &acc).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(terminate(&mut daemon), 0);
}

/// The base (sha256 of the file) the admin's page shows for `pcg-demo`.
fn base_of(page: &str) -> String {
    let at = "data-mapping=\"pcg-demo\" data-base=\"";
    let rest = page
        .split(at)
        .nth(1)
        .expect("the page carries the file's base");
    rest.split('"').next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deletion_whose_source_cannot_be_read_warns_and_a_save_on_a_stale_page_is_refused() {
    let p = Project::demo();
    let (mut daemon, addr, admin) = start(&p);
    // The job's source folder is gone: what a deletion would hold back cannot be known.
    std::fs::rename(p.path("examples/invoices"), p.path("examples/gone")).unwrap();
    let (adm, _) = login(&addr, &admin).await;
    let (_, page) = get(&addr, "/console/mappings", &adm).await;
    let csrf = csrf_of(&page);
    let base = base_of(&page);
    assert_eq!(base.len(), 64, "{page}");
    let delete = json!({"mapping": "pcg-demo", "table": "tax", "code": "TVA10", "base": base});
    let (status, impact) = post(&addr, "/console/mappings/delete", &adm, &csrf, &delete).await;
    assert_eq!(status, StatusCode::CONFLICT, "{impact}");
    let impact: Value = serde_json::from_str(&impact).unwrap();
    let unknown = impact["impact_unknown"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        unknown.len() == 1 && unknown[0].as_str().unwrap().starts_with("job demo:"),
        "the impact is unknown, and says why: {impact}"
    );
    assert_eq!(impact["confirm"], "needed");
    assert!(p.read("mappings/pcg-demo.toml").contains("[tax.TVA10]"));
    // Confirmed all the same: the entry goes.
    let mut confirmed = delete.clone();
    confirmed["confirm"] = json!(true);
    let (status, done) = post(&addr, "/console/mappings/delete", &adm, &csrf, &confirmed).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(!p.read("mappings/pcg-demo.toml").contains("[tax.TVA10]"));

    // Two pages loaded on the same file: the first save lands, the second is refused (409)
    // and the file holds the first's edit only.
    let (_, page) = get(&addr, "/console/mappings", &adm).await;
    let base = base_of(&page);
    let save = |code: &str| {
        json!({"mapping": "pcg-demo", "table": "gl.accounts", "code": code, "base": base,
            "fields": {"account": "706000", "label": code}})
    };
    let (status, first) = post(&addr, "/console/mappings/save", &adm, &csrf, &save("FIRST")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, second) = post(
        &addr,
        "/console/mappings/save",
        &adm,
        &csrf,
        &save("SECOND"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{second}");
    assert!(
        second.contains("changed since this page was loaded"),
        "{second}"
    );
    let text = p.read("mappings/pcg-demo.toml");
    assert!(
        text.contains("[gl.accounts.FIRST]") && !text.contains("SECOND"),
        "{text}"
    );
    // The same stale page cannot delete either.
    let (status, _) = post(&addr, "/console/mappings/delete", &adm, &csrf,
        &json!({"mapping": "pcg-demo", "table": "tax", "code": "TVA55", "base": base, "confirm": true})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(p.read("mappings/pcg-demo.toml").contains("[tax.TVA55]"));
    assert_eq!(terminate(&mut daemon), 0);
}

/// Polls `cond` on the mapping file for up to 30 s.
fn wait_file(p: &Project, cond: impl Fn(&str) -> bool) -> String {
    let start = std::time::Instant::now();
    loop {
        let text = p.read("mappings/pcg-demo.toml");
        if cond(&text) {
            return text;
        }
        assert!(start.elapsed().as_secs() < 30, "{text}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn an_admin_searches_edits_in_place_and_deletes_in_a_browser() {
    use crate::editor_browser::Driver;
    let Some(b) = Driver::start() else {
        return;
    };
    let p = Project::demo();
    let (mut daemon, addr, admin) = start(&p);
    let base = format!("http://{addr}");
    b.call(
        "POST",
        "/url",
        Some(json!({ "url": format!("{base}/console/login") })),
    );
    b.wait_for("return document.querySelector('input[name=token]') !== null");
    b.type_into("input[name=token]", &admin);
    b.click("form button[type=submit]");
    b.wait_for("return location.pathname === '/console/export'");
    b.call(
        "POST",
        "/url",
        Some(json!({ "url": format!("{base}/console/mappings") })),
    );
    b.wait_for("return document.querySelector('table.entries') !== null");

    screenshot(&b, "mappings");

    // The search hides the rows that do not match as one types.
    b.type_into("#search", "mairie");
    b.wait_for("return document.querySelector('tr.entry[data-code=C001]').hidden && !document.querySelector('tr.entry[data-code=C002]').hidden");
    b.script("const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input')); return true;");
    b.wait_for("return !document.querySelector('tr.entry[data-code=C001]').hidden");

    // Edit in place: the row becomes inputs, checked on the spot, saved with the decimal comma.
    b.click("tr.entry[data-code=TVA10] button.edit");
    b.script("document.querySelector('tr.entry[data-code=TVA10] input[name=rate]').value = ''; return true;");
    b.type_into("tr.entry[data-code=TVA10] input[name=rate]", "10,50");
    b.wait_for("const r = document.querySelector('section.mapping pre.result'); return r.dataset.state === 'checked' && r.textContent.includes('10.5')");
    b.click("tr.entry[data-code=TVA10] button.save");
    wait_file(&p, |t| {
        t.split("[tax.TVA10]")
            .nth(1)
            .is_some_and(|e| e.starts_with("\nrate = \"10.5\"\n"))
    });

    // Delete: the confirmation says what it would hold back; accepted, the entry goes.
    // The page reloads after a save: the row shows the new rate, as text again.
    b.wait_for("const c = document.querySelector('tr.entry[data-code=TVA10] td[data-key=rate]'); return c !== null && c.textContent === '10.5' && document.readyState === 'complete'");
    b.click("tr.entry[data-code=TVA55] button.delete");
    let start = std::time::Instant::now();
    let asked = loop {
        // The confirmation comes once the server answered with the deletion's impact.
        if let Some(s) = b.call("GET", "/alert/text", None)["value"].as_str() {
            break s.to_owned();
        }
        assert!(start.elapsed().as_secs() < 30, "no confirmation asked");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        asked.contains("Supprimer cette entrée") && asked.contains("F2026-0003"),
        "{asked}"
    );
    b.call("POST", "/alert/accept", Some(json!({})));
    wait_file(&p, |t| !t.contains("[tax.TVA55]"));
    b.call(
        "POST",
        "/url",
        Some(json!({ "url": format!("{base}/console/audit") })),
    );
    b.wait_for("return document.getElementById('audit') !== null");
    screenshot(&b, "audit");
    assert_eq!(terminate(&mut daemon), 0);
}
