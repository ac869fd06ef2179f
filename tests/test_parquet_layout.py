"""OUTPUT_LAYOUT = "parquet": files of CLIPS_PER_FILE clips, a row each; kill-safe, verified, merged, a mirror."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Mirror, run_script, write_config, write_csv
from tests.support.audio import decode, window_offset
from tests.test_object_storage import bucket, s3

pq = pytest.importorskip("pyarrow.parquet")
__all__ = ["bucket", "s3"]  # fixtures, used by name

NAME = "eval_segments"
WINDOWS = [(f"parquetCl{n:02d}", 5.0 * n + 0.5, 5.0 * n + 10.5) for n in range(7)]


def setup(tmp_path: Path, mirror: Mirror, out: str = "out", **constants: object) -> Path:
    for ytid, _, _ in WINDOWS:
        if not (mirror.root / f"{ytid}.m4a").exists():
            mirror.add(ytid)
    csv_path = tmp_path / f"{NAME}.csv"
    if not csv_path.exists():
        write_csv(csv_path, [f'{y}, {s:.3f}, {e:.3f}, "/m/09x0r,/m/0bt9lr"' for y, s, e in WINDOWS])
    settings: dict[str, Any] = dict(CSV_FILE_NAMES=[str(csv_path)], OUTPUT_DIR=out, TIMER=0, BACKEND="direct",
                                    YTB_URL_FORMAT=mirror.url_format, OUTPUT_LAYOUT="parquet", CLIPS_PER_FILE=3,
                                    SAMPLE_RATE=16000, CHANNELS=1, AUDIO_FORMAT="flac", WORKERS=3,
                                    CACHE_DIR=str(tmp_path / "cache"), MIRROR_AUDIT=0)
    settings.update(constants)
    return write_config(tmp_path / f"{out.replace('/', '_').replace(':', '')}.py", **settings)


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def check_clips(out: Path, scratch: Path) -> list[dict[str, Any]]:
    """Every row of every file: its clip is its window, at the run's rate and channels."""
    rows = []
    for path in sorted((out / NAME).glob("*.parquet")):
        parquet = pq.ParquetFile(path)
        assert parquet.metadata.num_row_groups == parquet.metadata.num_rows  # a clip read alone
        features = json.loads(parquet.schema_arrow.metadata[b"huggingface"])["info"]["features"]
        assert features["audio"] == {"_type": "Audio"}
        for row in parquet.read().to_pylist():
            scratch.write_bytes(row["audio"]["bytes"])
            clip = decode(scratch)
            assert (clip.rate, clip.channels, clip.codec) == (16000, 1, "flac")
            assert abs(clip.duration - (row["end_seconds"] - row["start_seconds"])) < 0.03
            assert abs(window_offset(clip, row["start_seconds"])) < 0.02
            rows.append({**row, "file": f"{NAME}/{path.name}"})
    return rows


def test_a_run_writes_parquet_files_of_clips_per_file_and_the_manifest_names_file_and_row(tmp_path: Path,
                                                                                          mirror: Mirror) -> None:
    config = setup(tmp_path, mirror, str(tmp_path / "out"))
    done = run_script("--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    files = sorted(p.name for p in (out / NAME).iterdir())
    assert files == [f"{NAME}-00000{i}.parquet" for i in range(3)]  # 3 + 3 + 1, nothing loose, nothing partial
    written = check_clips(out, tmp_path / "clip.flac")
    assert sorted(row["YTID"] for row in written) == sorted(y for y, _, _ in WINDOWS)
    first = next(row for row in written if row["YTID"] == "parquetCl01")
    assert first["labels"] == ["/m/09x0r", "/m/0bt9lr"] and first["label_names"] == ["Speech", "Dog"]
    assert first["silent"] is False and first["duration_seconds"] == pytest.approx(10.0, abs=0.01)
    manifest = {row["YTID"]: row for row in rows_of(out / f"{NAME}.split-pos.csv")}
    for row in written:  # each clip's row names its file and its row there (the row's audio.path)
        assert (manifest[row["YTID"]]["file"], manifest[row["YTID"]]["member"]) == (row["file"], row["audio"]["path"])
    card = (out / f"{NAME}.README.md").read_text()
    assert "parquet files of 3 clips" in card and 'load_dataset("parquet"' in card
    # --report, --status and --verify read the layout as the others.
    assert run_script("--config", str(config), "--report", cwd=tmp_path).returncode == 0
    status = run_script("--config", str(config), "--status", cwd=tmp_path)
    assert "7 written" in status.stdout, status.stdout
    verify = run_script("--config", str(config), "--verify", cwd=tmp_path)
    assert verify.returncode == 0 and "7 rows checked, 0 problems" in verify.stdout, verify.stdout + verify.stderr
    # A rerun has nothing to do, asks for nothing and rewrites no file.
    before = {p.name: p.read_bytes() for p in (out / NAME).iterdir()}
    mirror.server.reset_counts()
    assert run_script("--config", str(config), cwd=tmp_path).returncode == 0
    assert {p.name: p.read_bytes() for p in (out / NAME).iterdir()} == before and not mirror.server.requests


def test_killed_mid_file_the_rerun_fetches_no_clip_again(tmp_path: Path, mirror: Mirror) -> None:
    config = setup(tmp_path, mirror, str(tmp_path / "out"), WORKERS=1)
    listed = tmp_path / "out" / f"{NAME}.split-pos.csv"
    process = subprocess.Popen([sys.executable, str(REPO / "AudioDownloader.py"), "--config", str(config)],
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and (
            not listed.exists() or len(rows_of(listed)) < 5):  # one file packed, the next one begun
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {row["YTID"] for row in rows_of(listed)}
    assert 4 <= len(before) < len(WINDOWS)
    mirror.server.reset_counts()
    again = run_script("--config", str(config), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert all(mirror.requests_for(ytid) == 0 for ytid in before)  # recorded clips were kept, loose or packed
    written = check_clips(tmp_path / "out", tmp_path / "clip.flac")
    assert sorted(row["YTID"] for row in written) == sorted(y for y, _, _ in WINDOWS)
    assert len(rows_of(listed)) == len(WINDOWS)
    assert not [p for p in (tmp_path / "out" / NAME).iterdir() if p.suffix != ".parquet"]


def test_a_damaged_file_is_found_by_verify_and_its_clips_fetched_again_after_repair(tmp_path: Path,
                                                                                     mirror: Mirror) -> None:
    config = setup(tmp_path, mirror, str(tmp_path / "out"))
    assert run_script("--config", str(config), cwd=tmp_path).returncode == 0
    damaged = tmp_path / "out" / NAME / f"{NAME}-000001.parquet"
    in_it = {row["YTID"] for row in rows_of(tmp_path / "out" / f"{NAME}.split-pos.csv")
             if row["file"].endswith(damaged.name)}
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    found = run_script("--config", str(config), "--verify", cwd=tmp_path)
    assert found.returncode != 0 and damaged.name in found.stdout + found.stderr
    repaired = run_script("--config", str(config), "--verify", "--repair", cwd=tmp_path)
    assert repaired.returncode == 1 and f"repaired: {len(in_it)} rows and 3 files removed" in repaired.stdout
    mirror.server.reset_counts()
    assert run_script("--config", str(config), cwd=tmp_path).returncode == 0
    assert {y for y, _, _ in WINDOWS if mirror.requests_for(y)} == in_it
    assert len(check_clips(tmp_path / "out", tmp_path / "clip.flac")) == len(WINDOWS)


def test_merge_converts_files_to_parquet_and_a_parquet_download_is_reused_and_a_mirror(tmp_path: Path,
                                                                                        mirror: Mirror) -> None:
    files = setup(tmp_path, mirror, str(tmp_path / "files"), OUTPUT_LAYOUT="files")
    assert run_script("--config", str(files), cwd=tmp_path).returncode == 0
    merged = setup(tmp_path, mirror, str(tmp_path / "merged"))
    assert run_script("--config", str(merged), "--merge", str(tmp_path / "files"), cwd=tmp_path).returncode == 0
    assert len(check_clips(tmp_path / "merged", tmp_path / "clip.flac")) == len(WINDOWS)
    mirror.server.reset_counts()
    # Another run over the same list: REUSE_FROM the parquet download takes every clip without a request.
    reused = setup(tmp_path, mirror, str(tmp_path / "reused"), OUTPUT_LAYOUT="files",
                   REUSE_FROM=[str(tmp_path / "merged")])
    assert run_script("--config", str(reused), cwd=tmp_path).returncode == 0
    assert {row["backend"] for row in rows_of(tmp_path / "reused" / f"{NAME}.split-pos.csv")} == {"reused"}
    # And as a mirror: MIRRORS = [its clip folder] takes every window it holds with no request.
    mirrored = setup(tmp_path, mirror, str(tmp_path / "mirrored"), OUTPUT_LAYOUT="files", AUDIO_FORMAT="wav",
                     MIRRORS=[str(tmp_path / "merged" / NAME)])
    done = run_script("--config", str(mirrored), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = rows_of(tmp_path / "mirrored" / f"{NAME}.split-pos.csv")
    assert len(rows) == len(WINDOWS) and {row["backend"] for row in rows} == {"mirror"}
    assert not mirror.server.requests
    for ytid, start, end in WINDOWS:
        clip = decode(tmp_path / "mirrored" / NAME / f"{ytid}.wav")
        assert abs(clip.duration - (end - start)) < 0.03 and abs(window_offset(clip, start)) < 0.02


def test_parquet_files_go_up_whole_to_object_storage(tmp_path: Path, mirror: Mirror, s3: Any, bucket: str) -> None:
    config = setup(tmp_path, mirror, f"s3://{bucket}/out", SHARD_SIZE=3)
    done = run_script("--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    local = tmp_path / "fetched"
    s3.get(f"{bucket}/out", str(local), recursive=True)
    written = check_clips(local, tmp_path / "clip.flac")
    assert sorted(row["YTID"] for row in written) == sorted(y for y, _, _ in WINDOWS)
    manifest = {row["YTID"]: row for row in rows_of(local / f"{NAME}.split-pos.csv")}
    for row in written:
        assert (manifest[row["YTID"]]["file"], manifest[row["YTID"]]["member"]) == (row["file"], row["audio"]["path"])


def test_a_folder_holding_parquet_of_another_schema_is_refused_and_left_alone(tmp_path: Path, mirror: Mirror) -> None:
    import pyarrow as pa

    config = setup(tmp_path, mirror, str(tmp_path / "out"))
    foreign = tmp_path / "out" / NAME / f"{NAME}-000000.parquet"
    foreign.parent.mkdir(parents=True)
    pq.write_table(pa.table({"video_id": ["x"], "audio": [b"not ours"]}), foreign)
    before = foreign.read_bytes()
    done = run_script("--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    [line] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert f"{foreign}: a parquet file of another schema" in line and "move it out" in line
    assert foreign.read_bytes() == before and not mirror.server.requests


@pytest.mark.parametrize("value", [0, -1, 100_001, "many"])
def test_clips_per_file_out_of_range_is_one_line(tmp_path: Path, value: object) -> None:
    write_config(tmp_path / "cfg.py", OUTPUT_LAYOUT="parquet", CLIPS_PER_FILE=value)
    done = run_script("--config", "cfg.py", cwd=tmp_path)
    assert done.returncode == 2 and "CLIPS_PER_FILE" in done.stderr and len(done.stderr.strip().splitlines()) == 1
