"""Agent benchmark: the whole task set through four agent configurations.

For each configuration it prints task success rate, mean steps and model calls, cost
and latency per task, the valid tool-call rate, and the safety counts (unauthorised side
effects, side effects in injection tasks, leaked secrets):

* ``loop-prompted``     plain loop, unconstrained (tools and JSON format in the prompt)
* ``loop-constrained``  plain loop, two-stage grammar-constrained decoding
* ``langgraph``         the LangGraph agent (constrained), a stand-in reviewer approving
                        side effects only where the task allows them
* ``provider``          plain loop with the provider's native tool calling; runs only when
                        ``OPENAI_API_KEY`` (or ``OPENAI_BASE_URL``) is set, skipped with a note otherwise

It also measures the **forced valid-call rate** on every task that expects a tool: one
tool call requested (answering not allowed), prompted vs constrained.

Valid-call counts are printed as ``n/N`` next to the rates, and every call counted as
invalid is listed after the table with its reason (unreadable reply, unknown or
disallowed tool, schema failure), so a rate below 100% can be traced to its causes.

Local-model cost is $0 (self-hosted); the ``$/task as gpt-4o-mini`` column prices the
same tokens at gpt-4o-mini list prices. Not run in CI: the full run takes tens of
minutes on one CPU thread.

Usage::

    LAB_THREADS=1 python benchmarks/agents.py                      # everything
    python benchmarks/agents.py --configs loop-constrained --limit 10
    python benchmarks/agents.py --configs langgraph --json out/graph.json   # save, then
    python benchmarks/agents.py --report out/*.json                         # merge tables
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from reference.agents import (
    Budget,
    ConstrainedDecider,
    LabEnvironment,
    NativeDecider,
    PromptedDecider,
    load_agent_tasks,
    run_task,
    summarize_runs,
)
from reference.agents.loop import AgentResult
from reference.agents.tasks import measure_tool_call
from reference.config import get_settings
from reference.cost import get_price
from reference.llm import get_chat_model

CONFIGS = ("valid-calls", "loop-prompted", "loop-constrained", "langgraph", "provider")


def invalid_call_details(result: AgentResult) -> list[dict]:
    """Every call counted as invalid in one run (same rule as ``score_task``), with the reason."""
    out = []
    for step in result.steps:
        if step.action == "invalid":
            out.append({"step": step.index, "tool": "", "status": "unreadable reply", "error": step.detail[:200],
                        "raw": step.raw[:200]})
        for o in step.outcomes:
            if o.status in ("invalid", "not_allowed") and not o.call_id.startswith("injected_"):
                out.append({"step": step.index, "tool": o.name, "status": o.status, "error": o.error[:200],
                            "raw": o.raw_arguments[:200]})
    return out


def run_config(name: str, tasks: list, max_steps: int) -> dict:
    """Run every task under one configuration; returns the summary plus per-task rows."""
    provider_mode = name == "provider"
    if provider_mode:
        settings = get_settings()
        if not (settings.openai_api_key or settings.openai_base_url):
            return {"config": name, "skipped": "no OPENAI_API_KEY / OPENAI_BASE_URL set: provider run skipped"}
        llm = get_chat_model(settings.resolved_provider() if settings.resolved_provider() != "local" else "openai")
    else:
        llm = get_chat_model("local")
    decider = {"loop-prompted": PromptedDecider(), "provider": NativeDecider()}.get(name) or ConstrainedDecider()
    mode = "graph" if name == "langgraph" else "loop"
    hosted = get_price("gpt-4o-mini")
    runs, rows = [], []
    started = time.perf_counter()
    for task in tqdm(tasks, desc=name, file=sys.stderr):
        run = run_task(task, llm, mode=mode, decider=decider, budget=Budget(max_steps=max_steps))
        runs.append(run)
        rows.append({"task": task.id, "category": task.category, "success": run.score.success,
                     "status": run.result.status, "steps": run.score.steps, "model_calls": run.score.model_calls,
                     "latency_s": round(run.score.latency_s, 2), "cost_usd": run.score.cost_usd,
                     "cost_as_gpt4o_mini": hosted.cost(run.result.prompt_tokens, run.result.completion_tokens),
                     "valid": run.score.valid_calls, "invalid": run.score.invalid_calls,
                     "unauthorised": run.score.unauthorised_side_effects, "refused": run.score.refused_calls,
                     "reasons": run.score.reasons, "invalid_details": invalid_call_details(run.result)})
    summary = summarize_runs(runs)
    summary["mean_cost_as_gpt4o_mini"] = sum(r["cost_as_gpt4o_mini"] for r in rows) / len(rows)
    summary["wall_s"] = time.perf_counter() - started
    return {"config": name, "model": llm.model, "summary": summary, "rows": rows}


def run_valid_calls(tasks: list, deciders: tuple[str, ...] = ("prompted", "constrained")) -> dict:
    """Forced single tool call on every task that expects a tool: prompted vs constrained."""
    llm = get_chat_model("local")
    tool_tasks = [t for t in tasks if t.expected_tools and not t.failure]
    env = LabEnvironment.create()
    box = env.toolbox()
    out: dict = {"config": "valid-calls", "tasks": len(tool_tasks), "deciders": {}}
    for decider in (PromptedDecider(max_tokens=96), ConstrainedDecider()):
        if decider.name not in deciders:
            continue
        progress = tqdm(tool_tasks, desc=f"valid-calls {decider.name}", file=sys.stderr)
        checks = [measure_tool_call(t, llm, decider, box) for t in progress]
        out["deciders"][decider.name] = {
            "valid_rate": sum(c.valid for c in checks) / len(checks),
            "right_tool_rate": sum(c.right_tool for c in checks) / len(checks),
            "mean_latency_s": sum(c.latency_s for c in checks) / len(checks),
            "valid": sum(c.valid for c in checks),
            "invalid_examples": [{"task": c.task_id, "tool": c.tool, "error": c.error[:200], "raw": c.raw[:200]}
                                 for c in checks if not c.valid],
        }
    return out


def print_report(results: list[dict]) -> None:
    for r in results:
        if r.get("config") == "valid-calls":
            print(f"\nForced valid tool-call rate ({r['tasks']} tasks that expect a tool, "
                  "SmolLM2-135M, one call each)")
            print(f"{'decider':14s} {'valid':>7s} {'n/N':>7s} {'right tool':>11s} {'s/call':>7s}")
            for name, d in r["deciders"].items():
                counts = f"{d.get('valid', round(d['valid_rate'] * r['tasks']))}/{r['tasks']}"
                print(f"{name:14s} {d['valid_rate']:7.1%} {counts:>7s} {d['right_tool_rate']:11.1%} "
                      f"{d['mean_latency_s']:7.2f}")
    print(f"\n{'config':17s} {'tasks':>5s} {'success':>8s} {'steps':>6s} {'calls':>6s} {'$/task':>9s} "
          f"{'$/task as 4o-mini':>18s} {'s/task':>7s} {'valid':>7s} {'n/N':>7s} {'unauth':>7s} {'inj.SE':>7s} "
          f"{'leaks':>6s} {'wall s':>7s}")
    for r in results:
        if r.get("config") == "valid-calls":
            continue
        if "skipped" in r:
            print(f"{r['config']:17s} {r['skipped']}")
            continue
        s = r["summary"]
        valid = s["valid_call_rate"]
        counts = f"{s['valid_calls']}/{s['valid_calls'] + s['invalid_calls']}" if "valid_calls" in s else "?"
        print(f"{r['config']:17s} {s['tasks']:5d} {s['success_rate']:8.1%} {s['mean_steps']:6.2f} "
              f"{s['mean_model_calls']:6.2f} {s['mean_cost_usd']:9.6f} {s['mean_cost_as_gpt4o_mini']:18.6f} "
              f"{s['mean_latency_s']:7.2f} {'n/a' if math.isnan(valid) else f'{valid:.1%}':>7s} {counts:>7s} "
              f"{s['unauthorised_side_effects']:7d} {s['injection_side_effects']:7d} {s['secret_leaks']:6d} "
              f"{s.get('wall_s', float('nan')):7.0f}")
    print("\nsuccess: status, expected tools, answer keywords, final state, no unauthorised side effect, no leak."
          "\nvalid: calls the model proposed that named an allowed tool with schema-valid arguments (in runs);"
          "\n       n/N counts them: unreadable replies, unknown or disallowed tools and schema failures are invalid."
          "\nunauth: side effects beyond what tasks expect; inj.SE: those in injection tasks; leaks: secrets seen."
          "\nwall s: wall-clock seconds for the whole configuration.")
    for r in results:
        if r.get("config") == "valid-calls":
            bad = [(name, e) for name, d in r["deciders"].items() for e in d.get("invalid_examples", [])
                   if isinstance(e, dict)]
        else:
            bad = [(r["config"], {"task": row["task"], **e}) for row in r.get("rows", [])
                   for e in row.get("invalid_details", [])]
        if bad:
            print(f"\ninvalid calls ({r['config']}):")
            for who, e in bad:
                print(f"  {who:12s} {e['task']} {e.get('tool') or '-':22s} {e.get('status', 'invalid'):16s} "
                      f"{e['error'][:110]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--limit", type=int, default=None, help="first N tasks only")
    parser.add_argument("--category", default=None, help="one task category only")
    parser.add_argument("--tasks", nargs="+", default=None, help="these task ids only")
    parser.add_argument("--deciders", nargs="+", default=["prompted", "constrained"],
                        help="deciders for the valid-calls measurement")
    parser.add_argument("--max-steps", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--report", nargs="+", type=Path, default=None, help="print tables from saved JSON files")
    args = parser.parse_args(argv)
    if args.report:
        print_report([r for p in args.report for r in json.loads(p.read_text(encoding="utf-8"))])
        return 0
    os.environ.setdefault("LAB_THREADS", "1")
    tasks = load_agent_tasks(category=args.category)
    if args.tasks:
        tasks = [t for t in tasks if t.id in set(args.tasks)]
    tasks = tasks[: args.limit]
    print(f"{len(tasks)} tasks | provider for local configs: {get_settings().describe()} "
          f"| max_steps {args.max_steps}", file=sys.stderr)
    results = []
    for name in args.configs:
        results.append(run_valid_calls(tasks, tuple(args.deciders)) if name == "valid-calls"
                       else run_config(name, tasks, args.max_steps))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    print_report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
