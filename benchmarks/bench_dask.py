"""The local engine against ENGINE = "dask" on a LocalCluster of 2 workers, side by side.

The same media server as bench.py (its own process on 127.0.0.1, fixed latency per
request, bandwidth per connection) serves a mirror of synthetic sources to the
"direct" backend; both engines cut the same kind of clips with the same total
concurrency (local: WORKERS=8; Dask: 2 worker processes x WORKERS=4 per task).
On one 2-core machine expect parity, not a speed-up: the point of the Dask engine
is that the same code spreads over more machines.

    pip install -e ".[bench,dask]"
    python benchmarks/bench_dask.py --latency-ms 100 --bandwidth-mbps 2
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audioset_downloader.engine.dask_engine import DaskDispatch  # noqa: E402
from audioset_downloader.engine.runner import local_dispatch, run_csv  # noqa: E402
from audioset_downloader.inputs.settings import Settings  # noqa: E402
from benchmarks.bench import WINDOW_S, ServerProcess, make_clips, make_mirror, run_arguments, save_report  # noqa: E402


def tree_cpu(extra_pids: list[int]) -> float:
    """CPU seconds of this process, its reaped children, and the given live processes with theirs."""
    import psutil

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    for pid in extra_pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
    return total


def run(name: str, csv_path: Path, settings: Settings, dispatch, server: ServerProcess, pids: list[int]) -> dict:
    server.reset()
    cpu_before, started = tree_cpu(pids), time.perf_counter()
    summary = run_csv(csv_path, settings, console=False, dispatch=dispatch)
    wall = time.perf_counter() - started
    cpu = tree_cpu(pids) - cpu_before
    clips = summary.attempted
    result = {"engine": name, "clips": clips, "written": summary.written, "wall_s": round(wall, 2),
              "clips_per_s": round(clips / wall, 2), "bytes_per_clip": round(server.stats()["bytes"] / clips),
              "cpu_ms_per_clip": round(1000 * cpu / clips, 1), "failed": summary.failed}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    args = run_arguments(__doc__, shard_size=20).parse_args()
    from dask.distributed import Client, LocalCluster

    mirror, ids, durations = make_mirror(args.out)

    server = ServerProcess(mirror, args.latency_ms / 1000, args.bandwidth_mbps * 1_000_000, {})
    rng = random.Random(2017)
    results = []
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            pids = list(client.run(os.getpid).values())
            client.run(lambda: __import__("audioset_downloader.engine.worker"))  # warm the workers' imports: not timed
            for name, workers, dispatch in (("local", 8, local_dispatch),
                                            ("dask", 4, DaskDispatch(client, args.shard_size))):
                workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
                clips = make_clips(args.clips, ids, durations, rng)
                csv_path = workdir / "bench_segments.csv"
                csv_path.write_text("".join(f'{c.ytid}, {c.start:.3f}, {c.start + WINDOW_S:.3f}, "/m/09x0r"\n'
                                            for c in clips))
                settings = Settings(csv_file_names=(csv_path,), output_dir=workdir / "out", timer=0, retries=0,
                                    workers=workers, backend="direct", engine=name,
                                    ytb_url_format=server.base_url + "/{YTID}.m4a", shard_size=args.shard_size)
                results.append(run(name, csv_path, settings, dispatch, server, pids if name == "dask" else []))
                shutil.rmtree(workdir)
    finally:
        server.stop()
        shutil.rmtree(mirror)
    save_report(args, results, "dask.json")


if __name__ == "__main__":
    main()
