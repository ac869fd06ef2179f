"""Failover between backends against a YouTube that treats pytube as today's YouTube does.

pytube, pytubefix and yt-dlp all run for real; the fake YouTube (tests/support/fake_youtube.py)
answers pytube's player client with HTTP 400, or serves it ciphered formats and a base.js of
today's shape that its regexes cannot read, while yt-dlp's own player clients get working
answers. ffmpeg really cuts every clip.
"""

from __future__ import annotations

import csv
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from audioset_downloader import cli
from audioset_downloader.errors import ClipFailure, FailureReason
from audioset_downloader.fetch.backends import load_backend
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings
from tests.conftest import run_script, write_config, write_csv
from tests.support.audio import decode, window_offset
from tests.support.fake_youtube import MODERN_BASE_JS, PYTUBE_CLIENT, FakeVideo, FakeYouTube

IDS = [f"todayvideo{i}" for i in range(6)]


def rows_by_id(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["YTID"]: row for row in csv.DictReader(handle)}


def configure(tmp_path: Path, ids: list[str], **constants: object) -> Path:
    csv_path = write_csv(tmp_path / "eval_segments.csv", [f'{ytid}, 20.500, 30.500, "/m/09x0r"' for ytid in ids])
    # The fake YouTube has no limit, and these tests are about backends: a guest's pace (test_pacing.py) would
    # only make them wait.
    settings = {"CSV_FILE_NAMES": [str(csv_path)], "OUTPUT_DIR": str(tmp_path / "out"), "TIMER": 0,
                "CACHE_DIR": str(tmp_path / "cache"), "REQUESTS_PER_MINUTE": None}
    settings.update(constants)
    return write_config(tmp_path / "cfg.py", **settings)


def pytube_broken_today(youtube: FakeYouTube, how: str) -> None:
    if how == "player API answers 400":
        youtube.refused_clients.add(PYTUBE_CLIENT)
    else:  # ciphered formats and a base.js pytube's regexes cannot read: RegexMatchError
        youtube.ciphered_clients.add(PYTUBE_CLIENT)
        youtube.player_js = MODERN_BASE_JS


@pytest.mark.parametrize("how", ["player API answers 400", "base.js it cannot read"])
def test_pytube_broken_as_today_fails_over_to_ytdlp(youtube: FakeYouTube, tmp_path: Path, how: str) -> None:
    pytube_broken_today(youtube, how)
    for ytid in IDS:
        youtube.videos[ytid] = FakeVideo()
    config = configure(tmp_path, IDS + ["deletedvid0"], WORKERS=4, FALLBACK_BACKENDS=["yt-dlp"])
    assert cli.main(["--config", str(config)]) == 0

    out = tmp_path / "out"
    written = rows_by_id(out / "eval_segments.split-pos.csv")
    assert set(written) == set(IDS)
    assert {row["backend"] for row in written.values()} == {"yt-dlp"}
    for row in written.values():
        clip = decode(out / row["file"])
        assert abs(clip.duration - 10) < 0.02 and abs(window_offset(clip, 20.5)) < 0.02
    # The video that does not exist is the video's fault: recorded, not retried elsewhere.
    assert {ytid: row["reason"] for ytid, row in rows_by_id(out / "eval_segments.failed.csv").items()} == {
        "deletedvid0": "unavailable"}
    summary = json.loads((out / "eval_segments.summary.json").read_text())
    assert summary["by_backend"] == {"yt-dlp": len(IDS)}
    log = (out / "eval_segments_dl.log").read_text()
    assert log.count("backend pytube failed 3 clips in a row") == 1
    # pytube was given three clips to prove itself, never more, though four workers wanted it.
    assert youtube.client_calls[PYTUBE_CLIENT] <= 3


def test_a_video_level_reason_does_not_fall_through(youtube: FakeYouTube, tmp_path: Path) -> None:
    youtube.videos.update({"privatevid0": FakeVideo(status="private"), "goodvideo01": FakeVideo()})
    config = configure(tmp_path, ["goodvideo01", "privatevid0", "missingvid0"], WORKERS=1,
                       FALLBACK_BACKENDS=["yt-dlp"])
    assert cli.main(["--config", str(config)]) == 0
    failed = rows_by_id(tmp_path / "out" / "eval_segments.failed.csv")
    assert {ytid: row["reason"] for ytid, row in failed.items()} == {"privatevid0": "private",
                                                                      "missingvid0": "unavailable"}
    assert rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")["goodvideo01"]["backend"] == "pytube"
    # Only pytube asked YouTube: the videos' own reasons are final.
    assert set(youtube.client_calls) == {PYTUBE_CLIENT}


def test_every_backend_broken_stops_with_one_message_and_blames_no_video(
    youtube: FakeYouTube, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [f"apichanged{i}" for i in range(12)]
    for ytid in ids:
        youtube.videos[ytid] = FakeVideo(player_status=400)  # every client refused
    config = configure(tmp_path, ids, WORKERS=2)  # the default chain: pytube, yt-dlp, pytubefix
    assert cli.main(["--config", str(config)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    message = errors[0]
    assert message.startswith("error: every backend failed clip after clip for reasons of its own: pytube (")
    for name, fix in [("pytube", "update pytube (pip install -U pytube)"),
                      ("yt-dlp", "pip install -U 'yt-dlp[default,deno]'")]:
        assert f"{name} (" in message and fix in message
    assert "Nothing was marked failed" in message
    assert rows_by_id(tmp_path / "out" / "eval_segments.failed.csv") == {}
    assert rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv") == {}


def test_a_throttled_session_is_rate_limited_not_gone(youtube: FakeYouTube) -> None:
    # yt-dlp's real YouTube extractor reads YouTube's "This content isn't available, try again later".
    youtube.videos["throttled01"] = FakeVideo(status="throttled")
    with pytest.raises(ClipFailure) as failure:
        load_backend(Settings(backend="yt-dlp")).resolve(Segment("throttled01", 0, 10000, "/m/a", 1, "throttled01"))
    assert failure.value.reason is FailureReason.RATE_LIMITED
    assert "rate-limited by YouTube" in failure.value.detail


def test_a_format_is_fetched_only_once_available(youtube: FakeYouTube, tmp_path: Path) -> None:
    # A 2 s pre-roll ad: YouTube refuses (403) the media before it would have played.
    youtube.videos["adBeforeIt1"] = FakeVideo(ad_seconds=2)
    config = configure(tmp_path, ["adBeforeIt1"], BACKEND="yt-dlp", FALLBACK_BACKENDS=[], RETRIES=0)
    assert cli.main(["--config", str(config)]) == 0
    assert "adBeforeIt1" in rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")
    assert youtube.media_requests and youtube.early_requests == []


def test_the_fake_refuses_media_requested_too_early(youtube: FakeYouTube) -> None:
    # Guards the guard: yt-dlp reports the ad's end, and a request before it is refused.
    youtube.videos["adBeforeIt1"] = FakeVideo(ad_seconds=30)
    source = load_backend(Settings(backend="yt-dlp")).resolve(Segment("adBeforeIt1", 0, 10000, "/m/a", 1, "x"))
    assert source.available_at > time.time() + 25
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(source.url, headers={"Range": "bytes=0-99"}))
    assert refused.value.code == 403 and len(youtube.early_requests) == 1


@pytest.mark.parametrize(("client", "name_sent"), [(None, "VISIONOS"), ("IOS", "IOS")])
def test_pytubefix_uses_its_client_and_leaves_sabr_streams_out(youtube: FakeYouTube, client: str | None,
                                                               name_sent: str) -> None:
    pytest.importorskip("pytubefix")
    youtube.videos["sabrvideo01"] = FakeVideo(sabr_itags={140})  # the usual AAC stream: SABR only
    settings = Settings(backend="pytubefix", **({"pytubefix_client": client} if client else {}))
    source = load_backend(settings).resolve(Segment("sabrvideo01", 0, 10000, "/m/a", 1, "x"))
    assert source.description.startswith("itag 139 audio/mp4")  # the next AAC stream with a file URL
    assert youtube.client_calls[name_sent] >= 1


def test_ytdlp_options_reach_ytdlp_and_unknown_ones_are_refused(youtube: FakeYouTube, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    youtube.videos["onlyclient1"] = FakeVideo()
    options = {"extractor_args": {"youtube": {"player_client": ["tv_samsung"]}}}
    config = configure(tmp_path, ["onlyclient1"], BACKEND="yt-dlp", YTDLP_OPTIONS=options)
    assert cli.main(["--config", str(config)]) == 0
    assert "onlyclient1" in rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")
    assert set(youtube.client_calls) == {"TVHTML5"}  # only the client asked for

    config = configure(tmp_path, ["onlyclient1"], BACKEND="yt-dlp", YTDLP_OPTIONS={"extractor_arg": {}})
    assert cli.main(["--config", str(config)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "YTDLP_OPTIONS: 'extractor_arg' is not a yt-dlp option; did you mean 'extractor_args'?")


def test_ytdlp_options_owned_by_the_downloader_are_refused_before_any_work(tmp_path: Path) -> None:
    # pytube first and yt-dlp behind it: the options were checked only when yt-dlp was first built, after
    # pytube had tried the network; offline that ended as "cannot reach", exit 1.
    config = configure(tmp_path, ["neverasked1"], YTB_URL_FORMAT="http://127.0.0.1:9/watch?v={YTID}",
                       FALLBACK_BACKENDS=["yt-dlp"], YTDLP_OPTIONS={"outtmpl": "x"})
    result = run_script("--config", str(config), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: YTDLP_OPTIONS: 'outtmpl' is set by the downloader itself; remove it"], lines
    assert not (tmp_path / "out").exists()
