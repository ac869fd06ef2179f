"""Throughput benchmarks: this project against the original script's approach, side by side.

A media server in its own process (127.0.0.1) adds a fixed latency to every
request and limits each connection's bandwidth; it also plays YouTube's metadata
endpoints (tests/support/fake_youtube.py), so every approach pays the same
metadata round trips through the real pytube. Scenarios, all in one run:

* seed:    what the original script did per clip: pytube downloads the whole
           stream, ffmpeg converts all of it to wav, the window is cut from that;
           one clip at a time.
* project: this package's runner (pytube backend, ranged ffmpeg cut) at several
           WORKERS values.

For each: clips/s, bytes fetched per clip, CPU seconds per clip (this process and
its ffmpeg children; the server's own CPU is not counted).

    pip install -e ".[bench]"
    python benchmarks/bench.py --latency-ms 100 --bandwidth-mbps 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audioset_downloader.engine.runner import run_csv  # noqa: E402
from audioset_downloader.fetch.cutter import find_ffmpeg  # noqa: E402
from audioset_downloader.inputs.settings import Settings  # noqa: E402
from tests.support.audio import make_source  # noqa: E402
from tests.support.fake_youtube import FakeVideo, FakeYouTube, reroute_youtube  # noqa: E402
from tests.support.server import Handler, MediaServer, Reply  # noqa: E402

SOURCE_SECONDS = (120, 180, 240, 300, 360, 420, 480, 600)  # 2 to 10 minutes
WINDOW_S = 10
BITRATE = 128_000


# ------------------------------------------------------------------ the server process


def _serve(root: str, latency_s: float, bandwidth_bps: float, ids: dict[str, str], port_pipe) -> None:
    server = MediaServer(Path(root), latency_s=latency_s, bandwidth_bps=bandwidth_bps)
    youtube = FakeYouTube(server)
    for ytid, source in ids.items():
        youtube.videos[ytid] = FakeVideo(m4a=source, webm=source)  # the default picks the AAC stream

    def control(handler: Handler) -> Reply | None:
        if handler.url_path == "/_stats":
            body = {"bytes": sum(v for k, v in server.bytes_sent.items() if k.endswith(".m4a")),
                    "requests": sum(server.requests.values())}
            return Reply(200, json.dumps(body).encode())
        if handler.url_path == "/_reset":
            server.reset_counts()
            return Reply(200, b"ok")
        return None

    server.routes.insert(0, control)
    with server:
        port_pipe.send(server.base_url)
        threading.Event().wait()


class ServerProcess:
    def __init__(self, root: Path, latency_s: float, bandwidth_bps: float, ids: dict[str, str]) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(str(root), latency_s, bandwidth_bps, ids, child),
                                       daemon=True)
        self.process.start()
        self.base_url = parent.recv()

    def _get(self, path: str) -> bytes:
        # The control endpoints answer after the same latency as everything else.
        with urllib.request.urlopen(self.base_url + path) as response:
            return response.read()

    def stats(self) -> dict:
        return json.loads(self._get("/_stats"))

    def reset(self) -> None:
        self._get("/_reset")

    def cpu_seconds(self) -> float:
        """The server's own CPU time (Linux /proc), to see how busy the two cores are."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.join()


# ------------------------------------------------------------------ the approaches


@dataclass
class Clip:
    ytid: str
    start: float


@dataclass
class Result:
    scenario: str
    workers: int
    clips: int
    written: int
    wall_s: float
    clips_per_s: float
    bytes_per_clip: float
    cpu_ms_per_clip: float
    cores_busy: float  # client + server CPU seconds per wall second, out of os.cpu_count()
    server_cores_busy: float  # the server alone: one Python process, so at most ~1 (its GIL)
    failed: dict  # reason -> count


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def seed_approach(clips: list[Clip], workdir: Path) -> tuple[int, dict]:
    """The original script per clip: whole download, whole conversion, then the cut."""
    import pytube

    ffmpeg = find_ffmpeg()
    written = 0
    for clip in clips:
        folder = Path(tempfile.mkdtemp(dir=workdir))
        stream = pytube.YouTube(f"https://www.youtube.com/watch?v={clip.ytid}").streams.get_audio_only()
        downloaded = stream.download(output_path=str(folder), filename="source.mp4")
        whole = folder / "whole.wav"
        subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-i", downloaded, str(whole)], check=True)
        with wave.open(str(whole)) as source, wave.open(str(workdir / f"{clip.ytid}.wav"), "wb") as out:
            out.setparams(source.getparams())
            source.setpos(int(clip.start * source.getframerate()))
            out.writeframes(source.readframes(WINDOW_S * source.getframerate()))
        shutil.rmtree(folder)
        written += 1
    return written, {}


def project_approach(clips: list[Clip], workdir: Path, workers: int) -> tuple[int, dict]:
    csv_path = workdir / "bench_segments.csv"
    csv_path.write_text("".join(f'{c.ytid}, {c.start:.3f}, {c.start + WINDOW_S:.3f}, "/m/09x0r"\n' for c in clips))
    settings = Settings(csv_file_names=(csv_path,), output_dir=workdir / "out", timer=0, workers=workers,
                        retries=0)
    summary = run_csv(csv_path, settings, console=False)
    failed = settings.output_dir / "bench_segments.failed.csv"
    details = failed.read_text().splitlines()[1:4] if failed.exists() else []
    if details:
        print("failures:", *details, sep="\n  ", flush=True)
    return summary.written, summary.failed


def measure(name: str, workers: int, clips: list[Clip], run, server: ServerProcess) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    server.reset()
    cpu_before, server_before, started = cpu_seconds(), server.cpu_seconds(), time.perf_counter()
    written, failed = run(clips, workdir)
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    server_cpu = server.cpu_seconds() - server_before
    fetched = server.stats()["bytes"]
    shutil.rmtree(workdir)
    result = Result(name, workers, len(clips), written, round(wall, 3), round(len(clips) / wall, 3),
                    round(fetched / len(clips)), round(1000 * cpu / len(clips), 1), round((cpu + server_cpu) / wall, 2),
                    round(server_cpu / wall, 2), failed)
    print(json.dumps(asdict(result)), flush=True)
    return result


def make_clips(count: int, ids: dict[str, str], durations: dict[str, int], rng: random.Random) -> list[Clip]:
    names = sorted(ids)
    rng.shuffle(names)
    chosen = (names * (count // len(names) + 1))[:count]
    clips: list[Clip] = []
    taken: set[tuple[str, float]] = set()
    for ytid in chosen:  # no window twice: a repeated segment is skipped as done, not fetched
        start = float(rng.randrange(0, durations[ids[ytid]] - WINDOW_S))
        while (ytid, start) in taken:
            start = float(rng.randrange(0, durations[ids[ytid]] - WINDOW_S))
        taken.add((ytid, start))
        clips.append(Clip(ytid, start))
    return clips


# ------------------------------------------------------------------ the planning scenario


def planning(rows: int, done: int, workdir: Path) -> dict:
    csv_path = workdir / "unbalanced_train_segments.csv"
    out = workdir / "planning-out"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "make_segments.py"), str(csv_path), "--rows", str(rows),
                    "--done", str(done), "--output-dir", str(out)], check=True)
    command = [sys.executable, str(REPO / "AudioDownloader.py"), "--dry-run", "--csv", str(csv_path),
               "--output-dir", str(out), "--backend", "direct", "--url-format", "http://127.0.0.1:9/{YTID}"]
    # A wrapper process whose only child is the dry run: RUSAGE_CHILDREN's peak is then its own.
    measure_child = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
                     "r = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=True); "
                     "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
                     "print(r.stdout.strip())")
    result = subprocess.run([sys.executable, "-c", measure_child, *command], capture_output=True, text=True,
                            check=True)
    timing, plan_line = result.stdout.split("\n", 1)
    wall, peak_kb = float(timing.split()[0]), int(timing.split()[1])
    peak_mb = peak_kb / 1024
    summary = {"rows": rows, "done": done, "wall_s": round(wall, 2), "peak_rss_mb": round(peak_mb),
               "plan": plan_line.strip()}
    print(json.dumps(summary), flush=True)
    return summary


# ------------------------------------------------------------------ main


def run_arguments(doc: str, shard_size: int, clips: int = 240) -> argparse.ArgumentParser:
    """The options every run-against-the-media-server benchmark takes."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--bandwidth-mbps", type=float, default=2, help="per connection, MB/s")
    parser.add_argument("--clips", type=int, default=clips)
    parser.add_argument("--shard-size", type=int, default=shard_size)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    return parser


def save_report(args: argparse.Namespace, results: list[dict], file_name: str) -> None:
    """out/<file_name>: the machine, the network the media server played, and each side's figures."""
    report = {"machine": machine(), "latency_ms": args.latency_ms, "bandwidth_mbps": args.bandwidth_mbps,
              "shard_size": args.shard_size, "results": results}
    (args.out / file_name).write_text(json.dumps(report, indent=2) + "\n")


def make_mirror(out: Path, videos: int = 64) -> tuple[Path, dict[str, str], dict[str, int]]:
    """A mirror folder of ``videos`` synthetic sources (hard links to out/sources), with each YTID's source and
    each source's seconds."""
    sources = out / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    mirror = Path(tempfile.mkdtemp(prefix="bench-mirror-"))
    ids: dict[str, str] = {}
    durations: dict[str, int] = {}
    for seconds in SOURCE_SECONDS:
        name = f"tone{seconds}.m4a"
        if not (sources / name).exists():
            make_source(sources / name, seconds, "aac", rate=44100)
        durations[name] = seconds
    for i in range(videos):
        ytid = f"benchvid{i:03d}"
        ids[ytid] = f"tone{SOURCE_SECONDS[i % len(SOURCE_SECONDS)]}.m4a"
        os.link(sources / ids[ytid], mirror / f"{ytid}.m4a")
    return mirror, ids, durations


def machine() -> dict:
    model = ""
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    version = subprocess.run([find_ffmpeg(), "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "ffmpeg": version}


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scaling = sorted((r for r in results if r.scenario == "project"), key=lambda r: r.workers)
    workers = [r.workers for r in scaling]
    base = scaling[0].clips_per_s / scaling[0].workers
    seed = next(r for r in results if r.scenario == "seed")
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    axes.plot(workers, [base * w for w in workers], "--", color="gray", label="latency-bound ideal (WORKERS=1 x n)")
    axes.plot(workers, [r.clips_per_s for r in scaling], "o-", label="audioset-downloader")
    axes.axhline(seed.clips_per_s, color="tab:red", linestyle=":", label="original approach (sequential)")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xticks(workers, [str(w) for w in workers])
    axes.set_xlabel("WORKERS")
    axes.set_ylabel("clips / s")
    axes.set_title("Throughput at 100 ms latency, 2 MB/s per connection")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--bandwidth-mbps", type=float, default=2, help="per connection, MB/s")
    parser.add_argument("--seed-clips", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=8,
                        help="clips per scenario = rounds x WORKERS (ramp-up and tail weigh less)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--planning-rows", type=int, default=2_041_789)
    parser.add_argument("--planning-done", type=int, default=1_000_000)
    parser.add_argument("--skip-planning", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2017)

    sources = args.out / "sources"
    sources.mkdir(exist_ok=True)
    durations = {}
    for seconds in SOURCE_SECONDS:
        name = f"tone{seconds}.m4a"
        if not (sources / name).exists():
            make_source(sources / name, seconds, "aac", rate=44100)
        durations[name] = seconds
    ids = {f"benchvid{i:03d}": f"tone{SOURCE_SECONDS[i % len(SOURCE_SECONDS)]}.m4a" for i in range(64)}

    server = ServerProcess(sources, args.latency_ms / 1000, args.bandwidth_mbps * 1_000_000, ids)
    results: list[Result] = []
    try:
        with reroute_youtube(server.base_url):
            results.append(measure("seed", 1, make_clips(args.seed_clips, ids, durations, rng),
                                   seed_approach, server))
            for workers in args.workers:
                clips = make_clips(max(16, args.rounds * workers), ids, durations, rng)
                results.append(measure("project", workers, clips,
                                       lambda c, d, w=workers: project_approach(c, d, w), server))
    finally:
        server.stop()

    report = {"machine": machine(), "latency_ms": args.latency_ms, "bandwidth_mbps": args.bandwidth_mbps,
              "window_encoded_bytes": WINDOW_S * BITRATE // 8, "results": [asdict(r) for r in results]}
    if not args.skip_planning:
        report["planning"] = planning(args.planning_rows, args.planning_done, args.out)
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(results, REPO / "benchmarks" / "scaling.png")
    print(f"wrote {args.out / 'results.json'} and benchmarks/scaling.png")


if __name__ == "__main__":
    main()
