"""Low-level readers shared by the dataset loaders: JSONL in, validated models out.

Example:
    >>> from pydantic import BaseModel
    >>> class Row(BaseModel):
    ...     id: str
    >>> read_jsonl(path, Row)          # doctest: +SKIP
    [Row(id='q-001'), ...]
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from reference.errors import DataFileError

M = TypeVar("M", bound=BaseModel)

#: Root of the shipped datasets (``<repo>/datasets``).
DATASETS_DIR = Path(__file__).resolve().parents[3] / "datasets"


def read_jsonl(path: str | Path, model: type[M]) -> list[M]:
    """Read a JSON-lines file and validate each line against ``model``.

    Args:
        path: file to read (UTF-8, one JSON object per line; blank lines ignored).
        model: pydantic model each line must satisfy.

    Returns:
        The validated records, in file order.

    Raises:
        DataFileError: the file is missing, not UTF-8, empty, or a line is not valid
            JSON or does not match ``model``; the message names the file and line.
    """
    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"{p}: file not found (is the repository checkout complete?)")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{p}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    records: list[M] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{p}:{lineno}: invalid JSON ({exc.msg})") from exc
        try:
            records.append(model.model_validate(obj))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "<record>"
            raise DataFileError(
                f"{p}:{lineno}: field '{where}': {first['msg']} "
                f"({exc.error_count()} problem(s) in this record)"
            ) from exc
    if not records:
        raise DataFileError(f"{p}: file is empty")
    return records


def require_unique(path: str | Path, ids: Iterable[str], what: str = "id") -> None:
    """Raise :class:`DataFileError` naming up to five values of ``ids`` that repeat.

    Example:
        >>> require_unique("x.jsonl", ["a", "b"])
        >>> require_unique("x.jsonl", ["a", "a"], "doc_id")
        Traceback (most recent call last):
        ...
        reference.errors.DataFileError: x.jsonl: doc_id 'a' appears more than once
    """
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    if len(dupes) == 1:
        raise DataFileError(f"{path}: {what} {dupes[0]!r} appears more than once")
    if dupes:
        shown = ", ".join(repr(d) for d in dupes[:5])
        raise DataFileError(f"{path}: {len(dupes)} values of {what} appear more than once: {shown}")
