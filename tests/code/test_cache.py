"""Unit tests for reference.cache: exact and semantic caches, isolation, TTL, invalidation, guard."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from reference.cache import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ExactCache,
    LookalikeGuard,
    SemanticCache,
    normalise_question,
)
from reference.embeddings import FakeEmbedder
from reference.errors import DataFileError, InputError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def semantic(tmp_path=None, **kw) -> SemanticCache:
    path = ":memory:" if tmp_path is None else tmp_path / "cache.sqlite"
    return SemanticCache(path, embedder=FakeEmbedder(dim=256), threshold=kw.pop("threshold", 0.75), **kw)


def test_normalisation_and_exact_hits():
    assert normalise_question("  Reset   my PASSWORD?! ") == "reset my password"
    cache = ExactCache()
    cache.put("leeds", "Reset my password?", "Portal.")
    assert cache.get("leeds", "reset my password").answer == "Portal."
    assert cache.get("leeds", "reset my passwords") is None
    assert cache.stats == {"lookups": 2, "hits": 1}


def test_tenants_never_see_each_others_answers():
    for cache in (ExactCache(), semantic()):
        cache.put("leeds", "What is the hotel cap in London?", "LEEDS-ONLY ANSWER")
        assert cache.get("austin", "What is the hotel cap in London?") is None
        if isinstance(cache, SemanticCache):
            out = cache.lookup("austin", "What is the hotel cap in London?")
            assert out.hit is None and out.reason == "empty"
            assert cache.lookup("leeds", "what is the hotel cap in London").hit.answer == "LEEDS-ONLY ANSWER"
        with pytest.raises(InputError):
            cache.get("", "anything")


def test_ttl_expires_entries(tmp_path):
    clock = Clock()
    cache = semantic(tmp_path, ttl_s=60, clock=clock)
    cache.put("t", "is beacon down", "Yes, incident INC-1.")
    clock.now += 30
    assert cache.lookup("t", "is beacon down").hit is not None
    clock.now += 31
    assert cache.lookup("t", "is beacon down").hit is None
    assert cache.lookup("t", "is beacon down right now").hit is None
    assert cache.purge_expired() == 1 and len(cache) == 0


def test_invalidation_by_document_version(tmp_path):
    cache = semantic(tmp_path)
    cache.put("t", "hotel cap London", "£150 (2024 policy)", depends_on={"fin-travel-policy": "2024"})
    cache.put("t", "per diem UK", "£40", depends_on={"fin-travel-policy": "2025", "fin-other": 1})
    cache.put("t", "vpn drops", "Reinstall the client.")
    assert cache.invalidate_document("fin-travel-policy", current_version="2025") == 1
    assert cache.lookup("t", "hotel cap London").hit is None
    assert cache.lookup("t", "per diem UK").hit is not None
    assert cache.invalidate_document("fin-travel-policy") == 1
    assert len(cache) == 1


def test_persistence_and_migrations(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = semantic(tmp_path)
    cache.put("t", "how do I reset my password", "Portal.", depends_on={"it-pw": 3})
    cache.close()
    again = semantic(tmp_path)
    assert again.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    assert again.lookup("t", "how do i reset my password please").hit.answer == "Portal."
    with sqlite3.connect(path) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        blob = conn.execute("SELECT vector FROM entries").fetchone()[0]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert len(blob) == 256 * 4  # float32 vector stored as a blob


def test_old_schema_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # a file written by version 1 of the code
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.executescript(MIGRATIONS[0])
        conn.execute("INSERT INTO schema_version VALUES (1)")
        conn.execute("INSERT INTO entries (namespace, norm_key, question, answer, created_at) "
                     "VALUES ('t', 'vpn drops', 'VPN drops', 'Reinstall.', 0)")
    cache = ExactCache(path)
    assert cache.schema_version == SCHEMA_VERSION
    assert cache.get("t", "VPN drops").answer == "Reinstall."


def test_newer_or_corrupt_files_are_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (99)")
    with pytest.raises(DataFileError, match="newer"):
        ExactCache(path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(DataFileError):
        ExactCache(junk)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Can I expense a hotel over £150 a night in London?", "Can I expense a hotel over £250 a night in London?"),
        ("Do I need a receipt for expenses under £25?", "Do I need a receipt for expenses over £25?"),
        ("What does error E-214 mean?", "What does error E-241 mean?"),
        ("battery life of the NB-100", "battery life of the NB-300"),
        ("Can I bring my dog to the Leeds office?", "Can I bring my dog to the Austin office?"),
        ("Summarise the 2024 to 2025 travel policy changes", "Summarise the 2023 to 2024 travel policy changes"),
        ("Is the VPN working?", "Is the VPN not working?"),
    ],
)
def test_guard_blocks_lookalikes(a, b):
    verdict = LookalikeGuard().check(a, b)
    assert not verdict.ok and "differs" in verdict.reason


def test_guard_protected_terms_catch_lowercase_entities():
    plain = LookalikeGuard()
    assert plain.check("price of beacon pro", "price of beacon starter").ok  # no capital letters to go on
    strict = LookalikeGuard(protected_terms=["pro", "starter", "enterprise"])
    assert not strict.check("price of beacon pro", "price of beacon starter").ok


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I reset my password?", "how do i reset my pasword"),
        ("What's the VPN fix? It keeps dropping.", "VPN keeps dropping, what's the fix"),
        ("Courier robot error code E-214", "What does error E-214 mean on a Courier?"),
    ],
)
def test_guard_allows_paraphrases(a, b):
    assert LookalikeGuard().check(a, b).ok


def test_semantic_cache_guard_prevents_false_hit():
    guarded = semantic(threshold=0.5)
    unguarded = semantic(threshold=0.5, guard=None)
    for cache in (guarded, unguarded):
        cache.put("t", "Can I expense a hotel over £150 a night in London?", "ANSWER-150")
    q = "Can I expense a hotel over £250 a night in London?"
    assert unguarded.lookup("t", q).hit.answer == "ANSWER-150"  # the wrong answer
    out = guarded.lookup("t", q)
    assert out.hit is None and out.reason.startswith("guard:") and guarded.stats["guard_blocks"] == 1


def test_semantic_cache_threshold_and_precomputed_vectors():
    cache = semantic(threshold=0.99)
    cache.put("t", "how do I reset my password", "Portal.")
    out = cache.lookup("t", "password reset steps for my laptop")
    assert out.hit is None and out.reason == "below_threshold" and 0 <= out.best_similarity < 0.99
    v = np.zeros(256, dtype=np.float32)
    v[0] = 1
    cache.put("t", "alpha", "A", vector=v)
    assert cache.lookup("t", "completely different words", vector=v).hit.answer == "A"


def test_threshold_is_validated():
    from reference.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        semantic(threshold=1.5)
    with pytest.raises(ConfigurationError):
        ExactCache(ttl_s=0)


@pytest.mark.slow
def test_workload_lookalikes_with_the_local_embedder():
    from reference.datasets import load_queries
    from reference.embeddings import get_embedder

    queries = [q for q in load_queries() if q.lookalike_of][:40]
    emb = get_embedder("local")
    cache = SemanticCache(":memory:", embedder=emb, threshold=0.85)
    wrong = 0
    for q in queries:
        out = cache.lookup("t", q.text)
        if out.hit is None:
            cache.put("t", q.text, q.cluster_id)
        elif out.hit.answer != q.cluster_id:
            wrong += 1
    assert wrong == 0
    assert cache.stats["guard_blocks"] > 0  # lookalikes were close enough to need the guard
