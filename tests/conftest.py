"""Fixtures: synthetic time-coded sources, a local media server, a lab mirror, a fake YouTube."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from audioset_downloader.fetch.cutter import find_ffmpeg
from tests.support.audio import make_source, make_video
from tests.support.fake_youtube import FakeYouTube, reroute_youtube
from tests.support.server import MediaServer

REPO = Path(__file__).resolve().parents[1]

GOOGLE_HEADER = (
    "# Segments csv created Sun Mar  5 10:54:25 2017\n"
    "# num_ytids={n}, num_segs={n}, num_unique_labels=3, num_positive_labels={n}\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)


# Video-only sources, one per resolution a fake video offers (scaled down: it is the choice that is tested).
VIDEO_SOURCES = {"video_1080.mp4": (192, 108), "video_360.mp4": (64, 36), "video_144.mp4": (32, 18)}


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Time-coded sources: second n is a tone of 300 + 25 n Hz (see support/audio.py)."""
    root = tmp_path_factory.mktemp("sources")
    make_source(root / "tone300.m4a", 300, "aac", rate=44100)  # like YouTube's itag 140
    make_source(root / "tone300.webm", 300, "opus", rate=48000)  # like itag 251
    make_source(root / "tone20.m4a", 20, "aac", rate=44100)
    make_source(root / "tone300_av.mp4", 300, "aac", rate=44100, video=True)  # a mirror's whole video
    for name, (width, height) in VIDEO_SOURCES.items():  # YouTube's adaptive video-only streams
        make_video(root / name, 300, width, height)
    subprocess.run([find_ffmpeg(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=gray:s=64x48:r=5:d=30", "-c:v", "mpeg4", "-f", "mp4", str(root / "video_only.mp4")],
                   check=True)
    (root / "not_media.m4a").write_bytes(os.urandom(200_000))
    return root


@pytest.fixture
def server(sources: Path) -> Iterator[MediaServer]:
    with MediaServer(sources) as media:
        yield media


@dataclass
class Mirror:
    """A lab mirror of AudioSet: one file per YTID, for the "direct" backend."""

    root: Path
    server: MediaServer
    sources: Path

    def add(self, ytid: str, source: str = "tone300.m4a") -> None:
        target = self.root / f"{ytid}.m4a"
        try:
            os.link(self.sources / source, target)
        except OSError:
            shutil.copy(self.sources / source, target)

    @property
    def url_format(self) -> str:
        return self.server.base_url + "/{YTID}.m4a"

    def requests_for(self, ytid: str) -> int:
        return self.server.requests[f"/{ytid}.m4a"]


@pytest.fixture
def mirror(sources: Path, tmp_path: Path) -> Iterator[Mirror]:
    root = tmp_path / "mirror"
    root.mkdir()
    with MediaServer(root) as media:
        yield Mirror(root, media, sources)


@pytest.fixture
def youtube(server: MediaServer) -> Iterator[FakeYouTube]:
    with reroute_youtube(server):
        yield FakeYouTube(server)


def write_csv(path: Path, rows: list[str], google_header: bool = True) -> Path:
    """A segments CSV in Google's exact format: comment lines, ", " separators, quoted labels."""
    header = GOOGLE_HEADER.format(n=len(rows)) if google_header else ""
    path.write_text(header + "".join(row + "\n" for row in rows), encoding="ascii")
    return path


def write_config(path: Path, **constants: object) -> Path:
    """A download_configs.py file of the given constants."""
    path.write_text("".join(f"{name} = {value!r}\n" for name, value in constants.items()))
    return path


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python AudioDownloader.py`` as a user would."""
    return subprocess.run([sys.executable, str(REPO / "AudioDownloader.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
