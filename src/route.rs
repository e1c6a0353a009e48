//! Routing: which e-invoicing platform a document goes to, decided here and nowhere else.
//!
//! Today the only route is Chorus Pro (B2G), taken by the buyers flagged `chorus` in the source.
//! The French reform (SPEC §9) classifies every document instead: B2B through the company's
//! approved platform (PA), after a lookup of the buyer in the directory; B2G to Chorus Pro
//! (directly or through the PA); B2C and international sales to e-reporting, out of scope of
//! e-invoices. That classification replaces [`of`]'s body and adds variants to [`Route`]; the
//! syntax writers (`einvoice::ubl`, `einvoice::cii`) know nothing of routes, and a target
//! declares the route it takes through its `format::Layout`.

use crate::model::Document;

/// A platform a document is routed to.
///
/// The reform adds `Pa` (B2B through the approved platform), and the e-reporting of B2C and
/// international sales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// Chorus Pro, the platform of public buyers (B2G).
    ChorusB2g,
}

impl Route {
    /// Short name used in reports and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::ChorusB2g => "chorus-b2g",
        }
    }
}

/// The route of a document, from its buyer's data; `None` when it goes to no e-invoicing
/// platform (a journal still books it).
pub fn of(doc: &Document) -> Option<Route> {
    doc.buyer.chorus.then_some(Route::ChorusB2g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chorus_flag_routes_to_chorus_pro_and_nothing_else_routes() {
        let mut doc = crate::mapping::tests::worked_invoice();
        doc.buyer.chorus = false;
        assert_eq!(of(&doc), None);
        doc.buyer.chorus = true;
        assert_eq!(of(&doc), Some(Route::ChorusB2g));
    }

    /// Routing is decided in one place: no other source file reads the buyer's `chorus` flag
    /// (tests only set it, to build documents).
    #[test]
    fn only_this_module_reads_the_chorus_flag() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut readers = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("src is readable") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !name.ends_with(".rs") || path.ends_with("route.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("source is readable");
                let code = text.as_str();
                let reads = code.match_indices(".chorus").any(|(i, m)| {
                    let word = |c: char| c.is_alphanumeric() || c == '_';
                    let rest = &code[i + m.len()..];
                    // `buyer.chorus`, not `..chorus` (struct update) nor `.chorus_pro`.
                    let field =
                        code[..i].ends_with(|c| word(c) || c == ')') && !rest.starts_with(word);
                    // Tests set the flag to build documents: that is no read.
                    let after = rest.trim_start();
                    let assigned = after.starts_with('=') && !after.starts_with("==");
                    field && !assigned
                });
                if reads {
                    readers.push(
                        path.strip_prefix(&root)
                            .unwrap_or(&path)
                            .display()
                            .to_string(),
                    );
                }
            }
        }
        assert!(
            readers.is_empty(),
            "the chorus flag is read outside route.rs: {readers:?}"
        );
    }
}
