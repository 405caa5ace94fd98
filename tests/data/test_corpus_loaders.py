"""Tests for the corpus and golden-set loaders in reference.datasets.corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reference.datasets.corpus import (
    GOLDEN_PATH,
    MANIFEST_PATH,
    DocumentRecord,
    QAItem,
    document_path,
    load_golden,
    load_manifest,
)
from reference.errors import DataFileError, InputError


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _write(path: Path, rows: list) -> Path:
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_manifest_loads() -> None:
    docs = load_manifest()
    assert docs and all(isinstance(d, DocumentRecord) for d in docs)
    assert [d.doc_id for d in docs] == sorted(d.doc_id for d in docs)
    first = docs[0]
    assert document_path(first).is_file()
    assert document_path(first, root="/elsewhere") == Path("/elsewhere") / first.path


def test_valid_golden_loads_and_splits_partition() -> None:
    all_items = load_golden()
    dev, test = load_golden("dev"), load_golden("test")
    assert all(isinstance(q, QAItem) for q in all_items)
    assert {q.split for q in dev} == {"dev"} and {q.split for q in test} == {"test"}
    assert len(dev) + len(test) == len(all_items)
    assert {q.id for q in dev}.isdisjoint({q.id for q in test})


@pytest.mark.parametrize("split", ["train", "DEV", "", "validation"])
def test_bad_split_is_an_input_error(split: str) -> None:
    with pytest.raises(InputError, match="split must be 'dev', 'test' or None") as info:
        load_golden(split)
    assert not isinstance(info.value, DataFileError)
    assert repr(split) in str(info.value)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="file not found"):
        load_manifest(tmp_path / "manifest.jsonl")
    with pytest.raises(DataFileError, match="file not found"):
        load_golden(path=tmp_path / "golden.jsonl")


def test_malformed_json_line_names_the_line(tmp_path: Path) -> None:
    rows = _lines(MANIFEST_PATH)[:3]
    bad = _write(tmp_path / "manifest.jsonl", [rows[0], '{"doc_id": "x", ', rows[2]])
    with pytest.raises(DataFileError, match=r"manifest\.jsonl:2: invalid JSON"):
        load_manifest(bad)


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("format", "pptx", "format"),
        ("effective_date", "last Tuesday", "effective_date"),
        ("authority_rank", 9, "authority_rank"),
        ("doc_id", "Has Spaces", "doc_id"),
        ("unexpected", 1, "unexpected"),
    ],
)
def test_manifest_wrong_schema(tmp_path: Path, field: str, value: object, where: str) -> None:
    rows = _lines(MANIFEST_PATH)[:2]
    rows[1][field] = value
    with pytest.raises(DataFileError, match=rf":2: field '{where}'"):
        load_manifest(_write(tmp_path / "m.jsonl", rows))


def test_manifest_duplicate_doc_id(tmp_path: Path) -> None:
    row = _lines(MANIFEST_PATH)[0]
    with pytest.raises(DataFileError, match="appears more than once"):
        load_manifest(_write(tmp_path / "m.jsonl", [row, row]))


def _golden_row(qtype: str) -> dict:
    return next(r for r in _lines(GOLDEN_PATH) if r["type"] == qtype)


@pytest.mark.parametrize(
    ("qtype", "change", "message"),
    [
        ("lookup", {"type": "trivia"}, "field 'type'"),
        ("lookup", {"split": "train"}, "field 'split'"),
        ("lookup", {"supporting": []}, "need at least one supporting passage"),
        ("unanswerable", {"supporting": [{"doc_id": "x", "page": None, "passage": "y"}]}, "no supporting"),
        ("unanswerable", {"key_terms": []}, "key term"),
        ("contradiction", {"rule": None}, "need a 'rule'"),
        ("table", {"supporting": [{"doc_id": "x", "page": 0, "passage": "y"}]}, "supporting.0.page"),
    ],
)
def test_golden_wrong_schema(tmp_path: Path, qtype: str, change: dict, message: str) -> None:
    row = {**_golden_row(qtype), **change}
    with pytest.raises(DataFileError, match=message):
        load_golden(path=_write(tmp_path / "g.jsonl", [row]))


def test_golden_duplicate_id_and_empty_file(tmp_path: Path) -> None:
    row = _golden_row("lookup")
    with pytest.raises(DataFileError, match="appears more than once"):
        load_golden(path=_write(tmp_path / "g.jsonl", [row, row]))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="empty"):
        load_golden(path=empty)
