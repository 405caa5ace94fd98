"""Loaders for the Northbeam Robotics document corpus and its golden QA set.

The corpus (``datasets/corpus/``) is a set of fictional company documents in
messy real-world formats, listed one per line in ``manifest.jsonl``. The golden
set (``datasets/qa/golden.jsonl``) holds questions with reference answers and the
exact passages that support them. See ``datasets/README.md`` for the datasheet.

Example:
    >>> from reference.datasets.corpus import load_manifest, load_golden, document_text
    >>> docs = load_manifest()                       # doctest: +SKIP
    >>> dev = load_golden("dev")                     # doctest: +SKIP
    >>> pages = document_text(docs[0])               # doctest: +SKIP

``document_text`` is the reference extraction that the golden passages were
verified against: pdfplumber per page for text PDFs, the clean source text for
scans, the ``<main>`` element for HTML, rows joined with `` | `` for CSV/XLSX,
headers plus the plain-text body for e-mail and paragraphs plus table rows for
DOCX. Compare passages after :func:`normalize_whitespace`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reference.datasets._io import DATASETS_DIR, read_jsonl, require_unique
from reference.errors import DataFileError, InputError

#: Root of the rendered corpus (manifest paths are relative to it).
CORPUS_DIR = DATASETS_DIR / "corpus"
#: Default manifest location.
MANIFEST_PATH = CORPUS_DIR / "manifest.jsonl"
#: Default golden QA location.
GOLDEN_PATH = DATASETS_DIR / "qa" / "golden.jsonl"

DocFormat = Literal["pdf", "scan_pdf", "scan_png", "html", "md", "csv", "xlsx", "eml", "docx"]
Authority = Literal["official", "record", "wiki", "web", "email"]
QAType = Literal["lookup", "table", "scanned", "multi_hop", "numeric", "contradiction", "unanswerable"]
Difficulty = Literal["easy", "medium", "hard"]
Split = Literal["dev", "test"]

#: Formats whose supporting passages carry a 1-based page number.
PAGED_FORMATS = frozenset({"pdf", "scan_pdf", "scan_png"})
SPLITS = ("dev", "test")


class DocumentRecord(BaseModel):
    """One line of ``manifest.jsonl``: a rendered document and its metadata.

    Attributes:
        doc_id: stable identifier, e.g. ``fin-travel-policy-2025``.
        path: rendered file, relative to ``datasets/corpus/``.
        format: rendering format (``scan_*`` are images of text).
        title: human-readable title.
        department: owning department.
        version: document version, if the document has one.
        effective_date: date from which the content applies (or was issued).
        authority: source type; ``official`` > ``record`` > ``wiki`` > ``web`` > ``email``.
        authority_rank: 1 (highest) to 5 (lowest), matching ``authority``.
        supersedes: doc_id of the older document this one replaces, if any.
        tags: free-form tags such as ``pii``, ``prompt_injection`` or
            ``near_duplicate_of:<doc_id>``.
        source_path: human-readable source, relative to ``datasets/corpus/``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    doc_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    path: str = Field(min_length=1)
    format: DocFormat
    title: str = Field(min_length=1)
    department: str = Field(min_length=1)
    version: str | None = None
    effective_date: dt.date | None = None
    authority: Authority
    authority_rank: int = Field(ge=1, le=5)
    supersedes: str | None = None
    tags: list[str] = Field(default_factory=list)
    source_path: str = Field(min_length=1)


class SupportingPassage(BaseModel):
    """Evidence for an answer: an exact passage of one document.

    Attributes:
        doc_id: the document holding the passage.
        page: 1-based page for PDFs and scans; ``None`` for unpaged formats.
        passage: text that occurs verbatim in the document's extracted text
            after whitespace normalisation.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    doc_id: str = Field(min_length=1)
    page: int | None = Field(default=None, ge=1)
    passage: str = Field(min_length=1)


class QAItem(BaseModel):
    """One golden question with its reference answer and evidence.

    Attributes:
        id: stable identifier, e.g. ``nbq-001``.
        question: the question as a user would ask it.
        answer: short reference answer.
        type: question category (see the datasheet).
        difficulty: ``easy``, ``medium`` or ``hard``.
        split: ``dev`` for development, ``test`` held out for final numbers.
        supporting: passages that justify the answer; empty for unanswerable.
        rule: for contradiction questions, the rule that resolves the conflict.
        key_terms: for unanswerable questions, the distinctive terms that must
            not co-occur in any single document.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    question: str = Field(min_length=5)
    answer: str = Field(min_length=1)
    type: QAType
    difficulty: Difficulty
    split: Split
    supporting: list[SupportingPassage] = Field(default_factory=list)
    rule: str | None = None
    key_terms: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_shape(self) -> QAItem:
        if self.type == "unanswerable":
            if self.supporting:
                raise ValueError("unanswerable questions must have no supporting passages")
            if not self.key_terms:
                raise ValueError("unanswerable questions need at least one key term")
        elif not self.supporting:
            raise ValueError(f"{self.type} questions need at least one supporting passage")
        if self.type == "contradiction" and not self.rule:
            raise ValueError("contradiction questions need a 'rule'")
        return self


def load_manifest(path: str | Path | None = None) -> list[DocumentRecord]:
    """Load the corpus manifest.

    Args:
        path: manifest file; defaults to ``datasets/corpus/manifest.jsonl``.

    Returns:
        One record per document, in manifest order (sorted by ``doc_id``).

    Raises:
        DataFileError: the file is missing, malformed, or lists a doc_id twice.
    """
    p = Path(path) if path is not None else MANIFEST_PATH
    records = read_jsonl(p, DocumentRecord)
    require_unique(p, (rec.doc_id for rec in records), "doc_id")
    return records


def load_golden(split: str | None = None, path: str | Path | None = None) -> list[QAItem]:
    """Load the golden QA set, optionally one split only.

    Args:
        split: ``"dev"``, ``"test"`` or ``None`` for both.
        path: golden file; defaults to ``datasets/qa/golden.jsonl``.

    Returns:
        The questions in file order.

    Raises:
        InputError: ``split`` is not ``"dev"``, ``"test"`` or ``None``.
        DataFileError: the file is missing or malformed, or an id repeats.
    """
    if split is not None and split not in SPLITS:
        raise InputError(f"split must be 'dev', 'test' or None (both), got {split!r}")
    p = Path(path) if path is not None else GOLDEN_PATH
    items = read_jsonl(p, QAItem)
    require_unique(p, (item.id for item in items), "question id")
    return [q for q in items if split is None or q.split == split]


def document_path(record: DocumentRecord, root: str | Path | None = None) -> Path:
    """Absolute path of a rendered document.

    Args:
        record: a manifest record.
        root: corpus root; defaults to ``datasets/corpus``.

    Returns:
        ``root / record.path`` (not checked for existence).
    """
    return (Path(root) if root is not None else CORPUS_DIR) / record.path


def normalize_whitespace(text: str) -> str:
    """Collapse every whitespace run to one space and strip the ends."""
    return " ".join(text.split())


def _strip_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            return text[end + 5 :]
    return text


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def document_text(record: DocumentRecord, root: str | Path | None = None) -> list[str]:
    """Extract a document's text, one string per page.

    Unpaged formats return a single-element list. Scans return their clean
    source text (OCR is the reader's job; the source text is the ground truth).

    Args:
        record: a manifest record.
        root: corpus root; defaults to ``datasets/corpus``.

    Returns:
        Page texts; join or index them as needed (page ``n`` is ``pages[n - 1]``).

    Raises:
        DataFileError: the document or its source file is missing.
    """
    base = Path(root) if root is not None else CORPUS_DIR
    path = document_path(record, base)
    if record.format in ("scan_pdf", "scan_png"):
        src = base / record.source_path
        if not src.is_file():
            raise DataFileError(f"{src}: scan source text not found")
        return [_strip_front_matter(src.read_text(encoding="utf-8"))]
    if not path.is_file():
        raise DataFileError(f"{path}: document not found (regenerate with datasets/corpus/generate.py)")
    fmt = record.format
    if fmt == "pdf":
        import pdfplumber

        with pdfplumber.open(path) as pdf:
            return [page.extract_text() or "" for page in pdf.pages]
    if fmt == "html":
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(path.read_bytes(), "lxml")
        main = soup.find("main") or soup.body or soup
        return [main.get_text(" ")]
    if fmt == "md":
        return [path.read_text(encoding="utf-8")]
    if fmt == "csv":
        rows = csv.reader(io.StringIO(path.read_text(encoding="utf-8")))
        return ["\n".join(" | ".join(row) for row in rows)]
    if fmt == "xlsx":
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        lines: list[str] = []
        for ws in wb.worksheets:
            lines.append(f"Sheet: {ws.title}")
            for row in ws.iter_rows(values_only=True):
                lines.append(" | ".join(_cell(v) for v in row))
        wb.close()
        return ["\n".join(lines)]
    if fmt == "eml":
        from email import policy
        from email.parser import BytesParser

        msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        head = [f"{h}: {msg[h]}" for h in ("From", "To", "Cc", "Date", "Subject") if msg[h]]
        body = msg.get_body(preferencelist=("plain",))
        content = body.get_content() if body is not None else ""
        return ["\n".join(head) + "\n\n" + content]
    if fmt == "docx":
        import docx

        d = docx.Document(str(path))
        parts: list[str] = []
        for block in d.iter_inner_content():
            if hasattr(block, "rows"):
                parts.extend(" | ".join(c.text for c in row.cells) for row in block.rows)
            else:
                parts.append(block.text)
        return ["\n".join(parts)]
    raise InputError(f"unsupported format {fmt!r}")  # pragma: no cover - Literal guards this
