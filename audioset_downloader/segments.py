"""Reading AudioSet segment CSVs.

Google's files start with three ``#`` comment lines, then rows such as
``--4gqARaEJE, 0.000, 10.000, "/m/068hy,/m/07q6cd_"``: a space after each comma and
the labels one quoted field. Rows stream from the file one at a time, so a
2-million-row CSV costs no more memory than a small one (apart from the set of
YTIDs seen, needed to name repeated videos).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

YTID_PATTERN = re.compile(r"[A-Za-z0-9_-]{11}")
HEADER_FIRST_FIELD = "YTID"


@dataclass(frozen=True, slots=True)
class Segment:
    """One window of one video, as listed in a CSV.

    Times are whole milliseconds: exact, and AudioSet's three decimals fit.
    ``stem`` is the clip's file name without extension: the YTID, or, for a video
    listed again in the same CSV, the YTID with the window's start appended.
    """

    ytid: str
    start_ms: int
    end_ms: int
    labels: tuple[str, ...]
    line: int
    stem: str

    @property
    def start(self) -> float:
        return self.start_ms / 1000

    @property
    def end(self) -> float:
        return self.end_ms / 1000

    @property
    def duration(self) -> float:
        return (self.end_ms - self.start_ms) / 1000

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.ytid, self.start_ms, self.end_ms)

    @property
    def start_text(self) -> str:
        return format_seconds(self.start_ms)

    @property
    def end_text(self) -> str:
        return format_seconds(self.end_ms)

    @property
    def labels_text(self) -> str:
        return ",".join(self.labels)


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A row that cannot be downloaded, with the reason, kept for the record."""

    line: int
    fields: tuple[str, ...]
    problem: str

    def field(self, index: int) -> str:
        return self.fields[index] if index < len(self.fields) else ""

    @property
    def key(self) -> tuple:
        return row_key(self.field(0), self.field(1), self.field(2))


def format_seconds(ms: int) -> str:
    """Milliseconds as AudioSet writes seconds: ``417300`` -> ``"417.300"``."""
    return f"{ms // 1000}.{ms % 1000:03d}"


def parse_ms(text: str) -> int | None:
    """Seconds text to whole milliseconds; None when it is not a finite number."""
    try:
        seconds = float(text)
    except ValueError:
        return None
    if not math.isfinite(seconds):
        return None
    return round(seconds * 1000)


def row_key(ytid: str, start_text: str, end_text: str) -> tuple:
    """The identity of a row in the manifests: numeric times when they parse."""
    start_ms, end_ms = parse_ms(start_text), parse_ms(end_text)
    if start_ms is None or end_ms is None:
        return (ytid, start_text, end_text)
    return (ytid, start_ms, end_ms)


def _problem(fields: list[str]) -> str | None:
    """What is wrong with a row, or None when it is a valid segment."""
    if len(fields) != 4:
        return f"expected 4 fields (YTID, start, end, labels), found {len(fields)}"
    ytid, start_text, end_text, _ = fields
    if not YTID_PATTERN.fullmatch(ytid):
        return f"YTID {ytid[:40]!r} is not 11 characters of A-Z a-z 0-9 _ -"
    start_ms, end_ms = parse_ms(start_text), parse_ms(end_text)
    if start_ms is None or end_ms is None:
        return f"start {start_text[:20]!r} and end {end_text[:20]!r} must be numbers of seconds"
    if start_ms < 0:
        return f"start {start_text} is negative"
    if end_ms <= start_ms:
        return f"end {end_text} is not after start {start_text}"
    return None


def read_segments(path: Path) -> Iterator[Segment | InvalidRow]:
    """Yield each row of an AudioSet CSV as a Segment or an InvalidRow.

    Comment lines (``#``), blank lines and a ``YTID,...`` header are skipped,
    so Google's files work unchanged and so do files with the comments removed.
    """
    seen: set[str] = set()
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open CSV ({exc.strerror}); check CSV_FILE_NAMES") from exc
    with handle:
        lines = _numbered_data_lines(handle)
        for line_no, fields, raw in _parse(lines):
            if fields is None:
                raw_fields = tuple(part.strip() for part in raw.split(",", 3))
                yield InvalidRow(line_no, raw_fields, 'unbalanced quotes: close the labels field with "')
                continue
            problem = _problem(fields)
            if problem is not None:
                yield InvalidRow(line_no, tuple(fields), problem)
                continue
            ytid, start_text, end_text, labels = fields
            start_ms, end_ms = parse_ms(start_text), parse_ms(end_text)
            stem = ytid
            if ytid in seen:
                stem = f"{ytid}_{start_ms}"
            else:
                seen.add(ytid)
            yield Segment(
                ytid=ytid,
                start_ms=start_ms,  # type: ignore[arg-type]  # checked by _problem
                end_ms=end_ms,  # type: ignore[arg-type]
                labels=tuple(label.strip() for label in labels.split(",") if label.strip()),
                line=line_no,
                stem=stem,
            )


def _numbered_data_lines(handle) -> Iterator[tuple[int, str]]:
    for line_no, line in enumerate(handle, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.split(",", 1)[0].strip() == HEADER_FIRST_FIELD:
            continue
        yield line_no, line


class _OneLine:
    """Feeds a csv.reader exactly one line, so a stray quote cannot swallow the next rows."""

    def __init__(self) -> None:
        self.line: str | None = None

    def __iter__(self) -> _OneLine:
        return self

    def __next__(self) -> str:
        line, self.line = self.line, None
        if line is None:
            raise StopIteration
        return line


def _parse(numbered: Iterator[tuple[int, str]]) -> Iterator[tuple[int, list[str] | None, str]]:
    # One reader reused for every line: several times faster than a reader per line.
    feed = _OneLine()
    reader = csv.reader(feed, skipinitialspace=True, strict=True)
    for line_no, line in numbered:
        feed.line = line
        try:
            fields = next(reader)
        except (StopIteration, csv.Error):
            yield line_no, None, line
            continue
        yield line_no, [field.strip() for field in fields], line
