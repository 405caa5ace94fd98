"""A small, bounded load generator for servers on this machine (asyncio + httpx).

Two ways to apply load:

* **closed loop** (:func:`run_load` with ``concurrency``): that many virtual users, each
  sending its next request as soon as the previous one is answered (how a fixed pool
  of workers or a chat UI behaves);
* **open loop** (``rate_rps``): requests start on a fixed schedule whether or not earlier
  ones finished (how independent users behave); this is what overloads a server.

Every run is bounded twice: by ``n_requests`` and by ``max_duration_s``. Targets must
be loopback addresses (127.0.0.0/8, ``localhost``, ``::1``): this tool cannot be pointed
at someone else's server.

Example:
    >>> summarise([0.1, 0.2, 0.3, 0.4], statuses=[200, 200, 200, 429], duration_s=1.0, concurrency=2).ok
    3
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from reference.errors import InputError

__all__ = ["LoadResult", "percentile", "summarise", "run_load", "run_load_sync", "sweep", "find_knee",
           "replicas_needed", "chat_body", "results_table", "check_loopback"]

#: Hard ceilings so a typo cannot turn the tool into a flood.
MAX_REQUESTS = 10_000
MAX_DURATION_S = 600.0
MAX_CONCURRENCY = 512


@dataclass
class LoadResult:
    """What one load run measured. Latencies are of successful (2xx) requests only."""

    concurrency: int
    sent: int
    ok: int
    rejected: int
    errors: int
    duration_s: float
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    rate_rps: float | None = None
    retry_after_s: list[float] = field(default_factory=list)

    @property
    def throughput_rps(self) -> float:
        """Successful requests per second of wall-clock time."""
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def p50_s(self) -> float:
        return percentile(self.latencies_s, 50)

    @property
    def p95_s(self) -> float:
        return percentile(self.latencies_s, 95)

    @property
    def p99_s(self) -> float:
        return percentile(self.latencies_s, 99)

    @property
    def answered(self) -> int:
        """Requests that got any HTTP answer (any status)."""
        return sum(self.statuses.values())

    def row(self) -> dict[str, Any]:
        """One table row: the numbers people compare."""
        return {"concurrency": self.concurrency, "rate_rps": self.rate_rps, "sent": self.sent, "ok": self.ok,
                "429": self.statuses.get(429, 0), "other_errors": self.errors + self.rejected
                - self.statuses.get(429, 0), "throughput_rps": round(self.throughput_rps, 2),
                "p50_ms": round(self.p50_s * 1000, 1), "p95_ms": round(self.p95_s * 1000, 1),
                "p99_ms": round(self.p99_s * 1000, 1)}


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (linear interpolation); ``nan`` for no values.

    Example:
        >>> percentile([1, 2, 3, 4], 50)
        2.5
    """
    if not 0 <= q <= 100:
        raise InputError(f"q must be in [0, 100], got {q}")
    if len(values) == 0:
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=float), q))


def summarise(latencies_s: Sequence[float], *, statuses: Sequence[int], duration_s: float, concurrency: int,
              rate_rps: float | None = None) -> LoadResult:
    """Build a :class:`LoadResult` from per-request latencies and statuses (0 = no answer).

    ``latencies_s[i]`` belongs to ``statuses[i]``; only 2xx latencies are kept.
    """
    if len(latencies_s) != len(statuses):
        raise InputError(f"{len(latencies_s)} latencies but {len(statuses)} statuses")
    ok_lat = [lat for lat, s in zip(latencies_s, statuses, strict=True) if 200 <= s < 300]
    counts = Counter(s for s in statuses if s)
    rejected = sum(n for s, n in counts.items() if s in (429, 503))
    errors = sum(1 for s in statuses if s == 0 or (s >= 300 and s not in (429, 503)))
    return LoadResult(concurrency=concurrency, sent=len(statuses), ok=len(ok_lat), rejected=rejected,
                      errors=errors, duration_s=duration_s, latencies_s=ok_lat, statuses=counts, rate_rps=rate_rps)


def check_loopback(url: str) -> str:
    """Return ``url`` if its host is this machine, else raise :class:`InputError`.

    Example:
        >>> check_loopback("http://127.0.0.1:8000/v1")
        'http://127.0.0.1:8000/v1'
    """
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return url
    try:
        if ipaddress.ip_address(host).is_loopback:
            return url
    except ValueError:
        pass
    raise InputError(f"load tests may only target this machine (127.0.0.1, localhost, ::1), not {host!r}")


def chat_body(prompt: str = "Say hello.", max_tokens: int = 8, model: str = "smollm2-135m-instruct") -> dict:
    """A small chat-completions request body (short generations keep load tests short)."""
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}


def _validate(concurrency: int, n_requests: int, max_duration_s: float, rate_rps: float | None) -> None:
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InputError(f"concurrency must be in [1, {MAX_CONCURRENCY}], got {concurrency}")
    if not 1 <= n_requests <= MAX_REQUESTS:
        raise InputError(f"n_requests must be in [1, {MAX_REQUESTS}], got {n_requests}")
    if not 0 < max_duration_s <= MAX_DURATION_S:
        raise InputError(f"max_duration_s must be in (0, {MAX_DURATION_S:g}], got {max_duration_s}")
    if rate_rps is not None and rate_rps <= 0:
        raise InputError(f"rate_rps must be > 0, got {rate_rps}")


async def run_load(
    url: str,
    body: dict | Callable[[int], dict],
    *,
    concurrency: int = 1,
    n_requests: int = 10,
    max_duration_s: float = 30.0,
    rate_rps: float | None = None,
    timeout_s: float = 30.0,
    headers: dict[str, str] | None = None,
    client_ids: Sequence[str] | None = None,
) -> LoadResult:
    """POST ``body`` to ``url`` ``n_requests`` times and measure what comes back.

    Args:
        url: full endpoint, e.g. ``server.base_url + "/chat/completions"`` (loopback only).
        body: a JSON body, or ``fn(i) -> body`` for request ``i``.
        concurrency: closed loop: number of virtual users. Open loop: the most requests
            in flight at once (a safety cap, not the load).
        n_requests: total requests to send (hard ceiling :data:`MAX_REQUESTS`).
        max_duration_s: stop sending new requests after this long.
        rate_rps: if set, open loop: start a request every ``1 / rate_rps`` seconds.
        timeout_s: per-request client timeout (counts as an error, status 0).
        headers: extra headers (e.g. ``Authorization``).
        client_ids: sent round-robin as ``X-Client-Id`` (to exercise per-client fairness).

    Returns:
        a :class:`LoadResult`; every request sent is counted with its status (0 = no answer).
    """
    import httpx  # noqa: PLC0415

    check_loopback(url)
    _validate(concurrency, n_requests, max_duration_s, rate_rps)
    make = body if callable(body) else (lambda _i: body)
    latencies: list[float] = []
    statuses: list[int] = []
    retry_after: list[float] = []
    counter = iter(range(n_requests))
    start = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:

        async def one(i: int) -> None:
            h = dict(headers or {})
            if client_ids:
                h["X-Client-Id"] = client_ids[i % len(client_ids)]
            t0 = time.perf_counter()
            try:
                r = await client.post(url, json=make(i), headers=h)
                status = r.status_code
                if status == 429 and "retry-after" in r.headers:
                    retry_after.append(float(r.headers["retry-after"]))
            except (httpx.HTTPError, OSError):
                status = 0
            latencies.append(time.perf_counter() - t0)
            statuses.append(status)

        if rate_rps is None:

            async def user() -> None:
                for i in counter:
                    if time.perf_counter() - start > max_duration_s:
                        return
                    await one(i)

            await asyncio.gather(*(user() for _ in range(concurrency)))
        else:
            gate = asyncio.Semaphore(concurrency)
            tasks = []

            async def gated(i: int) -> None:
                async with gate:
                    await one(i)

            for i in range(n_requests):
                due = start + i / rate_rps
                now = time.perf_counter()
                if due - start > max_duration_s:
                    break
                if due > now:
                    await asyncio.sleep(due - now)
                tasks.append(asyncio.create_task(gated(i)))
            await asyncio.gather(*tasks)
    duration = time.perf_counter() - start
    result = summarise(latencies, statuses=statuses, duration_s=duration, concurrency=concurrency, rate_rps=rate_rps)
    result.retry_after_s = retry_after
    return result


def run_load_sync(url: str, body: dict | Callable[[int], dict], **kwargs: Any) -> LoadResult:
    """:func:`run_load` from ordinary code, also inside Jupyter (which already runs a loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_load(url, body, **kwargs))
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(run_load(url, body, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="loadgen")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def sweep(url: str, body: dict | Callable[[int], dict], levels: Sequence[int], *, requests_per_user: int = 3,
          max_duration_s: float = 30.0, progress: bool = True, **kwargs: Any) -> list[LoadResult]:
    """Closed-loop runs at each concurrency in ``levels`` (``requests_per_user * level`` requests each)."""
    from tqdm.auto import tqdm  # noqa: PLC0415

    out = []
    for level in tqdm(list(levels), desc="concurrency", disable=not progress):
        out.append(run_load_sync(url, body, concurrency=level, n_requests=max(1, requests_per_user * level),
                                 max_duration_s=max_duration_s, **kwargs))
    return out


def find_knee(results: Sequence[LoadResult], *, gain: float = 0.10) -> LoadResult:
    """The first run after which more concurrency stops buying throughput.

    Walks the runs in order of concurrency and returns the last one whose throughput
    beat the best so far by more than ``gain`` (10%): past it, extra concurrency only
    adds queueing delay.

    Example:
        >>> rs = [LoadResult(c, 10, 10, 0, 0, 10 / t) for c, t in [(1, 5.0), (2, 9.0), (4, 9.5)]]
        >>> find_knee(rs).concurrency
        2
    """
    if not results:
        raise InputError("find_knee needs at least one LoadResult")
    ordered = sorted(results, key=lambda r: r.concurrency)
    knee, best = ordered[0], ordered[0].throughput_rps
    for r in ordered[1:]:
        if r.throughput_rps > best * (1 + gain):
            knee, best = r, r.throughput_rps
    return knee


def replicas_needed(target_rps: float, per_replica_rps: float, *, headroom: float = 0.3) -> int:
    """Replicas to serve ``target_rps`` when each sustains ``per_replica_rps`` at acceptable latency.

    ``headroom`` keeps each replica below full load (0.3 = run at 70%), which absorbs
    bursts and the loss of one replica.

    Example:
        >>> replicas_needed(1000, 50, headroom=0.2)
        25
    """
    if target_rps <= 0 or per_replica_rps <= 0:
        raise InputError("target_rps and per_replica_rps must be > 0")
    if not 0 <= headroom < 1:
        raise InputError(f"headroom must be in [0, 1), got {headroom}")
    return math.ceil(target_rps / (per_replica_rps * (1 - headroom)))


def results_table(results: Sequence[LoadResult]) -> Any:
    """The runs as a pandas DataFrame, one row each."""
    import pandas as pd  # noqa: PLC0415

    return pd.DataFrame([r.row() for r in results])
