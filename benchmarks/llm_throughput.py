"""Throughput of the local model, backend by backend: prints a table.

For each backend it measures, in a fresh subprocess (so peak memory is its own):
load time, prompt processing (tokens/s on a ~300-token prompt), generation
(tokens/s, greedy, after the prompt), and peak resident memory.

Backends: llama.cpp in-process, transformers in-process, and llama.cpp through the
lab's OpenAI-compatible server with the official ``openai`` SDK (streaming).

Usage::

    python benchmarks/llm_throughput.py                 # all backends, 3 runs each
    python benchmarks/llm_throughput.py --backends llama_cpp --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

PROMPT = (
    "You are the support assistant of a robotics company. Read the ticket and write a long, "
    "detailed reply explaining every troubleshooting step.\n\nTicket: "
    + " ".join(
        f"Step {i}: the warehouse robot stopped near dock {i % 7} after the battery warning and the "
        "operator restarted it twice without success." for i in range(12)
    )
)
GEN_TOKENS = 128


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_in_process(backend: str, runs: int) -> dict:
    os.environ["LAB_LOCAL_BACKEND"] = backend
    from reference.llm import get_chat_model  # noqa: PLC0415

    messages = [{"role": "user", "content": PROMPT}]
    start = time.perf_counter()
    llm = get_chat_model("local")
    load_s = time.perf_counter() - start
    llm.chat(messages, max_tokens=1)  # warm-up
    pp, gen, n_prompt, n_gen = [], [], 0, 0
    for _ in range(runs):
        first = llm.chat(messages, max_tokens=1)
        full = llm.chat(messages, max_tokens=GEN_TOKENS, stop=["\u0000"])
        n_prompt, n_gen = first.usage.prompt_tokens, full.usage.completion_tokens
        pp.append(n_prompt / first.latency_s)
        gen.append(max(n_gen - 1, 1) / max(full.latency_s - first.latency_s, 1e-9))
    return {"backend": f"{backend} (in-process)", "load_s": load_s, "prompt_tokens": n_prompt,
            "gen_tokens": n_gen, "pp_tps": statistics.median(pp), "gen_tps": statistics.median(gen),
            "peak_rss_mb": _peak_rss_mb()}


def measure_http(runs: int) -> dict:
    import openai  # noqa: PLC0415

    from reference.serve import LabServer  # noqa: PLC0415

    start = time.perf_counter()
    server = LabServer().start()
    client = openai.OpenAI(base_url=server.base_url, api_key="unused")
    messages = [{"role": "user", "content": PROMPT}]
    client.chat.completions.create(model="smollm2-135m-instruct", messages=messages, max_tokens=1)
    load_s = time.perf_counter() - start
    pp, gen, n_gen = [], [], 0
    usage = None
    for _ in range(runs):
        t0 = time.perf_counter()
        stream = client.chat.completions.create(
            model="smollm2-135m-instruct", messages=messages, max_tokens=GEN_TOKENS, stream=True,
            stream_options={"include_usage": True},
        )
        first_token_at = None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and first_token_at is None:
                first_token_at = time.perf_counter()
            if chunk.usage is not None:
                usage = chunk.usage
        end = time.perf_counter()
        n_gen = usage.completion_tokens
        pp.append(usage.prompt_tokens / (first_token_at - t0))
        gen.append(max(n_gen - 1, 1) / max(end - first_token_at, 1e-9))
    server.stop()
    return {"backend": "llama_cpp via HTTP + openai SDK", "load_s": load_s,
            "prompt_tokens": usage.prompt_tokens, "gen_tokens": n_gen,
            "pp_tps": statistics.median(pp), "gen_tps": statistics.median(gen), "peak_rss_mb": _peak_rss_mb()}


def run_child(backend: str, runs: int) -> dict:
    cmd = [sys.executable, __file__, "--child", backend, "--runs", str(runs)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        return {"backend": backend, "error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["llama_cpp", "transformers", "http"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = measure_http(args.runs) if args.child == "http" else measure_in_process(args.child, args.runs)
        print(json.dumps(result))
        return
    threads = os.environ.get("LAB_THREADS") or str(os.cpu_count())
    print(f"SmolLM2-135M-Instruct (Q4_1 GGUF), greedy, {threads} threads, median of {args.runs} runs\n")
    header = f"{'backend':<34}{'load s':>8}{'prompt tok':>11}{'pp tok/s':>10}{'gen tok':>9}{'gen tok/s':>11}{'peak MB':>9}"
    print(header)
    print("-" * len(header))
    rows = [run_child(b, args.runs) for b in args.backends]
    for r in rows:
        if "error" in r:
            print(f"{r['backend']:<34}  failed: {r['error']}")
            continue
        print(f"{r['backend']:<34}{r['load_s']:>8.2f}{r['prompt_tokens']:>11}{r['pp_tps']:>10.0f}"
              f"{r['gen_tokens']:>9}{r['gen_tps']:>11.1f}{r['peak_rss_mb']:>9.0f}")
    ok = [r for r in rows if "error" not in r]
    fast = next((r for r in ok if r["backend"].startswith("llama_cpp (")), None)
    slow = next((r for r in ok if r["backend"].startswith("transformers")), None)
    if fast and slow:
        print(f"\nllama.cpp generates {fast['gen_tps'] / slow['gen_tps']:.1f}x faster than transformers here.")


if __name__ == "__main__":
    main()
