"""What the webdataset and parquet layouts cost to write and save to read, against the files layout, side by side.

Writing: the same clips are recorded through the real Ledger in each layout, as a run
records them once a worker has put a clip in place; in the webdataset layout that
includes packing each full shard (the clips are written a second time, into the tar)
and removing the loose files. Reading: every sample back, as a training loader's first
epoch would: the files layout file by file in split-pos.csv's order, the shards with the
webdataset package (or tarfile when it is not installed), the parquet files with pyarrow.
One clip back, as a mirror reads it (fetch/mirrors/): the bytes read from a parquet file
against a tar member, after what finding it costs once. With --drop-caches (root on
Linux) each read starts from a cold page cache, which is the case that matters on a
shared file system; without it the figures are warm-cache ones.

    pip install -e ".[bench,webdataset,parquet,mirrors]"
    python benchmarks/bench_shards.py --clips 4000 --drop-caches
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audioset_downloader.fetch.cutter import find_ffmpeg  # noqa: E402
from audioset_downloader.inputs.segments import new_segment  # noqa: E402
from audioset_downloader.outputs.layout import CsvOutputs  # noqa: E402
from audioset_downloader.outputs.ledger import Ledger  # noqa: E402
from benchmarks.bench import machine  # noqa: E402

NAME = "bench_segments"


def make_clip(path: Path, rate: int, channels: int) -> bytes:
    """A ten-second wav, as a run writes one (noise, so that nothing compresses it away)."""
    subprocess.run([find_ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"anoisesrc=d=10:r={rate}:a=0.3", "-ac", str(channels), "-c:a", "pcm_s16le", str(path)],
                   check=True)
    return path.read_bytes()


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def record(root: Path, clip: bytes, clips: int, tar_size: int | None, suffix: str = "tar") -> dict:
    """Put ``clips`` clips in place as workers do, recording each; time the recording alone."""
    outputs = CsvOutputs(root, NAME)
    outputs.prepare()
    ledger = Ledger(outputs, tar_size=tar_size, suffix=suffix)
    ledger.open()
    spent = 0.0
    for i in range(clips):
        ytid = f"b{i:010d}"
        (outputs.clip_dir / f"{ytid}.wav").write_bytes(clip)
        segment = new_segment((ytid, 30_000, 40_000, "/m/09x0r,/m/0bt9lr", i, ytid, False, ""))
        started = time.perf_counter()
        ledger.record_written(segment, outputs.relative_clip(ytid, "wav"), "direct")
        spent += time.perf_counter() - started
    started = time.perf_counter()
    ledger.finish()
    ledger.close()
    spent += time.perf_counter() - started
    files = len(os.listdir(outputs.clip_dir))
    written = sum(path.stat().st_size for path in outputs.clip_dir.iterdir())
    return {"record_ms_per_clip": round(1000 * spent / clips, 3), "clips_per_s": round(clips / spent),
            "bytes_per_clip_written": round(written / clips), "files_in_clip_folder": files}


def read_files(root: Path) -> tuple[int, int]:
    outputs = CsvOutputs(root, NAME)
    ledger = Ledger(outputs)
    samples = size = 0
    for row in ledger.written_rows():
        size += len((root / row[0]).read_bytes())
        samples += 1
    return samples, size


def _shards(root: Path) -> list[str]:
    return sorted(str(p) for p in (root / NAME).glob(f"{NAME}-*.tar"))


def read_tarfile(root: Path) -> tuple[int, int]:
    """The shards with the standard library's tarfile: the floor under any tar reader."""
    samples = size = 0
    for shard in _shards(root):
        with tarfile.open(shard) as tar:
            for info in tar:
                if info.name.endswith(".wav"):
                    size += len(tar.extractfile(info).read())
                    samples += 1
    return samples, size


def read_webdataset(root: Path) -> tuple[int, int]:
    import webdataset

    samples = size = 0
    for sample in webdataset.WebDataset(_shards(root), shardshuffle=False):
        size += len(sample["wav"])
        samples += 1
    return samples, size


def read_parquet(root: Path) -> tuple[int, int]:
    import pyarrow.parquet as pq

    samples = size = 0
    for path in sorted((root / NAME).glob(f"{NAME}-*.parquet")):
        parquet = pq.ParquetFile(path)
        for group in range(parquet.num_row_groups):
            for cell in parquet.read_row_group(group, columns=["audio"]).column("audio").to_pylist():
                size += len(cell["bytes"])
                samples += 1
    return samples, size


def one_clip(root: Path, layout: str) -> dict:
    """One clip of the middle shard read back as a mirror reads it: what finding it costs, then its own read."""
    from audioset_downloader.fetch.mirrors.access import MirrorAccess
    from audioset_downloader.fetch.mirrors.parquet import ParquetLayout
    from audioset_downloader.fetch.mirrors.webdataset import WebDatasetLayout
    from audioset_downloader.inputs.settings import MirrorSpec

    access = MirrorAccess(MirrorSpec(str(root / NAME)), "bench", {})
    reader = ParquetLayout() if layout == "parquet" else WebDatasetLayout()
    entries = [entry for entry in access.listing() if reader.reads(entry)]
    entry = entries[len(entries) // 2]
    copies = reader.copies_in(access, entry, len(entries) // 2)
    found, requests = access.bytes_read, access.requests
    data = reader.read(access, entry, copies[len(copies) // 2])
    return {"index_bytes_per_file": found, "index_requests_per_file": requests,
            "clip_read_bytes": access.bytes_read - found, "clip_read_requests": access.requests - requests,
            "clip_bytes": len(data)}


def timed_read(reader, root: Path, cold: bool) -> dict:
    if cold:
        drop_caches()
    started = time.perf_counter()
    samples, size = reader(root)
    wall = time.perf_counter() - started
    return {"samples": samples, "samples_per_s": round(samples / wall), "MB_per_s": round(size / wall / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=4000)
    parser.add_argument("--per-tar", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--drop-caches", action="store_true", help="read from a cold page cache (root, Linux)")
    parser.add_argument("--work-dir", type=Path, help="where to write (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "shards.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-shards-", dir=args.work_dir))
    try:
        clip = make_clip(work / "clip.wav", args.rate, args.channels)
        results: dict = {"machine": machine(), "clips": args.clips, "clip_bytes": len(clip),
                         "per_tar": args.per_tar, "cold_cache": args.drop_caches}
        for layout, tar_size, suffix in (("files", None, "tar"), ("webdataset", args.per_tar, "tar"),
                                         ("parquet", args.per_tar, "parquet")):
            results[layout] = record(work / layout, clip, args.clips, tar_size, suffix)
        readers = {"files": ("files", read_files), "tarfile": ("webdataset", read_tarfile),
                   "parquet": ("parquet", read_parquet)}
        try:
            import webdataset  # noqa: F401
        except ImportError:
            print("webdataset is not installed: the shards are read with tarfile only", file=sys.stderr)
        else:
            readers["webdataset"] = ("webdataset", read_webdataset)
        results["read"] = {}
        for name, (layout, reader) in readers.items():
            results["read"][name] = {"cold" if args.drop_caches else "first": timed_read(reader, work / layout,
                                                                                          args.drop_caches),
                                     "warm": timed_read(reader, work / layout, False)}
        results["one_clip"] = {layout: one_clip(work / layout, layout) for layout in ("webdataset", "parquet")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
