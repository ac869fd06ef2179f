"""``--doctor``: the preflight table, run as a user runs it, against this machine's real tools."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from audioset_downloader.doctor import ONLINE_VIDEO, run_doctor
from audioset_downloader.inputs.settings import Settings
from tests.conftest import run_script, write_config, write_csv
from tests.support.fake_youtube import PYTUBE_CLIENT, FakeVideo, FakeYouTube


def parse(output: str) -> dict[str, tuple[str, str]]:
    lines = output.splitlines()
    status_at = lines[0].index("status")
    detail_at = lines[0].index("detail")
    return {line[:status_at].strip(): (line[status_at:detail_at].strip(), line[detail_at:].strip())
            for line in lines[1:-1]}


def configure(tmp_path: Path, **constants: object) -> Path:
    csv_path = write_csv(tmp_path / "eval_segments.csv", [f'doctorvid{i:02d}, 0.000, 10.000, "/m/09x0r"'
                                                          for i in range(30)])
    settings = {"CSV_FILE_NAMES": [str(csv_path)], "OUTPUT_DIR": str(tmp_path / "out"), "TIMER": 0,
                "CACHE_DIR": str(tmp_path / "cache")}
    settings.update(constants)
    return write_config(tmp_path / "cfg.py", **settings)


def test_doctor_offline_names_each_backend_the_js_runtime_and_skips_online(tmp_path: Path) -> None:
    result = run_script("--config", str(configure(tmp_path)), "--doctor", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = parse(result.stdout)
    assert rows["ffmpeg"][0] == "ok" and "reads https" in rows["ffmpeg"][1]
    assert rows["backend pytube (BACKEND)"][0] == "warn"
    assert "broken against today's YouTube" in rows["backend pytube (BACKEND)"][1]
    assert rows["backend yt-dlp (fallback)"][0] == "ok", rows["backend yt-dlp (fallback)"]  # its deno is there
    # The runtime as yt-dlp reports it: deno, at the version the binary itself gives.
    status, detail = rows["JS runtime"]
    assert status == "ok" and detail.startswith("deno ")
    deno = detail.split(" at ")[1].split(" ")[0]
    assert subprocess.run([deno, "--version"], capture_output=True, text=True).stdout.split()[1] == detail.split()[1]
    assert rows["yt-dlp-ejs"][0] == "ok"
    assert rows["OUTPUT_DIR"][0] == "ok" and "for 30 planned clips" in rows["OUTPUT_DIR"][1]
    assert {rows[name][0] for name in rows if name.startswith("online:")} == {"skipped"}
    assert not (tmp_path / "out").exists()  # a diagnosis creates nothing
    assert result.stdout.splitlines()[-1].startswith("0 failed,")


def test_doctor_fails_on_a_dead_proxy_and_warns_on_expired_cookies(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    cookies = tmp_path / "cookies.txt"
    long_ago = int(time.time()) - 86400
    cookies.write_text("# Netscape HTTP Cookie File\n"
                       f".youtube.com\tTRUE\t/\tTRUE\t{long_ago}\tSID\told\n"
                       f".youtube.com\tTRUE\t/\tTRUE\t{long_ago}\tHSID\told\n")
    cookies.chmod(0o600)
    config = configure(tmp_path, PROXY=f"http://127.0.0.1:{port}", COOKIES_FILE=str(cookies))
    result = run_script("--config", str(config), "--doctor", cwd=tmp_path)
    assert result.returncode == 1
    rows = parse(result.stdout)
    assert rows["PROXY"][0] == "FAIL" and f"127.0.0.1:{port} does not answer" in rows["PROXY"][1]
    assert rows["COOKIES_FILE"] == ("warn", f"{cookies}: all 2 youtube.com cookies have expired; export them again")
    assert result.stdout.splitlines()[-1].startswith("1 failed,")


def test_doctor_checks_each_identitys_proxy_and_cookies(tmp_path: Path) -> None:
    with socket.socket() as closed, socket.socket() as listening:
        closed.bind(("127.0.0.1", 0))
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        dead, alive = closed.getsockname()[1], listening.getsockname()[1]
        cookies = tmp_path / "cookies.txt"
        cookies.write_text("# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t0\tSID\tx\n")
        cookies.chmod(0o600)
        config = configure(tmp_path, IDENTITIES=[{"name": "lab", "proxy": f"socks5://127.0.0.1:{alive}"},
                                                 {"name": "home", "proxy": f"http://127.0.0.1:{dead}",
                                                  "cookies_file": str(cookies)}])
        result = run_script("--config", str(config), "--doctor", cwd=tmp_path)
    assert result.returncode == 1
    rows = parse(result.stdout)
    assert rows["identity lab: proxy"] == ("ok", f"127.0.0.1:{alive} answers")
    assert rows["identity lab: cookies"][0] == "ok" and "guest session" in rows["identity lab: cookies"][1]
    assert rows["identity home: proxy"][0] == "FAIL"
    assert "check identity home: proxy or start the proxy" in rows["identity home: proxy"][1]
    assert rows["identity home: cookies"] == ("ok", f"{cookies}: 1 youtube.com cookies, 0 expired")
    assert "PROXY" not in rows and "COOKIES_FILE" not in rows


def test_doctor_fails_without_ffmpeg_and_online_needs_doctor(tmp_path: Path) -> None:
    config = configure(tmp_path, FFMPEG_BINARY=str(tmp_path / "no-such-ffmpeg"))
    result = run_script("--config", str(config), "--doctor", cwd=tmp_path)
    assert result.returncode == 1
    assert parse(result.stdout)["ffmpeg"][0] == "FAIL"
    assert "online: yt-dlp" in parse(result.stdout) and parse(result.stdout)["online: yt-dlp"][0] == "skipped"

    alone = run_script("--config", str(config), "--online", cwd=tmp_path)
    assert alone.returncode == 2
    assert alone.stderr == "error: --online goes with --doctor: python AudioDownloader.py --doctor --online\n"


def test_doctor_online_warns_for_a_failing_backend_while_the_chain_gets_through(youtube: FakeYouTube,
                                                                                 tmp_path: Path) -> None:
    youtube.refused_clients.add(PYTUBE_CLIENT)  # pytube as today's YouTube treats it
    youtube.videos[ONLINE_VIDEO] = FakeVideo()
    csv_path = write_csv(tmp_path / "eval_segments.csv", ['doctorvid00, 0.000, 10.000, "/m/09x0r"'])
    settings = Settings(csv_file_names=(csv_path,), output_dir=tmp_path / "out", cache_dir=tmp_path / "cache",
                        fallback_backends=("yt-dlp",))
    text, status = run_doctor(settings, online=True)
    rows = parse(text)
    assert status == 0
    assert rows["online: pytube"][0] == "warn" and rows["online: pytube"][1].startswith("backend_error: ")
    assert rows["online: yt-dlp"][0] == "ok" and "cut 1.0 s" in rows["online: yt-dlp"][1]

    youtube.videos[ONLINE_VIDEO] = FakeVideo(player_status=400)  # no backend gets through: that fails
    text, status = run_doctor(settings, online=True)
    assert status == 1 and parse(text)["online: yt-dlp"][0] == "FAIL"


@pytest.mark.parametrize("where", ["COOKIES_FILE", "identity"])
def test_doctor_warns_of_a_cookies_file_other_users_can_read_and_gives_the_fix(tmp_path: Path, where: str) -> None:
    cookies = tmp_path / "my cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t0\tSID\tsession-value\n")
    chosen = ({"COOKIES_FILE": str(cookies)} if where == "COOKIES_FILE"
              else {"IDENTITIES": [{"name": "lab", "cookies_file": str(cookies)}]})
    row = "COOKIES_FILE" if where == "COOKIES_FILE" else "identity lab: cookies"
    config = configure(tmp_path, **chosen)
    for mode in (0o644, 0o640):
        cookies.chmod(mode)
        rows = parse(run_script("--config", str(config), "--doctor", cwd=tmp_path).stdout)
        assert rows[row] == ("warn", f"{cookies}: other users of this machine can read it (mode {mode:04o}), and "
                                     f"with it your signed-in session; fix: chmod 600 '{cookies}'")
    fix = rows[row][1].rpartition("fix: ")[2]
    subprocess.run(["bash", "-c", fix], check=True)  # the fix, as printed, works in a shell
    rows = parse(run_script("--config", str(config), "--doctor", cwd=tmp_path).stdout)
    assert rows[row] == ("ok", f"{cookies}: 1 youtube.com cookies, 0 expired")
