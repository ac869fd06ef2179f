"""The "parquet" layout: the Hub's own for audio (agkphysics/AudioSet, jp1924/AudioCaps...).

A file holds thousands of clips: a YTID column (``video_id``, ``youtube_id``, ``YTID``...), an
optional start column (``start_time``, ``start_seconds``...) and an ``audio`` column of
``{bytes, path}``. Indexing a file reads its footer and its YTID and start columns, never the
audio. A clip is read as its row group's audio column chunk: one ranged read, as small as one
clip in a file written with small row groups (this tool's parquet outputs), a row group's worth
in a file written with large ones. The row group last read is kept, so that the next rows of it
cost nothing; each file's footer is read once per process.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from typing import Any

from audioset_downloader.atomic import partial_path
from audioset_downloader.errors import ConfigError
from audioset_downloader.fetch.mirrors.access import MIRRORS_EXTRA, FileEntry, MirrorAccess
from audioset_downloader.fetch.mirrors.base import Copy, start_ms_of, ytid_of

YTID_COLUMNS = ("YTID", "ytid", "video_id", "youtube_id", "yt_id", "videoid")
START_COLUMNS = ("start_seconds", "start_time", "start", "start_sec")
AUDIO_COLUMNS = ("audio", "flac", "wav", "mp3")
KEPT_BYTES = 512 << 20  # row groups' audio kept in memory, across the mirror's threads
STRIPES = 64  # locks a row group's read takes, so that two threads wanting one row group read it once


def _pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError(f"a parquet mirror needs pyarrow, which is not installed; install it with: {MIRRORS_EXTRA}"
                          ) from None
    return pq


class ParquetLayout:
    name = "parquet"

    def __init__(self) -> None:
        self._footers: dict[str, Any] = {}
        self._groups: OrderedDict[tuple[str, int], tuple[Any, int]] = OrderedDict()  # -> (audio column, its bytes)
        self._kept = 0
        self._lock = threading.Lock()
        self._reading = [threading.Lock() for _ in range(STRIPES)]

    def __getstate__(self) -> dict[str, Any]:
        return {}  # footers and row groups are read again in the process it goes to

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def reads(self, entry: FileEntry) -> bool:
        return entry.path.endswith(".parquet")

    def copies_in(self, access: MirrorAccess, entry: FileEntry, number: int) -> list[Copy]:
        pq = _pyarrow()
        try:
            parquet = pq.ParquetFile(access.ranged(entry), metadata=self._footer(access, entry))
        except Exception:  # noqa: BLE001 - a file that is not parquet holds nothing
            return []
        names = parquet.schema_arrow.names
        ytid_column = next((name for name in YTID_COLUMNS if name in names), None)
        start_column = next((name for name in START_COLUMNS if name in names), None)
        if ytid_column is None or _audio_column(names) is None:
            return []
        copies = []
        columns = [ytid_column] + ([start_column] if start_column else [])
        leaves = {parquet.metadata.schema.column(i).path: i for i in range(parquet.metadata.num_columns)}
        positions = [leaves.get(column, -1) for column in columns]
        for group in range(parquet.num_row_groups):
            # A row group of one row names its window in the footer's statistics: nothing more to read.
            known = _single_row(parquet.metadata.row_group(group), positions)
            if known is not None:
                ytids, starts = [known[0]], [known[1] if start_column else None]
            else:
                table = parquet.read_row_group(group, columns=columns)
                ytids = table.column(ytid_column).to_pylist()
                starts = table.column(start_column).to_pylist() if start_column else [None] * len(ytids)
            for row, (value, start) in enumerate(zip(ytids, starts, strict=True)):
                ytid = ytid_of(value)
                if ytid is not None:
                    copies.append(Copy(ytid, start_ms_of(start), number, row_group=group, row=row))
        return copies

    def _footer(self, access: MirrorAccess, entry: FileEntry) -> Any:
        """The file's footer: read once, then kept beside the mirror's index, so that no run reads it again."""
        with self._lock:
            footer = self._footers.get(entry.path)
        if footer is not None:
            return footer
        pq = _pyarrow()
        kept = access.cache / f"footer-{hashlib.sha256(entry.path.encode()).hexdigest()[:24]}.parquet" \
            if access.cache is not None else None
        try:
            footer = pq.read_metadata(kept) if kept is not None else None
        except (OSError, ValueError):
            footer = None
        if footer is None:
            footer = pq.ParquetFile(access.ranged(entry)).metadata
            if kept is not None:
                kept.parent.mkdir(parents=True, exist_ok=True)
                temp = partial_path(kept)
                try:
                    footer.write_metadata_file(str(temp))
                    os.replace(temp, kept)
                finally:
                    temp.unlink(missing_ok=True)
        with self._lock:
            self._footers[entry.path] = footer
        return footer

    def read(self, access: MirrorAccess, entry: FileEntry, copy: Copy) -> bytes:
        key = (entry.path, copy.row_group)
        with self._reading[hash(key) % STRIPES]:
            with self._lock:
                kept = self._groups.get(key)
                if kept is not None:
                    self._groups.move_to_end(key)
            if kept is None:
                kept = self._read_group(access, entry, copy.row_group)
            cell = kept[0][copy.row].as_py()
        if isinstance(cell, dict):
            cell = cell.get("bytes")
        if not isinstance(cell, (bytes, bytearray)):
            raise ValueError(f"row {copy.row} of row group {copy.row_group} holds no audio bytes")
        return bytes(cell)

    def _read_group(self, access: MirrorAccess, entry: FileEntry, group: int) -> tuple[Any, int]:
        parquet = _pyarrow().ParquetFile(access.ranged(entry), metadata=self._footer(access, entry))
        name = _audio_column(parquet.schema_arrow.names)
        column = parquet.read_row_group(group, columns=[name]).column(name).combine_chunks()
        kept = (column, column.nbytes)
        with self._lock:
            self._groups[(entry.path, group)] = kept
            self._kept += kept[1]
            while self._kept > KEPT_BYTES and len(self._groups) > 1:
                _, (_, size) = self._groups.popitem(last=False)
                self._kept -= size
        return kept


def _single_row(group: Any, positions: list[int]) -> tuple[Any, Any] | None:
    """(YTID, start) of a one-row row group from its columns' statistics (min == max), or None."""
    if group.num_rows != 1:
        return None
    values = []
    for position in positions:
        if not 0 <= position < group.num_columns:
            return None
        statistics = group.column(position).statistics
        if statistics is None or not statistics.has_min_max or statistics.min != statistics.max:
            return None
        values.append(statistics.min)
    return values[0], values[1] if len(values) > 1 else None


def _audio_column(names: list[str]) -> str | None:
    return next((name for name in AUDIO_COLUMNS if name in names), None)
