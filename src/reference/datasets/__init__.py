"""Typed loaders for the datasets shipped in ``datasets/``.

See ``datasets/README.md`` for the datasheet of each set.
"""

from reference.datasets._io import DATASETS_DIR, read_jsonl

__all__ = ["DATASETS_DIR", "read_jsonl"]
