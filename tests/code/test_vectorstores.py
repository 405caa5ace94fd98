"""Every vector store behind the one interface: same answers, same filters, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from reference.errors import InputError
from reference.vectorstores import (
    ExactStore,
    available_stores,
    clustered_vectors,
    exact_top_k,
    measure_store,
    open_store,
    recall_at_k,
)

DIM = 16
N = 400
AVAILABLE = [k for k, why in available_stores().items() if why is None]


@pytest.fixture(scope="module")
def data():
    x = clustered_vectors(N, DIM, n_clusters=8, intrinsic_dim=6, seed=3)
    q = clustered_vectors(10, DIM, n_clusters=8, intrinsic_dim=6, seed=3)[:10] * 0.9 + x[:10] * 0.1
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    payloads = [{"dept": ["Finance", "HR", "Ops", "Sales"][i % 4], "shard": i % 20, "public": i % 2 == 0}
                for i in range(N)]
    return x, q, payloads


@pytest.fixture(params=AVAILABLE)
def store(request, tmp_path):
    kind = request.param
    kw = {"path": tmp_path / kind} if kind in ("milvus", "lancedb", "pgvector") else {}
    s = open_store(kind, DIM, **kw)
    yield s
    s.close()


def test_same_nearest_neighbours_filters_and_count_as_exact_search(store, data):
    x, q, payloads = data
    assert store.add(list(range(N)), x, payloads) == N
    assert store.count() == N
    store.build_index()
    truth = exact_top_k(x, q, 5)
    found = [store.search(v, k=5).ids for v in q]
    assert recall_at_k(found, truth) >= 0.9, f"{store.kind} disagrees with exact search"
    top = store.search(q[0], k=3)
    assert len(top) == 3 and top.scores == sorted(top.scores, reverse=True)
    assert abs(top.scores[0] - float(x[truth[0][0]] @ q[0])) < 1e-3, "scores must be cosine similarities"
    hits = store.search(q[1], k=10, filter={"dept": "HR"})
    assert hits.ids and all(payloads[i]["dept"] == "HR" for i in hits.ids)
    both = store.search(q[1], k=10, filter={"dept": ["HR", "Ops"], "shard": [1, 2, 5, 6]})
    assert all(payloads[i]["dept"] in ("HR", "Ops") and payloads[i]["shard"] in (1, 2, 5, 6) for i in both.ids)


def test_bad_input_is_refused_before_it_reaches_the_store():
    s = ExactStore(4)
    v = np.eye(4, dtype=np.float32)
    with pytest.raises(InputError, match="shape"):
        s.add([1, 2], np.ones((2, 3)))
    with pytest.raises(InputError, match="unique"):
        s.add([1, 1], v[:2])
    with pytest.raises(InputError, match="NaN"):
        s.add([1], np.array([[np.nan, 0, 0, 0]]))
    with pytest.raises(InputError, match="payloads"):
        s.add([1, 2], v[:2], [{"a": 1}])
    with pytest.raises(InputError, match="only str"):
        s.add([1], v[:1], [{"tags": ["x"]}])
    with pytest.raises(InputError, match="identifier"):
        s.search(v[0], filter={"a; DROP TABLE x": 1})
    with pytest.raises(InputError):
        s.search(v[0], k=0)
    with pytest.raises(InputError, match="unknown store"):
        open_store("faiss-cloud", 4)
    assert s.count() == 0, "a refused add must not store anything"


def test_exact_top_k_blocks_and_masks_match_a_plain_sort():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((1000, 8)).astype(np.float32)
    q = rng.standard_normal((3, 8)).astype(np.float32)
    mask = np.arange(1000) % 7 == 0
    got = exact_top_k(base, q, 4, mask=mask, block=128)
    for row, vec in zip(got, q, strict=True):
        scores = np.where(mask, base @ vec, -np.inf)
        assert list(row) == list(np.argsort(-scores, kind="stable")[:4])
    few = exact_top_k(base[:3], q, 5)
    assert (few[:, 3:] == -1).all(), "fewer points than k must pad with -1"


def test_recall_and_measurement_report():
    assert recall_at_k([[1, 2]], [[2, 3]]) == 0.5
    with pytest.raises(InputError):
        recall_at_k([[1]], [])
    x = clustered_vectors(300, 8, seed=1)
    payloads = [{"g": i % 10} for i in range(300)]
    report = measure_store(lambda: ExactStore(8), x, x[:5], payloads=payloads, filter={"g": 3})
    assert report.recall_at_10 == 1.0 and report.filtered_recall_at_10 == 1.0
    assert report.filtered_returned == 1.0 and report.n == 300 and report.p95_ms >= report.p50_ms
    assert set(report.row()) >= {"store", "ingest_per_s", "p50_ms", "recall_at_10", "disk_mb"}


def test_on_disk_stores_keep_their_data_across_reopen(tmp_path):
    x = clustered_vectors(50, DIM, seed=2)
    for kind in [k for k in ("lancedb", "milvus", "qdrant") if k in AVAILABLE]:
        with open_store(kind, DIM, path=tmp_path / kind) as s:
            s.add(range(50), x)
        with open_store(kind, DIM, path=tmp_path / kind) as s:
            assert s.count() == 50, kind
            assert s.search(x[7], k=1).ids == [7], kind


def test_lancedb_flat_ivf_index_agrees_with_exact_search(data, tmp_path):
    x, q, payloads = data
    store = open_store("lancedb", DIM, path=tmp_path / "ivf-sq", index="ivf_sq", nprobes=64)
    store.add(list(range(N)), x, payloads)
    store.build_index()
    assert store.describe() == "lancedb (IVF-SQ index, nprobes=64)"
    found = [store.search(v, k=5).ids for v in q]
    assert recall_at_k(found, exact_top_k(x, q, 5)) >= 0.9
    with pytest.raises(InputError, match="unknown lancedb index"):
        open_store("lancedb", DIM, path=tmp_path / "bad", index="hnsw")
