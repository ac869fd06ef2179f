"""Kinetics (for Kinetics-Sounds and the like): ``label,youtube_id,time_start,time_end,split`` (``is_cc``)."""

from __future__ import annotations

from collections.abc import Iterator

from audioset_downloader.inputs.lists.table import Window, header_of, invalid, rows_after_header, window
from audioset_downloader.inputs.segments import InvalidRow
from audioset_downloader.inputs.settings import Settings

NAME = "Kinetics"
NOTE_COLUMNS = ("label", "split")  # metadata.csv columns (and json keys) beside "dataset"
CLASSES_BY_NAME = True  # LABELS and --report use the class names: the set has no MIDs
HEADER = ["label", "youtube_id", "time_start", "time_end", "split"]


def recognise(lines: list[str], settings: Settings) -> bool:
    header = header_of(lines)
    return header in (HEADER, [*HEADER, "is_cc"])


def windows(lines: Iterator[tuple[int, str]], settings: Settings) -> Iterator[tuple[int, Window] | InvalidRow]:
    for row in rows_after_header(lines):
        if isinstance(row, InvalidRow):
            yield row
            continue
        line, fields = row
        if len(fields) not in (5, 6):
            yield invalid(line, fields, f"expected 5 or 6 fields ({','.join(HEADER)}[,is_cc]), found {len(fields)}")
            continue
        label, ytid, start, end, split = fields[:5]
        yield window(line, ytid, start, end, "", {"dataset": NAME, "label": label, "split": split})


def merge(notes: dict, more: dict) -> dict:
    return notes
