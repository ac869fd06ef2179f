"""Running clips concurrently: a bounded pool of threads inside one process.

Downloading is latency-bound (metadata and ranged media requests) and the heavy
lifting happens in ffmpeg child processes, so threads suffice. At most
``2 * workers`` items are taken from the input ahead of completion: rows stream
from the CSV, and memory stays flat however long it is. Results are handed to
``on_result`` in the calling thread only, so the recorder needs no locks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from queue import Empty, SimpleQueue
from threading import Event
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

WAIT_S = 0.5  # how often the waiting thread wakes, so Ctrl-C is noticed promptly


def run_bounded(
    work: Callable[[Item, Event], Result],
    items: Iterable[Item],
    workers: int,
    on_result: Callable[[Result], None],
    stop: Event,
) -> None:
    """Call ``work(item, stop)`` for each item on ``workers`` threads.

    On Ctrl-C (or any error in ``on_result``) ``stop`` is set, no new item is
    started, the running ones are waited for (they abandon their work when they
    see ``stop``), and the exception is raised again.
    """
    finished: SimpleQueue[Future] = SimpleQueue()
    # The futures started and not yet recorded. A set, not a count: a Ctrl-C can land
    # between taking a future from ``finished`` and recording it, and the drain below
    # must still find it, where a count left one too high waits forever.
    pending: set[Future] = set()
    limit = 2 * workers

    def record(future: Future) -> None:
        if future in pending:
            pending.discard(future)
            on_result(future.result())

    def collect_one() -> None:
        while True:
            try:
                future = finished.get(timeout=WAIT_S)
                break
            except Empty:
                continue
        record(future)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clip") as pool:
        try:
            for item in items:
                if stop.is_set():
                    break
                while len(pending) >= limit:
                    collect_one()
                future = pool.submit(work, item, stop)
                pending.add(future)
                future.add_done_callback(finished.put)
            while pending:
                collect_one()
        except BaseException:
            stop.set()
            # Running items end quickly once stop is set; their results are still
            # recorded when complete, so nothing finished is lost.
            while pending:
                done, _ = wait(pending, timeout=WAIT_S)
                for future in done:
                    try:
                        record(future)
                    except Exception:
                        pass
            raise
