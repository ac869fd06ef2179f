"""Against YouTube itself: excluded by default; run with ``pytest -m network``.

These tell a user with internet whether the backends still work today: YouTube
changes often, and pytube's last release is from 2023 (expect its test to fail).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from audioset_downloader.doctor import ONLINE_VIDEO
from audioset_downloader.fetch.backends import load_backend
from audioset_downloader.fetch.cutter import cut_clip
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings
from tests.conftest import run_script
from tests.support.audio import decode

pytestmark = pytest.mark.network


@pytest.mark.parametrize("backend", ["yt-dlp", "pytubefix", "pytube"])
def test_each_backend_resolves_and_cuts_a_long_lived_video(tmp_path: Path, backend: str) -> None:
    if backend == "pytubefix":
        pytest.importorskip("pytubefix")
    settings = Settings(backend=backend, cache_dir=tmp_path / "cache")
    segment = Segment(ONLINE_VIDEO, 5000, 15000, "", 0, ONLINE_VIDEO)  # "Me at the zoo", 19 s
    source = load_backend(settings).resolve(segment)
    cut = cut_clip(source, segment, settings, tmp_path / "clip.wav", threading.Event())
    clip = decode(cut.path)
    assert abs(clip.duration - 10) < 0.05 and clip.rate in (44100, 48000)


def test_doctor_online_passes(tmp_path: Path) -> None:
    # The chain as configured by default: pytube warns, the fallbacks must work.
    result = run_script("--doctor", "--online", "--output-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
