"""--verify: check what a CSV's outputs claim against the files on disk; --repair drops what is broken.

Each row of split-pos.csv must have its file, the file must decode to the end, last
as long as its window (within 50 ms) and have the rate and channels the settings
ask for. Clip files that no row names are reported too. Repairing removes broken
rows and their files, and unlisted clips, so that a rerun fetches them again.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .cutter import FORMATS, find_ffmpeg
from .layout import CsvOutputs
from .ledger import OLDEST_SPLIT_POS_ROW, AppendOnlyCsv, Ledger, split_pos_csv
from .probe import Undecodable, probe
from .settings import Settings

DURATION_TOLERANCE_S = 0.05
CLIP_EXTENSIONS = tuple(f".{ext}" for ext, _, _ in FORMATS.values())


@dataclass
class Report:
    csv: str
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    broken_rows: list[list[str]] = field(default_factory=list)
    unlisted: list[Path] = field(default_factory=list)


def verify_csv(csv_path: Path, settings: Settings, repair: bool) -> Report:
    outputs = CsvOutputs.for_csv(settings.output_dir, csv_path)
    report = Report(str(csv_path))
    split_pos = split_pos_csv(outputs)
    rows = list(split_pos.rows(repair=False))
    report.rows = len(rows)
    ffmpeg = find_ffmpeg(settings.ffmpeg_binary)
    with ThreadPoolExecutor(max_workers=settings.workers) as pool:
        verdicts = list(pool.map(lambda row: _check_row(row, outputs, settings, ffmpeg), rows))
    for row, problem in zip(rows, verdicts):
        if problem is not None:
            report.problems.append(f"{outputs.name}: {row[1] if len(row) > 1 else '?'}: {problem}")
            report.broken_rows.append(row)
    listed = {row[0].rpartition("/")[2] for row in rows if row}
    if outputs.clip_dir.is_dir():
        for entry in sorted(os.scandir(outputs.clip_dir), key=lambda e: e.name):
            if entry.name.endswith(CLIP_EXTENSIONS) and entry.name not in listed:
                report.problems.append(f"{outputs.name}: {entry.name}: file not in {outputs.split_pos.name}")
                report.unlisted.append(Path(entry.path))
    if repair and report.problems:
        _repair(outputs, split_pos, rows, report)
    return report


def _check_row(row: list[str], outputs: CsvOutputs, settings: Settings, ffmpeg: str) -> str | None:
    if len(row) < OLDEST_SPLIT_POS_ROW:
        return "malformed row"
    path = outputs.listed_clip(row[0])
    if path is None:
        return f"row names a file outside {outputs.clip_dir}: {row[0]!r}"
    if not path.is_file():
        return f"file {row[0]} is missing"
    try:
        info = probe(ffmpeg, path, settings.clip_timeout)
    except Undecodable as exc:
        return f"file does not decode ({exc})"
    try:
        window = float(row[3]) - float(row[2])
    except ValueError:
        return "start or end is not a number"
    if abs(info.seconds - window) > DURATION_TOLERANCE_S:
        return f"lasts {info.seconds:.3f} s, its window {window:.3f} s"
    if settings.sample_rate and info.rate != settings.sample_rate:
        return f"rate {info.rate} Hz, SAMPLE_RATE is {settings.sample_rate}"
    if settings.channels and info.channels != settings.channels:
        return f"{info.channels} channels, CHANNELS is {settings.channels}"
    return None


def _repair(outputs: CsvOutputs, split_pos: AppendOnlyCsv, rows: list[list[str]], report: Report) -> None:
    broken = {id(row) for row in report.broken_rows}
    split_pos.rewrite(row for row in rows if id(row) not in broken)
    for row in report.broken_rows:
        path = outputs.listed_clip(row[0]) if row else None
        if path is not None:
            path.unlink(missing_ok=True)
    for path in report.unlisted:
        path.unlink(missing_ok=True)
    # Opening the ledger brings metadata.csv back in step with split-pos.csv.
    ledger = Ledger(outputs)
    ledger.open()
    ledger.close()

