"""Split pages into chunks for retrieval: fixed, recursive, structure-aware and semantic.

Sizes are in **tokens of the embedding model's tokenizer**, because that is what the
embedding model sees: all-MiniLM-L6-v2 reads at most 256 word pieces and silently
drops the rest. Every :class:`Chunk` knows its token count, and :func:`truncation_report`
shows how many chunks the model would truncate.

* :func:`fixed_chunks` - windows of ``size`` tokens with ``overlap`` tokens shared.
* :func:`recursive_chunks` - split on paragraphs, then lines, sentences, words, and
  merge the pieces back up to ``size`` (the idea behind LangChain's recursive splitter).
* :func:`structure_chunks` - sections under their headings (the heading path is
  prepended), tables split between rows only, each table chunk repeating the header.
* :func:`semantic_chunks` - sentences grouped until the embedding similarity between
  neighbours drops below a percentile breakpoint.

Each chunk has a stable id ``<doc_id>#p<page>#<n>`` and the page's metadata. Its
``header`` (document title and section) is prepended in :attr:`Chunk.embed_text`,
which keeps context that a chunk alone would lose ("the cap is £210" - of what?).

Example:
    >>> from reference.ingest import Page
    >>> pages = [Page("One. Two. Three.", {"doc_id": "d", "page": 1, "title": "T"})]
    >>> [c.chunk_id for c in fixed_chunks(pages, size=2, overlap=0, counter=WordCounter())]
    ['d#p1#0', 'd#p1#1']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from reference.errors import InputError

__all__ = [
    "Chunk", "TokenCounter", "WordCounter", "ModelTokenCounter", "get_token_counter", "MODEL_MAX_TOKENS",
    "fixed_chunks", "recursive_chunks", "structure_chunks", "semantic_chunks", "truncation_report",
    "chunk_pages", "STRATEGIES", "split_sentences",
]

#: all-MiniLM-L6-v2 truncates its input at this many word pieces (special tokens included).
MODEL_MAX_TOKENS = 256


@dataclass(frozen=True)
class Chunk:
    """A piece of a page, ready to embed and cite."""

    chunk_id: str
    text: str
    doc_id: str
    page: int | None
    n_tokens: int
    kind: str = "text"  # "text" or "table"
    header: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def embed_text(self) -> str:
        """What gets embedded and indexed: the header line, then the text."""
        return f"{self.header}\n{self.text}" if self.header else self.text


class TokenCounter(Protocol):
    """Counts tokens and gives token character spans of a text."""

    def count(self, text: str) -> int: ...

    def spans(self, text: str) -> list[tuple[int, int]]: ...


class WordCounter:
    """Whitespace words as tokens: fast, model-free (tests, fake embedders).

    Example:
        >>> WordCounter().count("two words")
        2
    """

    def count(self, text: str) -> int:
        return len(text.split())

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in re.finditer(r"\S+", text)]


class ModelTokenCounter:
    """Word pieces of a Hugging Face tokenizer (all-MiniLM-L6-v2's by default), no special tokens.

    ``count`` excludes ``[CLS]``/``[SEP]``; the model's limit of 256 includes them, so a
    chunk fits when ``count(text) + 2 <= 256``.
    """

    def __init__(self, tokenizer: Any | None = None) -> None:
        self.tokenizer = tokenizer if tokenizer is not None else _minilm_tokenizer()

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def spans(self, text: str) -> list[tuple[int, int]]:
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [tuple(o) for o in enc["offset_mapping"]]


@lru_cache(maxsize=1)
def _minilm_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from reference.embeddings import minilm_path

    return AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)


def get_token_counter(kind: str = "model") -> TokenCounter:
    """``"model"`` for all-MiniLM-L6-v2's tokenizer, ``"words"`` for whitespace words."""
    if kind == "model":
        return ModelTokenCounter()
    if kind == "words":
        return WordCounter()
    raise InputError(f"unknown token counter {kind!r}: use 'model' or 'words'")


def _check_sizes(size: int, overlap: int) -> None:
    if size < 1:
        raise InputError(f"size must be >= 1 token, got {size}")
    if not 0 <= overlap < size:
        raise InputError(f"overlap must be in [0, size), got overlap={overlap} for size={size}")


def _page_fields(page: Any) -> tuple[str, dict[str, Any]]:
    meta = dict(getattr(page, "metadata", {}) or {})
    return getattr(page, "text", ""), meta


def _make(meta: dict[str, Any], n: int, text: str, counter: TokenCounter, *, kind: str = "text",
          section: str = "") -> Chunk:
    doc_id = str(meta.get("doc_id", "doc"))
    page = meta.get("page")
    title = str(meta.get("title") or "")
    header = " > ".join(x for x in (title, section) if x)
    return Chunk(f"{doc_id}#p{page or 0}#{n}", text, doc_id, page, counter.count(text), kind, header, meta)


# --------------------------------------------------------------------------- fixed


def fixed_chunks(pages: Sequence[Any], *, size: int = 200, overlap: int = 40,
                 counter: TokenCounter | None = None) -> list[Chunk]:
    """Windows of ``size`` tokens, each starting ``size - overlap`` tokens after the last.

    Blind to structure: it cuts tables mid-row and sentences mid-word.
    """
    _check_sizes(size, overlap)
    counter = counter or ModelTokenCounter()
    out: list[Chunk] = []
    for page in pages:
        text, meta = _page_fields(page)
        spans = counter.spans(text)
        n = 0
        for start in range(0, max(len(spans) - overlap, 1), size - overlap):
            window = spans[start:start + size]
            if not window:
                break
            piece = text[window[0][0]:window[-1][1]].strip()
            if piece:
                out.append(_make(meta, n, piece, counter))
                n += 1
    return out


# --------------------------------------------------------------------------- recursive

_SEPARATORS = ("\n\n", "\n", ". ", " ")


def _split_recursive(text: str, size: int, counter: TokenCounter, seps: Sequence[str]) -> list[str]:
    if counter.count(text) <= size or not seps:
        return [text] if counter.count(text) <= size else [text[s:e] for s, e in _hard_cut(text, size, counter)]
    sep, rest = seps[0], seps[1:]
    parts = [p for p in text.split(sep)]
    pieces: list[str] = []
    for i, part in enumerate(parts):
        part = part + (sep if i < len(parts) - 1 and sep.strip() else "")
        if not part.strip():
            continue
        pieces.extend(_split_recursive(part, size, counter, rest) if counter.count(part) > size else [part])
    return pieces


def _hard_cut(text: str, size: int, counter: TokenCounter) -> list[tuple[int, int]]:
    spans = counter.spans(text)
    return [(spans[i][0], spans[min(i + size, len(spans)) - 1][1]) for i in range(0, len(spans), size)]


def _merge(pieces: Sequence[str], size: int, overlap: int, counter: TokenCounter, joiner: str = " ") -> list[str]:
    out: list[str] = []
    current: list[str] = []
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        candidate = joiner.join([*current, piece])
        if current and counter.count(candidate) > size:
            out.append(joiner.join(current))
            # keep trailing pieces worth up to `overlap` tokens as context for the next chunk
            keep: list[str] = []
            for prev in reversed(current):
                if counter.count(joiner.join([prev, *keep])) > overlap:
                    break
                keep.insert(0, prev)
            current = [*keep, piece]
            while len(current) > 1 and counter.count(joiner.join(current)) > size:
                current.pop(0)
        else:
            current.append(piece)
    if current:
        out.append(joiner.join(current))
    return out


def recursive_chunks(pages: Sequence[Any], *, size: int = 200, overlap: int = 40,
                     counter: TokenCounter | None = None) -> list[Chunk]:
    """Split on the coarsest separator that makes pieces fit, then merge pieces up to ``size``."""
    _check_sizes(size, overlap)
    counter = counter or ModelTokenCounter()
    out: list[Chunk] = []
    for page in pages:
        text, meta = _page_fields(page)
        pieces = _split_recursive(text, size, counter, _SEPARATORS)
        for n, piece in enumerate(_merge(pieces, size, overlap, counter)):
            out.append(_make(meta, n, piece, counter))
    return out


# --------------------------------------------------------------------------- structure

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
_NUM_HEADING = re.compile(r"^(\d{1,2}(?:\.\d{1,2})*)\.?\s+([A-Z][^.!?]{1,70})$")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_SEP = re.compile(r"^\s*\|(\s*:?-{3,}:?\s*\|)+\s*$")


def _blocks(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, heading level) blocks: heading, table, or paragraph."""
    blocks: list[tuple[str, str, int]] = []
    para: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(("text", "\n".join(para), 0))
            para.clear()
        if table:
            blocks.append(("table", "\n".join(table), 0))
            table.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if _TABLE_ROW.match(stripped):
            if para:
                blocks.append(("text", "\n".join(para), 0))
                para.clear()
            table.append(stripped)
            continue
        if table:
            flush()
        m = _MD_HEADING.match(stripped)
        n = None if m else _NUM_HEADING.match(stripped)
        if m or n:
            flush()
            level = len(m.group(1)) if m else n.group(1).count(".") + 2  # type: ignore[union-attr]
            blocks.append(("heading", (m.group(2) if m else stripped), level))  # type: ignore[union-attr]
        elif not stripped:
            flush()
        else:
            para.append(line.rstrip())
    flush()
    return blocks


def _table_chunks(table: str, size: int, counter: TokenCounter) -> list[str]:
    lines = table.splitlines()
    if len(lines) >= 2 and _TABLE_SEP.match(lines[1]):
        head, rows = lines[:2], lines[2:]
    else:
        head, rows = lines[:1], lines[1:]
    head_text = "\n".join(head)
    budget = max(size - counter.count(head_text), 1)
    out, current = [], []
    for row in rows:
        if current and counter.count("\n".join([*current, row])) > budget:
            out.append(head_text + "\n" + "\n".join(current))
            current = []
        current.append(row)  # a row longer than the budget stays whole: rows are never split
    if current or not out:
        out.append(head_text + ("\n" + "\n".join(current) if current else ""))
    return out


def structure_chunks(pages: Sequence[Any], *, size: int = 200, overlap: int = 40,
                     counter: TokenCounter | None = None) -> list[Chunk]:
    """Chunks that follow headings and never split a table row; table chunks repeat the header.

    Text under a heading is merged up to ``size`` tokens (with ``overlap`` between
    consecutive chunks of one section); the heading path goes into ``Chunk.header``.
    """
    _check_sizes(size, overlap)
    counter = counter or ModelTokenCounter()
    out: list[Chunk] = []
    path: list[tuple[int, str]] = []
    last_doc = None
    for page in pages:
        text, meta = _page_fields(page)
        if meta.get("doc_id") != last_doc:  # a section continues onto the next page of one document
            path, last_doc = [], meta.get("doc_id")
        pending: list[str] = []
        n = 0

        def emit_text() -> None:
            nonlocal n
            section = " > ".join(t for _, t in path)
            pieces: list[str] = []
            for block in pending:
                pieces.extend(_split_recursive(block, size, counter, _SEPARATORS[1:]))
            for piece in _merge(pieces, size, overlap, counter, joiner="\n"):
                out.append(_make(meta, n, piece, counter, section=section))
                n += 1
            pending.clear()

        for kind, block, level in _blocks(text):
            if kind == "heading":
                emit_text()
                path = [(lv, t) for lv, t in path if lv < level] + [(level, block)]
            elif kind == "table":
                emit_text()
                section = " > ".join(t for _, t in path)
                for piece in _table_chunks(block, size, counter):
                    out.append(_make(meta, n, piece, counter, kind="table", section=section))
                    n += 1
            else:
                pending.append(block)
        emit_text()
    return out


# --------------------------------------------------------------------------- semantic

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9£€$(\"'])|\n{2,}|\n(?=\s*[-*|#])")


def split_sentences(text: str) -> list[str]:
    """Rough sentence split (also breaks at blank lines, bullets and table rows).

    Example:
        >>> split_sentences("It works. Really? Yes!")
        ['It works.', 'Really?', 'Yes!']
    """
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def semantic_chunks(pages: Sequence[Any], embedder: Any, *, size: int = 200, percentile: float = 25.0,
                    counter: TokenCounter | None = None) -> list[Chunk]:
    """Group sentences; start a new chunk where neighbour similarity falls in the lowest ``percentile``.

    Args:
        pages: pages to split.
        embedder: anything with ``embed(list[str]) -> (n, d)`` unit vectors.
        size: hard token limit per chunk.
        percentile: breakpoints are the similarities at or below this percentile of a page's
            neighbour similarities (lower = fewer, bigger chunks).
        counter: token counter.
    """
    if not 0 <= percentile <= 100:
        raise InputError(f"percentile must be in [0, 100], got {percentile}")
    _check_sizes(size, 0)
    counter = counter or ModelTokenCounter()
    out: list[Chunk] = []
    for page in pages:
        text, meta = _page_fields(page)
        sentences = []
        for s in split_sentences(text):
            sentences.extend(_split_recursive(s, size, counter, (" ",)) if counter.count(s) > size else [s])
        if not sentences:
            continue
        if len(sentences) > 1:
            vecs = np.asarray(embedder.embed(sentences), dtype=np.float32)
            sims = np.sum(vecs[:-1] * vecs[1:], axis=1)
            cut = float(np.percentile(sims, percentile))
        else:
            sims, cut = np.array([]), 0.0
        groups: list[list[str]] = [[sentences[0]]]
        for i, sentence in enumerate(sentences[1:]):
            too_big = counter.count(" ".join([*groups[-1], sentence])) > size
            if sims[i] <= cut or too_big:
                groups.append([sentence])
            else:
                groups[-1].append(sentence)
        for n, group in enumerate(groups):
            out.append(_make(meta, n, "\n".join(group), counter))
    return out


# --------------------------------------------------------------------------- helpers

STRATEGIES: dict[str, Callable[..., list[Chunk]]] = {
    "fixed": fixed_chunks, "recursive": recursive_chunks, "structure": structure_chunks,
}


def chunk_pages(pages: Sequence[Any], strategy: str = "structure", **kwargs: Any) -> list[Chunk]:
    """Run one strategy by name (``fixed``, ``recursive``, ``structure`` or ``semantic``)."""
    if strategy == "semantic":
        return semantic_chunks(pages, **kwargs)
    if strategy not in STRATEGIES:
        raise InputError(f"unknown chunking strategy {strategy!r}: use {sorted([*STRATEGIES, 'semantic'])}")
    return STRATEGIES[strategy](pages, **kwargs)


def truncation_report(chunks: Sequence[Chunk], limit: int = MODEL_MAX_TOKENS,
                      counter: TokenCounter | None = None) -> dict[str, Any]:
    """How many chunks (header included) exceed the embedding model's input limit.

    Returns a dict with ``n``, ``truncated`` (count), ``share`` and ``worst`` (chunk id, tokens).
    The 2 special tokens ([CLS], [SEP]) count against ``limit``.
    """
    counter = counter or ModelTokenCounter()
    sizes = [(c.chunk_id, counter.count(c.embed_text) + 2) for c in chunks]
    over = [s for s in sizes if s[1] > limit]
    worst = max(sizes, key=lambda s: s[1]) if sizes else ("", 0)
    return {"n": len(sizes), "truncated": len(over), "share": len(over) / len(sizes) if sizes else 0.0,
            "worst": worst}
