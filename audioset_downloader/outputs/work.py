"""A shard of work whose OUTPUT_DIR is object storage: its clips, its tar and its rows, each uploaded whole.

A Dask task (or, on one machine, a batch of the local engine) fetches its segments into a
scratch folder of its own machine. In the files layout each clip goes up the moment it is
complete; in the webdataset layout the task's clips become one tar, ``X/X-<index>.tar``, put up
when the task ends. Only then does its manifest go up, ``X.work/<index>.json``: the split-pos
and failed rows of its segments, as the ledger writes them. So a task killed at any moment
leaves no partial object, no row for a clip that is not there, and at most a tar no row names,
which the next run removes (outputs/stage.py). The driver joins the manifests into the CSV's
own files and removes them once those are up.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from pathlib import Path

from audioset_downloader.errors import FailureReason
from audioset_downloader.fetch.measure import ClipMeasures
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.ledger import RowMaker, failed_row
from audioset_downloader.outputs.shards import Sample, sample_members, write_tar
from audioset_downloader.outputs.storage import Store

log = logging.getLogger(__name__)


def work_folder(name: str) -> str:
    """Where CSV ``name``'s shards of work leave their manifests, relative to OUTPUT_DIR."""
    return f"{name}.work"


def work_manifest(name: str, index: int) -> str:
    return f"{work_folder(name)}/{index:06d}.json"


def work_index(file_name: str) -> int | None:
    """The index of a work manifest named ``000012.json``; None for any other name."""
    stem, dot, extension = file_name.partition(".")
    return int(stem) if dot and extension == "json" and stem.isdigit() and len(stem) >= 6 else None


@dataclass(frozen=True)
class WorkPlan:
    """What a shard of work needs to know of the run's outputs; it travels with the task."""

    store: Store
    name: str  # the CSV's
    webdataset: bool
    rows: RowMaker
    index: int = -1  # this shard's number: its tar's and its manifest's

    def numbered(self, index: int) -> WorkPlan:
        return replace(self, index=index)


class WorkShard:
    """One shard of work's outputs, in its scratch folder until each goes up whole."""

    def __init__(self, plan: WorkPlan, scratch: Path, uploads: Executor | None = None) -> None:
        self.plan = plan
        self._uploads = uploads  # where the files layout's clips go up from, while the pool cuts the next ones
        self._pending: list[Future] = []
        self.outputs = CsvOutputs(scratch, plan.name)  # where the task's clips are cut
        self.outputs.prepare()
        self._shard = self.outputs.relative_shard(plan.index)
        self._samples: list[Sample] = []
        self._written: list[tuple[str, ...]] = []
        self._failed: list[tuple[str, ...]] = []
        self._lock = threading.Lock()  # the task's threads record their clips here

    def clip_written(self, segment: Segment, relative_file: str, backend: str,
                     measures: ClipMeasures | None) -> tuple[str, str]:
        """A clip now complete in the scratch folder: put up (files layout) or kept for the tar.
        Returns where its row says it is: (file, member)."""
        local = self.outputs.root / relative_file
        if self.plan.webdataset:
            file, member = self._shard, local.name
        else:
            if self._uploads is None:
                self._put_clip(local, relative_file)
            else:
                with self._lock:
                    self._pending.append(self._uploads.submit(self._put_clip, local, relative_file))
            file, member = relative_file, ""
        row = self.plan.rows.written(segment, file, backend, member, measures)
        with self._lock:
            self._written.append(row)
            if member:
                self._samples.append((member, self.plan.rows.sample(row, segment.notes)))
        return file, member

    def _put_clip(self, local: Path, relative_file: str) -> None:
        self.plan.store.put_file(local, relative_file)
        local.unlink()

    def clip_failed(self, segment: Segment, reason: FailureReason, detail: str) -> None:
        with self._lock:
            self._failed.append(failed_row(segment, reason, detail).fields())

    def finish(self) -> None:
        """The task's tar (if it wrote clips) up whole, then its manifest: the order a kill cannot spoil."""
        for upload in self._pending:  # every clip up before the rows that name them
            upload.result()
        if self._samples:  # streamed up as it is packed: no second copy on the scratch disk
            with self.plan.store.writer(self._shard) as raw:
                write_tar(raw, sample_members(self.outputs.clip_dir, self._samples))
            log.info("put %d clips up in %s", len(self._samples), self._shard)
        self.plan.store.put_text(work_manifest(self.plan.name, self.plan.index),
                                 json.dumps({"split_pos": self._written, "failed": self._failed}) + "\n")


def read_manifest(text: str) -> tuple[list[list[str]], list[list[str]]]:
    """A work manifest's split-pos rows and failed rows."""
    data = json.loads(text)
    return [list(map(str, row)) for row in data["split_pos"]], [list(map(str, row)) for row in data["failed"]]
