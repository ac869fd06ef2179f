"""The one interface every backend follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..segments import Segment

# What a browser-like client sends; some media servers refuse Python's default.
DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    ("User-Agent", "Mozilla/5.0"),
    ("Accept-Language", "en-US,en"),
)


@dataclass(frozen=True)
class MediaSource:
    """Where the media of a segment can be read: a URL and the headers to send."""

    url: str
    headers: tuple[tuple[str, str], ...] = DEFAULT_HEADERS
    description: str = field(default="", compare=False)  # e.g. "itag 140 audio/mp4 128kbps", for the log


class Backend(Protocol):
    """Resolves a segment to a media source; raises ClipFailure with a reason when it cannot."""

    name: str
    fix_hint: str  # what to do when it fails on every clip

    def resolve(self, segment: Segment) -> MediaSource: ...
