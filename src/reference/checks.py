"""Friendly exercise checks for the notebooks.

Each check prints one line starting with a green tick when it passes and raises
:class:`CheckFailed` (an ``AssertionError``) with a hint when it does not, so a
failing check stops the cell in Jupyter and fails the notebook under nbval.

Example:
    >>> check(1 + 1 == 2, ok="addition works", hint="1 + 1 should be 2")
    ✅ addition works
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


class CheckFailed(AssertionError):
    """An exercise check did not pass; the message says what to look at."""


def check(condition: bool, *, ok: str, hint: str) -> None:
    """Pass when ``condition`` is truthy, otherwise raise with ``hint``.

    Args:
        condition: the thing the learner's code should make true.
        ok: message printed on success.
        hint: what to try when it fails (shown to the learner).
    """
    if condition:
        print(f"✅ {ok}")
        return
    raise CheckFailed(f"❌ Not yet: {hint}")


def check_equal(actual: Any, expected: Any, *, what: str, hint: str = "") -> None:
    """Check ``actual == expected`` and show both values when they differ.

    Example:
        >>> check_equal(sorted([2, 1]), [1, 2], what="sorted list")
        ✅ sorted list is correct
    """
    if actual == expected:
        print(f"✅ {what} is correct")
        return
    extra = f" Hint: {hint}" if hint else ""
    raise CheckFailed(f"❌ {what}: expected {expected!r}, got {actual!r}.{extra}")


def check_close(
    actual: float, expected: float, *, what: str, rel: float = 1e-6, abs_tol: float = 0.0,
    hint: str = "",
) -> None:
    """Check that two numbers agree within a relative/absolute tolerance.

    Example:
        >>> check_close(0.1 + 0.2, 0.3, what="sum")
        ✅ sum is correct (0.3)
    """
    try:
        ok = math.isclose(float(actual), float(expected), rel_tol=rel, abs_tol=abs_tol)
    except (TypeError, ValueError):
        ok = False
    if ok:
        print(f"✅ {what} is correct ({actual:.6g})")
        return
    extra = f" Hint: {hint}" if hint else ""
    raise CheckFailed(f"❌ {what}: expected about {expected!r}, got {actual!r}.{extra}")


def check_raises(
    fn: Callable[[], Any], exc_type: type[BaseException], *, what: str, hint: str = ""
) -> None:
    """Check that calling ``fn()`` raises ``exc_type`` (and not something else).

    Example:
        >>> check_raises(lambda: int("x"), ValueError, what="int('x')")
        ✅ int('x') raises ValueError
    """
    extra = f" Hint: {hint}" if hint else ""
    try:
        fn()
    except NotImplementedError:
        if exc_type is NotImplementedError:
            print(f"✅ {what} raises NotImplementedError")
            return
        raise
    except exc_type:
        print(f"✅ {what} raises {exc_type.__name__}")
        return
    except Exception as exc:  # noqa: BLE001 - we report whatever came instead
        raise CheckFailed(
            f"❌ {what}: expected {exc_type.__name__}, got {type(exc).__name__}: {exc}.{extra}"
        ) from exc
    raise CheckFailed(f"❌ {what}: expected {exc_type.__name__}, but nothing was raised.{extra}")
