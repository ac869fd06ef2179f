"""A CSV's outputs on object storage, as the process that drives the run sees them.

The run keeps the CSV's manifests in a local stage folder (Settings.output_dir) and works on
them exactly as on a local OUTPUT_DIR. Before the run they come down from the store, which is
the truth: the CSV's own files, then every work manifest a shard of work left (outputs/work.py),
joined in row by row without repeating a window, and only where the object a row names is there.
Objects no row names (a task killed before its manifest went up) are removed, unless an attempt
that may still put its manifest up is alive: its marker is fresh. After the run the work manifests
of the run are joined the same way, the CSV's files go up whole, and only then are the joined work
manifests removed: a kill anywhere leaves each row in a file of the store, naming an object there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from audioset_downloader.atomic import PARTIAL_SUFFIX
from audioset_downloader.inputs.segments import row_key
from audioset_downloader.outputs.appendonly import AppendOnlyCsv
from audioset_downloader.outputs.layout import CLIP_NAME, CsvOutputs
from audioset_downloader.outputs.ledger import FAILED_HEADER, Ledger, split_pos_csv
from audioset_downloader.outputs.storage import Store
from audioset_downloader.outputs.work import (
    LIVE_STALE_S,
    is_manifest,
    killed_here,
    marker_attempt,
    read_manifest,
    work_folder,
    work_index,
)
from audioset_downloader.pacing.learned import LEARNED_FILE

log = logging.getLogger(__name__)


class StagedCsv:
    """One CSV's outputs: the store's objects, and their local copies in the stage folder."""

    def __init__(self, store: Store, outputs: CsvOutputs) -> None:
        self.store = store
        self.outputs = outputs
        self._present: set[str] = set()  # the objects in the clip folder, as last listed
        self._joined: set[str] = set()  # work manifests (by name) whose rows the ledger holds

    def relative(self, path: Path) -> str:
        """A stage file's name on the store: the same path under OUTPUT_DIR."""
        return path.relative_to(self.outputs.root).as_posix()

    @property
    def manifests(self) -> tuple[Path, ...]:
        """The CSV's files a run reads and writes, in the order they go up (the card last)."""
        outputs = self.outputs
        return (outputs.split_pos, outputs.failed, outputs.metadata, outputs.summary, outputs.status, outputs.log,
                outputs.card)

    def pull(self) -> None:
        """Replace the stage's copies with the store's files, and list the clip folder."""
        self.outputs.prepare()
        for path in self.manifests:
            if not self.store.get_file(self.relative(path), path):
                path.unlink(missing_ok=True)  # gone from the store: not the stage's to bring back
        self._present = self.store.names(self.outputs.name)

    def present(self) -> set[str]:
        """The clip folder's objects (clips, shards, metadata.csv) as last listed."""
        return self._present

    def live_attempts(self) -> set[str]:
        """The attempts at shards of work that are running now, by their token (fresh markers): their objects
        are nobody's orphans. Listed before the manifests are read, so that an attempt that ends in between has
        its manifest read."""
        now, folder = time.time(), work_folder(self.outputs.name)
        return {marker_attempt(name) for name, info in self.store.listing(folder).items()
                if marker_attempt(name) and now - info.modified < LIVE_STALE_S
                and not killed_here(self.store.get_text(f"{folder}/{name}"))}

    def next_index(self) -> int:
        """The first shard number no tar, work manifest or running attempt of the store uses."""
        used = [self.outputs.shard_index(name) for name in self._present]
        used += [work_index(name) for name in self.store.names(work_folder(self.outputs.name))]
        return max((index for index in used if index is not None), default=-1) + 1

    def join(self, ledger: Ledger) -> int:
        """Record the rows of every work manifest on the store that the ledger does not hold yet, each only
        where the object it names is there (listed after the manifests: an attempt puts its objects up first)."""
        left = list(self.work_left())
        if not left:
            return 0
        self._present = self.store.names(self.outputs.name)
        joined = 0
        for name, written, failed in left:
            there = [row for row in written if row[0].rpartition("/")[2] in self._present]
            if len(there) < len(written):
                log.warning("%s: %d rows name an object that is not on the store; their windows are fetched again",
                            name, len(written) - len(there))
            joined += ledger.join(there, failed)
            self._joined.add(name)
        return joined

    def work_left(self) -> Iterator[tuple[str, list[list[str]], list[list[str]]]]:
        """Each work manifest on the store not joined yet, in shard order: its name, split-pos and failed rows."""
        folder = work_folder(self.outputs.name)
        for name in sorted(self.store.names(folder), key=lambda name: (work_index(name) or 0, name)):
            if not is_manifest(name) or name in self._joined:
                continue
            text = self.store.get_text(f"{folder}/{name}")
            if text is not None:
                yield name, *read_manifest(text)

    def remove_orphans(self, ledger: Ledger, live: set[str], refresh: bool = False) -> int:
        """Remove the objects no row names (a task put them up and was killed before its manifest), unless an
        attempt that is ``live`` may still name them: a tar by its own attempt's marker, a clip (named by its
        window alone) while any attempt of the CSV is alive. Dead attempts' markers go too. ``refresh``: list the
        store's objects again first (at a run's end: its own attempts put up more since)."""
        if refresh:
            self._present = self.store.names(self.outputs.name)
        named = {row[0].rpartition("/")[2] for row in ledger.written_rows()}
        outputs = self.outputs
        orphans = []
        for name in sorted(self._present - named):
            if outputs.shard_index(name) is not None:
                if outputs.shard_attempt(name) not in live:
                    orphans.append(name)
            elif CLIP_NAME.fullmatch(name) and not live:
                orphans.append(name)
        folder = work_folder(outputs.name)
        dead = [f"{folder}/{name}" for name in self.store.names(folder)
                if marker_attempt(name) and marker_attempt(name) not in live]
        self.store.remove([f"{outputs.name}/{name}" for name in orphans] + dead)
        if orphans:
            log.info("removed %d objects no row names (%s...): their task was killed before its rows went up; "
                     "their windows are fetched again", len(orphans), orphans[0])
        self._present -= set(orphans)
        return len(orphans)

    def put_up(self, path: Path) -> None:
        """One stage file up now (the heartbeat, for --status from any machine)."""
        self.store.put_file(path, self.relative(path))

    def publish(self) -> None:
        """Put the CSV's files up whole, then remove the work manifests they now hold."""
        for path in self.manifests:
            if path.is_file():
                self.store.put_file(path, self.relative(path))
        self.store.remove([f"{work_folder(self.outputs.name)}/{name}" for name in sorted(self._joined)])
        self._joined.clear()

    def remove_outputs(self) -> None:
        """REMOVE_EXIST_DOWNLOADS: the CSV's objects on the store, and its stage copies."""
        name = self.outputs.name
        held = [f"{name}/{entry}" for entry in self.store.names(name)]
        held += [f"{work_folder(name)}/{entry}" for entry in self.store.names(work_folder(name))]
        held += [self.relative(path) for path in self.manifests if self.store.exists(self.relative(path))]
        self.store.remove(held)
        self.outputs.remove_outputs()


class StoreCopy:
    """OUTPUT_DIR's objects copied into a folder of their own, for the commands that read or mend finished
    outputs (--status, --verify, --report, --merge); what they change there goes back up with ``push``.

    Never the run's stage folder: a run may be appending to the manifests there.
    """

    def __init__(self, store: Store, folder: Path) -> None:
        self.store = store
        self.folder = folder
        self._pulled: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns) as it came down
        self.listed: dict[str, set[str]] = {}  # CSV name -> the objects of its clip folder

    def pull(self, names: list[str], whole: bool) -> None:
        """Each CSV's files, its work manifests joined in; with ``whole``, every object of its clip folder too."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.store.get_file(LEARNED_FILE, self.folder / LEARNED_FILE)
        for name in names:
            outputs = CsvOutputs(self.folder, name)
            staged = StagedCsv(self.store, outputs)
            staged.pull()
            self.listed[name] = staged.present()
            if whole:
                for entry in sorted(staged.present()):
                    self.store.get_file(f"{name}/{entry}", outputs.clip_dir / entry)
            self._append_work_rows(staged)
        self._pulled = self._files()

    def _append_work_rows(self, staged: StagedCsv) -> None:
        """The rows of the work manifests not joined yet, appended as they are (the CSV's files are otherwise
        left as the store has them, for --verify to see)."""
        outputs = staged.outputs
        left = list(staged.work_left())
        if not left:
            return
        split_pos, failed = split_pos_csv(outputs), AppendOnlyCsv(outputs.failed, FAILED_HEADER)
        held = {row_key(*row[1:4]) for row in split_pos.rows(repair=False)}
        split_pos.open()
        failed.open()
        try:
            for _, written, failures in left:
                for row in written:
                    if row_key(*row[1:4]) not in held:
                        held.add(row_key(*row[1:4]))
                        split_pos.append(row)
                for row in failures:
                    failed.append(row)
        finally:
            split_pos.close()
            failed.close()

    def push(self) -> int:
        """Put up every file the command added or changed, remove every object whose file it removed."""
        now = self._files()
        changed = [relative for relative, seen in now.items() if self._pulled.get(relative) != seen]
        # New clips and tars first, then the manifests that name them, then the tars rewritten with fewer members
        # (--repair drops broken ones), then removals: a kill in between leaves objects or members no row names
        # (removed by a later run), never a row naming what is not up.
        def turn(relative: str) -> int:
            if not _is_clip_object(relative):
                return 1
            return 2 if relative in self._pulled else 0

        for relative in sorted(changed, key=turn):
            self.store.put_file(self.folder / relative, relative)
        self.store.remove(sorted(set(self._pulled) - set(now)))
        self._pulled = now
        return len(changed)

    def _files(self) -> dict[str, tuple[int, int]]:
        found = {}
        for path in self.folder.rglob("*"):
            if path.is_file() and not path.name.startswith(".") and not path.name.endswith(PARTIAL_SUFFIX):
                status = path.stat()
                found[path.relative_to(self.folder).as_posix()] = (status.st_size, status.st_mtime_ns)
        return found


def _is_clip_object(relative: str) -> bool:
    """A clip or a shard in a CSV's clip folder (``X/...``), as opposed to a manifest."""
    folder, _, name = relative.rpartition("/")
    return bool(folder) and "/" not in folder and (CLIP_NAME.fullmatch(name) is not None
                                                   or name.endswith((".tar", ".parquet")))
