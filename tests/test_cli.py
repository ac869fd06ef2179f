"""The command line surface: the console script and --help."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from audioset_downloader import cli
from tests.conftest import REPO


def test_console_script_is_the_same_command() -> None:
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "audioset-download"]
    assert script.load() is cli.run
    installed = shutil.which("audioset-download") or str(Path(sys.executable).with_name("audioset-download"))
    by_script = subprocess.run([installed, "--help"], capture_output=True, text=True, check=True).stdout
    by_file = subprocess.run([sys.executable, str(REPO / "AudioDownloader.py"), "--help"],
                             capture_output=True, text=True, check=True).stdout
    assert by_script.split("\n", 1)[1] == by_file.split("\n", 1)[1]  # the same after the "usage: prog" line


def test_help_groups_every_option() -> None:
    text = cli.build_parser().format_help()
    for group in ("what to download", "how to fetch", "what to write", "instead of downloading"):
        assert f"{group}:" in text
    for flag in ("--csv", "--timer", "--backend", "--workers", "--format", "--sample-rate", "--dry-run", "--verify",
                 "--repair", "--list-labels", "--config", "--label", "--proxy", "--cookies", "--video"):
        assert flag in text


def test_flags_override_the_new_settings(tmp_path: Path) -> None:
    config = tmp_path / "cfg.py"
    config.write_text(f"CSV_FILE_NAMES = [{str(REPO / 'data' / 'eval_segments.csv')!r}]\nVIDEO = False\n")
    args = cli.build_parser().parse_args(["--config", str(config), "--label", "Dog", "--label", "/m/09x0r",
                                          "--video", "--proxy", "http://127.0.0.1:3128",
                                          "--cookies", str(tmp_path / "cookies.txt")])
    settings = cli.settings_from_args(args, None)
    assert settings.labels == ("Dog", "/m/09x0r")
    assert settings.video and settings.clip_format == "mp4"
    assert settings.proxy == "http://127.0.0.1:3128"
    assert settings.cookies_file == tmp_path / "cookies.txt"
    assert "--no-video" in cli.build_parser().format_help()


def test_a_reader_that_stops_early_is_not_an_error() -> None:
    # As in: python AudioDownloader.py --list-labels | head -2
    process = subprocess.Popen([sys.executable, str(REPO / "AudioDownloader.py"), "--list-labels"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith("MID")
    process.stdout.close()
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == ""
