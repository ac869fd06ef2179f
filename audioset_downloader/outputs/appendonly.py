"""A CSV file that only grows, one flushed row at a time, and survives a kill: the form of every manifest.

A kill can tear the last row; it is left out when read and cut off when the file is next opened
for writing. A line the tool did not write (a user's edit, a byte that is not UTF-8, a stray quote)
is reported once with its line, left out of the rows, and written back unchanged when the file is
rewritten. The ledger (ledger.py) keeps split-pos.csv, failed.csv and metadata.csv in this form.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from audioset_downloader.atomic import atomic_writer
from audioset_downloader.inputs.segments import UNDECODABLE as _UNDECODABLE
from audioset_downloader.inputs.segments import OneLine

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DamagedLine:
    """A line of a manifest that is not a row this tool wrote: skipped, and kept as it is."""

    line: int
    text: str  # as read, undecodable bytes as U+DC80..U+DCFF, so that they are written back unchanged
    problem: str


class AppendOnlyCsv:
    """A CSV file that only grows, one flushed row at a time.

    A line a user edited or damaged (a torn row in the middle, a byte that is not
    UTF-8, a stray quote) is reported once with its line, left out of the rows, and
    written back unchanged whenever the file is rewritten: never the tool's to delete.
    """

    def __init__(self, path: Path, header: tuple[str, ...], min_fields: int | None = None,
                 check: Callable[[list[str]], str | None] = lambda row: None) -> None:
        self.path = path
        self.header = header
        self._min_fields = min_fields or len(header)
        self._check = check
        self.damaged: list[DamagedLine] = []
        self._reported: set[int] = set()
        self._handle: io.TextIOWrapper | None = None
        self._writer = None

    def rows(self, repair: bool) -> Iterator[list[str]]:
        """Stream the data rows, without a last line torn by a kill (cut off the file when repairing)."""
        if not self.path.exists():
            return
        if repair:
            _cut_torn_tail(self.path)
        damaged: list[DamagedLine] = []
        feed = OneLine()
        reader = csv.reader(feed, strict=True)  # one line at a time: a stray quote cannot swallow the rest
        with open(self.path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
            whole = _ends_with_newline(self.path)
            for line_no, line in enumerate(handle, start=1):
                if not whole and not line.endswith("\n"):
                    break  # a torn last line: leave it out
                feed.line = line
                try:
                    row = next(reader, [])
                except csv.Error:
                    row, problem = [], "unbalanced quotes"
                else:
                    if not row or row[0] == self.header[0]:
                        continue  # blank, or the header
                    problem = self._problem(line, row)
                if problem is None:
                    yield row
                else:
                    damaged.append(DamagedLine(line_no, line.rstrip("\r\n"), problem))
                    self._report(damaged[-1])
        self.damaged = damaged

    def _problem(self, line: str, row: list[str]) -> str | None:
        if _UNDECODABLE.search(line):
            return "a byte that is not UTF-8"
        if not self._min_fields <= len(row) <= len(self.header):
            return f"{len(row)} fields where {len(self.header)} belong"
        return self._check(row)

    def _report(self, damaged: DamagedLine) -> None:
        if damaged.line not in self._reported:
            self._reported.add(damaged.line)
            log.warning("%s:%d: skipped a line this tool did not write (%s); left in the file as it is",
                        self.path, damaged.line, damaged.problem)

    def has_current_header(self) -> bool:
        if not self.path.exists():
            return True
        with open(self.path, "rb") as handle:
            first = handle.readline().decode("utf-8", "replace")
        return next(csv.reader([first]), []) == list(self.header)

    def count_rows(self) -> int:
        if not self.path.exists():
            return -1
        with open(self.path, "rb") as handle:
            return sum(1 for _ in handle) - 1

    def open(self) -> None:
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        self._handle = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._handle, lineterminator="\n")
        if fresh:
            self.append(self.header)

    def append(self, row: Iterable[str]) -> None:
        assert self._writer is not None and self._handle is not None, "open() first"
        self._writer.writerow(row)
        self._handle.flush()  # in the OS's hands: survives a kill of this process

    def rewrite(self, rows: Iterable[Iterable[str]]) -> None:
        """Replace the file atomically with exactly these rows (streamed, never all in memory)."""
        reopen = self._handle is not None
        self.close()
        with atomic_writer(self.path, errors="surrogateescape") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(self.header)
            writer.writerows(rows)  # streamed from this file: self.damaged is complete once they are
            handle.writelines(damaged.text + "\n" for damaged in self.damaged)
        if reopen:
            self.open()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
            self._writer = None


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _cut_torn_tail(path: Path) -> None:
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        # Read back far enough to find the last complete line.
        chunk = min(size, 1 << 16)
        handle.seek(size - chunk)
        tail = handle.read(chunk)
        cut = tail.rfind(b"\n")
        keep = size - chunk + cut + 1 if cut >= 0 else 0
        handle.truncate(keep)
        log.warning("%s: removed a row torn by an interrupted run", path.name)
