"""Retrieval and refusal benchmark on the golden set: prints tables (not part of CI).

For each configuration (chunking x retriever, plus LlamaIndex and LangChain with their
default chunking on the same embeddings and Qdrant client) it reports, on the chosen
split's answerable questions: hit@1, hit@5, MRR and nDCG@10 overall and per question
type, index build time (embedding included: the embedding cache is in memory and
starts empty, so each chunking strategy embeds its chunks cold), query latency p50/p95
of the retrieval itself (question embeddings are computed once up front, and their cost
is printed separately), and the resident-memory growth while building the index.

Then, for the best configuration, the refusal gate: the support threshold is chosen on
the **dev** split (smallest threshold refusing >= 80% of dev unanswerable questions) and
applied to the evaluated split. With ``--llm`` the local model's own answerable check is
run on the questions that pass the gate (``unanswerable``: only unanswerable questions,
``all``: every question; slow on CPU).

Usage::

    python benchmarks/retrieval.py                        # test split, gate only
    python benchmarks/retrieval.py --split dev --semantic
    python benchmarks/retrieval.py --llm unanswerable
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict

import numpy as np
import psutil


def rss_mb() -> float:
    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="test", choices=["dev", "test"])
    ap.add_argument("--semantic", action="store_true", help="include semantic chunking (embeds every sentence)")
    ap.add_argument("--no-frameworks", action="store_true")
    ap.add_argument("--llm", default="none", choices=["none", "unanswerable", "all"])
    ap.add_argument("--disk-cache", action="store_true", help="reuse the on-disk embedding cache (warm build times)")
    args = ap.parse_args()

    from reference.chunking import chunk_pages
    from reference.datasets import load_golden, load_manifest
    from reference.embeddings import get_embedder
    from reference.evals.retrieval import by_group, evaluate_run
    from reference.ingest import ingest_corpus
    from reference.rag import support_score
    from reference.retrieval import BM25Index, CachedEmbedder, DenseIndex, LexicalDenseReranker, Retriever, doc_ranking

    t0 = time.perf_counter()
    report = ingest_corpus(load_manifest())
    print(f"ingest: {report.summary()} (OCR text is cached after the first run)")
    pages = report.pages
    raw = get_embedder("local")
    embedder = CachedEmbedder(raw, path=None if args.disk_cache else ":memory:")
    qs = load_golden(args.split)
    q_times = []
    for q in qs:
        t = time.perf_counter()
        embedder.embed([q.question])
        q_times.append(time.perf_counter() - t)
    print(f"question embedding (all-MiniLM-L6-v2, 1 text per call): p50 {1000 * np.percentile(q_times, 50):.1f} ms, "
          f"p95 {1000 * np.percentile(q_times, 95):.1f} ms; excluded from the latencies below")
    answerable = [q for q in qs if q.type != "unanswerable"]
    qrels = {q.id: {s.doc_id for s in q.supporting} for q in answerable}
    groups = {q.id: q.type for q in answerable}
    metrics = ["hit@1", "hit@5", "mrr", "ndcg@10"]
    rows: list[dict] = []

    def run_config(name: str, retrieve, build_s: float, mem_mb: float, n_chunks: int) -> None:
        run, times = {}, []
        for q in answerable:
            t = time.perf_counter()
            run[q.id] = list(dict.fromkeys(retrieve(q.question)))
            times.append(time.perf_counter() - t)
        g = by_group(evaluate_run(run, qrels, groups=groups), metrics)
        rows.append({"config": name, "chunks": n_chunks, "build_s": build_s, "mem_mb": mem_mb,
                     "p50_ms": 1000 * float(np.percentile(times, 50)), "p95_ms": 1000 * float(np.percentile(times, 95)),
                     "groups": g})
        print(f"  done {name}", file=sys.stderr)

    strategies = {"fixed": dict(size=200, overlap=40), "recursive": dict(size=200, overlap=40),
                  "structure": dict(size=200, overlap=40)}
    if args.semantic:
        strategies["semantic"] = dict(embedder=embedder, size=200, percentile=25)
    best = None
    for strat, kw in strategies.items():
        chunks = chunk_pages(pages, strat, **kw)
        m0, t = rss_mb(), time.perf_counter()
        dense, bm25 = DenseIndex(embedder, collection=strat), BM25Index()
        dense.index(chunks, progress=False)
        bm25.index(chunks)
        build, mem = time.perf_counter() - t, rss_mb() - m0
        for mode, rerank in [("dense", False), ("bm25", False), ("hybrid", False), ("hybrid", True)]:
            r = Retriever(dense, bm25, mode=mode, reranker=LexicalDenseReranker(dense, bm25) if rerank else None)
            name = f"{strat} / {mode}{'+rerank' if rerank else ''}"
            run_config(name, lambda q, r=r: doc_ranking(r.retrieve(q, k=10)), build, mem, len(chunks))
            if strat == "structure" and rerank:
                best = r

    if not args.no_frameworks:
        from langchain_qdrant import QdrantVectorStore
        from langchain_text_splitters import RecursiveCharacterTextSplitter
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.vector_stores.qdrant import QdrantVectorStore as LIQdrant
        from qdrant_client import QdrantClient, models

        from reference.integrations import (
            LangChainEmbeddings, LlamaIndexEmbedding, documents_for_langchain, documents_for_llamaindex,
        )

        client = QdrantClient(":memory:")
        m0, t = rss_mb(), time.perf_counter()
        nodes = SentenceSplitter().get_nodes_from_documents(documents_for_llamaindex(pages))
        index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(
            vector_store=LIQdrant(collection_name="li", client=client)), embed_model=LlamaIndexEmbedding(embedder))
        li = index.as_retriever(similarity_top_k=10)
        run_config("llamaindex defaults (1024 tok) / dense",
                   lambda q: [n.node.metadata["doc_id"] for n in li.retrieve(q)],
                   time.perf_counter() - t, rss_mb() - m0, len(nodes))
        m0, t = rss_mb(), time.perf_counter()
        docs = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(
            documents_for_langchain(pages))
        client.create_collection("lc", vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE))
        store = QdrantVectorStore(client=client, collection_name="lc", embedding=LangChainEmbeddings(embedder))
        store.add_documents(docs)
        lc = store.as_retriever(search_kwargs={"k": 10})
        run_config("langchain defaults (1000 chr) / dense", lambda q: [d.metadata["doc_id"] for d in lc.invoke(q)],
                   time.perf_counter() - t, rss_mb() - m0, len(docs))

    print(f"\n## Retrieval on the {args.split} split: {len(answerable)} answerable questions "
          f"(document-level relevance)\n")
    print(f"| config | chunks | hit@1 | hit@5 | MRR | nDCG@10 | build s | mem MB | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        a = r["groups"]["all"]
        print(f"| {r['config']} | {r['chunks']} | {a['hit@1']:.3f} | {a['hit@5']:.3f} | {a['mrr']:.3f} | "
              f"{a['ndcg@10']:.3f} | {r['build_s']:.1f} | {r['mem_mb']:.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    types = [t for t in rows[0]["groups"] if t != "all"]
    for metric in ("hit@1", "hit@5", "mrr", "ndcg@10"):
        print(f"\n### {metric} per question type (n: " + ", ".join(
            f"{t} {int(rows[0]['groups'][t]['n'])}" for t in types) + ")\n")
        print("| config | " + " | ".join(types) + " |")
        print("|---|" + "---|" * len(types))
        for r in rows:
            print(f"| {r['config']} | " + " | ".join(f"{r['groups'][t][metric]:.2f}" for t in types) + " |")

    # refusal gate for the best configuration, threshold chosen on dev
    assert best is not None
    dev = load_golden("dev")
    dev_un = np.array([support_score(q.question, best.retrieve(q.question, k=4)) for q in dev if q.type == "unanswerable"])
    threshold = next(float(t) for t in sorted(set(dev_un + 1e-9)) if np.mean(dev_un < t) >= 0.8)
    support = {q.id: support_score(q.question, best.retrieve(q.question, k=4)) for q in qs}
    un = [q for q in qs if q.type == "unanswerable"]
    gate_un = sum(support[q.id] < threshold for q in un)
    gate_ans = sum(support[q.id] < threshold for q in answerable)
    print(f"\n## Refusals, structure / hybrid+rerank, threshold {threshold:.3f} chosen on dev\n")
    print(f"gate refuses {gate_un}/{len(un)} unanswerable ({gate_un / len(un):.0%}) and wrongly refuses "
          f"{gate_ans}/{len(answerable)} answerable ({gate_ans / len(answerable):.0%}) {args.split} questions")
    if args.llm != "none":
        from reference.llm import get_chat_model
        from reference.rag import RAGPipeline

        rag = RAGPipeline(best, get_chat_model(), k=2, min_support=threshold, max_tokens=48)
        todo = [q for q in (un if args.llm == "unanswerable" else qs) if support[q.id] >= threshold]
        refused: dict[str, int] = defaultdict(int)
        for q in todo:
            out = rag.answer(q.question)
            refused["unanswerable" if q.type == "unanswerable" else "answerable"] += out.refused
        total_un = gate_un + refused["unanswerable"]
        print(f"model check on {len(todo)} questions past the gate: refused {dict(refused)}; end to end "
              f"{total_un}/{len(un)} unanswerable refused ({total_un / len(un):.0%})")
        if args.llm == "all":
            total_ans = gate_ans + refused["answerable"]
            print(f"answerable refused end to end: {total_ans}/{len(answerable)} ({total_ans / len(answerable):.0%})")


if __name__ == "__main__":
    main()
