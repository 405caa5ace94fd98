"""Replay the whole assistant workload through caches and a router; print cost and latency.

Usage::

    LAB_THREADS=1 .venv/bin/python benchmarks/cost_latency.py [--threshold 0.85] [--calls 6]

What runs for real: the embeddings of every query (all-MiniLM-L6-v2), the exact and
semantic caches (SQLite files in a temporary folder, per-tenant namespaces, lookalike
guard), the router (rules + logistic regression trained on the intents train split) and
the tracer. What is simulated: the model calls. Their latency is taken from real calls to
the local SmolLM2-135M measured at start-up (cycled in order), and their dollars from the
price table for two named hosted models (``gpt-4o-mini`` cheap, ``gpt-4o`` expensive), with
400 tokens of system prompt + context, the query's own tokens, and a 250-token answer.
The output says so. A wrong answer is a cache hit whose stored answer belongs to another
cluster of ``queries.jsonl``.

Not run in CI (it takes a minute or two); notebooks 02, 04 and 05 show the same ideas on subsets.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from reference.batching import latency_summary
from reference.cache import ExactCache, LookalikeGuard, SemanticCache
from reference.config import get_settings
from reference.cost import price_table_info
from reference.datasets import load_intents, load_queries
from reference.embeddings import FakeEmbedder, get_embedder
from reference.llm import FakeChatModel, get_chat_model
from reference.routing import ClassifierRouter, HybridRouter, RouteCosts, RuleRouter, evaluate_routes
from reference.tracing import Tracer

NORTHBEAM_TERMS = ["starter", "pro", "enterprise", "leeds", "rotterdam", "austin", "london", "manchester",
                   "finance", "legal", "python", "javascript", "uk", "us", "netherlands", "maternity",
                   "paternity", "home", "abroad", "car", "motorbike"]
SAMPLE_QUESTIONS = ["How do I reset my password?", "What time does the Leeds office open?",
                    "Can I expense a hotel over £150 a night in London?", "Is Beacon down?",
                    "How long does the NB-300 battery last on one charge?", "Where is my order NB-ORD-41234?"]


def measure_local_calls(n: int, max_tokens: int) -> list[float]:
    """Latency of ``n`` real local model calls (short questions, greedy)."""
    llm = get_chat_model("local")
    llm.chat([{"role": "user", "content": "warm up"}], max_tokens=4)
    out = []
    for i in range(n):
        q = SAMPLE_QUESTIONS[i % len(SAMPLE_QUESTIONS)]
        r = llm.chat([{"role": "system", "content": "You are Northbeam's help-desk assistant."},
                      {"role": "user", "content": q}], max_tokens=max_tokens)
        out.append(r.latency_s)
    return out


def replay(queries, vectors, *, cache, router_routes, model_latency, costs, embed_s) -> dict:
    """One pass over the workload; returns calls, wrong answers, dollars and latencies."""
    calls = wrong = 0
    dollars = 0.0
    latencies = []
    lat_cycle = 0
    for i, (q, v) in enumerate(zip(queries, vectors)):
        started = time.perf_counter()
        hit = None
        if isinstance(cache, SemanticCache):
            hit = cache.lookup(q.tenant, q.text, vector=v).hit
        elif cache is not None:
            hit = cache.get(q.tenant, q.text)
        lookup_s = time.perf_counter() - started + (embed_s if isinstance(cache, SemanticCache) else 0.0)
        if hit is not None:
            wrong += hit.answer != q.cluster_id
            latencies.append(lookup_s)
            continue
        route = router_routes[i] if router_routes is not None else "expensive"
        calls += 1
        dollars += costs.cost(q.text, route)
        latencies.append(lookup_s + model_latency[lat_cycle % len(model_latency)])
        lat_cycle += 1
        if isinstance(cache, SemanticCache):
            cache.put(q.tenant, q.text, q.cluster_id, vector=v)
        elif cache is not None:
            cache.put(q.tenant, q.text, q.cluster_id)
    summary = latency_summary(latencies)
    return {"model_calls": calls, "saved": 1 - calls / len(queries), "wrong": wrong, "wrong_rate": wrong / len(queries),
            "cost_usd": dollars, "p50_s": summary["p50"], "p95_s": summary["p95"], "mean_s": summary["mean"]}


def tracing_overhead(tracer_path: Path, real_latency_s: float, n: int = 300) -> dict:
    """Seconds tracing adds per request (5 spans), measured with instant fakes, and as a share."""
    fake_llm, fake_emb = FakeChatModel(responses=["An answer."]), FakeEmbedder(dim=384)
    index = fake_emb.embed([f"chunk {i} text" for i in range(50)])

    def pipeline(tracer, i):
        if tracer is None:
            v = fake_emb.embed([f"q {i}"])[0]
            scores = index @ v
            _ = np.argsort(-scores)[:2]
            return fake_llm.chat([{"role": "user", "content": f"q {i}"}], max_tokens=16).text
        with tracer.span("rag.answer", "CHAIN", user_id="bench") as root:
            v = tracer.embed(fake_emb, [f"q {i}"])[0]
            with tracer.span("cache.lookup", "TOOL") as span:
                tracer.record_cache(span, hit=False)
            with tracer.span("retrieve", "RETRIEVER") as span:
                scores = index @ v
                top = np.argsort(-scores)[:2]
                tracer.record_retrieval(span, [{"id": str(j), "score": float(scores[j]), "content": "x"} for j in top])
            text = tracer.chat(fake_llm, [{"role": "user", "content": f"q {i}"}], max_tokens=16).text
            root.set("output.value", text)
            return text

    tracer = Tracer(tracer_path, batch=True)
    pipeline(tracer, -1)  # warm-up
    best = {}
    for label, t in (("off", None), ("on", tracer), ("off", None), ("on", tracer)):
        start = time.perf_counter()
        for i in range(n):
            pipeline(t, i)
        elapsed = (time.perf_counter() - start) / n
        best[label] = min(best.get(label, float("inf")), elapsed)
    tracer.shutdown()
    added = best["on"] - best["off"]
    return {"off_ms": best["off"] * 1000, "on_ms": best["on"] * 1000, "added_ms": added * 1000,
            "share_of_request": added / real_latency_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=0.85, help="semantic cache threshold")
    parser.add_argument("--calls", type=int, default=6, help="real local model calls to measure latency from")
    parser.add_argument("--max-tokens", type=int, default=64, help="max_tokens of the measured local calls")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(get_settings().threads)
    queries = load_queries()
    embedder = get_embedder("local")
    unique = sorted({q.text for q in queries})
    t0 = time.perf_counter()
    unique_vecs = embedder.embed(unique)
    embed_s = (time.perf_counter() - t0) / len(unique)
    row = {t: i for i, t in enumerate(unique)}
    vectors = unique_vecs[[row[q.text] for q in queries]]

    model_latency = measure_local_calls(args.calls, args.max_tokens)
    costs = RouteCosts.named("gpt-4o-mini", "gpt-4o")

    train, test = load_intents(split="train"), load_intents(split="test")
    clf = ClassifierRouter(embedder).fit([x.text for x in train], [x.route for x in train])
    router = HybridRouter(RuleRouter(), clf)
    routes = router.route_many([q.text for q in queries], vectors=vectors)
    test_eval = evaluate_routes([x.text for x in test], router.route_many([x.text for x in test]),
                                [x.route for x in test], costs)

    guard = LookalikeGuard(NORTHBEAM_TERMS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def semantic(name: str) -> SemanticCache:
            return SemanticCache(folder / name, embedder=embedder, threshold=args.threshold, guard=guard)

        common = {"model_latency": model_latency, "costs": costs, "embed_s": embed_s}
        rows = {
            "no cache (all gpt-4o)": replay(queries, vectors, cache=None, router_routes=None, **common),
            "exact cache": replay(queries, vectors, cache=ExactCache(folder / "exact.sqlite"), router_routes=None,
                                  **common),
            "semantic cache + guard": replay(queries, vectors, cache=semantic("sem.sqlite"), router_routes=None,
                                             **common),
            "semantic cache, no guard": replay(queries, vectors, cache=SemanticCache(
                folder / "noguard.sqlite", embedder=embedder, threshold=args.threshold, guard=None),
                router_routes=None, **common),
            "routing (no cache)": replay(queries, vectors, cache=None, router_routes=routes, **common),
            "all together": replay(queries, vectors, cache=semantic("all.sqlite"), router_routes=routes, **common),
        }
        overhead = tracing_overhead(folder / "bench-traces.sqlite", statistics.median(model_latency))

    base = rows["no cache (all gpt-4o)"]
    print("# Cost and latency of the assistant workload (datasets/workloads/queries.jsonl, 1,200 queries)")
    print(f"semantic threshold {args.threshold}; caches per tenant (4 namespaces); prices: {price_table_info()}")
    print(f"SIMULATED model calls: latency cycled from {len(model_latency)} real local SmolLM2-135M calls "
          f"(max_tokens={args.max_tokens}, LAB_THREADS={get_settings().threads}; median "
          f"{statistics.median(model_latency):.2f} s), dollars from the price table as gpt-4o-mini/gpt-4o "
          f"(400 + query tokens in, 250 out). Caches, guard, router and tracer run for real.")
    print()
    print(f"| setup | model calls | calls saved | wrong answers | wrong rate | cost $ | cost vs baseline | "
          f"p50 s | p95 s | mean s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['model_calls']} | {r['saved']:.1%} | {r['wrong']} | {r['wrong_rate']:.2%} | "
              f"{r['cost_usd']:.4f} | {r['cost_usd'] / base['cost_usd']:.1%} | {r['p50_s']:.3f} | {r['p95_s']:.3f} | "
              f"{r['mean_s']:.3f} |")
    print()
    share = sum(r == "expensive" for r in routes) / len(routes)
    print(f"router on the workload: {share:.1%} of queries to gpt-4o; on the intents test split: quality "
          f"{test_eval['quality']:.3f}, route accuracy {test_eval['route_accuracy']:.3f}")
    sem = rows["semantic cache + guard"]
    print(f"target semantic cache: >= 50% calls saved with <= 1% wrong answers -> {sem['saved']:.1%} saved, "
          f"{sem['wrong_rate']:.2%} wrong: {'MET' if sem['saved'] >= 0.5 and sem['wrong_rate'] <= 0.01 else 'MISSED'}")
    print(f"tracing overhead: {overhead['added_ms']:.2f} ms per request (5 spans; pipeline with instant fakes "
          f"{overhead['off_ms']:.2f} ms untraced, {overhead['on_ms']:.2f} ms traced) = "
          f"{overhead['share_of_request']:.3%} of the median local request latency -> target < 5%: "
          f"{'MET' if overhead['share_of_request'] < 0.05 else 'MISSED'}")


if __name__ == "__main__":
    main()
