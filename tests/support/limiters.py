"""Rate limiters as YouTube might play them, and a run of workers against them on a fake clock.

The limiters answer requests (True: served, False: 429) at the times they are asked;
``simulate`` plays a run the way engine/worker.py does it (take a turn from the book,
wait, make a clip's requests one after another, settle the turn with ``answered`` or
``limited``) with many workers, in event order, so a test sees in a second what the
real run shows in minutes: how fast the pace settles, how many 429s it costs, how many
blocks. The same limiters play over HTTP in support/limit.py.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from audioset_downloader.inputs.settings import load_settings
from audioset_downloader.pacing.book import PacingBook
from audioset_downloader.pacing.learned import book_arguments


class Limiter(Protocol):
    blocks: int  # times it started refusing
    refused: int  # requests answered 429
    per_block: list[int]  # of which in each block
    blocked_at: list[float]

    def ask(self, now: float) -> bool: ...


@dataclass(kw_only=True)
class _Refusing:
    """What a limiter refused, and its penalty: once past its limit it refuses everything for ``penalty_s``."""

    penalty_s: float
    restart: bool = False  # every request refused starts the penalty again (asking during a block keeps it shut)
    blocks: int = 0  # times it started refusing
    refused: int = 0  # requests answered 429
    per_block: list[int] = field(default_factory=list)  # of which in each block
    blocked_at: list[float] = field(default_factory=list)  # when each block began
    blocked_until: float = field(default=-1.0, init=False)

    def answer(self, now: float, within_limit: bool) -> bool:
        """Serve (True) or refuse a request the limit itself would or would not let through."""
        if now < self.blocked_until:
            self.refused += 1
            self.per_block[-1] += 1
            if self.restart:
                self.blocked_until = now + self.penalty_s
            return False
        if not within_limit:
            self.blocked_until = now + self.penalty_s
            self.blocks += 1
            self.refused += 1
            self.per_block.append(1)
            self.blocked_at.append(now)
            return False
        return True


@dataclass(kw_only=True)
class TokenBucket(_Refusing):
    """``per_second`` requests a second, ``burst`` of them at once."""

    per_second: float
    burst: float
    tokens: float = field(init=False)
    last: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def ask(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.per_second)
        self.last = now
        served = self.answer(now, self.tokens >= 1)
        if served:
            self.tokens -= 1
        return served


@dataclass(kw_only=True)
class SlidingWindow(_Refusing):
    """At most ``requests`` in any ``window_s``."""

    requests: int
    window_s: float
    served: deque[float] = field(default_factory=deque, init=False)

    def ask(self, now: float) -> bool:
        while self.served and self.served[0] <= now - self.window_s:
            self.served.popleft()
        if self.answer(now, len(self.served) < self.requests):
            self.served.append(now)
            return True
        return False


@dataclass(kw_only=True)
class MovingBucket(TokenBucket):
    """A token bucket whose rate moves: at each time of ``moves`` (the fake clock's), to that many requests a second,
    as YouTube's limit for an address is said to tighten or loosen."""

    moves: list[tuple[float, float]] = field(default_factory=list)

    def ask(self, now: float) -> bool:
        while self.moves and self.moves[0][0] <= now:
            self.tokens = min(self.burst, self.tokens + (self.moves[0][0] - self.last) * self.per_second)
            self.last, self.per_second = self.moves[0][0], self.moves.pop(0)[1]
        return super().ask(now)


def book_from_settings(clock: Clock, **constants: object) -> PacingBook:
    """The book a run builds from download_configs.py constants (load_settings -> book_arguments), on ``clock``."""
    settings = load_settings(None, {"OUTPUT_DIR": "/nonexistent/audioset-downloader", **constants})
    return PacingBook(*book_arguments(settings), clock=clock)


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Run:
    """What a simulated run did: when each clip was answered, per identity, and the limiters' counts."""

    started: float
    ended: float
    answered: list[list[float]]  # per identity, the times its clips were answered
    limiters: list[Limiter]

    def goodput(self, since: float = 0.0) -> float:
        """Clips a second from ``since`` seconds into the run to its end."""
        times = [t for per in self.answered for t in per if t - self.started >= since]
        return len(times) / max(1e-9, self.ended - self.started - since)

    def refused(self) -> list[int]:
        return [limiter.refused for limiter in self.limiters]

    def blocks(self) -> list[int]:
        return [limiter.blocks for limiter in self.limiters]


def simulate(book: PacingBook, clock: Clock, limiters: list[Limiter], clips: int, workers: int,
             clip_s: float = 0.3, requests_per_clip: int = 3, until: float = 1e9,
             on_answer: Callable[[float], None] | None = None) -> Run:
    """``workers`` play engine/worker.py's loop until ``clips`` clips are answered (or ``until`` seconds pass)."""
    started = clock.now
    answered: list[list[float]] = [[] for _ in limiters]
    order = itertools.count()
    # (time, order, worker, identity, request, blocks): request -1 means "take a turn"; at request 0 a turn
    # that waited is confirmed first (blocks: the identity's when the turn was given; -1: it did not wait)
    events = [(clock.now, next(order), worker, -1, -1, -1) for worker in range(workers)]
    heapq.heapify(events)
    done = in_hand = 0
    while events and done < clips:
        now, _, worker, index, request, blocks = heapq.heappop(events)
        if now - started > until:
            break
        clock.now = now
        if request < 0:
            if in_hand + done >= clips:
                continue  # nothing left to take: this worker ends
            turn = book.take()
            if turn.given_up:
                break
            if turn.index < 0:
                heapq.heappush(events, (now + max(turn.wait_s, 0.01), next(order), worker, -1, -1, -1))
            else:
                in_hand += 1
                heapq.heappush(events, (now + turn.wait_s, next(order), worker, turn.index, 0,
                                        turn.blocks if turn.wait_s > 0 else -1))
            continue
        if request == 0 and blocks >= 0 and not book.confirm(index, blocks):
            in_hand -= 1
            heapq.heappush(events, (now, next(order), worker, -1, -1, -1))
            continue
        if not limiters[index].ask(now):
            book.limited(index)
            in_hand -= 1
            heapq.heappush(events, (now, next(order), worker, -1, -1, -1))
        elif request + 1 < requests_per_clip:
            heapq.heappush(events, (now + clip_s / requests_per_clip, next(order), worker, index, request + 1, -1))
        else:
            book.answered(index)
            answered[index].append(now)
            in_hand -= 1
            done += 1
            if on_answer is not None:
                on_answer(now)
            heapq.heappush(events, (now, next(order), worker, -1, -1, -1))
    return Run(started, clock.now, answered, limiters)
