"""AudioSet's own segment files: read by segments.py's streaming reader (2 M rows in seconds)."""

from __future__ import annotations

from audioset_downloader.inputs.segments import HEADER_FIRST_FIELD, parse_ms
from audioset_downloader.inputs.settings import Settings

NAME = "AudioSet"
NOTE_COLUMNS = ()  # metadata.csv columns (and json keys) beside "dataset"


def recognise(lines: list[str], settings: Settings) -> bool:
    """Google's comment lines, a ``YTID`` header, or a row of ``YTID, start, end, ...``; an empty file too."""
    if not lines or any(line.startswith("#") for line in lines):
        return True
    for line in lines:
        fields = [value.strip() for value in line.split(",")]
        if fields[0] == HEADER_FIRST_FIELD:
            return True
        if len(fields) >= 3 and parse_ms(fields[1]) is not None and parse_ms(fields[2]) is not None:
            return True
    return False
