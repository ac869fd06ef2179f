"""Shards of work when OUTPUT_DIR is object storage: the same pool over a shard's segments, in a scratch folder.

Each clip is cut into the shard's scratch folder by the same ClipWorker, then handed to its
WorkShard (outputs/work.py), which puts it up (or keeps it for the shard's tar); at the end the
tar and the shard's manifest go up. The local engine runs one shard after another in this
process; the Dask engine runs each as a task (dask_engine.py).
"""

from __future__ import annotations

import contextvars
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from itertools import islice
from pathlib import Path

from audioset_downloader.engine.pool import run_bounded
from audioset_downloader.engine.worker import ClipResult, ClipWorker
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.outputs.work import WorkPlan, WorkShard


def run_work_shard(worker: ClipWorker, segments: list[Segment], plan: WorkPlan, stop: threading.Event,
                   record: Callable[[ClipResult], None], context: contextvars.Context | None = None) -> None:
    """Every segment of one shard of work; each result to ``record`` (in this thread) once its clip is safe
    in the scratch folder (or up). ``context``: the task's, which the pool's threads must run in (Dask)."""
    with tempfile.TemporaryDirectory(prefix="audioset-work-") as scratch:
        shard = WorkShard(plan, Path(scratch))
        here = worker.writing_to(shard.outputs)

        def one(segment: Segment, stop: threading.Event) -> ClipResult:
            result = here(segment, stop) if context is None else context.copy().run(here, segment, stop)
            if result.file is not None:
                file, member = shard.clip_written(result.segment, result.file, result.backend, result.measures)
                return replace(result, file=file, member=member)
            if result.reason is not None:
                shard.clip_failed(result.segment, result.reason, result.detail)
            return result

        try:
            run_bounded(one, segments, worker.settings.workers, record, stop)
        finally:
            shard.finish()  # whatever was written, even when stopping: a row recorded names a clip that is up


def shard_batches(items: Iterator[Segment], size: int) -> Iterator[list[Segment]]:
    while batch := list(islice(items, size)):
        yield batch
