//! Shared helpers: a temp copy of the demo project and a runner for the real binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub mod oauth;
pub mod sim;
mod skip;
pub use skip::skip;

/// A copy of the demo project (facto.toml, connectors, mappings, examples) in a temp folder.
pub struct Project {
    pub dir: tempfile::TempDir,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Project {
    pub fn demo() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let root = repo();
        std::fs::copy(root.join("facto.toml"), dir.path().join("facto.toml")).unwrap();
        for d in ["connectors", "mappings", "examples"] {
            copy_dir(&root.join(d), &dir.path().join(d));
        }
        Project { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_facto"));
        c.current_dir(self.dir.path())
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("FACTO_TEST_PAUSE_AT");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs with `--json` and parses stdout; returns (exit code, JSON).
    pub fn json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        let code = out.status.code().unwrap_or(-1);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "facto {args:?} did not print JSON ({e}); exit {code}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, v)
    }

    /// A JSON file of the project (a document of the demo, say), parsed.
    pub fn read_json(&self, rel: &str) -> Value {
        serde_json::from_str(&self.read(rel)).unwrap()
    }

    /// Writes `v` as pretty JSON to `rel`.
    pub fn write_json(&self, rel: &str, v: &Value) {
        self.write(rel, &serde_json::to_string_pretty(v).unwrap());
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    /// The demo project with the target `name` (this connector file) added to the sales job.
    pub fn demo_with_target(name: &str, connector: &str) -> Project {
        let p = Project::demo();
        p.write(&format!("connectors/{name}.toml"), connector);
        let cfg = p.read("facto.toml").replace(
            "targets = [\"sales-fec\", \"sales-csv\"]",
            &format!("targets = [\"sales-fec\", \"sales-csv\", \"{name}\"]"),
        );
        assert!(cfg.contains(&format!("\"{name}\"")));
        p.write("facto.toml", &cfg);
        p
    }

    /// Rewrites the demo mapping with, after each line, what `after` gives for it.
    pub fn extend_mapping(&self, after: impl Fn(&str) -> Option<String>) {
        let mut m = String::new();
        for line in self.read("mappings/pcg-demo.toml").lines() {
            m.push_str(line);
            m.push('\n');
            if let Some(more) = after(line) {
                m.push_str(&more);
                m.push('\n');
            }
        }
        self.write("mappings/pcg-demo.toml", &m);
    }

    /// Every file under `out/`, relative paths, sorted.
    pub fn out_files(&self) -> Vec<PathBuf> {
        fn walk(d: &Path, base: &Path, v: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(d) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, base, v);
                    } else {
                        v.push(p.strip_prefix(base).unwrap().to_owned());
                    }
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.path("out"), self.dir.path(), &mut v);
        v.sort();
        v
    }
}

/// `--json` followed by `args`.
pub fn with_json<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    all
}

/// Asserts that `expected` documents reached a remote, each exactly once (`counts`: how many
/// times each number was `done` there).
pub fn assert_once(counts: &std::collections::BTreeMap<String, u32>, expected: usize, done: &str) {
    assert_eq!(counts.len(), expected, "{counts:?}");
    assert!(
        counts.values().all(|n| *n == 1),
        "{done} more than once: {counts:?}"
    );
}

/// The target report of `target` in a run report.
pub fn target<'a>(report: &'a Value, target: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == target)
        .unwrap()
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Active batches of a target with the ids of the documents they hold (from `exports show`).
pub fn active_batches(p: &Project, target_name: &str) -> Vec<(Value, Vec<String>)> {
    let (_, list) = p.json(&["exports", "list"]);
    list.as_array()
        .unwrap()
        .iter()
        .filter(|b| b["target"] == target_name && b["status"] == "active")
        .map(|b| {
            let (_, show) = p.json(&["exports", "show", &b["id"].to_string()]);
            let docs = show["documents"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["batch_id"] == b["id"])
                .map(|d| d["doc_id"].as_str().unwrap().to_owned())
                .collect();
            (b.clone(), docs)
        })
        .collect()
}

/// The final documents of the demo that map and check cleanly.
pub const DEMO_DELIVERABLE: u64 = 42;

/// Python with django-accounting-fr, from `.ci/run` (FACTO_FEC_PYTHON) or target/fec-venv.
/// `None` when absent; CI always has it, so a test fails there instead of skipping.
pub fn fec_python() -> Option<PathBuf> {
    let p = std::env::var_os("FACTO_FEC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/fec-venv/bin/python"));
    if p.exists() {
        return Some(p);
    }
    skip("the FEC checker django-accounting-fr is not installed in target/fec-venv (run .ci/run once)");
    None
}

/// `../shared/tools/fec_tcd_rules.py`, or `None` (a failure under CI=true).
pub fn tcd_rules() -> Option<PathBuf> {
    let p = repo().join("../shared/tools/fec_tcd_rules.py");
    if p.exists() {
        return Some(p);
    }
    skip("../shared/tools/fec_tcd_rules.py is absent (the TCD rules check)");
    None
}

/// Both FEC checkers pass `fec`: the TCD rules of `../shared/tools` and django-accounting-fr's
/// `check_fec` (each skipped, and failing under CI=true, when absent).
pub fn fec_checkers_pass(fec: &Path) {
    if let Some(tcd) = tcd_rules() {
        let out = Command::new("python3").arg(&tcd).arg(fec).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("E=0 A=0 V=0"),
            "{text}"
        );
    }
    if let Some(py) = fec_python() {
        let script = "import pathlib,sys\nfrom accounting_fr.fec_check import check_fec\np=pathlib.Path(sys.argv[1]);r=check_fec(p.read_bytes(),p.name)\nprint(r.ok,r.stats,r.errors,r.warnings)\nsys.exit(0 if r.ok and not r.errors else 1)\n";
        let out = Command::new(py)
            .arg("-c")
            .arg(script)
            .arg(fec)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// An official schema under `../shared/reference/xsd` with xmllint to apply it, or `None` (a
/// failure under CI=true, where `.ci/run` installs xmllint and `../shared` is present).
pub fn xsd(rel: &str) -> Option<PathBuf> {
    let p = repo().join("../shared/reference/xsd").join(rel);
    let xmllint = Command::new("xmllint").arg("--version").output().is_ok();
    if p.exists() && xmllint {
        return Some(p);
    }
    skip(&format!(
        "schema validation needs xmllint (Debian package libxml2-utils) and {}",
        p.display()
    ));
    None
}

/// Validates XML documents against a schema with xmllint; panics with its messages.
pub fn xmllint(schema: &Path, docs: &[(String, Vec<u8>)]) {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = docs
        .iter()
        .map(|(name, bytes)| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect();
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `facto connect` (`cmd`) and answers its consent page as a browser would: reads the
/// consent URL it prints, hands the PKCE challenge to the fake server (`challenge`), calls the
/// redirect with code [`oauth::CODE`]. Returns what facto printed; panics if it failed.
pub async fn give_consent(mut cmd: Command, port: u16, challenge: impl FnOnce(String)) -> String {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Reads the whole output (the URL is sent on as soon as it shows), so facto's last line
    // never meets a closed pipe.
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.trim_start().starts_with("http") {
                let _ = tx.send(line.trim().to_owned());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let url = tokio::task::spawn_blocking(move || {
        rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap()
    })
    .await
    .unwrap();
    let consent = url::Url::parse(&url).unwrap();
    let q: std::collections::HashMap<String, String> = consent.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    challenge(q["code_challenge"].clone());
    let redirect = format!(
        "http://127.0.0.1:{port}/callback?code={}&state={}",
        oauth::CODE,
        q["state"]
    );
    let page = reqwest::get(&redirect).await.unwrap().text().await.unwrap();
    assert!(page.contains("connected"), "{page}");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let printed = reader.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    printed
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The problem lines of a JSON run report about document `id`.
pub fn problems_of<'a>(report: &'a Value, id: &str) -> Vec<&'a Value> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["doc_id"] == id)
        .collect()
}

/// Runs a prepared `facto --json ...` command off the async runtime; returns its exit code,
/// its JSON output (or, when it printed none, its standard error as a JSON string) and its
/// standard error.
pub async fn json_of(mut cmd: Command) -> (i32, Value, String) {
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| Value::String(stderr.clone()));
    (out.status.code().unwrap_or(-1), v, stderr)
}

/// Runs `cmd` (a `facto` command) until it reaches the fault point `point`
/// (`FACTO_TEST_PAUSE_AT`), then kills it with SIGKILL: nothing runs after that.
pub async fn kill_at(mut cmd: Command, point: &str, flag: &Path) {
    let _ = std::fs::remove_file(flag);
    cmd.env("FACTO_TEST_PAUSE_AT", point)
        .env("FACTO_TEST_PAUSE_FILE", flag)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let start = std::time::Instant::now();
    while !flag.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("facto ended ({status}) before reaching {point}");
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "facto never reached {point}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Runs a helper tool (a checker, a spec patcher) and panics with what it printed when it fails.
pub fn tool_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
