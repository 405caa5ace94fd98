"""Full LoRA fine-tuning run on the cited-JSON task, measured before and after: prints a table.

What it does, on whatever device ``reference.finetune.pick_device`` finds (CUDA when
present, else the CPU):

1. evaluates the base SmolLM2-135M on the whole test split (54 questions) and the
   sanity set (48 general prompts), greedy;
2. answers the rehearsal prompts (general questions, none shared with the sanity set)
   with the base model, greedy, and trains a LoRA adapter
   (``reference.finetune.FULL_CONFIG`` unless overridden) on the whole train split plus
   those self-answered examples, with early stopping on the validation split;
3. evaluates the adapted model the same way, saves the adapter under
   ``<cache_dir>/adapters/`` and prints before/after metrics, timings and the device.

Usage::

    LAB_THREADS=2 python benchmarks/finetune.py                 # the full run (minutes on 2 CPU cores)
    python benchmarks/finetune.py --rank 2                      # a smaller adapter
    python benchmarks/finetune.py --epochs 0.25 --limit 12      # a quick look
    python benchmarks/finetune.py --no-rehearsal                # the task data only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=None, help="LoRA rank (default: FULL_CONFIG's)")
    parser.add_argument("--epochs", type=float, default=None, help="passes over the train split")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate")
    parser.add_argument("--limit", type=int, default=None,
                        help="evaluate on the first N test/sanity items only")
    parser.add_argument("--no-rehearsal", action="store_true",
                        help="train on the task examples only (no self-answered general prompts)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    import torch  # noqa: PLC0415

    from reference import finetune as ft  # noqa: PLC0415
    from reference.config import get_settings  # noqa: PLC0415
    from reference.datasets import load_finetune  # noqa: PLC0415
    from reference.datasets.sets import parse_cited_answer  # noqa: PLC0415
    from reference.hf import cache_dir, load_hf_model  # noqa: PLC0415

    threads = get_settings().threads
    torch.set_num_threads(threads)
    overrides = {k: v for k, v in {"rank": args.rank, "epochs": args.epochs, "learning_rate": args.lr,
                                   "device": args.device}.items() if v is not None}
    if "rank" in overrides:
        overrides["alpha"] = 2 * overrides["rank"]
    cfg = dataclasses.replace(ft.FULL_CONFIG, **overrides)
    wall = time.perf_counter()
    base, tok = load_hf_model()
    device = ft.pick_device(cfg.device)
    base.to(device)
    train, val = load_finetune("train"), load_finetune("validation")
    test, sanity = load_finetune("test"), load_finetune("sanity")
    if args.limit:
        test, sanity = test[:args.limit], sanity[:args.limit]
    max_new = max(len(tok(e.messages[2].content)["input_ids"]) for e in test) + 6
    batch = 16 if device.type == "cpu" else 64
    print(f"device {device} | threads {threads} | torch {torch.__version__} | test {len(test)} "
          f"| sanity {len(sanity)} | max_new_tokens {max_new}", flush=True)

    def evaluate(model, label: str) -> dict:
        started = time.perf_counter()
        gens = ft.generate_replies(model, tok, [e.messages for e in test], max_new_tokens=max_new,
                                   batch_size=batch, progress=True)
        metrics = ft.task_metrics([g.text for g in gens], test)
        san = ft.generate_replies(model, tok, [p.messages for p in sanity], max_new_tokens=48,
                                  batch_size=batch, progress=True)
        metrics["sanity"] = ft.sanity_pass_rate([g.text for g in san], sanity)
        metrics["eval_s"] = time.perf_counter() - started
        print(f"{label}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()), flush=True)
        passed[label] = [p.passes(g.text) for p, g in zip(sanity, san)]
        return metrics

    passed: dict[str, list[bool]] = {}
    before = evaluate(base, "base")
    extra: list[dict] = []
    if not args.no_rehearsal:
        started = time.perf_counter()
        extra = ft.rehearsal_examples(base, tok, load_finetune("rehearsal"), max_new_tokens=64,
                                      batch_size=batch, progress=True)
        print(f"rehearsal: {len(extra)} self-answered general examples in {time.perf_counter() - started:.0f} s",
              flush=True)
    result = ft.train_lora(base, tok, train, val, cfg, reply_check=parse_cited_answer, rehearsal=extra,
                           progress=True)
    print(result.summary(), flush=True)
    after = evaluate(result.model, "LoRA")
    folder = ft.save_adapter(result.model, cache_dir() / "adapters" / f"cited-json-full-r{cfg.rank}",
                             extra={"before": before, "after": after, "summary": result.summary(),
                                    "config": ft.config_dict(cfg)})
    total = time.perf_counter() - wall

    rows = [("JSON-schema validity", "validity"), ("citations exact match", "citation_exact"),
            ("citation F1", "citation_f1"), ("answer keyword accuracy", "keyword_accuracy"),
            ("refusal accuracy (unanswerable)", "refusal_accuracy"), ("false refusals (answerable)",
                                                                      "false_refusal_rate"),
            ("sanity pass rate", "sanity")]
    print()
    print(f"LoRA r={cfg.rank} alpha={cfg.alpha} on {', '.join(cfg.target_modules)}; {result.steps} steps "
          f"(best {result.best_step}, batch {cfg.batch_size}x{cfg.grad_accum}, lr {cfg.learning_rate}); "
          f"{len(train)} train examples + {len(extra)} rehearsal examples")
    print(f"| metric | base | LoRA |\n|---|---:|---:|")
    for label, key in rows:
        print(f"| {label} | {before[key]:.3f} | {after[key]:.3f} |")
    print(f"\ndevice: {result.device} ({result.precision}), threads {threads}; "
          f"training {result.seconds:.0f} s ({result.train_tokens / result.seconds:.0f} tokens/s); "
          f"evaluation {before['eval_s']:.0f} s before, {after['eval_s']:.0f} s after; total wall {total:.0f} s")
    print(f"test split: {len(test)} questions ({sum(not e.meta.answerable for e in test)} unanswerable); "
          f"sanity: {len(sanity)} prompts; adapter saved to {folder}")
    lost = [p.id for p, b, a in zip(sanity, passed["base"], passed["LoRA"]) if b and not a]
    gained = [p.id for p, b, a in zip(sanity, passed["base"], passed["LoRA"]) if a and not b]
    print(f"sanity prompts lost: {', '.join(lost) or 'none'}; gained: {', '.join(gained) or 'none'}")
    if after["sanity"] < before["sanity"]:
        print(f"NOTE: the sanity pass rate dropped by {before['sanity'] - after['sanity']:.3f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"before": before, "after": after, "device": result.device, "threads": threads,
                       "train_s": result.seconds, "total_s": total, "steps": result.steps,
                       "rehearsal": len(extra), "sanity_lost": lost, "sanity_gained": gained,
                       "history": result.history, "config": ft.config_dict(cfg)}, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
