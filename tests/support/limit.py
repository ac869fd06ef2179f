"""YouTube's limit per identity, played by the local server (tests and benchmarks).

Each identity may make ``per_second`` requests a second (a token bucket that holds
``burst`` of them, a second's worth unless told, so a burst of that many passes); past
that it is answered 429 for ``penalty_s``, whatever it asks. Identities are told apart as YouTube tells them: by
their session cookie (``who=NAME``), else by the address they come from: behind a
forwarding HTTP proxy (support/proxy.py) the proxy's, named in its Via header; behind
a SOCKS5 proxy (support/socks_server.py) the loopback address its connections leave from.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from .server import Handler, MediaServer, Reply

_WHO = re.compile(r"(?:^|;\s*)who=([^;]+)")
_VIA = re.compile(r"\S+\s+(\S+)")  # "1.1 proxyname"


@dataclass
class Seen:
    time: float  # monotonic
    who: str
    path: str
    status: int  # 429, or 0 when served


@dataclass
class _Bucket:
    tokens: float
    last: float
    blocked_until: float = 0.0


@dataclass
class IdentityLimit:
    server: MediaServer
    per_second: float
    penalty_s: float
    blocked_forever: set[str] = field(default_factory=set)  # identities answered 429 always
    burst: float | None = None  # requests the bucket holds (None: per_second)
    seen: list[Seen] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    served: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self.server.routes.insert(0, self.route)

    @staticmethod
    def identity_of(handler: Handler) -> str:
        cookie = _WHO.search(handler.headers.get("Cookie", ""))
        if cookie:
            return cookie.group(1)
        via = _VIA.match(handler.headers.get("Via", ""))
        return f"via {via.group(1)}" if via else f"from {handler.client_address[0]}"

    def route(self, handler: Handler) -> Reply | None:
        who = self.identity_of(handler)
        with self._lock:
            now = time.monotonic()
            holds = self.burst if self.burst is not None else self.per_second
            bucket = self._buckets.setdefault(who, _Bucket(holds, now))
            bucket.tokens = min(holds, bucket.tokens + (now - bucket.last) * self.per_second)
            bucket.last = now
            refused = who in self.blocked_forever or now < bucket.blocked_until
            if not refused and bucket.tokens < 1:
                bucket.blocked_until = now + self.penalty_s
                refused = True
            if not refused:
                bucket.tokens -= 1
            self.seen.append(Seen(now, who, handler.url_path, 429 if refused else 0))
            (self.refused if refused else self.served)[who] += 1
        return Reply(429, b"Too Many Requests") if refused else None

    def reset(self) -> None:
        """Forget what it saw and every identity's bucket (a benchmark's next scenario)."""
        with self._lock:
            self.seen.clear()
            self.refused.clear()
            self.served.clear()
            self._buckets.clear()

    def first_requests(self, who: str) -> list[float]:
        """When each clip (path) was first asked for by ``who``: the clip starts the server saw."""
        firsts: dict[str, float] = {}
        with self._lock:
            for seen in self.seen:
                if seen.who == who:
                    firsts.setdefault(seen.path, seen.time)
        return sorted(firsts.values())
