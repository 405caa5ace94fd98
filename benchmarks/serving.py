"""The lab's model server under load: the latency/throughput curve, overload, embedding batching.

Everything runs on 127.0.0.1 against :class:`reference.serve.LabServer` with the local
models; every load run is bounded in requests and seconds. Prints four tables:

1. KV-cache bytes per token (formula vs llama.cpp's saved state);
2. closed-loop concurrency sweep (throughput, p50/p95/p99) and the knee;
3. open-loop overload at ~3x capacity: bounded queue (429s) vs unbounded queue;
4. embeddings: 64 concurrent single-text requests with dynamic batching off and on.

Usage::

    LAB_THREADS=1 .venv/bin/python benchmarks/serving.py [--max-tokens 16] [--levels 1,2,4,8]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from reference.embeddings import get_embedder
from reference.llm import LlamaCppChatModel
from reference.loadgen import find_knee, replicas_needed, results_table, run_load_sync, sweep
from reference.serve import LabServer, ServerLimits, create_app, kv_cache_bytes_per_token


def kv_table(model: LlamaCppChatModel) -> None:
    llama = model._llama
    meta = {k.split(".", 1)[1]: v for k, v in llama.metadata.items() if k.startswith("llama.")}
    head_dim = int(meta["embedding_length"]) // int(meta["attention.head_count"])
    formula = kv_cache_bytes_per_token(int(meta["block_count"]), int(meta["attention.head_count_kv"]), head_dim)
    tokens = llama.tokenize(("Northbeam robots move boxes. " * 40).encode(), add_bos=True)
    sizes = {}
    for n in (32, 160):
        llama.reset()
        llama.eval(tokens[:n])
        sizes[n] = llama.save_state().llama_state_size
    measured = (sizes[160] - sizes[32]) / 128
    print("\n== 1. KV cache per token (SmolLM2-135M, fp16 cache)")
    print(f"formula  (layers x kv_heads x head_dim x 2 x 2 bytes): {formula:,} bytes")
    print(f"measured (llama.cpp state growth per evaluated token): {measured:,.0f} bytes")
    print(f"8B-class model (32 layers, 8 KV heads, 128 dims):      {kv_cache_bytes_per_token(32, 8, 128):,} bytes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--levels", default="1,2,4,8")
    parser.add_argument("--requests-per-user", type=int, default=3)
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, LAB_THREADS={os.environ.get('LAB_THREADS', 'unset')}")

    model = LlamaCppChatModel()
    kv_table(model)
    body = {"model": "smollm2-135m-instruct", "max_tokens": args.max_tokens,
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "Name one safety rule for warehouse robots."}]}

    with LabServer(create_app(model, limits=ServerLimits(max_concurrency=1, max_queue=256))) as server:
        url = server.base_url + "/chat/completions"
        run_load_sync(url, body, concurrency=1, n_requests=2)  # warm-up
        runs = sweep(url, body, levels, requests_per_user=args.requests_per_user, max_duration_s=300,
                     timeout_s=300)
        print(f"\n== 2. Closed-loop sweep ({args.max_tokens} output tokens per request, one generation at a time)")
        print(results_table(runs)[["concurrency", "sent", "ok", "throughput_rps", "p50_ms", "p95_ms", "p99_ms"]]
              .to_string(index=False))
        knee = find_knee(runs)
        print(f"knee: concurrency {knee.concurrency} at {knee.throughput_rps:.2f} req/s; "
              f"1,000 req/s would need {replicas_needed(1000, knee.throughput_rps):,} replicas like this one")
        capacity = knee.throughput_rps
        burst = dict(concurrency=64, n_requests=40, rate_rps=3 * capacity, max_duration_s=120, timeout_s=300)
        unbounded = run_load_sync(url, body, **burst)

    with LabServer(create_app(model, limits=ServerLimits(max_concurrency=1, max_queue=4))) as server:
        bounded = run_load_sync(server.base_url + "/chat/completions", body, **burst)
    table = results_table([unbounded, bounded])
    table.insert(0, "queue", ["256 (unbounded)", "4 (bounded)"])
    print(f"\n== 3. Open-loop overload at {3 * capacity:.2f} req/s (~3x capacity), 40 requests")
    print(table[["queue", "sent", "ok", "429", "other_errors", "p50_ms", "p95_ms", "p99_ms"]].to_string(index=False))
    print(f"every request answered: bounded {bounded.answered}/{bounded.sent}, "
          f"unbounded {unbounded.answered}/{unbounded.sent}")

    import torch  # noqa: PLC0415

    torch.set_num_threads(int(os.environ.get("LAB_THREADS", "1")))
    embedder = get_embedder()
    texts = [f"Northbeam policy question number {i} about travel, robots and safety." for i in range(64)]
    rows = []
    for window in (0.0, 0.005):
        app = create_app(model, embedder, limits=ServerLimits(embed_batch_window_s=window))
        with LabServer(app) as server:
            url = server.base_url + "/embeddings"
            run_load_sync(url, {"model": "all-minilm-l6-v2", "input": "warm up"}, n_requests=2)
            t0 = time.perf_counter()
            r = run_load_sync(url, lambda i: {"model": "all-minilm-l6-v2", "input": texts[i]},
                              concurrency=64, n_requests=64, max_duration_s=120)
            rows.append((window, r, app.state.embed_batcher.batches - 2, time.perf_counter() - t0))
    print("\n== 4. Embeddings: 64 concurrent single-text requests")
    print("batch window | ok | embed calls | texts/s | p50_ms | p99_ms")
    for window, r, calls, wall in rows:
        print(f"{window * 1000:>9.0f} ms | {r.ok} | {calls:>11} | {r.ok / wall:7.1f} | {r.p50_s * 1000:6.0f} | "
              f"{r.p99_s * 1000:6.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
