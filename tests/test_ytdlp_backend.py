"""The yt-dlp backend for real: yt-dlp's generic extractor resolves media on the local server.

Also COOKIES_FILE and PROXY, which every backend passes on, through a real proxy.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from audioset_downloader import cli
from tests.conftest import Mirror, write_config, write_csv
from tests.support.audio import decode, window_offset
from tests.support.faults import Faults
from tests.support.proxy import CountingProxy
from tests.support.server import Handler, Reply


def rows_by_id(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["YTID"]: row for row in csv.DictReader(handle)}


def configure(tmp_path: Path, mirror: Mirror, rows: list[str], **constants: object) -> Path:
    csv_path = write_csv(tmp_path / "eval_segments.csv", rows)
    # A lab mirror: yt-dlp's generic extractor, with no YouTube backends to fall over to.
    settings = {"CSV_FILE_NAMES": [str(csv_path)], "YTB_URL_FORMAT": mirror.url_format, "BACKEND": "yt-dlp",
                "FALLBACK_BACKENDS": [], "OUTPUT_DIR": str(tmp_path / "out"), "TIMER": 0, "RETRIES": 0}
    settings.update(constants)
    return write_config(tmp_path / "cfg.py", **settings)


def test_ytdlp_resolves_and_its_errors_become_reasons(tmp_path: Path, mirror: Mirror) -> None:
    pytest.importorskip("yt_dlp")
    for ytid in ("ytdlpgood01", "-ytdlpgood2", "ytdlp404xxx", "ytdlp429xxx", "ytdlp500xxx"):
        mirror.add(ytid)
    faults = Faults(mirror.server)
    faults.set("/ytdlp404xxx.m4a", 404)
    faults.set("/ytdlp429xxx.m4a", 429)
    faults.set("/ytdlp500xxx.m4a", 500)
    config = configure(tmp_path, mirror, [
        'ytdlpgood01, 33.300, 43.300, "/m/09x0r"', '-ytdlpgood2, 250.000, 260.000, "/m/04rlf"',
        'ytdlp404xxx, 0.000, 10.000, "/m/09x0r"', 'ytdlp500xxx, 0.000, 10.000, "/m/09x0r"'])
    assert cli.main(["--config", str(config)]) == 0
    written = rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")
    for ytid, start in (("ytdlpgood01", 33.3), ("-ytdlpgood2", 250.0)):
        clip = decode(tmp_path / "out" / written[ytid]["file"])
        assert abs(clip.duration - 10) < 0.02 and abs(window_offset(clip, start)) < 0.02
    failed = rows_by_id(tmp_path / "out" / "eval_segments.failed.csv")
    assert {ytid: row["reason"] for ytid, row in failed.items()} == {
        "ytdlp404xxx": "unavailable", "ytdlp500xxx": "server_error"}
    assert "HTTP Error 404" in failed["ytdlp404xxx"]["detail"]


@pytest.mark.parametrize("backend", ["yt-dlp", "direct"])
def test_proxy_carries_metadata_and_media_requests(tmp_path: Path, mirror: Mirror, backend: str) -> None:
    if backend == "yt-dlp":
        pytest.importorskip("yt_dlp")
    mirror.add("proxiedvid1")
    with CountingProxy() as proxy:
        config = configure(tmp_path, mirror, ['proxiedvid1, 10.000, 20.000, "/m/09x0r"'],
                           BACKEND=backend, PROXY=proxy.url)
        assert cli.main(["--config", str(config)]) == 0
        clients = dict(proxy.clients)
    assert "proxiedvid1" in rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")
    assert clients.get("ffmpeg", 0) >= 1  # the media went through the proxy
    if backend == "yt-dlp":
        assert clients.get("other", 0) >= 1  # and so did yt-dlp's own request
    assert sum(mirror.server.requests.values()) == sum(clients.values())  # nothing went around it


@pytest.mark.parametrize("backend", ["yt-dlp", "direct"])
def test_cookies_file_reaches_every_request(tmp_path: Path, mirror: Mirror, backend: str) -> None:
    if backend == "yt-dlp":
        pytest.importorskip("yt_dlp")
    mirror.add("cookievid01")
    seen: list[str] = []

    def members_only(handler: Handler) -> Reply | None:
        seen.append(handler.headers.get("Cookie", ""))
        return None if "session=s3cr3t" in handler.headers.get("Cookie", "") else Reply(403, b"sign in")

    mirror.server.routes.insert(0, members_only)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\ts3cr3t\n")
    rows = ['cookievid01, 10.000, 20.000, "/m/09x0r"']
    assert cli.main(["--config", str(configure(tmp_path, mirror, rows, BACKEND=backend))]) == 0
    # Refused (403) before the backend has ever worked: not the video's fault, left for the next run.
    assert "cookievid01" not in rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")
    assert rows_by_id(tmp_path / "out" / "eval_segments.failed.csv") == {}
    assert "cookievid01: left for the next run" in (tmp_path / "out" / "eval_segments_dl.log").read_text()

    config = configure(tmp_path, mirror, rows, BACKEND=backend, COOKIES_FILE=str(cookies))
    assert cli.main(["--config", str(config)]) == 0
    assert "cookievid01" in rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")
    assert seen[-1] == "session=s3cr3t"


def test_a_backend_that_is_not_installed_says_how_to_install_it(
    tmp_path: Path, mirror: Mirror, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "yt_dlp", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "audioset_downloader.fetch.backends.ytdlp", raising=False)
    config = configure(tmp_path, mirror, ['abcdefghijk, 0.000, 10.000, "/m/09x0r"'])
    assert cli.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == ("error: backend 'yt-dlp' needs the 'yt_dlp' package, which is not installed; "
                   "install it with: pip install -e .\n")
    assert not (tmp_path / "out").exists()
