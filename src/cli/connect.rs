//! `facto connect`: the OAuth2 consent of a Xero or Pennylane target.

use anyhow::anyhow;

use super::{fail, Context, Failure};
use crate::report::exit;

pub(super) async fn connect(
    cx: &mut Context<'_>,
    target: &str,
    tenant: Option<&str>,
) -> Result<u8, Failure> {
    let mut cfg = cx.load()?;
    let job = cfg.jobs.first().map(|j| j.name.clone()).unwrap_or_default();
    // The connector may not be in a job yet: connect comes first.
    let _ = cfg.add_export_target(&job, target);
    let connector = cfg.connectors.get(target).cloned().or_else(|| {
        let file = cfg.connectors_dir.join(format!("{target}.toml"));
        crate::config::load_connector(&file).ok()
    });
    let out = &mut cx.out;
    let announce = |port: u16| {
        move |url: &str| {
            let msg = format!("Open this address in a browser and allow facto:\n\n  {url}\n\nWaiting for the answer on 127.0.0.1:{port}...\n");
            // With --json, standard output holds the JSON answer only.
            if out.is_json() {
                eprint!("{msg}");
            } else {
                let _ = out.text(&msg);
            }
        }
    };
    let result = match connector {
        Some(crate::config::Connector::Xero(c)) => {
            let store = crate::targets::xero::token_path(&c, &cfg.data_dir, target);
            crate::connect::connect_xero(target, &c, &store, tenant, announce(c.redirect_port)).await
        }
        Some(crate::config::Connector::Pennylane(c)) => {
            let store = crate::targets::pennylane::token_path(&c, &cfg.data_dir, target);
            crate::connect::connect_pennylane(&c, &store, announce(c.redirect_port)).await
        }
        Some(_) => {
            return Err(fail(
                exit::USAGE,
                anyhow!("`{target}` needs no consent: Xero and Pennylane (OAuth2) targets are connected this way"),
            ))
        }
        None => {
            return Err(fail(
                exit::USAGE,
                anyhow!("no connector `{target}` in {}", cfg.connectors_dir.display()),
            ))
        }
    };
    let done = result.map_err(|e| match e {
        crate::connect::ConnectError::Usage(m) => fail(exit::USAGE, anyhow!(m)),
        crate::connect::ConnectError::Remote(m) => fail(exit::UNREACHABLE, anyhow!(m)),
    })?;
    if cx.out.is_json() {
        cx.out.json(&done)?;
    } else {
        cx.out.text(&format!(
            "connected to {} ({}); tokens in {}\n",
            done.tenant.name, done.tenant.id, done.token_file
        ))?;
    }
    Ok(exit::OK)
}
