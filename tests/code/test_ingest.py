"""Unit tests for reference.ingest: each format on small files, bad input, batch report, OCR cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference import ingest
from reference.errors import EmptyInputError, InputError, InputTooLargeError
from reference.ingest import (
    CorruptFileError, EmptyDocumentError, EncodingError, EncryptedFileError, FileTooLargeError,
    UnsupportedFormatError, detect_format, ingest_batch, ingest_file, markdown_table,
)


def make_pdf(path: Path, pages: list[list[str]], table: list[list[str]] | None = None, encrypt: bool = False) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib import colors

    styles = getSampleStyleSheet()
    story = []
    for i, lines in enumerate(pages):
        story += [Paragraph(line, styles["Normal"]) for line in lines]
        if table and i == 0:
            t = Table(table, repeatRows=1)
            t.setStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)])
            story.append(t)
        if i < len(pages) - 1:
            story.append(PageBreak())
    kw = {"encrypt": "secret"} if encrypt else {}
    SimpleDocTemplate(str(path), pagesize=A4, **kw).build(story)
    return path


def test_detect_format_and_unsupported():
    assert detect_format("a/b.XLSX") == "xlsx"
    assert detect_format("x.htm") == "html"
    with pytest.raises(UnsupportedFormatError, match=r"\.bin"):
        detect_format("x.bin")


def test_markdown_table_pads_and_escapes():
    out = markdown_table([["a", "b"], ["1|2"], [None, None]])
    assert out.splitlines() == ["| a | b |", "| --- | --- |", "| 1/2 |  |"]


def test_error_hierarchy():
    assert issubclass(EmptyDocumentError, EmptyInputError) and issubclass(FileTooLargeError, InputTooLargeError)
    for cls in (CorruptFileError, EncryptedFileError, EncodingError, UnsupportedFormatError):
        assert issubclass(cls, InputError)


def test_pdf_text_and_table_with_header(tmp_path):
    rows = [["City", "Cap"]] + [[f"Town{i}", f"£{100 + i}"] for i in range(5)]
    p = make_pdf(tmp_path / "t.pdf", [["Hotel caps apply per night."], ["Second page text."]], rows)
    doc = ingest_file(p)
    assert [pg.page for pg in doc.pages] == [1, 2]
    first = doc.pages[0].text
    assert "Hotel caps apply per night." in first
    assert "| City | Cap |" in first and "| Town3 | £103 |" in first
    assert "Second page text." in doc.pages[1].text
    assert doc.pages[0].metadata["format"] == "pdf"


def test_pdf_multipage_table_marks_continuation(tmp_path):
    rows = [["Code", "Meaning"]] + [[f"E{i:03d}", f"error number {i}"] for i in range(80)]
    p = make_pdf(tmp_path / "long.pdf", [["Error codes follow."]], rows)
    pages = ingest.load_pdf(p)
    assert len(pages) >= 2
    assert "(continued)" in pages[1]
    assert pages[1].count("| Code | Meaning |") == 1  # the repeated header appears once, as the header
    assert "| E079 | error number 79 |" in pages[-1]


def test_encrypted_pdf(tmp_path):
    p = make_pdf(tmp_path / "enc.pdf", [["secret text"]], encrypt=True)
    with pytest.raises(EncryptedFileError, match="encrypted"):
        ingest_file(p)


def test_corrupt_and_empty_and_huge(tmp_path):
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    with pytest.raises(CorruptFileError):
        ingest_file(bad)
    empty = tmp_path / "empty.md"
    empty.write_bytes(b"")
    with pytest.raises(EmptyDocumentError, match="empty"):
        ingest_file(empty)
    blank = tmp_path / "blank.md"
    blank.write_text("   \n\n")
    with pytest.raises(EmptyDocumentError):
        ingest_file(blank)
    big = tmp_path / "big.md"
    big.write_text("x" * 2000)
    with pytest.raises(FileTooLargeError, match="limit"):
        ingest_file(big, max_bytes=1000)
    xl = tmp_path / "bad.xlsx"
    xl.write_bytes(b"not a zip")
    with pytest.raises(CorruptFileError):
        ingest_file(xl)
    dx = tmp_path / "bad.docx"
    dx.write_bytes(b"PK\x03\x04broken")
    with pytest.raises(CorruptFileError):
        ingest_file(dx)


def test_wrong_encoding(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("name,city\nRen\xe9,Li\xe8ge\n".encode("latin-1"))
    with pytest.raises(EncodingError, match="UTF-8"):
        ingest_file(p)
    assert "René" in ingest.load_csv(p, encoding="latin-1")[0]


def test_html_boilerplate_removed(tmp_path):
    p = tmp_path / "page.html"
    p.write_text("""<html><body><nav>Home | About</nav><div class="cookie-banner">We use cookies</div>
    <main><h1>Parking</h1><p>There are 8 charging bays.</p><table><tr><th>Car park</th><th>Spaces</th></tr>
    <tr><td>A</td><td>50</td></tr></table></main><aside class="sidebar">Related links</aside>
    <footer>© Northbeam</footer></body></html>""")
    text = ingest_file(p).text
    assert "8 charging bays" in text and "# Parking" in text and "| A | 50 |" in text
    for junk in ("Home | About", "cookies", "Related links", "©"):
        assert junk not in text


def test_csv_xlsx_eml_docx(tmp_path):
    c = tmp_path / "p.csv"
    c.write_text("sku,price\nNB-100,29900\n")
    assert ingest_file(c).text.splitlines()[0] == "| sku | price |"

    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "Prices"
    wb.active.append(["sku", "price"])
    wb.active.append(["NB-300", 74000.0])
    wb.save(tmp_path / "p.xlsx")
    text = ingest_file(tmp_path / "p.xlsx").text
    assert "## Sheet: Prices" in text and "| NB-300 | 74000 |" in text

    from email.message import EmailMessage

    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@x.example", "b@x.example", "Prices"
    m.set_content("See attached.")
    m.add_attachment("sku,price\nA,1\n", subtype="csv", filename="p.csv")
    (tmp_path / "m.eml").write_bytes(bytes(m))
    text = ingest_file(tmp_path / "m.eml").text
    assert "Subject: Prices" in text and "See attached." in text and "| A | 1 |" in text
    (tmp_path / "junk.eml").write_text("just some words")
    with pytest.raises(CorruptFileError):
        ingest_file(tmp_path / "junk.eml")

    import docx

    d = docx.Document()
    d.add_heading("Minutes", level=1)
    d.add_paragraph("Decisions were made.")
    t = d.add_table(rows=2, cols=2)
    t.cell(0, 0).text, t.cell(0, 1).text, t.cell(1, 0).text, t.cell(1, 1).text = "Owner", "Action", "Ana", "Ship"
    d.save(tmp_path / "m.docx")
    text = ingest_file(tmp_path / "m.docx").text
    assert "# Minutes" in text and "Decisions were made." in text and "| Ana | Ship |" in text


def test_batch_continues_and_reports(tmp_path):
    good = tmp_path / "good.md"
    good.write_text("# Hello\n\nworld")
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"garbage")
    odd = tmp_path / "x.bin"
    odd.write_bytes(b"1")
    report = ingest_batch([bad, good, odd, tmp_path / "missing.md"])
    assert [d.doc_id for d in report.documents] == ["good"]
    assert [s.error for s in report.skipped] == ["CorruptFileError", "UnsupportedFormatError", "IngestError"]
    assert "1 documents" in report.summary() and "3 skipped" in report.summary()


def test_scan_ocr_is_cached(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path / "cache"))
    img = tmp_path / "scan.png"
    Image.new("L", (20, 20), 255).save(img)
    calls = []

    def fake_ocr(image):
        calls.append(image.size)
        return "Fire marshal: Colin", 91.5

    monkeypatch.setattr(ingest, "_ocr_image", fake_ocr)
    doc = ingest_file(img)
    assert doc.pages[0].text == "Fire marshal: Colin" and doc.pages[0].metadata["ocr_confidence"] == 91.5
    ingest_file(img)
    assert len(calls) == 1  # second load came from the cache
    assert len(list((tmp_path / "cache" / "ocr").glob("*.json"))) == 1
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(CorruptFileError):
        ingest_file(bad)


def test_corpus_record_metadata():
    from reference.datasets import load_manifest
    from reference.ingest import ingest_record

    rec = next(r for r in load_manifest() if r.doc_id == "fac-web-leeds-parking")
    doc = ingest_record(rec)
    meta = doc.pages[0].metadata
    assert meta["doc_id"] == rec.doc_id and meta["authority"] == "web" and meta["page"] is None
    assert meta["effective_date"] == (rec.effective_date.isoformat() if rec.effective_date else None)
    assert "8 electric vehicle charging bays" in doc.text
    assert "cookie" not in doc.text.lower()


