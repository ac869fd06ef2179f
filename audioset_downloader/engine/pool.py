"""Running clips concurrently: a bounded pool of threads inside one process.

Downloading is latency-bound (metadata and ranged media requests) and the heavy
lifting happens in ffmpeg child processes, so threads suffice. At most
``2 * workers`` items are taken from the input ahead of completion: rows stream
from the CSV, and memory stays flat however long it is. Results are handed to
``on_result`` in the calling thread only, so the recorder needs no locks.

``beside``: a second pool for the items it takes (windows a mirror holds), so that they are never
queued behind items waiting for a turn of the pacing book. Its work may decline an item (None),
which then goes to the main pool. The plan is read as far ahead as the second pool needs, the
main pool's items waiting in memory meanwhile (segments: a few hundred bytes each).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from threading import Event
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

WAIT_S = 0.5  # how often the waiting thread wakes, so Ctrl-C is noticed promptly


@dataclass(frozen=True)
class Beside(Generic[Item, Result]):
    """A pool of its own for the items ``takes`` says are its; ``work`` returns None for one it leaves."""

    takes: Callable[[Item], bool]
    work: Callable[[Item, Event], Result | None]
    workers: int


def run_bounded(
    work: Callable[[Item, Event], Result],
    items: Iterable[Item],
    workers: int,
    on_result: Callable[[Result], None],
    stop: Event,
    beside: Beside[Item, Result] | None = None,
) -> None:
    """Call ``work(item, stop)`` for each item on ``workers`` threads (and ``beside``'s items on its own).

    On Ctrl-C (or any error in ``on_result``) ``stop`` is set, no new item is
    started, the running ones are waited for (they abandon their work when they
    see ``stop``), and the exception is raised again.
    """
    finished: SimpleQueue[Future] = SimpleQueue()
    # The futures started and not yet recorded, with their item and pool (0: main, 1: beside). A dict, not a
    # count: a Ctrl-C can land between taking a future from ``finished`` and recording it, and the drain
    # below must still find it, where a count left one too high waits forever.
    pending: dict[Future, tuple[Item, int]] = {}
    limits = (2 * workers, 2 * beside.workers if beside else 0)
    started = [0, 0]
    waiting: deque[Item] = deque()  # the main pool's items read while the plan was read ahead for ``beside``

    def record(future: Future) -> None:
        if future in pending:
            item, lane = pending.pop(future)
            started[lane] -= 1
            result = future.result()
            if result is None:  # left by ``beside``: to the main pool
                waiting.appendleft(item)
            else:
                on_result(result)

    def collect_one() -> None:
        while True:
            try:
                future = finished.get(timeout=WAIT_S)
                break
            except Empty:
                continue
        record(future)

    def submit(pool: ThreadPoolExecutor, function: Callable, item: Item, lane: int) -> None:
        future = pool.submit(function, item, stop)
        pending[future] = (item, lane)
        started[lane] += 1
        future.add_done_callback(finished.put)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clip") as pool, \
            (ThreadPoolExecutor(max_workers=beside.workers, thread_name_prefix="mirror") if beside
             else contextlib.nullcontext()) as side:
        try:
            source = iter(items)
            exhausted = False
            while not stop.is_set():
                while waiting and started[0] < limits[0]:
                    submit(pool, work, waiting.popleft(), 0)
                # Read on while a pool has room: the main pool only when nothing waits for it.
                if not exhausted and (started[1] < limits[1] or not waiting and started[0] < limits[0]):
                    item = next(source, None)
                    if item is None:
                        exhausted = True
                    elif beside is not None and beside.takes(item):
                        submit(side, beside.work, item, 1)
                    else:
                        waiting.append(item)
                    continue
                if not pending:
                    if exhausted and not waiting:
                        break
                    continue
                collect_one()
            while pending:
                collect_one()
                while waiting and not stop.is_set():  # left by ``beside`` at the very end
                    submit(pool, work, waiting.popleft(), 0)
        except BaseException:
            stop.set()
            # Running items end quickly once stop is set; their results are still
            # recorded when complete, so nothing finished is lost.
            while pending:
                done, _ = wait(list(pending), timeout=WAIT_S)
                for future in done:
                    try:
                        record(future)
                    except Exception:
                        pass
            raise
