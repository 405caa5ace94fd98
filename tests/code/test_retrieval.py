"""Unit tests for reference.retrieval with the fake embedder: indexing, filters, fusion, rules."""

from __future__ import annotations

import pytest

from reference.chunking import Chunk
from reference.embeddings import FakeEmbedder
from reference.errors import ConfigurationError, InputError
from reference.retrieval import (
    BM25Index, CachedEmbedder, DenseIndex, Hit, LexicalDenseReranker, Retriever, apply_source_rules,
    bm25_tokens, build_retriever, doc_ranking, matches_filters, rrf_fuse,
)


def ch(doc, n, text, **meta):
    return Chunk(f"{doc}#p0#{n}", text, doc, None, len(text.split()), metadata={"doc_id": doc, **meta})


CHUNKS = [
    ch("travel", 0, "hotel cap London 210 pounds per night", department="Finance", tags=["policy"]),
    ch("travel", 1, "claims within 30 days in Ledgerly", department="Finance", tags=["policy"]),
    ch("robot", 0, "NB-300 lifter payload 1200 kg", department="Product", tags=[]),
    ch("parking", 0, "eight electric vehicle charging bays", department="Facilities", tags=[]),
]


def test_bm25_tokens_identifiers():
    assert bm25_tokens("NB-300 and v4.1?") == ["nb-300", "nb", "300", "v4.1", "v4", "1"]


def test_dense_search_and_filters():
    idx = DenseIndex(FakeEmbedder(dim=256))
    stats = idx.index(CHUNKS, progress=False)
    assert (stats.added, stats.chunks_written, len(idx)) == (3, 4, 4)
    assert idx.search("hotel cap London", k=1)[0].chunk.chunk_id == "travel#p0#0"
    hits = idx.search("hotel cap London", k=4, filters={"department": "Product"})
    assert {h.chunk.doc_id for h in hits} == {"robot"}
    hits = idx.search("hotel", k=4, filters={"not_tags": "policy"})
    assert "travel" not in {h.chunk.doc_id for h in hits}
    with pytest.raises(InputError):
        idx.search("  ")


def test_incremental_indexing_skips_unchanged_and_replaces_changed():
    idx = DenseIndex(FakeEmbedder(dim=64))
    idx.index(CHUNKS, progress=False)
    again = idx.index(CHUNKS, progress=False)
    assert (again.added, again.replaced, again.unchanged, again.chunks_written) == (0, 0, 3, 0)
    edited = [ch("travel", 0, "hotel cap London 250 pounds per night", department="Finance", tags=["policy"])]
    stats = idx.index(edited, progress=False)
    assert (stats.replaced, stats.chunks_written) == (1, 1)
    texts = {c.chunk_id: c.text for c in idx.chunks()}
    assert "travel#p0#1" not in texts  # the changed document's old chunks are gone
    assert "250" in texts["travel#p0#0"] and len(idx) == 3


def test_on_disk_store_survives_reopen(tmp_path):
    a = DenseIndex(FakeEmbedder(dim=32), path=tmp_path / "q")
    a.index(CHUNKS, progress=False)
    a.client.close()
    b = DenseIndex(FakeEmbedder(dim=32), path=tmp_path / "q")
    assert b.index(CHUNKS, progress=False).unchanged == 3
    b.client.close()


def test_bm25_and_filters():
    idx = BM25Index()
    idx.index(CHUNKS)
    assert idx.search("NB-300 payload", k=1)[0].chunk.doc_id == "robot"
    assert idx.search("300", k=1)[0].chunk.doc_id == "robot"
    assert idx.search("payload", k=3, filters={"department": "Finance"}) == []
    assert idx.index(CHUNKS).unchanged == 3


def test_matches_filters():
    p = {"format": "pdf", "tags": ["a", "b"]}
    assert matches_filters(p, {"format": ["pdf", "md"], "tags": "a"})
    assert not matches_filters(p, {"not_tags": ["b"]})
    assert not matches_filters(p, {"format": "md"})


def test_rrf_fuse_rewards_agreement():
    a, b, c = CHUNKS[0], CHUNKS[1], CHUNKS[2]
    fused = rrf_fuse([[Hit(a, 1, 1, "d"), Hit(b, 1, 2, "d")], [Hit(b, 1, 1, "s"), Hit(c, 1, 2, "s")]], k=60)
    assert [h.chunk.doc_id for h in fused][0] == "travel" and fused[0].chunk is b
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)


def test_source_rules_demote_superseded():
    old = ch("pol-2024", 0, "cap 180")
    new = ch("pol-2025", 0, "cap 210", supersedes="pol-2024")
    other = ch("x", 0, "other")
    out = apply_source_rules([Hit(old, 3, 1, "d"), Hit(other, 2, 2, "d"), Hit(new, 1, 3, "d")])
    assert [h.chunk.doc_id for h in out] == ["x", "pol-2025", "pol-2024"] and [h.rank for h in out] == [1, 2, 3]


def test_retriever_modes_and_reranker():
    r = build_retriever(CHUNKS, FakeEmbedder(dim=256), progress=False)
    hits = r.retrieve("NB-300 payload", k=2)
    assert hits[0].chunk.doc_id == "robot" and hits[0].source == "rerank"
    assert {"cosine", "coverage"} <= set(hits[0].scores) and hits[0].scores["coverage"] == 1.0
    assert doc_ranking(r.retrieve("hotel cap", k=3))[0] == "travel"
    with pytest.raises(ConfigurationError):
        Retriever(None, BM25Index(), mode="hybrid")
    with pytest.raises(InputError):
        Retriever(None, BM25Index(), mode="magic")
    with pytest.raises(InputError):
        r.retrieve("x", k=0)


def test_reranker_coverage_weights_rare_terms():
    dense = DenseIndex(FakeEmbedder(dim=32))
    bm = BM25Index()
    dense.index(CHUNKS, progress=False)
    bm.index(CHUNKS)
    rr = LexicalDenseReranker(dense, bm)
    assert rr.coverage("payload of the NB-300", CHUNKS[2]) == 1.0
    assert rr.coverage("payload of the NB-300", CHUNKS[0]) == 0.0


def test_cached_embedder(tmp_path):
    inner = FakeEmbedder(dim=8)
    emb = CachedEmbedder(inner, path=tmp_path / "e.sqlite")
    first = emb.embed(["a b", "c"])
    second = emb.embed(["c", "a b", "new"])
    assert (emb.hits, emb.misses) == (2, 3)
    assert (second[1] == first[0]).all()
    with pytest.raises(InputError):
        emb.embed("a")
