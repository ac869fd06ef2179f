"""The one interface every backend follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..errors import FailureReason
from ..segments import Segment

# What a browser-like client sends; some media servers refuse Python's default.
DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    ("User-Agent", "Mozilla/5.0"),
    ("Accept-Language", "en-US,en"),
)


# YouTube's own words for why a video cannot be played, as backends relay them.
# Specific phrases first: "unavailable" also appears in removal messages.
_MESSAGE_REASONS: tuple[tuple[str, FailureReason], ...] = (
    ("not a bot", FailureReason.RATE_LIMITED),
    ("too many requests", FailureReason.RATE_LIMITED),
    ("confirm your age", FailureReason.AGE_RESTRICTED),
    ("age-restricted", FailureReason.AGE_RESTRICTED),
    ("private video", FailureReason.PRIVATE),
    ("members", FailureReason.MEMBERS_ONLY),
    ("in your country", FailureReason.REGION_BLOCKED),
    ("removed", FailureReason.REMOVED),
    ("terminated", FailureReason.REMOVED),
    ("copyright", FailureReason.REMOVED),
    ("live event", FailureReason.LIVE),
    ("is live", FailureReason.LIVE),
    ("video unavailable", FailureReason.UNAVAILABLE),
    ("not available", FailureReason.UNAVAILABLE),
)


def reason_from_message(message: str) -> FailureReason | None:
    """The reason YouTube's message names, if it names one."""
    text = message.lower()
    for phrase, reason in _MESSAGE_REASONS:
        if phrase in text:
            return reason
    return None


@dataclass(frozen=True)
class MediaSource:
    """Where the media of a segment can be read: a URL and the headers to send."""

    url: str
    headers: tuple[tuple[str, str], ...] = DEFAULT_HEADERS
    description: str = field(default="", compare=False)  # e.g. "itag 140 audio/mp4 128kbps", for the log
    codec: str = ""  # the audio codec when the backend knows it ("aac", "opus"), for stream copy
    video_url: str = ""  # with VIDEO: the video stream's URL, when apart from the audio's


class Backend(Protocol):
    """Resolves a segment to a media source; raises ClipFailure with a reason when it cannot."""

    name: str
    fix_hint: str  # what to do when it fails on every clip

    def resolve(self, segment: Segment) -> MediaSource: ...
