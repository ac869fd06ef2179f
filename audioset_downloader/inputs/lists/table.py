"""What every list reader shares: lines read safely, one CSV or TSV row per line, and the checks of a window.

Any bytes give rows or InvalidRows with their line, never an exception: bytes that are not UTF-8
and NULs are reported, a quote never closed spoils its own line only (each line is parsed alone),
and a field past the csv module's limit is an InvalidRow.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from audioset_downloader.errors import ConfigError
from audioset_downloader.inputs.segments import MAX_MS, UNDECODABLE, YTID_PATTERN, InvalidRow, OneLine, parse_ms

FIRST_LINES = 5
MAX_RECORD_LINES = 50


@dataclass(frozen=True)
class Window:
    """One row's window: ``end_ms`` None when the list gives no end; ``notes`` the set's annotations."""

    ytid: str
    start_ms: int
    end_ms: int | None
    labels: str = ""  # MIDs, comma-joined, where the set has them
    notes: dict[str, Any] = field(default_factory=dict)

    def merged(self, other: Window, merge: Callable[[dict, dict], dict]) -> Window:
        labels = ",".join(dict.fromkeys(label for label in f"{self.labels},{other.labels}".split(",") if label))
        return replace(self, labels=labels, notes=merge(self.notes, other.notes))


def _open(path: Path):  # undecodable bytes become U+DC80..U+DCFF, reported line by line
    try:
        return open(path, newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open the list ({exc.strerror}); check CSV_FILE_NAMES") from exc


def first_lines(path: Path) -> list[str]:
    """The first few lines that are not blank, to tell the list's shape by (at most 64 KiB each)."""
    lines: list[str] = []
    with _open(path) as handle:
        while len(lines) < FIRST_LINES:
            line = handle.readline(65536)
            if not line:
                break
            if line.strip():
                lines.append(line.rstrip("\r\n"))
    return lines


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    with _open(path) as handle:
        yield from enumerate(handle, start=1)


class RowParser:
    """One line to its fields (csv module, comma or tab), or an InvalidRow saying what is wrong with it."""

    def __init__(self, delimiter: str = ",") -> None:
        self._feed = OneLine()
        self._reader = csv.reader(self._feed, delimiter=delimiter, strict=True)

    def fields(self, line_no: int, line: str) -> list[str] | InvalidRow:
        if (undecodable := UNDECODABLE.search(line)) is not None:
            byte = ord(undecodable.group()) - 0xDC00
            return invalid(line_no, [], f"byte 0x{byte:02x} at column {undecodable.start() + 1} is not UTF-8; "
                                        "save the file as UTF-8", raw=line)
        if "\x00" in line:
            return invalid(line_no, [], "holds a NUL byte; is this a text file?", raw=line)
        self._feed.line = line
        try:
            return [value.strip() for value in next(self._reader)]
        except csv.Error as exc:
            problem = ("a quote is never closed" if "field larger" not in str(exc)
                       else f"a field longer than {csv.field_size_limit()} characters")
            return invalid(line_no, [], problem, raw=line)
        except StopIteration:
            return invalid(line_no, [], "a quote is never closed", raw=line)


def invalid(line_no: int, fields: list[str], problem: str, raw: str = "") -> InvalidRow:
    """An InvalidRow whose fields and raw row are printable and short (they go to failed.csv and the log)."""
    printable = tuple(_printable(value) for value in fields)
    return InvalidRow(line_no, printable, problem, _printable(raw.rstrip("\r\n")))


def _printable(value: str) -> str:
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").replace("\x00", "\\x00")[:200]


# Header names of the YTID column in the lists this reads (AudioCaps, Kinetics: youtube_id; MusicCaps: ytid).
YTID_COLUMNS = ("youtube_id", "ytid", "# ytid", "video_id")


def ytid_held(fields: list[str], header: list[str], settings: Any) -> str:
    """The YTID a row of the wrong shape really holds, or "": the header's YTID column (the first field
    in a list without one), if that field is a YTID. A comma too many in a caption shifts only what
    comes after it."""
    names = [*YTID_COLUMNS, *([settings.columns.ytid.lower()] if getattr(settings, "columns", None) else [])]
    index = next((header.index(name) for name in names if name in header), 0 if not header else None)
    value = fields[index] if index is not None and index < len(fields) else ""
    return value if YTID_PATTERN.fullmatch(value) else ""


def window(line_no: int, ytid: str, start: str, end: str | None, labels: str = "",
           notes: dict[str, Any] | None = None) -> tuple[int, Window] | InvalidRow:
    """The row's Window after the checks every list shares, or an InvalidRow (fields: YTID, start, end)."""
    fields = [ytid, start, end or ""]
    if not YTID_PATTERN.fullmatch(ytid):
        return invalid(line_no, fields, f"YTID {ytid[:40]!r} is not 11 characters of A-Z a-z 0-9 _ -")
    start_ms = parse_ms(start)
    end_ms = parse_ms(end) if end is not None else None
    if start_ms is None or start_ms < 0 or (end is not None and end_ms is None):
        return invalid(line_no, fields, f"start {start[:20]!r}" + (f" and end {end[:20]!r}" if end is not None else "")
                       + " must be seconds from 0 to 86400 (a day)")
    if end_ms is not None and not start_ms < end_ms <= MAX_MS:
        return invalid(line_no, fields, f"end {end} is not after start {start}")
    return line_no, Window(ytid, start_ms, end_ms, labels, notes or {})


def header_of(lines: list[str], delimiter: str = ",") -> list[str]:
    """The first line's fields, as a header (empty when there is none)."""
    if not lines:
        return []
    parsed = RowParser(delimiter).fields(1, lines[0])
    return [] if isinstance(parsed, InvalidRow) else [name.strip().lower() for name in parsed]


def rows(lines: Iterator[tuple[int, str]], module: Any, settings: Any,
         delimiter: str) -> Iterator[tuple[int, Window] | InvalidRow]:
    """Each data line of a list as the module's Window, or an InvalidRow (bad bytes, quotes, field count).

    The module says its shape: ``HAS_HEADER`` (the first line that is not blank), ``FIELDS`` (the
    field counts a row may have; None: the header's) and ``window(line, fields, header, settings)``,
    which turns one row's fields into its window."""
    parser = RowParser(delimiter)
    header: list[str] | None = None if getattr(module, "HAS_HEADER", True) else []
    for line_no, line in records(lines):
        if header is None:
            parsed_header = parser.fields(line_no, line)
            header = [] if isinstance(parsed_header, InvalidRow) else [name.lower() for name in parsed_header]
            continue
        parsed = parser.fields(line_no, line)
        counts = module.FIELDS or (len(header),)
        if isinstance(parsed, InvalidRow):
            yield parsed
        elif len(parsed) not in counts:
            expected = " or ".join(map(str, counts))
            yield invalid(line_no, [ytid_held(parsed, header, settings)],
                          f"expected {expected} fields, as {module.NAME}'s rows have, found {len(parsed)}", raw=line)
        else:
            yield module.window(line_no, parsed, header, settings)


def records(lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """The records of a CSV that are not blank, with the line each starts on. A quoted field may go on
    over the next lines (MusicCaps' captions hold newlines), up to MAX_RECORD_LINES: a quote that is
    still open by then spoils its own line only, and the lines after it are read again."""
    pending: deque[tuple[int, str]] = deque()
    while pending or (item := next(lines, None)) is not None:
        line_no, line = pending.popleft() if pending else item
        if not line.strip():
            continue
        if line.count('"') % 2:  # an odd count of quotes: a field opened and not closed on this line
            taken = [(line_no, line)]
            text = line
            while len(taken) < MAX_RECORD_LINES and (more := pending.popleft() if pending else next(lines, None)):
                taken.append(more)
                text += more[1]
                if not text.count('"') % 2:
                    line = text
                    break
            else:
                pending.extendleft(reversed(taken[1:]))
        yield line_no, line.rstrip("\r\n")
