"""Goodput at YouTube's ceiling: identities, a fixed cap against "auto", local engine and Dask.

A media server in its own process (127.0.0.1) plays YouTube's limit per identity
(tests/support/limit.py): each identity, told apart by its session cookie, may make
PER_SECOND requests a second (a token bucket one second deep) and is answered 429 for
PENALTY_S past that. The ceiling is what that allows: identities x PER_SECOND /
requests per clip (measured: the server's served requests over the clips written).
Every scenario runs the real downloader (cli.main, "direct" backend, ffmpeg's ranged
requests) for the same number of clips per identity, side by side in one run:

* identities 1, 2, 4
* REQUESTS_PER_MINUTE fixed at 90 % of the ceiling (what a user who knew the limit
  would set), or "auto" (learnt; nothing known beforehand, no identities.json)
* ENGINE local (WORKERS=8) or dask (a LocalCluster of 2 workers x WORKERS=4)

Reported per scenario: goodput over the whole run and over the steady state (after
the first WARMUP_S seconds), both as a share of the ceiling, and the server's 429s
per 1,000 clips, whole run and steady state.

    pip install -e ".[bench,dask]"
    python benchmarks/bench_identities.py            # about 25 minutes on 2 cores
    python benchmarks/bench_identities.py --quick    # 2 identities, local engine only
    python benchmarks/bench_identities.py --matrix   # issue 21's pacing matrix (about 45 minutes)
    python benchmarks/bench_identities.py --issue30  # issue 30's goals with short blocks (about 10 minutes)
    (the run's own log goes to stderr: 2>bench.log keeps the console to the results)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audioset_downloader import cli  # noqa: E402
from benchmarks.bench import machine  # noqa: E402
from tests.conftest import write_config, write_csv  # noqa: E402
from tests.support.audio import make_source  # noqa: E402
from tests.support.limit import IdentityLimit  # noqa: E402
from tests.support.server import Handler, MediaServer, Reply  # noqa: E402

PER_SECOND = 4.0
PENALTY_S = 2.0
WARMUP_S = 60.0
SOURCE_S = 40


def _serve(root: str, port_pipe, burst: float | None = None, per_second: float = PER_SECOND,
           penalty_s: float = PENALTY_S, latency_s: float = 0.0) -> None:
    """The server process: the mirror behind the identity limit, and /_seen for what it saw."""
    server = MediaServer(Path(root), latency_s=latency_s)
    limit = IdentityLimit(server, per_second=per_second, penalty_s=penalty_s, burst=burst)

    def control(handler: Handler) -> Reply | None:
        if handler.url_path == "/_seen":
            body = json.dumps([[s.time, s.who, s.path, s.status] for s in limit.seen]).encode()
            return Reply(200, body, (("Content-Type", "application/json"),))
        if handler.url_path == "/_reset":
            limit.reset()
            return Reply(200, b"ok")
        return None

    server.routes.insert(0, control)  # before the limit: control requests are nobody's
    with server:
        port_pipe.send(server.base_url)
        while True:
            time.sleep(3600)


class Server:
    def __init__(self, root: Path, burst: float | None = None, per_second: float = PER_SECOND,
                 penalty_s: float = PENALTY_S, latency_s: float = 0.0) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.per_second = per_second
        self.process = context.Process(target=_serve, args=(str(root), child, burst, per_second, penalty_s,
                                                            latency_s), daemon=True)
        self.process.start()
        self.base_url = parent.recv()

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base_url + path) as response:
            return response.read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.join()


@dataclass
class Result:
    identities: int
    pace: str  # "fixed N/min" or "auto"
    engine: str
    clips: int
    wall_s: float
    requests_per_clip: float
    ceiling_per_s: float
    goodput_per_s: float
    share_of_ceiling: float
    steady_share_of_ceiling: float
    refused_per_1000: float
    steady_refused_per_1000: float
    failed: int
    refused_per_identity: float = 0.0
    blocks_per_identity: float = 0.0  # runs of 429s the server sent an identity, each after a request it served


def run_scenario(server: Server, mirror: Path, source: Path, workdir: Path, identities: int, pace: str, engine: str,
                 clips_per_identity: int, requests_per_clip_guess: float, workers: int = 8, tag: str = "") -> Result:
    server.get("/_reset")
    work = workdir / f"{tag}{engine}-{identities}-{pace.split()[0]}"
    work.mkdir(parents=True)
    ids = [f"{tag}b{identities}{pace[0]}{engine[0]}{n:07d}"[-11:] for n in range(clips_per_identity * identities)]
    for ytid in ids:
        os.link(source, mirror / f"{ytid}.m4a")
    entries = []
    for n in range(identities):
        cookies = work / f"id{n}.txt"
        cookies.write_text(f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\twho\tid{n}\n")
        entries.append({"name": f"id{n}", "cookies_file": str(cookies)})
    csv_path = write_csv(work / "eval_segments.csv", [f'{ytid}, 20.000, 30.000, "/m/a"' for ytid in ids])
    fixed = 0.9 * 60 * server.per_second / requests_per_clip_guess
    settings = {"CSV_FILE_NAMES": [str(csv_path)], "YTB_URL_FORMAT": server.base_url + "/{YTID}.m4a",
                "BACKEND": "direct", "FALLBACK_BACKENDS": [], "OUTPUT_DIR": str(work / "out"), "TIMER": 0,
                "IDENTITIES": entries, "RETRY_BACKOFF": 3.0,
                "REQUESTS_PER_MINUTE": "auto" if pace == "auto" else round(fixed, 1)}
    if engine == "dask":
        settings.update(ENGINE="dask", DASK_WORKERS=2, WORKERS=max(1, workers // 2), SHARD_SIZE=25)
    else:
        settings.update(WORKERS=workers)
    config = write_config(work / "cfg.py", **settings)
    started = time.monotonic()
    code = cli.main(["--config", str(config)])
    wall = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"{work}: the run exited {code}; see {work / 'out'}")
    seen = json.loads(server.get("/_seen"))
    summary = json.loads((work / "out" / "eval_segments.summary.json").read_text())
    written = summary["written"]
    served = [s for s in seen if s[3] == 0]
    refused = [s for s in seen if s[3] == 429]
    per_clip = len(served) / max(1, written)
    ceiling = identities * server.per_second / per_clip
    blocks, last_status = 0, {}
    for _time, who, _path, status in seen:
        blocks += status == 429 and last_status.get(who) != 429
        last_status[who] = status
    t0 = min(s[0] for s in seen)
    last_request = {}
    for time_, _, path, _status in served:
        last_request[path] = time_  # a clip is done by its last served request
    steady = [t for t in last_request.values() if t - t0 >= WARMUP_S]
    steady_span = max(t for t in last_request.values()) - t0 - WARMUP_S
    steady_refused = [s for s in refused if s[0] - t0 >= WARMUP_S]
    result = Result(
        identities, "auto" if pace == "auto" else f"fixed {fixed:.0f}/min", engine, written, round(wall, 1),
        round(per_clip, 2), round(ceiling, 2), round(written / wall, 2), round(written / wall / ceiling, 3),
        round(len(steady) / steady_span / ceiling, 3) if steady_span > 10 else float("nan"),
        round(1000 * len(refused) / max(1, written), 1),
        round(1000 * len(steady_refused) / max(1, len(steady)), 1) if steady else float("nan"),
        sum(summary["failed"].values()), round(len(refused) / identities, 1), round(blocks / identities, 1))
    print(json.dumps(asdict(result)), flush=True, file=sys.stderr)
    return result


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (share, refused) = plt.subplots(1, 2, figsize=(11, 4))
    for engine, marker in (("local", "o"), ("dask", "s")):
        for pace, color in (("fixed", "tab:gray"), ("auto", "tab:blue")):
            rows = [r for r in results if r.engine == engine and r.pace.startswith(pace)]
            if not rows:
                continue
            label = f"{pace}, {engine}"
            xs = [r.identities for r in rows]
            share.plot(xs, [100 * r.steady_share_of_ceiling for r in rows], marker=marker, color=color,
                       linestyle="-" if engine == "local" else "--", label=label)
            refused.plot(xs, [r.steady_refused_per_1000 for r in rows], marker=marker, color=color,
                         linestyle="-" if engine == "local" else "--", label=label)
    share.axhline(90, color="tab:red", linewidth=0.8, linestyle=":", label="target 90 %")
    share.set(xlabel="identities", ylabel="goodput, % of the ceiling (steady state)", ylim=(0, 110),
              xticks=[1, 2, 4], title="Goodput against the per-identity limit")
    refused.axhline(20, color="tab:red", linewidth=0.8, linestyle=":", label="target < 20")
    refused.set(xlabel="identities", ylabel="429s per 1,000 clips (steady state)", xticks=[1, 2, 4],
                title="429s the server sent")
    share.legend(fontsize=8)
    refused.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


MATRIX_PER_SECOND = 0.75  # issue 21's limit: 22.5 clips a minute at 2 requests a clip
MATRIX_BURST = 8.0  # requests: 4 clips
MATRIX_WORKERS = {1: 8, 10: 16, 35: 64}


def matrix(clips_per_identity: int) -> None:
    """Issue 21's matrix on the real downloader: penalty x identities x engine, "auto" against fixed at 90 %."""
    results: list[tuple[float, Result]] = []
    with tempfile.TemporaryDirectory(prefix="bench-pacing-") as temp:
        workdir = Path(temp)
        source = make_source(workdir / "source.m4a", SOURCE_S, "aac", rate=44100)
        for penalty_s in (2.0, 30.0):
            mirror = workdir / f"mirror{penalty_s:g}"
            mirror.mkdir()
            server = Server(mirror, MATRIX_BURST, MATRIX_PER_SECOND, penalty_s)
            try:
                for engine in ("local", "dask"):
                    for identities in (1, 10, 35):
                        for pace in ("fixed", "auto"):
                            results.append((penalty_s, run_scenario(
                                server, mirror, source, workdir, identities, pace, engine, clips_per_identity,
                                requests_per_clip_guess=2.0, workers=MATRIX_WORKERS[identities],
                                tag=f"p{penalty_s:g}")))
            finally:
                server.stop()
    out = REPO / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / "pacing-real.json").write_text(json.dumps(
        {"machine": machine(), "per_second": MATRIX_PER_SECOND, "burst_requests": MATRIX_BURST,
         "results": [{"penalty_s": penalty_s, **asdict(r)} for penalty_s, r in results]}, indent=2))
    plot_matrix(results, REPO / "benchmarks" / "pacing-real.png")
    print("| penalty | identities | engine | pace | clips | % of ceiling | 429s per identity | blocks per identity "
          "| failed |")
    print("| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for penalty_s, r in results:
        print(f"| {penalty_s:g} s | {r.identities} | {r.engine} | {r.pace} | {r.clips} | "
              f"{100 * r.share_of_ceiling:.0f} % | {r.refused_per_identity:.1f} | {r.blocks_per_identity:.1f} | "
              f"{r.failed} |")


def issue30() -> None:
    """Issue 30's goals with short blocks, on the real downloader, "auto" beside a fixed pace at 90 %:
    10 identities behind a bucket of 4 clips with a 2 s penalty (20 clips each); 3 identities' first
    run behind a second-deep bucket (60 clips each); and a server with no limit at 150 ms latency,
    WORKERS = 8 (16 clips) against WORKERS = 1 (6 clips), with "auto" and with no cap."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-issue30-") as temp:
        workdir = Path(temp)
        source = make_source(workdir / "source.m4a", SOURCE_S, "aac", rate=44100)
        for name, burst, per_second, identities, clips, guess, workers in (
                ("bucket of 4 clips, 2 s penalty", MATRIX_BURST, MATRIX_PER_SECOND, 10, 20, 2.0, 16),
                ("second-deep bucket, first run", None, PER_SECOND, 3, 60, 3.0, 8)):
            mirror = workdir / f"mirror{identities}"
            mirror.mkdir()
            server = Server(mirror, burst, per_second, PENALTY_S)
            try:
                for pace in ("fixed", "auto"):
                    r = run_scenario(server, mirror, source, workdir, identities, pace, "local", clips,
                                     requests_per_clip_guess=guess, workers=workers, tag=f"i{identities}")
                    rows.append(f"| {name} | {identities} | {r.pace} | {r.clips} | {100 * r.share_of_ceiling:.0f} % "
                                f"| {r.refused_per_identity:.1f} | {r.blocks_per_identity:.1f} |")
            finally:
                server.stop()
        mirror = workdir / "mirror-free"
        mirror.mkdir()
        server = Server(mirror, None, 1e6, PENALTY_S, latency_s=0.15)
        rates = {}
        try:
            for pace in ("auto", None):
                for workers, clips in ((1, 6), (8, 16)):
                    ids = [f"free{workers}{str(pace)[0]}{n:05d}"[-11:] for n in range(clips)]
                    for ytid in ids:
                        os.link(source, mirror / f"{ytid}.m4a")
                    work = workdir / f"free-{workers}-{pace}"
                    work.mkdir()
                    csv_path = write_csv(work / "eval_segments.csv", [f'{y}, 20.000, 30.000, "/m/a"' for y in ids])
                    config = write_config(work / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], BACKEND="direct",
                                          YTB_URL_FORMAT=server.base_url + "/{YTID}.m4a", OUTPUT_DIR=str(work / "out"),
                                          TIMER=0, WORKERS=workers, REQUESTS_PER_MINUTE=pace)
                    started = time.monotonic()
                    assert cli.main(["--config", str(config)]) == 0
                    rates[pace, workers] = clips / (time.monotonic() - started)
        finally:
            server.stop()
    print("| limit | identities | pace | clips | % of ceiling | 429s per identity | blocks per identity |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    print("\n| no limit, 150 ms | WORKERS = 1 | WORKERS = 8 | ratio |\n| --- | ---: | ---: | ---: |")
    for pace in ("auto", None):
        print(f"| REQUESTS_PER_MINUTE = {pace!r} | {rates[pace, 1]:.2f} clips/s | {rates[pace, 8]:.2f} clips/s | "
              f"{rates[pace, 8] / rates[pace, 1]:.1f}x |")


def plot_matrix(results: list[tuple[float, Result]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (penalty_s, engine), style in zip([(p, e) for p in (2.0, 30.0) for e in ("local", "dask")],
                                          ("-", "--", "-.", ":"), strict=True):
        for pace, color in (("fixed", "tab:gray"), ("auto", "tab:blue")):
            rows = [r for p, r in results if p == penalty_s and r.engine == engine and r.pace.startswith(pace)]
            if not rows:
                continue
            xs = [r.identities for r in rows]
            label = f"{pace}, {engine}, {penalty_s:g} s penalty"
            axes[0].plot(xs, [100 * r.share_of_ceiling for r in rows], marker="o", color=color, linestyle=style,
                         label=label)
            axes[1].plot(xs, [r.refused_per_identity for r in rows], marker="o", color=color, linestyle=style,
                         label=label)
    axes[0].set(xlabel="identities", ylabel="goodput, % of the ceiling (whole run)", ylim=(0, 110), xscale="log",
                title="A run of 20 clips per identity, bucket of 4 clips")
    axes[1].axhline(15, color="tab:red", linewidth=0.8, linestyle=":", label="goal: at most 15")
    axes[1].set(xlabel="identities", ylabel="429s per identity", xscale="log", title="429s the server sent")
    for ax in axes:
        ax.set_xticks([1, 10, 35], ["1", "10", "35"])
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips-per-identity", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="2 identities, local engine only")
    parser.add_argument("--burst", type=float, default=None,
                        help="requests each identity's bucket holds (default: a second's worth)")
    parser.add_argument("--matrix", action="store_true",
                        help="issue 21's matrix: 2 s and 30 s penalties, 1/10/35 identities, local and Dask, "
                             "a bucket of 4 clips, 20 clips per identity (about 45 minutes)")
    parser.add_argument("--issue30", action="store_true",
                        help="issue 30's goals with short blocks: 10 identities behind a bucket of 4 clips, 3 "
                             "identities' first run, WORKERS 8 against 1 with no limit (about 10 minutes)")
    args = parser.parse_args()
    if args.issue30:
        issue30()
        return
    if args.matrix:
        matrix(20 if args.clips_per_identity == 200 else args.clips_per_identity)
        return
    counts = [2] if args.quick else [1, 2, 4]
    engines = ["local"] if args.quick else ["local", "dask"]
    with tempfile.TemporaryDirectory(prefix="bench-identities-") as temp:
        workdir = Path(temp)
        mirror = workdir / "mirror"
        mirror.mkdir()
        source = make_source(workdir / "source.m4a", SOURCE_S, "aac", rate=44100)
        server = Server(mirror, args.burst)
        results = []
        try:
            for engine in engines:
                for identities in counts:
                    for pace in ("fixed", "auto"):
                        results.append(run_scenario(server, mirror, source, workdir, identities, pace, engine,
                                                    args.clips_per_identity, requests_per_clip_guess=3.0))
        finally:
            server.stop()
    out = REPO / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / "identities.json").write_text(json.dumps({"machine": machine(), "per_second": PER_SECOND,
                                                     "penalty_s": PENALTY_S, "warmup_s": WARMUP_S,
                                                     "results": [asdict(r) for r in results]}, indent=2))
    plot(results, REPO / "benchmarks" / "identities.png")
    print("| identities | pace | engine | clips | ceiling clips/s | goodput clips/s | % of ceiling (whole run) "
          "| % of ceiling (steady) | 429s per 1,000 (whole) | 429s per 1,000 (steady) | failed |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r.identities} | {r.pace} | {r.engine} | {r.clips} | {r.ceiling_per_s} | {r.goodput_per_s} | "
              f"{100 * r.share_of_ceiling:.0f} % | {100 * r.steady_share_of_ceiling:.0f} % | "
              f"{r.refused_per_1000:.0f} | {r.steady_refused_per_1000:.0f} | {r.failed} |")


if __name__ == "__main__":
    main()
