//! PA webhooks through the real daemon and the Flow simulator: the daemon registers its
//! callback once (a restart finds it at the PA and keeps the stored key; a webhook the PA lost
//! is registered again), a correctly signed event brings the status poll forward (the status
//! schedule is an hour away), and an event badly signed, stale, unsigned or replayed triggers
//! nothing. The signing key and the events' bodies never reach the log. The registration's
//! requests pass Prism's validation against the Flow Service 1.3.0 spec.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::Project;
use crate::daemon::terminate;
use crate::pa_sim::{Lc, Sim, CLIENT_ID, CLIENT_SECRET};
use crate::pa_sim_webhook::{sign, SIGNING_KEY};

const T: &str = "pa";
const CALLBACK: &str = "https://facto.example/api/v1/pa/pa/webhook";
const SEARCH: &str = "POST /flow-service/v1/flows/search";

/// Starts `facto run` (configuration as it is), its log appended to `log`; the address and the
/// admin token once it answers.
// The child is handed to the caller, which waits for it (`terminate`).
#[allow(clippy::zombie_processes)]
fn spawn(p: &Project, log: &Path) -> (Child, String, String) {
    let _ = std::fs::remove_file(p.path("data/daemon.json"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = p
        .command(&["run"])
        .env("PA_CLIENT_ID", CLIENT_ID)
        .env("PA_CLIENT_SECRET", CLIENT_SECRET)
        .env("PA_TOKEN", "contract-token")
        .env("RUST_LOG", "facto=debug")
        .stdout(Stdio::null())
        .stderr(file)
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
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Posts an event to the daemon's webhook endpoint; the HTTP status.
async fn event(addr: &str, target: &str, body: &[u8], ts: Option<i64>, sig: Option<&str>) -> u16 {
    let mut r = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/pa/{target}/webhook"))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(ts) = ts {
        r = r.header("Afnor-Signature-Timestamp", ts.to_string());
    }
    if let Some(s) = sig {
        r = r.header("Afnor-Signature", s);
    }
    r.send().await.unwrap().status().as_u16()
}

/// Waits until the first pass of the job is over (its outcome is counted in `/metrics`).
async fn first_pass(addr: &str, token: &str) {
    let start = Instant::now();
    loop {
        let m = reqwest::Client::new()
            .get(format!("http://{addr}/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.contains("facto_passes_total{") {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no pass: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The number of searches once none has come for a second (a poll in progress is over).
async fn settled(sim: &Sim) -> usize {
    let mut n = sim.calls(SEARCH);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let m = sim.calls(SEARCH);
        if m == n {
            return n;
        }
        n = m;
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_event_polls_at_once_a_bad_one_nothing_and_the_webhook_is_registered_once() {
    let sim = Sim::with_lifecycle(&[&[Lc::new(200)], &[Lc::new(205)]]).await;
    let p = Project::demo_with_target(
        T,
        &sim.connector(&format!("webhook_url = \"{CALLBACK}\"\n")),
    );
    let cfg = p.read("facto.toml")
        + "\n[daemon]\nlisten = \"127.0.0.1:0\"\nstatus_every = \"every 1h\"\n";
    p.write("facto.toml", &cfg);
    let log = p.path("daemon.log");
    let (mut child, addr, token) = spawn(&p, &log);
    let key_file = p.path("data/pa-webhooks/pa.json");
    wait_for("registration", || key_file.exists()).await;
    first_pass(&addr, &token).await;
    {
        let s = sim.state.lock().unwrap();
        assert_eq!(s.webhooks.created, 1);
        let hook = &s.webhooks.hooks[0];
        assert_eq!(hook["callbackUrl"], CALLBACK);
        assert_eq!(
            hook["flowTypes"],
            json!(["CustomerInvoice", "CustomerInvoiceLC"])
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // Let the first pass's own status reads settle.
    let before = settled(&sim).await;

    let flow_id = sim.state.lock().unwrap().flows[0].id.clone();
    let body = json!({"flowId": flow_id, "flowType": "CustomerInvoiceLC", "updatedAt": "2026-12-01T10:00:00Z"})
        .to_string()
        .into_bytes();
    let ts = now();
    let good = sign(&body, ts);
    // Refused: another body under this signature, a wrong key, stale, unsigned, unknown target.
    let other = br#"{"flowId":"someone-else"}"#;
    assert_eq!(event(&addr, T, other, Some(ts), Some(&good)).await, 401);
    assert_eq!(event(&addr, T, &body, Some(ts), Some("AAAA")).await, 401);
    let old = ts - 600;
    assert_eq!(
        event(&addr, T, &body, Some(old), Some(&sign(&body, old))).await,
        401
    );
    assert_eq!(event(&addr, T, &body, None, Some(&good)).await, 401);
    assert_eq!(event(&addr, T, &body, Some(ts), None).await, 401);
    assert_eq!(
        event(&addr, "sales-fec", &body, Some(ts), Some(&good)).await,
        404
    );
    // A body beyond 64 KB is refused before anything is checked.
    let big = vec![b' '; 70 * 1024];
    assert_eq!(
        event(&addr, T, &big, Some(ts), Some(&sign(&big, ts))).await,
        413
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sim.calls(SEARCH),
        before,
        "a refused event triggers nothing"
    );

    // Accepted: the status poll runs now, an hour before its schedule.
    assert_eq!(event(&addr, T, &body, Some(ts), Some(&good)).await, 200);
    wait_for("the status poll", || sim.calls(SEARCH) > before).await;
    let after = settled(&sim).await;
    // The same event again (a replay, or the PA sending twice): answered, nothing more.
    assert_eq!(event(&addr, T, &body, Some(ts), Some(&good)).await, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sim.calls(SEARCH), after, "a replay triggers nothing");
    assert_eq!(terminate(&mut child), 0);

    // A restart finds the webhook at the PA and keeps the stored key: no new registration, and
    // an event verifies at once. A stray webhook of the same URL (a registration whose answer
    // was lost) is removed: its events could not be verified.
    let listed = {
        let mut s = sim.state.lock().unwrap();
        s.webhooks
            .hooks
            .push(json!({"webhookId": "stray-1", "callbackUrl": CALLBACK}));
        s.webhooks.listed
    };
    let (mut child, addr, _) = spawn(&p, &log);
    let body2 = br#"{"flowId":"f-restart","updatedAt":"2026-12-01T11:00:00Z"}"#;
    let ts = now();
    assert_eq!(
        event(&addr, T, body2, Some(ts), Some(&sign(body2, ts))).await,
        200
    );
    wait_for("the check at start", || {
        let s = sim.state.lock().unwrap();
        s.webhooks.listed > listed && s.webhooks.deleted == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let s = sim.state.lock().unwrap();
        assert_eq!((s.webhooks.created, s.webhooks.deleted), (1, 1));
        assert_eq!(s.webhooks.hooks.len(), 1);
        assert_ne!(s.webhooks.hooks[0]["webhookId"], "stray-1");
    }
    assert_eq!(terminate(&mut child), 0);

    // The PA lost it: the next start registers again.
    sim.state.lock().unwrap().webhooks.hooks.clear();
    let (mut child, _, _) = spawn(&p, &log);
    wait_for("registration again", || {
        sim.state.lock().unwrap().webhooks.created == 2
    })
    .await;
    assert_eq!(terminate(&mut child), 0);

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("Webhook event refused"), "{text}");
    assert!(!text.contains(SIGNING_KEY), "the signing key is in the log");
    assert!(
        !text.contains("someone-else"),
        "an event's body is in the log"
    );
}

/// The daemon's `GET` and `POST /v1/webhooks` are valid against the AFNOR Flow Service contract
/// (Prism validates every request), and the key of Prism's answer is stored.
#[tokio::test(flavor = "multi_thread")]
async fn the_registration_is_valid_against_the_afnor_flow_contract() {
    use crate::pa_contract::{afnor, python};
    use crate::pennylane_contract::{prism, start};
    let (Some((bin, _)), Some(py), Some(afnor)) = (prism(), python(), afnor()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("afnor-flow.json");
    crate::common::tool_ok(
        std::process::Command::new(&py)
            .arg(afnor.join("prism_mock_spec.py"))
            .arg(afnor.join("AFNOR-Flow_Service-1.3.0.swagger.json"))
            .arg(&spec),
    );
    let log = dir.path().join("prism.log");
    // Not `--errors`: the spec's own list answer misses its required `webhookIds` (a spec
    // defect), so Prism would answer 500 to a valid request.
    let mock = start(&bin, &spec, &log, false);
    let p = Project::demo_with_target(
        T,
        &format!(
            "kind = \"afnor-pa\"\napi_url = \"http://127.0.0.1:{}\"\nbearer_token_env = \"PA_TOKEN\"\nmax_retry_secs = 5\nwebhook_url = \"{CALLBACK}\"\n",
            mock.port
        ),
    );
    let cfg = p.read("facto.toml")
        + "\n[daemon]\nlisten = \"127.0.0.1:0\"\nstatus_every = \"every 1h\"\n";
    p.write("facto.toml", &cfg);
    let (mut child, _, _) = spawn(&p, &p.path("daemon.log"));
    let key_file = p.path("data/pa-webhooks/pa.json");
    let start_at = Instant::now();
    while !key_file.exists() && start_at.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(terminate(&mut child), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        key_file.exists(),
        "{}\n{text}",
        std::fs::read_to_string(p.path("daemon.log")).unwrap()
    );
    for call in ["get /v1/webhooks", "post /v1/webhooks"] {
        assert!(text.contains(call), "no {call}: {text}");
    }
    assert_eq!(
        text.matches("Request received").count(),
        text.matches("The request passed the validation rules")
            .count(),
        "{text}"
    );
}
