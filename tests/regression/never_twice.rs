//! Never twice: duplicate targets and destinations, late answers, duplicate ids and numbers, held records.

use crate::common::*;

/// Runs `facto sync` on a config that must be refused; returns stderr.
fn refused_config(p: &Project) -> String {
    let out = p.run(&["sync"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        p.out_files().is_empty(),
        "nothing written: {:?}",
        p.out_files()
    );
    err
}

#[test]
fn a_target_listed_twice_in_a_job_is_refused_with_its_line() {
    let p = Project::demo();
    let cfg = p.read("facto.toml").replace(
        "targets = [\"sales-fec\", \"sales-csv\"]",
        "targets = [\"sales-fec\", \"sales-csv\", \"sales-fec\"]",
    );
    let line = cfg.lines().position(|l| l.starts_with("targets")).unwrap() + 1;
    p.write("facto.toml", &cfg);
    let err = refused_config(&p);
    assert!(err.contains(&format!("facto.toml:{line}:")), "{err}");
    assert!(err.contains("`sales-fec` twice"), "{err}");
}

#[test]
fn two_targets_writing_the_same_files_or_reaching_the_same_account_are_refused() {
    // Same format into the same folder, spelled differently.
    let p = Project::demo();
    p.write(
        "connectors/fec-again.toml",
        "kind = \"journal-file\"\nformat = \"fec\"\nout_dir = \"./out/\"\n",
    );
    let cfg = p.read("facto.toml").replace(
        "targets = [\"sales-fec\", \"sales-csv\"]",
        "targets = [\"sales-fec\", \"sales-csv\", \"fec-again\"]",
    );
    p.write("facto.toml", &cfg);
    let err = refused_config(&p);
    assert!(
        err.contains("`sales-fec` and `fec-again` both deliver to fec files in"),
        "{err}"
    );
    // Another format into the same folder is another file: accepted.
    p.write(
        "connectors/fec-again.toml",
        "kind = \"journal-file\"\nformat = \"ebp\"\nout_dir = \"out\"\n",
    );
    let out = p.run(&["--json", "sync", "--dry-run"]);
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Two Pennylane connectors on one company token, the URL spelled with a trailing slash.
    let p = Project::demo();
    let pl = |url: &str| {
        format!("kind = \"pennylane\"\napi_url = \"{url}\"\ntoken_env = \"PENNYLANE_API_TOKEN\"\n")
    };
    p.write(
        "connectors/pl-a.toml",
        &pl("http://127.0.0.1:9/api/external/v2"),
    );
    p.write(
        "connectors/pl-b.toml",
        &pl("http://127.0.0.1:9/api/external/v2/"),
    );
    let cfg = p.read("facto.toml").replace(
        "targets = [\"sales-fec\", \"sales-csv\"]",
        "targets = [\"sales-fec\", \"pl-a\", \"pl-b\"]",
    );
    p.write("facto.toml", &cfg);
    let err = refused_config(&p);
    assert!(
        err.contains(
            "`pl-a` and `pl-b` both deliver to the company of the token in PENNYLANE_API_TOKEN"
        ),
        "{err}"
    );

    // Two Chorus Pro connectors on one technical account.
    let p = Project::demo();
    let chorus = p.read("connectors/chorus-pro.toml");
    p.write("connectors/chorus-2.toml", &chorus);
    let cfg = p.read("facto.toml").replace(
        "targets = [\"sales-fec\", \"sales-csv\"]",
        "targets = [\"chorus-pro\", \"chorus-2\"]",
    );
    p.write("facto.toml", &cfg);
    let err = refused_config(&p);
    assert!(err.contains("`chorus-pro` and `chorus-2` both deliver to the Chorus Pro account of CHORUS_PRO_ACCOUNT"), "{err}");

    // Two jobs reading the same source into the same files (each keeps its own records).
    let p = Project::demo();
    let mut cfg = p.read("facto.toml");
    cfg.push_str("\n[[job]]\nname = \"again\"\nsource = \"demo-invoices\"\nmapping = \"pcg-demo\"\ntargets = [\"sales-ebp\", \"sales-fec\"]\n");
    let line = cfg.lines().count();
    p.write("facto.toml", &cfg);
    let err = refused_config(&p);
    assert!(err.contains(&format!("facto.toml:{line}:")), "{err}");
    assert!(
        err.contains("jobs `demo` and `again` both read the folder")
            && err.contains("(target `sales-fec`)"),
        "{err}"
    );
}

/// Records of `target` in `state`, from `facto ledger list`.
fn in_state(p: &Project, target: &str, state: &str) -> usize {
    let (_, v) = p.json(&["ledger", "list", "--target", target, "--state", state]);
    v.as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_pennylane_answer_is_waited_for_and_never_imported_twice() {
    use crate::pennylane_api::{command, project};
    use crate::pennylane_sim::{Fault, Sim, TOKEN};
    let sim = Sim::start().await;
    let p = project(&sim, "timeout_secs = 1\n");
    let late = std::time::Duration::from_secs(6);
    sim.state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::Late(late));
    let landed_at = std::time::Instant::now() + late + std::time::Duration::from_secs(3);
    let sync = || command(&p, &["--json", "sync"], TOKEN);
    let (code, r, _) = json_of(sync()).await;
    assert_eq!(code, 3, "the first import timed out: {r}");
    assert_eq!(in_state(&p, "pennylane", "claimed"), 1);
    // At once: Pennylane does not list it yet; it stays claimed and is not imported again.
    let (_, r, _) = json_of(sync()).await;
    let imports = sim.imports();
    assert!(
        imports.values().all(|n| *n == 1),
        "imported twice: {imports:?}"
    );
    assert!(
        r["statuses"]
            .to_string()
            .contains("waiting for the platform to confirm"),
        "{r}"
    );
    assert_eq!(in_state(&p, "pennylane", "claimed"), 1, "{r}");
    // Once it has landed, the lookup finds it.
    std::thread::sleep(landed_at.saturating_duration_since(std::time::Instant::now()));
    let (code, r, _) = json_of(sync()).await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(in_state(&p, "pennylane", "claimed"), 0, "{r}");
    crate::common::assert_once(&sim.imports(), DEMO_DELIVERABLE as usize, "imported");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_released_after_the_grace_period_is_delivered_though_the_source_did_not_change() {
    use crate::pennylane_api::{command, project};
    use crate::pennylane_sim::{Fault, Sim, TOKEN};
    let sim = Sim::start().await;
    let p = project(&sim, "timeout_secs = 1\n");
    // The first import never lands (nor its answer): the run stops with it claimed.
    let never = std::time::Duration::from_secs(3600);
    sim.state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::Late(never));
    let sync = || command(&p, &["--json", "sync"], TOKEN);
    let (code, r, _) = json_of(sync()).await;
    assert_eq!(code, 3, "{r}");
    assert_eq!(in_state(&p, "pennylane", "claimed"), 1);
    // Within the grace period it waits, and the run that delivers the rest moves the cursor on.
    let (_, r, _) = json_of(sync()).await;
    assert!(
        r["statuses"]
            .to_string()
            .contains("waiting for the platform"),
        "{r}"
    );
    assert_eq!(in_state(&p, "pennylane", "claimed"), 1, "{r}");
    // After it, the claim is released and the document delivered, though its file is unchanged.
    let connector = std::fs::read_to_string(p.path("connectors/pennylane.toml")).unwrap();
    p.write(
        "connectors/pennylane.toml",
        &format!("{connector}\nlookup_grace_minutes = 0\n"),
    );
    let (_, r, _) = json_of(sync()).await;
    assert_eq!(in_state(&p, "pennylane", "claimed"), 0, "{r}");
    assert_eq!(
        in_state(&p, "pennylane", "released"),
        0,
        "left released: {r}"
    );
    assert_eq!(
        in_state(&p, "pennylane", "delivered"),
        DEMO_DELIVERABLE as usize,
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_xero_answer_is_waited_for_and_never_sent_twice() {
    use crate::xero_api::{command, connected};
    use crate::xero_sim::{Fault, Sim};
    let sim = Sim::start().await;
    let p = connected(&sim, "batch_size = 10\ntimeout_secs = 1\n").await;
    let late = std::time::Duration::from_secs(6);
    sim.state
        .lock()
        .unwrap()
        .faults
        .push_back(Fault::Late(late));
    let landed_at = std::time::Instant::now() + late + std::time::Duration::from_secs(3);
    let sync = || command(&p, &["--json", "sync"]);
    let (code, r, _) = json_of(sync()).await;
    assert_eq!(code, 3, "the first batch timed out: {r}");
    assert_eq!(in_state(&p, "xero", "claimed"), 10);
    // At once: Xero does not list the batch yet; it stays claimed and is not sent again.
    let (_, r, _) = json_of(sync()).await;
    assert!(
        r["statuses"]
            .to_string()
            .contains("waiting for the platform to confirm"),
        "{r}"
    );
    assert_eq!(in_state(&p, "xero", "claimed"), 10, "{r}");
    std::thread::sleep(landed_at.saturating_duration_since(std::time::Instant::now()));
    let (code, r, _) = json_of(sync()).await;
    assert_eq!(code, 1, "{r}");
    assert_eq!(in_state(&p, "xero", "claimed"), 0, "{r}");
    crate::common::assert_once(&sim.created(), DEMO_DELIVERABLE as usize, "created");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_xero_allocation_that_fails_leaves_no_sent_credit_note_claimed() {
    use crate::xero_api::{command, connected};
    use crate::xero_sim::Sim;
    let sim = Sim::start().await;
    let p = connected(&sim, "batch_size = 50\n").await;
    sim.state.lock().unwrap().allocations_over_day_limit = true;
    let sync = || command(&p, &["--json", "sync"]);
    let (code, r, _) = json_of(sync()).await;
    assert_eq!(code, 3, "the daily limit stops Xero for the run: {r}");
    // The credit notes Xero created are recorded as sent, though their allocation failed: the
    // answer was recorded before the allocation was tried.
    assert_eq!(in_state(&p, "xero", "claimed"), 0, "{r}");
    let credit_notes = sim
        .created()
        .keys()
        .filter(|n| {
            sim.state
                .lock()
                .unwrap()
                .docs
                .iter()
                .any(|d| d["CreditNoteNumber"] == **n)
        })
        .count();
    assert!(credit_notes > 0, "{:?}", sim.created());
    // The next day: the rest goes, nothing twice.
    sim.state.lock().unwrap().allocations_over_day_limit = false;
    let (code, r, _) = json_of(sync()).await;
    assert_eq!(code, 1, "{r}");
    crate::common::assert_once(&sim.created(), DEMO_DELIVERABLE as usize, "created");
}

/// Rows of the demo's documents CSV that hold `number`.
pub(super) fn csv_rows_of(p: &Project, number: &str) -> usize {
    p.out_files()
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "csv"))
        .map(|f| {
            p.read(f.to_str().unwrap())
                .lines()
                .filter(|l| l.contains(number))
                .count()
        })
        .sum()
}

/// The report's problem lines about document `doc_id`, as text.
fn problems_text(report: &serde_json::Value, doc_id: &str) -> String {
    problems_of(report, doc_id)
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_document_id_read_twice_is_reported_and_delivered_once() {
    for page_size in [500, 3] {
        let p = Project::demo();
        let c = p
            .read("connectors/demo-invoices.toml")
            .replace("page_size = 500", &format!("page_size = {page_size}"));
        p.write("connectors/demo-invoices.toml", &c);
        // The same id again with other contents, in a file read later (another page when
        // pages are small).
        let doc = p.read("examples/invoices/inv-2026-0001.json").replacen(
            "\"id\"",
            "\"contract_reference\": \"a copy\", \"id\"",
            1,
        );
        p.write("examples/invoices/zz-copy.json", &doc);
        // An identical copy is the same document read twice: taken once, without a word.
        let same = p.read("examples/invoices/inv-2026-0002.json");
        p.write("examples/invoices/zz-same.json", &same);
        let (code, r) = p.json(&["sync"]);
        assert_eq!(code, 1, "{r}");
        let lines = problems_text(&r, "inv-2026-0001");
        assert!(
            lines.contains("read twice")
                && lines.contains("inv-2026-0001.json")
                && lines.contains("zz-copy.json"),
            "page size {page_size}: {r}"
        );
        assert_eq!(
            target(&r, "sales-csv")["delivered"],
            DEMO_DELIVERABLE,
            "{r}"
        );
        assert_eq!(csv_rows_of(&p, "F2026-0001"), 1, "page size {page_size}");
        assert_eq!(csv_rows_of(&p, "F2026-0002"), 1, "page size {page_size}");
        assert!(problems_text(&r, "inv-2026-0002").is_empty(), "{r}");
    }
}

#[test]
fn an_invoice_number_under_two_ids_is_held_and_booked_once() {
    let p = Project::demo();
    let mut doc = p.read_json("examples/invoices/inv-2026-0001.json");
    doc["id"] = "inv-2026-9001".into();
    p.write("examples/invoices/zz-renumbered.json", &doc.to_string());
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
    let lines = problems_text(&r, "inv-2026-9001");
    assert!(
        lines.contains("F2026-0001 is already used by document `inv-2026-0001`")
            && lines.contains("inv-2026-0001.json")
            && lines.contains("zz-renumbered.json")
            && lines.contains("\"held\""),
        "{r}"
    );
    assert_eq!(csv_rows_of(&p, "F2026-0001"), 1);
    // Later runs keep it held, and a third id with the number in a later run is held too.
    doc["id"] = "inv-2026-9002".into();
    p.write("examples/invoices/zz-again.json", &doc.to_string());
    // `preview` says what the sync will do.
    let (_, pv) = p.json(&["preview", "--target", "sales-csv"]);
    let row = pv["targets"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["doc_id"] == "inv-2026-9002")
        .cloned()
        .unwrap();
    assert_eq!(row["status"], "held", "{row}");
    assert!(
        row["detail"].as_str().unwrap().contains("already used"),
        "{row}"
    );
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
    assert!(
        problems_text(&r, "inv-2026-9001").contains("already used"),
        "{r}"
    );
    assert!(
        problems_text(&r, "inv-2026-9002").contains("already used"),
        "{r}"
    );
    assert_eq!(target(&r, "sales-csv")["delivered"], 0, "{r}");
    assert_eq!(csv_rows_of(&p, "F2026-0001"), 1);
    let (_, held) = p.json(&["ledger", "list", "--target", "sales-fec", "--state", "held"]);
    assert_eq!(
        held.as_array().unwrap().len(),
        4,
        "the demo's two and these two: {held}"
    );
}

#[test]
fn a_symlinked_folder_or_one_token_in_two_variables_is_the_same_destination() {
    // A folder reached through a symlink is the same folder.
    let p = Project::demo();
    std::fs::create_dir_all(p.path("out")).unwrap();
    std::os::unix::fs::symlink(p.path("out"), p.path("books")).unwrap();
    p.write(
        "connectors/fec-again.toml",
        "kind = \"journal-file\"\nformat = \"fec\"\nout_dir = \"books/sales/..\"\n",
    );
    let cfg = p.read("facto.toml").replace(
        "targets = [\"sales-fec\", \"sales-csv\"]",
        "targets = [\"sales-fec\", \"sales-csv\", \"fec-again\"]",
    );
    p.write("facto.toml", &cfg);
    let err = refused_config(&p);
    assert!(
        err.contains("`sales-fec` and `fec-again` both deliver to fec files in"),
        "{err}"
    );

    // Two variables holding one Pennylane token reach one company; the token is never shown.
    let p = Project::demo();
    for (name, var) in [("pl-a", "PL_TOKEN_A"), ("pl-b", "PL_TOKEN_B")] {
        p.write(
            &format!("connectors/{name}.toml"),
            &format!("kind = \"pennylane\"\napi_url = \"http://127.0.0.1:9/api/external/v2\"\ntoken_env = \"{var}\"\n"),
        );
    }
    let cfg = p.read("facto.toml").replace(
        "targets = [\"sales-fec\", \"sales-csv\"]",
        "targets = [\"pl-a\", \"pl-b\"]",
    );
    p.write("facto.toml", &cfg);
    let run = |a: &str, b: &str| {
        p.command(&["sync", "--dry-run"])
            .env("PL_TOKEN_A", a)
            .env("PL_TOKEN_B", b)
            .output()
            .unwrap()
    };
    let out = run("tok-same-company-123", "tok-same-company-123");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`pl-a` and `pl-b` both deliver to the company of the token in PL_TOKEN_A")
            && err.contains("PL_TOKEN_B"),
        "{err}"
    );
    assert!(!err.contains("tok-same-company-123"), "{err}");
    // Two different tokens: accepted (two companies, as far as facto can tell).
    let out = run("tok-company-one", "tok-company-two");
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
/// The held record of `doc_id` for `target`, as `ledger list` shows it.
fn held_record(p: &Project, target: &str, doc_id: &str) -> serde_json::Value {
    let (_, held) = p.json(&["ledger", "list", "--target", target, "--state", "held"]);
    held.as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"]["doc_id"] == doc_id)
        .cloned()
        .unwrap_or_else(|| panic!("{doc_id} not held: {held}"))
}

/// A number under two ids was held again, copy and all, on every run (the ledger grew by the
/// document each time), and a dry run counted it twice (once more from its held copy).
#[test]
fn a_duplicate_number_hold_is_not_rewritten_and_a_dry_run_counts_it_once() {
    let p = Project::demo();
    let mut doc = p.read_json("examples/invoices/inv-2026-0001.json");
    doc["id"] = "inv-2026-9001".into();
    p.write("examples/invoices/zz-renumbered.json", &doc.to_string());
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
    let first = held_record(&p, "sales-fec", "inv-2026-9001");
    let held = target(&r, "sales-fec")["held"].clone();
    for run in 0..2 {
        // Read again (the file is touched) and from the held copy.
        p.write("examples/invoices/zz-renumbered.json", &doc.to_string());
        let (code, r) = p.json(&["sync"]);
        assert_eq!(code, 1, "run {run}: {r}");
        assert!(problems_text(&r, "inv-2026-9001").contains("already used"));
        assert_eq!(target(&r, "sales-fec")["held"], held, "run {run}: {r}");
        let again = held_record(&p, "sales-fec", "inv-2026-9001");
        assert_eq!(
            again["updated_at"], first["updated_at"],
            "run {run}: rewritten"
        );
    }
    let (code, dry) = p.json(&["sync", "--dry-run"]);
    assert_eq!(code, 1, "{dry}");
    assert_eq!(target(&dry, "sales-fec")["held"], held, "{dry}");
    let lines = dry["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["doc_id"] == "inv-2026-9001" && l["target"] == "sales-fec")
        .count();
    assert_eq!(lines, 1, "{dry}");
}

/// An id read twice with different contents was reported once: both files' fingerprints went
/// into the cursor, so the later copy was never read again (and never seen by anyone). Both
/// copies are now read again, and reported, on every run until one is removed.
#[test]
fn a_second_copy_of_an_id_is_reported_on_every_run_until_one_is_removed() {
    let p = Project::demo();
    let mut copy = p.read_json("examples/invoices/inv-2026-0001.json");
    copy["due_date"] = "2026-12-31".into();
    copy["updated_at"] = "2026-11-30T10:00:00Z".into();
    p.write("examples/invoices/zz-copy.json", &copy.to_string());
    for run in 0..3 {
        let (code, r) = p.json(&["sync"]);
        assert_eq!(code, 1, "run {run}: {r}");
        let lines = problems_text(&r, "inv-2026-0001");
        assert!(
            lines.contains("read twice") && lines.contains("zz-copy.json"),
            "run {run}: {r}"
        );
        assert_eq!(csv_rows_of(&p, "F2026-0001"), 1, "run {run}");
        // Counted held back, with the demo's two.
        assert_eq!(target(&r, "sales-fec")["held"], 3, "run {run}: {r}");
    }
    // The first copy was the wrong one: removed, the later one is read and its change shown
    // for a human (never delivered a second time, never lost).
    std::fs::remove_file(p.path("examples/invoices/inv-2026-0001.json")).unwrap();
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "{r}");
    let lines = problems_text(&r, "inv-2026-0001");
    assert!(!lines.contains("read twice"), "{r}");
    assert!(
        lines.contains("changed-after-delivery") && lines.contains("2026-12-31"),
        "{r}"
    );
    assert_eq!(csv_rows_of(&p, "F2026-0001"), 1);
}

/// With the http source, a document edited while a pull paged came back on a later page with
/// a newer `updated_at`: the newer copy was dropped and the cursor moved past it, so the edit
/// was never seen. The cursor now stays where the pull started; the next pull reads the
/// document again and shows the change.
#[tokio::test(flavor = "multi_thread")]
async fn an_id_edited_while_the_http_source_pages_is_read_again_next_run() {
    use wiremock::matchers::{method, path, query_param, query_param_is_missing};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let p = Project::demo();
    p.write(
        "connectors/api.toml",
        &format!(
            "kind = \"http\"\nurl = \"{}/api/invoices\"\nitems_field = \"data\"\npage_size = 2\ninitial_retry_ms = 50\nmax_retry_secs = 5\n",
            server.uri()
        ),
    );
    let cfg = p
        .read("facto.toml")
        .replace("source = \"demo-invoices\"", "source = \"api\"");
    p.write("facto.toml", &cfg);
    let base: serde_json::Value =
        serde_json::from_str(&p.read("examples/new-invoice.json")).unwrap();
    let doc = |i: u32, due: &str, at: &str| {
        let mut d = base.clone();
        d["id"] = format!("api-{i}").into();
        d["number"] = format!("F2026-09{i:02}").into();
        d["due_date"] = due.into();
        d["updated_at"] = at.into();
        d
    };
    let old = doc(1, "2026-12-01", "2026-11-01T10:00:00Z");
    let other = doc(2, "2026-12-01", "2026-11-02T10:00:00Z");
    let edited = doc(1, "2026-12-31", "2026-11-03T10:00:00Z");
    let page = |items: Vec<serde_json::Value>, next: Option<String>| {
        ResponseTemplate::new(200).set_body_json(serde_json::json!({ "data": items, "next": next }))
    };
    let first_page = || {
        Mock::given(method("GET"))
            .and(path("/api/invoices"))
            .and(query_param_is_missing("updated_since"))
            .and(query_param_is_missing("cursor"))
    };
    first_page()
        .respond_with(page(
            vec![old, other.clone()],
            Some(format!("{}/api/invoices?cursor=p2", server.uri())),
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/invoices"))
        .and(query_param("cursor", "p2"))
        .respond_with(page(vec![edited.clone()], None))
        .expect(1)
        .mount(&server)
        .await;
    // The next pull starts where the first one did (no cursor): not past the edited copy.
    first_page()
        .respond_with(page(vec![edited, other], None))
        .expect(1)
        .mount(&server)
        .await;
    let sync = || {
        let cmd = p.command(&["--json", "sync"]);
        async move {
            let (code, v, _) = json_of(cmd).await;
            (code, v)
        }
    };
    let (code, r) = sync().await;
    assert_eq!(code, 1, "{r}");
    assert!(problems_text(&r, "api-1").contains("read twice"), "{r}");
    assert_eq!(target(&r, "sales-fec")["delivered"], 2, "{r}");
    let (code, r) = sync().await;
    assert_eq!(code, 1, "{r}");
    let lines = problems_text(&r, "api-1");
    assert!(
        lines.contains("changed-after-delivery") && lines.contains("2026-12-31"),
        "{r}"
    );
    assert_eq!(target(&r, "sales-fec")["delivered"], 0, "{r}");
}

/// The preview row of `doc_id` for the demo's CSV target, over `args` (after `preview`).
fn preview_rows(p: &Project, args: &[&str], doc_id: &str) -> Vec<serde_json::Value> {
    let mut all = vec!["preview", "--target", "sales-csv"];
    all.extend_from_slice(args);
    let (_, pv) = p.json(&all);
    pv["targets"][0]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{pv}"))
        .iter()
        .filter(|r| r["doc_id"] == doc_id)
        .cloned()
        .collect()
}

/// Preview and sync disagreed on duplicates: a number owned by a document out of the period
/// was missed (shown as new), and a second copy of a delivered id showed as changed after
/// delivery; preview now decides as the sync does.
#[test]
fn preview_finds_duplicates_as_sync_does() {
    let p = Project::demo();
    let mut renumbered = p.read_json("examples/invoices/inv-2026-0001.json");
    renumbered["id"] = "inv-2026-9001".into();
    renumbered["issue_date"] = "2026-03-01".into();
    p.write(
        "examples/invoices/zz-renumbered.json",
        &renumbered.to_string(),
    );
    // inv-2026-0001 (2026-01-05), out of the period, owns F2026-0001.
    let rows = preview_rows(&p, &["--from", "2026-02-01"], "inv-2026-9001");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], "held", "{rows:?}");
    assert!(
        rows[0]["detail"].as_str().unwrap().contains("already used"),
        "{rows:?}"
    );
    let (_, r) = p.json(&["sync"]);
    assert!(
        problems_text(&r, "inv-2026-9001").contains("already used"),
        "{r}"
    );

    // A second copy of a delivered id: held as read twice, as the sync reports it.
    let mut copy = p.read_json("examples/invoices/inv-2026-0001.json");
    copy["due_date"] = "2026-12-31".into();
    p.write("examples/invoices/zz-copy.json", &copy.to_string());
    // Touched, so that the sync reads both copies as the preview does.
    let first = p.read("examples/invoices/inv-2026-0001.json");
    p.write(
        "examples/invoices/inv-2026-0001.json",
        &format!("{first}\n"),
    );
    let rows = preview_rows(&p, &[], "inv-2026-0001");
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["already-transferred", "held"], "{rows:?}");
    assert!(
        rows[1]["detail"].as_str().unwrap().contains("read twice"),
        "{rows:?}"
    );
    let (_, r) = p.json(&["sync"]);
    assert!(
        problems_text(&r, "inv-2026-0001").contains("read twice"),
        "{r}"
    );
}

/// A copy of a delivered id in a new file, its first file unchanged (so not read again): the
/// sync took it for a change after delivery while the preview, reading everything, saw a
/// second copy. Both see a second copy now, and the sync reports it on every run.
#[test]
fn a_copy_of_a_delivered_id_in_a_new_file_is_a_duplicate_for_sync_too() {
    let p = Project::demo();
    p.json(&["sync"]);
    let mut copy = p.read_json("examples/invoices/inv-2026-0001.json");
    copy["due_date"] = "2026-12-31".into();
    p.write("examples/invoices/zz-copy.json", &copy.to_string());
    let rows = preview_rows(&p, &[], "inv-2026-0001");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1]["status"], "held", "{rows:?}");
    for run in 0..2 {
        let (code, r) = p.json(&["sync"]);
        assert_eq!(code, 1, "run {run}: {r}");
        let lines = problems_text(&r, "inv-2026-0001");
        assert!(
            lines.contains("read twice") && lines.contains("zz-copy.json"),
            "run {run}: {r}"
        );
        assert!(!lines.contains("changed-after-delivery"), "run {run}: {r}");
    }
    assert_eq!(csv_rows_of(&p, "F2026-0001"), 1);
}
