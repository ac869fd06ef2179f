"""The "files" layout: one audio file per window, named ``<YTID>``, ``Y<YTID>`` (PANNs) or ``<YTID>_<start>``.

What it holds is its listing: no file is opened to index it.
"""

from __future__ import annotations

import re

from audioset_downloader.fetch.mirrors.access import FileEntry, MirrorAccess
from audioset_downloader.fetch.mirrors.base import AUDIO_SUFFIXES, Copy, start_ms_of, ytid_of

_WITH_START = re.compile(r"(?P<ytid>[A-Za-z0-9_-]{11})_(?P<start>\d+(?:\.\d+)?)")


def window_of(stem: str) -> tuple[str, int | None] | None:
    """The window a file's name without its suffix names: (YTID, start in ms or None), or None."""
    ytid = ytid_of(stem)
    if ytid is not None:
        return ytid, None
    match = _WITH_START.fullmatch(stem[1:] if stem.startswith("Y") and len(stem) > 12 and stem[12] == "_" else stem)
    if match is None:
        return None
    return match["ytid"], start_ms_of(match["start"])


class FilesLayout:
    name = "files"

    def reads(self, entry: FileEntry) -> bool:
        return self._window(entry) is not None

    def _window(self, entry: FileEntry) -> tuple[str, int | None] | None:
        name = entry.path.rpartition("/")[2]
        stem, _, suffix = name.rpartition(".")
        if not stem or suffix.lower() not in AUDIO_SUFFIXES or name.startswith("."):
            return None
        return window_of(stem)

    def copies_in(self, access: MirrorAccess, entry: FileEntry, number: int) -> list[Copy]:
        window = self._window(entry)
        return [] if window is None else [Copy(window[0], window[1], number)]

    def read(self, access: MirrorAccess, entry: FileEntry, copy: Copy) -> bytes:
        return access.read(entry.path, 0, entry.size, entry.size)
