//! Commands and the daemon: a command that uses the ledger goes to a running daemon (it holds
//! the ledger's lock), and the daemon runs the commands its clients forward.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use super::{run, Cli, Command, Context, Failure, Output};
use crate::config::Config;
use crate::report::exit;

/// Runs a command forwarded by a client through the daemon's admin API, with the daemon's
/// configuration file and ledger, on behalf of `who` (for the audit log); returns the exit
/// code, standard output and error message.
pub(super) fn execute_forwarded(
    args: Vec<String>,
    config: PathBuf,
    ledger: crate::ledger::SharedLedger,
    who: String,
    tenant: String,
) -> crate::daemon::Forwarded {
    Box::pin(async move {
        let mut argv = vec![
            "facto".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        argv.extend(args);
        let mut cli = match Cli::try_parse_from(&argv) {
            Ok(c) => c,
            Err(e) => return (exit::USAGE, Vec::new(), e.to_string()),
        };
        // The daemon's own tenant, whatever the environment says.
        cli.tenants = None;
        let tenant_name = tenant.clone();
        cli.tenant_name = Some(tenant);
        if let Some(refused) = refused_by_daemon(&cli, &config) {
            return (exit::USAGE, Vec::new(), refused.to_owned());
        }
        if tenant_name != crate::daemon::DEFAULT_TENANT {
            if let Err(refused) = confined(&cli, &config) {
                return (exit::USAGE, Vec::new(), refused);
            }
        }
        let mut cx = Context {
            cli: &cli,
            out: Output::buffer(cli.json),
            daemon_ledger: Some(ledger),
            who,
        };
        // Like a pass, a forwarded command (a whole `sync`, an `export`) runs on a thread of its
        // own, so the daemon keeps answering meanwhile.
        let result = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(run(&mut cx))
        });
        let out = cx.out.into_bytes();
        match result {
            Ok(code) => (code, out, String::new()),
            Err(Failure(code, e)) => (code, out, format!("{e:#}")),
        }
    })
}

/// A tenant's daemon reads and writes the files a client names only inside the tenant's folder
/// (the folder of its `facto.toml`): another tenant's files, or the daemon's, are out of reach.
fn confined(cli: &Cli, config: &Path) -> Result<(), String> {
    use super::args::ExportsCmd;
    let root = config
        .parent()
        .and_then(|p| std::fs::canonicalize(p).ok())
        .ok_or_else(|| "the tenant's folder cannot be resolved".to_owned())?;
    let mut paths: Vec<&Path> = Vec::new();
    let mut download_default = false;
    match &cli.command {
        Command::Chorus {
            cmd: super::args::ChorusCmd::Complete { attach, .. },
        } => paths.extend(attach.iter().map(PathBuf::as_path)),
        Command::Export(a) => paths.extend(a.out.as_deref()),
        Command::Exports {
            cmd: ExportsCmd::Download { out, .. },
        } => match out.as_deref() {
            Some(p) if p == Path::new("-") => {}
            Some(p) => paths.push(p),
            None => download_default = true,
        },
        _ => {}
    }
    if download_default {
        return Err("a tenant's daemon writes only inside the tenant's folder: give --out <a path in it>, or --out - for the standard output".into());
    }
    for p in paths {
        // The file itself may not exist yet (an output): its nearest existing folder decides.
        let mut probe = p.to_path_buf();
        let real = loop {
            if let Ok(r) = std::fs::canonicalize(&probe) {
                break r;
            }
            if !probe.pop() {
                return Err(format!("{} cannot be resolved", p.display()));
            }
        };
        if !real.starts_with(&root) {
            return Err(format!(
                "{} is outside the tenant's folder {}: a tenant's daemon reads and writes files only inside it",
                p.display(),
                root.display()
            ));
        }
    }
    Ok(())
}

/// Why the daemon refuses a forwarded command, judged on the parsed command (wherever the
/// arguments put it): the daemon and consent run on their own, and a client cannot point the
/// daemon at another configuration or ledger folder.
fn refused_by_daemon(cli: &Cli, daemon_config: &Path) -> Option<&'static str> {
    match cli.command {
        Command::Run | Command::Connect { .. } => {
            Some("`facto run` and `facto connect` do not go through the daemon: run them directly")
        }
        _ if cli.config != daemon_config || cli.data_dir.is_some() => Some(
            "--config and --data-dir are the daemon's own: a command sent to it runs with its configuration",
        ),
        _ => None,
    }
}

/// Commands that use the ledger go through a running daemon (it holds the ledger's lock).
pub(super) fn forward_to_daemon(cli: &Cli) -> Option<ExitCode> {
    if !matches!(
        cli.command,
        Command::Sync { .. }
            | Command::Preview { .. }
            | Command::Export(_)
            | Command::Exports { .. }
            | Command::Ledger { .. }
            | Command::Status { .. }
            | Command::Chorus { .. }
            | Command::Respond { .. }
            | Command::Events { .. }
    ) {
        return None;
    }
    let cfg = Config::load(&cli.config, cli.data_dir.as_deref()).ok()?;
    let (handle, token) = crate::daemon::running(&cfg.data_dir)?;
    let cwd = std::env::current_dir().unwrap_or_default();
    let args = forwarded_args(std::env::args().skip(1), &cwd);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    // `daemon.json` may outlive its daemon: a command goes only to a server that proves it
    // knows the token. A stale file is ignored (the command runs here); an impostor is an error.
    let verified = runtime.block_on(crate::daemon::auth::verify(
        &handle.addr,
        handle.pid,
        &token,
        &cfg.data_dir,
        cfg.ledger.is_none(),
    ));
    let challenge = match verified {
        Ok(c) => c,
        Err(crate::daemon::auth::VerifyError::Stale(why)) => {
            tracing::info!(reason = %why, "No daemon runs for this data folder; running here.");
            return None;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Some(ExitCode::from(exit::UNREACHABLE));
        }
    };
    // The token itself is never sent: the request is signed with the single-use challenge, so
    // a program that took the daemon's port since the proof learns nothing it can reuse.
    let body = serde_json::json!({ "args": args }).to_string().into_bytes();
    let authorization =
        crate::daemon::auth::signed_header(&token, &challenge, "POST", "/api/cli", &body);
    // `None`: the daemon could not be reached, so the command runs here. A command the daemon
    // took but did not answer may have run there: it is not run a second time.
    let answer: Result<Answer, Option<String>> = runtime.block_on(async {
        let resp = reqwest::Client::new()
            .post(format!("http://{}/api/cli", handle.addr))
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(std::time::Duration::from_secs(3600))
            .send()
            .await
            .map_err(|e| (!e.is_connect()).then(|| e.to_string()))?;
        resp.json().await.map_err(|e| Some(e.to_string()))
    });
    let answer = match answer {
        // Refused before running: the challenge expired or was pushed out by others.
        Ok(Answer {
            exit_code: None,
            error: Some(e),
            ..
        }) => {
            eprintln!(
                "error: the running daemon refused the command, which did not run ({e}); run it again"
            );
            return Some(ExitCode::from(exit::UNREACHABLE));
        }
        Ok(a) => a,
        Err(None) => return None,
        Err(Some(e)) => {
            eprintln!(
                "error: the running daemon took the command but did not answer ({e}); it may have run there. Look with `facto ledger show` or `facto exports list` before running it again"
            );
            return Some(ExitCode::from(exit::UNREACHABLE));
        }
    };
    use base64::Engine as _;
    let out = base64::engine::general_purpose::STANDARD
        .decode(answer.stdout)
        .unwrap_or_default();
    let _ = std::io::stdout().write_all(&out);
    if let Some(e) = answer.error.filter(|e| !e.is_empty()) {
        eprintln!("error: {e}");
    }
    let code = answer.exit_code.unwrap_or(u64::from(exit::USAGE));
    Some(ExitCode::from(u8::try_from(code).unwrap_or(exit::USAGE)))
}

/// The daemon's answer to a forwarded command; `exit_code` is missing when it refused the
/// request before running it (then `error` says why).
#[derive(serde::Deserialize)]
struct Answer {
    exit_code: Option<u64>,
    /// Standard output, base64.
    #[serde(default)]
    stdout: String,
    error: Option<String>,
}

/// The arguments a client sends to the daemon: its own `--config` / `--data-dir` are dropped
/// (the daemon uses its configuration), and relative paths given to `--out` and `--attach`
/// (either form) are made absolute, since the daemon runs in another folder.
fn forwarded_args(argv: impl Iterator<Item = String>, cwd: &Path) -> Vec<String> {
    let absolute = |v: &str| {
        let p = PathBuf::from(v);
        if v == "-" || p.is_absolute() {
            v.to_owned()
        } else {
            cwd.join(p).display().to_string()
        }
    };
    let mut args = Vec::new();
    let mut it = argv.peekable();
    while let Some(a) = it.next() {
        match a.as_str() {
            // The daemon runs the command with its configuration, for its tenant.
            "--config" | "--data-dir" | "--tenant" | "--tenants" => {
                it.next();
            }
            _ if ["--config=", "--data-dir=", "--tenant=", "--tenants="]
                .iter()
                .any(|f| a.starts_with(f)) => {}
            _ if a.starts_with("--out=") || a.starts_with("--attach=") => {
                let (flag, v) = a.split_once('=').unwrap_or((a.as_str(), ""));
                args.push(format!("{flag}={}", absolute(v)));
            }
            "--out" | "--attach" => {
                args.push(a);
                if let Some(v) = it.next() {
                    args.push(absolute(&v));
                }
            }
            _ => args.push(a),
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_commands_drop_client_settings_and_make_paths_absolute() {
        let argv = [
            "--config",
            "other.toml",
            "--data-dir=elsewhere",
            "chorus",
            "complete",
            "F1",
            "--attach",
            "bl.pdf",
            "--attach=docs/pv.pdf",
            "--attach",
            "/abs/x.pdf",
            "--out=-",
            "--comment",
            "ok",
        ]
        .map(String::from);
        let got = forwarded_args(argv.into_iter(), Path::new("/home/u"));
        assert_eq!(
            got,
            [
                "chorus",
                "complete",
                "F1",
                "--attach",
                "/home/u/bl.pdf",
                "--attach=/home/u/docs/pv.pdf",
                "--attach",
                "/abs/x.pdf",
                "--out=-",
                "--comment",
                "ok",
            ]
        );
    }

    #[test]
    fn the_daemon_refuses_by_command_wherever_the_arguments_put_it() {
        let daemon = Path::new("/etc/facto.toml");
        let parse = |args: &[&str]| {
            let mut argv = vec!["facto", "--config", "/etc/facto.toml"];
            argv.extend_from_slice(args);
            Cli::try_parse_from(argv)
        };
        for args in [
            &["run"][..],
            &["--data-dir", "X", "run"],
            &["--json", "run"],
            &["-v", "connect", "xero"],
            &["--config", "/tmp/other.toml", "ledger", "list"],
            &["ledger", "list", "--data-dir=X"],
        ] {
            // A second `--config` is already a usage error.
            assert!(
                parse(args).map_or(true, |c| refused_by_daemon(&c, daemon).is_some()),
                "{args:?}"
            );
        }
        let plain = parse(&["--json", "ledger", "list"]).unwrap();
        assert_eq!(refused_by_daemon(&plain, daemon), None);
    }
}
