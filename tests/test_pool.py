"""The bounded pool: never more than WORKERS at once, rows pulled lazily, every result once."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import pytest

from audioset_downloader.engine import pool as pool_module
from audioset_downloader.engine.pool import run_bounded


def test_concurrency_and_read_ahead_are_bounded_and_every_result_arrives_once() -> None:
    lock = threading.Lock()
    running = peak = pulled = finished = 0
    max_ahead = 0
    results: list[int] = []

    def items() -> Iterator[int]:
        nonlocal pulled, max_ahead
        for i in range(200):
            pulled += 1
            max_ahead = max(max_ahead, pulled - finished)
            yield i

    def work(item: int, stop: threading.Event) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.002)
        with lock:
            running -= 1
        return item * 10

    def on_result(result: int) -> None:
        nonlocal finished
        finished += 1
        results.append(result)

    run_bounded(work, items(), 4, on_result, threading.Event())
    assert sorted(results) == [i * 10 for i in range(200)]
    assert peak == 4
    assert max_ahead <= 2 * 4 + 1  # rows stream; memory does not grow with the CSV


def test_an_error_while_recording_stops_new_work_and_is_raised() -> None:
    started: list[int] = []

    def work(item: int, stop: threading.Event) -> int:
        started.append(item)
        return item

    def on_result(result: int) -> None:
        if result == 5:
            raise OSError(28, "No space left on device")

    stop = threading.Event()
    with pytest.raises(OSError, match="No space left"):
        run_bounded(work, iter(range(1000)), 2, on_result, stop)
    assert stop.is_set()
    assert len(started) < 20


class _InterruptedAfterTaking(queue.SimpleQueue):
    """A finished-queue whose third ``get`` takes a result out and then meets Ctrl-C, as a signal can land."""

    gets = 0
    dropped: object = None  # the result in hand when Ctrl-C came

    def get(self, block: bool = True, timeout: float | None = None):  # type: ignore[override]
        item = super().get(block, timeout)
        type(self).gets += 1
        if type(self).gets == 3:
            type(self).dropped = item.result()
            raise KeyboardInterrupt
        return item


def test_ctrl_c_just_after_a_result_is_taken_still_records_it_and_never_hangs(monkeypatch) -> None:
    monkeypatch.setattr(pool_module, "SimpleQueue", _InterruptedAfterTaking)
    _InterruptedAfterTaking.gets = 0
    results: list[int] = []
    outcome: list[BaseException] = []

    def work(item: int, stop: threading.Event) -> int:
        time.sleep(0.01)
        return item

    def run() -> None:
        try:
            run_bounded(work, iter(range(50)), 4, results.append, threading.Event())
        except BaseException as exc:  # noqa: BLE001 - the Ctrl-C is what the test waits for
            outcome.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(timeout=20)
    assert not runner.is_alive(), "the pool waited forever for a result it had already taken"
    assert len(outcome) == 1 and isinstance(outcome[0], KeyboardInterrupt)
    # The result in hand at the moment of Ctrl-C is recorded, and nothing twice.
    assert _InterruptedAfterTaking.dropped in results
    assert len(results) == len(set(results)) >= 3


def test_items_beside_never_wait_behind_the_main_pools_and_the_ones_it_leaves_go_there() -> None:
    """A list where every other window is on a mirror: the main pool's items block (a paced identity) until
    every mirror item is done; the mirror items finish meanwhile, and the one it declines runs in the main pool."""
    release = threading.Event()
    order: list[str] = []
    lock = threading.Lock()

    def paced(item: int, stop: threading.Event) -> str:
        assert release.wait(10), "the main pool's items were never released"
        with lock:
            order.append(f"main {item}")
        return f"main {item}"

    def mirrored(item: int, stop: threading.Event) -> str | None:
        if item == 7:
            return None  # a copy that failed its check: to the main pool
        with lock:
            order.append(f"mirror {item}")
        return f"mirror {item}"

    results: list[str] = []

    def on_result(result: str) -> None:
        results.append(result)
        if sum(r.startswith("mirror") for r in results) == 49:
            release.set()

    beside = pool_module.Beside(lambda item: item % 2 == 1, mirrored, workers=3)
    run_bounded(paced, range(100), 2, on_result, threading.Event(), beside)
    assert sorted(results) == sorted([f"mirror {i}" for i in range(1, 100, 2) if i != 7] +
                                     [f"main {i}" for i in range(0, 100, 2)] + ["main 7"])
    first_main = next(i for i, entry in enumerate(order) if entry.startswith("main"))
    assert first_main == 49  # every mirror item ran while the main pool's first two still waited
