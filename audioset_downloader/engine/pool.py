"""Running clips concurrently: a bounded pool of threads inside one process.

Downloading is latency-bound (metadata and ranged media requests) and the heavy
lifting happens in ffmpeg child processes, so threads suffice. At most
``2 * workers`` items are taken from the input ahead of completion: rows stream
from the CSV, and memory stays flat however long it is. Results are handed to
``on_result`` in the calling thread only, so the recorder needs no locks.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
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
    finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
    in_flight = 0
    limit = 2 * workers

    def collect_one() -> None:
        nonlocal in_flight
        while True:
            try:
                future = finished.get(timeout=WAIT_S)
                break
            except queue.Empty:
                continue
        in_flight -= 1
        on_result(future.result())

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clip") as pool:
        try:
            for item in items:
                if stop.is_set():
                    break
                while in_flight >= limit:
                    collect_one()
                future = pool.submit(work, item, stop)
                future.add_done_callback(finished.put)
                in_flight += 1
            while in_flight:
                collect_one()
        except BaseException:
            stop.set()
            # Running items end quickly once stop is set; their results are still
            # recorded when complete, so nothing finished is lost.
            while in_flight:
                try:
                    collect_one()
                except Exception:
                    pass
            raise
