//! The TOML files an admin edits (`facto.toml`, connectors, mappings): reading them into serde
//! types, and [`ConfigError`], which names the file and the line. Shared by `config`, `mapping`
//! and the targets' own config modules, so none of them imports another for it.

use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration problem, located in its file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// The file at fault.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl ConfigError {
    /// An error about a whole file.
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            line: None,
            message: message.into(),
        }
    }

    /// An error at a line of the file.
    pub fn at(file: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }
}

/// 1-based line number of a byte offset in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Line of the first line of `text` that, trimmed, starts with one of `needles` (a table header
/// or a key), for errors found after parsing.
pub fn find_line(text: &str, needles: &[&str]) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            needles.iter().any(|n| t.starts_with(n))
        })
        .map(|i| i + 1)
}

/// Reads and parses a TOML file into `T`; syntax errors and unknown keys come back with the line.
///
/// # Errors
///
/// The file cannot be read, or its content does not fit `T`.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<(T, String), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path, format!("cannot read the file: {e}")))?;
    let value = parse_toml(path, &text)?;
    Ok((value, text))
}

/// Parses TOML text (see [`load_toml`]).
///
/// # Errors
///
/// The content does not fit `T`; the error carries the line of the offending key.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str::<T>(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        ConfigError::at(path, line, e.message().trim().to_owned())
    })
}
