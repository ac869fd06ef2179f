"""Pacing against YouTube-shaped limits: blocks of an hour, 48 simulated hours, "auto" beside a fixed pace.

The run's pacing book is built from the settings exactly as a run builds it
(load_settings -> book_arguments -> PacingBook, BACKEND "pytube", nothing learnt), on a
fake clock, and WORKERS = 8 workers play engine/worker.py's loop against a limiter per
identity (tests/support/limiters.py): a clip is 3 requests 1 s apart, and a refusal
blocks the identity for an hour. Two identities each time. The limiters:

* guest, bucket: 300 clips an hour, a bucket of one clip (a guest session, yt-dlp's wiki)
* guest, window: 300 clips in any hour
* 150/h: a limit half a guest's
* account: 1,500 clips an hour (a signed-in account; about 2,000 is reported)
* restarting: a guest's bucket whose hour starts again at every request it refuses

and limits that are not the published guest figure, or that move (issue 37's goals):

* falling: 300 an hour, 180 from hour 24 (share and blocks counted over hours 26-48)
* rising: 300 an hour, 450 from hour 12 (share over hours 24-48)
* 2, 2.5, 3 and 4 h blocks: a guest's bucket whose refusals block that long
* 180/h, 420/h: a guest limit below and above the published one

Reported per scenario, for "auto" and for REQUESTS_PER_MINUTE fixed at 90 % of the
limit (what a user who knew it would set): goodput as a share of the ceiling over the
first 6 hours and over 48 hours, blocks per identity in the first 6 hours and after,
and requests refused per identity.

    python benchmarks/bench_youtube_pacing.py          # about 3 minutes on 2 cores
    python benchmarks/bench_youtube_pacing.py --hours 12
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench import machine  # noqa: E402
from tests.support.limiters import (  # noqa: E402
    Clock,
    Limiter,
    MovingBucket,
    SlidingWindow,
    book_from_settings,
    simulate,
)

HOUR = 3600.0
PER_CLIP = 3  # requests
CLIP_S = 3.0  # a clip's requests, 1 s apart
WORKERS = 8
IDENTITIES = 2
EARLY_H = 6.0
# name -> (clips an hour, kind, block hours, (hour the limit moves, clips an hour after it) or None)
SCENARIOS: dict[str, tuple[float, str, float, tuple[float, float] | None]] = {
    "guest, bucket": (300.0, "bucket", 1.0, None),
    "guest, window": (300.0, "window", 1.0, None),
    "150/h": (150.0, "bucket", 1.0, None),
    "account 1,500/h": (1500.0, "bucket", 1.0, None),
    "restarting": (300.0, "restart", 1.0, None),
    "falling 300 -> 180/h at 24 h": (300.0, "bucket", 1.0, (24.0, 180.0)),
    "rising 300 -> 450/h at 12 h": (300.0, "bucket", 1.0, (12.0, 450.0)),
    "2 h blocks": (300.0, "bucket", 2.0, None),
    "2.5 h blocks": (300.0, "bucket", 2.5, None),
    "3 h blocks": (300.0, "bucket", 3.0, None),
    "4 h blocks": (300.0, "bucket", 4.0, None),
    "2.5 h blocks, MAX_BACKOFF_MINUTES = 240": (300.0, "bucket", 2.5, None),
    "180/h": (180.0, "bucket", 1.0, None),
    "420/h": (420.0, "bucket", 1.0, None),
}
# Settings a scenario runs with beside the grid's own (a user who has met blocks of 2.5 h waits them out).
EXTRA = {"2.5 h blocks, MAX_BACKOFF_MINUTES = 240": {"MAX_BACKOFF_MINUTES": 240}}
# Moving limits are judged once the identity has had time to follow: from these hours on.
SETTLE_H = {"falling 300 -> 180/h at 24 h": 26.0, "rising 300 -> 450/h at 12 h": 24.0}


@dataclass
class Result:
    scenario: str
    pace: str
    share_first_6h: float
    share_all: float
    blocks_first_6h: float  # per identity
    blocks_after_6h: float
    refused: float  # requests refused per identity
    gave_up: bool
    share_moved: float | None = None  # a moving limit: share of the new ceiling from SETTLE_H to the end
    blocks_after_move: float | None = None  # per identity, from the move on


def limiter(per_hour: float, kind: str, block_h: float, move: tuple[float, float] | None, start: float) -> Limiter:
    if kind == "window":
        return SlidingWindow(requests=round(per_hour * PER_CLIP), window_s=HOUR, penalty_s=block_h * HOUR)
    moves = [(start + move[0] * HOUR, move[1] * PER_CLIP / HOUR)] if move else []
    return MovingBucket(per_second=per_hour * PER_CLIP / HOUR, burst=PER_CLIP, penalty_s=block_h * HOUR,
                        restart=kind == "restart", moves=moves)


def identities() -> list[dict]:
    # Each its own address: the proxies are never dialled here, they only make two identities.
    return [{"name": f"guest{n}", "proxy": f"http://127.0.0.1:{9000 + n}"} for n in range(IDENTITIES)]


def one(scenario: str, pace: str, hours: float, seed: int) -> Result:
    per_hour, kind, block_h, move = SCENARIOS[scenario]
    random.seed(seed)
    clock = Clock()
    rpm = "auto" if pace == "auto" else round(0.9 * (move[1] if move else per_hour) / 60, 3)
    book = book_from_settings(clock, BACKEND="pytube", REQUESTS_PER_MINUTE=rpm, WORKERS=WORKERS,
                              IDENTITIES=identities(), **EXTRA.get(scenario, {}))
    limiters = [limiter(per_hour, kind, block_h, move, clock.now) for _ in range(IDENTITIES)]
    run = simulate(book, clock, limiters, clips=10**9, workers=WORKERS, clip_s=CLIP_S,
                   requests_per_clip=PER_CLIP, until=hours * HOUR)
    ended = run.ended - run.started
    gave_up = ended < hours * HOUR - 60
    span = hours * HOUR  # a run that gave up counts its lost hours as nothing fetched
    ceiling = IDENTITIES * per_hour / HOUR
    early = sum(1 for per in run.answered for t in per if t - run.started < EARLY_H * HOUR)
    blocks_early = sum(1 for lim in run.limiters for t in lim.blocked_at if t - run.started < EARLY_H * HOUR)
    share_all = _share(run, per_hour, move, 0.0, hours)
    moved = blocks_moved = None
    if move is not None:
        moved = round(_share(run, per_hour, move, SETTLE_H[scenario], hours), 3)
        blocks_moved = sum(1 for lim in run.limiters for t in lim.blocked_at
                           if t - run.started >= move[0] * HOUR) / IDENTITIES
    return Result(scenario, pace, round(early / (ceiling * min(span, EARLY_H * HOUR)), 3), round(share_all, 3),
                  blocks_early / IDENTITIES, (sum(run.blocks()) - blocks_early) / IDENTITIES,
                  sum(run.refused()) / IDENTITIES, gave_up, moved, blocks_moved)


def _share(run, per_hour: float, move: tuple[float, float] | None, from_h: float, to_h: float) -> float:  # noqa: ANN001
    """Clips answered from ``from_h`` to ``to_h`` over what the ceiling (moving, if it moves) allowed then."""
    allowed = 0.0
    spans = ((0.0, move[0], per_hour), (move[0], 1e9, move[1])) if move else ((0.0, 1e9, per_hour),)
    for start_h, end_h, rate in spans:
        allowed += max(0.0, min(end_h, to_h) - max(start_h, from_h)) * rate * IDENTITIES
    got = sum(1 for per in run.answered for t in per if from_h * HOUR <= t - run.started < to_h * HOUR)
    return got / allowed


def _one(args: tuple) -> Result:
    result = one(*args)
    print(json.dumps(asdict(result)), file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=48.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default="", help="the scenarios whose name holds this text")
    args = parser.parse_args()
    cells = [(scenario, pace, args.hours, args.seed) for scenario in SCENARIOS if args.only in scenario
             for pace in ("auto", "fixed 90 %")]
    with multiprocessing.Pool() as pool:
        results = pool.map(_one, cells)
    out = REPO / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / "youtube_pacing.json").write_text(json.dumps({"machine": machine(), "hours": args.hours,
                                                         "results": [asdict(r) for r in results]}, indent=2))
    print(f"{args.hours:g} simulated hours, {IDENTITIES} identities, WORKERS = {WORKERS}, blocks of an hour")
    print("| limiter | pace | first 6 h: share | all: share | blocks per identity, first 6 h | after 6 h | "
          "requests refused per identity | moved: share once settled | blocks from the move |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        gave_up = " (gave up)" if r.gave_up else ""
        moved = f"{r.share_moved:.0%} | {r.blocks_after_move:g}" if r.share_moved is not None else "| "
        print(f"| {r.scenario} | {r.pace} | {r.share_first_6h:.0%} | {r.share_all:.0%}{gave_up} | "
              f"{r.blocks_first_6h:g} | {r.blocks_after_6h:g} | {r.refused:g} | {moved} |")


if __name__ == "__main__":
    main()
