"""Shards of work when OUTPUT_DIR is object storage: one pool over their segments, each in a scratch folder.

Each clip is cut into its shard's scratch folder by the same ClipWorker, then handed to its
WorkShard (outputs/work.py), which puts it up (or keeps it for the shard's tar); once a shard's
last clip is done, its tar and its manifest go up. A written clip's result reaches ``record``
only once its object is up, so the driver's split-pos.csv never names a clip that is not there;
a failed upload stops the run at the next clip. The local engine runs every shard of a CSV
through one pool, so that no thread idles while a shard's last clips finish; a Dask task runs one.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

from audioset_downloader.engine.pool import Beside, run_bounded
from audioset_downloader.engine.worker import ClipResult, ClipWorker
from audioset_downloader.errors import DownloaderError
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.outputs.work import LIVE_EVERY_S, WorkPlan, WorkShard
from audioset_downloader.processes import process_running

log = logging.getLogger(__name__)

SCRATCH_PREFIX = "audioset-work-"


@dataclass
class _Open:
    """A shard whose clips are under way: its outputs, its worker, the clips not back yet."""

    shard: WorkShard
    worker: ClipWorker
    left: int


class _Uploaded:
    """Results whose object is on its way up, handed to ``record`` in order as each arrives."""

    def __init__(self, record: Callable[[ClipResult], None]) -> None:
        self._record = record
        self._waiting: list[tuple[Future, ClipResult | None]] = []

    def add(self, up: Future, result: ClipResult | None) -> None:
        """``result`` None: a shard's last objects (its tar, its manifest), watched for a failure only."""
        self._waiting.append((up, result))

    def settle(self, wait: bool = False) -> None:
        """Record each result whose object is up; raise the first failed upload (the run stops there). With
        ``wait``, every one: those whose upload failed are left out, the first failure raised at the end."""
        failure: BaseException | None = None
        still = []
        for up, result in self._waiting:
            if not wait and not up.done():
                still.append((up, result))
                continue
            error = up.exception()
            if error is None and result is not None:
                self._record(result)
            elif failure is None:
                failure = error
        self._waiting = still
        if failure is not None:
            raise failure


def run_work_shards(worker: ClipWorker, shards: Iterator[tuple[WorkPlan, list[Segment]]], stop: threading.Event,
                    record: Callable[[ClipResult], None], context: contextvars.Context | None = None) -> None:
    """Every segment of every shard; each result to ``record`` (in this thread) once its clip is up (a failure at
    once). ``context``: the task's, which the pool's threads must run in (Dask)."""
    remove_dead_scratch()
    scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    opened: dict[int, _Open] = {}
    uploaded = _Uploaded(record)
    # Clips (files layout) go up from threads of their own, a full shard from another: the pool goes on cutting.
    clip_uploads = ThreadPoolExecutor(max_workers=worker.settings.workers, thread_name_prefix="upload-clip")
    uploader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload")
    alive = threading.Event()
    toucher = threading.Thread(target=_keep_alive, args=(opened, alive), name="attempt-alive", daemon=True)
    toucher.start()

    def items() -> Iterator[tuple[_Open, Segment]]:
        for plan, segments in shards:
            if not segments:
                continue
            shard = WorkShard(plan, scratch / str(plan.index), clip_uploads)
            opened[plan.index] = entry = _Open(shard, worker.writing_to(shard.outputs), len(segments))
            for segment in segments:
                yield entry, segment

    def handed(entry: _Open, result: ClipResult) -> tuple[_Open, ClipResult, Future | None]:
        up = None
        if result.file is not None:
            file, member, up = entry.shard.clip_written(result.segment, result.file, result.backend,
                                                        result.measures)
            result = replace(result, file=file, member=member)
        elif result.reason is not None:
            entry.shard.clip_failed(result.segment, result.reason, result.detail)
        return entry, result, up

    def in_context(call: Callable, segment: Segment, stop: threading.Event) -> ClipResult | None:
        return call(segment, stop) if context is None else context.copy().run(call, segment, stop)

    def one(item: tuple[_Open, Segment], stop: threading.Event) -> tuple[_Open, ClipResult, Future | None]:
        result = in_context(item[0].worker.from_youtube, item[1], stop)
        assert result is not None
        return handed(item[0], result)

    def from_copies(item: tuple[_Open, Segment], stop: threading.Event
                    ) -> tuple[_Open, ClipResult, Future | None] | None:
        result = in_context(item[0].worker.from_copies, item[1], stop)
        return None if result is None else handed(item[0], result)

    def done(item: tuple[_Open, ClipResult, Future | None]) -> None:
        entry, result, up = item
        if up is None:
            record(result)  # a failure, or nothing: no object to wait for
        else:
            uploaded.add(up, result)
        entry.left -= 1
        if entry.left == 0:
            uploaded.add(uploader.submit(_finish, opened.pop(entry.shard.plan.index)), None)
        uploaded.settle()  # a refused upload stops the run here, at the next clip

    try:
        # Windows a mirror holds go to a pool of their own, as in the local engine.
        beside = None if worker.mirrors is None else Beside(lambda item: item[0].worker.held(item[1]), from_copies,
                                                            worker.settings.mirror_workers)
        run_bounded(one, items(), worker.settings.workers, done, stop, beside)
    finally:
        try:
            uploader.shutdown(wait=True)
            clip_uploads.shutdown(wait=True)
            for entry in list(opened.values()):  # stopped: whatever each wrote goes up, so a row names a clip up
                with contextlib.suppress(Exception):  # its ``up`` holds the error, raised below
                    _finish(entry)
                uploaded.add(entry.shard.up, None)
            uploaded.settle(wait=True)
        finally:
            alive.set()
            shutil.rmtree(scratch, ignore_errors=True)


def _finish(entry: _Open) -> None:
    try:
        entry.shard.finish()
    finally:
        shutil.rmtree(entry.shard.outputs.root, ignore_errors=True)


def _keep_alive(opened: dict[int, _Open], done: threading.Event) -> None:
    """Every LIVE_EVERY_S, each open attempt's marker put up again: its objects are not anybody's orphans."""
    while not done.wait(LIVE_EVERY_S):
        for entry in list(opened.values()):
            try:
                entry.shard.touch()
            except DownloaderError as exc:  # the store is away: the attempt's next upload says so
                log.warning("could not mark %s alive: %s", entry.shard.plan.name, exc)


def remove_dead_scratch() -> int:
    """Remove the scratch folders that tasks killed on this machine left (their process is gone)."""
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = path.name[len(SCRATCH_PREFIX):].partition("-")[0]
        if pid.isdigit() and not process_running(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d scratch folders of killed tasks", removed)
    return removed


def numbered_shards(segments: Iterator[Segment], size: int, plans: Iterator[WorkPlan]
                    ) -> Iterator[tuple[WorkPlan, list[Segment]]]:
    """The segments cut into shards of ``size``, each with the next plan."""
    for batch in shard_batches(segments, size):
        yield next(plans), batch


def shard_batches(items: Iterator[Segment], size: int) -> Iterator[list[Segment]]:
    while batch := list(islice(items, size)):
        yield batch
