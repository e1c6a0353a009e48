//! The mapping editor's changes to a mapping file's text: an entry's keys set (comments and
//! layout kept, `toml_edit`), an entry removed (its group's heading kept), a rate as typed
//! (decimal comma) written exactly, and the line diff the audit log keeps.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::table_keys;

/// An edit of one entry.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Edit {
    /// Mapping name (file stem under `mappings/`).
    pub mapping: String,
    /// Table (`tax`, `gl.accounts`, `gl.products`, `customers.accounts`).
    pub table: String,
    /// The code (entry key).
    pub code: String,
    /// Its keys; an empty value removes the key.
    pub fields: BTreeMap<String, String>,
    /// The sha256 of the file as the page showed it ([`super::base_of`]): a save refuses when
    /// the file changed since. Absent (API callers): not checked.
    #[serde(default)]
    pub base: Option<String>,
}

/// The text of the file with the edit applied (comments and layout kept).
///
/// # Errors
///
/// An unknown table or key, or a file that is not TOML.
pub fn apply(text: &str, e: &Edit) -> Result<String, String> {
    let keys =
        table_keys(&e.table).ok_or_else(|| format!("table `{}` cannot be edited here", e.table))?;
    if e.code.trim().is_empty() || e.code.contains(['"', '\n']) {
        return Err("the code must be non-empty, on one line, without quotes".into());
    }
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("the file is not valid TOML: {e}"))?;
    let mut table = doc.as_table_mut();
    for part in e.table.split('.') {
        let entry = table.entry(part).or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            toml_edit::Item::Table(t)
        });
        table = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` is not a table in this file"))?;
    }
    let item = table
        .entry(&e.code)
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
    let entry = item
        .as_table_mut()
        .ok_or_else(|| format!("`{}` is not a table", e.code))?;
    for (k, v) in &e.fields {
        if !keys.contains(&k.as_str()) {
            return Err(format!(
                "`{k}` is not a key of [{}] entries; expected one of {}",
                e.table,
                keys.join(", ")
            ));
        }
        if v.trim().is_empty() {
            entry.remove(k);
            continue;
        }
        let new = match (k == "rate", rate(v)) {
            (true, Ok(r)) => r,
            // Not a number: written as typed, so the mapping's check names it with its line.
            _ => v.trim().to_owned(),
        };
        set_keeping_comments(entry, k, &new);
    }
    Ok(doc.to_string())
}

/// Sets `key` to the string `new` in `entry`: nothing is touched when the value is already
/// that, and a changed value keeps the comments around it (a key replaced whole would lose
/// the comment line above it and the one after its value).
fn set_keeping_comments(entry: &mut toml_edit::Table, key: &str, new: &str) {
    match entry.get_mut(key).and_then(toml_edit::Item::as_value_mut) {
        Some(old) if old.as_str() == Some(new) => {}
        Some(old) => {
            let decor = old.decor().clone();
            let mut value = toml_edit::Value::from(new);
            *value.decor_mut() = decor;
            *old = value;
        }
        None => {
            entry.insert(key, toml_edit::value(new));
        }
    }
}

/// A rate as typed (`8,5`, `8.5`, ` 20 `) written the way the mapping files hold it (`8.5`,
/// `20`): the decimal comma is accepted; the value is parsed as a decimal, never a float.
///
/// # Errors
///
/// The text is not a decimal number.
pub fn rate(typed: &str) -> Result<String, String> {
    let t = typed.trim();
    // `rust_decimal` reads `8_5` as 85: only digits, one separator and a sign are a rate.
    if !t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+'))
    {
        return Err(format!("the rate `{t}` is not a number (write 8.5 or 8,5)"));
    }
    let dotted = if t.contains('.') {
        t.to_owned()
    } else {
        t.replacen(',', ".", 1)
    };
    let d = rust_decimal::Decimal::from_str_exact(&dotted)
        .map_err(|_| format!("the rate `{t}` is not a number (write 8.5 or 8,5)"))?;
    Ok(d.normalize().to_string())
}

/// The text of the file without entry `code` of `table` (comments and layout of the rest kept).
///
/// # Errors
///
/// An unknown table, a file that is not TOML, or no such entry.
pub fn remove(text: &str, table: &str, code: &str) -> Result<String, String> {
    table_keys(table).ok_or_else(|| format!("table `{table}` cannot be edited here"))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("the file is not valid TOML: {e}"))?;
    let mut t = doc.as_table_mut();
    for part in table.split('.') {
        t = t
            .get_mut(part)
            .and_then(toml_edit::Item::as_table_mut)
            .ok_or_else(|| format!("no [{table}] in this file"))?;
    }
    let removed = t
        .remove(code)
        .ok_or_else(|| format!("no entry `{code}` in [{table}]"))?;
    // The comment lines above a `[table]` header belong to it in toml_edit. Above the first
    // entry of a group they are the group's heading: they go to the next entry instead of away
    // with it. Above a later entry they are that entry's own, but for a part that a blank line
    // sets apart (a heading again).
    if let Some(removed) = removed.as_table() {
        let prefix = removed
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or("");
        let first = removed.position().is_some_and(|at| {
            t.iter()
                .filter_map(|(_, item)| item.as_table())
                .all(|o| o.position().is_none_or(|p| p > at))
        });
        let heading = if first {
            prefix
        } else {
            prefix.rfind("\n\n").map_or("", |i| &prefix[..=i])
        };
        let heading = heading.to_owned();
        let next = removed.position().and_then(|at| {
            t.iter_mut()
                .filter_map(|(_, item)| item.as_table_mut())
                .filter(|n| n.position().is_some_and(|p| p > at))
                .min_by_key(|n| n.position())
        });
        if let (false, Some(next)) = (heading.trim().is_empty(), next) {
            let heading = heading.as_str();
            let own = next
                .decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or("")
                .to_owned();
            next.decor_mut()
                .set_prefix(format!("{heading}{}", own.trim_start_matches('\n')));
        }
    }
    Ok(doc.to_string())
}

/// A line diff of two texts (removed lines `-`, added lines `+`), for the audit log.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mut out = String::new();
    for l in &a[prefix..a.len() - suffix] {
        let _ = writeln!(out, "- {l}");
    }
    for l in &b[prefix..b.len() - suffix] {
        let _ = writeln!(out, "+ {l}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUPED: &str = "[journal]\ncode = \"VE\"\n\n# Tax codes: the heading.\n[tax.TVA20]\nrate = \"20\"\nlabel = \"TVA\"\n# The Pennylane code.\npennylane_vat_rate = \"FR_200\" # kept\n\n# TVA10's own comment.\n[tax.TVA10]\nrate = \"10\"\n\n[tax.TVA55]\nrate = \"5.5\"\n";

    #[test]
    fn an_edit_in_place_keeps_the_comments_of_the_keys_it_sends_back() {
        let fields: BTreeMap<String, String> = [
            ("rate", "20"),
            ("label", "TVA normale"),
            ("pennylane_vat_rate", "FR_200"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let e = Edit {
            mapping: "m".into(),
            table: "tax".into(),
            code: "TVA20".into(),
            fields,
            base: None,
        };
        let out = apply(GROUPED, &e).unwrap();
        assert!(out.contains("label = \"TVA normale\""), "{out}");
        assert!(
            out.contains("# The Pennylane code.\npennylane_vat_rate = \"FR_200\" # kept"),
            "{out}"
        );
        let mut changed = e.clone();
        changed
            .fields
            .insert("pennylane_vat_rate".into(), "FR_210".into());
        let out = apply(GROUPED, &changed).unwrap();
        assert!(
            out.contains("# The Pennylane code.\npennylane_vat_rate = \"FR_210\" # kept"),
            "{out}"
        );
        assert_eq!(rate("8_5").ok(), None, "not 85");
        assert_eq!(rate("8,5").as_deref(), Ok("8.5"));
    }

    #[test]
    fn deleting_a_groups_first_entry_keeps_its_heading_and_a_later_one_takes_its_own_comment() {
        let out = remove(GROUPED, "tax", "TVA20").unwrap();
        assert!(!out.contains("TVA20"), "{out}");
        assert!(out.contains("# Tax codes: the heading.\n"), "{out}");
        assert!(out.find("# Tax codes") < out.find("[tax.TVA10]"), "{out}");
        let out = remove(GROUPED, "tax", "TVA10").unwrap();
        assert!(!out.contains("TVA10"), "{out}");
        assert!(
            out.contains("# Tax codes: the heading.\n[tax.TVA20]"),
            "{out}"
        );
        assert!(out.contains("[tax.TVA55]"), "{out}");
    }
}
