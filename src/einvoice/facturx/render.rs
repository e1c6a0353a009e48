//! The readable invoice facto draws when the source gives no PDF of its own: A4 pages with the
//! seller and the buyer, the number and dates, the lines, the VAT breakdown, the totals, the
//! payment terms and the IBAN, and the notes, in French, amounts as the document gives them
//! (decimal comma). One embedded face (DejaVu Sans, shipped in `assets/fonts` with its licence:
//! PDF/A forbids fonts that are not embedded), WinAnsi encoding: a character outside it is
//! drawn as its base letter, else `?` (the XML attached keeps the exact text).

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, ObjectId, Stream, StringFormat};
use rust_decimal::Decimal;

use super::super::{amount, number, InvoiceView};
use super::FacturxError;

/// DejaVu Sans (Bitstream Vera licence, `assets/fonts/DejaVuSans-LICENSE.txt`).
pub(super) static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
/// Its name in the PDF: a subset (see `subset`) carries a six-letter tag.
const FONT_NAME: &str = "FACTOX+DejaVuSans";

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const LEFT: f32 = 50.0;
const RIGHT: f32 = 545.0;
const TOP: f32 = 800.0;
const BOTTOM: f32 = 70.0;

/// The characters of WinAnsiEncoding from 0x80 to 0x9F (`None`: unassigned).
const WIN_80: [Option<char>; 32] = [
    Some('€'),
    None,
    Some('‚'),
    Some('ƒ'),
    Some('„'),
    Some('…'),
    Some('†'),
    Some('‡'),
    Some('ˆ'),
    Some('‰'),
    Some('Š'),
    Some('‹'),
    Some('Œ'),
    None,
    Some('Ž'),
    None,
    None,
    Some('‘'),
    Some('’'),
    Some('“'),
    Some('”'),
    Some('•'),
    Some('–'),
    Some('—'),
    Some('˜'),
    Some('™'),
    Some('š'),
    Some('›'),
    Some('œ'),
    None,
    Some('ž'),
    Some('Ÿ'),
];

/// The character of a WinAnsi code (32 to 255), if assigned.
fn win_char(code: u8) -> Option<char> {
    match code {
        0x20..=0x7E | 0xA0..=0xFF => Some(char::from(code)),
        0x80..=0x9F => WIN_80[usize::from(code - 0x80)],
        _ => None,
    }
}

/// The WinAnsi code of a character, if it has one.
fn win_exact(c: char) -> Option<u8> {
    if let Ok(b) = u8::try_from(u32::from(c)) {
        if matches!(b, 0x20..=0x7E | 0xA0..=0xFF) {
            return Some(b);
        }
    }
    WIN_80
        .iter()
        .position(|w| *w == Some(c))
        .and_then(|i| u8::try_from(0x80 + i).ok())
}

/// The WinAnsi code of a character: a space for any space or control; else its own, else that
/// of its base letter (`ő` → `o`, `ą` → `a`), else `?`.
fn win_code(c: char) -> u8 {
    use unicode_normalization::UnicodeNormalization;
    if c.is_whitespace() || c.is_control() {
        return b' ';
    }
    win_exact(c)
        .or_else(|| std::iter::once(c).nfd().next().and_then(win_exact))
        .unwrap_or(b'?')
}

/// The embedded face: its advance widths per WinAnsi code, in thousandths of the font size.
struct Face {
    widths: Vec<i64>,
}

impl Face {
    fn load() -> Result<(Self, lopdf::Dictionary), FacturxError> {
        let face = ttf_parser::Face::parse(FONT, 0)
            .map_err(|e| FacturxError::Write(format!("the embedded font: {e}")))?;
        let upem = f32::from(face.units_per_em());
        let scale = |v: f32| (v * 1000.0 / upem).round() as i64;
        let widths: Vec<i64> = (32u8..=255)
            .map(|code| {
                win_char(code)
                    .and_then(|c| face.glyph_index(c))
                    .and_then(|g| face.glyph_hor_advance(g))
                    .map_or(0, |w| scale(f32::from(w)))
            })
            .collect();
        let bbox = face.global_bounding_box();
        let descriptor = dictionary! {
            "Type" => "FontDescriptor",
            "FontName" => FONT_NAME,
            // Non-symbolic: the glyphs are found through WinAnsiEncoding and the (3,1) cmap.
            "Flags" => 32,
            "FontBBox" => vec![
                scale(f32::from(bbox.x_min)).into(),
                scale(f32::from(bbox.y_min)).into(),
                scale(f32::from(bbox.x_max)).into(),
                scale(f32::from(bbox.y_max)).into(),
            ],
            "ItalicAngle" => 0,
            "Ascent" => scale(f32::from(face.ascender())),
            "Descent" => scale(f32::from(face.descender())),
            "CapHeight" => scale(f32::from(face.capital_height().unwrap_or(face.ascender()))),
            "StemV" => 80,
        };
        Ok((Face { widths }, descriptor))
    }

    /// Width of `s` at `size`, in points.
    fn width(&self, s: &[u8], size: f32) -> f32 {
        let units: i64 = s
            .iter()
            .map(|&b| {
                b.checked_sub(32)
                    .and_then(|i| self.widths.get(usize::from(i)))
                    .copied()
                    .unwrap_or(0)
            })
            .sum();
        units as f32 * size / 1000.0
    }
}

/// Pages being drawn.
struct Pages<'f> {
    face: &'f Face,
    done: Vec<Vec<Operation>>,
    ops: Vec<Operation>,
    y: f32,
}

fn real(v: f32) -> Object {
    Object::Real(v)
}

impl<'f> Pages<'f> {
    fn encode(s: &str) -> Vec<u8> {
        s.chars().map(win_code).collect()
    }

    fn text(&mut self, x: f32, y: f32, size: f32, s: &str) {
        let bytes = Self::encode(s);
        self.ops.extend([
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), real(size)]),
            Operation::new("Td", vec![real(x), real(y)]),
            Operation::new("Tj", vec![Object::String(bytes, StringFormat::Literal)]),
            Operation::new("ET", vec![]),
        ]);
    }

    /// Text ending at `x`.
    fn right(&mut self, x: f32, y: f32, size: f32, s: &str) {
        let w = self.face.width(&Self::encode(s), size);
        self.text(x - w, y, size, s);
    }

    fn rule(&mut self, y: f32) {
        self.ops.extend([
            Operation::new("RG", vec![real(0.6), real(0.6), real(0.6)]),
            Operation::new("w", vec![real(0.5)]),
            Operation::new("m", vec![real(LEFT), real(y)]),
            Operation::new("l", vec![real(RIGHT), real(y)]),
            Operation::new("S", vec![]),
        ]);
    }

    /// Room for `h` points more, on a new page if needed; whether a page began.
    fn room(&mut self, h: f32) -> bool {
        if self.y - h >= BOTTOM {
            return false;
        }
        self.done.push(std::mem::take(&mut self.ops));
        self.y = TOP;
        true
    }

    /// Lines of `s` no wider than `width` at `size` (words cut only when longer than a line).
    fn wrap(&self, s: &str, width: f32, size: f32) -> Vec<String> {
        let mut out = Vec::new();
        let mut line = String::new();
        for word in s.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if self.face.width(&Self::encode(&candidate), size) <= width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                out.push(std::mem::take(&mut line));
            }
            let mut piece = String::new();
            for c in word.chars() {
                piece.push(c);
                if self.face.width(&Self::encode(&piece), size) > width {
                    piece.pop();
                    out.push(std::mem::take(&mut piece));
                    piece.push(c);
                }
            }
            line = piece;
        }
        if !line.is_empty() || out.is_empty() {
            out.push(line);
        }
        out
    }

    /// A paragraph at `x`, wrapped to `width`.
    fn paragraph(&mut self, x: f32, width: f32, size: f32, s: &str) {
        for l in self.wrap(s, width, size) {
            self.room(size + 3.0);
            self.y -= size + 3.0;
            self.text(x, self.y, size, &l);
        }
    }
}

/// `1 358,25`: an amount written the French way (two decimals, decimal comma, spaced thousands).
pub(crate) fn fr_amount(d: Decimal) -> String {
    fr_number(&amount(d))
}

/// `12,5`: a quantity, price or rate with a decimal comma.
fn fr_plain(d: Decimal) -> String {
    fr_number(&number(d))
}

fn fr_number(s: &str) -> String {
    let (sign, digits) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped},{frac}")
    }
}

fn fr_date(d: chrono::NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// The lines of a party's block: name, address, identifiers.
fn party_lines(v: &InvoiceView<'_>, p: &crate::model::Party) -> Vec<String> {
    let mut out = vec![p.name.clone()];
    if let Some(a) = &p.billing_address {
        out.extend(a.lines.iter().cloned());
        let city = [a.postcode.as_deref(), a.city.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if !city.is_empty() {
            out.push(city);
        }
        if let Some(c) = &a.country_code {
            out.push(c.clone());
        }
    }
    if let Some((scheme, id)) = v.legal_id(p) {
        out.push(if scheme == "0009" {
            format!("SIRET {id}")
        } else {
            format!("SIREN {id}")
        });
    }
    if let Some(vat) = &p.vat_id {
        out.push(format!("TVA {vat}"));
    }
    if let Some(e) = v.electronic_address(p) {
        out.push(format!("Adresse électronique {}:{}", e.scheme, e.value));
    }
    out
}

/// The French name of a VAT category.
fn category_label(c: crate::mapping::VatCategory) -> &'static str {
    use crate::mapping::VatCategory as V;
    match c {
        V::S => "Taux normal",
        V::Z => "Taux zéro",
        V::E => "Exonéré",
        V::AE => "Autoliquidation",
        V::K => "Intracommunautaire",
        V::G => "Export",
        V::O => "Hors champ",
    }
}

/// A label for the UNCL 4461 payment means codes invoices use most.
fn means_label(code: &str) -> String {
    match code {
        "10" => "Espèces".into(),
        "20" => "Chèque".into(),
        "30" | "58" => "Virement".into(),
        "48" | "54" | "55" => "Carte bancaire".into(),
        "49" | "59" => "Prélèvement".into(),
        other => format!("code {other}"),
    }
}

/// The pages of the invoice, as a PDF document with its catalog (metadata comes after).
pub(crate) fn document(v: &InvoiceView<'_>) -> Result<Document, FacturxError> {
    let (face, descriptor) = Face::load()?;
    let doc_ = v.doc;
    let mut p = Pages {
        face: &face,
        done: Vec::new(),
        ops: Vec::new(),
        y: TOP,
    };
    let title = if v.is_credit_note() {
        "AVOIR"
    } else {
        "FACTURE"
    };
    let cur = doc_.currency.as_str();
    p.text(LEFT, p.y, 18.0, title);
    p.right(RIGHT, p.y, 12.0, &format!("N° {}", doc_.number));
    p.y -= 20.0;
    p.right(
        RIGHT,
        p.y,
        9.0,
        &format!("Date d'émission : {}", fr_date(doc_.issue_date)),
    );
    if let Some(due) = doc_.due_date {
        p.y -= 12.0;
        p.right(RIGHT, p.y, 9.0, &format!("Échéance : {}", fr_date(due)));
    }
    p.y -= 28.0;
    let top = p.y;
    p.text(LEFT, p.y, 8.0, "VENDEUR");
    p.text(310.0, p.y, 8.0, "CLIENT");
    let (mut ys, mut yb) = (top, top);
    for l in party_lines(v, &doc_.seller) {
        ys -= 12.0;
        p.text(LEFT, ys, 9.0, &l);
    }
    for l in party_lines(v, &doc_.buyer) {
        yb -= 12.0;
        p.text(310.0, yb, 9.0, &l);
    }
    p.y = ys.min(yb) - 14.0;
    let mut refs = Vec::new();
    if let Some(o) = v.order_reference() {
        refs.push(format!("Commande : {o}"));
    }
    if let Some(c) = super::super::present(doc_.contract_reference.as_deref()) {
        refs.push(format!("Contrat : {c}"));
    }
    if let Some(pre) = super::super::present(doc_.preceding_invoice.as_deref()) {
        let date = doc_
            .preceding_invoice_date
            .map(|d| format!(" du {}", fr_date(d)))
            .unwrap_or_default();
        refs.push(format!("Facture d'origine : {pre}{date}"));
    }
    for r in refs {
        p.y -= 12.0;
        p.text(LEFT, p.y, 9.0, &r);
    }
    p.y -= 20.0;

    // Lines.
    let header = |p: &mut Pages<'_>| {
        p.text(LEFT, p.y, 8.0, "Désignation");
        p.right(330.0, p.y, 8.0, "Qté");
        p.text(338.0, p.y, 8.0, "Unité");
        p.right(420.0, p.y, 8.0, "PU HT");
        p.right(460.0, p.y, 8.0, "TVA %");
        p.right(RIGHT, p.y, 8.0, &format!("Montant HT ({cur})"));
        p.y -= 4.0;
        p.rule(p.y);
    };
    header(&mut p);
    for l in &v.lines {
        let desc = p.wrap(l.name(), 230.0, 9.0);
        let h = 12.0 * desc.len() as f32 + 2.0;
        if p.room(h) {
            header(&mut p);
        }
        p.y -= 12.0;
        p.right(330.0, p.y, 9.0, &fr_plain(l.line.quantity));
        p.text(338.0, p.y, 9.0, &l.line.unit);
        p.right(420.0, p.y, 9.0, &fr_plain(l.line.unit_price));
        p.right(460.0, p.y, 9.0, &fr_plain(l.rate));
        p.right(RIGHT, p.y, 9.0, &fr_amount(l.line.net_amount));
        for (i, d) in desc.iter().enumerate() {
            if i > 0 {
                p.y -= 12.0;
            }
            p.text(LEFT, p.y, 9.0, d);
        }
        p.y -= 3.0;
    }
    p.y -= 3.0;
    p.rule(p.y);

    // VAT breakdown and totals.
    p.room(14.0 * (v.vat.len() as f32 + 7.0));
    p.y -= 18.0;
    p.text(LEFT, p.y, 8.0, "TVA");
    p.right(200.0, p.y, 8.0, "Taux");
    p.right(290.0, p.y, 8.0, "Base HT");
    p.right(370.0, p.y, 8.0, "Montant TVA");
    for r in &v.vat {
        p.y -= 12.0;
        let label = match &r.exemption_reason {
            Some(why) => format!("{} ({why})", category_label(r.category)),
            None => category_label(r.category).to_owned(),
        };
        let label = p.wrap(&label, 110.0, 9.0).swap_remove(0);
        p.text(LEFT, p.y, 9.0, &label);
        p.right(200.0, p.y, 9.0, &format!("{} %", fr_plain(r.rate)));
        p.right(290.0, p.y, 9.0, &fr_amount(r.base));
        p.right(370.0, p.y, 9.0, &fr_amount(r.amount));
    }
    let t = &doc_.totals;
    let mut totals = vec![
        ("Total HT", t.net),
        ("Total TVA", t.tax),
        ("Total TTC", t.gross),
    ];
    if !t.paid.is_zero() {
        totals.push(("Déjà payé", t.paid));
    }
    totals.push(("Net à payer", t.due));
    let mut yt = p.y + 12.0 * v.vat.len() as f32;
    for (label, value) in totals {
        yt -= 14.0;
        p.text(400.0, yt, 9.0, label);
        p.right(RIGHT, yt, 9.0, &format!("{} {cur}", fr_amount(value)));
    }
    p.y = p.y.min(yt) - 20.0;

    // Payment and notes.
    let mut pay = Vec::new();
    if let Some(terms) = super::super::present(doc_.payment_terms.as_deref()) {
        pay.push(format!("Conditions de paiement : {terms}"));
    }
    if v.has_payment_means() {
        pay.push(format!(
            "Moyen de paiement : {}",
            means_label(v.payment_means())
        ));
    }
    if let Some(iban) = v.iban() {
        let bic = v.bic().map(|b| format!("   BIC : {b}")).unwrap_or_default();
        pay.push(format!("IBAN : {iban}{bic}"));
    }
    for line in pay {
        p.paragraph(LEFT, RIGHT - LEFT, 9.0, &line);
    }
    p.y -= 8.0;
    for n in v.notes().iter() {
        let text = n.text.clone();
        p.paragraph(LEFT, RIGHT - LEFT, 7.5, &text);
    }
    p.done.push(std::mem::take(&mut p.ops));
    assemble(p.done, &face, descriptor, &doc_.number)
}

/// The font program as embedded (`FontFile2`): the face cut down to WinAnsi's glyphs (whole
/// should that fail), compressed once per process, the same in every invoice.
fn compressed_font() -> Result<Stream, FacturxError> {
    static COMPRESSED: std::sync::OnceLock<Result<Stream, String>> = std::sync::OnceLock::new();
    COMPRESSED
        .get_or_init(|| {
            let face = ttf_parser::Face::parse(FONT, 0).map_err(|e| e.to_string())?;
            let glyphs: Vec<u16> = (32u8..=255)
                .filter_map(win_char)
                .filter_map(|c| face.glyph_index(c))
                .map(|g| g.0)
                .collect();
            let program = super::subset::subset(FONT, &glyphs).unwrap_or_else(|| FONT.to_vec());
            let mut s = Stream::new(
                dictionary! { "Length1" => i64::try_from(program.len()).unwrap_or(0) },
                program,
            );
            s.compress().map_err(|e| e.to_string())?;
            Ok(s)
        })
        .clone()
        .map_err(|e| FacturxError::Write(format!("the embedded font: {e}")))
}

/// The document: one page per drawn page, each with its footer, sharing the font.
fn assemble(
    pages: Vec<Vec<Operation>>,
    face: &Face,
    descriptor: lopdf::Dictionary,
    number: &str,
) -> Result<Document, FacturxError> {
    let mut doc = Document::with_version("1.7");
    let font_file_id = doc.add_object(compressed_font()?);
    let mut descriptor = descriptor;
    descriptor.set("FontFile2", font_file_id);
    let descriptor_id = doc.add_object(descriptor);
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "TrueType",
        "BaseFont" => FONT_NAME,
        "FirstChar" => 32,
        "LastChar" => 255,
        "Widths" => face.widths.iter().map(|w| Object::Integer(*w)).collect::<Vec<_>>(),
        "Encoding" => "WinAnsiEncoding",
        "FontDescriptor" => descriptor_id,
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let pages_id: ObjectId = doc.new_object_id();
    let count = pages.len();
    let mut kids = Vec::with_capacity(count);
    for (i, ops) in pages.into_iter().enumerate() {
        let mut p = Pages {
            face,
            done: Vec::new(),
            ops: vec![Operation::new("rg", vec![real(0.0), real(0.0), real(0.0)])],
            y: 0.0,
        };
        p.ops.extend(ops);
        p.text(
            LEFT,
            40.0,
            7.0,
            &format!("{number}, page {} / {count}", i + 1),
        );
        p.right(
            RIGHT,
            40.0,
            7.0,
            "Factur-X EN 16931 : la facture structurée est jointe (factur-x.xml)",
        );
        let content = Content { operations: p.ops }
            .encode()
            .map_err(|e| FacturxError::Write(e.to_string()))?;
        let mut stream = Stream::new(dictionary! {}, content);
        stream
            .compress()
            .map_err(|e| FacturxError::Write(e.to_string()))?;
        let content_id = doc.add_object(stream);
        kids.push(Object::Reference(doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "MediaBox" => vec![0.into(), 0.into(), real(WIDTH), real(HEIGHT)],
            "Contents" => content_id,
            "Resources" => resources_id,
        })));
    }
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => i64::try_from(count).unwrap_or(0),
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
        "Lang" => Object::string_literal("fr-FR"),
    });
    doc.trailer.set("Root", catalog_id);
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_amounts_and_winansi_text() {
        assert_eq!(fr_amount(Decimal::new(135_825, 2)), "1 358,25");
        assert_eq!(fr_amount(Decimal::new(-1_234_567_891, 3)), "-1 234 567,89");
        assert_eq!(fr_amount(Decimal::new(5, 0)), "5,00");
        assert_eq!(fr_plain(Decimal::new(1250, 2)), "12,5");
        assert_eq!(Pages::encode("é€’Œ\u{202f}\n漢"), b"\xE9\x80\x92\x8C  ?");
        assert_eq!(Pages::encode("Łódź Győr Ą"), b"?\xF3dz Gyor A");
        for code in 32u8..=255 {
            // A no-break space is drawn as a space.
            if let Some(c) = win_char(code).filter(|_| code != 0xA0) {
                assert_eq!(win_code(c), code, "{c}");
            }
        }
    }

    #[test]
    fn long_words_and_long_lines_wrap_within_the_width() {
        let (face, _) = Face::load().unwrap();
        let p = Pages {
            face: &face,
            done: Vec::new(),
            ops: Vec::new(),
            y: TOP,
        };
        let lines = p.wrap(&format!("Prestation {} fin", "x".repeat(300)), 100.0, 9.0);
        assert!(lines.len() > 3, "{lines:?}");
        for l in &lines {
            assert!(face.width(&Pages::encode(l), 9.0) <= 100.0, "{l}");
        }
        assert_eq!(p.wrap("", 100.0, 9.0), vec![String::new()]);
    }
}
