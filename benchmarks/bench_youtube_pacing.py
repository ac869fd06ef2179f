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
from tests.support.limiters import Clock, Limiter, SlidingWindow, TokenBucket, book_from_settings, simulate  # noqa: E402

HOUR = 3600.0
PER_CLIP = 3  # requests
CLIP_S = 3.0  # a clip's requests, 1 s apart
WORKERS = 8
IDENTITIES = 2
EARLY_H = 6.0
# name -> (clips an hour, kind)
SCENARIOS = {
    "guest, bucket": (300.0, "bucket"),
    "guest, window": (300.0, "window"),
    "150/h": (150.0, "bucket"),
    "account 1,500/h": (1500.0, "bucket"),
    "restarting": (300.0, "restart"),
}


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


def limiter(per_hour: float, kind: str) -> Limiter:
    if kind == "window":
        return SlidingWindow(requests=round(per_hour * PER_CLIP), window_s=HOUR, penalty_s=HOUR)
    return TokenBucket(per_second=per_hour * PER_CLIP / HOUR, burst=PER_CLIP, penalty_s=HOUR,
                       restart=kind == "restart")


def identities() -> list[dict]:
    # Each its own address: the proxies are never dialled here, they only make two identities.
    return [{"name": f"guest{n}", "proxy": f"http://127.0.0.1:{9000 + n}"} for n in range(IDENTITIES)]


def one(scenario: str, pace: str, hours: float, seed: int) -> Result:
    per_hour, kind = SCENARIOS[scenario]
    random.seed(seed)
    clock = Clock()
    rpm = "auto" if pace == "auto" else round(0.9 * per_hour / 60, 3)
    book = book_from_settings(clock, BACKEND="pytube", REQUESTS_PER_MINUTE=rpm, WORKERS=WORKERS,
                              IDENTITIES=identities())
    limiters = [limiter(per_hour, kind) for _ in range(IDENTITIES)]
    run = simulate(book, clock, limiters, clips=10**9, workers=WORKERS, clip_s=CLIP_S,
                   requests_per_clip=PER_CLIP, until=hours * HOUR)
    ended = run.ended - run.started
    gave_up = ended < hours * HOUR - 60
    span = hours * HOUR  # a run that gave up counts its lost hours as nothing fetched
    ceiling = IDENTITIES * per_hour / HOUR
    early = sum(1 for per in run.answered for t in per if t - run.started < EARLY_H * HOUR)
    blocks_early = sum(1 for lim in run.limiters for t in lim.blocked_at if t - run.started < EARLY_H * HOUR)
    return Result(scenario, pace, round(early / (ceiling * min(span, EARLY_H * HOUR)), 3),
                  round(sum(map(len, run.answered)) / (ceiling * span), 3),
                  blocks_early / IDENTITIES, (sum(run.blocks()) - blocks_early) / IDENTITIES,
                  sum(run.refused()) / IDENTITIES, gave_up)


def _one(args: tuple) -> Result:
    result = one(*args)
    print(json.dumps(asdict(result)), file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=48.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cells = [(scenario, pace, args.hours, args.seed) for scenario in SCENARIOS for pace in ("auto", "fixed 90 %")]
    with multiprocessing.Pool() as pool:
        results = pool.map(_one, cells)
    out = REPO / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / "youtube_pacing.json").write_text(json.dumps({"machine": machine(), "hours": args.hours,
                                                         "results": [asdict(r) for r in results]}, indent=2))
    print(f"{args.hours:g} simulated hours, {IDENTITIES} identities, WORKERS = {WORKERS}, blocks of an hour")
    print("| limiter | pace | first 6 h: share | all: share | blocks per identity, first 6 h | after 6 h | "
          "requests refused per identity |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        gave_up = " (gave up)" if r.gave_up else ""
        print(f"| {r.scenario} | {r.pace} | {r.share_first_6h:.0%} | {r.share_all:.0%}{gave_up} | "
              f"{r.blocks_first_6h:g} | {r.blocks_after_6h:g} | {r.refused:g} |")


if __name__ == "__main__":
    main()
