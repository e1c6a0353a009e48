//! Text helpers shared by the writers: label cleaning, ISO-8859-15 encoding with an explicit
//! transliteration table, and amounts written the French way (`1358,25`).

use rust_decimal::{Decimal, RoundingStrategy};
use unicode_normalization::UnicodeNormalization;

use crate::format::Encoding;

/// Whether `c` must never reach a written file: control characters (tab and line breaks
/// included, C1 too), the line and paragraph separators, and the noncharacters U+FFFE, U+FFFF.
pub fn unwritable(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FFFE}' | '\u{FFFF}')
}

/// Replaces tabs, line breaks, `|` and other [`unwritable`] characters by a space, collapses
/// runs of spaces and trims. A stray separator in a label would shift every later column.
pub fn clean_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if unwritable(c) || c == '|' { ' ' } else { c };
        if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Cleans a field of a separated layout: what [`clean_label`] removes, plus the layout's
/// separator and double quotes (importers do not all read quoting), each replaced by a space.
pub fn clean_field(s: &str, sep: char) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c == sep || c == '"' { ' ' } else { c })
        .collect();
    clean_label(&cleaned)
}

/// Left-justifies `s` in exactly `width` characters: cut at the end, padded with spaces.
/// Callers fold the text to a single-byte encoding first, so characters are bytes.
pub fn fit(s: &str, width: usize) -> String {
    let mut out: String = s.chars().take(width).collect();
    let n = out.chars().count();
    out.extend(std::iter::repeat_n(' ', width - n));
    out
}

/// Right-justifies `s` in exactly `width` characters (the caller checked that it fits).
pub fn fit_right(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        return s.chars().skip(n - width).collect();
    }
    let mut out: String = std::iter::repeat_n(' ', width - n).collect();
    out.push_str(s);
    out
}

/// The last `n` characters of `s` (the distinctive end of a document number).
pub fn tail(s: &str, n: usize) -> &str {
    let count = s.chars().count();
    if count <= n {
        return s;
    }
    let skip = count - n;
    let at = s.char_indices().nth(skip).map_or(s.len(), |(i, _)| i);
    &s[at..]
}

/// An entry number written in a field of `width` digits: its last `width` digits.
pub fn seq_field(seq: u64, width: u32) -> String {
    (seq % 10u64.pow(width)).to_string()
}

/// Formats an amount with two decimals (half away from zero) and the given decimal separator.
pub fn amount(d: Decimal, decimal_sep: char) -> String {
    let r = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let s = format!("{r:.2}");
    if decimal_sep == '.' {
        s
    } else {
        s.replace('.', &decimal_sep.to_string())
    }
}

/// The ISO-8859-15 byte of a character, if it has one: Latin-1 but for eight code points.
fn latin9_byte(c: char) -> Option<u8> {
    match c {
        '€' => Some(0xA4),
        'Š' => Some(0xA6),
        'š' => Some(0xA8),
        'Ž' => Some(0xB4),
        'ž' => Some(0xB8),
        'Œ' => Some(0xBC),
        'œ' => Some(0xBD),
        'Ÿ' => Some(0xBE),
        // The Latin-1 signs whose bytes Latin-9 gave to the eight above.
        '¤' | '¦' | '¨' | '´' | '¸' | '¼' | '½' | '¾' => None,
        c if (c as u32) < 0x80 || (0xA0..=0xFF).contains(&(c as u32)) => Some(c as u8),
        _ => None,
    }
}

/// Windows-1252's characters at 0x80–0x9F (typographic signs); the rest is Latin-1.
const CP1252_HIGH: [(char, u8); 27] = [
    ('€', 0x80),
    ('‚', 0x82),
    ('ƒ', 0x83),
    ('„', 0x84),
    ('…', 0x85),
    ('†', 0x86),
    ('‡', 0x87),
    ('ˆ', 0x88),
    ('‰', 0x89),
    ('Š', 0x8A),
    ('‹', 0x8B),
    ('Œ', 0x8C),
    ('Ž', 0x8E),
    ('‘', 0x91),
    ('’', 0x92),
    ('“', 0x93),
    ('”', 0x94),
    ('•', 0x95),
    ('–', 0x96),
    ('—', 0x97),
    ('˜', 0x98),
    ('™', 0x99),
    ('š', 0x9A),
    ('›', 0x9B),
    ('œ', 0x9C),
    ('ž', 0x9E),
    ('Ÿ', 0x9F),
];

/// Latin-9's eight differences from Latin-1.
const LATIN9_DIFF: [(char, u8); 8] = [
    ('€', 0xA4),
    ('Š', 0xA6),
    ('š', 0xA8),
    ('Ž', 0xB4),
    ('ž', 0xB8),
    ('Œ', 0xBC),
    ('œ', 0xBD),
    ('Ÿ', 0xBE),
];

/// The Windows-1252 byte of a character, if it has one.
fn cp1252_byte(c: char) -> Option<u8> {
    let u = c as u32;
    if u < 0x80 || (0xA0..=0xFF).contains(&u) {
        return Some(u as u8);
    }
    CP1252_HIGH.iter().find(|(h, _)| *h == c).map(|(_, b)| *b)
}

/// Decodes bytes of a single-byte encoding (or UTF-8, lossily): what an importer reads.
pub fn decode(bytes: &[u8], enc: Encoding) -> String {
    match enc {
        Encoding::Utf8 | Encoding::Utf8Bom => String::from_utf8_lossy(bytes).into_owned(),
        _ => bytes
            .iter()
            .map(|&b| {
                let table: &[(char, u8)] = match enc {
                    Encoding::Windows1252 if (0x80..0xA0).contains(&b) => &CP1252_HIGH,
                    Encoding::Iso885915 => &LATIN9_DIFF,
                    _ => &[],
                };
                table
                    .iter()
                    .find(|(_, x)| *x == b)
                    .map_or(char::from(b), |(c, _)| *c)
            })
            .collect(),
    }
}

/// The byte of a character in a single-byte encoding; `None` for UTF-8 or when it has none.
fn byte_in(c: char, enc: Encoding) -> Option<u8> {
    match enc {
        Encoding::Iso885915 => latin9_byte(c),
        Encoding::Windows1252 => cp1252_byte(c),
        Encoding::Ascii => c.is_ascii().then_some(c as u8),
        Encoding::Utf8 | Encoding::Utf8Bom => None,
    }
}

/// Transliteration of common characters a single-byte encoding may lack (all ASCII).
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        '‘' | '’' | '‚' | '′' => "'",
        '“' | '”' | '„' | '″' | '«' | '»' => "\"",
        '–' | '—' | '‐' | '−' => "-",
        '…' => "...",
        '\u{A0}' | '\u{202F}' | '\u{2009}' => " ",
        '•' => "*",
        '™' => "TM",
        '€' => "EUR",
        'œ' => "oe",
        'Œ' => "OE",
        'æ' => "ae",
        'Æ' => "AE",
        'ß' => "ss",
        'ø' => "o",
        'Ø' => "O",
        '°' => "o",
        _ => return None,
    })
}

/// What `c` becomes in `enc` when it has no byte there: a transliteration, else its base
/// letters, else `?` (see [`fold`]).
fn fold_missing(c: char, enc: Encoding, out: &mut String) {
    if let Some(t) = transliterate(c) {
        out.push_str(t);
        return;
    }
    let before = out.len();
    out.extend(
        c.to_string()
            .nfkd()
            .filter(|b| byte_in(*b, enc).is_some_and(|b| b >= 0x20)),
    );
    if out.len() == before {
        out.push('?');
    }
}

/// Rewrites text so that every character has a byte in `enc`: characters outside it are
/// transliterated (`’`→`'`, `–`→`-`, in ASCII `œ`→`oe`, `é`→`e`), else decomposed to their base
/// letter, else become `?`. One character then stands for one byte, so fixed-width layouts can
/// cut and pad the result by characters. UTF-8 text is returned unchanged.
pub fn fold(s: &str, enc: Encoding) -> String {
    if matches!(enc, Encoding::Utf8 | Encoding::Utf8Bom) || s.is_ascii() {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if byte_in(c, enc).is_some() {
            out.push(c);
        } else {
            fold_missing(c, enc, &mut out);
        }
    }
    out
}

/// Encodes text into the target encoding, folding what it lacks (see [`fold`]). One pass: runs
/// of ASCII are copied as they are, only the other characters are looked up (every page of a
/// French journal holds some: "TVA collectée").
pub fn encode(s: &str, enc: Encoding) -> Vec<u8> {
    if matches!(enc, Encoding::Utf8 | Encoding::Utf8Bom) {
        return s.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    let mut folded = String::new();
    while !rest.is_empty() {
        let ascii = rest
            .bytes()
            .position(|b| !b.is_ascii())
            .unwrap_or(rest.len());
        out.extend_from_slice(&rest.as_bytes()[..ascii]);
        rest = &rest[ascii..];
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        rest = chars.as_str();
        match byte_in(c, enc) {
            Some(b) => out.push(b),
            None => {
                folded.clear();
                fold_missing(c, enc, &mut folded);
                out.extend(folded.chars().map(|c| byte_in(c, enc).unwrap_or(b'?')));
            }
        }
    }
    out
}

/// Bytes to put before the first line (a BOM where asked for).
pub fn preamble(enc: Encoding) -> &'static [u8] {
    match enc {
        Encoding::Utf8Bom => b"\xEF\xBB\xBF",
        _ => b"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_use_comma_and_round_half_away() {
        assert_eq!(amount(Decimal::new(135825, 2), ','), "1358,25");
        assert_eq!(amount(Decimal::ZERO, ','), "0,00");
        assert_eq!(amount(Decimal::new(1005, 3), ','), "1,01");
        assert_eq!(amount(Decimal::new(-1005, 3), '.'), "-1.01");
    }

    #[test]
    fn latin9_encoding_and_transliteration() {
        assert_eq!(
            encode("TVA collectée", Encoding::Iso885915),
            b"TVA collect\xE9e"
        );
        assert_eq!(
            encode("l’été – 5 €", Encoding::Iso885915),
            b"l'\xE9t\xE9 - 5 \xA4"
        );
        assert_eq!(encode("Čapek", Encoding::Iso885915), b"Capek");
        assert_eq!(encode("日", Encoding::Iso885915), b"?");
    }

    #[test]
    fn latin9_ascii_is_copied_as_is() {
        let s = "VE\tJournal des ventes\t411000\t1358,25\r\n";
        assert_eq!(encode(s, Encoding::Iso885915), s.as_bytes());
        assert_eq!(encode("", Encoding::Iso885915), b"");
    }

    #[test]
    fn latin9_accented_letters_between_ascii_runs() {
        assert_eq!(
            encode("é TVA collectée à 20 % ÿ", Encoding::Iso885915),
            b"\xE9 TVA collect\xE9e \xE0 20 % \xFF"
        );
        assert_eq!(
            encode("ÀÉÈÇÔÛ", Encoding::Iso885915),
            b"\xC0\xC9\xC8\xC7\xD4\xDB"
        );
    }

    #[test]
    fn latin9_the_eight_characters_it_changed_from_latin1() {
        assert_eq!(
            encode("€ Š š Ž ž Œ œ Ÿ", Encoding::Iso885915),
            b"\xA4 \xA6 \xA8 \xB4 \xB8 \xBC \xBD \xBE"
        );
        // The Latin-1 signs of those bytes are not in Latin-9: folded, never their old byte.
        let signs = "¤¦¨´¸¼½¾";
        let bytes = encode(signs, Encoding::Iso885915);
        assert_eq!(bytes, fold(signs, Encoding::Iso885915).as_bytes());
        assert!(bytes.iter().all(u8::is_ascii), "{bytes:?}");
        // Every byte but the C1 controls decodes to a character that encodes back to it.
        for b in (0..=255u8).filter(|b| !(0x80..0xA0).contains(b)) {
            let c = decode(&[b], Encoding::Iso885915);
            assert_eq!(encode(&c, Encoding::Iso885915), [b], "{b:#x} {c}");
        }
    }

    #[test]
    fn latin9_unrepresentable_characters_fold_as_before() {
        assert_eq!(encode("Łódź Čapek", Encoding::Iso885915), b"?\xF3dz Capek");
        assert_eq!(encode("a日b", Encoding::Iso885915), b"a?b");
        assert_eq!(encode("l’œuvre…", Encoding::Iso885915), b"l'\xBDuvre...");
        assert_eq!(encode("a\u{202F}b", Encoding::Iso885915), b"a b");
    }

    #[test]
    fn windows_1252_keeps_typographic_signs() {
        assert_eq!(
            encode("l’œuvre – 5 €…", Encoding::Windows1252),
            b"l\x92\x9Cuvre \x96 5 \x80\x85"
        );
        assert_eq!(
            encode("TVA collectée", Encoding::Windows1252),
            b"TVA collect\xE9e"
        );
    }

    #[test]
    fn decoding_reverses_encoding() {
        for enc in [Encoding::Iso885915, Encoding::Windows1252] {
            let s = "Œuvre à 5 € – l’été";
            let folded = fold(s, enc);
            assert_eq!(decode(&encode(s, enc), enc), folded);
        }
    }

    #[test]
    fn ascii_folding_keeps_one_byte_per_character() {
        let folded = fold("Société Œuvre à 5 € – Müller", Encoding::Ascii);
        assert_eq!(folded, "Societe OEuvre a 5 EUR - Muller");
        assert_eq!(encode("Société", Encoding::Ascii), b"Societe");
        assert_eq!(fold("日本", Encoding::Ascii), "??");
    }

    #[test]
    fn widths_cut_and_pad() {
        assert_eq!(fit("F2024-0001 Dupont SARL", 20), "F2024-0001 Dupont SA");
        assert_eq!(fit("VE", 3), "VE ");
        assert_eq!(fit_right("8,25", 6), "  8,25");
        assert_eq!(tail("FAC-2026-000123", 10), "026-000123");
        assert_eq!(tail("é1", 5), "é1");
        assert_eq!(seq_field(1_234_567, 5), "34567");
        assert_eq!(clean_field("a;b\"c\td", ';'), "a b c d");
    }

    #[test]
    fn labels_lose_separators_and_breaks() {
        assert_eq!(clean_label(" a\tb|c\r\nd "), "a b c d");
        assert_eq!(
            clean_label("a\u{1}b\u{1F}c\u{FFFE}d\u{FFFF}\u{85}e"),
            "a b c d e"
        );
    }
}
