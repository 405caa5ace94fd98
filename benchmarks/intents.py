"""Intent classification on the full test split: accuracy, p50 latency and cost per 1,000 requests.

Approaches (all offline):

* ``embeddings + logistic regression``: MiniLM sentence embeddings, logistic regression
  trained on the 224 training requests (``reference.finetune.EmbeddingIntentClassifier``);
* ``SmolLM2 zero-shot`` and ``SmolLM2 few-shot`` (one example per intent): the local LLM
  through llama.cpp, with the answer constrained to the eight labels by a grammar;
* ``gpt-4o-mini few-shot (projected)``: the few-shot prompt priced at the assumed list
  price; its accuracy is not measured (no network).

Costs: an API request costs its tokens times the list price (assumed $0.15 / $0.60 per
million input / output tokens, gpt-4o-mini; SmolLM2's token counts stand in for the
API tokenizer's); a local request costs its p50 latency times the price of the machine
(assumed $0.10 per hour for a 2-vCPU VM, fully used). Latencies are measured one request
at a time.

Usage::

    LAB_THREADS=1 python benchmarks/intents.py
    python benchmarks/intents.py --limit 24        # the first 3 requests per intent only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

API_PRICE_IN, API_PRICE_OUT = 0.15, 0.60  # $ per million tokens, assumed gpt-4o-mini list price
API_REPLY_TOKENS = 3  # assumed: the API answers with the label only
VM_DOLLARS_PER_HOUR = 0.10  # assumed 2-vCPU VM
DESCRIPTIONS = {
    "policy_lookup": "company policies: travel, expenses, leave, gifts, hybrid work",
    "it_troubleshooting": "laptops, VPN, passwords, Wi-Fi, accounts not working",
    "pricing_question": "prices, quotes, discounts, licence tiers",
    "order_status": "where an order or shipment is, delivery dates",
    "product_support": "how to use or fix the robots and the Beacon software",
    "smalltalk": "greetings, thanks, chit-chat",
    "complex_analysis": "reports, comparisons, multi-step analysis of data",
    "code_help": "writing, debugging or reviewing code, APIs, SQL",
}
SYSTEM = ("Classify the user's request into exactly one intent. Intents:\n"
          + "\n".join(f"- {k}: {v}" for k, v in DESCRIPTIONS.items()) + "\nAnswer with the intent name only.")


def local_cost(seconds: float) -> float:
    return 1000 * seconds / 3600 * VM_DOLLARS_PER_HOUR


def api_cost(prompt_tokens: float, completion_tokens: float) -> float:
    return 1000 * (prompt_tokens * API_PRICE_IN + completion_tokens * API_PRICE_OUT) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N test requests per intent")
    args = parser.parse_args(argv)

    from tqdm import tqdm  # noqa: PLC0415

    from reference.config import get_settings  # noqa: PLC0415
    from reference.datasets import load_intents  # noqa: PLC0415
    from reference.embeddings import get_embedder  # noqa: PLC0415
    from reference.finetune import EmbeddingIntentClassifier  # noqa: PLC0415
    from reference.llm import get_chat_model  # noqa: PLC0415

    train, test = load_intents("train"), load_intents("test")
    labels = sorted({e.intent for e in train})
    if args.limit:
        test = [e for lab in labels for e in [x for x in test if x.intent == lab][:args.limit]]
    print(f"{get_settings().describe()} | threads {get_settings().threads} | "
          f"{len(train)} train, {len(test)} test", flush=True)
    rows = []

    started = time.perf_counter()
    clf = EmbeddingIntentClassifier(get_embedder()).fit([e.text for e in train], [e.intent for e in train])
    fit_s = time.perf_counter() - started
    preds, lat = [], []
    for e in tqdm(test, desc="classifier"):
        t0 = time.perf_counter()
        preds.append(clf.predict([e.text])[0])
        lat.append(time.perf_counter() - t0)
    p50 = statistics.median(lat)
    acc = sum(p == e.intent for p, e in zip(preds, test)) / len(test)
    rows.append(("embeddings + logistic regression", acc, p50, local_cost(p50),
                 f"fit {fit_s:.1f} s incl. embedding"))

    llm = get_chat_model()
    schema = {"type": "json_schema", "json_schema": {"schema": {"type": "string", "enum": labels}}}
    shots = [next(x for x in train if x.intent == lab) for lab in labels]

    def zero(text: str) -> list[dict]:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]

    def few(text: str) -> list[dict]:
        msgs = [{"role": "system", "content": SYSTEM}]
        for s in shots:
            msgs += [{"role": "user", "content": s.text}, {"role": "assistant", "content": s.intent}]
        return msgs + [{"role": "user", "content": text}]

    prompt_tokens_few = 0.0
    for name, build in (("SmolLM2 zero-shot (local)", zero), ("SmolLM2 few-shot (local)", few)):
        preds, lat, p_tok = [], [], []
        for e in tqdm(test, desc=name):
            r = llm.chat(build(e.text), max_tokens=12, response_format=schema)
            preds.append(r.text.strip().strip('"'))
            lat.append(r.latency_s)
            p_tok.append(r.usage.prompt_tokens)
        p50 = statistics.median(lat)
        acc = sum(p == e.intent for p, e in zip(preds, test)) / len(test)
        rows.append((name, acc, p50, local_cost(p50), f"{statistics.mean(p_tok):.0f} prompt tokens"))
        prompt_tokens_few = statistics.mean(p_tok)
    rows.append(("gpt-4o-mini few-shot (projected)", float("nan"), float("nan"),
                 api_cost(prompt_tokens_few, API_REPLY_TOKENS), "not measured: priced from tokens"))

    print("\n| approach | accuracy | p50 latency (s) | $ per 1,000 requests | note |")
    print("|---|---:|---:|---:|---|")
    for name, acc, p50, cost, note in rows:
        print(f"| {name} | {acc:.3f} | {p50:.4f} | {cost:.5f} | {note} |")
    print(f"\naccuracy on {len(test)} test requests; chance is {1 / len(labels):.3f}. Assumed prices: API "
          f"${API_PRICE_IN}/${API_PRICE_OUT} per million input/output tokens (gpt-4o-mini list price), "
          f"{API_REPLY_TOKENS} reply tokens; local ${VM_DOLLARS_PER_HOUR}/hour for a 2-vCPU VM.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
