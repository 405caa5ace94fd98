"""Checks for the Northbeam document corpus (datasets/corpus) and golden QA set (datasets/qa).

Passage resolution uses ``reference.datasets.corpus.document_text`` (pdfplumber per
page for text PDFs, BeautifulSoup ``<main>`` for HTML, the clean source text for
scans, csv/openpyxl rows joined with `` | `` for sheets, the email package for
.eml and python-docx for .docx); the tests below also check that this extraction
behaves as documented (cookie banners excluded, one text per PDF page, ...).
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from reference.datasets.corpus import (
    CORPUS_DIR,
    PAGED_FORMATS,
    DocumentRecord,
    QAItem,
    document_path,
    document_text,
    load_golden,
    load_manifest,
    normalize_whitespace,
)

QA_TYPES = ("lookup", "table", "scanned", "multi_hop", "numeric", "contradiction", "unanswerable")
MAX_BYTES = 25 * 1024 * 1024


@pytest.fixture(scope="module")
def manifest() -> list[DocumentRecord]:
    return load_manifest()


@pytest.fixture(scope="module")
def by_id(manifest: list[DocumentRecord]) -> dict[str, DocumentRecord]:
    return {r.doc_id: r for r in manifest}


@pytest.fixture(scope="module")
def golden() -> list[QAItem]:
    return load_golden()


@pytest.fixture(scope="module")
def texts(manifest: list[DocumentRecord]) -> dict[str, list[str]]:
    """Normalised extracted text of every document, one string per page."""
    return {r.doc_id: [normalize_whitespace(p) for p in document_text(r)] for r in manifest}


# ------------------------------------------------------------------------ corpus
def test_corpus_size_and_formats(manifest: list[DocumentRecord]) -> None:
    formats = Counter(r.format for r in manifest)
    assert len(manifest) >= 60, f"only {len(manifest)} documents"
    assert len(formats) >= 5, f"only formats {sorted(formats)}"
    for fmt in ("pdf", "html", "md", "csv", "xlsx", "eml", "docx"):
        assert formats[fmt] >= 3, f"too few {fmt} documents: {formats[fmt]}"
    assert formats["scan_pdf"] + formats["scan_png"] >= 6


def test_every_path_exists_and_total_size(manifest: list[DocumentRecord]) -> None:
    missing = [r.path for r in manifest if not document_path(r).is_file()]
    assert not missing, f"manifest paths missing on disk: {missing}"
    no_source = [r.source_path for r in manifest if not (CORPUS_DIR / r.source_path).is_file()]
    assert not no_source, f"source files missing: {no_source}"
    total = sum(document_path(r).stat().st_size for r in manifest)
    assert total < MAX_BYTES, f"corpus is {total / 1e6:.1f} MB"
    on_disk = {p.relative_to(CORPUS_DIR).as_posix() for p in (CORPUS_DIR / "docs").rglob("*") if p.is_file()}
    assert on_disk == {r.path for r in manifest}, "docs/ and the manifest list different files"


def test_manifest_metadata_is_consistent(manifest: list[DocumentRecord], by_id: dict) -> None:
    rank = {"official": 1, "record": 2, "wiki": 3, "web": 4, "email": 5}
    for r in manifest:
        assert r.authority_rank == rank[r.authority], r.doc_id
        expected_suffix = {"scan_pdf": "pdf", "scan_png": "png"}.get(r.format, r.format)
        assert Path(r.path).suffix.lstrip(".") == expected_suffix, r.doc_id
        if r.supersedes:
            old = by_id[r.supersedes]
            assert r.effective_date and old.effective_date, r.doc_id
            assert r.effective_date > old.effective_date, f"{r.doc_id} is not newer than {old.doc_id}"
        for tag in r.tags:
            if tag.startswith("near_duplicate_of:"):
                assert tag.split(":", 1)[1] in by_id, f"{r.doc_id}: bad tag {tag}"
    tags = Counter(t.split(":")[0] for r in manifest for t in r.tags)
    assert tags["pii"] >= 1 and tags["prompt_injection"] >= 1 and tags["near_duplicate_of"] >= 1
    assert sum(1 for r in manifest if r.supersedes) >= 3, "need old/new versions of documents"
    assert any(r.authority == "wiki" for r in manifest) and any(r.authority == "email" for r in manifest)


def test_special_documents_contain_what_their_tags_say(manifest: list[DocumentRecord], texts: dict) -> None:
    for r in manifest:
        text = " ".join(texts[r.doc_id])
        if "prompt_injection" in r.tags:
            assert "Ignore previous instructions" in text
        if "pii" in r.tags:
            assert "IBAN" in text and "FAKE" in text and "@example.com" in text
        for tag in r.tags:
            if tag.startswith("near_duplicate_of:"):
                other = " ".join(texts[tag.split(":", 1)[1]])
                a, b = set(text.split()), set(other.split())
                assert len(a & b) / len(a | b) > 0.8, "near duplicate is not near"
                assert text != other, "near duplicate is an exact duplicate"


def test_text_pdfs_have_running_header_footer_and_page_numbers(
    manifest: list[DocumentRecord], texts: dict
) -> None:
    import pypdf

    for r in (r for r in manifest if r.format == "pdf"):
        pages = texts[r.doc_id]
        assert len(pages) == len(pypdf.PdfReader(document_path(r)).pages)
        for n, page in enumerate(pages, start=1):
            assert page.startswith("Northbeam Robotics Ltd."), f"{r.doc_id} p{n}: no running header"
            assert f"Page {n}" in page, f"{r.doc_id} p{n}: no page number"
    travel = texts["fin-travel-policy-2025"]
    header = "City Country Hotel cap per night Meal per diem"
    assert len(travel) >= 2 and header in travel[0] and header in travel[1], "table header not repeated"
    assert any(re.search(r"\b1 The threshold applies", p) for p in travel), "footnote missing"


def test_scans_are_images_without_a_text_layer(manifest: list[DocumentRecord]) -> None:
    import pdfplumber
    from PIL import Image

    for r in (r for r in manifest if r.format in ("scan_pdf", "scan_png")):
        path = document_path(r)
        assert path.stat().st_size < 600_000, f"{r.path} is too large"
        if r.format == "scan_png":
            with Image.open(path) as im:
                assert im.mode in ("L", "P") and im.width >= 1000
                assert round(im.info["dpi"][0]) == 150
        else:
            with pdfplumber.open(path) as pdf:
                assert len(pdf.pages) == 1 and pdf.pages[0].images
                assert not (pdf.pages[0].extract_text() or "").strip(), f"{r.path} has a text layer"


def test_extraction_strips_boilerplate_and_attachments(manifest: list[DocumentRecord], texts: dict) -> None:
    for r in manifest:
        text = " ".join(texts[r.doc_id])
        if r.format == "html":
            raw = document_path(r).read_text(encoding="utf-8")
            assert "We use cookies" in raw and "We use cookies" not in text
            assert "Registered in England" not in text and "On this site" not in text
        if r.format == "eml":
            assert text.startswith("From: ")
        assert len(text) > 200, f"{r.doc_id}: suspiciously little text"
    price_mail = " ".join(texts["prd-email-price-change-2025"])
    assert "old_gbp" not in price_mail, "attachment leaked into the body text"


# ------------------------------------------------------------------------ golden
def test_golden_counts(golden: list[QAItem]) -> None:
    types = Counter(q.type for q in golden)
    assert len(golden) >= 220, f"only {len(golden)} questions"
    for t in QA_TYPES:
        assert types[t] >= 15, f"type {t} has {types[t]} questions"
    assert types["unanswerable"] / len(golden) >= 0.15
    assert len({q.id for q in golden}) == len(golden)
    assert len({q.question for q in golden}) == len(golden), "duplicate questions"


def test_split_is_stratified_60_40(golden: list[QAItem]) -> None:
    for t in QA_TYPES:
        items = [q for q in golden if q.type == t]
        share = sum(q.split == "test" for q in items) / len(items)
        assert 0.3 <= share <= 0.5, f"{t}: test share {share:.2f}"
    assert {q.id for q in load_golden("dev")}.isdisjoint(q.id for q in load_golden("test"))


def test_supporting_passages_resolve(golden: list[QAItem], by_id: dict, texts: dict) -> None:
    problems: list[str] = []
    for q in golden:
        for s in q.supporting:
            rec = by_id.get(s.doc_id)
            if rec is None:
                problems.append(f"{q.id}: unknown doc {s.doc_id}")
                continue
            pages = texts[s.doc_id]
            needle = normalize_whitespace(s.passage)
            if rec.format in PAGED_FORMATS:
                if s.page is None or not 1 <= s.page <= len(pages):
                    problems.append(f"{q.id}: bad page {s.page} for {s.doc_id}")
                elif needle not in pages[s.page - 1]:
                    problems.append(f"{q.id}: not on page {s.page} of {s.doc_id}: {needle!r}")
            elif s.page is not None:
                problems.append(f"{q.id}: unpaged {s.doc_id} has page {s.page}")
            elif needle not in pages[0]:
                problems.append(f"{q.id}: not in {s.doc_id}: {needle!r}")
    assert not problems, "\n".join(problems[:20])


def test_types_match_their_evidence(golden: list[QAItem], by_id: dict) -> None:
    for q in golden:
        fmts = {by_id[s.doc_id].format for s in q.supporting}
        docs = {s.doc_id for s in q.supporting}
        if q.type == "scanned":
            assert fmts & {"scan_pdf", "scan_png"}, q.id
        if q.type == "multi_hop":
            assert len(q.supporting) >= 2, q.id
        if q.type == "contradiction":
            assert len(docs) >= 2 and q.rule, q.id
        if q.type == "numeric":
            assert re.search(r"\d", q.answer), q.id


def _cooccurring_docs(terms: list[str], full_texts: dict[str, str]) -> list[str]:
    """Docs whose text contains every term (case-insensitive substring match)."""
    low = [t.lower() for t in terms]
    return [d for d, text in full_texts.items() if all(t in text for t in low)]


def test_unanswerable_key_terms_never_cooccur(golden: list[QAItem], texts: dict) -> None:
    """Heuristic: an unanswerable question names key terms (all present in the
    question); if one document contains all of them, it might hold the answer."""
    full = {d: " ".join(p).lower() for d, p in texts.items()}
    problems = []
    for q in (q for q in golden if q.type == "unanswerable"):
        for term in q.key_terms:
            assert term.lower() in q.question.lower(), f"{q.id}: key term {term!r} not in question"
        hits = _cooccurring_docs(q.key_terms, full)
        if hits:
            problems.append(f"{q.id} {q.key_terms} co-occur in {hits}")
    assert not problems, "\n".join(problems)
    # the heuristic has teeth: an answerable question would be caught
    assert "prd-nb300-datasheet" in _cooccurring_docs(["NB-300", "payload"], full)
    assert "leg-beacon-sla" in _cooccurring_docs(["Enterprise", "99.95%"], full)


# ------------------------------------------------------------------- determinism
def _equivalent(fmt: str, a: bytes, b: bytes) -> bool:
    """Documented tolerance when bytes differ: same pixels / zip members / PDF text."""
    if a == b:
        return True
    if fmt == "scan_png":
        from PIL import Image

        with Image.open(io.BytesIO(a)) as ia, Image.open(io.BytesIO(b)) as ib:
            return ia.convert("L").tobytes() == ib.convert("L").tobytes()
    if fmt in ("xlsx", "docx"):
        with zipfile.ZipFile(io.BytesIO(a)) as za, zipfile.ZipFile(io.BytesIO(b)) as zb:
            return sorted(za.namelist()) == sorted(zb.namelist()) and all(
                za.read(n) == zb.read(n) for n in za.namelist()
            )
    if fmt in ("pdf", "scan_pdf"):
        import pdfplumber

        def dump(data: bytes) -> list:
            with pdfplumber.open(io.BytesIO(data)) as pdf:
                return [(p.extract_text(), len(p.images)) for p in pdf.pages]

        return dump(a) == dump(b)
    return False


def test_generator_is_deterministic(tmp_path: Path, manifest: list[DocumentRecord]) -> None:
    proc = subprocess.run(
        [sys.executable, str(CORPUS_DIR / "generate.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "manifest.jsonl").read_bytes() == (CORPUS_DIR / "manifest.jsonl").read_bytes()
    differing = defaultdict(list)
    for r in manifest:
        fresh = (tmp_path / r.path).read_bytes()
        committed = document_path(r).read_bytes()
        if not _equivalent(r.format, fresh, committed):
            differing[r.format].append(r.path)
    assert not differing, f"regenerated files differ from committed ones: {dict(differing)}"
