"""Recording results: split-pos.csv (clips written) and failed.csv (clips not written).

Both are appended one flushed row at a time (appendonly.py), so a killed run loses nothing it
had recorded; a row torn by the kill is cut off when the file is next opened. A row is
appended to split-pos.csv only after its clip was renamed into place, so a row
always means a complete file. In the webdataset layout the row names the tar shard
and member the clip goes into, and the shard is packed later (shards.py).

failed.csv holds the latest outcome of each segment that is not done, one row
each: a new failure is appended at once; a segment that fails again, or succeeds
after failing, changes an existing row, which is applied by rewriting the file
atomically (at close, and when such changes pile up).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from audioset_downloader.errors import FailureReason, LayoutMismatch
from audioset_downloader.fetch.measure import ClipMeasures
from audioset_downloader.inputs.segments import Segment, parse_ms, row_key
from audioset_downloader.outputs.appendonly import AppendOnlyCsv
from audioset_downloader.outputs.layout import CLIP_NAME, CsvOutputs
from audioset_downloader.outputs.parquet_files import schema_problem
from audioset_downloader.outputs.shards import Sample, ShardPacker, sample_json
from audioset_downloader.redact import redact

log = logging.getLogger(__name__)

# file: the clip, or in the webdataset layout the shard holding it as member (empty otherwise).
# What the clip holds (fetch/measure.py); empty for clips recorded before it was measured.
MEASURE_COLUMNS = ("peak_dbfs", "rms_dbfs", "silent_share", "silent", "duration_seconds")
SPLIT_POS_HEADER = ("file", "YTID", "start_seconds", "end_seconds", "positive_labels", "label_names", "backend",
                    "member", *MEASURE_COLUMNS)
MEMBER = SPLIT_POS_HEADER.index("member")
MEASURES = slice(MEMBER + 1, MEMBER + 1 + len(MEASURE_COLUMNS))
SILENT = SPLIT_POS_HEADER.index("silent")
BACKEND = SPLIT_POS_HEADER.index("backend")
# Hugging Face's audiofolder layout: datasets.load_dataset("audiofolder", data_dir=OUTPUT_DIR/X)
METADATA_HEADER = ("file_name", "YTID", "start_seconds", "end_seconds", "labels", "label_names", "backend",
                   *MEASURE_COLUMNS)
# Rows written by earlier versions lack the last columns: label_names (the 6th), backend, member.
OLDEST_SPLIT_POS_ROW = 5
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
    def key(self) -> tuple:
        """What a rerun knows the row by: its window; an invalid row, which may hold no YTID or times, by its
        line as the detail starts ("line 12: ...")."""
        if self.reason == FailureReason.INVALID_ROW.label:
            return (self.ytid, self.detail.partition(":")[0])
        return row_key(self.ytid, self.start_text, self.end_text)

    @property
    def failure_reason(self) -> FailureReason | None:
        return FailureReason.from_label(self.reason)


def _times_problem(row: list[str]) -> str | None:
    """A split-pos row's start and end must be numbers: they are the clip's identity."""
    return None if parse_ms(row[2]) is not None and parse_ms(row[3]) is not None else "start or end is not a number"


def no_label_names(labels: str) -> str:
    """Without an ontology: no names."""
    return ""


class Ledger:
    """What is done and what failed, for one CSV; the only writer of its manifests.

    ``tar_size``: a packed layout, this many clips per shard, each a ``suffix`` file ("tar": webdataset's,
    "parquet"); None: the files layout.
    """

    def __init__(self, outputs: CsvOutputs, label_names: Callable[[str], str] = no_label_names,
                 tar_size: int | None = None, note_columns: tuple[str, ...] = (),
                 notes_of: Callable[[str, int], str] = lambda ytid, start_ms: "",
                 present: Callable[[], set[str]] | None = None, packs: bool = True, reopen: bool = True,
                 suffix: str = "tar") -> None:
        self.outputs = outputs
        self.rows = RowMaker(label_names)
        self._label_names = label_names  # "/m/0bt9lr,/m/05tny_" -> "Dog;Bark"
        # What the clip folder holds; on object storage, its listing (outputs/storage.py).
        self._present = present or outputs.existing_clips
        self._webdataset = tar_size is not None  # a packed layout: no metadata.csv, samples' json instead
        self._layout = {"tar": "webdataset", "parquet": "parquet"}[suffix] if tar_size is not None else "files"
        # The list's own annotations (captions, events...): columns of metadata.csv and keys of a sample's
        # json. split-pos.csv does not hold them, so a metadata.csv rebuilt after a kill asks the list.
        self._note_columns = note_columns
        self._notes_of = notes_of
        # packs=False: each shard is packed whole where its clips are, by a shard of work (outputs/work.py).
        # reopen=False: a short shard of an earlier run is never rewritten (on object storage it is whole or absent).
        self._packer = ShardPacker(outputs, tar_size, reopen, suffix) if tar_size is not None and packs else None
        self._layouts: set[str] = set()  # the layouts the rows read were written in
        self._staged: dict[int, list[Sample]] = {}  # clips recorded for a shard not packed yet
        self._leftovers: list[str] = []  # loose copies of clips whose shard exists
        self._split_pos = split_pos_csv(outputs)
        header = (*METADATA_HEADER, "dataset", *note_columns) if note_columns else METADATA_HEADER
        self._metadata = AppendOnlyCsv(outputs.metadata, header, OLDEST_SPLIT_POS_ROW)
        self._failed_csv = AppendOnlyCsv(outputs.failed, FAILED_HEADER)
        self.done: set[tuple] = set()
        self._starts: set[tuple] | None = None  # (YTID, start) of every done key, for windows with an open end
        self.failed: dict[tuple, FailedRow] = {}
        self._pending_changes = 0

    def load(self) -> None:
        """Read what is done and what failed, changing nothing on disk (a dry run stops here)."""
        self._load(repair=False)

    def open(self) -> None:
        """Load, repair what a kill left behind, and get ready to record."""
        split_pos_stale, failed_stale = self._load(repair=True)
        self._check_layout()
        if split_pos_stale or not self._split_pos.has_current_header():
            self._split_pos.rewrite(self._live_split_pos_rows(self._present()))
        if failed_stale or not self._failed_csv.has_current_header():
            self._failed_csv.rewrite(row.fields() for row in self.failed.values())
        if self._packer is not None:
            self._packer.resume(self._staged, self._leftovers, self._present())
        # metadata.csv follows split-pos.csv row for row; rebuilt from it when they differ.
        elif not self._webdataset and (self._metadata.count_rows() != len(self.done)
                                       or not self._metadata.has_current_header()):
            self._metadata.rewrite(_metadata_row(row) + self._note_cells(self._row_notes(row))
                                   for row in self._split_pos.rows(repair=False))
        self._split_pos.open()
        self._failed_csv.open()
        if not self._webdataset:
            self._metadata.open()

    def _check_layout(self) -> None:
        """One OUTPUT_DIR holds one layout: refuse to add clips in another, or to write among files not ours."""
        wanted = self._layout
        for other in sorted(self._layouts - {wanted}):
            raise LayoutMismatch(
                f"{self.outputs.split_pos}: its clips are in the {other} layout, but OUTPUT_LAYOUT is {wanted!r}; "
                f"set OUTPUT_LAYOUT = {other!r} (--layout {other}) to go on with it, or convert it with "
                f"--layout {wanted} --output-dir NEW_DIR --merge {self.outputs.root}")
        if wanted != "parquet" or not self.outputs.clip_dir.is_dir():
            return
        for name in sorted(self._present()):
            if name.endswith(".parquet") and (problem := schema_problem(self.outputs.clip_dir / name)) is not None:
                raise LayoutMismatch(f"{self.outputs.clip_dir / name}: {problem}; nothing was written: move it out "
                                     "of the folder, or choose another OUTPUT_DIR")

    def _load(self, repair: bool) -> tuple[bool, bool]:
        """Fill ``done`` and ``failed``; say which file holds rows to drop."""
        present = self._present()
        dropped = 0
        for row in self._split_pos.rows(repair):
            key = _live_key(row, present, self.done, self.outputs)
            if key is None:
                dropped += 1
                continue
            self.done.add(key)
            member = member_of(row)
            self._layouts.add(("parquet" if row[0].endswith(".parquet") else "webdataset") if member else "files")
            if not member:
                continue
            shard = row[0].rpartition("/")[2]
            if shard in present:
                if member in present:
                    self._leftovers.append(member)
            else:
                index = self.outputs.shard_index(shard)
                assert index is not None, "_live_key keeps only rows naming a shard"
                self._staged.setdefault(index, []).append((member, self.rows.sample(row, self._row_notes(row))))
        if dropped:
            log.info("%s: %d rows whose clip is missing or repeated are dropped; those clips are fetched again",
                     self.outputs.split_pos.name, dropped)

        rows = 0
        for row in self._failed_csv.rows(repair):
            rows += 1
            failed = FailedRow(*row)
            key = failed.key
            self.failed.pop(key, None)  # the last row of a segment wins
            if key not in self.done:
                self.failed[key] = failed
        return dropped > 0, len(self.failed) != rows

    def _live_split_pos_rows(self, present: set[str]) -> Iterator[list[str]]:
        kept: set[tuple] = set()
        for row in self._split_pos.rows(repair=False):
            key = _live_key(row, present, kept, self.outputs)
            if key is not None:
                kept.add(key)
                if len(row) == OLDEST_SPLIT_POS_ROW:  # written before label_names existed
                    row = [*row, self._label_names(row[4])]
                yield row + [""] * (len(SPLIT_POS_HEADER) - len(row))  # before backend: not known

    def _row_notes(self, row: list[str]) -> str:
        start_ms = parse_ms(row[2]) if len(row) > 2 else None
        return self._notes_of(row[1], start_ms) if start_ms is not None and self._note_columns else ""

    def _note_values(self, notes: str) -> dict[str, Any]:
        return self.rows.note_values(notes)

    def _note_cells(self, notes: str) -> list[str]:
        """The metadata.csv cells of the list's annotations: text as it is, lists and flags as JSON."""
        if not self._note_columns:
            return []
        values = self._note_values(notes)
        return [str(values.get("dataset", "")), *(value if isinstance(value := values.get(column, ""), str)
                                                  else json.dumps(value, ensure_ascii=False)
                                                  for column in self._note_columns)]

    def written_rows(self) -> Iterator[list[str]]:
        """The split-pos rows that count (clip present, not repeated), read-only."""
        return self._live_split_pos_rows(self._present())

    def is_done(self, segment: Segment) -> bool:
        """Recorded; a window with an open end also when recorded with the real end its video gave it."""
        if segment.key in self.done:
            return True
        if not segment.open_end:
            return False
        if self._starts is None:  # built once, on the first open-ended window asked about
            self._starts = {key[:2] for key in self.done}
        return segment.key[:2] in self._starts

    def failed_for_good(self, segment: Segment) -> bool:
        """Failed before for a permanent reason (the video is gone): not worth a retry."""
        row = self.failed.get(segment.key)
        return row is not None and row.failure_reason is not None and row.failure_reason.permanent

    def record_written(self, segment: Segment, relative_file: str, backend: str,
                       measures: ClipMeasures | None = None, member: str = "") -> tuple[str, ...]:
        """A clip now at ``relative_file`` (relative to OUTPUT_DIR), complete, and what it holds; ``member``:
        its name in the shard ``relative_file`` when a shard of work packed it there already."""
        if self._packer is not None:  # the loose clip becomes a member of the open shard
            member = relative_file.rpartition("/")[2]
            relative_file = self._packer.assign()
        row = self.rows.written(segment, relative_file, backend, member, measures)
        self._append_written(row, segment.key, segment.notes)
        return row

    def _append_written(self, row: Sequence[str], key: tuple, notes: str) -> None:
        """A written clip's row into split-pos.csv (its sample to the open shard, or its metadata.csv row), its
        window done."""
        self._split_pos.append(row)
        if self._packer is not None:
            self._packer.add(row[MEMBER], self.rows.sample(row, notes))
        elif not self._webdataset:
            self._metadata.append(_metadata_row(row) + self._note_cells(notes))
        self.done.add(key)
        if self._starts is not None:
            self._starts.add(key[:2])
        if self.failed.pop(key, None) is not None:
            self._changed()

    def join(self, written: Iterable[list[str]], failed: Iterable[list[str]]) -> int:
        """Rows a shard of work recorded elsewhere (outputs/work.py), as they are: each window once; returns
        how many were new."""
        joined = 0
        for row in written:
            key = row_key(row[1], row[2], row[3])
            if key not in self.done:
                self._append_written(row, key, self._row_notes(row))
                joined += 1
        for fields in failed:
            row = FailedRow(*fields)
            if row.key not in self.done and self.failed.get(row.key) != row:
                self.record_failed(row.key, row)
                joined += 1
        return joined

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

    def finish(self) -> None:
        """Everything planned is recorded: pack the last shard, however short (webdataset layout)."""
        if self._packer is not None:
            self._packer.finish()

    def close(self) -> None:
        self.flush_changes()
        self._split_pos.close()
        self._failed_csv.close()
        self._metadata.close()


@dataclass(frozen=True)
class RowMaker:
    """How a written clip becomes its split-pos row and its sample's json: the ledger's way, which a shard of
    work on another machine (outputs/work.py) follows too. ``label_names``: "/m/0bt9lr,/m/05tny_" -> "Dog;Bark"."""

    label_names: Callable[[str], str] = no_label_names

    def written(self, segment: Segment, relative_file: str, backend: str, member: str,
                measures: ClipMeasures | None) -> tuple[str, ...]:
        names = self.label_names(segment.labels_text) or _class_names(segment.notes)
        return (relative_file, segment.ytid, segment.start_text, segment.end_text, segment.labels_text, names,
                backend, member, *(measures.fields() if measures is not None else [""] * len(MEASURE_COLUMNS)))

    def sample(self, row: Sequence[str], notes: str) -> bytes:
        """The ``.json`` of the sample a split-pos row describes, with the list's annotations."""
        return sample_json(*row[1:6], notes={**measure_values(row), **self.note_values(notes)})

    def note_values(self, notes: str) -> dict[str, Any]:
        """The annotations as a sample's json holds them; each strong event named from the ontology."""
        values = json.loads(notes) if notes else {}
        for event in values.get("events", ()):
            event["name"] = self.label_names(event["mid"])
        return values


def failed_row(segment: Segment, reason: FailureReason, detail: str) -> FailedRow:
    """A clip's failure as failed.csv holds it: one line, secrets redacted."""
    return FailedRow(segment.ytid, segment.start_text, segment.end_text, reason.label, _one_line(detail))


def split_pos_csv(outputs: CsvOutputs) -> AppendOnlyCsv:
    return AppendOnlyCsv(outputs.split_pos, SPLIT_POS_HEADER, OLDEST_SPLIT_POS_ROW, _times_problem)


def member_of(row: Sequence[str]) -> str:
    """The clip's name in the shard ``file`` names (webdataset layout); "" in the files layout."""
    return row[MEMBER] if len(row) > MEMBER else ""


def loose_clip(row: Sequence[str], name: str) -> str:
    """Where CSV ``name``'s row has its clip as a file, relative to OUTPUT_DIR: the files layout's
    clip, or a shard's member before it is packed."""
    member = member_of(row)
    return f"{name}/{member}" if member else row[0]


def _class_names(notes: str) -> str:
    """A set's class names where it has no MIDs (VGGSound's, Kinetics'): the label_names column."""
    return str(json.loads(notes).get("label", "")) if notes else ""


def _metadata_row(split_pos_row: Sequence[str]) -> list[str]:
    measures = list(split_pos_row[MEASURES])
    return [split_pos_row[0].rpartition("/")[2], *split_pos_row[1:MEMBER],
            *measures, *[""] * (len(MEASURE_COLUMNS) - len(measures))]


def measure_values(row: Sequence[str]) -> dict[str, float | bool | None]:
    """A row's measures as a sample's json holds them (JSON has no -inf: digital silence's peak is null)."""
    cells = list(row[MEASURES])
    if len(cells) < len(MEASURE_COLUMNS) or not all(cells):
        return {}
    values: dict[str, float | bool | None] = {}
    for name, cell in zip(MEASURE_COLUMNS, cells, strict=True):
        if name == "silent":
            values[name] = cell == "true"
        else:
            number = float(cell)
            values[name] = number if math.isfinite(number) else None
    return values


def _live_key(row: list[str], present: set[str], seen: set[tuple], outputs: CsvOutputs) -> tuple | None:
    """The key of a split-pos row that still counts: its clip present, not repeated.

    Present means the file is there: the clip, or the shard it was packed into, or for a
    shard not packed yet, the clip loose in the clip folder. The row is well-formed:
    split_pos_csv() leaves out (and keeps) any other.
    """
    key = row_key(row[1], row[2], row[3])
    if key in seen:
        return None
    file = row[0].rpartition("/")[2]
    member = member_of(row)
    if member:
        if outputs.shard_index(file) is None or row[0] != f"{outputs.name}/{file}" or not CLIP_NAME.fullmatch(member):
            return None  # not a shard of this CSV, or not a clip's name: not a row this tool wrote
        return key if file in present or member in present else None
    return key if file in present else None


def _one_line(text: str) -> str:
    flat = redact(" ".join(text.split()))  # a backend's or ffmpeg's message may quote a proxy URL
    return flat if len(flat) <= DETAIL_LIMIT else flat[: DETAIL_LIMIT - 1] + "…"
