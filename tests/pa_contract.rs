//! Contract test: every request facto sends to an approved platform (`afnor-pa`) in a full sync is
//! accepted by Prism serving the AFNOR Flow Service 1.3.0 and Directory Service 1.3.0 specs
//! (`../shared/reference/openapi/afnor`, made usable for Prism by `prism_mock_spec.py`: it
//! validates every request, and answers 422/400 for a broken one), and a deliberately broken
//! request to each is refused. Prism checks only part of the multipart `flowInfo`, so the whole part is
//! also checked against the spec's `FlowInfo` schema (with Python's jsonschema).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::{kill_at, target, Project};
use crate::pa_sim::{parts, Sim, BEARER};
use crate::pennylane_contract::{prism, start};

/// Checks JSON values (read as an array on standard input) against a schema of the spec given as
/// argument, `$ref`s resolved in the spec; prints one line per violation.
const CHECK: &str = r##"
import json, sys, jsonschema
spec = json.load(open(sys.argv[1], encoding="utf-8"))
schema = {"allOf": [{"$ref": "#/components/schemas/" + sys.argv[2]}], "components": spec["components"]}
v = jsonschema.Draft7Validator(schema)
bad = [f"{e.json_path}: {e.message}" for x in json.load(sys.stdin) for e in v.iter_errors(x)]
print("\n".join(bad))
sys.exit(1 if bad else 0)
"##;

pub fn python() -> Option<PathBuf> {
    let py = std::env::var_os("FACTO_CONTRACT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&py)
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    crate::common::skip(
        "no Python with jsonschema for the AFNOR contract checks (.ci/run installs it)",
    );
    None
}

/// The AFNOR folder of `../shared` (the Flow Service spec and its Prism patcher).
pub fn afnor() -> Option<PathBuf> {
    let dir = crate::common::repo().join("../shared/reference/openapi/afnor");
    if dir.join("AFNOR-Flow_Service-1.3.0.swagger.json").exists() {
        return Some(dir);
    }
    crate::common::skip(
        "../shared/reference/openapi/afnor (the AFNOR Flow Service spec) is missing",
    );
    None
}

/// Prism serving the Directory Service spec (patched by `prism_mock_spec.py`), whose example
/// line's addressing identifier is set to its example SIREN (BR-FR-21 asks a B2B invoice's BT-49
/// to start with the buyer's SIREN, and the spec's example `dcsc456sdcsdcs556` does not) and whose
/// example legal unit is a private company. Only examples (and the order of one enum) change:
/// requests are validated against the spec as published.
fn directory_mock(
    bin: &PathBuf,
    py: &PathBuf,
    afnor: &std::path::Path,
    dir: &std::path::Path,
) -> crate::pennylane_contract::Mock {
    let spec = dir.join("afnor-directory.json");
    crate::common::tool_ok(
        Command::new(py)
            .arg(afnor.join("prism_mock_spec.py"))
            .arg(afnor.join("AFNOR-Directory_Service-1.3.0.swagger.json"))
            .arg(&spec),
    );
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    v["components"]["schemas"]["addressingIdentifier"]["example"] = "702042755".into();
    // The example legal unit is a public entity (Prism answers the enum's first value), which
    // facto does not send as B2B: the same values, the private one first.
    let entity = &mut v["components"]["schemas"]["entityType"];
    entity["enum"] = serde_json::json!(["PrivateVatRegistered", "Public"]);
    entity["example"] = "PrivateVatRegistered".into();
    std::fs::write(&spec, v.to_string()).unwrap();
    start(bin, &spec, &dir.join("prism-directory.log"), true)
}

/// Dupont SARL's documents with the SIREN of the Directory spec's example (and a SIRET, VAT id
/// and electronic address to match).
fn give_dupont_the_example_siren(p: &Project) {
    let dir = p.path("examples/invoices");
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("412358764") {
            let text = text
                .replace("41235876400014", "70204275500240")
                .replace("FR93412358764", "FR63702042755")
                .replace("412358764", "702042755");
            std::fs::write(&path, text).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_of_a_sync_is_valid_against_the_afnor_flow_contract() {
    let (Some((bin, _)), Some(py), Some(afnor)) = (prism(), python(), afnor()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("afnor-flow.json");
    crate::common::tool_ok(
        Command::new(&py)
            .arg(afnor.join("prism_mock_spec.py"))
            .arg(afnor.join("AFNOR-Flow_Service-1.3.0.swagger.json"))
            .arg(&spec),
    );
    let mock = start(&bin, &spec, &dir.path().join("prism.log"), true);
    let base = format!("http://127.0.0.1:{}", mock.port);
    let directory = directory_mock(&bin, &py, &afnor, dir.path());
    let dir_base = format!("http://127.0.0.1:{}", directory.port);

    // A bearer token needs no token call; Prism takes any bearer token.
    let p = Project::demo_with_target(
        "pa",
        &format!(
            "kind = \"afnor-pa\"\napi_url = \"{base}\"\ndirectory_url = \"{dir_base}\"\nbearer_token_env = \"PA_TOKEN\"\norganization_id = \"552100554\"\nmax_retry_secs = 5\n"
        ),
    );
    // Prism's directory answers with the spec's example line, of SIREN 702042755: Dupont SARL
    // takes that SIREN, so that its invoices have an address; every other SIREN has none there.
    give_dupont_the_example_siren(&p);
    // Killed right after its first send, the next run looks that flow up by its `trackingId`
    // (`POST /v1/flows/search`) before sending anything again.
    let mut first = p.command(&["sync"]);
    first.env("PA_TOKEN", "contract-token");
    kill_at(first, "after-send:1@pa", &p.path("paused")).await;
    let out = p
        .command(&["--json", "sync"])
        .env("PA_TOKEN", "contract-token")
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let t = target(&r, "pa");
    assert_eq!(t["failed"], 0, "a request was refused by the contract: {r}");
    // Prism's search answer is the spec's example, another `trackingId`: the interrupted one
    // stays claimed, every other of Dupont's six deliverable documents is sent (the other
    // buyers have no directory line at this mock: held).
    assert_eq!(t["delivered"], 5, "{r}");
    assert!(
        r["problems"]
            .to_string()
            .contains("the directory has no line for SIREN"),
        "{r}"
    );
    assert!(
        r["statuses"]
            .to_string()
            .contains("does not list its trackingId yet"),
        "{r}"
    );
    assert!(r["error"].is_null(), "{r}");
    // Acknowledgements are searched (`POST /v1/flows/search`, facto's outgoing flows changed
    // since the last read): twice, the second search from the first's `updatedAfter`.
    for _ in 0..2 {
        let out = p
            .command(&["--json", "status"])
            .env("PA_TOKEN", "contract-token")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let log = std::fs::read_to_string(dir.path().join("prism.log")).unwrap();
    for call in ["post /v1/flows ", "post /v1/flows/search"] {
        assert!(log.contains(call), "no {call}: {log}");
    }
    // Every request Prism received passed its validation (a violation is only a warning on a
    // request Prism still answers).
    assert_eq!(
        log.matches("Request received").count(),
        log.matches("The request passed the validation rules")
            .count(),
        "{log}"
    );
    let log = std::fs::read_to_string(dir.path().join("prism-directory.log")).unwrap();
    assert!(log.contains("post /v1/directory-line/search"), "{log}");
    assert_eq!(
        log.matches("Request received").count(),
        log.matches("The request passed the validation rules")
            .count(),
        "{log}"
    );
    // Validation is on there too: an operator the siren filter does not allow is refused.
    let resp = reqwest::Client::new()
        .post(format!("{dir_base}/v1/directory-line/search"))
        .bearer_auth("contract-token")
        .header("Request-Id", "00000000-0000-4000-8000-000000000001")
        .json(&serde_json::json!({"filters": {"siren": {"op": "contains", "value": "702042755"}}}))
        .send()
        .await
        .unwrap();
    assert!(
        [400, 422].contains(&resp.status().as_u16()),
        "a siren filter with op `contains` was accepted: {}",
        resp.status()
    );

    // Validation is on: a flowInfo with a syntax outside the enum and no file is refused.
    let form = reqwest::multipart::Form::new().part(
        "flowInfo",
        reqwest::multipart::Part::text(r#"{"name":"x.xml","flowSyntax":"PDF"}"#)
            .mime_str("application/json")
            .unwrap(),
    );
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/flows"))
        .bearer_auth("contract-token")
        .header("Request-Id", "00000000-0000-4000-8000-000000000000")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let violations = resp
        .headers()
        .get("sl-violations")
        .map(|h| h.to_str().unwrap_or("").to_owned())
        .unwrap_or_default();
    assert_eq!(status, 422, "{violations}");
    for what in ["flowInfo", "file"] {
        assert!(
            violations.contains(what),
            "{what} not flagged: {violations}"
        );
    }
}

/// Prism checks only the required `flowInfo` fields and the `flowSyntax` enum (a multipart JSON
/// part is a string to it, see `prism_mock_spec.py`): the whole part facto sends is checked here
/// against `#/components/schemas/FlowInfo`, taken from a sync against the in-repo simulator.
#[tokio::test(flavor = "multi_thread")]
async fn every_flow_info_facto_sends_matches_the_flow_info_schema() {
    let (Some(py), Some(afnor)) = (python(), afnor()) else {
        return;
    };
    let spec = afnor.join("AFNOR-Flow_Service-1.3.0.swagger.json");
    let sim = Sim::start().await;
    let p = Project::demo_with_target("pa", &sim.bearer_connector(""));
    let mut c = p.command(&["--json", "sync"]);
    c.env("PA_TOKEN", BEARER);
    let (_, r, err) = crate::common::json_of(c).await;
    assert!(
        target(&r, "pa")["delivered"].as_u64().unwrap_or(0) > 0,
        "{r} {err}"
    );

    let infos: Vec<serde_json::Value> = sim
        .server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|q| q.method.as_str() == "POST" && q.url.path().ends_with("/v1/flows"))
        .map(|q| {
            let (_, bytes) = &parts(q)["flowInfo"];
            serde_json::from_slice(bytes).unwrap()
        })
        .collect();
    assert_eq!(
        infos.len() as u64,
        target(&r, "pa")["delivered"].as_u64().unwrap()
    );
    let mut child = Command::new(&py)
        .args(["-c", CHECK])
        .arg(&spec)
        .arg("FlowInfo")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&infos).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "flowInfo does not match the spec:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
