"""OUTPUT_LAYOUT = "webdataset": a CSV's clips packed into tar shards X/X-000000.tar, X-000001.tar, ...

(OUTPUT_LAYOUT = "parquet" packs the same samples the same way into X/X-000000.parquet, ...: a shard's
container follows its name's suffix, here and in outputs/parquet_files.py.)

Each sample is two members in a row: ``<key>.<ext>``, the clip, and ``<key>.json``, its
segment (``YTID``, ``start_seconds``, ``end_seconds``, ``labels``, ``label_names``), the
key being the clip's file stem in the files layout. That is the WebDataset convention (a
sample's members share the name up to the first dot and follow one another), so the
shards load with the ``webdataset`` package and with ``datasets.load_dataset("webdataset")``.

How a shard comes to be, so that a kill at any moment loses nothing:
1. a worker writes the clip as a loose file in X/, complete before it has its name
   (as in the files layout);
2. the ledger appends the clip's row to split-pos.csv, naming the shard it goes into
   and its member;
3. once CLIPS_PER_TAR rows name the open shard, the shard is written under a temporary
   name, flushed to disk and renamed; only then are its loose files removed.
So a row's clip is in its shard when the shard exists (a shard only appears complete),
and otherwise loose in X/, where the next run finds it and packs it; a loose file whose
shard exists was left between step 3's rename and removal, and is removed. A run that
gets through its whole plan also packs its last, shorter shard; the next run that adds
clips unpacks that shard again (loose clips first, then the shard removed: the same two
states) and fills it up, so that runs cut short by TIMER still make full shards.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO

from audioset_downloader.atomic import atomic_binary
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.parquet_files import parquet_clip, parquet_members, write_parquet

log = logging.getLogger(__name__)

Sample = tuple[str, bytes]  # (the clip's member name, its json)


def sample_json(ytid: str, start_text: str, end_text: str, labels_text: str, names_text: str,
                notes: Mapping[str, object] | None = None) -> bytes:
    """A sample's ``.json``, from the fields of its split-pos row (names joined by ";" there), and the
    list's own annotations (``dataset``, captions, events...) when it has them."""
    return json.dumps({
        "YTID": ytid,
        "start_seconds": float(start_text),
        "end_seconds": float(end_text),
        "labels": [mid.strip() for mid in labels_text.split(",") if mid.strip()],
        "label_names": [name for name in names_text.split(";") if name],
        **(notes or {}),
    }, ensure_ascii=False).encode("utf-8")


def json_member(member: str) -> str:
    """``abc.wav`` -> ``abc.json``: WebDataset's key is the name up to its first dot."""
    return member.partition(".")[0] + ".json"


def write_shard(final: Path, members: Iterable[tuple[tarfile.TarInfo, IO[bytes]]]) -> int:
    """Write a shard of ``members`` at ``final`` (a tar, or a parquet file by its suffix), complete before it has
    its name; returns how many members (a parquet file: how many clips)."""
    with atomic_binary(final) as raw:
        count = write_container(raw, members, final.suffix.lstrip("."))
    _sync_folder(final.parent)  # the rename reaches the disk before the loose files go
    return count


def write_container(raw: IO[bytes], members: Iterable[tuple[tarfile.TarInfo, IO[bytes]]], suffix: str) -> int:
    """``members`` into the stream ``raw`` as a ``suffix`` shard ("tar" or "parquet")."""
    return write_parquet(raw, members) if suffix == "parquet" else write_tar(raw, members)


def write_tar(raw: IO[bytes], members: Iterable[tuple[tarfile.TarInfo, IO[bytes]]]) -> int:
    """A tar of ``members`` into the stream ``raw``; returns how many."""
    count = 0
    # USTAR: the plainest tar, which every reader takes (member names are short).
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, content in members:
            tar.addfile(info, content)
            count += 1
    return count


def member_info(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o644
    return info


def read_members(path: Path) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    """A shard's regular members in order, each readable until the next is asked for (a parquet shard's rows as
    the clip and JSON members a tar would hold)."""
    if path.suffix == ".parquet":
        yield from parquet_members(path)
        return
    with tarfile.open(path, mode="r:") as tar:
        for info in tar:
            content = tar.extractfile(info) if info.isfile() else None
            if content is not None:
                yield info, content


def shard_clip(path: Path, member: str) -> bytes | None:
    """One clip of a shard, by its member name; None when the shard has no such clip."""
    if path.suffix == ".parquet":
        return parquet_clip(path, member)
    with tarfile.open(path, mode="r:") as tar:
        try:
            info = tar.getmember(member)
        except KeyError:
            return None
        content = tar.extractfile(info) if info.isfile() else None
        return content.read() if content is not None else None


# What a damaged shard raises as it is read: a tar's errors; pyarrow's (ArrowInvalid is a ValueError).
SHARD_ERRORS = (tarfile.TarError, OSError, ValueError)


def repack(path: Path, keep: set[str]) -> int:
    """Rewrite shard ``path`` with only the samples whose key is in ``keep`` (removed if none is)."""
    kept = write_shard(path, ((info, content) for info, content in read_members(path)
                              if info.name.partition(".")[0] in keep))
    if not kept:
        path.unlink()
    return kept


def add_to_jsons(path: Path, additions: Mapping[str, Mapping[str, object]]) -> None:
    """Rewrite shard ``path`` with keys added to the ``.json`` of the samples named in ``additions`` (by key)."""

    def members() -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
        for info, content in read_members(path):
            key, _, extension = info.name.partition(".")
            if extension == "json" and key in additions:
                try:
                    meta = json.loads(content.read())
                except ValueError:
                    meta = None
                if isinstance(meta, dict):
                    body = json.dumps({**meta, **additions[key]}, ensure_ascii=False).encode("utf-8")
                    info.size = len(body)
                    yield info, io.BytesIO(body)
                    continue
                content.seek(0)
            yield info, content

    write_shard(path, members())


def _sync_folder(folder: Path) -> None:
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:  # not every system opens folders
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


class ShardPacker:
    """The shards of one CSV's run: which one the next clip goes into, and packing it once full."""

    def __init__(self, outputs: CsvOutputs, clips_per_tar: int, reopen: bool = True, suffix: str = "tar") -> None:
        self.outputs = outputs
        self.clips_per_tar = clips_per_tar
        self.suffix = suffix  # "tar", or "parquet": what the shards are
        self._reopens = reopen  # False: an earlier run's short shard is left as it is (object storage: no rewrite)
        self._open: int | None = None  # the shard being filled
        self._samples: list[Sample] = []  # its samples so far, loose in the clip folder
        self._next = 0
        self._tail: int | None = None  # the last shard an earlier run packed, perhaps short

    def resume(self, staged: Mapping[int, list[Sample]], leftovers: Iterable[str], present: set[str]) -> None:
        """Carry on from what earlier runs left: drop loose copies of packed clips, pack full shards,
        and go on filling the last unfinished one."""
        for name in leftovers:
            (self.outputs.clip_dir / name).unlink(missing_ok=True)
        packed = (self.outputs.shard_index(name) for name in present)
        self._next = max((index for index in packed if index is not None), default=-1) + 1
        self._tail = self._next - 1 if self._next and not staged and self._reopens else None
        waiting = sorted(staged.items())
        for position, (index, samples) in enumerate(waiting):
            self._open, self._samples = index, list(samples)
            self._next = max(self._next, index + 1)
            # Several unfinished shards (or an overfull one) only after CLIPS_PER_TAR was changed.
            if position < len(waiting) - 1 or len(samples) >= self.clips_per_tar:
                self.pack()

    def assign(self) -> str:
        """The shard (relative to OUTPUT_DIR) that the next clip goes into."""
        if self._open is None and self._tail is not None:
            self._reopen(self._tail)
            self._tail = None
        if self._open is None:
            self._open, self._next = self._next, self._next + 1
        return self.outputs.relative_shard(self._open, suffix=self.suffix)

    def _reopen(self, index: int) -> None:
        """Unpack an earlier run's last shard, if short, to go on filling it."""
        path = self.outputs.clip_dir / self.outputs.shard_name(index, suffix=self.suffix)
        names = [info.name for info, _ in read_members(path)] if path.is_file() else []
        clip_names = [name for name in names if not name.endswith(".json")]
        paired = len(names) == 2 * len(clip_names) and set(names) == {*clip_names, *map(json_member, clip_names)}
        if not names or len(clip_names) >= self.clips_per_tar or not paired:
            return  # full, or not as this tool packs them (--verify says what is wrong): left as it is
        clips, metas = [], {}
        for info, content in read_members(path):
            if info.name.endswith(".json"):
                metas[info.name] = content.read()
                continue
            with atomic_binary(self.outputs.clip_dir / info.name) as handle:
                shutil.copyfileobj(content, handle)
                handle.flush()  # before the time is set back: a later write would move it again
                os.utime(handle.fileno(), (info.mtime, info.mtime))
            clips.append(info.name)
        path.unlink()  # every clip is loose now: the rows name a shard to be packed again
        self._open, self._samples = index, [(clip, metas[json_member(clip)]) for clip in clips]
        log.info("unpacked the short shard %s (%d clips) to fill it up", path.name, len(clips))

    def add(self, member: str, meta: bytes) -> None:
        """A clip now loose in the clip folder, its row recorded: packed with its shard once that is full."""
        self._samples.append((member, meta))
        if len(self._samples) >= self.clips_per_tar:
            self.pack()

    def finish(self) -> None:
        """Pack the last, shorter shard: the run got through its plan."""
        if self._samples:
            self.pack()

    def pack(self) -> None:
        assert self._open is not None
        folder = self.outputs.clip_dir
        final = folder / self.outputs.shard_name(self._open, suffix=self.suffix)
        write_shard(final, sample_members(folder, self._samples))
        for member, _ in self._samples:
            (folder / member).unlink(missing_ok=True)
        log.info("packed %d clips into %s", len(self._samples), final.name)
        self._open, self._samples = None, []


def sample_members(folder: Path, samples: Iterable[Sample]) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    """Each sample's two members in a row: its clip, loose in ``folder``, then its json."""
    for member, meta in samples:
        with open(folder / member, "rb") as clip:
            status = os.fstat(clip.fileno())
            yield member_info(member, status.st_size, status.st_mtime), clip
        yield member_info(json_member(member), len(meta), status.st_mtime), io.BytesIO(meta)
