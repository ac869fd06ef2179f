"""Windows from mirrors: how fast, and what each clip costs on the wire, side by side in one run.

The Hub's stand-in (tests/support/hub.py) serves each copy through huggingface_hub's own client, its
link throttled to a fixed bandwidth shared by every connection. Every run is the command line's.

1. A list all held (whole files): a parquet copy (agkphysics/AudioSet's layout, 48 kHz stereo FLAC,
   one clip per row group) and a tar copy (confit's layout). Clips a second, bytes on the wire per
   clip, and the share of the wire's bandwidth used while the mirror clips were taken (goal >= 80 %).
2. A list of which the mirror holds 1 in 50 (ranged reads): per layout, the bytes on the wire per
   clip taken against the clip's own bytes (goal <= 2x), and what finding them cost once (the index:
   footers, tar headers and JSON, a listing); parquet with large row groups said as it is.
3. AudioSet's unbalanced list, planned: the time with and without agkphysics/AudioSet's holdings.

    python benchmarks/bench_mirrors.py                 # about 3 minutes on 2 cores
    python benchmarks/bench_mirrors.py --mbps 80 --clips 150
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audioset_downloader.fetch.cutter import find_ffmpeg  # noqa: E402
from benchmarks.bench import machine  # noqa: E402
from tests.support.copies import parquet_copy, webdataset_copy  # noqa: E402
from tests.support.hub import FakeHub  # noqa: E402

UNBALANCED = 2_041_789  # windows in unbalanced_train_segments.csv
AGK_UNBALANCED = 1_738_788  # of them in agkphysics/AudioSet (its card)
AGK_BYTES = 2.4e12  # its size, for 18,685 + 17,142 + 1,738,788 clips
AGK_CLIPS = 18_685 + 17_142 + 1_738_788
GUEST_PER_HOUR = 270  # the book's pace for a guest identity: 90 % of YouTube's ~300 an hour


def clip(source: Path, start: float, rate: int, channels: int, folder: Path) -> bytes:
    out = folder / f"clip-{start}-{rate}-{channels}.flac"
    if not out.exists():
        subprocess.run([find_ffmpeg(), "-nostdin", "-loglevel", "error", "-ss", str(start), "-t", "10", "-i",
                        str(source), "-ar", str(rate), "-ac", str(channels), "-sample_fmt", "s32"
                        if rate == 48000 else "s16", "-c:a", "flac", str(out)], check=True)
    return out.read_bytes()


def make_source(folder: Path) -> Path:
    """Ten minutes of noise under a tone: audio FLAC cannot shrink much, like the recordings AudioSet holds."""
    source = folder / "source.wav"
    subprocess.run([find_ffmpeg(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "anoisesrc=c=pink:a=0.25:r=48000:d=600", "-f", "lavfi", "-i", "sine=f=440:r=48000:d=600",
                    "-filter_complex", "amix=inputs=2,pan=stereo|c0=c0|c1=c0", "-ar", "48000", str(source)],
                   check=True)
    return source


def ytid(n: int) -> str:
    return f"bench{n:06d}"


def run(work: Path, hub: FakeHub, repo: str, windows: list[int], label: str, dry_first: bool = True) -> dict:
    """The command line over ``windows``: a dry run first (it builds the index), then the run."""
    csv = work / f"{label}.csv"
    csv.write_text("".join(f'{ytid(n)}, {n % 50}.000, {n % 50 + 10}.000, "/m/09x0r"\n' for n in windows))
    out = work / f"out-{label}"
    config = work / f"{label}.py"
    config.write_text(f'CSV_FILE_NAMES = ["{csv}"]\nOUTPUT_DIR = "{out}"\nTIMER = 0\nBACKEND = "direct"\n'
                      f'YTB_URL_FORMAT = "http://127.0.0.1:9/{{YTID}}"\nMIRRORS = ["hf://datasets/{repo}"]\n'
                      f'MIRROR_AUDIT = 0\nAUDIO_FORMAT = "wav"\nSAMPLE_RATE = 16000\nCHANNELS = 1\n'
                      f'CACHE_DIR = "{work / "cache"}"\nMIRROR_WORKERS = 8\nRETRIES = 0\n')
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(work / "hf-home"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    hub.server.reset_counts()
    planned = subprocess.run([sys.executable, str(REPO / "AudioDownloader.py"), "--config", str(config),
                              "--dry-run"], capture_output=True, text=True, env=env, cwd=work)
    assert planned.returncode == 0, planned.stderr
    index_bytes = hub.bytes_sent(repo)
    hub.server.reset_counts()
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(REPO / "AudioDownloader.py"), "--config", str(config)],
                          capture_output=True, text=True, env=env, cwd=work)
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / f"{label}.summary.json").read_text())
    return {"label": label, "clips": summary["mirrored"], "wall_s": round(wall, 2),
            "mirror_s": summary["mirror_seconds"], "wire_bytes": hub.bytes_sent(repo), "index_bytes": index_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mbps", type=float, default=40.0, help="the wire's bandwidth, megabits a second")
    parser.add_argument("--clips", type=int, default=120, help="windows in the all-held list")
    parser.add_argument("--sparse-mirror", type=int, default=500, help="clips in the mirror of the 1-in-50 list")
    args = parser.parse_args()
    wire = args.mbps * 1e6 / 8
    results: dict = {"machine": machine(), "wire_bytes_per_s": wire}
    with tempfile.TemporaryDirectory(prefix="bench-mirrors-") as folder, FakeHub(wire_bps=wire) as hub:
        work = Path(folder)
        source = make_source(work)
        print(f"copies: cutting {args.clips} + {args.sparse_mirror} clips", file=sys.stderr)
        dense = [clip(source, float(n % 50), 48000, 2, work) for n in range(args.clips)]
        sparse = [clip(source, float(n % 50), 16000, 1, work) for n in range(args.sparse_mirror)]

        # 1. all held
        rows = [{"audio": data, "video_id": ytid(n), "labels": ["/m/09x0r"]} for n, data in enumerate(dense)]
        parquet_copy(work / "agk" / "data" / "bal_train" / "00.parquet", rows, row_group_size=1)
        hub.add("bench/agk-dense", work / "agk")
        webdataset_copy(work / "wds-dense", [({"id": f"Y{ytid(n)}"}, data, "flac") for n, data in enumerate(dense)],
                        per_shard=40)
        hub.add("bench/wds-dense", work / "wds-dense")
        dense_bytes = sum(map(len, dense)) / len(dense)
        held = []
        for repo, label in (("bench/agk-dense", "parquet-dense"), ("bench/wds-dense", "tar-dense")):
            measured = run(work, hub, repo, list(range(args.clips)), label)
            measured["clip_bytes"] = round(dense_bytes)
            measured["clips_per_s"] = round(measured["clips"] / measured["mirror_s"], 2)
            measured["wire_share"] = round(measured["wire_bytes"] / measured["mirror_s"] / wire, 3)
            held.append(measured)
            print(json.dumps(measured), file=sys.stderr)
        results["all_held"] = held

        # 2. 1 in 50
        wanted = list(range(0, args.sparse_mirror, 50))
        sparse_bytes = sum(len(sparse[n]) for n in wanted) / len(wanted)
        rows_small = [{"audio": data, "video_id": ytid(n)} for n, data in enumerate(sparse)]
        parquet_copy(work / "p1" / "data" / "00.parquet", [dict(r) for r in rows_small], row_group_size=1)
        parquet_copy(work / "p100" / "data" / "00.parquet", [dict(r) for r in rows_small], row_group_size=100)
        webdataset_copy(work / "wds", [({"id": f"Y{ytid(n)}"}, data, "flac") for n, data in enumerate(sparse)],
                        per_shard=100)
        (work / "files").mkdir()
        for n, data in enumerate(sparse):
            (work / "files" / f"Y{ytid(n)}.flac").write_bytes(data)
        layouts = (("p1", "parquet, one clip per row group"), ("p100", "parquet, 100 clips per row group"),
                   ("wds", "tar shards, 100 samples each"), ("files", "a file per clip"))
        sparse_results = []
        for name, what in layouts:
            hub.add(f"bench/{name}", work / name)
            measured = run(work, hub, f"bench/{name}", wanted, f"sparse-{name}")
            measured.update(layout=what, clip_bytes=round(sparse_bytes),
                            wire_per_clip=round(measured["wire_bytes"] / max(1, measured["clips"])),
                            index_per_clip=round(measured["index_bytes"] / max(1, measured["clips"])))
            measured["wire_vs_clip"] = round(measured["wire_per_clip"] / sparse_bytes, 2)
            sparse_results.append(measured)
            print(json.dumps(measured), file=sys.stderr)
        results["one_in_fifty"] = sparse_results

    # 3. the unbalanced list, planned with ten guest identities, and the wire share measured above on a 1 Gbit/s link
    share = min(entry["wire_share"] for entry in held)
    link = 1e9 / 8 * share
    youtube_all = UNBALANCED / (10 * GUEST_PER_HOUR)
    youtube_rest = (UNBALANCED - AGK_UNBALANCED) / (10 * GUEST_PER_HOUR)
    mirror_hours = AGK_UNBALANCED * AGK_BYTES / AGK_CLIPS / link / 3600
    results["unbalanced_eta_hours"] = {"youtube_only": round(youtube_all, 1),
                                       "with_agkphysics": round(max(youtube_rest, mirror_hours), 1),
                                       "youtube_part": round(youtube_rest, 1), "mirror_part": round(mirror_hours, 1),
                                       "link_bytes_per_s": round(link)}
    (REPO / "benchmarks" / "out").mkdir(exist_ok=True)
    (REPO / "benchmarks" / "out" / "mirrors.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
