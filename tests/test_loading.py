"""The dataset card's loading lines run as written, in every layout, with datasets 3.x and the newest release.

Each test downloads a few clips, then takes the card's own ``pip install`` line and its python
blocks (so card and test cannot drift apart) and runs the blocks in the download's folder: here,
with this environment's datasets 3.x; and in a fresh virtual environment holding only what the
card's pip line names, at their newest releases (datasets 5.x today, which decodes audio only
through torchcodec). Either way the first clip must come back as an array of the right rate, the
clip's own samples. The fresh environments need the package index: skipped, saying why, without it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audioset_downloader import cli
from tests.conftest import Mirror, write_config, write_csv
from tests.support.audio import decode

ROWS = ['loadClip001, 10.000, 20.000, "/m/0bt9lr,/m/05tny_"', 'loadClip002, 40.000, 50.000, "/m/09x0r"',
        'loadClip003, 70.000, 80.000, "/m/04rlf"']
PROBE = """
import importlib.metadata as _metadata, importlib.util as _util, json as _json
print("PROBE " + _json.dumps({"shape": list(audio.shape), "rate": int(rate), "energy": float(abs(audio).sum()),
                            "datasets": _metadata.version("datasets") if _util.find_spec("datasets") else ""}))
"""


def download(tmp_path: Path, mirror: Mirror, layout: str, audio_format: str = "wav") -> Path:
    for row in ROWS:
        mirror.add(row.split(",")[0])
    csv_path = write_csv(tmp_path / "eval_segments.csv", ROWS)
    config = write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], OUTPUT_DIR=str(tmp_path / "out"),
                          BACKEND="direct", YTB_URL_FORMAT=mirror.url_format, SAMPLE_RATE=16000, CHANNELS=1,
                          OUTPUT_LAYOUT=layout, CLIPS_PER_TAR=2, CLIPS_PER_FILE=2, AUDIO_FORMAT=audio_format,
                          CACHE_DIR=str(tmp_path / "cache"))
    assert cli.main(["--config", str(config)]) == 0
    return tmp_path / "out"


def card_code(out: Path) -> tuple[list[str], str]:
    """The card's pip line's packages, and its loading section's python blocks as one script."""
    card = (out / "eval_segments.README.md").read_text()
    section = card.split("## Loading it", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.S)
    [pip] = [code.strip() for kind, code in blocks if kind == "bash"]
    assert pip.startswith("pip install ")
    python = [code for kind, code in blocks if kind == "python"]
    assert python, "the card gives no python to load the clips"
    return pip.split()[2:], "\n".join(python)


def clip_energies(out: Path) -> list[float]:
    """What each clip written holds, decoded by ffmpeg: the sum of its samples' magnitudes."""
    with open(out / "eval_segments.split-pos.csv", newline="") as handle:
        return [float(np.abs(decode_any(out, row["YTID"])).sum()) for row in csv.DictReader(handle)]


def decode_any(out: Path, ytid: str) -> np.ndarray:
    """A clip's samples wherever the layout put it (a file, a tar member, a parquet row)."""
    import tarfile

    folder = out / "eval_segments"
    for path in folder.iterdir():
        if path.name.startswith(ytid):
            return decode(path).samples
    scratch = out.parent / f"scratch-{ytid}"
    for path in folder.iterdir():
        if path.suffix == ".tar":
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    if member.name.startswith(ytid) and not member.name.endswith(".json"):
                        scratch.write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
                        return decode(scratch).samples
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            for row in pq.read_table(path).to_pylist():
                if row["YTID"] == ytid:
                    scratch.write_bytes(row["audio"]["bytes"])
                    return decode(scratch).samples
    raise AssertionError(f"no clip of {ytid}")


def check_probe(output: str, out: Path, exact: bool = True) -> dict:
    [line] = [line for line in output.splitlines() if line.startswith("PROBE ")]
    probe = json.loads(line[len("PROBE "):])
    # AAC decoded outside ffmpeg's command line may keep its encoder's priming frame: within two frames.
    assert probe["rate"] == 16000 and abs(probe["shape"][-1] - 160000) <= (0 if exact else 2048), probe
    # The audio of a clip written, as written.
    assert any(abs(probe["energy"] - energy) <= 0.01 * energy for energy in clip_energies(out)), probe
    return probe


@pytest.mark.parametrize(("layout", "audio_format"), [("files", "wav"), ("parquet", "flac"), ("webdataset", "wav"),
                                                      ("parquet", "m4a")])
def test_the_cards_lines_load_the_first_clip_here_with_datasets_3(tmp_path: Path, mirror: Mirror, layout: str,
                                                                   audio_format: str,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = download(tmp_path, mirror, layout, audio_format)
    packages, script = card_code(out)
    assert ("av" in packages) == (audio_format == "m4a")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.chdir(out)
    exec(compile(script + PROBE, "card", "exec"), {})
    probe = check_probe(capsys.readouterr().out, out, exact=audio_format != "m4a")
    assert layout == "webdataset" or probe["datasets"].startswith("3.")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], Path]:
    """Fresh virtual environments, one per pip line, holding what it names at the newest releases."""
    made: dict[tuple[str, ...], Path] = {}
    root = tmp_path_factory.mktemp("card-venvs")

    def python_for(packages: list[str]) -> Path:
        key = tuple(packages)
        if key not in made:
            folder = root / f"venv{len(made)}"
            subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
            python = folder / "bin" / "python"
            install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages],
                                     capture_output=True, text=True, timeout=900)
            if install.returncode != 0:
                if "NewConnectionError" in install.stderr or "No matching distribution" in install.stderr:
                    pytest.skip(f"the package index is out of reach: {install.stderr.strip().splitlines()[-1]}")
                raise AssertionError(install.stderr)
            made[key] = python
        return made[key]

    return python_for  # type: ignore[return-value]


@pytest.mark.parametrize("layout", ["files", "parquet", "webdataset"])
def test_the_cards_lines_load_the_first_clip_with_the_newest_releases_in_a_fresh_venv(
        tmp_path: Path, mirror: Mirror, layout: str, fresh) -> None:  # noqa: ANN001
    out = download(tmp_path, mirror, layout)
    packages, script = card_code(out)
    python = fresh(packages)
    (tmp_path / "card.py").write_text(script + PROBE)
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(HF_DATASETS_CACHE=str(tmp_path / "hf-cache"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               PATH="/usr/bin:/bin")  # no ffmpeg of this environment's, no activated venv
    run = subprocess.run([str(python), str(tmp_path / "card.py")], cwd=out, capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    probe = check_probe(run.stdout, out)
    if "datasets" in packages:
        assert int(probe["datasets"].split(".")[0]) >= 5  # today's release, which needs torchcodec to decode audio
