"""Reading segment CSVs: Google's real files, and every kind of bad row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audioset_downloader.inputs.segments import InvalidRow, Segment, read_segments
from tests.conftest import REPO, write_csv


@pytest.mark.parametrize("name", ["eval_segments.csv", "balanced_train_segments.csv"])
def test_every_row_of_the_real_audioset_files_parses(name: str) -> None:
    path = REPO / "data" / name
    declared = int(re.search(r"num_segs=(\d+)", path.read_text().splitlines()[1]).group(1))
    rows = list(read_segments(path))
    segments = [row for row in rows if isinstance(row, Segment)]
    assert [row for row in rows if isinstance(row, InvalidRow)] == []
    assert len(segments) == declared  # 20,371 and 22,160
    assert len({s.ytid for s in segments}) == declared
    assert all(1 <= len(s.labels) <= 15 for s in segments)
    assert all(s.labels[0].startswith("/") for s in segments)
    assert all(0 < s.duration <= 10 for s in segments)
    assert all(s.stem == s.ytid for s in segments)
    assert any(s.ytid.startswith("-") for s in segments)
    assert segments[0].line == 4  # after the three comment lines


def test_google_format_and_stripped_files_give_the_same_segments(tmp_path: Path) -> None:
    rows = ['--4gqARaEJE, 0.000, 10.000, "/m/068hy,/m/07q6cd_,/m/0bt9lr,/m/0jbk"',
            "-0DLPzsiXXE, 417.300, 427.300, \"/m/04rlf\""]
    google = list(read_segments(write_csv(tmp_path / "g.csv", rows)))
    stripped = list(read_segments(write_csv(tmp_path / "s.csv", rows, google_header=False)))
    header = list(read_segments(write_csv(tmp_path / "h.csv", ["YTID,start_seconds,end_seconds,positive_labels", *rows],
                                          google_header=False)))
    as_data = [(s.ytid, s.start_ms, s.end_ms, s.labels) for s in google]
    assert as_data == [("--4gqARaEJE", 0, 10000, ("/m/068hy", "/m/07q6cd_", "/m/0bt9lr", "/m/0jbk")),
                       ("-0DLPzsiXXE", 417300, 427300, ("/m/04rlf",))]
    assert [(s.ytid, s.start_ms, s.end_ms, s.labels) for s in stripped] == as_data
    assert [(s.ytid, s.start_ms, s.end_ms, s.labels) for s in header] == as_data
    assert google[1].start_text == "417.300" and google[1].end_text == "427.300"


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ('abcdefghijk, 0.000, 10.000', "expected 4 fields"),
        ('abcdefghijk, 0.000, 10.000, "/m/a", extra', "expected 4 fields"),
        ('../../etc/x, 0.000, 10.000, "/m/a"', "is not 11 characters"),
        ('-i /etc/pwd, 0.000, 10.000, "/m/a"', "is not 11 characters"),
        ('abcdefghij, 0.000, 10.000, "/m/a"', "is not 11 characters"),
        ('abcdefghijk, ten, 20.000, "/m/a"', "must be numbers"),
        ('abcdefghijk, nan, 20.000, "/m/a"', "must be numbers"),
        ('abcdefghijk, -1.000, 9.000, "/m/a"', "is negative"),
        ('abcdefghijk, 10.000, 10.000, "/m/a"', "not after start"),
        ('abcdefghijk, 10.000, 5.000, "/m/a"', "not after start"),
        ('abcdefghijk, 0.000, 10.000, "/m/a,/m/b', "unbalanced quotes"),
    ],
)
def test_a_bad_row_is_reported_with_its_line_and_the_rest_still_read(tmp_path: Path, row: str, problem: str) -> None:
    path = write_csv(tmp_path / "x.csv",
                     ['aaaaaaaaaaa, 0.000, 10.000, "/m/a"', row, 'bbbbbbbbbbb, 1.000, 11.000, "/m/b"'])
    rows = list(read_segments(path))
    assert [type(r).__name__ for r in rows] == ["Segment", "InvalidRow", "Segment"]
    assert rows[1].line == 5 and problem in rows[1].problem
    assert rows[2].ytid == "bbbbbbbbbbb" and rows[2].line == 6


def test_a_video_listed_twice_gets_a_second_file_name(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ['aaaaaaaaaaa, 0.000, 10.000, "/m/a"', 'aaaaaaaaaaa, 30.500, 40.500, "/m/a"'])
    first, second = read_segments(path)
    assert (first.stem, second.stem) == ("aaaaaaaaaaa", "aaaaaaaaaaa_30500")
    assert first.key != second.key


def test_a_row_naming_a_window_already_listed_is_one_clip(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ['aaaaaaaaaaa, 0.000, 10.000, "/m/a"', 'bbbbbbbbbbb, 0.000, 10.000, "/m/b"',
                                          'aaaaaaaaaaa, 20.000, 30.000, "/m/a"', 'aaaaaaaaaaa, 0.000, 10.000, "/m/c"',
                                          'bbbbbbbbbbb, 0.000, 10.000, "/m/b"', 'ccccccccccc, 0.000, 10.000, "/m/c"',
                                          'ccccccccccc, 0.000, 10.000, "/m/c"'])
    rows = list(read_segments(path))
    assert [(row.ytid, row.start_ms, row.stem) for row in rows] == [
        ("aaaaaaaaaaa", 0, "aaaaaaaaaaa"), ("bbbbbbbbbbb", 0, "bbbbbbbbbbb"),
        ("aaaaaaaaaaa", 20000, "aaaaaaaaaaa_20000"), ("ccccccccccc", 0, "ccccccccccc")]
