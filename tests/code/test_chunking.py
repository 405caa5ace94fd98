"""Unit tests for reference.chunking: sizes, overlap, structure, tables, semantic breaks, truncation."""

from __future__ import annotations

import pytest

from reference.chunking import (
    WordCounter, chunk_pages, fixed_chunks, recursive_chunks, semantic_chunks, split_sentences,
    structure_chunks, truncation_report,
)
from reference.embeddings import FakeEmbedder
from reference.errors import InputError
from reference.ingest import Page

W = WordCounter()


def page(text, doc="d", n=1, title="Doc"):
    return Page(text, {"doc_id": doc, "page": n, "title": title})


def test_fixed_windows_and_overlap():
    words = " ".join(f"w{i}" for i in range(10))
    chunks = fixed_chunks([page(words)], size=4, overlap=1, counter=W)
    assert [c.text for c in chunks] == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
    assert [c.chunk_id for c in chunks] == ["d#p1#0", "d#p1#1", "d#p1#2"]
    assert all(c.n_tokens <= 4 for c in chunks)


@pytest.mark.parametrize("size,overlap", [(0, 0), (5, 5), (5, -1)])
def test_bad_sizes(size, overlap):
    with pytest.raises(InputError):
        fixed_chunks([page("a b")], size=size, overlap=overlap, counter=W)


def test_recursive_prefers_paragraphs_and_respects_size():
    text = "Alpha beta gamma.\n\nDelta epsilon zeta eta theta.\n\n" + " ".join(["x"] * 12)
    chunks = recursive_chunks([page(text)], size=6, overlap=0, counter=W)
    assert chunks[0].text == "Alpha beta gamma."
    assert all(c.n_tokens <= 6 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == text.split()  # nothing lost, nothing duplicated


def test_structure_keeps_headings_and_table_rows():
    rows = "\n".join(f"| City{i} | £{100 + i} |" for i in range(10))
    text = f"# Policy\n\n## Hotels\n\nCaps per night.\n\n| City | Cap |\n| --- | --- |\n{rows}\n\n## Claims\n\nWithin 30 days."
    chunks = structure_chunks([page(text)], size=12, overlap=0, counter=W)
    tables = [c for c in chunks if c.kind == "table"]
    assert len(tables) >= 3
    for t in tables:
        lines = t.text.splitlines()
        assert lines[:2] == ["| City | Cap |", "| --- | --- |"]  # header repeated in every table chunk
        assert all(line.startswith("|") and line.endswith("|") for line in lines)  # whole rows only
        assert t.header == "Doc > Policy > Hotels"
    data_rows = [line for t in tables for line in t.text.splitlines()[2:]]
    assert data_rows == rows.splitlines()  # every row exactly once, in order
    claims = [c for c in chunks if "30 days" in c.text][0]
    assert claims.header == "Doc > Policy > Claims" and claims.embed_text.startswith("Doc > Policy > Claims\n")


def test_structure_numbered_headings_carry_over_pages():
    p1 = page("1. Principles\nSpend wisely.\n2. Hotels\nCaps apply.", n=1)
    p2 = page("More about caps.", n=2)
    chunks = structure_chunks([p1, p2], size=50, overlap=0, counter=W)
    assert chunks[-1].header.endswith("2. Hotels") and chunks[-1].page == 2


def test_split_sentences():
    assert split_sentences("One. Two? £3 is cheap.\n\n- bullet") == ["One.", "Two?", "£3 is cheap.", "- bullet"]


def test_semantic_breaks_between_topics():
    text = ("Hotel cap London hotel cap. Hotel cap Leeds hotel cap. "
            "Robot battery charge dock. Robot battery charge time.")
    chunks = semantic_chunks([page(text)], FakeEmbedder(dim=256), size=50, percentile=10, counter=W)
    assert len(chunks) == 2
    assert "London" in chunks[0].text and "battery" in chunks[1].text


def test_chunk_pages_dispatch_and_unknown():
    assert chunk_pages([page("a b c")], "fixed", size=2, overlap=0, counter=W)[0].text == "a b"
    with pytest.raises(InputError, match="unknown chunking"):
        chunk_pages([page("a")], "magic")


def test_truncation_report_counts_header_and_special_tokens():
    chunks = fixed_chunks([page(" ".join(["w"] * 300))], size=254, overlap=0, counter=W)
    rep = truncation_report(chunks, limit=256, counter=W)
    # 254 words + title "Doc" + 2 special tokens = 257 > 256
    assert rep["truncated"] == 1 and rep["n"] == 2 and rep["worst"][1] == 257


def test_model_token_counter_counts_word_pieces():
    from reference.chunking import ModelTokenCounter

    try:
        counter = ModelTokenCounter()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"tokenizer unavailable: {exc}")
    assert counter.count("unbelievably") > 1  # split into word pieces
    assert len(counter.spans("hello world")) == counter.count("hello world")
