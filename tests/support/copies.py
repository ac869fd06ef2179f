"""Public copies of windows, built as the Hub's and labs' are, with real FLAC and WAV bytes.

A copy of window [start, end) of a video is that stretch of the time-coded source the fake YouTube
(and the lab HTTP mirror) serve for every video, so a clip written from a copy can be checked to be
the window by its content, as one cut from YouTube is. ``shift_s`` makes a copy cut off its window.
"""

from __future__ import annotations

import functools
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

from audioset_downloader.fetch.cutter import find_ffmpeg


@functools.lru_cache(maxsize=256)
def window_bytes(source: Path, start: float, seconds: float, codec: str = "flac", rate: int = 48000,
                 channels: int = 2) -> bytes:
    """The stretch [start, start + seconds) of ``source``, encoded as ``codec`` ("flac" or "wav")."""
    muxer = {"flac": "flac", "wav": "wav"}[codec]
    with tempfile.TemporaryDirectory() as folder:  # a file, not a pipe: its header says its length, as a copy's does
        out = Path(folder) / f"copy.{codec}"
        # Decode from the start (no input seeking): the stretch is exact to the sample.
        subprocess.run([find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(source),
                        "-af", f"atrim=start={start}:duration={seconds},asetpts=PTS-STARTPTS", "-ar", str(rate),
                        "-ac", str(channels), "-f", muxer, str(out)], check=True)
        return out.read_bytes()


def files_copy(folder: Path, clips: dict[str, bytes], style: str = "Y{ytid}.wav") -> Path:
    """A PANNs-style folder: one file per window, named by ``style`` (``{ytid}``, ``{start}``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in clips.items():
        (folder / name).write_bytes(data)
    return folder


def parquet_copy(path: Path, rows: list[dict], row_group_size: int = 2) -> Path:
    """A parquet file as the Hub holds audio sets: an ``audio`` struct of {bytes, path} and the annotations."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    audio = pa.array([{"bytes": row.pop("audio"), "path": row.pop("path", None)} for row in rows],
                     pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    columns = {"audio": audio}
    for name in rows[0] if rows else ():
        columns[name] = pa.array([row[name] for row in rows])
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def webdataset_copy(folder: Path, samples: list[tuple[dict, bytes, str]], per_shard: int = 3,
                    first: int = 0) -> list[Path]:
    """confit-style shards: opaque keys ``sample-NNNNNNNNN``, a ``.json`` and an audio member each."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for number, begin in enumerate(range(0, len(samples), per_shard)):
        path = folder / f"shard-{number:05d}.tar"
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for index, (meta, data, suffix) in enumerate(samples[begin: begin + per_shard], first + begin):
                for name, content in ((f"sample-{index:09d}.{suffix}", data),
                                      (f"sample-{index:09d}.json", json.dumps(meta).encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
        shards.append(path)
    return shards
