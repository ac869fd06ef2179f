"""The bounded pool: never more than WORKERS at once, rows pulled lazily, every result once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

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
