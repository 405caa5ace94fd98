"""SQL fixtures for notebook ``02_sql``: the LLM-call log in SQLite, plus answer checks.

The log (``datasets/llm_calls/``, see its README) has five tables::

    teams(team_id, team_name)
    users(user_id, user_name, team_id)               -> teams
    models(model, provider, usd_per_1m_prompt, usd_per_1m_completion, context_window)
    calls(request_id, ts, user_id, model, prompt_tokens, completion_tokens,
          latency_ms, status, cost_usd, ingested_at)  -> users, models  (has retry duplicates)
    feedback(request_id, rated_at, thumbs)            -> calls            (JSON lines on disk)

Times are UTC text ``YYYY-MM-DD HH:MM:SS``, which SQLite's date functions read and
which sorts correctly as text.

Example:
    >>> conn = connect()
    >>> query(conn, "SELECT COUNT(*) AS n FROM teams")["n"].item()
    5
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from reference.checks import CheckFailed
from reference.datasets import DATASETS_DIR
from reference.errors import DataFileError, InputError

#: Folder of the shipped log.
LLM_CALLS_DIR = DATASETS_DIR / "llm_calls"

#: Column name -> SQLite type, per table, in file order.
SCHEMA: dict[str, dict[str, str]] = {
    "teams": {"team_id": "TEXT", "team_name": "TEXT"},
    "users": {"user_id": "TEXT", "user_name": "TEXT", "team_id": "TEXT"},
    "models": {
        "model": "TEXT", "provider": "TEXT", "usd_per_1m_prompt": "REAL",
        "usd_per_1m_completion": "REAL", "context_window": "INTEGER",
    },
    "calls": {
        "request_id": "TEXT", "ts": "TEXT", "user_id": "TEXT", "model": "TEXT",
        "prompt_tokens": "INTEGER", "completion_tokens": "INTEGER", "latency_ms": "INTEGER",
        "status": "TEXT", "cost_usd": "REAL", "ingested_at": "TEXT",
    },
    "feedback": {"request_id": "TEXT", "rated_at": "TEXT", "thumbs": "TEXT"},
}

_DDL = {
    "teams": "team_id TEXT PRIMARY KEY, team_name TEXT NOT NULL",
    "users": "user_id TEXT PRIMARY KEY, user_name TEXT NOT NULL, team_id TEXT REFERENCES teams(team_id)",
    "models": (
        "model TEXT PRIMARY KEY, provider TEXT NOT NULL, usd_per_1m_prompt REAL NOT NULL, "
        "usd_per_1m_completion REAL NOT NULL, context_window INTEGER NOT NULL"
    ),
    # no primary key on purpose: the log holds duplicate deliveries of some rows
    "calls": (
        "request_id TEXT NOT NULL, ts TEXT NOT NULL, user_id TEXT NOT NULL REFERENCES users(user_id), "
        "model TEXT NOT NULL REFERENCES models(model), prompt_tokens INTEGER NOT NULL, "
        "completion_tokens INTEGER NOT NULL, latency_ms INTEGER NOT NULL, status TEXT NOT NULL, "
        "cost_usd REAL NOT NULL, ingested_at TEXT NOT NULL"
    ),
    "feedback": "request_id TEXT NOT NULL, rated_at TEXT NOT NULL, thumbs TEXT NOT NULL CHECK (thumbs IN ('up','down'))",
}

#: The deduplicated view the notebook uses once the duplicates are understood.
CLEAN_VIEW_SQL = """
CREATE VIEW IF NOT EXISTS calls_clean AS
SELECT request_id, ts, user_id, model, prompt_tokens, completion_tokens,
       latency_ms, status, cost_usd, ingested_at
FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY request_id ORDER BY ingested_at, rowid) AS copy_no
    FROM calls
)
WHERE copy_no = 1
"""


def _read_table(folder: Path, name: str) -> pd.DataFrame:
    columns = list(SCHEMA[name])
    if name == "feedback":
        path = folder / "feedback.jsonl"
        if not path.is_file():
            raise DataFileError(f"{path}: file not found (run datasets/llm_calls/generate.py)")
        rows = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataFileError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
        frame = pd.DataFrame(rows, columns=None)
    else:
        path = folder / f"{name}.csv"
        if not path.is_file():
            raise DataFileError(f"{path}: file not found (run datasets/llm_calls/generate.py)")
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataFileError(f"{path}: missing column(s) {missing}; expected {columns}")
    frame = frame[columns].copy()
    for col, sql_type in SCHEMA[name].items():
        if sql_type in ("INTEGER", "REAL"):
            converted = pd.to_numeric(frame[col], errors="coerce")
            bad = converted.isna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataFileError(f"{path}: column '{col}' row {row + 1}: not a number: {frame[col].iloc[row]!r}")
            frame[col] = converted.astype("int64" if sql_type == "INTEGER" else "float64")
    return frame


def load_frames(data_dir: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """Read every table of the log into pandas (raw: duplicates kept, times as text).

    Raises:
        DataFileError: a file is missing, has a missing column or a non-numeric number.
    """
    folder = Path(data_dir) if data_dir is not None else LLM_CALLS_DIR
    return {name: _read_table(folder, name) for name in SCHEMA}


def connect(data_dir: str | Path | None = None, *, database: str = ":memory:") -> sqlite3.Connection:
    """A SQLite connection with the log loaded into tables (and foreign keys enforced).

    Args:
        data_dir: folder with the files (default: the shipped ``datasets/llm_calls``).
        database: ``":memory:"`` (default) or a file path (must not already hold the tables).
    """
    frames = load_frames(data_dir)
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA foreign_keys = ON")
    with conn:
        for name in ("teams", "users", "models", "calls", "feedback"):
            conn.execute(f"CREATE TABLE {name} ({_DDL[name]})")
            cols = list(SCHEMA[name])
            placeholders = ", ".join("?" for _ in cols)
            rows = [tuple(_py(v) for v in rec) for rec in frames[name].itertuples(index=False, name=None)]
            conn.executemany(f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({placeholders})", rows)
    return conn


def _py(value: object) -> object:
    """numpy scalars -> plain Python, so sqlite3 stores INTEGER/REAL, not BLOB."""
    return value.item() if isinstance(value, np.generic) else value


def create_clean_view(conn: sqlite3.Connection) -> None:
    """Create ``calls_clean``: one row per ``request_id`` (the first delivery kept)."""
    conn.execute(CLEAN_VIEW_SQL)


def query(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
    """Run ``sql`` and return the result as a DataFrame (column names from the query)."""
    cur = conn.execute(sql, tuple(params))
    names = [d[0] for d in cur.description] if cur.description else []
    return pd.DataFrame(cur.fetchall(), columns=names)


def nearest_rank_percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``q``% of values <= it.

    Same as ``numpy.percentile(values, q, method="inverted_cdf")``.

    Example:
        >>> nearest_rank_percentile([15, 20, 35, 40, 50], 40)
        20
    """
    data = sorted(values)
    if not data:
        raise InputError("cannot take a percentile of no values")
    if not 0 < q <= 100:
        raise InputError(f"q must be in (0, 100], got {q}")
    rank = math.ceil(q / 100 * len(data))
    return data[rank - 1]


def sessions_pandas(calls: pd.DataFrame, gap_minutes: float = 30) -> pd.DataFrame:
    """Sessionise calls in pandas: a gap of MORE than ``gap_minutes`` starts a new session.

    Args:
        calls: rows with ``user_id`` and ``ts`` (deduplicate first).

    Returns:
        One row per session: ``user_id, session_no`` (1, 2, ... per user in time order),
        ``started_at, ended_at`` (text, like ``ts``) and ``n_calls``.
    """
    df = calls[["user_id", "ts"]].copy()
    df["t"] = pd.to_datetime(df["ts"])
    df = df.sort_values(["user_id", "t"], kind="stable")
    gap = df.groupby("user_id")["t"].diff()
    df["new"] = gap.isna() | (gap > pd.Timedelta(minutes=gap_minutes))
    df["session_no"] = df.groupby("user_id")["new"].cumsum().astype("int64")
    out = (
        df.groupby(["user_id", "session_no"])
        .agg(started_at=("ts", "min"), ended_at=("ts", "max"), n_calls=("ts", "size"))
        .reset_index()
    )
    out["n_calls"] = out["n_calls"].astype("int64")
    return out


def compare_frames(
    actual: pd.DataFrame, expected: pd.DataFrame, *, what: str, sort_by: Sequence[str] | None = None,
    rtol: float = 1e-6, atol: float = 1e-9, check_order: bool = False,
) -> None:
    """Check a query result against an expected DataFrame; print a tick or raise with a diff.

    Column order and row order are ignored unless ``check_order``; numbers are compared
    with a tolerance (integers vs floats do not matter), everything else as text.

    Raises:
        CheckFailed: with the first difference named (missing columns, row count, a row).
    """
    if not isinstance(actual, pd.DataFrame):
        raise CheckFailed(f"❌ {what}: expected a pandas DataFrame, got {type(actual).__name__}")
    want_cols = list(expected.columns)
    missing = [c for c in want_cols if c not in actual.columns]
    extra = [c for c in actual.columns if c not in want_cols]
    if missing or extra:
        raise CheckFailed(
            f"❌ {what}: columns differ. Missing {missing}, unexpected {extra}. "
            f"Expected exactly {want_cols} (rename with AS)."
        )
    if len(actual) != len(expected):
        raise CheckFailed(f"❌ {what}: expected {len(expected)} rows, got {len(actual)}.")
    a = actual[want_cols].copy()
    e = expected[want_cols].copy()
    if not check_order:
        keys = list(sort_by or want_cols)
        a = a.sort_values(keys, kind="stable").reset_index(drop=True)
        e = e.sort_values(keys, kind="stable").reset_index(drop=True)
    else:
        a, e = a.reset_index(drop=True), e.reset_index(drop=True)
    for col in want_cols:
        ea, ee = a[col], e[col]
        if pd.api.types.is_numeric_dtype(ee) and not pd.api.types.is_bool_dtype(ee):
            av = pd.to_numeric(ea, errors="coerce").to_numpy(dtype="float64")
            ev = ee.to_numpy(dtype="float64")
            same = np.isclose(av, ev, rtol=rtol, atol=atol, equal_nan=True)
        else:
            same = (ea.astype(str) == ee.astype(str)).to_numpy()
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            raise CheckFailed(
                f"❌ {what}: column '{col}' differs at row {i} (after sorting): "
                f"expected {e.iloc[i].to_dict()}, got {a.iloc[i].to_dict()}."
            )
    print(f"✅ {what} matches the expected result ({len(expected)} rows)")
