//! Saving a mapping file: one save at a time (the console's and the editor page's), refused
//! when the file changed since the page was loaded (its `base`), the file written atomically
//! and then audited with its diff and who made it (a change written but not audited is saved,
//! with a warning).

use std::path::Path;

use serde_json::{json, Value};

use super::{apply, check_removal, diff, display, preview, remove, Edit, Removal};
use crate::config::Config;
use crate::fsutil;
use crate::ledger::{AuditEvent, Ledger};
use crate::model::Document;

/// Who acts when the editor page (opened with the admin token) saves, in the audit log.
pub const WHO_EDITOR: &str = "editor";

/// Mapping files are changed by one save at a time, the console's and the editor page's alike:
/// a save reads the file, checks its base, writes it and audits under this lock, so two saves
/// at once never lose one (each would have read the file before the other wrote it).
static WRITES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Why a save or a deletion did not happen (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The change does not check, or the file cannot be read or written.
    #[error("{0}")]
    Refused(String),
    /// The file changed since the page was loaded (its sha256 is not the page's base).
    #[error("{0}")]
    Stale(String),
}

impl From<String> for SaveError {
    fn from(m: String) -> Self {
        SaveError::Refused(m)
    }
}

/// The sha256 (hex) of a mapping file's text: the base a page sends back with its change.
pub fn base_of(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// The file's text, under the write lock held by the caller, refused when `base` is given and
/// the file is no longer the one the page showed.
fn read_at_base(path: &Path, cfg: &Config, base: Option<&str>) -> Result<String, SaveError> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| SaveError::Refused(format!("cannot read {}: {err}", path.display())))?;
    match base {
        Some(b) if b != base_of(&text) => Err(SaveError::Stale(format!(
            "{} changed since this page was loaded (another save?): nothing was saved; reload the page and make the change again",
            display(path, cfg)
        ))),
        _ => Ok(text),
    }
}

/// The file of mapping `name`, only for a mapping the configuration uses: a name from a request
/// never reaches the file system before it is known (`../x` is no mapping).
fn mapping_file(cfg: &Config, name: &str) -> Result<std::path::PathBuf, SaveError> {
    if !cfg.mappings.contains_key(name) {
        return Err(SaveError::Refused(format!(
            "no mapping `{name}` in use; the mappings of facto.toml's jobs: {}",
            cfg.mappings.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(cfg.mappings_dir.join(format!("{name}.toml")))
}

/// Saves an edit (checked again), writes the audit entry and asks for a re-check of held
/// documents.
///
/// # Errors
///
/// The edit does not check, or the file cannot be written.
pub fn save(cfg: &Config, ledger: &dyn Ledger, e: &Edit) -> Result<Value, SaveError> {
    save_as(cfg, ledger, e, WHO_EDITOR)
}

/// [`save`], recording in the audit log who made the change (`who`: `console:admin`...). A
/// save that landed but could not be audited is saved, with a `warning` saying so.
///
/// # Errors
///
/// As [`save`]; [`SaveError::Stale`] when the edit's base is not the file's text.
pub fn save_as(cfg: &Config, ledger: &dyn Ledger, e: &Edit, who: &str) -> Result<Value, SaveError> {
    let _one_at_a_time = WRITES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let path = mapping_file(cfg, &e.mapping)?;
    let text = read_at_base(&path, cfg, e.base.as_deref())?;
    let checked = preview(cfg, ledger, e);
    if checked["ok"] != true {
        return Err(SaveError::Refused(
            checked["error"]
                .as_str()
                .unwrap_or("the edit does not check")
                .to_owned(),
        ));
    }
    let new_text = apply(&text, e)?;
    let d = diff(&text, &new_text);
    let event = AuditEvent {
        at: chrono::Utc::now(),
        action: "mapping-edit".into(),
        detail: format!("{}: [{}.\"{}\"]\n{d}", display(&path, cfg), e.table, e.code),
        who: who.to_owned(),
    };
    let warning = write_audited(&path, &new_text, event, |ev| ledger.audit(ev))?;
    for j in cfg.jobs.iter().filter(|j| j.mapping == e.mapping) {
        let _ = ledger.request_rescan(&j.name);
    }
    let mut v = json!({"saved": true, "releases": checked["releases"], "diff": d});
    if let Some(w) = warning {
        v["warning"] = json!(w);
    }
    Ok(v)
}

/// Writes the new text of a mapping file atomically, then records `event` with `audit`. The
/// file is written first: a change whose audit entry could not be written is saved all the
/// same, and the warning returned says the entry is missing (the page must not say "refused"
/// for a file that changed).
fn write_audited(
    path: &Path,
    new_text: &str,
    event: AuditEvent,
    audit: impl FnOnce(AuditEvent) -> Result<(), crate::ledger::LedgerError>,
) -> Result<Option<String>, SaveError> {
    fsutil::write_atomic(path, new_text.as_bytes(), None)
        .map_err(|err| SaveError::Refused(format!("cannot write {}: {err}", path.display())))?;
    let action = event.action.clone();
    Ok(audit(event).err().map(|err| {
        tracing::error!(error = %err, action = %action, file = %path.display(), "Mapping saved but not audited.");
        format!("saved, but its audit entry could not be written ({err}): the audit log misses this change")
    }))
}

/// Deletes an entry (checked again), audited with its diff and who did it (`who`); a deletion
/// that landed but could not be audited is done, with a `warning` saying so.
///
/// # Errors
///
/// The deletion does not check, or the file cannot be written; [`SaveError::Stale`] when the
/// removal's base is not the file's text.
pub fn delete_as(
    cfg: &Config,
    ledger: &dyn Ledger,
    r: &Removal,
    docs: &[Document],
    who: &str,
) -> Result<Value, SaveError> {
    let _one_at_a_time = WRITES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let path = mapping_file(cfg, &r.mapping)?;
    let text = read_at_base(&path, cfg, r.base.as_deref())?;
    let checked = check_removal(cfg, r, docs);
    if checked["ok"] != true {
        return Err(SaveError::Refused(
            checked["error"]
                .as_str()
                .unwrap_or("the deletion does not check")
                .to_owned(),
        ));
    }
    let new_text = remove(&text, &r.table, &r.code)?;
    let d = diff(&text, &new_text);
    let event = AuditEvent {
        at: chrono::Utc::now(),
        action: "mapping-delete".into(),
        detail: format!(
            "{}: [{}.\"{}\"] deleted\n{d}",
            display(&path, cfg),
            r.table,
            r.code
        ),
        who: who.to_owned(),
    };
    let warning = write_audited(&path, &new_text, event, |ev| ledger.audit(ev))?;
    for j in cfg.jobs.iter().filter(|j| j.mapping == r.mapping) {
        let _ = ledger.request_rescan(&j.name);
    }
    let mut v = json!({"deleted": true, "holds": checked["holds"], "diff": d});
    if let Some(w) = warning {
        v["warning"] = json!(w);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::editor::tests::copy;
    use crate::ledger::sled::SledLedger;

    /// The demo project in a temporary folder, its configuration and ledger.
    fn demo() -> (tempfile::TempDir, Config, SledLedger) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(repo.join("facto.toml"), dir.path().join("facto.toml")).unwrap();
        for d in ["connectors", "mappings", "examples"] {
            copy(&repo.join(d), &dir.path().join(d));
        }
        let cfg = Config::load(&dir.path().join("facto.toml"), None).unwrap();
        let ledger = SledLedger::open(&cfg.data_dir).unwrap();
        (dir, cfg, ledger)
    }

    fn label(code: &str, label: &str, base: Option<String>) -> Edit {
        Edit {
            mapping: "pcg-demo".into(),
            table: "gl.accounts".into(),
            code: code.into(),
            fields: [
                ("account".to_owned(), "706000".to_owned()),
                ("label".to_owned(), label.to_owned()),
            ]
            .into_iter()
            .collect(),
            base,
        }
    }

    #[test]
    fn a_save_made_on_a_file_changed_since_its_page_is_refused_and_loses_nothing() {
        let (_dir, cfg, ledger) = demo();
        let path = cfg.mappings_dir.join("pcg-demo.toml");
        let base = base_of(&std::fs::read_to_string(&path).unwrap());
        // Two pages loaded on the same file, each saving its own edit.
        let first = save_as(
            &cfg,
            &ledger,
            &label("FIRST", "one", Some(base.clone())),
            "console:admin",
        );
        assert_eq!(first.unwrap()["saved"], true);
        let second = save_as(
            &cfg,
            &ledger,
            &label("SECOND", "two", Some(base)),
            "console:admin",
        );
        assert!(
            matches!(&second, Err(SaveError::Stale(m)) if m.contains("changed since")),
            "{second:?}"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("[gl.accounts.FIRST]") && !text.contains("SECOND"),
            "{text}"
        );
        // On the file as it is now, the second goes through, keeping the first.
        let now = base_of(&text);
        assert!(save_as(&cfg, &ledger, &label("SECOND", "two", Some(now)), "api").is_ok());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("FIRST") && text.contains("SECOND"));
        // A deletion checks its base too.
        let stale = Removal {
            mapping: "pcg-demo".into(),
            table: "gl.accounts".into(),
            code: "FIRST".into(),
            confirm: true,
            base: Some(base_of("not the file")),
        };
        assert!(matches!(
            delete_as(&cfg, &ledger, &stale, &[], "console:admin"),
            Err(SaveError::Stale(_))
        ));
        let trail = ledger.audit_trail().unwrap();
        let whos: Vec<&str> = trail.iter().map(|e| e.who.as_str()).collect();
        assert_eq!(
            whos,
            ["console:admin", "api"],
            "one event per save, with who"
        );
        assert!(
            !trail[0].detail.contains("web console"),
            "{}",
            trail[0].detail
        );
    }

    #[test]
    fn a_mapping_name_outside_the_configuration_never_reaches_the_file_system() {
        let (_dir, cfg, ledger) = demo();
        let mut e = label("X", "x", Some(base_of("anything")));
        e.mapping = "../facto".into();
        // Refused by name, not "changed since" (which would tell the file exists).
        let got = save_as(&cfg, &ledger, &e, "console:admin");
        assert!(
            matches!(&got, Err(SaveError::Refused(m)) if m.contains("no mapping `../facto`")),
            "{got:?}"
        );
        let r = Removal {
            mapping: "../facto".into(),
            table: "gl.accounts".into(),
            code: "X".into(),
            confirm: true,
            base: Some(base_of("anything")),
        };
        assert!(matches!(
            delete_as(&cfg, &ledger, &r, &[], "console:admin"),
            Err(SaveError::Refused(_))
        ));
    }

    #[test]
    fn concurrent_saves_without_a_base_both_land() {
        let (_dir, cfg, ledger) = demo();
        std::thread::scope(|s| {
            for i in 0..4 {
                let (cfg, ledger) = (&cfg, &ledger);
                s.spawn(move || {
                    save_as(cfg, ledger, &label(&format!("C{i}"), "x", None), "api").unwrap();
                });
            }
        });
        let text = std::fs::read_to_string(cfg.mappings_dir.join("pcg-demo.toml")).unwrap();
        for i in 0..4 {
            assert!(text.contains(&format!("[gl.accounts.C{i}]")), "{text}");
        }
        assert_eq!(ledger.audit_trail().unwrap().len(), 4);
    }

    #[test]
    fn a_change_written_but_not_audited_is_saved_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, "[tax]\n").unwrap();
        let event = AuditEvent {
            at: chrono::Utc::now(),
            action: "mapping-edit".into(),
            detail: "m.toml".into(),
            who: "console:admin".into(),
        };
        let closed = |_| {
            Err(crate::ledger::LedgerError::Store(
                "the ledger is closed".to_owned().into(),
            ))
        };
        let warning = write_audited(&path, "[tax.X]\n", event.clone(), closed).unwrap();
        assert!(
            warning
                .as_deref()
                .is_some_and(|w| w.contains("saved, but its audit entry")
                    && w.contains("the ledger is closed")),
            "{warning:?}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[tax.X]\n");
        assert_eq!(
            write_audited(&path, "[tax.Y]\n", event, |_| Ok(())).unwrap(),
            None
        );
    }
}
