"""Any other list with a header, through COLUMNS: which columns hold the YTID, the start and (maybe) the end."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from audioset_downloader.inputs.lists.table import Window, header_of, invalid, rows_after_header, window
from audioset_downloader.inputs.segments import InvalidRow
from audioset_downloader.inputs.settings import Settings

NAME = "COLUMNS"
NOTE_COLUMNS = ()  # metadata.csv columns (and json keys) beside "dataset"


def _delimiter(lines: list[str]) -> str:
    return "\t" if lines and "\t" in lines[0] else ","


def recognise(lines: list[str], settings: Settings) -> bool:
    columns = settings.columns
    if columns is None:
        return False
    header = header_of(lines, _delimiter(lines))
    wanted = [columns.ytid, columns.start] + ([columns.end] if columns.end else [])
    return all(name.lower() in header for name in wanted)


def windows(lines: Iterator[tuple[int, str]], settings: Settings) -> Iterator[tuple[int, Window] | InvalidRow]:
    columns = settings.columns
    assert columns is not None
    first = next(lines, None)
    while first is not None and not first[1].strip():
        first = next(lines, None)
    if first is None:
        return
    delimiter = _delimiter([first[1]])
    header = header_of([first[1].rstrip("\r\n")], delimiter)
    ytid_at, start_at = header.index(columns.ytid.lower()), header.index(columns.start.lower())
    end_at = header.index(columns.end.lower()) if columns.end else None
    for row in rows_after_header(itertools.chain([first], lines), delimiter):
        if isinstance(row, InvalidRow):
            yield row
            continue
        line, fields = row
        if len(fields) != len(header):
            yield invalid(line, fields, f"expected {len(header)} fields as the header has, found {len(fields)}")
            continue
        end = fields[end_at] if end_at is not None else None
        yield window(line, fields[ytid_at], fields[start_at], end, "", {"dataset": NAME})


def merge(notes: dict, more: dict) -> dict:
    return notes
