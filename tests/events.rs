//! Document events for the invoicing application (issue 16 §3): `[events]` sends, per
//! document, delivered / held (with the fix) / changed after delivery / paid..., signed with
//! HMAC, kept in the ledger's outbox while the receiver is down and sent, in order and once,
//! when it is back.

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::alerts::{posts, verified, KEY};
use crate::common::{json_of, Project};

async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/events"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

fn point_at(p: &Project, hook: &MockServer) {
    let cfg = p.read("facto.toml");
    let cfg = match cfg.find("\n[events]") {
        Some(i) => cfg[..i].to_owned(),
        None => cfg,
    };
    p.write(
        "facto.toml",
        &format!(
            "{cfg}\n[events]\nwebhook_url = \"{}/events\"\nwebhook_secret_env = \"FACTO_TEST_EVENTS_KEY\"\nsend_budget_secs = 1\n",
            hook.uri()
        ),
    );
}

fn sync(p: &Project) -> std::process::Command {
    let mut c = p.command(&["--json", "sync"]);
    c.env("FACTO_TEST_EVENTS_KEY", KEY);
    c
}

async fn events(hook: &MockServer) -> Vec<Value> {
    posts(hook).await.iter().map(verified).collect()
}

fn of<'a>(events: &'a [Value], doc: &str, kind: &str, target: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["document_id"] == doc && e["event"] == kind && e["target"] == target)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_events_wait_for_a_receiver_that_is_down_then_go_once_and_signed() {
    let p = Project::demo();
    let down = receiver(503).await;
    point_at(&p, &down);
    let (code, report, _) = json_of(sync(&p)).await;
    assert_eq!(code, 1, "the demo holds two documents: {report}");
    // Tried (and retried), not lost: the events wait in the ledger.
    assert!(!posts(&down).await.is_empty());
    let tried = events(&down).await;
    // A receiver that does not take the key (401): the events wait too, none given up.
    let denied = receiver(401).await;
    point_at(&p, &denied);
    let (_, _, _) = json_of(sync(&p)).await;
    assert!(!posts(&denied).await.is_empty());

    let up = receiver(200).await;
    point_at(&p, &up);
    let (code, _, _) = json_of(sync(&p)).await;
    assert_eq!(code, 1);
    let got = events(&up).await;
    // Every document once per target, no id twice.
    let mut ids: Vec<&str> = got.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "an event was sent twice");
    assert_eq!(of(&got, "inv-2026-0001", "delivered", "sales-fec").len(), 1);
    assert_eq!(of(&got, "inv-2026-0001", "delivered", "sales-csv").len(), 1);
    let held = of(&got, "inv-2026-0030", "held", "sales-fec");
    assert_eq!(held.len(), 1, "{got:?}");
    let problem = &held[0]["problems"][0];
    assert!(
        problem["field"].as_str().unwrap().contains("tax_code"),
        "{problem}"
    );
    assert!(!problem["fix"].as_str().unwrap().is_empty());
    assert_eq!(held[0]["tenant"], "default");
    assert_eq!(held[0]["number"], "F2026-0030");
    // The events tried while the receiver was down are the ones sent now: same ids.
    for t in &tried {
        assert!(got.iter().any(|e| e["id"] == t["id"]), "{t} was lost");
    }

    // Nothing new: nothing sent.
    let (_, _, _) = json_of(sync(&p)).await;
    assert_eq!(events(&up).await.len(), n);

    // A delivered document changed in the source: said once, with the change.
    let mut doc = p.read_json("examples/invoices/inv-2026-0001.json");
    doc["due_date"] = "2026-03-31".into();
    p.write_json("examples/invoices/inv-2026-0001.json", &doc);
    let (_, _, _) = json_of(sync(&p)).await;
    let got = events(&up).await;
    let changed = of(&got, "inv-2026-0001", "changed-after-delivery", "sales-fec");
    assert_eq!(changed.len(), 1, "{got:?}");
    assert!(changed[0]["changes"].to_string().contains("due_date"));
    let (_, _, _) = json_of(sync(&p)).await;
    assert_eq!(events(&up).await.len(), got.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_events_section_is_refused_with_its_line() {
    let p = Project::demo();
    let cfg = p.read("facto.toml");
    p.write(
        "facto.toml",
        &format!("{cfg}\n[events]\nwebhook_url = \"ftp://x\"\nwebhook_secret_env = \"K\"\n"),
    );
    let out = p.run(&["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("[events] webhook_url") && err.contains("facto.toml:"),
        "{err}"
    );
    p.write(
        "facto.toml",
        &format!("{cfg}\n[events]\nwebhook_url = \"http://127.0.0.1:1/\"\nwebhook_secret_env = \"K\"\nretries = 3\n"),
    );
    let out = p.run(&["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retries"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_events_are_listed_then_sent_again_or_discarded_by_an_admin() {
    let p = Project::demo();
    let refusing = receiver(422).await;
    point_at(&p, &refusing);
    let (_, _, _) = json_of(sync(&p)).await;
    let tried = posts(&refusing).await.len();
    assert!(tried > 0);
    let listed = |p: &Project, args: &[&str]| -> Vec<Value> {
        let out = p.run(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let refused = listed(&p, &["--json", "events", "list", "--refused"]);
    assert_eq!(refused.len(), tried, "each refused event kept once");
    assert!(refused.iter().all(|q| q["refused"] == true));
    // Refused: not sent again, to this receiver or to a fixed one, until an admin says so.
    let (_, _, _) = json_of(sync(&p)).await;
    assert_eq!(posts(&refusing).await.len(), tried);
    let up = receiver(200).await;
    point_at(&p, &up);
    let (_, _, _) = json_of(sync(&p)).await;
    assert!(posts(&up).await.is_empty());

    let dropped = refused[0]["event"]["id"].as_str().unwrap().to_owned();
    let out = p.run(&["events", "discard", &dropped]);
    assert_eq!(out.status.code(), Some(2), "discard asks to confirm");
    assert!(p
        .run(&["events", "discard", &dropped, "--yes"])
        .status
        .success());
    let out = p.run(&["events", "resend", "--refused"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&format!("{} ", tried - 1)));
    let (_, _, _) = json_of(sync(&p)).await;
    let got = events(&up).await;
    assert_eq!(got.len(), tried - 1);
    assert!(got.iter().all(|e| e["id"] != dropped.as_str()));
    assert!(listed(&p, &["--json", "events", "list"]).is_empty());
    let out = p.run(&["events", "resend", &dropped]);
    assert_eq!(out.status.code(), Some(2));
}
