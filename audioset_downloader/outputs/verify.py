"""--verify: check what a CSV's outputs claim against the files on disk; --repair drops what is broken.

Each row of split-pos.csv must have its clip, the clip must decode to the end, last
as long as its window (within 50 ms) and have the rate and channels the settings
ask for. In the webdataset layout the clip is a member of the shard the row names
(or, for a shard not packed yet, loose in the clip folder), and the sample's json
must match the row. Clips (and shards, and shard members) that no row names are
reported too. Repairing removes broken rows and their clips, rewriting a shard
without them, and unlisted clips, so that a rerun fetches them again.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from audioset_downloader.atomic import write_atomically
from audioset_downloader.fetch.cutter import find_ffmpeg
from audioset_downloader.fetch.measure import ClipMeasures, measure_file
from audioset_downloader.fetch.probe import Undecodable, probe
from audioset_downloader.inputs.settings import CLIP_EXTENSIONS, Settings
from audioset_downloader.outputs.appendonly import AppendOnlyCsv
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.ledger import (
    MEASURES,
    MEMBER,
    OLDEST_SPLIT_POS_ROW,
    SPLIT_POS_HEADER,
    Ledger,
    loose_clip,
    measure_values,
    member_of,
    split_pos_csv,
)
from audioset_downloader.outputs.shards import (
    SHARD_ERRORS,
    add_to_jsons,
    json_member,
    read_members,
    repack,
    sample_json,
)

DURATION_TOLERANCE_S = 0.05
CLIP_SUFFIXES = tuple(f".{ext}" for ext in CLIP_EXTENSIONS)


@dataclass
class Report:
    csv: str
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    broken_rows: list[list[str]] = field(default_factory=list)
    unlisted: list[Path] = field(default_factory=list)  # clips and whole shards
    unlisted_members: dict[Path, set[str]] = field(default_factory=dict)  # shard -> sample keys no row names
    measured: dict[int, ClipMeasures] = field(default_factory=dict)  # by id(row): clips recorded before measures

    @property
    def silent(self) -> int:
        return sum(measures.silent for measures in self.measured.values())

    @property
    def removed(self) -> int:
        """Clips (and shards) that repairing removes."""
        return len(self.broken_rows) + len(self.unlisted) + sum(map(len, self.unlisted_members.values()))


def verify_csv(csv_path: Path, settings: Settings, repair: bool) -> Report:
    outputs = CsvOutputs.for_csv(settings.output_dir, csv_path)
    report = Report(str(csv_path))
    split_pos = split_pos_csv(outputs)
    rows = list(split_pos.rows(repair=False))
    report.rows = len(rows)
    ffmpeg = find_ffmpeg(settings.ffmpeg_binary)
    check = _Checker(outputs, settings, ffmpeg)

    by_shard: dict[str, list[list[str]]] = defaultdict(list)  # packed rows, by shard
    loose: list[list[str]] = []  # clips of the files layout, and of shards not packed yet
    for row in rows:
        shard = _packed_shard(row, outputs)
        (by_shard[shard] if shard else loose).append(row)
    with ThreadPoolExecutor(max_workers=settings.workers) as pool:
        verdicts = dict(zip(map(id, loose), pool.map(check.loose_row, loose), strict=True))
        for shard, (shard_verdicts, unlisted) in zip(by_shard, pool.map(check.shard, by_shard, by_shard.values()),
                                                        strict=True):
            verdicts.update(shard_verdicts)
            if unlisted:
                report.unlisted_members[outputs.clip_dir / shard] = unlisted
    for row in rows:
        if (problem := verdicts[id(row)]) is not None:
            report.problems.append(f"{outputs.name}: {row[1] if len(row) > 1 else '?'}: {problem}")
            report.broken_rows.append(row)
            check.measured.pop(id(row), None)
    report.measured = check.measured
    for shard, keys in sorted(report.unlisted_members.items()):
        report.problems += [f"{outputs.name}: {shard.name}: sample {key} not in {outputs.split_pos.name}"
                            for key in sorted(keys)]

    listed = {name for row in rows if row for name in (row[0].rpartition("/")[2], member_of(row))}
    if outputs.clip_dir.is_dir():
        for entry in sorted(os.scandir(outputs.clip_dir), key=lambda e: e.name):
            ours = entry.name.endswith(CLIP_SUFFIXES) or outputs.shard_index(entry.name) is not None
            if ours and entry.name not in listed:
                report.problems.append(f"{outputs.name}: {entry.name}: file not in {outputs.split_pos.name}")
                report.unlisted.append(Path(entry.path))
    if repair and report.measured:
        _write_measures(outputs, rows, report.measured)
        if not report.problems:
            split_pos.rewrite(rows)
    if repair and report.problems:
        _repair(outputs, split_pos, rows, report, settings)
    return report


def _write_measures(outputs: CsvOutputs, rows: list[list[str]], measured: dict[int, ClipMeasures]) -> None:
    """Fill the measures of clips recorded before them into their split-pos rows (in place) and metadata.csv."""
    by_file: dict[str, ClipMeasures] = {}
    by_shard: dict[Path, dict[str, dict[str, object]]] = defaultdict(dict)
    for row in rows:
        if (measures := measured.get(id(row))) is not None:
            row.extend([""] * (len(SPLIT_POS_HEADER) - len(row)))
            row[MEASURES] = measures.fields()
            by_file[row[0].rpartition("/")[2]] = measures
            if shard := _packed_shard(row, outputs):  # a clip not packed yet gets them when it is
                by_shard[outputs.clip_dir / shard][member_of(row).partition(".")[0]] = dict(measure_values(row))
    for shard_path, additions in sorted(by_shard.items()):
        add_to_jsons(shard_path, additions)
    if not outputs.metadata.is_file():
        return  # the webdataset layout keeps no metadata.csv
    with open(outputs.metadata, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    at = slice(MEMBER, MEMBER + MEASURES.stop - MEASURES.start)  # metadata.csv: the file name, no member column
    for line in table[1:]:
        if line and (measures := by_file.get(line[0])) is not None and len(line) >= at.stop:
            line[at] = measures.fields()
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(table)
    write_atomically(outputs.metadata, buffer.getvalue())


def _packed_shard(row: list[str], outputs: CsvOutputs) -> str:
    """The shard file holding the row's clip, when it names one that exists; "" otherwise."""
    if not member_of(row):
        return ""
    shard = row[0].rpartition("/")[2]
    path = outputs.listed_clip(row[0])
    return shard if path is not None and outputs.shard_index(shard) is not None and path.is_file() else ""


@dataclass
class _Checker:
    outputs: CsvOutputs
    settings: Settings
    ffmpeg: str
    measured: dict[int, ClipMeasures] = field(default_factory=dict)

    def loose_row(self, row: list[str]) -> str | None:
        if len(row) < OLDEST_SPLIT_POS_ROW:
            return "malformed row"
        staged = bool(member_of(row))
        listed = loose_clip(row, self.outputs.name)
        path = self.outputs.listed_clip(listed)
        if path is None:
            return f"row names a file outside {self.outputs.clip_dir}: {listed!r}"
        if not path.is_file():
            also = f", and so is {listed}, which it would be packed from" if staged else ""
            return f"file {row[0]} is missing{also}"
        return self.clip(path, row)

    def shard(self, shard: str, rows: list[list[str]]) -> tuple[dict[int, str | None], set[str]]:
        """Check every sample of a shard against its rows: verdicts by row, and the keys no row names."""
        path = self.outputs.clip_dir / shard
        wanted = {member_of(row): row for row in rows}
        verdicts: dict[int, str | None] = {}
        metas: dict[str, bytes] = {}
        unlisted: set[str] = set()
        scratch = Path(tempfile.mkdtemp(prefix="verify-"))
        try:
            for info, content in read_members(path):
                key = info.name.partition(".")[0]
                row = wanted.get(info.name)
                if row is not None:
                    clip = scratch / f"clip{Path(info.name).suffix}"  # never the member's own name: it is untrusted
                    with open(clip, "wb") as handle:
                        shutil.copyfileobj(content, handle)
                    verdicts[id(row)] = self.clip(clip, row)
                    clip.unlink()
                elif info.name.endswith(".json"):
                    metas[info.name] = content.read()
                else:
                    unlisted.add(key)
        except SHARD_ERRORS as exc:  # not a tar (or parquet), or cut short: none of its samples counts
            return {id(row): f"{shard} does not read ({exc})" for row in rows}, set()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        for member, row in wanted.items():
            if id(row) not in verdicts:
                verdicts[id(row)] = f"{shard} has no member {member}"
            elif verdicts[id(row)] is None:
                verdicts[id(row)] = _json_problem(metas.get(json_member(member)), row, json_member(member))
        listed_keys = {member.partition(".")[0] for member in wanted}
        unlisted |= {name.partition(".")[0] for name in metas} - listed_keys
        return verdicts, unlisted

    def clip(self, path: Path, row: list[str]) -> str | None:
        try:
            info = probe(self.ffmpeg, path, self.settings.clip_timeout)
        except Undecodable as exc:
            return f"file does not decode ({exc})"
        try:
            window = float(row[3]) - float(row[2])
        except ValueError:
            return "start or end is not a number"
        if abs(info.seconds - window) > DURATION_TOLERANCE_S:
            return f"lasts {info.seconds:.3f} s, its window {window:.3f} s"
        if self.settings.sample_rate and info.rate != self.settings.sample_rate:
            return f"rate {info.rate} Hz, SAMPLE_RATE is {self.settings.sample_rate}"
        if self.settings.channels and info.channels != self.settings.channels:
            return f"{info.channels} channels, CHANNELS is {self.settings.channels}"
        if ClipMeasures.from_fields(row[MEASURES]) is None:  # recorded before clips were measured
            measures = measure_file(self.ffmpeg, path, info.seconds, self.settings.clip_timeout)
            if measures is not None:
                self.measured[id(row)] = measures
        return None


def _json_problem(meta: bytes | None, row: list[str], name: str) -> str | None:
    if meta is None:
        return f"its shard has no {name}"
    try:
        found = json.loads(meta)
    except ValueError:
        return f"{name} is not JSON"
    expected = json.loads(sample_json(*row[1:6]))
    differing = sorted(key for key in expected if found.get(key) != expected[key]) if isinstance(found, dict) else ["*"]
    return f"{name} differs from the row in {', '.join(differing)}" if differing else None


def _repair(outputs: CsvOutputs, split_pos: AppendOnlyCsv, rows: list[list[str]], report: Report,
            settings: Settings) -> None:
    broken = {id(row) for row in report.broken_rows}
    split_pos.rewrite(row for row in rows if id(row) not in broken)
    # A shard keeps exactly the samples of its good rows.
    keep: dict[Path, set[str]] = defaultdict(set)
    for row in rows:
        if (shard := _packed_shard(row, outputs)) and id(row) not in broken:
            keep[outputs.clip_dir / shard].add(member_of(row).partition(".")[0])
    to_repack = set(report.unlisted_members)
    for row in report.broken_rows:
        if shard := _packed_shard(row, outputs):
            to_repack.add(outputs.clip_dir / shard)
            continue
        path = outputs.listed_clip(loose_clip(row, outputs.name)) if row else None
        if path is not None:
            path.unlink(missing_ok=True)
    for shard in sorted(to_repack):
        try:
            repack(shard, keep[shard])
        except SHARD_ERRORS:
            shard.unlink(missing_ok=True)  # unreadable: every row of it was broken
    for path in report.unlisted:
        path.unlink(missing_ok=True)
    # Opening the ledger brings metadata.csv back in step with split-pos.csv (files layout), or packs
    # what is loose (webdataset layout), in the layout the rows are in.
    packed = [row[0] for row in rows if member_of(row)]
    suffix = "parquet" if packed and packed[0].endswith(".parquet") else "tar"
    ledger = Ledger(outputs, tar_size=(settings.tar_size or settings.clips_per_tar) if packed else None,
                    suffix=suffix)
    ledger.open()
    ledger.close()
