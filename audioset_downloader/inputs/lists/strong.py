"""AudioSet strong labels (Hershey et al., ICASSP 2021): one tab-separated row per labelled event.

``segment_id`` is ``YTID_<start ms>`` (split on the last "_": YTIDs hold "_"); the clip is the
CLIP_SECONDS (10) from that start; onset and offset are seconds from the clip's start. The framed
posneg file adds ``present``: an event judged absent is kept in ``events`` but not in the labels.
"""

from __future__ import annotations

from audioset_downloader.inputs.lists.table import Window, header_of, invalid
from audioset_downloader.inputs.lists.table import window as checked
from audioset_downloader.inputs.segments import InvalidRow, parse_ms
from audioset_downloader.inputs.settings import Settings

NAME = "AudioSet strong"
NOTE_COLUMNS = ("events",)  # metadata.csv columns (and json keys) beside "dataset"
HEADER = ["segment_id", "start_time_seconds", "end_time_seconds", "label"]
DELIMITER = "\t"
FIELDS = (4, 5)  # present, in the framed posneg file


def recognise(lines: list[str], settings: Settings) -> bool:
    return header_of(lines, "\t") in (HEADER, [*HEADER, "present"])


def window(line: int, fields: list[str], header: list[str], settings: Settings) -> tuple[int, Window] | InvalidRow:
    segment_id, onset, offset, mid = fields[:4]
    ytid, _, start_ms = segment_id.rpartition("_")
    onset_ms, offset_ms = parse_ms(onset), parse_ms(offset)
    if not start_ms.isdigit() or len(start_ms) > 8:
        return invalid(line, fields, f"segment_id {segment_id[:40]!r} is not YTID_<start in ms>")
    if onset_ms is None or offset_ms is None or not 0 <= onset_ms <= offset_ms:
        return invalid(line, [ytid, str(int(start_ms) / 1000), ""],
                       f"event times {onset[:20]!r}, {offset[:20]!r} are not seconds from the clip's start, in order")
    present = len(fields) == 4 or fields[4].upper() == "PRESENT"
    event = {"onset": onset_ms / 1000, "offset": offset_ms / 1000, "mid": mid, "present": present}
    return checked(line, ytid, f"{int(start_ms) / 1000}", None, mid if present else "",
                   {"dataset": NAME, "events": [event]})


def merge(notes: dict, more: dict) -> dict:
    return {**notes, "events": notes["events"] + more["events"]}
