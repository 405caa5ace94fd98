#!/usr/bin/env python
"""Render the Northbeam Robotics document corpus from its human-readable sources.

Every document lives as one text file under ``datasets/corpus/source/``: a small
front-matter block (``key: value`` lines between ``---`` fences; values that look
like JSON are parsed as JSON) followed by a body. The ``format`` key picks the
renderer:

* ``pdf``       body is a Markdown subset -> text PDF (reportlab), with running
                  header/footer, page numbers, footnotes, multi-page tables that
                  repeat their header row, and ``::: twocol`` two-column pages.
* ``scan_pdf``  body is plain text -> rendered page image, skewed, low contrast,
* ``scan_png``    seeded noise -> JPEG-in-PDF or 16-level grayscale PNG.
* ``html``      body is the Markdown subset -> page wrapped in nav bar, cookie
                  banner, sidebar and footer; the content sits in ``<main>``.
* ``md``        body is written verbatim (a wiki page).
* ``csv``       body is written verbatim (CSV text).
* ``xlsx``      body is ``## Sheet: NAME`` sections of CSV text -> workbook.
* ``eml``       body is the plain-text mail body; headers come from front matter.
* ``docx``      body is the Markdown subset -> Word document (python-docx).

Usage::

    python datasets/corpus/generate.py            # writes docs/ and manifest.jsonl here
    python datasets/corpus/generate.py --out DIR  # writes DIR/docs and DIR/manifest.jsonl

Rendering is deterministic: seeded RNGs (seed derived from the doc_id), reportlab
``invariant=1``, fixed Office core-property timestamps and fixed zip member dates.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import html
import io
import json
import re
import shutil
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SOURCE_DIR = HERE / "source"
SEED = 20250401
ORG = "Northbeam Robotics Ltd."
FIXED_TIME = dt.datetime(2025, 6, 1, 9, 0, 0)
ZIP_TIME = (2025, 6, 1, 9, 0, 0)

#: Authority levels, highest first. The manifest stores both the name and its rank.
AUTHORITY_RANK = {"official": 1, "record": 2, "wiki": 3, "web": 4, "email": 5}
FORMATS = {"pdf", "scan_pdf", "scan_png", "html", "md", "csv", "xlsx", "eml", "docx"}
REQUIRED_KEYS = ("doc_id", "title", "format", "department", "authority", "file")


# --------------------------------------------------------------------------- sources
def parse_source(path: Path) -> tuple[dict[str, Any], str]:
    """Split a source file into (front matter dict, body text)."""
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise SystemExit(f"{path}: missing front matter")
    end = text.index("\n---\n", 4)
    meta: dict[str, Any] = {}
    for line in text[4:end].splitlines():
        if not line.strip():
            continue
        key, _, raw = line.partition(":")
        raw = raw.strip()
        value: Any = raw
        if raw[:1] in "[{\"" or raw in ("null", "true", "false"):
            value = json.loads(raw)
        meta[key.strip()] = value
    for key in REQUIRED_KEYS:
        if key not in meta:
            raise SystemExit(f"{path}: front matter lacks '{key}'")
    if meta["format"] not in FORMATS:
        raise SystemExit(f"{path}: unknown format {meta['format']!r}")
    if meta["authority"] not in AUTHORITY_RANK:
        raise SystemExit(f"{path}: unknown authority {meta['authority']!r}")
    return meta, text[end + 5 :]


def seed_for(doc_id: str) -> int:
    """Stable per-document seed (independent of PYTHONHASHSEED)."""
    return (SEED + zlib.crc32(doc_id.encode())) % (2**32)


# ------------------------------------------------------------------ markdown subset
def parse_blocks(body: str) -> tuple[list[tuple], dict[str, str]]:
    """Parse the Markdown subset into blocks plus footnote definitions."""
    blocks: list[tuple] = []
    notes: dict[str, str] = {}
    para: list[str] = []
    lines = body.splitlines()

    def flush() -> None:
        if para:
            blocks.append(("p", " ".join(s.strip() for s in para)))
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        s = line.strip()
        if not s:
            flush()
        elif m := re.match(r"^\[\^(\w+)\]:\s*(.*)$", s):
            flush()
            notes[m.group(1)] = m.group(2)
        elif s.startswith("#"):
            flush()
            level = len(s) - len(s.lstrip("#"))
            blocks.append((f"h{level}", s[level:].strip()))
        elif s == "::: twocol":
            flush()
            blocks.append(("twocol_start",))
        elif s == ":::":
            flush()
            blocks.append(("twocol_end",))
        elif s == "<<<pagebreak>>>":
            flush()
            blocks.append(("pagebreak",))
        elif s.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-{2,}:?", c) for c in cells):
                    rows.append(cells)
                i += 1
            blocks.append(("table", rows))
            continue
        elif s.startswith("- "):
            flush()
            items = []
            while i < len(lines) and lines[i].strip().startswith("- "):
                items.append(lines[i].strip()[2:])
                i += 1
            blocks.append(("bullets", items))
            continue
        elif s.startswith("> "):
            flush()
            blocks.append(("note", s[2:]))
        else:
            para.append(s)
        i += 1
    flush()
    return blocks, notes


def inline_markup(text: str, fmt: str) -> str:
    """Escape text and turn **bold** / [^n] into the target markup (rl or html)."""
    out = html.escape(text, quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    if fmt == "rl":
        out = re.sub(r"\[\^(\w+)\]", r"<super>\1</super>", out)
    else:
        out = re.sub(r"\[\^(\w+)\]", r'<sup><a href="#fn-\1">\1</a></sup>', out)
    return out


def plain(text: str) -> str:
    """Strip inline markup (for docx and plain renderings)."""
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    return re.sub(r"\[\^(\w+)\]", r"[\1]", text)


# ----------------------------------------------------------------------------- pdf
def render_pdf(meta: dict[str, Any], body: str, out: Path) -> None:
    from reportlab import rl_config
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_LEFT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import (
        BaseDocTemplate,
        Flowable,
        Frame,
        NextPageTemplate,
        PageBreak,
        PageTemplate,
        Paragraph,
        Spacer,
        Table,
        TableStyle,
    )

    rl_config.invariant = 1
    blocks, notes = parse_blocks(body)
    styles = getSampleStyleSheet()
    base = ParagraphStyle("nb-body", parent=styles["BodyText"], fontName="Helvetica",
                          fontSize=10, leading=13.5, alignment=TA_LEFT, spaceAfter=5)
    h1 = ParagraphStyle("nb-h1", parent=styles["Heading1"], fontName="Helvetica-Bold",
                        fontSize=17, leading=21, spaceAfter=8)
    h2 = ParagraphStyle("nb-h2", parent=styles["Heading2"], fontName="Helvetica-Bold",
                        fontSize=12.5, leading=16, spaceBefore=8, spaceAfter=4)
    h3 = ParagraphStyle("nb-h3", parent=styles["Heading3"], fontName="Helvetica-Bold",
                        fontSize=10.5, leading=14, spaceBefore=6, spaceAfter=3)
    note_style = ParagraphStyle("nb-note", parent=base, fontName="Helvetica-Oblique",
                                fontSize=9, leading=12, leftIndent=12, textColor=colors.HexColor("#333333"))
    cell = ParagraphStyle("nb-cell", parent=base, fontSize=8.5, leading=10.5, spaceAfter=0)
    cell_h = ParagraphStyle("nb-cellh", parent=cell, fontName="Helvetica-Bold")
    fn_style = ParagraphStyle("nb-fn", parent=base, fontSize=7.5, leading=9.5, spaceAfter=0)

    width, height = A4
    margin = 2 * cm
    fn_zone = 2.6 * cm  # reserved above the footer for footnotes
    frame_y = margin + fn_zone
    frame_h = height - 2 * margin - fn_zone - 0.6 * cm
    gap = 0.8 * cm
    col_w = (width - 2 * margin - gap) / 2

    pending: list[tuple[str, str]] = []

    class FootnoteMark(Flowable):
        """Zero-size flowable that files a footnote for the page it lands on."""

        def __init__(self, key: str, text: str) -> None:
            super().__init__()
            self.key, self.text = key, text

        def wrap(self, aw: float, ah: float) -> tuple[float, float]:
            return (0, 0)

        def draw(self) -> None:
            pending.append((self.key, self.text))

    version = meta.get("version") or "n/a"
    eff = meta.get("effective_date") or "n/a"

    def on_page(canv: Any, doc: Any) -> None:
        canv.saveState()
        canv.setFont("Helvetica-Bold", 8)
        canv.drawString(margin, height - 1.3 * cm, ORG)
        canv.setFont("Helvetica", 8)
        canv.drawRightString(width - margin, height - 1.3 * cm, meta["title"])
        canv.setStrokeColor(colors.grey)
        canv.line(margin, height - 1.45 * cm, width - margin, height - 1.45 * cm)
        canv.line(margin, 1.55 * cm, width - margin, 1.55 * cm)
        canv.drawString(margin, 1.1 * cm, f"Ref {meta['doc_id']} | Version {version} | Effective {eff}")
        canv.drawCentredString(width / 2, 0.7 * cm, meta.get("classification", "INTERNAL"))
        canv.drawRightString(width - margin, 1.1 * cm, f"Page {doc.page}")
        canv.restoreState()

    def on_page_end(canv: Any, doc: Any) -> None:
        if not pending:
            return
        canv.saveState()
        y = margin + fn_zone - 0.25 * cm
        canv.setStrokeColor(colors.black)
        canv.line(margin, y, margin + 4 * cm, y)
        y -= 0.1 * cm
        for key, text in pending:
            p = Paragraph(f"<super>{key}</super> {inline_markup(text, 'rl')}", fn_style)
            _, h = p.wrap(width - 2 * margin, fn_zone)
            p.drawOn(canv, margin, y - h)
            y -= h + 2
        canv.restoreState()
        pending.clear()

    single = PageTemplate(id="single", frames=[Frame(margin, frame_y, width - 2 * margin, frame_h, id="f1")],
                          onPage=on_page, onPageEnd=on_page_end)
    twocol = PageTemplate(id="twocol", frames=[Frame(margin, frame_y, col_w, frame_h, id="c1"),
                                               Frame(margin + col_w + gap, frame_y, col_w, frame_h, id="c2")],
                          onPage=on_page, onPageEnd=on_page_end)
    buf = io.BytesIO()
    doc = BaseDocTemplate(buf, pagesize=A4, pageTemplates=[single, twocol], invariant=1,
                          title=meta["title"], author=ORG, subject=meta.get("department", ""),
                          creator="northbeam corpus generator", leftMargin=margin, rightMargin=margin,
                          topMargin=margin, bottomMargin=margin)

    story: list[Any] = []
    avail = width - 2 * margin
    in_twocol = False
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3", "p", "note"):
            style = {"h1": h1, "h2": h2, "h3": h3, "p": base, "note": note_style}[kind]
            story.append(Paragraph(inline_markup(block[1], "rl"), style))
            for key in re.findall(r"\[\^(\w+)\]", block[1]):
                story.append(FootnoteMark(key, notes.get(key, "")))
        elif kind == "bullets":
            for item in block[1]:
                story.append(Paragraph(inline_markup(item, "rl"), base, bulletText="\u2022"))
                for key in re.findall(r"\[\^(\w+)\]", item):
                    story.append(FootnoteMark(key, notes.get(key, "")))
        elif kind == "table":
            rows = block[1]
            ncol = max(len(r) for r in rows)
            tw = col_w if in_twocol else avail
            lens = [max(len(plain(r[c])) if c < len(r) else 0 for r in rows) for c in range(ncol)]
            lens = [min(max(n, 4), 40) for n in lens]
            widths = [tw * n / sum(lens) for n in lens]
            data = [[Paragraph(inline_markup(c, "rl"), cell_h if r == 0 else cell) for c in row]
                    + [""] * (ncol - len(row)) for r, row in enumerate(rows)]
            t = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
            t.setStyle(TableStyle([
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde3ea")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
            ]))
            story.extend([t, Spacer(1, 6)])
        elif kind == "pagebreak":
            story.append(PageBreak())
        elif kind == "twocol_start":
            story.extend([NextPageTemplate("twocol"), PageBreak()])
            in_twocol = True
        elif kind == "twocol_end":
            story.extend([NextPageTemplate("single"), PageBreak()])
            in_twocol = False
    doc.build(story)
    out.write_bytes(buf.getvalue())


# ---------------------------------------------------------------------------- scans
def _vera(bold: bool = False) -> str:
    import reportlab

    return str(Path(reportlab.__file__).parent / "fonts" / ("VeraBd.ttf" if bold else "Vera.ttf"))


def render_scan_image(meta: dict[str, Any], body: str) -> Any:
    """Typeset the plain text on a page, then skew, fade and add seeded noise."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(_vera(), 25)
    bold = ImageFont.truetype(_vera(True), 30)
    width, margin, line_h = 1240, 100, 37
    lines: list[tuple[str, Any]] = []
    for raw in body.rstrip("\n").splitlines():
        f = bold if raw.startswith("# ") else font
        text = raw[2:] if raw.startswith("# ") else raw
        words, cur = text.split(" "), ""
        if not text:
            lines.append(("", f))
            continue
        for w in words:
            trial = (cur + " " + w) if cur else w
            if f.getlength(trial) > width - 2 * margin and cur:
                lines.append((cur, f))
                cur = w
            else:
                cur = trial
        lines.append((cur, f))
    height = max(1000, 2 * margin + line_h * len(lines) + 40)
    img = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(img)
    y = margin
    for text, f in lines:
        draw.text((margin, y), text, fill=20, font=f)
        y += line_h + (6 if f is bold else 0)
    rng = np.random.default_rng(seed_for(meta["doc_id"]))
    angle = float(meta.get("skew") or (rng.uniform(1.0, 3.0) * rng.choice([-1.0, 1.0])))
    img = img.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=255)
    arr = np.asarray(img).astype(np.float32)
    arr = 80.0 + arr * (135.0 / 255.0)  # low contrast: ink ~90, paper ~215
    arr += np.linspace(-8.0, 8.0, height, dtype=np.float32)[:, None]  # uneven lighting
    arr += rng.normal(0.0, 7.0, arr.shape).astype(np.float32)
    speck = rng.random(arr.shape) < 0.0015
    arr[speck] = 70.0
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, mode="L")


def render_scan_png(meta: dict[str, Any], body: str, out: Path) -> None:
    import numpy as np
    from PIL import Image

    img = render_scan_image(meta, body)
    indices = (np.asarray(img) // 16).astype(np.uint8)  # 16 grey levels
    pal = Image.frombytes("P", img.size, indices.tobytes())
    pal.putpalette([v for i in range(16) for v in (i * 17,) * 3])
    buf = io.BytesIO()
    pal.save(buf, format="PNG", bits=4, optimize=True, dpi=(150, 150))
    out.write_bytes(buf.getvalue())


def render_scan_pdf(meta: dict[str, Any], body: str, out: Path) -> None:
    from reportlab import rl_config
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    rl_config.invariant = 1
    img = render_scan_image(meta, body)
    jpeg = io.BytesIO()
    img.save(jpeg, format="JPEG", quality=55, dpi=(150, 150))
    jpeg.seek(0)
    w_pt, h_pt = img.width * 72 / 150, img.height * 72 / 150
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(w_pt, h_pt), invariant=1)
    c.setTitle(meta["title"])
    c.setAuthor("Scanner NB-LDS-MFP-02")
    c.drawImage(ImageReader(jpeg), 0, 0, width=w_pt, height=h_pt)
    c.showPage()
    c.save()
    out.write_bytes(buf.getvalue())


# ----------------------------------------------------------------------------- html
NAV = {
    "intranet": ["Home", "News", "People", "Finance", "IT Service Desk", "Facilities", "Policies",
                 "Directory"],
    "public": ["Products", "Beacon", "Customers", "Careers", "About", "Contact"],
}


def render_html(meta: dict[str, Any], body: str, out: Path) -> None:
    blocks, notes = parse_blocks(body)
    site = meta.get("site", "intranet")
    parts: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{inline_markup(block[1], 'html')}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{inline_markup(block[1], 'html')}</p>")
        elif kind == "note":
            parts.append(f'<div class="callout"><p>{inline_markup(block[1], "html")}</p></div>')
        elif kind == "bullets":
            items = "".join(f"<li>{inline_markup(x, 'html')}</li>" for x in block[1])
            parts.append(f"<ul>{items}</ul>")
        elif kind == "table":
            head = "".join(f"<th>{inline_markup(c, 'html')}</th>" for c in block[1][0])
            rows = "".join("<tr>" + "".join(f"<td>{inline_markup(c, 'html')}</td>" for c in r) + "</tr>"
                           for r in block[1][1:])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    if notes:
        items = "".join(f'<li id="fn-{k}">{inline_markup(v, "html")}</li>' for k, v in notes.items())
        parts.append(f'<ol class="footnotes">{items}</ol>')
    nav = "".join(f'<li><a href="/{n.lower().replace(" ", "-")}">{n}</a></li>' for n in NAV[site])
    side_links = meta.get("sidebar") or ["Related pages", "Ask a question", "Report an issue with this page"]
    side = "".join(f"<li><a href=\"#\">{html.escape(s)}</a></li>" for s in side_links)
    brand = "Northbeam Intranet" if site == "intranet" else "Northbeam Robotics"
    updated = meta.get("effective_date") or "2025-01-01"
    page = f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<title>{html.escape(meta['title'])} | {brand}</title>
<link rel="stylesheet" href="/static/css/site.css">
<script src="/static/js/analytics.js" defer></script>
</head>
<body class="site-{site}">
<div id="cookie-banner" class="cookie-banner" role="dialog">
<p>We use cookies to remember your preferences and to measure how this site is used.
Select "Accept all" to allow analytics cookies or "Only necessary" to refuse them.</p>
<button type="button">Accept all</button> <button type="button">Only necessary</button>
<a href="/cookies">Cookie settings</a>
</div>
<header class="top">
<a class="logo" href="/">{brand}</a>
<nav aria-label="Main"><ul>{nav}</ul></nav>
<form class="search" action="/search"><input type="search" name="q" placeholder="Search">
<button>Go</button></form>
</header>
<div class="layout">
<aside class="sidebar"><h2>On this site</h2><ul>{side}</ul>
<p class="help">Can't find what you need? Raise a ticket with the Service Desk.</p></aside>
<main id="content">
<p class="breadcrumb">{html.escape(meta.get('breadcrumb', 'Home'))}</p>
{chr(10).join(parts)}
<p class="page-meta">Page owner: {html.escape(meta['department'])}. Last reviewed {updated}.</p>
</main>
</div>
<footer>
<p>&copy; 2025 {ORG} Registered in England and Wales. Registered office: Kirkstall Works, Leeds.</p>
<ul><li><a href="/privacy">Privacy</a></li><li><a href="/accessibility">Accessibility</a></li>
<li><a href="/cookies">Cookies</a></li><li><a href="/sitemap">Sitemap</a></li></ul>
</footer>
</body>
</html>
"""
    out.write_text(page, encoding="utf-8")


# ----------------------------------------------------------------------------- xlsx
def _cell_value(raw: str) -> Any:
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if re.fullmatch(r"-?\d+\.\d+", raw):
        return float(raw)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        return dt.datetime.strptime(raw, "%Y-%m-%d")
    return raw


def render_xlsx(meta: dict[str, Any], body: str, out: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    wb = Workbook()
    wb.remove(wb.active)
    sections = re.split(r"^## Sheet: (.+)$", body, flags=re.M)
    for name, text in zip(sections[1::2], sections[2::2]):
        ws = wb.create_sheet(name.strip())
        rows = list(csv.reader(io.StringIO(text.strip("\n"))))
        widths: dict[int, int] = {}
        for r, row in enumerate(rows, start=1):
            for c, raw in enumerate(row, start=1):
                value = _cell_value(raw) if r > 1 else raw
                cell = ws.cell(row=r, column=c, value=value)
                if isinstance(value, float):
                    cell.number_format = "#,##0.00"
                elif isinstance(value, dt.datetime):
                    cell.number_format = "yyyy-mm-dd"
                if r == 1:
                    cell.font = Font(bold=True)
                    cell.fill = PatternFill("solid", fgColor="DDE3EA")
                widths[c] = max(widths.get(c, 8), min(len(raw) + 2, 50))
        for c, w in widths.items():
            ws.column_dimensions[ws.cell(row=1, column=c).column_letter].width = w
        ws.freeze_panes = "A2"
    wb.properties.creator = ORG
    wb.properties.title = meta["title"]
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    wb.properties.lastModifiedBy = ORG
    wb.save(out)
    normalize_zip(out)


# ----------------------------------------------------------------------------- docx
def render_docx(meta: dict[str, Any], body: str, out: Path) -> None:
    import docx

    blocks, notes = parse_blocks(body)
    d = docx.Document()
    cp = d.core_properties
    cp.author = ORG
    cp.last_modified_by = ORG
    cp.title = meta["title"]
    cp.created = FIXED_TIME
    cp.modified = FIXED_TIME
    cp.last_printed = FIXED_TIME
    cp.revision = 1
    cp.comments = "Northbeam document corpus (fictional)"
    header = d.sections[0].header.paragraphs[0]
    header.text = f"{ORG} | {meta['title']}"
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            d.add_heading(plain(block[1]), level=int(kind[1]) - (0 if kind == "h1" else 0))
        elif kind in ("p", "note"):
            d.add_paragraph(plain(block[1]))
        elif kind == "bullets":
            for item in block[1]:
                d.add_paragraph(plain(item), style="List Bullet")
        elif kind == "table":
            rows = block[1]
            ncol = max(len(r) for r in rows)
            t = d.add_table(rows=len(rows), cols=ncol)
            t.style = "Table Grid"
            for r, row in enumerate(rows):
                for c, text in enumerate(row):
                    t.cell(r, c).text = plain(text)
    if notes:
        d.add_heading("Notes", level=2)
        for key, text in notes.items():
            d.add_paragraph(f"[{key}] {plain(text)}")
    d.save(out)
    normalize_zip(out)


# ------------------------------------------------------------------------------ eml
def render_eml(meta: dict[str, Any], body: str, out: Path) -> None:
    from email import policy
    from email.message import EmailMessage

    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = meta["from"]
    msg["To"] = meta["to"]
    if meta.get("cc"):
        msg["Cc"] = meta["cc"]
    msg["Date"] = meta["date"]
    msg["Subject"] = meta.get("subject", meta["title"])
    msg["Message-ID"] = meta["message_id"]
    if meta.get("in_reply_to"):
        msg["In-Reply-To"] = meta["in_reply_to"]
        msg["References"] = meta.get("references", meta["in_reply_to"])
    msg["X-Mailer"] = meta.get("mailer", "Northbeam Mail Gateway 3.2")
    msg.set_content(body.rstrip("\n") + "\n", cte=meta.get("cte", "8bit"))
    if meta.get("attachment"):
        name, content = meta["attachment"]["name"], meta["attachment"]["content"]
        msg.add_attachment(content, subtype="csv", filename=name)
        msg.set_boundary(f"=_northbeam_{meta['doc_id']}_boundary")
    out.write_bytes(msg.as_bytes())


# ------------------------------------------------------------------------- helpers
def normalize_zip(path: Path) -> None:
    """Rewrite an OOXML zip with fixed member dates and fixed core-property times."""
    with zipfile.ZipFile(path) as zin:
        members = [(info.filename, zin.read(info.filename)) for info in zin.infolist()]
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(path, "w") as zout:
        for name, data in members:
            if name == "docProps/core.xml":
                text = data.decode("utf-8")
                for tag in ("created", "modified"):
                    pattern = rf"(<dcterms:{tag}[^>]*>)[^<]*(</dcterms:{tag}>)"
                    text = re.sub(pattern, rf"\g<1>{stamp}\g<2>", text)
                data = text.encode("utf-8")
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zout.writestr(info, data)


def render_verbatim(meta: dict[str, Any], body: str, out: Path) -> None:
    out.write_bytes(body.encode("utf-8"))


RENDERERS = {
    "pdf": render_pdf,
    "scan_pdf": render_scan_pdf,
    "scan_png": render_scan_png,
    "html": render_html,
    "md": render_verbatim,
    "csv": render_verbatim,
    "xlsx": render_xlsx,
    "eml": render_eml,
    "docx": render_docx,
}


def manifest_row(meta: dict[str, Any], src: Path) -> dict[str, Any]:
    return {
        "doc_id": meta["doc_id"],
        "path": f"docs/{meta['file']}",
        "format": meta["format"],
        "title": meta["title"],
        "department": meta["department"],
        "version": meta.get("version"),
        "effective_date": meta.get("effective_date"),
        "authority": meta["authority"],
        "authority_rank": AUTHORITY_RANK[meta["authority"]],
        "supersedes": meta.get("supersedes"),
        "tags": meta.get("tags") or [],
        "source_path": src.relative_to(HERE).as_posix(),
    }


def generate(out_dir: Path) -> list[dict[str, Any]]:
    """Render every source into ``out_dir/docs`` and write ``out_dir/manifest.jsonl``."""
    docs_dir = out_dir / "docs"
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for src in sorted(SOURCE_DIR.rglob("*")):
        if not src.is_file() or src.name.startswith((".", "_")) or src.name == "README.md":
            continue
        meta, body = parse_source(src)
        if meta["doc_id"] in seen:
            raise SystemExit(f"{src}: duplicate doc_id {meta['doc_id']}")
        seen.add(meta["doc_id"])
        target = docs_dir / meta["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        RENDERERS[meta["format"]](meta, body, target)
        rows.append(manifest_row(meta, src))
    rows.sort(key=lambda r: r["doc_id"])
    ids = {r["doc_id"] for r in rows}
    for r in rows:
        if r["supersedes"] and r["supersedes"] not in ids:
            raise SystemExit(f"{r['doc_id']}: supersedes unknown doc {r['supersedes']}")
    with open(out_dir / "manifest.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output directory (default: datasets/corpus)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = generate(args.out)
    total = sum((args.out / r["path"]).stat().st_size for r in rows)
    print(f"rendered {len(rows)} documents ({total / 1e6:.2f} MB) into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
