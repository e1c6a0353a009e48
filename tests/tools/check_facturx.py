"""Checks Factur-X PDFs with tools independent of facto: pikepdf (qpdf) reads the PDF
structure, akretion's factur-x library extracts the XML and checks it against the Factur-X XSD,
fontTools reads the embedded fonts and Pillow's littleCMS the ICC profile.

usage: check_facturx.py [--strict] OUT_DIR PDF...

For each PDF: the catalog's /AF lists a file spec named factur-x.xml with /AFRelationship
Data, Alternative or Source, listed in /Names /EmbeddedFiles too, its stream of MIME text/xml;
the XMP says pdfaid:part 3 and declares the Factur-X extension schema, with
fx:ConformanceLevel, fx:DocumentFileName factur-x.xml, fx:DocumentType INVOICE, fx:Version;
an output intent with an ICC profile that littleCMS reads as an RGB, gray or CMYK profile; a
file ID, no encryption, the binary comment of the header; the information dictionary saying
what the XMP says; every font embedded, and for simple TrueType fonts the /Widths those of the
font program, and a glyph with an outline for every character drawn in them. The XML is written to
OUT_DIR/<pdf stem>.xml for the XSD and schematron steps. Prints one line per PDF, exits 1 on
any failure. The information dictionary's agreement with the XMP is a warning unless
--strict (the FNFE's own sample disagrees on its producer).
"""

import pathlib
import sys

import io

import facturx
import pikepdf
from fontTools.ttLib import TTFont
from lxml import etree
from PIL import ImageCms

FX_NS = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
PDFAID_NS = "http://www.aiim.org/pdfa/ns/id/"
LEVELS = {"EN 16931", "BASIC WL", "EXTENDED", "BASIC", "MINIMUM"}


def fonts_not_embedded(pdf):
    missing = []
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Dictionary) or obj.get("/Type") != "/Font":
            continue
        subtype = obj.get("/Subtype")
        if subtype == "/Type3":
            continue
        if subtype == "/Type0":
            descs = [d.get("/FontDescriptor") for d in obj.get("/DescendantFonts", [])]
        else:
            descs = [obj.get("/FontDescriptor")]
        for d in descs:
            if d is None or not any(k in d for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                missing.append(str(obj.get("/BaseFont")))
    return missing


def winansi_char(code):
    if 0x80 <= code <= 0x9F:
        try:
            return bytes([code]).decode("cp1252")
        except UnicodeDecodeError:
            return None
    return chr(code)


def drawn_codes(pdf):
    """Character codes each font (by object id) is asked to draw, over every page."""
    used = {}
    for page in pdf.pages:
        fonts = page.Resources.get("/Font", {})
        current = None
        for operands, op in pikepdf.parse_content_stream(page):
            name = str(op)
            if name == "Tf":
                f = fonts.get(str(operands[0]))
                current = f.objgen if f is not None else None
            elif name == "Tj" and current is not None:
                used.setdefault(current, set()).update(bytes(operands[0]))
    return used


def truetype_problems(pdf):
    """Simple WinAnsi TrueType fonts: /Widths against the font program, and drawn glyphs."""
    problems = []
    used = drawn_codes(pdf)
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Dictionary) or obj.get("/Type") != "/Font":
            continue
        if obj.get("/Subtype") != "/TrueType" or obj.get("/Encoding") != "/WinAnsiEncoding":
            continue
        desc = obj.get("/FontDescriptor")
        if desc is None or "/FontFile2" not in desc:
            continue
        font = TTFont(io.BytesIO(desc.FontFile2.read_bytes()))
        upem = font["head"].unitsPerEm
        cmap = font.getBestCmap()
        hmtx = font["hmtx"]
        glyf = font["glyf"]
        first = int(obj.FirstChar)
        for i, w in enumerate(obj.Widths):
            ch = winansi_char(first + i)
            glyph = cmap.get(ord(ch)) if ch else None
            if glyph is None:
                continue
            want = hmtx[glyph][0] * 1000 / upem
            if abs(float(w) - want) > 1:
                problems.append(f"{obj.BaseFont}: width of {ch!r} is {w}, the font says {want:.0f}")
        for code in used.get(obj.objgen, ()):
            ch = winansi_char(code)
            glyph = cmap.get(ord(ch)) if ch else None
            if glyph is None:
                problems.append(f"{obj.BaseFont}: no glyph for code {code}")
            elif not ch.isspace() and glyf[glyph].numberOfContours == 0:
                problems.append(f"{obj.BaseFont}: the glyph of {ch!r} has no outline")
    return problems


def info_problems(pdf, meta):
    """The information dictionary says what the XMP says (PDF/A)."""
    problems = []
    info = pdf.trailer.get("/Info")
    if info is None:
        return problems
    pairs = [
        ("/Title", "{http://purl.org/dc/elements/1.1/}title"),
        ("/Producer", "{http://ns.adobe.com/pdf/1.3/}Producer"),
        ("/Creator", "{http://ns.adobe.com/xap/1.0/}CreatorTool"),
    ]
    for key, prop in pairs:
        if key in info and str(info[key]) != str(meta.get(prop)):
            problems.append(f"Info {key} {str(info[key])!r} but XMP {meta.get(prop)!r}")
    return problems


def check(path, out_dir):
    errors = []
    data = path.read_bytes()
    pdf = pikepdf.open(path)
    root = pdf.Root
    specs = [s for s in root.get("/AF", []) if str(s.get("/UF", s.get("/F", ""))) == "factur-x.xml"]
    if not specs:
        errors.append("the catalog's /AF lists no factur-x.xml")
    xml = None
    for spec in specs:
        rel = str(spec.get("/AFRelationship", ""))
        if rel not in ("/Data", "/Alternative", "/Source"):
            errors.append(f"AFRelationship is {rel or 'missing'}")
        stream = spec.EF.F
        if str(stream.get("/Subtype", "")) != "/text/xml":
            errors.append(f"the embedded file's MIME is {stream.get('/Subtype')}, not text/xml")
        xml = stream.read_bytes()
    names = list(pdf.attachments.keys())
    if "factur-x.xml" not in names:
        errors.append(f"/Names /EmbeddedFiles holds {names}, not factur-x.xml")

    meta = pdf.open_metadata()
    part = meta.get(f"{{{PDFAID_NS}}}part")
    if str(part) != "3":
        errors.append(f"XMP pdfaid:part is {part!r}, not 3")
    level = meta.get(f"{{{FX_NS}}}ConformanceLevel")
    if level not in LEVELS:
        errors.append(f"XMP fx:ConformanceLevel is {level!r}")
    if meta.get(f"{{{FX_NS}}}DocumentFileName") != "factur-x.xml":
        errors.append("XMP fx:DocumentFileName is not factur-x.xml")
    if meta.get(f"{{{FX_NS}}}DocumentType") != "INVOICE":
        errors.append("XMP fx:DocumentType is not INVOICE")
    if not meta.get(f"{{{FX_NS}}}Version"):
        errors.append("XMP fx:Version is missing")
    raw_xmp = root.Metadata.read_bytes() if "/Metadata" in root else b""
    if FX_NS.encode() not in raw_xmp or b"pdfaExtension:schemas" not in raw_xmp:
        errors.append("the XMP does not declare the Factur-X extension schema")

    intents = root.get("/OutputIntents", [])
    if not any("/DestOutputProfile" in i for i in intents):
        errors.append("no output intent with an ICC profile")
    if "/ID" not in pdf.trailer:
        errors.append("no file ID")
    missing = fonts_not_embedded(pdf)
    if missing:
        errors.append(f"fonts not embedded: {missing}")
    errors.extend(truetype_problems(pdf))
    warnings = info_problems(pdf, meta)
    for i in intents:
        if "/DestOutputProfile" not in i:
            continue
        try:
            icc = ImageCms.ImageCmsProfile(io.BytesIO(i.DestOutputProfile.read_bytes()))
            space = icc.profile.xcolor_space.strip()
            if space not in ("RGB", "GRAY", "CMYK"):
                errors.append(f"the output intent's profile is of colour space {space}")
        except Exception as e:  # noqa: BLE001 - an unreadable profile is a finding
            errors.append(f"the output intent's ICC profile cannot be read: {e}")
    if "/Encrypt" in pdf.trailer:
        errors.append("encrypted")
    second = data.split(b"\n", 2)[1] if data.count(b"\n") > 1 else b""
    if not (second.startswith(b"%") and sum(b > 127 for b in second[1:5]) == 4):
        errors.append("the header has no binary comment")

    # The Factur-X library's own extraction and XSD check.
    try:
        name, fx_xml = facturx.get_facturx_xml_from_pdf(data, check_xsd=True)
        if name != "factur-x.xml":
            errors.append(f"factur-x extracts {name}")
        if xml is not None and fx_xml != xml:
            errors.append("factur-x extracts another XML than the /AF file")
        xml_level = facturx.get_level(etree.fromstring(fx_xml))
        expected = {"EN 16931": "en16931", "BASIC WL": "basicwl", "EXTENDED": "extended"}.get(level)
        if expected and xml_level != expected:
            errors.append(f"the XML is of level {xml_level}, the XMP says {level}")
        (out_dir / f"{path.stem}.xml").write_bytes(fx_xml)
    except Exception as e:  # noqa: BLE001 - any failure of the library is a finding
        errors.append(f"factur-x: {e}")
    return errors, warnings


def main():
    args = sys.argv[1:]
    strict = args[:1] == ["--strict"]
    if strict:
        args = args[1:]
    out_dir = pathlib.Path(args[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for arg in args[1:]:
        path = pathlib.Path(arg)
        errors, warnings = check(path, out_dir)
        if strict:
            errors, warnings = errors + warnings, []
        if errors:
            failed += 1
            print(f"FAIL {path.name}: " + "; ".join(errors))
        else:
            note = f" (warning: {'; '.join(warnings)})" if warnings else ""
            print(f"ok {path.name}{note}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
