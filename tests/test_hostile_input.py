"""Hostile input: the two untrusted parsers (segment CSVs, the settings file) and the paths a user names.

Property-based (Hypothesis): whatever the bytes, the segment reader gives rows and
invalid rows with their line, and the settings reader gives settings or the project's
own error naming the file; no other exception. The seeds are the crashes found by hand.
"""

from __future__ import annotations

import os
import re
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audioset_downloader.errors import ConfigError
from audioset_downloader.inputs.segments import MAX_MS, YTID_PATTERN, InvalidRow, Segment, read_segments
from audioset_downloader.inputs.settings import CONSTANTS, Settings, load_settings
from tests.conftest import GOOGLE_HEADER, REPO, Mirror, run_script, write_config, write_csv

GOOD = b'Cbcdefghijk, 1.000, 2.000, "/m/a"\n'
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def read_all(path: Path) -> list[Segment | InvalidRow]:
    return list(read_segments(path))


def check_rows(rows: list[Segment | InvalidRow], lines: int) -> None:
    for row in rows:
        assert type(row) in (Segment, InvalidRow)
        assert 1 <= row.line <= max(lines, 1)
        if type(row) is Segment:
            assert YTID_PATTERN.fullmatch(row.ytid) and 0 <= row.start_ms < row.end_ms <= MAX_MS
        else:
            assert row.problem and all(isinstance(field, str) for field in row.fields)
            "|".join(row.fields).encode("utf-8")  # printable: it goes to failed.csv and the log


# Google's row shape with any bytes in any field: closer to what breaks a parser than noise.
row_bytes = st.tuples(
    st.binary(max_size=14), st.sampled_from([b", ", b",", b" , "]),
    st.one_of(st.binary(max_size=8), st.sampled_from([b"1e308", b"1e309", b"inf", b"-0", b"86400.001", b"1" * 400])),
    st.just(b", "), st.binary(max_size=8), st.just(b', "'), st.binary(max_size=12), st.sampled_from([b'"', b""]),
).map(b"".join)


@FUZZ
@given(st.lists(st.one_of(row_bytes, st.binary(max_size=40)), max_size=8))
@example([b"\xef\xbb\xbf# Segments csv created Sun Mar  5 10:54:31 2017", GOOD])  # a byte-order mark
@example([b'Abcdefghijk, 1e308, 1e309, "x"'])  # infinity, spelled out
@example([b'Abcdefghijk, 1.000, 2.000, "/m/\xff"', GOOD])  # not UTF-8
@example([b'Abcdefghijk, 1.000, 2.000, "/m/a\x00"', GOOD])  # a NUL
@example([b"Abcdefghijk, 0, 1, " + b"x" * 200_000])  # a field past the csv module's limit
def test_any_bytes_give_segments_or_invalid_rows_with_their_line(tmp_path: Path, lines: list[bytes]) -> None:
    path = tmp_path / "fuzz.csv"
    content = b"\n".join(lines)
    path.write_bytes(content)
    check_rows(read_all(path), len(re.split(rb"\r\n|\r|\n", content)))  # a lone CR ends a line too


@FUZZ
@given(st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")))
def test_one_bad_line_spoils_nothing_else(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(GOOGLE_HEADER.format(n=3).encode() + GOOD + garbage + b"\n" + GOOD.replace(b"C", b"D", 1))
    rows = read_all(path)
    check_rows(rows, 6)
    segments = {(row.ytid, row.line) for row in rows if type(row) is Segment}
    assert {("Cbcdefghijk", 4), ("Dbcdefghijk", 6)} <= segments


def test_the_hand_found_crashes_are_invalid_rows_that_say_why(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOGLE_HEADER.format(n=5).encode()
                     + b'Abcdefghijk, 1e308, 1e309, "x"\n'
                     + b'Bbcdefghijk, 0.000, 90000.000, "/m/a"\n'
                     + b'Ebcdefghijk, 1.000, 2.000, "/m/\xff"\n'
                     + b'Fbcdefghijk, 1.000, 2.000, "/m/\x00"\n' + GOOD)
    rows = read_all(path)
    problems = {row.line: row.problem for row in rows if isinstance(row, InvalidRow)}
    assert list(problems) == [4, 5, 6, 7]  # the BOM'd comment line is a comment
    assert "from 0 to 86400" in problems[4] and "from 0 to 86400" in problems[5]
    assert problems[6] == "byte 0xff at column 32 is not UTF-8; save the file as UTF-8"
    assert "NUL" in problems[7]
    assert [(row.ytid, row.line) for row in rows if isinstance(row, Segment)] == [("Cbcdefghijk", 8)]
    assert next(row for row in rows if row.line == 6).fields[3] == '"/m/\\xff"'


def test_a_run_records_the_bad_rows_and_downloads_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "eval_segments.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOGLE_HEADER.format(n=2).encode() + b'Ebcdefghijk, 1.000, 2.000, "/m/\xff"\n'
                     + b'Abcdefghijk, 1e308, 1e309, "x"\n')
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(path)], OUTPUT_DIR=str(tmp_path / "out"))
    dry = run_script("--config", "cfg.py", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "2 rows (0 valid, 2 invalid)" in dry.stdout + dry.stderr
    result = run_script("--config", "cfg.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    failed = (tmp_path / "out" / "eval_segments.failed.csv").read_text(encoding="utf-8").splitlines()
    assert [line.split(",")[0] for line in failed[1:]] == ["Ebcdefghijk", "Abcdefghijk"]
    assert all(",invalid_row," in line for line in failed[1:])
    log = (tmp_path / "out" / "eval_segments_dl.log").read_text()
    # One warning for the file, naming the lines; each row's reason is in failed.csv.
    assert sum("WARNING" in line and "invalid" in line for line in log.splitlines()) == 1, log
    assert f"{path}: skipped 2 invalid rows, on lines 4, 5; the first, line 4: byte 0xff" in log
    assert [line.split(",")[4].split(":")[0] for line in failed[1:]] == ["line 4", "line 5"]


# ---------------------------------------------------------------- paths


def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(("make", "said"), [
    (lambda tmp: (tmp / "folder.csv").mkdir() or tmp / "folder.csv", "is a folder, not a file"),
    (fifo, "is not a regular file"),
])
def test_a_csv_that_is_no_file_is_one_clear_error(tmp_path: Path, make, said: str) -> None:
    path = make(tmp_path)
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(path)], OUTPUT_DIR=str(tmp_path / "out"))
    result = run_script("--config", "cfg.py", cwd=tmp_path)  # a FIFO opened would block: the timeout would end it
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: CSV_FILE_NAMES[0]: {path} {said}")
    assert result.stderr.endswith("; name a segment CSV file\n") and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def as_a_user_bound_by_permissions() -> list[str]:
    """A command prefix under which file permissions hold: root reads any file unless it gives up
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (setpriv, from util-linux)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    prefix = [setpriv or "setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    if setpriv is None or subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root, and setpriv cannot drop root's right to read any file here")
    return prefix


def test_an_unreadable_csv_is_one_clear_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "locked.csv", [GOOD.decode().strip()])
    path.chmod(0)
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(path)], OUTPUT_DIR=str(tmp_path / "out"))
    result = subprocess.run([*as_a_user_bound_by_permissions(), sys.executable, str(REPO / "AudioDownloader.py"),
                             "--config", "cfg.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"error: CSV_FILE_NAMES[0]: {path} cannot be read (permission denied); "
                             "name a segment CSV file\n")


def test_a_config_that_is_a_fifo_or_folder_is_refused(tmp_path: Path) -> None:
    for path in (fifo(tmp_path), tmp_path):
        result = run_script("--config", str(path), cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.startswith(f"error: {path}: the config "), result.stderr


# ---------------------------------------------------------------- the settings file

literals = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
              st.sampled_from([10**400, "data/eval_segments.csv", "a\x00b.csv", "\udcff", "../../x", "{YTID}", ""])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)
names = st.one_of(st.sampled_from(sorted(CONSTANTS)), st.text(string.ascii_letters + "_", min_size=1, max_size=12))


@FUZZ
@given(st.lists(st.tuples(names, literals), max_size=6))
@example([("TIMER", 10**400), ("REQUESTS_PER_MINUTE", 10**400)])
@example([("CSV_FILE_NAMES", ["a\x00b.csv"]), ("OUTPUT_DIR", "\udcff")])
def test_any_constants_give_settings_or_an_error_that_names_the_file(tmp_path: Path, constants: list) -> None:
    path = tmp_path / "cfg.py"
    path.write_text("".join(f"{name} = {value!r}\n" for name, value in constants), encoding="utf-8",
                    errors="surrogateescape")
    try:
        assert isinstance(load_settings(path), Settings)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}:"), exc


@FUZZ
@given(st.binary(max_size=80) | st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")))
@example(b"TIMER = 3\nX = \xff\n")
@example(b"TIMER = 3\x00\n")
@example(b"TIMER = " + b"(" * 200 + b")" * 200 + b"\n")
@example(b"TIMER = 1" + b"0" * 5000 + b"\n")
@example(b"LABELS = {[1]: 2}\n")
def test_any_bytes_as_settings_give_settings_or_an_error_that_names_the_file(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "cfg.py"
    path.write_bytes(data)
    try:
        assert isinstance(load_settings(path), Settings)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}:"), exc


def test_the_shipped_config_is_fine_and_each_seed_says_its_line(tmp_path: Path) -> None:
    assert isinstance(load_settings(REPO / "download_configs.py"), Settings)
    path = tmp_path / "cfg.py"
    for data, said in [(b"TIMER = 3\nX = '\xff'\n", ":2: byte 0xff is not UTF-8"),
                       (b"TIMER = 3\nOUTPUT_DIR = 'a\x00'\n", ":2: holds a NUL byte"),
                       (b"LABELS = {[1]: 2}\n", ":1: LABELS must be a literal"),
                       (b"REQUESTS_PER_MINUTE = 1" + b"0" * 400 + b"\n", ':1: REQUESTS_PER_MINUTE must be "auto"')]:
        path.write_bytes(data)
        with pytest.raises(ConfigError) as caught:
            load_settings(path)
        assert str(caught.value).startswith(f"{path}{said}"), caught.value


# ---------------------------------------------------------------- manifests a user edited or damaged


def test_damaged_manifests_are_reported_kept_and_the_run_goes_on(tmp_path: Path, mirror: Mirror) -> None:
    ids = ["goodvideo01", "goodvideo02", "goodvideo03"]
    for ytid in ids:
        mirror.add(ytid)
    csv_path = write_csv(tmp_path / "eval_segments.csv", [f'{ytid}, 30.000, 40.000, "/m/a"' for ytid in ids])
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], YTB_URL_FORMAT=mirror.url_format,
                 BACKEND="direct", OUTPUT_DIR=str(tmp_path / "out"), TIMER=1)  # two of the three
    assert run_script("--config", "cfg.py", cwd=tmp_path).returncode == 0
    out = tmp_path / "out"
    split_pos, failed = out / "eval_segments.split-pos.csv", out / "eval_segments.failed.csv"
    header, first, second = split_pos.read_bytes().splitlines(keepends=True)
    damage = [b"eval_segments/goodvideo09.wav,goodvideo09,30.0\n",  # torn in the middle
              b'eval_segments/goodvideo08.wav,goodvideo08,30.000,40.000,"/m/a,\n',  # a stray quote
              b"eval_segments/goodvideo07.wav,goodvideo07,30.000,40.000,/m/\xff,Dog,direct\n"]  # not UTF-8
    split_pos.write_bytes(header + first + b"".join(damage) + second)
    failed.write_bytes(b"Ytid;start;end\n\xfe\xff garbage\n")  # a wrong header, a line of garbage
    requests_before = {ytid: mirror.requests_for(ytid) for ytid in ids}

    result = run_script("--config", "cfg.py", "--timer", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = (out / "eval_segments_dl.log").read_text()
    for line in (3, 4, 5):
        assert f"{split_pos}:{line}: skipped a line this tool did not write" in log
    assert f"{failed}:1: skipped" in log and f"{failed}:2: skipped" in log
    # The two clips written are not fetched again; the third is; the user's lines are all still there.
    assert [mirror.requests_for(ytid) - requests_before[ytid] for ytid in ids[:2]] == [0, 0]
    assert mirror.requests_for(ids[2]) > 0
    data = split_pos.read_bytes()
    assert all(data.count(line) == 1 for line in damage) and data.count(first) == 1 and data.count(second) == 1
    # failed.csv gets its header back (new rows must be readable), after which the user's lines stay.
    assert failed.read_bytes() == b"YTID,start_seconds,end_seconds,reason,detail\nYtid;start;end\n\xfe\xff garbage\n"
    metadata = (out / "eval_segments" / "metadata.csv").read_text().splitlines()
    assert sorted(line.split(",")[1] for line in metadata[1:]) == ids  # only the rows that count

    again = run_script("--config", "cfg.py", "--timer", "0", cwd=tmp_path)  # nothing new, nothing twice
    assert again.returncode == 0 and split_pos.read_bytes() == data
