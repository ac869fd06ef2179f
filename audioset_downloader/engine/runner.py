"""Running one CSV: plan the segments, run the pool, record each result.

This module only orchestrates; reading, resolving, cutting and recording belong
to their own modules. Data flows one way: segments -> worker -> ledger.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path

from audioset_downloader.atomic import write_atomically
from audioset_downloader.engine.mirror_audit import audit_mirrors
from audioset_downloader.engine.pool import Beside, run_bounded
from audioset_downloader.engine.progress import BarFriendlyHandler, ProgressBar, duration, show_progress
from audioset_downloader.engine.remote import numbered_shards, run_work_shards
from audioset_downloader.engine.worker import ClipResult, ClipWorker
from audioset_downloader.errors import (
    ConfigError,
    FailureReason,
    LayoutMismatch,
    OutputLockedError,
    OutputUnwritableError,
)
from audioset_downloader.fetch.cutter import find_ffmpeg
from audioset_downloader.fetch.mirrors import open_mirrors
from audioset_downloader.fetch.mirrors.source import BACKEND as MIRRORED
from audioset_downloader.fetch.mirrors.source import Mirrors, remember_throughput
from audioset_downloader.inputs.labels import Ontology, ontology_path
from audioset_downloader.inputs.lists import AUDIOSET, NotesOf, audioset_windows, label_filter, list_format, read_list
from audioset_downloader.inputs.segments import InvalidRow, Segment, shard_of
from audioset_downloader.inputs.settings import Settings
from audioset_downloader.outputs import card, provenance, report
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.ledger import FailedRow, Ledger, loose_clip, member_of, no_label_names
from audioset_downloader.outputs.reuse import BACKEND as REUSED
from audioset_downloader.outputs.reuse import (
    Candidate,
    ReuseIndex,
    Settled,
    SharedWindows,
    clip_settings,
    has_manifests,
    reuse_cache,
)
from audioset_downloader.outputs.stage import StagedCsv
from audioset_downloader.outputs.status import HeartbeatWriter
from audioset_downloader.outputs.storage import Store
from audioset_downloader.outputs.summary import CsvSummary
from audioset_downloader.outputs.work import WorkPlan
from audioset_downloader.pacing.book import Book, IdentityStats
from audioset_downloader.redact import RedactingFormatter

log = logging.getLogger(__name__)

SHOWN_INVALID_LINES = 5  # invalid rows named in the list's one warning; failed.csv has every one

PROGRESS_EVERY_S = 30.0
PACE_EVERY_S = 5.0
OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


# How a run's planned segments get done: call the worker on each, hand every
# result to the recorder in this thread. The local engine is a thread pool here;
# the Dask engine (dask_engine.py) ships shards of segments to a cluster.
Dispatch = Callable[[ClipWorker, Iterator[Segment], Callable[[ClipResult], None], threading.Event], None]


def local_dispatch(worker: ClipWorker, segments: Iterator[Segment], record: Callable[[ClipResult], None],
                   stop: threading.Event) -> None:
    if worker.plans is None:
        if worker.mirrors is None:
            run_bounded(worker, segments, worker.settings.workers, record, stop)
            return
        # Windows a mirror holds go to a pool of their own: never queued behind windows waiting for YouTube.
        run_bounded(worker.from_youtube, segments, worker.settings.workers, record, stop,
                    Beside(worker.held, worker.from_copies, worker.settings.mirror_workers))
        return
    # OUTPUT_DIR on object storage: shards of work, through one pool
    run_work_shards(worker, numbered_shards(segments, worker.settings.shard_size, worker.plans), stop, record)


class CsvRun:
    """The state of one CSV's run: its ledger, its counters, its progress."""

    def __init__(self, csv_path: Path, settings: Settings, stop: threading.Event, dry_run: bool = False,
                 book: Book | None = None, shared: SharedWindows | None = None,
                 staged: StagedCsv | None = None) -> None:
        self.csv_path = csv_path
        self.staged = staged  # OUTPUT_DIR on object storage: the manifests' local copies (outputs/stage.py)
        self.book = book
        self.shared = shared  # the run's other CSV processes: a window two lists name is fetched once
        self.dry_run = dry_run
        self.settings = settings
        self.stop = stop
        self.outputs = CsvOutputs.for_csv(settings.output_dir, csv_path)
        ontology = load_ontology(settings)
        self.label_filter = label_filter(csv_path, settings, ontology)
        self.list_format = list_format(csv_path, settings)
        self.ledger = Ledger(self.outputs, ontology.names if ontology else no_label_names, settings.tar_size,
                             self.list_format.NOTE_COLUMNS, NotesOf(csv_path, settings),
                             staged.present if staged is not None else None, packs=staged is None,
                             suffix=settings.shard_suffix or "tar")
        self.summary = CsvSummary(csv=str(csv_path))
        self._failed = Counter[str]()
        self._by_backend = Counter[str]()
        self._by_identity = Counter[str]()
        self._pace: float | None = None  # the book's paced rate, clips per minute, for the time left
        self._pace_read = 0.0
        self._last_progress = time.monotonic()
        self.progress: ProgressBar | None = None
        self.reuse: ReuseIndex | None = None
        self.mirrors: Mirrors | None = None
        self._listed: set[str] | None = None
        self._by_mirror = Counter[str]()
        self._mirror_span: tuple[float, float] | None = None  # when mirror clips were first begun and last done
        self._invalid_lines: list[int] = []  # the first few invalid rows' lines, for the one warning
        self._first_invalid: InvalidRow | None = None

    @property
    def listed(self) -> set[str]:
        """The videos this list names."""
        if self._listed is None:
            self._listed = {row.ytid for row in read_list(self.csv_path, self.settings) if type(row) is Segment}
        return self._listed

    def build_mirrors(self) -> None:
        """The copies MIRRORS hold of this list's videos."""
        if not self.settings.mirrors:
            return
        windows = None if self.list_format.NAME == AUDIOSET else lambda ytids: audioset_windows(self.settings, ytids)
        self.mirrors = Mirrors.for_list(open_mirrors(self.settings), self.listed, windows)
        log.info("%s: the mirrors hold copies of %d of its %d videos", self.csv_path, len(self.mirrors.copies),
                 len(self.listed))

    def build_reuse_index(self) -> None:
        """Index the clips on disk this list's windows could take: only when other manifests exist to read."""
        if not has_manifests(self.settings, self.outputs):
            return
        index = ReuseIndex.build(self.settings, self.outputs, self.listed)
        self.reuse = index if index else None
        if self.reuse is not None:
            log.info("%s: %d windows of this list have a clip on disk to reuse", self.csv_path, len(self.reuse))

    def plan(self) -> Iterator[Segment]:
        """Segments to attempt, in CSV order: not done, up to TIMER's limit.

        This loop runs once per row (two million for the unbalanced list), so it
        looks names up once, outside the loop.
        """
        self.summary.list_format = self.list_format.NAME
        try:
            yield from self._planned(read_list(self.csv_path, self.settings))
        finally:
            self._warn_invalid()
            if self.dry_run:
                self.summary.by_mirror = dict(self._by_mirror)

    def _planned(self, rows: Iterator[Segment | InvalidRow]) -> Iterator[Segment]:
        limit = self.settings.clip_limit
        label_filter = self.label_filter
        shard, shards = self.settings.shard or (0, 0)
        summary, done = self.summary, self.ledger.done
        is_done, failed_for_good = self.ledger.is_done, self.ledger.failed_for_good
        skip_failed = not self.settings.retry_failed and bool(self.ledger.failed)
        for row in rows:
            summary.rows += 1
            if type(row) is InvalidRow:
                self._record_invalid(row)
            elif shards and shard_of(row.ytid, shards) != shard:
                summary.other_shards += 1
            elif label_filter is not None and not label_filter.keeps_row(row):
                summary.filtered_out += 1
            elif row.key in done or row.open_end and is_done(row):
                summary.already_done += 1
            elif skip_failed and failed_for_good(row):
                summary.skipped_failed += 1
            elif limit is not None and summary.attempted >= limit:
                summary.not_attempted += 1
            else:
                summary.attempted += 1
                if self.dry_run and self.reuse is not None and self.reuse.matches(row):
                    summary.reused += 1  # on disk already: a run takes it without a request
                elif self.dry_run and self.mirrors is not None and (held := self.mirrors.held(row)):
                    summary.mirrored += 1  # a mirror holds it: a run takes it without a request to YouTube
                    self._by_mirror[held[0][0].label] += 1
                yield row

    def _record_invalid(self, row: InvalidRow) -> None:
        self.summary.invalid_rows += 1
        if self._first_invalid is None:
            self._first_invalid = row
        if len(self._invalid_lines) < SHOWN_INVALID_LINES:
            self._invalid_lines.append(row.line)
        if self.dry_run:
            return
        detail = f"line {row.line}: {row.problem}" + (f"; the row: {row.raw}" if row.raw else "")
        failed = FailedRow(row.field(0), row.field(1), row.field(2), FailureReason.INVALID_ROW.label, detail)
        self.ledger.record_failed(failed.key, failed)

    def _warn_invalid(self) -> None:
        """One warning for the list's invalid rows, however many (a quote never closed can spoil many)."""
        first, count = self._first_invalid, self.summary.invalid_rows
        if first is None:
            return
        if count == 1:
            log.warning("%s:%d: skipped invalid row: %s", self.csv_path, first.line, first.problem)
            return
        lines = ", ".join(map(str, self._invalid_lines)) + (f" and {count - len(self._invalid_lines)} more"
                                                            if count > len(self._invalid_lines) else "")
        log.warning("%s: skipped %d invalid rows, on lines %s; the first, line %d: %s (%s in %s with its reason)",
                    self.csv_path, count, lines, first.line, first.problem,
                    "a run records each" if self.dry_run else "each recorded", self.outputs.failed.name)

    def record(self, result: ClipResult) -> None:
        segment = result.segment
        row: tuple[str, ...] | None = None
        if result.interrupted:
            self.summary.attempted -= 1  # abandoned, not done: the next run takes it
        elif result.deferred:
            self.summary.attempted -= 1
            self.summary.not_attempted += 1  # no backend has worked yet: not the video's fault
        elif result.file is not None:
            row = self.ledger.record_written(segment, result.file, result.backend, result.measures, result.member)
            self.summary.written += 1
            self.summary.bytes_written += result.size
            self._by_backend[result.backend] += 1
            if result.backend == REUSED:
                self.summary.reused += 1
            elif result.backend == MIRRORED:
                self._count_mirrored(result)
            if result.measures is not None and result.measures.silent:
                self.summary.silent += 1
            self._by_identity[result.identity] += 1
            log.info("%s [%s-%s] written by %s (%.1f s)", segment.ytid, segment.start_text, segment.end_text,
                     result.backend, result.seconds)
        else:
            assert result.reason is not None
            self.ledger.record_failed(
                segment.key,
                FailedRow(segment.ytid, segment.start_text, segment.end_text, result.reason.label, result.detail),
            )
            self._failed[result.reason.label] += 1
            log.warning("%s [%s-%s] failed: %s: %s", segment.ytid, segment.start_text, segment.end_text,
                        result.reason, result.detail)
        if self.shared is not None and self.shared.claimed(segment):
            self.shared.claims.settle(segment.key, self.outputs.name, self._settled(result, row))
        if self.progress is not None:
            self.progress.update(self.summary.written, sum(self._failed.values()), self._paced_per_minute())
        else:
            self._maybe_report_progress()

    def _count_mirrored(self, result: ClipResult) -> None:
        self.summary.mirrored += 1
        self.summary.mirror_bytes += result.mirror_bytes
        self._by_mirror[result.mirror] += 1
        now = time.monotonic()
        begun = now - result.seconds
        self._mirror_span = (min(begun, self._mirror_span[0]), now) if self._mirror_span else (begun, now)

    def _settled(self, result: ClipResult, row: tuple[str, ...] | None) -> Settled | None:
        """What the run's other CSV processes may take of a claimed window: its clip as recorded, a failure
        for good, or nothing (left for them to fetch)."""
        if row is not None:
            outputs, store = self.outputs, None
            if self.staged is not None:  # the clip is on the store (up before its row): taken from there
                outputs, store = CsvOutputs(reuse_cache(self.settings, self.staged.store.url), outputs.name), \
                    self.staged.store
            return Settled(Candidate(result.segment.end_ms, outputs, row[0], member_of(row),
                                     loose_clip(row, self.outputs.name), clip_settings(self.settings),
                                     result.measures, store))
        if result.reason is not None and result.reason.permanent:
            return Settled(reason=result.reason.label, detail=result.detail)
        return None

    def _paced_per_minute(self) -> float | None:
        """The book's paced rate, asked every few seconds (it may live in another process)."""
        now = time.monotonic()
        if self.book is not None and now - self._pace_read >= PACE_EVERY_S:
            self._pace_read = now
            self._pace = self.book.per_minute()
        return self._pace

    def _maybe_report_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_EVERY_S:
            return
        self._last_progress = now
        finished = self.summary.written + sum(self._failed.values())
        pace = self._paced_per_minute()
        left = (f"; about {duration(60 * (self.summary.attempted - finished) / pace)} left at the paced "
                f"{pace:.1f} clips/min" if pace else "")
        log.info("progress: %d clips finished (%d written, %d failed) of %d started so far%s",
                 finished, self.summary.written, sum(self._failed.values()), self.summary.attempted, left)

    def execute(self, dispatch: Dispatch = local_dispatch) -> CsvSummary:
        started = time.monotonic()
        self.build_reuse_index()
        self.build_mirrors()
        worker = ClipWorker(self.settings, self.outputs, self.book, self.reuse, self.shared, self.mirrors)
        self.book = worker.book
        self.summary.provenance = provenance.collect(worker.chain.backends, find_ffmpeg(self.settings.ffmpeg_binary))
        if self.mirrors is not None:  # each copy read, at the revision read
            self.summary.provenance["mirrors"] = [mirror.label for mirror in self.mirrors.mirrors]
        try:
            self.ledger.open()
        except LayoutMismatch as exc:
            if self.staged is None:
                raise
            # The stage folder is the run's own business: the user knows the outputs by OUTPUT_DIR's URL.
            raise LayoutMismatch(str(exc).replace(str(self.outputs.root), str(self.settings.output_url))) from None
        if self.staged is not None:
            self._go_on_from_store(worker)
        heartbeat = HeartbeatWriter(self.outputs, lambda: self.summary.written + sum(self._failed.values()),
                                    self.book.stats, self.staged.put_up if self.staged is not None else None)
        through = False  # the whole plan done, no error: objects of attempts killed during it can go now
        try:
            with heartbeat:
                if self.mirrors is not None:
                    self.summary.mirror_audit = audit_mirrors(worker, self.mirrors, self._audit_candidates(),
                                                              self.stop)
                dispatch(worker, self.plan(), self.record, self.stop)
            if worker.reachability.never_answered and not self.summary.written and not self._failed:
                raise worker.reachability.down_error()  # fewer clips than it takes to say so mid-run
            if not self.stop.is_set():
                self.ledger.finish()  # through the whole plan: its last clips are packed too
                through = True
        except KeyboardInterrupt:
            self.summary.interrupted = True
            raise
        except OSError as exc:
            if exc.errno in OUTPUT_ERRNOS:
                raise OutputUnwritableError(
                    f"{exc.filename or self.outputs.root}: {exc.strerror}; free space or fix permissions, "
                    "then rerun: finished clips are kept") from exc
            raise
        finally:
            self.summary.failed = dict(self._failed)
            self.summary.by_backend = dict(self._by_backend)
            self.summary.by_identity = dict(self._by_identity)
            self.summary.by_mirror = dict(self._by_mirror)
            self.summary.mirrors_so_far = _mirrors_so_far(self.outputs, self._by_mirror)
            if self._mirror_span is not None:
                self.summary.mirror_seconds = round(self._mirror_span[1] - self._mirror_span[0], 3)
                remember_throughput(self.settings.cache_folder, self.summary.mirror_bytes, self.summary.mirror_seconds,
                                    self.summary.mirrored)
            self.summary.identities = [asdict(entry) for entry in self.book.stats()]
            self.summary.provenance["ended_utc"] = provenance.utc_now()
            self.summary.clip_settings = clip_settings(self.settings)
            self.summary.wall_seconds = round(time.monotonic() - started, 3)
            if self.staged is not None:  # what shards of work put up that no result brought back
                live = self.staged.live_attempts() if through else None  # listed before the manifests are read
                self.staged.join(self.ledger)
                if live is not None:  # a Dask worker killed mid-shard may have put its tar up, not its rows
                    self.staged.remove_orphans(self.ledger, live, refresh=True)
            self.ledger.close()
            write_atomically(self.outputs.summary, self.summary.to_json())
        return self.summary


    def _audit_candidates(self) -> Iterator[Segment]:
        """Windows of this list the mirrors hold, for the audit: any of them is a fair sample of the copy."""
        assert self.mirrors is not None
        for row in read_list(self.csv_path, self.settings):
            if type(row) is Segment and self.mirrors.holds(row):
                yield row

    def _go_on_from_store(self, worker: ClipWorker) -> None:
        """Take in what earlier runs' shards of work left on the store, and number this run's shards after it."""
        assert self.staged is not None
        live = self.staged.live_attempts()  # before the manifests are read: see StagedCsv.live_attempts
        joined = self.staged.join(self.ledger)
        if joined:
            log.info("%s: joined %d rows that shards of work of an interrupted run left", self.csv_path, joined)
        if live:
            log.info("%s: %d attempts of an earlier run are still putting shards up; their objects are kept, and "
                     "their rows joined as they arrive", self.csv_path, len(live))
        self.staged.remove_orphans(self.ledger, live)
        plan = WorkPlan(self.staged.store, self.outputs.name, self.settings.shard_suffix, self.ledger.rows)
        worker.plans = (plan.numbered(index) for index in itertools.count(self.staged.next_index()))


def _mirrors_so_far(outputs: CsvOutputs, this_run: Counter[str]) -> dict[str, int]:
    """The clips each mirror gave these outputs over every run: the last summary's, and this run's."""
    try:
        before = CsvSummary.from_json(outputs.summary.read_text(encoding="utf-8")).mirrors_so_far
    except (OSError, ValueError, TypeError):
        before = {}
    return dict(Counter(before) + this_run)


def load_ontology(settings: Settings) -> Ontology | None:
    """The ontology for label names and filters; without one, filters are an error, names left empty."""
    path = ontology_path(settings)
    if path.is_file():
        return Ontology.load(path)
    if settings.labels or settings.exclude_labels or settings.ontology_file:
        raise ConfigError(f"ONTOLOGY_FILE {path} does not exist; the label filters need AudioSet's ontology.json")
    log.warning("no ontology.json at %s: the label_names column stays empty (set ONTOLOGY_FILE)", path)
    return None


@contextlib.contextmanager
def exclusive(outputs: CsvOutputs) -> Iterator[None]:
    """Hold a lock on this CSV's outputs: two runs writing one manifest would corrupt it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    outputs.root.mkdir(parents=True, exist_ok=True)
    with open(outputs.lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputLockedError(
                f"{outputs.root / outputs.name}: another run is writing this CSV's outputs; "
                "wait for it to finish or choose another OUTPUT_DIR"
            ) from None
        yield


@contextlib.contextmanager
def csv_log(outputs: CsvOutputs, console: bool, to_file: bool = True, bars: bool = False) -> Iterator[None]:
    """Log to X_dl.log, and to the console with the same lines (only warnings above progress bars)."""
    root = logging.getLogger("audioset_downloader")
    formatter = RedactingFormatter(f"%(asctime)s %(levelname)s [{outputs.name}] %(message)s")
    handlers: list[logging.Handler] = []
    if to_file:
        handlers.append(logging.FileHandler(outputs.log, encoding="utf-8"))
    if console and bars:
        handlers.append(BarFriendlyHandler())
        handlers[-1].setLevel(logging.WARNING)
    elif console:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()


def run_csv(csv_path: Path, settings: Settings, stop: threading.Event | None = None, console: bool = True,
            position: int = 0, dispatch: Dispatch = local_dispatch, book: Book | None = None,
            shared: SharedWindows | None = None) -> CsvSummary:
    """Download every segment of one CSV into OUTPUT_DIR; the run's whole life."""
    bars = console and show_progress()
    stop = stop or threading.Event()
    outputs = CsvOutputs.for_csv(settings.output_dir, csv_path)
    # pytube's metadata requests carry no timeout of their own: bound them here.
    socket.setdefaulttimeout(settings.clip_timeout)
    with exclusive(outputs):
        staged = staged_csv(settings, outputs)
        if settings.remove_exist_downloads:
            outputs.remove_outputs() if staged is None else staged.remove_outputs()
        outputs.prepare()
        if staged is not None:
            staged.pull()  # before the log is opened: its copy is replaced
        try:
            with csv_log(outputs, console, bars=bars):
                return _run_logged(csv_path, settings, stop, outputs, bars, position, dispatch, book, shared, staged)
        finally:
            if staged is not None:
                staged.publish()


def _run_logged(csv_path: Path, settings: Settings, stop: threading.Event, outputs: CsvOutputs, bars: bool,
                position: int, dispatch: Dispatch, book: Book | None, shared: SharedWindows | None,
                staged: StagedCsv | None) -> CsvSummary:
    removed = outputs.remove_partials()
    if removed:
        log.info("removed %d temporary files left by an interrupted run", removed)
    run = CsvRun(csv_path, settings, stop, book=book, shared=shared, staged=staged)
    if bars:  # the same plan, counted first, gives the bar its total and so an ETA
        run.progress = ProgressBar(outputs.name, count_planned(csv_path, settings, staged), position)
    log.info("%s: downloading with backends %s into %s (%s engine, %d workers, pid %d)",
             csv_path, " > ".join(settings.backend_chain),
             f"{settings.output_url}/{outputs.name}" if settings.output_url else outputs.clip_dir,
             settings.engine, settings.workers, os.getpid())
    try:
        summary = run.execute(dispatch)
    finally:
        if run.progress is not None:
            run.progress.close()
        # No worker is left now, so any temporary file is an orphan's: an ffmpeg
        # whose run was killed (kill -9) may outlive it and write one late.
        outputs.remove_partials()
    log.info("%s", summary.line())
    for entry in summary.identities:
        log.info("%s (whole run so far)", IdentityStats(**entry).line())
    # From the ledger (every run so far, not just this one), without reading the manifests again.
    card.write_card(report.count(csv_path, run.ledger, settings), summary, settings, outputs)
    return summary


def staged_csv(settings: Settings, outputs: CsvOutputs) -> StagedCsv | None:
    """With an OUTPUT_DIR on object storage, the CSV's outputs there and their local copies; else None."""
    if settings.output_url is None:
        return None
    return StagedCsv(Store(settings.output_url, settings.storage_options), outputs)


def count_planned(csv_path: Path, settings: Settings, staged: StagedCsv | None = None) -> int:
    run = CsvRun(csv_path, settings, threading.Event(), dry_run=True, staged=staged)
    run.ledger.load()
    quiet = logging.getLogger("audioset_downloader")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the real pass reports invalid rows; this one only counts
    try:
        return sum(1 for _ in run.plan())
    finally:
        quiet.setLevel(level)


def plan_csv(csv_path: Path, settings: Settings) -> CsvSummary:
    """--dry-run: what a run would do now (the same plan), downloading and changing nothing."""
    if settings.output_url is None:
        return _planned_summary(csv_path, settings, None)
    # Object storage: the store's manifests in a folder of their own (a run may be writing in the stage), with
    # what shards of work left joined, as the run would join them first.
    with tempfile.TemporaryDirectory(prefix="audioset-plan-") as folder:
        settings = replace(settings, output_dir=Path(folder))
        staged = staged_csv(settings, CsvOutputs.for_csv(settings.output_dir, csv_path))
        assert staged is not None
        staged.pull()
        return _planned_summary(csv_path, settings, staged)


def _planned_summary(csv_path: Path, settings: Settings, staged: StagedCsv | None) -> CsvSummary:
    outputs = CsvOutputs.for_csv(settings.output_dir, csv_path)
    with csv_log(outputs, console=True, to_file=False):
        run = CsvRun(csv_path, settings, threading.Event(), dry_run=True, staged=staged)
        if staged is None:
            run.ledger.load()
        else:
            run.ledger.open()  # in the plan's own folder
            staged.join(run.ledger)
            run.ledger.close()
        run.build_reuse_index()
        run.build_mirrors()
        for _ in run.plan():
            pass
        return run.summary
