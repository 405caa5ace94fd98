#!/usr/bin/env python
"""Build ``datasets/qa/golden.jsonl`` from the hand-written question sources.

Sources are ``datasets/qa/source/*.txt``: blocks separated by blank lines, one
field per line::

    Q: question text
    A: short reference answer
    T: <type> <difficulty>
    S: <doc_id> | <exact passage>        (repeatable; none for unanswerable)
    R: <rule>                            (contradiction questions)
    K: <term>; <term>                    (unanswerable questions: key terms)

The builder finds the page of every passage in the rendered corpus (using the
reference extraction in ``reference.datasets.corpus.document_text``), fails
loudly when a passage is not found verbatim after whitespace normalisation,
assigns ids (``nbq-001``... in source order) and a stratified 60/40 dev/test
split (within each type, items 2 and 4 of every 5 go to test), and writes
golden.jsonl.

Usage: python datasets/qa/build_golden.py   (after datasets/corpus/generate.py)
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))

from reference.datasets.corpus import (  # noqa: E402
    PAGED_FORMATS,
    QAItem,
    document_text,
    load_manifest,
    normalize_whitespace,
)


def parse_sources() -> list[dict]:
    items: list[dict] = []
    for src in sorted((HERE / "source").glob("*.txt")):
        for n, block in enumerate(src.read_text(encoding="utf-8").split("\n\n"), start=1):
            lines = [ln for ln in block.strip().splitlines() if ln.strip() and not ln.startswith("#")]
            if not lines:
                continue
            item: dict = {"supporting": [], "_where": f"{src.name} block {n}"}
            for line in lines:
                tag, _, value = line.partition(": ")
                value = value.strip()
                if tag == "Q":
                    item["question"] = value
                elif tag == "A":
                    item["answer"] = value
                elif tag == "T":
                    item["type"], item["difficulty"] = value.split()
                elif tag == "S":
                    doc_id, _, passage = value.partition(" | ")
                    item["supporting"].append({"doc_id": doc_id.strip(), "passage": passage.strip()})
                elif tag == "R":
                    item["rule"] = value
                elif tag == "K":
                    item["key_terms"] = [t.strip() for t in value.split(";") if t.strip()]
                else:
                    raise SystemExit(f"{item['_where']}: unknown line {line!r}")
            items.append(item)
    return items


def main() -> int:
    docs = {d.doc_id: d for d in load_manifest()}
    pages = {d.doc_id: [normalize_whitespace(p) for p in document_text(d)] for d in docs.values()}
    full = {k: " ".join(v).lower() for k, v in pages.items()}
    items = parse_sources()
    errors: list[str] = []
    by_type: dict[str, int] = defaultdict(int)
    out: list[dict] = []
    for i, item in enumerate(items, start=1):
        where = item.pop("_where")
        for sup in item["supporting"]:
            if sup["doc_id"] not in docs:
                errors.append(f"{where}: unknown doc {sup['doc_id']}")
                continue
            needle = normalize_whitespace(sup["passage"])
            hits = [n for n, text in enumerate(pages[sup["doc_id"]], start=1) if needle in text]
            if not hits:
                errors.append(f"{where}: passage not found in {sup['doc_id']}: {needle!r}")
                continue
            sup["passage"] = needle
            sup["page"] = hits[0] if docs[sup["doc_id"]].format in PAGED_FORMATS else None
        if item.get("type") == "unanswerable":
            terms = [t.lower() for t in item.get("key_terms", [])]
            for t in terms:
                if t not in item["question"].lower():
                    errors.append(f"{where}: key term {t!r} not in question")
            for doc_id, text in full.items():
                if terms and all(t in text for t in terms):
                    errors.append(f"{where}: key terms {terms} all occur in {doc_id}")
        qtype = item.get("type", "?")
        k = by_type[qtype]
        by_type[qtype] += 1
        record = {
            "id": f"nbq-{i:03d}",
            "question": item.get("question"),
            "answer": item.get("answer"),
            "type": qtype,
            "difficulty": item.get("difficulty"),
            "split": "test" if k % 5 in (1, 3) else "dev",
            "supporting": [{"doc_id": s["doc_id"], "page": s.get("page"), "passage": s["passage"]}
                           for s in item["supporting"]],
        }
        if "rule" in item:
            record["rule"] = item["rule"]
        if "key_terms" in item:
            record["key_terms"] = item["key_terms"]
        try:
            QAItem.model_validate(record)
        except Exception as exc:  # report every problem at once
            errors.append(f"{where}: {exc}")
        out.append(record)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        print(f"{len(errors)} problem(s); golden.jsonl not written", file=sys.stderr)
        return 1
    with open(HERE / "golden.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for record in out:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    counts = ", ".join(f"{t}={n}" for t, n in sorted(by_type.items()))
    print(f"wrote {len(out)} questions ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
