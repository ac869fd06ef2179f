"""--verify finds every kind of broken output; --repair makes a rerun fetch those clips again."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

from audioset_downloader.fetch.cutter import find_ffmpeg
from tests.conftest import Mirror, run_script, write_config, write_csv

IDS = ["verifyok001", "-verifyok02", "truncated01", "garbage0001", "deleted0001", "rightclip01"]


def test_verify_reports_each_problem_and_repair_lets_a_rerun_fix_them(tmp_path: Path, mirror: Mirror) -> None:
    for ytid in IDS:
        mirror.add(ytid)
    csv_path = write_csv(tmp_path / "eval_segments.csv", [f'{y}, 20.000, 30.000, "/m/09x0r"' for y in IDS])
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], BACKEND="direct", TIMER=0,
                 YTB_URL_FORMAT=mirror.url_format, OUTPUT_DIR=str(tmp_path / "out"))
    assert run_script("--config", "cfg.py", cwd=tmp_path).returncode == 0
    clean = run_script("--config", "cfg.py", "--verify", cwd=tmp_path)
    assert clean.returncode == 0, clean.stdout
    assert clean.stdout.strip().endswith("6 rows checked, 0 problems")

    clips = tmp_path / "out" / "eval_segments"
    data = (clips / "truncated01.wav").read_bytes()
    (clips / "truncated01.wav").write_bytes(data[: len(data) // 2])
    (clips / "garbage0001.wav").write_bytes(b"RIFF" + bytes(5000))
    (clips / "deleted0001.wav").unlink()
    (clips / "stray000001.wav").write_bytes((clips / "rightclip01.wav").read_bytes())

    found = run_script("--config", "cfg.py", "--verify", cwd=tmp_path)
    assert found.returncode == 1
    lines = found.stdout.strip().splitlines()
    assert lines[-1].endswith("6 rows checked, 4 problems")
    problems = dict(line.split(": ", 2)[1:] for line in lines[:-1])
    assert set(problems) == {"truncated01", "garbage0001", "deleted0001", "stray000001.wav"}
    # Half a wav: its header promises more than is there, so decoding stops half way.
    stopped = re.fullmatch(r"file does not decode \(stops at ([\d.]+) s: Invalid data found when processing input\)",
                           problems["truncated01"])
    assert stopped and 4.8 < float(stopped.group(1)) <= 5.01, problems["truncated01"]
    assert problems["garbage0001"].startswith("file does not decode")
    assert problems["deleted0001"] == "file eval_segments/deleted0001.wav is missing"
    assert problems["stray000001.wav"] == "file not in eval_segments.split-pos.csv"

    rates = run_script("--config", "cfg.py", "--verify", "--sample-rate", "16000", cwd=tmp_path)
    assert "rate 44100 Hz, SAMPLE_RATE is 16000" in rates.stdout

    repaired = run_script("--config", "cfg.py", "--verify", "--repair", cwd=tmp_path)
    assert repaired.returncode == 1 and "repaired: 3 rows and 4 files removed" in repaired.stdout
    with open(tmp_path / "out" / "eval_segments.split-pos.csv", newline="") as handle:
        assert sorted(row["YTID"] for row in csv.DictReader(handle)) == ["-verifyok02", "rightclip01", "verifyok001"]
    assert not (clips / "stray000001.wav").exists()
    assert len((clips / "metadata.csv").read_text().splitlines()) == 1 + 3

    mirror.server.reset_counts()
    assert run_script("--config", "cfg.py", cwd=tmp_path).returncode == 0
    assert mirror.requests_for("truncated01") >= 1 and mirror.requests_for("verifyok001") == 0
    again = run_script("--config", "cfg.py", "--verify", cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.strip().endswith("6 rows checked, 0 problems")


def test_repair_needs_verify(tmp_path: Path) -> None:
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=["x.csv"])
    result = run_script("--config", "cfg.py", "--repair", cwd=tmp_path)
    assert result.returncode == 2 and "--repair goes with --verify" in result.stderr


def test_a_row_naming_a_file_outside_the_clip_folder_is_reported_and_the_file_left_alone(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "eval_segments.csv", ['abcdefghijk, 0.000, 10.000, "/m/09x0r"'])
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], BACKEND="direct",
                 YTB_URL_FORMAT="http://127.0.0.1:9/{YTID}.m4a", OUTPUT_DIR=str(tmp_path / "out"))
    (tmp_path / "out" / "eval_segments").mkdir(parents=True)
    precious = tmp_path / "precious.wav"
    precious.write_bytes(b"not the downloader's")
    (tmp_path / "out" / "eval_segments.split-pos.csv").write_text(
        "file,YTID,start_seconds,end_seconds,positive_labels,label_names\n"
        "../precious.wav,abcdefghijk,0.000,10.000,/m/09x0r,Speech\n")
    found = run_script("--config", "cfg.py", "--verify", "--repair", cwd=tmp_path)
    assert found.returncode == 1
    assert f"abcdefghijk: row names a file outside {tmp_path / 'out' / 'eval_segments'}: '../precious.wav'" \
        in found.stdout
    assert precious.read_bytes() == b"not the downloader's"
    assert (tmp_path / "out" / "eval_segments.split-pos.csv").read_text().count("\n") == 1  # the row is gone


def test_verify_finds_a_clip_short_of_its_window_and_one_with_the_wrong_channels(tmp_path: Path,
                                                                                 mirror: Mirror) -> None:
    """Clips that decode cleanly, yet are not what the row promises: only the length and channel checks see them."""
    ids = ["fullclip001", "nearlyfull1", "shortclip01", "stereoclip1"]
    for ytid in ids:
        mirror.add(ytid)
    csv_path = write_csv(tmp_path / "eval_segments.csv", [f'{y}, 20.000, 30.000, "/m/09x0r"' for y in ids])
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], BACKEND="direct", TIMER=0, CHANNELS=1,
                 YTB_URL_FORMAT=mirror.url_format, OUTPUT_DIR=str(tmp_path / "out"))
    assert run_script("--config", "cfg.py", cwd=tmp_path).returncode == 0
    clips = tmp_path / "out" / "eval_segments"

    def remade(ytid: str, *options: str) -> None:
        """The clip rewritten by ffmpeg with ``options``: still a clean wav, as a decoder sees it."""
        source, target = clips / f"{ytid}.wav", tmp_path / f"{ytid}.wav"
        subprocess.run([find_ffmpeg(), "-nostdin", "-loglevel", "error", "-y", "-i", str(source), *options,
                        str(target)], check=True)
        target.replace(source)

    remade("nearlyfull1", "-t", "9.97")  # 30 ms short: within the 50 ms a cut may differ by
    remade("shortclip01", "-t", "9")
    remade("stereoclip1", "-ac", "2")
    found = run_script("--config", "cfg.py", "--verify", cwd=tmp_path)
    assert found.returncode == 1, found.stdout
    lines = found.stdout.strip().splitlines()
    assert lines[-1].endswith("4 rows checked, 2 problems"), lines
    problems = dict(line.split(": ", 2)[1:] for line in lines[:-1])
    assert problems == {"shortclip01": "lasts 9.000 s, its window 10.000 s",
                        "stereoclip1": "2 channels, CHANNELS is 1"}
