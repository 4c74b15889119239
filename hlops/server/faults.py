"""Test-only knobs: seeded fault injection, a per-key rate limit, request statistics and a
request log. All are off unless ``hlops serve`` is started with the matching flags (or,
with ``--test-endpoints``, configured at runtime through ``POST /_test/faults``).

They exist so that other tests can prove the client copes with a flaky, throttling server
and can count the calls it makes; nothing here is meant for production use.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hlops.server.config import FaultConfig

# Not counted as writes: the POSTs that only read (a body too big for a query string), and
# the last-applied index, a client's note beside a dataset that changes neither its config
# nor its data (docs/api.md)
NOT_WRITES = frozenset({
    "POST /datasets/{dataset_id}/digest/rows",
    "POST /datasets/{dataset_id}/digest/keys",
    "PUT /datasets/{dataset_id}/last_applied/index",
})


@dataclass(frozen=True)
class Fault:
    """What to answer instead of (``phase == "before"``) or after processing a request."""

    status: int
    phase: str
    retry_after: int | None  # seconds, for 429s


class FaultInjector:
    """Decides, request by request, whether to inject a fault. Counted requests are
    numbered from 1 (since start or :meth:`reset`); the draw sequence is repeatable for a
    given seed and request order."""

    def __init__(self, config: FaultConfig):
        self._lock = threading.Lock()
        self.configure(config)

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config.checked()
            self._rng = random.Random(config.seed)
            self._n = 0

    def reset(self) -> None:
        self.configure(self.config)

    def draw(self) -> Fault | None:
        with self._lock:
            self._n += 1
            cfg = self.config
            if not cfg.active:
                return None
            hit = self._n in cfg.fail_nth
            if cfg.rate > 0:
                # always draw, so whether request n faults does not depend on fail_nth
                hit = (self._rng.random() < cfg.rate) or hit
            if not hit:
                return None
            status = cfg.statuses[0] if len(cfg.statuses) == 1 else self._rng.choice(cfg.statuses)
            return Fault(status, cfg.phase, cfg.retry_after if status == 429 else None)


class RateLimiter:
    """A token bucket per API key digest: ``rate`` requests per second, bursts of ``rate``."""

    def __init__(self, rate: float | None):
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, who: str) -> int | None:
        """``None`` when the request may go ahead, else the seconds to wait (>= 1)."""
        if not self.rate:
            return None
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who, (self.rate, now))
            tokens = min(self.rate, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[who] = (tokens - 1, now)
                return None
            self._buckets[who] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.rate))


class Stats:
    """Counts of counted requests (everything but ``/_test/*``, ``/health`` and the docs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.total = 0
            self.writes = 0
            self.by_method: Counter[str] = Counter()
            self.by_path: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()

    def record(self, method: str, template: str, status: int) -> None:
        with self._lock:
            self.total += 1
            if method != "GET" and f"{method} {template}" not in NOT_WRITES:
                self.writes += 1
            self.by_method[method] += 1
            self.by_path[f"{method} {template}"] += 1
            self.by_status[str(status)] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "total": self.total,
                "writes": self.writes,
                "by_method": dict(self.by_method),
                "by_path": dict(self.by_path),
                "by_status": dict(self.by_status),
            }


class RequestLog:
    """JSON lines: ``{time, org, method, path, status}`` -- never a key, never a body."""

    def __init__(self, path: Path | None):
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8", buffering=1) if path else None  # noqa: SIM115

    def write(self, org: int | None, method: str, path: str, status: int) -> None:
        if self._file is None:
            return
        line = json.dumps({"time": round(time.time(), 6), "org": org, "method": method, "path": path, "status": status})
        with self._lock:
            self._file.write(line + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
