"""Windows from the mirrors: each layout, on the Hub's stand-in, on S3 and in folders, with real FLAC and WAV.

The backend here is the lab HTTP server ("direct"), standing in for YouTube: its request counts per
video show that a window a mirror holds makes no request there, and its audio is the same
time-coded source a copy is cut from, so the audit measures real offsets.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Mirror, run_script, write_config, write_csv
from tests.support.audio import decode, window_offset
from tests.support.copies import files_copy, parquet_copy, webdataset_copy, window_bytes
from tests.support.hub import FakeHub
from tests.test_object_storage import bucket, s3

__all__ = ["bucket", "s3"]  # fixtures, used by name

ROWS = [("mirrorClip1", 30.0, 40.0), ("mirrorClip2", 100.0, 110.0), ("mirrorClip3", 200.0, 210.0),
        ("youtubeOnly", 50.0, 60.0)]
HELD = ROWS[:3]


@pytest.fixture
def lab(mirror: Mirror) -> Mirror:
    """The stand-in for YouTube: every video of ROWS served as the time-coded source."""
    for ytid, _, _ in ROWS:
        mirror.add(ytid)
    return mirror


def setup_list(folder: Path, rows: list[tuple[str, float, float]] = ROWS) -> Path:
    return write_csv(folder / "eval_segments.csv", [f'{y}, {s:.3f}, {e:.3f}, "/m/09x0r"' for y, s, e in rows])


def configure(tmp_path: Path, lab: Mirror, mirrors: list, **constants: object) -> Path:
    settings = dict(CSV_FILE_NAMES=[str(tmp_path / "eval_segments.csv")], OUTPUT_DIR=str(tmp_path / "out"),
                    TIMER=0, BACKEND="direct", YTB_URL_FORMAT=lab.url_format, AUDIO_FORMAT="wav",
                    SAMPLE_RATE=16000, CHANNELS=1, MIRRORS=mirrors, MIRROR_AUDIT=0,
                    CACHE_DIR=str(tmp_path / "cache"))
    settings.update(constants)
    return write_config(tmp_path / "cfg.py", **settings)


def rows_of(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["YTID"]: row for row in csv.DictReader(handle)}


def youtube_requests(lab: Mirror) -> dict[str, int]:
    return {ytid: lab.requests_for(ytid) for ytid, _, _ in ROWS if lab.requests_for(ytid)}


def assert_the_window(path: Path, start: float, seconds: float, rate: int = 16000, channels: int = 1) -> None:
    clip = decode(path)
    assert (clip.rate, clip.channels) == (rate, channels)
    assert abs(clip.duration - seconds) < 0.03
    assert abs(window_offset(clip, start)) < 0.025  # the copy's audio is where the window is


def flac(sources: Path, start: float, seconds: float = 10.0, **kwargs: object) -> bytes:
    return window_bytes(sources / "tone300.m4a", start, seconds, **kwargs)  # type: ignore[arg-type]


def test_a_folder_of_panns_files_serves_its_windows_and_youtube_only_the_rest(tmp_path: Path, lab: Mirror,
                                                                               sources: Path) -> None:
    setup_list(tmp_path)
    files_copy(tmp_path / "panns", {f"Y{y}.wav": flac(sources, s, codec="wav", rate=32000, channels=1)
                                    for y, s, _ in HELD})
    configure(tmp_path, lab, [str(tmp_path / "panns")])
    done = run_script("--config", "cfg.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(youtube_requests(lab)) == {"youtubeOnly"}
    manifest = rows_of(tmp_path / "out" / "eval_segments.split-pos.csv")
    assert {y: manifest[y]["backend"] for y in manifest} == {**{y: "mirror" for y, _, _ in HELD},
                                                             "youtubeOnly": "direct"}
    for ytid, start, end in HELD:
        assert_the_window(tmp_path / "out" / "eval_segments" / f"{ytid}.wav", start, end - start)
    summary = json.loads((tmp_path / "out" / "eval_segments.summary.json").read_text())
    assert summary["mirrored"] == 3 and list(summary["by_mirror"].values()) == [3]
    assert summary["mirror_bytes"] > 0 and "3 of the written from mirrors" in done.stderr, done.stderr


# ---------------------------------------------------------------- the Hub's stand-in, parquet


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    """The Hub's stand-in, reached through HF_ENDPOINT as huggingface_hub reads it; no token unless a test sets one."""
    with FakeHub() as stand_in:
        monkeypatch.setenv("HF_ENDPOINT", stand_in.endpoint)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no token file of this machine's
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        yield stand_in


def agkphysics_like(folder: Path, sources: Path, held: list[tuple[str, float, float]], row_group_size: int = 1,
                    ytid_column: str = "video_id") -> Path:
    """agkphysics/AudioSet's layout: data/eval/*.parquet, video_id, audio {bytes, path} FLAC 48 kHz, labels."""
    rows = [{"audio": flac(sources, start, end - start), "path": f"{ytid}.flac", ytid_column: ytid,
             "labels": ["/m/09x0r"], "human_labels": ["Speech"]} for ytid, start, end in held]
    parquet_copy(folder / "data" / "eval" / "eval-00000.parquet", rows, row_group_size)
    (folder / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n")
    return folder


def test_a_hub_parquet_copy_serves_its_windows_and_a_rerun_reads_nothing_again(tmp_path: Path, lab: Mirror,
                                                                               sources: Path, hub: FakeHub) -> None:
    setup_list(tmp_path)
    commit = hub.add("agkphysics/AudioSet", agkphysics_like(tmp_path / "repo", sources, HELD))
    configure(tmp_path, lab, ["hf://datasets/agkphysics/AudioSet"], AUDIO_FORMAT="flac", SAMPLE_RATE=22050,
              CHANNELS=2)
    done = run_script("--config", "cfg.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(youtube_requests(lab)) == {"youtubeOnly"}  # held windows: no request to "YouTube"
    for ytid, start, end in HELD:
        assert_the_window(tmp_path / "out" / "eval_segments" / f"{ytid}.flac", start, end - start, 22050, 2)
    summary = json.loads((tmp_path / "out" / "eval_segments.summary.json").read_text())
    assert summary["by_mirror"] == {f"hf://datasets/agkphysics/AudioSet@{commit[:12]}": 3}
    # Indexing read the footer (and the statistics of one-row row groups), never the audio: each clip's bytes once.
    clip_bytes = sum(len(flac(sources, s, e - s)) for _, s, e in HELD)
    assert clip_bytes <= hub.bytes_sent("agkphysics/AudioSet") <= clip_bytes * 1.2
    card = (tmp_path / "out" / "eval_segments.README.md").read_text()
    assert f"`hf://datasets/agkphysics/AudioSet@{commit[:12]}` | 3 |" in card

    hub.server.reset_counts()
    hub.reads.clear()
    lab.server.reset_counts()
    (tmp_path / "out" / "eval_segments" / "mirrorClip2.flac").unlink()  # one clip lost: taken again, alone
    again = run_script("--config", "cfg.py", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert youtube_requests(lab) == {}
    # One question to the Hub per process (the revision's commit), no listing: the index is the commit's.
    assert hub.api_requests() <= 2 and not any("/tree/" in path for path in hub.server.requests)
    assert len(hub.reads) == 1  # the lost clip's row group; no footer, no listing, no other clip
    assert len(rows_of(tmp_path / "out" / "eval_segments.split-pos.csv")) == 4


def test_an_audiocaps_copy_serves_windows_by_video_and_start(tmp_path: Path, lab: Mirror, sources: Path,
                                                             hub: FakeHub) -> None:
    (tmp_path / "audiocaps_val.csv").write_text("audiocap_id,youtube_id,start_time,caption\n"
                                                "1,mirrorClip1,30,a dog\n2,mirrorClip2,100,a car\n"
                                                "3,youtubeOnly,50,rain\n")
    rows = [{"audio": flac(sources, 30.0), "audiocap_id": 1, "youtube_id": "mirrorClip1", "start_time": 30,
             "caption": "a dog"},
            # the same video at another start is another window: not this list's
            {"audio": flac(sources, 90.0), "audiocap_id": 2, "youtube_id": "mirrorClip2", "start_time": 90,
             "caption": "a car"}]
    parquet_copy(tmp_path / "repo" / "data" / "val-00000.parquet", rows, row_group_size=100)
    hub.add("jp1924/AudioCaps", tmp_path / "repo")
    configure(tmp_path, lab, ["hf://datasets/jp1924/AudioCaps"], CSV_FILE_NAMES=[str(tmp_path / "audiocaps_val.csv")])
    done = run_script("--config", "cfg.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    manifest = rows_of(tmp_path / "out" / "audiocaps_val.split-pos.csv")
    assert {y: r["backend"] for y, r in manifest.items()} == {"mirrorClip1": "mirror", "mirrorClip2": "direct",
                                                              "youtubeOnly": "direct"}
    assert_the_window(tmp_path / "out" / "audiocaps_val" / "mirrorClip1.wav", 30.0, 10.0)


def test_a_copy_named_by_video_alone_serves_another_list_only_where_the_window_is_audiosets(
        tmp_path: Path, lab: Mirror, sources: Path) -> None:
    # AudioSet's window of mirrorClip1 is 30-40 (the run's AudioSet list says so); AudioCaps names 30 and 70.
    setup_list(tmp_path, [("mirrorClip1", 30.0, 40.0)])
    (tmp_path / "audiocaps_val.csv").write_text("audiocap_id,youtube_id,start_time,caption\n"
                                                "1,mirrorClip1,30,same window\n2,mirrorClip2,70,not audioset's\n")
    write_csv(tmp_path / "other_segments.csv", ['mirrorClip2, 100.000, 110.000, "/m/09x0r"'])
    files_copy(tmp_path / "panns", {"YmirrorClip1.wav": flac(sources, 30.0, codec="wav"),
                                    "YmirrorClip2.wav": flac(sources, 100.0, codec="wav")})
    configure(tmp_path, lab, [str(tmp_path / "panns")],
              CSV_FILE_NAMES=[str(tmp_path / "eval_segments.csv"), str(tmp_path / "audiocaps_val.csv"),
                              str(tmp_path / "other_segments.csv")])
    done = run_script("--config", "cfg.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    caps = rows_of(tmp_path / "out" / "audiocaps_val.split-pos.csv")
    assert caps["mirrorClip1"]["backend"] in ("mirror", "reused") and caps["mirrorClip2"]["backend"] == "direct"
    assert_the_window(tmp_path / "out" / "audiocaps_val" / "mirrorClip2.wav", 70.0, 10.0)


# ---------------------------------------------------------------- webdataset on S3, and copies that fail


def test_confit_style_shards_on_s3_serve_their_windows_by_the_json_id(tmp_path: Path, lab: Mirror, sources: Path,
                                                                       s3: Any, bucket: str) -> None:
    setup_list(tmp_path)
    samples = [({"id": f"Y{ytid}", "label": ["Speech"], "label_id": [0]},
                flac(sources, start, codec="wav", rate=16000, channels=1), "wav") for ytid, start, _ in HELD]
    samples.insert(1, ({"id": "YnotInTheList", "label": []}, flac(sources, 5.0, codec="wav", rate=16000), "wav"))
    for shard in webdataset_copy(tmp_path / "wds", samples, per_shard=2):
        s3.put_file(str(shard), f"{bucket}/2m/train/{shard.name}")
    configure(tmp_path, lab, [f"s3://{bucket}/2m"], SAMPLE_RATE=16000)
    done = run_script("--config", "cfg.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    manifest = rows_of(tmp_path / "out" / "eval_segments.split-pos.csv")
    assert {y: r["backend"] for y, r in manifest.items()} == {**{y: "mirror" for y, _, _ in HELD},
                                                              "youtubeOnly": "direct"}
    for ytid, start, end in HELD:
        assert_the_window(tmp_path / "out" / "eval_segments" / f"{ytid}.wav", start, end - start)
    assert set(youtube_requests(lab)) == {"youtubeOnly"}


def test_a_copy_that_does_not_decode_or_is_not_the_window_goes_to_the_backend(tmp_path: Path, lab: Mirror,
                                                                                sources: Path) -> None:
    setup_list(tmp_path)
    good = flac(sources, 30.0)
    damaged = bytearray(flac(sources, 100.0))
    damaged[len(damaged) // 2: len(damaged) // 2 + 4000] = os.urandom(4000)  # frames that fail their CRC
    files_copy(tmp_path / "copies", {"mirrorClip1.flac": good, "mirrorClip2.flac": bytes(damaged),
                                     "mirrorClip3.flac": flac(sources, 200.0, 25.0)})  # 25 s: not a 10 s window
    configure(tmp_path, lab, [str(tmp_path / "copies")])
    done = run_script("--config", "cfg.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    manifest = rows_of(tmp_path / "out" / "eval_segments.split-pos.csv")
    assert {y: r["backend"] for y, r in manifest.items()} == {"mirrorClip1": "mirror", "mirrorClip2": "direct",
                                                              "mirrorClip3": "direct", "youtubeOnly": "direct"}
    log = (tmp_path / "out" / "eval_segments_dl.log").read_text()
    assert "mirrorClip2: the copy in MIRRORS[0]" in log and "does not decode" in log
    assert "mirrorClip3: the copy in MIRRORS[0]" in log and "lasts 25.00 s, not the window's 10 s" in log
    for ytid, start, end in ROWS:
        assert_the_window(tmp_path / "out" / "eval_segments" / f"{ytid}.wav", start, end - start)


# ---------------------------------------------------------------- the audit


@pytest.mark.parametrize("shift_s", [0.0, 0.2])
def test_the_audit_measures_each_copy_against_youtube_and_drops_a_mirror_off_its_windows(
        tmp_path: Path, lab: Mirror, sources: Path, shift_s: float) -> None:
    setup_list(tmp_path)
    files_copy(tmp_path / "copies", {f"{y}.flac": flac(sources, s + shift_s) for y, s, _ in HELD})
    configure(tmp_path, lab, [str(tmp_path / "copies")], MIRROR_AUDIT=2)
    done = run_script("--config", "cfg.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "eval_segments.summary.json").read_text())
    [audit] = summary["mirror_audit"]
    assert audit["measured"] == 2 and abs(audit["offset_ms"] - shift_s * 1000) < 25 and audit["agreement"] > 0.9
    manifest = rows_of(tmp_path / "out" / "eval_segments.split-pos.csv")
    backends = {y: r["backend"] for y, r in manifest.items() if y != "youtubeOnly"}
    card = (tmp_path / "out" / "eval_segments.README.md").read_text()
    if shift_s:
        assert audit["kept"] is False and set(backends.values()) == {"direct"}
        assert done.stderr.count("dropped for this run") == 1 and "over 50 ms away from their window" in done.stderr
    else:
        assert audit["kept"] is True and set(backends.values()) == {"mirror"}
        assert f"| {audit['offset_ms']:+.1f} ms | {audit['agreement']:.3f} |" in card
        for ytid, start, end in HELD:
            assert_the_window(tmp_path / "out" / "eval_segments" / f"{ytid}.wav", start, end - start)
    # Measured once: a rerun's audit asks YouTube nothing again.
    lab.server.reset_counts()
    assert run_script("--config", "cfg.py", cwd=tmp_path).returncode == 0
    assert youtube_requests(lab) == {}


# ---------------------------------------------------------------- a kill, then a rerun


def test_sigkill_mid_run_then_a_rerun_reads_no_copy_twice_and_asks_youtube_for_no_held_window(
        tmp_path: Path, lab: Mirror, sources: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    held = [(f"heldVideo{n:02d}", 10.0 + n, 20.0 + n) for n in range(12)]
    setup_list(tmp_path, held)
    with FakeHub(bandwidth_bps=400_000) as slow:  # slow enough that the kill lands mid-run
        monkeypatch.setenv("HF_ENDPOINT", slow.endpoint)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        slow.add("agkphysics/AudioSet", agkphysics_like(tmp_path / "repo", sources, held))
        configure(tmp_path, lab, ["hf://datasets/agkphysics/AudioSet"], MIRROR_WORKERS=2)
        manifest = tmp_path / "out" / "eval_segments.split-pos.csv"
        process = subprocess.Popen([sys.executable, str(REPO / "AudioDownloader.py"), "--config", "cfg.py"],
                                   cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not manifest.exists() or len(rows_of(manifest)) < 3):
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        first = len(rows_of(manifest))
        assert 3 <= first < len(held), "the kill came too late to test anything"
        again = run_script("--config", "cfg.py", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        written = rows_of(manifest)
        assert len(written) == len(held) and {r["backend"] for r in written.values()} == {"mirror"}
        assert youtube_requests(lab) == {}
        # Each row group (one clip each) read once, but for the ones in flight at the kill (at most MIRROR_WORKERS).
        ranges = [read for read in slow.reads if read[1]]
        repeated = len(ranges) - len(set(ranges))
        assert repeated <= 2, ranges
        for ytid, start, end in held:
            assert_the_window(tmp_path / "out" / "eval_segments" / f"{ytid}.wav", start, end - start)


# ---------------------------------------------------------------- bad input, secrets


@pytest.mark.parametrize(("url", "said"), [
    ("hf://datasets/nobody/NoSuchSet", "MIRRORS[0] hf://datasets/nobody/NoSuchSet: no such dataset repo"),
    ("hf://datasets/agkphysics/AudioSet@v9", "the repo has no revision 'v9'"),
    ("hf://datasets/gated/AudioSet", "the repo is gated; accept its terms on the Hub, then set HF_TOKEN"),
    ("{folder}", "holds no file of a known layout"),
    ("hf://datasets/x", "MIRRORS entry 0: must be hf://datasets/owner/name"),
])
def test_a_bad_mirror_is_one_line_and_exit_2_before_any_clip(tmp_path: Path, lab: Mirror, sources: Path, hub: FakeHub,
                                                            url: str, said: str) -> None:
    setup_list(tmp_path)
    hub.add("agkphysics/AudioSet", agkphysics_like(tmp_path / "repo", sources, HELD[:1]))
    hub.add("gated/AudioSet", tmp_path / "repo", gated=True)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.txt").write_text("no audio here")
    configure(tmp_path, lab, [url.format(folder=tmp_path / "notes")])
    done = run_script("--config", "cfg.py", cwd=tmp_path)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and said in errors[0], done.stderr
    assert youtube_requests(lab) == {} and not (tmp_path / "out" / "eval_segments.split-pos.csv").exists()


def test_hf_token_reads_a_gated_copy_and_appears_in_no_output(tmp_path: Path, lab: Mirror, sources: Path,
                                                              hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "hf_SeCrEtToKeN0123456789abcdef"
    monkeypatch.setenv("HF_TOKEN", secret)
    setup_list(tmp_path)
    hub.add("gated/AudioSet", agkphysics_like(tmp_path / "repo", sources, HELD), gated=True)
    configure(tmp_path, lab, ["hf://datasets/gated/AudioSet"])
    done = run_script("--config", "cfg.py", "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3 held by mirrors" in done.stdout and "1 windows not on a mirror" in done.stdout
    run = run_script("--config", "cfg.py", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"Bearer {secret}" in hub.tokens_seen  # the token went where it belongs
    assert {r["backend"] for r in rows_of(tmp_path / "out" / "eval_segments.split-pos.csv").values()} == {
        "mirror", "direct"}
    for text in (done.stdout, done.stderr, run.stdout, run.stderr,
                 *(path.read_text(errors="replace") for path in (tmp_path / "out").glob("*") if path.is_file()),
                 *(path.read_text(errors="replace") for path in (tmp_path / "cache").rglob("*.json"))):
        assert secret not in text
    status = run_script("--config", "cfg.py", "--status", cwd=tmp_path)
    assert "4 written (3 from mirrors)" in status.stdout, status.stdout
    # The bandwidth measured is the next plan's: its time for the mirrors' windows.
    (tmp_path / "out" / "eval_segments" / "mirrorClip1.wav").unlink()
    replan = run_script("--config", "cfg.py", "--dry-run", cwd=tmp_path)
    assert "MB/s last measured" in replan.stdout, replan.stdout


def test_dask_workers_read_the_copies_their_shards_need(tmp_path: Path, lab: Mirror, sources: Path) -> None:
    pytest.importorskip("distributed")
    setup_list(tmp_path)
    files_copy(tmp_path / "copies", {f"{y}.flac": flac(sources, s) for y, s, _ in HELD})
    configure(tmp_path, lab, [str(tmp_path / "copies")], ENGINE="dask", DASK_WORKERS=2, SHARD_SIZE=2)
    done = run_script("--config", "cfg.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    manifest = rows_of(tmp_path / "out" / "eval_segments.split-pos.csv")
    assert {y: r["backend"] for y, r in manifest.items()} == {**{y: "mirror" for y, _, _ in HELD},
                                                              "youtubeOnly": "direct"}
    assert set(youtube_requests(lab)) == {"youtubeOnly"}
    for ytid, start, end in HELD:
        assert_the_window(tmp_path / "out" / "eval_segments" / f"{ytid}.wav", start, end - start)


# ---------------------------------------------------------------- into either layout, local or on object storage


def test_mirror_clips_go_into_webdataset_shards_and_onto_object_storage(tmp_path: Path, lab: Mirror, sources: Path,
                                                                        s3: Any, bucket: str) -> None:
    setup_list(tmp_path)
    files_copy(tmp_path / "copies", {f"{y}.flac": flac(sources, s) for y, s, _ in HELD})
    configure(tmp_path, lab, [str(tmp_path / "copies")], OUTPUT_LAYOUT="webdataset", CLIPS_PER_TAR=2,
              OUTPUT_DIR=f"s3://{bucket}/out", SHARD_SIZE=2, WORKERS=2)
    done = run_script("--config", "cfg.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    local = tmp_path / "fetched"
    s3.get(f"{bucket}/out", str(local), recursive=True)
    manifest = rows_of(local / "eval_segments.split-pos.csv")
    assert {y: r["backend"] for y, r in manifest.items()} == {**{y: "mirror" for y, _, _ in HELD},
                                                              "youtubeOnly": "direct"}
    import tarfile

    for ytid, start, end in HELD:
        row = manifest[ytid]
        with tarfile.open(local / row["file"]) as tar:
            member = tar.extractfile(row["member"])
            assert member is not None
            clip = tmp_path / f"{ytid}.wav"
            clip.write_bytes(member.read())
        assert_the_window(clip, start, end - start)


def test_a_webdataset_copy_is_indexed_from_its_headers_and_json_alone(tmp_path: Path, sources: Path) -> None:
    from audioset_downloader.fetch.mirrors.access import MirrorAccess
    from audioset_downloader.fetch.mirrors.webdataset import WebDatasetLayout
    from audioset_downloader.inputs.settings import MirrorSpec

    clips = {ytid: flac(sources, start, codec="wav", rate=16000, channels=1) for ytid, start, _ in ROWS}
    shards = webdataset_copy(tmp_path / "wds", [({"id": f"Y{y}"}, data, "wav") for y, data in clips.items()],
                             per_shard=2)
    access = MirrorAccess(MirrorSpec(str(tmp_path / "wds")), "MIRRORS[0]", {})
    layout = WebDatasetLayout()
    entries = access.listing()
    copies = [copy for number, entry in enumerate(entries) for copy in layout.copies_in(access, entry, number)]
    assert sorted(copy.ytid for copy in copies) == sorted(clips)
    total = sum(path.stat().st_size for path in shards)
    assert access.bytes_read < 0.02 * total  # headers and JSON: no audio read to find them
    for copy in copies:
        assert layout.read(access, entries[copy.file], copy) == clips[copy.ytid]


def test_a_shorter_copy_keeps_its_real_end_as_a_video_cut_short_does(tmp_path: Path, lab: Mirror, sources: Path,
                                                                      hub: FakeHub) -> None:
    setup_list(tmp_path, [("mirrorClip1", 30.0, 40.0)])
    (tmp_path / "audiocaps_val.csv").write_text("audiocap_id,youtube_id,start_time,caption\n1,mirrorClip2,100,rain\n")
    files_copy(tmp_path / "panns", {"YmirrorClip1.wav": flac(sources, 30.0, 7.0, codec="wav")})
    parquet_copy(tmp_path / "repo" / "data" / "val.parquet",
                 [{"audio": flac(sources, 100.0, 6.0), "youtube_id": "mirrorClip2", "start_time": 100}])
    hub.add("jp1924/AudioCaps", tmp_path / "repo")
    configure(tmp_path, lab, [str(tmp_path / "panns"), "hf://datasets/jp1924/AudioCaps"],
              CSV_FILE_NAMES=[str(tmp_path / "eval_segments.csv"), str(tmp_path / "audiocaps_val.csv")])
    done = run_script("--config", "cfg.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    audioset = rows_of(tmp_path / "out" / "eval_segments.split-pos.csv")["mirrorClip1"]
    # AudioSet's window is its list's: the row keeps it (a rerun finds it done), and says how long the clip is.
    assert (audioset["backend"], audioset["end_seconds"], audioset["duration_seconds"]) == ("mirror", "40.000", "7.000")
    assert_the_window(tmp_path / "out" / "eval_segments" / "mirrorClip1.wav", 30.0, 7.0)
    caps = rows_of(tmp_path / "out" / "audiocaps_val.split-pos.csv")["mirrorClip2"]
    assert (caps["backend"], caps["end_seconds"]) == ("mirror", "106.000")  # a list with no end: the real one
    assert_the_window(tmp_path / "out" / "audiocaps_val" / "mirrorClip2.wav", 100.0, 6.0)
    lab.server.reset_counts()
    assert run_script("--config", "cfg.py", cwd=tmp_path).returncode == 0
    assert youtube_requests(lab) == {} and len(rows_of(tmp_path / "out" / "eval_segments.split-pos.csv")) == 1
