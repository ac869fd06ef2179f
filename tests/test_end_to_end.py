"""``python AudioDownloader.py`` as a user runs it, against a local mirror of AudioSet."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audioset_downloader.fetch.measure import ClipMeasures
from audioset_downloader.outputs.ledger import MEASURE_COLUMNS
from tests.conftest import REPO, Mirror, run_script, write_config, write_csv
from tests.support.audio import decode, window_offset
from tests.support.server import MediaServer

# A CSV in Google's exact format: a YTID starting with "-", a fractional start, a
# window at a video's end, a video missing from the mirror, and a malformed row.
ROWS = [
    '--4gqARaEJE, 0.000, 10.000, "/m/068hy,/m/07q6cd_,/m/0bt9lr,/m/0jbk"',
    '-0DLPzsiXXE, 137.300, 147.300, "/m/04rlf"',
    'aaaaaaaaaaa, 12.000, 20.000, "/m/09x0r"',
    'missingvid0, 30.000, 40.000, "/m/09x0r"',
    '../../etc/x, 0.000, 10.000, "/m/09x0r"',
    'bbbbbbbbbbb, 290.000, 300.000, "/m/0jbk,/m/068hy"',
]


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def project(tmp_path: Path, mirror: Mirror) -> Path:
    for ytid in ("--4gqARaEJE", "-0DLPzsiXXE", "bbbbbbbbbbb"):
        mirror.add(ytid)
    mirror.add("aaaaaaaaaaa", "tone20.m4a")
    csv_path = write_csv(tmp_path / "eval_segments.csv", ROWS)
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], YTB_URL_FORMAT=mirror.url_format,
                 BACKEND="direct", OUTPUT_DIR=str(tmp_path / "out"), TIMER=0, WORKERS=3)
    return tmp_path


def test_a_full_run_writes_clips_manifests_and_log(project: Path) -> None:
    result = run_script("--config", "cfg.py", cwd=project)
    assert result.returncode == 0, result.stderr
    out = project / "out"

    rows = read_rows(out / "eval_segments.split-pos.csv")
    assert rows[0] == ["file", "YTID", "start_seconds", "end_seconds", "positive_labels", "label_names", "backend",
                       "member", *MEASURE_COLUMNS]
    for row in rows[1:]:  # what each clip holds: the time-coded tones, loud, as long as their windows
        measures = ClipMeasures.from_fields(row[8:])
        assert measures is not None and not measures.silent and measures.silent_share == 0
        assert abs(measures.duration_seconds - (float(row[3]) - float(row[2]))) < 0.03
    assert sorted(row[:8] for row in rows[1:]) == sorted([
        ["eval_segments/--4gqARaEJE.wav", "--4gqARaEJE", "0.000", "10.000", "/m/068hy,/m/07q6cd_,/m/0bt9lr,/m/0jbk",
         "Domestic animals, pets;Squeak;Dog;Animal", "direct", ""],
        ["eval_segments/-0DLPzsiXXE.wav", "-0DLPzsiXXE", "137.300", "147.300", "/m/04rlf", "Music", "direct", ""],
        ["eval_segments/aaaaaaaaaaa.wav", "aaaaaaaaaaa", "12.000", "20.000", "/m/09x0r", "Speech", "direct", ""],
        ["eval_segments/bbbbbbbbbbb.wav", "bbbbbbbbbbb", "290.000", "300.000", "/m/0jbk,/m/068hy",
         "Animal;Domestic animals, pets", "direct", ""],
    ])
    # The labels are one quoted field in the file itself, as in Google's CSVs.
    assert '"/m/0jbk,/m/068hy"' in (out / "eval_segments.split-pos.csv").read_text()

    failed = read_rows(out / "eval_segments.failed.csv")
    assert failed[0] == ["YTID", "start_seconds", "end_seconds", "reason", "detail"]
    by_id = {row[0]: row for row in failed[1:]}
    assert set(by_id) == {"missingvid0", "../../etc/x"}
    assert by_id["missingvid0"][1:4] == ["30.000", "40.000", "unavailable"]
    assert "404" in by_id["missingvid0"][4]
    assert by_id["../../etc/x"][3] == "invalid_row" and "line 8" in by_id["../../etc/x"][4]

    for row in rows[1:]:
        clip = decode(out / row[0])
        start, end = float(row[2]), float(row[3])
        assert abs(clip.duration - (end - start)) < 0.02
        assert abs(window_offset(clip, start)) < 0.02
    assert sorted(p.name for p in (out / "eval_segments").iterdir()) == sorted(
        ["--4gqARaEJE.wav", "-0DLPzsiXXE.wav", "aaaaaaaaaaa.wav", "bbbbbbbbbbb.wav", "metadata.csv"])
    assert not (REPO / "etc").exists() and not (project / "etc").exists()

    log = (out / "eval_segments_dl.log").read_text()
    assert "missingvid0 [30.000-40.000] failed: unavailable" in log
    assert "eval_segments.csv:8: skipped invalid row" in log
    # The console shows the same lines as the log file.
    assert [line for line in result.stderr.splitlines() if "[eval_segments]" in line] == log.splitlines()
    last = result.stderr.strip().splitlines()[-2:]
    assert last[0].endswith("4 written (direct 4), 0 skipped (already done), 1 failed (unavailable 1), 1 invalid rows")
    # Then how the run's one identity did: the 4 written and the 1 the server said was gone.
    assert last[1].endswith("identity default: 5 clips, 0 blocks, 0 requests refused, 0 s cooling, unpaced "
                            "(whole run so far)")
    assert result.stdout.strip().splitlines()[-1] == \
        "identity default: 5 clips, 0 blocks, 0 requests refused, 0 s cooling, unpaced"
    summary = json.loads((out / "eval_segments.summary.json").read_text())
    assert (summary["written"], summary["failed"], summary["invalid_rows"]) == (4, {"unavailable": 1}, 1)
    assert summary["by_identity"] == {"default": 4}


def test_rerun_skips_finished_clips_and_writes_no_duplicates(project: Path, mirror: Mirror) -> None:
    assert run_script("--config", "cfg.py", cwd=project).returncode == 0
    out = project / "out"
    before = {p.name: p.stat().st_mtime_ns for p in (out / "eval_segments").iterdir()}
    mirror.server.reset_counts()

    second = run_script("--config", "cfg.py", cwd=project)
    assert second.returncode == 0
    assert "0 written, 4 skipped (already done), 0 failed" in second.stderr
    assert "1 skipped (failed for good before" in second.stderr
    assert mirror.requests_for("--4gqARaEJE") == 0  # not fetched again
    assert mirror.requests_for("missingvid0") == 0  # a 404 is permanent: not tried again
    assert {p.name: p.stat().st_mtime_ns for p in (out / "eval_segments").iterdir()} == before
    assert len(read_rows(out / "eval_segments.split-pos.csv")) == 1 + 4
    assert len(read_rows(out / "eval_segments.failed.csv")) == 1 + 2

    with open(project / "cfg.py", "a") as config:
        config.write("RETRY_FAILED = True\n")
    third = run_script("--config", "cfg.py", cwd=project)
    assert "1 failed (unavailable 1)" in third.stderr
    assert mirror.requests_for("missingvid0") == 1
    assert len(read_rows(out / "eval_segments.failed.csv")) == 1 + 2  # still one row per segment


def test_a_deleted_clip_is_fetched_again_with_one_row(project: Path, mirror: Mirror) -> None:
    assert run_script("--config", "cfg.py", cwd=project).returncode == 0
    out = project / "out"
    (out / "eval_segments" / "bbbbbbbbbbb.wav").unlink()
    mirror.server.reset_counts()
    assert run_script("--config", "cfg.py", cwd=project).returncode == 0
    assert mirror.requests_for("bbbbbbbbbbb") >= 1
    assert (out / "eval_segments" / "bbbbbbbbbbb.wav").is_file()
    ids = [row[1] for row in read_rows(out / "eval_segments.split-pos.csv")[1:]]
    assert sorted(ids) == sorted(["--4gqARaEJE", "-0DLPzsiXXE", "aaaaaaaaaaa", "bbbbbbbbbbb"])


def test_timer_limits_attempts_and_finished_clips_do_not_count(project: Path) -> None:
    out = project / "out"
    first = run_script("--config", "cfg.py", "--timer", "1", "--workers", "1", cwd=project)
    assert first.returncode == 0
    # TIMER=1 attempts 2 clips: the first two valid rows, in CSV order.
    written = sorted(row[1] for row in read_rows(out / "eval_segments.split-pos.csv")[1:])
    assert written == ["--4gqARaEJE", "-0DLPzsiXXE"]
    assert "left for later (TIMER)" in first.stderr

    second = run_script("--config", "cfg.py", "--timer", "1", "--workers", "1", cwd=project)
    assert "2 skipped (already done)" in second.stderr
    written = sorted(row[1] for row in read_rows(out / "eval_segments.split-pos.csv")[1:])
    assert written == ["--4gqARaEJE", "-0DLPzsiXXE", "aaaaaaaaaaa"]  # then the next two: aaaa... and missingvid0
    failed = [row[0] for row in read_rows(out / "eval_segments.failed.csv")[1:]]
    assert "missingvid0" in failed and "bbbbbbbbbbb" not in failed


def test_remove_exist_downloads_starts_over(project: Path, mirror: Mirror) -> None:
    assert run_script("--config", "cfg.py", cwd=project).returncode == 0
    out = project / "out"
    stray = out / "eval_segments" / "stray.wav"
    stray.write_bytes(b"old")
    mirror.server.reset_counts()
    again = run_script("--config", "cfg.py", "--remove-existing", cwd=project)
    assert again.returncode == 0
    assert "4 written (direct 4), 0 skipped" in again.stderr
    assert mirror.requests_for("--4gqARaEJE") >= 1
    assert not stray.exists()
    assert len(read_rows(out / "eval_segments.split-pos.csv")) == 1 + 4
    assert len(read_rows(out / "eval_segments.failed.csv")) == 1 + 2


def test_each_csv_runs_in_its_own_process_with_its_own_log(tmp_path: Path, mirror: Mirror) -> None:
    for ytid in ("aaaaaaaaaaa", "bbbbbbbbbbb"):
        mirror.add(ytid)
    first = write_csv(tmp_path / "eval_segments.csv", ['aaaaaaaaaaa, 1.000, 11.000, "/m/a"'])
    second = write_csv(tmp_path / "balanced_train_segments.csv", ['bbbbbbbbbbb, 2.000, 12.000, "/m/b"'])
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(first), str(second)], YTB_URL_FORMAT=mirror.url_format,
                 BACKEND="direct", OUTPUT_DIR=str(tmp_path / "out"))
    result = run_script("--config", "cfg.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    pids = set()
    for name, ytid in (("eval_segments", "aaaaaaaaaaa"), ("balanced_train_segments", "bbbbbbbbbbb")):
        log = (out / f"{name}_dl.log").read_text()
        pids.add(re.search(r"pid (\d+)", log).group(1))
        assert f"{ytid} [" in log and ("bbbbbbbbbbb" if name == "eval_segments" else "aaaaaaaaaaa") not in log
        assert [row[1] for row in read_rows(out / f"{name}.split-pos.csv")[1:]] == [ytid]
    assert len(pids) == 2
    lines = [line.split("] ", 1)[-1] for line in result.stderr.strip().splitlines()]
    assert any(line.startswith(str(first)) and "1 written" in line for line in lines)
    assert any(line.startswith(str(second)) and "1 written" in line for line in lines)


def test_usage_error_exits_2_and_downloads_nothing(tmp_path: Path) -> None:
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=["nowhere.csv"], OUTPUT_DIR=str(tmp_path / "out"))
    result = run_script("--config", "cfg.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: CSV_FILE_NAMES[0]: nowhere.csv does not exist")
    assert not (tmp_path / "out").exists()


def test_ctrl_c_stops_cleanly_with_130_and_a_rerun_finishes(tmp_path: Path, sources: Path) -> None:
    ids = [f"slowvideo{i:02d}" for i in range(12)]
    with MediaServer(tmp_path / "mirror", latency_s=0.4) as slow:
        (tmp_path / "mirror").mkdir(exist_ok=True)
        for ytid in ids:
            (tmp_path / "mirror" / f"{ytid}.m4a").hardlink_to(sources / "tone300.m4a")
        csv_path = write_csv(tmp_path / "eval_segments.csv", [f'{y}, 10.000, 20.000, "/m/a"' for y in ids])
        write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], BACKEND="direct", TIMER=0, WORKERS=2,
                     YTB_URL_FORMAT=slow.base_url + "/{YTID}.m4a", OUTPUT_DIR=str(tmp_path / "out"))
        # A shell's background job (pytest run with &) ignores SIGINT, and its children would inherit that.
        process = subprocess.Popen([sys.executable, str(REPO / "AudioDownloader.py"), "--config", "cfg.py"],
                                   cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        split_pos = tmp_path / "out" / "eval_segments.split-pos.csv"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not split_pos.exists() or len(read_rows(split_pos)) < 2):
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        rows = read_rows(split_pos)[1:]
        assert 1 <= len(rows) < len(ids)
        clips = sorted(p.name for p in (tmp_path / "out" / "eval_segments").iterdir() if p.name != "metadata.csv")
        assert clips == sorted(Path(row[0]).name for row in rows)  # no partial file, no file without its row
        assert len(read_rows(tmp_path / "out" / "eval_segments.failed.csv")) == 1  # interrupted is not failed

        rerun = run_script("--config", "cfg.py", cwd=tmp_path)
        assert rerun.returncode == 0
        assert f"{len(ids) - len(rows)} written (direct {len(ids) - len(rows)}), {len(rows)} skipped" in rerun.stderr
        assert sorted(row[1] for row in read_rows(split_pos)[1:]) == ids


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_dry_run_plans_and_changes_nothing(project: Path, mirror: Mirror) -> None:
    out = project / "out"
    fresh = run_script("--config", "cfg.py", "--dry-run", "--timer", "1", cwd=project)
    assert fresh.returncode == 0, fresh.stderr
    # Nothing learnt yet, and "direct" is a server of unknown limits: unpaced until its first 429, as it says.
    assert fresh.stdout.strip().splitlines() == [
        f"{project / 'eval_segments.csv'} (AudioSet): 6 rows (5 valid, 1 invalid); 0 left out by the label filters, "
        "0 already done, "
        "0 failed for good (skipped), 2 to attempt, 3 left for later (TIMER); time unknown: no pace set",
        "total: 2 clips to attempt; time unknown: no pace set (all CSVs share the identities); pace: 1 unpaced "
        "until the server's first 429 (not YouTube; nothing learnt yet)",
        "identity default: nothing learnt yet",
        'silent clips: kept and flagged in the manifests (SILENT_CLIPS = "keep")']
    assert "eval_segments.csv:8: skipped invalid row" in fresh.stderr
    assert not out.exists() and mirror.server.requests == {}
    # A YouTube backend, nothing learnt: 270 clips an hour, 90 % of a guest's limit.
    youtube = run_script("--config", "cfg.py", "--dry-run", "--timer", "1", "--backend", "pytube", cwd=project)
    assert "about 0:27 at 4.5 clips/min" in youtube.stdout and "1 at 270 clips an hour" in youtube.stdout

    assert run_script("--config", "cfg.py", cwd=project).returncode == 0
    (out / "eval_segments" / "bbbbbbbbbbb.wav").unlink()
    # What earlier runs learnt of the identity: the ETA goes at its pace, and each identity's line says it.
    (out / "identities.json").write_text(json.dumps({"identities": {"default": {
        "per_minute": 2.0, "ceiling": 2.0, "probe_after": 9000, "block_s": 3480.0, "blocks": 3, "bot_checks": 1}}}))
    before = _snapshot(out)
    mirror.server.reset_counts()
    planned = run_script("--config", "cfg.py", "--dry-run", cwd=project)
    lines = planned.stdout.strip().splitlines()
    assert lines[0].endswith(
        "6 rows (5 valid, 1 invalid); 0 left out by the label filters, 3 already done, "
        "1 failed for good (skipped), 1 to attempt, "
        "0 left for later (TIMER); about 0:30 at 2.0 clips/min"), lines
    assert "identity default: pace 120 clips/h; blocks last 58 min; 3 blocks so far (1 bot checks)" in lines
    assert _snapshot(out) == before  # not a byte written, not even the log
    assert mirror.server.requests == {}


def test_many_workers_lose_and_interleave_no_rows(tmp_path: Path, mirror: Mirror) -> None:
    ids = [f"concurren{i:02x}" for i in range(48)]
    for ytid in ids:
        mirror.add(ytid)
    csv_path = write_csv(tmp_path / "eval_segments.csv", [f'{y}, 5.000, 7.000, "/m/a,/m/b"' for y in ids])
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], YTB_URL_FORMAT=mirror.url_format,
                 BACKEND="direct", OUTPUT_DIR=str(tmp_path / "out"), TIMER=0, WORKERS=16)
    assert run_script("--config", "cfg.py", cwd=tmp_path).returncode == 0
    rows = read_rows(tmp_path / "out" / "eval_segments.split-pos.csv")
    assert rows[0] == ["file", "YTID", "start_seconds", "end_seconds", "positive_labels", "label_names", "backend",
                       "member", *MEASURE_COLUMNS]
    assert sorted(row[1] for row in rows[1:]) == sorted(ids)
    assert all(row[:8] == [f"eval_segments/{row[1]}.wav", row[1], "5.000", "7.000", "/m/a,/m/b", "/m/a;/m/b", "direct",
                           ""] and row[-1] == "2.000" for row in rows[1:])
    assert all((tmp_path / "out" / row[0]).stat().st_size > 300_000 for row in rows[1:])
