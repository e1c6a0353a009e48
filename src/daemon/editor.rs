//! The mapping editor served by the daemon: a plain HTML page listing each mapping file's
//! entries and, beside them, the codes that keep documents held back, with counts; an edit is
//! checked on the spot (the whole file is parsed again with the change), shows which held
//! documents it would release, and is saved atomically into the TOML file keeping its comments
//! and layout (`toml_edit`). Every saved change goes to the ledger's audit log with its diff and
//! who made it. Saves are made one at a time, and one made on a file changed since its page was
//! loaded (the page's `base`, the file's sha256) is refused, so no save is lost.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use crate::checks::prepare;
use crate::config::{Config, MAPPING_KEYS};
use crate::ledger::{Ledger, RecordFilter, State};
use crate::mapping::keys::KeyTable;
use crate::mapping::{unmapped_codes, Mapping, GL_FIELDS, TAX_FIELDS};
use crate::model::Document;

mod save;
mod toml_text;
pub use save::{base_of, delete_as, save, save_as, SaveError, WHO_EDITOR};
pub use toml_text::{apply, diff, rate, remove, Edit};

/// The tables an admin may edit.
pub(super) const TABLES: [&str; 5] = [
    "tax",
    "gl.accounts",
    "gl.products",
    "customers.accounts",
    "suppliers.accounts",
];

/// The keys each entry of `table` takes: its own, then those the targets declare for it.
pub(super) fn table_keys(table: &str) -> Option<Vec<&'static str>> {
    let (own, declared): (&[&'static str], Option<KeyTable>) = match table {
        "tax" => (&TAX_FIELDS, Some(KeyTable::Tax)),
        "gl.accounts" | "gl.products" => (&GL_FIELDS, Some(KeyTable::Gl)),
        "customers.accounts" | "suppliers.accounts" => {
            (&["aux", "label", "collective_account", "gl"], None)
        }
        _ => return None,
    };
    let declared = declared
        .into_iter()
        .flat_map(|t| MAPPING_KEYS.of_table(t))
        .map(|k| k.name);
    Some(own.iter().copied().chain(declared).collect())
}

/// Columns shown in the tables, when the table has them: the common keys, then the declared ones.
pub(super) fn columns() -> Vec<&'static str> {
    ["rate", "category", "account", "aux", "label"]
        .into_iter()
        .chain(MAPPING_KEYS.all().map(|k| k.name))
        .collect()
}

/// The inputs of the edit form: the columns, then every other key a table takes.
fn form_inputs() -> Vec<&'static str> {
    let mut inputs = columns();
    for t in TABLES {
        for k in table_keys(t).unwrap_or_default() {
            if !inputs.contains(&k) {
                inputs.push(k);
            }
        }
    }
    inputs
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The numbers of `docs` that `current` lets through and `new` would hold back: what a change
/// of the mapping (a deletion) would hold back.
pub fn would_hold(docs: &[Document], current: &Mapping, new: &Mapping) -> Vec<String> {
    docs.iter()
        .filter(|d| prepare(d, current).is_ok() && prepare(d, new).is_err())
        .map(|d| d.number.clone())
        .collect()
}

/// A Xero code the organisation does not have, by the last preflight of a Xero target of a job
/// using this mapping.
fn unknown_target_code(cfg: &Config, ledger: &dyn Ledger, e: &Edit) -> Option<String> {
    for j in cfg.jobs.iter().filter(|j| j.mapping == e.mapping) {
        for t in &j.targets {
            if !matches!(
                cfg.connectors.get(t),
                Some(crate::config::Connector::Xero(_))
            ) {
                continue;
            }
            let Ok(Some(seen)) = ledger.value(&format!("xero-preflight\0{t}")) else {
                continue;
            };
            for (key, list) in [
                ("xero_tax_type", "tax_types"),
                ("xero_account_code", "accounts"),
            ] {
                if let Some(v) = e.fields.get(key).filter(|v| !v.trim().is_empty()) {
                    let known = seen[list]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(v.trim())));
                    if !known {
                        return Some(format!(
                            "{key} `{v}` is not active in the Xero organisation of target `{t}` (last read {})",
                            seen["read_at"].as_str().unwrap_or("?")
                        ));
                    }
                }
            }
        }
    }
    None
}

/// The held documents of the jobs using `mapping`, as the ledger keeps them, once each.
pub(super) fn held_documents(cfg: &Config, ledger: &dyn Ledger, mapping: &str) -> Vec<Document> {
    let mut seen = std::collections::BTreeSet::new();
    let mut docs = Vec::new();
    for j in cfg.jobs.iter().filter(|j| j.mapping == mapping) {
        let Ok(held) = ledger.list(&RecordFilter {
            job: Some(j.name.clone()),
            target: None,
            state: Some(State::Held),
        }) else {
            continue;
        };
        for mut r in held {
            if let Some(d) = r.take_held_doc() {
                if seen.insert(d.id.clone()) {
                    docs.push(d);
                }
            }
        }
    }
    docs
}

/// The declared keys an entry sets, by name.
fn set_keys(
    table: KeyTable,
    set: &BTreeMap<String, toml::Value>,
) -> impl Iterator<Item = (&'static str, String)> + '_ {
    MAPPING_KEYS.of_table(table).map(|k| {
        let v = set
            .get(k.name)
            .and_then(toml::Value::as_str)
            .unwrap_or_default();
        (k.name, v.to_owned())
    })
}

/// Checks an edit: the file as it would be, the errors with their line, and the held documents
/// it would release.
pub fn preview(cfg: &Config, ledger: &dyn Ledger, e: &Edit) -> Value {
    let path = cfg.mappings_dir.join(format!("{}.toml", e.mapping));
    let Some(current) = cfg.mappings.get(&e.mapping) else {
        return json!({"ok": false, "error": format!("no mapping `{}` in use", e.mapping)});
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return json!({"ok": false, "error": format!("cannot read {}", path.display())});
    };
    let new_text = match apply(&text, e) {
        Ok(t) => t,
        Err(m) => return json!({"ok": false, "error": m}),
    };
    let new = match Mapping::from_text(&path, &new_text, MAPPING_KEYS) {
        Ok(m) => m,
        Err(err) => return json!({"ok": false, "error": err.to_string()}),
    };
    if let Some(err) = unknown_target_code(cfg, ledger, e) {
        return json!({"ok": false, "error": err});
    }
    let released: Vec<String> = held_documents(cfg, ledger, &e.mapping)
        .iter()
        .filter(|d| prepare(d, current).is_err() && prepare(d, &new).is_ok())
        .map(|d| d.number.clone())
        .collect();
    json!({"ok": true, "releases": released, "diff": diff(&text, &new_text)})
}

/// The deletion of one entry.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Removal {
    /// Mapping name (file stem under `mappings/`).
    pub mapping: String,
    /// Table (`tax`, `gl.accounts`, `gl.products`, `customers.accounts`).
    pub table: String,
    /// The code (entry key).
    pub code: String,
    /// Whether the user confirmed, having seen what it would hold back.
    #[serde(default)]
    pub confirm: bool,
    /// The sha256 of the file as the page showed it, as [`Edit::base`].
    #[serde(default)]
    pub base: Option<String>,
}

/// Checks a deletion as [`preview`] checks an edit: the file without the entry must still be
/// a valid mapping; `docs` (the documents of the jobs using it) that the mapping lets through
/// and the file without the entry would hold back are listed under `holds`.
pub fn check_removal(cfg: &Config, r: &Removal, docs: &[Document]) -> Value {
    let path = cfg.mappings_dir.join(format!("{}.toml", r.mapping));
    let Some(current) = cfg.mappings.get(&r.mapping) else {
        return json!({"ok": false, "error": format!("no mapping `{}` in use", r.mapping)});
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return json!({"ok": false, "error": format!("cannot read {}", path.display())});
    };
    let new_text = match remove(&text, &r.table, &r.code) {
        Ok(t) => t,
        Err(m) => return json!({"ok": false, "error": m}),
    };
    let new = match Mapping::from_text(&path, &new_text, MAPPING_KEYS) {
        Ok(m) => m,
        Err(err) => return json!({"ok": false, "error": err.to_string()}),
    };
    json!({"ok": true, "holds": would_hold(docs, current, &new), "diff": diff(&text, &new_text)})
}

/// `path` relative to the project folder, for messages and the audit log.
pub(super) fn display(path: &Path, cfg: &Config) -> String {
    path.strip_prefix(&cfg.base_dir)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The entries of `table` in `m`, each with its values by key, as the pages show them.
pub(super) fn entries(m: &Mapping, table: &str) -> Vec<(String, BTreeMap<&'static str, String>)> {
    match table {
        "tax" => m
            .tax
            .iter()
            .map(|(c, t)| {
                let mut f = BTreeMap::new();
                f.insert("rate", t.rate.normalize().to_string());
                f.insert("category", format!("{:?}", t.category));
                f.insert("account", t.account.clone().unwrap_or_default());
                f.insert("label", t.label.clone().unwrap_or_default());
                f.extend(set_keys(KeyTable::Tax, &t.keys));
                (c.clone(), f)
            })
            .collect(),
        "gl.accounts" | "gl.products" => {
            let src = if table == "gl.accounts" {
                &m.gl.accounts
            } else {
                &m.gl.products
            };
            src.iter()
                .map(|(c, a)| {
                    let mut f = BTreeMap::new();
                    f.insert("account", a.account.clone());
                    f.insert("label", a.label.clone());
                    f.extend(set_keys(KeyTable::Gl, &a.keys));
                    (c.clone(), f)
                })
                .collect()
        }
        // The parties of the mapping's side: customers in a sales mapping, suppliers in a
        // purchases one (the other table is empty).
        t if t.strip_suffix(".accounts") == Some(m.journal.side.parties()) => m
            .customers
            .accounts
            .iter()
            .map(|(c, a)| {
                let mut f = BTreeMap::new();
                f.insert("aux", a.aux.clone());
                f.insert("label", a.label.clone().unwrap_or_default());
                if let Some(g) = &a.gl {
                    f.insert("gl", g.clone());
                }
                (c.clone(), f)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The editor page.
pub fn page(cfg: &Config, ledger: &dyn Ledger) -> String {
    let mut h = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>facto — mappings</title>\
         <style>body{font:14px sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:.5em 0 1.5em}\
         td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}.gap{background:#fff4e0}\
         pre{background:#f4f4f4;padding:.5em}form input{width:9em}</style></head><body>\
         <h1>Mappings</h1><p>Edits are checked before they are saved; held documents are checked again at the next pass.</p>",
    );
    let mut names: Vec<&String> = cfg.mappings.keys().collect();
    names.sort();
    for name in names {
        let m = &cfg.mappings[name];
        let _ = write!(
            h,
            "<section data-mapping=\"{0}\"><h2>{0} <small>({1})</small></h2>",
            esc(name),
            esc(&display(&m.path, cfg))
        );
        // What keeps documents held back: codes with no mapping, with counts.
        let mut gaps: BTreeMap<(&'static str, String), (u64, Vec<String>)> = BTreeMap::new();
        for d in held_documents(cfg, ledger, name) {
            for (table, code) in unmapped_codes(&d, m) {
                let g = gaps.entry((table, code)).or_default();
                g.0 += 1;
                if g.1.len() < 5 {
                    g.1.push(d.number.clone());
                }
            }
        }
        h.push_str("<h3>Held back for lack of a mapping</h3>");
        if gaps.is_empty() {
            h.push_str("<p id=\"no-gaps\">None.</p>");
        } else {
            h.push_str("<table class=\"gap\"><tr><th>table</th><th>code</th><th>documents</th><th>examples</th></tr>");
            for ((table, code), (n, ex)) in &gaps {
                let _ = write!(
                    h,
                    "<tr data-gap=\"{t}:{c}\"><td>{t}</td><td>{c}</td><td>{n}</td><td>{e}</td></tr>",
                    t = esc(table),
                    c = esc(code),
                    e = esc(&ex.join(", "))
                );
            }
            h.push_str("</table>");
        }
        let columns = columns();
        for table in TABLES {
            let keys = table_keys(table).unwrap_or_default();
            let entries = entries(m, table);
            let _ = write!(h, "<h3>[{}]</h3><table><tr><th>code</th>", esc(table));
            for &k in &columns {
                if keys.contains(&k) {
                    let _ = write!(h, "<th>{k}</th>");
                }
            }
            h.push_str("</tr>");
            for (code, f) in &entries {
                let _ = write!(h, "<tr><td>{}</td>", esc(code));
                for &k in &columns {
                    if keys.contains(&k) {
                        let _ = write!(h, "<td>{}</td>", esc(f.get(k).map_or("", String::as_str)));
                    }
                }
                h.push_str("</tr>");
            }
            h.push_str("</table>");
        }
        let options: String = TABLES
            .iter()
            .map(|t| format!("<option>{t}</option>"))
            .collect();
        let inputs: String = std::iter::once("code")
            .chain(form_inputs())
            .map(|k| format!("<input name=\"{k}\" placeholder=\"{k}\"> "))
            .collect();
        let _ = write!(
            h,
            "<h3>Add or change an entry</h3><form id=\"edit-{0}\" data-mapping=\"{0}\" data-base=\"{1}\" onsubmit=\"return false\">\
             <select name=\"table\">{options}</select>{inputs}\
             <button type=\"button\" name=\"check\" onclick=\"send(this.form,'preview')\">Check</button>\
             <button type=\"button\" name=\"save\" onclick=\"send(this.form,'save')\">Save</button></form>\
             <pre class=\"result\" id=\"result-{0}\"></pre></section>",
            esc(name),
            std::fs::read_to_string(&m.path).map_or_else(|_| String::new(), |t| base_of(&t))
        );
    }
    h.push_str("<h2>Changes</h2><ul id=\"audit\">");
    if let Ok(trail) = ledger.audit_trail() {
        for a in trail
            .iter()
            .rev()
            .filter(|a| a.action == "mapping-edit")
            .take(50)
        {
            let _ = write!(
                h,
                "<li><b>{}</b><pre>{}</pre></li>",
                a.at.format("%Y-%m-%d %H:%M:%S"),
                esc(&a.detail)
            );
        }
    }
    h.push_str("</ul>");
    // The keys each table takes, as the server checks them (the list once drifted from it).
    let table_keys: BTreeMap<&str, Vec<&str>> = TABLES
        .iter()
        .map(|t| (*t, table_keys(t).unwrap_or_default()))
        .collect();
    let _ = write!(
        h,
        "<script>const tableKeys={};",
        json!(table_keys).to_string().replace("</", "<\\/")
    );
    h.push_str(
        "async function send(f,what){const fields={};const keys=tableKeys[f.elements.table.value]||[];\
         for(const k of keys){const v=f.elements[k].value;if(v)fields[k]=v}\
         const body={mapping:f.dataset.mapping,table:f.elements.table.value,code:f.elements.code.value,fields,base:f.dataset.base||undefined};\
         const r=await fetch('/api/mapping/'+what,{method:'POST',headers:{'Content-Type':'application/json','X-Facto-Editor':'1'},body:JSON.stringify(body)});\
         const j=await r.json();const out=document.getElementById('result-'+f.dataset.mapping);\
         if(j.error){out.textContent='Refused: '+j.error;out.dataset.state='error';return}\
         out.textContent=(j.warning?'!! '+j.warning+'\\n':'')+(what==='save'?'Saved. ':'Checks. ')+'Would release: '+((j.releases||[]).join(', ')||'nothing')+'\\n'+(j.diff||'');\
         out.dataset.state=what==='save'?'saved':'checked';if(what==='save')setTimeout(()=>location.reload(),300)}</script></body></html>",
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::sled::SledLedger;

    pub(super) fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            let dest = to.join(p.file_name().unwrap());
            if p.is_dir() {
                copy(&p, &dest);
            } else {
                std::fs::copy(&p, &dest).unwrap();
            }
        }
    }

    #[test]
    fn edits_keep_comments_and_target_codes_are_checked() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(repo.join("facto.toml"), dir.path().join("facto.toml")).unwrap();
        for d in ["connectors", "mappings", "examples"] {
            copy(&repo.join(d), &dir.path().join(d));
        }
        let toml = std::fs::read_to_string(dir.path().join("facto.toml"))
            .unwrap()
            .replace("\"sales-csv\"]", "\"sales-csv\", \"xero\"]");
        std::fs::write(dir.path().join("facto.toml"), toml).unwrap();
        let cfg = Config::load(&dir.path().join("facto.toml"), None).unwrap();
        let ledger = SledLedger::open(&cfg.data_dir).unwrap();
        let edit = |code: &str| Edit {
            mapping: "pcg-demo".into(),
            table: "tax".into(),
            code: "TVA20".into(),
            fields: [("xero_tax_type".to_owned(), code.to_owned())]
                .into_iter()
                .collect(),
            base: None,
        };
        // No preflight yet: nothing to check against.
        assert_eq!(preview(&cfg, &ledger, &edit("ANY"))["ok"], true);
        ledger
            .put_value(
                "xero-preflight\0xero",
                &json!({"read_at": "2026-11-24T00:00:00Z", "accounts": ["706100"], "tax_types": ["OUTPUT2"]}),
            )
            .unwrap();
        let refused = preview(&cfg, &ledger, &edit("NOPE"));
        assert_eq!(refused["ok"], false);
        assert!(
            refused["error"].as_str().unwrap().contains("NOPE"),
            "{refused}"
        );
        let ok = preview(&cfg, &ledger, &edit("OUTPUT2"));
        assert_eq!(ok["ok"], true, "{ok}");
        // Pennylane's codes are checked against Pennylane's list and the rate.
        let pennylane = |code: &str| Edit {
            fields: [("pennylane_vat_rate".to_owned(), code.to_owned())]
                .into_iter()
                .collect(),
            ..edit("OUTPUT2")
        };
        let refused = preview(&cfg, &ledger, &pennylane("FR_20"));
        assert!(
            refused["error"]
                .as_str()
                .unwrap()
                .contains("write `FR_200`"),
            "{refused}"
        );
        assert_eq!(preview(&cfg, &ledger, &pennylane("FR_200"))["ok"], true);
        assert!(ok["diff"]
            .as_str()
            .unwrap()
            .contains("+ xero_tax_type = \"OUTPUT2\""));
        // The file keeps its comments and the entry its other keys.
        let text = std::fs::read_to_string(dir.path().join("mappings/pcg-demo.toml")).unwrap();
        let applied = apply(&text, &edit("OUTPUT2")).unwrap();
        assert!(applied.contains("# Mapping of the demo invoicing application"));
        assert!(
            applied.contains("label = \"TVA collectée 20%\"\nxero_tax_type = \"OUTPUT2\""),
            "{applied}"
        );
        assert!(apply(
            &text,
            &Edit {
                table: "journal".into(),
                ..edit("X")
            }
        )
        .is_err());
    }

    #[test]
    fn the_page_offers_every_key_the_server_takes() {
        // The form's inputs and its script's key lists once drifted from the keys the server
        // accepts (exemption_reason, exemption_code, collective_account were missing).
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let cfg = Config::load(&repo.join("facto.toml"), None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ledger = SledLedger::open(dir.path()).unwrap();
        let h = page(&cfg, &ledger);
        for t in TABLES {
            let keys = table_keys(t).unwrap();
            for k in &keys {
                assert!(h.contains(&format!("<input name=\"{k}\"")), "{t}: {k}");
            }
            assert!(
                h.contains(
                    &json!({ t: keys }).to_string()[1..]
                        .trim_end_matches('}')
                        .to_owned()
                ),
                "{t}"
            );
        }
        assert!(table_keys("tax").unwrap().contains(&"pennylane_vat_rate"));
        assert!(table_keys("gl.products")
            .unwrap()
            .contains(&"xero_account_code"));
        assert!(h.contains("<th>xero_tax_type</th>"));
    }

    #[test]
    fn a_supplier_is_added_with_its_usual_account_in_a_purchases_mapping() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = repo.join("mappings/pcg-achats.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let edit = Edit {
            mapping: "pcg-achats".into(),
            table: "suppliers.accounts".into(),
            code: "443061841".into(),
            fields: [
                ("aux", "FNOUV"),
                ("label", "Nouveau fournisseur"),
                ("gl", "FOURNITURES"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            base: None,
        };
        let new = apply(&text, &edit).unwrap();
        assert!(new.starts_with("# Purchases"), "comments kept");
        let m = Mapping::from_text(&path, &new, crate::config::MAPPING_KEYS).unwrap();
        let rows = entries(&m, "suppliers.accounts");
        let added = rows.iter().find(|(c, _)| c == "443061841").unwrap();
        assert_eq!(added.1["gl"], "FOURNITURES");
        assert!(
            entries(&m, "customers.accounts").is_empty(),
            "a purchases mapping has no customers"
        );
        // A usual account that is no [gl.accounts] code is refused by the mapping's checks.
        let mut bad = edit.clone();
        bad.fields.insert("gl".into(), "NOPE".into());
        let e = Mapping::from_text(
            &path,
            &apply(&text, &bad).unwrap(),
            crate::config::MAPPING_KEYS,
        )
        .unwrap_err();
        assert!(e.to_string().contains("gl `NOPE`"), "{e}");
    }
}
