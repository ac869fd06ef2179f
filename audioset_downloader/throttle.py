"""Pacing requests: one throttle per process, shared by all its workers.

When the source says "rate limited" (HTTP 429, or YouTube's "confirm you're not
a bot"), going on only burns through the list, so every worker pauses, with a
pause that doubles while the limiting goes on. After MAX_BACKOFF_MINUTES of
continuous limiting the run gives up cleanly. REQUESTS_PER_MINUTE spaces the
starts of clip attempts evenly, for users who prefer never to be limited.
"""

from __future__ import annotations

import logging
import threading
import time

from .errors import ThrottledError

log = logging.getLogger(__name__)

MAX_PAUSE_S = 600.0


class Throttle:
    def __init__(self, first_pause_s: float, max_throttled_s: float, requests_per_minute: float | None) -> None:
        self._first_pause_s = first_pause_s
        self._max_throttled_s = max_throttled_s
        self._interval_s = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._lock = threading.Lock()
        self._pause_s = 0.0
        self._paused_until = 0.0
        self._limited_since: float | None = None
        self._next_start = 0.0

    def wait_turn(self, stop: threading.Event) -> bool:
        """Block until a new attempt may start; False when the run is stopping."""
        while not stop.is_set():
            with self._lock:
                if self._limited_since is not None and time.monotonic() - self._limited_since > self._max_throttled_s:
                    raise ThrottledError(
                        f"the source has refused requests as rate-limited for over "
                        f"{self._max_throttled_s / 60:g} minutes; wait a few hours, use another address or "
                        "slow down (REQUESTS_PER_MINUTE), then rerun: finished clips are kept"
                    )
                now = time.monotonic()
                ready_at = max(self._paused_until, self._next_start)
                if now >= ready_at:
                    self._next_start = now + self._interval_s
                    return True
            stop.wait(min(ready_at - now, 1.0))
        return False

    def limited(self) -> None:
        """A request was refused as rate-limited: pause every worker, longer each time."""
        with self._lock:
            now = time.monotonic()
            if now < self._paused_until:
                return  # already pausing: one 429 storm is one step of backoff
            self._pause_s = min(MAX_PAUSE_S, self._pause_s * 2 if self._pause_s else self._first_pause_s)
            self._paused_until = now + self._pause_s
            if self._limited_since is None:
                self._limited_since = now
            log.warning("rate limited: all workers pause for %.1f s", self._pause_s)

    def succeeded(self) -> None:
        with self._lock:
            if self._limited_since is not None:
                log.info("no longer rate limited")
            self._limited_since = None
            self._pause_s = 0.0
