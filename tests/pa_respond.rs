//! The buyer's statuses about received supplier invoices (issue 15 §3), through the real binary
//! and the PA simulator: `facto respond` sends 204, 205, 207 (with its reason and expected
//! action) and 210 (final) to the seller through the PA the invoice came from, once each: asked
//! again, it answers with the flow already sent; a lost answer is looked up, never posted
//! twice; what the PA receives passes the CDAR XSD and the official BR-FR-CDV rules; a reason
//! outside the reform's lists, or a status after a refusal, is refused before anything is sent;
//! the invoice's record and the audit log keep what was sent and by whom. The daemon's admin
//! API does the same (`POST /api/v1/received/status`), audited as the API's.

use serde_json::Value;

use crate::common::{json_of, with_json, Project};
use crate::pa_sim::{Fault, Sim, BEARER};

async fn run(p: &Project, args: &[&str]) -> (i32, Value, String) {
    let mut c = p.command(&with_json(args));
    c.env("PA_TOKEN", BEARER);
    json_of(c).await
}

/// A project whose PA received the three demo supplier invoices, booked by the `achats` job.
async fn received() -> (Sim, Project) {
    let sim = Sim::start().await;
    let p = crate::pa_inbox::project(&sim);
    crate::pa_inbox::receive_the_demo_invoices(&sim, &p);
    let (code, r, err) = run(&p, &["sync", "--job", "achats"]).await;
    assert_eq!(code, 0, "{r} {err}");
    (sim, p)
}

/// The statuses the PA took: (invoice number, code, flows created for its trackingId).
fn posted(sim: &Sim) -> Vec<(String, u16, u32)> {
    let s = sim.state.lock().unwrap();
    s.posted
        .iter()
        .map(|f| {
            let n = s.created.get(&f.tracking_id).copied().unwrap_or(0);
            (f.number.clone(), f.code, n)
        })
        .collect()
}

/// The files the PA received pass the CDAR D22B XSD, then the BR-FR-CDV rules.
fn official_rules_pass(sim: &Sim) {
    let files: Vec<(String, Vec<u8>)> = sim
        .state
        .lock()
        .unwrap()
        .posted
        .iter()
        .map(|f| (format!("{}-{}.xml", f.code, f.flow_id), f.file.clone()))
        .collect();
    crate::pa_official::cdar_chain_passes(&files);
}

fn audit(p: &Project) -> Vec<(String, String, String)> {
    let ledger = facto::ledger::sled::SledLedger::open(&p.path("data")).unwrap();
    facto::ledger::Ledger::audit_trail(&ledger)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "pa-status")
        .map(|e| (e.action, e.detail, e.who))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_buyer_disputes_approves_and_refuses_received_invoices_once_each() {
    let (sim, p) = received().await;

    // A dispute: its reason, its text and the action expected of the seller.
    let dispute = [
        "respond",
        "IMP-2026-0118",
        "207",
        "--reason",
        "TX_TVA_ERR",
        "--text",
        "Taux de TVA erroné sur la ligne 2",
        "--action",
        "NIN",
    ];
    let (code, r, err) = run(&p, &dispute).await;
    assert_eq!(code, 0, "{r} {err}");
    assert_eq!(r["already"], false, "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("status 207 En litige, reason TX_TVA_ERR"),
        "{r}"
    );
    assert_eq!(posted(&sim), [("IMP-2026-0118".to_owned(), 207, 1)]);
    let file = String::from_utf8(sim.state.lock().unwrap().posted[0].file.clone()).unwrap();
    for part in [
        // Issued by the company as the buyer, to the seller at its electronic address.
        "<ram:GlobalID schemeID=\"0002\">123456782</ram:GlobalID><ram:Name>Atelier Demo SAS</ram:Name><ram:RoleCode>BY</ram:RoleCode>",
        "<ram:RoleCode>SE</ram:RoleCode><ram:URIUniversalCommunication><ram:URIID schemeID=\"0225\">732829320</ram:URIID>",
        "<ram:ProcessConditionCode>207</ram:ProcessConditionCode>",
        "<ram:ReasonCode>TX_TVA_ERR</ram:ReasonCode><ram:Reason>Taux de TVA erroné sur la ligne 2</ram:Reason><ram:RequestedActionCode>NIN</ram:RequestedActionCode>",
    ] {
        let squeezed: String = file.split('\n').map(str::trim).collect();
        assert!(squeezed.contains(part), "{part}\n{file}");
    }

    // Asked again: the flow already sent, nothing posted.
    let (code, r, err) = run(&p, &dispute).await;
    assert_eq!(code, 0, "{r} {err}");
    assert_eq!(r["already"], true, "{r}");
    assert_eq!(r["flow"], "flow-cdar-0001", "{r}");
    // Asked again with another reason: refused, not taken for the one sent.
    let (code, _, err) = run(
        &p,
        &["respond", "IMP-2026-0118", "207", "--reason", "PU_ERR"],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("a status goes once per invoice") && err.contains("reason TX_TVA_ERR"),
        "{err}"
    );
    assert_eq!(posted(&sim).len(), 1);

    // Approved once the seller corrected it; taken over first for another one.
    let (code, r, err) = run(&p, &["respond", "IMP-2026-0118", "approved"]).await;
    assert_eq!(code, 0, "{r} {err}");
    let (code, r, err) = run(&p, &["respond", "FA-2026-0457", "204"]).await;
    assert_eq!(code, 0, "{r} {err}");

    // Refused without a reason, or with one a refusal may not give: nothing sent.
    let (code, _, err) = run(&p, &["respond", "FA-2026-0457", "210"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("needs a reason") && err.contains("DOUBLON"),
        "{err}"
    );
    let (code, _, err) = run(&p, &["respond", "FA-2026-0457", "210", "--reason", "AUTRE"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a reason status 210 may give"), "{err}");
    let (code, _, err) = run(&p, &["respond", "FA-2026-0457", "205", "--reason", "AUTRE"]).await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&p, &["respond", "FA-2026-0457", "208"]).await;
    assert_eq!(code, 2, "{err}");
    assert_eq!(posted(&sim).len(), 3);

    // Refused: final, to the PPF too; nothing follows it.
    let (code, r, err) = run(
        &p,
        &["respond", "FA-2026-0457", "refused", "--reason", "DOUBLON"],
    )
    .await;
    assert_eq!(code, 0, "{r} {err}");
    let refusal = String::from_utf8(sim.state.lock().unwrap().posted[3].file.clone()).unwrap();
    assert!(
        refusal.contains("<ram:RoleCode>DFH</ram:RoleCode>"),
        "{refusal}"
    );
    let (code, _, err) = run(&p, &["respond", "FA-2026-0457", "205"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a refusal is final"), "{err}");
    // An invoice the PA did not deliver.
    let (code, _, err) = run(&p, &["respond", "F-NOWHERE-1", "204"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no supplier invoice `F-NOWHERE-1`"), "{err}");

    let codes: Vec<(String, u16, u32)> = posted(&sim);
    assert_eq!(
        codes,
        [
            ("IMP-2026-0118".to_owned(), 207, 1),
            ("IMP-2026-0118".to_owned(), 205, 1),
            ("FA-2026-0457".to_owned(), 204, 1),
            ("FA-2026-0457".to_owned(), 210, 1),
        ]
    );
    official_rules_pass(&sim);

    // Recorded: the invoice's history, the statuses' records, the audit log with who.
    let (_, shown) = p.json(&["ledger", "show", "IMP-2026-0118"]);
    let shown = shown.to_string();
    assert!(
        shown.contains("status 207 En litige, reason TX_TVA_ERR sent to Imprimerie Rapide SARL through pa, flow flow-cdar-0001 (cli)"),
        "{shown}"
    );
    let (_, list) = p.json(&["ledger", "list", "--target", "pa#status"]);
    assert_eq!(list.as_array().unwrap().len(), 4, "{list}");
    let trail = audit(&p);
    assert_eq!(trail.len(), 4, "{trail:?}");
    assert!(trail.iter().all(|(_, _, who)| who == "cli"), "{trail:?}");
}

/// A refusal whose answer was lost: its outcome unknown, no other status may follow it yet;
/// asked again, it is looked up by its `trackingId`, found, recorded and audited, never posted
/// twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_status_whose_answer_was_lost_is_found_at_the_pa_not_sent_twice() {
    let (sim, p) = received().await;
    sim.state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::LoseAnswer);
    let refuse = ["respond", "IMP-2026-0118", "210", "--reason", "DOUBLON"];
    let (code, r, err) = run(&p, &refuse).await;
    assert_eq!(code, 3, "{r} {err}");
    assert!(err.contains("outcome is unknown"), "{err}");
    assert_eq!(posted(&sim), [("IMP-2026-0118".to_owned(), 210, 1)]);
    assert!(audit(&p).is_empty(), "not audited while unknown");
    let (code, _, err) = run(&p, &["respond", "IMP-2026-0118", "205"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not known yet"), "{err}");
    // Asked again: looked up by its trackingId, found, not posted again.
    let (code, r, err) = run(&p, &refuse).await;
    assert_eq!(code, 0, "{r} {err}");
    assert_eq!(r["already"], true, "{r}");
    assert_eq!(posted(&sim), [("IMP-2026-0118".to_owned(), 210, 1)]);
    let trail = audit(&p);
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert!(
        trail[0].1.contains("found at the PA after a lost answer"),
        "{trail:?}"
    );
    let (code, _, err) = run(&p, &["respond", "IMP-2026-0118", "205"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a refusal is final"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_sends_a_buyer_status_audited_as_the_api_s() {
    let (sim, p) = received().await;
    let (mut child, addr, token) = crate::daemon::start_with(&p, "", &[("PA_TOKEN", BEARER)]);
    let client = reqwest::Client::new();
    let post = |body: Value| {
        client
            .post(format!("http://{addr}/api/v1/received/status"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let resp = post(serde_json::json!({"doc": "IMP-AV-2026-0007", "status": "207", "reason": "QTE_ERR", "text": "2 cartons livrés, 3 facturés"}))
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["already"], false, "{body}");
    let resp = post(serde_json::json!({"doc": "IMP-AV-2026-0007", "status": "210"}))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // Without the token: refused.
    let anonymous = client
        .post(format!("http://{addr}/api/v1/received/status"))
        .json(&serde_json::json!({"doc": "IMP-AV-2026-0007", "status": "205"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(posted(&sim), [("IMP-AV-2026-0007".to_owned(), 207, 1)]);
    assert_eq!(crate::daemon::terminate(&mut child), 0);
    let trail = audit(&p);
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert_eq!(trail[0].2, "api", "{trail:?}");
}
