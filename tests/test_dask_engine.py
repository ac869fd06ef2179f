"""ENGINE = "dask" on a real LocalCluster of worker processes, and manual sharding with --shard and --merge."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from audioset_downloader import cli
from audioset_downloader.engine.dask_engine import run_shard
from audioset_downloader.engine.worker import ClipWorker
from audioset_downloader.inputs.segments import read_segments
from audioset_downloader.inputs.settings import Settings
from audioset_downloader.outputs.layout import CsvOutputs
from tests.conftest import Mirror, write_config, write_csv
from tests.support.audio import decode, window_offset

distributed = pytest.importorskip("distributed")

# Ten videos on the mirror (one with two windows), one missing from it, one malformed row.
ROWS = [
    f'vid{n:02d}aaaaaa, {n * 7}.500, {n * 7 + 10}.500, "/m/09x0r,/m/0bt9lr"' for n in range(10)
] + ['vid03aaaaaa, 200.000, 210.000, "/m/04rlf"', 'missingvid0, 0.000, 10.000, "/m/09x0r"', 'bad, 1, 2, "/m/x"']
WRITTEN = 11


@pytest.fixture(scope="module")
def scheduler() -> str:
    """One LocalCluster of two worker processes for the module; tests connect by address."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def configure(tmp_path: Path, mirror: Mirror, out: str, **constants: object) -> Path:
    for n in range(10):
        if not (mirror.root / f"vid{n:02d}aaaaaa.m4a").exists():
            mirror.add(f"vid{n:02d}aaaaaa")
    csv_path = tmp_path / "eval_segments.csv"
    if not csv_path.exists():
        write_csv(csv_path, ROWS)
    settings = {"CSV_FILE_NAMES": [str(csv_path)], "YTB_URL_FORMAT": mirror.url_format, "BACKEND": "direct",
                "OUTPUT_DIR": str(tmp_path / out), "TIMER": 0, "RETRIES": 0, "WORKERS": 2, "SHARD_SIZE": 3}
    settings.update(constants)
    return write_config(tmp_path / f"{out}.py", **settings)


def manifest(out: Path, kind: str) -> list[dict[str, str]]:
    with open(out / f"eval_segments.{kind}.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def state(out: Path) -> tuple[list, list, dict[str, bytes]]:
    """Rows (order aside), failures, and the clips byte for byte."""
    rows = sorted(tuple(row.values()) for row in manifest(out, "split-pos"))
    failed = sorted((row["YTID"], row["reason"]) for row in manifest(out, "failed"))
    clips = {path.name: path.read_bytes() for path in (out / "eval_segments").iterdir()
             if path.name != "metadata.csv"}
    return rows, failed, clips


def test_dask_writes_what_the_local_engine_writes(tmp_path: Path, mirror: Mirror) -> None:
    assert cli.main(["--config", str(configure(tmp_path, mirror, "local"))]) == 0
    # DASK_SCHEDULER = "local": the run starts its own LocalCluster of DASK_WORKERS processes.
    config = configure(tmp_path, mirror, "dask", ENGINE="dask", DASK_SCHEDULER="local", DASK_WORKERS=2)
    assert cli.main(["--config", str(config)]) == 0
    local, dask = state(tmp_path / "local"), state(tmp_path / "dask")
    assert len(local[0]) == WRITTEN
    assert local[1] == [("bad", "invalid_row"), ("missingvid0", "unavailable")]
    assert dask == local
    summary = (tmp_path / "dask" / "eval_segments.summary.json").read_text()
    assert f'"written": {WRITTEN}' in summary
    clip = decode(tmp_path / "dask" / "eval_segments" / "vid03aaaaaa_200000.wav")
    assert abs(window_offset(clip, 200.0)) < 0.02


@pytest.mark.parametrize(("first", "second"), [("local", "dask"), ("dask", "local")])
def test_a_run_started_on_one_engine_finishes_on_the_other(tmp_path: Path, mirror: Mirror, scheduler: str,
                                                           first: str, second: str) -> None:
    assert cli.main(["--config", str(configure(tmp_path, mirror, "reference"))]) == 0
    engines = {"local": {"ENGINE": "local"}, "dask": {"ENGINE": "dask", "DASK_SCHEDULER": scheduler}}
    assert cli.main(["--config", str(configure(tmp_path, mirror, "mixed", TIMER=3, **engines[first]))]) == 0
    assert len(manifest(tmp_path / "mixed", "split-pos")) == 4  # TIMER = 3: four clips
    requests_before = sum(mirror.server.requests.values())
    assert cli.main(["--config", str(configure(tmp_path, mirror, "mixed", **engines[second]))]) == 0
    assert state(tmp_path / "mixed") == state(tmp_path / "reference")
    fetched = {path for path, count in mirror.server.requests.items() if count}
    assert len(fetched) == 11  # every video on the mirror, and the missing one, at some point
    assert sum(mirror.server.requests.values()) > requests_before  # the second engine did the rest


def test_dask_packs_the_same_shards_as_the_local_engine(tmp_path: Path, mirror: Mirror, scheduler: str) -> None:
    import tarfile

    def held(out: str) -> tuple[list[int], dict[str, bytes]]:
        sizes, members = [], {}
        for shard in sorted((tmp_path / out / "eval_segments").glob("eval_segments-*.tar")):
            with tarfile.open(shard) as tar:
                found = {info.name: tar.extractfile(info).read() for info in tar}
            sizes.append(len(found) // 2)
            members.update(found)
        return sizes, members

    shards = {"OUTPUT_LAYOUT": "webdataset", "CLIPS_PER_TAR": 4}
    assert cli.main(["--config", str(configure(tmp_path, mirror, "local", **shards))]) == 0
    config = configure(tmp_path, mirror, "dask", ENGINE="dask", DASK_SCHEDULER=scheduler, **shards)
    assert cli.main(["--config", str(config)]) == 0
    # Workers write clips loose; the driver, which records them, packs them.
    assert held("dask") == held("local")
    assert held("dask")[0] == [4, 4, 3] and len(held("dask")[1]) == 2 * WRITTEN
    assert sorted(p.suffix for p in (tmp_path / "dask" / "eval_segments").iterdir()) == [".tar"] * 3


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path: Path, mirror: Mirror) -> None:
    mirror.server.latency_s = 0.15  # slow enough that the kill lands while shards are running
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        config = configure(tmp_path, mirror, "out", ENGINE="dask", DASK_SCHEDULER=cluster.scheduler_address,
                           SHARD_SIZE=2, WORKERS=1)
        codes: list[int] = []
        run = threading.Thread(target=lambda: codes.append(cli.main(["--config", str(config)])))
        run.start()
        clips = tmp_path / "out" / "eval_segments"
        deadline = time.monotonic() + 60
        while not any(p.suffix == ".wav" for p in clips.glob("*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = client.run(os.getpid)
        victim = max(pids.values())
        os.kill(victim, signal.SIGKILL)
        run.join(timeout=180)
        assert not run.is_alive() and codes == [0]
        assert victim not in client.run(os.getpid).values()  # it really died (the nanny started another)
    rows = manifest(tmp_path / "out", "split-pos")
    assert len(rows) == WRITTEN == len({(r["YTID"], r["start_seconds"]) for r in rows})
    assert sorted(p.name for p in clips.iterdir()) == sorted([r["file"].split("/")[1] for r in rows] + ["metadata.csv"])
    for row in rows:
        clip = decode(tmp_path / "out" / row["file"])
        assert abs(clip.duration - 10) < 0.02 and abs(window_offset(clip, float(row["start_seconds"]))) < 0.02


def test_a_retried_shard_keeps_clips_finished_in_this_run(tmp_path: Path, mirror: Mirror) -> None:
    mirror.add("vid00aaaaaa")
    mirror.add("vid01aaaaaa")
    csv_path = write_csv(tmp_path / "eval_segments.csv", ROWS[:2])
    segments = list(read_segments(csv_path))
    settings = Settings(backend="direct", ytb_url_format=mirror.url_format, output_dir=tmp_path / "out", workers=1)
    outputs = CsvOutputs.for_csv(settings.output_dir, csv_path)
    outputs.prepare()
    worker = ClipWorker(settings, outputs)
    (outputs.clip_dir / "vid01aaaaaa.wav").write_bytes(b"from an earlier run, with no row")
    since = time.time()
    (outputs.clip_dir / "vid00aaaaaa.wav").write_bytes(b"written by the lost attempt")
    results = {r.segment.ytid: r for r in run_shard(worker, segments, since)[0]}
    assert results["vid00aaaaaa"].file == "eval_segments/vid00aaaaaa.wav"
    assert mirror.requests_for("vid00aaaaaa") == 0  # kept, not fetched again
    assert mirror.requests_for("vid01aaaaaa") > 0  # older than the run: fetched again
    assert decode(outputs.clip_dir / "vid01aaaaaa.wav").duration == pytest.approx(10, abs=0.02)


def test_shards_cover_every_row_once_and_merge_reunites_them(tmp_path: Path, mirror: Mirror) -> None:
    assert cli.main(["--config", str(configure(tmp_path, mirror, "whole"))]) == 0
    config = configure(tmp_path, mirror, "unused")
    seen: list[tuple[str, str]] = []
    for k in range(3):
        assert cli.main(["--config", str(config), "--shard", f"{k}/3", "--output-dir", str(tmp_path / f"s{k}")]) == 0
        seen += [(row["YTID"], row["start_seconds"]) for row in manifest(tmp_path / f"s{k}", "split-pos")]
        seen += [(row["YTID"], row["start_seconds"]) for row in manifest(tmp_path / f"s{k}", "failed")
                 if row["reason"] != "invalid_row"]
    assert sorted(seen) == sorted(set(seen)) and len(seen) == WRITTEN + 1  # every valid row exactly once
    assert sum(len(manifest(tmp_path / f"s{k}", "split-pos")) > 0 for k in range(3)) >= 2  # really spread

    shards = [str(tmp_path / f"s{k}") for k in range(3)]
    assert cli.main(["--config", str(config), "--output-dir", str(tmp_path / "merged"), "--merge", *shards]) == 0
    assert cli.main(["--config", str(config), "--output-dir", str(tmp_path / "merged"), "--merge", *shards]) == 0
    merged, whole = state(tmp_path / "merged"), state(tmp_path / "whole")
    assert merged[0] == whole[0] and merged[2] == whole[2]  # the same rows and clips, once
    assert ("missingvid0", "unavailable") in merged[1]
    metadata = (tmp_path / "merged" / "eval_segments" / "metadata.csv").read_text().splitlines()
    assert len(metadata) == WRITTEN + 1


def test_merge_refuses_rows_naming_files_outside_the_clip_folder(tmp_path: Path, mirror: Mirror,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "other"
    (source / "eval_segments").mkdir(parents=True)
    (tmp_path / "secret.wav").write_bytes(b"not yours")
    (source / "eval_segments.split-pos.csv").write_text(
        "file,YTID,start_seconds,end_seconds,positive_labels,label_names\n"
        '../secret.wav,abcdefghijk,0.000,10.000,"/m/09x0r",Speech\n')
    (source / "eval_segments" / "secret.wav").write_bytes(b"listed, so the row is live")
    config = configure(tmp_path, mirror, "merged")
    assert cli.main(["--config", str(config), "--merge", str(source)]) == 0
    assert "eval_segments: 0 clips added, 0 already there, 0 failures carried over, 1 rows refused" in \
        capsys.readouterr().out
    assert manifest(tmp_path / "merged", "split-pos") == []
    assert not any((tmp_path / "merged").rglob("*.wav"))


def test_an_unreachable_scheduler_is_one_clear_error(tmp_path: Path, mirror: Mirror, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from audioset_downloader.engine import dask_engine

    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT_S", 2)  # the default waits 30 s
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{unused.getsockname()[1]}"  # bound, never listening: nobody answers
        config = configure(tmp_path, mirror, "out", ENGINE="dask", DASK_SCHEDULER=address)
        assert cli.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: DASK_SCHEDULER {address}: cannot connect (")
    assert "start it with: dask scheduler" in err
    assert not list((tmp_path / "out").glob("*.csv"))  # nothing recorded


@contextlib.contextmanager
def cli_cluster(hosts: list[str]) -> Iterator[str]:
    """A cluster as a user starts one: `dask scheduler`, then `dask worker --host H` per machine (here a
    loopback address each, 127.0.0.2, 127.0.0.3, ...)."""
    with cli_cluster_processes(hosts) as (address, _):
        yield address


@contextlib.contextmanager
def cli_cluster_processes(hosts: list[str]) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """cli_cluster's scheduler address, and its worker processes (to kill one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    command = [sys.executable, "-m", "dask"]
    processes = [subprocess.Popen([*command, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                   "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        processes += [subprocess.Popen([*command, "worker", address, "--host", host, "--nthreads", "1",
                                        "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                      for host in hosts]
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(len(hosts), timeout=60)
        yield address, processes[1:]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def test_per_machine_identity_makes_each_worker_machine_an_identity_of_its_own(tmp_path: Path,
                                                                              mirror: Mirror) -> None:
    with cli_cluster(["127.0.0.2", "127.0.0.3"]) as address:
        config = configure(tmp_path, mirror, "machines", ENGINE="dask", DASK_SCHEDULER=address,
                           PER_MACHINE_IDENTITY=True, SHARD_SIZE=1)
        assert cli.main(["--config", str(config)]) == 0
    out = tmp_path / "machines"
    assert len(manifest(out, "split-pos")) == WRITTEN
    summary = json.loads((out / "eval_segments.summary.json").read_text())
    # One identity a machine, named after the address its worker listens on; no "default" shared by all.
    names = [entry["name"] for entry in summary["identities"]]
    assert sorted(names) == ["127.0.0.2", "127.0.0.3"], names
    assert set(summary["by_identity"]) == set(names) and sum(summary["by_identity"].values()) == WRITTEN
    assert all(entry["clips"] >= 1 for entry in summary["identities"])


def test_per_machine_identity_with_one_proxy_for_all_is_refused(tmp_path: Path, mirror: Mirror,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = configure(tmp_path, mirror, "refused", ENGINE="dask", PER_MACHINE_IDENTITY=True,
                       PROXY="http://127.0.0.1:3128")
    assert cli.main(["--config", str(config)]) == 2
    assert "PER_MACHINE_IDENTITY = True with PROXY: every machine would go out as that one identity" in \
        capsys.readouterr().err
    assert not (tmp_path / "refused").exists()


def test_the_dry_run_counts_one_machine_and_says_so(tmp_path: Path, mirror: Mirror,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = configure(tmp_path, mirror, "planned", ENGINE="dask", PER_MACHINE_IDENTITY=True, BACKEND="pytube",
                       IDENTITIES=[{"name": "lab", "proxy": "http://127.0.0.1:3128"}])
    assert cli.main(["--config", str(config), "--dry-run"]) == 0
    total = [line for line in capsys.readouterr().out.splitlines() if line.startswith("total:")]
    # The proxy every machine shares, and one machine's own address: two guests' paces.
    assert total and "at 9.0 clips/min" in total[0] and "pace: 2 at 270 clips an hour" in total[0], total
    assert total[0].endswith("counting one worker machine (PER_MACHINE_IDENTITY): each more adds its own identity")
