"""A shard of work whose OUTPUT_DIR is object storage: its clips, its tar and its rows, each uploaded whole.

A Dask task (or, on one machine, a batch of the local engine) fetches its segments into a
scratch folder of its own machine. Each attempt at a shard draws a token no other attempt can
draw, and everything it puts up carries it: ``X/X-<index>-<token>.tar`` and
``X.work/<index>-<token>.json``, so an attempt that outlives its driver (Dask does not stop a
running task) never overwrites a rerun's. While it runs, the attempt keeps a marker
``X.work/<index>-<token>.live`` fresh, so that no other run takes its objects for orphans.

In the files layout each clip goes up the moment it is complete; in the webdataset layout the
attempt's clips become one tar, put up when it ends. Only then does its manifest go up: the
split-pos and failed rows of its segments, as the ledger writes them. A row is handed back to the
driver only once its object is up. So a task killed at any moment leaves no partial object, no row
for a clip that is not there, and at most objects no row names, which a later run removes once
their marker is old (outputs/stage.py).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from pathlib import Path

from audioset_downloader.errors import FailureReason
from audioset_downloader.fetch.measure import ClipMeasures
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.outputs.layout import ATTEMPT, CsvOutputs
from audioset_downloader.outputs.ledger import RowMaker, failed_row
from audioset_downloader.outputs.shards import Sample, sample_members, write_container
from audioset_downloader.outputs.storage import Store
from audioset_downloader.processes import gone_here, this_process

log = logging.getLogger(__name__)


LIVE_EVERY_S = 30.0  # an attempt's marker is put up again this often
LIVE_STALE_S = 600.0  # a marker older than this is a dead attempt's
_WORK_NAME = re.compile(rf"(\d{{6,}})(?:-({ATTEMPT}))?\.(json|live)")


def work_folder(name: str) -> str:
    """Where CSV ``name``'s shards of work leave their manifests, relative to OUTPUT_DIR."""
    return f"{name}.work"


def work_manifest(name: str, index: int, attempt: str) -> str:
    return f"{work_folder(name)}/{index:06d}-{attempt}.json"


def live_marker(name: str, index: int, attempt: str) -> str:
    return f"{work_folder(name)}/{index:06d}-{attempt}.live"


def work_index(file_name: str) -> int | None:
    """The index of a work manifest or marker (``000012-<attempt>.json``, or an older ``000012.json``)."""
    match = _WORK_NAME.fullmatch(file_name)
    return int(match.group(1)) if match else None


def is_manifest(file_name: str) -> bool:
    match = _WORK_NAME.fullmatch(file_name)
    return bool(match) and match.group(3) == "json"


def marker_attempt(file_name: str) -> str:
    """The attempt a live marker speaks for; "" for any other name."""
    match = _WORK_NAME.fullmatch(file_name)
    return (match.group(2) or "") if match and match.group(3) == "live" else ""


def killed_here(marker: str | None) -> bool:
    """A live marker whose attempt ran on this machine in a process that is gone: dead, however fresh."""
    try:
        fields = json.loads(marker or "")
        host, pid = str(fields["host"]), int(fields["pid"])
    except (ValueError, KeyError, TypeError):
        return marker is None  # removed since it was listed: its attempt ended
    return gone_here(host, pid)


def new_attempt() -> str:
    return secrets.token_hex(4)


@dataclass(frozen=True)
class WorkPlan:
    """What a shard of work needs to know of the run's outputs; it travels with the task."""

    store: Store
    name: str  # the CSV's
    suffix: str  # what its clips are packed in: "tar", "parquet"; "": the files layout, a clip each
    rows: RowMaker
    index: int = -1  # this shard's number: its tar's and its manifest's

    def numbered(self, index: int) -> WorkPlan:
        return replace(self, index=index)


class WorkShard:
    """One attempt at a shard of work: its outputs, in its scratch folder until each goes up whole."""

    def __init__(self, plan: WorkPlan, scratch: Path, uploads: Executor) -> None:
        self.plan = plan
        self.attempt = new_attempt()
        self._uploads = uploads  # where the files layout's clips go up from, while the pool cuts the next ones
        self.outputs = CsvOutputs(scratch, plan.name)  # where the task's clips are cut
        self.outputs.prepare()
        self._shard = self.outputs.relative_shard(plan.index, self.attempt, plan.suffix or "tar")
        self._live = live_marker(plan.name, plan.index, self.attempt)
        self._samples: list[Sample] = []
        self._written: list[tuple[str, ...]] = []
        self._failed: list[tuple[str, ...]] = []
        self._pending: list[Future] = []
        self._lock = threading.Lock()  # the task's threads record their clips here
        self.up: Future = Future()  # done once the tar (if any) and the manifest are up
        self.touch()  # before its first object: no other run may take that for an orphan

    def touch(self) -> None:
        """Say on the store that this attempt is alive (again)."""
        host, pid = this_process()
        self.plan.store.put_text(self._live, json.dumps({"host": host, "pid": pid, "at": time.time()}) + "\n")

    def clip_written(self, segment: Segment, relative_file: str, backend: str,
                     measures: ClipMeasures | None) -> tuple[str, str, Future]:
        """A clip now complete in the scratch folder: put up (files layout) or kept for the tar.
        Returns where its row says it is, (file, member), and what is done once it is up there."""
        local = self.outputs.root / relative_file
        if self.plan.suffix:
            file, member, up = self._shard, local.name, self.up
        else:
            up = self._uploads.submit(self._put_clip, local, relative_file)
            with self._lock:
                self._pending.append(up)
            file, member = relative_file, ""
        row = self.plan.rows.written(segment, file, backend, member, measures)
        with self._lock:
            self._written.append(row)
            if member:
                self._samples.append((member, self.plan.rows.sample(row, segment.notes)))
        return file, member, up

    def _put_clip(self, local: Path, relative_file: str) -> None:
        self.plan.store.put_file(local, relative_file)
        local.unlink()

    def clip_failed(self, segment: Segment, reason: FailureReason, detail: str) -> None:
        with self._lock:
            self._failed.append(failed_row(segment, reason, detail).fields())

    def finish(self) -> None:
        """The attempt's clips and tar up whole, then its manifest, then its marker gone: the order a kill cannot
        spoil. ``up`` says how it went."""
        try:
            # Every clip up before the rows that name them (else no manifest at all); each upload waited for, so
            # that none still reads the scratch folder when it goes.
            failures = [error for upload in self._pending if (error := upload.exception()) is not None]
            if failures:
                raise failures[0]
            if self._samples:  # streamed up as it is packed: no second copy on the scratch disk
                with self.plan.store.writer(self._shard) as raw:
                    write_container(raw, sample_members(self.outputs.clip_dir, self._samples), self.plan.suffix)
                log.info("put %d clips up in %s", len(self._samples), self._shard)
            self.plan.store.put_text(work_manifest(self.plan.name, self.plan.index, self.attempt),
                                     json.dumps({"split_pos": self._written, "failed": self._failed}) + "\n")
            self.plan.store.remove([self._live])
        except BaseException as exc:
            self.up.set_exception(exc)
            raise
        self.up.set_result(None)


def read_manifest(text: str) -> tuple[list[list[str]], list[list[str]]]:
    """A work manifest's split-pos rows and failed rows."""
    data = json.loads(text)
    return [list(map(str, row)) for row in data["split_pos"]], [list(map(str, row)) for row in data["failed"]]
