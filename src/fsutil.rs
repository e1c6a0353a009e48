//! File writes that never leave a half-written file under its final name: temp file in the same
//! folder, fsync, rename, fsync of the folder.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Temporary name beside `final_path`: `.<name>.facto-tmp`.
pub fn tmp_path(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!(".{name}.facto-tmp"))
}

/// A file or folder name made from data (a document number, a journal code): ASCII letters,
/// digits, `-` and `_` kept, anything else (`/`, `.`, spaces, control characters) becomes `_`,
/// so the name can never climb out of its folder or hide as a dot file.
pub fn safe_name(raw: &str) -> String {
    let s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "_".to_owned()
    } else {
        s
    }
}

/// `dir` joined with `rel`, or `None` when `rel` is not made of plain names only (absolute,
/// `..`, `.`): a path built from data must stay under its folder.
pub fn join_under(dir: &Path, rel: &Path) -> Option<PathBuf> {
    let plain = rel.components().count() > 0
        && rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    plain.then(|| dir.join(rel))
}

/// Creates (or truncates) `path` for writing with exactly `mode` (the umask cannot widen or
/// narrow it).
///
/// # Errors
///
/// The file cannot be created or its permissions set.
pub fn create_with_mode(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    let f = opts.open(path)?;
    set_mode(path, mode)?;
    Ok(f)
}

/// Sets a file's or folder's permissions (no-op off Unix).
///
/// # Errors
///
/// The permissions cannot be set.
pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Creates the data folder (ledger, batch copies, tokens) readable by its owner only: the
/// folder 0700, and every file already in it 0600, folders 0700 (older versions left them
/// world-readable).
///
/// # Errors
///
/// The folder cannot be created.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    // Tightening is best effort: a file owned by another user (a shared volume) is named in
    // the log rather than stopping every command.
    let tighten = |p: &Path, mode: u32| {
        if let Err(e) = set_mode(p, mode) {
            tracing::warn!(path = %p.display(), error = %e, "Cannot make this data file private.");
        }
    };
    tighten(dir, 0o700);
    let mut stack = vec![dir.to_path_buf()];
    // Bounded by the folder's own tree; symlinks are not followed.
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                tighten(&e.path(), 0o700);
                stack.push(e.path());
            } else if t.is_file() {
                tighten(&e.path(), 0o600);
            }
        }
    }
    Ok(())
}

/// Flushes a folder's entry table to disk (after a rename in it).
///
/// # Errors
///
/// The folder cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `bytes` to `path` atomically, creating the folder if needed. With `mode`, the file
/// gets those permissions before any byte is written (0600 for secrets).
///
/// # Errors
///
/// Any IO failure; the final file is then untouched.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = tmp_path(path);
    let result = (|| {
        // With a mode, exactly that mode, even over a temp file an earlier attempt left.
        let mut f = match mode {
            Some(m) => create_with_mode(&tmp, m)?,
            None => std::fs::File::create(&tmp)?,
        };
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.txt");
        write_atomic(&p, b"one", None).unwrap();
        write_atomic(&p, b"two", Some(0o600)).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(!tmp_path(&p).exists());
    }

    #[test]
    fn names_from_data_stay_in_their_folder() {
        assert_eq!(safe_name("../../X"), "______X");
        assert_eq!(safe_name("F/2026.1"), "F_2026_1");
        assert_eq!(safe_name(""), "_");
        let d = Path::new("/out");
        assert_eq!(
            join_under(d, Path::new("a/b.txt")),
            Some(PathBuf::from("/out/a/b.txt"))
        );
        assert_eq!(join_under(d, Path::new("../b.txt")), None);
        assert_eq!(join_under(d, Path::new("/etc/b.txt")), None);
        assert_eq!(join_under(d, Path::new("")), None);
    }
}
