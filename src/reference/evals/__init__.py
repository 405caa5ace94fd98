"""Evaluation helpers for the lab: one module per kind of evaluation.

* :mod:`reference.evals.retrieval` - ranking metrics (hit@k, recall@k, precision@k, MRR, nDCG@k).
"""

from reference.evals.gate import GateFailure, GateRule, assert_gate, check_gate
from reference.evals.judge import LLMJudge, calibrate, cohen_kappa, position_bias, verbosity_bias
from reference.evals.metrics import (
    answer_correctness,
    citation_accuracy,
    exact_match,
    extract_numbers,
    faithfulness,
    hallucination,
    is_refusal,
    number_match,
    refusal_correct,
    relevance,
    token_f1,
)
from reference.evals.records import EvalRecord, RunStore, aggregate, bootstrap_ci, evaluate_answer, paired_comparison

# reference.evals.ragas_eval stays an explicit import: it loads RAGAS only when used.
