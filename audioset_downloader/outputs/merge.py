"""--merge DIR...: bring the outputs of several runs (shards, machines) into OUTPUT_DIR.

For each CSV name found in the source folders, every clip listed in a source's
split-pos.csv is put into OUTPUT_DIR's clip folder (hard-linked when the file
system allows, else copied, atomically either way; a clip in a source's tar shard
is copied out of it) and recorded through the target's own Ledger, so the result is
what one run would have written in OUTPUT_LAYOUT: one row per segment, metadata.csv
in step or the clips packed into shards, failed.csv holding only segments no source
has written. Sources may be in either layout, so merging also converts one layout into
the other. A source's rows are untrusted input: a file name outside its clip folder is refused.
The list's own annotations (AudioCaps' captions...) are not in split-pos.csv: as a run
does, the merge asks the list for them (``notes``), when CSV_FILE_NAMES names it.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from audioset_downloader.atomic import atomic_binary, partial_path
from audioset_downloader.fetch.measure import ClipMeasures
from audioset_downloader.inputs.labels import Ontology
from audioset_downloader.inputs.segments import new_segment, parse_ms
from audioset_downloader.inputs.settings import CLIP_EXTENSIONS
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.ledger import MEASURES, FailedRow, Ledger, loose_clip
from audioset_downloader.outputs.shards import SHARD_ERRORS, shard_clip

log = logging.getLogger(__name__)

_CSV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # as settings allows for CSV names
_CLIP_NAME = re.compile(r"[A-Za-z0-9_-]{11}(?:_\d+)?\.(?:" + "|".join(CLIP_EXTENSIONS) + ")")


@dataclass
class MergeReport:
    name: str
    added: int = 0
    duplicates: int = 0
    refused: int = 0
    failed: int = 0

    def line(self) -> str:
        return (f"{self.name}: {self.added} clips added, {self.duplicates} already there, "
                f"{self.failed} failures carried over" + (f", {self.refused} rows refused" if self.refused else ""))


def csv_names(folder: Path) -> list[str]:
    """The CSVs a folder holds outputs of; names that could leave OUTPUT_DIR are ignored."""
    names = (path.name.removesuffix(".split-pos.csv") for path in folder.glob("*.split-pos.csv"))
    return sorted(name for name in names if _CSV_NAME.fullmatch(name))


@dataclass(frozen=True)
class ListNotes:
    """The list's annotation columns, and its notes by (YTID, start ms), as a run's Ledger gets them."""

    columns: tuple[str, ...] = ()
    of: Callable[[str, int], str] = lambda ytid, start_ms: ""


def merge_csv(name: str, sources: list[Path], target: CsvOutputs, ontology: Ontology | None,
              tar_size: int | None = None, notes: ListNotes = ListNotes(), reopen: bool = True,
              suffix: str = "tar") -> MergeReport:
    """Merge CSV ``name``'s outputs from ``sources`` into ``target`` (held exclusively by the caller),
    in the files layout, or with ``tar_size`` clips per ``suffix`` shard in a packed layout (``reopen``: the
    target's last short shard filled up, rewritten; else new shards only)."""
    report = MergeReport(name)
    target.prepare()
    ledger = Ledger(target, ontology.names if ontology else lambda labels: "", tar_size, notes.columns, notes.of,
                    reopen=reopen, suffix=suffix)
    ledger.open()
    try:
        taken = {loose_clip(row, name) for row in ledger.written_rows()}
        carried: dict[tuple, FailedRow] = {}
        for source in sources:
            origin = CsvOutputs(source, name)
            reader = Ledger(origin)
            reader.load()
            with _ClipReader(origin) as clips:
                for row in reader.written_rows():
                    file, ytid, start_text, end_text, labels, _, backend, member = row[:MEASURES.start]
                    start_ms, end_ms = parse_ms(start_text), parse_ms(end_text)
                    clip_name = member or file.removeprefix(f"{name}/")
                    shard = file.removeprefix(f"{name}/") if member else None
                    if (start_ms is None or end_ms is None or not _CLIP_NAME.fullmatch(clip_name)
                            or shard is not None and origin.shard_index(shard) is None):
                        log.warning("%s: refused a row naming %r", origin.split_pos, f"{file} {member}".strip())
                        report.refused += 1
                        continue
                    key = (ytid, start_ms, end_ms)
                    if key in ledger.done:
                        report.duplicates += 1
                        continue
                    stem, extension = clip_name.rsplit(".", 1)
                    if target.relative_clip(stem, extension) in taken:  # another window's file: a name of its own
                        stem = f"{ytid}_{start_ms}"
                    try:
                        clips.place(shard, clip_name, target.clip_path(stem, extension))
                    except (KeyError, *SHARD_ERRORS) as exc:
                        log.warning("%s: %s: the clip cannot be read (%s); not merged", origin.split_pos, ytid, exc)
                        report.refused += 1
                        continue
                    relative = target.relative_clip(stem, extension)
                    segment = new_segment((ytid, start_ms, end_ms, labels, 0, stem, False,
                                           notes.of(ytid, start_ms) if notes.columns else ""))
                    ledger.record_written(segment, relative, backend, ClipMeasures.from_fields(row[MEASURES]))
                    taken.add(relative)
                    report.added += 1
            for key, failure in reader.failed.items():
                carried[key] = failure
        for key, failure in carried.items():
            if key not in ledger.done:
                ledger.record_failed(key, failure)
                report.failed += 1
        ledger.finish()
    finally:
        ledger.close()
    return report


class _ClipReader:
    """A source's clips: loose files, or members of its shards (tars or parquet files)."""

    def __init__(self, origin: CsvOutputs) -> None:
        self.origin = origin

    def __enter__(self) -> _ClipReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def place(self, shard: str | None, clip_name: str, final: Path) -> None:
        loose = self.origin.clip_dir / clip_name
        if shard is None or not (self.origin.clip_dir / shard).exists():  # a clip, or one not packed yet
            _place(loose, final)
            return
        content = shard_clip(self.origin.clip_dir / shard, clip_name)
        if content is None:
            raise KeyError(f"{self.origin.clip_dir / shard} has no clip {clip_name}")
        _copy_in(io.BytesIO(content), final)


def _place(source: Path, final: Path) -> None:
    """Put ``source`` at ``final`` atomically: a hard link when possible, else a copy."""
    temp = partial_path(final)
    try:
        temp.unlink()
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
        os.replace(temp, final)
    finally:
        temp.unlink(missing_ok=True)


def _copy_in(content: IO[bytes], final: Path) -> None:
    """Write ``content`` at ``final`` atomically (not synced clip by clip, as _place does not)."""
    with atomic_binary(final, sync=False) as handle:
        shutil.copyfileobj(content, handle)
