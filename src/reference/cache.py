"""Answer caches for LLM applications: exact and semantic, persistent in SQLite.

* :class:`ExactCache` serves a stored answer when the normalised question is the same.
* :class:`SemanticCache` also serves it when the question *means* the same: the
  nearest stored question by embedding cosine similarity, if it clears ``threshold``
  and passes a :class:`LookalikeGuard`, which refuses pairs that differ in a number,
  a code, a negation or direction word, a named entity or a protected domain term
  ("hotel over £150" is not "hotel over £250", NB-100 is not NB-300).

Both store entries in one SQLite file (vectors as float32 blobs, searched with
numpy in memory), and both give you, per entry:

* a **namespace** (tenant): a lookup only ever sees its own namespace's entries;
* a **TTL**: expired entries are never served and :meth:`purge_expired` deletes them;
* **dependencies**: the documents (id and version) the answer was built from;
  :meth:`invalidate_document` drops every answer built on an old version.

The schema is created and upgraded by numbered migrations recorded in a
``schema_version`` table, so an old cache file is upgraded in place, never rebuilt.

Example:
    >>> cache = ExactCache(":memory:")
    >>> _ = cache.put("leeds", "How do I reset my password?", "Use the self-service portal.")
    >>> cache.get("leeds", "how do I reset my password").answer
    'Use the self-service portal.'
    >>> cache.get("austin", "How do I reset my password?") is None
    True
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reference.errors import ConfigurationError, DataFileError, InputError

#: Numbered schema migrations; index + 1 is the version each one produces.
MIGRATIONS: tuple[str, ...] = (
    # 1: entries keyed by namespace and normalised question
    """
    CREATE TABLE entries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        namespace TEXT NOT NULL,
        norm_key TEXT NOT NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL
    );
    CREATE INDEX entries_lookup ON entries (namespace, norm_key);
    """,
    # 2: semantic search (vector blobs with the model that made them) and hit counts
    """
    ALTER TABLE entries ADD COLUMN vector BLOB;
    ALTER TABLE entries ADD COLUMN embed_model TEXT;
    ALTER TABLE entries ADD COLUMN hits INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: the documents (and versions) each answer depends on, for invalidation
    """
    CREATE TABLE entry_deps (
        entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        doc_id TEXT NOT NULL,
        doc_version TEXT NOT NULL
    );
    CREATE INDEX entry_deps_doc ON entry_deps (doc_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_DEFAULT_GUARD = object()


def normalise_question(text: str) -> str:
    """The exact-cache key: lower case, single spaces, no trailing punctuation.

    Example:
        >>> normalise_question("  How do I reset my PASSWORD?? ")
        'how do i reset my password'
    """
    if not isinstance(text, str):
        raise InputError(f"question must be a string, got {type(text).__name__}")
    return " ".join(text.lower().split()).rstrip(" ?!.")


def _check_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not namespace.strip():
        raise InputError("namespace (the tenant) must be a non-empty string: caches never mix tenants")
    return namespace


# --------------------------------------------------------------------------- guard

_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve fifteen twenty "
                 "thirty forty fifty hundred thousand first second third half double single").split()
#: Words that flip or bound the meaning of a question.
CONTRAST_WORDS = frozenset(
    ("not no never without except under over above below before after more less fewer least most "
     "within outside inside minimum maximum min max cheaper dearer earlier later older newer "
     "previous next last up down in out").split()
    + _NUMBER_WORDS
)
_TOKEN_RE = re.compile(r"[A-Za-z0-9£$€%°]+(?:[-./:,][A-Za-z0-9£$€%°]+)*")
_HAS_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class GuardVerdict:
    """Whether two questions may share an answer, and why not when they may not."""

    ok: bool
    reason: str = ""


class LookalikeGuard:
    """Refuse cache hits between questions that differ in a detail that changes the answer.

    Two questions pass when their sets of *critical* tokens are equal. Critical tokens:

    * anything with a digit (``150``, ``E-214``, ``NB-300``, ``2024``, ``£25``);
    * negation, direction and comparison words (``not``, ``under``/``over``, ``before``/``after``)
      and number words;
    * words written with a capital letter anywhere but at the start of a sentence (names
      of offices, products, tiers, departments), compared in lower case;
    * the ``protected_terms`` you pass (your domain's entities, e.g. ``starter``, ``pro``),
      which catch an entity even when a user types it in lower case.

    It is deliberately strict: a false hit serves a wrong answer, a false miss costs one
    model call.

    Example:
        >>> g = LookalikeGuard()
        >>> g.check("Hotel over £150 in London?", "Hotel over £250 in London?").reason
        "differs in: '£150' vs '£250'"
        >>> g.check("How do I reset my password?", "how do i reset my password").ok
        True
    """

    def __init__(self, protected_terms: Iterable[str] = (), *, contrast_words: Iterable[str] | None = None,
                 use_capitalisation: bool = True) -> None:
        self.protected_terms = frozenset(t.lower() for t in protected_terms)
        self.contrast_words = frozenset(contrast_words) if contrast_words is not None else CONTRAST_WORDS
        self.use_capitalisation = use_capitalisation

    def _scan(self, text: str) -> tuple[set[str], set[str], set[str]]:
        """(critical tokens, capitalised mid-sentence words, all words), lower case."""
        critical: set[str] = set()
        capitalised: set[str] = set()
        words: set[str] = set()
        previous_end = 0
        for match in _TOKEN_RE.finditer(text):
            token = match.group(0).strip(".,:")
            lower = token.lower()
            gap = text[previous_end: match.start()]
            sentence_start = previous_end == 0 or bool(re.search(r"[.?!:\n]", gap))
            previous_end = match.end()
            words.add(lower)
            if _HAS_DIGIT.search(token):
                critical.add(lower.replace(",", ""))
            elif lower in self.contrast_words or lower in self.protected_terms:
                critical.add(lower)
            elif self.use_capitalisation and not sentence_start and token[:1].isupper() and len(token) > 1:
                capitalised.add(lower)
        return critical, capitalised, words

    def critical_tokens(self, text: str, entities: set[str] | None = None) -> set[str]:
        """The tokens of ``text`` that must match for two questions to share an answer.

        Args:
            entities: words known to be names (lower case); by default those written with
                a capital letter mid-sentence in ``text`` itself.
        """
        critical, capitalised, words = self._scan(text)
        names = capitalised if entities is None else entities
        return critical | (names & words)

    def check(self, a: str, b: str) -> GuardVerdict:
        """``ok=True`` when ``a`` and ``b`` agree on every critical token.

        A word written as a name in either question (``Courier``, ``Leeds``) counts as a
        name in both, so "Courier error E-214" and "error E-214 on a Courier?" agree,
        and a lower-case "austin" still differs from "Leeds".
        """
        crit_a, cap_a, words_a = self._scan(a)
        crit_b, cap_b, words_b = self._scan(b)
        names = cap_a | cap_b
        ta = crit_a | (names & words_a)
        tb = crit_b | (names & words_b)
        if ta == tb:
            return GuardVerdict(True)
        only_a, only_b = sorted(ta - tb), sorted(tb - ta)
        shown_a = ", ".join(repr(t) for t in only_a) or "nothing"
        shown_b = ", ".join(repr(t) for t in only_b) or "nothing"
        return GuardVerdict(False, f"differs in: {shown_a} vs {shown_b}")


# --------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class CacheHit:
    """A served answer with the facts about why it was served."""

    answer: str
    question: str
    kind: str  # "exact" or "semantic"
    similarity: float
    entry_id: int
    age_s: float


@dataclass(frozen=True)
class Lookup:
    """The full outcome of a semantic lookup, hit or miss (useful for analysis)."""

    hit: CacheHit | None
    best_similarity: float
    best_question: str | None
    reason: str  # "exact", "semantic", "empty", "below_threshold", "guard: ..."


class _Store:
    """The SQLite file shared by both caches; applies migrations on open."""

    def __init__(self, path: str | Path, clock: Callable[[], float]) -> None:
        self.path = str(path)
        self.clock = clock
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.exists():
                raise ConfigurationError(f"cache folder {parent} does not exist: create it first")
        try:
            self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.conn.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                # WAL + NORMAL: a crash can lose the last few entries, never corrupt the file;
                # for a cache that is the right trade (each write is ~100x cheaper).
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise DataFileError(f"{self.path} is not a usable SQLite cache file: {exc}") from None
        self.lock = threading.RLock()
        self.version = self._migrate()

    def _migrate(self) -> int:
        with self.lock:
            try:
                self.conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            except sqlite3.DatabaseError as exc:
                raise DataFileError(f"{self.path} is not a usable SQLite cache file: {exc}") from None
            current = int(row[0] or 0)
            if current > SCHEMA_VERSION:
                raise DataFileError(
                    f"{self.path} has cache schema version {current}, newer than this code "
                    f"({SCHEMA_VERSION}): upgrade the lab package or use another file"
                )
            for number in range(current + 1, SCHEMA_VERSION + 1):
                script = MIGRATIONS[number - 1]
                self.conn.execute("BEGIN")
                try:
                    for statement in (s.strip() for s in script.split(";")):
                        if statement:
                            self.conn.execute(statement)
                    self.conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
                    self.conn.execute("COMMIT")
                except Exception:
                    self.conn.execute("ROLLBACK")
                    raise
            return SCHEMA_VERSION

    def close(self) -> None:
        self.conn.close()


class ExactCache:
    """Serve a stored answer when the normalised question matches, per namespace.

    Args:
        path: SQLite file (its folder must exist) or ``":memory:"``.
        ttl_s: seconds an entry stays valid (``None``: until invalidated).
        clock: time source (tests pass a fake clock).
    """

    kind = "exact"

    def __init__(self, path: str | Path = ":memory:", *, ttl_s: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if ttl_s is not None and ttl_s <= 0:
            raise ConfigurationError(f"ttl_s must be positive or None, got {ttl_s}")
        self.ttl_s = ttl_s
        self._store = _Store(path, clock)
        self.stats = {"lookups": 0, "hits": 0}

    @property
    def schema_version(self) -> int:
        return self._store.version

    def _now(self) -> float:
        return self._store.clock()

    def get(self, namespace: str, question: str) -> CacheHit | None:
        """The stored answer for ``question`` in ``namespace``, or ``None``."""
        _check_namespace(namespace)
        key = normalise_question(question)
        now = self._now()
        with self._store.lock:
            self.stats["lookups"] += 1
            row = self._store.conn.execute(
                "SELECT id, question, answer, created_at FROM entries WHERE namespace = ? AND norm_key = ? "
                "AND (expires_at IS NULL OR expires_at > ?) ORDER BY id DESC LIMIT 1",
                (namespace, key, now),
            ).fetchone()
            if row is None:
                return None
            self.stats["hits"] += 1
            self._store.conn.execute("UPDATE entries SET hits = hits + 1 WHERE id = ?", (row[0],))
        return CacheHit(answer=row[2], question=row[1], kind="exact", similarity=1.0, entry_id=row[0],
                        age_s=now - row[3])

    def put(self, namespace: str, question: str, answer: str, *,
            depends_on: Mapping[str, str | int] | None = None, ttl_s: float | None = None) -> int:
        """Store ``answer`` for ``question``; returns the entry id.

        Args:
            depends_on: ``{doc_id: version}`` of the documents the answer used.
            ttl_s: overrides the cache's TTL for this entry.
        """
        return self._insert(namespace, question, answer, depends_on, ttl_s, vector=None, model=None)

    def _insert(self, namespace: str, question: str, answer: str, depends_on: Mapping[str, str | int] | None,
                ttl_s: float | None, vector: np.ndarray | None, model: str | None) -> int:
        _check_namespace(namespace)
        if not isinstance(answer, str):
            raise InputError(f"answer must be a string, got {type(answer).__name__}")
        now = self._now()
        ttl = ttl_s if ttl_s is not None else self.ttl_s
        blob = None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()
        with self._store.lock:
            cur = self._store.conn.execute(
                "INSERT INTO entries (namespace, norm_key, question, answer, created_at, expires_at, vector, "
                "embed_model) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (namespace, normalise_question(question), question, answer, now,
                 None if ttl is None else now + ttl, blob, model),
            )
            entry_id = int(cur.lastrowid)
            for doc_id, version in (depends_on or {}).items():
                self._store.conn.execute(
                    "INSERT INTO entry_deps (entry_id, doc_id, doc_version) VALUES (?, ?, ?)",
                    (entry_id, str(doc_id), str(version)),
                )
        return entry_id

    def invalidate_document(self, doc_id: str, current_version: str | int | None = None) -> int:
        """Delete answers built on ``doc_id`` (any version other than ``current_version``).

        Returns:
            how many entries were deleted.
        """
        with self._store.lock:
            if current_version is None:
                rows = self._store.conn.execute(
                    "SELECT DISTINCT entry_id FROM entry_deps WHERE doc_id = ?", (doc_id,)).fetchall()
            else:
                rows = self._store.conn.execute(
                    "SELECT DISTINCT entry_id FROM entry_deps WHERE doc_id = ? AND doc_version != ?",
                    (doc_id, str(current_version))).fetchall()
            ids = [r[0] for r in rows]
            self._delete(ids)
        return len(ids)

    def purge_expired(self) -> int:
        """Delete expired entries; returns how many."""
        with self._store.lock:
            ids = [r[0] for r in self._store.conn.execute(
                "SELECT id FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?", (self._now(),))]
            self._delete(ids)
        return len(ids)

    def clear(self, namespace: str | None = None) -> None:
        """Delete every entry (of one namespace, when given)."""
        with self._store.lock:
            if namespace is None:
                ids = [r[0] for r in self._store.conn.execute("SELECT id FROM entries")]
            else:
                ids = [r[0] for r in self._store.conn.execute(
                    "SELECT id FROM entries WHERE namespace = ?", (namespace,))]
            self._delete(ids)

    def _delete(self, ids: list[int]) -> None:
        if not ids:
            return
        for start in range(0, len(ids), 500):
            part = ids[start: start + 500]
            marks = ",".join("?" * len(part))
            self._store.conn.execute(f"DELETE FROM entry_deps WHERE entry_id IN ({marks})", part)
            self._store.conn.execute(f"DELETE FROM entries WHERE id IN ({marks})", part)
        self._on_delete(set(ids))

    def _on_delete(self, ids: set[int]) -> None:
        """Hook for subclasses that keep an in-memory index."""

    def __len__(self) -> int:
        with self._store.lock:
            return int(self._store.conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> ExactCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SemanticCache(ExactCache):
    """Serve a stored answer to a question that means the same, per namespace.

    Lookup order: exact match first (free), then the ``top_k`` most similar stored
    questions of the same namespace, taking the first that clears ``threshold`` and
    passes the ``guard``.

    Args:
        path: SQLite file or ``":memory:"``.
        embedder: a :class:`reference.embeddings.Embedder` (normalised vectors).
        threshold: minimum cosine similarity for a semantic hit.
        guard: a :class:`LookalikeGuard` (default: ``LookalikeGuard()``), or ``None`` to
            switch the guard off (only to measure what it prevents).
        top_k: candidates above the threshold to try against the guard.
        ttl_s, clock: as for :class:`ExactCache`.

    Example:
        >>> from reference.embeddings import FakeEmbedder
        >>> c = SemanticCache(":memory:", embedder=FakeEmbedder(), threshold=0.8)
        >>> _ = c.put("leeds", "how do I reset my password", "Use the portal.")
        >>> c.lookup("leeds", "how do I reset my password please").reason
        'semantic'
    """

    kind = "semantic"

    def __init__(self, path: str | Path = ":memory:", *, embedder: Any, threshold: float = 0.9,
                 guard: LookalikeGuard | None | object = _DEFAULT_GUARD, top_k: int = 5, ttl_s: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ConfigurationError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
        if top_k < 1:
            raise ConfigurationError("top_k must be >= 1")
        super().__init__(path, ttl_s=ttl_s, clock=clock)
        self.embedder = embedder
        self.threshold = threshold
        self.guard: LookalikeGuard | None = LookalikeGuard() if guard is _DEFAULT_GUARD else guard  # type: ignore[assignment]
        if self.guard is not None and not isinstance(self.guard, LookalikeGuard):
            raise ConfigurationError("guard must be a LookalikeGuard or None")
        self.top_k = top_k
        self.stats.update({"exact_hits": 0, "semantic_hits": 0, "guard_blocks": 0})
        self._index: dict[str, tuple[list[int], np.ndarray, list[str], list[float | None], list[str]]] = {}

    def _load(self, namespace: str) -> tuple[list[int], np.ndarray, list[str], list[float | None], list[str]]:
        if namespace not in self._index:
            rows = self._store.conn.execute(
                "SELECT id, vector, question, expires_at, answer, embed_model FROM entries "
                "WHERE namespace = ? AND vector IS NOT NULL ORDER BY id", (namespace,)).fetchall()
            model = getattr(self.embedder, "model", None)
            rows = [r for r in rows if r[5] == model]  # vectors of another model are not comparable
            dim = int(getattr(self.embedder, "dim", 0) or (len(rows[0][1]) // 4 if rows else 0))
            matrix = (np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
                      if rows else np.zeros((0, dim), dtype=np.float32))
            self._index[namespace] = ([r[0] for r in rows], matrix, [r[2] for r in rows],
                                      [r[3] for r in rows], [r[4] for r in rows])
        return self._index[namespace]

    def _on_delete(self, ids: set[int]) -> None:
        self._index.clear()  # rebuilt lazily from SQLite on the next lookup

    def embed(self, question: str) -> np.ndarray:
        return np.asarray(self.embedder.embed([question])[0], dtype=np.float32)

    def lookup(self, namespace: str, question: str, *, vector: np.ndarray | None = None) -> Lookup:
        """Look ``question`` up; returns hit or miss with the reason.

        Args:
            vector: the question's embedding if you already have it (saves one embed call).
        """
        _check_namespace(namespace)
        exact = self.get(namespace, question)
        with self._store.lock:
            if exact is not None:
                self.stats["exact_hits"] += 1
                return Lookup(exact, 1.0, exact.question, "exact")
            ids, matrix, questions, expires, answers = self._load(namespace)
            if not ids:
                return Lookup(None, 0.0, None, "empty")
            q = self.embed(question) if vector is None else np.asarray(vector, dtype=np.float32)
            sims = matrix @ q
            now = self._now()
            order = np.argsort(-sims)[: self.top_k]
            best = int(order[0])
            reason = "below_threshold"
            for idx in order:
                idx = int(idx)
                if sims[idx] < self.threshold:
                    break
                if expires[idx] is not None and expires[idx] <= now:
                    reason = "expired"
                    continue
                if self.guard is not None:
                    verdict = self.guard.check(question, questions[idx])
                    if not verdict.ok:
                        reason = f"guard: {verdict.reason}"
                        self.stats["guard_blocks"] += 1
                        continue
                self.stats["hits"] += 1
                self.stats["semantic_hits"] += 1
                self._store.conn.execute("UPDATE entries SET hits = hits + 1 WHERE id = ?", (ids[idx],))
                created = self._store.conn.execute(
                    "SELECT created_at FROM entries WHERE id = ?", (ids[idx],)).fetchone()[0]
                hit = CacheHit(answers[idx], questions[idx], "semantic", float(sims[idx]), ids[idx], now - created)
                return Lookup(hit, float(sims[best]), questions[best], "semantic")
            return Lookup(None, float(sims[best]), questions[best], reason)

    def put(self, namespace: str, question: str, answer: str, *,
            depends_on: Mapping[str, str | int] | None = None, ttl_s: float | None = None,
            vector: np.ndarray | None = None) -> int:
        """Store ``answer`` with the question's embedding; returns the entry id."""
        vec = self.embed(question) if vector is None else np.asarray(vector, dtype=np.float32)
        with self._store.lock:
            entry_id = self._insert(namespace, question, answer, depends_on, ttl_s, vector=vec,
                                    model=getattr(self.embedder, "model", None))
            if namespace in self._index:
                ids, matrix, questions, expires, answers = self._index[namespace]
                ttl = ttl_s if ttl_s is not None else self.ttl_s
                self._index[namespace] = (ids + [entry_id], np.vstack([matrix, vec[None, :]]),
                                          questions + [question],
                                          expires + [None if ttl is None else self._now() + ttl],
                                          answers + [answer])
        return entry_id
