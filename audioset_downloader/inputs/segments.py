"""Reading AudioSet segment CSVs.

Google's files start with three ``#`` comment lines, then rows such as
``--4gqARaEJE, 0.000, 10.000, "/m/068hy,/m/07q6cd_"``: a space after each comma and
the labels one quoted field. Rows stream from the file one at a time, so a
2-million-row CSV costs no more memory than a small one (apart from the set of
YTIDs seen, needed to name repeated videos).
"""

from __future__ import annotations

import csv
import functools
import math
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from audioset_downloader.errors import ConfigError

YTID_PATTERN = re.compile(r"[A-Za-z0-9_-]{11}")
HEADER_FIRST_FIELD = "YTID"
MAX_SECONDS = 86_400  # a window lies within its video; no AudioSet video is a day long
MAX_MS = MAX_SECONDS * 1000
# A well-formed row in Google's shape, recognised in one step (2 M rows must plan
# in seconds); anything else goes through the csv module and is explained if bad.
# Labels hold no NUL and no undecodable byte (read as U+DC80..U+DCFF): those rows
# take the careful path, which says what is wrong with them.
_GOOGLE_ROW = re.compile(r'([A-Za-z0-9_-]{11}), *(\d{1,5}(?:\.\d*)?), *(\d{1,5}(?:\.\d*)?), *'
                         r'"([^"\x00\udc80-\udcff]*)"\s*')
UNDECODABLE = re.compile("[\udc80-\udcff]")


class Segment(NamedTuple):
    """One window of one video, as listed in a CSV.

    Times are whole milliseconds: exact, and AudioSet's three decimals fit.
    ``stem`` is the clip's file name without extension: the YTID, or, for a video
    listed again in the same CSV, the YTID with the window's start appended.
    ``open_end``: the list gave no end (AudioCaps, VGGSound, strong labels): the window is
    CLIP_SECONDS from the start, and a video that ends sooner gives a shorter clip, not a failure.
    ``notes``: the list's own annotations of the window (captions, events...), JSON text; "" for AudioSet.
    A NamedTuple: cheap to build two million of, immutable, picklable.
    """

    ytid: str
    start_ms: int
    end_ms: int
    labels_text: str  # the MIDs as written, comma-joined; split only when asked
    line: int
    stem: str
    open_end: bool = False
    notes: str = ""

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label.strip() for label in self.labels_text.split(",") if label.strip())

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
        return self[:3]  # (ytid, start_ms, end_ms)

    @property
    def start_text(self) -> str:
        return format_seconds(self.start_ms)

    @property
    def end_text(self) -> str:
        return format_seconds(self.end_ms)



# Builds a Segment from a tuple in C, skipping NamedTuple's Python-level __new__.
new_segment = functools.partial(tuple.__new__, Segment)


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A row that cannot be downloaded, with the reason, kept for the record."""

    line: int
    fields: tuple[str, ...]  # YTID, start, end, as far as the row holds them
    problem: str
    raw: str = ""  # the row as it stands, when its fields could not be told apart (quotes, field count)

    def field(self, index: int) -> str:
        return self.fields[index] if index < len(self.fields) else ""

    @property
    def key(self) -> tuple:
        return row_key(self.field(0), self.field(1), self.field(2))


def shard_of(ytid: str, shards: int) -> int:
    """Which of ``shards`` shards a video belongs to: stable across runs, machines and Python versions
    (unlike ``hash``), and by video, so all windows of one video land in one shard."""
    return zlib.crc32(ytid.encode("ascii")) % shards


def format_seconds(ms: int) -> str:
    """Milliseconds as AudioSet writes seconds: ``417300`` -> ``"417.300"``."""
    return f"{ms // 1000}.{ms % 1000:03d}"


def parse_ms(text: str) -> int | None:
    """Seconds text to whole milliseconds; None when it is not a number of at most a day either way."""
    try:
        seconds = float(text)
    except ValueError:
        return None
    if not math.isfinite(seconds) or abs(seconds) > MAX_SECONDS:  # 1e309 is a float too: infinity
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
        return (f"start {start_text[:20]!r} and end {end_text[:20]!r} must be numbers of seconds "
                f"from 0 to {MAX_SECONDS} (a day)")
    if start_ms < 0:
        return f"start {start_text} is negative"
    if end_ms <= start_ms:
        return f"end {end_text} is not after start {start_text}"
    return None


def read_segments(path: Path, one_clip_a_window: bool = True) -> Iterator[Segment | InvalidRow]:
    """Yield each row of an AudioSet CSV as a Segment or an InvalidRow; a row naming a window already
    listed is left out (one window, one clip).

    Comment lines (``#``), blank lines and a ``YTID,...`` header are skipped,
    so Google's files work unchanged and so do files with the comments removed.
    A byte-order mark (Excel) is skipped; a line with a byte that is not UTF-8 or a
    NUL is an InvalidRow, and the rest of the file still counts.
    """
    try:  # undecodable bytes become U+DC80..U+DCFF, to be reported line by line
        handle = open(path, newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open CSV ({exc.strerror}); check CSV_FILE_NAMES") from exc
    seen: set[str] = set()
    # Google's lists name each video once, so the windows listed are kept only from the first video
    # listed twice on (found by reading the lines before it again): 2 M rows cost no more memory.
    windows: dict[str, set[tuple[int, int]]] | None = None
    careful = _CarefulParser()
    google_row = _GOOGLE_ROW.fullmatch
    with handle:
        for line_no, line in enumerate(handle, start=1):
            match = google_row(line)
            if match is not None:
                ytid, start_text, end_text, labels = match.groups()
                start_ms, end_ms = round(float(start_text) * 1000), round(float(end_text) * 1000)
                if end_ms <= start_ms or end_ms > MAX_MS:
                    yield InvalidRow(line_no, match.groups(), _problem(list(match.groups())) or "")
                    continue
            else:
                if _skipped(line):
                    continue
                row = careful.parse(line_no, line)
                if isinstance(row, InvalidRow):
                    yield row
                    continue
                ytid, start_ms, end_ms, labels = row
            if ytid in seen:
                if one_clip_a_window:
                    if windows is None:
                        windows = _windows_before(path, line_no)
                    if (start_ms, end_ms) in windows.get(ytid, ()):
                        continue
                stem = f"{ytid}_{start_ms}"
            else:
                seen.add(ytid)
                stem = ytid
            if windows is not None:
                windows.setdefault(ytid, set()).add((start_ms, end_ms))
            yield new_segment((ytid, start_ms, end_ms, labels, line_no, stem, False, ""))


def _windows_before(path: Path, line: int) -> dict[str, set[tuple[int, int]]]:
    windows: dict[str, set[tuple[int, int]]] = {}
    for row in read_segments(path, one_clip_a_window=False):
        if row.line >= line:
            break
        if type(row) is Segment:
            windows.setdefault(row.ytid, set()).add(row.key[1:])
    return windows


def _skipped(line: str) -> bool:
    """Comment lines, blank lines and a header row carry no segment."""
    stripped = line.strip()
    return not stripped or stripped.startswith("#") or stripped.split(",", 1)[0].strip() == HEADER_FIRST_FIELD


class OneLine:
    """Feeds a csv.reader exactly one line, so a stray quote cannot swallow the next rows."""

    def __init__(self) -> None:
        self.line: str | None = None

    def __iter__(self) -> OneLine:
        return self

    def __next__(self) -> str:
        line, self.line = self.line, None
        if line is None:
            raise StopIteration
        return line


class _CarefulParser:
    """Rows not in Google's exact shape: parsed by the csv module, and explained when bad."""

    def __init__(self) -> None:
        self._feed = OneLine()
        self._reader = csv.reader(self._feed, skipinitialspace=True, strict=True)

    def parse(self, line_no: int, line: str) -> tuple[str, int, int, str] | InvalidRow:
        if (undecodable := UNDECODABLE.search(line)) is not None:
            byte = ord(undecodable.group()) - 0xDC00
            return InvalidRow(line_no, _raw_fields(line),
                              f"byte 0x{byte:02x} at column {undecodable.start() + 1} is not UTF-8; "
                              "save the file as UTF-8")
        if "\x00" in line:
            return InvalidRow(line_no, _raw_fields(line), "holds a NUL byte; is this a text file?")
        self._feed.line = line
        try:
            fields = [field.strip() for field in next(self._reader)]
        except csv.Error as exc:
            problem = ('unbalanced quotes: close the labels field with "' if "field larger" not in str(exc)
                       else f"a field longer than {csv.field_size_limit()} characters")
            return InvalidRow(line_no, _raw_fields(line), problem)
        except StopIteration:
            return InvalidRow(line_no, _raw_fields(line), 'unbalanced quotes: close the labels field with "')
        problem = _problem(fields)
        if problem is not None:
            return InvalidRow(line_no, tuple(fields), problem)
        ytid, start_text, end_text, labels = fields
        labels = ",".join(label.strip() for label in labels.split(","))
        return ytid, parse_ms(start_text), parse_ms(end_text), labels  # type: ignore[return-value]


def _raw_fields(line: str) -> tuple[str, ...]:
    """A bad line's fields as well as they can be told, printable, for the record."""
    printable = line.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
    return tuple(part.strip() for part in printable.split(",", 3))
