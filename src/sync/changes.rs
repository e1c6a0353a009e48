//! What a document looked like when it was delivered, and what changed in the source since:
//! the hash of its canonical JSON, the snapshot of its key fields and the diff of two snapshots.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::ledger::{FieldChange, Record};
use crate::model::Document;

/// Feeds serialized bytes straight into the hash (no intermediate buffer).
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// SHA-256 of the canonical JSON of a document.
pub fn source_hash(doc: &Document) -> String {
    let mut w = HashWriter(Sha256::new());
    // Serializing plain data into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut w, doc);
    hex::encode(w.0.finalize())
}

/// Key fields of a document, to explain a change made after delivery.
pub fn snapshot(doc: &Document) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let t = &doc.totals;
    for (k, v) in [
        ("status", doc.status.as_str().to_owned()),
        ("number", doc.number.clone()),
        ("kind", doc.kind.as_str().to_owned()),
        ("issue_date", doc.issue_date.to_string()),
        (
            "due_date",
            doc.due_date.map(|d| d.to_string()).unwrap_or_default(),
        ),
        ("currency", doc.currency.clone()),
        ("buyer.customer_id", doc.customer_id().to_owned()),
        ("buyer.name", doc.buyer.name.clone()),
        ("totals.net", t.net.to_string()),
        ("totals.tax", t.tax.to_string()),
        ("totals.gross", t.gross.to_string()),
        ("totals.paid", t.paid.to_string()),
        ("totals.due", t.due.to_string()),
        ("lines", doc.lines.len().to_string()),
    ] {
        m.insert(k.to_owned(), v);
    }
    for (i, l) in doc.lines.iter().enumerate() {
        m.insert(
            format!("lines[{i}]"),
            format!(
                "{} | {} x {} = {} {}",
                l.description, l.quantity, l.unit_price, l.net_amount, l.tax_code
            ),
        );
    }
    m
}

/// Snapshot fields the record already holds in its own fields; not stored twice.
const CORE: [&str; 6] = [
    "number",
    "kind",
    "issue_date",
    "buyer.customer_id",
    "buyer.name",
    "totals.gross",
];

/// What is stored in the record: the snapshot less the fields the record holds anyway.
pub(super) fn stored_snapshot(doc: &Document) -> BTreeMap<String, String> {
    let mut m = snapshot(doc);
    for k in CORE {
        m.remove(k);
    }
    m
}

/// The snapshot of a delivered record, rebuilt from its fields and its stored snapshot.
fn delivered_view(r: &Record) -> BTreeMap<String, String> {
    let mut m = r.snapshot.clone();
    let core = [
        r.number.clone(),
        r.kind.clone(),
        r.issue_date.map(|d| d.to_string()).unwrap_or_default(),
        r.customer_id.clone(),
        r.customer_name.clone(),
        r.gross.map(|g| g.to_string()).unwrap_or_default(),
    ];
    for (k, v) in CORE.iter().zip(core) {
        m.insert((*k).to_owned(), v);
    }
    m
}

/// What a payment moves: not a change of the document. A payment recorded after delivery is
/// the invoice's life (status 212 reports it to a PA), not a correction.
const PAYMENT_FIELDS: [&str; 2] = ["totals.paid", "totals.due"];

/// What changed in the source since a document was delivered: nothing when the bytes are the
/// same, when only their formatting changed (same key fields), or when only payments did.
pub fn changes_after_delivery(r: &Record, doc: &Document, hash: &str) -> Vec<FieldChange> {
    if r.source_hash == hash {
        return Vec::new();
    }
    let mut changes = diff(&delivered_view(r), &snapshot(doc));
    changes.retain(|c| !PAYMENT_FIELDS.contains(&c.field.as_str()));
    changes
}

fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<FieldChange> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| FieldChange {
            field: k.clone(),
            before: before.get(k).cloned().unwrap_or_default(),
            after: after.get(k).cloned().unwrap_or_default(),
        })
        .collect()
}
