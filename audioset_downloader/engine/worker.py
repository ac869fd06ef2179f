"""One clip, start to finish: resolve the segment's media, cut the window, report.

``ClipWorker`` is a picklable callable over plain data (Settings, CsvOutputs,
Segment): the local pool calls it in threads, and a distributed engine can ship it
to another process unchanged. It never writes manifests; it returns a ClipResult
and the caller records it.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from audioset_downloader.errors import BackendsFailed, ClipFailure, FailureReason, Interrupted, ThrottledError
from audioset_downloader.fetch.backends.base import MediaSource
from audioset_downloader.fetch.cutter import SHORT_TOLERANCE_S, CutResult, cut_clip, extension_for, find_ffmpeg
from audioset_downloader.fetch.failover import BackendChain
from audioset_downloader.fetch.measure import ClipMeasures, silent_detail
from audioset_downloader.fetch.mirrors.source import BACKEND as MIRRORED
from audioset_downloader.fetch.mirrors.source import Mirrors
from audioset_downloader.fetch.reachability import Reachability
from audioset_downloader.fetch.socks import relayed
from audioset_downloader.filesystems import without_secrets
from audioset_downloader.inputs.cookies import cookie_header
from audioset_downloader.inputs.identities import Identity
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.reuse import BACKEND as REUSED
from audioset_downloader.outputs.reuse import ReuseIndex, SharedWindows, WindowClaims
from audioset_downloader.outputs.storage import Store
from audioset_downloader.outputs.work import WorkPlan
from audioset_downloader.pacing.book import Book, duration_words
from audioset_downloader.pacing.learned import new_book
from audioset_downloader.processes import process_running

log = logging.getLogger(__name__)

# Resolved sources are reused when a video appears again (another window of it):
# a few thousand entries, and younger than YouTube's signed URLs, which expire after hours.
SOURCE_CACHE_SIZE = 4096
SOURCE_CACHE_TTL_S = 1800.0
CLAIM_POLL_S = 0.5  # how often a window another list of the run is fetching is looked at again

# Retried within the run, with backoff. Rate limiting cools the identity instead (see
# pacing/book.py); a backend or ffmpeg error will not mend in seconds: a rerun retries those.
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
    identity: str = ""  # the identity its last attempt went out through
    measures: ClipMeasures | None = None  # what the written clip holds (fetch/measure.py)
    member: str = ""  # its name in the shard ``file`` names, when a shard of work packed it (outputs/work.py)
    mirror: str = ""  # the mirror (URL@revision) whose copy it was written from (fetch/mirrors/)
    mirror_bytes: int = 0  # what reading that copy cost

    @property
    def written(self) -> bool:
        return self.file is not None


class ClipWorker:
    def __init__(self, settings: Settings, outputs: CsvOutputs, book: Book | None = None,
                 reuse: ReuseIndex | None = None, shared: SharedWindows | None = None,
                 mirrors: Mirrors | None = None) -> None:
        self.settings = settings
        self.outputs = outputs
        self.reuse = reuse  # clips already on disk, taken instead of fetched (outputs/reuse.py)
        self.mirrors = mirrors  # public copies of this list's windows (fetch/mirrors/)
        self.shared = shared  # windows the run's other CSV processes fetch too (outputs/reuse.py)
        # The run's pacing book, shared with every other worker of the run (pacing/book.py).
        self.book: Book = book if book is not None else new_book(settings)
        self._identities = settings.shared_identities  # the book's first identities, in its order
        self._names: dict[int, str] = {}  # the book's other identities: machines' own (PER_MACHINE_IDENTITY)
        self._seen_as: dict[int, Settings] = {}
        self.machine: str | None = None  # the Dask worker machine this runs on, with PER_MACHINE_IDENTITY
        self._extension = extension_for(settings.clip_format)
        self._chains: dict[int, BackendChain] = {}
        self.reachability = Reachability(  # named as configured
            settings.for_identity(self._identities[0]) if self._identities else settings)
        self._sources: OrderedDict[tuple[int, str], tuple[float, MediaSource]] = OrderedDict()
        self._lock = threading.Lock()
        # On the driver, with an OUTPUT_DIR on object storage: the plans of the run's shards of work, numbered.
        self.plans: Iterator[WorkPlan] | None = None

    def writing_to(self, outputs: CsvOutputs) -> ClipWorker:
        """This worker (its backends, caches and book) cutting its clips into ``outputs``: a shard's scratch."""
        clone = object.__new__(ClipWorker)
        clone.__dict__.update(self.__dict__, outputs=outputs)
        return clone

    def __getstate__(self) -> dict:
        # The backends, caches and lock stay behind; each process builds its own. The book
        # travels: it is a proxy for the one the whole run shares.
        # STORAGE_OPTIONS' credentials stay on the driver: a worker takes its own from its environment.
        # The mirrors' copies do not travel with it: a Dask task carries its shard's own (Mirrors.only).
        return {"settings": replace(self.settings, storage_options=without_secrets(self.settings.storage_options)),
                "outputs": self.outputs, "book": self.book, "reuse": self.reuse, "shared": self.shared}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["settings"], state["outputs"], state["book"], state["reuse"],  # type: ignore[misc]
                      state.get("shared"))

    def held(self, segment: Segment) -> bool:
        """Does a mirror hold a copy of this window? (Such windows go to a pool of their own.)"""
        return self.mirrors is not None and self.mirrors.holds(segment)

    @property
    def chain(self) -> BackendChain:
        """The first identity's backends (what provenance names); with machine identities only, the settings'."""
        return self.chain_for(0) if self._identities else BackendChain(relayed(self.settings))

    def chain_for(self, index: int) -> BackendChain:
        """Identity ``index``'s backends: built with its proxy and cookies, and learning on their own."""
        with self._lock:
            if index not in self._chains:
                self._chains[index] = BackendChain(self._seen_as_for(index))
            return self._chains[index]

    def _identity(self, index: int) -> Identity:
        """Identity ``index`` of the book: a shared one, or a machine's own address (no proxy, no cookies)."""
        return self._identities[index] if index < len(self._identities) else Identity(self._names[index])

    def _seen_as_for(self, index: int) -> Settings:
        """The settings identity ``index``'s requests go out with: its proxy (through a relay) and cookies."""
        if index not in self._seen_as:
            self._seen_as[index] = relayed(self.settings.for_identity(self._identity(index)))
        return self._seen_as[index]

    def __call__(self, segment: Segment, stop: threading.Event) -> ClipResult:
        """One clip from wherever holds it: on disk already, a mirror's copy, else YouTube."""
        return self.from_copies(segment, stop) or self.from_youtube(segment, stop, reuse_checked=True)

    def from_copies(self, segment: Segment, stop: threading.Event) -> ClipResult | None:
        """The clip taken from a clip on disk or from a mirror's copy; None if neither holds a copy that passes.
        No request goes to YouTube, so no identity's turn is taken."""
        started = time.monotonic()
        if self.reuse is not None and (reused := self._reused(segment, started, self.reuse)) is not None:
            return reused
        if self.mirrors is None:
            return None
        try:
            taken = self.mirrors.take(segment, self.outputs.clip_path(segment.stem, self._extension), self.settings,
                                      stop)
        except Interrupted:
            return ClipResult(segment, interrupted=True)
        except ClipFailure as failure:  # SILENT_CLIPS = "drop": the copy is the window, and it is silent
            return ClipResult(segment, reason=failure.reason, detail=failure.detail, backend=MIRRORED,
                              seconds=time.monotonic() - started)
        if taken is None:
            return None
        if segment.open_end and taken.cut.seconds < segment.duration - SHORT_TOLERANCE_S:
            segment = segment._replace(end_ms=segment.start_ms + round(taken.cut.seconds * 1000))
        return ClipResult(segment, file=self.outputs.relative_clip(segment.stem, self._extension),
                          size=taken.cut.size, seconds=time.monotonic() - started, backend=MIRRORED,
                          measures=taken.cut.measures, mirror=taken.mirror, mirror_bytes=taken.bytes_read)

    def from_youtube(self, segment: Segment, stop: threading.Event, reuse_checked: bool = False) -> ClipResult:
        """Fetch one clip through the backends, retrying passing trouble; never raises for the clip's own failure."""
        started = time.monotonic()
        if not reuse_checked and self.reuse is not None and \
                (reused := self._reused(segment, started, self.reuse)) is not None:
            return reused  # no request leaves the machine, so no identity's turn is taken
        if self.shared is not None and self.shared.claimed(segment) and \
                (owner := self.shared.claims.claim(segment.key, self.outputs.name, os.getpid())):
            taken = self._from_another_list(segment, owner, started, stop, self.shared.claims)
            if taken is not None:
                return taken
        attempts = retries = 0
        while (index := self._turn(stop)) is not None:
            name = self._identity(index).name
            attempts += 1
            try:
                result = self._attempt(segment, index, stop)
            except Interrupted:
                self.book.missed(index)
                break
            except ClipFailure as failure:
                if stop.is_set():
                    self.book.missed(index)
                    break
                if failure.reason in (FailureReason.RATE_LIMITED, FailureReason.BOT_CHECK):
                    # This identity is blocked; the clip goes on through another.
                    self._cool(index, segment, failure.reason is FailureReason.BOT_CHECK)
                    continue
                if failure.reason in (FailureReason.NETWORK, FailureReason.TIMEOUT):
                    self.book.missed(index)
                else:
                    self.reachability.answered()
                    self.book.answered(index)
                if self.reachability.no_network(failure):
                    log.info("%s: left for the next run: cannot reach %s: %s", segment.ytid, self.reachability.host,
                             failure.detail)
                    return ClipResult(segment, deferred=True, attempts=attempts)
                if isinstance(failure, BackendsFailed) and not failure.proven:
                    if self.chain_for(index).await_verdict(stop):
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
                                  seconds=time.monotonic() - started, attempts=attempts, identity=name)
            self.book.answered(index)
            self.reachability.answered()
            if segment.open_end and result.cut.seconds < segment.duration - SHORT_TOLERANCE_S:
                # The video ends inside the window: the clip is recorded with the end it really has.
                segment = segment._replace(end_ms=segment.start_ms + round(result.cut.seconds * 1000))
            return ClipResult(segment, file=self.outputs.relative_clip(segment.stem, self._extension),
                              size=result.cut.size, seconds=time.monotonic() - started, attempts=attempts,
                              backend=result.backend, identity=name, measures=result.cut.measures)
        return ClipResult(segment, interrupted=True, attempts=attempts)

    def _from_another_list(self, segment: Segment, owner: tuple[str, int], started: float, stop: threading.Event,
                           claims: WindowClaims) -> ClipResult | None:
        """Another CSV process of the run is fetching this window: wait for it, then take its clip from disk
        or its failure for good. None: fetch it here (the owner left it, or died)."""
        log.info("%s: %s is fetching this window too; waiting for it", segment.ytid, owner[0])
        while not stop.is_set():
            settled, outcome = claims.outcome(segment.key)
            if settled and outcome is None:
                break
            if settled and outcome is not None and outcome.candidate is None:
                reason = FailureReason.from_label(outcome.reason)
                assert reason is not None
                return ClipResult(segment, reason=reason, detail=f"{outcome.detail} (found by {owner[0]}, this run)",
                                  seconds=time.monotonic() - started)
            if settled and outcome is not None and outcome.candidate is not None:
                candidate = outcome.candidate
                if candidate.store is not None:  # it came without credentials (Store's pickle): this run's own
                    candidate = replace(candidate, store=Store(candidate.store.url, self.settings.storage_options))
                index = ReuseIndex(self.settings, {(segment.ytid, segment.start_ms): [candidate]})
                return self._reused(segment, started, index)
            if not process_running(owner[1]):
                break
            stop.wait(CLAIM_POLL_S)
        else:
            return ClipResult(segment, interrupted=True)
        claims.claim(segment.key, self.outputs.name, os.getpid(), take_over=True)  # the others wait on this
        return None

    def _reused(self, segment: Segment, started: float, index: ReuseIndex) -> ClipResult | None:
        final = self.outputs.clip_path(segment.stem, self._extension)
        taken = index.take(segment, final, find_ffmpeg(self.settings.ffmpeg_binary))
        if taken is None:
            return None
        if self.settings.silent_clips == "drop" and taken.measures is not None and taken.measures.silent:
            final.unlink()
            return ClipResult(segment, reason=FailureReason.SILENT, detail=silent_detail(taken.measures),
                              backend=REUSED)
        if taken.end_ms != segment.end_ms:  # a window with an open end, cut by its video's end before
            segment = segment._replace(end_ms=taken.end_ms)
        return ClipResult(segment, file=self.outputs.relative_clip(segment.stem, self._extension),
                          size=final.stat().st_size, seconds=time.monotonic() - started, backend=REUSED,
                          measures=taken.measures)

    def _turn(self, stop: threading.Event) -> int | None:
        """Wait for a turn from the book: the index of the identity to go through, None when stopping."""
        while not stop.is_set():
            turn = self.book.take(self.machine)
            if turn.index >= 0:
                self._names[turn.index] = turn.name
            if turn.given_up:
                raise ThrottledError(
                    f"every identity has been refused as rate-limited for over {self.settings.max_backoff_minutes:g} "
                    "minutes; wait an hour or more, add identities (IDENTITIES) or lower REQUESTS_PER_MINUTE, "
                    "then rerun: finished clips are kept")
            if turn.index < 0:
                stop.wait(turn.wait_s)
                continue
            if turn.wait_s <= 0:
                return turn.index
            if stop.wait(turn.wait_s):
                return None
            if self.book.confirm(turn.index, turn.blocks):
                return turn.index
            # blocked while this turn waited: another turn, most likely through another identity
        return None

    def _cool(self, index: int, segment: Segment, bot_check: bool) -> None:
        cooling = self.book.limited(index, bot_check)
        what = "a bot check" if bot_check else "rate limited"
        if cooling is None:  # already cooling: a clip that was under way when the block came
            log.info("%s: %s through identity %s, which is blocked; tried again through another",
                     segment.ytid, what, self._identity(index).name)
            return
        pace = f"; its pace is now {cooling.per_minute:.1f} clips/min" if cooling.per_minute else ""
        log.warning("%s through identity %s: blocked; its next probe goes in %s (%s)%s%s",
                    "bot check (\"confirm you're not a bot\")" if cooling.bot_check else "rate limited (429)",
                    cooling.name, duration_words(cooling.cool_s), cooling.why, pace,
                    "; every identity is blocked, so the run waits" if cooling.all_cooling else "")

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

    def _attempt(self, segment: Segment, index: int, stop: threading.Event) -> _Cut:
        """One try through identity ``index``: its proxy and cookies for every request."""
        final = self.outputs.clip_path(segment.stem, self._extension)
        seen_as = self._seen_as_for(index)
        key = (index, segment.ytid)  # a source carries its identity's cookies: never lent to another

        def cut(source: MediaSource) -> _Cut:
            return _Cut(cut_clip(source, segment, seen_as, final, stop), source.backend)

        cached = self._cached(key)
        if cached is not None:
            try:
                return cut(cached)
            except ClipFailure:
                self._forget(key)  # the URL may have expired: resolve afresh

        def remember_and_cut(source: MediaSource) -> _Cut:
            log.debug("%s: %s via %s", segment.ytid, source.description, source.backend)
            source = _with_cookies(source, seen_as.cookies_file)
            self._remember(key, source)
            try:
                return cut(source)
            except ClipFailure:
                self._forget(key)
                raise

        return self.chain_for(index).attempt(segment, remember_and_cut, stop)

    def _cached(self, key: tuple[int, str]) -> MediaSource | None:
        with self._lock:
            cached = self._sources.get(key)
            if cached is None or time.monotonic() - cached[0] >= SOURCE_CACHE_TTL_S:
                return None
            self._sources.move_to_end(key)
            return cached[1]

    def _remember(self, key: tuple[int, str], source: MediaSource) -> None:
        with self._lock:
            self._sources[key] = (time.monotonic(), source)
            if len(self._sources) > SOURCE_CACHE_SIZE:
                self._sources.popitem(last=False)

    def _forget(self, key: tuple[int, str]) -> None:
        with self._lock:
            self._sources.pop(key, None)

    def _backoff(self, retry: int) -> float:
        """Exponential, with jitter so that workers failing together do not retry together."""
        return self.settings.retry_backoff * 2 ** (retry - 1) * random.uniform(0.5, 1.5)


def _with_cookies(source: MediaSource, cookies_file: Path | None) -> MediaSource:
    """Add the identity's Cookie header for the media URL, unless the backend set one."""
    if cookies_file is None or any(name.lower() == "cookie" for name, _ in source.headers):
        return source
    value = cookie_header(cookies_file, source.url)
    return replace(source, headers=(*source.headers, ("Cookie", value))) if value else source
