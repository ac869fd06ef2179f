"""Each clip's level and silence, measured by the ffmpeg run that cuts it, against sources of known level."""

from __future__ import annotations

import math
import subprocess
import threading
from pathlib import Path

import pytest

from audioset_downloader.fetch.backends.base import MediaSource
from audioset_downloader.fetch.cutter import cut_clip, find_ffmpeg
from audioset_downloader.fetch.measure import ClipMeasures
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings
from tests.support.server import MediaServer

# 12 s sources; the window is [1, 11]. sine's amplitude is 1/8 (-18.06 dBFS): -30 dB more is -48.06.
SOURCES = {
    "silence": "anullsrc=r=44100:cl=stereo:d=12",
    "quiet_tone": "sine=f=440:r=44100:d=12,volume=-30dB",
    "half": "anoisesrc=r=44100:a=0.3:d=6[n];anullsrc=r=44100:cl=mono:d=6[s];[n][s]concat=n=2:v=0:a=1",
    "noise": "anoisesrc=r=44100:a=0.3:d=12",
}


@pytest.fixture(scope="module")
def levels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("levels")
    for name, graph in SOURCES.items():
        for codec, ext in (("aac", "m4a"), ("libopus", "webm")):
            subprocess.run([find_ffmpeg(), "-nostdin", "-loglevel", "error", "-filter_complex", graph, "-c:a", codec,
                            "-b:a", "128k", "-y", str(root / f"{name}.{ext}")], check=True)
    return root


def measured(levels: Path, tmp_path: Path, name: str, source_ext: str, audio_format: str) -> ClipMeasures:
    window = Segment("abcdefghijk", 1000, 11000, "", 1, "abcdefghijk")
    with MediaServer(levels) as server:
        source = MediaSource(server.url(f"{name}.{source_ext}"), codec="aac" if source_ext == "m4a" else "opus")
        result = cut_clip(source, window, Settings(audio_format=audio_format), tmp_path / f"clip.{audio_format}",
                          threading.Event())
    assert result.measures is not None
    return result.measures


# wav from AAC and Opus: measured in the cut's own decode; m4a from AAC: stream-copied, decoded after.
@pytest.mark.parametrize(("source_ext", "audio_format"), [("m4a", "wav"), ("webm", "flac"), ("m4a", "m4a")])
def test_each_source_measures_as_made(levels: Path, tmp_path: Path, source_ext: str, audio_format: str) -> None:
    silence = measured(levels, tmp_path, "silence", source_ext, audio_format)
    assert silence.silent and silence.peak_dbfs <= -60 and silence.silent_share > 0.95
    # A stream copy ends on an AAC frame after the window (ffmpeg's written duration: a few 23 ms frames more).
    assert abs(silence.duration_seconds - 10) < (0.1 if audio_format == "m4a" else 0.03)

    tone = measured(levels, tmp_path, "quiet_tone", source_ext, audio_format)
    assert not tone.silent and abs(tone.peak_dbfs - (-48.06)) < 2 and tone.silent_share < 0.05
    assert abs(tone.rms_dbfs - (tone.peak_dbfs - 3.01)) < 1.5  # a sine's RMS is 3 dB under its peak

    half = measured(levels, tmp_path, "half", source_ext, audio_format)
    assert not half.silent and abs(half.silent_share - 0.5) < 0.1

    noise = measured(levels, tmp_path, "noise", source_ext, audio_format)
    assert not noise.silent and noise.silent_share < 0.02 and noise.peak_dbfs > -12
    assert math.isfinite(noise.rms_dbfs) and noise.rms_dbfs < noise.peak_dbfs
