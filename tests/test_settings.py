"""Settings: the shipped config, and every kind of bad value failing before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from audioset_downloader import cli
from audioset_downloader.errors import ConfigError
from audioset_downloader.inputs.settings import Settings, load_settings
from tests.conftest import REPO, write_config, write_csv


def test_shipped_config_has_the_documented_values() -> None:
    settings = load_settings(REPO / "download_configs.py")
    assert settings == Settings(
        csv_file_names=(Path("data/eval_segments.csv"),),
        ytb_url_format="https://www.youtube.com/watch?v={YTID}",
        timer=9, down_highest_quality=False, remove_exist_downloads=False,
        output_dir=Path("downloads"), backend="pytube", audio_format="wav",
        sample_rate=None, channels=None,
    )
    assert settings.clip_limit == 10  # TIMER=9 attempts 10, as the original script


@pytest.mark.parametrize(("timer", "limit"), [(3, 4), (0, None), (-1, None), (1, 2)])
def test_timer_keeps_the_original_meaning(timer: int, limit: int | None) -> None:
    assert Settings(timer=timer).clip_limit == limit


def _config(tmp_path: Path, **constants: object) -> Path:
    base = {"CSV_FILE_NAMES": [str(write_csv(tmp_path / "x.csv", ['aaaaaaaaaaa, 0.000, 10.000, "/m/a"']))],
            "OUTPUT_DIR": str(tmp_path / "out"), "BACKEND": "direct",
            "YTB_URL_FORMAT": "http://127.0.0.1:9/{YTID}.m4a"}
    base.update(constants)
    return write_config(tmp_path / "cfg.py", **base)


@pytest.mark.parametrize(
    ("constants", "message"),
    [
        ({"TIMER": "3"}, "TIMER must be a whole number"),
        ({"TIMER": True}, "TIMER must be a whole number"),
        ({"BACKEND": "pytub"}, "did you mean 'pytube'?"),
        ({"YTB_URL_FORMAT": "https://www.youtube.com/watch?v="}, "YTB_URL_FORMAT must contain {YTID}"),
        ({"YTB_URL_FORMAT": "file:///data/{YTID}.m4a"}, "must be an http:// or https:// URL"),
        ({"TIMR": 3}, "unknown setting TIMR; did you mean TIMER?"),
        ({"SAMPLE_RATE": -16000}, "SAMPLE_RATE must be from 1000 to 384000"),
        ({"CHANNELS": 2.5}, "CHANNELS must be a whole number"),
        ({"WORKERS": 0}, "WORKERS must be from 1 to 256"),
        ({"AUDIO_FORMAT": "mp3"}, "AUDIO_FORMAT must be one of"),
        ({"DOWN_HIGHEST_QUALITY": "yes"}, "DOWN_HIGHEST_QUALITY must be True or False"),
        ({"CSV_FILE_NAMES": []}, "CSV_FILE_NAMES must be a list of CSV paths"),
        ({"CSV_FILE_NAMES": ["/nonexistent/eval_segments.csv"]},
         "CSV_FILE_NAMES[0]: /nonexistent/eval_segments.csv does not exist"),
        ({"CSV_FILE_NAMES": ["a/x.csv", "b/x.csv"]}, "names 'x' twice"),
        ({"CSV_FILE_NAMES": ["data/.."]}, "rename the file"),
        ({"ENGINE": "spark"}, "ENGINE must be one of 'local', 'dask'"),
        ({"CLIP_SECONDS": 0}, "CLIP_SECONDS must be a number above 0"),
        ({"CLIP_SECONDS": 86400}, "CLIP_SECONDS must be the seconds of a window, at most 3600"),
        ({"COLUMNS": {"ytid": "id"}}, "COLUMNS must be a dict with keys ytid, start and, if the list has one, end"),
        ({"COLUMNS": {"ytid": "id", "start": 3}}, "COLUMNS must name each column by its header text"),
        ({"REUSE_FROM": {"a": 1}}, "REUSE_FROM must be a list of folders"),
        ({"DASK_SCHEDULER": "10.0.0.1"}, 'DASK_SCHEDULER must be "local" (a cluster on this machine) or'),
        ({"SHARD": "3/3"}, 'SHARD must be "K/N" with 0 <= K < N'),
        ({"SHARD_SIZE": 0}, "SHARD_SIZE must be from 1 to 1000000"),
        ({"VIDEO": 1}, "VIDEO must be True or False"),
        ({"OUTPUT_LAYOUT": "tar"}, "OUTPUT_LAYOUT must be one of 'files', 'webdataset'"),
        ({"CLIPS_PER_TAR": 0}, "CLIPS_PER_TAR must be from 1 to 1000000"),
        ({"CLIPS_PER_TAR": 10.5}, "CLIPS_PER_TAR must be a whole number from 1 to 1000000"),
    ],
)
def test_bad_config_stops_with_one_line_naming_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], constants: dict, message: str
) -> None:
    code = cli.main(["--config", str(_config(tmp_path, **constants))])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert not (tmp_path / "out").exists()  # nothing was downloaded or created


def test_config_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "cfg.py"
    path.write_text('"""My settings."""\nTIMER = 3\nBACKEND = "pytub"\n')
    with pytest.raises(ConfigError, match=r"cfg\.py:3: BACKEND must be one of"):
        load_settings(path)


@pytest.mark.parametrize(
    "source",
    [
        "import os\nTIMER = 3\n",
        "CSV_FILE_NAMES = __import__('os').system('touch pwned')\n",
        "TIMER = 3 if True else 4\n",
    ],
)
def test_config_is_read_not_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "cfg.py"
    path.write_text(source)
    with pytest.raises(ConfigError, match=r"cfg\.py:1: .*(only constants|must be a literal)"):
        load_settings(path)
    assert not (tmp_path / "pwned").exists()


def test_flags_override_single_values(tmp_path: Path) -> None:
    config = _config(tmp_path, TIMER=3, WORKERS=4)
    args = cli.build_parser().parse_args(
        ["--config", str(config), "--timer", "0", "--format", "flac", "--sample-rate", "16000", "--no-highest-quality"])
    settings = cli.settings_from_args(args, None)
    assert (settings.timer, settings.workers, settings.audio_format, settings.sample_rate) == (0, 4, "flac", 16000)
    assert settings.backend == "direct" and settings.down_highest_quality is False


def test_bad_flag_value_is_checked_like_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(_config(tmp_path)), "--workers", "0"]) == 2
    assert "command line: WORKERS must be from 1 to 256" in capsys.readouterr().err


def test_dask_engine_without_dask_says_how_to_install_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # as if not installed
    assert cli.main(["--config", str(_config(tmp_path, ENGINE="dask"))]) == 2
    assert capsys.readouterr().err == ('error: ENGINE = "dask" needs dask.distributed, which is not installed; '
                                       'install it with: pip install -e ".[dask]"\n')
    assert not (tmp_path / "out").exists()
