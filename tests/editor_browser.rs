//! The mapping editor in a real browser: headless Chromium driven through ChromeDriver (the
//! WebDriver protocol, spoken here with reqwest) goes through edit → check → save on the page
//! the daemon serves; the TOML file and the audit list are checked afterwards. `.ci/run`
//! installs Debian's `chromium` and `chromium-driver`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{free_port, Project};
use crate::daemon::{start, terminate};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
    child: Child,
    base: String,
    session: String,
    rt: tokio::runtime::Runtime,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    pub fn start() -> Option<Driver> {
        let (driver, browser) = (
            Path::new("/usr/bin/chromedriver"),
            Path::new("/usr/bin/chromium"),
        );
        if !driver.exists() || !browser.exists() {
            crate::common::skip(
                "chromium or chromium-driver is not installed (.ci/run installs them)",
            );
            return None;
        }
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let mut d = Driver {
            child,
            base,
            session: String::new(),
            rt,
        };
        let start = Instant::now();
        while d.raw("GET", "/status", None).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": browser, "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]}}}});
        let s = d.raw("POST", "/session", Some(caps)).unwrap();
        d.session = s["value"]["sessionId"]
            .as_str()
            .expect("no session")
            .to_owned();
        Some(d)
    }

    pub fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.rt.block_on(async {
            let mut r = reqwest::Client::new()
                .request(method.parse().unwrap(), format!("{}{path}", self.base));
            if let Some(b) = body {
                r = r.json(&b);
            }
            let resp = r.send().await.map_err(|e| e.to_string())?;
            resp.json::<Value>().await.map_err(|e| e.to_string())
        })
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
            .unwrap()
    }

    pub fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v["value"][ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    pub fn script(&self, js: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )["value"]
            .clone()
    }

    pub fn wait_for(&self, js: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.script(js);
            if !v.is_null() && v != json!(false) && v != json!("") {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {js}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn an_admin_adds_a_tax_code_in_the_browser_and_the_held_document_is_released() {
    let Some(browser) = Driver::start() else {
        return;
    };
    let p = Project::demo();
    let (mut daemon, addr, token) = start(&p);
    // Wait for the first pass (two documents held).
    let started = Instant::now();
    loop {
        let (_, held) = p.json(&["ledger", "list", "--state", "held", "--target", "sales-fec"]);
        if held.as_array().is_some_and(|a| a.len() == 2) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(100));
    }
    browser.call(
        "POST",
        "/url",
        Some(json!({"url": format!("http://{addr}/editor?token={token}")})),
    );
    browser.wait_for("return document.querySelector('[data-gap=\"tax:TVA85\"]') !== null");

    let form = "#edit-pcg-demo";
    browser.type_into(&format!("{form} input[name=code]"), "TVA85");
    browser.type_into(&format!("{form} input[name=rate]"), "8.5");
    browser.type_into(&format!("{form} input[name=category]"), "S");
    browser.type_into(&format!("{form} input[name=account]"), "445715");
    browser.type_into(&format!("{form} input[name=label]"), "TVA collectée 8,5%");
    browser.click(&format!("{form} button[name=check]"));
    browser
        .wait_for("return document.getElementById('result-pcg-demo').dataset.state === 'checked'");
    let checked = browser.script("return document.getElementById('result-pcg-demo').textContent");
    assert!(
        checked.as_str().unwrap().contains("F2026-0030"),
        "{checked}"
    );
    assert!(
        !p.read("mappings/pcg-demo.toml").contains("TVA85]"),
        "checking saves nothing"
    );

    browser.click(&format!("{form} button[name=save]"));
    // The page reloads after the save, without the gap and with the change in its list.
    browser.wait_for("return document.querySelector('[data-gap=\"tax:TVA85\"]') === null && document.getElementById('audit').textContent.includes('TVA85')");
    let toml = p.read("mappings/pcg-demo.toml");
    assert!(
        toml.contains("[tax.TVA85]") && toml.contains("account = \"445715\""),
        "{toml}"
    );
    assert!(
        toml.contains("# Mapping of the demo invoicing application"),
        "comments kept"
    );
    let audit = browser.script("return document.getElementById('audit').textContent");
    assert!(
        audit.as_str().unwrap().contains("+ rate = \"8.5\""),
        "{audit}"
    );
    assert_eq!(terminate(&mut daemon), 0);
}
