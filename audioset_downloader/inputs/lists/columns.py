"""Any other list with a header, through COLUMNS: which columns hold the YTID, the start and (maybe) the end."""

from __future__ import annotations

from audioset_downloader.inputs.lists.table import Window, header_of
from audioset_downloader.inputs.lists.table import window as checked
from audioset_downloader.inputs.segments import InvalidRow
from audioset_downloader.inputs.settings import Settings

NAME = "COLUMNS"
NOTE_COLUMNS = ()  # metadata.csv columns (and json keys) beside "dataset"
FIELDS = None  # as many as the header has


def delimiter(lines: list[str]) -> str:
    return "\t" if lines and "\t" in lines[0] else ","


def recognise(lines: list[str], settings: Settings) -> bool:
    columns = settings.columns
    if columns is None:
        return False
    header = header_of(lines, delimiter(lines))
    wanted = [columns.ytid, columns.start] + ([columns.end] if columns.end else [])
    return all(name.lower() in header for name in wanted)


def window(line: int, fields: list[str], header: list[str], settings: Settings) -> tuple[int, Window] | InvalidRow:
    columns = settings.columns
    assert columns is not None
    end = fields[header.index(columns.end.lower())] if columns.end else None
    return checked(line, fields[header.index(columns.ytid.lower())], fields[header.index(columns.start.lower())],
                   end, "", {"dataset": NAME})


def merge(notes: dict, more: dict) -> dict:
    return notes
