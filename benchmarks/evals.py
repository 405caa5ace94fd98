"""The full evaluation of the baseline RAG configuration, and the judge-versus-human table.

Part 1a is the deterministic eval without generation, on every question of the split:
retrieval metrics (hit@k, MRR), whether the retrieved text contains the reference
answer's key facts, and whether the pipeline's support gate refuses exactly the
unanswerable questions. It is timed on its own (target: under 2 minutes).

Part 1b runs :class:`reference.rag.RAGPipeline` (hybrid retrieval with the lexical-dense
reranker, k=4, the local SmolLM2 model, JSON answers with citations) on every question
of a golden split and scores each answer with the deterministic metrics of
:mod:`reference.evals.metrics`: correctness, faithfulness, hallucination, refusal
correctness, citation precision/recall, relevance, retrieval hit@k/MRR, latency and cost
(self-hosted: $0 per token; the hosted-equivalent column prices the same token counts
at a hosted model's list price). It prints overall means with bootstrap CIs, a per-type
table, and the time split between generation and the deterministic eval.

Part 2 measures agreement with the human labels of ``datasets/judgments``: the
deterministic metrics on all 93 answers, and the local LLM judge on ``--judge-n``
answers, plus position bias on the labelled pairs.

Part 3 (optional, ``--ragas-n N``) runs RAGAS with the local judge on N judgments and
prints its NaN accounting.

Usage::

    python benchmarks/evals.py                       # test split, judge on all 93, no RAGAS
    python benchmarks/evals.py --per-type 2 --judge-n 20   # generation on 2 questions per type only
    python benchmarks/evals.py --split dev --judge-n 20 --ragas-n 5 --store /tmp/evals.sqlite
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections import defaultdict


def _fmt(s) -> str:  # MetricSummary -> "0.812 [0.74, 0.88]"
    if s.n == 0:
        return f"n/a ({s.n_missing} missing)"
    miss = f" ({s.n_missing} missing)" if s.n_missing else ""
    if s.metric == "cost_usd":
        return f"${s.mean:.6f} [${s.low:.6f}, ${s.high:.6f}] per answer{miss}"
    if s.metric == "latency_ms":
        return f"{s.mean:.0f} [{s.low:.0f}, {s.high:.0f}]{miss}"
    return f"{s.mean:.3f} [{s.low:.3f}, {s.high:.3f}]{miss}"


def rag_eval(split: str, k: int, hosted_model: str, store_path: str | None, per_type: int) -> None:
    from reference.chunking import structure_chunks
    from reference.cost import get_price
    from reference.datasets import load_golden, load_manifest
    from reference.embeddings import get_embedder
    from reference.evals import metrics as M
    from reference.evals.records import EvalRecord, RunStore, aggregate, evaluate_answer, group_by
    from reference.evals.retrieval import evaluate_query
    from reference.ingest import ingest_corpus
    from reference.llm import get_chat_model
    from reference.rag import RAGPipeline
    from reference.retrieval import CachedEmbedder, build_retriever, doc_ranking

    t0 = time.perf_counter()
    report = ingest_corpus(load_manifest())
    chunks = structure_chunks(report.pages)
    retriever = build_retriever(chunks, CachedEmbedder(get_embedder("local")), progress=False)
    llm = get_chat_model()
    pipe = RAGPipeline(retriever, llm, k=k)
    setup_s = time.perf_counter() - t0
    all_questions = load_golden(split)
    print(f"setup: {len(report.documents)} documents, {len(chunks)} chunks, {setup_s:.1f} s; "
          f"{len(all_questions)} {split} questions; model {llm.model}; k={k}, min_support={pipe.min_support}")

    # Part 1a: the deterministic eval without generation, on every question of the split:
    # retrieval metrics, whether the retrieved text holds the reference's key facts, and
    # whether the support gate refuses exactly the unanswerable questions.
    t_det_all = time.perf_counter()
    gate_records = []
    for q in all_questions:
        hits, support, _ = pipe.retrieve(q.question)
        relevant = {s.doc_id for s in q.supporting}
        refuse = support < pipe.min_support
        ranking = evaluate_query(doc_ranking(hits), relevant, ks=(1, k)) if relevant else {}
        text = "\n".join(h.chunk.text for h in hits)
        retrieval = {m: ranking[m] for m in ("hit@1", f"hit@{k}", "mrr")} if ranking else {}
        if relevant:
            retrieval["answer_in_context"] = float(M.answer_correctness(text, q.answer, question=q.question).correct)
        gate_records.append(EvalRecord(q.id, question=q.question, qtype=q.type, refused=refuse,
                                       refusal_correct=float(refuse == (q.type == "unanswerable")),
                                       retrieval=retrieval))
    det_all_s = time.perf_counter() - t_det_all
    gm = ["hit@1", f"hit@{k}", "mrr", "answer_in_context", "refusal_correct"]
    gagg = aggregate(gate_records, gm)
    print(f"\n== deterministic eval without generation, whole {split} split (n={len(gate_records)}) ==")
    for m in gm:
        print(f"  {m:48} {_fmt(gagg[m])}")
    print(f"  support gate refuses {sum(r.refused for r in gate_records)} questions "
          f"({sum(1 for q in all_questions if q.type == 'unanswerable')} are unanswerable)")
    print(f"  time: {det_all_s:.1f} s for retrieval + metrics; {setup_s + det_all_s:.1f} s including setup")
    by_type_n: dict[str, int] = defaultdict(int)
    questions = []
    for q in all_questions:
        if per_type <= 0 or by_type_n[q.type] < per_type:
            questions.append(q)
            by_type_n[q.type] += 1
    print(f"\n(generation below runs on {len(questions)} questions"
          f"{f', the first {per_type} of each type' if per_type > 0 else ''})")

    hosted = get_price(hosted_model)
    answers = []
    t_gen = time.perf_counter()
    for i, q in enumerate(questions, 1):
        answers.append(pipe.answer(q.question))
        if i % 10 == 0:
            print(f"  answered {i}/{len(questions)} ({time.perf_counter() - t_gen:.0f} s)", file=sys.stderr)
    gen_s = time.perf_counter() - t_gen

    t_det = time.perf_counter()
    records = []
    for q, a in zip(questions, answers, strict=True):
        relevant = {s.doc_id for s in q.supporting}
        ranking = evaluate_query(doc_ranking(a.contexts), relevant, ks=(1, k)) if relevant else {}
        rec = evaluate_answer(
            q.id, q.question, a.answer, reference=q.answer,
            context="\n".join(h.chunk.text for h in a.contexts) or " ", answerable=q.type != "unanswerable",
            qtype=q.type, cited=a.citations, retrieved=[h.chunk.chunk_id for h in a.contexts],
            supporting_docs=sorted(relevant) if not a.refused else [], latency_s=a.latency_s,
            prompt_tokens=a.usage.prompt_tokens, completion_tokens=a.usage.completion_tokens, price=hosted,
            retrieval={m: ranking[m] for m in (f"hit@{k}", "mrr")} if ranking else {},
        )
        rec.extra["cost_usd_self_hosted"] = 0.0
        rec.extra["refusal_reason"] = a.refusal_reason
        records.append(rec)
    det_s = time.perf_counter() - t_det

    metrics = ["answer_correctness", "faithfulness", "hallucination", "refusal_correct", "citation_precision",
               "citation_recall", "relevance", f"hit@{k}", "mrr", "latency_ms", "cost_usd"]
    agg = aggregate(records, metrics)
    print(f"\n== RAG baseline with generation on the {split} split (n={len(records)}), means with 95% bootstrap CI ==")
    for m in metrics:
        label = f"cost_usd ({hosted.model} list price; self-hosted = $0)" if m == "cost_usd" else m
        print(f"  {label:48} {_fmt(agg[m])}")
    tokens = sum(a.usage.prompt_tokens + a.usage.completion_tokens for a in answers)
    n_llm = sum(1 for a in answers if a.usage.prompt_tokens)
    print(f"  refused: {sum(a.refused for a in answers)} of {len(answers)}; LLM calls: {n_llm}; tokens: {tokens}")
    reasons = defaultdict(int)
    for a in answers:
        if a.refused:
            reasons[a.refusal_reason.split(":")[0].split(" below")[0]] += 1
    print(f"  refusal reasons: {dict(reasons)}")

    print(f"\n== per question type ==\n  {'type':14} {'n':>3} {'correct':>8} {'faithful':>9} {'halluc.':>8} "
          f"{'refusal ok':>10} {'hit@' + str(k):>6} {'latency ms':>10}")
    for qtype, group in group_by(records).items():
        g = aggregate(group, ["answer_correctness", "faithfulness", "hallucination", "refusal_correct", f"hit@{k}",
                              "latency_ms"], n_boot=200)
        cells = [f"{g[m].mean:.2f}" if g[m].n else "n/a" for m in
                 ("answer_correctness", "faithfulness", "hallucination", "refusal_correct", f"hit@{k}")]
        print(f"  {qtype:14} {len(group):>3} {cells[0]:>8} {cells[1]:>9} {cells[2]:>8} {cells[3]:>10} {cells[4]:>6} "
              f"{g['latency_ms'].mean:>10.0f}")

    per_q = (gen_s + det_s) / len(records)
    print(f"\n== time ==\n  generation (retrieval + LLM): {gen_s:.1f} s ({gen_s / len(records):.2f} s/question)"
          f"\n  deterministic eval of all answers: {det_s:.2f} s ({det_s / len(records) * 1000:.1f} ms/question)"
          f"\n  total per question: {per_q:.2f} s; setup {setup_s:.1f} s")
    t_ret = time.perf_counter()
    for q in questions:
        retriever.retrieve(q.question, k=k)
    ret_s = time.perf_counter() - t_ret
    print(f"  retrieval-only pass over the split: {ret_s:.1f} s -> deterministic eval without generation "
          f"(setup + retrieval + metrics): {setup_s + ret_s + det_s:.1f} s")
    if store_path:
        rid = RunStore(store_path).save(f"rag-baseline-{split}", {
            "split": split, "k": k, "min_support": pipe.min_support, "retriever": "hybrid+rerank",
            "chunking": "structure", "model": llm.model, "hosted_price_model": hosted.model}, records)
        print(f"  stored run {rid} in {store_path}")


def judge_eval(judge_n: int) -> None:
    from reference.datasets import load_judgments
    from reference.evals import metrics as M
    from reference.evals.judge import LLMJudge, calibrate, position_bias, verbosity_bias
    from reference.llm import get_chat_model

    js = load_judgments()
    hf = [j.labels.faithfulness for j in js]
    hc = [j.labels.correctness for j in js]
    t = time.perf_counter()
    det_f = [M.faithfulness(j.answer, j.context, question=j.question).faithful for j in js]
    det_c = [M.answer_correctness(j.answer, j.reference_answer, question=j.question).correct for j in js]
    det_s = time.perf_counter() - t
    rows = [("deterministic", "faithfulness", calibrate(hf, det_f)), ("deterministic", "correctness", calibrate(hc, det_c)),
            ("always-yes", "faithfulness", calibrate(hf, [1] * len(js))),
            ("always-yes", "correctness", calibrate(hc, [1] * len(js)))]
    pos = None
    if judge_n:
        judge = LLMJudge(get_chat_model(), max_tokens=24)
        sub = js[:judge_n]
        t = time.perf_counter()
        verdicts = [judge.judge(j.question, j.context, j.answer, j.reference_answer) for j in sub]
        judge_s = time.perf_counter() - t
        rows += [(f"local LLM judge (n={len(sub)})", "faithfulness",
                  calibrate([j.labels.faithfulness for j in sub], [v.faithful for v in verdicts])),
                 (f"local LLM judge (n={len(sub)})", "correctness",
                  calibrate([j.labels.correctness for j in sub], [v.correct for v in verdicts]))]
        pairs_by = defaultdict(list)
        for j in js:
            if j.pair_id:
                pairs_by[j.pair_id].append(j)
        pairs = []
        for pid, (x, y) in sorted(pairs_by.items()):
            better = 0 if (x.labels.correctness, x.labels.faithfulness) > (y.labels.correctness, y.labels.faithfulness) else 1
            pairs.append((pid, x.question, x.context, x.answer, y.answer, better))
        pos = position_bias(pairs, lambda q, c, a, b: judge.compare(q, c, a, b).better)
        vb = verbosity_bias([len(j.answer) for j in sub], [j.labels.correctness for j in sub], [v.correct for v in verdicts])
    print(f"\n== agreement with human labels (judgments set, n={len(js)}) ==")
    print(f"  {'rater':28} {'label':13} {'agreement':>9} {'kappa':>6} {'says yes':>8}  confusion [[h0j0,h0j1],[h1j0,h1j1]]")
    for rater, label, c in rows:
        print(f"  {rater:28} {label:13} {c.agreement:>9.1%} {c.kappa:>+6.2f} {c.judge_positive_rate:>8.0%}  "
              f"{c.matrix.tolist()}")
    print(f"  deterministic metrics on all {len(js)} answers: {det_s:.2f} s; mean agreement over both labels: "
          f"{(rows[0][2].agreement + rows[1][2].agreement) / 2:.1%}")
    # the rules were tuned on the "dev" half only (split by sha256 of the question; datasets/judgments/README.md)
    half = ["dev" if int(hashlib.sha256(j.question.encode()).hexdigest(), 16) % 2 == 0 else "held-out" for j in js]
    for name in ("dev", "held-out"):
        idx = [i for i, h in enumerate(half) if h == name]
        agree = {label: sum(int(pred[i]) == human[i] for i in idx) / len(idx)
                 for label, pred, human in (("faithfulness", det_f, hf), ("correctness", det_c, hc))}
        print(f"  deterministic, {name:8} half (n={len(idx):2}): faithfulness {agree['faithfulness']:.1%}, "
              f"correctness {agree['correctness']:.1%}")
    if judge_n:
        print(f"  local judge: {judge_s:.0f} s for {judge_n} verdicts ({judge_s / judge_n:.1f} s each)")
        print(f"  position bias on {pos.n} pairs: consistent {pos.consistent:.0%}, first-shown preferred "
              f"{pos.first_preferred:.0%}, human-preferred picked {pos.accuracy:.0%}")
        print(f"  verbosity (correctness): false accepts long {vb['false_accept_long']:.0%} vs short "
              f"{vb['false_accept_short']:.0%} (split at {vb['threshold']:.0f} chars)")


def ragas_eval(n: int) -> None:
    from reference.datasets import load_judgments
    from reference.embeddings import get_embedder
    from reference.evals import ragas_eval as RE
    from reference.serve import LabServer

    js = load_judgments()[:n]
    samples = [RE.RagasSample(j.id, j.question, j.answer, [j.context], j.reference_answer) for j in js]
    with LabServer() as server:
        cfg = RE.judge_config(server.base_url, max_tokens=128, timeout_s=60)
        rep = RE.run_ragas(samples, config=cfg, embeddings=RE.LabRagasEmbeddings(get_embedder()),
                           metrics=list(RE.RAGAS_METRICS), progress=False)
    print(f"\n== RAGAS with the local judge on {n} judgments ({rep.seconds:.0f} s) ==\n{rep.table()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", default="test", choices=["dev", "test"])
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--hosted-model", default="gpt-4o-mini", help="price the token counts at this model's list price")
    p.add_argument("--judge-n", type=int, default=93, help="judgments graded by the local LLM judge (0 = none)")
    p.add_argument("--ragas-n", type=int, default=0, help="judgments scored with RAGAS (slow: ~10 s per LLM call)")
    p.add_argument("--skip-rag", action="store_true")
    p.add_argument("--per-type", type=int, default=0,
                   help="generate answers for only the first N questions of each type (0 = all; ~5-70 s per answer)")
    p.add_argument("--store", default=None, help="SQLite file to store the RAG run in")
    args = p.parse_args()
    print(f"LAB_THREADS={os.environ.get('LAB_THREADS', 'all')}")
    start = time.perf_counter()
    if not args.skip_rag:
        rag_eval(args.split, args.k, args.hosted_model, args.store, args.per_type)
    judge_eval(args.judge_n)
    if args.ragas_n:
        ragas_eval(args.ragas_n)
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
