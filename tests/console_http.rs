//! The web console over plain HTTP: login and its cookie, the CSRF header, the two roles (the
//! accountant refused on a mapping save and on admin pages with 403), an export made from the
//! console recorded once, with the role, in the audit log.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::common::Project;
use crate::daemon::{start, terminate};

pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in with `token`; returns the `Cookie` header value of the session and the raw
/// `Set-Cookie`.
pub async fn login(addr: &str, token: &str) -> (String, String) {
    let r = client()
        .post(format!("http://{addr}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/console/export");
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let pair = set.split(';').next().unwrap().to_owned();
    (pair, set)
}

/// The CSRF token a page hands its script.
pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" content=\"").unwrap() + 21;
    page[at..].split('"').next().unwrap().to_owned()
}

async fn get(addr: &str, path: &str, cookie: &str) -> (StatusCode, String) {
    let r = client()
        .get(format!("http://{addr}{path}"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

pub async fn post(
    addr: &str,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut r = client()
        .post(format!("http://{addr}{path}"))
        .header(COOKIE, cookie)
        .json(body);
    if let Some(c) = csrf {
        r = r.header("x-facto-csrf", c);
    }
    r.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn console_roles_cookie_and_csrf_guard_every_change() {
    let p = Project::demo();
    let (mut daemon, addr, admin) = start(&p);
    let accountant = std::fs::read_to_string(p.path("data/accountant-token")).unwrap();
    let accountant = accountant.trim();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p.path("data/accountant-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_ne!(accountant, admin);

    // No session: to the login page; a wrong token is refused.
    let r = client()
        .get(format!("http://{addr}/console/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/console/login");
    let r = client()
        .post(format!("http://{addr}/console/login"))
        .body("token=not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(SET_COOKIE).is_none());

    // The accountant's session: a strict cookie with a random id, never the token.
    let (cookie, set) = login(&addr, accountant).await;
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains(accountant) && !set.contains(&admin), "{set}");
    let (status, page) = get(&addr, "/console/export", &cookie).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("data-role=\"accountant\""));
    // Every journal-file connector is offered, the job's and the folder's (Chorus files too).
    for t in ["sales-fec", "sales-quadratus", "chorus-files"] {
        assert!(
            page.contains(&format!("<option value=\"{t}\"")),
            "{t}: {page}"
        );
    }
    assert!(!page.contains("<option value=\"pa\""), "{page}");
    let csrf = csrf_of(&page);
    assert!(csrf.len() >= 40);

    // Admin pages and the admin API: 403 for the accountant, with a clear page.
    let (status, page) = get(&addr, "/console/audit", &cookie).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains("id=\"refused\"") && page.contains("comptable"),
        "{page}"
    );
    let edit = json!({"mapping": "pcg-demo", "table": "tax", "key": "TVA85", "values": {"rate": "8.5", "category": "S", "account": "445715", "label": "x"}});
    let r = client()
        .post(format!("http://{addr}/api/mapping/save"))
        .bearer_auth(accountant)
        .header("x-facto-editor", "1")
        .json(&edit)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(&addr, "/api/mapping/save", &cookie, Some(&csrf), &edit).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = client()
        .post(format!("http://{addr}/api/cli"))
        .bearer_auth(accountant)
        .json(&json!({"args": ["exports", "list"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!p.read("mappings/pcg-demo.toml").contains("TVA85]"));

    // An export without the CSRF header, or with another session's, changes nothing.
    let form = json!({"job": "demo", "target": "sales-quadratus", "from": "2026-01-01", "to": "2026-03-31", "exclude": ["F2026-0002"]});
    let r = post(&addr, "/console/export", &cookie, None, &form).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(&addr, "/console/export", &cookie, Some("forged"), &form).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, batches) = p.json(&["exports", "list"]);
    assert!(
        !batches
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["target"] == "sales-quadratus"),
        "{batches}"
    );

    // With it: one batch, the excluded document left out, audited with the role.
    let r = post(&addr, "/console/export", &cookie, Some(&csrf), &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let batch_page = r.headers()[LOCATION].to_str().unwrap().to_owned();
    let id: u64 = batch_page.rsplit('/').next().unwrap().parse().unwrap();
    let (_, shown) = p.json(&["exports", "show", &id.to_string()]);
    let numbers: Vec<&str> = shown["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["number"].as_str().unwrap())
        .collect();
    assert!(
        numbers.contains(&"F2026-0001") && !numbers.contains(&"F2026-0002"),
        "{numbers:?}"
    );
    assert_eq!(shown["batch"]["target"], "sales-quadratus");
    let (status, page) = get(&addr, &batch_page, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(shown["batch"]["sha256"].as_str().unwrap()),
        "{page}"
    );
    // The same export again: nothing left to export (the CLI's rules), no second batch.
    let r = post(&addr, "/console/export", &cookie, Some(&csrf), &form).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, batches) = p.json(&["exports", "list"]);
    let ours = batches
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["target"] == "sales-quadratus")
        .count();
    assert_eq!(ours, 1, "{batches}");

    // The preview shows the exported documents apart; "include already exported" exports
    // them again, as `facto export --include-exported` does.
    let (_, page) = get(
        &addr,
        "/console/export?job=demo&target=sales-quadratus&from=2026-01-01&to=2026-03-31",
        &cookie,
    )
    .await;
    assert!(
        page.contains("class=\"pick exported\" value=\"F2026-0001\" disabled")
            && page.contains("class=\"pick\" value=\"F2026-0002\" checked"),
        "{page}"
    );
    let again = json!({"job": "demo", "target": "sales-quadratus", "from": "2026-01-01", "to": "2026-03-31", "include_exported": true, "exclude": ["F2026-0002"]});
    let r = post(&addr, "/console/export", &cookie, Some(&csrf), &again).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let second: u64 = r.headers()[LOCATION]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(second, id);
    let (_, shown) = p.json(&["exports", "show", &second.to_string()]);
    assert!(
        shown["documents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["number"] == "F2026-0001"),
        "{shown}"
    );

    // The accountant cancels the second batch: `exports cancel` records it, with the role as
    // who acted, and the console adds no second event (it once did).
    let url = format!("/console/exports/{second}/cancel");
    let r = post(&addr, &url, &cookie, Some(&csrf), &json!({})).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The first from the command line (signed, forwarded to the daemon): who is the CLI.
    let (code, _) = p.json(&["exports", "cancel", &id.to_string()]);
    assert_eq!(code, 0);

    // The admin sees the audit log, with the accountant's export in it.
    let (admin_cookie, _) = login(&addr, &admin).await;
    let (status, audit) = get(&addr, "/console/audit", &admin_cookie).await;
    assert_eq!(status, StatusCode::OK);
    let cancels: Vec<&str> = audit
        .split("<tr")
        .filter(|r| r.contains(&format!("export batch {second} cancelled")))
        .collect();
    assert_eq!(cancels.len(), 1, "one event per cancel: {audit}");
    assert!(
        cancels[0].contains("data-action=\"cancel-batch\" data-who=\"console:accountant\"")
            && cancels[0].contains(">comptable (console)<")
            && !cancels[0].contains("command line"),
        "{}",
        cancels[0]
    );
    let by_cli = audit
        .split("<tr")
        .find(|r| r.contains(&format!("export batch {id} cancelled")))
        .unwrap_or_default();
    assert!(
        by_cli.contains("data-who=\"cli\"") && by_cli.contains(">ligne de commande<"),
        "{by_cli}"
    );
    assert!(
        audit.contains("console-export") && audit.contains(&format!("export batch {id}")),
        "{audit}"
    );
    assert!(audit.contains("role accountant"), "{audit}");
    assert!(
        audit.contains("console-login") && audit.contains("role admin"),
        "{audit}"
    );

    // Logging out ends the session on the server.
    let r = post(&addr, "/console/logout", &cookie, Some(&csrf), &json!({})).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (status, _) = get(&addr, "/console/exports", &cookie).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(terminate(&mut daemon), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_speaks_french_by_default_and_english_on_request() {
    let p = Project::demo();
    let (mut daemon, addr, admin) = start(&p);
    let (cookie, _) = login(&addr, &admin).await;
    let (_, page) = get(
        &addr,
        "/console/export?job=demo&target=sales-quadratus&from=2026-07-01&to=2026-07-31",
        &cookie,
    )
    .await;
    assert!(page.contains("<html lang=\"fr\""), "{page}");
    assert!(page.contains("à exporter sur"), "{page}");
    // F2026-0030 (29/07/2026, 2 538,90 TTC) is held: struck through, with its reason.
    assert!(
        page.contains("29/07/2026") && page.contains("2\u{202F}538,90"),
        "{page}"
    );
    assert!(
        page.contains("<s>F2026-0030</s>") && page.contains("TVA85"),
        "{page}"
    );
    let r = client()
        .get(format!("http://{addr}/console/lang?to=en"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let lang = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (_, page) = get(
        &addr,
        "/console/export?job=demo&target=sales-quadratus&from=2026-07-01&to=2026-07-31",
        &format!("{cookie}; {lang}"),
    )
    .await;
    assert!(
        page.contains("<html lang=\"en\"") && page.contains("to export of"),
        "{page}"
    );
    assert!(
        page.contains("2026-07-29") && page.contains("2,538.90"),
        "{page}"
    );
    assert_eq!(terminate(&mut daemon), 0);
}

#[test]
fn an_unknown_console_locale_is_refused_with_its_line() {
    let p = Project::demo();
    let cfg = p.read("facto.toml").replace(
        "fiscal_year_end = \"12-31\"",
        "fiscal_year_end = \"12-31\"\nlocale = \"de\"",
    );
    p.write("facto.toml", &cfg);
    let out = p.run(&["preview"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("facto.toml:13") && err.contains("`de`"),
        "{err}"
    );
}

/// The wizard sends the documents ticked in its preview: exactly those are exported, so a
/// document that arrived (or was fixed) after the preview is never exported unseen; none ticked,
/// nothing exported.
#[tokio::test(flavor = "multi_thread")]
async fn the_wizard_exports_exactly_the_ticked_documents() {
    let p = Project::demo();
    let (mut daemon, addr, admin) = start(&p);
    let (cookie, _) = login(&addr, &admin).await;
    let (_, page) = get(&addr, "/console/exports", &cookie).await;
    let csrf = csrf_of(&page);
    let base = json!({"job": "demo", "target": "sales-quadratus", "from": "2026-01-01", "to": "2026-03-31"});
    let mut none = base.clone();
    none["only"] = json!([]);
    let r = post(&addr, "/console/export", &cookie, Some(&csrf), &none).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // (The daemon's own pass writes the demo job's sync targets; this export's target is none.)
    let (_, batches) = p.json(&["exports", "list"]);
    assert!(
        !batches
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["target"] == "sales-quadratus"),
        "{batches}"
    );
    let mut two = base.clone();
    two["only"] = json!(["F2026-0001", "F2026-0003"]);
    let r = post(&addr, "/console/export", &cookie, Some(&csrf), &two).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let id = r.headers()[LOCATION]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let (_, shown) = p.json(&["exports", "show", &id]);
    let mut numbers: Vec<&str> = shown["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["number"].as_str().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, ["F2026-0001", "F2026-0003"]);
    assert_eq!(terminate(&mut daemon), 0);
}
