"""Generate the synthetic LLM-call log in this folder (seeded, standard library only).

Run from anywhere; it rewrites the files next to it and prints their row counts::

    python datasets/llm_calls/generate.py

The output is byte-for-byte reproducible for a given SEED and Python 3.11+ (only
``random.Random`` with a fixed seed is used, and floats are rounded before writing).
See README.md in this folder for the datasheet.
"""

from __future__ import annotations

import csv
import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path

SEED = 20250301
HERE = Path(__file__).resolve().parent
START = datetime(2025, 3, 3)  # a Monday; all times are UTC
DAYS = 14
FMT = "%Y-%m-%d %H:%M:%S"

TEAMS = [
    ("t1", "search"),
    ("t2", "support-bot"),
    ("t3", "research"),
    ("t4", "growth"),
    ("t5", "legal"),  # no users: shows up only with a LEFT JOIN
]

# user_id, name, team_id, activity (mean sessions per working day), favourite model
USERS = [
    ("u01", "ada", "t1", 1.6, "gpt-4o-mini"),
    ("u02", "bo", "t1", 1.2, "gpt-4o-mini"),
    ("u03", "chen", "t1", 0.8, "gpt-4o"),
    ("u04", "dara", "t2", 2.2, "claude-3-5-haiku"),
    ("u05", "eli", "t2", 1.8, "gpt-4o-mini"),
    ("u06", "fatima", "t2", 1.0, "smollm2-135m-instruct"),
    ("u07", "goran", "t3", 0.9, "gpt-4o"),
    ("u08", "hana", "t3", 1.4, "claude-3-5-haiku"),
    ("u09", "ines", "t3", 0.6, "gpt-4o"),
    ("u10", "jon", "t4", 1.1, "gpt-4o-mini"),
    ("u11", "kemal", "t4", 0.7, "smollm2-135m-instruct"),
    ("u12", "lena", "t4", 0.0, "gpt-4o-mini"),  # has an account, never called a model
]

# model, provider, USD per 1M prompt tokens, USD per 1M completion tokens, context window,
# median latency (ms) for a 100-token completion, chance a rated answer gets a thumbs up
MODELS = [
    ("gpt-4o-mini", "openai", 0.15, 0.60, 128000, 700, 0.78),
    ("gpt-4o", "openai", 2.50, 10.00, 128000, 1500, 0.86),
    ("claude-3-5-haiku", "anthropic", 0.80, 4.00, 200000, 900, 0.81),
    ("smollm2-135m-instruct", "local", 0.0, 0.0, 8192, 250, 0.41),
]

ERROR_RATE = 0.02
TIMEOUT_MS = 30000
DUPLICATE_RATE = 0.015
FEEDBACK_RATE = 0.25


def _session_starts(rng: random.Random, n: int) -> list[float]:
    """n session start times (hours after midnight), at least 31 minutes apart in order."""
    starts: list[float] = []
    for _ in range(n):
        starts.append(rng.uniform(7.0, 19.0))
    return sorted(starts)


def _latency_ms(rng: random.Random, median_100: float, completion_tokens: int) -> int:
    base = median_100 * (0.4 + 0.6 * completion_tokens / 100)
    value = base * math.exp(rng.gauss(0.0, 0.35))
    if rng.random() < 0.02:  # a heavy tail: queueing, cold caches, long generations
        value *= rng.uniform(3.0, 8.0)
    return max(40, int(round(value)))


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    """Build every table as a list of dicts (deterministic for a given seed)."""
    rng = random.Random(seed)
    models = {m[0]: m for m in MODELS}
    calls: list[dict] = []
    feedback: list[dict] = []
    counter = 0
    for day in range(DAYS):
        date = START + timedelta(days=day)
        weekend = date.weekday() >= 5
        for user_id, _name, _team, activity, favourite in USERS:
            mean = activity * (0.25 if weekend else 1.0)
            n_sessions = sum(rng.random() < mean / 3 for _ in range(3))
            next_free = date
            for start_h in _session_starts(rng, n_sessions):
                t = max(date + timedelta(hours=start_h), next_free + timedelta(minutes=rng.uniform(31, 90)))
                n_calls = rng.randint(1, 12)
                for i in range(n_calls):
                    if i:
                        # in-session think time: usually short, occasionally exactly 30 minutes
                        # (the boundary: a gap of exactly 30 min does NOT start a new session)
                        gap_s = 1800 if rng.random() < 0.01 else rng.choice(
                            [rng.uniform(5, 120), rng.uniform(60, 900), rng.uniform(300, 1500)])
                        t += timedelta(seconds=round(gap_s))
                    model = favourite if rng.random() < 0.7 else rng.choice(MODELS)[0]
                    _, _, p_in, p_out, _, median, p_up = models[model]
                    counter += 1
                    prompt_tokens = int(rng.lognormvariate(math.log(1500), 0.8)) + 20
                    completion_tokens = int(rng.lognormvariate(math.log(120), 0.6)) + 5
                    status = "ok"
                    latency = _latency_ms(rng, median, completion_tokens)
                    if rng.random() < ERROR_RATE:
                        status, completion_tokens, latency = "error", 0, TIMEOUT_MS
                    cost = round(prompt_tokens * p_in / 1e6 + completion_tokens * p_out / 1e6, 8)
                    ts = t.replace(microsecond=0)
                    ingested = ts + timedelta(milliseconds=latency) + timedelta(seconds=rng.randint(1, 20))
                    row = {
                        "request_id": f"req-{counter:05d}",
                        "ts": ts.strftime(FMT),
                        "user_id": user_id,
                        "model": model,
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "latency_ms": latency,
                        "status": status,
                        "cost_usd": cost,
                        "ingested_at": ingested.replace(microsecond=0).strftime(FMT),
                    }
                    calls.append(row)
                    if rng.random() < DUPLICATE_RATE:
                        # the log shipper timed out waiting for an ack and sent the row again
                        again = dict(row)
                        later = ingested + timedelta(seconds=rng.randint(5, 120))
                        again["ingested_at"] = later.replace(microsecond=0).strftime(FMT)
                        calls.append(again)
                    if status == "ok" and rng.random() < FEEDBACK_RATE:
                        rated = ts + timedelta(seconds=rng.randint(10, 600))
                        feedback.append({
                            "request_id": row["request_id"],
                            "rated_at": rated.strftime(FMT),
                            "thumbs": "up" if rng.random() < p_up else "down",
                        })
                    t += timedelta(milliseconds=latency)
                next_free = t
    calls.sort(key=lambda r: (r["ingested_at"], r["request_id"]))
    feedback.sort(key=lambda r: (r["rated_at"], r["request_id"]))
    return {
        "teams": [{"team_id": t, "team_name": n} for t, n in TEAMS],
        "users": [{"user_id": u, "user_name": n, "team_id": t} for u, n, t, _, _ in USERS],
        "models": [
            {"model": m, "provider": p, "usd_per_1m_prompt": a, "usd_per_1m_completion": b, "context_window": c}
            for m, p, a, b, c, _, _ in MODELS
        ],
        "calls": calls,
        "feedback": feedback,
    }


def write(tables: dict[str, list[dict]], folder: Path = HERE) -> dict[str, int]:
    """Write CSV files (and feedback as JSON lines); return row counts."""
    counts = {}
    for name, rows in tables.items():
        if name == "feedback":
            path = folder / "feedback.jsonl"
            with path.open("w", encoding="utf-8", newline="\n") as fh:
                for row in rows:
                    fh.write(json.dumps(row, sort_keys=False) + "\n")
        else:
            path = folder / f"{name}.csv"
            with path.open("w", encoding="utf-8", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
        counts[path.name] = len(rows)
    return counts


if __name__ == "__main__":
    for file, n in write(generate()).items():
        print(f"{file}: {n} rows")
