//! The ledger in PostgreSQL (issue 16, first step), through the real binary: `[ledger] url` in
//! `facto.toml` puts the demo's records, batches and kept files in the database (nothing in a sled
//! folder), nothing is sent twice, a batch downloads again byte for byte; a second process finds
//! the namespace in use; a password written in the URL is refused with its line. Needs the server
//! `.ci/run` starts (`FACTO_TEST_POSTGRES`); without it each test says "skipped".

use crate::common::{self, Project, DEMO_DELIVERABLE};

/// The test server's URL, or `None` (said "skipped", a failure under `CI=true`).
pub fn url() -> Option<String> {
    let u = std::env::var("FACTO_TEST_POSTGRES").ok();
    if u.is_none() {
        common::skip("FACTO_TEST_POSTGRES is not set: the PostgreSQL ledger needs a server (`.ci/run` starts one; see README, Tests)");
    }
    u
}

/// Puts the project's ledger in its own namespace of the test database; returns the namespace.
pub fn on_postgres(p: &Project, url: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let ns = format!(
        "it-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros()
    );
    p.write(
        "facto.toml",
        &format!(
            "{}\n[ledger]\nurl = \"{url}\"\nnamespace = \"{ns}\"\n",
            p.read("facto.toml")
        ),
    );
    ns
}

/// The project's ledger opened from the test process (no facto process may hold it).
pub fn open(url: &str, ns: &str) -> facto::ledger::postgres::PgLedger {
    facto::ledger::postgres::PgLedger::open_postgres(url, None, ns).unwrap()
}

#[test]
fn the_demo_syncs_on_postgres_once_and_its_files_download_again() {
    let Some(url) = url() else { return };
    let p = Project::demo();
    let ns = on_postgres(&p, &url);
    let (code, r) = p.json(&["sync"]);
    assert_eq!(code, 1, "the demo holds two documents: {r}");
    assert_eq!(
        common::target(&r, "sales-fec")["delivered"],
        DEMO_DELIVERABLE,
        "{r}"
    );
    assert!(
        !p.path("data/db").exists() && !p.path("data/conf").exists(),
        "no sled ledger beside the database"
    );
    let (_, again) = p.json(&["sync"]);
    assert_eq!(
        common::target(&again, "sales-fec")["delivered"],
        0,
        "{again}"
    );
    assert!(again["batches"].as_array().unwrap().is_empty(), "{again}");
    let (_, held) = p.json(&["ledger", "list", "--state", "held"]);
    assert_eq!(
        held.as_array().unwrap().len(),
        4,
        "two documents, two targets: {held}"
    );
    // A batch's file downloads again, byte for byte, from the database.
    for (batch, _) in common::active_batches(&p, "sales-fec") {
        let file = std::fs::read(p.path(batch["path"].as_str().unwrap())).unwrap();
        let out = p.path("dl.bin");
        let (code, _) = p.json(&[
            "exports",
            "download",
            &batch["id"].to_string(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0);
        assert_eq!(std::fs::read(&out).unwrap(), file);
    }
    let ledger = open(&url, &ns);
    assert_eq!(ledger.check_indexes().unwrap(), Vec::<String>::new());
}

#[test]
fn a_second_process_finds_the_namespace_in_use() {
    let Some(url) = url() else { return };
    let p = Project::demo();
    let ns = on_postgres(&p, &url);
    let held = open(&url, &ns);
    let out = p.run(&["ledger", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("in use by another facto process"), "{err}");
    assert!(!err.contains("s3cret"));
    drop(held);
    assert_eq!(p.run(&["ledger", "list"]).status.code(), Some(0));
}

#[test]
fn a_password_in_the_ledger_url_is_refused_with_its_line() {
    let p = Project::demo();
    let cfg = p.read("facto.toml");
    let line = cfg.lines().count() + 3;
    p.write(
        "facto.toml",
        &format!("{cfg}\n[ledger]\nurl = \"postgres://facto:s3cret@127.0.0.1:1/facto\"\n"),
    );
    let out = p.run(&["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("facto.toml:{line}:")), "{err}");
    assert!(err.contains("password_env"), "{err}");
    assert!(
        !err.contains("s3cret"),
        "the password is never repeated: {err}"
    );
}

/// With the ledger in PostgreSQL, a command goes through the running daemon (which holds the
/// namespace) as it does on sled, instead of failing with "in use".
#[test]
fn a_command_goes_through_the_daemon_that_holds_the_database_ledger() {
    let Some(url) = url() else { return };
    let p = Project::demo();
    on_postgres(&p, &url);
    let (mut child, _, _) = crate::daemon::start(&p);
    let out = p.run(&["--json", "ledger", "list", "--target", "sales-fec"]);
    let code = out.status.code();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(crate::daemon::terminate(&mut child), 0);
    assert_eq!(
        code,
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with('['), "{stdout}");
}

#[test]
fn a_shared_ledger_refuses_jobs_that_write_journal_files_with_its_line() {
    let p = Project::demo();
    let cfg = p.read("facto.toml");
    let line = cfg.lines().count() + 4;
    p.write(
        "facto.toml",
        &format!("{cfg}\n[ledger]\nurl = \"postgres://facto@127.0.0.1:1/facto\"\nshared = true\n"),
    );
    let out = p.run(&["sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("facto.toml:{line}:")), "{err}");
    assert!(
        err.contains("job `demo` writes journal files (`sales-fec`)"),
        "{err}"
    );
}

/// The sessions named `name` on the test server (one facto process's `application_name`).
fn sessions(url: &str, name: &str) -> i64 {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&name],
        )
        .unwrap()
        .get(0)
}

/// Five tenants whose ledgers are in one database, `ledger_connections = 2`: every tenant
/// delivers through two sessions, each namespace still held by the deployment alone, and a
/// tenant removed from the folder lets go of its namespace while the others keep the sessions.
#[test]
fn a_deployment_s_tenants_share_a_few_connections_to_the_ledger_database() {
    use crate::tenants::{delivered, get, start, tenant, token, wait_for};
    let Some(url) = url() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("deployment.toml"),
        "rescan_secs = 1\nmax_parallel_passes = 2\nledger_connections = 2\n[daemon]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 2\n",
    )
    .unwrap();
    let stamp = chrono::Utc::now().timestamp_micros();
    let mut tenants = Vec::new();
    for i in 0..5 {
        let name = format!("t{i}");
        let folder = tenant(dir, &name);
        let ns = format!("pool-{}-{stamp}-{i}", std::process::id());
        let cfg = std::fs::read_to_string(folder.join("facto.toml")).unwrap();
        std::fs::write(
            folder.join("facto.toml"),
            format!("{cfg}\n[ledger]\nurl = \"{url}\"\nnamespace = \"{ns}\"\n"),
        )
        .unwrap();
        tenants.push((name, folder, ns));
    }
    let (mut child, addr) = start(dir);
    let name = format!("facto deployment {}", child.id());
    for (t, folder, _) in &tenants {
        let admin = token(folder, "data/admin-token");
        wait_for(&format!("{t} delivers"), || {
            delivered(&get(&addr, &format!("/tenants/{t}/metrics"), &admin).1)
                == Some(DEMO_DELIVERABLE)
        });
    }
    assert_eq!(sessions(&url, &name), 2, "five tenants, two sessions");
    for (_, _, ns) in &tenants {
        assert_eq!(
            sessions(&url, &format!("facto {ns}")),
            0,
            "no tenant has a connection of its own"
        );
    }
    for (_, _, ns) in &tenants {
        assert!(
            matches!(
                facto::ledger::postgres::PgStore::open(&url, None, ns),
                Err(facto::ledger::LedgerError::Locked(_))
            ),
            "{ns} is the deployment's"
        );
    }
    // A tenant removed lets go of its namespace; the others keep their sessions.
    let (_, gone, gone_ns) = &tenants[4];
    std::fs::remove_file(gone.join("facto.toml")).unwrap();
    wait_for("the removed tenant's namespace is free", || {
        facto::ledger::postgres::PgStore::open(&url, None, gone_ns).is_ok()
    });
    assert_eq!(sessions(&url, &name), 2);
    let first = token(&tenants[0].1, "data/admin-token");
    assert_eq!(get(&addr, "/tenants/t0/metrics", &first).0, 200);
    assert_eq!(crate::daemon::terminate(&mut child), 0);
    // A backend ends a moment after its connection closes.
    wait_for("all closed at the end", || sessions(&url, &name) == 0);
}
