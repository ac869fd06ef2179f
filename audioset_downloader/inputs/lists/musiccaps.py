"""MusicCaps (Agostinelli et al., 2023): one row per 10 s window, with AudioSet MIDs, a caption and aspects.

``aspect_list`` is a Python list literal of strings; it is parsed as data by a pattern, never
evaluated (``eval`` of a row would run whatever the row holds).
"""

from __future__ import annotations

import re

from audioset_downloader.inputs.lists.table import Window, header_of, invalid
from audioset_downloader.inputs.lists.table import window as checked
from audioset_downloader.inputs.segments import InvalidRow
from audioset_downloader.inputs.settings import Settings

NAME = "MusicCaps"
# metadata.csv columns (and json keys) beside "dataset"
NOTE_COLUMNS = ("caption", "aspect_list", "author_id", "is_balanced_subset", "is_audioset_eval")
FIELDS = (9,)
DELIMITER = ","
HEADER = ["ytid", "start_s", "end_s", "audioset_positive_labels", "aspect_list", "caption", "author_id",
          "is_balanced_subset", "is_audioset_eval"]
_STRING = r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\""
_LIST = re.compile(rf"\[\s*(?:(?:{_STRING})\s*(?:,\s*(?:{_STRING})\s*)*,?\s*)?\]")
_ITEM = re.compile(_STRING)
_ESCAPE = re.compile(r"\\(.)")
_FLAGS = {"True": True, "False": False}


def recognise(lines: list[str], settings: Settings) -> bool:
    return header_of(lines) == HEADER


def parse_string_list(text: str) -> list[str] | None:
    """``['a', "b"]`` as a list of str, or None when the text is anything else (code included)."""
    if _LIST.fullmatch(text.strip()) is None:
        return None
    return [_ESCAPE.sub(r"\1", item[1:-1]) for item in _ITEM.findall(text)]


def window(line: int, fields: list[str], header: list[str], settings: Settings) -> tuple[int, Window] | InvalidRow:
    ytid, start, end, labels, aspects, caption, author, balanced, evaluation = fields
    aspect_list = parse_string_list(aspects)
    if aspect_list is None:
        return invalid(line, [ytid, start, end], f"aspect_list {aspects[:60]!r} is not a list of quoted strings")
    if balanced not in _FLAGS or evaluation not in _FLAGS:
        return invalid(line, [ytid, start, end], "is_balanced_subset and is_audioset_eval must be True or False")
    mids = ",".join(label.strip() for label in labels.split(",") if label.strip())
    return checked(line, ytid, start, end, mids, {
        "dataset": NAME, "caption": caption, "aspect_list": aspect_list, "author_id": author,
        "is_balanced_subset": _FLAGS[balanced], "is_audioset_eval": _FLAGS[evaluation]})


def merge(notes: dict, more: dict) -> dict:
    return notes  # one row per window; a repeated row adds nothing
