"""Kinetics (for Kinetics-Sounds and the like): ``label,youtube_id,time_start,time_end,split`` (``is_cc``)."""

from __future__ import annotations

from audioset_downloader.inputs.lists.table import Window, header_of
from audioset_downloader.inputs.lists.table import window as checked
from audioset_downloader.inputs.segments import InvalidRow
from audioset_downloader.inputs.settings import Settings

NAME = "Kinetics"
NOTE_COLUMNS = ("label", "split")  # metadata.csv columns (and json keys) beside "dataset"
CLASSES_BY_NAME = True  # LABELS and --report use the class names: the set has no MIDs
HEADER = ["label", "youtube_id", "time_start", "time_end", "split"]
FIELDS = (5, 6)  # is_cc in some versions
DELIMITER = ","


def recognise(lines: list[str], settings: Settings) -> bool:
    header = header_of(lines)
    return header in (HEADER, [*HEADER, "is_cc"])


def window(line: int, fields: list[str], header: list[str], settings: Settings) -> tuple[int, Window] | InvalidRow:
    label, ytid, start, end, split = fields[:5]
    return checked(line, ytid, start, end, "", {"dataset": NAME, "label": label, "split": split})


def merge(notes: dict, more: dict) -> dict:
    return notes
