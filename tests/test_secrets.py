"""Secrets stay secret: no proxy password or cookie value on a command line, in a log or in any output.

A watcher reads every readable /proc/*/cmdline while clips are cut, as any user of a shared
machine could; afterwards every file under OUTPUT_DIR and every console line is searched.
"""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO, run_script, write_config, write_csv
from tests.support.audio import decode, window_offset
from tests.support.proxy import CountingProxy
from tests.support.server import MediaServer
from tests.support.socks_server import SocksServer

PASSWORD = "Pr0xy-Passw0rd-7f3a"
COOKIE = "c00kie-Secret-9b2e"
SECRETS = (PASSWORD.encode(), COOKIE.encode())


class CommandLines:
    """Every process's arguments, read as another user would, while the block runs."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if entry.name.isdigit():
                    try:
                        with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                            self.seen.add(handle.read())
                    except OSError:
                        pass
            time.sleep(0.002)

    def ffmpeg_cuts(self, folder: Path) -> list[bytes]:
        """The ffmpeg runs that wrote into ``folder`` (the suite runs in parallel: others' are seen too)."""
        return [line for line in self.seen
                if b"ffmpeg" in line and b"\x00-i\x00" in line and str(folder).encode() in line]

    def __enter__(self) -> CommandLines:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def files_holding_secrets(root: Path) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and any(secret in path.read_bytes() for secret in SECRETS):
            found.append(path)
    return found


def no_secret_in(text: str) -> bool:
    return PASSWORD not in text and COOKIE not in text


@contextmanager
def slow_mirror(tmp_path: Path, sources: Path, ids: list[str]) -> Iterator[MediaServer]:
    """A mirror slow enough (latency per request) that each ffmpeg lives long enough to be seen."""
    root = tmp_path / "mirror"
    root.mkdir()
    for ytid in ids:
        (root / f"{ytid}.m4a").hardlink_to(sources / "tone300.m4a")
    with MediaServer(root, latency_s=0.15) as media:
        yield media


def cookies_for(tmp_path: Path, host: str = "127.0.0.1") -> Path:
    """A cookies file whose domain is the media host's, so every media request carries the cookie."""
    path = tmp_path / "cookies.txt"
    path.write_text(f"# Netscape HTTP Cookie File\n{host}\tFALSE\t/\tFALSE\t0\tsession\t{COOKIE}\n")
    path.chmod(0o600)
    return path


def configure(tmp_path: Path, media: MediaServer, ids: list[str], **constants: object) -> Path:
    csv_path = write_csv(tmp_path / "eval_segments.csv", [f'{ytid}, 30.000, 40.000, "/m/a"' for ytid in ids])
    return write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], BACKEND="direct", TIMER=0, WORKERS=2,
                        YTB_URL_FORMAT=media.base_url + "/{YTID}.m4a", OUTPUT_DIR=str(tmp_path / "out"),
                        RETRIES=0, **constants)


def assert_exact_clips(tmp_path: Path, ids: list[str]) -> None:
    with open(tmp_path / "out" / "eval_segments.split-pos.csv", newline="") as handle:
        rows = {row["YTID"]: row for row in csv.DictReader(handle)}
    assert set(rows) == set(ids)
    for ytid in ids:
        clip = decode(tmp_path / "out" / rows[ytid]["file"])
        assert abs(clip.duration - 10) < 0.03 and abs(window_offset(clip, 30)) < 0.02


def test_a_password_proxy_and_cookies_reach_the_media_host_and_nothing_else(tmp_path: Path, sources: Path) -> None:
    ids = [f"secretclip{n}" for n in range(4)]
    with slow_mirror(tmp_path, sources, ids) as media, CountingProxy("lab", ("lab", PASSWORD)) as proxy:
        config = configure(tmp_path, media, ids, PROXY=proxy.url, COOKIES_FILE=str(cookies_for(tmp_path)))
        with CommandLines() as watcher:
            result = run_script("--config", str(config), cwd=tmp_path)
        served = sum(media.requests.values())
    assert result.returncode == 0, result.stderr
    assert len(watcher.ffmpeg_cuts(tmp_path / "out")) >= len(ids)  # it saw ffmpeg at work, once a clip at least
    assert not [line for line in watcher.seen if any(secret in line for secret in SECRETS)]
    assert no_secret_in(result.stdout + result.stderr)
    assert files_holding_secrets(tmp_path / "out") == []
    assert_exact_clips(tmp_path, ids)
    # Every media request went through the proxy, signed in, and carried the cookie.
    assert served >= len(ids) and len(proxy.cookies) == served
    assert set(proxy.cookies) == {f"session={COOKIE}"}


def test_headers_without_a_secret_still_ride_on_the_command_line_and_the_proxy_password_does_not(
        tmp_path: Path, sources: Path) -> None:
    ids = ["plainclip01", "plainclip02"]
    with slow_mirror(tmp_path, sources, ids) as media, CountingProxy("lab", ("lab", PASSWORD)) as proxy:
        config = configure(tmp_path, media, ids, PROXY=proxy.url)
        with CommandLines() as watcher:
            result = run_script("--config", str(config), cwd=tmp_path)
        served = sum(media.requests.values())
    assert result.returncode == 0, result.stderr
    cuts = watcher.ffmpeg_cuts(tmp_path / "out")
    assert cuts and all(b"-http_proxy" not in line and PASSWORD.encode() not in line for line in cuts)
    assert all(b"\x00-headers\x00" in line for line in cuts)  # User-Agent and the like: nothing secret
    assert proxy.refused >= 1 and len(proxy.cookies) == served  # asked for its password, then given it
    assert_exact_clips(tmp_path, ids)


@pytest.mark.parametrize("with_cookies", [False, True])
def test_a_proxy_that_is_down_is_named_without_its_password(tmp_path: Path, sources: Path,
                                                            with_cookies: bool) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    ids = [f"downclip{n:03d}" for n in range(3)]
    cookies = {"COOKIES_FILE": str(cookies_for(tmp_path))} if with_cookies else {}
    with slow_mirror(tmp_path, sources, ids) as media:
        config = configure(tmp_path, media, ids, PROXY=f"http://lab:{PASSWORD}@127.0.0.1:{port}", **cookies)
        result = run_script("--config", str(config), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"cannot reach the proxy lab:***@127.0.0.1:{port}" in result.stderr
    assert no_secret_in(result.stdout + result.stderr)
    assert files_holding_secrets(tmp_path / "out") == []


def test_a_socks5_identity_with_a_password_keeps_it(tmp_path: Path, sources: Path) -> None:
    ids = ["socksclip01", "socksclip02"]
    with slow_mirror(tmp_path, sources, ids) as media, SocksServer("127.0.0.1", ("ann", PASSWORD)) as socks:
        config = configure(tmp_path, media, ids, IDENTITIES=[{"name": "signed", "proxy": socks.url(),
                                                              "cookies_file": str(cookies_for(tmp_path))}])
        with CommandLines() as watcher:
            result = run_script("--config", str(config), cwd=tmp_path)
        opened = socks.connections
    assert result.returncode == 0, result.stderr
    assert watcher.ffmpeg_cuts(tmp_path / "out")
    assert not [line for line in watcher.seen if any(secret in line for secret in SECRETS)]
    assert no_secret_in(result.stdout + result.stderr)
    assert files_holding_secrets(tmp_path / "out") == []
    assert opened >= len(ids)
    assert_exact_clips(tmp_path, ids)


def test_doctor_dry_run_and_a_bad_proxy_setting_print_no_password(tmp_path: Path, sources: Path) -> None:
    with slow_mirror(tmp_path, sources, ["doctorclip1"]) as media, CountingProxy("lab", ("lab", PASSWORD)) as proxy:
        config = configure(tmp_path, media, ["doctorclip1"], PROXY=proxy.url, COOKIES_FILE=str(cookies_for(tmp_path)))
        doctor = run_script("--config", str(config), "--doctor", cwd=tmp_path)
        dry = run_script("--config", str(config), "--dry-run", cwd=tmp_path)
    assert "PROXY" in doctor.stdout and dry.returncode == 0 and "1 to attempt" in dry.stdout
    for result in (doctor, dry):
        assert no_secret_in(result.stdout + result.stderr)
    wrong = write_config(tmp_path / "bad.py", CSV_FILE_NAMES=[str(tmp_path / "eval_segments.csv")],
                         PROXY=f"htp://lab:{PASSWORD}@127.0.0.1:3128")
    refused = run_script("--config", str(wrong), cwd=tmp_path)
    assert refused.returncode == 2 and "htp://lab:***@127.0.0.1:3128" in refused.stderr
    assert no_secret_in(refused.stderr)


def test_ctrl_c_leaves_no_secret_behind(tmp_path: Path, sources: Path) -> None:
    ids = [f"ctrlcclip{n:02d}" for n in range(8)]
    before = set(os.listdir(tempfile.gettempdir()))
    with slow_mirror(tmp_path, sources, ids) as media, CountingProxy("lab", ("lab", PASSWORD)) as proxy:
        config = configure(tmp_path, media, ids, PROXY=proxy.url, COOKIES_FILE=str(cookies_for(tmp_path)))
        # A shell's background job ignores SIGINT, and its children would inherit that.
        process = subprocess.Popen([sys.executable, str(REPO / "AudioDownloader.py"), "--config", str(config)],
                                   cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not proxy.cookies:  # a cut is under way
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert no_secret_in(out + err)
    assert files_holding_secrets(tmp_path / "out") == []
    # Nothing the run made in the temporary folder holds a secret either.
    new = [Path(tempfile.gettempdir()) / name for name in set(os.listdir(tempfile.gettempdir())) - before]
    assert not [path for path in new if path.is_file() and any(s in path.read_bytes() for s in SECRETS)]
    assert not [found for folder in new if folder.is_dir() for found in files_holding_secrets(folder)]


@pytest.mark.parametrize("relay", ["socks", "headers"])
def test_the_loopback_relays_serve_no_other_user(relay: str, tmp_path: Path) -> None:
    """Another user of the machine can reach 127.0.0.1 too: without the token a relay refuses, 407."""
    import http.client
    from urllib.parse import urlsplit

    from audioset_downloader.fetch.header_relay import header_relay
    from audioset_downloader.fetch.socks import local_http_proxy

    with SocksServer("127.0.0.1", ("ann", PASSWORD)) as socks:
        url = local_http_proxy(socks.url()) if relay == "socks" else header_relay().proxy_url
        parts = urlsplit(url)
        assert parts.password and parts.password not in PASSWORD  # a token of its own, not the proxy's password
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        connection.request("GET", "http://127.0.0.1:9/x")
        answer = connection.getresponse()
        connection.close()
        assert answer.status == 407
        assert socks.connections == 0  # nothing went out through the SOCKS proxy's sign-in
