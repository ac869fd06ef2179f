"""The one interface every mirror layout follows, and the record of one copy a mirror holds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from audioset_downloader.fetch.mirrors.access import FileEntry, MirrorAccess

AUDIO_SUFFIXES = ("flac", "wav", "mp3", "ogg", "opus", "m4a", "webm", "mp4", "aac")
_YTID = re.compile(r"[A-Za-z0-9_-]{11}")


@dataclass(frozen=True, slots=True)  # a list's worth of them is held at once: millions for the unbalanced list
class Copy:
    """One clip in a mirror: whose window it is, and where its bytes are."""

    ytid: str
    start_ms: int | None  # None: named by its YTID alone, so AudioSet's window of that video
    file: int  # the file's number in the index's list of files
    offset: int = 0  # where the clip's bytes start in the file (a tar member's data)
    length: int = -1  # how many bytes; -1: the whole file (or, in parquet, the row's cell)
    row_group: int = -1  # parquet: the row group and the row in it
    row: int = -1


class Layout(Protocol):
    """How a mirror holds its copies: which files it reads, what the cheapest look at them says it holds, and
    how one copy's bytes are read."""

    name: str

    def reads(self, entry: FileEntry) -> bool:
        """Whether the file is one this layout holds copies in (counted to recognise a mirror's layout)."""
        ...

    def copies_in(self, access: MirrorAccess, entry: FileEntry, number: int) -> list[Copy]:
        """The copies the file (number ``number`` of the mirror's files) holds, by the cheapest read it allows."""
        ...

    def read(self, access: MirrorAccess, entry: FileEntry, copy: Copy) -> bytes:
        """The copy's audio, as the file holds it (FLAC, WAV...)."""
        ...


def ytid_of(value: object) -> str | None:
    """A YTID from a copy's own name for it: bare, or with AudioSet's file-name "Y" prefix; None if it is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) == 12 and text.startswith("Y") and _YTID.fullmatch(text[1:]):
        return text[1:]
    return text if _YTID.fullmatch(text) else None


def start_ms_of(value: object) -> int | None:
    """A window's start in milliseconds, from seconds as a copy gives them; None if it gives none."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return round(seconds * 1000) if 0 <= seconds < 1e7 else None
