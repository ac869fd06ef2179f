"""Every error class and every failure reason of the project, in one place.

Two kinds of trouble exist:

* a *run* cannot go on (bad configuration, unreadable CSV, broken backend): a
  ``DownloaderError`` subclass, shown to the user as one line, with an exit code;
* one *clip* failed (video gone, network hiccup, ffmpeg refused): a ``ClipFailure``
  carrying a ``FailureReason``, recorded in ``failed.csv`` while the run goes on.

Reasons are enum values, never strings matched by prefix.
"""

from __future__ import annotations

from enum import Enum

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class DownloaderError(Exception):
    """A problem that stops the whole run; its message is shown as one line."""

    exit_code = EXIT_FATAL


class ConfigError(DownloaderError):
    """Bad configuration or command line: nothing was downloaded."""

    exit_code = EXIT_USAGE


class LayoutMismatch(ConfigError):
    """OUTPUT_LAYOUT is not the layout OUTPUT_DIR already holds for a CSV."""


class NamedValueError(ValueError):
    """A setting's value is wrong, and the message already names the wrong part: the whole value is not repeated."""


class OutputLockedError(DownloaderError):
    """Another run is writing the same CSV's outputs."""

    exit_code = EXIT_USAGE


class BackendUnavailableError(ConfigError):
    """The chosen backend's package is not installed."""


class FfmpegNotFoundError(ConfigError):
    """No usable ffmpeg binary."""


class OutputUnwritableError(DownloaderError):
    """OUTPUT_DIR is full or not writable: every further clip would fail the same way."""


class StoreError(DownloaderError):
    """Object storage (an OUTPUT_DIR URL) refused a request or did not answer: nothing more can go up."""


class BackendBrokenError(DownloaderError):
    """The backend fails on every clip: it no longer understands the source."""


class NetworkDownError(DownloaderError):
    """The run's first clips could not even reach their host: no network, not the videos' fault."""


class ThrottledError(DownloaderError):
    """The source has rate-limited us for longer than MAX_BACKOFF_MINUTES."""


class Kind(Enum):
    PERMANENT = "permanent"  # the video itself is gone: a rerun skips it
    TRANSIENT = "transient"  # may work later: a rerun retries it
    LOCAL = "local"  # our side: bad row, ffmpeg failure


class FailureReason(Enum):
    """Why one clip was not written (the ``reason`` column of failed.csv)."""

    UNAVAILABLE = ("unavailable", Kind.PERMANENT)
    PRIVATE = ("private", Kind.PERMANENT)
    REMOVED = ("removed", Kind.PERMANENT)
    AGE_RESTRICTED = ("age_restricted", Kind.PERMANENT)
    MEMBERS_ONLY = ("members_only", Kind.PERMANENT)
    LIVE = ("live", Kind.PERMANENT)
    REGION_BLOCKED = ("region_blocked", Kind.PERMANENT)
    NO_AUDIO = ("no_audio", Kind.PERMANENT)
    WINDOW_OUT_OF_RANGE = ("window_out_of_range", Kind.PERMANENT)
    # SILENT_CLIPS = "drop": nothing in the window rises above -60 dBFS (YouTube mutes claimed audio).
    SILENT = ("silent", Kind.PERMANENT)
    RATE_LIMITED = ("rate_limited", Kind.TRANSIENT)
    # "Sign in to confirm you're not a bot": the address's reputation, which can last days,
    # not its pace; the identity stops and is probed rarely (pacing/book.py).
    BOT_CHECK = ("bot_check", Kind.TRANSIENT)
    NETWORK = ("network", Kind.TRANSIENT)
    TIMEOUT = ("timeout", Kind.TRANSIENT)
    SERVER_ERROR = ("server_error", Kind.TRANSIENT)
    # The backend itself failed (YouTube changed, cipher broken), not the video.
    # Never permanent: a rerun with a working backend must try these again.
    BACKEND_ERROR = ("backend_error", Kind.TRANSIENT)
    FFMPEG_ERROR = ("ffmpeg_error", Kind.LOCAL)
    INVALID_ROW = ("invalid_row", Kind.LOCAL)
    # VIDEO = True asked for a picture the video lacks; an audio-only rerun still wants it.
    NO_VIDEO = ("no_video", Kind.LOCAL)

    def __init__(self, label: str, kind: Kind) -> None:
        self.label = label
        self.kind = kind

    @property
    def permanent(self) -> bool:
        return self.kind is Kind.PERMANENT

    @classmethod
    def from_label(cls, label: str) -> FailureReason | None:
        return _BY_LABEL.get(label)

    def __str__(self) -> str:
        return self.label


_BY_LABEL = {reason.label: reason for reason in FailureReason}


def reason_for_http_status(status: int) -> FailureReason:
    """Map an HTTP status from a media or metadata server onto a reason."""
    if status in (404, 410):
        return FailureReason.UNAVAILABLE
    if status == 429:
        return FailureReason.RATE_LIMITED
    if status >= 500:
        return FailureReason.SERVER_ERROR
    # 400 (bad request from the metadata API), 403 (expired or unsigned media URL,
    # or a blocked address) and the rest say more about the backend or our address
    # than about the video: transient, so a rerun tries again.
    return FailureReason.BACKEND_ERROR


class ClipFailure(Exception):
    """One clip could not be written; the run records it and goes on."""

    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class BackendsFailed(ClipFailure):
    """Every backend of the chain failed on this clip for reasons of its own (``backend_error``).

    ``proven`` says whether any backend of the chain has worked in this run: if none
    has, the failure says nothing about the video, and the clip is left for the next
    run rather than recorded.
    """

    def __init__(self, detail: str, proven: bool) -> None:
        super().__init__(FailureReason.BACKEND_ERROR, detail)
        self.proven = proven


class Interrupted(Exception):
    """The run is stopping (Ctrl-C): the clip was abandoned, not failed."""
