"""Typed loaders for the datasets shipped in ``datasets/``.

See ``datasets/README.md`` for the datasheet of each set.

Example:
    >>> from reference.datasets import load_golden
    >>> len(load_golden(split="test")) > 0
    True
"""

from reference.datasets._io import DATASETS_DIR, read_jsonl, require_unique
from reference.datasets.corpus import (
    DocumentRecord,
    QAItem,
    SupportingPassage,
    document_path,
    document_text,
    load_golden,
    load_manifest,
)
from reference.datasets.sets import (
    ChatExample,
    IntentExample,
    Judgment,
    WorkloadQuery,
    finetune_schema,
    load_finetune,
    load_intents,
    load_judgments,
    load_queries,
)

__all__ = [
    "DATASETS_DIR", "ChatExample", "DocumentRecord", "IntentExample", "Judgment", "QAItem",
    "SupportingPassage", "WorkloadQuery", "document_path", "document_text", "finetune_schema",
    "load_finetune", "load_golden", "load_intents", "load_judgments", "load_manifest", "load_queries",
    "read_jsonl", "require_unique",
]
