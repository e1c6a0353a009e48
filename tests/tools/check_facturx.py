"""Checks Factur-X PDFs with tools independent of facto: pikepdf (qpdf) reads the PDF
structure, akretion's factur-x library extracts the XML and checks it against the Factur-X XSD.

usage: check_facturx.py OUT_DIR PDF...

For each PDF: the catalog's /AF lists a file spec named factur-x.xml with /AFRelationship
Data, Alternative or Source, listed in /Names /EmbeddedFiles too, its stream of MIME text/xml;
the XMP says pdfaid:part 3 and declares the Factur-X extension schema, with
fx:ConformanceLevel, fx:DocumentFileName factur-x.xml, fx:DocumentType INVOICE, fx:Version;
an output intent with an ICC profile; a file ID; every font embedded. The XML is written to
OUT_DIR/<pdf stem>.xml for the XSD and schematron steps. Prints one line per PDF, exits 1 on
any failure.
"""

import pathlib
import sys

import facturx
import pikepdf
from lxml import etree

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
    return errors


def main():
    out_dir = pathlib.Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for arg in sys.argv[2:]:
        path = pathlib.Path(arg)
        errors = check(path, out_dir)
        if errors:
            failed += 1
            print(f"FAIL {path.name}: " + "; ".join(errors))
        else:
            print(f"ok {path.name}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
