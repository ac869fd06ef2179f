"""The one interface every backend follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from audioset_downloader.errors import FailureReason
from audioset_downloader.inputs.segments import Segment

# What a browser-like client sends; some media servers refuse Python's default.
DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    ("User-Agent", "Mozilla/5.0"),
    ("Accept-Language", "en-US,en"),
)


# YouTube's own words for why a video cannot be played, as the backends relay them,
# checked against yt-dlp 2026.10.26 (extractor/youtube/_video.py), pytubefix 11.2.1 and
# pytube 15.0.0 (__main__.py, exceptions.py). The first phrase found decides, so the
# order matters: a throttled session is the identity's state, not the video's, and
# "This content isn't available, try again later" must not read as "not available".
MESSAGE_REASONS: tuple[tuple[str, FailureReason], ...] = (
    ("not a bot", FailureReason.BOT_CHECK),  # YouTube: "Sign in to confirm you're not a bot"
    ("detected as a bot", FailureReason.BOT_CHECK),  # pytubefix's BotDetection
    ("too many requests", FailureReason.RATE_LIMITED),  # HTTP 429's reason phrase
    ("try again later", FailureReason.RATE_LIMITED),  # YouTube: "This content isn't available, try again later"
    ("rate-limited", FailureReason.RATE_LIMITED),  # yt-dlp: "has been rate-limited by YouTube for up to an hour"
    ("confirm your age", FailureReason.AGE_RESTRICTED),  # YouTube: "Sign in to confirm your age"
    ("age-restricted", FailureReason.AGE_RESTRICTED),  # yt-dlp: "This video is age-restricted"
    ("age restrict", FailureReason.AGE_RESTRICTED),  # pytube(fix): "is age restricted", "has age restrictions"
    ("inappropriate for some users", FailureReason.AGE_RESTRICTED),  # YouTube, pytubefix
    ("private video", FailureReason.PRIVATE),  # YouTube: "This is a private video"; pytube: "is a private video"
    ("members-only", FailureReason.MEMBERS_ONLY),  # YouTube: "Join this channel to get access to members-only content"
    ("in your country", FailureReason.REGION_BLOCKED),  # YouTube: "has not made this video available in your country"
    ("in your region", FailureReason.REGION_BLOCKED),  # pytube(fix): "is not available in your region"
    ("removed", FailureReason.REMOVED),  # YouTube: "This video has been removed by the uploader"
    ("terminated", FailureReason.REMOVED),  # YouTube: "the YouTube account ... has been terminated"
    ("copyright", FailureReason.REMOVED),  # YouTube: "no longer available due to a copyright claim"
    ("live event", FailureReason.LIVE),  # YouTube: "This live event will begin in ...", "has ended"
    ("streaming live", FailureReason.LIVE),  # pytube(fix): "is streaming live and cannot be loaded"
    ("video unavailable", FailureReason.UNAVAILABLE),  # YouTube: "Video unavailable"
    ("not available", FailureReason.UNAVAILABLE),  # YouTube: "This video is not available"
    ("is unavailable", FailureReason.UNAVAILABLE),  # pytube(fix): "<id> is unavailable"
)


def reason_from_message(message: str) -> FailureReason | None:
    """The reason YouTube's message names, if it names one."""
    text = message.lower()
    for phrase, reason in MESSAGE_REASONS:
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
    backend: str = ""  # the backend that resolved it (set by the failover chain)
    # Epoch seconds before which the media refuses requests (YouTube answers 403 to a
    # request made before a pre-roll ad would have ended: yt-dlp#14646); 0: at once.
    available_at: float = 0.0


class Backend(Protocol):
    """Resolves a segment to a media source; raises ClipFailure with a reason when it cannot."""

    name: str
    fix_hint: str  # what to do when it fails on every clip

    def resolve(self, segment: Segment) -> MediaSource: ...
