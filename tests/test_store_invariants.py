"""OUTPUT_DIR on object storage: every row names an object that is there, holding its clip, whatever happens.

moto's S3 server on 127.0.0.1, behind a proxy the tests steer (tests/support/store_proxy.py): it
fails chosen uploads the way a store in trouble does, or holds one until the test lets it go. After
each upset the store is read back through s3fs and checked whole: each row's object is there and
decodes to its window, each window is listed once, and the next run asks the media server only for
the windows that are not held.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audioset_downloader import cli
from audioset_downloader.outputs.ledger import SPLIT_POS_HEADER
from tests.conftest import REPO, Mirror, write_csv
from tests.support.audio import decode, window_offset
from tests.support.store_proxy import StoreProxy
from tests.test_object_storage import CSV_NAME, ROWS, WINDOWS, bucket, configure, manifests, objects, rows_of, s3

pytest.importorskip("s3fs")
__all__ = ["bucket", "s3"]  # fixtures, used by name

FEW_RETRIES = {"retries": {"max_attempts": 1}, "connect_timeout": 2}  # botocore's retries cut short: failures are quick


@pytest.fixture
def proxy(s3: Any) -> Iterator[StoreProxy]:
    started = StoreProxy(os.environ["AWS_ENDPOINT_URL"]).start()
    try:
        yield started
    finally:
        started.stop()


def through(proxy: StoreProxy) -> dict[str, object]:
    return {"endpoint_url": proxy.endpoint, "config_kwargs": FEW_RETRIES}


def held_rows(s3: Any, url: str) -> list[dict[str, str]]:
    """The rows the store holds for the next run: split-pos.csv, and work manifests it will join."""
    base = url.removeprefix("s3://")
    s3.invalidate_cache()
    rows = rows_of(s3.cat_file(f"{base}/{CSV_NAME}.split-pos.csv").decode()) \
        if s3.exists(f"{base}/{CSV_NAME}.split-pos.csv") else []
    seen = {(row["YTID"], row["start_seconds"]) for row in rows}
    for path in manifests(s3, f"{base}/{CSV_NAME}.work"):
        for fields in json.loads(s3.cat_file(path))["split_pos"]:
            row = dict(zip(SPLIT_POS_HEADER, fields, strict=False))
            if (row["YTID"], row["start_seconds"]) not in seen:  # a join takes each window once
                seen.add((row["YTID"], row["start_seconds"]))
                rows.append(row)
    return rows


def assert_every_row_holds_its_clip(s3: Any, url: str, tmp_path: Path,
                                    damaged: frozenset[tuple[str, str]] = frozenset()) -> set[tuple[str, str]]:
    """The invariant: split-pos.csv lists each window once, and each row it (or a work manifest) holds names an
    object there that decodes to that window (``damaged``: windows a test broke on purpose, only there). Returns
    the windows held."""
    base = url.removeprefix("s3://")
    s3.invalidate_cache()
    if s3.exists(f"{base}/{CSV_NAME}.split-pos.csv"):
        listed = Counter((row["YTID"], row["start_seconds"]) for row in
                         rows_of(s3.cat_file(f"{base}/{CSV_NAME}.split-pos.csv").decode()))
        assert max(listed.values(), default=1) == 1, listed
    tars: dict[str, tarfile.TarFile] = {}
    rows = held_rows(s3, url)
    for row in rows:
        key = f"{base}/{row['file']}"
        assert s3.exists(key), f"a row names {row['file']}, which is not on the store"
        if row["member"]:
            tar = tars.setdefault(key, tarfile.open(fileobj=io.BytesIO(s3.cat_file(key))))
            assert row["member"] in tar.getnames(), f"{row['file']} lacks {row['member']}, which a row names"
            data = tar.extractfile(row["member"]).read()  # type: ignore[union-attr]
        else:
            data = s3.cat_file(key)
        if (row["YTID"], row["start_seconds"]) in damaged:
            continue
        clip = tmp_path / "held.wav"
        clip.write_bytes(data)
        audio = decode(clip)
        start, end = float(row["start_seconds"]), float(row["end_seconds"])
        assert abs(audio.duration - (end - start)) < 0.05 and abs(window_offset(audio, start)) < 0.05, row
    return {(row["YTID"], row["start_seconds"]) for row in rows}


def assert_next_run_fetches_only_what_is_missing(tmp_path: Path, mirror: Mirror, s3: Any, url: str,
                                                 held: set[tuple[str, str]], **constants: object) -> None:
    """A clean run after the upset: exit 0, every window once, and no request for a video all of whose windows
    were held."""
    mirror.server.reset_counts()
    assert cli.main(["--config", str(configure(tmp_path, mirror, url, **constants))]) == 0
    assert assert_every_row_holds_its_clip(s3, url, tmp_path) == WINDOWS
    for ytid in {ytid for ytid, _ in WINDOWS}:
        if all(window in held for window in WINDOWS if window[0] == ytid):
            assert mirror.requests_for(ytid) == 0, f"{ytid} was held, yet fetched again"


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


# ---------------------------------------------------------------- 1, 3: objects first; a failure seen at once


@pytest.mark.parametrize("layout, refused", [
    ("files", r"/vid04aaaaaa\.wav$"),  # one clip's upload
    ("webdataset", rf"/{CSV_NAME}-000001(-[0-9a-f]{{8}})?\.tar$"),  # the second shard's tar
])
def test_an_upload_refused_mid_run_leaves_no_row_without_its_clip(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str, proxy: StoreProxy, layout: str, refused: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"s3://{bucket}/refused"
    proxy.fail("PUT", refused)
    proxy.fail("POST", refused)  # a multipart upload's start and end
    config = configure(tmp_path, mirror, url, OUTPUT_LAYOUT=layout, SHARD_SIZE=3, WORKERS=1,
                       STORAGE_OPTIONS=through(proxy))
    assert cli.main(["--config", str(config)]) == 1
    errors = error_lines(capsys)
    assert len(errors) == 1 and errors[0].startswith(f"error: OUTPUT_DIR {url}: could not put up"), errors
    held = assert_every_row_holds_its_clip(s3, url, tmp_path)
    assert held and held < WINDOWS
    proxy.clear()
    assert_next_run_fetches_only_what_is_missing(tmp_path, mirror, s3, url, held, OUTPUT_LAYOUT=layout)


def test_a_store_failing_under_a_dask_task_ends_the_run_once_without_a_retry(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str, proxy: StoreProxy,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Dask would run a task that raised again (fetching its shard again from YouTube): a store's failure is
    brought back to the driver instead, which stops in one line."""
    pytest.importorskip("distributed")
    from tests.test_dask_engine import cli_cluster

    url = f"s3://{bucket}/dask-refused"
    proxy.fail("PUT", rf"/{CSV_NAME}-000000-[0-9a-f]{{8}}\.tar$")
    with cli_cluster(["127.0.0.2"]) as address:
        config = configure(tmp_path, mirror, url, ENGINE="dask", DASK_SCHEDULER=address, OUTPUT_LAYOUT="webdataset",
                           SHARD_SIZE=20, WORKERS=2, STORAGE_OPTIONS=through(proxy))
        assert cli.main(["--config", str(config)]) == 1
    errors = error_lines(capsys)
    assert len(errors) == 1 and "could not put up" in errors[0], errors
    attempts = {path.rpartition("-")[2] for path in proxy.puts() if re.search(r"-000000-[0-9a-f]{8}\.tar$", path)}
    assert len(attempts) == 1, f"the shard was tried once, not once per Dask retry: {attempts}"
    assert_every_row_holds_its_clip(s3, url, tmp_path)


@pytest.mark.parametrize("manifest", ["split-pos.csv", "failed.csv", "summary.json", "README.md"])
def test_a_failure_between_the_put_ups_of_publish_keeps_every_row_with_its_clip(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str, proxy: StoreProxy, manifest: str) -> None:
    url = f"s3://{bucket}/publish"
    proxy.fail("PUT", rf"/{CSV_NAME}[._]{manifest.replace('.', '[.]')}$")
    config = configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset", SHARD_SIZE=4,
                       STORAGE_OPTIONS=through(proxy))
    assert cli.main(["--config", str(config)]) == 1
    held = assert_every_row_holds_its_clip(s3, url, tmp_path)
    assert held == WINDOWS, "the work manifests are kept until the files that hold their rows are up"
    proxy.clear()
    assert_next_run_fetches_only_what_is_missing(tmp_path, mirror, s3, url, held, OUTPUT_LAYOUT="webdataset")


@pytest.mark.parametrize("failing", range(3))  # the new tar, failed.csv, split-pos.csv
def test_a_failure_between_the_put_ups_of_a_merge_into_the_store_keeps_every_row_with_its_clip(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str, proxy: StoreProxy, failing: int) -> None:
    """--merge into a webdataset URL: new tars first (never the store's short tar rewritten), manifests after."""
    url = f"s3://{bucket}/merged"
    assert cli.main(["--config", str(configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset", SHARD_SIZE=4,
                                               TIMER=5))]) == 0
    before = {path: s3.info(path)["ETag"] for path in objects(s3, f"{bucket}/merged/{CSV_NAME}")}
    local = tmp_path / "local"
    assert cli.main(["--config", str(configure(tmp_path, mirror, str(local), OUTPUT_LAYOUT="webdataset"))]) == 0
    refused = proxy.fail("PUT|POST", r"\.(tar|csv|json|md)$", skip=failing)  # the merge's failing-th object
    target = configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset", STORAGE_OPTIONS=through(proxy))
    code = cli.main(["--config", str(target), "--merge", str(local)])
    written = [key for key in proxy.puts() if key.endswith((".tar", ".csv", ".json", ".md"))]
    assert refused.hits and code == 1, (failing, written)
    if failing == 0:
        assert written[0].endswith(".tar"), f"the new tar goes up before the manifests that name it: {written}"
    held = assert_every_row_holds_its_clip(s3, url, tmp_path)
    assert all(s3.info(path)["ETag"] == etag for path, etag in before.items()), "a tar of the store was rewritten"
    proxy.clear()
    assert_next_run_fetches_only_what_is_missing(tmp_path, mirror, s3, url, held, OUTPUT_LAYOUT="webdataset")


@pytest.mark.parametrize("failing", range(2))  # split-pos.csv, then the tar repacked without the broken clip
def test_a_failure_between_the_put_ups_of_a_repair_on_the_store_keeps_every_row_with_its_clip(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str, proxy: StoreProxy, failing: int) -> None:
    """--verify --repair on a webdataset URL drops a broken clip from its tar: the manifest that no longer names it
    goes up before the smaller tar, so a kill in between leaves a member no row names, never the reverse."""
    url = f"s3://{bucket}/repaired"
    assert cli.main(["--config", str(configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset",
                                               SHARD_SIZE=4))]) == 0
    row = next(row for row in held_rows(s3, url) if row["YTID"] == "vid05aaaaaa")
    key = f"{bucket}/repaired/{row['file']}"
    damaged = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(s3.cat_file(key))) as source, tarfile.open(fileobj=damaged, mode="w") as out:
        for info in source:
            data = source.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == row["member"]:
                data = b"not audio at all" * 64  # its clip no longer decodes
                info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    s3.pipe_file(key, damaged.getvalue())
    refused = proxy.fail("PUT|POST", r"\.(tar|csv|json|md)$", skip=failing)
    config = configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset", STORAGE_OPTIONS=through(proxy))
    assert cli.main(["--config", str(config), "--verify", "--repair"]) == 1
    assert refused.hits, proxy.puts()
    broken = frozenset({("vid05aaaaaa", row["start_seconds"])})
    held = assert_every_row_holds_its_clip(s3, url, tmp_path, broken)
    assert not broken & held or failing == 0, "the repaired manifest is up: it names the broken clip no more"
    proxy.clear()
    if broken & held:  # the repair never got its manifest up: once more, whole
        assert cli.main(["--config", str(config), "--verify", "--repair"]) == 1
        held = assert_every_row_holds_its_clip(s3, url, tmp_path)
    assert_next_run_fetches_only_what_is_missing(tmp_path, mirror, s3, url, held, OUTPUT_LAYOUT="webdataset")


# ---------------------------------------------------------------- 2: an attempt that outlives its driver


def test_an_attempt_that_outlives_its_killed_driver_collides_with_no_rerun(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str, proxy: StoreProxy) -> None:
    """A Dask task goes on after its driver is killed. Its manifest is held at the proxy until the rerun has
    listed the store: the rerun must neither remove that attempt's tar as an orphan nor write a shard of the
    same name, and the manifest that arrives mid-rerun is joined without a window twice."""
    pytest.importorskip("distributed")
    from tests.test_dask_engine import cli_cluster_processes

    url = f"s3://{bucket}/outlived"
    work = f"{bucket}/outlived/{CSV_NAME}.work"
    shard_zero = rf"/{CSV_NAME}\.work/000000(-[0-9a-f]{{8}})?\.json$"  # its manifest (named so by any version)
    manifest_up = proxy.hold("PUT", shard_zero)
    with cli_cluster_processes(["127.0.0.2"]) as (address, _):
        config = configure(tmp_path, mirror, url, ENGINE="dask", DASK_SCHEDULER=address, OUTPUT_LAYOUT="webdataset",
                           SHARD_SIZE=4, WORKERS=2, STORAGE_OPTIONS=through(proxy))
        driver = subprocess.Popen([sys.executable, str(REPO / "AudioDownloader.py"), "--config", str(config)],
                                  cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while not proxy.saw(lambda method, path, _: method == "PUT" and re.search(shard_zero, path) is not None) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(driver.pid, signal.SIGKILL)  # the task holding shard 0's manifest goes on without it
        finally:
            driver.wait(timeout=30)
        s3.invalidate_cache()
        old_tars = [path for path in objects(s3, f"{bucket}/outlived/{CSV_NAME}") if "-000000" in path]
        assert old_tars, "the outliving attempt put its tar up before its manifest"

        codes: list[int] = []
        rerun = configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset", SHARD_SIZE=4,
                          STORAGE_OPTIONS=through(proxy))
        # Its first windows' videos are gone now: the rerun cannot fetch them, so only the old attempt's rows can
        # hold them, and they must name a tar that is there.
        for n in range(3):
            (mirror.root / f"vid{n:02d}aaaaaa.m4a").unlink()
        listed_at = len(proxy.seen)
        runner = threading.Thread(target=lambda: codes.append(cli.main(["--config", str(rerun)])))
        runner.start()
        deadline = time.monotonic() + 60
        while not any(method == "GET" and "list-type" in query and f"{CSV_NAME}.work" in query
                      for method, _, query in proxy.seen[listed_at:]) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # the rerun has listed the attempts and the clip folder: now let the old manifest up
        manifest_up.set()
        runner.join(timeout=120)
        assert codes == [0]
    assert assert_every_row_holds_its_clip(s3, url, tmp_path) == WINDOWS
    # Whatever the old attempt put up after the rerun listed is joined by now, and the next run fetches nothing.
    assert_next_run_fetches_only_what_is_missing(tmp_path, mirror, s3, url, WINDOWS, OUTPUT_LAYOUT="webdataset")
    assert not manifests(s3, work)


# ---------------------------------------------------------------- 4: orphans, scratch folders


def test_an_orphan_clip_is_removed_unless_an_attempt_that_may_name_it_is_alive(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str) -> None:
    url = f"s3://{bucket}/orphans"
    config = configure(tmp_path, mirror, url)
    assert cli.main(["--config", str(config)]) == 0
    orphan = f"{bucket}/orphans/{CSV_NAME}/vid99aaaaaa.wav"  # a task killed after this clip, before its rows
    s3.pipe_file(orphan, b"RIFF")
    marker = f"{bucket}/orphans/{CSV_NAME}.work/000099-0badcafe.live"  # an attempt running on another machine
    s3.pipe_file(marker, json.dumps({"host": "elsewhere", "pid": 1, "at": time.time()}).encode())
    assert cli.main(["--config", str(config)]) == 0
    assert s3.exists(orphan), "kept while an attempt that may name it is alive"
    s3.rm_file(marker)
    assert cli.main(["--config", str(config)]) == 0
    s3.invalidate_cache()
    assert not s3.exists(orphan)
    assert assert_every_row_holds_its_clip(s3, url, tmp_path) == WINDOWS


def test_a_killed_task_s_scratch_folder_is_removed(tmp_path: Path, mirror: Mirror, s3: Any, bucket: str) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = Path(tempfile.gettempdir()) / f"audioset-work-{gone.stdout.strip()}-leftover"
    (dead / "0" / CSV_NAME).mkdir(parents=True)
    (dead / "0" / CSV_NAME / "vid01aaaaaa.wav").write_bytes(b"x" * 1000)
    mine = Path(tempfile.mkdtemp(prefix=f"audioset-work-{os.getpid()}-"))  # a running process's: kept
    try:
        assert cli.main(["--config", str(configure(tmp_path, mirror, f"s3://{bucket}/scratch"))]) == 0
        assert not dead.exists() and mine.exists()
    finally:
        mine.rmdir()


# ---------------------------------------------------------------- 5: the URL's own other lists


def test_windows_another_list_of_the_url_holds_are_taken_without_a_request(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str) -> None:
    url = f"s3://{bucket}/lists"
    assert cli.main(["--config", str(configure(tmp_path, mirror, url))]) == 0
    other = write_csv(tmp_path / "other_list.csv", ROWS[:8])
    mirror.server.reset_counts()
    assert cli.main(["--config", str(configure(tmp_path, mirror, url, CSV_FILE_NAMES=[str(other)]))]) == 0
    assert sum(mirror.server.requests.values()) == 0, "a window the URL holds under another list costs no request"
    rows = rows_of(s3.cat_file(f"{bucket}/lists/other_list.split-pos.csv").decode())
    assert len(rows) == 8 and {row["backend"] for row in rows} == {"reused"}
    row = rows[3]
    clip = tmp_path / "reused.wav"
    clip.write_bytes(s3.cat_file(f"{bucket}/lists/{row['file']}"))
    assert abs(window_offset(decode(clip), float(row["start_seconds"]))) < 0.05


def test_two_lists_of_one_run_on_a_url_fetch_a_shared_window_once(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str) -> None:
    first = write_csv(tmp_path / "first_list.csv", ROWS[:6])
    second = write_csv(tmp_path / "second_list.csv", ROWS[2:8])
    url = f"s3://{bucket}/together"
    config = configure(tmp_path, mirror, url, CSV_FILE_NAMES=[str(first), str(second)])
    assert cli.main(["--config", str(config)]) == 0
    fetched: Counter[tuple[str, str]] = Counter()
    for name in ("first_list", "second_list"):
        rows = rows_of(s3.cat_file(f"{bucket}/together/{name}.split-pos.csv").decode())
        assert len(rows) == 6
        fetched.update((row["YTID"], row["start_seconds"]) for row in rows if row["backend"] != "reused")
    assert len(fetched) == 8 and set(fetched.values()) == {1}, "each window fetched by one list, the other took it"
    assert assert_every_row_holds_its_clip(s3, url, tmp_path) == set()  # (eval_segments is not among them)
    for name in ("first_list", "second_list"):
        for row in rows_of(s3.cat_file(f"{bucket}/together/{name}.split-pos.csv").decode()):
            clip = tmp_path / "together.wav"
            clip.write_bytes(s3.cat_file(f"{bucket}/together/{row['file']}"))
            assert abs(window_offset(decode(clip), float(row["start_seconds"]))) < 0.05


# ---------------------------------------------------------------- 6: the stage and the caches


def test_the_stage_is_the_store_s_and_reuse_from_s_cache_follows_the_object(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str) -> None:
    from audioset_downloader.inputs.settings import stage_folder

    cache = tmp_path / "cache"
    one = stage_folder(cache, f"s3://{bucket}/x", {"endpoint_url": "http://127.0.0.1:1"})
    two = stage_folder(cache, f"s3://{bucket}/x", {"endpoint_url": "http://127.0.0.1:2"})
    assert one != two, "the same bucket on two endpoints is two stores"

    url = f"s3://{bucket}/source"
    assert cli.main(["--config", str(configure(tmp_path, mirror, url))]) == 0
    first = configure(tmp_path, mirror, str(tmp_path / "first"), REUSE_FROM=[url])
    assert cli.main(["--config", str(first)]) == 0
    # The source's clip of one window is replaced (a repair, say): another window's audio, same length.
    row = next(row for row in rows_of(s3.cat_file(f"{bucket}/source/{CSV_NAME}.split-pos.csv").decode())
               if row["YTID"] == "vid02aaaaaa")
    other = next(row for row in rows_of(s3.cat_file(f"{bucket}/source/{CSV_NAME}.split-pos.csv").decode())
                 if row["YTID"] == "vid06aaaaaa")
    replaced = s3.cat_file(f"{bucket}/source/{other['file']}")
    s3.pipe_file(f"{bucket}/source/{row['file']}", replaced)
    second = configure(tmp_path, mirror, str(tmp_path / "second"), REUSE_FROM=[url])
    assert cli.main(["--config", str(second)]) == 0
    assert (tmp_path / "second" / row["file"]).read_bytes() == replaced, "the cached copy was checked, and got again"


def test_a_stale_identities_file_in_the_stage_never_goes_up(tmp_path: Path, mirror: Mirror, s3: Any,
                                                             bucket: str) -> None:
    from audioset_downloader.inputs.settings import load_settings
    from audioset_downloader.pacing.learned import LEARNED_FILE

    url = f"s3://{bucket}/learned"
    config = configure(tmp_path, mirror, url, REQUESTS_PER_MINUTE=None)
    stage = load_settings(config).output_dir
    stage.mkdir(parents=True, exist_ok=True)
    (stage / LEARNED_FILE).write_text('{"stale": "from a store of the same name elsewhere"}')
    assert cli.main(["--config", str(config)]) == 0
    s3.invalidate_cache()
    held = s3.cat_file(f"{bucket}/learned/{LEARNED_FILE}").decode() if s3.exists(f"{bucket}/learned/{LEARNED_FILE}") \
        else ""
    assert "stale" not in held


# ---------------------------------------------------------------- 7: one driver per URL


def test_a_second_driver_on_a_url_is_refused_and_a_dead_one_s_lock_is_taken_over(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    url = f"s3://{bucket}/locked"
    mirror.server.latency_s = 0.3
    config = configure(tmp_path, mirror, url, WORKERS=1)
    first = subprocess.Popen([sys.executable, str(REPO / "AudioDownloader.py"), "--config", str(config)],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not s3.exists(f"{bucket}/locked/.audioset-downloader.lock") and time.monotonic() < deadline:
            time.sleep(0.05)
            s3.invalidate_cache()
        os.killpg(first.pid, signal.SIGSTOP)  # the first driver (and its ffmpegs) frozen, its lock still fresh:
        time.sleep(0.5)  # every request the server counts from here on is the refused runs'
        requests = sum(mirror.server.requests.values())
        capsys.readouterr()
        assert cli.main(["--config", str(config)]) == 2
        errors = error_lines(capsys)
        assert len(errors) == 1 and f"another run is writing these outputs (pid {first.pid} on " \
            f"{socket.gethostname()}" in errors[0], errors
        assert cli.main(["--config", str(config), "--verify", "--repair"]) == 2, "nor may a command change them"
        assert sum(mirror.server.requests.values()) == requests, "the refused runs fetched nothing"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    mirror.server.latency_s = 0.0
    assert cli.main(["--config", str(config)]) == 0  # the killed driver's lock: taken over at once
    assert f"took over the lock of pid {first.pid} on {socket.gethostname()}" in caplog.text
    assert assert_every_row_holds_its_clip(s3, url, tmp_path) == WINDOWS


def test_a_lock_not_refreshed_for_its_time_is_taken_over(tmp_path: Path, mirror: Mirror, s3: Any, bucket: str,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    from audioset_downloader.outputs import store_lock

    lock = f"{bucket}/stale/.audioset-downloader.lock"
    s3.pipe_file(lock, json.dumps({"host": "elsewhere", "pid": 7, "run": "r", "started": 0}).encode())
    config = configure(tmp_path, mirror, f"s3://{bucket}/stale")
    assert cli.main(["--config", str(config)]) == 2, "a lock of another machine, fresh: refused"
    monkeypatch.setattr(store_lock, "STALE_S", 0.0)  # its driver stopped refreshing it long ago
    assert cli.main(["--config", str(config)]) == 0
    assert "took over the lock of pid 7 on elsewhere" in caplog.text
    s3.invalidate_cache()
    assert not s3.exists(lock), "released at the end"


# ---------------------------------------------------------------- 8: one line for a store that cannot be used


def dead_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"  # closed once the probe is


@pytest.mark.parametrize("command", [[], ["--dry-run"], ["--status"], ["--verify"], ["--report"]])
def test_a_store_that_does_not_answer_is_one_line_naming_the_setting(
        tmp_path: Path, mirror: Mirror, s3: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead_endpoint())
    config = configure(tmp_path, mirror, "s3://somewhere/x", STORAGE_OPTIONS={"config_kwargs": FEW_RETRIES})
    assert cli.main(["--config", str(config), *command]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: OUTPUT_DIR s3://somewhere/x: the store does not answer"), \
        lines
    assert "AWS_ENDPOINT_URL" in lines[0] and sum(mirror.server.requests.values()) == 0


def test_reuse_from_and_merge_stores_are_named_as_their_settings(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = configure(tmp_path, mirror, str(tmp_path / "out"), REUSE_FROM=["s3://no-such-bucket-here/x"])
    assert cli.main(["--config", str(config)]) == 2
    assert error_lines(capsys) == ["error: REUSE_FROM[0] s3://no-such-bucket-here/x: the bucket "
                                   "'no-such-bucket-here' does not exist; create it, or fix the URL (and "
                                   "AWS_ENDPOINT_URL if not on AWS)"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead_endpoint())
    options = {"STORAGE_OPTIONS": {"config_kwargs": FEW_RETRIES}}
    assert cli.main(["--config", str(configure(tmp_path, mirror, str(tmp_path / "out"),
                                               REUSE_FROM=[f"s3://{bucket}/x"], **options))]) == 2
    assert error_lines(capsys)[0].startswith(f"error: REUSE_FROM[0] s3://{bucket}/x: the store does not answer")
    assert cli.main(["--config", str(configure(tmp_path, mirror, str(tmp_path / "out"), **options)),
                     "--merge", f"s3://{bucket}/x"]) == 2
    assert error_lines(capsys)[0].startswith(f"error: --merge s3://{bucket}/x: the store does not answer")
    assert sum(mirror.server.requests.values()) == 0


@pytest.mark.parametrize("url", ["ftp://host/audioset", "hdfs://namenode/audioset", "s4://bucket/x"])
@pytest.mark.parametrize("setting", ["OUTPUT_DIR", "REUSE_FROM"])
def test_a_scheme_other_than_s3_and_gs_is_one_line(tmp_path: Path, mirror: Mirror, url: str, setting: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    constants: dict[str, object] = {"REUSE_FROM": [url]} if setting == "REUSE_FROM" else {}
    config = configure(tmp_path, mirror, url if setting == "OUTPUT_DIR" else str(tmp_path / "out"), **constants)
    assert cli.main(["--config", str(config)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"{setting} " in lines[0] and "use s3://bucket/prefix or gs://bucket/prefix" in \
        lines[0], lines
    assert "STORAGE_OPTIONS" not in lines[0] and ".[" not in lines[0], "no extra that does not exist is named"


# ---------------------------------------------------------------- 9: no credential in a task


def test_no_credential_travels_in_a_pickled_task(tmp_path: Path, mirror: Mirror, s3: Any, bucket: str) -> None:
    from audioset_downloader.engine.worker import ClipWorker
    from audioset_downloader.inputs.settings import load_settings
    from audioset_downloader.outputs.layout import CsvOutputs
    from audioset_downloader.outputs.storage import Store

    secret = "sekrit-" + "9" * 20
    options = {"endpoint_url": os.environ["AWS_ENDPOINT_URL"], "key": "testing", "secret": secret,
               "client_kwargs": {"aws_session_token": secret, "region_name": "us-east-1"}}
    settings = load_settings(configure(tmp_path, mirror, f"s3://{bucket}/p", STORAGE_OPTIONS=options))
    worker = ClipWorker(settings, CsvOutputs(settings.output_dir, CSV_NAME))
    store = Store(f"s3://{bucket}/p", options)
    task = worker.__getstate__()  # what Dask pickles of the worker, but the run's book (a proxy there)
    del task["book"]
    for shipped in (pickle.dumps(task), pickle.dumps(store)):
        assert secret.encode() not in shipped
    again = pickle.loads(pickle.dumps(store))
    assert again.options == {"endpoint_url": options["endpoint_url"], "client_kwargs": {"region_name": "us-east-1"}}
    again.check()  # the worker's own credentials (AWS_* here) reach the store
