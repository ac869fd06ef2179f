"""VGGSound (Chen et al., ICASSP 2020): ``YTID,start,label,split`` with no header; 10 s windows."""

from __future__ import annotations

from audioset_downloader.inputs.labels import NAME_SEPARATOR
from audioset_downloader.inputs.lists.table import RowParser, Window
from audioset_downloader.inputs.lists.table import window as checked
from audioset_downloader.inputs.segments import YTID_PATTERN, InvalidRow
from audioset_downloader.inputs.settings import Settings

NAME = "VGGSound"
NOTE_COLUMNS = ("label", "split")  # metadata.csv columns (and json keys) beside "dataset"
CLASSES_BY_NAME = True  # LABELS and --report use the class names: the set has no MIDs
SPLITS = ("train", "test")
HAS_HEADER = False
FIELDS = (4,)
DELIMITER = ","


def recognise(lines: list[str], settings: Settings) -> bool:
    if not lines:
        return False
    fields = RowParser().fields(1, lines[0])
    return (not isinstance(fields, InvalidRow) and len(fields) == 4 and YTID_PATTERN.fullmatch(fields[0]) is not None
            and fields[1].isdigit() and fields[3] in SPLITS)


def window(line: int, fields: list[str], header: list[str], settings: Settings) -> tuple[int, Window] | InvalidRow:
    ytid, start, label, split = fields
    return checked(line, ytid, start, None, "", {"dataset": NAME, "label": label, "split": split})


def merge(notes: dict, more: dict) -> dict:
    labels = list(dict.fromkeys([*notes["label"].split(NAME_SEPARATOR), more["label"]]))
    return {**notes, "label": NAME_SEPARATOR.join(labels)}
