"""--merge DIR...: bring the outputs of several runs (shards, machines) into OUTPUT_DIR.

For each CSV name found in the source folders, every clip listed in a source's
split-pos.csv is put into OUTPUT_DIR's clip folder (hard-linked when the file
system allows, else copied, atomically either way) and recorded through the target's
own Ledger, so the result is what one run would have written: one row per segment,
metadata.csv in step, failed.csv holding only segments no source has written.
A source's rows are untrusted input: a file name outside its clip folder is refused.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .cutter import FORMATS
from .labels import Ontology
from .layout import CsvOutputs, partial_path
from .ledger import FailedRow, Ledger
from .segments import new_segment, parse_ms

log = logging.getLogger(__name__)

_CSV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # as settings allows for CSV names
_CLIP_NAME = re.compile(r"[A-Za-z0-9_-]{11}(?:_\d+)?\.(?:" + "|".join(ext for ext, _, _ in FORMATS.values()) + ")")


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


def merge_csv(name: str, sources: list[Path], target: CsvOutputs, ontology: Ontology | None) -> MergeReport:
    """Merge CSV ``name``'s outputs from ``sources`` into ``target`` (held exclusively by the caller)."""
    report = MergeReport(name)
    target.prepare()
    ledger = Ledger(target, ontology.names if ontology else lambda labels: "")
    ledger.open()
    try:
        taken = {row[0] for row in ledger.written_rows()}
        carried: dict[tuple, FailedRow] = {}
        for source in sources:
            origin = CsvOutputs(source, name)
            reader = Ledger(origin)
            reader.load()
            for row in reader.written_rows():
                file, ytid, start_text, end_text, labels, _, backend = row
                start_ms, end_ms = parse_ms(start_text), parse_ms(end_text)
                clip_name = file.removeprefix(f"{name}/")
                if start_ms is None or end_ms is None or not _CLIP_NAME.fullmatch(clip_name):
                    log.warning("%s: refused a row naming %r", origin.split_pos, file)
                    report.refused += 1
                    continue
                key = (ytid, start_ms, end_ms)
                if key in ledger.done:
                    report.duplicates += 1
                    continue
                stem, extension = clip_name.rsplit(".", 1)
                if target.relative_clip(stem, extension) in taken:  # another window's file: a name of its own
                    stem = f"{ytid}_{start_ms}"
                _place(source / file, target.clip_path(stem, extension))
                relative = target.relative_clip(stem, extension)
                ledger.record_written(new_segment((ytid, start_ms, end_ms, labels, 0, stem)), relative, backend)
                taken.add(relative)
                report.added += 1
            for key, failure in reader.failed.items():
                carried[key] = failure
        for key, failure in carried.items():
            if key not in ledger.done:
                ledger.record_failed(key, failure)
                report.failed += 1
    finally:
        ledger.close()
    return report


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
