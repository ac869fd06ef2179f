"""One clip, start to finish: resolve the segment's media, cut the window, report.

``ClipWorker`` is a picklable callable over plain data (Settings, CsvOutputs,
Segment): the local pool calls it in threads, and a distributed engine can ship it
to another process unchanged. It never writes manifests; it returns a ClipResult
and the caller records it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

from .backends.base import MediaSource
from .cookies import cookie_header
from .cutter import CutResult, cut_clip, extension_for
from .errors import BackendsFailed, ClipFailure, FailureReason, Interrupted
from .failover import BackendChain
from .layout import CsvOutputs
from .reachability import Reachability
from .segments import Segment
from .settings import Settings
from .throttle import Throttle

log = logging.getLogger(__name__)

# Resolved sources are reused when a video appears again (another window of it):
# a few thousand entries, and younger than YouTube's signed URLs, which expire after hours.
SOURCE_CACHE_SIZE = 4096
SOURCE_CACHE_TTL_S = 1800.0

# Retried within the run, with backoff. Rate limiting is waited out instead (see
# throttle.py); a backend or ffmpeg error will not mend in seconds: a rerun retries those.
RETRIED_NOW = frozenset({FailureReason.NETWORK, FailureReason.TIMEOUT, FailureReason.SERVER_ERROR})


@dataclass(frozen=True)
class _Cut:
    cut: CutResult
    backend: str  # the backend whose source it was cut from


@dataclass(frozen=True)
class ClipResult:
    segment: Segment
    file: str | None = None  # relative to OUTPUT_DIR, when written
    reason: FailureReason | None = None
    detail: str = ""
    size: int = 0
    seconds: float = 0.0  # wall time spent on the clip
    attempts: int = 0
    interrupted: bool = False
    deferred: bool = False  # no backend had worked yet, or the host could not be reached: left for the next run
    backend: str = ""  # the backend that resolved the written clip

    @property
    def written(self) -> bool:
        return self.file is not None


class ClipWorker:
    def __init__(self, settings: Settings, outputs: CsvOutputs) -> None:
        self.settings = settings
        self.outputs = outputs
        self._extension = extension_for(settings.clip_format)
        self._chain: BackendChain | None = None
        self._throttle = Throttle(settings.retry_backoff, settings.max_backoff_minutes * 60,
                                  settings.requests_per_minute)
        self.reachability = Reachability(settings)
        self._sources: OrderedDict[str, tuple[float, MediaSource]] = OrderedDict()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        # The backends, throttle and lock stay behind; each process builds its own.
        return {"settings": self.settings, "outputs": self.outputs}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["settings"], state["outputs"])  # type: ignore[misc]

    @property
    def chain(self) -> BackendChain:
        with self._lock:
            if self._chain is None:
                self._chain = BackendChain(self.settings)
            return self._chain

    def __call__(self, segment: Segment, stop: threading.Event) -> ClipResult:
        """Fetch one clip, retrying passing trouble; never raises for the clip's own failure."""
        started = time.monotonic()
        attempts = retries = 0
        while self._throttle.wait_turn(stop):
            attempts += 1
            try:
                result = self._attempt(segment, stop)
            except Interrupted:
                break
            except ClipFailure as failure:
                if stop.is_set():
                    break
                if self.reachability.no_network(failure):
                    log.info("%s: left for the next run: cannot reach %s: %s", segment.ytid, self.reachability.host,
                             failure.detail)
                    return ClipResult(segment, deferred=True, attempts=attempts)
                if failure.reason not in (FailureReason.NETWORK, FailureReason.TIMEOUT):
                    self.reachability.answered()
                if failure.reason is FailureReason.RATE_LIMITED:
                    self._throttle.limited()  # every worker pauses; this clip tries again after
                    continue
                if isinstance(failure, BackendsFailed) and not failure.proven:
                    if self.chain.await_verdict(stop):
                        continue  # a backend has worked since: now a failure says something
                    log.info("%s: left for the next run: %s", segment.ytid, failure.detail)
                    return ClipResult(segment, deferred=True, attempts=attempts)
                if failure.reason in RETRIED_NOW and retries < self.settings.retries:
                    retries += 1
                    log.info("%s: %s (%s); retry %d of %d", segment.ytid, failure.reason, failure.detail,
                             retries, self.settings.retries)
                    stop.wait(self._backoff(retries))
                    continue
                return ClipResult(segment, reason=failure.reason, detail=failure.detail,
                                  seconds=time.monotonic() - started, attempts=attempts)
            self._throttle.succeeded()
            self.reachability.answered()
            return ClipResult(segment, file=self.outputs.relative_clip(segment.stem, self._extension),
                              size=result.cut.size, seconds=time.monotonic() - started, attempts=attempts,
                              backend=result.backend)
        return ClipResult(segment, interrupted=True, attempts=attempts)

    def finished_since(self, segment: Segment, since: float) -> ClipResult | None:
        """The segment's clip, if one was put in place at or after ``since`` (epoch seconds).

        A clip only ever appears under its final name complete, so one written during
        this run by an attempt whose result was lost (a worker that died) is kept."""
        final = self.outputs.clip_path(segment.stem, self._extension)
        try:
            status = final.stat()
        except FileNotFoundError:
            return None
        if status.st_mtime < since:
            return None  # from an earlier run without a row: fetched again, as the local engine does
        return ClipResult(segment, file=self.outputs.relative_clip(segment.stem, self._extension),
                          size=status.st_size)

    def _attempt(self, segment: Segment, stop: threading.Event) -> _Cut:
        final = self.outputs.clip_path(segment.stem, self._extension)

        def cut(source: MediaSource) -> _Cut:
            return _Cut(cut_clip(source, segment, self.settings, final, stop), source.backend)

        cached = self._cached(segment.ytid)
        if cached is not None:
            try:
                return cut(cached)
            except ClipFailure:
                self._forget(segment.ytid)  # the URL may have expired: resolve afresh

        def remember_and_cut(source: MediaSource) -> _Cut:
            log.debug("%s: %s via %s", segment.ytid, source.description, source.backend)
            source = self._with_cookies(source)
            self._remember(segment.ytid, source)
            try:
                return cut(source)
            except ClipFailure:
                self._forget(segment.ytid)
                raise

        return self.chain.attempt(segment, remember_and_cut, stop)

    def _cached(self, ytid: str) -> MediaSource | None:
        with self._lock:
            cached = self._sources.get(ytid)
            if cached is None or time.monotonic() - cached[0] >= SOURCE_CACHE_TTL_S:
                return None
            self._sources.move_to_end(ytid)
            return cached[1]

    def _remember(self, ytid: str, source: MediaSource) -> None:
        with self._lock:
            self._sources[ytid] = (time.monotonic(), source)
            if len(self._sources) > SOURCE_CACHE_SIZE:
                self._sources.popitem(last=False)

    def _with_cookies(self, source: MediaSource) -> MediaSource:
        """Add COOKIES_FILE's Cookie header for the media URL, unless the backend set one."""
        if self.settings.cookies_file is None or any(name.lower() == "cookie" for name, _ in source.headers):
            return source
        value = cookie_header(self.settings.cookies_file, source.url)
        return replace(source, headers=(*source.headers, ("Cookie", value))) if value else source

    def _forget(self, ytid: str) -> None:
        with self._lock:
            self._sources.pop(ytid, None)

    def _backoff(self, retry: int) -> float:
        """Exponential, with jitter so that workers failing together do not retry together."""
        return self.settings.retry_backoff * 2 ** (retry - 1) * random.uniform(0.5, 1.5)
