//! The module layering, checked on the source text: no import cycle between the top-level
//! modules of `src/`, and no module on the data path (`source → mapping → checks → ledger →
//! targets`) imports one after it. Test code is not read (tests may reach anywhere), as
//! `imports.py` does: files named `tests.rs`, `*_tests.rs`, `conformance*`, in a `tests` folder,
//! and everything after a file's first `#[cfg(test)]`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The data path, in the order data flows: a module never imports one after it.
const DATA_PATH: [&str; 5] = ["source", "mapping", "checks", "ledger", "targets"];

/// `from → to → files of `from` that name `crate::to`.
type Imports = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn is_test_file(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || name.contains("conformance")
        || rel.split('/').any(|part| part == "tests")
}

/// Every `crate::x` a top-level module's non-test code names, `x` being another top-level module.
fn imports(src: &Path) -> Imports {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    let mut out = Imports::new();
    for path in files {
        let rel = path
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let top = rel.split('/').next().unwrap().trim_end_matches(".rs");
        if top == "lib" || top == "main" || is_test_file(&rel) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap();
        for (i, _) in text.match_indices("crate::") {
            // `crate::` inside a longer name (`facto_crate::`) is not a path of this crate.
            let before = text[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &text[i + "crate::".len()..];
            let to: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            let is_module = src.join(format!("{to}.rs")).exists() || src.join(&to).is_dir();
            if to.is_empty() || to == top || !is_module {
                continue;
            }
            out.entry(top.to_owned())
                .or_default()
                .entry(to)
                .or_default()
                .insert(rel.clone());
        }
    }
    out
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(edges: &Imports) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a Imports,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flat_map(|m| m.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    comp.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.found.push(comp);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

/// The shortest cycle inside `comp`, as the modules met (the first one again at the end).
fn shortest_cycle(edges: &Imports, comp: &[String]) -> Vec<String> {
    let next = |v: &str| -> Vec<String> {
        edges
            .get(v)
            .into_iter()
            .flat_map(|m| m.keys())
            .filter(|w| comp.contains(w))
            .cloned()
            .collect()
    };
    let mut best: Vec<String> = Vec::new();
    for start in comp {
        // Breadth first from `start` back to it.
        let mut parent: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        'search: while let Some(v) = queue.pop_front() {
            for w in next(&v) {
                if &w == start {
                    let mut path = vec![start.clone(), v.clone()];
                    let mut at = v.clone();
                    while let Some(p) = parent.get(&at) {
                        path.push(p.clone());
                        at = p.clone();
                    }
                    path.reverse();
                    if best.is_empty() || path.len() < best.len() {
                        best = path;
                    }
                    break 'search;
                }
                if w != *start && !parent.contains_key(&w) {
                    parent.insert(w.clone(), v.clone());
                    queue.push_back(w);
                }
            }
        }
    }
    best
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let edges = imports(&src());
    let mut offending = Vec::new();
    for comp in cycles(&edges) {
        let cycle = shortest_cycle(&edges, &comp);
        offending.push(format!("shortest cycle: {}", cycle.join(" -> ")));
        for pair in cycle.windows(2) {
            let files: Vec<_> = edges[&pair[0]][&pair[1]]
                .iter()
                .map(String::as_str)
                .collect();
            offending.push(format!(
                "  {} -> {} ({})",
                pair[0],
                pair[1],
                files.join(", ")
            ));
        }
        offending.push(format!("every import inside {{{}}}:", comp.join(", ")));
        // Every import inside the cycle, with the files that make it.
        for a in &comp {
            for (b, files) in &edges[a] {
                if comp.contains(b) {
                    let files: Vec<_> = files.iter().map(String::as_str).collect();
                    offending.push(format!("  {a} -> {b} ({})", files.join(", ")));
                }
            }
        }
    }
    assert!(
        offending.is_empty(),
        "import cycle between top-level modules; break one of these imports:\n{}",
        offending.join("\n")
    );
}

#[test]
fn no_upward_import_on_the_data_path() {
    let edges = imports(&src());
    let mut offending = Vec::new();
    for (i, a) in DATA_PATH.iter().enumerate() {
        for b in &DATA_PATH[i + 1..] {
            if let Some(files) = edges.get(*a).and_then(|m| m.get(*b)) {
                let files: Vec<_> = files.iter().map(String::as_str).collect();
                offending.push(format!("{a} imports {b} ({})", files.join(", ")));
            }
        }
    }
    assert!(
        offending.is_empty(),
        "upward import on the data path {}:\n{}",
        DATA_PATH.join(" → "),
        offending.join("\n")
    );
}

#[test]
fn the_reader_sees_imports() {
    // The checks above pass vacuously if nothing is read: a few imports that must be seen.
    let edges = imports(&src());
    for (a, b) in [
        ("checks", "mapping"),
        ("config", "targets"),
        ("sync", "ledger"),
    ] {
        assert!(
            edges.get(a).is_some_and(|m| m.contains_key(b)),
            "{a} -> {b} not seen"
        );
    }
}
