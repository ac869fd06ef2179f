"""No window fetched twice: clips already on disk (this OUTPUT_DIR's other lists, REUSE_FROM) are taken instead.

YouTube's limit per identity is the one scarce resource, and the field's sets list the same
windows (every AudioCaps and MusicCaps window is an AudioSet window). Before a window goes to a
backend, the worker asks this index: a clip of the same video, start and end (or, for a list that
gives no end, the same start and an end at most CLIP_SECONDS later), in the same format, is
hard-linked (copied across file systems, extracted from its shard) into this list's outputs,
checked whole by decoding it to its recorded length, and recorded with backend "reused".

The index is one pass over the manifests, keeping only the rows of videos this list names, so its
memory follows the list, not the manifests. It is built as a CSV's run starts; the CSV processes of
one run share WindowClaims instead, so a window two of its lists name is fetched by one of them and
taken from disk by the other as soon as it is there. Manifests read for reuse are untrusted like any input:
a row names a clip only inside its own list's folder, never through a symbolic link, and a shard
member only by a clip's name.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import logging
import os
import re
import shutil
import stat
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from audioset_downloader.atomic import partial_path
from audioset_downloader.fetch.measure import ClipMeasures
from audioset_downloader.fetch.probe import Undecodable, probe
from audioset_downloader.inputs.segments import OneLine, Segment, parse_ms
from audioset_downloader.inputs.settings import Settings, stage_folder
from audioset_downloader.outputs.layout import CLIP_NAME, CsvOutputs
from audioset_downloader.outputs.ledger import MEASURES, loose_clip, member_of
from audioset_downloader.outputs.shards import SHARD_ERRORS, shard_clip
from audioset_downloader.outputs.storage import Store

log = logging.getLogger(__name__)

BACKEND = "reused"
DURATION_TOLERANCE_S = 0.1  # a clip decodes to its recorded length within this, or it is not whole
SPLIT_POS_SUFFIX = ".split-pos.csv"
_CSV_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a list's name, as settings allows it


def clip_settings(settings: Settings) -> dict[str, object]:
    """What makes two runs' clips of one window the same bytes' worth: kept in X.summary.json."""
    return {"audio_format": settings.audio_format, "sample_rate": settings.sample_rate,
            "channels": settings.channels, "video": settings.video}


@dataclass(frozen=True)
class Candidate:
    """A recorded clip of some window: where it is, and the run settings that made it (None: not recorded)."""

    end_ms: int
    outputs: CsvOutputs
    file: str  # relative to its OUTPUT_DIR: the clip, or the shard holding ``member``
    member: str
    loose: str  # where the clip is as a file before its shard is packed
    made_with: dict | None
    measures: ClipMeasures | None  # what the clip holds, as its manifest recorded
    store: Store | None = None  # REUSE_FROM on object storage: the clip (or shard) is got from there when first taken


class ReuseIndex:
    """The clips on disk that this list's windows could take, by (YTID, start)."""

    def __init__(self, settings: Settings, candidates: dict[tuple[str, int], list[Candidate]]) -> None:
        self.settings = settings
        self.candidates = candidates

    @classmethod
    def build(cls, settings: Settings, own: CsvOutputs, ytids: set[str]) -> ReuseIndex:
        """One pass over every manifest under OUTPUT_DIR (but ``own``) and under each REUSE_FROM folder."""
        candidates: dict[tuple[str, int], list[Candidate]] = {}
        for outputs, store in _manifests(settings, own):
            made_with = _made_with(outputs)
            for row in _rows_of(outputs, ytids):
                start_ms, end_ms = parse_ms(row[2]), parse_ms(row[3])
                if start_ms is None or end_ms is None:
                    continue
                candidates.setdefault((row[1], start_ms), []).append(
                    Candidate(end_ms, outputs, row[0], member_of(row), loose_clip(row, outputs.name), made_with,
                              ClipMeasures.from_fields(row[MEASURES]), store))
        return cls(settings, candidates)

    def __len__(self) -> int:
        return len(self.candidates)

    def matches(self, segment: Segment) -> list[Candidate]:
        """The recorded clips that are this window, in this run's format."""
        extension = self.settings.clip_format  # each format's clips end in its name (settings.CLIP_EXTENSIONS)
        wanted = clip_settings(self.settings)
        found = []
        for candidate in self.candidates.get((segment.ytid, segment.start_ms), ()):
            same_window = candidate.end_ms == segment.end_ms or (
                segment.open_end and segment.start_ms < candidate.end_ms <= segment.end_ms)
            name = candidate.member or candidate.file
            if same_window and name.rpartition(".")[2] == extension and self._made_alike(candidate, wanted):
                found.append(candidate)
        return found

    def _made_alike(self, candidate: Candidate, wanted: dict[str, object]) -> bool:
        """Made with this run's clip settings. Outputs of versions that did not record them are taken only
        when the clip's own header can prove it: this run names its rate and channels (``_place`` reads
        them); kept as the source had them, a clip resampled then would pass for one that was not."""
        if candidate.made_with is not None:
            return candidate.made_with == wanted
        return bool(self.settings.sample_rate and self.settings.channels and not self.settings.video)

    def take(self, segment: Segment, target: Path, ffmpeg: str) -> Candidate | None:
        """Put a whole clip of ``segment`` at ``target`` (atomically) from the first candidate that has one."""
        for candidate in self.matches(segment):
            try:
                if self._place(candidate, target, ffmpeg, (candidate.end_ms - segment.start_ms) / 1000):
                    return candidate
            except SHARD_ERRORS as exc:  # a damaged shard is no reason to stop: the clip is fetched
                log.info("%s: cannot reuse %s (%s); fetching it", segment.ytid, candidate.file,
                         getattr(exc, "strerror", None) or exc)
        return None

    def _place(self, candidate: Candidate, target: Path, ffmpeg: str, seconds: float) -> bool:
        temp = partial_path(target)
        try:
            if not _put(candidate, temp):
                return False
            try:
                info = probe(ffmpeg, temp)
            except Undecodable as exc:
                log.info("not reusing %s: %s", candidate.file, exc)
                return False
            if (abs(info.seconds - seconds) > DURATION_TOLERANCE_S
                    or self.settings.sample_rate and info.rate != self.settings.sample_rate
                    or self.settings.channels and info.channels != self.settings.channels):
                log.info("not reusing %s: it decodes to %.2f s at %d Hz, %d channels", candidate.file, info.seconds,
                         info.rate, info.channels)
                return False
            os.replace(temp, target)
            return True
        finally:
            temp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Settled:
    """What came of a claimed window: its clip as the owner recorded it, or a failure for good."""

    candidate: Candidate | None = None
    reason: str = ""  # a permanent failure's label, and its detail
    detail: str = ""


class WindowClaims:
    """Which CSV process of a run fetches a window that several of its lists name, and what came of it.

    One object for the run, hosted beside the pacing book (engine/shared.py). A worker claims a window
    before fetching it; another process's worker that meets the same window waits for the owner to
    settle it, then takes the clip from disk (or records the same failure for good). A window the owner
    left (interrupted, passing trouble), or whose owner process died, is fetched by the waiter itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[tuple, tuple[str, int]] = {}  # window -> (CSV name, pid)
        self._settled: dict[tuple, Settled | None] = {}

    def claim(self, key: tuple, owner: str, pid: int, take_over: bool = False) -> tuple[str, int] | None:
        """None: the caller owns the window now (``take_over``: whoever held it); else the CSV and process
        that do. A window its owner left (settled with None) goes to the next to claim it."""
        with self._lock:
            held = self._owners.get(key)
            if take_over or held is None or held == (owner, pid) or key in self._settled and \
                    self._settled[key] is None:
                self._owners[key] = (owner, pid)
                self._settled.pop(key, None)
                return None
            return held

    def settle(self, key: tuple, owner: str, outcome: Settled | None) -> None:
        with self._lock:
            if self._owners.get(key, ("",))[0] == owner:
                self._settled[key] = outcome

    def outcome(self, key: tuple) -> tuple[bool, Settled | None]:
        """(settled, what came of it)."""
        with self._lock:
            return key in self._settled, self._settled.get(key)


@dataclass(frozen=True)
class SharedWindows:
    """The videos several lists of one run name, and the run's claims on their windows: only those are
    claimed, so lists that share nothing (Google's three) cost no claim and no call per clip."""

    videos: frozenset[str]
    claims: WindowClaims  # the run's one, or a proxy for it

    def claimed(self, segment: Segment) -> bool:
        return segment.ytid in self.videos


def has_manifests(settings: Settings, own: CsvOutputs) -> bool:
    """Is there any manifest but ``own`` to reuse clips from? (The plain one-list run skips the index.)"""
    return bool(settings.reuse_from) or next(iter(_manifests(settings, own)), None) is not None


def _manifests(settings: Settings, own: CsvOutputs) -> Iterable[tuple[CsvOutputs, Store | None]]:
    own = CsvOutputs(Path(os.path.abspath(own.root)), own.name)
    # An OUTPUT_DIR on object storage keeps only manifests in its stage folder: its other lists' clips are on
    # the store, taken from there as a REUSE_FROM URL's are.
    own_folder = (settings.output_url,) if settings.output_url else (settings.output_dir,)
    for source in dict.fromkeys((*own_folder, *settings.reuse_from)):
        if isinstance(source, str):
            setting = "OUTPUT_DIR" if source == settings.output_url else \
                f"REUSE_FROM[{settings.reuse_from.index(source)}]"
            yield from _stored_manifests(settings, source, setting, own.name if setting == "OUTPUT_DIR" else "")
            continue
        folder = Path(os.path.abspath(source))
        try:
            names = sorted(entry.name for entry in os.scandir(folder) if entry.name.endswith(SPLIT_POS_SUFFIX))
        except OSError:
            continue  # REUSE_FROM folders are checked before the run; an OUTPUT_DIR may not exist yet
        for name in names:
            outputs = CsvOutputs(Path(folder), name[: -len(SPLIT_POS_SUFFIX)])
            if outputs != own and not outputs.name.startswith("."):
                yield outputs, None


def reuse_cache(settings: Settings, url: str) -> Path:
    """Where the manifests and the clips taken of an OUTPUT_DIR on object storage are kept on this machine."""
    return stage_folder(settings.cache_folder / "reuse", url, settings.storage_options)


def _stored_manifests(settings: Settings, url: str, setting: str, own: str) -> Iterator[tuple[CsvOutputs, Store]]:
    """An OUTPUT_DIR on object storage (a REUSE_FROM, or this run's own, less its list ``own``): its manifests, got
    into a cache folder of their own, where its clips (or shards) are got too as they are first taken."""
    store = Store(url, settings.storage_options, setting)
    folder = reuse_cache(settings, url)
    for name in sorted(store.names("")):
        stem = name[: -len(SPLIT_POS_SUFFIX)]
        if not name.endswith(SPLIT_POS_SUFFIX) or not _CSV_STEM.fullmatch(stem) or stem == own:
            continue
        outputs = CsvOutputs(folder, stem)
        outputs.prepare()
        for path in (outputs.split_pos, outputs.summary):
            store.get_file(path.name, path)
        yield outputs, store


def _rows_of(outputs: CsvOutputs, ytids: set[str]) -> Iterator[list[str]]:
    """The manifest's rows of these videos. A 2 M-row manifest is read in seconds: a line is parsed as
    CSV only when the text before its second comma names one of them (a YTID holds no comma or quote)."""
    try:
        handle = open(outputs.split_pos, newline="", encoding="utf-8", errors="replace")
    except OSError:
        return
    feed = OneLine()
    reader = csv.reader(feed)
    with handle:
        next(handle, None)  # the header
        for line in handle:
            parts = line.split(",", 2)
            if len(parts) < 3 or parts[1] not in ytids:
                continue
            feed.line = line
            try:
                row = next(reader)
            except (csv.Error, StopIteration):
                continue  # a damaged line: not a clip to take
            if len(row) >= 4 and row[1] in ytids:
                yield row


def _made_with(outputs: CsvOutputs) -> dict | None:
    """The clip settings the list's last run recorded; None for outputs of versions that did not record them."""
    try:
        made_with = json.loads(outputs.summary.read_text(encoding="utf-8")).get("clip_settings")
    except (OSError, ValueError, AttributeError):
        return None
    return made_with if isinstance(made_with, dict) else None


def _got(candidate: Candidate) -> None:
    """An OUTPUT_DIR on object storage: the candidate's clip, or its whole shard, in the cache, as the store has it
    now (a copy whose object changed or went since, by its size and ETag, is got again, or dropped)."""
    assert candidate.store is not None
    relative = candidate.file if candidate.member else candidate.loose
    local = candidate.outputs.listed_clip(relative)
    if local is None:
        return
    seen = local.with_name(f".{local.name}.object")  # the object the copy was got from: "size etag"
    info = candidate.store.info(relative)
    if info is None:
        local.unlink(missing_ok=True)  # gone from the store: the copy proves nothing
        return
    stamp = f"{info.size} {info.etag}"
    with contextlib.suppress(OSError):
        if local.stat().st_size == info.size and seen.read_text() == stamp:
            return
    local.parent.mkdir(parents=True, exist_ok=True)
    if candidate.store.get_file(relative, local):
        seen.write_text(stamp)


def _regular_file(path: Path | None) -> Path | None:
    """``path`` if it is a regular file and no symbolic link (one could lead out of its folder)."""
    if path is None:
        return None
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    return path if stat.S_ISREG(mode) else None


def _put(candidate: Candidate, temp: Path) -> bool:
    """Write the candidate's clip at ``temp``: a hard link, a copy, or a shard member's bytes."""
    outputs = candidate.outputs
    if candidate.store is not None:
        _got(candidate)
    loose = _regular_file(outputs.listed_clip(candidate.loose))
    if candidate.member and loose is None:  # packed: read it out of its shard
        shard = _regular_file(outputs.listed_clip(candidate.file))
        if shard is None or outputs.shard_index(shard.name) is None or not CLIP_NAME.fullmatch(candidate.member):
            return False
        content = shard_clip(shard, candidate.member)
        if content is None:
            return False
        temp.write_bytes(content)
        return True
    if loose is None or (candidate.member and not CLIP_NAME.fullmatch(loose.name)):
        return False
    temp.unlink()
    try:
        os.link(loose, temp)  # the same bytes, no second copy on disk
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(loose, temp)  # another file system (or one without hard links)
    return True
