"""Output formats beyond the default wav: AAC stream copy into m4a, and VIDEO = True (mp4 with a picture)."""

from __future__ import annotations

import csv
import os
import subprocess
import threading
from pathlib import Path

import pytest

from audioset_downloader import cli
from audioset_downloader.fetch.backends.base import MediaSource
from audioset_downloader.fetch.cutter import cut_clip, find_ffmpeg
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings
from tests.conftest import Mirror, write_config, write_csv
from tests.support.audio import decode, video_stream, window_offset
from tests.support.server import MediaServer

AAC_FRAME_S = 1024 / 44100  # a stream-copied clip ends on the AAC frame after the window


def packet_hashes(path: Path) -> set[str]:
    """The MD5 of each audio packet, as stored (not decoded)."""
    listing = subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:a:0",
                              "-c", "copy", "-f", "framemd5", "-"], capture_output=True, text=True, check=True).stdout
    return {line.rsplit(",", 1)[1].strip() for line in listing.splitlines() if line and not line.startswith("#")}


def cut(server: MediaServer, codec: str, out: Path, start: float = 42.37, **settings: object) -> Path:
    segment = Segment("abcdefghijk", round(start * 1000), round(start * 1000) + 10_000, "/m/a", 1, "abcdefghijk")
    source = MediaSource(server.url("tone300.m4a"), codec=codec)
    cut_clip(source, segment, Settings(audio_format="m4a", **settings), out, threading.Event())
    return out


@pytest.mark.parametrize("start", [0.0, 42.37, 289.5])
def test_aac_into_m4a_is_copied_not_reencoded(server: MediaServer, tmp_path: Path, start: float) -> None:
    copied = cut(server, "aac", tmp_path / "copied.m4a", start)
    encoded = cut(server, "", tmp_path / "encoded.m4a", start)  # codec unknown: re-encoded at 192 kb/s
    clip = decode(copied)
    assert clip.codec == "aac" and (clip.rate, clip.channels) == (44100, 2)
    # The edit list starts it exactly at the window; it ends within one AAC frame after.
    assert abs(window_offset(clip, start)) < 0.02
    assert 10 - 0.002 <= clip.duration <= 10 + AAC_FRAME_S + 0.002
    # The source's own packets, not a re-encoding of them.
    # (The edge packets may carry other side data; a re-encoding shares few, see the guard.)
    source = packet_hashes(server.root / "tone300.m4a")
    kept, reencoded = packet_hashes(copied), packet_hashes(encoded)
    assert len(kept - source) <= 2
    assert len(reencoded & source) < len(reencoded) / 2


def test_resampling_rules_out_the_copy(server: MediaServer, tmp_path: Path) -> None:
    clip = decode(cut(server, "aac", tmp_path / "c.m4a", sample_rate=16000, channels=1))
    assert (clip.codec, clip.rate, clip.channels) == ("aac", 16000, 1)
    assert abs(clip.duration - 10) < 0.02 and abs(window_offset(clip, 42.37)) < 0.02


def video_run(tmp_path: Path, mirror: Mirror, backend: str) -> tuple[dict[str, dict[str, str]], Path]:
    for ytid, source in (("avVideo0001", "tone300_av.mp4"), ("soundOnly01", "tone300.m4a")):
        os.link(mirror.sources / source, mirror.root / f"{ytid}.mp4")
    csv_path = write_csv(tmp_path / "eval_segments.csv", [
        'avVideo0001, 120.450, 130.450, "/m/a"', 'soundOnly01, 10.000, 20.000, "/m/b"'])
    config = write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], OUTPUT_DIR=str(tmp_path / "out"),
                          YTB_URL_FORMAT=mirror.server.base_url + "/{YTID}.mp4", BACKEND=backend, TIMER=0,
                          RETRIES=0, VIDEO=True)
    assert cli.main(["--config", str(config)]) == 0
    results = {}
    for name in ("split-pos", "failed"):
        with open(tmp_path / "out" / f"eval_segments.{name}.csv", newline="") as handle:
            results.update({row["YTID"]: row for row in csv.DictReader(handle)})
    return results, config


@pytest.mark.parametrize("backend", ["direct", "yt-dlp"])
def test_video_keeps_the_picture_and_the_exact_window(tmp_path: Path, mirror: Mirror, backend: str) -> None:
    if backend == "yt-dlp":
        pytest.importorskip("yt_dlp")
    results, config = video_run(tmp_path, mirror, backend)
    assert results["avVideo0001"]["file"] == "eval_segments/avVideo0001.mp4"
    clip_path = tmp_path / "out" / results["avVideo0001"]["file"]
    codec, width, height, seconds = video_stream(clip_path)
    assert (codec, width, height) == ("h264", 64, 48) and abs(seconds - 10) <= 0.2  # a frame at 5 fps
    audio = decode(clip_path)
    assert audio.codec == "aac" and abs(window_offset(audio, 120.45)) < 0.02
    # A file with no picture is not a permanent failure: an audio-only rerun still wants it.
    assert results["soundOnly01"]["reason"] == "no_video"
    assert not (tmp_path / "out" / "eval_segments" / "soundOnly01.mp4").exists()
    assert cli.main(["--config", str(config), "--verify"]) == 0  # --verify reads mp4 clips too
