"""The pacing rule for one identity: its pace, and what it learns from each answer and each refusal.

The book (book.py) decides whose turn it is and when; a policy decides how fast an identity goes.
Two follow ``Pace``: a fixed REQUESTS_PER_MINUTE (or none), and "auto" (AutoPace), a search between
the pace that held and the pace refused, each step weighed against what a refusal costs there: the
identity's block length, learnt. AutoPace's docstring is the rule, step by step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

MAX_COOL_S = 600.0  # the longest a hold must last before it counts (it doubles each time a hold proves false)
MIN_PER_MINUTE = 0.5
LONG_BLOCK_S = 120.0  # blocks longer than this are dear: the search steps small, and a first probe waits them out
# What is known of YouTube's limits (yt-dlp's wiki, "Extractors" > YouTube, and the text of its
# YouTube extractor's error; yt-dlp issues 10128, 11426, 15796): a guest session gets about 300
# videos (about 1,000 page and player requests) an hour, an account about 2,000; a session's rate
# limit lasts "up to an hour"; a bot check is the address's reputation and can last days.
GUEST_PER_HOUR = 300.0
GUEST_MARGIN = 0.9  # nothing learnt, a YouTube identity starts at this share of the guest pace
GUEST_START_PER_MINUTE = GUEST_MARGIN * GUEST_PER_HOUR / 60
YOUTUBE_BLOCK_S = 3600.0  # what a block is taken to cost before one has been measured
FIRST_CLIMB_BLOCKS = 6.0  # the guest pace holds this many blocks' worth before the first step above it


class Pace(Protocol):
    """A pacing policy for one identity: its current pace, and what it learns from answers."""

    per_minute: float | None  # None: unpaced
    ceiling: float | None  # what it has learnt of the limit (None: nothing)
    probe_after: float | None
    block_s: float  # how long its blocks last, as last measured (or the backend's prior); 0: not known
    slow_start: bool  # unpaced, clips in flight start at one and grow by one a clip answered

    def limited(self, sustained_per_minute: float | None, now: float) -> None: ...

    def recovered(self, blocked_s: float) -> None: ...

    def answered(self, now: float, held_back: bool) -> None: ...


@dataclass
class FixedPace:
    per_minute: float | None  # REQUESTS_PER_MINUTE as a number, or None: no cap
    ceiling: float | None = None  # a fixed pace learns nothing
    probe_after: float | None = None
    block_s: float = 0.0
    slow_start: bool = False  # no cap means no cap

    def limited(self, sustained_per_minute: float | None, now: float) -> None:
        pass

    def recovered(self, blocked_s: float) -> None:
        self.block_s = blocked_s

    def answered(self, now: float, held_back: bool) -> None:
        pass


@dataclass
class AutoPace:
    """A search between the pace held and the pace refused, each step weighed against a block's length.

    A step above a pace that held risks a block of ``block_s`` (B: measured at each
    block, from its first refused request to the first answer after it; before any,
    YOUTUBE_BLOCK_S for a YouTube backend). The rule: a step is taken only once the pace
    below it has held long enough that one block more is a small share of that stretch,
    scaled by how likely the step is to be refused.

    * Start. A YouTube backend with nothing learnt starts at GUEST_MARGIN x YouTube's
      guest pace and explores: the first step above it, the one most identities (guests)
      are refused at, comes after FIRST_CLIMB_BLOCKS x B (six hours with hour-long
      blocks: a guest refused there loses one hour in seven, once); each step that holds
      is followed, after B, by one EXPLORE_STEP higher, so an account climbs a quarter a
      step towards its limit. "direct" (a server of unknown limits) starts unpaced, and
      the first 429 (a burst's: it says little of the rate) starts slow start: one clip at a
      time through the identity, one more for each answered, and the next 429 sets the
      ceiling to the rate measured since the burst's block ended; the pace grows by GROWTH a
      clip from there until a 429 meets it paced.
    * A paced 429 is a pace refused: ``high``. The pace drops to what is known to pass:
      the fastest pace held since (``low``), or the identity's rate over its last cycle of
      block and burst (what a limiter refills, whatever it lets through at once), whichever
      is higher; with neither, half the pace refused.
    * Search. A pace counts as held once it has lasted CONFIRM clips and the longest of
      ``hold_s``, B, and twice the time and clips the pace last refused lasted (a limiter
      lets a burst through after every block; a pace "held" that is then refused was such
      a burst, and ``hold_s`` doubles). Each pace held is followed by one STEP higher and
      at most halfway to ``high`` (a step with an even chance of refusal), until the two
      lie within GAP. With 2 s blocks a step every 30 s; with hour-long ones every hour.
    * Settled, the pace holds ``low`` for k clips, then climbs beyond it as CUBIC does,
      slow at first and then fast, so a limit that rose is found again:
      low x (1 + (1 - DECREASE) x ((n - k) / k)^3) over the n clips since. A step past
      a pace refused is all but sure to be refused, so k is COST_FACTOR blocks' worth of
      clips at the pace (at least SETTLED_PROBE_AFTER_S worth; MIN_PROBE_AFTER_S for a pace
      an earlier run learnt, not yet searched): blocks then cost about 1 / COST_FACTOR of the
      time, whether they last 2 s (a probe every few minutes) or an hour (every two days).
    * Long blocks (over LONG_BLOCK_S: YouTube's, an hour or more), where the limit itself
      moves. A refusal costs a block's worth of clips, so after one the pace is what will
      hold, not a step of a search (_limited_long):
      - a step up refused (exploring): back to EXPLORE_BACK of it, at least the pace held;
      - refused at the very start, with nothing held: START_CUT of it; refused again soon
        after a block (within RECENT_BLOCKS of its end) with nothing held: SOON_CUT;
      - a pace that had held (for LONG_HELD_BLOCKS, or as the pace settled on), refused:
        BELOW it, as before; refused again soon after that block: the limit fell, and the
        pace is cut to FALL_CUT of the pace refused (a fall of 40 % is learnt in two blocks).
      Settled, the identity climbs a ladder (_ladder): after a wait, a rung LONG_STEP above
      the pace, and one more each time a rung holds a block's worth, so a limit that rose
      is found within hours of the first rung; a rung refused sends it back to the rung
      below. The wait is a number of blocks' worth (EXPLORED_WAIT_BLOCKS after a step up
      refused; CLOSE_WAIT_BLOCKS when that step was answered for CLOSE_SHARE of a block
      first, so went only just past the limit; PROBE_WAIT_BLOCKS otherwise, FALL_WAIT_BLOCKS after a fall, at least
      REFUSED_WAIT_BLOCKS and twice the last after a rung refused), each priced by its
      length and again by how much longer than an hour it is: a probe is rare where it is
      dear.

    benchmarks/README.md ("Pacing") measures all of this against simulated limiters,
    with blocks of seconds and of an hour, and limits that move.
    """

    per_minute: float | None = None  # None: unpaced, until the first 429 (or a pace an earlier run learnt)
    ceiling: float | None = None  # where the limit lies, as last learnt
    probe_after: float | None = None  # k: clips at the ceiling before the pace probes beyond it (None: the least)
    block_s: float = 0.0  # B: how long its blocks last, as last measured, or the backend's prior (0: none)
    exploring: bool = False  # no pace refused yet, and one above the start may be far: step up from each held
    slow_start: bool = False  # unpaced after a 429: the book lets one clip more through for each answered
    since: int = 0  # n: clips answered while the pace held the identity back, since the search settled
    measured: bool = False  # the ceiling is the first 429's rough measure: the pace grows until a 429 meets it
    low: float | None = None  # the fastest pace held since the last block
    high: float | None = None  # the pace the last block refused
    level_from: float | None = None  # the first clip answered at the present pace
    level_clips: int = 0  # clips answered at it
    open_from: float | None = None  # the first clip answered since the last block
    open_clips: int = 0  # clips answered since then
    burst_s: float = 0.0  # how long the pace the last block refused was answered before it, and how many clips
    burst_clips: int = 0
    hold_s: float = 30.0  # a pace counts as held after this long at least: doubled each time a hold proves false
    # Long blocks (LONG_BLOCK_S and more: YouTube's), where a refusal costs an hour of clips:
    recovered_at: float | None = None  # the first clip answered after the last block
    recovering: bool = False  # a block just ended: the next answer says when
    long_held: bool = False  # the last block refused a pace that had held for LONG_HELD_BLOCKS blocks' worth
    settled_from: float | None = None  # when the pace settled: the probe above it waits from there
    probe_wait: float = 0.0  # that many blocks' worth, each priced by its length (_wait_s)
    ladder: bool = False  # probing above the settled pace, a rung at a time
    DECREASE = 0.9
    BELOW = 0.97  # the pace after a 429 is at most this share of the pace refused
    HALVE = 0.5  # nothing known to pass: the pace after a 429 is this share of the pace refused
    MIN_PROBE_AFTER_S = 60.0
    SETTLED_PROBE_AFTER_S = 300.0
    COST_FACTOR = 50.0  # settled, a probe beyond the pace every 50 blocks' worth: blocks cost 2 % of the time
    GROWTH = 1.02  # a clip, after the first 429's rough measure: doubling in 35 clips
    STEP = 1.5  # the search's largest step up from a pace held
    EXPLORE_STEP = 1.25  # exploring, each step: an account's limit (5x a guest's) in 7 steps
    GAP = 0.04  # the search ends when the pace held lies within this of the pace refused: one more step
    # than at 8 % costs a block, and buys up to a point or two of goodput for the rest of the run
    LONG_STEP = 1.1  # blocks past LONG_BLOCK_S: a step is at most a tenth, as a block costs the clips of
    LONG_GAP = 0.1  # hours, and the search ends within a tenth (a step of 5 % more would be refused half the
    # time: an hour lost for each 20 h gained; one of 10 % after it, far likelier)
    CONFIRM = 3  # clips, at least, a pace lasts before it counts as held
    BURST_FACTOR = 2.0  # and at least twice as long and as many clips as the pace the last block refused
    # With long blocks, a limit that moves (issue 37): refused soon after a block, the pace was not a burst's
    # but the limit's own, and it moved.
    RECENT_BLOCKS = 2.0  # a refusal within this many blocks' worth of the last block's end is "soon after"
    LONG_HELD_BLOCKS = 4.0  # a pace that held this long, refused, then refused again soon: the limit fell
    FALL_CUT = 0.6  # and the pace is cut to this share of the pace refused the second time
    SOON_CUT = 0.8  # refused again soon with no pace held to go back to: this share of the pace refused
    START_CUT = 0.65  # refused at the very start (nothing held yet): this share of it, not half
    EXPLORE_BACK = 0.88  # refused on a step up from a pace held: back to this share of it (at least what held)
    EXPLORED_WAIT_BLOCKS = 12.0  # settled below a step up refused, a rung above is tried after this many blocks
    CLOSE_SHARE = 0.1  # a step up answered for this share of a block before its refusal went only just past the limit
    CLOSE_WAIT_BLOCKS = 2.0  # and the rung above the pace settled below it is tried sooner
    PROBE_WAIT_BLOCKS = 16.0  # settled otherwise (cut from the start, or soon again): this many
    FALL_WAIT_BLOCKS = 24.0  # after a fall: the limit that came down is not tried again soon
    REFUSED_WAIT_BLOCKS = 40.0  # after a rung refused: at least this many (and twice the last wait)

    @classmethod
    def youtube_guest(cls) -> AutoPace:
        """Nothing learnt, a YouTube backend: a guest's pace, less a margin, exploring from there."""
        return cls(GUEST_START_PER_MINUTE, GUEST_START_PER_MINUTE, block_s=YOUTUBE_BLOCK_S, exploring=True)

    def limited(self, sustained_per_minute: float | None, now: float) -> None:
        """A 429. ``sustained_per_minute``: the identity's rate over its last cycle (None: none to measure).

        Unpaced, the first starts slow start, and the next sets the ceiling to the rate measured since."""
        level_from = self.level_from if self.level_from is not None else self.open_from
        self.burst_s = now - level_from if level_from is not None else 0.0
        self.burst_clips = self.level_clips if self.level_from is not None else self.open_clips
        held_for = now - self.open_from if self.open_from is not None else 0.0
        self.open_from, self.open_clips, self.level_from, self.level_clips, self.since = None, 0, None, 0, 0
        exploring, self.exploring = self.exploring, False
        if self.per_minute is not None and self.block_s > LONG_BLOCK_S:
            self._limited_long(now, held_for, exploring, sustained_per_minute)
            return
        if self.per_minute is None:
            if not self.slow_start or sustained_per_minute is None:  # a burst's 429, or nothing answered yet
                self.slow_start = True
                return
            self.slow_start = False
            self.ceiling, self.measured = sustained_per_minute, True
            self.per_minute = self.ceiling * self.DECREASE
            return
        refused = self.per_minute
        if self.low is not None and self.low >= refused * self.BELOW:
            # A burst passed for a pace held (or the limit came down): a pace must hold longer to count.
            self.low, self.hold_s = None, min(MAX_COOL_S, 2 * self.hold_s)
        passes = max(self.low or 0.0, sustained_per_minute or 0.0) or refused * self.HALVE
        self.high, self.measured = refused, False
        self.ceiling = self.per_minute = max(MIN_PER_MINUTE, min(passes, refused * self.BELOW))

    def _limited_long(self, now: float, held_for: float, exploring: bool, sustained: float | None) -> None:
        """A paced refusal with long blocks: each costs a block's worth of clips, so the pace after it is what will
        hold, not the next step of a search, and a limit that fell is learnt in two blocks at most."""
        assert self.per_minute is not None
        refused = self.per_minute
        soon = self.recovered_at is not None and now - self.recovered_at < self.RECENT_BLOCKS * self.block_s
        fell, self.long_held = soon and self.long_held, False
        self.measured = False
        if self.ladder:  # a rung above the settled pace refused: back to the rung below, the next try later
            self.ladder, self.high = False, None
            self.per_minute = self.ceiling = self.low or refused / self.LONG_STEP
            self.settled_from, self.probe_wait = now, max(2 * self.probe_wait, self.REFUSED_WAIT_BLOCKS)
            return
        if fell:  # the second block soon after a pace long held: the limit came down, and well below it
            self.per_minute = self.ceiling = self.low = max(MIN_PER_MINUTE, refused * self.FALL_CUT)
            self.high, self.settled_from, self.probe_wait = None, now, self.FALL_WAIT_BLOCKS
            return
        # The pace refused had itself held (for hours, or as the pace settled on): if the next one is refused
        # soon too, the limit fell.
        self.long_held = self.burst_s >= self.LONG_HELD_BLOCKS * self.block_s or (
            self.low is not None and self.low >= refused * self.BELOW)
        self.high = refused
        self.probe_wait = self.PROBE_WAIT_BLOCKS
        if exploring and self.low is not None:  # a step up refused: the limit lies below it; settle there
            passes, self.high = max(self.low, refused * self.EXPLORE_BACK), None
            # A bucket's slack drains at the pace's excess over the limit: answered for minutes, it was just over.
            close = self.burst_s >= self.CLOSE_SHARE * self.block_s
            self.probe_wait = self.CLOSE_WAIT_BLOCKS if close else self.EXPLORED_WAIT_BLOCKS
        elif self.low is not None and self.low < refused * self.BELOW:
            passes = max(self.low, sustained or 0.0)
        else:  # nothing held below it (a pace long held is the limit's old self, or nothing held at all)
            passes = refused * (self.BELOW if self.long_held else self.SOON_CUT if soon else self.START_CUT)
            self.low = None
            if not self.long_held:  # cut from the start, or soon again: settle there, no search (each costs a block)
                self.high = None
        self.ceiling = self.per_minute = max(MIN_PER_MINUTE, min(passes, refused * self.BELOW))
        self.settled_from = None

    def _ladder(self, now: float) -> None:
        """Settled with long blocks: after probe_wait_s, a rung LONG_STEP above the pace, then the next each time
        one holds a block's worth; a rung refused sends it back a rung, and doubles the wait."""
        assert self.per_minute is not None and self.ceiling is not None
        if self.settled_from is None:
            self.settled_from = now
            self.probe_wait = self.probe_wait or self.PROBE_WAIT_BLOCKS
        if self.ladder:
            if self.level_from is not None and now - self.level_from >= self.block_s and \
                    self.level_clips >= self.CONFIRM:
                self.low = self.ceiling = self.per_minute
                self.per_minute *= self.LONG_STEP
                self.level_from, self.level_clips = None, 0
            return
        if now - self.settled_from >= self._wait_s():
            self.ladder, self.low = True, self.ceiling
            self.per_minute = self.ceiling * self.LONG_STEP
            self.level_from, self.level_clips = None, 0

    def _wait_s(self) -> float:
        """The wait before a rung above a settled pace: ``probe_wait`` blocks' worth, and longer again with blocks
        longer than YouTube's hour, since a rung refused costs one (2.5 h blocks: 2.5 times as many)."""
        return self.probe_wait * self.block_s * max(1.0, self.block_s / YOUTUBE_BLOCK_S)

    def recovered(self, blocked_s: float) -> None:
        """Answered again after a block that lasted ``blocked_s``: the price of the next refusal."""
        self.recovering = True
        self.block_s = blocked_s
        if self.ceiling is None or self.per_minute is None:
            return
        self.probe_after = self.COST_FACTOR * blocked_s * self.per_minute / 60  # the clips the block cost

    def answered(self, now: float, held_back: bool) -> None:
        """A clip answered; ``held_back``: its turn waited for the pace, so the pace is what binds."""
        if self.open_from is None:
            self.open_from = now
        if self.recovering:
            self.recovered_at, self.recovering = now, False
        self.open_clips += 1
        if self.ceiling is None or self.per_minute is None or not held_back:
            return
        if self.measured:
            self.per_minute *= self.GROWTH
            return
        if self.level_from is None:
            self.level_from = now
        self.level_clips += 1
        if self.exploring or (self.high is not None and (self.low is None or self.high > self.low * (1 + self._gap()))):
            self._search(now)
            return
        if self.block_s > LONG_BLOCK_S:
            self._ladder(now)
            return
        self.since += 1
        least_s = self.SETTLED_PROBE_AFTER_S if self.low is not None else self.MIN_PROBE_AFTER_S
        k = max(self.probe_after or 0.0, least_s * self.ceiling / 60, 1.0)
        # Settled on a pace held: from the ceiling itself, after k clips there; else from below it, as CUBIC does.
        n = max(k, self.since) if self.low is not None else self.since
        self.per_minute = max(MIN_PER_MINUTE, self.ceiling * (1 + (1 - self.DECREASE) * ((n - k) / k) ** 3))
        if self.per_minute <= self.ceiling * (1 + self._gap()):
            # Not yet past the pace held: a 429 to come counts its burst from here, not from the settling,
            # else the search after it would wait twice the whole settled stretch for each step.
            self.level_from, self.level_clips = now, 0
        if self.high is not None and self.per_minute > self.high:
            self.high = None  # past the pace once refused without a 429: the limit has moved

    def _search(self, now: float) -> None:
        assert self.per_minute is not None and self.level_from is not None
        held_s = now - self.level_from
        first_climb = FIRST_CLIMB_BLOCKS * self.block_s if self.exploring and self.low is None else 0.0
        if (self.level_clips < max(self.CONFIRM, self.BURST_FACTOR * self.burst_clips)
                or held_s < max(self.hold_s, self.BURST_FACTOR * self.burst_s, self.block_s, first_climb)):
            return
        self.low = self.per_minute
        if self.high is None:  # exploring: no pace refused yet
            self.ceiling = self.low
            self.per_minute = self.low * self.EXPLORE_STEP
            self.level_from, self.level_clips = None, 0
        elif self.high > self.low * (1 + self._gap()):
            step = self.LONG_STEP if self.block_s > LONG_BLOCK_S else self.STEP
            self.per_minute = min(self.low * step, (self.low + self.high) / 2)
            self.level_from, self.level_clips = None, 0
        else:
            self.ceiling = self.low

    def _gap(self) -> float:
        return self.LONG_GAP if self.block_s > LONG_BLOCK_S else self.GAP
