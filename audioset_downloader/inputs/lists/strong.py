"""AudioSet strong labels (Hershey et al., ICASSP 2021): one tab-separated row per labelled event.

``segment_id`` is ``YTID_<start ms>`` (split on the last "_": YTIDs hold "_"); the clip is the
CLIP_SECONDS (10) from that start; onset and offset are seconds from the clip's start. The framed
posneg file adds ``present``: an event judged absent is kept in ``events`` but not in the labels.
"""

from __future__ import annotations

from collections.abc import Iterator

from audioset_downloader.inputs.lists.table import Window, header_of, invalid, rows_after_header, window
from audioset_downloader.inputs.segments import InvalidRow, parse_ms
from audioset_downloader.inputs.settings import Settings

NAME = "AudioSet strong"
NOTE_COLUMNS = ("events",)  # metadata.csv columns (and json keys) beside "dataset"
HEADER = ["segment_id", "start_time_seconds", "end_time_seconds", "label"]


def recognise(lines: list[str], settings: Settings) -> bool:
    return header_of(lines, "\t") in (HEADER, [*HEADER, "present"])


def windows(lines: Iterator[tuple[int, str]], settings: Settings) -> Iterator[tuple[int, Window] | InvalidRow]:
    for row in rows_after_header(lines, "\t"):
        if isinstance(row, InvalidRow):
            yield row
            continue
        line, fields = row
        if len(fields) not in (4, 5):
            yield invalid(line, fields, f"expected 4 or 5 tab-separated fields, found {len(fields)}")
            continue
        segment_id, onset, offset, mid = fields[:4]
        ytid, _, start_ms = segment_id.rpartition("_")
        onset_ms, offset_ms = parse_ms(onset), parse_ms(offset)
        if not start_ms.isdigit() or len(start_ms) > 8:
            yield invalid(line, fields, f"segment_id {segment_id[:40]!r} is not YTID_<start in ms>")
            continue
        if onset_ms is None or offset_ms is None or not 0 <= onset_ms <= offset_ms:
            yield invalid(line, [ytid, str(int(start_ms) / 1000), ""], f"event times {onset!r}, {offset!r} are not "
                                                                         "seconds from the clip's start, in order")
            continue
        present = len(fields) == 4 or fields[4].upper() == "PRESENT"
        event = {"onset": onset_ms / 1000, "offset": offset_ms / 1000, "mid": mid, "present": present}
        yield window(line, ytid, f"{int(start_ms) / 1000}", None, mid if present else "",
                     {"dataset": NAME, "events": [event]})


def merge(notes: dict, more: dict) -> dict:
    return {**notes, "events": notes["events"] + more["events"]}
