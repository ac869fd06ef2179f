"""Label filters, label names and --list-labels, against the real AudioSet ontology in data/."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from audioset_downloader import cli
from audioset_downloader.engine.runner import plan_csv
from audioset_downloader.inputs.settings import Settings
from tests.conftest import REPO, Mirror, write_config, write_csv

# Dog /m/0bt9lr has the child Bark /m/05tny_; Animal /m/0jbk is an ancestor of both.
ROWS = [
    'dogonly0001, 0.000, 10.000, "/m/0bt9lr"',
    'barkonly001, 0.000, 10.000, "/m/05tny_"',
    'dogspeech01, 0.000, 10.000, "/m/0bt9lr,/m/09x0r"',
    'animalonly1, 0.000, 10.000, "/m/0jbk"',
    'speechonly1, 0.000, 10.000, "/m/09x0r"',
    'musiconly01, 0.000, 10.000, "/m/04rlf"',
]


def planned(tmp_path: Path, **settings: object) -> list[str]:
    csv_path = write_csv(tmp_path / "eval_segments.csv", ROWS)
    config = Settings(csv_file_names=(csv_path,), output_dir=tmp_path / "out", timer=0,
                      ontology_file=REPO / "data" / "ontology.json", **settings)
    import threading

    from audioset_downloader.engine.runner import CsvRun

    run = CsvRun(csv_path, config, threading.Event(), dry_run=True)
    run.ledger.load()
    return [segment.ytid for segment in run.plan()]


@pytest.mark.parametrize(
    ("settings", "kept"),
    [
        ({"labels": ("dog",)}, ["dogonly0001", "dogspeech01"]),  # any case
        ({"labels": ("/m/0bt9lr",)}, ["dogonly0001", "dogspeech01"]),  # or a MID
        ({"labels": ("Dog",), "include_child_labels": True}, ["dogonly0001", "barkonly001", "dogspeech01"]),
        ({"labels": ("Animal",), "include_child_labels": True},
         ["dogonly0001", "barkonly001", "dogspeech01", "animalonly1"]),
        ({"labels": ("Animal",)}, ["animalonly1"]),
        ({"exclude_labels": ("Speech",)}, ["dogonly0001", "barkonly001", "animalonly1", "musiconly01"]),
        ({"labels": ("Dog", "Music"), "exclude_labels": ("Speech",)}, ["dogonly0001", "musiconly01"]),
    ],
)
def test_label_filters(tmp_path: Path, settings: dict, kept: list[str]) -> None:
    assert planned(tmp_path, **settings) == kept


def test_the_dry_run_counts_what_the_filters_leave_out(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "eval_segments.csv", ROWS)
    summary = plan_csv(csv_path, Settings(csv_file_names=(csv_path,), output_dir=tmp_path / "out", timer=0,
                                          labels=("Dog",), include_child_labels=True))
    assert (summary.filtered_out, summary.attempted) == (3, 3)


def test_an_unknown_label_fails_before_any_work_and_suggests(tmp_path: Path, mirror: Mirror,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = write_csv(tmp_path / "eval_segments.csv", ROWS)
    config = write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], OUTPUT_DIR=str(tmp_path / "out"),
                          BACKEND="direct", YTB_URL_FORMAT=mirror.url_format, LABELS=["Dgo"])
    assert cli.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: LABELS: no AudioSet class is called 'Dgo'; closest: ")
    assert "'Dog'" in err
    assert not (tmp_path / "out").exists() and mirror.server.requests == {}


def test_list_labels_prints_matching_classes_with_counts_per_csv(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    first = write_csv(tmp_path / "eval_segments.csv", ROWS)
    second = write_csv(tmp_path / "other.csv", ['somevideo01, 0.000, 10.000, "/m/05tny_,/m/0bt9lr"'])
    assert cli.main(["--list-labels", "bark", "--csv", str(first), "--csv", str(second), "--backend", "direct",
                     "--url-format", "http://127.0.0.1:9/{YTID}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["MID", "name", "eval_segments", "other"]
    bark = next(line for line in lines if line.startswith("/m/05tny_"))
    assert bark.split() == ["/m/05tny_", "Bark", "1", "1"]
    assert all("bark" in line.lower() for line in lines[1:])


def test_label_names_reach_split_pos_and_metadata(tmp_path: Path, mirror: Mirror) -> None:
    mirror.add("dogspeech01")
    csv_path = write_csv(tmp_path / "eval_segments.csv", ['dogspeech01, 10.000, 20.000, "/m/0bt9lr,/m/09x0r"'])
    config = write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], OUTPUT_DIR=str(tmp_path / "out"),
                          BACKEND="direct", YTB_URL_FORMAT=mirror.url_format)
    assert cli.main(["--config", str(config)]) == 0
    with open(tmp_path / "out" / "eval_segments" / "metadata.csv", newline="") as handle:
        metadata = list(csv.reader(handle))
    assert [row[:7] for row in metadata] == [
        ["file_name", "YTID", "start_seconds", "end_seconds", "labels", "label_names", "backend"],
        ["dogspeech01.wav", "dogspeech01", "10.000", "20.000", "/m/0bt9lr,/m/09x0r", "Dog;Speech", "direct"]]
    assert metadata[0][7:] == ["peak_dbfs", "rms_dbfs", "silent_share", "silent", "duration_seconds"]
    assert metadata[1][10:] == ["false", "10.000"]  # the clip's measures follow: a loud tone, ten seconds
