//! The Chorus Pro target through the real binary against the in-repo simulator: deposits exactly
//! once (even when an answer is lost, a call times out or the process is killed right after the
//! deposit), statuses followed to payment, rejections reported with Chorus Pro's reason and sent
//! again only when a user asks, suspended and recycled invoices answered once (`facto chorus
//! complete|recycle`), structure settings read once and cached, credentials refused cleanly while
//! the other targets still deliver.

use std::time::Duration;

use serde_json::Value;

use crate::chorus_sim::{Fault, Sim, ACCOUNT, CLIENT_ID, CLIENT_SECRET};
use crate::common::{self, json_of, kill_at, target, with_json, Project};

const T: &str = "chorus-pro";
/// The demo's documents for public buyers that pass every rule (F2026-0004 is held).
const PUBLIC: usize = 9;

fn project(sim: &Sim, extra: &str) -> Project {
    Project::demo_with_target(T, &sim.connector(extra))
}

fn command(p: &Project, args: &[&str], secret: &str) -> std::process::Command {
    let mut c = p.command(args);
    c.env("PISTE_CLIENT_ID", CLIENT_ID)
        .env("PISTE_CLIENT_SECRET", secret)
        .env("CHORUS_PRO_ACCOUNT", ACCOUNT);
    c
}

async fn run(p: &Project, args: &[&str]) -> (i32, Value, String) {
    run_with(p, args, CLIENT_SECRET).await
}

async fn run_with(p: &Project, args: &[&str], secret: &str) -> (i32, Value, String) {
    json_of(command(p, &with_json(args), secret)).await
}

fn states(p: &Project, state: &str) -> Vec<Value> {
    let (_, v) = p.json(&["ledger", "list", "--target", T, "--state", state]);
    v.as_array().cloned().unwrap_or_default()
}

fn assert_once(sim: &Sim) {
    common::assert_once(&sim.deposits(), PUBLIC, "deposited");
}

#[tokio::test(flavor = "multi_thread")]
async fn deposits_once_and_follows_statuses_to_payment() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    let (code, r, err) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "held documents give 1: {r} {err}");
    assert_eq!(target(&r, T)["delivered"], PUBLIC as u64, "{r}");
    assert_eq!(target(&r, "sales-fec")["delivered"], 42);
    assert_once(&sim);
    assert!(r["problems"].to_string().contains("CHORUS-EJ-OR-PO"));
    assert_eq!(
        sim.state.lock().unwrap().oauth.requests,
        1,
        "one token per run"
    );
    // The structures of the two buyers were read once and cached.
    assert_eq!(sim.calls("/cpro/structures/v1/rechercher"), 2);

    // `facto status` follows flows then invoices until they are paid.
    let mut last = Value::Null;
    for _ in 0..6 {
        let (code, s, err) = run(&p, &["status"]).await;
        assert_eq!(code, 0, "{s} {err}");
        last = s;
    }
    assert_eq!(states(&p, "paid").len(), PUBLIC, "{last}");
    let paid = &states(&p, "paid")[0];
    assert!(
        paid["remote_id"].is_string()
            && paid["idempotency_key"]
                .as_str()
                .unwrap()
                .starts_with("FLUX")
    );
    let history = paid["history"].to_string();
    assert!(
        history.contains("MISE_A_DISPOSITION") && history.contains("MISE_EN_PAIEMENT"),
        "{history}"
    );

    // Nothing is deposited again, and the structures come from the cache.
    let (_, r, _) = run(&p, &["sync"]).await;
    assert_eq!(target(&r, T)["delivered"], 0);
    assert_once(&sim);
    assert_eq!(sim.calls("/cpro/structures/v1/rechercher"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_and_timeouts_are_looked_up_never_deposited_twice() {
    let sim = Sim::start().await;
    let p = project(&sim, "timeout_secs = 1\nlookup_grace_minutes = 0\n");
    {
        let mut s = sim.state.lock().unwrap();
        s.faults.push_back(Fault::TooMany);
        s.faults.push_back(Fault::LoseAnswer);
    }
    let (code, r, _) = run(&p, &["sync"]).await;
    assert_eq!(
        code, 3,
        "an outcome unknown stops the target for this run: {r}"
    );
    assert!(
        r["error"].as_str().unwrap().contains("outcome unknown"),
        "{r}"
    );
    assert_eq!(
        states(&p, "claimed").len(),
        1,
        "the lost deposit stays claimed"
    );
    // The other targets delivered all the same.
    assert_eq!(target(&r, "sales-fec")["delivered"], 42);

    // Next run: the lost deposit is found on Chorus Pro, not deposited again; then a timeout.
    sim.state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::Slow(Duration::from_secs(3)));
    let (code, r, _) = run(&p, &["sync"]).await;
    assert_eq!(code, 3, "{r}");
    assert!(
        r["statuses"].to_string().contains("not deposited again"),
        "{r}"
    );
    let (code, r, _) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r}");
    assert!(states(&p, "claimed").is_empty());
    assert_once(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_right_after_the_deposit_the_next_run_finds_it() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    kill_at(
        command(&p, &["sync"], CLIENT_SECRET),
        "after-deposit:3@chorus-pro",
        &p.path("paused"),
    )
    .await;
    assert_eq!(
        sim.deposits().len(),
        3,
        "three flows deposited before the kill"
    );
    assert_eq!(
        states(&p, "claimed").len(),
        1,
        "the third is claimed, its flow not recorded"
    );

    let (code, r, err) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r} {err}");
    assert!(states(&p, "claimed").is_empty());
    assert_once(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn rejections_carry_chorus_reason_and_are_sent_again_only_on_request() {
    let sim = Sim::start().await;
    let p = project(&sim, "lot_size = 500\n");
    // Six more public-buyer invoices: one flow of 15, more than a page of search results.
    let base: Value =
        serde_json::from_str(&p.read("examples/invoices/inv-2026-0012.json")).unwrap();
    for i in 0..6 {
        let mut d = base.clone();
        d["id"] = serde_json::json!(format!("extra-{i}"));
        d["number"] = serde_json::json!(format!("F2026-08{i:02}"));
        p.write(&format!("examples/invoices/extra-{i}.json"), &d.to_string());
    }
    sim.state
        .lock()
        .unwrap()
        .buyer_rejects
        .push("F2026-0008".into());
    let (_, r, _) = run(&p, &["sync"]).await;
    assert_eq!(target(&r, T)["delivered"], PUBLIC as u64 + 6);
    assert_eq!(sim.calls("/cpro/factures/v1/deposer/flux"), 1, "one lot");
    for _ in 0..4 {
        run(&p, &["status"]).await;
    }
    // Every invoice of the flow was identified, though the search pages by 10.
    let (_, all) = p.json(&["ledger", "list", "--target", T]);
    let ids = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["remote_id"].is_string())
        .count();
    assert_eq!(ids, PUBLIC + 6, "{all}");
    assert!(sim.calls("/cpro/factures/v1/rechercher/fournisseur") >= 2);
    let rejected = states(&p, "rejected");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("Numéro d'engagement inconnu"));
    // Reported, not sent again by sync.
    let (_, r, _) = run(&p, &["sync"]).await;
    let problems = r["problems"].to_string();
    assert!(
        problems.contains("F2026-0008") && problems.contains("rejected"),
        "{problems}"
    );
    assert_eq!(sim.deposits()["F2026-0008"], 1);
    // The user asks: it is deposited again.
    let (code, _) = {
        let mut c = command(
            &p,
            &["--json", "ledger", "retry", "F2026-0008", "--target", T],
            CLIENT_SECRET,
        );
        let out = c.output().unwrap();
        (out.status.code(), out)
    };
    assert_eq!(code, Some(0));
    let (_, r, _) = run(&p, &["sync"]).await;
    assert_eq!(target(&r, T)["delivered"], 1, "{r}");
    assert_eq!(sim.deposits()["F2026-0008"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn suspended_and_recycled_invoices_are_answered_once_after_a_look_at_their_status() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    {
        let mut s = sim.state.lock().unwrap();
        s.suspends.push("F2026-0008".into());
        s.recycles.push("F2026-0012".into());
    }
    run(&p, &["sync"]).await;
    let mut said = String::new();
    for _ in 0..3 {
        let (_, s, _) = run(&p, &["status"]).await;
        said.push_str(&s.to_string());
    }
    // `facto status` says what the buyer wants and how to answer.
    assert!(
        said.contains("SUSPENDUE")
            && said.contains("Bon de livraison signé manquant")
            && said.contains("facto chorus complete")
            && said.contains("facto chorus recycle"),
        "{said}"
    );
    let answers = |sim: &Sim| sim.state.lock().unwrap().answers.clone();

    // An answer that does not fit the invoice's status at Chorus Pro is not sent.
    let (code, _, err) = run(&p, &["chorus", "complete", "F2026-0012", "--comment", "x"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is A_RECYCLER at Chorus Pro, not SUSPENDUE"),
        "{err}"
    );
    assert!(answers(&sim).is_empty());

    // A file Chorus Pro would refuse is caught before anything is sent.
    let long = format!("{}.pdf", "x".repeat(50));
    p.write(&long, "%PDF");
    let long = p.path(&long);
    let args = [
        "chorus",
        "complete",
        "F2026-0008",
        "--comment",
        "x",
        "--attach",
        long.to_str().unwrap(),
    ];
    let (code, _, err) = run(&p, &args).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rename it"), "{err}");
    assert_eq!(sim.calls("/cpro/transverses/v1/ajouter/fichier"), 0);

    // Completion: the file is uploaded, then the invoice completed with it.
    p.write("BL-0008.pdf", "%PDF-1.4 bon de livraison signé");
    let attach = p.path("BL-0008.pdf");
    let complete = [
        "chorus",
        "complete",
        "F2026-0008",
        "--comment",
        "BL signé joint",
        "--attach",
        attach.to_str().unwrap(),
    ];
    let (code, r, err) = run(&p, &complete).await;
    assert_eq!(code, 0, "{r} {err}");
    assert!(r["done"].as_str().unwrap().contains("COMPLETEE"), "{r}");
    let (files, sent) = {
        let s = sim.state.lock().unwrap();
        (s.files.clone(), s.answers.clone())
    };
    assert_eq!(files.len(), 1);
    let (file_id, (name, bytes)) = files.iter().next().unwrap();
    assert_eq!(
        (name.as_str(), bytes.as_slice()),
        ("BL-0008.pdf", "%PDF-1.4 bon de livraison signé".as_bytes())
    );
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "F2026-0008");
    assert_eq!(sent[0].1["commentaire"], "BL signé joint");
    assert_eq!(
        sent[0].1["pieceJointeComplementaire"][0]["pieceJointeComplementaireId"],
        *file_id
    );
    // Asked again, facto looks at Chorus Pro first: nothing is sent twice.
    let (code, _, err) = run(&p, &complete).await;
    assert_eq!(code, 2, "{err}");
    assert_eq!(answers(&sim).len(), 1);
    assert_eq!(sim.calls("/cpro/factures/v1/completer"), 1);

    // Recycling: the corrected routing reaches Chorus Pro, but its answer is lost. facto says
    // the outcome is unknown; asked again, it looks first and sends nothing twice.
    sim.state.lock().unwrap().lose_next_answer = true;
    let recycle = [
        "chorus",
        "recycle",
        "F2026-0012",
        "--buyer",
        "21690123100011",
        "--service",
        "SVC-COMPTA",
        "--commitment",
        "EJ-2026-77",
        "--comment",
        "service comptable",
    ];
    let (code, _, err) = run(&p, &recycle).await;
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("outcome unknown") && err.contains("facto status"),
        "{err}"
    );
    let (code, _, err) = run(&p, &recycle).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("not A_RECYCLER (the earlier answer, whose outcome was unknown, reached it): nothing sent"),
        "{err}"
    );
    assert_eq!(sim.calls("/cpro/factures/v1/recycler"), 1);
    let sent = answers(&sim);
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[1].1["destinataire"]["codeServiceExecutant"],
        "SVC-COMPTA"
    );
    assert_eq!(sent[1].1["reference"]["numeroBonCommande"], "EJ-2026-77");
    let (_, shown) = p.json(&["ledger", "show", "F2026-0012"]);
    assert!(shown.to_string().contains("outcome unknown"), "{shown}");

    // The ledger keeps the intent and the outcome; the invoices then go on to payment.
    let (_, shown) = p.json(&["ledger", "show", "F2026-0008"]);
    let shown = shown.to_string();
    assert!(
        shown.contains("sending completion")
            && shown.contains("Chorus Pro accepted the completion"),
        "{shown}"
    );
    for _ in 0..6 {
        run(&p, &["status"]).await;
    }
    let paid = states(&p, "paid");
    assert_eq!(paid.len(), PUBLIC);
    // Once settled, no record keeps the hint or the "outcome unknown" warning.
    assert!(paid.iter().all(|r| r["last_error"].is_null()), "{paid:?}");
    assert_once(&sim);
}

#[tokio::test(flavor = "multi_thread")]
async fn structure_settings_hold_documents_and_credentials_fail_cleanly() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    // The lycée requires an engagement number; one of its invoices has none.
    sim.state
        .lock()
        .unwrap()
        .structures
        .insert("19690123400015".into(), (502, false, true));
    let f = p.read("examples/invoices/inv-2026-0008.json");
    let v: Value = serde_json::from_str(&f).unwrap();
    assert_eq!(v["buyer"]["siret"], "19690123400015");
    let f = f.replace("\"engagement_number\": null", "\"engagement_number\": \"\"");
    p.write("examples/invoices/inv-2026-0008.json", &f);

    // Wrong PISTE secret: a clear error, nothing deposited, the files still written.
    let (code, r, _) = run_with(&p, &["sync"], "wrong").await;
    assert_eq!(code, 3, "{r}");
    let e = r["error"].as_str().unwrap();
    assert!(e.contains("PISTE refused the client credentials"), "{e}");
    assert!(!e.contains("wrong"), "a secret never appears in a message");
    assert_eq!(target(&r, "sales-fec")["delivered"], 42);
    assert!(sim.deposits().is_empty());

    // A missing variable is named.
    let mut c = command(&p, &["sync"], CLIENT_SECRET);
    c.env_remove("PISTE_CLIENT_SECRET");
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PISTE_CLIENT_SECRET"));

    let (code, r, err) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r} {err}");
    let problems = r["problems"].to_string();
    assert!(
        problems.contains("CHORUS-STRUCTURE-EJ") && problems.contains("F2026-0008"),
        "{problems}"
    );
    // F2026-0025 (in the June batch file) has no engagement number either.
    assert!(problems.contains("F2026-0025"), "{problems}");
    assert_eq!(target(&r, T)["delivered"], PUBLIC as u64 - 2);
    assert!(!sim.deposits().contains_key("F2026-0008"));
    // Preview reads the cached settings, calling nothing.
    let calls = sim.state.lock().unwrap().calls.len();
    let (_, pv, _) = run(&p, &["preview", "--target", T]).await;
    let row = pv["targets"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["number"] == "F2026-0008")
        .cloned()
        .unwrap();
    assert_eq!(row["status"], "held");
    assert!(
        row["detail"]
            .as_str()
            .unwrap()
            .contains("CHORUS-STRUCTURE-EJ"),
        "{row}"
    );
    assert_eq!(sim.state.lock().unwrap().calls.len(), calls);
}

#[tokio::test(flavor = "multi_thread")]
async fn expiring_tokens_are_renewed_and_a_failed_flow_is_rejected_with_its_report() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    {
        let mut s = sim.state.lock().unwrap();
        s.oauth.max_uses = 3;
        s.faults.push_back(Fault::Corrupt);
    }
    let (code, r, err) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r} {err}");
    assert_eq!(target(&r, T)["delivered"], PUBLIC as u64);
    assert!(
        sim.state.lock().unwrap().oauth.requests > 2,
        "tokens renewed after a 401"
    );
    for _ in 0..2 {
        run(&p, &["status"]).await;
    }
    let rejected = states(&p, "rejected");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let why = rejected[0]["last_error"].as_str().unwrap();
    assert!(
        why.contains("IN_REJETE") && why.contains("ne respecte pas le format"),
        "{why}"
    );
    assert_once(&sim);

    // A wrong technical account is named as such; nothing is deposited.
    let mut c = command(&p, &["--json", "status"], CLIENT_SECRET);
    c.env("CHORUS_PRO_ACCOUNT", "TECH_1_facto@cpro.fr:wrong");
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("technical account") && !text.contains(":wrong"),
        "{text}"
    );
}
