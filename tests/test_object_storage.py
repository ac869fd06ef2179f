"""OUTPUT_DIR on object storage: moto's S3 server on 127.0.0.1, reached by the real s3fs client over HTTP.

Nothing of ours is mocked: the runs below are the command line's, the objects are read back
through s3fs as a user would, and the clips are decoded.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audioset_downloader import cli
from tests.conftest import REPO, Mirror, write_config, write_csv
from tests.support.audio import decode, window_offset

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

CSV_NAME = "eval_segments"
# Ten videos on the mirror (one with two windows), one missing from it, one malformed row.
ROWS = [f'vid{n:02d}aaaaaa, {n * 7}.500, {n * 7 + 10}.500, "/m/09x0r,/m/0bt9lr"' for n in range(10)] + [
    'vid03aaaaaa, 200.000, 210.000, "/m/04rlf"', 'missingvid0, 0.000, 10.000, "/m/09x0r"', 'bad, 1, 2, "/m/x"']
WINDOWS = {(f"vid{n:02d}aaaaaa", f"{n * 7}.500") for n in range(10)} | {("vid03aaaaaa", "200.000")}
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    """moto's S3 server on 127.0.0.1, and the s3fs client a user's machine would have (AWS_* variables)."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {name: os.environ.get(name) for name in (*CREDENTIALS, "AWS_ENDPOINT_URL")}
    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=f"http://{host}:{port}")
    import fsspec

    try:
        yield fsspec.filesystem("s3", skip_instance_cache=True)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


@pytest.fixture
def bucket(s3: Any, tmp_path: Path) -> str:
    name = "b" + str(abs(hash(str(tmp_path))))[:20]
    s3.mkdir(name)
    return name


def configure(tmp_path: Path, mirror: Mirror, out: str, **constants: object) -> Path:
    for n in range(10):
        if not (mirror.root / f"vid{n:02d}aaaaaa.m4a").exists():
            mirror.add(f"vid{n:02d}aaaaaa")
    csv_path = tmp_path / f"{CSV_NAME}.csv"
    if not csv_path.exists():
        write_csv(csv_path, ROWS)
    settings = {"CSV_FILE_NAMES": [str(csv_path)], "YTB_URL_FORMAT": mirror.url_format, "BACKEND": "direct",
                "OUTPUT_DIR": out, "TIMER": 0, "RETRIES": 0, "WORKERS": 2, "SHARD_SIZE": 3,
                "CACHE_DIR": str(tmp_path / "cache"), "REQUESTS_PER_MINUTE": None}
    settings.update(constants)
    return write_config(tmp_path / f"config_{len(list(tmp_path.glob('config_*')))}.py", **settings)


def objects(s3: Any, prefix: str) -> list[str]:
    """The objects under ``prefix`` now (the client's listing cache forgotten)."""
    s3.invalidate_cache()
    return [path for path in s3.find(prefix) if path != prefix]


def manifests(s3: Any, work: str) -> list[str]:
    """The work manifests in a CSV's work folder (not the markers of attempts under way)."""
    return [path for path in objects(s3, work) if path.endswith(".json")]


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def stored(s3: Any, url: str, name: str) -> str:
    return s3.cat_file(f"{url.removeprefix('s3://')}/{name}").decode()


def tar_samples(s3: Any, url: str) -> Counter[tuple[str, str]]:
    """Every sample of every tar on the store, by window (YTID, start), counted; each clip checked to decode."""
    found: Counter[tuple[str, str]] = Counter()
    for path in objects(s3, f"{url.removeprefix('s3://')}/{CSV_NAME}"):
        if path.endswith(".tar"):
            with tarfile.open(fileobj=io.BytesIO(s3.cat_file(path))) as tar:
                for info in tar:
                    if info.name.endswith(".json"):
                        meta = json.loads(tar.extractfile(info).read())
                        found[(meta["YTID"], f"{meta['start_seconds']:.3f}")] += 1
    return found


def test_a_run_to_s3_holds_what_a_local_run_holds_and_a_rerun_fetches_nothing(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str) -> None:
    assert cli.main(["--config", str(configure(tmp_path, mirror, str(tmp_path / "local")))]) == 0
    url = f"s3://{bucket}/runs/audioset"
    config = configure(tmp_path, mirror, url)
    assert cli.main(["--config", str(config)]) == 0

    local = tmp_path / "local"
    remote_rows = rows_of(stored(s3, url, f"{CSV_NAME}.split-pos.csv"))
    local_rows = rows_of((local / f"{CSV_NAME}.split-pos.csv").read_text())
    ignored = ("peak_dbfs", "rms_dbfs")  # measured on each cut: the same window, bytes may differ by encoder state

    def comparable(rows: list[dict[str, str]]) -> list[tuple]:
        return sorted(tuple(v for k, v in row.items() if k not in ignored) for row in rows)

    assert comparable(remote_rows) == comparable(local_rows) and len(remote_rows) == len(WINDOWS)
    assert comparable(rows_of(stored(s3, url, f"{CSV_NAME}.failed.csv"))) == comparable(rows_of(
        (local / f"{CSV_NAME}.failed.csv").read_text()))
    # Each clip is an object of its own, and holds its window.
    row = next(row for row in remote_rows if row["YTID"] == "vid03aaaaaa" and row["start_seconds"] == "21.500")
    clip = tmp_path / "clip.wav"
    clip.write_bytes(s3.cat_file(f"{bucket}/runs/audioset/{row['file']}"))
    audio = decode(clip)
    assert audio.rate == 44100 and abs(audio.duration - 10.0) < 0.03
    assert abs(window_offset(audio, 21.5)) < 0.05
    names = {path.rpartition("/")[2] for path in objects(s3, f"{bucket}/runs/audioset")}
    assert {f"{CSV_NAME}.summary.json", f"{CSV_NAME}.README.md", f"{CSV_NAME}_dl.log", "metadata.csv"} <= names
    assert not objects(s3, f"{bucket}/runs/audioset/{CSV_NAME}.work"), "work manifests are joined, then removed"

    before = sum(mirror.server.requests.values())
    assert cli.main(["--config", str(config)]) == 0
    assert sum(mirror.server.requests.values()) == before, "a rerun fetches no window the store holds"
    assert len(rows_of(stored(s3, url, f"{CSV_NAME}.split-pos.csv"))) == len(WINDOWS)


def test_webdataset_shards_on_s3_hold_each_window_once(tmp_path: Path, mirror: Mirror, s3: Any, bucket: str) -> None:
    url = f"s3://{bucket}/wds"
    config = configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset", SHARD_SIZE=4)
    assert cli.main(["--config", str(config)]) == 0
    assert tar_samples(s3, url) == Counter(dict.fromkeys(WINDOWS, 1))
    rows = rows_of(stored(s3, url, f"{CSV_NAME}.split-pos.csv"))
    # Each row names the tar and the member that hold its clip.
    for row in rows:
        with tarfile.open(fileobj=io.BytesIO(s3.cat_file(f"{bucket}/wds/{row['file']}"))) as tar:
            assert row["member"] in tar.getnames()
    before = sum(mirror.server.requests.values())
    assert cli.main(["--config", str(config)]) == 0
    assert sum(mirror.server.requests.values()) == before
    assert tar_samples(s3, url) == Counter(dict.fromkeys(WINDOWS, 1))


def test_a_tar_no_row_names_is_removed_and_its_windows_fetched_once(tmp_path: Path, mirror: Mirror, s3: Any,
                                                                    bucket: str) -> None:
    """What a task killed between putting its tar up and its rows leaves: a tar no manifest names."""
    url = f"s3://{bucket}/orphan"
    config = configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset", SHARD_SIZE=4)
    assert cli.main(["--config", str(config)]) == 0
    rows = rows_of(stored(s3, url, f"{CSV_NAME}.split-pos.csv"))
    first = rows[0]["file"]
    # The rows of the first tar lost, the tar left: as if its task's manifest never went up.
    kept = [row for row in rows if row["file"] != first]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(kept)
    s3.pipe_file(f"{bucket}/orphan/{CSV_NAME}.split-pos.csv", text.getvalue().encode())
    lost = {row["YTID"] for row in rows if row["file"] == first}
    mirror.server.reset_counts()
    assert cli.main(["--config", str(config)]) == 0
    assert not s3.exists(f"{bucket}/orphan/{first}") or first in {
        row["file"] for row in rows_of(stored(s3, url, f"{CSV_NAME}.split-pos.csv"))}
    assert tar_samples(s3, url) == Counter(dict.fromkeys(WINDOWS, 1))
    # The rerun fetched the lost windows, and no other.
    assert {ytid for ytid, _ in WINDOWS if mirror.requests_for(ytid)} == lost


def status_json(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert cli.main(["--config", str(config), "--status", "--json"]) == 0
    return capsys.readouterr().out


def test_a_driver_killed_mid_run_loses_nothing_its_shards_put_up(tmp_path: Path, mirror: Mirror, s3: Any,
                                                                 bucket: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    url = f"s3://{bucket}/killed"
    config = configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset", SHARD_SIZE=2, WORKERS=1)
    mirror.server.latency_s = 0.3
    driver = subprocess.Popen([sys.executable, str(REPO / "AudioDownloader.py"), "--config", str(config)],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = f"{bucket}/killed/{CSV_NAME}.work"
    try:
        deadline = time.monotonic() + 120
        while len(manifests(s3, work)) < 2 and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        running = json.loads(status_json(config, capsys))["csvs"][0]
        assert running["running"] and running["pid"] == driver.pid, running
        os.kill(driver.pid, signal.SIGKILL)
    finally:
        driver.wait(timeout=30)
    left = [path for path in objects(s3, work) if path.endswith(".json")]
    assert len(left) >= 2, "the killed run left its shards' manifests"
    # --dry-run counts what the killed run's shards put up as done, as the rerun will.
    assert cli.main(["--config", str(config), "--dry-run"]) == 0
    planned = [line for line in capsys.readouterr().out.splitlines() if line.startswith("total:")]
    done = sum(len(json.loads(s3.cat_file(path))["split_pos"]) for path in left)
    assert planned and planned[0].startswith(f"total: {len(ROWS) - 1 - done} clips to attempt"), (planned, done)
    # --status from another machine would say so: the killed run's heartbeat, up; its shards' rows, counted.
    status = json.loads(status_json(config, capsys))["csvs"][0]
    assert status["written"] >= 2 and 0 < status["left"] <= len(ROWS) - status["written"], status
    done_before = {(row[1], row[2]) for path in left for row in json.loads(s3.cat_file(path))["split_pos"]}
    assert done_before

    mirror.server.latency_s = 0.0
    mirror.server.reset_counts()
    assert cli.main(["--config", str(config)]) == 0
    assert tar_samples(s3, url) == Counter(dict.fromkeys(WINDOWS, 1))
    assert all(mirror.requests_for(ytid) == 0 for ytid, _ in done_before
               if all(window[0] != ytid or window in done_before for window in WINDOWS))
    assert len(rows_of(stored(s3, url, f"{CSV_NAME}.split-pos.csv"))) == len(WINDOWS)
    assert not manifests(s3, work)


# ---------------------------------------------------------------- a cluster with no shared disk


def test_a_dask_cluster_writes_to_s3_and_a_worker_killed_mid_run_costs_no_window_twice(
        tmp_path: Path, mirror: Mirror, s3: Any, bucket: str) -> None:
    pytest.importorskip("distributed")
    from tests.test_dask_engine import cli_cluster_processes

    url = f"s3://{bucket}/cluster"
    mirror.server.latency_s = 0.2
    with cli_cluster_processes(["127.0.0.2", "127.0.0.3"]) as (address, workers):
        config = configure(tmp_path, mirror, url, ENGINE="dask", DASK_SCHEDULER=address, PER_MACHINE_IDENTITY=True,
                           OUTPUT_LAYOUT="webdataset", SHARD_SIZE=2, WORKERS=1)
        codes: list[int] = []
        driver = threading.Thread(target=lambda: codes.append(cli.main(["--config", str(config)])))
        driver.start()
        work = f"{bucket}/cluster/{CSV_NAME}.work"
        deadline = time.monotonic() + 120
        while len(manifests(s3, work)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers[0].send_signal(signal.SIGKILL)  # mid-run: the other worker takes its shard over
        driver.join(timeout=240)
        assert codes == [0]
    mirror.server.latency_s = 0.0
    assert tar_samples(s3, url) == Counter(dict.fromkeys(WINDOWS, 1))
    summary = json.loads(stored(s3, url, f"{CSV_NAME}.summary.json"))
    assert sorted(entry["name"] for entry in summary["identities"]) == ["127.0.0.2", "127.0.0.3"]
    assert summary["written"] == len(WINDOWS)
    assert not manifests(s3, f"{bucket}/cluster/{CSV_NAME}.work"), "work manifests are joined, then removed"

    before = sum(mirror.server.requests.values())
    rerun = configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset")  # on this machine, the local engine
    assert cli.main(["--config", str(rerun)]) == 0
    assert sum(mirror.server.requests.values()) == before, "the rerun makes no media request"


# ---------------------------------------------------------------- bad input: one line, exit 2, nothing fetched


def run_refused(tmp_path: Path, mirror: Mirror, capsys: pytest.CaptureFixture[str], **constants: object) -> str:
    config = configure(tmp_path, mirror, **constants)
    assert cli.main(["--config", str(config)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert sum(mirror.server.requests.values()) == 0, "refused before any clip is fetched"
    return lines[0]


def test_a_bucket_that_does_not_exist_is_refused(tmp_path: Path, mirror: Mirror, s3: Any,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    line = run_refused(tmp_path, mirror, capsys, out="s3://no-such-bucket-here/x")
    assert "OUTPUT_DIR s3://no-such-bucket-here/x: the bucket 'no-such-bucket-here' does not exist" in line


def test_refused_credentials_are_said_in_one_line_and_never_shown(tmp_path: Path, mirror: Mirror, s3: Any,
                                                                  bucket: str, capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import settings as moto_settings

    monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # the server checks keys from now on
    line = run_refused(tmp_path, mirror, capsys, out=f"s3://{bucket}/x",
                       STORAGE_OPTIONS={"key": "AKIAUNKNOWN", "secret": "sekrit-value-42"})
    assert f"OUTPUT_DIR s3://{bucket}/x: credentials refused" in line and "AWS_ACCESS_KEY_ID" in line
    assert "sekrit-value-42" not in line


def test_an_option_the_library_does_not_take_is_refused(tmp_path: Path, mirror: Mirror, s3: Any, bucket: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    line = run_refused(tmp_path, mirror, capsys, out=f"s3://{bucket}/x", STORAGE_OPTIONS={"retries": 1})
    assert line.startswith("error: STORAGE_OPTIONS: ") and "unexpected keyword argument 'retries'" in line


def test_gs_without_gcsfs_names_the_extra(tmp_path: Path, mirror: Mirror, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("gcsfs is installed here")
    line = run_refused(tmp_path, mirror, capsys, out="gs://bucket/audioset")
    assert line == 'error: OUTPUT_DIR gs://bucket/audioset: needs gcsfs, which is not installed; install it with: ' \
                   'pip install -e ".[gcs]"'


def test_s3_without_s3fs_names_the_extra(tmp_path: Path, mirror: Mirror) -> None:
    """In a Python that cannot import s3fs (as after a base install): the same one line."""
    config = configure(tmp_path, mirror, "s3://bucket/audioset")
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "s3fs.py").write_text("raise ImportError('No module named s3fs')\n")  # shadows the installed one
    done = subprocess.run([sys.executable, str(REPO / "AudioDownloader.py"), "--config", str(config)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": f"{blocked}{os.pathsep}{REPO}"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == ('error: OUTPUT_DIR s3://bucket/audioset: needs s3fs, which is not installed; '
                                   'install it with: pip install -e ".[s3]"')
    assert sum(mirror.server.requests.values()) == 0


def test_storage_options_reach_the_store_and_no_secret_is_written(tmp_path: Path, mirror: Mirror, s3: Any,
                                                                  bucket: str, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # only STORAGE_OPTIONS says where the store is
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    secret = "sekrit-" + "7" * 20
    url = f"s3://{bucket}/options"
    config = configure(tmp_path, mirror, url, STORAGE_OPTIONS={"endpoint_url": endpoint, "key": "testing",
                                                               "secret": secret})
    assert cli.main(["--config", str(config)]) == 0
    assert cli.main(["--config", str(config), "--status"]) == 0
    said = capsys.readouterr()
    assert secret not in said.out + said.err
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert len(rows_of(stored(s3, url, f"{CSV_NAME}.split-pos.csv"))) == len(WINDOWS)
    for path in objects(s3, f"{bucket}/options"):
        if not path.endswith((".wav", ".tar")):
            assert secret.encode() not in s3.cat_file(path), path
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_verify_repair_report_and_merge_work_on_the_url(tmp_path: Path, mirror: Mirror, s3: Any, bucket: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    url = f"s3://{bucket}/done"
    config = configure(tmp_path, mirror, url)
    assert cli.main(["--config", str(config)]) == 0
    assert cli.main(["--config", str(config), "--verify"]) == 0
    assert f"{len(WINDOWS)} rows checked, 0 problems" in capsys.readouterr().out

    s3.rm_file(f"{bucket}/done/{CSV_NAME}/vid05aaaaaa.wav")  # lost on the store
    assert cli.main(["--config", str(config), "--verify", "--repair"]) == 1
    assert "1 problems; repaired: 1 rows" in capsys.readouterr().out
    rows = rows_of(stored(s3, url, f"{CSV_NAME}.split-pos.csv"))
    assert len(rows) == len(WINDOWS) - 1 and "vid05aaaaaa" not in {row["YTID"] for row in rows}
    mirror.server.reset_counts()
    assert cli.main(["--config", str(config)]) == 0
    assert mirror.requests_for("vid05aaaaaa") >= 1 and sum(mirror.server.requests.values()) == \
        mirror.requests_for("vid05aaaaaa"), "the rerun fetches the repaired window only"
    assert s3.exists(f"{bucket}/done/{CSV_NAME}/vid05aaaaaa.wav")

    assert cli.main(["--config", str(config), "--report"]) == 0
    report = rows_of(stored(s3, url, f"{CSV_NAME}.report.csv"))
    assert {row["mid"]: row["written"] for row in report}["/m/0bt9lr"] == str(len(WINDOWS) - 1)

    merged = tmp_path / "merged"
    local = configure(tmp_path, mirror, str(merged))
    assert cli.main(["--config", str(local), "--merge", url]) == 0
    assert len(rows_of((merged / f"{CSV_NAME}.split-pos.csv").read_text())) == len(WINDOWS)
    assert len(list((merged / CSV_NAME).glob("*.wav"))) == len(WINDOWS)


@pytest.mark.parametrize("layout", ["files", "webdataset"])
def test_reuse_from_a_url_takes_its_clips_without_a_request(tmp_path: Path, mirror: Mirror, s3: Any, bucket: str,
                                                            layout: str) -> None:
    url = f"s3://{bucket}/earlier"
    assert cli.main(["--config", str(configure(tmp_path, mirror, url, OUTPUT_LAYOUT=layout))]) == 0
    mirror.server.reset_counts()
    here = tmp_path / "here"
    config = configure(tmp_path, mirror, str(here), REUSE_FROM=[url])
    assert cli.main(["--config", str(config)]) == 0
    assert sum(count for path, count in mirror.server.requests.items() if path != "/missingvid0.m4a") == 0
    rows = rows_of((here / f"{CSV_NAME}.split-pos.csv").read_text())
    assert len(rows) == len(WINDOWS) and {row["backend"] for row in rows} == {"reused"}
    row = next(row for row in rows if row["YTID"] == "vid03aaaaaa" and row["start_seconds"] == "200.000")
    audio = decode(here / row["file"])
    assert abs(audio.duration - 10.0) < 0.03 and abs(window_offset(audio, 200.0)) < 0.05


def test_an_upload_cut_short_leaves_no_object(s3: Any, bucket: str) -> None:
    """fsspec's own `with` would commit the parts written so far; the store's writer discards them."""
    from audioset_downloader.outputs.storage import UPLOAD_PART, Store

    store = Store(f"s3://{bucket}/cut")
    with pytest.raises(RuntimeError), store.writer("shard.tar") as target:
        target.write(os.urandom(UPLOAD_PART + 1024))  # one part up already: a multipart upload under way
        raise RuntimeError("killed mid-shard")
    assert objects(s3, f"{bucket}/cut") == []
    with store.writer("shard.tar") as target:
        target.write(b"x" * (UPLOAD_PART + 1024))
    assert s3.cat_file(f"{bucket}/cut/shard.tar") == b"x" * (UPLOAD_PART + 1024)


def test_a_layout_mismatch_names_the_url_not_the_stage_folder(tmp_path: Path, mirror: Mirror, s3: Any, bucket: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    url = f"s3://{bucket}/layout"
    assert cli.main(["--config", str(configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset"))]) == 0
    capsys.readouterr()
    assert cli.main(["--config", str(configure(tmp_path, mirror, url))]) == 2
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and f"{url}/{CSV_NAME}.split-pos.csv: its clips are in the webdataset layout" in error[0]
    assert "stage" not in error[0]


def test_remove_exist_downloads_empties_the_store_first(tmp_path: Path, mirror: Mirror, s3: Any, bucket: str) -> None:
    url = f"s3://{bucket}/again"
    assert cli.main(["--config", str(configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset"))]) == 0
    first = objects(s3, f"{bucket}/again/{CSV_NAME}")
    mirror.server.reset_counts()
    config = configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset", REMOVE_EXIST_DOWNLOADS=True, SHARD_SIZE=6)
    assert cli.main(["--config", str(config)]) == 0
    assert all(mirror.requests_for(ytid) >= 1 for ytid, _ in WINDOWS), "every window fetched again"
    assert tar_samples(s3, url) == Counter(dict.fromkeys(WINDOWS, 1))
    assert len(objects(s3, f"{bucket}/again/{CSV_NAME}")) < len(first), "the old shards went, not kept beside"


def test_a_store_gone_mid_run_stops_it_in_one_line_and_a_rerun_finishes(tmp_path: Path, mirror: Mirror, s3: Any,
                                                                         bucket: str,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The store stops answering mid-run (an outage): the run ends with one line, and a rerun once it is back
    finishes with each window once. moto keeps its buckets in this process, so a server on another port
    serves the same objects."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"s3://{bucket}/outage"
    # s3fs's and botocore's own retries shortened (options a user may give too): the outage is not sat out.
    storage = {"endpoint_url": f"http://{host}:{port}",
               "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2}}
    options = {"STORAGE_OPTIONS": storage, "OUTPUT_LAYOUT": "webdataset",
               "SHARD_SIZE": 2, "WORKERS": 1, "RETRIES": 0}
    mirror.server.latency_s = 0.2
    codes: list[int] = []
    driver = threading.Thread(target=lambda: codes.append(cli.main(["--config", str(
        configure(tmp_path, mirror, url, **options))])))
    driver.start()
    deadline = time.monotonic() + 60
    while not manifests(s3, f"{bucket}/outage/{CSV_NAME}.work") and time.monotonic() < deadline:
        time.sleep(0.05)
    server.stop()
    driver.join(timeout=120)
    assert codes == [1]
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: OUTPUT_DIR {url}: could not put up"), errors
    assert errors[0].endswith("rerun once the store answers: finished clips are kept"), errors

    mirror.server.latency_s = 0.0
    assert cli.main(["--config", str(configure(tmp_path, mirror, url, OUTPUT_LAYOUT="webdataset"))]) == 0
    assert tar_samples(s3, url) == Counter(dict.fromkeys(WINDOWS, 1))
    assert len(rows_of(stored(s3, url, f"{CSV_NAME}.split-pos.csv"))) == len(WINDOWS)
