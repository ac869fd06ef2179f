"""The same run to a local folder and to S3 (moto's S3 server on 127.0.0.1), side by side.

The media server of bench.py (its own process, fixed latency per request, bandwidth per
connection) serves a mirror of synthetic sources to the "direct" backend; moto's S3 server runs in
a process of its own (`python -m moto.server`), and is reached by the real s3fs client. Each run
is a fresh process (so that its peak memory is its own), the same clips in the same order, the
local engine with WORKERS=8 and shards of work of SHARD_SIZE clips. Reported per side and layout:
clips a second, the run's peak resident memory (ffmpeg children apart), and the S3 requests per
clip (counted from the S3 server's request log), and the CPU the run and the S3 server spent per
clip: on one machine moto (a Python server) competes with ffmpeg for the same cores.

    pip install -e ".[bench,s3,test]"
    python benchmarks/bench_object_storage.py --latency-ms 100 --bandwidth-mbps 2
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audioset_downloader.inputs.settings import Settings, stage_folder  # noqa: E402
from benchmarks.bench import WINDOW_S, ServerProcess, make_clips, make_mirror, run_arguments, save_report  # noqa: E402

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
REQUEST = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) ')


def _run(settings: Settings, csv_path: Path, results) -> None:
    """One run in a process of its own: its wall time and its own peak memory."""
    from audioset_downloader.engine.runner import run_csv

    started = time.perf_counter()
    summary = run_csv(csv_path, settings, console=False)
    wall = time.perf_counter() - started
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    results.put({"written": summary.written, "attempted": summary.attempted, "wall_s": wall,
                 "peak_rss_mb": own.ru_maxrss / 1024,
                 "cpu_s": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime})


def cpu_of(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def run(name: str, settings: Settings, csv_path: Path, s3_log: Path, moto_pid: int) -> dict:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    requests_before = len(REQUEST.findall(s3_log.read_text(errors="replace")))
    moto_cpu = cpu_of(moto_pid)
    process = context.Process(target=_run, args=(settings, csv_path, results))
    process.start()
    outcome = results.get()
    process.join()
    time.sleep(0.5)  # the S3 server's last log lines
    moto_cpu = cpu_of(moto_pid) - moto_cpu
    requests = len(REQUEST.findall(s3_log.read_text(errors="replace"))) - requests_before
    result = {"output": name, "layout": settings.output_layout, "clips": outcome["attempted"],
              "written": outcome["written"], "clips_per_s": round(outcome["attempted"] / outcome["wall_s"], 2),
              "peak_rss_mb": round(outcome["peak_rss_mb"], 1),
              "cpu_ms_per_clip": round(1000 * outcome["cpu_s"] / outcome["attempted"], 1),
              "s3_server_cpu_ms_per_clip": round(1000 * moto_cpu / outcome["attempted"], 1),
              "s3_requests_per_clip": round(requests / outcome["attempted"], 3) if settings.output_url else None}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    args = run_arguments(__doc__, shard_size=60).parse_args()

    mirror, ids, durations = make_mirror(args.out)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workdir = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    s3_log = workdir / "s3.log"
    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    with open(s3_log, "w") as log:
        moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
    server = ServerProcess(mirror, args.latency_ms / 1000, args.bandwidth_mbps * 1_000_000, {})
    results = []
    try:
        import fsspec

        deadline = time.monotonic() + 30
        while True:
            try:
                fsspec.filesystem("s3", skip_instance_cache=True).mkdir("bench")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        rng = random.Random(2017)
        clips = make_clips(args.clips, ids, durations, rng)
        csv_path = workdir / "bench_segments.csv"
        csv_path.write_text("".join(f'{c.ytid}, {c.start:.3f}, {c.start + WINDOW_S:.3f}, "/m/09x0r"\n'
                                    for c in clips))
        base = Settings(csv_file_names=(csv_path,), timer=0, retries=0, workers=8, backend="direct",
                        requests_per_minute=None, ytb_url_format=server.base_url + "/{YTID}.m4a",
                        shard_size=args.shard_size, cache_dir=workdir / "cache", clips_per_tar=args.shard_size)
        for layout in ("files", "webdataset"):
            for name in ("local", "s3"):
                server.reset()
                url = f"s3://bench/{layout}"
                settings = replace(base, output_layout=layout, output_dir=workdir / f"{name}-{layout}")
                if name == "s3":
                    settings = replace(settings, output_url=url, output_dir=stage_folder(workdir / "cache", url))
                results.append(run(name, settings, csv_path, s3_log, moto.pid))
    finally:
        server.stop()
        moto.terminate()
        moto.wait(timeout=30)
        shutil.rmtree(mirror)
        shutil.rmtree(workdir)
    save_report(args, results, "object_storage.json")


if __name__ == "__main__":
    main()
