"""The pytube and pytubefix backends: the libraries' own classes and exceptions, fed by a fake YouTube.

Only the host of YouTube's metadata requests is replaced (tests/support/fake_youtube.py):
pytube really parses the watch page, calls the player API, deciphers signatures
with base.js and builds its Stream objects; ffmpeg then really cuts from them.
"""

from __future__ import annotations

import csv
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from audioset_downloader import cli
from audioset_downloader.errors import ClipFailure, FailureReason
from audioset_downloader.fetch.backends import load_backend
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings
from tests.conftest import write_config, write_csv
from tests.support.audio import decode, video_stream, window_offset
from tests.support.fake_youtube import FakeVideo, FakeYouTube, reroute_youtube
from tests.support.server import MediaServer


@pytest.fixture(params=["pytube", "pytubefix"])
def library(request: pytest.FixtureRequest) -> str:
    """Each test runs against pytube and against its maintained fork, pytubefix (an extra)."""
    pytest.importorskip(request.param)
    return request.param


@pytest.fixture
def youtube(server: MediaServer, library: str):
    with reroute_youtube(server):
        yield FakeYouTube(server)


def backend(library: str, **settings: object):
    return load_backend(Settings(backend=library, **settings))


def seg(ytid: str) -> Segment:
    return Segment(ytid, 30000, 40000, "/m/a", 1, ytid)


def fetch_status(url: str) -> int:
    request = urllib.request.Request(url, headers={"Range": "bytes=0-99"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize(("highest", "itag", "mime"), [(False, 140, "audio/mp4"), (True, 251, "audio/webm")])
@pytest.mark.parametrize("ciphered", [False, True])
def test_stream_choice_and_signatures(youtube: FakeYouTube, library: str, highest: bool, itag: int, mime: str,
                                      ciphered: bool) -> None:
    youtube.videos["abcdefghijk"] = FakeVideo(ciphered=ciphered)
    source = backend(library, down_highest_quality=highest).resolve(seg("abcdefghijk"))
    assert source.description.startswith(f"itag {itag} {mime}")
    query = parse_qs(urlsplit(source.url).query)
    assert query["itag"] == [str(itag)]
    # pytube deciphers what its client is served ciphered; pytubefix's default client (visionOS, no JS player) is
    # served the same video pre-signed, as YouTube serves it, and must use those URLs as they are.
    assert ("sig" in query) is (ciphered and library == "pytube")
    assert ("signature" in query) is not (ciphered and library == "pytube")
    # The media server accepts the URL only if pytube deciphered s and n correctly.
    assert fetch_status(source.url) == 206


def test_a_wrongly_deciphered_url_is_refused_by_the_fake(youtube: FakeYouTube, server) -> None:
    # Guards the guard: the signature check in the fake YouTube really refuses, a pre-signed URL included.
    assert fetch_status(server.url("tone300.m4a?itag=140&n=x&sig=wrong")) == 403
    assert fetch_status(server.url("tone300.m4a?itag=140&signature=forged")) == 403


@pytest.mark.parametrize(
    ("video", "reason"),
    [
        (FakeVideo(status="private"), FailureReason.PRIVATE),
        (FakeVideo(status="unavailable"), FailureReason.UNAVAILABLE),
        (FakeVideo(status="removed"), FailureReason.REMOVED),
        (FakeVideo(status="members_only"), FailureReason.MEMBERS_ONLY),
        (FakeVideo(status="live"), FailureReason.LIVE),
        (FakeVideo(status="region_blocked"), FailureReason.REGION_BLOCKED),
        (FakeVideo(status="bot_check"), FailureReason.BOT_CHECK),
        (FakeVideo(audio=False), FailureReason.NO_AUDIO),
        (FakeVideo(player_status=400), FailureReason.BACKEND_ERROR),
        (FakeVideo(player_status=429), FailureReason.RATE_LIMITED),
        (None, FailureReason.UNAVAILABLE),
    ],
)
def test_youtube_answers_become_reasons(youtube: FakeYouTube, library: str, video: FakeVideo | None,
                                        reason: FailureReason) -> None:
    if video is not None:
        youtube.videos["abcdefghijk"] = video
    with pytest.raises(ClipFailure) as failure:
        backend(library).resolve(seg("abcdefghijk"))
    assert failure.value.reason is reason


def test_backend_end_to_end(youtube: FakeYouTube, library: str, tmp_path: Path) -> None:
    youtube.videos.update({
        "-okVideo001": FakeVideo(),
        "cipherVideo": FakeVideo(ciphered=library == "pytube"),
        "privateVid1": FakeVideo(status="private"),
        "brokenApi01": FakeVideo(player_status=400),
    })
    csv_path = write_csv(tmp_path / "eval_segments.csv", [
        '-okVideo001, 100.000, 110.000, "/m/a"', 'cipherVideo, 7.500, 17.500, "/m/b"',
        'privateVid1, 0.000, 10.000, "/m/c"', 'brokenApi01, 0.000, 10.000, "/m/d"',
        'goneVideo01, 0.000, 10.000, "/m/e"',
    ])
    config = write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], OUTPUT_DIR=str(tmp_path / "out"),
                          REQUESTS_PER_MINUTE=None,  # no limit here; a guest's pace is test_pacing.py's
                          TIMER=0, WORKERS=2, **({} if library == "pytube" else {"BACKEND": library}))
    assert cli.main(["--config", str(config)]) == 0  # BACKEND is pytube by default

    out = tmp_path / "out"
    with open(out / "eval_segments.split-pos.csv", newline="") as handle:
        written = {row["YTID"]: row for row in csv.DictReader(handle)}
    assert set(written) == {"-okVideo001", "cipherVideo"}
    for ytid, start in (("-okVideo001", 100.0), ("cipherVideo", 7.5)):
        clip = decode(out / written[ytid]["file"])
        assert (clip.rate, clip.channels) == (44100, 2)  # itag 140: the AAC source
        assert abs(clip.duration - 10) < 0.02 and abs(window_offset(clip, start)) < 0.02
    with open(out / "eval_segments.failed.csv", newline="") as handle:
        failed = {row["YTID"]: row["reason"] for row in csv.DictReader(handle)}
    assert failed == {"privateVid1": "private", "brokenApi01": "backend_error", "goneVideo01": "unavailable"}


def test_a_video_listed_twice_is_resolved_once(youtube: FakeYouTube, library: str, tmp_path: Path) -> None:
    youtube.videos.update({"twoWindows1": FakeVideo(), "oneWindow01": FakeVideo()})
    csv_path = write_csv(tmp_path / "eval_segments.csv", [
        'twoWindows1, 10.000, 20.000, "/m/a"', 'oneWindow01, 0.000, 10.000, "/m/b"',
        'twoWindows1, 200.500, 210.500, "/m/c"'])
    config = write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], OUTPUT_DIR=str(tmp_path / "out"),
                          REQUESTS_PER_MINUTE=None,  # no limit here; a guest's pace is test_pacing.py's
                          TIMER=0, WORKERS=1, BACKEND=library)
    assert cli.main(["--config", str(config)]) == 0
    # Resolved once: as many player calls as a video listed once (pytubefix makes two per resolution).
    assert youtube.player_calls["twoWindows1"] == youtube.player_calls["oneWindow01"] >= 1
    with open(tmp_path / "out" / "eval_segments.split-pos.csv", newline="") as handle:
        files = {row["start_seconds"]: row["file"] for row in csv.DictReader(handle) if row["YTID"] == "twoWindows1"}
    assert files == {"10.000": "eval_segments/twoWindows1.wav", "200.500": "eval_segments/twoWindows1_200500.wav"}
    second = decode(tmp_path / "out" / files["200.500"])
    assert abs(window_offset(second, 200.5)) < 0.02


@pytest.mark.parametrize(("highest", "size"), [(False, (64, 36)), (True, (192, 108))])
def test_video_writes_mp4_with_the_chosen_resolution(youtube: FakeYouTube, library: str, tmp_path: Path,
                                                     highest: bool, size: tuple[int, int]) -> None:
    # 1080p, 360p and 144p on offer (files scaled down, see conftest.VIDEO_SOURCES): the
    # default takes the smallest of at least 360p, DOWN_HIGHEST_QUALITY the largest.
    youtube.videos["withPicture"] = FakeVideo(pictures={160: "video_144.mp4", 137: "video_1080.mp4",
                                                        134: "video_360.mp4"})
    csv_path = write_csv(tmp_path / "eval_segments.csv", ['withPicture, 41.300, 51.300, "/m/a"'])
    config = write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], OUTPUT_DIR=str(tmp_path / "out"),
                          REQUESTS_PER_MINUTE=None,  # no limit here; a guest's pace is test_pacing.py's
                          TIMER=0, BACKEND=library, VIDEO=True, DOWN_HIGHEST_QUALITY=highest)
    assert cli.main(["--config", str(config)]) == 0
    clip_path = tmp_path / "out" / "eval_segments" / "withPicture.mp4"
    codec, width, height, seconds = video_stream(clip_path)
    assert (codec, (width, height)) == ("h264", size)
    assert abs(seconds - 10) <= 0.2  # a frame at 5 fps
    audio = decode(clip_path)
    assert audio.codec == "aac" and abs(audio.duration - 10) < 0.03
    assert abs(window_offset(audio, 41.3)) < 0.02
