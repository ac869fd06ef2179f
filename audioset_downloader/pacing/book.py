"""Pacing per identity: which identity the next clip attempt goes out through, and when.

YouTube limits each address and each account (about 300 videos an hour for a guest,
then HTTP 429 or "confirm you're not a bot"), so that limit, not bandwidth, bounds a
download, and a refusal shuts the identity for up to an hour. The book keeps, for
every identity of the run, its pace (clip attempts per minute) and whether it is
blocked. Before each attempt a worker takes a turn: the identity free soonest, and how
long to wait for it. A refusal blocks only the identity that got it; the clip goes on
through another. Only when every identity is blocked does the run wait, and after
MAX_BACKOFF_MINUTES of that, once each has had GIVE_UP_PROBES probes refused (or a bot check), it gives up.

After a block, one clip goes first (the probe); the others follow at the pace once it is
answered. The first probe waits about as long as the identity's blocks have been lasting,
learnt from the probes refused and answered before; from the second probe refused on,
each doubles the wait (past an hour where it must; an hour-long prior not yet measured grows by half from the
fourth probe: about 1, 2, 3, 4.5 h), so a limiter that starts its penalty again at every request refused still
lets the identity back. A bot check ("confirm you're not a bot") is the
address's reputation, not its pace: it stops the identity, and its probes start at
BOT_CHECK_WAIT_S. A turn is handed out up to HORIZON_S ahead; when its wait is over the
worker confirms it, and a turn whose identity was blocked meanwhile is given back.

One book serves a whole run: the workers of a process share the object, the CSV
processes of a local run one hosted by a multiprocessing manager (engine/shared.py),
a Dask run's workers one kept on the scheduler (dask_book.py). It answers with
waits, never clock times, so the clocks of other machines do not matter.

Each identity's pace follows a policy: a fixed REQUESTS_PER_MINUTE, none, or "auto"
(AutoPace), which weighs every step above a pace that held against what a refusal
costs there: the identity's block length, learnt.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from audioset_downloader.pacing.policy import (
    LONG_BLOCK_S,
    Pace,
)

log = logging.getLogger(__name__)

GIVE_UP_PROBES = 4  # probes refused in a block, each identity, before the run may give up on them all
LONG_PROBE_GROWTH = 1.5  # long blocks, nothing learnt: each probe refused makes the next wait this much longer
HORIZON_S = 1.0  # turns are handed out at most this far ahead, so no turn outlives news of a 429
MAX_LEARNT_COOL_S = 3600.0  # YouTube's longest blocks, by every report: a first probe never waits longer
MAX_PROBE_WAIT_S = 8 * 3600.0  # the doubling of waits after refused probes stops here
MAX_BOT_CHECK_WAIT_S = 48 * 3600.0  # and for a bot check, which reports say can last days
MIN_SPAN_S = 1.0  # an identity's rate is measured over at least this long, so a burst is not taken for a rate
LOWER_DECAY = 0.75  # a block whose first probe was answered may have ended sooner: its lower bound fades
BURST_CUT = 0.5  # a 429 that cuts the pace to less than this share of itself ended a burst, not a pace
SETTLED = 1.15  # bounds this close: the first probe waits the upper one
# A bot check is the address's reputation, not its pace, and reports say it can last days.
BOT_CHECK_WAIT_S = 6 * 3600.0  # a bot check's first probe, doubling after each refused one


@dataclass(frozen=True)
class Turn:
    """The book's answer: go through identity ``index`` after ``wait_s``; index -1: ask again then."""

    index: int
    wait_s: float
    given_up: bool = False  # every identity has been cooling for MAX_BACKOFF_MINUTES, its probes refused
    blocks: int = 0  # the identity's blocks when the turn was given: ``confirm`` checks none came since
    name: str = ""  # the identity's name (a machine's own identity exists only in the book)


@dataclass(frozen=True)
class Cooling:
    """What a 429 did, for the worker to log: None from the book when the identity was already cooling."""

    name: str
    cool_s: float
    per_minute: float | None
    all_cooling: bool
    bot_check: bool = False  # "confirm you're not a bot", not a 429
    why: str = ""  # why the next probe waits that long, for the log


@dataclass
class IdentityStats:
    """One identity over the run: the log's and the summary's line."""

    name: str
    clips: int = 0  # attempts it answered (written or failed for the video's reasons)
    rate_limited: int = 0  # refused requests: 429s and bot checks
    cooling_s: float = 0.0
    per_minute: float | None = None  # its pace at the end (learnt, with "auto")
    ceiling: float | None = None  # "auto": the pace its limit lies just under, as learnt
    probe_after: float | None = None  # "auto": clips after a 429 before it probes beyond the ceiling
    block_s: float | None = None  # how long its blocks last, as last measured (None: none measured yet)
    blocks: int = 0  # blocks met (a block is one event, however many requests it refused)
    bot_checks: int = 0  # of which bot checks
    blocked_for_s: float = 0.0  # still blocked for this long when the stats were taken
    exploring: bool = False  # "auto", never refused yet: still climbing from where it started

    def line(self) -> str:
        pace = f"pace {self.per_minute:.1f}/min" if self.per_minute else "unpaced"
        blocked = ("; blocked: refused every time (use it again later, or drop it from IDENTITIES)"
                   if self.rate_limited and not self.clips else "")
        learnt = f", blocks last {duration_words(self.block_s)}" if self.block_s else ""
        bots = f" ({self.bot_checks} bot checks)" if self.bot_checks else ""
        return (f"identity {self.name}: {self.clips} clips, {self.blocks} blocks{bots}, "
                f"{self.rate_limited} requests refused, {self.cooling_s:.0f} s cooling, {pace}{learnt}{blocked}")


def duration_words(seconds: float) -> str:
    """A wait or a block's length as a person reads it: "12 s", "58 min", "6.1 h"."""
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


@dataclass
class _Identity:
    name: str
    pace: Pace
    machine: str | None = None  # PER_MACHINE_IDENTITY: the worker machine whose own address it is
    next_start: float = 0.0
    cooling_until: float = 0.0
    strikes: int = 0  # blocks in a row with no answer between them
    blocked_since: float = 0.0  # the first of those blocks
    blocks: int = 0  # blocks it has met in this run
    probing: bool = False  # after a block, one clip goes first; the others wait for its answer
    in_flight: int = 0  # turns taken and not yet settled
    last_cool_s: float = 0.0  # the wait before the probe under way (or due): a refused probe doubles it
    window: int = 1  # unpaced slow start: at most this many in flight, one more for each clip answered
    bot_block: bool = False  # its present block is a bot check: it teaches nothing of its rate limit
    held_back: bool = False  # its last turn waited for its pace: the pace binds, so it may rise
    turns: int = 0  # taken: among identities free at once, the least used goes first
    measured_from: float | None = None  # the start of its last block, or its first turn: its rate's span
    answered_since: int = 0  # clips answered since then
    probe_at: float = 0.0  # when the probe under way went out
    block_lower: float = 0.0  # how long its blocks last, as learnt: longer than a probe refused,
    block_upper: float = 0.0  # and no longer than a probe answered (0: not known yet)
    refused_probe: bool = False  # a probe was refused in this block
    burst_block: bool = False  # its present block ended a burst (slow start, or a pace far too fast)
    bounds_from_burst: bool = False  # block_lower and block_upper were last learnt in such a block
    stats: IdentityStats = field(init=False)

    def __post_init__(self) -> None:
        self.stats = IdentityStats(self.name)

    def cooling(self, now: float) -> bool:
        return now < self.cooling_until or self.probing

    def ready_at(self, now: float) -> float:
        if self.probing or (self.pace.slow_start and self.pace.per_minute is None and self.in_flight >= self.window):
            return math.inf
        return max(now, self.next_start, self.cooling_until)

    def probe_refused(self, now: float) -> None:
        """A probe was refused: its blocks last longer than that."""
        refused_after = now - self.blocked_since
        self.refused_probe = True
        self.block_lower = max(self.block_lower, refused_after)
        if refused_after >= self.block_upper:
            self.block_upper = 0.0  # longer than a probe once answered: its blocks got longer

    def probe_answered(self) -> None:
        """Its probe was answered: its blocks last no longer than that. Answered at once, the block may have
        ended sooner: the lower bound fades, so the next block's first probe comes earlier."""
        self.bounds_from_burst = self.burst_block
        answered_after = self.probe_at - self.blocked_since
        self.block_upper = answered_after
        if not self.refused_probe:
            self.block_lower *= LOWER_DECAY
        if self.block_lower >= answered_after:
            self.block_lower = 0.0

    def sustained_per_minute(self, now: float) -> float | None:
        """The rate it was answered at since its last block began, that block included (None: nothing answered).

        Over a whole cycle of block, burst and pace, a limiter lets through what it
        refills: its rate, however much it lets through at once. None: nothing answered,
        or no block yet while paced."""
        if not self.answered_since or self.measured_from is None:
            return None
        if self.pace.per_minute is not None and not self.blocks:
            return None  # paced since its first turn: the span says what the pace was, not the limit
        return 60.0 * self.answered_since / max(MIN_SPAN_S, now - self.measured_from)


class PacingBook:
    """Every identity's pace and cooldown, for the whole run (thread-safe; see the module's docstring).

    Each turn taken is settled by one call: ``answered``, ``limited`` or ``missed``.
    """

    def __init__(self, names: Sequence[str], paces: Sequence[Pace], first_cool_s: float, max_cooling_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._identities = [_Identity(name, pace) for name, pace in zip(names, paces, strict=True)]
        self._first_cool_s = first_cool_s
        self._max_cooling_s = max_cooling_s
        self._clock = clock
        self._lock = threading.Lock()
        self._all_cooling_since: float | None = None
        self._machine_pace: Callable[[str], Pace] | None = None

    def add_machines(self, pace_of: Callable[[str], Pace]) -> None:
        """PER_MACHINE_IDENTITY: each machine that asks for a turn gets an identity of its own, named after its
        address, paced by ``pace_of(address)``; its turns go through it or the identities every machine shares."""
        self._machine_pace = pace_of

    def take(self, machine: str | None = None) -> Turn:
        """The next turn for a worker on ``machine`` (None: any identity; only machine identities need it)."""
        with self._lock:
            now = self._clock()
            usable = self._usable(machine)
            if all(self._identities[i].cooling(now) for i in usable):
                if self._all_cooling_since is None:
                    self._all_cooling_since = now
                # Given up only once each is known to be shut, not just blocked longer than the limit expected:
                # GIVE_UP_PROBES refused in its block (a block of 4 hours answers the fifth), or a bot check.
                if now - self._all_cooling_since > self._max_cooling_s and all(
                        self._identities[i].bot_block or self._identities[i].strikes > GIVE_UP_PROBES for i in usable):
                    return Turn(-1, 0.0, given_up=True)
            index = min(usable, key=lambda i: (self._identities[i].ready_at(now), self._identities[i].turns))
            identity = self._identities[index]
            start = identity.ready_at(now)
            if start - now > HORIZON_S:
                return Turn(-1, HORIZON_S)
            identity.held_back = identity.next_start > now
            identity.turns += 1
            identity.probing = identity.strikes > 0
            if identity.probing:
                identity.probe_at = start
            identity.in_flight += 1
            if identity.measured_from is None:
                identity.measured_from = start
            per_minute = identity.pace.per_minute
            identity.next_start = start + (60.0 / per_minute if per_minute else 0.0)
            return Turn(index, start - now, blocks=identity.blocks, name=identity.name)

    def _usable(self, machine: str | None) -> list[int]:
        """The identities a worker on ``machine`` may go out through: the shared ones and its machine's own,
        which is added the first time the machine asks."""
        if machine is not None and self._machine_pace is not None and \
                not any(identity.machine == machine for identity in self._identities):
            shared = {identity.name for identity in self._identities}
            name = machine if machine not in shared else f"machine-{machine}"
            self._identities.append(_Identity(name, self._machine_pace(machine), machine=machine))
        return [i for i, identity in enumerate(self._identities) if identity.machine in (None, machine)]

    def confirm(self, index: int, blocks: int) -> bool:
        """Asked when a turn's wait is over: False (and the turn given back) if the identity was blocked
        meanwhile. A turn is given up to HORIZON_S ahead, and at a fast pace several wait at once: each
        would be one more 429 into the block."""
        with self._lock:
            identity = self._identities[index]
            if identity.blocks == blocks and self._clock() >= identity.cooling_until:
                return True
            identity.in_flight = max(0, identity.in_flight - 1)
            return False

    def limited(self, index: int, bot_check: bool = False) -> Cooling | None:
        """Identity ``index`` was refused (a 429, or with ``bot_check`` a bot check): block it, slow its pace."""
        with self._lock:
            now = self._clock()
            identity = self._identities[index]
            identity.stats.rate_limited += 1
            identity.in_flight = max(0, identity.in_flight - 1)
            if now < identity.cooling_until:
                return None  # the clips already under way when it was blocked: one block, one step
            if identity.strikes == 0:  # a long block is one event, however often it is probed
                before = identity.pace.per_minute
                identity.pace.limited(identity.sustained_per_minute(now), now)
                after = identity.pace.per_minute
                identity.burst_block = before is None or (after is not None and after < BURST_CUT * before)
                identity.blocked_since = identity.measured_from = now
                identity.window = 1
                identity.blocks += 1
                identity.stats.blocks += 1
                identity.answered_since = 0
                identity.refused_probe = False
                identity.bot_block = bot_check
                identity.stats.bot_checks += bot_check
            else:
                identity.bot_block = identity.bot_block or bot_check
                if not identity.bot_block:
                    identity.probe_refused(now)
            cool_s, why = self._cool_s(identity, now)
            identity.strikes += 1
            identity.probing = False
            identity.last_cool_s = cool_s
            identity.cooling_until = now + cool_s
            identity.next_start = identity.cooling_until
            identity.stats.cooling_s += cool_s
            all_cooling = all(other.cooling(now) for other in self._identities)
            return Cooling(identity.name, cool_s, identity.pace.per_minute, all_cooling, identity.bot_block, why)

    def _cool_s(self, identity: _Identity, now: float) -> tuple[float, str]:
        """How long until the block's next probe, and why. From the second probe refused on, each doubles the
        wait before the next (up to MAX_PROBE_WAIT_S), so a limiter that restarts its penalty at every request
        refused still lets the identity back. A bot check: BOT_CHECK_WAIT_S, doubling.

        Otherwise, the first probe: nothing learnt, the backend's prior (an hour for YouTube) or
        RETRY_BACKOFF; learnt, halfway between the bounds on its blocks' length (at the upper one once
        they are close); after a probe refused, at least the upper one.

        Bounds learnt only in blocks that ended a burst overstate a paced block: a burst empties a limiter
        (a sliding window refuses for its whole span), a pace a step too fast overdraws it by a clip or so.
        So the first paced block after them is probed once early, RETRY_BACKOFF and one clip at the pace
        in; refused, the next probe waits the upper bound, as after any probe refused."""
        if identity.bot_block:
            wait = max(BOT_CHECK_WAIT_S, 2 * identity.last_cool_s if identity.strikes else 0.0)
            return min(MAX_BOT_CHECK_WAIT_S, wait * random.uniform(1.0, 1.1)), "a bot check: probed rarely"
        # After the second probe refused the bounds learnt are wrong, or the penalty starts again at each.
        doubled = 2 * identity.last_cool_s if identity.strikes >= 2 else 0.0
        elapsed = now - identity.blocked_since
        why = "each probe refused doubles the wait" if identity.strikes else ""
        if not identity.block_upper:
            prior = identity.pace.block_s
            if prior:  # the backend's prior, or a length an earlier run measured
                # An hour-long prior: a probe an hour for three hours, then each half as long again (about 1, 2, 3,
                # 4.5, 6.75 h...), so blocks of 2-4 hours are found within the hour after their end (doubling found
                # a 4 h one at 7 h), and a block that restarts at each refusal is still left behind (the next probe
                # waits out the block it restarted).
                if prior > LONG_BLOCK_S:
                    steps = prior * LONG_PROBE_GROWTH ** max(0, identity.strikes - 2)
                else:
                    steps = prior * 2 ** identity.strikes
                wait = steps * random.uniform(1.0, 1.1)
                return min(MAX_PROBE_WAIT_S, wait), why or f"blocks are taken to last {duration_words(prior)}"
            wait = self._first_cool_s * 2 ** identity.strikes * random.uniform(0.75, 1.25)
            return min(MAX_PROBE_WAIT_S, wait), why or "RETRY_BACKOFF: nothing learnt of its blocks yet"
        if identity.strikes == 0 and identity.bounds_from_burst and not identity.burst_block:
            per_minute = identity.pace.per_minute
            target = min(identity.block_upper, self._first_cool_s + (60.0 / per_minute if per_minute else 0.0))
        elif identity.strikes == 0:
            lower = max(identity.block_lower, self._first_cool_s)
            upper = identity.block_upper
            # Halfway saves half a block when answered; past LONG_BLOCK_S a refused probe may start the block
            # again (YouTube's, by reports), which costs a whole one.
            target = upper if upper <= SETTLED * lower or upper > LONG_BLOCK_S else (lower + upper) / 2
        else:
            target = identity.block_upper
        wait = min(MAX_LEARNT_COOL_S, max(self._first_cool_s, target * random.uniform(1.0, 1.1) - elapsed))
        return min(MAX_PROBE_WAIT_S, max(wait, doubled)), why or f"its blocks last {duration_words(target)}, as learnt"

    def answered(self, index: int) -> None:
        """A clip through identity ``index`` was answered (written, or refused for the video's reasons)."""
        with self._lock:
            now = self._clock()
            identity = self._identities[index]
            identity.stats.clips += 1
            identity.in_flight = max(0, identity.in_flight - 1)
            identity.window += 1
            if now < identity.cooling_until:
                return  # a clip started before the block came: it says nothing of the block
            if identity.strikes and identity.bot_block:
                identity.bot_block = False  # a bot check's length says nothing of its rate limit's blocks
            elif identity.strikes:
                identity.probe_answered()
                identity.pace.recovered(now - identity.blocked_since)
                identity.stats.block_s = identity.pace.block_s
                if identity.pace.slow_start:  # slow start measures its own climb, not the burst's block
                    identity.measured_from, identity.answered_since = now, 0
            identity.strikes = 0
            identity.probing = False
            self._all_cooling_since = None
            identity.answered_since += 1
            identity.pace.answered(now, identity.held_back)

    def missed(self, index: int) -> None:
        """A clip through identity ``index`` got no answer at all (network trouble): it says nothing of the limit."""
        with self._lock:
            self._identities[index].probing = False
            self._identities[index].in_flight = max(0, self._identities[index].in_flight - 1)

    def stats(self) -> list[IdentityStats]:
        with self._lock:
            now = self._clock()
            report = []
            for identity in self._identities:
                unserved = max(0.0, identity.cooling_until - now)  # a cooldown the run did not live to see end
                report.append(replace(identity.stats, cooling_s=round(identity.stats.cooling_s - unserved, 1),
                                      per_minute=identity.pace.per_minute, ceiling=identity.pace.ceiling,
                                      probe_after=identity.pace.probe_after, blocked_for_s=round(unserved, 1),
                                      exploring=getattr(identity.pace, "exploring", False)))
            return report

    def per_minute(self) -> float | None:
        """The run's paced rate (clip attempts per minute, all identities), or None if any is unpaced."""
        with self._lock:
            paces = [identity.pace.per_minute for identity in self._identities]
        return None if any(p is None for p in paces) else sum(p for p in paces if p is not None)


class Book(Protocol):
    """What a worker holds: a PacingBook, or a proxy for one in another process."""

    def take(self, machine: str | None = None) -> Turn: ...

    def confirm(self, index: int, blocks: int) -> bool: ...

    def limited(self, index: int, bot_check: bool = False) -> Cooling | None: ...

    def answered(self, index: int) -> None: ...

    def missed(self, index: int) -> None: ...

    def stats(self) -> list[IdentityStats]: ...

    def per_minute(self) -> float | None: ...
