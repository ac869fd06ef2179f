"""ENGINE = "dask": a CSV's planned segments, cut into shards of SHARD_SIZE, run as Dask tasks.

Each task runs the same ClipWorker (same backends, same retries) over its shard
with the same bounded thread pool as the local engine, and returns the results;
the driver records them through the same CsvRun (ledger, summary, progress), so
the manifests are those of a local run and a run can switch engines and resume.
With an OUTPUT_DIR on object storage, a task is a shard of work (engine/remote.py):
its clips, its tar and its rows go up whole from the worker's own disk, so no
machine needs a shared file system. With a local OUTPUT_DIR, workers write clips
straight into it: on a real cluster, one shared file system, at the same path on
every machine. With PER_MACHINE_IDENTITY each worker machine takes its turns
through an identity of its own (its address) or IDENTITIES' proxies.

When a worker dies mid-shard, Dask runs the task again elsewhere. On a shared file
system, clips the lost attempt had finished are kept (a clip only appears under its
final name complete) rather than fetched again, and its temporary files are removed
when the run ends, as after a local kill. On object storage the lost attempt left
no object a row names, and the shard is done again once, under the same number.
Only the driver writes the CSV's manifests, so no row is written twice.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from audioset_downloader.engine.pool import Beside, run_bounded
from audioset_downloader.engine.remote import run_work_shards, shard_batches
from audioset_downloader.engine.worker import ClipResult, ClipWorker
from audioset_downloader.errors import ConfigError, DownloaderError, OutputUnwritableError, StoreError
from audioset_downloader.fetch.mirrors.source import Mirrors
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings
from audioset_downloader.outputs.work import WorkPlan
from audioset_downloader.pacing.book import Book

log = logging.getLogger(__name__)

TASK_RETRIES = 3  # a shard whose worker died, or that raised, is run again this often
CONNECT_TIMEOUT_S = 30  # to reach DASK_SCHEDULER before giving up


def run_shard(worker: ClipWorker, segments: list[Segment], since: float, plan: WorkPlan | None = None,
              mirrors: Mirrors | None = None) -> tuple[list[ClipResult], DownloaderError | None]:
    """One task, on a Dask worker: every segment of the shard, finished clips kept; with ``plan`` (an OUTPUT_DIR
    on object storage), a shard of work whose outputs go up whole (engine/remote.py). Returns the results, and
    the error that stopped it where the store (or the output) failed: returned, not raised, since Dask would run
    the task again, fetching the whole shard again from YouTube before the same error. ``mirrors``: the copies
    the mirrors hold of this shard's windows, read from this worker's machine."""
    worker.mirrors = mirrors
    if worker.settings.machine_identities:
        worker.machine = machine_address()
    results: list[ClipResult] = []
    if plan is not None:
        try:
            run_work_shards(worker, iter([(plan, segments)]), threading.Event(), results.append,
                            contextvars.copy_context())
        except (StoreError, OutputUnwritableError) as exc:
            return results, exc
        return results, None
    todo = []
    for segment in segments:
        kept = worker.finished_since(segment, since)
        if kept is not None:
            results.append(kept)
        else:
            todo.append(segment)
    # The pool's threads run in a copy of this task's context: the book reaches the
    # scheduler through the worker's client, found by a context variable new threads would not see.
    task_context = contextvars.copy_context()

    def in_task_context(segment: Segment, stop: threading.Event) -> ClipResult:
        return task_context.copy().run(worker.from_youtube, segment, stop)

    def from_copies(segment: Segment, stop: threading.Event) -> ClipResult | None:
        return task_context.copy().run(worker.from_copies, segment, stop)

    beside = None if mirrors is None else Beside(worker.held, from_copies, worker.settings.mirror_workers)
    run_bounded(in_task_context, todo, worker.settings.workers, results.append, threading.Event(), beside)
    return results, None


def machine_address() -> str:
    """The host this task's Dask worker listens on (``dask worker --host``): its machine's identity."""
    from distributed import get_worker

    return urlsplit(get_worker().address).hostname or "unknown"


def require_dask() -> None:
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        raise ConfigError('ENGINE = "dask" needs dask.distributed, which is not installed; '
                          'install it with: pip install -e ".[dask]"') from None


def connect(settings: Settings) -> Any:
    """A dask.distributed Client: to DASK_SCHEDULER, or to a LocalCluster of DASK_WORKERS processes."""
    require_dask()
    from dask.distributed import Client, LocalCluster

    if settings.dask_scheduler == "local":
        # One thread per worker process: the task runs its own pool of WORKERS threads.
        # Any free port for its HTTP endpoints: 8787 may be taken by another cluster.
        cluster = LocalCluster(n_workers=settings.dask_workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        return Client(cluster)
    try:
        return Client(settings.dask_scheduler, timeout=CONNECT_TIMEOUT_S)
    except OSError as exc:  # also the TimeoutError of a scheduler that never answers
        raise ConfigError(f"DASK_SCHEDULER {settings.dask_scheduler}: cannot connect ({exc}); "
                          "start it with: dask scheduler (then dask worker <address> on each machine)") from None


def shared_book(client: Any, settings: Settings) -> Book:
    """One pacing book for every worker of the cluster, on the scheduler (see dask_book.py)."""
    from audioset_downloader.pacing.dask_book import install_book

    return install_book(client, settings)


def disconnect(client: Any) -> None:
    """Close the client, and the LocalCluster if this run started one; the run's book goes with it."""
    from audioset_downloader.pacing.dask_book import PLUGIN_NAME

    with contextlib.suppress(Exception):  # a scheduler that is gone has no book left to remove
        client.unregister_scheduler_plugin(PLUGIN_NAME)
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()


@dataclass
class DaskDispatch:
    """Hands shards to the cluster, at most two per worker thread ahead, and their results back."""

    client: Any
    shard_size: int

    def __call__(self, worker: ClipWorker, segments: Iterator[Segment], record: Callable[[ClipResult], None],
                 stop: threading.Event) -> None:
        from dask.distributed import as_completed

        since = time.time()
        limit = 2 * max(1, sum(self.client.nthreads().values()))
        pending = as_completed()
        try:
            for shard in shard_batches(segments, self.shard_size):
                if stop.is_set():
                    break
                while pending.count() >= limit:
                    _record_shard(next(pending), record)
                plan = next(worker.plans) if worker.plans is not None else None
                mirrors = None if worker.mirrors is None else worker.mirrors.only(shard)
                pending.add(self.client.submit(run_shard, worker, shard, since, plan, mirrors, pure=False,
                                               retries=TASK_RETRIES))
            for future in pending:
                _record_shard(future, record)
        except BaseException:
            stop.set()
            self.client.cancel(list(pending.futures))
            raise


def _record_shard(future: Any, record: Callable[[ClipResult], None]) -> None:
    results, error = future.result()
    for result in results:  # each one's object is up: recorded before the error ends the run
        record(result)
    if error is not None:
        raise error

