"""Failover between backends: BACKEND first, then FALLBACK_BACKENDS, each used while it works.

A backend that fails for reasons of its own (``backend_error``: HTTP 400/403 from the
player API or the media, a cipher it cannot read, an answer it cannot parse) hands
the clip to the next backend at once. A video-level reason (``unavailable``,
``private``, ...) is the video's, not the backend's: it is final and does not fall
through. A backend that fails BACKEND_STRIKES clips in a row is skipped for the rest
of the run: every failing request still counts against YouTube's limit, so a dead
backend is not paid for again. Until a backend has worked once, at most
BACKEND_STRIKES clips try it at the same time, so that eight workers do not all pay
for a backend that is broken. The run stops only when every backend is broken.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from audioset_downloader.errors import (
    BackendBrokenError,
    BackendsFailed,
    BackendUnavailableError,
    ClipFailure,
    FailureReason,
    Interrupted,
)
from audioset_downloader.fetch.backends import load_backend
from audioset_downloader.fetch.backends.base import Backend, MediaSource
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings

log = logging.getLogger(__name__)

BACKEND_STRIKES = 3
WAIT_S = 0.5  # how often a worker waiting for a trial slot looks at the stop flag

Result = TypeVar("Result")


@dataclass
class _Standing:
    """What the run has learnt of one backend so far."""

    backend: Backend
    strikes: int = 0  # backend_error clips in a row
    proven: bool = False  # has worked at least once in this run
    trying: int = 0  # clips using it right now
    broken: bool = False
    last_error: str = ""

    @property
    def trusted(self) -> bool:
        return self.proven and self.strikes == 0


class BackendChain:
    """The backends of a run in the order tried, and what the run has learnt of each."""

    def __init__(self, settings: Settings) -> None:
        self._standings: list[_Standing] = []
        for index, name in enumerate(settings.backend_chain):
            try:
                backend = load_backend(settings, name)
            except BackendUnavailableError as exc:
                if index == 0:
                    raise  # BACKEND itself: the user asked for it
                log.info("fallback backend %s is left out: %s", name, exc)
                continue
            self._standings.append(_Standing(backend))
        self._changed = threading.Condition()

    @property
    def backends(self) -> tuple[Backend, ...]:
        return tuple(standing.backend for standing in self._standings)

    def attempt(self, segment: Segment, use: Callable[[MediaSource], Result], stop: threading.Event) -> Result:
        """Resolve ``segment`` with the first backend that works and hand its source to ``use``.

        ``use`` (the cut) runs inside the failover: a media URL refused with a
        ``backend_error`` (HTTP 403) is the backend's failure too.
        """
        errors: list[str] = []
        for standing in self._standings:
            if not self._admit(standing, stop):
                continue
            try:
                source = standing.backend.resolve(segment)
                result = use(replace(source, backend=standing.backend.name))
            except ClipFailure as failure:
                self._settle(standing, failure.reason, failure.detail)
                if failure.reason is not FailureReason.BACKEND_ERROR:
                    raise
                errors.append(f"{standing.backend.name}: {failure.detail}")
                continue
            except BaseException:
                self._settle(standing, None, "")
                raise
            self._settle(standing, None, "", worked=True)
            return result
        with self._changed:
            if all(standing.broken for standing in self._standings):
                raise BackendBrokenError(self._all_broken_message())
            proven = any(standing.proven for standing in self._standings)
        raise BackendsFailed("; ".join(errors), proven)  # some backend was admitted: one is not broken

    def await_verdict(self, stop: threading.Event) -> bool:
        """After a clip every backend failed before any had worked: wait for the clips in flight.

        True once a backend has worked (the clip is worth one more try, and a second
        failure is then the clip's); False when nothing else is trying a backend or the
        run stops, and the clip is left for the next run.
        """
        with self._changed:
            while not any(standing.proven for standing in self._standings):
                if stop.is_set() or not any(standing.trying for standing in self._standings):
                    return False
                self._changed.wait(WAIT_S)
            return True

    def _admit(self, standing: _Standing, stop: threading.Event) -> bool:
        """Take a place to try this backend; False once it is broken."""
        with self._changed:
            while not standing.broken:
                if standing.trusted or standing.trying < BACKEND_STRIKES - standing.strikes:
                    standing.trying += 1
                    return True
                if stop.is_set():
                    raise Interrupted()
                self._changed.wait(WAIT_S)
            return False

    def _settle(self, standing: _Standing, reason: FailureReason | None, detail: str, worked: bool = False) -> None:
        """Learn from one use of a backend: a strike, a proof that it works, or nothing."""
        with self._changed:
            standing.trying -= 1
            if reason is FailureReason.BACKEND_ERROR:
                standing.strikes += 1
                standing.last_error = detail
                if standing.strikes >= BACKEND_STRIKES and not standing.broken:
                    standing.broken = True
                    log.warning("backend %s failed %d clips in a row (%s); skipped for the rest of the run. Fix: %s",
                                standing.backend.name, standing.strikes, detail, standing.backend.fix_hint)
            elif worked or (reason is not None and reason.permanent):
                # It understood YouTube: the clip was written, or the video itself is gone.
                standing.strikes = 0
                standing.proven = True
            self._changed.notify_all()

    def _all_broken_message(self) -> str:
        parts = [f"{s.backend.name} ({s.last_error}; fix: {s.backend.fix_hint})" for s in self._standings]
        return ("every backend failed clip after clip for reasons of its own: " + "; ".join(parts)
                + ". Nothing was marked failed: rerun once fixed")
