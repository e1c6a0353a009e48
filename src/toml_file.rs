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

/// 1-based line of the top-level key `key` of `text` (a connector file's), from its span.
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    Spans::new(text).line(&[Step::Key(key)])
}

/// One step of a path into a TOML document: a key, or an index into an array of tables.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// A key of a table.
    Key(&'a str),
    /// An element of an array of tables (`[[job]]`).
    Index(usize),
}

impl<'a> From<&'a str> for Step<'a> {
    fn from(k: &'a str) -> Self {
        Step::Key(k)
    }
}

impl From<usize> for Step<'_> {
    fn from(i: usize) -> Self {
        Step::Index(i)
    }
}

/// The spans of a parsed TOML text: the line of a key or table found by its path, for errors
/// found after deserializing (an error in the second `[[job]]` names the second job's line).
pub struct Spans<'a> {
    text: &'a str,
    doc: Option<toml_edit::ImDocument<&'a str>>,
}

impl<'a> Spans<'a> {
    /// Parses `text` for its spans (a text that does not parse has none).
    pub fn new(text: &'a str) -> Self {
        Spans {
            text,
            doc: toml_edit::ImDocument::parse(text).ok(),
        }
    }

    /// 1-based line of the key at `path` (its key, else its value or table header), or `None`
    /// when the path is not in the text.
    pub fn line(&self, path: &[Step<'_>]) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        // Where the next key is looked up: the last item reached, else `table`.
        let mut table: &dyn toml_edit::TableLike = doc.as_table();
        let mut item: Option<&toml_edit::Item> = None;
        let mut span = None;
        for step in path {
            match *step {
                Step::Key(k) => {
                    let t = match item {
                        Some(i) => i.as_table_like()?,
                        None => table,
                    };
                    let (key, value) = t.get_key_value(k)?;
                    span = key.span().or_else(|| value.span());
                    item = Some(value);
                }
                Step::Index(n) => {
                    let t = item?.as_array_of_tables()?.get(n)?;
                    span = t.span();
                    table = t;
                    item = None;
                }
            }
        }
        span.map(|s| line_of(self.text, s.start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_name_the_line_of_a_key_in_the_nth_array_element() {
        let text = "[a]\nx = 1\n\n[[job]]\nname = \"one\"\n\n[[job]]\nname = \"two\"\nschedule = \"x\"\n\n[tax.\"T 1\"]\nrate = \"1\"\n[t2]\nin = { k = 2 }\n";
        let s = Spans::new(text);
        assert_eq!(s.line(&["a".into(), "x".into()]), Some(2));
        assert_eq!(s.line(&["job".into(), 1.into(), "name".into()]), Some(8));
        assert_eq!(
            s.line(&["job".into(), 1.into(), "schedule".into()]),
            Some(9)
        );
        assert_eq!(s.line(&["job".into(), 1.into()]), Some(7));
        assert_eq!(s.line(&["job".into(), 0.into(), "schedule".into()]), None);
        assert_eq!(s.line(&["tax".into(), "T 1".into()]), Some(11));
        assert_eq!(
            s.line(&["tax".into(), "T 1".into(), "rate".into()]),
            Some(12)
        );
        assert_eq!(s.line(&["t2".into(), "in".into(), "k".into()]), Some(14));
    }
}
