"""Turn messy files into clean page texts with metadata, and say what was skipped.

One loader per format, each returning :class:`Page` objects (one per PDF page, one
for unpaged formats) whose ``metadata`` carries the manifest facts a retriever and a
RAG prompt need (doc_id, source, page, format, title, version, effective_date,
authority). What each loader fixes compared with naive extraction:

* **PDF** (pdfplumber): tables come out as Markdown tables with their header row,
  not as space-separated cells; a table that continues on the next page (repeating
  its header there) is marked ``(continued)`` and keeps a single header row.
* **Scans** (scan PDF / PNG): OCR with tesseract, the mean word confidence per page
  in ``metadata["ocr_confidence"]``, and the OCR text cached under the lab cache dir
  keyed by the file's SHA-256, so a second run costs nothing.
* **HTML**: nav, header, footer, aside, cookie banners and sidebars removed; tables as Markdown.
* **CSV / XLSX**: Markdown tables (header row first), one per sheet.
* **E-mail**: the header lines, the plain-text body and any text attachment.
* **DOCX**: headings as ``#`` lines, paragraphs, tables as Markdown.

Bad input never surfaces as a deep library traceback: it raises a subclass of
:class:`IngestError` (itself a :class:`reference.errors.InputError`), and
:func:`ingest_batch` / :func:`ingest_corpus` keep going and list what they skipped.

Example:
    >>> from reference.datasets import load_manifest        # doctest: +SKIP
    >>> report = ingest_corpus(load_manifest())              # doctest: +SKIP
    >>> report.documents[0].pages[0].metadata["doc_id"]      # doctest: +SKIP
    'fac-budget-2025'
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reference.datasets.corpus import DocumentRecord, document_path
from reference.errors import EmptyInputError, InputError, InputTooLargeError

__all__ = [
    "IngestError", "UnsupportedFormatError", "CorruptFileError", "EmptyDocumentError",
    "EncryptedFileError", "FileTooLargeError", "EncodingError",
    "Page", "Document", "Skipped", "IngestReport",
    "detect_format", "markdown_table", "load_pdf", "load_scan", "load_html", "load_markdown",
    "load_csv", "load_xlsx", "load_eml", "load_docx", "ingest_file", "ingest_record",
    "ingest_batch", "ingest_corpus", "ocr_cache_dir", "naive_text",
]

#: Files larger than this are refused (override per call with ``max_bytes``).
MAX_BYTES = 25_000_000


# --------------------------------------------------------------------------- errors


class IngestError(InputError):
    """A file could not be turned into text; the message names the file and the fix."""


class UnsupportedFormatError(IngestError):
    """The file's extension/format has no loader."""


class CorruptFileError(IngestError):
    """The file is damaged or is not what its extension says."""


class EmptyDocumentError(IngestError, EmptyInputError):
    """The file is empty, or holds no extractable text."""


class EncryptedFileError(IngestError):
    """The file is password-protected."""


class FileTooLargeError(IngestError, InputTooLargeError):
    """The file is over the size limit."""


class EncodingError(IngestError):
    """A text file is not in the expected character encoding."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Page:
    """The text of one page (or of a whole unpaged document) plus its metadata."""

    text: str
    metadata: dict[str, Any]

    @property
    def doc_id(self) -> str:
        return str(self.metadata.get("doc_id", ""))

    @property
    def page(self) -> int | None:
        return self.metadata.get("page")


@dataclass(frozen=True)
class Document:
    """A loaded document: its pages in order."""

    doc_id: str
    pages: list[Page]

    @property
    def text(self) -> str:
        return "\n\n".join(p.text for p in self.pages)

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.pages[0].metadata) if self.pages else {"doc_id": self.doc_id}


@dataclass(frozen=True)
class Skipped:
    """A file batch ingestion skipped, with the error class and message."""

    source: str
    error: str
    message: str


@dataclass
class IngestReport:
    """What a batch ingestion produced and what it skipped (and why)."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def pages(self) -> list[Page]:
        return [p for d in self.documents for p in d.pages]

    def summary(self) -> str:
        """One line: counts of documents, pages and skipped files."""
        return (f"{len(self.documents)} documents, {len(self.pages)} pages, "
                f"{len(self.skipped)} skipped in {self.seconds:.1f} s")


# --------------------------------------------------------------------------- helpers

_EXT_FORMAT = {
    ".pdf": "pdf", ".png": "scan_png", ".jpg": "scan_png", ".jpeg": "scan_png", ".tif": "scan_png",
    ".tiff": "scan_png", ".html": "html", ".htm": "html", ".md": "md", ".markdown": "md",
    ".txt": "md", ".csv": "csv", ".xlsx": "xlsx", ".eml": "eml", ".docx": "docx",
}


def detect_format(path: str | Path) -> str:
    """The lab format name for a file extension.

    Example:
        >>> detect_format("notes/report.PDF")
        'pdf'

    Raises:
        UnsupportedFormatError: no loader handles this extension.
    """
    ext = Path(path).suffix.lower()
    if ext not in _EXT_FORMAT:
        raise UnsupportedFormatError(
            f"{path}: no loader for '{ext or '(no extension)'}'; supported: {sorted(_EXT_FORMAT)}")
    return _EXT_FORMAT[ext]


def _check_file(path: Path, max_bytes: int) -> bytes:
    if not path.is_file():
        raise IngestError(f"{path}: file not found")
    size = path.stat().st_size
    if size == 0:
        raise EmptyDocumentError(f"{path}: the file is empty (0 bytes)")
    if size > max_bytes:
        raise FileTooLargeError(
            f"{path}: {size:,} bytes is over the {max_bytes:,}-byte limit; split the file or pass max_bytes=")
    return path.read_bytes()


def _decode(data: bytes, path: Path, encoding: str = "utf-8") -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise EncodingError(
            f"{path}: not valid {encoding} (byte {exc.start}: {data[exc.start:exc.start + 4]!r}); "
            "re-save it as UTF-8 or pass encoding= (e.g. 'cp1252')") from None
    if "\x00" in text:
        raise EncodingError(f"{path}: contains NUL characters; is it UTF-16 or a binary file?")
    return text.removeprefix("\ufeff")


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def markdown_table(rows: Sequence[Sequence[object]]) -> str:
    """Render rows (the first is the header) as a Markdown table.

    Example:
        >>> print(markdown_table([["City", "Cap"], ["London", "£210"]]))
        | City | Cap |
        | --- | --- |
        | London | £210 |
    """
    clean = [[_cell_text(c).replace("|", "/") for c in row] for row in rows if any(_cell_text(c) for c in row)]
    if not clean:
        return ""
    width = max(len(r) for r in clean)
    clean = [r + [""] * (width - len(r)) for r in clean]
    lines = ["| " + " | ".join(clean[0]) + " |", "| " + " | ".join(["---"] * width) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in clean[1:]]
    return "\n".join(lines)


def _base_metadata(path: Path, fmt: str, record: DocumentRecord | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"doc_id": path.stem, "source": str(path), "format": fmt, "title": path.stem,
                            "version": None, "effective_date": None, "authority": None, "authority_rank": None,
                            "department": None, "supersedes": None, "tags": []}
    if record is not None:
        meta.update(doc_id=record.doc_id, title=record.title, version=record.version,
                    effective_date=record.effective_date.isoformat() if record.effective_date else None,
                    authority=record.authority, authority_rank=record.authority_rank,
                    department=record.department, supersedes=record.supersedes, tags=list(record.tags))
    return meta


# --------------------------------------------------------------------------- PDF


def _open_pdf(path: Path) -> Any:
    import pdfplumber
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise EncryptedFileError(f"{path}: the PDF is encrypted; decrypt it first (e.g. qpdf --decrypt)")
    except PdfReadError as exc:
        raise CorruptFileError(f"{path}: not a readable PDF ({exc})") from None
    except EncryptedFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on garbage
        raise CorruptFileError(f"{path}: not a readable PDF ({type(exc).__name__}: {exc})") from None
    try:
        return pdfplumber.open(path)
    except Exception as exc:  # noqa: BLE001
        raise CorruptFileError(f"{path}: pdfplumber cannot open it ({type(exc).__name__})") from None


def naive_text(path: str | Path) -> list[str]:
    """What plain ``extract_text`` gives per PDF page: the baseline the loaders improve on."""
    with _open_pdf(Path(path)) as pdf:
        return [p.extract_text() or "" for p in pdf.pages]


def load_pdf(path: str | Path, *, max_bytes: int = MAX_BYTES) -> list[str]:
    """Text of each PDF page, tables as Markdown at their place in the page.

    A table whose header row equals the header of the last table on the previous page
    is a continuation: it is titled ``(continued)`` and its header appears once.

    Raises:
        CorruptFileError, EncryptedFileError, EmptyDocumentError, FileTooLargeError.
    """
    p = Path(path)
    _check_file(p, max_bytes)
    pages: list[str] = []
    last_header: list[str] | None = None
    with _open_pdf(p) as pdf:
        for page in pdf.pages:
            tables = sorted(page.find_tables(), key=lambda t: t.bbox[1])
            parts: list[str] = []
            top = 0.0
            for table in tables:
                x0, t_top, x1, t_bottom = table.bbox
                if t_top > top:
                    above = page.crop((0, top, page.width, t_top)).extract_text() or ""
                    parts.append(above.strip())
                rows = [[_cell_text(c) for c in row] for row in table.extract() if row]
                if rows:
                    header = rows[0]
                    title = "(continued) " if last_header is not None and header == last_header and t_top < 150 else ""
                    parts.append((f"Table {title}".strip() + ":\n" if title else "") + markdown_table(rows))
                    last_header = header
                top = t_bottom
            rest = page.crop((0, top, page.width, page.height)).extract_text() if top else page.extract_text()
            parts.append((rest or "").strip())
            pages.append("\n\n".join(x for x in parts if x).replace("(cid:127)", "-"))
    if not any(t.strip() for t in pages):
        raise EmptyDocumentError(f"{p}: no text layer on any page; is it a scan? load it with load_scan()")
    return pages


# --------------------------------------------------------------------------- OCR


def ocr_cache_dir() -> Path:
    """Folder of cached OCR results (``$LAB_CACHE_DIR/ocr``)."""
    from reference.hf import cache_dir

    return cache_dir() / "ocr"


def _scan_images(path: Path, data: bytes) -> list[Any]:
    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower() == ".pdf":
        from pypdf import PdfReader

        _open_pdf(path).close()
        images = []
        for page in PdfReader(path).pages:
            found = list(page.images)
            if not found:
                raise EmptyDocumentError(f"{path}: a page has no image to OCR")
            images.append(found[0].image)
        return images
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise CorruptFileError(f"{path}: not a readable image ({exc})") from None
    return [img]


def _ocr_image(image: Any) -> tuple[str, float]:
    import pytesseract

    try:
        data = pytesseract.image_to_data(image.convert("L"), output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractNotFoundError:
        raise IngestError("tesseract is not installed: run `make setup` (apt-get install tesseract-ocr)") from None
    lines: dict[tuple[int, int, int], list[str]] = {}
    confs: list[float] = []
    for i, word in enumerate(data["text"]):
        conf = float(data["conf"][i])
        if not word.strip() or conf < 0:
            continue
        key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
        lines.setdefault(key, []).append(word)
        confs.append(conf)
    text, prev = [], None
    for key, words in lines.items():
        if prev is not None and key[:2] != prev[:2]:
            text.append("")
        text.append(" ".join(words))
        prev = key
    return "\n".join(text), (sum(confs) / len(confs) if confs else 0.0)


def load_scan(path: str | Path, *, max_bytes: int = MAX_BYTES, use_cache: bool = True) -> list[tuple[str, float]]:
    """OCR a scanned PDF or an image: ``(text, mean word confidence 0-100)`` per page.

    Results are cached in :func:`ocr_cache_dir` under the file's SHA-256.

    Raises:
        CorruptFileError, EmptyDocumentError, FileTooLargeError, IngestError (no tesseract).
    """
    p = Path(path)
    data = _check_file(p, max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    cached = ocr_cache_dir() / f"{digest}.json"
    if use_cache and cached.is_file():
        return [(t, c) for t, c in json.loads(cached.read_text(encoding="utf-8"))]
    out = [_ocr_image(img) for img in _scan_images(p, data)]
    if use_cache:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(out), encoding="utf-8")
        tmp.replace(cached)
    return out


# --------------------------------------------------------------------------- HTML, Markdown, sheets

_BOILERPLATE = re.compile(r"cookie|consent|banner|sidebar|side-bar|footer|navbar|breadcrumb|skip-link", re.I)


def load_html(path: str | Path, *, max_bytes: int = MAX_BYTES, encoding: str = "utf-8") -> list[str]:
    """Main text of an HTML page, boilerplate removed, tables as Markdown."""
    from bs4 import BeautifulSoup

    p = Path(path)
    text = _decode(_check_file(p, max_bytes), p, encoding)
    soup = BeautifulSoup(text, "lxml")
    for tag in soup(["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "template"]):
        tag.decompose()
    for tag in soup.find_all(True):
        if tag.decomposed or tag.attrs is None:
            continue
        names = " ".join(tag.get("class", []) or []) + " " + str(tag.get("id", "") or "") + " " + str(tag.get("role", ""))
        if _BOILERPLATE.search(names) and tag.name not in ("html", "body", "main"):
            tag.decompose()
    root = soup.find("main") or soup.body or soup
    for table in root.find_all("table"):
        rows = [[c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])] for tr in table.find_all("tr")]
        table.replace_with(soup.new_string("\n" + markdown_table(rows) + "\n"))
    for h in root.find_all(re.compile(r"^h[1-6]$")):
        h.insert_before(soup.new_string("\n" + "#" * int(h.name[1]) + " "))
        h.insert_after(soup.new_string("\n"))
    for block in root.find_all(["p", "li", "div", "br"]):
        block.insert_after(soup.new_string("\n"))
    lines = [" ".join(line.split()) if not line.lstrip().startswith("|") else line.strip()
             for line in root.get_text().splitlines()]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if not out:
        raise EmptyDocumentError(f"{p}: no text left after removing boilerplate")
    return [out]


def load_markdown(path: str | Path, *, max_bytes: int = MAX_BYTES, encoding: str = "utf-8") -> list[str]:
    """A Markdown/text file as one page (front matter removed)."""
    p = Path(path)
    text = _decode(_check_file(p, max_bytes), p, encoding)
    if text.startswith("---\n") and (end := text.find("\n---\n", 4)) != -1:
        text = text[end + 5:]
    if not text.strip():
        raise EmptyDocumentError(f"{p}: only whitespace")
    return [text.strip()]


def load_csv(path: str | Path, *, max_bytes: int = MAX_BYTES, encoding: str = "utf-8") -> list[str]:
    """A CSV file as one Markdown table (its first row is the header)."""
    p = Path(path)
    text = _decode(_check_file(p, max_bytes), p, encoding)
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise CorruptFileError(f"{p}: malformed CSV ({exc})") from None
    table = markdown_table(rows)
    if not table:
        raise EmptyDocumentError(f"{p}: no rows")
    return [table]


def load_xlsx(path: str | Path, *, max_bytes: int = MAX_BYTES) -> list[str]:
    """A workbook as one page: a ``## Sheet: NAME`` heading and a Markdown table per sheet."""
    import zipfile

    from openpyxl import load_workbook

    p = Path(path)
    _check_file(p, max_bytes)
    try:
        wb = load_workbook(p, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise CorruptFileError(f"{p}: not a readable .xlsx workbook ({type(exc).__name__})") from None
    parts = []
    for ws in wb.worksheets:
        table = markdown_table([list(r) for r in ws.iter_rows(values_only=True)])
        if table:
            parts.append(f"## Sheet: {ws.title}\n\n{table}")
    wb.close()
    if not parts:
        raise EmptyDocumentError(f"{p}: every sheet is empty")
    return ["\n\n".join(parts)]


def load_eml(path: str | Path, *, max_bytes: int = MAX_BYTES) -> list[str]:
    """An e-mail: From/To/Cc/Date/Subject lines, the plain body, and text attachments."""
    from email import policy
    from email.parser import BytesParser

    p = Path(path)
    msg = BytesParser(policy=policy.default).parsebytes(_check_file(p, max_bytes))
    head = [f"{h}: {msg[h]}" for h in ("From", "To", "Cc", "Date", "Subject") if msg[h]]
    if not head:
        raise CorruptFileError(f"{p}: no e-mail headers (From/To/Subject); is it really an .eml file?")
    body = msg.get_body(preferencelist=("plain", "html"))
    content = ""
    if body is not None:
        content = body.get_content()
        if body.get_content_type() == "text/html":
            from bs4 import BeautifulSoup

            content = BeautifulSoup(content, "lxml").get_text("\n")
    parts = ["\n".join(head), content.strip()]
    for att in msg.iter_attachments():
        if att.get_content_maintype() == "text":
            name = att.get_filename() or "attachment"
            payload = att.get_content()
            if att.get_content_subtype() == "csv":
                payload = markdown_table(list(csv.reader(io.StringIO(payload))))
            parts.append(f"Attachment: {name}\n\n{payload.strip()}")
    return ["\n\n".join(x for x in parts if x)]


def load_docx(path: str | Path, *, max_bytes: int = MAX_BYTES) -> list[str]:
    """A Word document: headings as ``#`` lines, paragraphs and Markdown tables in order."""
    import zipfile

    import docx

    p = Path(path)
    _check_file(p, max_bytes)
    from docx.opc.exceptions import PackageNotFoundError

    try:
        d = docx.Document(str(p))
    except (zipfile.BadZipFile, KeyError, ValueError, PackageNotFoundError) as exc:
        raise CorruptFileError(f"{p}: not a readable .docx ({type(exc).__name__})") from None
    parts: list[str] = []
    for block in d.iter_inner_content():
        if hasattr(block, "rows"):
            parts.append(markdown_table([[c.text for c in row.cells] for row in block.rows]))
            continue
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        m = re.match(r"Heading (\d)", style)
        parts.append(("#" * int(m.group(1)) + " " + text) if m else ("# " + text if style == "Title" else text))
    if not parts:
        raise EmptyDocumentError(f"{p}: no paragraphs or tables")
    return ["\n\n".join(parts)]


# --------------------------------------------------------------------------- dispatch

_TEXT_LOADERS: dict[str, Callable[..., list[str]]] = {
    "pdf": load_pdf, "html": load_html, "md": load_markdown, "csv": load_csv, "xlsx": load_xlsx,
    "eml": load_eml, "docx": load_docx,
}


def ingest_file(
    path: str | Path, *, record: DocumentRecord | None = None, fmt: str | None = None,
    max_bytes: int = MAX_BYTES, ocr_cache: bool = True,
) -> Document:
    """Load one file into a :class:`Document` (format from ``record``, ``fmt`` or the extension).

    Example:
        >>> doc = ingest_file("notes.md")                 # doctest: +SKIP

    Raises:
        IngestError: a subclass naming what is wrong with the file.
    """
    p = Path(path)
    fmt = fmt or (record.format if record is not None else detect_format(p))
    meta = _base_metadata(p, fmt, record)
    pages: list[Page] = []
    if fmt in ("scan_pdf", "scan_png"):
        for i, (text, conf) in enumerate(load_scan(p, max_bytes=max_bytes, use_cache=ocr_cache), start=1):
            pages.append(Page(text, {**meta, "page": i, "ocr_confidence": round(conf, 1)}))
        if not any(pg.text.strip() for pg in pages):
            raise EmptyDocumentError(f"{p}: OCR found no words")
    elif fmt in _TEXT_LOADERS:
        texts = _TEXT_LOADERS[fmt](p, max_bytes=max_bytes)
        paged = fmt == "pdf"
        pages = [Page(t, {**meta, "page": i if paged else None}) for i, t in enumerate(texts, start=1)]
    else:
        raise UnsupportedFormatError(f"{p}: unsupported format {fmt!r}")
    return Document(meta["doc_id"], pages)


def ingest_record(record: DocumentRecord, *, root: str | Path | None = None, **kwargs: Any) -> Document:
    """Load a manifest document with its metadata."""
    return ingest_file(document_path(record, root), record=record, **kwargs)


def _progress(items: Sequence[Any], show: bool, desc: str) -> Iterable[Any]:
    if not show:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False)


def ingest_batch(
    paths: Sequence[str | Path], *, progress: bool = False, **kwargs: Any
) -> IngestReport:
    """Load many files; bad ones are skipped and listed in ``report.skipped``.

    Example:
        >>> report = ingest_batch(["a.md", "broken.pdf"])  # doctest: +SKIP
        >>> [s.error for s in report.skipped]              # doctest: +SKIP
        ['CorruptFileError']
    """
    import time

    start = time.perf_counter()
    report = IngestReport()
    for path in _progress(list(paths), progress, "ingest"):
        try:
            report.documents.append(ingest_file(path, **kwargs))
        except IngestError as exc:
            report.skipped.append(Skipped(str(path), type(exc).__name__, str(exc)))
    report.seconds = time.perf_counter() - start
    return report


def ingest_corpus(
    records: Sequence[DocumentRecord], *, root: str | Path | None = None, progress: bool = False, **kwargs: Any
) -> IngestReport:
    """Load manifest documents with their metadata; failures are skipped and reported."""
    import time

    start = time.perf_counter()
    report = IngestReport()
    for rec in _progress(list(records), progress, "ingest"):
        try:
            report.documents.append(ingest_record(rec, root=root, **kwargs))
        except IngestError as exc:
            report.skipped.append(Skipped(rec.doc_id, type(exc).__name__, str(exc)))
    report.seconds = time.perf_counter() - start
    return report
