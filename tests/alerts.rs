//! Alerts on the real binary, against a webhook receiver (wiremock) and an SMTP sink written here
//! (enough of EHLO / MAIL / RCPT / DATA / QUIT), both on 127.0.0.1: one message per pass and
//! channel, none for problems already alerted, none twice across a SIGKILL between the record
//! and the send, one after a receiver's 500.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use facto::ledger::Ledger as _;

use crate::common::{json_of, kill_at, Project};

pub const KEY: &str = "alert-signing-key";

/// The mails an SMTP sink received (their DATA).
#[derive(Clone, Default)]
struct Mails(Arc<Mutex<Vec<String>>>);

impl Mails {
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Starts an SMTP sink on 127.0.0.1; returns its address and what it receives.
async fn smtp_sink() -> (SocketAddr, Mails) {
    smtp_sink_slow(Duration::ZERO).await
}

/// An SMTP sink that keeps each message, then waits `reply_after` before its `250`.
async fn smtp_sink_slow(reply_after: Duration) -> (SocketAddr, Mails) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mails = Mails::default();
    let m = mails.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(session(s, m.clone(), reply_after));
        }
    });
    (addr, mails)
}

async fn session(s: TcpStream, mails: Mails, reply_after: Duration) {
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let _ = w.write_all(b"220 sink ESMTP\r\n").await;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
            b"250 sink\r\n"
        } else if ["MAIL", "RCPT", "RSET", "NOOP"]
            .iter()
            .any(|c| cmd.starts_with(c))
        {
            b"250 OK\r\n"
        } else if cmd == "DATA" {
            let _ = w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await;
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            mails.0.lock().unwrap().push(data);
            tokio::time::sleep(reply_after).await;
            b"250 queued\r\n"
        } else if cmd == "QUIT" {
            let _ = w.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"502 not implemented\r\n"
        };
        let _ = w.write_all(reply).await;
    }
}

/// The demo project (two documents held on its first sync) with alerts to `hook` and, when
/// given, the SMTP sink at `smtp`.
fn project(hook: &MockServer, smtp: Option<SocketAddr>) -> Project {
    let p = Project::demo();
    let mut cfg = p.read("facto.toml");
    cfg.push_str(&format!(
        "\n[alerts]\nwebhook_url = \"{}/alerts\"\nwebhook_secret_env = \"FACTO_TEST_ALERT_KEY\"\n",
        hook.uri()
    ));
    if let Some(a) = smtp {
        cfg.push_str(&format!(
            "[alerts.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"facto@example.fr\"\nto = [\"compta@example.fr\", \"Admin <admin@example.fr>\"]\n",
            a.port()
        ));
    }
    p.write("facto.toml", &cfg);
    p
}

fn sync(p: &Project) -> std::process::Command {
    let mut c = p.command(&["--json", "sync"]);
    c.env("FACTO_TEST_ALERT_KEY", KEY);
    c
}

async fn hook(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/alerts"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

/// A receiver at `at` that answers `first` to the first `n` posts, then 200.
async fn first_then_ok(at: &str, first: ResponseTemplate, n: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(first)
        .up_to_n_times(n)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// `facto run` on `p`, with the alerts' signing key.
async fn daemon(p: &Arc<Project>) -> std::process::Child {
    let q = Arc::clone(p);
    tokio::task::spawn_blocking(move || {
        crate::daemon::start_with(&q, "", &[("FACTO_TEST_ALERT_KEY", KEY)]).0
    })
    .await
    .unwrap()
}

pub async fn posts(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

pub fn header<'a>(r: &'a Request, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// Checks the signature of a webhook request and returns its JSON body.
pub fn verified(r: &Request) -> Value {
    let ts = header(r, "x-facto-timestamp");
    assert!(ts.parse::<i64>().is_ok());
    // The timestamp, a dot, the body: a replay with a fresh timestamp does not verify.
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(header(r, "x-facto-signature"), expected);
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(header(r, "idempotency-key"), body["id"].as_str().unwrap());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_held_documents_send_one_webhook_and_one_mail_and_the_same_problems_none_again() {
    let server = hook(200).await;
    let (smtp, mails) = smtp_sink().await;
    let p = project(&server, Some(smtp));
    let (code, report, err) = json_of(sync(&p)).await;
    assert_eq!(code, 1, "{err}");
    let run_id = report["run_id"].as_str().unwrap().to_owned();
    let got = posts(&server).await;
    assert_eq!(
        got.len(),
        1,
        "one webhook for the pass, not one per document"
    );
    let body = verified(&got[0]);
    assert_eq!(body["id"], format!("{run_id}/webhook"));
    assert_eq!(body["job"], "demo");
    assert_eq!(body["run_id"], run_id.as_str());
    assert_eq!(body["events"], serde_json::json!(["held"]));
    assert_eq!(body["counts"]["new_problems"], 2);
    assert_eq!(body["problems"].as_array().unwrap().len(), 2, "{body}");
    assert!(body["problems"][0]["fix"]
        .as_str()
        .is_some_and(|f| !f.is_empty()));
    assert!(body["text"].as_str().unwrap().contains("Fix:"), "{body}");
    let m = mails.all();
    assert_eq!(m.len(), 1, "one mail for the pass");
    assert!(
        m[0].contains("Subject: facto: job demo needs attention (held)"),
        "{}",
        m[0]
    );
    assert!(
        m[0].contains(&format!("Message-ID: <{run_id}.smtp@facto.alert>")),
        "{}",
        m[0]
    );
    assert!(m[0].contains("F2026-0030"), "{}", m[0]);
    assert!(!err.contains(KEY), "the key is never logged");

    // The same problems again: nothing new, nothing sent.
    let (code, _, err) = json_of(sync(&p)).await;
    assert_eq!(code, 1, "{err}");
    assert_eq!(posts(&server).await.len(), 1);
    assert_eq!(mails.all().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_record_before_the_send_the_next_run_sends_it_once() {
    // Before the webhook (nothing sent yet), and between the webhook's send and the mail's.
    for point in ["alert-recorded", "alert-recorded@smtp"] {
        let server = hook(200).await;
        let (smtp, mails) = smtp_sink().await;
        let p = project(&server, Some(smtp));
        kill_at(sync(&p), point, &p.path("paused")).await;
        let before = posts(&server).await.len();
        assert_eq!(before, usize::from(point.ends_with("@smtp")), "{point}");
        assert!(mails.all().is_empty(), "{point}");
        let (code, _, err) = json_of(sync(&p)).await;
        assert_eq!(code, 1, "{point}: {err}");
        let got = posts(&server).await;
        assert_eq!(got.len(), 1, "{point}: the webhook exactly once");
        verified(&got[0]);
        assert_eq!(mails.all().len(), 1, "{point}: the mail exactly once");
        // Nothing is left pending: a third run sends nothing.
        let _ = json_of(sync(&p)).await;
        assert_eq!(posts(&server).await.len(), 1, "{point}");
        assert_eq!(mails.all().len(), 1, "{point}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_answering_500_then_200_gets_the_alert_once_after_a_retry() {
    let server = first_then_ok("/alerts", ResponseTemplate::new(500), 1).await;
    let p = project(&server, None);
    let (code, _, err) = json_of(sync(&p)).await;
    assert_eq!(code, 1, "{err}");
    let got = posts(&server).await;
    assert_eq!(got.len(), 2, "the 500, then the retry");
    assert_eq!(
        verified(&got[0]),
        verified(&got[1]),
        "the same alert, same id"
    );
    // Recorded as sent: the next run does not send it again.
    let _ = json_of(sync(&p)).await;
    assert_eq!(posts(&server).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_pass_with_new_problems_sends_one_alert_per_channel() {
    let server = hook(200).await;
    let (smtp, mails) = smtp_sink().await;
    let p = Arc::new(project(&server, Some(smtp)));
    let mut child = daemon(&p).await;
    // The first pass runs at start.
    let start = std::time::Instant::now();
    while posts(&server).await.is_empty() || mails.all().is_empty() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the daemon's pass sent no alert"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let code = tokio::task::spawn_blocking(move || crate::daemon::terminate(&mut child))
        .await
        .unwrap();
    assert_eq!(code, 0);
    let got = posts(&server).await;
    assert_eq!(got.len(), 1);
    assert_eq!(verified(&got[0])["job"], "demo");
    assert_eq!(mails.all().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_alert_stays_pending_without_its_secret_path_and_goes_out_after_the_next_pass() {
    let server = first_then_ok("/alerts/T0-SECRET", ResponseTemplate::new(400), 1).await;
    let p = project(&server, None);
    let cfg = p
        .read("facto.toml")
        .replace("/alerts\"", "/alerts/T0-SECRET\"");
    p.write("facto.toml", &cfg);
    let (_, report, err) = json_of(sync(&p)).await;
    assert_eq!(posts(&server).await.len(), 1, "a 400 is not retried");
    assert!(!err.contains("T0-SECRET"), "{err}");
    let id = format!("{}/webhook", report["run_id"].as_str().unwrap());
    {
        let ledger = facto::ledger::sled::SledLedger::open(&p.path("data")).unwrap();
        let alert = ledger.value(&format!("alerts/{id}")).unwrap().unwrap();
        assert_eq!(alert["state"], "pending");
        assert_eq!(alert["attempts"], 1);
        let why = alert["last_error"].as_str().unwrap();
        assert!(
            why.contains("HTTP 400") && !why.contains("T0-SECRET"),
            "{why}"
        );
    }
    // The next pass (nothing new in it) sends the pending alert.
    let _ = json_of(sync(&p)).await;
    let got = posts(&server).await;
    assert_eq!(got.len(), 2);
    assert_eq!(verified(&got[1])["id"], id.as_str());
    let _ = json_of(sync(&p)).await;
    assert_eq!(posts(&server).await.len(), 2, "sent: not again");
}

/// Points the demo job at an http source on `source` instead of its folder.
fn with_http_source(p: &Project, source: &MockServer) {
    p.write(
        "connectors/api.toml",
        &format!(
            "kind = \"http\"\nurl = \"{}/api/invoices\"\ntoken_env = \"FACTO_TEST_TOKEN\"\nitems_field = \"data\"\ninitial_retry_ms = 50\nmax_retry_secs = 5\n",
            source.uri()
        ),
    );
    let cfg = p
        .read("facto.toml")
        .replace("source = \"demo-invoices\"", "source = \"api\"");
    p.write("facto.toml", &cfg);
}

async fn source_answers(source: &MockServer, status: u16) {
    source.reset().await;
    let body = serde_json::json!({ "data": [], "next": null });
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(source)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_alerts_once_until_a_pass_completes_again() {
    let server = hook(200).await;
    let source = MockServer::start().await;
    let p = project(&server, None);
    with_http_source(&p, &source);
    let run = || {
        let mut c = sync(&p);
        c.env("FACTO_TEST_TOKEN", "t");
        json_of(c)
    };
    source_answers(&source, 401).await;
    let (code, r, err) = run().await;
    assert_eq!(code, 3, "{r} {err}");
    let got = posts(&server).await;
    assert_eq!(got.len(), 1, "{err}");
    let body = verified(&got[0]);
    assert_eq!(body["events"], serde_json::json!(["stopped"]));
    assert_eq!(body["stopped"], r["error"]);
    // Still down: already alerted.
    assert_eq!(run().await.0, 3);
    assert_eq!(posts(&server).await.len(), 1);
    // Back, then down again: a new stop, a new alert.
    source_answers(&source, 200).await;
    assert_eq!(run().await.0, 0);
    assert_eq!(posts(&server).await.len(), 1);
    source_answers(&source, 401).await;
    assert_eq!(run().await.0, 3);
    assert_eq!(posts(&server).await.len(), 2);
}

/// A receiver that redirects has not taken the alert (no redirect is followed), and while a
/// receiver fails, the other alerts pending for it wait for the next pass instead of each
/// spending its budget on it in the same pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_no_delivery_and_a_failing_receiver_is_tried_once_per_pass() {
    let server = first_then_ok(
        "/alerts",
        ResponseTemplate::new(302).insert_header("Location", "/elsewhere"),
        2,
    )
    .await;
    Mock::given(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let p = project(&server, None);
    let _ = json_of(sync(&p)).await;
    let to_alerts = |got: &[Request]| got.iter().filter(|r| r.url.path() == "/alerts").count();
    let got = posts(&server).await;
    assert_eq!(to_alerts(&got), 1, "a 302 is not retried");
    assert!(
        got.iter().all(|r| r.url.path() != "/elsewhere"),
        "no redirect followed"
    );
    // A new problem: a second alert; the first is tried again, fails (302), the second waits.
    let mut doc = p.read_json("examples/invoices/inv-2026-0030.json");
    doc["id"] = serde_json::json!("inv-2026-0090");
    doc["number"] = serde_json::json!("F2026-0090");
    p.write_json("examples/invoices/inv-2026-0090.json", &doc);
    let _ = json_of(sync(&p)).await;
    assert_eq!(to_alerts(&posts(&server).await), 2, "one attempt per pass");
    {
        let ledger = facto::ledger::sled::SledLedger::open(&p.path("data")).unwrap();
        let pending = facto::alerts::pending(&ledger).unwrap();
        assert_eq!(pending.len(), 2);
        let attempts: Vec<u32> = pending.iter().map(|a| a.attempts).collect();
        assert_eq!(attempts, vec![2, 0], "the second waits for the next pass");
    }
    // The receiver is back: both go out after the next pass, once each.
    let _ = json_of(sync(&p)).await;
    let got = posts(&server).await;
    let ids: Vec<String> = got
        .iter()
        .filter(|r| r.url.path() == "/alerts")
        .skip(2)
        .map(|r| verified(r)["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_whose_reply_is_lost_after_the_message_is_marked_uncertain_and_never_sent_again() {
    let server = hook(200).await;
    // The sink keeps the message, then answers after the client's 1 s timeout.
    let (smtp, mails) = smtp_sink_slow(Duration::from_secs(3)).await;
    let p = project(&server, Some(smtp));
    let mut cfg = p.read("facto.toml");
    cfg.push_str("timeout_secs = 1\n");
    p.write("facto.toml", &cfg);
    let (_, report, err) = json_of(sync(&p)).await;
    assert_eq!(mails.all().len(), 1, "written once, not retried: {err}");
    let id = format!("{}/smtp", report["run_id"].as_str().unwrap());
    {
        let ledger = facto::ledger::sled::SledLedger::open(&p.path("data")).unwrap();
        let alert = ledger.value(&format!("alerts/{id}")).unwrap().unwrap();
        assert_eq!(alert["state"], "uncertain", "{alert}");
        assert!(alert["last_error"]
            .as_str()
            .unwrap()
            .contains("not sent again"));
    }
    // The next pass does not send it again.
    let _ = json_of(sync(&p)).await;
    assert_eq!(mails.all().len(), 1);
    assert_eq!(posts(&server).await.len(), 1, "the webhook went once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_webhook_never_writes_its_secret_path_to_the_log() {
    let server = hook(200).await;
    let p = project(&server, None);
    // Nothing listens on port 1: every attempt is refused and logged.
    let cfg = p
        .read("facto.toml")
        .replace(
            &format!("{}/alerts\"", server.uri()),
            "http://127.0.0.1:1/alerts/T0-SECRET\"",
        )
        .replace("[alerts]\n", "[alerts]\nsend_budget_secs = 2\n");
    assert!(
        cfg.contains("T0-SECRET") && cfg.contains("send_budget_secs"),
        "{cfg}"
    );
    p.write("facto.toml", &cfg);
    let (_, _, err) = json_of(sync(&p)).await;
    assert!(err.contains("127.0.0.1:1"), "the attempt is logged: {err}");
    assert!(!err.contains("T0-SECRET"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_the_receiver_refuses_does_not_hold_back_the_next_ones() {
    let server = MockServer::start().await;
    let p = project(&server, None);
    // The first pass's alert is refused (422) every time it comes.
    Mock::given(method("POST"))
        .and(path("/alerts"))
        .respond_with(ResponseTemplate::new(422))
        .mount(&server)
        .await;
    let (_, first, _) = json_of(sync(&p)).await;
    let first_id = format!("{}/webhook", first["run_id"].as_str().unwrap());
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/alerts"))
        .and(wiremock::matchers::body_string_contains(first_id.as_str()))
        .respond_with(ResponseTemplate::new(422))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/alerts"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    // A new problem: a copy of the unmapped F2026-0030 under another id and number.
    let mut doc: Value =
        serde_json::from_str(&p.read("examples/invoices/inv-2026-0030.json")).unwrap();
    doc["id"] = "inv-2026-9001".into();
    doc["number"] = "F2026-9001".into();
    p.write("examples/invoices/inv-2026-9001.json", &doc.to_string());
    let (_, second, err) = json_of(sync(&p)).await;
    let second_id = format!("{}/webhook", second["run_id"].as_str().unwrap());
    let got = posts(&server).await;
    let ids: Vec<String> = got
        .iter()
        .map(|r| verified(r)["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec![first_id, second_id], "{err} {second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_does_not_hold_the_daemon_or_its_stop() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/alerts"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(120)))
        .mount(&server)
        .await;
    let p = Arc::new(project(&server, None));
    let mut child = daemon(&p).await;
    let start = std::time::Instant::now();
    while posts(&server).await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "no alert tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The alert hangs (its budget is 60 s): the daemon stops at once all the same.
    let asked = std::time::Instant::now();
    let code = tokio::task::spawn_blocking(move || crate::daemon::terminate(&mut child))
        .await
        .unwrap();
    assert_eq!(code, 0);
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "the stop waited {:?} for the alert",
        asked.elapsed()
    );
    // Cut short, it is still pending: never lost.
    let ledger = facto::ledger::sled::SledLedger::open(&p.path("data")).unwrap();
    assert_eq!(facto::alerts::pending(&ledger).unwrap().len(), 1);
}
