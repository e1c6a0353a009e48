//! The PA's AFNOR Directory Service 1.3.0, simulated beside the Flow API of `pa_sim` (same
//! server, under `/directory-service`, same tokens and `Request-Id` checks), and the routes of
//! the demo's documents through the real binary: B2B sent with BT-49 = the directory's
//! addressing identifier, B2C and international sales held for e-reporting and never sent, a
//! SIREN with no line, only a `Disabled` line or an `Upcoming` one held with its reason, public
//! buyers per `public_buyers`; the directory's answers cached per SIREN, used on the next run and
//! looked up again once expired.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use wiremock::{Request, ResponseTemplate};

use crate::common::{json_of, target, with_json, Project};
use crate::pa_sim::{parts, Sim, BEARER};

/// Where the simulator serves the directory.
pub const BASE: &str = "/directory-service";

/// The directory's state: lines per SIREN; a SIREN it does not list gets one `Enabled` line of
/// its own (the SIREN as address), so that tests about other things see every buyer reachable.
#[derive(Default)]
pub struct Directory {
    /// SIREN → its lines (`directoryLinePayloadStatusLegalUnitFacilityRoutingCode`).
    pub lines: BTreeMap<String, Vec<Value>>,
    /// Searches per SIREN.
    pub searches: BTreeMap<String, u32>,
    /// SIRENs whose search the directory refuses (422).
    pub refuse: std::collections::BTreeSet<String>,
}

/// A directory line.
pub fn line(siren: &str, id: &str, status: &str) -> Value {
    json!({"addressingIdentifier": id, "siren": siren, "platformType": "WK",
        "directoryLineStatus": status})
}

impl Directory {
    /// Answers a request under [`BASE`] (`rest` is the path after it).
    pub fn answer(&mut self, req: &Request, rest: &str) -> ResponseTemplate {
        if (req.method.as_str(), rest) != ("POST", "/v1/directory-line/search") {
            return ResponseTemplate::new(404);
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let filter = &body["filters"]["siren"];
        let Some(siren) = filter["value"]
            .as_str()
            .filter(|_| filter["op"] == "strict")
        else {
            return ResponseTemplate::new(422).set_body_json(
                json!({"errorCode": "INVALID_FORMAT", "errorMessage": "filters.siren {op: strict, value} expected"}),
            );
        };
        *self.searches.entry(siren.to_owned()).or_insert(0) += 1;
        if self.refuse.contains(siren) {
            return ResponseTemplate::new(422).set_body_json(
                json!({"errorCode": "INVALID_SIREN", "errorMessage": "checksum refused"}),
            );
        }
        let results = self
            .lines
            .get(siren)
            .cloned()
            .unwrap_or_else(|| vec![line(siren, siren, "Enabled")]);
        ResponseTemplate::new(200).set_body_json(json!({"search": body,
            "totalNumberOfResults": results.len(), "results": results}))
    }
}

const T: &str = "pa";

/// The demo's SIRENs.
const DUPONT: &str = "412358764";
const MARTIN: &str = "528471931";
const PAPYRUS: &str = "791305428";
const PHARMACIE: &str = "384192753";
const BELLEVUE: &str = "605714286";

fn project(sim: &Sim, extra: &str) -> Project {
    Project::demo_with_target(T, &sim.bearer_connector(extra))
}

/// The demo's B2C sale (a private person: no SIREN, no VAT id).
const B2C: &str = "F2026-0050";

async fn run(p: &Project, args: &[&str]) -> (i32, Value, String) {
    let mut c = p.command(&with_json(args));
    c.env("PA_TOKEN", BEARER);
    json_of(c).await
}

fn records(p: &Project) -> Vec<Value> {
    let (_, v) = p.json(&["ledger", "list", "--target", T]);
    v.as_array().cloned().unwrap_or_default()
}

/// The flows the PA received: invoice number → (`processingRule`, the file).
async fn sent(sim: &Sim) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for q in sim.server.received_requests().await.unwrap_or_default() {
        if q.method.as_str() != "POST" || !q.url.path().ends_with("/v1/flows") {
            continue;
        }
        let p = parts(&q);
        let info: Value = serde_json::from_slice(&p["flowInfo"].1).unwrap();
        let xml = String::from_utf8_lossy(&p["file"].1).into_owned();
        let number = xml
            .split_once("<rsm:ExchangedDocument>")
            .and_then(|(_, r)| r.split_once("<ram:ID>"))
            .and_then(|(_, r)| r.split_once("</ram:ID>"))
            .map(|(n, _)| n.to_owned())
            .unwrap();
        out.insert(
            number,
            (
                info["processingRule"].as_str().unwrap_or("").to_owned(),
                xml,
            ),
        );
    }
    out
}

/// The demo's two documents held by their own problems (an unmapped tax code, wrong totals).
const HELD_ANYWAY: [&str; 2] = ["F2026-0030", "F2026-0032"];

/// The demo's final documents per buyer SIREN (None: no SIREN), but [`HELD_ANYWAY`].
fn numbers_of(p: &Project, siren: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p.path("examples/invoices")).unwrap() {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap();
        let docs = match v {
            Value::Array(a) => a,
            Value::Object(ref o) if o.contains_key("documents") => {
                v["documents"].as_array().cloned().unwrap_or_default()
            }
            other => vec![other],
        };
        for d in docs {
            let number = d["number"].as_str().unwrap_or("");
            if d["status"] == "final"
                && d["buyer"]["siren"].as_str() == siren
                && !HELD_ANYWAY.contains(&number)
            {
                out.push(d["number"].as_str().unwrap().to_owned());
            }
        }
    }
    out
}

fn held_codes(p: &Project, number: &str) -> Vec<String> {
    let r = records(p)
        .into_iter()
        .find(|r| r["number"] == number)
        .unwrap_or_else(|| panic!("no record of {number}"));
    assert_eq!(r["state"], "held", "{r}");
    r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["code"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_sync_routes_each_buyer_kind() {
    let sim = Sim::start().await;
    {
        let mut s = sim.state.lock().unwrap();
        let d = &mut s.directory.lines;
        // Two Enabled lines: the invoiced facility's wins over the SIREN's own (the demo's
        // electronic address 528471931 is not listed, so the AIFE order decides).
        d.insert(
            MARTIN.into(),
            vec![
                line(MARTIN, "528471931_FACTURES", "Enabled"),
                json!({"addressingIdentifier": "528471931_52847193100014", "siren": MARTIN,
                    "siret": "52847193100014", "directoryLineStatus": "Enabled"}),
                line(MARTIN, "528471931_OLD", "Disabled"),
            ],
        );
        d.insert(PAPYRUS.into(), vec![]);
        d.insert(
            PHARMACIE.into(),
            vec![line(PHARMACIE, PHARMACIE, "Disabled")],
        );
        d.insert(BELLEVUE.into(), vec![line(BELLEVUE, BELLEVUE, "Upcoming")]);
    }
    let p = project(&sim, "");
    let (_, r, err) = run(&p, &["sync"]).await;
    let sent = sent(&sim).await;
    let mut expected = numbers_of(&p, Some(DUPONT));
    expected.extend(numbers_of(&p, Some(MARTIN)));
    expected.sort();
    let got: Vec<String> = sent.keys().cloned().collect();
    assert_eq!(got, expected, "{r} {err}");
    assert_eq!(target(&r, T)["delivered"], expected.len(), "{r}");
    for (number, (rule, xml)) in &sent {
        assert_eq!(rule, "B2B", "{number}");
        assert!(
            xml.contains("<ram:Content>B2B</ram:Content>"),
            "{number}: {xml}"
        );
        let bt49 = if numbers_of(&p, Some(MARTIN)).contains(number) {
            "528471931_52847193100014"
        } else {
            DUPONT
        };
        assert!(
            xml.contains(&format!("<ram:URIID schemeID=\"0225\">{bt49}</ram:URIID>")),
            "{number}: BT-49 {bt49} expected: {xml}"
        );
    }
    // Never sent as B2B: the private person and the German buyer, held for e-reporting.
    for n in numbers_of(&p, None) {
        assert_eq!(held_codes(&p, &n), ["e-reporting"], "{n}");
    }
    let b2c = held_codes(&p, B2C);
    assert_eq!(b2c, ["e-reporting"]);
    // No directory line, only Disabled, Upcoming: held with their reasons.
    for (siren, code) in [
        (PAPYRUS, "directory-missing"),
        (PHARMACIE, "directory-disabled"),
        (BELLEVUE, "directory-upcoming"),
    ] {
        for n in numbers_of(&p, Some(siren)) {
            assert_eq!(held_codes(&p, &n), [code], "{n}");
        }
    }
    let reasons = r["problems"].to_string();
    assert!(reasons.contains("queued for e-reporting (issue 15)"), "{r}");
    assert!(reasons.contains("not active yet (Upcoming)"), "{r}");
    // Public buyers go to Chorus Pro directly, and this job has no Chorus Pro target: the PA
    // holds them with the fix rather than leave them to no platform (and never sends them).
    let public: Vec<String> = ["216901231", "196901234"]
        .iter()
        .flat_map(|s| numbers_of(&p, Some(s)))
        .collect();
    assert!(!public.is_empty());
    for n in &public {
        assert!(!sent.contains_key(n), "{n}");
        assert_eq!(held_codes(&p, n), ["public-buyer-no-chorus-target"], "{n}");
    }
    assert!(reasons.contains("public_buyers = \\\"pa\\\""), "{r}");
    // One search per SIREN looked up, none for a buyer without one.
    let searches = sim.state.lock().unwrap().directory.searches.clone();
    let mut looked_up = vec![DUPONT, MARTIN, PAPYRUS, PHARMACIE, BELLEVUE];
    looked_up.sort_unstable();
    assert_eq!(searches.keys().collect::<Vec<_>>(), looked_up);
    assert!(searches.values().all(|n| *n == 1), "{searches:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn public_buyers_go_through_the_pa_when_the_connector_says_so() {
    let sim = Sim::start().await;
    // A public entity the source does not flag: the directory says so (entityType Public).
    let mut public_line = line(BELLEVUE, BELLEVUE, "Enabled");
    public_line["legalUnit"] = json!({"siren": BELLEVUE, "entityType": "Public"});
    sim.state
        .lock()
        .unwrap()
        .directory
        .lines
        .insert(BELLEVUE.into(), vec![public_line]);
    // The lycée's structure requires an engagement number (b2gAdditionalData).
    sim.state.lock().unwrap().directory.lines.insert(
        "196901234".into(),
        vec![
            json!({"addressingIdentifier": "196901234_19690123400015", "siren": "196901234",
            "siret": "19690123400015", "directoryLineStatus": "Enabled",
            "facility": {"siret": "19690123400015",
                "b2gAdditionalData": {"managesLegalCommitmentCode": true}}}),
        ],
    );
    let p = project(&sim, "public_buyers = \"pa\"\n");
    let (_, r, err) = run(&p, &["sync"]).await;
    let sent = sent(&sim).await;
    // The demo's Chorus Pro anomaly (a purchase order beside the engagement number), and the
    // lycée's invoices without an engagement number: held by the Chorus Pro rules and the
    // structure's own, through the PA too.
    let held = [
        ("F2026-0004", "CHORUS-EJ-OR-PO"),
        ("F2026-0008", "CHORUS-STRUCTURE-EJ"),
        ("F2026-0025", "CHORUS-STRUCTURE-EJ"),
    ];
    let public: Vec<String> = ["216901231", "196901234"]
        .iter()
        .flat_map(|s| numbers_of(&p, Some(s)))
        .filter(|n| held.iter().all(|(h, _)| h != n))
        .collect();
    assert!(!public.is_empty());
    for (n, code) in held {
        assert_eq!(held_codes(&p, n), [code], "{n}");
    }
    for n in &public {
        let (rule, _) = sent
            .get(n)
            .unwrap_or_else(|| panic!("{n} not sent: {r} {err}"));
        assert_eq!(rule, "B2G", "{n}");
    }
    assert_eq!(sent[&numbers_of(&p, Some(DUPONT))[0]].0, "B2B");
    // Never as B2B: the directory's public entity gets the Chorus Pro rules (the demo's hotel
    // lacks its establishment's SIRET on the delivery address) and is held.
    for n in numbers_of(&p, Some(BELLEVUE)) {
        assert!(!sent.contains_key(&n), "{n}");
        assert_eq!(held_codes(&p, &n), ["CHORUS-ADDRESS-SIRET"], "{n}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_answers_are_cached_then_looked_up_again_once_expired() {
    let sim = Sim::start().await;
    sim.state.lock().unwrap().directory.lines.insert(
        PHARMACIE.into(),
        vec![line(PHARMACIE, PHARMACIE, "Upcoming")],
    );
    let p = project(&sim, "");
    run(&p, &["sync"]).await;
    let searches = || sim.state.lock().unwrap().directory.searches.clone();
    let first = searches();
    assert_eq!(first[PHARMACIE], 1);
    let pharmacie = numbers_of(&p, Some(PHARMACIE));
    assert_eq!(held_codes(&p, &pharmacie[0]), ["directory-upcoming"]);

    // The PA's line becomes active; within the cache's life the held documents are re-checked
    // from the cache: no search, still held.
    sim.state.lock().unwrap().directory.lines.insert(
        PHARMACIE.into(),
        vec![line(PHARMACIE, PHARMACIE, "Enabled")],
    );
    run(&p, &["sync"]).await;
    assert_eq!(
        searches(),
        first,
        "the cache answers within directory_cache_hours"
    );
    assert_eq!(held_codes(&p, &pharmacie[0]), ["directory-upcoming"]);

    // Expired (a cache of 0 hours): looked up again at send time, and sent.
    let connector = p.read("connectors/pa.toml");
    p.write(
        "connectors/pa.toml",
        &format!("{connector}directory_cache_hours = 0\n"),
    );
    let (_, r, err) = run(&p, &["sync"]).await;
    assert_eq!(searches()[PHARMACIE], 2, "{r} {err}");
    assert_eq!(target(&r, T)["delivered"], pharmacie.len(), "{r}");
    let sent = sent(&sim).await;
    assert!(pharmacie.iter().all(|n| sent.contains_key(n)), "{sent:?}");
}

/// `preview --target pa` shows each document's route, address and why, from facto's directory
/// cache only: before any sync it calls nothing and says the address is looked up at send
/// time; after one, it shows the directory's address (and the holds it implies).
#[tokio::test(flavor = "multi_thread")]
async fn preview_shows_each_route_from_the_cache_and_calls_nothing() {
    let sim = Sim::start().await;
    sim.state
        .lock()
        .unwrap()
        .directory
        .lines
        .insert(BELLEVUE.into(), vec![line(BELLEVUE, BELLEVUE, "Upcoming")]);
    let p = project(&sim, "");
    let row = |v: &Value, number: &str| -> Value {
        v["targets"][0]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["number"] == number)
            .cloned()
            .unwrap_or_else(|| panic!("no row {number}: {v}"))
    };
    let dupont = numbers_of(&p, Some(DUPONT))[0].clone();
    let bellevue = numbers_of(&p, Some(BELLEVUE))[0].clone();
    let muller = numbers_of(&p, None)
        .into_iter()
        .find(|n| n.starts_with('F'))
        .unwrap();

    let (_, v, _) = run(&p, &["preview", "--target", T]).await;
    assert!(
        sim.server.received_requests().await.unwrap().is_empty(),
        "preview called the PA"
    );
    let r = row(&v, &dupont);
    assert_eq!(r["route"]["route"], "pa-b2b", "{r}");
    assert!(r["route"]["address"].is_null(), "{r}");
    assert!(
        r["route"]["why"]
            .as_str()
            .unwrap()
            .contains("looked up at send time"),
        "{r}"
    );
    let r = row(&v, &muller);
    assert_eq!(
        (r["status"].as_str(), r["route"]["route"].as_str()),
        (Some("held"), Some("international")),
        "{r}"
    );
    assert!(r["detail"].as_str().unwrap().contains("e-reporting"), "{r}");
    assert_eq!(row(&v, B2C)["route"]["route"], "b2c");

    run(&p, &["sync"]).await;
    let (_, v, _) = run(&p, &["preview", "--target", T]).await;
    let r = row(&v, &bellevue);
    assert_eq!(r["status"], "held", "{r}");
    assert!(r["detail"].as_str().unwrap().contains("Upcoming"), "{r}");
    assert!(
        r["route"]["why"].as_str().unwrap().contains("Upcoming"),
        "{r}"
    );
    // A document already sent shows its route too.
    let r = row(&v, &dupont);
    assert_eq!(r["status"], "already-transferred", "{r}");
    assert_eq!(r["route"]["address"], DUPONT, "{r}");
    // A new Dupont invoice: its address comes from the cached answer.
    let mut doc = p.read_json("examples/invoices/inv-2026-0039.json");
    doc["id"] = json!("test-dupont-0040");
    doc["number"] = json!("T2026-0040");
    p.write_json("examples/invoices/test-dupont-0040.json", &doc);
    let out = p
        .command(&["preview", "--target", T])
        .env("PA_TOKEN", BEARER)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .skip_while(|l| !l.contains("T2026-0040"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        line.contains("route pa-b2b to 412358764") && line.contains("directory answer of"),
        "{text}"
    );
}

/// Public buyers through the PA and a Chorus Pro target in one job would reach Chorus Pro twice:
/// the configuration is refused, naming both targets.
#[tokio::test(flavor = "multi_thread")]
async fn public_buyers_through_the_pa_beside_a_chorus_target_is_refused() {
    let sim = Sim::start().await;
    let p = project(&sim, "public_buyers = \"pa\"\n");
    let cfg = p.read("facto.toml").replace(
        "\"sales-csv\", \"pa\"]",
        "\"sales-csv\", \"pa\", \"chorus-files\"]",
    );
    p.write("facto.toml", &cfg);
    let out = p
        .command(&["sync"])
        .env("PA_TOKEN", BEARER)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`pa`") && err.contains("`chorus-files`") && err.contains("twice"),
        "{err}"
    );
    assert!(sim.server.received_requests().await.unwrap().is_empty());
}

/// Without `directory_url` no B2B route can be decided: B2B documents are held with the fix,
/// nothing is sent, and the e-reporting holds are unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_directory_b2b_documents_are_held_with_the_fix() {
    let sim = Sim::start().await;
    let connector: String = sim
        .bearer_connector("")
        .lines()
        .filter(|l| !l.starts_with("directory_url"))
        .map(|l| format!("{l}\n"))
        .collect();
    let p = Project::demo_with_target(T, &connector);
    let (code, r, err) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "{r} {err}");
    assert_eq!(target(&r, T)["delivered"], 0, "{r}");
    assert!(sent(&sim).await.is_empty());
    let dupont = &numbers_of(&p, Some(DUPONT))[0];
    assert_eq!(held_codes(&p, dupont), ["directory-not-configured"]);
    assert!(
        r["problems"].to_string().contains("set directory_url"),
        "{r}"
    );
    assert_eq!(held_codes(&p, B2C), ["e-reporting"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_company_wording_of_the_notes_fills_the_notes_a_document_lacks() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    let toml = p.read("facto.toml").replacen(
        "[[job]]",
        "[company.invoice_notes]\npmt = \"Company PMT wording\"\naab = \"Escompte de 1 % pour paiement sous 8 jours\"\n\n[[job]]",
        1,
    );
    p.write("facto.toml", &toml);
    let (_, r, err) = run(&p, &["sync"]).await;
    let sent = sent(&sim).await;
    assert!(!sent.is_empty(), "{r} {err}");
    for (number, (_, xml)) in &sent {
        // The document has no AAB note: the company's wording, not the legal default.
        assert!(
            xml.contains("Escompte de 1 % pour paiement sous 8 jours"),
            "{number}: {xml}"
        );
        assert!(!xml.contains("Pas d’escompte"), "{number}");
        // It has its own PMT note, which wins.
        assert!(!xml.contains("Company PMT wording"), "{number}");
        assert!(
            xml.contains("<ram:SubjectCode>PMT</ram:SubjectCode>"),
            "{number}"
        );
    }
    // An unknown key is refused with its file and line.
    p.write(
        "facto.toml",
        &toml.replacen("aab = \"Escompte", "aab_text = \"Escompte", 1),
    );
    let out = p.run(&["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("aab_text") && err.contains("facto.toml"),
        "{err}"
    );
}

/// The example connector of the repository, added to the demo job as README says: it loads, and
/// `preview --target pa` shows every route of the demo without a PA (nothing to call).
#[test]
fn the_example_pa_connector_previews_the_demo_routes_offline() {
    let p = Project::demo();
    let toml = p.read("facto.toml").replacen(
        "targets = [\"sales-fec\", \"sales-csv\"]",
        "targets = [\"sales-fec\", \"sales-csv\", \"pa\"]",
        1,
    );
    p.write("facto.toml", &toml);
    let (code, v) = p.json(&["preview", "--target", T]);
    assert_eq!(code, 0, "{v}");
    let routes: BTreeMap<String, String> = v["targets"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["number"].as_str().unwrap_or("").to_owned(),
                r["route"]["route"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        routes.get(B2C).map(String::as_str),
        Some("b2c"),
        "{routes:?}"
    );
    assert_eq!(
        routes.get("F2026-0005").map(String::as_str),
        Some("international")
    );
    assert_eq!(routes.get("F2026-0001").map(String::as_str), Some("pa-b2b"));
    // A public buyer (public_buyers = "chorus") with no Chorus Pro target in the job: held.
    let row = v["targets"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["number"] == "F2026-0004")
        .cloned()
        .unwrap();
    assert_eq!(
        (row["status"].as_str(), row["route"]["route"].as_str()),
        (Some("held"), Some("chorus-b2g")),
        "{row}"
    );
    // With Chorus Pro portal files in the job, they are that target's, not the PA's.
    p.write(
        "facto.toml",
        &toml.replacen("\"pa\"]", "\"pa\", \"chorus-files\"]", 1),
    );
    let (_, v) = p.json(&["preview", "--target", T]);
    let rows = v["targets"][0]["rows"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["number"] == "F2026-0001"), "{v}");
    assert!(!rows.iter().any(|r| r["number"] == "F2026-0004"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_refusing_one_siren_holds_its_documents_and_the_others_go_on() {
    let sim = Sim::start().await;
    sim.state
        .lock()
        .unwrap()
        .directory
        .refuse
        .insert(PAPYRUS.into());
    let p = project(&sim, "");
    let (code, r, err) = run(&p, &["sync"]).await;
    assert_eq!(code, 1, "held documents, not a stopped target: {r} {err}");
    let sent = sent(&sim).await;
    for n in numbers_of(&p, Some(DUPONT)) {
        assert!(sent.contains_key(&n), "{n}: {r}");
    }
    for n in numbers_of(&p, Some(PAPYRUS)) {
        assert!(!sent.contains_key(&n), "{n}");
        assert_eq!(held_codes(&p, &n), ["directory-refused"], "{n}");
    }
    assert!(r["problems"].to_string().contains("INVALID_SIREN"), "{r}");
    // Not cached: the next run asks again.
    sim.state.lock().unwrap().directory.refuse.clear();
    run(&p, &["sync"]).await;
    let sent = self::sent(&sim).await;
    for n in numbers_of(&p, Some(PAPYRUS)) {
        assert!(sent.contains_key(&n), "{n}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn public_buyers_through_the_pa_in_one_job_and_chorus_in_another_on_one_source_is_refused() {
    let sim = Sim::start().await;
    let p = project(&sim, "public_buyers = \"pa\"\n");
    let second = "\n[[job]]\nname = \"public\"\nsource = \"demo-invoices\"\nmapping = \"pcg-demo\"\ntargets = [\"chorus-files\"]\n";
    p.write("facto.toml", &(p.read("facto.toml") + second));
    let out = p
        .command(&["sync"])
        .env("PA_TOKEN", BEARER)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`pa`") && err.contains("`chorus-files`") && err.contains("twice"),
        "{err}"
    );
    assert!(sim.server.received_requests().await.unwrap().is_empty());
}

/// The demo's B2C sales as the e-reporting preview totals them: one sale, on 2026-10-30.
pub fn demo_b2c() -> serde_json::Value {
    json!([{"date": "2026-10-30", "currency": "EUR", "category": "TLB1", "rate": "20",
        "base": "650.00", "vat": "130.00", "documents": 1}])
}

/// Issue 15 (e-reporting, first part): `facto preview --ereporting --target <pa>` totals what
/// the PA target held for e-reporting, as flow 10 groups it: the demo's B2C sale on its day, by
/// category and VAT rate; each sale to the German buyer as its own entry; the period bounds it;
/// nothing is sent. A target that is not a PA is refused with the fix.
#[tokio::test(flavor = "multi_thread")]
async fn preview_ereporting_totals_the_sales_held_for_e_reporting() {
    let sim = Sim::start().await;
    let p = project(&sim, "");
    run(&p, &["sync"]).await;
    let flows = sent(&sim).await.len();
    let (code, r, err) = run(&p, &["preview", "--target", T, "--ereporting"]).await;
    assert_eq!(code, 0, "{r} {err}");
    assert_eq!(r["b2c"], demo_b2c(), "{r}");
    let international: Vec<(&str, &str)> = r["international"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["number"].as_str().unwrap(), u["base"].as_str().unwrap()))
        .collect();
    assert_eq!(
        international,
        [
            ("F2026-0005", "3600.00"),
            ("F2026-0016", "2600.00"),
            ("F2026-0028", "5750.00"),
            ("F2026-0037", "1250.00")
        ],
        "{r}"
    );
    assert!(r["international"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["buyer_country"] == "DE" && u["category"] == "TPS1" && u["rate"] == "0"));

    // The fourth quarter only, as text.
    let mut c = p.command(&[
        "preview",
        "--target",
        T,
        "--ereporting",
        "--from",
        "2026-10-01",
        "--to",
        "2026-12-31",
    ]);
    c.env("PA_TOKEN", BEARER);
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("nothing is sent") && text.contains("F2026-0037"),
        "{text}"
    );
    assert!(!text.contains("F2026-0028"), "{text}");
    assert_eq!(sent(&sim).await.len(), flows, "a preview sends nothing");

    let (code, _, err) = run(&p, &["preview", "--target", "sales-fec", "--ereporting"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("afnor-pa target"), "{err}");
}
