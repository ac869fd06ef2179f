"""Reliability: faults from the server, throttling, a broken backend, a full disk, kill -9, hostile input."""

from __future__ import annotations

import csv
import itertools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audioset_downloader import cli
from tests.conftest import REPO, Mirror, run_script, write_config, write_csv
from tests.support.fake_youtube import FakeVideo, FakeYouTube
from tests.support.faults import Fault, Faults


def rows_by_id(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["YTID"]: row for row in csv.DictReader(handle)}


def configure(tmp_path: Path, mirror: Mirror, ids: list[str], **constants: object) -> Path:
    csv_path = write_csv(tmp_path / "eval_segments.csv", [f'{ytid}, 30.000, 40.000, "/m/a"' for ytid in ids])
    settings = {"CSV_FILE_NAMES": [str(csv_path)], "YTB_URL_FORMAT": mirror.url_format, "BACKEND": "direct",
                "OUTPUT_DIR": str(tmp_path / "out"), "TIMER": 0, "RETRY_BACKOFF": 0.05}
    settings.update(constants)
    return write_config(tmp_path / "cfg.py", **settings)


def test_each_fault_gets_its_reason_and_only_passing_trouble_is_retried(tmp_path: Path, mirror: Mirror) -> None:
    faults = Faults(mirror.server)
    expected = {  # id: (fault, reason recorded or None when written, attempts refused by the fault)
        "status404xx": (404, "unavailable", 1),
        "status410xx": (410, "unavailable", 1),
        # Refused before any clip had worked, it waits for those in flight and tries once more.
        "status403xx": (403, "backend_error", (1, 2)),
        "status500xx": (500, "server_error", 3),
        "resetmidbod": ("reset", "network", 3),
        "truncatedbo": ("truncate", "network", 3),
        "stalledconn": ("stall", "timeout", 3),
        "recovers500": (Fault(500, times=1), None, 1),
        "throttled42": (Fault(429, times=2), None, 2),
    }
    for ytid, (fault, _, _) in expected.items():
        mirror.add(ytid)
        faults.set(f"/{ytid}.m4a", fault)
    mirror.add("notmediaxxx", "not_media.m4a")
    config = configure(tmp_path, mirror, [*expected, "notmediaxxx"], RETRIES=2, CLIP_TIMEOUT=1.5, WORKERS=4)
    try:
        result = run_script("--config", str(config), cwd=tmp_path)
    finally:
        faults.release.set()
    assert result.returncode == 0, result.stderr

    failed = rows_by_id(tmp_path / "out" / "eval_segments.failed.csv")
    written = rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")
    assert failed.pop("notmediaxxx")["reason"] == "ffmpeg_error"
    for ytid, (_fault, reason, refused) in expected.items():
        if reason is None:
            assert ytid in written and ytid not in failed
            assert mirror.requests_for(ytid) > refused  # then it was fetched
        else:
            assert failed[ytid]["reason"] == reason, (ytid, failed[ytid])
            assert mirror.requests_for(ytid) == faults.struck[f"/{ytid}.m4a"]  # nothing beyond the attempts
        # 1 attempt for what will not mend, 1 + RETRIES for passing trouble.
        assert faults.struck[f"/{ytid}.m4a"] in (refused if isinstance(refused, tuple) else (refused,)), ytid
    assert "retry 1 of 2" in (tmp_path / "out" / "eval_segments_dl.log").read_text()


def test_a_429_storm_cools_the_identity_for_every_worker_and_ends_with_no_failure(
        tmp_path: Path, mirror: Mirror) -> None:
    ids = [f"stormvideo{i}" for i in range(8)]
    for ytid in ids:
        mirror.add(ytid)
    faults = Faults(mirror.server)
    faults.everywhere = Fault(429, times=6)
    config = configure(tmp_path, mirror, ids, WORKERS=4, RETRY_BACKOFF=0.3)
    result = run_script("--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert set(rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")) == set(ids)
    assert rows_by_id(tmp_path / "out" / "eval_segments.failed.csv") == {}
    assert re.search(r"rate limited \(429\) through identity default: blocked; its next probe goes in [\d.]+ s "
                     r"\(RETRY_BACKOFF: nothing learnt of its blocks yet\)", result.stderr), result.stderr
    assert "every identity is blocked, so the run waits" in result.stderr
    # The cooldown holds every worker: after the first refusal no request comes for 0.3 s
    # (give or take a quarter: jitter), except those already under way when it came, one at
    # most from each of the 3 other workers (each refused, its ffmpeg ends). Without it, 4
    # workers retrying at once would send dozens. Counted, not timed to the millisecond.
    first = faults.seen[0][0]
    early = [t for t, _ in faults.seen if 0 < t - first < 0.22]
    assert len(early) <= 3, early


def test_endless_throttling_stops_the_run_cleanly(tmp_path: Path, mirror: Mirror) -> None:
    ids = [f"blockedvid{i}" for i in range(4)]
    for ytid in ids:
        mirror.add(ytid)
    Faults(mirror.server).everywhere = Fault(429)
    config = configure(tmp_path, mirror, ids, WORKERS=2, RETRY_BACKOFF=0.05, MAX_BACKOFF_MINUTES=0.01)
    started = time.monotonic()
    result = run_script("--config", str(config), cwd=tmp_path)
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    assert "rate-limited for over 0.01 minutes" in result.stderr
    assert result.stderr.count("error:") == 1
    # Throttled clips are never recorded as permanent failures.
    assert rows_by_id(tmp_path / "out" / "eval_segments.failed.csv") == {}


def test_a_backend_failing_every_clip_stops_the_run_and_a_rerun_retries(tmp_path: Path, mirror: Mirror) -> None:
    ids = [f"forbidden{i:02d}" for i in range(30)]
    faults = Faults(mirror.server)
    for ytid in ids:
        mirror.add(ytid)
        faults.set(f"/{ytid}.m4a", 403)
    config = configure(tmp_path, mirror, ids, WORKERS=4)
    result = run_script("--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: every backend failed clip after clip for reasons of its own: direct (")
    assert "fix: check that YTB_URL_FORMAT points at your mirror" in errors[0]
    # Three clips tried it (never more at once while it had not worked), and none is blamed on its video.
    assert sum(faults.struck.values()) == 3
    assert rows_by_id(tmp_path / "out" / "eval_segments.failed.csv") == {}

    faults.plan.clear()  # the mirror works again
    again = run_script("--config", str(config), cwd=tmp_path)
    assert again.returncode == 0
    assert set(rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")) == set(ids)
    assert rows_by_id(tmp_path / "out" / "eval_segments.failed.csv") == {}


def test_requests_per_minute_spaces_clip_starts(tmp_path: Path, mirror: Mirror) -> None:
    ids = [f"pacedvideo{i}" for i in range(5)]
    for ytid in ids:
        mirror.add(ytid)
    faults = Faults(mirror.server)
    config = configure(tmp_path, mirror, ids, WORKERS=4, REQUESTS_PER_MINUTE=300)  # one start per 0.2 s
    assert run_script("--config", str(config), cwd=tmp_path).returncode == 0
    firsts = sorted(min(t for t, path in faults.seen if path == f"/{ytid}.m4a") for ytid in ids)
    gaps = [b - a for a, b in itertools.pairwise(firsts)]
    # Seen at the server, a start carries ffmpeg's own start-up time, which jitters when the machine
    # is busy (the suite runs in parallel): the pace shows in the mean gap, and no two start together.
    assert (firsts[-1] - firsts[0]) / len(gaps) > 0.18 and min(gaps) > 0.1, gaps


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux) for a private tmpfs")
def test_a_full_disk_stops_the_run_with_one_message(tmp_path: Path, mirror: Mirror) -> None:
    ids = [f"diskfullvi{i}" for i in range(6)]
    for ytid in ids:
        mirror.add(ytid)
    out = tmp_path / "out"
    out.mkdir()
    config = configure(tmp_path, mirror, ids, WORKERS=2)
    # A 300 kB file system of our own (a private mount namespace): a 10 s wav is 1.7 MB.
    script = (f'mount -t tmpfs -o size=300k tmpfs "{out}" || exit 99; '
              f'"{sys.executable}" "{REPO / "AudioDownloader.py"}" --config "{config}"; echo "exit=$?"; '
              f'echo "--- files"; find "{out}" -type f | sort; echo "--- failed"; cat "{out}/eval_segments.failed.csv"')
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    if result.returncode == 99:
        pytest.skip("this machine refuses a tmpfs mount in a user namespace")
    stdout = result.stdout
    assert "exit=1" in stdout, result.stderr
    assert result.stderr.count("error:") == 1
    assert "no space left on device; free space, then rerun" in result.stderr
    files = stdout.split("--- files")[1].split("--- failed")[0].split()
    assert not any(name.endswith(".part") for name in files), files
    assert not any(name.endswith(".wav") for name in files)
    assert stdout.split("--- failed")[1].strip().splitlines() == ["YTID,start_seconds,end_seconds,reason,detail"]


def test_hostile_rows_never_reach_a_path_or_a_command_line(tmp_path: Path, mirror: Mirror) -> None:
    mirror.add("goodvideo01")
    hostile = ["../../etc/x", "-i /etc/pwd", "..%2F..%2Fxx", "$(touch pw)", "a;rm -rf /x"]
    csv_path = write_csv(tmp_path / "eval_segments.csv",
                         [f'{ytid}, 0.000, 10.000, "/m/a"' for ytid in [*hostile, "goodvideo01"]])
    config = write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], YTB_URL_FORMAT=mirror.url_format,
                          BACKEND="direct", OUTPUT_DIR=str(tmp_path / "out"), TIMER=0)
    before = {p for p in tmp_path.rglob("*") if "out" not in p.relative_to(tmp_path).parts}
    result = run_script("--config", str(config), cwd=tmp_path)
    assert result.returncode == 0
    failed = rows_by_id(tmp_path / "out" / "eval_segments.failed.csv")
    assert set(failed) == set(hostile) and {row["reason"] for row in failed.values()} == {"invalid_row"}
    assert set(rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")) == {"goodvideo01"}
    after = {p for p in tmp_path.rglob("*") if "out" not in p.relative_to(tmp_path).parts}
    assert after == before  # nothing written outside OUTPUT_DIR
    assert sorted(p.name for p in (tmp_path / "out" / "eval_segments").iterdir()) == ["goodvideo01.wav", "metadata.csv"]
    assert set(mirror.server.requests) == {"/goodvideo01.m4a"}  # no other id reached the network


# Pre-signed in form, so pytube passes them through untouched: our own check must refuse them.
@pytest.mark.parametrize("url", ["file:///etc/passwd?signature=1", "concat:/etc/passwd|/etc/hosts?signature=1"])
def test_a_manifest_pointing_at_local_files_is_refused(youtube: FakeYouTube, tmp_path: Path, url: str) -> None:
    youtube.videos.update({"goodvideo01": FakeVideo(), "evilmanifst": FakeVideo(media_url=url)})
    # The good video first (one worker): the backends have worked, so the evil one is recorded, not deferred.
    csv_path = write_csv(tmp_path / "eval_segments.csv", ['goodvideo01, 0.000, 10.000, "/m/a"',
                                                          'evilmanifst, 0.000, 10.000, "/m/a"'])
    config = write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], OUTPUT_DIR=str(tmp_path / "out"),
                          WORKERS=1)
    assert cli.main(["--config", str(config)]) == 0
    failed = rows_by_id(tmp_path / "out" / "eval_segments.failed.csv")
    assert failed["evilmanifst"]["reason"] == "backend_error"
    # pytube's manifest is refused by our check; yt-dlp (the fallback) never picks a non-HTTP format.
    assert "pytube: refused a non-HTTP media URL" in failed["evilmanifst"]["detail"]
    assert "yt-dlp: [youtube] evilmanifst: Requested format is not available" in failed["evilmanifst"]["detail"]
    assert sorted(p.name for p in (tmp_path / "out" / "eval_segments").iterdir()) == ["goodvideo01.wav",
                                                                                       "metadata.csv"]


def _tree(root: Path) -> dict[str, bytes]:
    """The clips, byte for byte (metadata.csv lists them in completion order: compared as rows)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "metadata.csv"}


def _manifest(path: Path, columns: tuple[str, ...]) -> set[tuple[str, ...]]:
    with open(path, newline="") as handle:
        return {tuple(row[c] for c in columns) for row in csv.DictReader(handle)}


def test_kill_9_at_random_moments_then_rerun_equals_an_uninterrupted_run(tmp_path: Path, sources: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    ids = [f"crashtest{i:02d}" for i in range(14)]
    rows = [f'{ytid}, {10 + 7 * i}.500, {20 + 7 * i}.500, "/m/a,/m/b"' for i, ytid in enumerate(ids)]
    rows += ['missingvid1, 0.000, 10.000, "/m/c"', 'shortvideo1, 25.000, 35.000, "/m/c"', 'bad row, 1, 2, "/m/c"']
    csv_path = write_csv(tmp_path / "eval_segments.csv", rows)
    mirror_root = tmp_path / "mirror"
    mirror_root.mkdir()
    for ytid in ids:
        (mirror_root / f"{ytid}.m4a").hardlink_to(sources / "tone300.m4a")
    (mirror_root / "shortvideo1.m4a").hardlink_to(sources / "tone20.m4a")

    from tests.support.server import MediaServer

    with MediaServer(mirror_root, latency_s=0.05) as server:
        def config(name: str) -> Path:
            return write_config(tmp_path / f"{name}.py", CSV_FILE_NAMES=[str(csv_path)], BACKEND="direct",
                                YTB_URL_FORMAT=server.base_url + "/{YTID}.m4a", OUTPUT_DIR=str(tmp_path / name),
                                TIMER=0, WORKERS=3)

        started = time.monotonic()
        reference = run_script("--config", str(config("reference")), cwd=tmp_path)
        assert reference.returncode == 0
        duration = time.monotonic() - started
        crashed = config("crashed")
        split_pos = tmp_path / "crashed" / "eval_segments.split-pos.csv"
        kills: list[str] = []
        rows_at_kill: list[int] = []

        def rows_now() -> int:
            return len(split_pos.read_text().splitlines()) - 1 if split_pos.exists() else 0

        for attempt in range(4):
            process = subprocess.Popen([sys.executable, str(REPO / "AudioDownloader.py"), "--config", str(crashed)],
                                       cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            started_at = time.monotonic()
            if attempt == 0:  # the first kill once the run has written its first clip: surely mid-run
                while rows_now() < 1 and process.poll() is None and time.monotonic() - started_at < 60:
                    time.sleep(0.005)
            else:
                time.sleep(rng.uniform(0.2, duration))  # somewhere within a run's life
            delay = time.monotonic() - started_at
            process.send_signal(signal.SIGKILL)
            process.wait()
            rows_at_kill.append(rows_now())
            kills.append(f"{delay:.2f}s:{rows_at_kill[-1]} rows")
        final = run_script("--config", str(crashed), cwd=tmp_path)
        assert final.returncode == 0, final.stderr

    context = f"seed {seed}, reference run {duration:.2f} s, kills {kills}"
    written = len((tmp_path / "reference" / "eval_segments.split-pos.csv").read_text().splitlines()) - 1
    assert any(0 < rows < written for rows in rows_at_kill), f"no kill landed mid-run; {context}"
    ref, got = tmp_path / "reference", tmp_path / "crashed"
    split_columns = ("file", "YTID", "start_seconds", "end_seconds", "positive_labels")
    failed_columns = ("YTID", "start_seconds", "end_seconds", "reason")
    assert _manifest(got / "eval_segments.split-pos.csv", split_columns) == \
        _manifest(ref / "eval_segments.split-pos.csv", split_columns), context
    for name in ("eval_segments.split-pos.csv", "eval_segments.failed.csv"):
        lines = (got / name).read_text().splitlines()
        assert len(lines) == len(set(lines)), f"duplicate rows in {name}; {context}"
    assert _manifest(got / "eval_segments.failed.csv", failed_columns) == \
        _manifest(ref / "eval_segments.failed.csv", failed_columns), context
    clips_ref, clips_got = _tree(ref / "eval_segments"), _tree(got / "eval_segments")
    assert sorted(clips_got) == sorted(clips_ref), context  # no partial or temporary file remains
    assert all(clips_got[name] == clips_ref[name] for name in clips_ref), f"clip bytes differ; {context}"
    assert not [p for p in got.rglob("*.part")], context
    metadata_columns = ("file_name", "YTID", "start_seconds", "end_seconds", "labels")
    assert _manifest(got / "eval_segments" / "metadata.csv", metadata_columns) == \
        _manifest(ref / "eval_segments" / "metadata.csv", metadata_columns), context
    assert len((got / "eval_segments" / "metadata.csv").read_text().splitlines()) == len(clips_ref) + 1, context


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux) for a private mount")
def test_a_read_only_output_dir_is_refused_before_any_work(tmp_path: Path, mirror: Mirror) -> None:
    mirror.add("readonlyvid")
    out = tmp_path / "out"
    out.mkdir()
    config = configure(tmp_path, mirror, ["readonlyvid"])
    script = (f'mount -t tmpfs -o ro,size=100k tmpfs "{out}" || exit 99; '
              f'"{sys.executable}" "{REPO / "AudioDownloader.py"}" --config "{config}"; echo "exit=$?"')
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    if result.returncode == 99:
        pytest.skip("this machine refuses a tmpfs mount in a user namespace")
    assert "exit=2" in result.stdout
    assert result.stderr.startswith(f"error: OUTPUT_DIR {out}: not writable")
    assert mirror.server.requests == {}  # nothing was fetched


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once it is closed


@pytest.mark.parametrize(("url_format", "host", "timer"), [
    ("http://nowhere.invalid/{YTID}.m4a", "nowhere.invalid", 0),  # .invalid never resolves (RFC 2606)
    ("http://127.0.0.1:{port}/{YTID}.m4a", "127.0.0.1:{port}", 0),
    ("http://127.0.0.1:{port}/{YTID}.m4a", "127.0.0.1:{port}", 3),  # 4 clips: fewer than it takes mid-run
])
def test_a_dead_network_is_one_message_and_no_failure(tmp_path: Path, url_format: str, host: str, timer: int) -> None:
    port = closed_port()
    ids = [f"deadnetw{i:03d}" for i in range(30)]
    csv_path = write_csv(tmp_path / "eval_segments.csv", [f'{ytid}, 1.000, 2.000, "/m/a"' for ytid in ids])
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], BACKEND="direct", TIMER=timer,
                 YTB_URL_FORMAT=url_format.replace("{port}", str(port)), OUTPUT_DIR=str(tmp_path / "out"))
    result = run_script("--config", "cfg.py", cwd=tmp_path)
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and error[0].startswith(f"error: cannot reach {host.replace('{port}', str(port))}: ")
    assert "none marked failed" in error[0] and "PROXY" in error[0] and "--doctor" in error[0]
    assert rows_by_id(tmp_path / "out" / "eval_segments.failed.csv") == {}
    log = (tmp_path / "out" / "eval_segments_dl.log").read_text()
    assert log.count("left for the next run: cannot reach") <= 10  # it stopped, it did not go through all 30
    assert "retry 1 of" not in log  # and paid for no retries


def test_once_something_answered_an_outage_is_passing_trouble_again() -> None:
    from audioset_downloader.errors import ClipFailure, FailureReason, NetworkDownError
    from audioset_downloader.fetch.reachability import FIRST_CLIPS, Reachability
    from audioset_downloader.inputs.settings import Settings

    refused = ClipFailure(FailureReason.NETWORK, "Connection to tcp://127.0.0.1:9 failed: Connection refused")
    reset = ClipFailure(FailureReason.NETWORK, "Connection reset by peer")
    with socket.socket() as listening:  # the proxy itself takes connections: the clips' trouble is counted
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        proxy = f"127.0.0.1:{listening.getsockname()[1]}"
        before = Reachability(Settings(proxy=f"http://{proxy}"))
        assert not before.no_network(reset)  # trouble mid-transfer says the network is there
        assert all(before.no_network(refused) for _ in range(FIRST_CLIPS - 1))
        with pytest.raises(NetworkDownError, match=rf"^cannot reach the proxy {proxy}: "):
            before.no_network(refused)
    # A proxy that does not even resolve: the first clip is proof enough.
    with pytest.raises(NetworkDownError, match=r"^cannot reach the proxy proxy\.invalid:3128: .* \(1 clip, "):
        Reachability(Settings(proxy="http://proxy.invalid:3128")).no_network(refused)
    after = Reachability(Settings())
    after.answered()
    assert not after.no_network(refused) and not after.never_answered


def test_offline_at_a_guest_s_pace_the_run_stops_at_its_first_clip(tmp_path: Path) -> None:
    # pytube at a guest's pace: a clip every 13 s. Counting ten unreachable clips took two minutes and
    # printed ten "left for the next run" lines before the one error.
    ids = [f"offline{i:04d}" for i in range(30)]
    csv_path = write_csv(tmp_path / "eval_segments.csv", [f'{ytid}, 1.000, 2.000, "/m/a"' for ytid in ids])
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], PROXY="http://proxy.invalid:3128",
                 OUTPUT_DIR=str(tmp_path / "out"), FALLBACK_BACKENDS=[])
    result = run_script("--config", "cfg.py", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and error[0].startswith("error: cannot reach the proxy proxy.invalid:3128: "), error
    assert "(1 clip, none written, none marked failed)" in error[0]
    assert "left for the next run" not in result.stderr  # stopped at the first proof
    assert rows_by_id(tmp_path / "out" / "eval_segments.failed.csv") == {}
