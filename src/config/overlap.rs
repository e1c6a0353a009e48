//! Refuses a job whose targets would deliver one document twice: a target named twice, or two
//! connectors that reach the same remote account or write the same files.
//!
//! Destinations are compared as they really are, not as written: folders through symlinks (the
//! nearest existing ancestor of one not created yet), and account secrets by the SHA-256 of the
//! values their environment variables hold (never printed). Two different tokens of one company
//! stay out of its sight.

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{ConfigError, Connector};

/// Where a target delivers: `key` is compared, `text` is shown.
#[derive(Debug, Clone)]
pub(super) struct Dest {
    key: String,
    text: String,
}

/// What identifies the secret in environment variable `var`: a digest of its value when it is
/// set (two names holding one token are one account), else the name.
fn secret_key(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => {
            format!("value {}", hex::encode(Sha256::digest(v.trim().as_bytes())))
        }
        _ => format!("variable {var}"),
    }
}

/// Where a target delivers; two targets of one job with the same destination would import every
/// document twice.
fn destination(c: &Connector, name: &str, base_dir: &Path, data_dir: &Path) -> Option<Dest> {
    match c {
        Connector::JsonDir(_) | Connector::Http(_) | Connector::Push(_) => None,
        Connector::JournalFile(j) => {
            let text = format!(
                "{} files in {}",
                j.format.as_str(),
                resolve(&base_dir.join(&j.out_dir)).display()
            );
            Some(Dest {
                key: text.clone(),
                text,
            })
        }
        Connector::ChorusPro(ch) => Some(Dest {
            key: format!(
                "chorus {} {}",
                secret_key(&ch.cpro_account_env),
                url_key(&ch.api_url())
            ),
            text: format!(
                "the Chorus Pro account of {} at {}",
                ch.cpro_account_env,
                url_key(&ch.api_url())
            ),
        }),
        Connector::AfnorPa(pa) => Some(Dest {
            key: format!(
                "afnor-pa {} {} {}",
                secret_key(pa.account_env()),
                pa.organization_id.as_deref().unwrap_or(""),
                url_key(&pa.api_url)
            ),
            text: format!(
                "the PA account of {}{} at {}",
                pa.account_env(),
                pa.organization_id
                    .as_deref()
                    .map(|o| format!(" for organization {o}"))
                    .unwrap_or_default(),
                url_key(&pa.api_url)
            ),
        }),
        Connector::Pennylane(p) => {
            let (key, account) = match &p.token_env {
                Some(var) => (
                    secret_key(var),
                    format!("the company of the token in {var}"),
                ),
                None => {
                    let file = crate::targets::pennylane::token_path(p, data_dir, name);
                    let file = resolve(&base_dir.join(file)).display().to_string();
                    (
                        format!("file {file}"),
                        format!("the company connected in {file}"),
                    )
                }
            };
            Some(Dest {
                key: format!("pennylane {key} {}", url_key(&p.api_url)),
                text: format!("{account} at {}", url_key(&p.api_url)),
            })
        }
        Connector::Xero(x) => {
            let file = resolve(&base_dir.join(crate::targets::xero::token_path(x, data_dir, name)));
            // The organisation chosen at `facto connect`, when it was; else the token file.
            let tenant = crate::targets::tokens::load(&file)
                .ok()
                .flatten()
                .and_then(|t| t.tenant_id);
            let account = match tenant {
                Some(t) => format!("the Xero organisation {t}"),
                None => format!("the Xero organisation connected in {}", file.display()),
            };
            let text = format!("{account} at {}", url_key(&x.api_url));
            Some(Dest {
                key: text.clone(),
                text,
            })
        }
    }
}

/// How a clash is told: both texts when they differ (two variables holding one token).
fn clash(first: &Dest, second: &Dest) -> String {
    if first.text == second.text {
        first.text.clone()
    } else {
        format!("{} ({} is the same)", first.text, second.text)
    }
}

/// Where a source reads, as a comparable text.
fn origin(c: &Connector, base_dir: &Path) -> Option<String> {
    match c {
        Connector::JsonDir(j) => Some(format!(
            "the folder {}",
            resolve(&base_dir.join(&j.path)).display()
        )),
        Connector::Http(h) => Some(format!("the API {}", url_key(&h.url))),
        _ => None,
    }
}

/// Checks that no two jobs read the same source and deliver to the same place: each job keeps
/// its own records, so both would deliver every document.
///
/// # Errors
///
/// The first overlap, at the later job's `targets` line.
pub(super) fn check_jobs(
    path: &Path,
    jobs: &[super::Job],
    found: &[JobDests],
    connectors: &std::collections::BTreeMap<String, Connector>,
    base_dir: &Path,
) -> Result<(), ConfigError> {
    // (job, source, (target, destination) of each target, its targets)
    type Seen<'a> = (&'a str, String, &'a [(String, Dest)], &'a [String]);
    let mut seen: Vec<Seen<'_>> = Vec::new();
    for (job, (line, dests)) in jobs.iter().zip(found) {
        let Some(source) = connectors
            .get(&job.source)
            .and_then(|c| origin(c, base_dir))
        else {
            continue;
        };
        for (other, other_source, other_dests, other_targets) in &seen {
            if *other_source != source {
                continue;
            }
            // Public buyers through a PA in one job and to Chorus Pro in the other.
            let both: Vec<String> = job
                .targets
                .iter()
                .chain(other_targets.iter())
                .cloned()
                .collect();
            public_buyers_once(
                path,
                *line,
                &format!("{other}` and `{}", job.name),
                &both,
                connectors,
            )?;
            let found = dests.iter().find_map(|(t, d)| {
                let (_, o) = other_dests.iter().find(|(_, o)| o.key == d.key)?;
                Some((t, clash(o, d)))
            });
            if let Some((t, d)) = found {
                return Err(ConfigError::at(
                    path,
                    *line,
                    format!("jobs `{other}` and `{}` both read {source} and deliver to {d} (target `{t}`): every document would be delivered twice; keep that target in one job", job.name),
                ));
            }
        }
        seen.push((&job.name, source, dests, &job.targets));
    }
    Ok(())
}

/// A URL compared without case and trailing slash.
fn url_key(u: &str) -> String {
    u.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// The real place of `p`: its nearest existing ancestor with symlinks resolved, then the rest
/// (not created yet, so no symlink in it) with dots resolved.
fn resolve(p: &Path) -> PathBuf {
    let mut existing = p;
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return normalize(&rest.iter().rev().fold(real, |acc, c| acc.join(c)));
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last.as_os_str().to_owned());
                // `out`'s parent is ``, which is the current folder.
                existing = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
            }
            _ => return normalize(p),
        }
    }
}

/// `a/./b/../c` → `a/c`, without touching the disk (the folder may not exist yet).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A job's `targets` line and where each of its targets delivers (targets that deliver nowhere
/// comparable are left out).
pub(super) type JobDests = (Option<usize>, Vec<(String, Dest)>);

/// Checks one job's targets: each named once, no two reaching the same account or files.
/// Returns where they deliver, for [`check_jobs`].
///
/// # Errors
///
/// The first overlap, at the job's `targets` line.
pub(super) fn check_targets(
    path: &Path,
    line: Option<usize>,
    job: &str,
    targets: &[String],
    connectors: &std::collections::BTreeMap<String, Connector>,
    base_dir: &Path,
    data_dir: &Path,
) -> Result<JobDests, ConfigError> {
    let mut seen: Vec<(&str, Option<Dest>)> = Vec::new();
    for t in targets {
        if seen.iter().any(|(n, _)| n == t) {
            return Err(ConfigError::at(
                path,
                line,
                format!("job `{job}` lists target `{t}` twice: every document would be delivered twice; list it once"),
            ));
        }
        let dest = connectors
            .get(t)
            .and_then(|c| destination(c, t, base_dir, data_dir));
        if let Some(d) = &dest {
            let found = seen.iter().find_map(|(other, o)| {
                let o = o.as_ref().filter(|o| o.key == d.key)?;
                Some((other, clash(o, d)))
            });
            if let Some((other, d)) = found {
                return Err(ConfigError::at(
                    path,
                    line,
                    format!("job `{job}`: targets `{other}` and `{t}` both deliver to {d}: every document would be delivered twice; keep one of them"),
                ));
            }
        }
        seen.push((t, dest));
    }
    public_buyers_once(path, line, job, targets, connectors)?;
    let dests = seen
        .into_iter()
        .filter_map(|(t, d)| Some((t.to_owned(), d?)))
        .collect();
    Ok((line, dests))
}

/// The first of `targets` that sends to Chorus Pro: its API, or its portal files.
pub fn chorus_target<'a>(
    targets: &'a [String],
    connectors: &std::collections::BTreeMap<String, Connector>,
) -> Option<&'a String> {
    use crate::format::JournalFormat;
    targets.iter().find(|t| {
        connectors.get(t.as_str()).is_some_and(|c| match c {
            Connector::ChorusPro(_) => true,
            Connector::JournalFile(j) => {
                matches!(
                    j.format,
                    JournalFormat::ChorusUbl | JournalFormat::ChorusCii
                )
            }
            _ => false,
        })
    })
}

/// A PA that sends public buyers' invoices (`public_buyers = "pa"`) beside a Chorus Pro target
/// (API or portal files) in one job would give Chorus Pro each of them twice.
fn public_buyers_once(
    path: &Path,
    line: Option<usize>,
    job: &str,
    targets: &[String],
    connectors: &std::collections::BTreeMap<String, Connector>,
) -> Result<(), ConfigError> {
    let pa = targets.iter().find(|t| {
        connectors.get(t.as_str()).is_some_and(|c| {
            matches!(c, Connector::AfnorPa(p) if p.public_buyers == crate::route::PublicBuyers::Pa)
        })
    });
    let chorus = chorus_target(targets, connectors);
    match (pa, chorus) {
        (Some(pa), Some(chorus)) => Err(ConfigError::at(
            path,
            line,
            format!("job `{job}`: target `{pa}` sends public buyers' invoices through the PA (public_buyers = \"pa\") and target `{chorus}` sends them to Chorus Pro: each would reach Chorus Pro twice; keep one (or set public_buyers = \"chorus\")"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_compared_after_dots_are_resolved() {
        assert_eq!(
            normalize(Path::new("/p/./out/../out/")),
            PathBuf::from("/p/out")
        );
        assert_eq!(url_key("https://X.test/v2/"), "https://x.test/v2");
    }

    #[test]
    fn folders_are_compared_through_symlinks_even_before_they_exist() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("real")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.path().join("real"), d.path().join("alias")).unwrap();
        #[cfg(unix)]
        assert_eq!(
            resolve(&d.path().join("alias/./out/../out")),
            resolve(&d.path().join("real/out"))
        );
        assert_eq!(
            resolve(&d.path().join("real/new/../x")),
            d.path().canonicalize().unwrap().join("real/x")
        );
        let here = std::env::current_dir().unwrap().canonicalize().unwrap();
        assert_eq!(resolve(Path::new("no-such-dir")), here.join("no-such-dir"));
        assert_eq!(
            resolve(Path::new("./no-such-dir/")),
            here.join("no-such-dir")
        );
    }

    #[test]
    fn two_connectors_on_one_pa_account_are_refused_and_two_organizations_are_not() {
        let pa = |extra: &str| {
            let text = format!(
                "kind = \"afnor-pa\"\napi_url = \"https://pa.test/flow-service/\"\nbearer_token_env = \"FACTO_OVERLAP_TEST_PA_TOKEN\"\n{extra}"
            );
            Connector::AfnorPa(
                crate::targets::pa::config::PaConfig::load(Path::new("pa.toml"), &text).unwrap(),
            )
        };
        let check = |a: Connector, b: Connector| {
            let connectors = [("pa1".to_owned(), a), ("pa2".to_owned(), b)]
                .into_iter()
                .collect();
            check_targets(
                Path::new("facto.toml"),
                Some(3),
                "sales",
                &["pa1".into(), "pa2".into()],
                &connectors,
                Path::new("."),
                Path::new("data"),
            )
            .map(|_| ())
        };
        let e = check(pa(""), pa("syntax = \"ubl\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("both deliver to the PA account of FACTO_OVERLAP_TEST_PA_TOKEN"),
            "{e}"
        );
        check(
            pa("organization_id = \"111111111\"\n"),
            pa("organization_id = \"222222222\"\n"),
        )
        .unwrap();
    }
}
