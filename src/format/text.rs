//! Text helpers shared by the writers: label cleaning, ISO-8859-15 encoding with an explicit
//! transliteration table, and amounts written the French way (`1358,25`).

use rust_decimal::{Decimal, RoundingStrategy};
use unicode_normalization::UnicodeNormalization;

use crate::config::Encoding;

/// Replaces tabs, line breaks, `|` and other control characters by a space, and trims.
/// A stray separator in a label would shift every later column of the line.
pub fn clean_label(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_control() || c == '|' || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect();
    cleaned.trim().to_owned()
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

fn latin9_byte(c: char) -> Option<u8> {
    let u = c as u32;
    match c {
        '€' => Some(0xA4),
        'Š' => Some(0xA6),
        'š' => Some(0xA8),
        'Ž' => Some(0xB4),
        'ž' => Some(0xB8),
        'Œ' => Some(0xBC),
        'œ' => Some(0xBD),
        'Ÿ' => Some(0xBE),
        _ if u < 0x80 => Some(u as u8),
        _ if (0xA0..=0xFF).contains(&u)
            && !matches!(u, 0xA4 | 0xA6 | 0xA8 | 0xB4 | 0xB8 | 0xBC | 0xBD | 0xBE) =>
        {
            Some(u as u8)
        }
        _ => None,
    }
}

/// Transliteration of common characters outside Latin-9.
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        '‘' | '’' | '‚' | '′' => "'",
        '“' | '”' | '„' | '″' => "\"",
        '–' | '—' | '‐' | '−' => "-",
        '…' => "...",
        '\u{202F}' | '\u{2009}' => " ",
        '•' => "*",
        '™' => "TM",
        _ => return None,
    })
}

/// Encodes text into the target encoding. For ISO-8859-15, characters outside it are
/// transliterated (`’`→`'`, `–`→`-`), then decomposed to their base letter, else become `?`.
pub fn encode(s: &str, enc: Encoding) -> Vec<u8> {
    match enc {
        Encoding::Utf8 | Encoding::Utf8Bom => s.as_bytes().to_vec(),
        Encoding::Iso885915 if s.is_ascii() => s.as_bytes().to_vec(),
        Encoding::Iso885915 => {
            let mut out = Vec::with_capacity(s.len());
            for c in s.chars() {
                if let Some(b) = latin9_byte(c) {
                    out.push(b);
                } else if let Some(t) = transliterate(c) {
                    out.extend_from_slice(t.as_bytes());
                } else {
                    let base: Vec<u8> = c
                        .to_string()
                        .nfkd()
                        .filter_map(latin9_byte)
                        .filter(|b| *b >= 0x20)
                        .collect();
                    if base.is_empty() {
                        out.push(b'?');
                    } else {
                        out.extend(base);
                    }
                }
            }
            out
        }
    }
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
    fn labels_lose_separators_and_breaks() {
        assert_eq!(clean_label(" a\tb|c\r\nd "), "a b c  d");
    }
}
