"""Evaluation helpers for the lab: one module per kind of evaluation.

* :mod:`reference.evals.retrieval` - ranking metrics (hit@k, recall@k, precision@k, MRR, nDCG@k).
"""
