"""Shards of work when OUTPUT_DIR is object storage: one pool over their segments, each in a scratch folder.

Each clip is cut into its shard's scratch folder by the same ClipWorker, then handed to its
WorkShard (outputs/work.py), which puts it up (or keeps it for the shard's tar); once a shard's
last clip is done, its tar and its manifest go up. The local engine runs every shard of a CSV
through one pool, so that no thread idles while a shard's last clips finish; a Dask task runs one.
"""

from __future__ import annotations

import contextvars
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

from audioset_downloader.engine.pool import run_bounded
from audioset_downloader.engine.worker import ClipResult, ClipWorker
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.outputs.work import WorkPlan, WorkShard


@dataclass
class _Open:
    """A shard whose clips are under way: its outputs, its worker, the clips not back yet."""

    shard: WorkShard
    worker: ClipWorker
    left: int


def run_work_shards(worker: ClipWorker, shards: Iterator[tuple[WorkPlan, list[Segment]]], stop: threading.Event,
                    record: Callable[[ClipResult], None], context: contextvars.Context | None = None) -> None:
    """Every segment of every shard; each result to ``record`` (in this thread) once its clip is in the scratch
    folder (or up). ``context``: the task's, which the pool's threads must run in (Dask)."""
    scratch = Path(tempfile.mkdtemp(prefix="audioset-work-"))
    opened: dict[int, _Open] = {}
    # Clips (files layout) go up from threads of their own, a full shard from another: the pool goes on cutting.
    clip_uploads = ThreadPoolExecutor(max_workers=worker.settings.workers, thread_name_prefix="upload-clip")
    uploader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload")
    uploads: list[Future] = []

    def items() -> Iterator[tuple[_Open, Segment]]:
        for plan, segments in shards:
            if not segments:
                continue
            shard = WorkShard(plan, scratch / str(plan.index), clip_uploads)
            opened[plan.index] = entry = _Open(shard, worker.writing_to(shard.outputs), len(segments))
            for segment in segments:
                yield entry, segment

    def one(item: tuple[_Open, Segment], stop: threading.Event) -> tuple[_Open, ClipResult]:
        entry, segment = item
        here = entry.worker
        result = here(segment, stop) if context is None else context.copy().run(here, segment, stop)
        if result.file is not None:
            file, member = entry.shard.clip_written(result.segment, result.file, result.backend, result.measures)
            result = replace(result, file=file, member=member)
        elif result.reason is not None:
            entry.shard.clip_failed(result.segment, result.reason, result.detail)
        return entry, result

    def done(item: tuple[_Open, ClipResult]) -> None:
        entry, result = item
        record(result)
        entry.left -= 1
        if entry.left == 0:
            uploads.append(uploader.submit(_finish, opened.pop(entry.shard.plan.index)))
            for upload in [upload for upload in uploads if upload.done()]:
                uploads.remove(upload)
                upload.result()  # a refused upload stops the run here

    try:
        run_bounded(one, items(), worker.settings.workers, done, stop)
    finally:
        try:
            uploader.shutdown(wait=True)
            clip_uploads.shutdown(wait=True)
            for entry in list(opened.values()):  # stopped: whatever each wrote goes up, so a row names a clip up
                _finish(entry)
            for upload in uploads:
                upload.result()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _finish(entry: _Open) -> None:
    entry.shard.finish()
    shutil.rmtree(entry.shard.outputs.root, ignore_errors=True)


def numbered_shards(segments: Iterator[Segment], size: int, plans: Iterator[WorkPlan]
                    ) -> Iterator[tuple[WorkPlan, list[Segment]]]:
    """The segments cut into shards of ``size``, each with the next plan."""
    for batch in shard_batches(segments, size):
        yield next(plans), batch


def shard_batches(items: Iterator[Segment], size: int) -> Iterator[list[Segment]]:
    while batch := list(islice(items, size)):
        yield batch
