"""Windows from the mirrors: each layout, on the Hub's stand-in, on S3 and in folders, with real FLAC and WAV.

The backend here is the lab HTTP server ("direct"), standing in for YouTube: its request counts per
video show that a window a mirror holds makes no request there, and its audio is the same
time-coded source a copy is cut from, so the audit measures real offsets.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, Mirror, run_script, write_config, write_csv
from tests.support.audio import decode, window_offset
from tests.support.copies import files_copy, parquet_copy, webdataset_copy, window_bytes
from tests.support.hub import FakeHub

ROWS = [("mirrorClip1", 30.0, 40.0), ("mirrorClip2", 100.0, 110.0), ("mirrorClip3", 200.0, 210.0),
        ("youtubeOnly", 50.0, 60.0)]
HELD = ROWS[:3]


@pytest.fixture
def lab(mirror: Mirror) -> Mirror:
    """The stand-in for YouTube: every video of ROWS served as the time-coded source."""
    for ytid, _, _ in ROWS:
        mirror.add(ytid)
    return mirror


def setup_list(folder: Path, rows: list[tuple[str, float, float]] = ROWS) -> Path:
    return write_csv(folder / "eval_segments.csv", [f'{y}, {s:.3f}, {e:.3f}, "/m/09x0r"' for y, s, e in rows])


def configure(tmp_path: Path, lab: Mirror, mirrors: list, **constants: object) -> Path:
    settings = dict(CSV_FILE_NAMES=[str(tmp_path / "eval_segments.csv")], OUTPUT_DIR=str(tmp_path / "out"),
                    TIMER=0, BACKEND="direct", YTB_URL_FORMAT=lab.url_format, AUDIO_FORMAT="wav",
                    SAMPLE_RATE=16000, CHANNELS=1, MIRRORS=mirrors, MIRROR_AUDIT=0,
                    CACHE_DIR=str(tmp_path / "cache"))
    settings.update(constants)
    return write_config(tmp_path / "cfg.py", **settings)


def rows_of(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["YTID"]: row for row in csv.DictReader(handle)}


def youtube_requests(lab: Mirror) -> dict[str, int]:
    return {ytid: lab.requests_for(ytid) for ytid, _, _ in ROWS if lab.requests_for(ytid)}


def assert_the_window(path: Path, start: float, seconds: float, rate: int = 16000, channels: int = 1) -> None:
    clip = decode(path)
    assert (clip.rate, clip.channels) == (rate, channels)
    assert abs(clip.duration - seconds) < 0.03
    assert abs(window_offset(clip, start)) < 0.025  # the copy's audio is where the window is


def flac(sources: Path, start: float, seconds: float = 10.0, **kwargs: object) -> bytes:
    return window_bytes(sources / "tone300.m4a", start, seconds, **kwargs)  # type: ignore[arg-type]


def test_a_folder_of_panns_files_serves_its_windows_and_youtube_only_the_rest(tmp_path: Path, lab: Mirror,
                                                                               sources: Path) -> None:
    setup_list(tmp_path)
    files_copy(tmp_path / "panns", {f"Y{y}.wav": flac(sources, s, codec="wav", rate=32000, channels=1)
                                    for y, s, _ in HELD})
    configure(tmp_path, lab, [str(tmp_path / "panns")])
    done = run_script("--config", "cfg.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert youtube_requests(lab) == {"youtubeOnly": lab.requests_for("youtubeOnly")}
    manifest = rows_of(tmp_path / "out" / "eval_segments.split-pos.csv")
    assert {y: manifest[y]["backend"] for y in manifest} == {**{y: "mirror" for y, _, _ in HELD},
                                                             "youtubeOnly": "direct"}
    for ytid, start, end in HELD:
        assert_the_window(tmp_path / "out" / "eval_segments" / f"{ytid}.wav", start, end - start)
    summary = json.loads((tmp_path / "out" / "eval_segments.summary.json").read_text())
    assert summary["mirrored"] == 3 and list(summary["by_mirror"].values()) == [3]
    assert "3 of the written from mirrors" in done.stderr + done.stdout or summary["mirror_bytes"] > 0
