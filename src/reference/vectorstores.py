"""One small interface over five vector stores, plus the measurements that compare them.

Every store speaks the same four verbs::

    store.add(ids, vectors, payloads)          # ints, (n, dim) float32, dicts of scalars
    store.search(vector, k=10, filter=None)    # -> SearchResult(ids, scores), best first
    store.count()
    store.close()

Scores are cosine similarities (higher is better); vectors should be unit length.
Filters are a dict: ``{"dept": "Finance"}`` keeps points whose payload field equals
the value; a list means "any of": ``{"dept": ["Finance", "HR"]}``; several keys must
all match.

Backends (``open_store(kind, dim, ...)``), all offline here:

=========  =================================================  ===========================
kind       in-process / on disk                               server (same code, ``url=``)
=========  =================================================  ===========================
exact      numpy brute force: the ground truth for recall     -
qdrant     ``QdrantClient(":memory:")`` / ``path=``           ``url="http://qdrant:6333"``
pgvector   PostgreSQL + pgvector from the ``pgserver`` wheel  ``url="postgresql://..."``
chroma     ``EphemeralClient`` / ``PersistentClient(path)``   ``url="http://chroma:8000"``
milvus     Milvus Lite (a local file)                         ``url="http://milvus:19530"``
lancedb    a local folder (exact scan until indexed)          ``url="s3://bucket/path"``
=========  =================================================  ===========================

Example:
    >>> import numpy as np
    >>> s = open_store("exact", dim=2)
    >>> s.add([1, 2], np.array([[1, 0], [0, 1]], dtype=np.float32), [{"t": "a"}, {"t": "b"}])
    2
    >>> s.search(np.array([1, 0], dtype=np.float32), k=1).ids
    [1]
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from reference.errors import ConfigurationError, InputError, LabError

__all__ = [
    "SearchResult", "VectorStore", "ExactStore", "QdrantStore", "PgVectorStore", "ChromaStore", "MilvusStore",
    "LanceStore", "StoreUnavailableError", "STORE_KINDS", "open_store", "available_stores", "clustered_vectors",
    "exact_top_k", "recall_at_k", "StoreReport", "measure_store", "dir_size_mb", "process_tree_rss_mb",
]

Scalar = str | int | float | bool
Filter = dict[str, Scalar | Sequence[Scalar]]


class StoreUnavailableError(ConfigurationError):
    """A store's client library is not installed, or its server cannot be reached."""


@dataclass(frozen=True)
class SearchResult:
    """Ids and cosine similarities of the nearest points, best first."""

    ids: list[int]
    scores: list[float]

    def __len__(self) -> int:
        return len(self.ids)


# --------------------------------------------------------------------------- validation


def _check_vectors(vectors: Any, dim: int) -> np.ndarray:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise InputError(f"vectors must have shape (n, {dim}), got {np.asarray(vectors).shape}")
    if not np.isfinite(arr).all():
        raise InputError("vectors contain NaN or infinity")
    return np.ascontiguousarray(arr)


def _check_filter(flt: Filter | None) -> dict[str, list[Scalar]]:
    if not flt:
        return {}
    if not isinstance(flt, dict):
        raise InputError(f"filter must be a dict of field -> value(s), got {type(flt).__name__}")
    out: dict[str, list[Scalar]] = {}
    for key, value in flt.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise InputError(f"filter field {key!r} must be a plain identifier")
        values = list(value) if isinstance(value, (list, tuple, set)) else [value]
        if not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
            raise InputError(f"filter[{key!r}] must be a scalar or a non-empty list of scalars")
        out[key] = values
    return out


def _check_payloads(payloads: Sequence[dict] | None, n: int) -> list[dict[str, Scalar]]:
    if payloads is None:
        return [{} for _ in range(n)]
    items = list(payloads)
    if len(items) != n:
        raise InputError(f"{n} vectors but {len(items)} payloads")
    for i, p in enumerate(items):
        if not isinstance(p, dict):
            raise InputError(f"payloads[{i}] is {type(p).__name__}, expected a dict")
        for key, value in p.items():
            if not isinstance(key, str) or not key.isidentifier() or key in ("id", "vector"):
                raise InputError(f"payloads[{i}] field {key!r}: use identifiers other than 'id' and 'vector'")
            if not isinstance(value, (str, int, float, bool)):
                raise InputError(f"payloads[{i}][{key!r}] is {type(value).__name__}; only str/int/float/bool")
    return items


class VectorStore(ABC):
    """The shared interface. Subclasses implement ``_add``, ``_search``, ``count``, ``close``."""

    kind: ClassVar[str] = "base"

    def __init__(self, dim: int, *, collection: str = "lab_vectors") -> None:
        if not isinstance(dim, int) or dim < 1:
            raise InputError(f"dim must be a positive int, got {dim!r}")
        self.dim = dim
        self.collection = collection
        self.path: Path | None = None

    def add(self, ids: Sequence[int], vectors: Any, payloads: Sequence[dict] | None = None) -> int:
        """Insert points (ids must be new non-negative ints); returns how many were added."""
        arr = _check_vectors(vectors, self.dim)
        id_list = [int(i) for i in ids]
        if len(id_list) != len(arr):
            raise InputError(f"{len(id_list)} ids but {len(arr)} vectors")
        if len(set(id_list)) != len(id_list) or any(i < 0 for i in id_list):
            raise InputError("ids must be unique non-negative integers")
        items = _check_payloads(payloads, len(arr))
        if not id_list:
            return 0
        self._add(id_list, arr, items)
        return len(id_list)

    def search(self, vector: Any, k: int = 10, filter: Filter | None = None) -> SearchResult:  # noqa: A002
        """The ``k`` nearest points by cosine similarity, optionally among those matching ``filter``."""
        if not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a positive int, got {k!r}")
        q = _check_vectors(vector, self.dim)
        if len(q) != 1:
            raise InputError("search takes one vector; loop for several")
        return self._search(q[0], k, _check_filter(filter))

    def build_index(self) -> None:
        """Build the ANN index after a bulk load (a no-op for stores that index on insert)."""

    def describe(self) -> str:
        """One line: kind and what index it searches with."""
        return self.kind

    @abstractmethod
    def _add(self, ids: list[int], vectors: np.ndarray, payloads: list[dict[str, Scalar]]) -> None: ...

    @abstractmethod
    def _search(self, vector: np.ndarray, k: int, flt: dict[str, list[Scalar]]) -> SearchResult: ...

    @abstractmethod
    def count(self) -> int:
        """Number of points stored."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and files (data on disk stays)."""

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, collection={self.collection!r})"


def _temp_dir(kind: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"lab-{kind}-"))


# --------------------------------------------------------------------------- exact (numpy)


class ExactStore(VectorStore):
    """Brute-force numpy search: slow at scale, but exact; the reference for recall."""

    kind = "exact"

    def __init__(self, dim: int, **kw: Any) -> None:
        super().__init__(dim, **kw)
        self._ids = np.zeros(0, dtype=np.int64)
        self._vecs = np.zeros((0, dim), dtype=np.float32)
        self._payloads: list[dict[str, Scalar]] = []
        self._pending: list[tuple[list[int], np.ndarray]] = []

    def _flush(self) -> None:
        if self._pending:
            self._ids = np.concatenate([self._ids, *[np.asarray(i, dtype=np.int64) for i, _ in self._pending]])
            self._vecs = np.vstack([self._vecs, *[v for _, v in self._pending]])
            self._pending = []

    def _add(self, ids: list[int], vectors: np.ndarray, payloads: list[dict[str, Scalar]]) -> None:
        self._pending.append((ids, vectors))
        self._payloads.extend(payloads)

    def _mask(self, flt: dict[str, list[Scalar]]) -> np.ndarray | None:
        if not flt:
            return None
        return np.fromiter((all(p.get(f) in vs for f, vs in flt.items()) for p in self._payloads), bool,
                           count=len(self._payloads))

    def _search(self, vector: np.ndarray, k: int, flt: dict[str, list[Scalar]]) -> SearchResult:
        self._flush()
        scores = self._vecs @ vector
        mask = self._mask(flt)
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        k = min(k, int(np.isfinite(scores).sum()))
        if k == 0:
            return SearchResult([], [])
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return SearchResult(self._ids[top].tolist(), scores[top].astype(float).tolist())

    def count(self) -> int:
        self._flush()
        return len(self._ids)

    def close(self) -> None:
        self._pending = []


# --------------------------------------------------------------------------- qdrant


class QdrantStore(VectorStore):
    """Qdrant: ``":memory:"`` by default, ``path=`` for local on-disk mode, ``url=`` for a server.

    Local mode (memory or path) is a pure-Python re-implementation that searches by brute
    force and, with ``path=``, writes every point to SQLite; a server builds HNSW.
    """

    kind = "qdrant"

    def __init__(self, dim: int, *, path: str | Path | None = None, url: str | None = None,
                 api_key: str | None = None, batch_size: int = 256, **kw: Any) -> None:
        super().__init__(dim, **kw)
        from qdrant_client import QdrantClient, models  # noqa: PLC0415

        self._models = models
        if url:
            self.client = QdrantClient(url=url, api_key=api_key)
        elif path:
            self.path = Path(path)
            self.client = QdrantClient(path=str(path))
        else:
            self.client = QdrantClient(location=":memory:")
        self.url = url
        self.batch_size = batch_size
        if not self.client.collection_exists(collection := self.collection):
            self.client.create_collection(collection, vectors_config=models.VectorParams(
                size=dim, distance=models.Distance.COSINE))

    def describe(self) -> str:
        mode = "server (HNSW)" if self.url else ("local, on disk (brute force)" if self.path else
                                                 "local, in memory (brute force)")
        return f"qdrant {mode}"

    def _add(self, ids: list[int], vectors: np.ndarray, payloads: list[dict[str, Scalar]]) -> None:
        for s in range(0, len(ids), self.batch_size):
            self.client.upsert(self.collection, points=self._models.Batch(
                ids=ids[s:s + self.batch_size], vectors=vectors[s:s + self.batch_size].tolist(),
                payloads=payloads[s:s + self.batch_size]), wait=True)

    def _search(self, vector: np.ndarray, k: int, flt: dict[str, list[Scalar]]) -> SearchResult:
        m = self._models
        query_filter = None
        if flt:
            query_filter = m.Filter(must=[
                m.FieldCondition(key=f, match=m.MatchValue(value=vs[0]) if len(vs) == 1 else m.MatchAny(any=vs))
                for f, vs in flt.items()])
        res = self.client.query_points(self.collection, query=vector.tolist(), limit=k, query_filter=query_filter,
                                       with_payload=False)
        return SearchResult([int(p.id) for p in res.points], [float(p.score) for p in res.points])

    def count(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------- pgvector


class PgVectorStore(VectorStore):
    """PostgreSQL + pgvector. ``url=`` a server's DSN, or a private server from ``pgserver``.

    Without ``url``, the ``pgserver`` wheel runs a real PostgreSQL (with pgvector) on a
    Unix socket in ``path`` (a temporary folder by default), so the same SQL runs here
    and against a managed Postgres. :meth:`build_index` creates an HNSW index;
    ``ef_search`` is pgvector's ``hnsw.ef_search`` (candidates examined per query).
    With ``force_index`` (default) the session sets ``enable_seqscan = off`` once indexed,
    so measurements show the index even on tables small enough for the planner to
    prefer an exact scan (large tables use the index anyway).
    """

    kind = "pgvector"

    def __init__(self, dim: int, *, url: str | None = None, path: str | Path | None = None,
                 ef_search: int = 40, force_index: bool = True, **kw: Any) -> None:
        super().__init__(dim, **kw)
        self.force_index = force_index
        try:
            import psycopg  # noqa: PLC0415
            from pgvector.psycopg import register_vector  # noqa: PLC0415
        except ImportError as exc:
            raise StoreUnavailableError("pgvector needs `pip install psycopg[binary] pgvector`") from exc
        if not self.collection.isidentifier():
            raise InputError(f"collection {self.collection!r} must be an SQL identifier")
        self.server = None
        if url is None:
            try:
                import pgserver  # noqa: PLC0415
            except ImportError as exc:
                raise StoreUnavailableError("no url= and no `pgserver` wheel for a local PostgreSQL") from exc
            self._own_temp = path is None
            self.path = Path(path) if path else _temp_dir("pgvector")
            self.server = pgserver.get_server(str(self.path), cleanup_mode="delete" if self._own_temp else "stop")
            url = self.server.get_uri()
        self.url = url
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"cannot connect to PostgreSQL: {str(exc).splitlines()[0]}") from None
        self.conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(self.conn)
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {self.collection} "
                          f"(id bigint PRIMARY KEY, embedding vector({dim}), payload jsonb)")
        self.ef_search = ef_search
        self.indexed = False

    def describe(self) -> str:
        return f"pgvector ({'HNSW, ef_search=' + str(self.ef_search) if self.indexed else 'exact scan, no index'})"

    def _add(self, ids: list[int], vectors: np.ndarray, payloads: list[dict[str, Scalar]]) -> None:
        from psycopg.types.json import Jsonb  # noqa: PLC0415

        with self.conn.cursor() as cur, cur.copy(
                f"COPY {self.collection} (id, embedding, payload) FROM STDIN WITH (FORMAT BINARY)") as cp:
            cp.set_types(["bigint", "vector", "jsonb"])
            for i, v, p in zip(ids, vectors, payloads, strict=True):
                cp.write_row((i, v, Jsonb(p)))

    def build_index(self, m: int = 16, ef_construction: int = 64) -> None:
        """``CREATE INDEX ... USING hnsw (embedding vector_cosine_ops)`` (after a bulk load: faster)."""
        self.conn.execute("SET maintenance_work_mem = '1GB'")
        self.conn.execute(f"CREATE INDEX IF NOT EXISTS {self.collection}_hnsw ON {self.collection} "
                          f"USING hnsw (embedding vector_cosine_ops) WITH (m = {int(m)}, "
                          f"ef_construction = {int(ef_construction)})")
        self.conn.execute(f"ANALYZE {self.collection}")
        if self.force_index:
            self.conn.execute("SET enable_seqscan = off")
        self.indexed = True

    def _search(self, vector: np.ndarray, k: int, flt: dict[str, list[Scalar]]) -> SearchResult:
        where, params = [], []
        for f, vs in flt.items():
            where.append("payload->>%s = ANY(%s)")
            params += [f, [json.dumps(v) if isinstance(v, bool) else str(v) for v in vs]]
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        self.conn.execute(f"SET hnsw.ef_search = {int(self.ef_search)}")
        rows = self.conn.execute(
            f"SELECT id, 1 - (embedding <=> %s) FROM {self.collection} {clause} ORDER BY embedding <=> %s LIMIT %s",
            [vector, *params, vector, k]).fetchall()
        return SearchResult([int(r[0]) for r in rows], [float(r[1]) for r in rows])

    def count(self) -> int:
        return int(self.conn.execute(f"SELECT count(*) FROM {self.collection}").fetchone()[0])

    def server_pids(self) -> list[int]:
        """PIDs of the local PostgreSQL (postmaster first), for memory accounting."""
        if self.path is None or not (self.path / "postmaster.pid").exists():
            return []
        return [int((self.path / "postmaster.pid").read_text().split()[0])]

    def close(self) -> None:
        """Close the connection; a private temporary server is stopped and its folder deleted."""
        self.conn.close()
        if self.server is not None and getattr(self, "_own_temp", False):
            self.server.cleanup()
            self.server = None


# --------------------------------------------------------------------------- chroma


class ChromaStore(VectorStore):
    """Chroma: in memory by default, ``path=`` to persist, ``url=`` for a Chroma server.

    Telemetry is off (``ANONYMIZED_TELEMETRY=False``, set by :mod:`reference.offline`).
    Chroma indexes with HNSW as points arrive (``hnsw:space = cosine``).
    """

    kind = "chroma"

    def __init__(self, dim: int, *, path: str | Path | None = None, url: str | None = None, **kw: Any) -> None:
        super().__init__(dim, **kw)
        try:
            import chromadb  # noqa: PLC0415
            from chromadb.config import Settings  # noqa: PLC0415
        except ImportError as exc:
            raise StoreUnavailableError("chroma needs `pip install chromadb`") from exc
        settings = Settings(anonymized_telemetry=False, allow_reset=True)
        if url:
            from urllib.parse import urlsplit  # noqa: PLC0415

            parts = urlsplit(url)
            self.client = chromadb.HttpClient(host=parts.hostname or "localhost", port=parts.port or 8000,
                                              ssl=parts.scheme == "https", settings=settings)
        elif path:
            self.path = Path(path)
            self.client = chromadb.PersistentClient(path=str(path), settings=settings)
        else:
            self.client = chromadb.EphemeralClient(settings=settings)
        self.url = url
        self.col = self.client.get_or_create_collection(self.collection, metadata={"hnsw:space": "cosine"})
        self.max_batch = int(getattr(self.client, "get_max_batch_size", lambda: 5000)())

    def describe(self) -> str:
        return f"chroma {'server' if self.url else ('persistent' if self.path else 'in memory')} (HNSW)"

    def _add(self, ids: list[int], vectors: np.ndarray, payloads: list[dict[str, Scalar]]) -> None:
        has_meta = any(payloads)
        for s in range(0, len(ids), self.max_batch):
            sl = slice(s, s + self.max_batch)
            self.col.add(ids=[str(i) for i in ids[sl]], embeddings=vectors[sl],
                         metadatas=payloads[sl] if has_meta else None)

    def _search(self, vector: np.ndarray, k: int, flt: dict[str, list[Scalar]]) -> SearchResult:
        clauses = [{f: vs[0]} if len(vs) == 1 else {f: {"$in": vs}} for f, vs in flt.items()]
        where = None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
        res = self.col.query(query_embeddings=vector[None, :], n_results=k, where=where, include=["distances"])
        return SearchResult([int(i) for i in res["ids"][0]], [1.0 - float(d) for d in res["distances"][0]])

    def count(self) -> int:
        return int(self.col.count())

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if callable(close):
            close()


# --------------------------------------------------------------------------- milvus


class MilvusStore(VectorStore):
    """Milvus Lite (a local ``.db`` file, run by the ``milvus-lite`` wheel) or ``url=`` a Milvus server.

    Payload fields go into Milvus's dynamic fields, so no schema is declared up front.
    """

    kind = "milvus"

    def __init__(self, dim: int, *, path: str | Path | None = None, url: str | None = None,
                 token: str | None = None, batch_size: int = 2000, **kw: Any) -> None:
        super().__init__(dim, **kw)
        try:
            from pymilvus import MilvusClient  # noqa: PLC0415
        except ImportError as exc:
            raise StoreUnavailableError("milvus needs `pip install pymilvus milvus-lite`") from exc
        if url:
            self.client = MilvusClient(uri=url, token=token or "")
        else:
            self.path = Path(path) if path else _temp_dir("milvus")
            self.path.mkdir(parents=True, exist_ok=True)
            self.client = MilvusClient(str(self.path / "milvus.db"))
        self.url = url
        self.batch_size = batch_size
        if not self.client.has_collection(self.collection):
            self.client.create_collection(self.collection, dimension=dim, metric_type="COSINE", auto_id=False,
                                          enable_dynamic_field=True)

    def describe(self) -> str:
        return f"milvus {'server' if self.url else 'lite (local file)'}"

    def build_index(self) -> None:
        """Flush inserted rows into sealed segments, which Milvus indexes (growing ones are scanned)."""
        self.client.flush(self.collection)

    def _add(self, ids: list[int], vectors: np.ndarray, payloads: list[dict[str, Scalar]]) -> None:
        for s in range(0, len(ids), self.batch_size):
            rows = [{"id": i, "vector": v, **p} for i, v, p in zip(
                ids[s:s + self.batch_size], vectors[s:s + self.batch_size], payloads[s:s + self.batch_size],
                strict=True)]
            self.client.insert(self.collection, rows)

    def _search(self, vector: np.ndarray, k: int, flt: dict[str, list[Scalar]]) -> SearchResult:
        expr = " and ".join(f"{f} == {json.dumps(vs[0])}" if len(vs) == 1 else f"{f} in {json.dumps(vs)}"
                            for f, vs in flt.items())
        res = self.client.search(self.collection, data=[vector.tolist()], limit=k, filter=expr,
                                 output_fields=[])
        hits = res[0]
        return SearchResult([int(h["id"]) for h in hits], [float(h["distance"]) for h in hits])

    def count(self) -> int:
        res = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"])

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------- lancedb


class LanceStore(VectorStore):
    """LanceDB: columnar files in a folder; an exact scan until :meth:`build_index` builds IVF.

    The payload columns are fixed by the first ``add`` (Lance tables have a schema).
    """

    kind = "lancedb"

    #: Index types :meth:`build_index` can build: IVF partitions, then either an HNSW graph
    #: over 8-bit quantised vectors inside each partition, or a flat scan of them.
    INDEXES: tuple[str, ...] = ("ivf_hnsw_sq", "ivf_sq")

    def __init__(self, dim: int, *, path: str | Path | None = None, url: str | None = None,
                 nprobes: int = 20, refine_factor: int = 4, index: str = "ivf_hnsw_sq", **kw: Any) -> None:
        super().__init__(dim, **kw)
        if index not in self.INDEXES:
            raise InputError(f"unknown lancedb index {index!r}; choose one of {list(self.INDEXES)}")
        self.index = index
        self.refine_factor = refine_factor
        try:
            import lancedb  # noqa: PLC0415
        except ImportError as exc:
            raise StoreUnavailableError("lancedb needs `pip install lancedb`") from exc
        if url:
            self.db = lancedb.connect(url)
        else:
            self.path = Path(path) if path else _temp_dir("lancedb")
            self.db = lancedb.connect(str(self.path))
        self.url = url
        self.table = self.db.open_table(self.collection) if self.collection in self._names() else None
        self.nprobes = nprobes
        self.indexed = False

    def _names(self) -> list[str]:
        listing = self.db.list_tables() if hasattr(self.db, "list_tables") else self.db.table_names()
        return list(getattr(listing, "tables", listing))

    def describe(self) -> str:
        if not self.indexed:
            return "lancedb (exact scan)"
        name = "IVF+HNSW-SQ" if self.index == "ivf_hnsw_sq" else "IVF-SQ"
        return f"lancedb ({name} index, nprobes={self.nprobes})"

    def _add(self, ids: list[int], vectors: np.ndarray, payloads: list[dict[str, Scalar]]) -> None:
        import pyarrow as pa  # noqa: PLC0415

        columns: dict[str, Any] = {
            "id": pa.array(ids, type=pa.int64()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel(), type=pa.float32()), self.dim),
        }
        fields = sorted({f for p in payloads for f in p})
        for f in fields:
            columns[f] = pa.array([p.get(f) for p in payloads])
        batch = pa.table(columns)
        if self.table is None:
            self.table = self.db.create_table(self.collection, data=batch)
        else:
            self.table.add(batch)

    def build_index(self, num_partitions: int | None = None) -> None:
        """Build the index chosen at construction (cosine; vectors quantised to 8 bits).

        ``ivf_hnsw_sq`` (the default): about sqrt(n)/4 partitions, each with an HNSW graph:
        fast queries, but the graphs take long to build (over 10 minutes for 1M x 384 on
        2 cores). ``ivf_sq``: about sqrt(n) partitions scanned flat: builds in a few minutes
        at 1M; give it more ``nprobes`` (about a tenth of the partitions) for good recall.
        """
        if self.table is None:
            raise InputError("add vectors before building an index")
        from lancedb.index import IvfHnswSq, IvfSq  # noqa: PLC0415

        n = self.count()
        if self.index == "ivf_hnsw_sq":
            parts = num_partitions or max(1, int(np.sqrt(n) / 4))
            config: Any = IvfHnswSq(distance_type="cosine", num_partitions=parts)
        else:
            parts = num_partitions or max(1, int(np.sqrt(n)))
            config = IvfSq(distance_type="cosine", num_partitions=parts)
        self.table.create_index("vector", config=config)
        self.indexed = True

    def _search(self, vector: np.ndarray, k: int, flt: dict[str, list[Scalar]]) -> SearchResult:
        if self.table is None:
            return SearchResult([], [])
        q = self.table.search(vector).distance_type("cosine").limit(k).select(["id", "_distance"])
        if self.indexed:
            # the index holds 8-bit quantised vectors: re-rank a few extra candidates exactly
            q = q.nprobes(self.nprobes).refine_factor(self.refine_factor)
        if flt:
            q = q.where(" AND ".join(f"{f} IN ({', '.join(_sql_literal(v) for v in vs)})" for f, vs in flt.items()),
                        prefilter=True)
        rows = q.to_list()
        return SearchResult([int(r["id"]) for r in rows], [1.0 - float(r["_distance"]) for r in rows])

    def count(self) -> int:
        return 0 if self.table is None else int(self.table.count_rows())

    def close(self) -> None:
        self.table = None


def _sql_literal(value: Scalar) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


# --------------------------------------------------------------------------- factory

STORE_KINDS: dict[str, tuple[type[VectorStore], str]] = {
    "exact": (ExactStore, "numpy"),
    "qdrant": (QdrantStore, "qdrant_client"),
    "pgvector": (PgVectorStore, "pgvector"),
    "chroma": (ChromaStore, "chromadb"),
    "milvus": (MilvusStore, "pymilvus"),
    "lancedb": (LanceStore, "lancedb"),
}


def available_stores() -> dict[str, str | None]:
    """``{kind: None if its client library is importable, else why not}``."""
    out: dict[str, str | None] = {}
    for kind, (_, module) in STORE_KINDS.items():
        out[kind] = None if importlib.util.find_spec(module) else f"python package {module!r} not installed"
    if out["pgvector"] is None and importlib.util.find_spec("psycopg") is None:
        out["pgvector"] = "python package 'psycopg' not installed"
    if out["milvus"] is None and importlib.util.find_spec("milvus_lite") is None:
        out["milvus"] = "Milvus Lite ('milvus-lite') not installed; only url= servers would work"
    return out


def open_store(kind: str, dim: int, **kwargs: Any) -> VectorStore:
    """A store of ``kind`` (see :data:`STORE_KINDS`); ``url=`` selects a server, ``path=`` a folder.

    Example:
        >>> open_store("exact", dim=4).count()
        0
    """
    if kind not in STORE_KINDS:
        raise InputError(f"unknown store {kind!r}; choose one of {sorted(STORE_KINDS)}")
    cls, _ = STORE_KINDS[kind]
    return cls(dim, **kwargs)


# --------------------------------------------------------------------------- measuring


def clustered_vectors(n: int, dim: int = 384, *, n_clusters: int = 50, intrinsic_dim: int = 32,
                      spread: float = 0.6, seed: int = 0) -> np.ndarray:
    """Unit vectors that look like text embeddings to an ANN index.

    Points live near an ``intrinsic_dim``-dimensional subspace (real sentence embeddings
    have a low intrinsic dimension) and gather around ``n_clusters`` overlapping topics in
    it, plus a little isotropic noise. Uniform random vectors have neither property and
    make every approximate index look worse than it is on real data.

    Example:
        >>> clustered_vectors(5, 8).shape
        (5, 8)
    """
    if n < 0 or dim < 1 or n_clusters < 1 or intrinsic_dim < 1:
        raise InputError("n >= 0, dim >= 1, n_clusters >= 1 and intrinsic_dim >= 1 required")
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, intrinsic_dim)).astype(np.float32)
    lift = rng.standard_normal((intrinsic_dim, dim)).astype(np.float32) / np.sqrt(intrinsic_dim)
    out = np.empty((n, dim), dtype=np.float32)
    step = 50_000
    for s in range(0, n, step):
        m = min(step, n - s)
        latent = centres[rng.integers(0, n_clusters, m)]
        latent = latent + rng.standard_normal((m, intrinsic_dim)).astype(np.float32) * spread
        block = latent @ lift + rng.standard_normal((m, dim)).astype(np.float32) * 0.1
        out[s:s + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def exact_top_k(base: np.ndarray, queries: np.ndarray, k: int, *, mask: np.ndarray | None = None,
                block: int = 50_000) -> np.ndarray:
    """Indices (rows of ``base``) of the exact top-``k`` by dot product, per query; ``-1`` pads.

    Computed in blocks so 1M x 384 float32 needs no second copy of the data.
    """
    queries = np.atleast_2d(queries).astype(np.float32)
    nq = len(queries)
    best_s = np.full((nq, k), -np.inf, dtype=np.float32)
    best_i = np.full((nq, k), -1, dtype=np.int64)
    for s in range(0, len(base), block):
        scores = queries @ base[s:s + block].T
        if mask is not None:
            scores = np.where(mask[s:s + block][None, :], scores, -np.inf)
        all_s = np.hstack([best_s, scores])
        all_i = np.hstack([best_i, np.broadcast_to(np.arange(s, s + scores.shape[1]), scores.shape)])
        top = np.argsort(-all_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(all_s, top, 1)
        best_i = np.take_along_axis(all_i, top, 1)
    best_i[~np.isfinite(best_s)] = -1
    return best_i


def recall_at_k(found: Sequence[Sequence[int]], truth: Sequence[Sequence[int]]) -> float:
    """Mean share of the true neighbours that were found (ignores ``-1`` padding).

    Example:
        >>> recall_at_k([[1, 2, 3]], [[1, 2, 4]])
        0.6666666666666666
    """
    if len(found) != len(truth):
        raise InputError(f"{len(found)} result lists but {len(truth)} truth lists")
    shares = []
    for f, t in zip(found, truth, strict=True):
        want = {int(x) for x in t if x >= 0}
        if want:
            shares.append(len(want & {int(x) for x in f}) / len(want))
    return float(np.mean(shares)) if shares else float("nan")


def dir_size_mb(path: str | Path | None) -> float:
    """Size of the files under ``path`` in MB (0.0 for ``None`` or a missing folder)."""
    if path is None or not Path(path).exists():
        return 0.0
    total = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    return total / 1e6


def process_tree_rss_mb(extra_pids: Sequence[int] = ()) -> float:
    """Resident memory (MB) of this process, its children and ``extra_pids`` with theirs."""
    import psutil  # noqa: PLC0415

    seen: set[int] = set()
    total = 0
    roots = [psutil.Process()]
    for pid in extra_pids:
        try:
            roots.append(psutil.Process(pid))
        except psutil.Error:
            continue
    for root in roots:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for p in procs:
            if p.pid in seen:
                continue
            seen.add(p.pid)
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    return total / 1e6


@dataclass
class StoreReport:
    """One store's numbers at one size (times in seconds unless the name says ms)."""

    store: str
    n: int
    dim: int
    ingest_s: float
    index_s: float
    p50_ms: float
    p95_ms: float
    recall_at_10: float
    filtered_recall_at_10: float
    filtered_returned: float
    memory_mb: float
    disk_mb: float
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ingest_per_s(self) -> float:
        return self.n / self.ingest_s if self.ingest_s > 0 else float("nan")

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["ingest_per_s"] = round(self.ingest_per_s)
        for key in ("ingest_s", "index_s", "p50_ms", "p95_ms", "memory_mb", "disk_mb"):
            d[key] = round(d[key], 2)
        for key in ("recall_at_10", "filtered_recall_at_10", "filtered_returned"):
            d[key] = round(d[key], 3)
        return d


def measure_store(
    make: Callable[[], VectorStore],
    vectors: np.ndarray,
    queries: np.ndarray,
    *,
    payloads: Sequence[dict] | None = None,
    filter: Filter | None = None,  # noqa: A002
    k: int = 10,
    batch: int = 5000,
    build_index: bool = True,
    progress: bool = False,
    truth: np.ndarray | None = None,
    filtered_truth: np.ndarray | None = None,
) -> StoreReport:
    """Load ``vectors`` into a fresh store and measure ingest, latency, recall, memory and disk.

    Ids are row numbers. Recall is against :func:`exact_top_k` (pass ``truth`` to reuse
    it across stores). With ``filter``, also measures filtered recall and how many of the
    ``k`` requested results came back on average (``filtered_returned``): some ANN
    indexes filter *after* the search and silently return fewer.
    """
    from tqdm.auto import tqdm  # noqa: PLC0415

    items = list(payloads) if payloads is not None else None
    mem_before = process_tree_rss_mb()
    store = make()
    extra_pids = list(getattr(store, "server_pids", list)())
    mem_before += process_tree_rss_mb(extra_pids) - process_tree_rss_mb() if extra_pids else 0.0
    try:
        t0 = time.perf_counter()
        for s in tqdm(range(0, len(vectors), batch), desc=f"{store.kind} ingest", disable=not progress):
            store.add(range(s, min(s + batch, len(vectors))), vectors[s:s + batch],
                      items[s:s + batch] if items is not None else None)
        ingest_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        if build_index:
            store.build_index()
        index_s = time.perf_counter() - t0
        if store.count() != len(vectors):
            raise LabError(f"{store.kind} holds {store.count()} points after adding {len(vectors)}")
        if truth is None:
            truth = exact_top_k(vectors, queries, k)
        found, lat = [], []
        for q in queries:
            t0 = time.perf_counter()
            found.append(store.search(q, k).ids)
            lat.append(time.perf_counter() - t0)
        recall = recall_at_k(found, truth)
        f_recall, f_returned = float("nan"), float("nan")
        if filter and items is not None:
            if filtered_truth is None:
                flt = _check_filter(filter)
                mask = np.array([all(p.get(f) in vs for f, vs in flt.items()) for p in items])
                filtered_truth = exact_top_k(vectors, queries, k, mask=mask)
            f_found = [store.search(q, k, filter).ids for q in queries]
            f_recall = recall_at_k(f_found, filtered_truth)
            expected = np.mean([min(k, int((row >= 0).sum())) for row in filtered_truth])
            f_returned = float(np.mean([len(f) for f in f_found]) / expected) if expected else float("nan")
        memory = process_tree_rss_mb(extra_pids) - mem_before
        disk = dir_size_mb(store.path)
        return StoreReport(store.describe(), len(vectors), vectors.shape[1], ingest_s, index_s,
                           float(np.percentile(lat, 50) * 1000), float(np.percentile(lat, 95) * 1000),
                           recall, f_recall, f_returned, memory, disk)
    finally:
        store.close()


def remove_store_files(store: VectorStore) -> None:
    """Delete a store's folder (temporary stores made by this module only)."""
    if store.path is not None and str(store.path).startswith(tempfile.gettempdir()) and "lab-" in store.path.name:
        shutil.rmtree(store.path, ignore_errors=True)

