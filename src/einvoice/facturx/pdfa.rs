//! What makes a PDF a PDF/A-3 Factur-X, whoever drew its pages: the embedded `factur-x.xml`
//! (associated file of the catalog, `/AFRelationship /Alternative`, MIME `text/xml`), the XMP
//! packet (`pdfaid:part=3`, the Factur-X extension schema and its `fx:` properties), an sRGB
//! output intent, an information dictionary that says what the XMP says, and a file ID. Every
//! value comes from the document (its number, seller and issue date), so the same invoice
//! always gives the same bytes.

use lopdf::{dictionary, Dictionary, Document, Object, ObjectId, Stream, StringFormat};
use sha2::{Digest, Sha256};

use super::super::xml::xml_text;
use super::{FacturxError, CONFORMANCE_LEVEL, XML_NAME};

/// Namespace of the Factur-X XMP extension schema (Factur-X 1.0x, all profiles).
pub(crate) const FX_NS: &str = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#";

/// What the metadata of a Factur-X says about its invoice.
pub(crate) struct Meta<'a> {
    /// `Facture F2026-0001`.
    pub title: String,
    /// The seller.
    pub author: &'a str,
    /// The issue date: creation and modification dates of the file (a resend is identical).
    pub date: chrono::NaiveDate,
}

/// Turns `doc` into a Factur-X: attaches `cii` and writes the PDF/A-3 metadata, then the bytes.
///
/// # Errors
///
/// The PDF has no catalog, or it cannot be written.
pub(crate) fn finish(
    doc: &mut Document,
    cii: &[u8],
    meta: &Meta<'_>,
) -> Result<Vec<u8>, FacturxError> {
    let pdf_date = meta.date.format("D:%Y%m%d000000+00'00'").to_string();
    let mut file = Stream::new(
        dictionary! {
            "Type" => "EmbeddedFile",
            "Subtype" => Object::Name(b"text/xml".to_vec()),
            "Params" => dictionary! {
                "ModDate" => Object::string_literal(pdf_date.clone()),
                "Size" => i64::try_from(cii.len()).unwrap_or(i64::MAX),
            },
        },
        cii.to_vec(),
    );
    file.compress().map_err(write_error)?;
    let file_id = doc.add_object(file);
    let spec_id = doc.add_object(dictionary! {
        "Type" => "Filespec",
        "F" => Object::string_literal(XML_NAME),
        "UF" => Object::string_literal(XML_NAME),
        "Desc" => Object::string_literal("Factur-X invoice (EN 16931)"),
        // EN 16931 profile: the XML carries the same invoice as the pages (Factur-X 1.07 §6.2.2).
        "AFRelationship" => "Alternative",
        "EF" => dictionary! { "F" => file_id, "UF" => file_id },
    });
    let xmp = Stream::new(
        dictionary! { "Type" => "Metadata", "Subtype" => "XML" },
        xmp(meta).into_bytes(),
    );
    // Left uncompressed: PDF/A readers must find the packet without decoding.
    let xmp_id = doc.add_object(xmp);
    let info_id = doc.add_object(dictionary! {
        "Title" => text_string(&meta.title),
        "Author" => text_string(meta.author),
        "Producer" => Object::string_literal(PRODUCER),
        "Creator" => Object::string_literal(PRODUCER),
        "CreationDate" => Object::string_literal(pdf_date.clone()),
        "ModDate" => Object::string_literal(pdf_date),
    });

    let root = doc
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|_| FacturxError::Unreadable("the PDF has no catalog (/Root)".into()))?;
    let names = embedded_names(doc, root, spec_id);
    let catalog = doc
        .get_dictionary_mut(root)
        .map_err(|_| FacturxError::Unreadable("the PDF's catalog is not a dictionary".into()))?;
    catalog.set("Names", names);
    catalog.set("AF", vec![Object::Reference(spec_id)]);
    catalog.set("Metadata", xmp_id);
    catalog.set("PageMode", "UseAttachments");
    // A PDF/A source keeps its own output intent (its pages may be CMYK); others get sRGB.
    if !has_pdfa_intent(doc, root) {
        let icc_id = doc.add_object(Stream::new(dictionary! { "N" => 3 }, srgb_icc()));
        let intent = dictionary! {
            "Type" => "OutputIntent",
            "S" => "GTS_PDFA1",
            "OutputConditionIdentifier" => Object::string_literal("sRGB IEC61966-2.1"),
            "Info" => Object::string_literal("sRGB IEC61966-2.1"),
            "DestOutputProfile" => icc_id,
        };
        if let Ok(catalog) = doc.get_dictionary_mut(root) {
            catalog.set("OutputIntents", vec![Object::Dictionary(intent)]);
        }
    }
    doc.trailer.set("Info", info_id);
    // The file ID: from the invoice itself, so that a resend is the same file.
    let id = Sha256::digest(cii)[..16].to_vec();
    doc.trailer.set(
        "ID",
        vec![
            Object::String(id.clone(), StringFormat::Hexadecimal),
            Object::String(id, StringFormat::Hexadecimal),
        ],
    );
    doc.version = "1.7".into();
    // What the source PDF's old metadata, information or Factur-X XML left unreferenced.
    doc.prune_objects();
    let mut out = Vec::new();
    doc.save_to(&mut out).map_err(write_error)?;
    Ok(out)
}

/// Whether the catalog has a PDF/A output intent with its ICC profile.
fn has_pdfa_intent(doc: &Document, root: ObjectId) -> bool {
    let intents = doc
        .get_dictionary(root)
        .and_then(|c| c.get_deref(b"OutputIntents", doc))
        .and_then(Object::as_array);
    intents.is_ok_and(|all| {
        all.iter().any(|i| {
            doc.dereference(i)
                .and_then(|(_, i)| i.as_dict())
                .is_ok_and(|i| {
                    i.get(b"S").and_then(Object::as_name).ok() == Some(b"GTS_PDFA1".as_slice())
                        && i.has(b"DestOutputProfile")
                })
        })
    })
}

/// The catalog's `/Names` with `factur-x.xml` as the only embedded file named so (an older
/// Factur-X XML of the source PDF is replaced, other attachments kept).
fn embedded_names(doc: &Document, root: ObjectId, spec_id: ObjectId) -> Dictionary {
    let catalog = doc.get_dictionary(root).ok();
    let mut names = catalog
        .and_then(|c| c.get_deref(b"Names", doc).ok())
        .and_then(|n| n.as_dict().ok())
        .cloned()
        .unwrap_or_default();
    let mut entries: Vec<Object> = Vec::new();
    if let Some(old) = names
        .get_deref(b"EmbeddedFiles", doc)
        .ok()
        .and_then(|e| e.as_dict().ok())
        .and_then(|e| e.get(b"Names").ok())
        .and_then(|n| n.as_array().ok())
    {
        for pair in old.chunks(2) {
            if let [name, spec] = pair {
                let is_fx = name.as_str().is_ok_and(|n| {
                    n.eq_ignore_ascii_case(XML_NAME.as_bytes()) || n == b"zugferd-invoice.xml"
                });
                if !is_fx {
                    entries.extend([name.clone(), spec.clone()]);
                }
            }
        }
    }
    // A name tree's leaves are sorted by name.
    let mut pairs: Vec<(Vec<u8>, Object)> = entries
        .chunks(2)
        .filter_map(|p| match p {
            [n, s] => Some((
                n.as_str().map(<[u8]>::to_vec).unwrap_or_default(),
                s.clone(),
            )),
            _ => None,
        })
        .collect();
    pairs.push((XML_NAME.as_bytes().to_vec(), Object::Reference(spec_id)));
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let flat: Vec<Object> = pairs
        .into_iter()
        .flat_map(|(n, s)| [Object::String(n, StringFormat::Literal), s])
        .collect();
    names.set("EmbeddedFiles", dictionary! { "Names" => flat });
    names
}

/// The producer written in the metadata.
const PRODUCER: &str = "facto";

fn write_error(e: impl std::fmt::Display) -> FacturxError {
    FacturxError::Write(e.to_string())
}

/// Text as the metadata writes it: no control characters, nothing XML forbids.
fn clean_text(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    xml_text(&s).into_owned()
}

/// A PDF text string: PDFDocEncoding when ASCII, else UTF-16BE with its byte order mark.
fn text_string(s: &str) -> Object {
    // Cleaned as the XMP is, so that both say the same (PDF/A).
    let clean = clean_text(s);
    if clean.is_ascii() {
        Object::string_literal(clean)
    } else {
        let mut b = vec![0xFE, 0xFF];
        for u in clean.encode_utf16() {
            b.extend(u.to_be_bytes());
        }
        Object::String(b, StringFormat::Hexadecimal)
    }
}

/// The XMP packet: PDF/A-3B identification, the same title, author, producer and dates as the
/// information dictionary, and the Factur-X extension schema with its four properties.
pub(crate) fn xmp(meta: &Meta<'_>) -> String {
    let date = meta.date.format("%Y-%m-%dT00:00:00+00:00");
    let clean = |s: &str| quick_xml::escape::escape(clean_text(s).as_str()).into_owned();
    let title = clean(&meta.title);
    let author = clean(meta.author);
    let property = |name: &str, description: &str| {
        format!(
            "<rdf:li rdf:parseType=\"Resource\"><pdfaProperty:name>{name}</pdfaProperty:name><pdfaProperty:valueType>Text</pdfaProperty:valueType><pdfaProperty:category>external</pdfaProperty:category><pdfaProperty:description>{description}</pdfaProperty:description></rdf:li>\n"
        )
    };
    let properties = [
        property("DocumentFileName", "The name of the embedded XML document"),
        property(
            "DocumentType",
            "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER",
        ),
        property(
            "Version",
            "The actual version of the standard applying to the embedded XML document",
        ),
        property(
            "ConformanceLevel",
            "The conformance level of the embedded XML document",
        ),
    ]
    .concat();
    format!(
        r#"<?xpacket begin="{bom}" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
<pdfaid:part>3</pdfaid:part>
<pdfaid:conformance>B</pdfaid:conformance>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:format>application/pdf</dc:format>
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>
<dc:creator><rdf:Seq><rdf:li>{author}</rdf:li></rdf:Seq></dc:creator>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
<pdf:Producer>{PRODUCER}</pdf:Producer>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
<xmp:CreatorTool>{PRODUCER}</xmp:CreatorTool>
<xmp:CreateDate>{date}</xmp:CreateDate>
<xmp:ModifyDate>{date}</xmp:ModifyDate>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/" xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">
<pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>
<pdfaSchema:namespaceURI>{FX_NS}</pdfaSchema:namespaceURI>
<pdfaSchema:prefix>fx</pdfaSchema:prefix>
<pdfaSchema:property><rdf:Seq>
{properties}</rdf:Seq></pdfaSchema:property>
</rdf:li></rdf:Bag></pdfaExtension:schemas>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:fx="{FX_NS}">
<fx:DocumentType>INVOICE</fx:DocumentType>
<fx:DocumentFileName>{XML_NAME}</fx:DocumentFileName>
<fx:Version>1.0</fx:Version>
<fx:ConformanceLevel>{CONFORMANCE_LEVEL}</fx:ConformanceLevel>
</rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"#,
        bom = '\u{feff}',
    )
}

/// A compact ICC v2 display profile of sRGB (D50-adapted primaries, gamma 2.2 curves), built
/// here rather than shipped: the output intent PDF/A asks for when pages use device colours.
pub(crate) fn srgb_icc() -> Vec<u8> {
    fn s15(v: f64) -> [u8; 4] {
        // s15Fixed16Number; the values are constants between 0 and 2.
        #[allow(clippy::cast_possible_truncation)]
        let n = (v * 65536.0).round() as i32;
        n.to_be_bytes()
    }
    fn xyz(x: f64, y: f64, z: f64) -> Vec<u8> {
        [b"XYZ \0\0\0\0".as_slice(), &s15(x), &s15(y), &s15(z)].concat()
    }
    let desc_text = b"facto sRGB (gamma 2.2)\0";
    let mut desc = b"desc\0\0\0\0".to_vec();
    desc.extend(u32::try_from(desc_text.len()).unwrap_or(0).to_be_bytes());
    desc.extend(desc_text);
    desc.extend([0u8; 4 + 4 + 2 + 1 + 67]);
    let cprt = [b"text\0\0\0\0".as_slice(), b"No copyright, use freely\0"].concat();
    // Gamma 2.2 as u8Fixed8Number (2 + 51/256).
    let trc = [b"curv\0\0\0\0".as_slice(), &[0, 0, 0, 1, 0x02, 0x33]].concat();
    let tags: [(&[u8; 4], Vec<u8>); 7] = [
        (b"desc", desc),
        (b"cprt", cprt),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", trc),
    ];
    // Header, tag count, 9 entries (the three curves share one body).
    let mut offset = 128 + 4 + 9 * 12;
    let mut table = Vec::new();
    let mut bodies = Vec::new();
    let mut trc_at = (0, 0);
    for (sig, body) in &tags {
        let len = body.len();
        table.push((**sig, offset, len));
        if *sig == b"rTRC" {
            trc_at = (offset, len);
        }
        let mut b = body.clone();
        b.resize(len.div_ceil(4) * 4, 0);
        offset += b.len();
        bodies.extend(b);
    }
    table.push((*b"gTRC", trc_at.0, trc_at.1));
    table.push((*b"bTRC", trc_at.0, trc_at.1));
    let size = offset;
    let be = |n: usize| u32::try_from(n).unwrap_or(0).to_be_bytes();
    let mut p = Vec::with_capacity(size);
    p.extend(be(size));
    p.extend([0; 4]); // CMM
    p.extend([2, 0x10, 0, 0]); // version 2.1
    p.extend(b"mntrRGB XYZ ");
    p.extend([0x07, 0xEA, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]); // 2026-01-01
    p.extend(b"acsp");
    p.extend([0; 4 + 4 + 4 + 4 + 8 + 4]); // platform, flags, device, attributes, intent
    p.extend([s15(0.9642), s15(1.0), s15(0.8249)].concat());
    p.resize(128, 0);
    p.extend(be(table.len()));
    for (sig, off, len) in table {
        p.extend(sig);
        p.extend(be(off));
        p.extend(be(len));
    }
    p.extend(bodies);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icc_profile_is_a_well_formed_v2_rgb_display_profile() {
        let p = srgb_icc();
        assert_eq!(
            u32::from_be_bytes(p[0..4].try_into().unwrap()) as usize,
            p.len()
        );
        assert_eq!(&p[12..24], b"mntrRGB XYZ ");
        assert_eq!(&p[36..40], b"acsp");
        let count = u32::from_be_bytes(p[128..132].try_into().unwrap()) as usize;
        assert_eq!(count, 9);
        for i in 0..count {
            let e = &p[132 + 12 * i..144 + 12 * i];
            let off = u32::from_be_bytes(e[4..8].try_into().unwrap()) as usize;
            let len = u32::from_be_bytes(e[8..12].try_into().unwrap()) as usize;
            assert!(off % 4 == 0 && off + len <= p.len(), "{:?}", &e[..4]);
        }
    }

    #[test]
    fn the_xmp_declares_pdfa_3_and_the_factur_x_schema_with_escaped_values() {
        let x = xmp(&Meta {
            title: "Facture A&B <1>".into(),
            author: "Dupont & Fils",
            date: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
        });
        for want in [
            "<pdfaid:part>3</pdfaid:part>",
            "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>",
            "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>",
            "<fx:DocumentType>INVOICE</fx:DocumentType>",
            "<pdfaSchema:prefix>fx</pdfaSchema:prefix>",
            "Facture A&amp;B &lt;1&gt;",
            "<xmp:CreateDate>2026-03-02T00:00:00+00:00</xmp:CreateDate>",
        ] {
            assert!(x.contains(want), "{want}");
        }
    }
}
