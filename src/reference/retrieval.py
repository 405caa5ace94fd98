"""Retrieval over chunks: dense (Qdrant), BM25, hybrid (RRF), reranking and source rules.

* :class:`DenseIndex` - embeddings in Qdrant. ``QdrantClient(":memory:")`` by default,
  ``path=`` for an on-disk local store, ``url=`` for a Qdrant server: the same code.
* :class:`BM25Index` - rank-bm25 over identifier-aware tokens (``NB-300`` stays findable).
* :class:`Retriever` - one of ``dense``, ``bm25``, ``hybrid`` (reciprocal rank fusion),
  optionally followed by a reranker and the recency/authority rules.
* :class:`LexicalDenseReranker` - **not a cross-encoder** (no offline cross-encoder wheel
  exists for this lab): it rescores candidates with a weighted sum of the query-chunk
  cosine similarity and the IDF-weighted share of query terms the chunk contains.
* :func:`apply_source_rules` - superseded versions sink below the document that replaces
  them; the rule is data in the manifest (``supersedes``, ``effective_date``, ``authority_rank``).

Indexing is incremental: each document's chunks are hashed; an unchanged document is
skipped, a changed one has its chunks replaced. Filters are a dict: a value matches a
payload field (a list means "any of"), and a ``not_`` prefix excludes, e.g.
``{"department": "Finance", "not_tags": "superseded"}``.

Example:
    >>> from reference.embeddings import FakeEmbedder
    >>> from reference.chunking import Chunk
    >>> r = Retriever(dense=DenseIndex(FakeEmbedder()), mode="dense")
    >>> _ = r.index([Chunk("a#p0#0", "hotel cap London", "a", None, 3)], progress=False)
    >>> r.retrieve("hotel cap", k=1)[0].chunk.doc_id
    'a'
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from reference.chunking import Chunk
from reference.errors import ConfigurationError, InputError

__all__ = [
    "Hit", "IndexStats", "DenseIndex", "BM25Index", "Retriever", "LexicalDenseReranker",
    "CachedEmbedder", "rrf_fuse", "bm25_tokens", "apply_source_rules", "matches_filters", "build_retriever", "doc_ranking",
]

_STOP = frozenset(
    "a an and are as at be by can do does for from has have how i if in is it its many much of on or our "
    "per the this to was we what when where which who whom why will with would should there their than "
    "that these those into about after before any all more most must not no only other same such so "
    "up out over under between each during did done were been being you your they them he his she her "
    "northbeam".split()
)


def bm25_tokens(text: str) -> list[str]:
    """Lower-case terms; identifiers like ``NB-300`` give ``nb-300``, ``nb`` and ``300``; stop words dropped.

    Example:
        >>> bm25_tokens("What does the NB-300 cost?")
        ['nb-300', 'nb', '300', 'cost']
    """
    out: list[str] = []
    for tok in re.findall(r"[a-z0-9£€$]+(?:[-./][a-z0-9]+)*", text.lower()):
        tok = tok.strip("£€$")
        if not tok or tok in _STOP:
            continue
        out.append(tok)
        if re.search(r"[-./]", tok):
            out.extend(p for p in re.split(r"[-./]", tok) if p and p not in _STOP)
    return out


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk: its rank (1-based), score and the component scores."""

    chunk: Chunk
    score: float
    rank: int
    source: str
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class IndexStats:
    """What one :meth:`index` call did."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    chunks_written: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        return (f"{self.added} added, {self.replaced} replaced, {self.unchanged} unchanged documents; "
                f"{self.chunks_written} chunks written in {self.seconds:.1f} s")


# --------------------------------------------------------------------------- payloads and filters


def _payload(chunk: Chunk, doc_hash: str) -> dict[str, Any]:
    meta = {k: v for k, v in chunk.metadata.items() if isinstance(v, (str, int, float, bool, list, type(None)))}
    return {**meta, "chunk_id": chunk.chunk_id, "text": chunk.text, "doc_id": chunk.doc_id, "page": chunk.page,
            "n_tokens": chunk.n_tokens, "kind": chunk.kind, "header": chunk.header, "doc_hash": doc_hash,
            "tags": list(meta.get("tags") or [])}


_CHUNK_FIELDS = {"chunk_id", "text", "doc_id", "page", "n_tokens", "kind", "header", "doc_hash"}


def _chunk_from_payload(p: dict[str, Any]) -> Chunk:
    meta = {k: v for k, v in p.items() if k not in _CHUNK_FIELDS - {"doc_id", "page"}}
    return Chunk(p["chunk_id"], p["text"], p["doc_id"], p.get("page"), int(p.get("n_tokens", 0)),
                 p.get("kind", "text"), p.get("header", ""), meta)


def _doc_hashes(chunks: Sequence[Chunk]) -> dict[str, str]:
    by_doc: dict[str, list[Any]] = defaultdict(list)
    for c in chunks:
        by_doc[c.doc_id].append([c.chunk_id, c.embed_text, sorted((k, str(v)) for k, v in c.metadata.items())])
    return {d: hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()[:16] for d, v in by_doc.items()}


def matches_filters(payload: dict[str, Any], filters: dict[str, Any] | None) -> bool:
    """True when a chunk's payload passes ``filters`` (see the module docstring).

    Example:
        >>> matches_filters({"format": "pdf", "tags": ["x"]}, {"format": ["pdf", "md"], "not_tags": "y"})
        True
    """
    for key, want in (filters or {}).items():
        negate = key.startswith("not_")
        name = key[4:] if negate else key
        value = payload.get(name)
        wants = set(want) if isinstance(want, (list, tuple, set)) else {want}
        have = set(value) if isinstance(value, list) else {value}
        hit = bool(wants & have)
        if hit == negate:
            return False
    return True


def _qdrant_filter(filters: dict[str, Any] | None) -> Any:
    if not filters:
        return None
    from qdrant_client import models

    must, must_not = [], []
    for key, want in filters.items():
        negate = key.startswith("not_")
        name = key[4:] if negate else key
        if isinstance(want, (list, tuple, set)):
            cond = models.FieldCondition(key=name, match=models.MatchAny(any=list(want)))
        else:
            cond = models.FieldCondition(key=name, match=models.MatchValue(value=want))
        (must_not if negate else must).append(cond)
    return models.Filter(must=must or None, must_not=must_not or None)


# --------------------------------------------------------------------------- embedding cache


class CachedEmbedder:
    """Wraps an embedder with an on-disk cache (SQLite, keyed by model and text hash).

    Notebooks re-embed the same corpus many times; with the cache only new texts cost time.

    Example:
        >>> from reference.embeddings import FakeEmbedder
        >>> emb = CachedEmbedder(FakeEmbedder(dim=4), path=":memory:")
        >>> emb.embed(["x"]).shape
        (1, 4)
    """

    def __init__(self, embedder: Any, path: str | Path | None = None) -> None:
        self.inner = embedder
        self.model = getattr(embedder, "model", "unknown")
        self.dim = getattr(embedder, "dim", 0)
        self.provider = getattr(embedder, "provider", "unknown")
        if path is None:
            from reference.hf import cache_dir

            path = cache_dir() / "embeddings.sqlite"
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")
        self.hits = 0
        self.misses = 0

    def _key(self, text: str) -> str:
        return hashlib.sha256(f"{self.model}\x00{text}".encode()).hexdigest()

    def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Like ``Embedder.embed``; cached rows are read back, the rest computed and stored."""
        items = list(texts)
        if isinstance(texts, str):
            raise InputError("embed() takes a list of strings; wrap a single text as [text]")
        keys = [self._key(t) for t in items]
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            rows = self._db.execute(f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})", part)
            found.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        todo = sorted({k: t for k, t in zip(keys, items, strict=True) if k not in found}.items())
        self.hits += len(items) - len(todo)
        self.misses += len(todo)
        if todo:
            vecs = self.inner.embed([t for _, t in todo], batch_size=batch_size)
            self.dim = vecs.shape[1]
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)",
                                     [(k, v.astype(np.float32).tobytes()) for (k, _), v in zip(todo, vecs, strict=True)])
            found.update({k: v for (k, _), v in zip(todo, vecs, strict=True)})
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([found[k] for k in keys]).astype(np.float32)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


# --------------------------------------------------------------------------- dense


class DenseIndex:
    """Chunk embeddings in a Qdrant collection (cosine distance).

    Args:
        embedder: anything with ``embed(list[str])`` returning unit vectors.
        collection: collection name.
        location: ``":memory:"`` (default) for an in-process store.
        path: folder for an on-disk local store (survives restarts).
        url: a Qdrant server, e.g. ``http://localhost:6333`` (same API).
        client: an existing ``QdrantClient`` (e.g. shared with LangChain/LlamaIndex).
    """

    def __init__(self, embedder: Any, *, collection: str = "lab_chunks", location: str | None = ":memory:",
                 path: str | Path | None = None, url: str | None = None, client: Any | None = None) -> None:
        from qdrant_client import QdrantClient

        self.embedder = embedder
        self.collection = collection
        if client is not None:
            self.client = client
        elif url:
            self.client = QdrantClient(url=url)
        elif path:
            self.client = QdrantClient(path=str(path))
        else:
            self.client = QdrantClient(location=location or ":memory:")
        self._hashes: dict[str, str] | None = None

    def _ensure(self, dim: int) -> None:
        from qdrant_client import models

        if not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE))

    def doc_hashes(self) -> dict[str, str]:
        """``{doc_id: content hash}`` of what the store holds now."""
        if self._hashes is None:
            self._hashes = {}
            if self.client.collection_exists(self.collection):
                offset = None
                while True:
                    points, offset = self.client.scroll(self.collection, limit=1000, offset=offset,
                                                        with_payload=["doc_id", "doc_hash"])
                    for p in points:
                        self._hashes[p.payload["doc_id"]] = p.payload["doc_hash"]
                    if offset is None:
                        break
        return self._hashes

    def index(self, chunks: Sequence[Chunk], *, progress: bool = True, batch_size: int = 64) -> IndexStats:
        """Add or replace documents; documents whose chunks did not change are skipped."""
        from qdrant_client import models

        start = time.perf_counter()
        stats = IndexStats()
        hashes = _doc_hashes(chunks)
        known = self.doc_hashes()
        changed = [d for d, h in hashes.items() if known.get(d) != h]
        stats.unchanged = len(hashes) - len(changed)
        todo = [c for c in chunks if c.doc_id in set(changed)]
        if self.client.collection_exists(self.collection):
            for d in changed:
                if d in known:
                    self.client.delete(self.collection, points_selector=models.FilterSelector(filter=models.Filter(
                        must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=d))])))
        stats.replaced = sum(1 for d in changed if d in known)
        stats.added = len(changed) - stats.replaced
        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="embed+index", unit="chunk", leave=False)
        for i in range(0, len(todo), batch_size):
            batch = todo[i:i + batch_size]
            vecs = self.embedder.embed([c.embed_text for c in batch])
            self._ensure(vecs.shape[1])
            self.client.upsert(self.collection, points=[
                models.PointStruct(id=str(uuid.uuid5(uuid.NAMESPACE_URL, c.chunk_id)), vector=v.tolist(),
                                   payload=_payload(c, hashes[c.doc_id]))
                for c, v in zip(batch, vecs, strict=True)])
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        for d in changed:
            known[d] = hashes[d]
        stats.chunks_written = len(todo)
        stats.seconds = time.perf_counter() - start
        return stats

    def __len__(self) -> int:
        if not self.client.collection_exists(self.collection):
            return 0
        return int(self.client.count(self.collection).count)

    def chunks(self) -> list[Chunk]:
        """Every stored chunk (payloads turned back into :class:`Chunk`)."""
        out: list[Chunk] = []
        if not self.client.collection_exists(self.collection):
            return out
        offset = None
        while True:
            points, offset = self.client.scroll(self.collection, limit=1000, offset=offset, with_payload=True)
            out.extend(_chunk_from_payload(p.payload) for p in points)
            if offset is None:
                return sorted(out, key=lambda c: c.chunk_id)

    def search_vector(self, vector: np.ndarray, k: int = 10, filters: dict[str, Any] | None = None) -> list[Hit]:
        """Nearest chunks to an already-embedded query."""
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        if not self.client.collection_exists(self.collection):
            return []
        res = self.client.query_points(self.collection, query=np.asarray(vector, dtype=np.float32).tolist(),
                                       limit=k, query_filter=_qdrant_filter(filters), with_payload=True)
        return [Hit(_chunk_from_payload(p.payload), float(p.score), i, "dense", {"dense": float(p.score)})
                for i, p in enumerate(res.points, start=1)]

    def search(self, query: str, k: int = 10, filters: dict[str, Any] | None = None) -> list[Hit]:
        """Embed ``query`` and return the ``k`` most similar chunks."""
        if not query or not query.strip():
            raise InputError("query is empty")
        return self.search_vector(self.embedder.embed([query])[0], k, filters)

    def vectors(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of some chunks, by chunk id."""
        ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, c)) for c in chunk_ids]
        pts = self.client.retrieve(self.collection, ids=ids, with_vectors=True, with_payload=["chunk_id"])
        return {p.payload["chunk_id"]: np.asarray(p.vector, dtype=np.float32) for p in pts}


# --------------------------------------------------------------------------- BM25


class BM25Index:
    """BM25 (Okapi, rank-bm25) over :func:`bm25_tokens`; rebuilt when documents change."""

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._chunks: dict[str, list[Chunk]] = {}
        self._hashes: dict[str, str] = {}
        self._flat: list[Chunk] = []
        self._bm25: Any = None

    def index(self, chunks: Sequence[Chunk], *, progress: bool = False) -> IndexStats:
        """Add or replace documents (unchanged ones are skipped)."""
        start = time.perf_counter()
        stats = IndexStats()
        hashes = _doc_hashes(chunks)
        by_doc: dict[str, list[Chunk]] = defaultdict(list)
        for c in chunks:
            by_doc[c.doc_id].append(c)
        for d, h in hashes.items():
            if self._hashes.get(d) == h:
                stats.unchanged += 1
                continue
            stats.replaced += d in self._hashes
            stats.added += d not in self._hashes
            self._hashes[d] = h
            self._chunks[d] = by_doc[d]
            stats.chunks_written += len(by_doc[d])
        if stats.chunks_written or self._bm25 is None:
            from rank_bm25 import BM25Okapi

            self._flat = [c for d in sorted(self._chunks) for c in self._chunks[d]]
            corpus = [bm25_tokens(c.embed_text) or ["_"] for c in self._flat]
            self._bm25 = BM25Okapi(corpus, k1=self.k1, b=self.b) if corpus else None
        stats.seconds = time.perf_counter() - start
        return stats

    def __len__(self) -> int:
        return len(self._flat)

    def idf(self, term: str) -> float:
        """The index's IDF of a term (0.0 when unknown)."""
        return float(self._bm25.idf.get(term, 0.0)) if self._bm25 is not None else 0.0

    def search(self, query: str, k: int = 10, filters: dict[str, Any] | None = None) -> list[Hit]:
        """Top ``k`` chunks by BM25 score (chunks with score 0 are left out)."""
        if not query or not query.strip():
            raise InputError("query is empty")
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        if self._bm25 is None:
            return []
        scores = self._bm25.get_scores(bm25_tokens(query))
        order = np.argsort(-scores, kind="stable")
        hits: list[Hit] = []
        for i in order:
            if scores[i] <= 0 or len(hits) >= k:
                break
            c = self._flat[i]
            if filters and not matches_filters({**c.metadata, "doc_id": c.doc_id, "kind": c.kind}, filters):
                continue
            hits.append(Hit(c, float(scores[i]), len(hits) + 1, "bm25", {"bm25": float(scores[i])}))
        return hits


# --------------------------------------------------------------------------- fusion, rerank, rules


def rrf_fuse(rankings: Sequence[Sequence[Hit]], k: int = 60, top: int | None = None) -> list[Hit]:
    """Reciprocal rank fusion: score = sum over rankings of ``1 / (k + rank)``.

    Example:
        >>> from reference.chunking import Chunk
        >>> a, b = (Chunk(i, i, i, None, 1) for i in "ab")
        >>> fused = rrf_fuse([[Hit(a, 1, 1, "x"), Hit(b, 1, 2, "x")], [Hit(b, 1, 1, "y")]])
        >>> [h.chunk.chunk_id for h in fused]
        ['b', 'a']
    """
    scores: dict[str, float] = defaultdict(float)
    parts: dict[str, dict[str, float]] = defaultdict(dict)
    chunks: dict[str, Chunk] = {}
    for ranking in rankings:
        for h in ranking:
            cid = h.chunk.chunk_id
            scores[cid] += 1.0 / (k + h.rank)
            parts[cid].update(h.scores)
            chunks[cid] = h.chunk
    order = sorted(scores, key=lambda c: (-scores[c], c))[:top]
    return [Hit(chunks[c], scores[c], i, "hybrid", {**parts[c], "rrf": scores[c]}) for i, c in enumerate(order, 1)]


class LexicalDenseReranker:
    """Rescore candidates: ``w_dense * cosine + w_terms * IDF-weighted query-term coverage``.

    An honest stand-in for a cross-encoder: it reads the query and chunk together only
    through shared terms, so it helps with identifiers, numbers and names, not paraphrase.

    Args:
        dense: the :class:`DenseIndex` (for stored chunk vectors and the embedder).
        bm25: a :class:`BM25Index` whose IDF weights terms (uniform weights without it).
        w_dense: weight of the cosine similarity.
        w_terms: weight of the term coverage (0-1).
    """

    def __init__(self, dense: DenseIndex, bm25: BM25Index | None = None, *, w_dense: float = 1.0,
                 w_terms: float = 0.5) -> None:
        self.dense, self.bm25, self.w_dense, self.w_terms = dense, bm25, w_dense, w_terms

    def coverage(self, query: str, chunk: Chunk) -> float:
        """IDF-weighted share of the query's terms that occur in the chunk (header included)."""
        terms = set(bm25_tokens(query))
        if not terms:
            return 0.0
        have = set(bm25_tokens(chunk.embed_text))
        weight = {t: (max(self.bm25.idf(t), 0.1) if self.bm25 is not None else 1.0) for t in terms}
        return sum(w for t, w in weight.items() if t in have) / sum(weight.values())

    def rerank(self, query: str, hits: Sequence[Hit], query_vector: np.ndarray | None = None) -> list[Hit]:
        """Return ``hits`` re-ordered by the combined score (ranks renumbered)."""
        if not hits:
            return []
        q = query_vector if query_vector is not None else self.dense.embedder.embed([query])[0]
        vecs = self.dense.vectors([h.chunk.chunk_id for h in hits])
        rescored = []
        for h in hits:
            v = vecs.get(h.chunk.chunk_id)
            cos = float(np.dot(q, v)) if v is not None else float(h.scores.get("dense", 0.0))
            cov = self.coverage(query, h.chunk)
            rescored.append((self.w_dense * cos + self.w_terms * cov, h, cos, cov))
        rescored.sort(key=lambda x: -x[0])
        return [Hit(h.chunk, s, i, "rerank", {**h.scores, "cosine": cos, "coverage": cov, "rerank": s})
                for i, (s, h, cos, cov) in enumerate(rescored, start=1)]


def apply_source_rules(hits: Sequence[Hit]) -> list[Hit]:
    """Move chunks of a superseded document to just below the first chunk of the one replacing it.

    The rule comes from chunk metadata (``supersedes`` of the newer document, or the
    ``superseded`` tag). Order is otherwise kept; ranks are renumbered.

    Example:
        >>> from reference.chunking import Chunk
        >>> old = Chunk("old#p0#0", "x", "old", None, 1)
        >>> new = Chunk("new#p0#0", "x", "new", None, 1, metadata={"supersedes": "old"})
        >>> [h.chunk.doc_id for h in apply_source_rules([Hit(old, 1, 1, "d"), Hit(new, .9, 2, "d")])]
        ['new', 'old']
    """
    present = {h.chunk.doc_id for h in hits}
    replaced = {h.chunk.metadata.get("supersedes") for h in hits} & present
    out: list[Hit] = []
    for h in hits:
        if h.chunk.doc_id in replaced:
            continue
        out.append(h)
        old = h.chunk.metadata.get("supersedes")
        if old in replaced:  # the old version follows the first chunk of its replacement
            out.extend(x for x in hits if x.chunk.doc_id == old)
            replaced.discard(old)
    return [replace(h, rank=i) for i, h in enumerate(out, start=1)]


# --------------------------------------------------------------------------- facade

MODES = ("dense", "bm25", "hybrid")


class Retriever:
    """Dense, BM25 or hybrid retrieval, with optional reranking and source rules.

    Args:
        dense: a :class:`DenseIndex` (needed for ``dense``, ``hybrid`` and reranking).
        bm25: a :class:`BM25Index` (needed for ``bm25`` and ``hybrid``).
        mode: ``"dense"``, ``"bm25"`` or ``"hybrid"``.
        reranker: e.g. :class:`LexicalDenseReranker`; applied to ``candidates`` hits.
        candidates: how many hits each retriever contributes before fusion/reranking.
        source_rules: apply :func:`apply_source_rules` to the final list.
    """

    def __init__(self, dense: DenseIndex | None = None, bm25: BM25Index | None = None, *, mode: str = "hybrid",
                 reranker: LexicalDenseReranker | None = None, candidates: int = 30, rrf_k: int = 60,
                 source_rules: bool = True) -> None:
        if mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {mode!r}")
        if mode in ("dense", "hybrid") and dense is None:
            raise ConfigurationError(f"mode {mode!r} needs a DenseIndex")
        if mode in ("bm25", "hybrid") and bm25 is None:
            raise ConfigurationError(f"mode {mode!r} needs a BM25Index")
        if reranker is not None and dense is None:
            raise ConfigurationError("reranking needs the DenseIndex for chunk vectors")
        self.dense, self.bm25, self.mode, self.reranker = dense, bm25, mode, reranker
        self.candidates, self.rrf_k, self.source_rules = candidates, rrf_k, source_rules

    def index(self, chunks: Sequence[Chunk], *, progress: bool = True) -> dict[str, IndexStats]:
        """Index chunks in every configured index (incremental)."""
        out = {}
        if self.dense is not None:
            out["dense"] = self.dense.index(chunks, progress=progress)
        if self.bm25 is not None:
            out["bm25"] = self.bm25.index(chunks)
        return out

    def retrieve(self, query: str, k: int = 5, filters: dict[str, Any] | None = None) -> list[Hit]:
        """The top ``k`` chunks for ``query``."""
        if not isinstance(query, str) or not query.strip():
            raise InputError("query is empty")
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        n = max(k, self.candidates)
        qvec = self.dense.embedder.embed([query])[0] if self.dense is not None else None
        if self.mode == "dense":
            hits = self.dense.search_vector(qvec, n, filters)  # type: ignore[union-attr]
        elif self.mode == "bm25":
            hits = self.bm25.search(query, n, filters)  # type: ignore[union-attr]
        else:
            hits = rrf_fuse([self.dense.search_vector(qvec, n, filters),  # type: ignore[union-attr]
                             self.bm25.search(query, n, filters)], k=self.rrf_k, top=n)  # type: ignore[union-attr]
        if self.reranker is not None:
            hits = self.reranker.rerank(query, hits, query_vector=qvec)
        if self.source_rules:
            hits = apply_source_rules(hits[: max(k * 2, k)])
        return hits[:k]


def build_retriever(chunks: Sequence[Chunk], embedder: Any, *, mode: str = "hybrid", rerank: bool = True,
                    progress: bool = True, **kwargs: Any) -> Retriever:
    """Index ``chunks`` in memory (Qdrant + BM25 as the mode needs) and return the retriever.

    Example:
        >>> from reference.embeddings import FakeEmbedder
        >>> r = build_retriever([Chunk("a#p0#0", "text", "a", None, 1)], FakeEmbedder(), progress=False)
        >>> r.mode
        'hybrid'
    """
    dense = DenseIndex(embedder) if (mode != "bm25" or rerank) else None
    bm25 = BM25Index() if mode != "dense" or rerank else None
    reranker = LexicalDenseReranker(dense, bm25) if rerank else None  # type: ignore[arg-type]
    r = Retriever(dense, bm25, mode=mode, reranker=reranker, **kwargs)
    r.index(chunks, progress=progress)
    return r


def doc_ranking(hits: Iterable[Hit]) -> list[str]:
    """Doc ids in hit order, first occurrence only (chunk ranking -> document ranking)."""
    seen: dict[str, None] = {}
    for h in hits:
        seen.setdefault(h.chunk.doc_id, None)
    return list(seen)

