"""Reading every list, and reusing what is on disk: what it costs on AudioSet's scale.

1. The reuse index: a 2,041,789-row split-pos.csv (the size of AudioSet's unbalanced list) under
   REUSE_FROM, and an AudioCaps-train-sized list (49,838 windows, 95 % of them in that manifest):
   the time and the peak memory of ReuseIndex.build, in a process of its own.
2. The AudioSet reader after the list readers came in: a 2 M-row `--dry-run` (with 1 M clips
   done, as in "Planning 2 M rows"), this tree against BASELINE (the commit before them) side by
   side, alternating, three runs each.
3. A list of another shape as long: 2,041,789 VGGSound-shaped rows, `--dry-run` (read twice: the
   first pass finds the windows listed more than once).

    python benchmarks/bench_reuse.py                    # about 4 minutes on 2 cores
    python benchmarks/bench_reuse.py --baseline 46f113f
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench import machine  # noqa: E402
from benchmarks.make_segments import make_rows  # noqa: E402

INDEX_CHILD = """
import sys, time
from pathlib import Path
from audioset_downloader.inputs.settings import Settings
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.reuse import ReuseIndex
work = Path(sys.argv[1])
def status(key):  # kB; VmHWM is this process's own peak (ru_maxrss would count the parent's, from fork)
    return int(next(line for line in open("/proc/self/status") if line.startswith(key)).split()[1])
ytids = {line.split(",")[1] for line in open(work / "audiocaps_train.csv").read().splitlines()[1:]}
before = status("VmRSS:")
started = time.perf_counter()
index = ReuseIndex.build(Settings(output_dir=work / "caps", reuse_from=(work / "audioset",)),
                         CsvOutputs(work / "caps", "audiocaps_train"), ytids)
seconds = time.perf_counter() - started
print(seconds, before / 1024, status("VmHWM:") / 1024, len(index))
"""


def write_manifest(work: Path, rows: int, listed: int, rng: random.Random) -> None:
    (work / "audioset").mkdir()
    (work / "caps").mkdir()
    segments = make_rows(rows)
    with open(work / "audioset" / "unbalanced_train_segments.split-pos.csv", "w") as handle:
        handle.write("file,YTID,start_seconds,end_seconds,positive_labels,label_names,backend,member\n")
        for ytid, start, end, labels in segments:
            handle.write(f'unbalanced_train_segments/{ytid}.wav,{ytid},{start},{end},"{labels}",,pytube,\n')
    whole = [(ytid, start) for ytid, start, _, _ in segments if start.endswith(".000")]
    on_disk = rng.sample(whole, int(listed * 0.95))
    fresh = [("".join(rng.choice("abcdefghijk") for _ in range(11)), "30.000") for _ in range(listed - len(on_disk))]
    with open(work / "vggsound.csv", "w") as handle:  # a list of another shape, as long as AudioSet's
        for ytid, start, _, _ in segments:
            handle.write(f"{ytid},{int(float(start))},dog barking,train\n")
    with open(work / "audiocaps_train.csv", "w") as handle:
        handle.write("audiocap_id,youtube_id,start_time,caption\n")
        for number, (ytid, start) in enumerate(on_disk + fresh):
            handle.write(f"{number},{ytid},{int(float(start))},a caption\n")


def measure_index(work: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", INDEX_CHILD, str(work)], capture_output=True, text=True,
                            check=True, cwd=REPO)
    seconds, before, peak, found = result.stdout.split()
    return {"seconds": round(float(seconds), 2), "rss_before_mb": round(float(before)),
            "peak_rss_mb": round(float(peak)), "added_mb": round(float(peak) - float(before)),
            "windows_found": int(found)}


MEASURE_CHILD = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
                 "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
                 "r.returncode and sys.exit(r.stderr[-3000:]); "
                 "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def make_planning_state(work: Path) -> None:
    """The 2 M-row CSV and a state of 1 M clips done, once for every run (as bench.py's planning makes it)."""
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "make_segments.py"), str(work / "unbalanced.csv"),
                    "--rows", "2041789", "--done", "1000000", "--output-dir", str(work / "out")], check=True)


def dry_run(tree: Path, work: Path, listed: str = "unbalanced.csv", out: str = "out") -> dict:
    """``tree``'s AudioDownloader.py --dry-run on the 2 M rows: wall time and peak RSS (a wrapper's only child)."""
    command = [sys.executable, str(tree / "AudioDownloader.py"), "--dry-run", "--csv", str(work / listed),
               "--output-dir", str(work / out), "--backend", "direct", "--url-format", "http://127.0.0.1:9/{YTID}"]
    result = subprocess.run([sys.executable, "-c", MEASURE_CHILD, *command], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(tree)}, cwd=work)  # not this folder's config
    if result.returncode != 0:
        raise SystemExit(f"the dry run of {tree} failed:\n{result.stderr[-3000:]}")
    wall, peak_kb = result.stdout.split()
    return {"wall_s": round(float(wall), 2), "peak_rss_mb": round(int(peak_kb) / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="46f113f", help="the commit before the list readers")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write-manifest", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_manifest:
        write_manifest(args.write_manifest, 2_041_789, 49_838, random.Random(7))
        return
    results: dict = {"machine": machine()}
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        # In a process of its own: this one stays small, so the peaks its children inherit at fork are too.
        subprocess.run([sys.executable, __file__, "--write-manifest", str(work)], check=True)
        results["index"] = measure_index(work)
        print(json.dumps(results["index"]), flush=True)
        baseline = work / "baseline"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(baseline), args.baseline],
                       check=True)
        try:
            make_planning_state(work)
            runs: dict[str, list[dict]] = {"baseline": [], "now": []}
            for _ in range(args.runs):
                for name, tree in (("baseline", baseline), ("now", REPO)):
                    runs[name].append(dry_run(tree, work))
                    print(name, runs[name][-1], flush=True)
            results["dry_run"] = {name: {"wall_s": [r["wall_s"] for r in found],
                                         "peak_rss_mb": [r["peak_rss_mb"] for r in found]}
                                  for name, found in runs.items()}
            # Alone, then beside an AudioSet download of 1 M of its windows (the reuse index holds those).
            results["vggsound_dry_run"] = {"alone": dry_run(REPO, work, "vggsound.csv", "empty"),
                                           "audioset_on_disk": dry_run(REPO, work, "vggsound.csv")}
            print("vggsound", results["vggsound_dry_run"], flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(baseline)], check=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
