//! Operations: skipped tests, the report, --fail-on, mappings check, preview counts, the document
//! format.

use crate::common::*;

/// A copy of the demo's F2026-0030 (tax code TVA85 has no mapping) under another id and number.
fn unmapped_copy(p: &Project, n: u32) {
    let mut v = p.read_json("examples/invoices/inv-2026-0030.json");
    v["id"] = format!("inv-2026-9{n:03}").into();
    v["number"] = format!("F2026-9{n:03}").into();
    p.write_json(&format!("examples/invoices/inv-2026-9{n:03}.json"), &v);
}

#[test]
fn a_test_that_skips_for_a_missing_tool_says_skipped_and_fails_under_ci() {
    // The Pennylane contract test needs Prism: pointed at none, it must skip visibly (libtest
    // would print only "ok"), and fail under CI=true.
    let name =
        "pennylane_contract::every_request_of_a_sync_is_valid_against_the_pennylane_contract";
    let run = |ci: bool| {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap());
        c.args([name, "--exact", "--test-threads=1"])
            .env("FACTO_PRISM", "/nonexistent/prism")
            .env_remove("CI");
        if ci {
            c.env("CI", "true");
        }
        c.output().unwrap()
    };
    let out = run(false);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(all.contains(&format!("skipped: {name}: Prism")), "{all}");
    // Listed again after libtest's summary, the last thing a user sees.
    let summary = all.find("test result:").unwrap();
    assert!(all[summary..].contains("skipped: 1 test(s)"), "{all}");
    let out = run(true);
    assert!(!out.status.success(), "under CI=true a missing tool fails");
}

#[test]
fn the_report_groups_identical_problems_and_gives_the_amounts_delivered() {
    use rust_decimal::Decimal;
    let p = Project::demo();
    for n in 1..=4 {
        unmapped_copy(&p, n);
    }
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1);
    let groups = r["problem_groups"].as_array().unwrap();
    let tva85: Vec<_> = groups
        .iter()
        .filter(|g| g["reason"].as_str().unwrap().contains("TVA85"))
        .collect();
    assert_eq!(tva85.len(), 1, "{groups:#?}");
    assert_eq!(tva85[0]["documents"], 5);
    assert_eq!(
        tva85[0]["targets"],
        serde_json::json!(["sales-csv", "sales-fec"])
    );
    assert_eq!(tva85[0]["examples"].as_array().unwrap().len(), 3);
    // The amounts of what was delivered: every final document but the two held ones (and the
    // copies), credit notes deducted.
    let (mut net, mut tax, mut gross) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for e in std::fs::read_dir(repo().join("examples/invoices")).unwrap() {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
        let docs = match v {
            serde_json::Value::Array(a) => a,
            one => vec![one],
        };
        for d in docs {
            if d["status"] != "final"
                || ["F2026-0030", "F2026-0032"].contains(&d["number"].as_str().unwrap())
            {
                continue;
            }
            let sign = if d["kind"] == "credit_note" {
                -Decimal::ONE
            } else {
                Decimal::ONE
            };
            let amount =
                |k: &str| sign * d["totals"][k].as_str().unwrap().parse::<Decimal>().unwrap();
            net += amount("net");
            tax += amount("tax");
            gross += amount("gross");
        }
    }
    for t in ["sales-fec", "sales-csv"] {
        let a = &target(&r, t)["amounts"];
        assert_eq!(target(&r, t)["delivered"], DEMO_DELIVERABLE);
        assert_eq!(
            a["net"].as_str().unwrap().parse::<Decimal>().unwrap(),
            net,
            "{a}"
        );
        assert_eq!(
            a["tax"].as_str().unwrap().parse::<Decimal>().unwrap(),
            tax,
            "{a}"
        );
        assert_eq!(
            a["gross"].as_str().unwrap().parse::<Decimal>().unwrap(),
            gross,
            "{a}"
        );
    }
    // For humans: one line for the five documents, and the amounts beside the counts.
    let p2 = Project::demo();
    for n in 1..=4 {
        unmapped_copy(&p2, n);
    }
    let text = String::from_utf8(p2.run(&["sync"]).stdout).unwrap();
    assert_eq!(text.matches("`TVA85` has no mapping").count(), 1, "{text}");
    assert!(text.contains("5 documents, e.g. F2026-0030"), "{text}");
    assert!(
        text.contains(&format!("net {net}, VAT {tax}, gross {gross}")),
        "{text}"
    );
}

#[test]
fn sync_fail_on_new_exits_0_when_nothing_new_went_wrong() {
    let p = Project::demo();
    let code = |args: &[&str]| p.run(args).status.code().unwrap();
    // The demo's two held documents are new at the first run.
    assert_eq!(code(&["sync", "--fail-on", "new"]), 1);
    // Still held, already reported: a cron job is not failed again.
    assert_eq!(code(&["sync", "--fail-on", "new"]), 0);
    let (c, r) = p.json(&["sync", "--fail-on", "new"]);
    assert_eq!((c, r["new_problems"].as_u64()), (0, Some(0)));
    assert_eq!(r["problems"].as_array().unwrap().len(), 4, "still reported");
    let (c, r) = p.json(&["sync", "--fail-on", "new", "--dry-run"]);
    assert_eq!((c, r["new_problems"].as_u64()), (0, Some(0)));
    // The default is unchanged.
    assert_eq!(code(&["sync"]), 1);
    assert_eq!(code(&["sync", "--fail-on", "never"]), 0);
    // A new problem fails once.
    unmapped_copy(&p, 1);
    let (c, r) = p.json(&["sync", "--fail-on", "new"]);
    // One new document, held for both targets: one new problem, as the report lists it.
    assert_eq!((c, r["new_problems"].as_u64()), (1, Some(1)));
    assert_eq!(code(&["sync", "--fail-on", "new"]), 0);
    // The job setting, and a bad value named with its line.
    let toml = p.read("facto.toml");
    p.write(
        "facto.toml",
        &toml.replace("name = \"demo\"", "name = \"demo\"\nfail_on = \"new\""),
    );
    assert_eq!(code(&["sync"]), 0);
    p.write(
        "facto.toml",
        &toml.replace(
            "name = \"demo\"",
            "name = \"demo\"\nfail_on = \"sometimes\"",
        ),
    );
    let out = p.run(&["sync"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("facto.toml:") && err.contains("sometimes"),
        "{err}"
    );
}

#[test]
fn mappings_check_fails_when_no_source_document_could_be_read() {
    let p = Project::demo();
    for e in std::fs::read_dir(p.path("examples/invoices")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    p.write("examples/invoices/broken.json", "{\"id\": \"x\",");
    let (code, v) = p.json(&["mappings", "check"]);
    assert_eq!(code, 1, "{v}");
    let job = &v["jobs"][0];
    assert_eq!(job["documents_scanned"], 0);
    let unreadable = job["unreadable"].as_array().unwrap();
    assert_eq!(unreadable.len(), 1);
    assert!(
        unreadable[0].as_str().unwrap().contains("broken.json"),
        "{v}"
    );
    let text = String::from_utf8(p.run(&["mappings", "check"]).stdout).unwrap();
    assert!(text.contains("no document could be read"), "{text}");
}

#[test]
fn preview_and_export_agree_on_the_skipped_counts() {
    let p = Project::demo();
    for t in ["chorus-files", "sales-fec"] {
        let period = ["--target", t, "--from", "2026-01-01", "--to", "2026-12-31"];
        let (_, preview) = p.json(&[&["preview"][..], &period].concat());
        let (_, export) = p.json(&[&["export"][..], &period].concat());
        assert_eq!(preview["skipped"], export["skipped"], "{t}");
    }
    // A delivered document cancelled later in the source is already delivered, not skipped.
    let p = Project::demo();
    assert_eq!(p.json(&["sync"]).0, 1);
    let f = "examples/invoices/inv-2026-0001.json";
    p.write(
        f,
        &p.read(f)
            .replace("\"status\": \"final\"", "\"status\": \"cancelled\""),
    );
    let period = [
        "--target",
        "sales-fec",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ];
    let (_, preview) = p.json(&[&["preview"][..], &period].concat());
    let (_, export) = p.json(&[&["export"][..], &period].concat());
    assert_eq!(preview["skipped"], export["skipped"]);
    assert!(preview["skipped"].get("cancelled").is_none(), "{preview}");
}

/// A Python with the `jsonschema` package (`.ci/run` installs it into target/fec-venv and sets
/// FACTO_SCHEMA_PYTHON), or `None` after saying "skipped" (a failure under CI=true).
fn python_with_jsonschema() -> Option<std::path::PathBuf> {
    let py = std::env::var_os("FACTO_SCHEMA_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "python3".into());
    let ok = std::process::Command::new(&py)
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    skip("no Python with the jsonschema package (.ci/run installs it into target/fec-venv)");
    None
}

/// Validates JSON files against schema/document.schema.json (draft 2020-12, formats checked);
/// returns (success, messages).
fn validate_documents(py: &std::path::Path, files: &[std::path::PathBuf]) -> (bool, String) {
    const CHECK: &str = r#"
import json, sys, jsonschema
V = jsonschema.Draft202012Validator
schema = json.load(open(sys.argv[1], encoding="utf-8"))
V.check_schema(schema)
v = V(schema, format_checker=V.FORMAT_CHECKER)
bad = 0
for f in sys.argv[2:]:
    data = json.load(open(f, encoding="utf-8"))
    for doc in data if isinstance(data, list) else [data]:
        for e in v.iter_errors(doc):
            bad += 1
            print(f, doc.get("id") if isinstance(doc, dict) else "", e.json_path, e.message[:300])
sys.exit(1 if bad else 0)
"#;
    let out = std::process::Command::new(py)
        .args(["-c", CHECK])
        .arg(repo().join("schema/document.schema.json"))
        .args(files)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn every_example_document_is_valid_against_the_published_schema() {
    let Some(py) = python_with_jsonschema() else {
        return;
    };
    fn walk(d: &std::path::Path, v: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, v);
            } else if p.extension().is_some_and(|x| x == "json") {
                v.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join("examples"), &mut files);
    assert!(files.len() > 40, "{files:?}");
    let (ok, msg) = validate_documents(&py, &files);
    assert!(ok, "{msg}");
    // The schema refuses what facto refuses: an amount as a JSON number, an unknown kind, a
    // missing total.
    let dir = tempfile::tempdir().unwrap();
    let good: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("examples/new-invoice.json")).unwrap())
            .unwrap();
    let mut bad = Vec::new();
    for (i, change) in [
        ("/totals/gross", serde_json::json!(1419.0)),
        ("/kind", serde_json::json!("quote")),
        ("/lines/0/quantity", serde_json::json!(1)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut v = good.clone();
        *v.pointer_mut(change.0).unwrap() = change.1;
        let f = dir.path().join(format!("bad{i}.json"));
        std::fs::write(&f, serde_json::to_vec(&v).unwrap()).unwrap();
        bad.push(f);
    }
    let mut v = good.clone();
    v["totals"].as_object_mut().unwrap().remove("due");
    let f = dir.path().join("bad-due.json");
    std::fs::write(&f, serde_json::to_vec(&v).unwrap()).unwrap();
    bad.push(f);
    for f in &bad {
        let (ok, msg) = validate_documents(&py, std::slice::from_ref(f));
        assert!(!ok, "{} should be invalid: {msg}", f.display());
    }
}

#[test]
fn the_document_schema_names_every_field_the_model_reads() {
    // Every field facto's model has (serialized from a document that uses them all) is
    // described in the schema and in docs/document-format.md.
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("examples/new-invoice.json")).unwrap())
            .unwrap();
    v["attachments"] = serde_json::json!([{"kind": "invoice_pdf", "path": "f.pdf"}]);
    v["buyer"]["delivery_address"] = v["buyer"]["billing_address"].clone();
    let doc = facto::model::parse_document(v, "new-invoice.json", 0).unwrap();
    let model = serde_json::to_value(&doc).unwrap();
    fn keys(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    out.insert(k.clone());
                    keys(x, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
            _ => {}
        }
    }
    fn properties(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Object(p)) = m.get("properties") {
                    out.extend(p.keys().cloned());
                }
                m.values().for_each(|x| properties(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| properties(x, out)),
            _ => {}
        }
    }
    let mut used = std::collections::BTreeSet::new();
    keys(&model, &mut used);
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("schema/document.schema.json")).unwrap())
            .unwrap();
    let mut described = std::collections::BTreeSet::new();
    properties(&schema, &mut described);
    let missing: Vec<_> = used.difference(&described).collect();
    assert!(missing.is_empty(), "not in the schema: {missing:?}");
    let doc_text = std::fs::read_to_string(repo().join("docs/document-format.md")).unwrap();
    let undocumented: Vec<_> = used
        .iter()
        .filter(|k| !doc_text.contains(&format!("`{k}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/document-format.md: {undocumented:?}"
    );
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains("docs/document-format.md")
            && readme.contains("schema/document.schema.json")
    );
}

#[test]
fn sync_fail_on_new_remembers_problems_across_a_run_that_stopped_early() {
    let p = Project::demo();
    assert_eq!(
        p.run(&["sync"]).status.code(),
        Some(1),
        "held demo documents"
    );
    // A delivered invoice changes (reported at each pull until a run completes), a new one waits.
    let edit = |from: &str, to: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value =
            serde_json::from_str(&p.read(&format!("examples/invoices/{from}.json"))).unwrap();
        f(&mut v);
        p.write_json(&format!("examples/invoices/{to}.json"), &v);
    };
    edit("inv-2026-0001", "inv-2026-0001", &|v| {
        v["due_date"] = "2026-03-31".into();
        v["updated_at"] = "2026-11-01T00:00:00Z".into();
    });
    edit("inv-2026-0002", "inv-2026-8001", &|v| {
        v["id"] = "inv-2026-8001".into();
        v["number"] = "F2026-8001".into();
        v["updated_at"] = "2026-11-02T00:00:00Z".into();
    });
    let changed = |r: &serde_json::Value| {
        r["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["status"] == "changed-after-delivery" && l["doc_id"] == "inv-2026-0001")
    };
    // Reported by a run that cannot write its files (the cursor stays, so it comes back).
    std::fs::rename(p.path("out"), p.path("out.real")).unwrap();
    p.write("out", "not a folder");
    let (c, r) = p.json(&["sync", "--fail-on", "new"]);
    assert_eq!(c, 3, "{r}");
    assert!(changed(&r), "{r}");
    std::fs::remove_file(p.path("out")).unwrap();
    std::fs::rename(p.path("out.real"), p.path("out")).unwrap();
    // A run that stops before reading anything does not list it...
    std::fs::rename(p.path("examples/invoices"), p.path("examples/away")).unwrap();
    let (c, r) = p.json(&["sync", "--fail-on", "new"]);
    assert_eq!(c, 3, "{r}");
    assert!(!changed(&r), "{r}");
    std::fs::rename(p.path("examples/away"), p.path("examples/invoices")).unwrap();
    // ...and the next complete run does not take it for new.
    let (c, r) = p.json(&["sync", "--fail-on", "new"]);
    assert!(changed(&r), "{r}");
    assert_eq!((c, r["new_problems"].as_u64()), (0, Some(0)), "{r}");
}

#[test]
fn an_error_in_the_second_job_is_reported_at_the_second_jobs_line() {
    // Lines were found by a text search, which named the first job's `schedule` (or `name`)
    // for an error in the second job.
    let p = Project::demo();
    let toml = p.read("facto.toml");
    let with = |second: &str| {
        let text = format!("{toml}\n[[job]]\n{second}");
        p.write("facto.toml", &text);
        let out = p.run(&["sync"]);
        assert_eq!(out.status.code(), Some(2));
        (text, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let line_of_last = |text: &str, start: &str| {
        text.lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with(start))
            .last()
            .unwrap()
            .0
            + 1
    };
    let (text, err) = with(
        "name = \"nightly\"\nsource = \"demo-invoices\"\nmapping = \"pcg-demo\"\n\
         targets = [\"sales-quadratus\"]\nschedule = \"every 15 parsecs\"\n",
    );
    let line = line_of_last(&text, "schedule");
    assert!(
        err.contains(&format!("facto.toml:{line}: job `nightly`: schedule")),
        "{err}"
    );
    let (text, err) = with(
        "name = \"demo\"\nsource = \"demo-invoices\"\nmapping = \"pcg-demo\"\n\
         targets = [\"sales-quadratus\"]\n",
    );
    let line = line_of_last(&text, "name = \"demo\"");
    assert!(
        err.contains(&format!("facto.toml:{line}: job `demo` is declared twice")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_fails_to_start_alerts_its_stop_once_and_the_earlier_jobs_alerts_go_out() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/alerts"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let p = Project::demo();
    let mut cfg = p.read("facto.toml");
    // A second job whose target cannot run (Xero, never connected): the sync stops there,
    // after the demo job recorded its alert (two documents held).
    cfg.push_str(&format!(
        "\n[[job]]\nname = \"later\"\nsource = \"demo-invoices\"\nmapping = \"pcg-demo\"\ntargets = [\"xero\"]\n\n[alerts]\nwebhook_url = \"{}/alerts\"\nwebhook_secret_env = \"FACTO_TEST_ALERT_KEY\"\n",
        hook.uri()
    ));
    p.write("facto.toml", &cfg);
    let sync = || {
        let mut c = p.command(&["sync"]);
        c.env("FACTO_TEST_ALERT_KEY", "k")
            .env("XERO_CLIENT_ID", "id")
            .env("XERO_CLIENT_SECRET", "secret");
        c
    };
    let mut c = sync();
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("not connected to Xero"), "{err}");
    let got = hook.received_requests().await.unwrap_or_default();
    let bodies: Vec<serde_json::Value> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    // The demo job's alert is sent by this run, and the later job's stop raises its own.
    assert_eq!(bodies[0]["job"], "demo");
    assert_eq!(bodies[0]["events"], serde_json::json!(["held"]));
    assert_eq!(bodies[1]["job"], "later");
    assert_eq!(bodies[1]["events"], serde_json::json!(["stopped"]));
    assert!(bodies[1]["text"]
        .as_str()
        .unwrap()
        .contains("not connected to Xero"));
    // The stop names its target first, as a target's own stop does (the overview reads it).
    assert!(
        bodies[1]["stopped"]
            .as_str()
            .is_some_and(|s| s.starts_with("xero: ")),
        "{}",
        bodies[1]
    );
    // The same stop at the next run: no second alert.
    let mut c = sync();
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    assert_eq!(hook.received_requests().await.unwrap_or_default().len(), 2);
}
