//! The embedded face cut down to what a WinAnsi text can draw: the outlines of the glyphs of
//! WinAnsi's characters (and of the glyphs they are built from) are kept, every other outline
//! is emptied, and the layout tables a PDF viewer never reads (GSUB, GPOS, kern, ...) and the
//! glyph names are left out. Glyph ids, `cmap` and `hmtx` are unchanged, so the widths in the
//! PDF stay those of the font program (PDF/A checks it). About 380 KB of compressed font per
//! invoice becomes about a tenth of that.

use std::collections::BTreeSet;

/// Tables kept: what a TrueType font program embedded in a PDF needs, and `cmap` (PDF/A: a
/// non-symbolic font is read through its (3,1) cmap), `name` (with the licence), `OS/2`.
const KEPT: [&[u8; 4]; 13] = [
    b"OS/2", b"cmap", b"cvt ", b"fpgm", b"gasp", b"glyf", b"head", b"hhea", b"hmtx", b"loca",
    b"maxp", b"name", b"prep",
];

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

/// The tables of a font: tag → bytes.
fn tables(font: &[u8]) -> Option<Vec<([u8; 4], &[u8])>> {
    let n = usize::from(u16_at(font, 4)?);
    (0..n)
        .map(|i| {
            let rec = 12 + 16 * i;
            let tag: [u8; 4] = font.get(rec..rec + 4)?.try_into().ok()?;
            let off = usize::try_from(u32_at(font, rec + 8)?).ok()?;
            let len = usize::try_from(u32_at(font, rec + 12)?).ok()?;
            Some((tag, font.get(off..off.checked_add(len)?)?))
        })
        .collect()
}

fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0u32, |acc, c| {
        let mut b = [0u8; 4];
        b[..c.len()].copy_from_slice(c);
        acc.wrapping_add(u32::from_be_bytes(b))
    })
}

/// The glyphs a composite glyph is built from.
fn components(glyph: &[u8]) -> Vec<u16> {
    const WORDS: u16 = 0x1;
    const SCALE: u16 = 0x8;
    const MORE: u16 = 0x20;
    const XY_SCALE: u16 = 0x40;
    const TWO_BY_TWO: u16 = 0x80;
    let mut out = Vec::new();
    if glyph.len() < 10 || u16_at(glyph, 0).is_none_or(|n| n & 0x8000 == 0) {
        return out;
    }
    let mut at = 10;
    while let (Some(flags), Some(id)) = (u16_at(glyph, at), u16_at(glyph, at + 2)) {
        out.push(id);
        at += 4 + if flags & WORDS != 0 { 4 } else { 2 };
        at += match flags {
            f if f & SCALE != 0 => 2,
            f if f & XY_SCALE != 0 => 4,
            f if f & TWO_BY_TWO != 0 => 8,
            _ => 0,
        };
        if flags & MORE == 0 {
            break;
        }
    }
    out
}

/// `font` keeping the outlines of `glyphs` (and their components) and glyph 0; `None` when the
/// font is not a TrueType font this understands (the caller then embeds it whole).
pub(crate) fn subset(font: &[u8], glyphs: &[u16]) -> Option<Vec<u8>> {
    let tables = tables(font)?;
    let get = |tag: &[u8; 4]| tables.iter().find(|(t, _)| t == tag).map(|(_, d)| *d);
    let head = get(b"head")?;
    let long_loca = u16_at(head, 50)? == 1;
    let count = usize::from(u16_at(get(b"maxp")?, 4)?);
    let (loca, glyf) = (get(b"loca")?, get(b"glyf")?);
    let offset = |g: usize| -> Option<usize> {
        if long_loca {
            usize::try_from(u32_at(loca, 4 * g)?).ok()
        } else {
            Some(usize::from(u16_at(loca, 2 * g)?) * 2)
        }
    };
    let outline = |g: usize| -> Option<&[u8]> { glyf.get(offset(g)?..offset(g + 1)?) };
    let mut keep: BTreeSet<u16> = glyphs.iter().copied().chain([0]).collect();
    let mut todo: Vec<u16> = keep.iter().copied().collect();
    while let Some(g) = todo.pop() {
        for c in components(outline(usize::from(g))?) {
            if keep.insert(c) {
                todo.push(c);
            }
        }
    }
    // glyf and a long loca: kept outlines, four-byte aligned; the others empty.
    let mut new_glyf = Vec::new();
    let mut new_loca = Vec::with_capacity(4 * (count + 1));
    for g in 0..count {
        new_loca.extend(u32::try_from(new_glyf.len()).ok()?.to_be_bytes());
        if keep.contains(&u16::try_from(g).ok()?) {
            new_glyf.extend(outline(g)?);
            new_glyf.resize(new_glyf.len().div_ceil(4) * 4, 0);
        }
    }
    new_loca.extend(u32::try_from(new_glyf.len()).ok()?.to_be_bytes());
    let mut new_head = head.to_vec();
    new_head.get_mut(8..12)?.copy_from_slice(&[0; 4]); // checkSumAdjustment, set below
    new_head
        .get_mut(50..52)?
        .copy_from_slice(&1u16.to_be_bytes());

    let mut out_tables: Vec<([u8; 4], Vec<u8>)> = KEPT
        .iter()
        .filter_map(|tag| {
            let data = match *tag {
                b"glyf" => new_glyf.clone(),
                b"loca" => new_loca.clone(),
                b"head" => new_head.clone(),
                _ => get(tag)?.to_vec(),
            };
            Some((**tag, data))
        })
        .collect();
    out_tables.sort_by_key(|t| t.0);

    let n = u16::try_from(out_tables.len()).ok()?;
    let pow = 1u16 << (15 - n.leading_zeros());
    let mut out = Vec::new();
    out.extend(0x0001_0000u32.to_be_bytes());
    for v in [n, pow * 16, pow.trailing_zeros() as u16, n * 16 - pow * 16] {
        out.extend(v.to_be_bytes());
    }
    let mut offset = 12 + 16 * out_tables.len();
    let mut body = Vec::new();
    let mut head_at = 0;
    for (tag, data) in &out_tables {
        if tag == b"head" {
            head_at = offset;
        }
        out.extend(tag);
        out.extend(checksum(data).to_be_bytes());
        out.extend(u32::try_from(offset).ok()?.to_be_bytes());
        out.extend(u32::try_from(data.len()).ok()?.to_be_bytes());
        let mut padded = data.clone();
        padded.resize(data.len().div_ceil(4) * 4, 0);
        offset += padded.len();
        body.extend(padded);
    }
    out.extend(body);
    let adjust = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
    out.get_mut(head_at + 8..head_at + 12)?
        .copy_from_slice(&adjust.to_be_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subset_draws_the_kept_glyphs_with_the_same_widths_and_is_much_smaller() {
        let font = super::super::render::FONT;
        let face = ttf_parser::Face::parse(font, 0).unwrap();
        let glyphs: Vec<u16> = "AÉé€œ’?"
            .chars()
            .map(|c| face.glyph_index(c).unwrap().0)
            .collect();
        let small = subset(font, &glyphs).unwrap();
        assert!(small.len() * 4 < font.len(), "{} bytes", small.len());
        assert_eq!(checksum(&small), 0xB1B0_AFBA, "the whole-font checksum");
        let sub = ttf_parser::Face::parse(&small, 0).unwrap();
        assert_eq!(sub.number_of_glyphs(), face.number_of_glyphs());
        for c in "AÉé€œ’?".chars() {
            let g = sub.glyph_index(c).unwrap();
            assert_eq!(sub.glyph_hor_advance(g), face.glyph_hor_advance(g), "{c}");
            assert_eq!(sub.glyph_bounding_box(g), face.glyph_bounding_box(g), "{c}");
        }
        // Not kept: no outline.
        let z = sub.glyph_index('Z').unwrap();
        assert!(sub.glyph_bounding_box(z).is_none());
        assert!(subset(b"not a font", &glyphs).is_none());
    }
}
