//! Many companies in one deployment (issue 16 §2), through the real binary: `facto --tenants
//! DIR run` serves every tenant folder, each with its own configuration, ledger and tokens;
//! `--tenant NAME` runs any command for one of them (through the deployment while it runs);
//! tenants added, removed or broken are picked up without a restart; a tenant whose source
//! hangs does not hold the others back; metrics carry the tenant.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{repo, Project};
use crate::daemon::terminate;
use crate::push::post;

/// A tenant folder: a copy of the demo project at `dir/name`.
pub fn tenant(dir: &Path, name: &str) -> PathBuf {
    let p = Project::demo();
    let to = dir.join(name);
    std::fs::rename(p.dir.path(), &to)
        .or_else(|_| copy(p.dir.path(), &to))
        .unwrap();
    to
}

fn copy(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.path().is_dir() {
            copy(&e.path(), &to.join(e.file_name()))?;
        } else {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let t = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(t)).unwrap();
}

fn facto(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_facto"));
    c.current_dir(dir)
        .arg("--tenants")
        .arg(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("FACTO_TENANT")
        .env_remove("FACTO_TENANTS_DIR");
    c
}

pub fn token(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel))
        .unwrap()
        .trim()
        .to_owned()
}

pub fn get(addr: &str, path: &str, token: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("http://{addr}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

pub fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The delivered count of the demo job's FEC target in a tenant's metrics.
pub fn delivered(metrics: &str) -> Option<u64> {
    metrics
        .lines()
        .find(|l| l.contains("target=\"sales-fec\",state=\"delivered\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
}

// The child is handed to the caller, which waits for it (`terminate`).
#[allow(clippy::zombie_processes)]
pub fn start(dir: &Path) -> (Child, String) {
    let child = facto(dir, &["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut addr = String::new();
    wait_for("the deployment starts", || {
        match std::fs::read(dir.join(".deployment/daemon.json")) {
            Ok(b) => {
                let h: Value = serde_json::from_slice(&b).unwrap();
                addr = h["addr"].as_str().unwrap().to_owned();
                true
            }
            Err(_) => false,
        }
    });
    (child, addr)
}

#[test]
fn one_deployment_serves_many_tenants_apart_and_follows_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("deployment.toml"),
        "rescan_secs = 1\nmax_parallel_passes = 2\n[daemon]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 2\n",
    )
    .unwrap();
    let acme = tenant(dir, "acme");
    let beta = tenant(dir, "beta");
    // beta's documents are pushed by its invoicing application.
    std::fs::write(beta.join("connectors/app.toml"), "kind = \"push\"\n").unwrap();
    edit(&beta.join("facto.toml"), |t| {
        t.replace("source = \"demo-invoices\"", "source = \"app\"")
            .replace("name = \"Atelier Demo SAS\"", "name = \"Beta SARL\"")
    });
    // slow's source never answers: its pass hangs (holding one of the two turns).
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let slow = tenant(dir, "slow");
    std::fs::write(
        slow.join("connectors/demo-invoices.toml"),
        format!(
            "kind = \"http\"\nurl = \"http://{}/invoices\"\ntoken_env = \"HOME\"\ntimeout_secs = 600\n",
            hang.local_addr().unwrap()
        ),
    )
    .unwrap();
    // broken does not load: reported, the others run.
    std::fs::create_dir_all(dir.join("broken")).unwrap();
    std::fs::write(
        dir.join("broken/facto.toml"),
        "data_dir = \"data\"\n[company\n",
    )
    .unwrap();

    let (mut child, addr) = start(dir);
    let acme_admin = token(&acme, "data/admin-token");
    let beta_admin = token(&beta, "data/admin-token");
    let beta_ingest = token(&beta, "data/ingest-token");
    let deployment = token(dir, ".deployment/admin-token");
    assert_ne!(acme_admin, beta_admin);

    // acme's first pass delivers its demo documents, beside slow's hanging one.
    wait_for("acme delivers", || {
        delivered(&get(&addr, "/tenants/acme/metrics", &acme_admin).1).is_some_and(|n| n > 0)
    });
    // A bad edit of a running tenant leaves it running as it was; its health is not public.
    let good = std::fs::read_to_string(acme.join("facto.toml")).unwrap();
    std::fs::write(acme.join("facto.toml"), "[company\n").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(get(&addr, "/tenants/acme/metrics", &acme_admin).0, 200);
    let (_, m) = get(&addr, "/metrics", &token(dir, ".deployment/admin-token"));
    assert!(m.contains("facto_tenants_unloaded 2"), "{m}");
    std::fs::write(acme.join("facto.toml"), good).unwrap();
    assert_eq!(get(&addr, "/tenants/acme/health", "").0, 404);
    // Apart: a tenant's token opens nothing of another's.
    assert_eq!(get(&addr, "/tenants/beta/metrics", &acme_admin).0, 401);
    assert_eq!(get(&addr, "/tenants/acme/metrics", &beta_admin).0, 401);
    let doc = p_json(&repo().join("examples/invoices/inv-2026-0001.json"));
    let (code, _) = post(
        &addr,
        "/api/v1/tenants/acme/documents",
        Some(&beta_ingest),
        &doc,
    );
    assert!(code == 401 || code == 404, "{code}");
    let (code, answer) = post(
        &addr,
        "/api/v1/tenants/beta/documents?deliver=now",
        Some(&beta_ingest),
        &json!([doc]),
    );
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["tenant"], "beta");
    wait_for("beta delivers the pushed invoice", || {
        delivered(&get(&addr, "/tenants/beta/metrics", &beta_admin).1) == Some(1)
    });
    assert_eq!(get(&addr, "/tenants/nobody/metrics", &beta_admin).0, 404);

    // The deployment's metrics: every tenant, labelled; the one that did not load counted.
    let (code, m) = get(&addr, "/metrics", &deployment);
    assert_eq!(code, 200);
    assert!(m.contains("tenant=\"acme\",job=\"demo\""), "{m}");
    assert!(m.contains("tenant=\"beta\",job=\"demo\""), "{m}");
    wait_for("acme's edit undone, only broken unloaded", || {
        get(&addr, "/metrics", &deployment)
            .1
            .contains("facto_tenants_unloaded 1")
    });
    assert_eq!(get(&addr, "/metrics", &acme_admin).0, 401);

    // The CLI for one tenant goes through the deployment (which holds the ledgers).
    let out = facto(dir, &["--tenant", "beta", "--json", "ledger", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{listed} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        listed.contains("inv-2026-0001") && !listed.contains("inv-2026-0002"),
        "{listed}"
    );
    // A tenant's command reads and writes files only in its own folder.
    let theirs = acme.join("data/admin-token");
    let out = facto(
        dir,
        &[
            "--tenant",
            "beta",
            "chorus",
            "complete",
            "X",
            "--comment",
            "c",
            "--attach",
        ],
    )
    .arg(&theirs)
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("outside the tenant's folder"), "{err}");
    let out = facto(
        dir,
        &["--tenant", "beta", "exports", "download", "1", "--out"],
    )
    .arg(acme.join("stolen.txt"))
    .output()
    .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside the tenant's folder"));
    assert!(!acme.join("stolen.txt").exists());
    let out = facto(dir, &["--tenant", "nobody", "ledger", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant `nobody`"));
    let out = facto(dir, &["ledger", "list"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a deployment command names its tenant"
    );

    // A tenant added while running starts (slow still hangs: it holds one turn, not all).
    let gamma = tenant(dir, "gamma");
    let gamma_admin = {
        let mut t = String::new();
        wait_for("gamma starts", || {
            t = std::fs::read_to_string(gamma.join("data/admin-token")).unwrap_or_default();
            !t.trim().is_empty()
        });
        t.trim().to_owned()
    };
    wait_for("gamma delivers", || {
        delivered(&get(&addr, "/tenants/gamma/metrics", &gamma_admin).1).is_some_and(|n| n > 0)
    });
    // broken, fixed, loads; beta, removed, stops.
    std::fs::remove_dir_all(dir.join("broken")).unwrap();
    std::fs::rename(&beta, dir.join(".beta-archived")).unwrap();
    wait_for("beta stops", || {
        get(&addr, "/tenants/beta/metrics", &beta_admin).0 == 404
    });
    let (_, m) = get(&addr, "/metrics", &deployment);
    assert!(
        m.contains("facto_tenants_unloaded 0") && !m.contains("tenant=\"beta\""),
        "{m}"
    );
    assert_eq!(terminate(&mut child), 0);
    drop(hang);
}

/// A tenant's console through the deployment: login, a page, and another tenant refusing the
/// session.
pub fn console_under_its_prefix(addr: &str, admin: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = c
            .post(format!("http://{addr}/tenants/acme/console/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={admin}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/tenants/acme/console/export");
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(cookie.contains("; Path=/tenants/acme/console;"), "{cookie}");
        let session = cookie.split(';').next().unwrap().to_owned();
        let r = c
            .get(format!("http://{addr}/tenants/acme/console/documents"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        assert!(
            page.contains("href=\"/tenants/acme/console/exports\""),
            "{page}"
        );
        assert!(
            !page.contains("href=\"/console") && !page.contains("(\"/console"),
            "{page}"
        );
        let r = c
            .get(format!("http://{addr}/tenants/beta/console/documents"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/tenants/beta/console/login");
    });
}

fn p_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}
