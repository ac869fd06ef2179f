"""Cutting: real ffmpeg reading real HTTP with Range requests from the local server."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from audioset_downloader.errors import ClipFailure, FailureReason
from audioset_downloader.fetch.backends.base import MediaSource
from audioset_downloader.fetch.cutter import cut_clip, find_ffmpeg
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings
from tests.support.audio import decode, dominant_second, window_offset
from tests.support.server import Handler, MediaServer, Reply

TOLERANCE_S = 0.020


def segment(start: float, end: float, ytid: str = "abcdefghijk") -> Segment:
    return Segment(ytid, round(start * 1000), round(end * 1000), "/m/a", 1, ytid)


def cut(server: MediaServer, path: str, seg: Segment, out: Path, **settings: object) -> Path:
    cut_clip(MediaSource(server.url(path)), seg, Settings(**settings), out, threading.Event())
    return out


@pytest.mark.parametrize("source", ["tone300.m4a", "tone300.webm"])
@pytest.mark.parametrize(("start", "end"), [(0.0, 10.0), (30.0, 40.0), (137.3, 147.3), (291.0, 300.0), (5.25, 6.25)])
def test_clip_is_exactly_the_window(server: MediaServer, tmp_path: Path, source: str, start: float, end: float) -> None:
    clip = decode(cut(server, source, segment(start, end), tmp_path / "clip.wav"))
    assert abs(clip.duration - (end - start)) < TOLERANCE_S
    assert abs(window_offset(clip, start)) < TOLERANCE_S
    # The content is the right part of the source, not just the right length:
    # a stretch lying inside source second k holds that second's tone.
    k = int((start + end) / 2)
    lo, hi = max(k, start) + 0.05, min(k + 1, end) - 0.05
    assert dominant_second(clip, lo - start, hi - start) == k
    assert clip.codec == "pcm_s16le"
    assert (clip.rate, clip.channels) == ((44100, 2) if source.endswith("m4a") else (48000, 2))


def test_sample_rate_and_channels_are_applied(server: MediaServer, tmp_path: Path) -> None:
    clip = decode(cut(server, "tone300.webm", segment(61.5, 71.5), tmp_path / "c.wav", sample_rate=16000, channels=1))
    assert (clip.rate, clip.channels) == (16000, 1)
    assert abs(clip.duration - 10) < TOLERANCE_S
    assert abs(window_offset(clip, 61.5)) < TOLERANCE_S


@pytest.mark.parametrize(("audio_format", "codec"), [("flac", "flac"), ("opus", "opus"), ("m4a", "aac")])
def test_other_formats_hold_the_same_window(server: MediaServer, tmp_path: Path, audio_format: str, codec: str) -> None:
    clip = decode(cut(server, "tone300.m4a", segment(42.0, 52.0), tmp_path / f"c.{audio_format}",
                      audio_format=audio_format))
    assert clip.codec == codec
    assert abs(clip.duration - 10) < TOLERANCE_S
    assert abs(window_offset(clip, 42.0)) < TOLERANCE_S


@pytest.mark.parametrize("start", [29.0, 30.0, 30.5, 41.97])
@pytest.mark.parametrize("sample_rate", [None, 16000])
def test_flac_takes_every_window(server: MediaServer, tmp_path: Path, start: float, sample_rate: int | None) -> None:
    """FLAC's encoder refused a first frame of a few samples, which the trim leaves at some starts (30 s here)."""
    clip = decode(cut(server, "tone300.m4a", segment(start, start + 10), tmp_path / "c.flac", audio_format="flac",
                      sample_rate=sample_rate))
    assert clip.codec == "flac" and clip.rate == (sample_rate or 44100)
    assert abs(clip.duration - 10) < TOLERANCE_S
    assert abs(window_offset(clip, start)) < TOLERANCE_S


def test_only_the_window_travels(sources: Path, tmp_path: Path) -> None:
    # Throttled, so the server cannot push the whole file into socket buffers
    # before ffmpeg hangs up: the count is what really crossed the wire.
    with MediaServer(sources, bandwidth_bps=4_000_000) as throttled:
        cut(throttled, "tone300.m4a", segment(150.0, 160.0), tmp_path / "c.wav")
        sent = throttled.bytes_sent["/tone300.m4a"]
    size = (sources / "tone300.m4a").stat().st_size
    assert 0 < sent < 0.25 * size, f"{sent} of {size} bytes fetched for 10 s of 300 s"


def _status_route(handler: Handler) -> Reply | None:
    if handler.url_path.startswith("/status/"):
        return Reply(int(handler.url_path.rsplit("/", 1)[1]), b"no")
    return None


@pytest.mark.parametrize(
    ("status", "reason"),
    [(404, FailureReason.UNAVAILABLE), (410, FailureReason.UNAVAILABLE), (429, FailureReason.RATE_LIMITED),
     (500, FailureReason.SERVER_ERROR), (503, FailureReason.SERVER_ERROR), (403, FailureReason.BACKEND_ERROR)],
)
def test_http_status_becomes_a_reason(server: MediaServer, tmp_path: Path, status: int, reason: FailureReason) -> None:
    server.routes.append(_status_route)
    with pytest.raises(ClipFailure) as failure:
        cut(server, f"status/{status}", segment(0, 10), tmp_path / "c.wav")
    assert failure.value.reason is reason
    assert str(status) in failure.value.detail
    assert list(tmp_path.iterdir()) == []  # no clip, no temporary file


@pytest.mark.parametrize(("start", "end"), [(25.0, 35.0), (15.0, 25.0)])
def test_window_past_the_end_of_the_source(server: MediaServer, tmp_path: Path, start: float, end: float) -> None:
    with pytest.raises(ClipFailure) as failure:
        cut(server, "tone20.m4a", segment(start, end), tmp_path / "c.wav")
    assert failure.value.reason is FailureReason.WINDOW_OUT_OF_RANGE
    assert list(tmp_path.iterdir()) == []


def test_a_window_ending_at_the_sources_end_is_kept(server: MediaServer, tmp_path: Path) -> None:
    clip = decode(cut(server, "tone20.m4a", segment(12.0, 20.0), tmp_path / "c.wav"))
    assert abs(clip.duration - 8) < TOLERANCE_S


def test_source_without_audio(server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(ClipFailure) as failure:
        cut(server, "video_only.mp4", segment(0, 10), tmp_path / "c.wav")
    assert failure.value.reason is FailureReason.NO_AUDIO


def test_bytes_that_are_not_media(server: MediaServer, tmp_path: Path) -> None:
    with pytest.raises(ClipFailure) as failure:
        cut(server, "not_media.m4a", segment(0, 10), tmp_path / "c.wav")
    assert failure.value.reason is FailureReason.FFMPEG_ERROR
    assert list(tmp_path.iterdir()) == []


def test_a_stalled_source_is_abandoned_after_clip_timeout(server: MediaServer, tmp_path: Path) -> None:
    release = threading.Event()

    def stall(handler: Handler) -> Reply | None:
        if handler.url_path == "/stall":
            release.wait(30)
            return Reply(200, b"")
        return None

    server.routes.append(stall)
    started = time.monotonic()
    try:
        with pytest.raises(ClipFailure) as failure:
            cut(server, "stall", segment(0, 10), tmp_path / "c.wav", clip_timeout=1.5)
    finally:
        release.set()
    assert failure.value.reason is FailureReason.TIMEOUT
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("url", ["file:///etc/passwd", "concat:/etc/passwd|/etc/hosts", "/etc/passwd"])
def test_non_http_media_urls_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ClipFailure) as failure:
        cut_clip(MediaSource(url), segment(0, 10), Settings(), tmp_path / "c.wav", threading.Event())
    assert failure.value.reason is FailureReason.BACKEND_ERROR
    assert list(tmp_path.iterdir()) == []


def test_a_playlist_pointing_at_local_files_is_refused(server: MediaServer, tmp_path: Path) -> None:
    playlist = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
    server.routes.append(lambda h: Reply(200, playlist, (("Content-Type", "application/vnd.apple.mpegurl"),))
                         if h.url_path == "/evil.m3u8" else None)
    with pytest.raises(ClipFailure):
        cut(server, "evil.m3u8", segment(0, 10), tmp_path / "c.wav")
    assert list(tmp_path.iterdir()) == []


def test_an_input_only_the_protocol_whitelist_refuses_is_refused_with_its_reason(sources: Path,
                                                                                  tmp_path: Path) -> None:
    """An AES-128 HLS playlist: its segments are read through ffmpeg's crypto protocol, which ffmpeg's own defences
    (the HLS demuxer's checks, HTTP's nested whitelist) let through. Only the whitelist the cutter gives every
    input (http, https, tcp, tls) refuses it: without it this clip is cut."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "key.bin").write_bytes(bytes(range(16)))
    with MediaServer(served) as media:
        (tmp_path / "keyinfo").write_text(f"{media.url('key.bin')}\n{served / 'key.bin'}\n")
        subprocess.run([find_ffmpeg(), "-nostdin", "-loglevel", "error", "-i", str(sources / "tone300.m4a"), "-t", "20",
                        "-c:a", "aac", "-f", "hls", "-hls_time", "30", "-hls_list_size", "0", "-hls_key_info_file",
                        str(tmp_path / "keyinfo"), "-hls_segment_filename", str(served / "seg%d.ts"),
                        str(served / "locked.m3u8")], check=True)
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(ClipFailure) as failure:
            cut(media, "locked.m3u8", segment(0, 10), out / "c.wav")
    assert failure.value.reason is FailureReason.BACKEND_ERROR
    assert failure.value.detail.startswith("Protocol 'crypto' not on whitelist"), failure.value.detail
    assert list(out.iterdir()) == []
