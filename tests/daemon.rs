//! The daemon through the real binary: `facto run` holds the ledger, runs the job at once and
//! then on its schedule, serves `/health` and `/metrics`, refuses requests without the admin
//! token, runs the CLI's ledger commands for clients while it holds the lock, and stops on
//! SIGTERM (even in the middle of a pass) with exit 0, nothing lost and nothing twice; a second
//! signal exits at once (130), and the next sync settles the pass it cut short.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{active_batches, Project, DEMO_DELIVERABLE};

pub fn start(p: &Project) -> (Child, String, String) {
    start_with(p, "", &[])
}

/// Starts `facto run` with more `[daemon]` settings and environment variables; returns the child,
/// the address it listens on and the admin token.
// The child is handed to the caller, which waits for it (`terminate`).
#[allow(clippy::zombie_processes)]
pub fn start_with(p: &Project, daemon: &str, env: &[(&str, &str)]) -> (Child, String, String) {
    let cfg = p.read("facto.toml") + "\n[daemon]\nlisten = \"127.0.0.1:0\"\n" + daemon;
    p.write("facto.toml", &cfg);
    let mut child = p
        .command(&["run"])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Ok(b) = std::fs::read(p.path("data/daemon.json")) {
            let h: Value = serde_json::from_slice(&b).unwrap();
            let token = std::fs::read_to_string(p.path("data/admin-token")).unwrap();
            return (
                child,
                h["addr"].as_str().unwrap().to_owned(),
                token.trim().to_owned(),
            );
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut r = reqwest::Client::new().get(format!("http://{addr}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

fn sigterm(child: &Child) {
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

pub fn terminate(child: &mut Child) -> i32 {
    sigterm(child);
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the daemon did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn daemon_serves_health_metrics_and_the_cli_then_stops_cleanly() {
    let p = Project::demo();
    let (mut child, addr, token) = start(&p);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p.path("data/admin-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (code, body) = get(&addr, "/health", None);
    assert_eq!((code, body.contains("\"ok\"")), (200, true), "{body}");
    let (code, _) = get(&addr, "/metrics", None);
    assert_eq!(
        code, 401,
        "the admin API refuses requests without the token"
    );
    let (code, _) = get(&addr, "/metrics", Some("wrong"));
    assert_eq!(code, 401);

    // The first pass runs at start.
    let start = Instant::now();
    let metrics = loop {
        let (code, m) = get(&addr, "/metrics", Some(&token));
        assert_eq!(code, 200);
        if m.contains(&format!("facto_documents{{job=\"demo\",target=\"sales-fec\",state=\"delivered\"}} {DEMO_DELIVERABLE}"))
            && m.contains("facto_last_success_timestamp_seconds{job=\"demo\"}")
        {
            break m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no pass recorded: {m}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(metrics.contains("facto_ledger_size_bytes") && metrics.contains("facto_retries_total"));

    // The CLI goes through the daemon while it holds the ledger.
    let (code, held) = p.json(&["ledger", "list", "--state", "held"]);
    assert_eq!(code, 0, "{held}");
    assert_eq!(held.as_array().unwrap().len(), 4);
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["targets"][0]["delivered"], 0, "nothing twice: {r}");
    let out = p.run(&["exports", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("sales-fec"));

    assert_eq!(terminate(&mut child), 0);
    assert!(!p.path("data/daemon.json").exists());
    // The ledger is free again for a direct command.
    let (code, claimed) = p.json(&["ledger", "list", "--state", "claimed"]);
    assert_eq!((code, claimed.as_array().unwrap().len()), (0, 0));
}

#[test]
fn sigterm_during_the_first_pass_loses_nothing_and_sends_nothing_twice() {
    let p = Project::demo();
    let (mut child, _, _) = start(&p);
    // The first pass starts with the daemon: stop it at once.
    assert_eq!(terminate(&mut child), 0);
    let (code, claimed) = p.json(&["ledger", "list", "--state", "claimed"]);
    assert_eq!(
        (code, claimed.as_array().unwrap().len()),
        (0, 0),
        "{claimed}"
    );
    // Whatever the pass did is whole; a sync completes the rest, each document once.
    let (_, _r) = p.json(&["sync"]);
    for t in ["sales-fec", "sales-csv"] {
        let mut seen = std::collections::BTreeMap::<String, u32>::new();
        for (_, docs) in active_batches(&p, t) {
            for d in docs {
                *seen.entry(d).or_default() += 1;
            }
        }
        assert_eq!(seen.len() as u64, DEMO_DELIVERABLE, "{t}");
        assert!(seen.values().all(|n| *n == 1), "{t}: {seen:?}");
    }
}

/// Starts the daemon with its first pass paused after its first claim, as a pass that takes long.
fn daemon_with_a_pass_in_flight(p: &Project, grace_secs: u32) -> Child {
    let flag = p.path("paused");
    let flag = flag.to_str().unwrap();
    let (child, _, _) = start_with(
        p,
        &format!("shutdown_grace_secs = {grace_secs}\n"),
        &[
            ("FACTO_TEST_PAUSE_AT", "after-claim"),
            ("FACTO_TEST_PAUSE_FILE", flag),
        ],
    );
    let start = Instant::now();
    while !std::path::Path::new(flag).exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no claim");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// The claim was flushed before the daemon stopped: the next sync rolls the batch back and
/// delivers every document once.
fn next_sync_settles_the_cut_pass(p: &Project) {
    let (code, _) = p.json(&["sync"]);
    assert_eq!(code, 1, "the demo holds two documents back");
    let (_, claimed) = p.json(&["ledger", "list", "--state", "claimed"]);
    assert_eq!(claimed.as_array().unwrap().len(), 0, "{claimed}");
    for t in ["sales-fec", "sales-csv"] {
        let mut seen = std::collections::BTreeMap::<String, u32>::new();
        for (_, docs) in active_batches(p, t) {
            for d in docs {
                *seen.entry(d).or_default() += 1;
            }
        }
        assert_eq!(seen.len() as u64, DEMO_DELIVERABLE, "{t}");
        assert!(seen.values().all(|n| *n == 1), "{t}: {seen:?}");
    }
}

#[test]
fn a_second_signal_exits_at_once_and_the_next_sync_settles_the_pass_in_flight() {
    let p = Project::demo();
    // The grace period would wait ten minutes for the pass.
    let mut child = daemon_with_a_pass_in_flight(&p, 600);
    sigterm(&child);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first signal must wait for the pass in flight"
    );
    // The admin API still answers while the pass runs.
    let h = serde_json::from_slice::<Value>(&std::fs::read(p.path("data/daemon.json")).unwrap())
        .unwrap();
    assert_eq!(get(h["addr"].as_str().unwrap(), "/health", None).0, 200);
    assert_eq!(terminate(&mut child), 130);
    next_sync_settles_the_cut_pass(&p);
}

#[test]
fn a_pass_still_running_after_the_grace_period_is_cut_and_settled_by_the_next_sync() {
    let p = Project::demo();
    let mut child = daemon_with_a_pass_in_flight(&p, 1);
    assert_eq!(terminate(&mut child), 0);
    next_sync_settles_the_cut_pass(&p);
}

fn call(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, String, Vec<(String, String)>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut r = client.request(method.parse().unwrap(), format!("http://{addr}{path}"));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let hs = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        (resp.status().as_u16(), resp.text().await.unwrap(), hs)
    })
}

#[test]
fn the_mapping_editor_checks_saves_with_comments_kept_and_audits() {
    let p = Project::demo();
    let (mut child, addr, token) = start(&p);
    // Wait for the first pass: F2026-0030 is held for its unmapped tax code.
    let start_at = Instant::now();
    while !get(&addr, "/metrics", Some(&token))
        .1
        .contains("state=\"held\"} 2")
    {
        assert!(start_at.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(call(&addr, "GET", "/editor", &[], None).0, 401);
    let (code, _, hs) = call(&addr, "GET", &format!("/editor?token={token}"), &[], None);
    assert_eq!(code, 303);
    let cookie = hs
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.split(';').next().unwrap().to_owned())
        .unwrap();
    let (code, page, _) = call(&addr, "GET", "/editor", &[("Cookie", &cookie)], None);
    assert_eq!(code, 200);
    assert!(
        page.contains("data-gap=\"tax:TVA85\"") && page.contains("F2026-0030"),
        "{page}"
    );

    let edit = |rate: &str| {
        serde_json::json!({"mapping": "pcg-demo", "table": "tax", "code": "TVA85",
            "fields": {"rate": rate, "category": "S", "account": "445715", "label": "TVA collectée 8,5%"}})
    };
    // The cookie alone cannot change anything.
    let (code, _, _) = call(
        &addr,
        "POST",
        "/api/mapping/preview",
        &[("Cookie", &cookie)],
        Some(edit("8.5")),
    );
    assert_eq!(code, 401);
    let with = [("Cookie", cookie.as_str()), ("X-Facto-Editor", "1")];
    let (_, bad, _) = call(
        &addr,
        "POST",
        "/api/mapping/preview",
        &with,
        Some(edit("huit")),
    );
    assert!(
        bad.contains("\"ok\":false") && bad.contains("huit") && bad.contains("pcg-demo.toml:"),
        "{bad}"
    );
    let (_, good, _) = call(
        &addr,
        "POST",
        "/api/mapping/preview",
        &with,
        Some(edit("8.5")),
    );
    let good: Value = serde_json::from_str(&good).unwrap();
    assert_eq!(
        good["releases"],
        serde_json::json!(["F2026-0030"]),
        "{good}"
    );
    let before = p.read("mappings/pcg-demo.toml");
    let (_, saved, _) = call(&addr, "POST", "/api/mapping/save", &with, Some(edit("8.5")));
    assert!(saved.contains("\"saved\":true"), "{saved}");
    // The same save by a program with the token: audited as the API's, not the editor's.
    let bearer = format!("Bearer {token}");
    let (_, again, _) = call(
        &addr,
        "POST",
        "/api/mapping/save",
        &[("Authorization", bearer.as_str())],
        Some(edit("8.5")),
    );
    assert!(again.contains("\"saved\":true"), "{again}");
    let after = p.read("mappings/pcg-demo.toml");
    assert!(
        after.contains("[tax.TVA85]") && after.contains("rate = \"8.5\""),
        "{after}"
    );
    // Comments and layout kept: the old text is still there, line for line.
    for line in before.lines().filter(|l| l.starts_with('#')) {
        assert!(after.contains(line), "lost: {line}");
    }
    let (_, page, _) = call(&addr, "GET", "/editor", &[("Cookie", &cookie)], None);
    assert!(
        page.contains("+ rate = &quot;8.5&quot;") || page.contains("+ rate = \"8.5\""),
        "{page}"
    );
    // The next pass delivers the released document (the CLI's sync goes through the daemon).
    let (_, r) = p.json(&["sync"]);
    let fec = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "sales-fec")
        .unwrap()
        .clone();
    assert_eq!(fec["delivered"], 1, "{r}");
    assert_eq!(terminate(&mut child), 0);
    let ledger = facto::ledger::sled::SledLedger::open(&p.path("data")).unwrap();
    let whos: Vec<String> = facto::ledger::Ledger::audit_trail(&ledger)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "mapping-edit")
        .map(|e| e.who)
        .collect();
    assert_eq!(whos, ["editor", "api"]);
}
