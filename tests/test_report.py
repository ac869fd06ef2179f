"""--report and the dataset card, against outcomes the test arranges and counts on its own."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from audioset_downloader import cli
from tests.conftest import REPO, Mirror, write_config, write_csv
from tests.support.faults import Faults

# (YTID, labels, what the test makes of it): written, unavailable (not on the mirror), server_error (HTTP 500).
PLAN = [
    ("reportok001", "/m/09x0r,/m/0bt9lr", "written"),  # Speech, Dog
    ("reportok002", "/m/0bt9lr", "written"),
    ("reportgone1", "/m/0bt9lr,/m/05tny_", "unavailable"),  # Dog, Bark
    ("reportok003", "/m/05tny_", "written"),
    ("report50001", "/m/09x0r", "server_error"),
    ("reportok004", "/m/09x0r,/m/05tny_,/m/0bt9lr", "written"),
    ("reportgone2", "/m/04rlf", "unavailable"),  # Music
    ("reportlate1", "/m/04rlf,/m/09x0r", "not attempted"),  # past TIMER's limit
    ("reportlate2", "/m/0bt9lr", "not attempted"),
]
KIND = {"written": "written", "unavailable": "permanent", "server_error": "transient", "not attempted": None}
NAMES = {"/m/09x0r": "Speech", "/m/0bt9lr": "Dog", "/m/05tny_": "Bark", "/m/04rlf": "Music"}


def expected_counts() -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for _, labels, outcome in PLAN:
        for mid in labels.split(","):
            counts[mid]["segments"] += 1
            counts[mid][KIND[outcome] or "not_attempted"] += 1
    return counts


@pytest.fixture
def finished_run(tmp_path: Path, mirror: Mirror) -> Path:
    faults = Faults(mirror.server)
    for ytid, _, outcome in PLAN:
        if outcome != "unavailable":
            mirror.add(ytid)
        if outcome == "server_error":
            faults.set(f"/{ytid}.m4a", 500)
    rows = [f'{ytid}, 30.000, 40.000, "{labels}"' for ytid, labels, _ in PLAN] + ["not a row"]
    csv_path = write_csv(tmp_path / "eval_segments.csv", rows)
    config = write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], YTB_URL_FORMAT=mirror.url_format,
                          BACKEND="direct", FALLBACK_BACKENDS=[], OUTPUT_DIR=str(tmp_path / "out"), RETRIES=0,
                          TIMER=6, ONTOLOGY_FILE=str(REPO / "data" / "ontology.json"))
    assert cli.main(["--config", str(config)]) == 0
    return config


def test_report_counts_every_class_exactly_and_draws_it(finished_run: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli.main(["--config", str(finished_run), "--report"]) == 0
    printed = capsys.readouterr().out
    assert f"{tmp_path / 'eval_segments.csv'}: 4 of 9 segments written (44.4 %); 3 failed (permanent 2, " \
           "transient 1); 2 not yet attempted; 1 invalid rows; 4 classes" in printed

    with open(tmp_path / "out" / "eval_segments.report.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected = expected_counts()
    assert {row["mid"] for row in rows} == set(expected)
    for row in rows:
        want = expected[row["mid"]]
        assert row["name"] == NAMES[row["mid"]]
        assert int(row["segments"]) == want["segments"]
        assert int(row["written"]) == want["written"]
        assert int(row["failed_permanent"]) == want["permanent"]
        assert int(row["failed_transient"]) == want["transient"]
        assert int(row["failed_local"]) == 0
        assert int(row["not_attempted"]) == want["not_attempted"]
        assert float(row["availability_percent"]) == pytest.approx(100 * want["written"] / want["segments"], abs=0.01)
    shares = [float(row["availability_percent"]) for row in rows]
    assert shares == sorted(shares)  # least available first

    image = tmp_path / "out" / "eval_segments.report.png"
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(str(image)).shape
    assert width >= 600 and height >= 150


def test_the_dataset_card_says_what_was_downloaded_and_how_to_cite_it(finished_run: Path, tmp_path: Path) -> None:
    card = (tmp_path / "out" / "eval_segments.README.md").read_text()
    assert "| 9 | 4 | 3 | 2 | 44.4 % |" in card
    assert "| `unavailable` | permanent | 2 |" in card and "| `server_error` | transient | 1 |" in card
    assert "Rows in the CSV that are not valid segments: 1. Classes present: 4." in card
    assert "Backends (in the order tried): direct" in card and "Format: wav" in card
    assert 'datasets.load_dataset("csv", data_files="eval_segments/metadata.csv", split="train")' in card
    assert "CC BY 4.0" in card and "gemmeke2017audioset" in card

    # A later run that writes the rest rewrites the card from the manifests: every run so far.
    text = finished_run.read_text().replace("TIMER = 6", "TIMER = 0")
    finished_run.write_text(text)
    assert cli.main(["--config", str(finished_run)]) == 0
    card = (tmp_path / "out" / "eval_segments.README.md").read_text()
    assert "| 9 | 6 | 3 | 0 | 66.7 % |" in card  # the two late ones written; the 500 is still failing
