"""The pacing book and its "auto" policy on a clock the test moves: exact, and quick.

A simulated identity limit (a token bucket and a penalty, as support/limit.py plays
it over HTTP) answers the book's turns, so the policy is seen converging, not just
stepping.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from audioset_downloader.pacing.book import AutoPace, FixedPace, PacingBook, load_learned, save_learned
from tests.support import limiters
from tests.support.limiters import Clock


def book(paces: list, clock: Clock, first_cool_s: float = 2.0, max_cooling_s: float = 60.0) -> PacingBook:
    return PacingBook([f"id{i}" for i in range(len(paces))], paces, first_cool_s, max_cooling_s, clock=clock)


def test_a_fixed_pace_spaces_turns_and_spreads_them_over_identities() -> None:
    clock = Clock()
    pacing = book([FixedPace(60.0), FixedPace(60.0)], clock)
    turns = [pacing.take() for _ in range(4)]
    assert [(t.index, t.wait_s) for t in turns] == [(0, 0.0), (1, 0.0), (0, 1.0), (1, 1.0)]
    assert pacing.take().index == -1  # the next turns lie past the horizon: ask again later


def test_after_a_block_one_clip_goes_first_and_the_rest_follow_at_the_pace() -> None:
    clock = Clock()
    pacing = book([FixedPace(120.0)], clock, first_cool_s=2.0)
    assert pacing.take().index == 0
    random.seed(1)
    cooling = pacing.limited(0)
    assert cooling is not None and cooling.all_cooling and 1.5 <= cooling.cool_s <= 2.5
    assert pacing.limited(0) is None  # a clip that was under way: the same block, not a second
    clock.now += cooling.cool_s
    probe = pacing.take()
    assert (probe.index, probe.wait_s) == (0, 0.0)
    for _ in range(3):  # however long the probe takes, nothing else goes through the identity meanwhile
        clock.now += 5.0
        assert pacing.take().index == -1
    pacing.answered(0)
    assert pacing.take().index == 0
    nxt = pacing.take()
    assert (nxt.index, nxt.wait_s) == (0, 0.5)  # then at the pace, one at a time


def test_a_turn_that_waited_through_a_block_is_given_back() -> None:
    clock = Clock()
    pacing = book([FixedPace(60.0)], clock)
    assert pacing.take().index == 0
    waiting = pacing.take()
    assert (waiting.index, waiting.wait_s) == (0, 1.0)
    random.seed(1)
    pacing.limited(0)  # the clip under way was refused while the next turn waited its second
    clock.now += 1.0
    assert not pacing.confirm(waiting.index, waiting.blocks)  # it would be one more 429 into the block
    clock.now += 10.0  # past the cooldown
    fresh = pacing.take()
    assert fresh.index == 0 and pacing.confirm(fresh.index, fresh.blocks)


def test_the_run_gives_up_only_when_every_identity_has_cooled_for_the_limit() -> None:
    clock = Clock()
    pacing = book([FixedPace(None), FixedPace(None)], clock, first_cool_s=1.0, max_cooling_s=10.0)
    for _ in range(2):
        pacing.limited(pacing.take().index)
    assert not pacing.take().given_up
    while not (turn := pacing.take()).given_up:
        clock.now += 1.0
        if turn.index >= 0:
            pacing.limited(turn.index)
    assert clock.now - 100.0 > 10.0


def simulate(pace: AutoPace, clips: int, per_second: float, requests_per_clip: int, penalty_s: float,
             seed: int = 7) -> tuple[float, int]:
    """One identity, clips taking no time: (clips a second, 429s) against a token-bucket limit."""
    rng = random.Random(seed)
    clock = Clock()
    pacing = book([pace], clock, first_cool_s=3.0, max_cooling_s=1e9)
    tokens, last, blocked_until = per_second, clock.now, 0.0
    start, done, refused = clock.now, 0, 0
    while done < clips:
        turn = pacing.take()
        clock.now += turn.wait_s if turn.index >= 0 else max(turn.wait_s, 0.01)
        if turn.index < 0:
            continue
        clock.now += rng.uniform(0.0, 0.02)  # latency
        tokens = min(per_second, tokens + (clock.now - last) * per_second)
        last = clock.now
        if clock.now < blocked_until or tokens < requests_per_clip:
            if clock.now >= blocked_until:
                blocked_until = clock.now + penalty_s
            refused += 1
            pacing.limited(0)
        else:
            tokens -= requests_per_clip
            done += 1
            pacing.answered(0)
    return done / (clock.now - start), refused


def test_auto_settles_just_under_the_limit_with_few_429s() -> None:
    # 6 requests a second, 3 a clip: at most 2 clips a second (120 a minute).
    pace = AutoPace()
    rate, refused = simulate(pace, 3000, per_second=6, requests_per_clip=3, penalty_s=2.0)
    assert rate > 0.9 * 2.0, rate
    assert refused < 20 * 3, refused  # fewer than 20 in 1,000 clips
    assert 0.85 * 120 < pace.per_minute < 1.1 * 120


def test_auto_leaves_a_ceiling_measured_too_low_behind() -> None:
    pace = AutoPace()
    pace.limited(30.0, now=0.0)  # slow start ended at a quarter of the real 120 a minute
    rate, _ = simulate(pace, 1500, per_second=6, requests_per_clip=3, penalty_s=2.0)
    assert pace.per_minute > 100, pace


def test_a_block_that_lasts_is_a_quota_and_pacing_starts_again_from_a_guests() -> None:
    pace = AutoPace(per_minute=60.0, ceiling=60.0)
    pace.limited(None, now=0.0)
    pace.recovered(blocked_s=1800.0)  # refused for half an hour
    assert pace.per_minute is not None and pace.per_minute <= 5.0  # 300 an hour, YouTube's guest limit
    assert pace.probe_after is not None and pace.probe_after > 1000  # and it waits long before probing again


# The limiters the issue names, at 0.75 requests a second (3 a clip: 15 clips a minute).
PER_SECOND, PER_CLIP = 0.75, 3
LIMIT = 60 * PER_SECOND / PER_CLIP


def run_against(limiter: limiters.Limiter, pace: AutoPace, clips: int, workers: int = 8,
                seed: int = 1) -> limiters.Run:
    random.seed(seed)
    clock = limiters.Clock()
    pacing = PacingBook(["id0"], [pace], 3.0, 1e9, clock=clock)
    return limiters.simulate(pacing, clock, [limiter], clips, workers, requests_per_clip=PER_CLIP)


def test_slow_start_lets_one_clip_through_then_one_more_for_each_answered() -> None:
    clock = Clock()
    pacing = book([AutoPace(), FixedPace(None)], clock)
    first = pacing.take()
    assert first.index == 0
    assert pacing.take().index == 1  # id0 has its one clip in flight; "no cap" (None) never waits
    assert pacing.take().index == 1
    pacing.answered(0)
    assert [pacing.take().index for _ in range(2)] == [0, 0]  # two in flight now
    assert pacing.take().index == 1


@pytest.mark.parametrize("burst_clips", [1, 4])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_slow_start_ends_at_the_limit_s_rate_not_its_burst(burst_clips: int, seed: int) -> None:
    bucket = limiters.TokenBucket(per_second=PER_SECOND, burst=burst_clips * PER_CLIP, penalty_s=2.0)
    pace = AutoPace()
    run = run_against(bucket, pace, clips=200, seed=seed)
    assert bucket.per_block[0] == 1  # one clip in flight met the first block, not every worker's
    assert pace.ceiling is not None and 0.8 * LIMIT <= pace.ceiling <= 1.2 * LIMIT, pace
    last_five_minutes = run.goodput(since=run.ended - run.started - 300) * 60
    assert last_five_minutes > 0.9 * LIMIT, last_five_minutes
    assert max(bucket.per_block) <= 4, bucket.per_block


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_pace_ten_times_too_high_comes_down_in_a_few_blocks(seed: int) -> None:
    bucket = limiters.TokenBucket(per_second=PER_SECOND, burst=4 * PER_CLIP, penalty_s=2.0)
    pace = AutoPace(per_minute=10 * LIMIT, ceiling=10 * LIMIT)  # learnt on a faster network, say
    run_against(bucket, pace, clips=40, seed=seed)
    # The first block halves the pace, the second's measure brings it under the limit, and the
    # search climbs back from there, a block for each step too far (the old walk-down, 0.87 a
    # block, took eighteen blocks).
    assert bucket.blocks <= 7, bucket.per_block
    assert max(bucket.per_block) <= 2  # one probe into each block, the clip already under way at most
    assert pace.per_minute is not None and pace.per_minute <= 1.5 * LIMIT, pace


@pytest.mark.parametrize("burst_clips", [1, 4])
def test_a_long_penalty_draws_at_most_two_429s_a_block_once_its_length_is_learnt(burst_clips: int) -> None:
    bucket = limiters.TokenBucket(per_second=PER_SECOND, burst=burst_clips * PER_CLIP, penalty_s=30.0)
    pace = AutoPace()
    run = run_against(bucket, pace, clips=200)
    # The first block is probed from RETRY_BACKOFF (3 s) doubling: 4 refused probes; later
    # blocks wait about as long as the last lasted before their one probe.
    assert bucket.per_block[0] == 4 and max(bucket.per_block[1:]) <= 2, bucket.per_block
    assert bucket.blocks <= 9, bucket.per_block  # the search ends within 4 %: a step more than at 8 %
    assert pace.ceiling is not None and 0.65 * LIMIT <= pace.ceiling <= 1.1 * LIMIT, pace
    last_five_minutes = run.goodput(since=run.ended - run.started - 300) * 60
    assert last_five_minutes > 0.8 * LIMIT, last_five_minutes


def test_a_paced_429_drops_to_what_is_known_to_pass() -> None:
    pace = AutoPace(per_minute=100.0, ceiling=100.0)
    pace.limited(70.0, now=0.0)  # the rate over the last cycle of block and burst
    assert (pace.per_minute, pace.high) == (70.0, 100.0)
    pace = AutoPace(per_minute=100.0, ceiling=100.0)
    pace.limited(None, now=0.0)  # nothing known to pass: half the pace refused
    assert pace.per_minute == 50.0
    pace = AutoPace(per_minute=100.0, ceiling=100.0, low=80.0)
    pace.limited(5.0, now=0.0)  # a small bucket after a long block reads low; a pace held says more
    assert pace.per_minute == 80.0
    pace = AutoPace(per_minute=100.0, ceiling=100.0, low=99.0)
    pace.limited(None, now=0.0)  # "held" that close under the pace refused was a burst passing
    assert pace.low is None and pace.per_minute == 50.0
    assert pace.hold_s == 2 * AutoPace().hold_s  # so a pace must hold twice as long to count from now on


def test_the_search_steps_up_from_each_pace_held_and_settles_between_held_and_refused() -> None:
    pace = AutoPace(per_minute=100.0, ceiling=100.0)
    clock = 0.0
    pace.limited(50.0, now=clock)
    pace.recovered(blocked_s=40.0)

    def hold(clips: int, seconds: float) -> None:
        nonlocal clock
        for _ in range(clips):
            clock += seconds / clips
            pace.answered(clock, held_back=True)

    hold(3, 30.0)  # 20 s from its first clip to its last: shorter than the block lasted, not held yet
    assert (pace.per_minute, pace.low) == (50.0, None)
    hold(2, 20.0)
    assert (pace.low, pace.per_minute) == (50.0, 75.0)  # a step of 1.5, and halfway to the pace refused
    hold(4, 4.0)  # answered at 75 for 3 s, 4 clips...
    pace.limited(None, now=clock)  # ...then refused
    assert (pace.high, pace.per_minute) == (75.0, 50.0)
    paces = []
    for _ in range(4):
        hold(8, 48.0)  # twice the refused pace's 4 clips, and 42 s: longer than the block lasted
        paces.append(pace.per_minute)
    assert paces == [62.5, 68.75, 71.875, 73.4375]
    hold(8, 48.0)
    assert pace.low == pace.ceiling == 73.4375  # within 4 % of 75: settled
    hold(8, 48.0)
    assert pace.per_minute == pytest.approx(73.4375, rel=0.01)  # it holds there before it probes again


def test_a_429_after_a_long_settled_stretch_counts_only_the_climb_as_its_burst() -> None:
    pace = AutoPace(per_minute=60.0, ceiling=60.0, low=60.0, high=62.0)  # settled: within 4 % of the pace refused
    pace.recovered(blocked_s=10.0)
    clock = 0.0
    while pace.per_minute is not None and pace.per_minute < 64.0:  # minutes at the pace held, then CUBIC's climb
        clock += 60.0 / pace.per_minute
        pace.answered(clock, held_back=True)
    assert clock > 400.0
    pace.limited(None, now=clock)  # refused at 64 a minute
    assert (pace.per_minute, pace.high) == (60.0, pytest.approx(64.0, rel=0.01))
    for _ in range(180):  # three minutes at the pace held: more than twice the climb past 62.4 (about a minute)
        clock += 1.0
        pace.answered(clock, held_back=True)
    assert pace.per_minute == pytest.approx(62.0, rel=0.01), pace  # so the search steps up, halfway to 64


def test_answers_that_did_not_wait_for_the_pace_say_nothing_of_it() -> None:
    pace = AutoPace(per_minute=100.0, ceiling=100.0)
    pace.limited(50.0, now=0.0)
    for second in range(1, 60):
        pace.answered(float(second), held_back=False)  # the workers, not the pace, were the bottleneck
    assert (pace.per_minute, pace.low) == (50.0, None)


def test_the_book_measures_a_cycle_of_block_and_burst() -> None:
    clock = Clock()
    pace = AutoPace(per_minute=12.0, ceiling=12.0)
    pacing = book([pace], clock, first_cool_s=10.0)

    def clip(seconds: float = 0.5) -> None:
        while (turn := pacing.take()).index < 0:  # its next turn lies past the horizon: ask again then
            clock.now += turn.wait_s
        clock.now += turn.wait_s + seconds
        pacing.answered(0)

    for _ in range(3):
        clip()
    refused_at = pace.per_minute
    assert refused_at is not None
    pacing.limited(0)  # paced from its first turn: no cycle to measure, so half the pace refused
    assert pace.per_minute == pytest.approx(refused_at / 2)
    block_began = clock.now
    clock.now += 12.5  # past the cooldown (10 to 12.5 s)
    clip()  # the probe, answered: the block lasted 13 s
    clip()  # and one more at the pace: a cycle of block and burst
    pacing.limited(0)
    assert pace.per_minute == pytest.approx(60 * 2 / (clock.now - block_began))  # 2 clips over the cycle


def test_a_429_before_anything_was_answered_only_cools() -> None:
    pace = AutoPace()
    pace.limited(None, now=0.0)
    assert pace.per_minute is None and pace.ceiling is None


def probe_times(pacing: PacingBook, clock: Clock, refusals: int) -> list[float]:
    """A block, probed until a probe is answered after ``refusals`` refused ones: when each probe went out."""
    began = clock.now
    assert pacing.limited(0) is not None
    sent = []
    while True:
        turn = pacing.take()
        if turn.index < 0:
            clock.now += turn.wait_s
            continue
        clock.now += turn.wait_s
        sent.append(round(clock.now - began, 1))
        clock.now += 0.3
        if len(sent) > refusals:
            pacing.answered(0)
            return sent
        pacing.limited(0)


def test_a_block_s_first_probe_goes_between_the_probes_refused_and_answered_before() -> None:
    clock = Clock()
    pacing = book([FixedPace(60.0)], clock, first_cool_s=2.0, max_cooling_s=1e9)
    random.seed(3)
    first = probe_times(pacing, clock, refusals=4)  # nothing learnt: 2 s doubling, jittered
    assert len(first) == 5 and 40 <= first[-1] <= 80, first
    # The block lasted longer than its last probe refused, no longer than its probe answered.
    lower, upper = first[-2], first[-1]
    clock.now += 30
    second = probe_times(pacing, clock, refusals=0)
    assert (lower + upper) / 2 <= second[0] <= 1.1 * (lower + upper) / 2 + 0.1, (first, second)  # halfway: one probe
    lower, upper = 0.75 * lower, second[0]  # answered at once: the block may have ended sooner still
    clock.now += 30
    third = probe_times(pacing, clock, refusals=1)
    assert (lower + upper) / 2 <= third[0] <= 1.1 * (lower + upper) / 2 + 0.1, (second, third)
    assert upper <= third[1] <= 1.1 * upper + 0.1, (second, third)  # refused: the next probe where one was answered
    lower, upper = third[0], third[1]
    clock.now += 30
    fourth = probe_times(pacing, clock, refusals=0)
    assert (lower + upper) / 2 <= fourth[0] <= 1.1 * (lower + upper) / 2 + 0.1, (third, fourth)


def test_once_the_bounds_on_a_block_s_length_are_close_the_first_probe_waits_the_upper_one() -> None:
    clock = Clock()
    pacing = book([FixedPace(60.0)], clock, first_cool_s=2.0, max_cooling_s=1e9)
    identity = pacing._identities[0]
    identity.block_lower, identity.block_upper = 30.0, 33.0  # within 15 % of each other
    random.seed(3)
    probes = probe_times(pacing, clock, refusals=0)
    assert 33.0 <= probes[0] <= 1.1 * 33.0 + 0.1, probes
    identity.block_lower, identity.block_upper = 2900.0, 3100.0  # YouTube's hour: past the ten-minute cap
    probes = probe_times(pacing, clock, refusals=0)
    assert 3100.0 <= probes[0] <= 1.1 * 3100.0 + 0.1, probes


def test_after_a_burst_s_long_block_a_paced_block_is_probed_once_early() -> None:
    clock = Clock()
    pacing = book([FixedPace(60.0)], clock, first_cool_s=2.0, max_cooling_s=1e9)
    identity = pacing._identities[0]
    # What a burst taught: a sliding window emptied at once refused for most of its minute.
    identity.block_lower, identity.block_upper, identity.bounds_from_burst = 40.0, 60.0, True
    random.seed(3)
    early = probe_times(pacing, clock, refusals=1)
    assert 3.0 <= early[0] <= 1.1 * 3.0 + 0.1, early  # RETRY_BACKOFF and one clip at 60 a minute
    assert 60.0 <= early[1] <= 1.1 * 60.0 + 0.1, early  # refused: the next where the burst's block had ended
    clock.now += 30
    answered = probe_times(pacing, clock, refusals=0)  # bounds of a paced block now: halfway, as ever
    assert (40.0 + early[1]) / 2 <= answered[0] <= 1.1 * (40.0 + early[1]) / 2 + 0.1, (early, answered)


def test_a_sliding_window_s_paced_blocks_last_seconds_not_its_burst_s_minute() -> None:
    window = limiters.SlidingWindow(requests=round(PER_SECOND * 60), window_s=60.0, penalty_s=2.0)
    run = run_against(window, AutoPace(), clips=200)
    # Unpaced, the first clips fill the window at once, and it refuses until they age out a
    # minute later; a pace a step too fast overdraws it by a clip, which ages out in seconds.
    answered = sorted(run.answered[0])
    ended = {}  # each block, from its first 429 to the next clip answered (refused probes between are the same block)
    for began in window.blocked_at:
        ended.setdefault(next(t for t in answered if t > began), began)
    blocks = [end - began for end, began in ended.items()]
    paced_blocks = blocks[2:]  # after slow start's block, and the one its measure (the burst's rate) ran into
    assert blocks[0] > 45.0 and len(paced_blocks) >= 2, blocks
    assert sorted(paced_blocks)[len(paced_blocks) // 2] < 15.0, paced_blocks  # the median


def test_learnt_paces_are_kept_and_read_back(tmp_path: Path) -> None:
    clock = Clock()
    pacing = book([AutoPace(), AutoPace()], clock)
    for _ in range(5):
        pacing.answered(pacing.take().index)
        clock.now += 1.0
    pacing.limited(0)
    save_learned(tmp_path, pacing.stats())
    saved = json.loads((tmp_path / "identities.json").read_text())["identities"]
    assert list(saved) == ["id0"]  # id1 never met its limit: nothing learnt of it
    learned = load_learned(tmp_path)["id0"]
    assert math.isclose(learned.per_minute, saved["id0"]["per_minute"])
    assert learned.ceiling == saved["id0"]["ceiling"] and learned.ceiling is not None
    resumed = AutoPace(learned.per_minute, learned.ceiling, learned.probe_after)
    assert resumed.per_minute == pacing.stats()[0].per_minute
    (tmp_path / "identities.json").write_text("{not json")
    assert load_learned(tmp_path) == {}


@pytest.mark.parametrize("value", ["nan", "-3", "1e400"])
def test_a_learnt_pace_that_makes_no_sense_is_ignored(tmp_path: Path, value: str) -> None:
    number = value.replace("nan", "NaN").replace("1e400", "Infinity")
    (tmp_path / "identities.json").write_text('{"identities": {"a": {"per_minute": ' + number + "}}}")
    assert load_learned(tmp_path) == {}
