"""OUTPUT_LAYOUT = "webdataset": tar shards of CLIPS_PER_TAR samples, kill-safe, verified, merged, loadable."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from audioset_downloader import cli
from audioset_downloader.inputs.segments import read_segments
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.ledger import MEASURE_COLUMNS, Ledger
from tests.conftest import REPO, run_script, write_config, write_csv
from tests.support.audio import decode, window_offset
from tests.support.server import MediaServer

PER_TAR = 5
NAME = "eval_segments"
LABELS = ["/m/0bt9lr,/m/05tny_", "/m/09x0r", "/m/0bt9lr"]
NAMES = {"/m/0bt9lr": "Dog", "/m/05tny_": "Bark", "/m/09x0r": "Speech"}


@dataclass
class Site:
    """A CSV of a few dozen segments and the mirror that serves them."""

    root: Path
    csv: Path
    server: MediaServer
    written: dict[tuple[str, float, float], list[str]]  # segments that exist: (YTID, start, end) -> labels

    def config(self, name: str, **extra: object) -> Path:
        constants = dict(CSV_FILE_NAMES=[str(self.csv)], BACKEND="direct", OUTPUT_DIR=str(self.root / name),
                         YTB_URL_FORMAT=self.server.base_url + "/{YTID}.m4a", TIMER=0, WORKERS=3,
                         SAMPLE_RATE=16000, CHANNELS=1, OUTPUT_LAYOUT="webdataset", CLIPS_PER_TAR=PER_TAR)
        constants.update(extra)
        return write_config(self.root / f"{name}.py", **constants)


def make_site(root: Path, sources: Path, server_root: Path) -> tuple[Path, dict]:
    ids = [f"shardclip{i:02d}" for i in range(22)]
    rows, written = [], {}
    for i, ytid in enumerate(ids):
        start = 3 + 11 * i + (0.25 if i % 3 else 0)
        labels = LABELS[i % 3]
        rows.append(f'{ytid}, {start:.3f}, {start + 10:.3f}, "{labels}"')
        written[(ytid, start, start + 10)] = labels.split(",")
        (server_root / f"{ytid}.m4a").hardlink_to(sources / "tone300.m4a")
    rows.append('shardclip00, 250.500, 260.500, "/m/09x0r"')  # a second window: key shardclip00_250500
    written[("shardclip00", 250.5, 260.5)] = ["/m/09x0r"]
    rows.append('gonevideo01, 0.000, 10.000, "/m/09x0r"')  # not on the mirror: failed, in no shard
    return write_csv(root / f"{NAME}.csv", rows), written


@pytest.fixture
def site(tmp_path: Path, sources: Path):
    served = tmp_path / "mirror"
    served.mkdir()
    csv_path, written = make_site(tmp_path, sources, served)
    with MediaServer(served, latency_s=0.02) as server:
        yield Site(tmp_path, csv_path, server, written)


def shards(out: Path) -> list[Path]:
    return sorted((out / NAME).glob(f"{NAME}-*.tar"))


def sizes(out: Path) -> list[int]:
    """Samples per shard, in shard order."""
    counted = []
    for shard in shards(out):
        with tarfile.open(shard) as tar:
            counted.append(len(tar.getnames()) // 2)
    return counted


def members(shard: Path) -> list[str]:
    with tarfile.open(shard) as tar:
        return tar.getnames()


def samples(out: Path) -> dict[str, dict[str, bytes]]:
    """Every sample of every shard: key -> {extension: bytes}; a key seen twice fails."""
    found: dict[str, dict[str, bytes]] = {}
    for shard in shards(out):
        with tarfile.open(shard) as tar:
            names = tar.getnames()
            # WebDataset's convention: a sample's members follow one another, clip then json.
            assert [name.partition(".")[2] for name in names] == ["wav", "json"] * (len(names) // 2), shard
            for info in tar:
                key, _, ext = info.name.partition(".")
                assert ext not in found.setdefault(key, {}), f"{info.name} twice"
                found[key][ext] = tar.extractfile(info).read()
    return found


def split_pos(out: Path) -> list[dict[str, str]]:
    with open(out / f"{NAME}.split-pos.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def check_windows(out: Path, site: Site, scratch: Path) -> None:
    """Each sample's clip is its segment's window, and its json is the segment's CSV row."""
    got = samples(out)
    assert len(got) == len(site.written)
    keys = {}
    for segment in read_segments(site.csv):
        keys[(segment.ytid, segment.start_ms / 1000, segment.end_ms / 1000)] = segment.stem
    for (ytid, start, end), labels in site.written.items():
        sample = got[keys[(ytid, start, end)]]
        meta = json.loads(sample["json"])
        measures = {key: meta.pop(key) for key in MEASURE_COLUMNS}  # what the clip holds: a loud tone, 10 s
        assert meta == {"YTID": ytid, "start_seconds": start, "end_seconds": end, "labels": labels,
                        "label_names": [NAMES[mid] for mid in labels]}
        assert measures["silent"] is False and measures["silent_share"] == 0 and measures["duration_seconds"] == 10.0
        assert -30 < measures["rms_dbfs"] < measures["peak_dbfs"] <= 0
        clip_file = scratch / "clip.wav"
        clip_file.write_bytes(sample["wav"])
        clip = decode(clip_file)
        assert clip.rate == 16000 and clip.channels == 1
        assert abs(clip.duration - 10.0) < 0.02
        assert abs(window_offset(clip, start)) < 0.02, (ytid, start)


def test_a_run_packs_its_clips_into_shards_of_samples_that_are_their_windows(site: Site) -> None:
    config = site.config("out")
    assert cli.main(["--config", str(config)]) == 0
    out = site.root / "out"
    # 23 clips, 5 a shard: four full shards and a last of three, named in order.
    assert [p.name for p in shards(out)] == [f"{NAME}-{i:06d}.tar" for i in range(5)]
    assert sizes(out) == [5, 5, 5, 5, 3]
    check_windows(out, site, site.root)
    # Nothing is left beside the shards: no loose clip, no temporary file, no audiofolder metadata.
    assert sorted(p.name for p in (out / NAME).iterdir()) == [p.name for p in shards(out)]
    # split-pos.csv names each clip's shard and member, and the shard holds it.
    rows = split_pos(out)
    assert len(rows) == 23
    for row in rows:
        with tarfile.open(out / row["file"]) as tar:
            assert row["member"] in tar.getnames() and row["member"].endswith(".wav")
    assert {row["member"] for row in rows} == {f"{key}.wav" for key in samples(out)}
    failed = list(csv.DictReader((out / f"{NAME}.failed.csv").read_text().splitlines()))
    assert [(row["YTID"], row["reason"]) for row in failed] == [("gonevideo01", "unavailable")]
    card = (out / f"{NAME}.README.md").read_text()
    assert "WebDataset tar shards of 5 clips" in card and 'load_dataset("webdataset"' in card
    # --report counts from the manifests, whatever the layout.
    assert cli.main(["--config", str(config), "--report"]) == 0
    report = {row["mid"]: row for row in csv.DictReader((out / f"{NAME}.report.csv").read_text().splitlines())}
    assert report["/m/09x0r"]["written"] == str(sum("/m/09x0r" in labels for labels in site.written.values()))
    assert report["/m/09x0r"]["failed_permanent"] == "1"
    # A rerun has nothing to do and changes no shard.
    before = {p.name: p.read_bytes() for p in shards(out)}
    site.server.reset_counts()
    assert cli.main(["--config", str(config)]) == 0
    assert {p.name: p.read_bytes() for p in shards(out)} == before
    assert sum(count for path, count in site.server.requests.items() if "shardclip" in path) == 0


def test_the_shards_load_with_webdataset_and_with_datasets(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    webdataset = pytest.importorskip("webdataset")
    datasets = pytest.importorskip("datasets")
    import soundfile

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli.main(["--config", str(site.config("out"))]) == 0
    out = site.root / "out"
    on_disk = samples(out)
    urls = [str(p) for p in shards(out)]

    loaded = list(webdataset.WebDataset(urls, shardshuffle=False))
    assert len(loaded) == len(site.written) == len(on_disk)
    for sample in loaded:
        expected = on_disk[sample["__key__"]]
        assert sample["wav"] == expected["wav"] and json.loads(sample["json"]) == json.loads(expected["json"])
        audio, rate = soundfile.read(io.BytesIO(sample["wav"]))
        assert rate == 16000 and audio.shape == (160000,)

    dataset = datasets.load_dataset("webdataset", data_files={"train": urls}, split="train",
                                    cache_dir=str(site.root / "hf-cache"))
    assert len(dataset) == len(on_disk)
    for row in dataset:
        expected = json.loads(on_disk[row["__key__"]]["json"])
        assert row["json"] == expected
        audio = row["wav"]
        assert audio["sampling_rate"] == 16000 and len(audio["array"]) == 160000
        reference, _ = soundfile.read(io.BytesIO(on_disk[row["__key__"]]["wav"]))
        assert np.allclose(audio["array"], reference, atol=1e-4)

    # The dataset card's own loading code runs as written, beside the data.
    card = (out / f"{NAME}.README.md").read_text()
    blocks = [block.split("\n", 1)[1] for block in card.split("```")[1::2] if block.startswith("python")]
    assert len(blocks) == 1  # every layout's card lines run here and in a fresh venv: tests/test_loading.py
    monkeypatch.chdir(out)
    namespace: dict = {}
    exec(blocks[0], namespace)  # the webdataset loop: its first sample
    assert namespace["rate"] == 16000 and namespace["audio"].shape == (160000,)


def _rows_now(path: Path) -> int:
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0


def test_killed_mid_shard_the_rerun_packs_its_clips_without_fetching_them_again(site: Site) -> None:
    reference = run_script("--config", str(site.config("reference")), cwd=site.root)
    assert reference.returncode == 0, reference.stderr
    crashed = site.config("crashed", WORKERS=2)
    out = site.root / "crashed"
    listed = out / f"{NAME}.split-pos.csv"
    process = subprocess.Popen([sys.executable, str(REPO / "AudioDownloader.py"), "--config", str(crashed)],
                               cwd=site.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _rows_now(listed) < PER_TAR + 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    rows = split_pos(out)
    assert PER_TAR + 2 <= len(rows) < 23, "the kill came too late to be mid-shard"
    # Mid-shard: the rows of the open shard name a shard not yet on disk, their clips loose beside the shards.
    unpacked = [row for row in rows if not (out / row["file"]).exists()]
    assert unpacked and all((out / NAME / row["member"]).is_file() for row in unpacked)

    site.server.reset_counts()
    final = run_script("--config", str(crashed), cwd=site.root)
    assert final.returncode == 0, final.stderr
    refetched = {row["YTID"] for row in rows} & {path.strip("/").removesuffix(".m4a")
                                                 for path, count in site.server.requests.items() if count}
    # shardclip00 has a second window, which may not have been written before the kill.
    assert refetched <= {"shardclip00"} - {row["YTID"] for row in rows if row["start_seconds"] == "250.500"}

    # The same samples as an uninterrupted run, none twice, in as many shards, nothing left over.
    ref_samples, got_samples = samples(site.root / "reference"), samples(out)
    assert got_samples == ref_samples
    assert len(shards(out)) == len(shards(site.root / "reference")) == 5
    assert sorted(p.name for p in (out / NAME).iterdir()) == [p.name for p in shards(out)]
    assert not list(out.rglob("*.part"))
    got_rows = split_pos(out)
    assert len(got_rows) == len({(r["YTID"], r["start_seconds"]) for r in got_rows}) == 23


def test_a_kill_between_packing_and_removing_the_loose_clips_loses_nothing(tmp_path: Path) -> None:
    from tests.test_ledger import seg, write_clip

    outputs = CsvOutputs(tmp_path, NAME)
    outputs.prepare()
    ledger = Ledger(outputs, tar_size=2)
    ledger.open()
    for ytid in ("aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"):
        ledger.record_written(seg(ytid), write_clip(outputs, ytid), "direct")
    ledger.close()  # killed: not finished, so the third clip waits loose for its shard
    shard = outputs.clip_dir / f"{NAME}-000000.tar"
    assert members(shard) == ["aaaaaaaaaaa.wav", "aaaaaaaaaaa.json", "bbbbbbbbbbb.wav",
                                              "bbbbbbbbbbb.json"]
    # As if killed after the rename, before the loose files went.
    write_clip(outputs, "aaaaaaaaaaa")
    reopened = Ledger(outputs, tar_size=2)
    reopened.open()
    assert len(reopened.done) == 3
    assert not (outputs.clip_dir / "aaaaaaaaaaa.wav").exists()  # the shard has it
    assert (outputs.clip_dir / "ccccccccccc.wav").exists()  # still waiting for shard 1
    reopened.record_written(seg("ddddddddddd"), write_clip(outputs, "ddddddddddd"), "direct")
    reopened.close()
    assert members(outputs.clip_dir / f"{NAME}-000001.tar")[::2] == ["ccccccccccc.wav",
                                                                                     "ddddddddddd.wav"]
    assert sorted(p.name for p in outputs.clip_dir.iterdir()) == [f"{NAME}-000000.tar", f"{NAME}-000001.tar"]


def test_verify_checks_every_sample_and_repair_rewrites_the_shard(site: Site) -> None:
    config = site.config("out")
    assert cli.main(["--config", str(config)]) == 0
    out = site.root / "out"
    clean = run_script("--config", str(config), "--verify", cwd=site.root)
    assert clean.returncode == 0 and "23 rows checked, 0 problems" in clean.stdout, clean.stdout

    ytid_of = {row["member"]: row["YTID"] for row in split_pos(out)}
    # Damage shard 1: one clip truncated, one json changed, one sample no row names.
    victim = shards(out)[1]
    with tarfile.open(victim) as tar:
        contents = [(info, tar.extractfile(info).read()) for info in tar]
    truncated, retitled = contents[0][0].name, contents[3][0].name
    with tarfile.open(victim, "w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in contents:
            if info.name == truncated:
                data = data[:2000]
            elif info.name == retitled:
                data = data.replace(b'"YTID": "', b'"YTID": "x')
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, data in (("strangerclp.wav", contents[0][1]), ("strangerclp.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    report = run_script("--config", str(config), "--verify", cwd=site.root)
    assert report.returncode == 1
    problems = [line for line in report.stdout.splitlines() if line.startswith(f"{NAME}: ")]
    truncated_id, retitled_id = ytid_of[truncated], ytid_of[retitled.replace(".json", ".wav")]
    assert any(line.startswith(f"{NAME}: {truncated_id}: file does not decode") for line in problems), problems
    assert f"{NAME}: {retitled_id}: {retitled} differs from the row in YTID" in problems
    assert f"{NAME}: {victim.name}: sample strangerclp not in {NAME}.split-pos.csv" in problems
    assert len(problems) == 3, problems

    repaired = run_script("--config", str(config), "--verify", "--repair", cwd=site.root)
    assert repaired.returncode == 1 and "repaired: 2 rows and 3 files removed" in repaired.stdout, repaired.stdout
    names = members(victim)
    assert len(names) == 6 and not {truncated, retitled, "strangerclp.wav"} & set(names)
    assert len(split_pos(out)) == 21
    # A rerun fetches the two again, into the last shard (which had room for them); then everything checks.
    site.server.reset_counts()
    assert cli.main(["--config", str(config)]) == 0
    assert sizes(out) == [5, 3, 5, 5, 5]
    assert len(split_pos(out)) == 23
    fetched = {path.strip("/").removesuffix(".m4a") for path, count in site.server.requests.items() if count}
    assert fetched == {truncated_id, retitled_id}
    assert run_script("--config", str(config), "--verify", cwd=site.root).returncode == 0
    check_windows(out, site, site.root)


def test_a_shard_cut_short_fails_every_row_it_held_and_repair_removes_it(site: Site) -> None:
    config = site.config("out")
    assert cli.main(["--config", str(config)]) == 0
    out = site.root / "out"
    victim = shards(out)[2]
    held = {row["YTID"] for row in split_pos(out) if row["file"].endswith(victim.name)}
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])  # a copy that stopped half way
    report = run_script("--config", str(config), "--verify", cwd=site.root)
    assert report.returncode == 1
    problems = [line for line in report.stdout.splitlines() if line.startswith(f"{NAME}: ")]
    assert len(problems) == PER_TAR and {line.split(": ")[1] for line in problems} == held
    assert all(f"{victim.name} does not read" in line for line in problems), problems
    repaired = run_script("--config", str(config), "--verify", "--repair", cwd=site.root)
    assert repaired.returncode == 1 and not victim.exists()
    site.server.reset_counts()
    assert cli.main(["--config", str(config)]) == 0  # the five again: filling the short last shard, then a new one
    assert {path.strip("/").removesuffix(".m4a") for path, n in site.server.requests.items() if n} == held
    assert [p.name[-10:-4] for p in shards(out)] == ["000000", "000001", "000003", "000004", "000005"]
    assert sizes(out) == [5, 5, 5, 5, 3] and len(samples(out)) == 23
    assert run_script("--config", str(config), "--verify", cwd=site.root).returncode == 0


def test_merge_joins_shard_runs_and_converts_between_layouts(site: Site) -> None:
    for part in ("0/2", "1/2"):
        assert cli.main(["--config", str(site.config(f"part{part[0]}", SHARD=part))]) == 0
    parts = [site.root / "part0", site.root / "part1"]
    assert all(shards(part) for part in parts)
    # Shards of the two runs into one webdataset: full shards again, every sample once.
    merged = site.config("merged")
    assert cli.main(["--config", str(merged), "--merge", *map(str, parts)]) == 0
    assert sizes(site.root / "merged") == [5, 5, 5, 5, 3]
    assert len(split_pos(site.root / "merged")) == 23
    check_windows(site.root / "merged", site, site.root)
    # Into the files layout: one clip per segment, the same bytes the shards held.
    files = site.config("files", OUTPUT_LAYOUT="files")
    assert cli.main(["--config", str(files), "--merge", str(site.root / "merged")]) == 0
    folder = site.root / "files" / NAME
    held = samples(site.root / "merged")
    assert {p.stem: p.read_bytes() for p in folder.glob("*.wav")} == {key: s["wav"] for key, s in held.items()}
    assert len(list(csv.DictReader((folder / "metadata.csv").read_text().splitlines()))) == 23
    # And back: a files layout into shards.
    again = site.config("again")
    assert cli.main(["--config", str(again), "--merge", str(site.root / "files")]) == 0
    assert samples(site.root / "again") == held
    assert run_script("--config", str(again), "--verify", cwd=site.root).returncode == 0
    failed = list(csv.DictReader((site.root / "again" / f"{NAME}.failed.csv").read_text().splitlines()))
    assert [row["YTID"] for row in failed] == ["gonevideo01"]


def test_an_output_dir_in_one_layout_is_not_continued_in_the_other(site: Site, capsys) -> None:
    assert cli.main(["--config", str(site.config("out", TIMER=2, OUTPUT_LAYOUT="files"))]) == 0
    before = (site.root / "out" / f"{NAME}.split-pos.csv").read_bytes()
    code = cli.main(["--config", str(site.config("out", TIMER=2)), "--layout", "webdataset"])
    assert code == 2
    err = capsys.readouterr().err
    assert "its clips are in the files layout, but OUTPUT_LAYOUT is 'webdataset'" in err
    assert "--merge" in err
    assert (site.root / "out" / f"{NAME}.split-pos.csv").read_bytes() == before
    assert not shards(site.root / "out")


def test_runs_cut_short_by_timer_still_fill_their_shards(site: Site) -> None:
    out = site.root / "out"
    for run in range(1, 4):  # TIMER = 2: three clips a run, five to a shard
        assert cli.main(["--config", str(site.config("out", TIMER=2))]) == 0
        assert sizes(out) == [[3], [5, 1], [5, 4]][run - 1]
        assert sorted(p.name for p in (out / NAME).iterdir()) == [p.name for p in shards(out)]
    held = samples(out)
    assert len(held) == len(split_pos(out)) == 9
    assert {row["member"] for row in split_pos(out)} == {f"{key}.wav" for key in held}
    assert run_script("--config", str(site.config("out")), "--verify", cwd=site.root).returncode == 0


def test_rows_that_name_a_shard_as_a_clip_or_leave_the_folder_touch_nothing(site: Site) -> None:
    config = site.config("out")
    assert cli.main(["--config", str(config)]) == 0
    out = site.root / "out"
    before = {p.name: p.read_bytes() for p in (out / NAME).iterdir()}
    with open(out / f"{NAME}.split-pos.csv", "a") as handle:  # a hostile (or badly edited) manifest
        handle.write(f"{NAME}/{NAME}-000009.tar,evilvideo01,0.000,10.000,/m/09x0r,,direct,{NAME}-000000.tar\n")
        handle.write(f"../elsewhere/{NAME}-000000.tar,evilvideo02,0.000,10.000,/m/09x0r,,direct,shardclip01.wav\n")
        handle.write(f"{NAME}/{NAME}-000008.tar,evilvideo03,0.000,10.000,/m/09x0r,,direct,../../{NAME}.csv\n")
    assert cli.main(["--config", str(config)]) == 0
    # No shard was read as a clip, packed or removed; the rows that named nothing of ours are gone.
    assert {p.name: p.read_bytes() for p in (out / NAME).iterdir()} == before
    assert site.csv.is_file()
    assert not {row["YTID"] for row in split_pos(out)} & {"evilvideo01", "evilvideo02", "evilvideo03"}
    assert len(split_pos(out)) == 23
