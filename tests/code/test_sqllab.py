"""Tests for reference.sqllab and the shipped llm_calls dataset."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pandas as pd
import pytest

from reference import sqllab
from reference.checks import CheckFailed
from reference.errors import DataFileError, InputError


@pytest.fixture(scope="module")
def conn():
    c = sqllab.connect()
    sqllab.create_clean_view(c)
    yield c
    c.close()


def test_tables_load_with_expected_counts(conn):
    counts = {t: sqllab.query(conn, f"SELECT COUNT(*) AS n FROM {t}")["n"].item()
              for t in ("teams", "users", "models", "calls", "feedback")}
    assert counts["teams"] == 5 and counts["users"] == 12 and counts["models"] == 4
    assert counts["calls"] > counts["feedback"] > 0


def test_numbers_are_stored_as_numbers(conn):
    row = sqllab.query(conn, "SELECT typeof(cost_usd) AS c, typeof(latency_ms) AS l FROM calls LIMIT 1")
    assert row.iloc[0].to_dict() == {"c": "real", "l": "integer"}


def test_foreign_keys_hold(conn):
    orphans = sqllab.query(conn, """
        SELECT COUNT(*) AS n FROM calls c
        LEFT JOIN users u ON u.user_id = c.user_id
        LEFT JOIN models m ON m.model = c.model
        WHERE u.user_id IS NULL OR m.model IS NULL""")
    assert orphans["n"].item() == 0


def test_clean_view_has_one_row_per_request(conn):
    raw = sqllab.query(conn, "SELECT COUNT(*) AS n, COUNT(DISTINCT request_id) AS d FROM calls").iloc[0]
    clean = sqllab.query(conn, "SELECT COUNT(*) AS n FROM calls_clean")["n"].item()
    assert raw["n"] > raw["d"], "the dataset should contain retry duplicates"
    assert clean == raw["d"]


def test_clean_view_keeps_first_delivery(conn):
    dup = sqllab.query(conn, """
        SELECT request_id, MIN(ingested_at) AS first FROM calls
        GROUP BY request_id HAVING COUNT(*) > 1 LIMIT 1""").iloc[0]
    kept = sqllab.query(conn, "SELECT ingested_at FROM calls_clean WHERE request_id = ?", [dup["request_id"]])
    assert kept["ingested_at"].tolist() == [dup["first"]]


def test_cost_matches_model_prices(conn):
    diff = sqllab.query(conn, """
        SELECT MAX(ABS(c.cost_usd - (c.prompt_tokens * m.usd_per_1m_prompt
                                     + c.completion_tokens * m.usd_per_1m_completion) / 1e6)) AS d
        FROM calls c JOIN models m USING (model)""")["d"].item()
    assert diff < 1e-7


def test_dataset_is_reproducible_from_generator(tmp_path):
    spec = importlib.util.spec_from_file_location("gen", sqllab.LLM_CALLS_DIR / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.write(gen.generate(), tmp_path)
    for name in ("teams.csv", "users.csv", "models.csv", "calls.csv", "feedback.jsonl"):
        assert (tmp_path / name).read_bytes() == (sqllab.LLM_CALLS_DIR / name).read_bytes(), name


def test_dataset_has_planted_edge_cases():
    frames = sqllab.load_frames()
    calls = frames["calls"].drop_duplicates("request_id")
    t = pd.to_datetime(calls.sort_values(["user_id", "ts"])["ts"])
    gaps = t.groupby(calls.sort_values(["user_id", "ts"])["user_id"]).diff()
    assert (gaps == pd.Timedelta(minutes=30)).any(), "a gap of exactly 30 min (boundary case)"
    assert "u12" not in set(calls["user_id"]), "a user with no calls"
    assert "t5" not in set(frames["users"]["team_id"]), "a team with no users"
    assert (calls["status"] == "error").any()


# --------------------------------------------------------------------------- bad files


def _copy_dataset(tmp_path):
    for f in sqllab.LLM_CALLS_DIR.iterdir():
        if f.suffix in (".csv", ".jsonl"):
            shutil.copy(f, tmp_path / f.name)
    return tmp_path


def test_missing_file_is_a_data_file_error(tmp_path):
    folder = _copy_dataset(tmp_path)
    (folder / "models.csv").unlink()
    with pytest.raises(DataFileError, match="models.csv: file not found"):
        sqllab.load_frames(folder)


def test_missing_column_is_named(tmp_path):
    folder = _copy_dataset(tmp_path)
    df = pd.read_csv(folder / "calls.csv").drop(columns=["latency_ms"])
    df.to_csv(folder / "calls.csv", index=False)
    with pytest.raises(DataFileError, match="latency_ms"):
        sqllab.load_frames(folder)


def test_non_numeric_value_is_named(tmp_path):
    folder = _copy_dataset(tmp_path)
    df = pd.read_csv(folder / "calls.csv", dtype=str)
    df.loc[3, "cost_usd"] = "free"
    df.to_csv(folder / "calls.csv", index=False)
    with pytest.raises(DataFileError, match=r"cost_usd.*row 4.*free"):
        sqllab.load_frames(folder)


def test_bad_json_line_is_named(tmp_path):
    folder = _copy_dataset(tmp_path)
    with (folder / "feedback.jsonl").open("a") as fh:
        fh.write("{not json\n")
    with pytest.raises(DataFileError, match=r"feedback.jsonl:\d+: invalid JSON"):
        sqllab.load_frames(folder)


def test_bad_thumbs_value_rejected_by_schema(tmp_path):
    folder = _copy_dataset(tmp_path)
    with (folder / "feedback.jsonl").open("a") as fh:
        fh.write('{"request_id": "req-00001", "rated_at": "2025-03-03 08:00:00", "thumbs": "meh"}\n')
    with pytest.raises(Exception, match="CHECK constraint"):
        sqllab.connect(folder)


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize("q", [1, 25, 50, 90, 95, 99, 100])
def test_nearest_rank_matches_numpy_inverted_cdf(q):
    values = np.random.default_rng(0).integers(0, 1000, size=137)
    assert sqllab.nearest_rank_percentile(values, q) == np.percentile(values, q, method="inverted_cdf")


def test_nearest_rank_bad_input():
    with pytest.raises(InputError):
        sqllab.nearest_rank_percentile([], 95)
    with pytest.raises(InputError):
        sqllab.nearest_rank_percentile([1, 2], 0)


def test_sessions_pandas_gap_rule():
    calls = pd.DataFrame({
        "user_id": ["a", "a", "a", "a", "b"],
        "ts": ["2025-01-01 10:00:00", "2025-01-01 10:30:00",  # exactly 30 min: same session
               "2025-01-01 11:00:01",                          # 30 min 1 s: new session
               "2025-01-01 11:05:00", "2025-01-01 10:10:00"],
    })
    out = sqllab.sessions_pandas(calls)
    assert out.to_dict("records") == [
        {"user_id": "a", "session_no": 1, "started_at": "2025-01-01 10:00:00",
         "ended_at": "2025-01-01 10:30:00", "n_calls": 2},
        {"user_id": "a", "session_no": 2, "started_at": "2025-01-01 11:00:01",
         "ended_at": "2025-01-01 11:05:00", "n_calls": 2},
        {"user_id": "b", "session_no": 1, "started_at": "2025-01-01 10:10:00",
         "ended_at": "2025-01-01 10:10:00", "n_calls": 1},
    ]


def test_compare_frames_accepts_reordered_rows_columns_and_int_float(capsys):
    exp = pd.DataFrame({"k": ["a", "b"], "v": [1.0, 2.0]})
    act = pd.DataFrame({"v": [2, 1], "k": ["b", "a"]})
    sqllab.compare_frames(act, exp, what="result")
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("actual", "message"),
    [
        (pd.DataFrame({"k": ["a", "b"]}), "Missing \\['v'\\]"),
        (pd.DataFrame({"k": ["a"], "v": [1.0]}), "expected 2 rows, got 1"),
        (pd.DataFrame({"k": ["a", "b"], "v": [1.0, 2.5]}), "column 'v' differs at row 1"),
        ([1, 2], "expected a pandas DataFrame"),
    ],
)
def test_compare_frames_reports_the_difference(actual, message):
    exp = pd.DataFrame({"k": ["a", "b"], "v": [1.0, 2.0]})
    with pytest.raises(CheckFailed, match=message):
        sqllab.compare_frames(actual, exp, what="result")
