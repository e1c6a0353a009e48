//! Files a document names (its attachments), read under one rule: a path is relative, and once
//! canonicalised (symlinks followed) it lies inside the source's folder or the connector's
//! `attachments_dir`; the file is a regular file under a size limit, and an invoice PDF starts
//! with `%PDF-`. The check is made again on the opened file (its real path, its type), so a
//! symlink swapped in after the first check or a FIFO changes nothing. Source data is untrusted:
//! without this a document could have any file of the machine (`/proc/self/environ`,
//! `../../etc/passwd`) uploaded as its PDF.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::{Attachment, AttachmentKind};

/// Largest attachment read, in bytes (Pennylane takes files up to 20 MB).
pub const MAX_BYTES: u64 = 20 * 1024 * 1024;

/// Why an attachment is not read.
#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    /// The attachment has no `path`.
    #[error("the attachment has no path")]
    NoPath,
    /// An absolute path.
    #[error("the attachment path `{0}` is absolute: a path is relative to the document's file")]
    Absolute(String),
    /// The source has no folder attachments may be read from (an HTTP source without
    /// `attachments_dir`).
    #[error(
        "the attachment path `{0}` cannot be read: the source connector names no attachments_dir"
    )]
    NoFolder(String),
    /// The path leads outside the allowed folders (`..`, a symlink).
    #[error("the attachment path `{path}` leads outside the source's folders ({allowed})")]
    Escapes {
        /// Path as written in the document.
        path: String,
        /// The allowed folders.
        allowed: String,
    },
    /// The file cannot be read.
    #[error("the attachment {path} cannot be read: {detail}")]
    Unreadable {
        /// File.
        path: String,
        /// Why.
        detail: String,
    },
    /// Not a regular file.
    #[error("the attachment {0} is not a regular file")]
    NotAFile(String),
    /// Over [`MAX_BYTES`].
    #[error("the attachment {path} is larger than {limit} bytes")]
    TooLarge {
        /// File.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// An invoice PDF that does not start with `%PDF-`.
    #[error("the invoice PDF {0} is not a PDF file (it does not start with %PDF-)")]
    NotPdf(String),
    /// The file does not match the document's `sha256`.
    #[error("the attachment {path} does not match its sha256 ({got} instead of {want})")]
    Changed {
        /// File.
        path: String,
        /// SHA-256 of the file.
        got: String,
        /// SHA-256 the document gives.
        want: String,
    },
}

impl AttachmentError {
    /// Stable problem code (`attachment-…`).
    pub fn code(&self) -> &'static str {
        match self {
            AttachmentError::NoPath => "attachment-no-path",
            AttachmentError::Absolute(_) | AttachmentError::Escapes { .. } => {
                "attachment-outside-folder"
            }
            AttachmentError::NoFolder(_) => "attachment-no-folder",
            AttachmentError::Unreadable { .. } | AttachmentError::NotAFile(_) => {
                "attachment-unreadable"
            }
            AttachmentError::TooLarge { .. } => "attachment-too-large",
            AttachmentError::NotPdf(_) => "attachment-not-pdf",
            AttachmentError::Changed { .. } => "attachment-changed",
        }
    }

    /// What to do about it.
    pub fn fix(&self) -> &'static str {
        match self {
            AttachmentError::NoPath => "give the attachment a path",
            AttachmentError::Absolute(_) | AttachmentError::Escapes { .. } => {
                "put the file inside the source's folder (or the connector's attachments_dir) and write its path relative to the document"
            }
            AttachmentError::NoFolder(_) => {
                "set attachments_dir in the source connector to the folder holding the documents' files"
            }
            AttachmentError::Unreadable { .. } | AttachmentError::NotAFile(_) => {
                "put the file where the document says, or correct its path"
            }
            AttachmentError::TooLarge { .. } => "attach a smaller file (at most 20 MB)",
            AttachmentError::NotPdf(_) => "attach the invoice's PDF as the invoicing application rendered it",
            AttachmentError::Changed { .. } => "attach the file that was issued with the document",
        }
    }
}

/// A file read for a document.
#[derive(Debug)]
pub struct Loaded {
    /// Its canonical path.
    pub path: PathBuf,
    /// Its file name.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The folders a source's documents may name files in.
#[derive(Debug, Clone, Default)]
pub struct AttachmentRoots {
    /// The source's folder (json-dir): paths start at the document's file.
    source_dir: Option<PathBuf>,
    /// The connector's `attachments_dir`.
    attachments_dir: Option<PathBuf>,
}

impl AttachmentRoots {
    /// Explicit folders: the source's own folder (json-dir) and its `attachments_dir`.
    pub fn new(source_dir: Option<PathBuf>, attachments_dir: Option<PathBuf>) -> Self {
        AttachmentRoots {
            source_dir,
            attachments_dir,
        }
    }

    /// Reads the attachment of the document read from `origin` (its file, or a URL): relative
    /// to the document's folder, else to `attachments_dir`, and confined to those folders.
    ///
    /// # Errors
    ///
    /// See [`AttachmentError`]; nothing outside the folders is ever opened.
    pub fn read(&self, origin: &str, att: &Attachment) -> Result<Loaded, AttachmentError> {
        let written = att.path.as_deref().ok_or(AttachmentError::NoPath)?;
        let rel = Path::new(written);
        if written.is_empty()
            || rel.has_root()
            || rel
                .components()
                .any(|c| matches!(c, Component::Prefix(_) | Component::RootDir))
        {
            return Err(AttachmentError::Absolute(written.to_owned()));
        }
        let allowed: Vec<PathBuf> = [&self.source_dir, &self.attachments_dir]
            .into_iter()
            .flatten()
            .filter_map(|d| std::fs::canonicalize(d).ok())
            .collect();
        if allowed.is_empty() {
            return Err(AttachmentError::NoFolder(written.to_owned()));
        }
        // The document's own folder first (json-dir), then attachments_dir.
        let doc_dir = self
            .source_dir
            .as_ref()
            .filter(|_| !origin.contains("://"))
            .and_then(|_| Path::new(origin).parent().map(Path::to_path_buf));
        let bases: Vec<PathBuf> = doc_dir
            .into_iter()
            .chain(self.attachments_dir.clone())
            .collect();
        let mut last = None;
        for base in &bases {
            match std::fs::canonicalize(base.join(rel)) {
                Ok(real) => {
                    // A first pass on the path; the opened file is checked again.
                    if !allowed.iter().any(|root| real.starts_with(root)) {
                        return Err(escapes(written, &allowed));
                    }
                    return load(real, &allowed, att);
                }
                Err(e) => last = Some((base.join(rel), e)),
            }
        }
        let (path, e) = last.unwrap_or_else(|| {
            (
                rel.to_owned(),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        });
        Err(AttachmentError::Unreadable {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    }
}

/// Opens a file that was inside the allowed folders when checked, and checks the opened file
/// again: a symlink swapped in between the check and the open is not followed (or, for a
/// folder of the path, is seen in the handle's real path), and a FIFO or device does not block.
fn open_checked(path: &Path, allowed: &[PathBuf]) -> Result<std::fs::File, AttachmentError> {
    let shown = path.display().to_string();
    let unreadable = |e: std::io::Error| AttachmentError::Unreadable {
        path: shown.clone(),
        detail: e.to_string(),
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = opts.open(path).map_err(|e| {
        // O_NOFOLLOW refuses a final symlink with ELOOP.
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return escapes(&shown, allowed);
        }
        unreadable(e)
    })?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(AttachmentError::NotAFile(shown));
    }
    let real = opened_path(&file).map_or_else(
        // No /proc: the path, resolved again, must still lead to the very file opened.
        || same_file_at(path, &meta).map_err(unreadable),
        Ok,
    )?;
    if !allowed.iter().any(|root| real.starts_with(root)) {
        return Err(escapes(&shown, allowed));
    }
    Ok(file)
}

/// The real path of an open file, where the system tells it (Linux's `/proc/self/fd`).
fn opened_path(file: &std::fs::File) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

/// `path` canonicalised now, if it is the file `opened` (same device and inode).
fn same_file_at(path: &Path, opened: &std::fs::Metadata) -> std::io::Result<PathBuf> {
    let real = std::fs::canonicalize(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let now = std::fs::metadata(&real)?;
        if (now.dev(), now.ino()) != (opened.dev(), opened.ino()) {
            return Err(std::io::Error::other(
                "the file changed while it was opened",
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = opened;
    Ok(real)
}

fn escapes(path: &str, allowed: &[PathBuf]) -> AttachmentError {
    AttachmentError::Escapes {
        path: path.to_owned(),
        allowed: allowed
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Reads a file that was inside the allowed folders when its path was checked.
fn load(path: PathBuf, allowed: &[PathBuf], att: &Attachment) -> Result<Loaded, AttachmentError> {
    let shown = path.display().to_string();
    let unreadable = |e: std::io::Error| AttachmentError::Unreadable {
        path: shown.clone(),
        detail: e.to_string(),
    };
    let file = open_checked(&path, allowed)?;
    let meta = file.metadata().map_err(unreadable)?;
    let too_large = || AttachmentError::TooLarge {
        path: shown.clone(),
        limit: MAX_BYTES,
    };
    if meta.len() > MAX_BYTES {
        return Err(too_large());
    }
    // The limit holds even for a file that grows while it is read.
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(too_large());
    }
    if att.kind == AttachmentKind::InvoicePdf && !bytes.starts_with(b"%PDF-") {
        return Err(AttachmentError::NotPdf(shown));
    }
    if let Some(want) = &att.sha256 {
        let got = hex::encode(Sha256::digest(&bytes));
        if !got.eq_ignore_ascii_case(want) {
            return Err(AttachmentError::Changed {
                path: shown,
                got,
                want: want.clone(),
            });
        }
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Loaded { path, name, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdf(path: &str) -> Attachment {
        Attachment {
            kind: AttachmentKind::InvoicePdf,
            path: Some(path.to_owned()),
            url: None,
            mime_type: None,
            sha256: None,
        }
    }

    fn setup() -> (tempfile::TempDir, AttachmentRoots, String) {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("pdf")).unwrap();
        std::fs::write(src.join("pdf/a.pdf"), b"%PDF-1.4 a").unwrap();
        std::fs::write(src.join("pdf/not.pdf"), b"hello").unwrap();
        std::fs::write(dir.path().join("secret.pdf"), b"%PDF-secret").unwrap();
        let origin = src.join("doc.json").display().to_string();
        (dir, AttachmentRoots::new(Some(src), None), origin)
    }

    #[test]
    fn reads_a_pdf_inside_the_source_folder() {
        let (_d, roots, origin) = setup();
        let l = roots.read(&origin, &pdf("pdf/a.pdf")).unwrap();
        assert_eq!(l.bytes, b"%PDF-1.4 a");
        assert_eq!(l.name, "a.pdf");
        assert!(roots.read(&origin, &pdf("pdf/../pdf/a.pdf")).is_ok());
    }

    #[test]
    fn refuses_absolute_dotdot_symlink_and_non_pdf() {
        let (d, roots, origin) = setup();
        let abs = d.path().join("secret.pdf").display().to_string();
        assert!(matches!(
            roots.read(&origin, &pdf(&abs)),
            Err(AttachmentError::Absolute(_))
        ));
        assert!(matches!(
            roots.read(&origin, &pdf("../secret.pdf")),
            Err(AttachmentError::Escapes { .. })
        ));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(d.path().join("secret.pdf"), d.path().join("src/l.pdf"))
                .unwrap();
            assert!(matches!(
                roots.read(&origin, &pdf("l.pdf")),
                Err(AttachmentError::Escapes { .. })
            ));
        }
        assert!(matches!(
            roots.read(&origin, &pdf("pdf/not.pdf")),
            Err(AttachmentError::NotPdf(_))
        ));
        assert!(matches!(
            roots.read(&origin, &pdf("pdf")),
            Err(AttachmentError::NotAFile(_))
        ));
    }

    #[test]
    fn attachments_dir_is_a_second_root_and_the_only_one_of_an_http_source() {
        let (d, _, _) = setup();
        let http = AttachmentRoots::new(None, Some(d.path().join("src/pdf")));
        assert!(http.read("https://x/api", &pdf("a.pdf")).is_ok());
        assert!(matches!(
            http.read("https://x/api", &pdf("../../secret.pdf")),
            Err(AttachmentError::Escapes { .. })
        ));
        assert!(matches!(
            AttachmentRoots::default().read("https://x/api", &pdf("a.pdf")),
            Err(AttachmentError::NoFolder(_))
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_symlink_swapped_in_after_the_check_is_not_followed() {
        let (d, _, _) = setup();
        let src = std::fs::canonicalize(d.path().join("src")).unwrap();
        let allowed = vec![src.clone()];
        // As if `pdf/a.pdf` (checked) were replaced by a symlink before the open.
        std::fs::remove_file(src.join("pdf/a.pdf")).unwrap();
        std::os::unix::fs::symlink(d.path().join("secret.pdf"), src.join("pdf/a.pdf")).unwrap();
        assert!(matches!(
            open_checked(&src.join("pdf/a.pdf"), &allowed),
            Err(AttachmentError::Escapes { .. })
        ));
        // As if the folder `pdf` were: the opened file's real path is outside.
        std::fs::remove_dir_all(src.join("pdf")).unwrap();
        std::fs::create_dir(d.path().join("out")).unwrap();
        std::fs::write(d.path().join("out/a.pdf"), b"%PDF-secret").unwrap();
        std::os::unix::fs::symlink(d.path().join("out"), src.join("pdf")).unwrap();
        assert!(matches!(
            open_checked(&src.join("pdf/a.pdf"), &allowed),
            Err(AttachmentError::Escapes { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn without_proc_a_file_replaced_after_the_open_is_refused() {
        let (d, _, _) = setup();
        let path = d.path().join("src/pdf/a.pdf");
        // Kept open, as the reader does: its inode is not reused.
        let file = std::fs::File::open(&path).unwrap();
        let opened = file.metadata().unwrap();
        assert!(same_file_at(&path, &opened).is_ok());
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"%PDF-other").unwrap();
        assert!(same_file_at(&path, &opened).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_not_a_file_and_does_not_block() {
        let (d, roots, origin) = setup();
        let fifo = d.path().join("src/pipe.pdf");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(matches!(
            roots.read(&origin, &pdf("pipe.pdf")),
            Err(AttachmentError::NotAFile(_))
        ));
    }

    #[test]
    fn a_file_over_the_limit_is_refused_before_reading() {
        let (d, roots, origin) = setup();
        let f = std::fs::File::create(d.path().join("src/big.pdf")).unwrap();
        f.set_len(MAX_BYTES + 1).unwrap();
        assert!(matches!(
            roots.read(&origin, &pdf("big.pdf")),
            Err(AttachmentError::TooLarge { .. })
        ));
    }
}
