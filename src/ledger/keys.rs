//! Ledger keys built from names and ids (schema version 3). Each text component is escaped so
//! that it holds no `\0` — `\0` becomes `\x01\x01` and `\x01` becomes `\x01\x02` — and the
//! components are joined by `\0`. So no byte of a document id (a `\0`, a `\n`, anything) can make
//! two keys collide, or make the prefix scan of one job or target reach another's. Ids without
//! those two bytes (all real ones) are stored as they are, in the same order.

const ESC: u8 = 0x01;

/// Appends `s`, escaped, to `out`.
pub(super) fn push(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            0 => out.extend_from_slice(&[ESC, 1]),
            ESC => out.extend_from_slice(&[ESC, 2]),
            b => out.push(b),
        }
    }
}

/// `tag`, then `\0` and each part escaped.
pub(super) fn key(tag: &str, parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    out.extend_from_slice(tag.as_bytes());
    for p in parts {
        out.push(0);
        push(&mut out, p);
    }
    out
}

/// [`key`] followed by `\0`: the prefix of every key that has these parts first.
pub(super) fn prefix(tag: &str, parts: &[&str]) -> Vec<u8> {
    let mut out = key(tag, parts);
    out.push(0);
    out
}

/// Reverses [`push`] for one component; `None` for bytes [`push`] cannot have written.
pub(super) fn unescape(b: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(b.len());
    let mut it = b.iter();
    while let Some(&c) = it.next() {
        match c {
            0 => return None,
            ESC => match it.next() {
                Some(1) => out.push(0),
                Some(2) => out.push(ESC),
                _ => return None,
            },
            c => out.push(c),
        }
    }
    String::from_utf8(out).ok()
}

/// The components of a key after its tag (`rest` starts after `tag\0`).
pub(super) fn split(rest: &[u8]) -> Option<Vec<String>> {
    rest.split(|b| *b == 0).map(unescape).collect()
}

/// One `(job, target, doc)` member of a batch membership page, each part escaped and followed
/// by `\0`.
pub(super) fn push_member(out: &mut Vec<u8>, job: &str, target: &str, doc: &str) {
    for p in [job, target, doc] {
        push(out, p);
        out.push(0);
    }
}

/// The members of a membership page written by [`push_member`].
pub(super) fn members(v: &[u8]) -> Option<Vec<[String; 3]>> {
    let body = v.strip_suffix(&[0])?;
    let parts = split(body)?;
    if parts.len() % 3 != 0 {
        return None;
    }
    Some(
        parts
            .chunks_exact(3)
            .map(|c| [c[0].clone(), c[1].clone(), c[2].clone()])
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_id_breaks_a_key_or_a_prefix() {
        let odd = [
            "a\0b",
            "a\nb",
            "\u{1}",
            "\u{1}\u{1}",
            "",
            "a\u{1}\u{2}",
            "é\0",
        ];
        for id in odd {
            let k = key("r", &["j", "t", id]);
            assert!(k.starts_with(&prefix("r", &["j", "t"])));
            assert_eq!(split(&k[2..]).unwrap(), ["j", "t", id]);
        }
        // Distinct parts, distinct keys; one job's prefix never reaches another job.
        assert_ne!(key("t", &["a\0b", "c"]), key("t", &["a", "b\0c"]));
        assert!(!key("r", &["a\0b", "t", "d"]).starts_with(&prefix("r", &["a"])));
        let mut page = Vec::new();
        push_member(&mut page, "j", "t", "x\n\0y");
        push_member(&mut page, "j", "t", "");
        let m = members(&page).unwrap();
        assert_eq!(m[0], ["j", "t", "x\n\0y"].map(String::from));
        assert_eq!(m[1], ["j", "t", ""].map(String::from));
        assert!(members(b"j\0t\0").is_none());
    }

    #[test]
    fn plain_ids_are_stored_as_they_are() {
        assert_eq!(
            key("r", &["demo", "sales-fec", "F-1"]),
            b"r\0demo\0sales-fec\0F-1"
        );
    }
}
