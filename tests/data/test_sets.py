"""Tests for the workload, fine-tuning and judgment datasets and their loaders."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from reference.datasets._io import DATASETS_DIR
from reference.datasets.sets import (
    FINETUNE_SPLITS,
    REFUSAL,
    ChatExample,
    context_doc_ids,
    finetune_schema,
    load_finetune,
    load_intents,
    load_judgments,
    load_queries,
    parse_cited_answer,
)
from reference.errors import DataFileError, InputError

try:  # optional: validate against schema.json with a real validator when available
    import jsonschema
except ImportError:  # pragma: no cover - exercised only without jsonschema
    jsonschema = None

GENERATED = {
    "workloads": ["queries.jsonl", "intents.jsonl"],
    "finetune": ["train.jsonl", "validation.jsonl", "test.jsonl", "sanity.jsonl", "rehearsal.jsonl", "schema.json"],
    "judgments": ["judgments.jsonl"],
}


@pytest.fixture(scope="module")
def queries():
    return load_queries()


@pytest.fixture(scope="module")
def intents():
    return load_intents()


@pytest.fixture(scope="module")
def finetune():
    return {s: load_finetune(s) for s in ("train", "validation", "test")}


@pytest.fixture(scope="module")
def judgments():
    return load_judgments()


# ----------------------------------------------------------------------------- workloads
def test_queries_size_tenants_and_order(queries):
    assert len(queries) >= 1000
    assert [q.seq for q in queries] == list(range(1, len(queries) + 1))
    tenants = Counter(q.tenant for q in queries)
    assert 3 <= len(tenants) <= 4
    assert min(tenants.values()) >= 50


def test_queries_popularity_is_skewed_with_long_tail(queries):
    sizes = Counter(q.cluster_id for q in queries)
    top = sizes.most_common(1)[0][1]
    assert top >= 0.05 * len(queries), "the hottest cluster should be really hot"
    singletons = sum(1 for n in sizes.values() if n == 1)
    assert singletons >= 100, "expected a long tail of one-off queries"
    texts = Counter(q.text for q in queries)
    assert sum(n - 1 for n in texts.values()) >= 100, "exact repeats must occur"
    by_cluster = defaultdict(set)
    for q in queries:
        by_cluster[q.cluster_id].add(q.text)
    paraphrased = [c for c, t in by_cluster.items() if len(t) >= 3]
    assert len(paraphrased) >= 30, "clusters should be asked in several wordings"


def test_lookalikes(queries):
    look = [q for q in queries if q.lookalike_of is not None]
    assert len(look) >= 60
    answers = {q.cluster_id: q.answer_key for q in queries}
    first_seen = {}
    for q in queries:
        first_seen.setdefault(q.cluster_id, q.seq)
    for q in look:
        assert q.lookalike_of in answers
        assert answers[q.lookalike_of] != q.answer_key, f"{q.id} needs a different answer from its lookalike"
    assert len({q.cluster_id for q in look}) >= 25


def test_queries_answer_key_is_per_cluster(queries):
    keys = defaultdict(set)
    for q in queries:
        keys[q.cluster_id].add(q.answer_key)
    assert all(len(v) == 1 for v in keys.values())


def test_intents_counts_labels_and_stratified_split(intents, queries):
    assert len(intents) >= 300
    by_intent = Counter(x.intent for x in intents)
    assert 6 <= len(by_intent) <= 8
    assert all(x.route == ("expensive" if x.difficulty == "hard" else "cheap") for x in intents)
    routes = Counter(x.route for x in intents)
    assert 0.2 <= routes["expensive"] / len(intents) <= 0.6
    strata = defaultdict(Counter)
    for x in intents:
        strata[(x.intent, x.difficulty)][x.split] += 1
    for key, c in strata.items():
        share = c["test"] / (c["test"] + c["train"])
        assert 0.2 <= share <= 0.4, f"stratum {key} has test share {share:.2f}"
    train = {x.text.lower() for x in intents if x.split == "train"}
    test = {x.text.lower() for x in intents if x.split == "test"}
    assert not train & test
    assert not (train | test) & {q.text.lower() for q in queries}, "intents must be worded differently"
    assert {x.intent for x in intents} >= {q.intent for q in queries}
    assert len(load_intents("train")) + len(load_intents("test")) == len(intents)


# ------------------------------------------------------------------------------ finetune
def test_finetune_counts_and_answerable_share(finetune):
    assert len(finetune["train"]) >= 240
    assert len(finetune["validation"]) >= 30
    assert len(finetune["test"]) >= 40
    for split, rows in finetune.items():
        share = sum(not r.meta.answerable for r in rows) / len(rows)
        assert 0.15 <= share <= 0.25, f"{split}: unanswerable share {share:.2f}"
    assert len(load_finetune("sanity")) >= 20


def test_finetune_examples_are_short_and_cite_context(finetune):
    for rows in finetune.values():
        for r in rows:
            assert len(r.user) < 700, r.id
            docs = context_doc_ids(r.user)
            assert 1 <= len(docs) <= 3, r.id
            assert len(set(docs)) == len(docs), f"{r.id}: a document appears twice"
            assert set(r.answer.citations) <= set(docs)
            if r.meta.answerable:
                for kw in r.meta.gold_answer_keywords:
                    assert kw in r.user, f"{r.id}: keyword {kw!r} not in the context"
            else:
                assert r.answer.answer == REFUSAL and r.answer.confidence == "low"


def test_finetune_replies_match_schema(finetune):
    schema = finetune_schema()
    assert schema["required"] == ["answer", "citations", "confidence"]
    for rows in finetune.values():
        for r in rows:
            obj = json.loads(r.messages[2].content)
            assert r.messages[2].content == json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
            if jsonschema is not None:
                jsonschema.validate(obj, schema)
            else:  # hand check of the same constraints
                assert set(obj) == {"answer", "citations", "confidence"}
                assert isinstance(obj["answer"], str) and obj["answer"]
                assert isinstance(obj["citations"], list) and all(isinstance(c, str) for c in obj["citations"])
                assert obj["confidence"] in ("high", "low")


@pytest.mark.skipif(jsonschema is None, reason="jsonschema not installed")
def test_schema_rejects_bad_replies():
    schema = finetune_schema()
    bad = [
        {"answer": "x", "citations": [], "confidence": "medium"},
        {"answer": "x", "citations": ["travel"], "confidence": "high"},
        {"answer": "x", "citations": [], "confidence": "low", "extra": 1},
        {"answer": "x", "confidence": "low"},
    ]
    for obj in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(obj, schema)


def test_finetune_splits_do_not_overlap(finetune):
    def parts(rows):
        questions = {r.question.lower() for r in rows}
        snippets = {line for r in rows for line in r.user.splitlines() if line.startswith("[doc-")}
        return questions, snippets

    seen = {s: parts(rows) for s, rows in finetune.items()}
    names = list(seen)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not seen[a][0] & seen[b][0], f"questions shared by {a} and {b}"
            assert not seen[a][1] & seen[b][1], f"context snippets shared by {a} and {b}"


def test_sanity_prompts():
    rows = load_finetune("sanity")
    assert rows[0].passes("The capital is Paris.")
    assert not rows[0].passes("I am not sure.")


def test_rehearsal_prompts_are_general_and_apart_from_the_sanity_set():
    sanity, rehearsal = load_finetune("sanity"), load_finetune("rehearsal")
    assert len(sanity) >= 40 and len(rehearsal) >= 30
    assert not {p.prompt.lower() for p in sanity} & {p.prompt.lower() for p in rehearsal}
    # rehearsal must not quietly teach the sanity answers: no sanity keyword of 4+ letters
    # (capitals, names, words) appears in a rehearsal prompt
    words = {k.lower() for p in sanity for k in p.expected_keywords if len(k) >= 4 and k.isalpha()}
    assert not [(w, p.id) for w in words for p in rehearsal if w in re.findall(r"[a-z]+", p.prompt.lower())]


def test_parse_cited_answer_errors():
    ok = parse_cited_answer('{"answer":"a","citations":["doc-x-1"],"confidence":"high"}')
    assert ok.citations == ["doc-x-1"]
    with pytest.raises(InputError, match="not JSON"):
        parse_cited_answer("Sure! The answer is 42.")
    with pytest.raises(InputError, match="schema"):
        parse_cited_answer('{"answer":"a","citations":[],"confidence":"high","note":1}')
    with pytest.raises(InputError):
        parse_cited_answer('{"answer":"a","citations":["doc-a","doc-a"],"confidence":"high"}')


# ----------------------------------------------------------------------------- judgments
def test_judgments_balance_and_coverage(judgments):
    n = len(judgments)
    assert n >= 80
    for label in ("faithfulness", "correctness"):
        share = sum(getattr(j.labels, label) for j in judgments) / n
        assert 0.3 <= share <= 0.6, f"{label} positives {share:.2f}"
    modes = {j.failure_mode for j in judgments}
    assert modes == {None, "unsupported_claim", "wrong_number", "contradicts_context", "incomplete",
                     "correct_refusal", "wrong_refusal", "verbose_but_right"}
    combos = Counter((j.labels.faithfulness, j.labels.correctness) for j in judgments)
    assert combos[(1, 0)] >= 5, "need faithful-but-wrong cases (outdated context, refusals)"
    assert combos[(0, 1)] >= 5, "need correct-but-unsupported cases"
    lengths = sorted(len(j.answer) for j in judgments)
    assert lengths[0] < 40 and lengths[-1] > 300, "answers must vary widely in length"
    long_wrong = [j for j in judgments if len(j.answer) > 250 and j.labels.correctness == 0]
    assert len(long_wrong) >= 3, "long wrong answers expose verbosity bias"


def test_judgment_pairs(judgments):
    pairs = defaultdict(list)
    for j in judgments:
        if j.pair_id:
            pairs[j.pair_id].append(j)
    assert len(pairs) >= 10
    for members in pairs.values():
        a, b = members
        assert a.question == b.question
        assert (a.labels.correctness, a.labels.faithfulness) != (b.labels.correctness, b.labels.faithfulness)


# --------------------------------------------------------------------------- generators
@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generator_is_deterministic(name, tmp_path):
    script = DATASETS_DIR / name / "generate.py"
    proc = subprocess.run([sys.executable, str(script), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for fname in GENERATED[name]:
        committed = (DATASETS_DIR / name / fname).read_bytes()
        assert (tmp_path / fname).read_bytes() == committed, f"{name}/{fname} differs from its generator"


# ------------------------------------------------------------------------ loader errors
def _first_line(name: str, fname: str) -> dict:
    return json.loads((DATASETS_DIR / name / fname).read_text(encoding="utf-8").splitlines()[0])


def _write(path: Path, rows: list) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")


@pytest.mark.parametrize("loader", [load_queries, load_intents, load_judgments,
                                    lambda root: load_finetune("train", root=root), finetune_schema])
def test_missing_file(loader, tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        loader(root=tmp_path)


def test_malformed_line_names_file_and_line(tmp_path):
    _write(tmp_path / "queries.jsonl", [_first_line("workloads", "queries.jsonl"), "{not json"])
    with pytest.raises(DataFileError, match=r"queries\.jsonl:2: invalid JSON"):
        load_queries(root=tmp_path)


def test_wrong_schema_rejected(tmp_path):
    q = _first_line("workloads", "queries.jsonl")
    _write(tmp_path / "queries.jsonl", [{**q, "lookalike_of": q["cluster_id"]}])
    with pytest.raises(DataFileError, match="lookalike_of"):
        load_queries(root=tmp_path)
    _write(tmp_path / "queries.jsonl", [{**q, "tenant": "paris"}])
    with pytest.raises(DataFileError, match="tenant"):
        load_queries(root=tmp_path)
    q2 = {**q, "id": "q-00002", "seq": 2, "answer_key": "something else"}
    _write(tmp_path / "queries.jsonl", [q, q2])
    with pytest.raises(DataFileError, match="answer_key"):
        load_queries(root=tmp_path)

    x = _first_line("workloads", "intents.jsonl")
    flipped = {"cheap": "expensive", "expensive": "cheap"}[x["route"]]
    _write(tmp_path / "intents.jsonl", [{**x, "route": flipped}])
    with pytest.raises(DataFileError, match="route"):
        load_intents(root=tmp_path)

    j = _first_line("judgments", "judgments.jsonl")
    _write(tmp_path / "judgments.jsonl", [{**j, "labels": {"faithfulness": True, "correctness": 1}}])
    with pytest.raises(DataFileError, match="labels"):
        load_judgments(root=tmp_path)
    _write(tmp_path / "judgments.jsonl", [{**j, "labels": {"faithfulness": 2, "correctness": 1}}])
    with pytest.raises(DataFileError, match="labels"):
        load_judgments(root=tmp_path)
    _write(tmp_path / "judgments.jsonl", [{**j, "failure_mode": None, "labels": {"faithfulness": 0, "correctness": 0}}])
    with pytest.raises(DataFileError, match="failure_mode"):
        load_judgments(root=tmp_path)


def _answerable_train_row() -> dict:
    for line in (DATASETS_DIR / "finetune" / "train.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["meta"]["answerable"]:
            return row
    raise AssertionError("no answerable example")


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["messages"][2].update(content="The answer is 42."), "not JSON"),
    (lambda r: r["messages"][2].update(content=json.dumps(
        {"answer": "x", "citations": ["doc-not-in-context"], "confidence": "high"})), "not in the user"),
    (lambda r: r["messages"][2].update(content=json.dumps(
        {**json.loads(r["messages"][2]["content"]), "confidence": "sure"})), "schema"),
    (lambda r: r["meta"].update(answerable=False), "unanswerable"),
    (lambda r: r["messages"].reverse(), "system, user, assistant"),
])
def test_finetune_cross_field_rules(mutate, message, tmp_path):
    row = _answerable_train_row()
    mutate(row)
    _write(tmp_path / "train.jsonl", [row])
    with pytest.raises(DataFileError, match=message):
        load_finetune("train", root=tmp_path)


def test_valid_row_round_trips(tmp_path):
    row = _answerable_train_row()
    _write(tmp_path / "train.jsonl", [row])
    (loaded,) = load_finetune("train", root=tmp_path)
    assert isinstance(loaded, ChatExample) and loaded.meta.answerable


def test_bad_split():
    with pytest.raises(InputError) as exc:
        load_finetune("dev")
    for choice in FINETUNE_SPLITS:
        assert choice in str(exc.value)
    assert not isinstance(exc.value, DataFileError)
    with pytest.raises(InputError, match="train"):
        load_intents("validation")


def test_duplicate_pair_membership_rejected(tmp_path, judgments):
    rows = [json.loads(line) for line in
            (DATASETS_DIR / "judgments" / "judgments.jsonl").read_text(encoding="utf-8").splitlines()]
    paired = [r for r in rows if r["pair_id"]]
    extra = {**paired[0], "id": "jdg-999"}
    _write(tmp_path / "judgments.jsonl", rows + [extra])
    with pytest.raises(DataFileError, match="exactly 2"):
        load_judgments(root=tmp_path)
