"""Pacing per identity: which identity the next clip attempt goes out through, and when.

YouTube limits each address and each account (about 300 videos an hour for a guest,
then HTTP 429 or "confirm you're not a bot"), so that limit, not bandwidth, bounds a
download. The book keeps, for every identity of the run, its pace (clip attempts per
minute) and whether it is cooling down after a 429. Before each attempt a worker
takes a turn: the identity free soonest, and how long to wait for it. A 429 cools
only the identity that got it (exponential, with jitter); the clip goes on through
another. Only when every identity is cooling does the run wait, and after
MAX_BACKOFF_MINUTES of that it gives up.

One book serves a whole run: the workers of a process share the object, the CSV
processes of a local run one hosted by a multiprocessing manager (``hosted_book``),
a Dask run's workers one hosted by a Dask actor (dask_engine.py). It answers with
waits, never clock times, so the clocks of other machines do not matter.

Each identity's pace follows a policy: a fixed REQUESTS_PER_MINUTE, none, or "auto",
learnt the way TCP learns its window: unpaced until the first 429 (slow start ends
at half the rate measured then), multiplicative decrease on each later block,
additive increase after each answered clip while the pace is what holds the
identity back: quickly up to just under the rate that last drew a 429, slowly
beyond it, so a long run settles under the limit instead of bouncing off it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import Protocol

from .layout import write_atomically
from .settings import Settings

log = logging.getLogger(__name__)

HORIZON_S = 1.0  # turns are handed out at most this far ahead, so no turn outlives news of a 429
MAX_COOL_S = 600.0  # a blocked identity is tried again at least every ten minutes
MEASURE_S = 20.0  # the window over which an unpaced identity's rate is measured
MIN_PER_MINUTE = 0.5
GUEST_PER_HOUR = 300.0  # YouTube's limit for a guest session, about: the ETA's guess before anything is learnt
LEARNED_FILE = "identities.json"


class Pace(Protocol):
    """A pacing policy for one identity: its current pace, and what it learns from answers."""

    per_minute: float | None  # None: unpaced

    def limited(self, measured_per_minute: float) -> None: ...

    def answered(self) -> None: ...


@dataclass
class FixedPace:
    per_minute: float | None  # REQUESTS_PER_MINUTE as a number, or None: no cap

    def limited(self, measured_per_minute: float) -> None:
        pass

    def answered(self) -> None:
        pass


@dataclass
class AutoPace:
    """Additive increase, multiplicative decrease, relative to the rate that last drew a 429."""

    per_minute: float | None = None  # None until the first 429, or a rate learnt by an earlier run
    ceiling: float | None = None  # the pace at the last 429
    SLOW_START_EXIT = 0.5
    DECREASE = 0.85
    NEAR = 0.95  # below NEAR x ceiling the pace climbs RAMP x ceiling per clip, above it PROBE x ceiling
    RAMP = 0.01
    PROBE = 0.001

    def limited(self, measured_per_minute: float) -> None:
        if self.per_minute is None:  # the end of slow start: TCP halves its window here
            self.ceiling = measured_per_minute
            self.per_minute = max(MIN_PER_MINUTE, measured_per_minute * self.SLOW_START_EXIT)
        else:
            self.ceiling = self.per_minute
            self.per_minute = max(MIN_PER_MINUTE, self.per_minute * self.DECREASE)

    def answered(self) -> None:
        if self.per_minute is None:
            return
        ceiling = self.ceiling or self.per_minute
        step = self.RAMP if self.per_minute < self.NEAR * ceiling else self.PROBE
        self.per_minute += step * ceiling


def pace_for(settings: Settings, learned_per_minute: float | None) -> Pace:
    if settings.requests_per_minute == "auto":
        return AutoPace(learned_per_minute, learned_per_minute)
    assert not isinstance(settings.requests_per_minute, str)
    return FixedPace(settings.requests_per_minute)


@dataclass(frozen=True)
class Turn:
    """The book's answer: go through identity ``index`` after ``wait_s``; index -1: ask again then."""

    index: int
    wait_s: float
    given_up: bool = False  # every identity has been cooling for MAX_BACKOFF_MINUTES


@dataclass(frozen=True)
class Cooling:
    """What a 429 did, for the worker to log: None from the book when the identity was already cooling."""

    name: str
    cool_s: float
    per_minute: float | None
    all_cooling: bool


@dataclass
class IdentityStats:
    """One identity over the run: the log's and the summary's line."""

    name: str
    clips: int = 0  # attempts it answered (written or failed for the video's reasons)
    rate_limited: int = 0  # 429s and bot checks
    cooling_s: float = 0.0
    per_minute: float | None = None  # its pace at the end (learnt, with "auto")

    def line(self) -> str:
        pace = f"pace {self.per_minute:.1f}/min" if self.per_minute else "unpaced"
        return (f"identity {self.name}: {self.clips} clips, {self.rate_limited} rate-limited, "
                f"{self.cooling_s:.0f} s cooling, {pace}")


@dataclass
class _Identity:
    name: str
    pace: Pace
    next_start: float = 0.0
    cooling_until: float = 0.0
    strikes: int = 0  # blocks in a row with no answer between them
    held_back: bool = False  # its last turn waited for its pace: the pace binds, so it may rise
    stats: IdentityStats = field(init=False)
    starts: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.stats = IdentityStats(self.name)

    def ready_at(self, now: float) -> float:
        return max(now, self.next_start, self.cooling_until)

    def measured_per_minute(self, now: float) -> float:
        while self.starts and self.starts[0] < now - MEASURE_S:
            self.starts.popleft()
        span = max(1.0, now - self.starts[0]) if self.starts else MEASURE_S
        return 60.0 * len(self.starts) / span


class PacingBook:
    """Every identity's pace and cooldown, for the whole run (thread-safe; see the module's docstring)."""

    def __init__(self, names: Sequence[str], paces: Sequence[Pace], first_cool_s: float, max_cooling_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._identities = [_Identity(name, pace) for name, pace in zip(names, paces, strict=True)]
        self._first_cool_s = first_cool_s
        self._max_cooling_s = max_cooling_s
        self._clock = clock
        self._lock = threading.Lock()
        self._all_cooling_since: float | None = None

    def take(self) -> Turn:
        with self._lock:
            now = self._clock()
            if all(identity.cooling_until > now for identity in self._identities):
                if self._all_cooling_since is None:
                    self._all_cooling_since = now
                if now - self._all_cooling_since > self._max_cooling_s:
                    return Turn(-1, 0.0, given_up=True)
            index = min(range(len(self._identities)),
                        key=lambda i: (self._identities[i].ready_at(now), self._identities[i].stats.clips))
            identity = self._identities[index]
            start = identity.ready_at(now)
            if start - now > HORIZON_S:
                return Turn(-1, HORIZON_S)
            identity.held_back = identity.next_start > now
            per_minute = identity.pace.per_minute
            identity.next_start = start + (60.0 / per_minute if per_minute else 0.0)
            identity.starts.append(start)
            return Turn(index, start - now)

    def limited(self, index: int) -> Cooling | None:
        """Identity ``index`` was refused as rate-limited: cool it down, slow its pace."""
        with self._lock:
            now = self._clock()
            identity = self._identities[index]
            identity.stats.rate_limited += 1
            if now < identity.cooling_until:
                return None  # the clips already under way when it was blocked: one block, one step
            if identity.strikes == 0:  # a long block is one event, however often it is probed
                identity.pace.limited(identity.measured_per_minute(now))
            cool_s = min(MAX_COOL_S, self._first_cool_s * 2 ** identity.strikes) * random.uniform(0.75, 1.25)
            identity.strikes += 1
            identity.cooling_until = now + cool_s
            identity.next_start = identity.cooling_until  # then one clip at a time, at the pace
            identity.stats.cooling_s += cool_s
            all_cooling = all(other.cooling_until > now for other in self._identities)
            return Cooling(identity.name, cool_s, identity.pace.per_minute, all_cooling)

    def answered(self, index: int) -> None:
        """A request through identity ``index`` was answered (not rate-limited)."""
        with self._lock:
            identity = self._identities[index]
            identity.stats.clips += 1
            identity.strikes = 0
            self._all_cooling_since = None
            if identity.held_back:
                identity.pace.answered()

    def stats(self) -> list[IdentityStats]:
        with self._lock:
            now = self._clock()
            report = []
            for identity in self._identities:
                unserved = max(0.0, identity.cooling_until - now)  # a cooldown the run did not live to see end
                report.append(IdentityStats(identity.name, identity.stats.clips, identity.stats.rate_limited,
                                            round(identity.stats.cooling_s - unserved, 1),
                                            identity.pace.per_minute))
            return report

    def per_minute(self) -> float | None:
        """The run's paced rate (clip attempts per minute, all identities), or None if any is unpaced."""
        with self._lock:
            paces = [identity.pace.per_minute for identity in self._identities]
        return None if any(p is None for p in paces) else sum(p for p in paces if p is not None)


class Book(Protocol):
    """What a worker holds: a PacingBook, or a proxy for one in another process."""

    def take(self) -> Turn: ...

    def limited(self, index: int) -> Cooling | None: ...

    def answered(self, index: int) -> None: ...

    def stats(self) -> list[IdentityStats]: ...

    def per_minute(self) -> float | None: ...


def book_arguments(settings: Settings) -> tuple[list[str], list[Pace], float, float]:
    """PacingBook's arguments for the run's identities, "auto" starting from the paces earlier runs learnt."""
    learned = load_learned(settings.output_dir)
    identities = settings.identity_list
    return ([identity.name for identity in identities],
            [pace_for(settings, learned.get(identity.name)) for identity in identities],
            settings.retry_backoff, settings.max_backoff_minutes * 60)


def new_book(settings: Settings) -> PacingBook:
    return PacingBook(*book_arguments(settings))


class _BookManager(BaseManager):
    pass


_BookManager.register("PacingBook", new_book)


@contextlib.contextmanager
def hosted_book(settings: Settings) -> Iterator[Book]:
    """One book for several processes: it lives in a manager process, they hold picklable proxies."""
    import multiprocessing

    manager = _BookManager(ctx=multiprocessing.get_context("spawn"))
    manager.start()
    try:
        yield manager.PacingBook(settings)  # type: ignore[attr-defined]
    finally:
        manager.shutdown()


# ---------------------------------------------------------------- what runs learn
# OUTPUT_DIR/identities.json: per identity, the pace "auto" ended at, so the next run
# starts there instead of bouncing off the limit again, and --dry-run can say how long.


def load_learned(output_dir: Path) -> dict[str, float]:
    """Identity name -> clip attempts per minute, as learnt by earlier runs ({} when none)."""
    try:
        data = json.loads((output_dir / LEARNED_FILE).read_text(encoding="utf-8"))
        rates = {str(name): float(entry["per_minute"]) for name, entry in data["identities"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("%s: unreadable (%s); pacing starts afresh", output_dir / LEARNED_FILE, exc)
        return {}
    return {name: rate for name, rate in rates.items() if math.isfinite(rate) and rate >= MIN_PER_MINUTE}


def save_learned(output_dir: Path, stats: Sequence[IdentityStats]) -> None:
    """Keep what this run learnt, beside what earlier runs learnt of other identities."""
    previous = {}
    with contextlib.suppress(FileNotFoundError, ValueError, OSError, KeyError, TypeError):
        previous = json.loads((output_dir / LEARNED_FILE).read_text(encoding="utf-8"))["identities"]
    for entry in stats:
        if entry.per_minute is not None and entry.rate_limited:  # a pace that never met the limit says nothing
            previous[entry.name] = {**asdict(entry), "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if previous:
        write_atomically(output_dir / LEARNED_FILE, json.dumps({"identities": previous}, indent=2) + "\n")


def planned_per_minute(settings: Settings) -> tuple[float, str]:
    """The paced rate a run will go at (clip attempts per minute, all identities), and where it comes from."""
    identities = settings.identity_list
    if settings.requests_per_minute is None:
        return math.inf, "no cap (REQUESTS_PER_MINUTE = None)"
    if settings.requests_per_minute != "auto":
        assert not isinstance(settings.requests_per_minute, str)
        return settings.requests_per_minute * len(identities), \
            f"REQUESTS_PER_MINUTE = {settings.requests_per_minute:g} x {len(identities)} identities"
    learned = load_learned(settings.output_dir)
    known = [learned[identity.name] for identity in identities if identity.name in learned]
    guessed = len(identities) - len(known)
    parts = []
    if known:
        parts.append(f"{len(known)} at the pace learnt by earlier runs ({settings.output_dir / LEARNED_FILE})")
    if guessed:
        parts.append(f"{guessed} at {GUEST_PER_HOUR:g} clips an hour (YouTube's guest limit, about; "
                     "nothing learnt yet)")
    return sum(known) + guessed * GUEST_PER_HOUR / 60, "; ".join(parts)
