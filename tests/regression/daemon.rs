//! The admin API, the daemon and Docker: the daemon proof, connection limits, forwarded commands,
//! metrics, the Dockerfile, and the CLI's signed commands to a daemon.

use crate::common::*;

/// A daemon that is killed if the test panics before stopping it (no stray daemon left behind).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// One raw HTTP/1.1 exchange with the daemon (its answer read to the end, within `wait`); `None`
/// when it does not answer in time.
fn raw_http(addr: &str, request: &str, wait: std::time::Duration) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn post_cli(addr: &str, token: &str, args: &[&str]) -> Option<String> {
    let body = serde_json::json!({ "args": args }).to_string();
    raw_http(
        addr,
        &format!(
            "POST /api/cli HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        std::time::Duration::from_secs(20),
    )
}

/// A server that records every byte it is sent and answers each request like a daemon would,
/// with a made-up proof.
fn fake_daemon(pid: u32) -> (String, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            c.set_read_timeout(Some(std::time::Duration::from_millis(300)))
                .unwrap();
            let mut buf = [0u8; 65536];
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            let body =
                format!(r#"{{"pid":{pid},"proof":"00","exit_code":0,"stdout":"","error":""}}"#);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, seen)
}

fn write_handle(p: &Project, addr: &str, pid: u32) {
    p.write(
        "data/daemon.json",
        &serde_json::json!({ "addr": addr, "pid": pid }).to_string(),
    );
}

#[test]
fn a_stale_daemon_json_never_sends_the_admin_token_to_the_server_on_its_port() {
    let p = Project::demo();
    let (code, _) = p.json(&["ledger", "list"]);
    assert_eq!(code, 0);
    // The daemon died long ago: its pid is no one's, its port someone else's.
    p.write("data/admin-token", "the-secret-admin-token-0123456789");
    std::fs::set_permissions(
        p.path("data/admin-token"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let (addr, seen) = fake_daemon(dead_pid);
    write_handle(&p, &addr, dead_pid);
    let (code, list) = p.json(&["ledger", "list"]);
    assert_eq!(code, 0, "the command runs here: {list}");
    let got = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(!got.contains("the-secret-admin-token"), "{got}");

    // A live daemon holds the ledger, but daemon.json names another server: it cannot prove
    // it knows the token, so the token is not sent and the command stops.
    std::fs::remove_file(p.path("data/daemon.json")).unwrap();
    let (child, _, token) = crate::daemon::start(&p);
    let mut child = Running(child);
    let (addr, seen) = fake_daemon(child.0.id());
    write_handle(&p, &addr, child.0.id());
    let out = p.run(&["ledger", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("does not prove"), "{stderr}");
    let got = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(got.contains("/api/hello"), "the CLI asked first: {got}");
    assert!(!got.contains(&token), "{got}");
    assert_eq!(crate::daemon::terminate(&mut child.0), 0);
}

/// Starts `facto run` with at most `fds` file descriptors; returns the child and its address.
#[allow(clippy::zombie_processes)]
fn daemon_with_few_fds(p: &Project, daemon: &str, fds: u32) -> (std::process::Child, String) {
    let cfg = p.read("facto.toml") + "\n[daemon]\nlisten = \"127.0.0.1:0\"\n" + daemon;
    p.write("facto.toml", &cfg);
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {fds} && exec \"$0\" run"))
        .arg(env!("CARGO_BIN_EXE_facto"))
        .current_dir(p.dir.path())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if let Ok(b) = std::fs::read(p.path("data/daemon.json")) {
            let h: serde_json::Value = serde_json::from_slice(&b).unwrap();
            return (child, h["addr"].as_str().unwrap().to_owned());
        }
        if start.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon did not start");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn idle_connections_never_lock_health_out_and_are_closed_after_the_idle_timeout() {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let p = Project::demo();
    // Fewer descriptors than idle clients: without a bound the daemon runs out of them.
    let (child, addr) = daemon_with_few_fds(
        &p,
        "max_connections = 8\nidle_timeout_secs = 3\nrequest_timeout_secs = 30\n",
        64,
    );
    let mut child = Running(child);
    let idle: Vec<std::net::TcpStream> = (0..150)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let asked = Instant::now();
    let health = raw_http(
        &addr,
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(10),
    );
    let health = health.unwrap_or_default();
    assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "/health waited for idle clients: {:?}",
        asked.elapsed()
    );
    drop(idle);

    // A client that sends nothing is disconnected after the idle timeout.
    let mut quiet = std::net::TcpStream::connect(&addr).unwrap();
    quiet
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let since = Instant::now();
    let mut b = [0u8; 16];
    let n = quiet.read(&mut b);
    assert!(
        matches!(n, Ok(0))
            || matches!(&n, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{n:?}"
    );
    let waited = since.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    assert_eq!(crate::daemon::terminate(&mut child.0), 0);
}

#[test]
fn health_answers_and_the_daemon_does_not_spin_when_file_descriptors_run_out() {
    use std::time::{Duration, Instant};
    let p = Project::demo();
    // More connections allowed than descriptors: accepting fails, and an idle client must make
    // room instead of the loop spinning.
    let (child, addr) = daemon_with_few_fds(&p, "idle_timeout_secs = 60\n", 32);
    let mut child = Running(child);
    let idle: Vec<std::net::TcpStream> = (0..150)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let asked = Instant::now();
    let health = raw_http(
        &addr,
        "GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(10),
    )
    .unwrap_or_default();
    assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    // Still out of descriptors with clients waiting: the daemon waits, it does not spin.
    let more: Vec<std::net::TcpStream> = (0..50)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    let cpu = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or_default().to_owned();
        let f: Vec<&str> = after.split_whitespace().collect();
        f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    };
    if std::path::Path::new("/proc/self/stat").exists() {
        std::thread::sleep(Duration::from_millis(500));
        let before = cpu(child.0.id());
        std::thread::sleep(Duration::from_secs(2));
        let ticks = cpu(child.0.id()) - before;
        // Clock ticks are 1/100 s: a spinning loop burns about 200 in 2 s.
        assert!(ticks < 60, "the daemon used {ticks} ticks of CPU in 2 s");
    }
    drop((idle, more));
    assert_eq!(crate::daemon::terminate(&mut child.0), 0);
}

#[test]
fn a_forwarded_run_behind_a_global_flag_is_refused() {
    let p = Project::demo();
    let (child, addr, token) = crate::daemon::start(&p);
    let mut child = Running(child);
    let other = p.path("other");
    let other = other.to_str().unwrap();
    for args in [
        &["--data-dir", other, "run"][..],
        &["--json", "run"],
        &["-v", "connect", "sales-fec"],
        &["--data-dir", other, "ledger", "list"],
    ] {
        let answer = post_cli(&addr, &token, args).unwrap_or_default();
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{args:?}: no answer ({e}): {answer:?}"));
        assert_eq!(v["exit_code"], 2, "{args:?}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("daemon"),
            "{args:?}: {v}"
        );
    }
    assert!(!p.path("other").exists(), "no second ledger was opened");
    assert_eq!(crate::daemon::terminate(&mut child.0), 0);
}

#[test]
fn a_tenants_console_keeps_its_links_redirects_and_session_under_its_prefix() {
    // The console wrote `/console/…` links, redirects and a `Path=/console` cookie: under a
    // deployment (`/tenants/<name>/console`) every link and the login left the tenant.
    use crate::tenants::{console_under_its_prefix, start, tenant, token};
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("deployment.toml"),
        "[daemon]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 2\n",
    )
    .unwrap();
    let acme = tenant(tmp.path(), "acme");
    tenant(tmp.path(), "beta");
    let (child, addr) = start(tmp.path());
    let mut child = Running(child);
    console_under_its_prefix(&addr, &token(&acme, "data/admin-token"));
    assert_eq!(crate::daemon::terminate(&mut child.0), 0);
}

#[test]
fn metrics_label_values_are_escaped() {
    let p = Project::demo();
    let cfg = p
        .read("facto.toml")
        .replace("name = \"demo\"", "name = 'de\"mo\\x'");
    p.write("facto.toml", &cfg);
    let (child, addr, token) = crate::daemon::start(&p);
    let mut child = Running(child);
    let start = std::time::Instant::now();
    let metrics = loop {
        let m = raw_http(
            &addr,
            &format!("GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"),
            std::time::Duration::from_secs(10),
        )
        .unwrap_or_default();
        if m.contains("facto_passes_total{") && m.contains("facto_documents{") {
            break m;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "{m}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        metrics.contains(r#"facto_passes_total{job="de\"mo\\x",outcome="#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"facto_documents{job="de\"mo\\x",target="sales-fec""#),
        "{metrics}"
    );
    assert_eq!(crate::daemon::terminate(&mut child.0), 0);
}

#[test]
fn dockerfile_creates_the_volume_folders_for_its_user_and_checks_health() {
    let d = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let flat = d.replace("\\\n", " ");
    let mkdir = flat
        .lines()
        .find(|l| l.contains("mkdir -p /app/data /app/out"))
        .expect("the volume folders are created");
    assert!(
        mkdir.contains("chown facto:facto /app/data /app/out"),
        "{mkdir}"
    );
    let volume = d.find("VOLUME").unwrap();
    assert!(
        d.find("mkdir -p /app/data").unwrap() < volume,
        "before VOLUME"
    );
    let hc = flat
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("a HEALTHCHECK");
    assert!(hc.contains("/health"), "{hc}");
}

/// A server that passes the proof of `/api/hello` (it knows `token`, as the daemon that just
/// left its port did), hands out a challenge, and records every byte it is sent.
fn proving_fake_daemon(
    pid: u32,
    token: String,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (log, me) = (seen.clone(), addr.clone());
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            c.set_read_timeout(Some(std::time::Duration::from_millis(300)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 65536];
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            log.lock().unwrap().extend_from_slice(&got);
            let text = String::from_utf8_lossy(&got).into_owned();
            let nonce = text
                .split("nonce=")
                .nth(1)
                .and_then(|r| r.split([' ', '&']).next())
                .unwrap_or_default()
                .to_owned();
            let proof = facto::daemon::auth::proof(&token, &nonce, &me);
            let body = format!(
                r#"{{"pid":{pid},"proof":"{proof}","challenge":"c0ffee","exit_code":0,"stdout":"","error":""}}"#
            );
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, seen)
}

#[test]
fn the_cli_signs_daemon_commands_with_a_single_use_challenge_and_never_sends_the_token() {
    let p = Project::demo();
    let (child, addr, token) = crate::daemon::start(&p);
    let mut child = Running(child);
    // The real CLI goes through the daemon (which holds the ledger) with a signed request.
    let (code, list) = p.json(&["ledger", "list"]);
    assert_eq!(code, 0, "{list}");

    // The signature by hand: accepted once, refused when replayed.
    let wait = std::time::Duration::from_secs(20);
    let hello = raw_http(
        &addr,
        "GET /api/hello?nonce=0123456789abcdef0123 HTTP/1.1\r\nHost: x\r\n\r\n",
        wait,
    )
    .unwrap();
    let hello: serde_json::Value =
        serde_json::from_str(hello.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let challenge = hello["challenge"].as_str().unwrap();
    let body = serde_json::json!({ "args": ["ledger", "list"] }).to_string();
    let header =
        facto::daemon::auth::signed_header(&token, challenge, "POST", "/api/cli", body.as_bytes());
    let request = format!(
        "POST /api/cli HTTP/1.1\r\nHost: x\r\nAuthorization: {header}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let first = raw_http(&addr, &request, wait).unwrap();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.contains("\"exit_code\":0"), "{first}");
    let replayed = raw_http(&addr, &request, wait).unwrap();
    assert!(replayed.starts_with("HTTP/1.1 401"), "{replayed}");

    // The daemon left and a program took its port after the proof: it gets a signature
    // worth nothing elsewhere, never the token.
    let (fake, seen) = proving_fake_daemon(child.0.id(), token.clone());
    let real = p.read("data/daemon.json");
    write_handle(&p, &fake, child.0.id());
    let out = p.run(&["ledger", "list"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let got = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(got.contains("POST /api/cli"), "{got}");
    assert!(
        got.to_ascii_lowercase()
            .contains("authorization: factohmac c0ffee:"),
        "{got}"
    );
    assert!(!got.contains(&token), "{got}");
    p.write("data/daemon.json", &real);
    assert_eq!(crate::daemon::terminate(&mut child.0), 0);
}

/// The daemon's status polling settles the records left claimed, as a pass does: while a pass
/// of the job is between a PA's answer and its record, the status polling must not take the
/// same claimed record for lost and send it again (it waits for the pass).
#[tokio::test(flavor = "multi_thread")]
async fn the_status_polling_never_resends_a_document_a_pass_of_its_job_is_delivering() {
    use crate::pa_sim::{Sim, CLIENT_ID, CLIENT_SECRET};
    let sim = Sim::start().await;
    // Searches list nothing: a claimed record always looks lost, and the grace is none.
    sim.state.lock().unwrap().search_lag = u32::MAX;
    let p = Project::demo_with_target("pa", &sim.connector("lookup_grace_minutes = 0\n"));
    let flag = p.path("paused");
    let flag_text = flag.to_string_lossy().into_owned();
    let (child, _, _) = crate::daemon::start_with(
        &p,
        "status_every = \"every 1s\"\n",
        &[
            ("PA_CLIENT_ID", CLIENT_ID),
            ("PA_CLIENT_SECRET", CLIENT_SECRET),
            ("FACTO_TEST_PAUSE_AT", "after-send:2@pa"),
            ("FACTO_TEST_PAUSE_FILE", &flag_text),
        ],
    );
    let _running = Running(child);
    let start = std::time::Instant::now();
    while !flag.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "never paused"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Several status passes' time while the job's pass is held after its second send.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let created = sim.created();
    assert_eq!(created.len(), 2, "{created:?}");
    assert!(created.values().all(|n| *n == 1), "sent twice: {created:?}");
}

#[test]
fn the_daemon_refuses_a_short_token_an_admin_wrote() {
    let p = Project::demo();
    p.write("data/accountant-token", "short");
    let out = p.command(&["run"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("shorter than 24"), "{err}");
    assert!(!err.contains("short\n"), "the token is never shown: {err}");
}
