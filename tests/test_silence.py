"""Muted clips, end to end: flagged in every manifest and counted (SILENT_CLIPS = "keep"), or left out as
failed for good with reason "silent" (SILENT_CLIPS = "drop"); manifests from before the measures resume."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from audioset_downloader.fetch.cutter import find_ffmpeg
from tests.conftest import Mirror, run_script, write_config, write_csv


def rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["YTID"]: row for row in csv.DictReader(handle)}


def rows_by_mid(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["mid"]: row for row in csv.DictReader(handle)}


@pytest.fixture
def muted(mirror: Mirror, tmp_path: Path) -> Path:
    """A mirror with one loud video and one muted (digital silence), and the CSV that lists both."""
    mirror.add("loudVideo01")
    subprocess.run([find_ffmpeg(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "anullsrc=r=44100:cl=stereo:d=30", "-c:a", "aac", "-y", str(mirror.root / "mutedVideo1.m4a")],
                   check=True)
    return write_csv(tmp_path / "eval_segments.csv", ['loudVideo01, 10.000, 20.000, "/m/04rlf"',
                                                      'mutedVideo1, 10.000, 20.000, "/m/04rlf"'])


@pytest.mark.parametrize("audio_format", ["wav", "m4a"])  # decoded by the cut; stream-copied then decoded
def test_a_muted_clip_is_kept_and_flagged(tmp_path: Path, mirror: Mirror, muted: Path, audio_format: str) -> None:
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(muted)], OUTPUT_DIR=str(tmp_path / "out"), TIMER=0,
                 BACKEND="direct", YTB_URL_FORMAT=mirror.url_format, AUDIO_FORMAT=audio_format)
    result = run_script("--config", "cfg.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = rows(tmp_path / "out" / "eval_segments.split-pos.csv")
    assert (written["mutedVideo1"]["silent"], written["mutedVideo1"]["peak_dbfs"]) == ("true", "-inf")
    assert written["mutedVideo1"]["silent_share"] == "1.000"
    assert written["loudVideo01"]["silent"] == "false" and float(written["loudVideo01"]["peak_dbfs"]) > -20
    metadata = rows(tmp_path / "out" / "eval_segments" / "metadata.csv")
    assert metadata["mutedVideo1"]["silent"] == "true" and metadata["loudVideo01"]["silent"] == "false"
    summary = json.loads((tmp_path / "out" / "eval_segments.summary.json").read_text())
    assert (summary["written"], summary["silent"]) == (2, 1)
    table = result.stdout.splitlines()
    header = table[0].split()
    assert table[1].split()[header.index("silent")] == "1"
    assert "2 written (direct 2), 0 skipped (already done), 0 failed, 0 invalid rows, 1 of the written silent" in (
        result.stderr)
    card = (tmp_path / "out" / "eval_segments.README.md").read_text()
    assert "Silent clips: 1 of those written hold nothing above -60 dBFS" in card
    assert run_script("--config", "cfg.py", "--report", cwd=tmp_path).returncode == 0
    report = rows_by_mid(tmp_path / "out" / "eval_segments.report.csv")
    assert (report["/m/04rlf"]["written"], report["/m/04rlf"]["silent"]) == ("2", "1")


def test_drop_leaves_a_muted_clip_out_as_failed_for_good(tmp_path: Path, mirror: Mirror, muted: Path) -> None:
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(muted)], OUTPUT_DIR=str(tmp_path / "out"), TIMER=0,
                 BACKEND="direct", YTB_URL_FORMAT=mirror.url_format, SILENT_CLIPS="drop")
    dry = run_script("--config", "cfg.py", "--dry-run", cwd=tmp_path)
    assert 'silent clips: left out, recorded in failed.csv as "silent" (SILENT_CLIPS = "drop")' in dry.stdout
    doctor = run_script("--config", "cfg.py", "--doctor", cwd=tmp_path)
    assert "silent clips" in doctor.stdout and 'SILENT_CLIPS = "drop"' in doctor.stdout
    assert run_script("--config", "cfg.py", cwd=tmp_path).returncode == 0
    assert set(rows(tmp_path / "out" / "eval_segments.split-pos.csv")) == {"loudVideo01"}
    failed = rows(tmp_path / "out" / "eval_segments.failed.csv")
    assert set(failed) == {"mutedVideo1"} and failed["mutedVideo1"]["reason"] == "silent"
    assert "nothing rises above -60 dBFS" in failed["mutedVideo1"]["detail"]
    assert sorted(path.name for path in (tmp_path / "out" / "eval_segments").iterdir()) == [
        "loudVideo01.wav", "metadata.csv"]  # never renamed into place, no temporary left
    requests = sum(mirror.server.requests.values())
    again = run_script("--config", "cfg.py", cwd=tmp_path)  # failed for good: not fetched again
    assert again.returncode == 0 and sum(mirror.server.requests.values()) == requests


def test_a_manifest_from_before_the_measures_resumes_with_them_empty(tmp_path: Path, mirror: Mirror,
                                                                     muted: Path) -> None:
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(muted)], OUTPUT_DIR=str(tmp_path / "out"), TIMER=0,
                 BACKEND="direct", YTB_URL_FORMAT=mirror.url_format)
    out = tmp_path / "out"
    (out / "eval_segments").mkdir(parents=True)
    (out / "eval_segments" / "loudVideo01.wav").write_bytes(b"an old clip")
    (out / "eval_segments.split-pos.csv").write_text(
        "file,YTID,start_seconds,end_seconds,positive_labels,label_names,backend,member\n"
        "eval_segments/loudVideo01.wav,loudVideo01,10.000,20.000,/m/04rlf,Music,pytube,\n")
    assert run_script("--config", "cfg.py", cwd=tmp_path).returncode == 0
    assert mirror.requests_for("loudVideo01") == 0  # done before: not fetched again
    written = rows(out / "eval_segments.split-pos.csv")
    assert [written["loudVideo01"][column] for column in ("backend", "peak_dbfs", "silent")] == ["pytube", "", ""]
    assert written["mutedVideo1"]["silent"] == "true"


@pytest.mark.parametrize("layout", ["files", "webdataset"])
def test_verify_measures_clips_recorded_before_the_measures_and_repair_writes_them_in(
        tmp_path: Path, mirror: Mirror, muted: Path, layout: str) -> None:
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(muted)], OUTPUT_DIR=str(tmp_path / "out"), TIMER=0,
                 BACKEND="direct", YTB_URL_FORMAT=mirror.url_format, OUTPUT_LAYOUT=layout, SHARD_SIZE=2)
    assert run_script("--config", "cfg.py", cwd=tmp_path).returncode == 0
    out = tmp_path / "out"
    split_pos = out / "eval_segments.split-pos.csv"
    measured = rows(split_pos)
    measure_columns = ("peak_dbfs", "rms_dbfs", "silent_share", "silent", "duration_seconds")
    # As an older version wrote them: no measure columns in split-pos.csv, empty cells in metadata.csv.
    with open(split_pos, newline="") as handle:
        table = list(csv.reader(handle))
    split_pos.write_text("".join(",".join(line[:8]) + "\n" for line in table))
    metadata = out / "eval_segments" / "metadata.csv"
    if layout == "files":
        with open(metadata, newline="") as handle:
            lines = list(csv.reader(handle))
        for line in lines[1:]:
            line[7:12] = [""] * 5
        with open(metadata, "w", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(lines)
    else:  # and samples packed without them
        shard = out / measured["mutedVideo1"]["file"]
        with tarfile.open(shard) as tar:
            members = [(info, tar.extractfile(info).read()) for info in tar]
        with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
            for info, body in members:
                if info.name.endswith(".json"):
                    body = json.dumps({k: v for k, v in json.loads(body).items() if k not in measure_columns}).encode()
                    info.size = len(body)
                tar.addfile(info, io.BytesIO(body))

    checked = run_script("--config", "cfg.py", "--verify", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 clips recorded before clips were measured, measured now (1 silent); --verify --repair writes" in (
        checked.stdout)
    assert rows(split_pos)["mutedVideo1"].get("silent") is None  # --verify alone changes nothing

    repaired = run_script("--config", "cfg.py", "--verify", "--repair", cwd=tmp_path)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    after = rows(split_pos)
    for ytid in ("loudVideo01", "mutedVideo1"):
        assert [after[ytid][c] for c in measure_columns] == [measured[ytid][c] for c in measure_columns]
    if layout == "files":
        in_metadata = rows(metadata)
        assert [in_metadata["mutedVideo1"][c] for c in measure_columns] == [measured["mutedVideo1"][c]
                                                                           for c in measure_columns]
    else:  # the shard's json, as a loader reads it
        member = after["mutedVideo1"]["member"].partition(".")[0] + ".json"
        with tarfile.open(out / after["mutedVideo1"]["file"]) as tar:
            sample = json.loads(tar.extractfile(member).read())
        assert (sample["silent"], sample["peak_dbfs"], sample["silent_share"]) == (True, None, 1.0)
        assert sample["YTID"] == "mutedVideo1"
    again = run_script("--config", "cfg.py", "--verify", cwd=tmp_path)
    assert "measured now" not in again.stdout and " 0 problems" in again.stdout
