"""The base install alone (``pip install -e .``, no extras) is ready for today's YouTube.

A fresh virtual environment gets only the project's base dependencies from the package
index; then, with that environment NOT activated (its bin folder is not on PATH), yt-dlp
must be set up with a deno that runs and report it as usable, and ``--doctor`` must pass.
Skipped, saying why, where the package index cannot be reached; the last test checks the same
promise offline, from this environment's installed metadata and deno's own binary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PROBE = """
import json, subprocess
from audioset_downloader.fetch.backends.ytdlp import YtDlpBackend
from audioset_downloader.inputs.settings import Settings
backend = YtDlpBackend(Settings())
path = backend.options["js_runtimes"]["deno"]["path"]
info = backend.js_runtime()
print(json.dumps({"path": path, "runs": subprocess.run([path, "--version"], capture_output=True, text=True).stdout,
                  "ytdlp_sees": [info.name, info.path, info.version, info.supported] if info else None}))
"""


@pytest.fixture(scope="module")
def base_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("base-install")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-e", str(REPO)],
                             capture_output=True, text=True, timeout=900)
    if install.returncode != 0:
        if "NewConnectionError" in install.stderr or "No matching distribution" in install.stderr:
            pytest.skip(f"the package index is out of reach: {install.stderr.strip().splitlines()[-1]}")
        raise AssertionError(install.stderr)
    return python


def clean_env(tmp_path: Path) -> dict[str, str]:
    """No activated venv: PATH without its bin folder, a home of its own (no user cache)."""
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PATH="/usr/bin:/bin", HOME=str(tmp_path))
    return env


def test_the_base_install_gives_ytdlp_a_deno_that_runs(base_python: Path, tmp_path: Path) -> None:
    probe = subprocess.run([str(base_python), "-c", PROBE], capture_output=True, text=True, env=clean_env(tmp_path),
                           cwd=tmp_path, timeout=120)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert Path(found["path"]).is_relative_to(base_python.parent.parent)  # the venv's own deno
    assert found["runs"].startswith("deno ")
    name, path, version, supported = found["ytdlp_sees"]
    assert (name, path, supported) == ("deno", found["path"], True)
    assert found["runs"].split()[1] == version


def test_the_base_install_passes_the_doctor(base_python: Path, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    result = subprocess.run([str(base_python), str(REPO / "AudioDownloader.py"), "--doctor",
                             "--csv", str(REPO / "data" / "eval_segments.csv"), "--output-dir", str(tmp_path / "out")],
                            capture_output=True, text=True, env=clean_env(tmp_path), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split("  ")[0]: line for line in result.stdout.splitlines()}
    assert " ok " in lines["JS runtime"] and "deno" in lines["JS runtime"]
    assert " ok " in lines["backend yt-dlp (fallback)"]
    # pytubefix is an extra: without it, the chain goes on without it and says so.
    assert " warn " in lines["backend pytubefix (fallback)"] and "left out of the chain" in lines[
        "backend pytubefix (fallback)"]


def test_the_installed_metadata_promises_ytdlp_a_deno_that_runs(tmp_path: Path) -> None:
    """The offline counterpart of the two above, on this environment: the package's base requirements (read from
    its installed metadata) are installed at versions they accept, they bring deno as a package whose own binary
    runs, and yt-dlp, as our backend sets it up, is handed that binary and finds it usable."""
    from importlib import metadata

    from packaging.requirements import Requirement

    base = [Requirement(text) for text in metadata.requires("audioset-downloader") or []
            if "extra ==" not in text]
    by_name = {requirement.name.lower(): requirement for requirement in base}
    assert {"pytube", "yt-dlp", "imageio-ffmpeg"} <= set(by_name)
    assert {"default", "deno"} <= by_name["yt-dlp"].extras, "the base install brings yt-dlp's JS runtime"
    for requirement in base:
        installed = metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (requirement, installed)
    deno_dist = metadata.distribution("deno")
    binaries = [deno_dist.locate_file(file) for file in deno_dist.files or [] if Path(str(file)).name == "deno"]
    binary = next(Path(path).resolve() for path in binaries if Path(path).is_file())
    runs = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60).stdout
    assert runs.startswith("deno ")

    from audioset_downloader.fetch.backends.ytdlp import YtDlpBackend
    from audioset_downloader.inputs.settings import Settings

    backend = YtDlpBackend(Settings())
    assert Path(backend.options["js_runtimes"]["deno"]["path"]).resolve() == binary
    info = backend.js_runtime()
    assert info is not None and (info.name, info.supported) == ("deno", True)
    assert info.version == runs.split()[1]


def test_a_mirror_without_its_library_is_one_line_naming_the_extra(base_python: Path, tmp_path: Path) -> None:
    (tmp_path / "eval_segments.csv").write_text('abcdefghijk, 0.000, 10.000, "/m/09x0r"\n')
    (tmp_path / "cfg.py").write_text(f'CSV_FILE_NAMES = ["{tmp_path / "eval_segments.csv"}"]\n'
                                     'MIRRORS = ["hf://datasets/agkphysics/AudioSet"]\n')
    done = subprocess.run([str(base_python), str(REPO / "AudioDownloader.py"), "--config", "cfg.py"], cwd=tmp_path,
                          capture_output=True, text=True, env=clean_env(tmp_path), timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: MIRRORS[0] hf://datasets/agkphysics/AudioSet: a Hub mirror needs "
                                   "huggingface-hub, which is not installed; install it with: "
                                   'pip install -e ".[mirrors]"'), done.stderr
