"""Recording results: split-pos.csv (clips written) and failed.csv (clips not written).

Both are appended one flushed row at a time, so a killed run loses nothing it had
recorded; a row torn by the kill is cut off when the file is next opened. A row is
appended to split-pos.csv only after its clip was renamed into place, so a row
always means a complete file.

failed.csv holds the latest outcome of each segment that is not done, one row
each: a new failure is appended at once; a segment that fails again, or succeeds
after failing, changes an existing row, which is applied by rewriting the file
atomically (at close, and when such changes pile up).
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import FailureReason
from .layout import CsvOutputs, write_atomically
from .segments import Segment, row_key

log = logging.getLogger(__name__)

SPLIT_POS_HEADER = ("file", "YTID", "start_seconds", "end_seconds", "positive_labels")
FAILED_HEADER = ("YTID", "start_seconds", "end_seconds", "reason", "detail")
REWRITE_EVERY = 1000  # pending changes to failed.csv before it is rewritten mid-run
DETAIL_LIMIT = 300


@dataclass(frozen=True, slots=True)
class FailedRow:
    ytid: str
    start_text: str
    end_text: str
    reason: str
    detail: str

    def fields(self) -> tuple[str, ...]:
        return (self.ytid, self.start_text, self.end_text, self.reason, self.detail)

    @property
    def failure_reason(self) -> FailureReason | None:
        return FailureReason.from_label(self.reason)


class AppendOnlyCsv:
    """A CSV file that only grows, one flushed row at a time."""

    def __init__(self, path: Path, header: tuple[str, ...]) -> None:
        self.path = path
        self.header = header
        self._handle: io.TextIOWrapper | None = None
        self._writer = None

    def read_rows(self) -> list[list[str]]:
        """Existing data rows, after cutting off a last line torn by a kill."""
        if not self.path.exists():
            return []
        _cut_torn_tail(self.path)
        with open(self.path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        if rows and tuple(rows[0]) == self.header:
            rows = rows[1:]
        return [row for row in rows if row]

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
        """Replace the file atomically with exactly these rows."""
        reopen = self._handle is not None
        self.close()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(rows)
        write_atomically(self.path, buffer.getvalue())
        if reopen:
            self.open()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
            self._writer = None


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


class Ledger:
    """What is done and what failed, for one CSV; the only writer of its manifests."""

    def __init__(self, outputs: CsvOutputs) -> None:
        self.outputs = outputs
        self._split_pos = AppendOnlyCsv(outputs.split_pos, SPLIT_POS_HEADER)
        self._failed_csv = AppendOnlyCsv(outputs.failed, FAILED_HEADER)
        self.done: set[tuple] = set()
        self.failed: dict[tuple, FailedRow] = {}
        self._pending_changes = 0

    def open(self) -> None:
        self._load_done()
        self._load_failed()
        self._split_pos.open()
        self._failed_csv.open()

    def _load_done(self) -> None:
        """Rows whose clip exists count as done; rows without their file are dropped."""
        present = self.outputs.existing_clips()
        rows = self._split_pos.read_rows()
        kept = []
        for row in rows:
            if len(row) != len(SPLIT_POS_HEADER):
                continue
            key = row_key(row[1], row[2], row[3])
            if key in self.done or Path(row[0]).name not in present:
                continue
            self.done.add(key)
            kept.append(row)
        if len(kept) != len(rows):
            log.info(
                "%s: dropped %d rows whose clip is missing or repeated; they will be fetched again",
                self.outputs.split_pos.name,
                len(rows) - len(kept),
            )
            self._split_pos.rewrite(kept)

    def _load_failed(self) -> None:
        rows = self._failed_csv.read_rows()
        for row in rows:
            if len(row) != len(FAILED_HEADER):
                continue
            key = row_key(row[0], row[1], row[2])
            self.failed.pop(key, None)  # the last row of a segment wins
            if key not in self.done:
                self.failed[key] = FailedRow(*row)
        if len(self.failed) != len(rows):
            self._failed_csv.rewrite(row.fields() for row in self.failed.values())

    def is_done(self, segment: Segment) -> bool:
        return segment.key in self.done

    def failed_for_good(self, segment: Segment) -> bool:
        """Failed before for a permanent reason (the video is gone): not worth a retry."""
        row = self.failed.get(segment.key)
        return row is not None and row.failure_reason is not None and row.failure_reason.permanent

    def record_written(self, segment: Segment, relative_file: str) -> None:
        self._split_pos.append(
            (relative_file, segment.ytid, segment.start_text, segment.end_text, segment.labels_text)
        )
        self.done.add(segment.key)
        if self.failed.pop(segment.key, None) is not None:
            self._changed()

    def record_failed(self, key: tuple, row: FailedRow) -> None:
        row = FailedRow(row.ytid, row.start_text, row.end_text, row.reason, _one_line(row.detail))
        previous = self.failed.get(key)
        self.failed[key] = row
        if previous is None:
            self._failed_csv.append(row.fields())
        elif previous != row:
            self._changed()

    def _changed(self) -> None:
        self._pending_changes += 1
        if self._pending_changes >= REWRITE_EVERY:
            self.flush_changes()

    def flush_changes(self) -> None:
        if self._pending_changes:
            self._failed_csv.rewrite(row.fields() for row in self.failed.values())
            self._pending_changes = 0

    def close(self) -> None:
        self.flush_changes()
        self._split_pos.close()
        self._failed_csv.close()


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= DETAIL_LIMIT else flat[: DETAIL_LIMIT - 1] + "…"
