//! Refuses a job whose targets would deliver one document twice: a target named twice, or two
//! connectors that reach the same remote account or write the same files.

use std::path::{Component, Path, PathBuf};

use super::{ConfigError, Connector};

/// Where a target delivers, as a comparable text; two targets of one job with the same
/// destination would import every document twice.
fn destination(c: &Connector, name: &str, base_dir: &Path, data_dir: &Path) -> Option<String> {
    match c {
        Connector::JsonDir(_) | Connector::Http(_) => None,
        Connector::JournalFile(j) => Some(format!(
            "{} files in {}",
            j.format.as_str(),
            normalize(&base_dir.join(&j.out_dir)).display()
        )),
        Connector::ChorusPro(ch) => Some(format!(
            "the Chorus Pro account of {} at {}",
            ch.cpro_account_env,
            url_key(&ch.api_url())
        )),
        Connector::Pennylane(p) => {
            let account = match &p.token_env {
                Some(var) => format!("the company of the token in {var}"),
                None => {
                    let file = crate::target::pennylane::token_path(p, data_dir, name);
                    format!(
                        "the company connected in {}",
                        normalize(&base_dir.join(file)).display()
                    )
                }
            };
            Some(format!("{account} at {}", url_key(&p.api_url)))
        }
        Connector::Xero(x) => {
            let file =
                normalize(&base_dir.join(crate::target::xero::token_path(x, data_dir, name)));
            // The organisation chosen at `facto connect`, when it was; else the token file.
            let tenant = crate::target::tokens::load(&file)
                .ok()
                .flatten()
                .and_then(|t| t.tenant_id);
            let account = match tenant {
                Some(t) => format!("the Xero organisation {t}"),
                None => format!("the Xero organisation connected in {}", file.display()),
            };
            Some(format!("{account} at {}", url_key(&x.api_url)))
        }
    }
}

/// Where a source reads, as a comparable text.
fn origin(c: &Connector, base_dir: &Path) -> Option<String> {
    match c {
        Connector::JsonDir(j) => Some(format!(
            "the folder {}",
            normalize(&base_dir.join(&j.path)).display()
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
    text: &str,
    jobs: &[super::Job],
    connectors: &std::collections::BTreeMap<String, Connector>,
    base_dir: &Path,
    data_dir: &Path,
) -> Result<(), ConfigError> {
    // (job, source, (target, destination) of each target)
    type Seen<'a> = (&'a str, String, Vec<(String, String)>);
    let mut seen: Vec<Seen<'_>> = Vec::new();
    for job in jobs {
        let Some(source) = connectors
            .get(&job.source)
            .and_then(|c| origin(c, base_dir))
        else {
            continue;
        };
        let dests: Vec<(String, String)> = job
            .targets
            .iter()
            .filter_map(|t| {
                let d = destination(connectors.get(t)?, t, base_dir, data_dir)?;
                Some((t.clone(), d))
            })
            .collect();
        for (other, other_source, other_dests) in &seen {
            if *other_source != source {
                continue;
            }
            if let Some((t, d)) = dests
                .iter()
                .find(|(_, d)| other_dests.iter().any(|(_, o)| o == d))
            {
                let job_line = super::find_line(text, &[&format!("name = \"{}\"", job.name)]);
                return Err(ConfigError::at(
                    path,
                    targets_line(text, job_line),
                    format!("jobs `{other}` and `{}` both read {source} and deliver to {d} (target `{t}`): every document would be delivered twice; keep that target in one job", job.name),
                ));
            }
        }
        seen.push((&job.name, source, dests));
    }
    Ok(())
}

/// A URL compared without case and trailing slash.
fn url_key(u: &str) -> String {
    u.trim().trim_end_matches('/').to_ascii_lowercase()
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

/// Line of the `targets` key of the job that starts at `job_line` (1-based), else `job_line`.
pub(super) fn targets_line(text: &str, job_line: Option<usize>) -> Option<usize> {
    let from = job_line.unwrap_or(1).saturating_sub(1);
    text.lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.trim_start().starts_with("targets"))
        .map(|(i, _)| i + 1)
        .or(job_line)
}

/// Checks one job's targets: each named once, no two reaching the same account or files.
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
) -> Result<(), ConfigError> {
    let mut seen: Vec<(&str, Option<String>)> = Vec::new();
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
            if let Some((other, _)) = seen.iter().find(|(_, o)| o.as_ref() == Some(d)) {
                return Err(ConfigError::at(
                    path,
                    line,
                    format!("job `{job}`: targets `{other}` and `{t}` both deliver to {d}: every document would be delivered twice; keep one of them"),
                ));
            }
        }
        seen.push((t, dest));
    }
    Ok(())
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
}
