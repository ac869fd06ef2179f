"""Mirrors as a source of a window: which copy holds it, and its clip written from that copy.

A copy is untrusted input, like a CSV: its bytes are decoded whole and converted by ffmpeg as any
clip is (fetch/cutter.py ``convert_copy``), checked against its window's length, measured. A copy
that cannot be read, does not decode or is not the window's length is logged, and the window goes
on to the next copy, then to the backends. A clip named by YTID alone is AudioSet's window of that
video (every YTID occurs once across AudioSet's lists): it serves an AudioSet list's window, or
another list's window that is AudioSet's (its start and end are those of an AudioSet list the run
knows), and no other.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audioset_downloader.atomic import partial_path, write_atomically
from audioset_downloader.errors import ClipFailure, FailureReason, Interrupted
from audioset_downloader.fetch.cutter import CutResult, convert_copy
from audioset_downloader.fetch.mirrors.access import MirrorAccess
from audioset_downloader.fetch.mirrors.base import Copy, Layout
from audioset_downloader.fetch.mirrors.index import MirrorIndex
from audioset_downloader.filesystems import without_secrets
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings

log = logging.getLogger(__name__)

BACKEND = "mirror"  # split-pos.csv's backend for a clip taken from a mirror


@dataclass(frozen=True)
class Taken:
    cut: CutResult
    mirror: str  # the mirror's label: URL@revision
    number: int  # its place in MIRRORS
    bytes_read: int


class Mirror:
    """One entry of MIRRORS, opened: its files, its layout, its index."""

    def __init__(self, number: int, access: MirrorAccess, layout: Layout, index: MirrorIndex) -> None:
        self.number = number
        self.access = access
        self.layout = layout
        self.index = index

    @property
    def setting(self) -> str:
        return f"MIRRORS[{self.number}]"

    @property
    def revision(self) -> str:
        """What names the copy read: a Hub commit, else the digest of the listing its index was built from."""
        return self.access.commit or self.index.path.name.split(".", 1)[0]

    @property
    def label(self) -> str:
        return f"{self.access.spec.url}@{self.revision[:12]}"

    def read(self, copy: Copy) -> bytes:
        return self.layout.read(self.access, self.index.files[copy.file], copy)

    def local_file(self, copy: Copy) -> Path | None:
        """The copy as a file of its own on this machine (a folder's whole file): read by ffmpeg in place."""
        if self.access.fs is not None or copy.length >= 0 or copy.row >= 0:
            return None
        return Path(self.access.root) / self.index.files[copy.file].path

    def __getstate__(self) -> dict[str, Any]:
        # A Dask worker opens its own client; credentials stay here, the Hub's commit travels (no question asked).
        return {"number": self.number, "spec": self.access.spec, "commit": self.access.commit,
                "options": without_secrets(self.access.storage_options), "layout": self.layout, "index": self.index}

    def __setstate__(self, state: dict[str, Any]) -> None:
        access = MirrorAccess(state["spec"], f"MIRRORS[{state['number']}]", state["options"], state["commit"])
        access.cache = state["index"].path.parent  # on a machine without it, footers are read again
        self.__init__(state["number"], access, state["layout"], state["index"])  # type: ignore[misc]


@dataclass
class Mirrors:
    """The run's mirrors and the copies they hold of one list's videos."""

    mirrors: list[Mirror]
    copies: dict[str, list[tuple[int, Copy]]]  # YTID -> (mirror number, copy)
    # For a list that is not AudioSet's: AudioSet's window (start, end) of each of its videos that has one;
    # None: the list is AudioSet's own, whose every window is the one a YTID names.
    audioset: dict[str, tuple[int, int]] | None = None
    dropped: set[int] = field(default_factory=set)  # mirrors the audit found are not the windows

    @classmethod
    def for_list(cls, mirrors: list[Mirror], ytids: set[str],
                 audioset_windows: Callable[[set[str]], dict[str, tuple[int, int]]] | None) -> Mirrors:
        """The copies ``mirrors`` hold of these videos; ``audioset_windows``: for a list that is not AudioSet's, what
        gives AudioSet's window of each video held (None: the list is AudioSet's own)."""
        copies: dict[str, list[tuple[int, Copy]]] = {}
        for mirror in mirrors:
            for ytid, found in mirror.index.copies(ytids).items():
                copies.setdefault(ytid, []).extend((mirror.number, copy) for copy in found)
        return cls(mirrors, copies, None if audioset_windows is None else audioset_windows(set(copies)))

    def held(self, segment: Segment) -> list[tuple[Mirror, Copy]]:
        """The copies of this window, in MIRRORS' order."""
        found = []
        for number, copy in self.copies.get(segment.ytid, ()):
            if number in self.dropped:
                continue
            if copy.start_ms is not None:
                if copy.start_ms != segment.start_ms:
                    continue
            elif self.audioset is not None:
                window = self.audioset.get(segment.ytid)
                if window is None or window[0] != segment.start_ms or not (
                        segment.end_ms == window[1] or segment.open_end and window[1] <= segment.end_ms):
                    continue
            found.append((self.mirrors[number], copy))
        return found

    def holds(self, segment: Segment) -> bool:
        return bool(self.held(segment))

    def only(self, segments: Iterable[Segment]) -> Mirrors:
        """These mirrors with the copies of these segments only: what a Dask task needs to carry."""
        ytids = {segment.ytid for segment in segments}
        return Mirrors(self.mirrors, {ytid: self.copies[ytid] for ytid in ytids if ytid in self.copies},
                       self.audioset if self.audioset is None else
                       {ytid: self.audioset[ytid] for ytid in ytids if ytid in self.audioset}, set(self.dropped))

    def take(self, segment: Segment, final: Path, settings: Settings, stop: threading.Event) -> Taken | None:
        """Write ``segment``'s clip at ``final`` from the first copy that passes, or None (none does)."""
        for mirror, copy in self.held(segment):
            if stop.is_set():
                raise Interrupted()
            started = mirror.access.bytes_read
            try:
                cut = self._convert(mirror, copy, segment, final, settings, stop)
            except ClipFailure as failure:
                if failure.reason is FailureReason.SILENT:
                    raise  # the copy is the window, and silent: SILENT_CLIPS = "drop" leaves it out
                log.warning("%s: the copy in %s (%s) is not the window: %s; trying the next source", segment.ytid,
                            mirror.setting, mirror.label, failure.detail)
                continue
            except (OSError, ValueError, RuntimeError) as exc:  # a read that failed, a damaged file
                log.warning("%s: could not read the copy in %s (%s): %s; trying the next source", segment.ytid,
                            mirror.setting, mirror.label, str(exc).splitlines()[0][:200] if str(exc) else exc)
                continue
            return Taken(cut, mirror.label, mirror.number, mirror.access.bytes_read - started)
        return None

    def _convert(self, mirror: Mirror, copy: Copy, segment: Segment, final: Path, settings: Settings,
                 stop: threading.Event) -> CutResult:
        local = mirror.local_file(copy)
        if local is not None:
            mirror.access.count(local.stat().st_size)
            return convert_copy(local, segment, settings, final, stop)
        data = mirror.read(copy)
        temp = partial_path(final)  # swept by the next run if a kill leaves it
        try:
            temp.write_bytes(data)
            return convert_copy(temp, segment, settings, final, stop)
        finally:
            temp.unlink(missing_ok=True)


def remember_throughput(cache: Path, summary_bytes: int, seconds: float, clips: int) -> None:
    """The mirrors' measured bandwidth and bytes per clip, for the next --dry-run's time estimate."""
    if seconds <= 0 or clips <= 0:
        return
    path = cache / "mirrors" / "throughput.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps({"bytes_per_s": summary_bytes / seconds, "bytes_per_clip": summary_bytes / clips,
                                       "measured_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}) + "\n")


def measured_throughput(cache: Path) -> dict[str, Any] | None:
    try:
        measured = json.loads((cache / "mirrors" / "throughput.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return measured if isinstance(measured, dict) and measured.get("bytes_per_s") else None
