"""No window fetched twice: an AudioCaps list over an AudioSet download takes the clips already on disk."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, Mirror, run_script, write_config, write_csv
from tests.support.audio import decode, window_offset

# tone300 (300 s) videos, and one of tone20 (20 s): AudioSet lists its window cut at the video's end.
AUDIOSET_ROWS = ['reusedClip1, 30.000, 40.000, "/m/09x0r"', 'reusedClip2, 100.000, 110.000, "/m/04rlf"',
                 'shortVideo1, 14.000, 20.000, "/m/04rlf"']
AUDIOCAPS = ("audiocap_id,youtube_id,start_time,caption\n"
             "1,reusedClip1,30,speech\n2,reusedClip2,100,music\n3,shortVideo1,14,a short one\n"
             "4,freshClip01,50,new\n5,reusedClip1,30,speech again\n")


def rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["YTID"]: row for row in csv.DictReader(handle)}


def setup(tmp_path: Path, mirror: Mirror) -> None:
    for ytid in ("reusedClip1", "reusedClip2", "freshClip01"):
        mirror.add(ytid)
    mirror.add("shortVideo1", "tone20.m4a")
    write_csv(tmp_path / "eval_segments.csv", AUDIOSET_ROWS)
    (tmp_path / "audiocaps_val.csv").write_text(AUDIOCAPS)


def config(tmp_path: Path, mirror: Mirror, name: str, csvs: list[str], out: str = "out", **constants: object) -> str:
    write_config(tmp_path / name, CSV_FILE_NAMES=[str(tmp_path / c) for c in csvs], OUTPUT_DIR=str(tmp_path / out),
                 TIMER=0, BACKEND="direct", YTB_URL_FORMAT=mirror.url_format, AUDIO_FORMAT="wav", **constants)
    return name


def requests(mirror: Mirror) -> dict[str, int]:
    return {path.strip("/").split(".")[0]: count for path, count in mirror.server.requests.items() if count}


def assert_window(path: Path, start: float, seconds: float) -> None:
    clip = decode(path)
    assert abs(clip.duration - seconds) < 0.03 and abs(window_offset(clip, start)) < 0.02


def test_audiocaps_over_an_audioset_download_fetches_only_its_new_windows(tmp_path: Path, mirror: Mirror) -> None:
    setup(tmp_path, mirror)
    assert run_script("--config", config(tmp_path, mirror, "audioset.py", ["eval_segments.csv"]),
                      cwd=tmp_path).returncode == 0
    mirror.server.reset_counts()
    caps = config(tmp_path, mirror, "caps.py", ["audiocaps_val.csv"])
    dry = run_script("--config", caps, "--dry-run", cwd=tmp_path)
    assert "4 to attempt (3 on disk already, reused without a request)" in dry.stdout, dry.stdout
    result = run_script("--config", caps, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert set(requests(mirror)) == {"freshClip01"}  # the new window alone went out
    assert "4 written (direct 1, reused 3)" in result.stderr

    out = tmp_path / "out"
    audioset, caps_rows = rows(out / "eval_segments.split-pos.csv"), rows(out / "audiocaps_val.split-pos.csv")
    assert {ytid: row["backend"] for ytid, row in caps_rows.items()} == {
        "reusedClip1": "reused", "reusedClip2": "reused", "shortVideo1": "reused", "freshClip01": "direct"}
    assert (caps_rows["shortVideo1"]["start_seconds"], caps_rows["shortVideo1"]["end_seconds"]) == ("14.000",
                                                                                                    "20.000")
    for ytid in ("reusedClip1", "reusedClip2", "shortVideo1"):
        mine, theirs = out / caps_rows[ytid]["file"], out / audioset[ytid]["file"]
        assert mine != theirs and os.path.samefile(mine, theirs)  # hard-linked: no second copy on disk
    assert_window(out / caps_rows["reusedClip2"]["file"], 100, 10)
    summary = (out / "audiocaps_val.summary.json").read_text()
    assert '"reused": 3' in summary and '"audio_format": "wav"' in summary
    card = (out / "audiocaps_val.README.md").read_text()
    assert card.startswith("# AudioCaps `audiocaps_val.csv`: audio clips")
    assert "Of the clips written, 3 were taken from clips already on disk" in card
    assert "@inproceedings{kim2019audiocaps" in card and "academic use only" in card

    mirror.server.reset_counts()  # a rerun: everything is done, nothing asked for
    again = run_script("--config", caps, cwd=tmp_path)
    assert again.returncode == 0 and requests(mirror) == {} and "0 written" in again.stderr


def test_clips_made_before_clip_settings_were_kept_are_reused_only_when_their_header_proves_them(
        tmp_path: Path, mirror: Mirror) -> None:
    setup(tmp_path, mirror)
    older = config(tmp_path, mirror, "older.py", ["eval_segments.csv"], out="older", SAMPLE_RATE=16000, CHANNELS=1)
    assert run_script("--config", older, cwd=tmp_path).returncode == 0
    summary = tmp_path / "older" / "eval_segments.summary.json"
    recorded = json.loads(summary.read_text())
    del recorded["clip_settings"]  # as a version before they were recorded left it
    summary.write_text(json.dumps(recorded))
    mirror.server.reset_counts()
    # Keeping the source's rate and channels: a 16 kHz mono clip must not pass for one (it did before).
    caps = config(tmp_path, mirror, "caps.py", ["audiocaps_val.csv"], REUSE_FROM=[str(tmp_path / "older")])
    assert run_script("--config", caps, cwd=tmp_path).returncode == 0
    written = rows(tmp_path / "out" / "audiocaps_val.split-pos.csv")
    assert {row["backend"] for row in written.values()} == {"direct"}
    assert decode(tmp_path / "out" / written["reusedClip2"]["file"]).rate == 44100
    # Naming 16 kHz mono, the header proves the old clips: taken without a request.
    mirror.server.reset_counts()
    named = config(tmp_path, mirror, "named.py", ["audiocaps_val.csv"], out="named", SAMPLE_RATE=16000, CHANNELS=1,
                   REUSE_FROM=[str(tmp_path / "older")])
    assert run_script("--config", named, cwd=tmp_path).returncode == 0
    taken = rows(tmp_path / "named" / "audiocaps_val.split-pos.csv")
    assert {ytid: row["backend"] for ytid, row in taken.items() if ytid != "freshClip01"} == {
        "reusedClip1": "reused", "reusedClip2": "reused", "shortVideo1": "reused"}
    assert set(requests(mirror)) == {"freshClip01"}


def test_clips_come_from_another_folders_shards_and_a_damaged_one_is_fetched_instead(tmp_path: Path,
                                                                                      mirror: Mirror) -> None:
    setup(tmp_path, mirror)
    assert run_script("--config", config(tmp_path, mirror, "audioset.py", ["eval_segments.csv"], out="audioset",
                                         OUTPUT_LAYOUT="webdataset", CLIPS_PER_TAR=2),
                      cwd=tmp_path).returncode == 0
    shards = sorted((tmp_path / "audioset" / "eval_segments").glob("*.tar"))
    assert len(shards) == 2 and not list((tmp_path / "audioset" / "eval_segments").glob("*.wav"))
    # A second AudioSet run elsewhere, in the files layout, with one clip damaged on disk.
    write_csv(tmp_path / "eval2.csv", AUDIOSET_ROWS[1:2])
    assert run_script("--config", config(tmp_path, mirror, "second.py", ["eval2.csv"], out="second"),
                      cwd=tmp_path).returncode == 0
    damaged = tmp_path / "second" / "eval2" / "reusedClip2.wav"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    before = damaged.read_bytes()

    mirror.server.reset_counts()
    caps = config(tmp_path, mirror, "caps.py", ["audiocaps_val.csv"], out="caps",
                  REUSE_FROM=[str(tmp_path / "second"), str(tmp_path / "audioset")])
    assert run_script("--config", caps, cwd=tmp_path).returncode == 0
    caps_rows = rows(tmp_path / "caps" / "audiocaps_val.split-pos.csv")
    # reusedClip2 was in both: the damaged copy failed its check, the shard's member did not.
    assert {ytid: row["backend"] for ytid, row in caps_rows.items()} == {
        "reusedClip1": "reused", "reusedClip2": "reused", "shortVideo1": "reused", "freshClip01": "direct"}
    assert set(requests(mirror)) == {"freshClip01"}
    for ytid, start, seconds in (("reusedClip1", 30, 10), ("reusedClip2", 100, 10), ("shortVideo1", 14, 6)):
        assert_window(tmp_path / "caps" / caps_rows[ytid]["file"], start, seconds)
    assert damaged.read_bytes() == before  # a folder reused from is read, never written

    # With every copy damaged, the window is fetched.
    for path in (tmp_path / "caps" / "audiocaps_val").glob("*.wav"):
        path.unlink()
    (tmp_path / "caps" / "audiocaps_val.split-pos.csv").unlink()
    (tmp_path / "caps" / "audiocaps_val" / "metadata.csv").unlink()
    for shard in shards:
        shard.write_bytes(b"not a tar")
    mirror.server.reset_counts()
    assert run_script("--config", caps, cwd=tmp_path).returncode == 0
    assert set(requests(mirror)) == {"reusedClip1", "reusedClip2", "shortVideo1", "freshClip01"}


def test_a_hostile_manifest_to_reuse_from_links_nothing_outside_its_folder(tmp_path: Path, mirror: Mirror) -> None:
    setup(tmp_path, mirror)
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF not yours")
    other = tmp_path / "other"
    (other / "eval_segments").mkdir(parents=True)
    (other / "eval_segments" / "reusedClip2.wav").symlink_to(secret)  # a link that leads out
    header = "file,YTID,start_seconds,end_seconds,positive_labels,label_names,backend,member\n"
    (other / "eval_segments.split-pos.csv").write_text(
        header + f"../../secret.wav,reusedClip1,30.000,40.000,/m/a,,direct,\n"
        f"{secret},shortVideo1,14.000,20.000,/m/a,,direct,\n"
        "eval_segments/reusedClip2.wav,reusedClip2,100.000,110.000,/m/a,,direct,\n"
        "eval_segments/eval_segments-000000.tar,freshClip01,50.000,60.000,/m/a,,direct,../../secret.wav\n")
    caps = config(tmp_path, mirror, "caps.py", ["audiocaps_val.csv"], REUSE_FROM=[str(other)])
    assert run_script("--config", caps, cwd=tmp_path).returncode == 0
    caps_rows = rows(tmp_path / "out" / "audiocaps_val.split-pos.csv")
    assert {row["backend"] for row in caps_rows.values()} == {"direct"}  # each one fetched
    assert set(requests(mirror)) == {"reusedClip1", "reusedClip2", "shortVideo1", "freshClip01"}
    assert os.stat(secret).st_nlink == 1 and secret.read_bytes() == b"RIFF not yours"
    for row in caps_rows.values():
        assert not os.path.samefile(tmp_path / "out" / row["file"], secret)


def test_sigkill_mid_run_then_a_rerun_equals_an_uninterrupted_one(tmp_path: Path, sources: Path) -> None:
    from tests.support.server import MediaServer

    ids = [f"killClip{n:03d}" for n in range(12)]
    (tmp_path / "mirror").mkdir()
    for ytid in ids:
        (tmp_path / "mirror" / f"{ytid}.m4a").hardlink_to(sources / "tone300.m4a")
    audioset_rows = [f'{ytid}, 30.000, 40.000, "/m/a"' for ytid in ids[::2]]  # half of them on disk already
    caps_text = "audiocap_id,youtube_id,start_time,caption\n" + "".join(f"{n},{y},30,c\n" for n, y in enumerate(ids))
    with MediaServer(tmp_path / "mirror", latency_s=0.2) as slow:
        results = {}
        for run in ("uninterrupted", "killed"):
            folder = tmp_path / run
            folder.mkdir()
            write_csv(folder / "eval_segments.csv", audioset_rows)
            (folder / "audiocaps_val.csv").write_text(caps_text)
            for name, csv_name in (("a.py", "eval_segments.csv"), ("c.py", "audiocaps_val.csv")):
                write_config(folder / name, CSV_FILE_NAMES=[str(folder / csv_name)], OUTPUT_DIR=str(folder / "out"),
                             TIMER=0, BACKEND="direct", YTB_URL_FORMAT=slow.base_url + "/{YTID}.m4a", WORKERS=2,
                             AUDIO_FORMAT="wav")
            assert run_script("--config", "a.py", cwd=folder).returncode == 0
            split_pos = folder / "out" / "audiocaps_val.split-pos.csv"
            if run == "killed":
                process = subprocess.Popen([sys.executable, str(REPO / "AudioDownloader.py"), "--config", "c.py"],
                                           cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and (not split_pos.exists() or
                                                       len(split_pos.read_text().splitlines()) < 5):
                    time.sleep(0.01)
                process.send_signal(signal.SIGKILL)
                process.wait()
                assert 4 <= len(split_pos.read_text().splitlines()) - 1 < len(ids)
            assert run_script("--config", "c.py", cwd=folder).returncode == 0
            with open(split_pos, newline="") as handle:
                listed = list(csv.DictReader(handle))
            keys = [(row["YTID"], row["start_seconds"], row["end_seconds"]) for row in listed]
            assert len(keys) == len(set(keys)) == len(ids)  # no row twice
            results[run] = {row["YTID"]: (row["backend"], row["file"]) for row in listed}
            clips = sorted(path.name for path in (folder / "out" / "audiocaps_val").iterdir())
            assert clips == sorted([*(f"{ytid}.wav" for ytid in ids), "metadata.csv"])  # nothing half-written
    assert results["killed"] == results["uninterrupted"]
    assert sum(backend == "reused" for backend, _ in results["killed"].values()) == len(ids) // 2


@pytest.mark.parametrize("folder", ["missing", "a_file"])
def test_reuse_from_must_name_folders(tmp_path: Path, mirror: Mirror, folder: str) -> None:
    setup(tmp_path, mirror)
    (tmp_path / "a_file").write_text("x")
    caps = config(tmp_path, mirror, "caps.py", ["audiocaps_val.csv"], REUSE_FROM=[str(tmp_path / folder)])
    result = run_script("--config", caps, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"error: REUSE_FROM[0]: {tmp_path / folder} is not a folder; "
                             "name another run's OUTPUT_DIR\n")


def test_a_clip_on_another_file_system_is_copied(tmp_path: Path, mirror: Mirror) -> None:
    """A hard link cannot cross file systems: the clip is copied instead (here from tmpfs, /dev/shm)."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system here to copy across")
    import shutil
    import tempfile

    elsewhere = Path(tempfile.mkdtemp(dir=shm))
    try:
        setup(tmp_path, mirror)
        audioset = config(tmp_path, mirror, "audioset.py", ["eval_segments.csv"], out=str(elsewhere / "audioset"))
        assert run_script("--config", audioset, cwd=tmp_path).returncode == 0
        mirror.server.reset_counts()
        caps = config(tmp_path, mirror, "caps.py", ["audiocaps_val.csv"], REUSE_FROM=[str(elsewhere / "audioset")])
        assert run_script("--config", caps, cwd=tmp_path).returncode == 0
        assert set(requests(mirror)) == {"freshClip01"}
        caps_rows = rows(tmp_path / "out" / "audiocaps_val.split-pos.csv")
        theirs = rows(elsewhere / "audioset" / "eval_segments.split-pos.csv")
        mine, source = tmp_path / "out" / caps_rows["reusedClip2"]["file"], elsewhere / "audioset" / theirs[
            "reusedClip2"]["file"]
        assert caps_rows["reusedClip2"]["backend"] == "reused" and not os.path.samefile(mine, source)
        assert mine.read_bytes() == source.read_bytes()
    finally:
        shutil.rmtree(elsewhere)


def test_dask_workers_reuse_as_the_local_engine_does(tmp_path: Path, mirror: Mirror) -> None:
    pytest.importorskip("distributed")
    setup(tmp_path, mirror)
    assert run_script("--config", config(tmp_path, mirror, "audioset.py", ["eval_segments.csv"]),
                      cwd=tmp_path).returncode == 0
    mirror.server.reset_counts()
    caps = config(tmp_path, mirror, "caps.py", ["audiocaps_val.csv"], ENGINE="dask", DASK_SCHEDULER="local",
                  DASK_WORKERS=1)
    result = run_script("--config", caps, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert set(requests(mirror)) == {"freshClip01"}
    caps_rows = rows(tmp_path / "out" / "audiocaps_val.split-pos.csv")
    assert sorted(row["backend"] for row in caps_rows.values()) == ["direct", "reused", "reused", "reused"]


def test_a_window_two_lists_of_one_run_name_is_fetched_once(tmp_path: Path, mirror: Mirror) -> None:
    shared = ["sharedWin00", "sharedWin01", "sharedWin02", "sharedWin03"]
    for ytid in [*shared, "onlyInEval0", "onlyInBal00"]:
        mirror.add(ytid)
    rows_of = {"eval_segments.csv": [*shared, "goneShared0", "onlyInEval0"],
               "balanced_train_segments.csv": [*shared, "goneShared0", "onlyInBal00"]}
    for name, ids in rows_of.items():
        write_csv(tmp_path / name, [f'{ytid}, 30.000, 40.000, "/m/09x0r"' for ytid in ids])
    # One process per CSV, both starting on the shared windows at once: before, each fetched them all.
    result = run_script("--config", config(tmp_path, mirror, "cfg.py", list(rows_of), WORKERS=2), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    evaluation = rows(out / "eval_segments.split-pos.csv")
    balanced = rows(out / "balanced_train_segments.split-pos.csv")
    assert set(evaluation) == {*shared, "onlyInEval0"} and set(balanced) == {*shared, "onlyInBal00"}
    single = mirror.requests_for("onlyInEval0")  # what one fetch of a window costs
    for ytid in shared:
        assert mirror.requests_for(ytid) == single, (ytid, mirror.server.requests)
        assert {evaluation[ytid]["backend"], balanced[ytid]["backend"]} == {"direct", "reused"}
        assert os.path.samefile(out / evaluation[ytid]["file"], out / balanced[ytid]["file"])
        assert_window(out / balanced[ytid]["file"], 30, 10)
    # A window gone for good is asked for once, and both lists record why.
    assert mirror.requests_for("goneShared0") == 1
    for name in ("eval_segments", "balanced_train_segments"):
        assert rows(out / f"{name}.failed.csv")["goneShared0"]["reason"] == "unavailable"
