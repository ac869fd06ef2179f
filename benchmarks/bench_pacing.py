"""How "auto" pacing meets simulated limiters: the policy itself, on a fake clock, over a matrix.

The run's pacing book (audioset_downloader/pacing/book.py) with WORKERS workers, each
playing engine/worker.py's loop (take a turn, wait, make a clip's 3 requests 0.1 s
apart, settle the turn), against a limiter per identity (tests/support/limiters.py)
that allows 0.75 requests a second (15 clips a minute) and refuses for a penalty past
it. Minutes of a run take milliseconds, so the whole matrix runs in a minute a seed:

* limiter: a token bucket holding 1, 4 or 20 clips, or a sliding window of 45 requests
  a minute; penalty 2 s or 30 s
* identities 1, 10 or 35 (WORKERS 8, 16, 64)
* "auto" starting unpaced (nothing learnt), from a pace ten times too high (an
  identities.json from a faster network) or ten times too low; against a fixed pace at
  90 % of the limit (what a user who knew it would set)

Reported per scenario: goodput over a run of 20 clips per identity, as a share of the
ceiling (identities x 15 clips a minute; a bucket of 20 clips lets such a run through
in its burst, so that share exceeds 1), 429s and blocks per identity in it; goodput and
429s per 1,000 clips in the second half of a run of 200 clips per identity (100 with 35
identities; about 13 minutes: settling, the search still under way) and of a run of
1,000 (about 67 minutes: steady state); and the most 429s any block after the first drew.
The engine does not enter into it: the local pool, the CSV processes and Dask workers
all take their turns from one such book.

    python benchmarks/bench_pacing.py                 # about 4 minutes on 2 cores
    python benchmarks/bench_pacing.py --seeds 3       # each scenario averaged over 3 seeds
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import random
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audioset_downloader.pacing.book import PacingBook  # noqa: E402
from audioset_downloader.pacing.policy import AutoPace, FixedPace  # noqa: E402
from benchmarks.bench import machine  # noqa: E402
from tests.support.limiters import Clock, Limiter, Run, SlidingWindow, TokenBucket, simulate  # noqa: E402

PER_SECOND = 0.75
PER_CLIP = 3
LIMIT = 60 * PER_SECOND / PER_CLIP  # clips a minute per identity
WORKERS = {1: 8, 10: 16, 35: 64}
FIRST_COOL_S = 3.0  # RETRY_BACKOFF


@dataclass
class Result:
    limiter: str
    penalty_s: float
    identities: int
    start: str
    short_share: float
    short_429_per_identity: float
    short_blocks_per_identity: float
    settling_share: float
    settling_429_per_1000: float
    steady_share: float
    steady_429_per_1000: float
    most_429_in_a_later_block: int


def limiter(kind: str, penalty_s: float) -> Limiter:
    if kind == "window":
        return SlidingWindow(requests=round(PER_SECOND * 60), window_s=60.0, penalty_s=penalty_s)
    return TokenBucket(per_second=PER_SECOND, burst=int(kind) * PER_CLIP, penalty_s=penalty_s)


def pace(start: str) -> AutoPace | FixedPace:
    if start == "fixed 90 %":
        return FixedPace(0.9 * LIMIT)
    if start == "unpaced":
        return AutoPace()
    factor = 10.0 if start == "10x high" else 0.1
    return AutoPace(factor * LIMIT, factor * LIMIT, None)


def one_run(kind: str, penalty_s: float, identities: int, start: str, clips_per_identity: int, seed: int):
    random.seed(seed)
    clock = Clock()
    book = PacingBook([f"id{n}" for n in range(identities)], [pace(start) for _ in range(identities)],
                      FIRST_COOL_S, 1e9, clock=clock)
    limiters = [limiter(kind, penalty_s) for _ in range(identities)]
    return simulate(book, clock, limiters, clips_per_identity * identities, WORKERS[identities],
                    requests_per_clip=PER_CLIP)


def second_half(run: Run, ceiling: float) -> tuple[float, float]:
    """Goodput in a run's second half as a share of the ceiling, and 429s per 1,000 clips answered in it."""
    half = (run.ended - run.started) / 2
    clips = sum(1 for per in run.answered for t in per if t - run.started >= half)
    refused = sum(n for lim in run.limiters for t, n in zip(lim.blocked_at, lim.per_block, strict=True)
                  if t - run.started >= half)
    return run.goodput(since=half) / ceiling, 1000 * refused / max(1, clips)


def most_in_a_later_block(run: Run) -> int:
    return max((max(lim.per_block[1:]) for lim in run.limiters if len(lim.per_block) > 1), default=0)


def scenario(kind: str, penalty_s: float, identities: int, start: str, seeds: int) -> Result:
    ceiling = identities * LIMIT / 60
    rows = []
    for seed in range(1, seeds + 1):
        short = one_run(kind, penalty_s, identities, start, 20, seed)
        settling = one_run(kind, penalty_s, identities, start, 200 if identities < 35 else 100, seed)
        steady = one_run(kind, penalty_s, identities, start, 1000, seed)
        rows.append((short.goodput() / ceiling, sum(short.refused()) / identities,
                     sum(short.blocks()) / identities, *second_half(settling, ceiling), *second_half(steady, ceiling),
                     max(most_in_a_later_block(settling), most_in_a_later_block(steady))))
    mean = [statistics.fmean(column) for column in zip(*rows, strict=True)]
    return Result(kind if kind == "window" else f"bucket {kind}", penalty_s, identities, start,
                  round(mean[0], 2), round(mean[1], 1), round(mean[2], 1), round(mean[3], 3), round(mean[4]),
                  round(mean[5], 3), round(mean[6]), max(row[7] for row in rows))


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(r.limiter for r in results))
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.5))
    for ax, metric, label, target in (
            (axes[0], "settling_share", "goodput, share of the ceiling (settling: 200 clips' 2nd half)", 0.95),
            (axes[1], "steady_share", "goodput, share of the ceiling (steady: 1,000 clips' 2nd half)", 0.95),
            (axes[2], "short_429_per_identity", "429s per identity, 20-clip run", 15)):
        for offset, start in enumerate(("unpaced", "10x high", "10x low", "fixed 90 %")):
            rows = [r for r in results if r.start == start]
            xs = [kinds.index(r.limiter) * 7 + (0 if r.penalty_s < 10 else 3.5) + 0.25 * offset
                  + 0.08 * [1, 10, 35].index(r.identities) for r in rows]
            ax.scatter(xs, [getattr(r, metric) for r in rows], s=14, label=start)
        ax.axhline(target, color="tab:red", linewidth=0.8, linestyle=":")
        ax.set_xticks([i * 7 + d + 0.4 for i in range(len(kinds)) for d in (0, 3.5)],
                      [f"{k}\n{p}" for k in kinds for p in ("2 s", "30 s")], fontsize=8)
        ax.set_ylabel(label)
    axes[0].set_ylim(0, 1.3)
    axes[1].set_ylim(0, 1.3)
    axes[0].legend(fontsize=8)
    axes[0].set_title('"auto" against simulated limiters (1, 10, 35 identities per column)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _scenario(args: tuple[str, float, int, str, int]) -> Result:
    result = scenario(*args)
    print(json.dumps(asdict(result)), file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    cells = [(*cell, args.seeds) for cell in itertools.product(
        ("1", "4", "20", "window"), (2.0, 30.0), (1, 10, 35), ("unpaced", "10x high", "10x low", "fixed 90 %"))]
    with multiprocessing.Pool() as pool:  # one scenario a core
        results = pool.map(_scenario, cells)
    out = REPO / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / "pacing.json").write_text(json.dumps({"machine": machine(), "seeds": args.seeds,
                                                 "results": [asdict(r) for r in results]}, indent=2))
    plot(results, REPO / "benchmarks" / "pacing.png")
    print("| limiter | penalty | identities | start | 20 clips: share | 20 clips: 429s/identity | "
          "20 clips: blocks/identity | settling share | settling 429s per 1,000 | steady share | "
          "steady 429s per 1,000 | most 429s in a later block |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r.limiter} | {r.penalty_s:g} s | {r.identities} | {r.start} | {r.short_share:.2f} | "
              f"{r.short_429_per_identity:.1f} | {r.short_blocks_per_identity:.1f} | {r.settling_share:.2f} | "
              f"{r.settling_429_per_1000} | {r.steady_share:.2f} | {r.steady_429_per_1000} | "
              f"{r.most_429_in_a_later_block} |")
    for start in ("unpaced", "10x high", "10x low", "fixed 90 %"):
        rows = [r for r in results if r.start == start]
        print(f"mean over the matrix, {start}: "
              f"429s per identity in 20 clips {statistics.fmean(r.short_429_per_identity for r in rows):.1f}, "
              f"blocks {statistics.fmean(r.short_blocks_per_identity for r in rows):.1f}; "
              f"settling share {statistics.fmean(r.settling_share for r in rows):.3f}, "
              f"429s per 1,000 {statistics.fmean(r.settling_429_per_1000 for r in rows):.0f}; "
              f"steady share {statistics.fmean(r.steady_share for r in rows):.3f} "
              f"({sum(r.steady_share >= 0.95 for r in rows)} of {len(rows)} at 95 % or more), "
              f"429s per 1,000 {statistics.fmean(r.steady_429_per_1000 for r in rows):.0f}; "
              f"at most two 429s in every later block: {sum(r.most_429_in_a_later_block <= 2 for r in rows)}")


if __name__ == "__main__":
    main()
